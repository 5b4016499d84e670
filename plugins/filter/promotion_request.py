# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The promote role's request check: every problem of a promotion or rollback request, in one list."""

from __future__ import annotations

DOCUMENTATION = r"""
name: promotion_request
short_description: Check a promotion or rollback request against the inventory
version_added: 0.3.0
description:
  - Returns every problem of the request (unknown environments, missing or malformed connection variables, a
    target that does not allow being overwritten, source and target sharing a database or overlapping assets) and
    the notices about optional settings that are absent, without connecting anywhere.
  - Undefined variables (e.g. a C(vault_*) variable missing from the vault file) are reported as problems, not
    raised.
options:
  _input:
    description: The C(groups) of the inventory.
    type: dict
    required: true
  hostvars:
    description: C(hostvars).
    type: dict
    required: true
  group:
    description: The group whose hosts are the environments.
    type: str
    required: true
  source:
    description: The source environment (ignored for O(kind=rollback)).
    type: str
  target:
    description: The target environment.
    type: str
  kind:
    description: What the request is for.
    type: str
    choices: [promote, rollback]
    default: promote
"""

EXAMPLES = r"""
- name: Check the request
  ansible.builtin.set_fact:
    request_check: "{{ groups | casper.directus_promote.promotion_request(hostvars, 'directus_environments', 'staging', 'prod') }}"
"""

RETURN = r"""
_value:
  description: C(problems) (a list of sentences; empty when the request is valid) and C(notices).
  type: dict
"""

import re

from jinja2 import Undefined
from ansible.errors import AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import (
    normalize_prefix, ranges_overlap)

REQUIRED = ("directus_db_name", "directus_db_user", "directus_db_password", "directus_s3_bucket")
_UNDEFINED = object()


def _read(variables, name, default=None):
    """A host variable, templated; _UNDEFINED when it (or what it references) is undefined."""
    try:
        if name not in variables:
            return default
        value = variables[name]
    except AnsibleError:  # ansible-core before 2.19 raises on an undefined reference
        return _UNDEFINED
    return _UNDEFINED if isinstance(value, Undefined) else value  # 2.19 returns a marker


def _text(value):
    return "" if value is None or value is _UNDEFINED else str(value)


def environment_problems(side, name, variables):
    problems = []
    for var in REQUIRED:
        value = _read(variables, var)
        if value is None or value is _UNDEFINED:
            problems.append("%s '%s': %s is not defined (or references an undefined variable, e.g. a vault_* variable "
                            "missing from the vault file)" % (side, name, var))
        elif not isinstance(value, str) or not value:
            problems.append("%s '%s': %s must be a non-empty string" % (side, name, var))
    if not _text(_read(variables, "directus_db_host")) and not _text(_read(variables, "directus_db_unix_socket")):
        problems.append("%s '%s': set directus_db_host (or directus_db_unix_socket)" % (side, name))
    port = _read(variables, "directus_db_port")
    if port is not None and not (re.match(r"^[0-9]+$", _text(port)) and 0 < int(_text(port)) < 65536):
        problems.append("%s '%s': directus_db_port must be a TCP port number, got '%s'" % (side, name, _text(port)))
    url = _text(_read(variables, "directus_url"))
    if url and not re.match(r"^https?://", url):
        problems.append("%s '%s': directus_url must start with http:// or https://" % (side, name))
    return problems


def assets_prefix(variables):
    """Directus' STORAGE_<LOC>_ROOT, with or without slashes, as the key prefix it stands for."""
    return normalize_prefix(_text(_read(variables, "directus_s3_prefix", "")).strip("/"))


def shared_problems(source, target):
    """Source and target must not be one database, nor overlapping asset ranges."""
    problems = []
    ident = ("directus_db_name", "directus_db_host", "directus_db_unix_socket")
    a = {var: _text(_read(source, var)) for var in ident}
    b = {var: _text(_read(target, var)) for var in ident}
    ports = [_text(_read(env, "directus_db_port", 3306)) for env in (source, target)]
    if a["directus_db_name"] and a == b and ports[0] == ports[1]:
        problems.append("source and target use the same database (%s/%s)" % (
            a["directus_db_host"] or a["directus_db_unix_socket"], a["directus_db_name"]))
    buckets = [_text(_read(env, "directus_s3_bucket")) for env in (source, target)]
    prefixes = [assets_prefix(env) for env in (source, target)]
    if buckets[0] and ranges_overlap(buckets[0], prefixes[0], buckets[1], prefixes[1]):
        problems.append("source and target assets overlap (bucket '%s', prefixes '%s' and '%s')"
                        % (buckets[0], prefixes[0].rstrip("/"), prefixes[1].rstrip("/")))
    return problems


def notices(roles, hostvars, target):
    """Optional settings that are absent, as one line each."""
    lines = []
    for side, name in roles:
        variables = hostvars[name]
        if not _text(_read(variables, "directus_url")):
            lines.append("WARNING: %s '%s' has no directus_url: no Directus version check%s"
                         % (side, name, " and no cache clear / health check" if side == "target" else ""))
        elif not _text(_read(variables, "directus_admin_token")):
            lines.append("WARNING: %s '%s' has directus_url but no directus_admin_token: no Directus version check%s"
                         % (side, name, " and no cache clear" if side == "target" else ""))
    if not _text(_read(hostvars[target], "directus_cloudfront_distribution_id")):
        lines.append("NOTICE: target '%s' has no directus_cloudfront_distribution_id: no CDN invalidation" % target)
    return lines


def promotion_request(groups, hostvars, group, source=None, target=None, kind="promote"):
    """{problems: [...], notices: [...]} of a promotion (or, with kind='rollback', a rollback) request."""
    if kind not in ("promote", "rollback"):
        raise AnsibleError("promotion_request: kind must be promote or rollback, got %r" % (kind,))
    members = list((groups or {}).get(group) or [])
    known = ", ".join(members) or "none"
    problems = []
    if group not in (groups or {}):
        problems.append("the inventory has no group '%s' (each environment must be a host of it)" % group)
    sides = [("target", _text(target))] if kind == "rollback" else [("source", _text(source)), ("target", _text(target))]
    valid = []
    for side, name in sides:
        if not name:
            problems.append("%s is not set: pass -e %s=<environment> (one of: %s)" % (side, side, known))
        elif name not in members:
            problems.append("%s '%s' is not a host of group '%s' (known: %s)" % (side, name, group, known))
        else:
            problems.extend(environment_problems(side, name, hostvars[name]))
            valid.append((side, name))
    names = dict(sides)
    if kind == "promote" and names["source"] and names["source"] == names["target"]:
        problems.append("source and target are the same environment ('%s')" % names["source"])
    allowed = _read(hostvars[names["target"]], "directus_promote_allow_target", False) if names["target"] in members else True
    if allowed is _UNDEFINED or not boolean(allowed, strict=False):
        problems.append("target '%s' does not allow being overwritten: set directus_promote_allow_target: true on that "
                        "environment" % names["target"])
    if kind == "promote" and len(valid) == 2 and names["source"] != names["target"]:
        problems.extend(shared_problems(hostvars[names["source"]], hostvars[names["target"]]))
    return {"problems": problems,
            "notices": notices(valid, hostvars, names["target"]) if not problems else []}


class FilterModule:
    def filters(self):
        return {"promotion_request": promotion_request}
