# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: promotion_lock
short_description: Hold one lock on a Directus target for a whole promotion or rollback
version_added: "0.2.0"
description:
  - Takes, checks or releases the promotion lock of a target database, one row in C(<database>__promote_state)
    naming the run that holds it, what it does, from which source, since when and from which controller.
  - A second promotion (or rollback) into the same target refuses before it writes anything, naming the holder.
  - The lock does not depend on a connection staying open. A holder that is gone (a killed controller) is taken
    over once it has not been seen for O(expiry) seconds; O(break_lock=true) takes it over at once and reports
    what it broke. Each O(state=checked) renews the holder's sign of life.
  - P(casper.directus_promote.directus_db_replicate#module) refuses to write while another run holds it.
author:
  - casper.directus_promote contributors (@casper)
requirements:
  - PyMySQL
extends_documentation_fragment:
  - casper.directus_promote.mysql.target
options:
  run_id:
    description: The promotion's run id.
    type: str
    required: true
  state:
    description:
      - C(present) takes the lock (or renews it when O(run_id) holds it already); C(checked) fails unless O(run_id)
        holds it; C(absent) releases it if O(run_id) holds it.
    type: str
    choices: [present, checked, absent]
    default: present
  kind:
    description: What the run does, for the holder's description.
    type: str
    choices: [promote, rollback]
    default: promote
  source:
    description: The environment promoted from, for the holder's description.
    type: str
  expiry:
    description: Seconds without a sign of life after which another run may take the lock over.
    type: int
    default: 21600
  break_lock:
    description: Take the lock over even from a live holder; the result says whose lock was broken.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports whether the lock could be taken; writes nothing.
  diff_mode:
    support: none
    description: Nothing to compare; the result names the holder.
  idempotent:
    support: full
    description: Taking a lock the run already holds only renews it (C(changed=false)).
"""

EXAMPLES = r"""
- name: Take the promotion lock
  casper.directus_promote.promotion_lock:
    target: "{{ prod_db }}"
    run_id: "{{ run_id }}"
    source: staging

- name: Release it
  casper.directus_promote.promotion_lock:
    target: "{{ prod_db }}"
    run_id: "{{ run_id }}"
    state: absent
"""

RETURN = r"""
holder:
  description: The holder found before this call (null when nobody held it).
  returned: always
  type: dict
  sample: {"run_id": "prod-20260101T120000Z-1a2b3c4d", "kind": "promote", "source": "staging", "controller": "awx-1",
           "started_at": "2026-01-01 12:00:00.000000", "seen_at": "2026-01-01 12:03:10.000000", "expiry": 21600, "age": 12,
           "expired": false}
broken:
  description: The holder whose lock was taken over (expired, or O(break_lock=true)), else null.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import promotion_lock
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import Failure, Run
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    HAS_PYMYSQL,
    PYMYSQL_IMPORT_ERROR,
    DatabaseError,
    friendly_error,
    mysql_connection_options,
)

if HAS_PYMYSQL:
    import pymysql


def argument_spec():
    return dict(
        target=dict(type="dict", required=True, options=mysql_connection_options()),
        run_id=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "checked", "absent"], default="present"),
        kind=dict(type="str", choices=["promote", "rollback"], default="promote"),
        source=dict(type="str"),
        expiry=dict(type="int", default=21600),
        break_lock=dict(type="bool", default=False),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_PYMYSQL:
        module.fail_json(msg=missing_required_lib("PyMySQL"), exception=PYMYSQL_IMPORT_ERROR)
    params = module.params
    if params["expiry"] < 1 or not params["run_id"].strip():
        module.fail_json(msg="expiry must be 1 or more and run_id not empty")
    run = Run(params, module.check_mode)
    result = {"changed": False, "holder": None, "broken": None}
    try:
        conn = run.open("target")
        holder = promotion_lock.holder(run, conn)
        result["holder"] = promotion_lock.as_json(holder)
        if params["state"] == "present":
            outcome = promotion_lock.acquire(run, conn, params["run_id"], params["kind"], params["source"],
                                             params["expiry"], params["break_lock"])
            result["changed"] = outcome["acquired"]
            result["broken"] = promotion_lock.as_json(outcome["took_over"])
            if outcome["took_over"]:
                module.warn("took over the promotion lock from %s" % promotion_lock.describe(outcome["took_over"]))
        elif params["state"] == "checked":
            promotion_lock.check(run, conn, params["run_id"])
        else:
            result["changed"] = promotion_lock.release(run, conn, params["run_id"])
    except (Failure, DatabaseError) as exc:
        run.close()
        module.fail_json(msg=str(exc), **result)
    except pymysql.err.MySQLError as exc:
        run.close()
        module.fail_json(msg=friendly_error("target", params["target"], exc), **result)
    run.close()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
