# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Rows as the bytes the server sent: reading them, digesting them, remapping ids in them."""

from __future__ import annotations

import hashlib

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import execute


def fetch_raw(conn, sql, args=None):
    """All rows as the bytes the server sent (a raw connection)."""
    return execute(conn, sql, args, rows=True)


def key_text(value):
    return bytes(value).decode("utf-8", "surrogateescape") if isinstance(value, (bytes, bytearray)) else str(value)


def row_digest(literal):
    return hashlib.sha256(literal).hexdigest()


def merge_remaps(plan, name, columns):
    """{column: {target id: promoted id}} of a merged table's kept rows (roles and policies the promotion replaces)."""
    out = {}
    for mapping, cols in ((plan.role_map, plan.role_cols), (plan.policy_map, plan.policy_cols)):
        for table, column in cols:
            if table == name and mapping and column in columns:
                out[column] = {str(k): str(v) for k, v in mapping.items()}
    return out


def remapped(row, columns, remap):
    """A raw row with remapped ids (``remap`` as merge_remaps gives it)."""
    if not remap:
        return row
    out = list(row)
    for i, column in enumerate(columns):
        mapping = remap.get(column)
        if mapping and out[i] is not None:
            new = mapping.get(key_text(out[i]))
            if new is not None:
                out[i] = new.encode("utf-8")
    return out
