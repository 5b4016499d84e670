# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one object a promotion's phases pass along: what was read, then what was decided."""

from __future__ import annotations

import dataclasses

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules

FILES_TABLE = "directus_files"


@dataclasses.dataclass
class Plan:
    """Filled by preflight.gather (the catalogs), preflight.check (remaps, mappings, column adds) and
    compare.decide (what changes); read by every later phase, which return their own results."""

    # --- preflight.gather: both sides' catalogs, read once
    src_ident: dict
    tgt_ident: dict
    src_tables: set
    tgt_tables: set
    src_cols: dict                 # {table: [(column, data_type, generated)]}
    tgt_cols: dict
    src_create: dict               # {table: SHOW CREATE TABLE} of promoted tables (and kept ones the source has)
    tgt_create: dict
    actions: dict                  # {table: replace | merge | keep | drop | exclude}
    merge_spec: dict               # {pattern: split column}

    # --- preflight.check
    role_map: dict = dataclasses.field(default_factory=dict)      # target role id -> promoted role id
    policy_map: dict = dataclasses.field(default_factory=dict)
    role_cols: list = dataclasses.field(default_factory=list)     # [(table, column)] referencing roles
    policy_cols: list = dataclasses.field(default_factory=list)
    column_adds: list = dataclasses.field(default_factory=list)   # [ddl.ColumnAdd]
    user_map: dict = dataclasses.field(default_factory=dict)      # source user id -> target user id or None
    user_cols: list = dataclasses.field(default_factory=list)     # [(table, column)] of promoted user references
    user_fp: str = None                                           # fingerprint of the user mapping
    user_counts: dict = dataclasses.field(default_factory=dict)
    stats: dict = dataclasses.field(default_factory=lambda: {
        "remapped_roles": {}, "remapped_policies": {}, "user_refs_mapped": 0, "user_refs_nulled": 0, "added_columns": []})

    # --- compare.decide
    state: dict = dataclasses.field(default_factory=dict)         # table_state rows the last promotion recorded
    comparable: bool = True                                       # same server version: CHECKSUM TABLE values compare
    src_ck: dict = dataclasses.field(default_factory=dict)
    tgt_ck: dict = dataclasses.field(default_factory=dict)
    src_reused: dict = dataclasses.field(default_factory=dict)    # checksums taken from the state, not computed
    tgt_reused: dict = dataclasses.field(default_factory=dict)
    src_stats: dict = dataclasses.field(default_factory=dict)
    src_mark: object = None
    src_est: dict = dataclasses.field(default_factory=dict)       # InnoDB's row estimates on the source
    tgt_est: dict = dataclasses.field(default_factory=dict)       # ... and on the target
    src_bytes: dict = dataclasses.field(default_factory=dict)
    swap_in: list = dataclasses.field(default_factory=list)       # tables the swap brings into production
    swap_out: list = dataclasses.field(default_factory=list)      # live tables the swap moves into the backup
    kept_changes: dict = dataclasses.field(default_factory=dict)  # {kept table: [what changes]}
    dangling: list = dataclasses.field(default_factory=list)      # [(table, column, [values])] to set to NULL
    kept_files: list = dataclasses.field(default_factory=list)    # production's directus_files ids kept rows reference
    tables: list = dataclasses.field(default_factory=list)        # the per-table report
    changed_tables: list = dataclasses.field(default_factory=list)
    reuse_notes: list = dataclasses.field(default_factory=list)

    def names(self, *actions):
        return sorted(n for n, a in self.actions.items() if a in actions)

    @property
    def promoted(self):
        return self.names("replace", "merge")

    @property
    def kept(self):
        """Kept tables production has."""
        return [n for n in self.names("keep") if n in self.tgt_tables]

    @property
    def transformed(self):
        """Replaced tables that go live different from the source: user references rewritten on the way, or
        production's own rows added (directus_files rows kept rows reference)."""
        user_tables = {t for t, _c in self.user_cols}
        return [n for n in self.swap_in if self.actions[n] == "replace" and (
            (n in user_tables and self.user_map) or (n == FILES_TABLE and self.kept_files))]

    def transform_fp(self, name):
        """What makes a transformed table's target checksum the expected one (recorded in table_state), or None."""
        user_tables = {t for t, _c in self.user_cols}
        parts = [self.user_fp if (name in user_tables and self.user_map) else None]
        if name == FILES_TABLE and self.kept_files:
            parts.append(sorted(str(i) for i in self.kept_files))
        return None if parts == [None] else rules.fingerprint(*parts)
