# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The promote role's report of a run (promotion or rollback) and the summary table printed from it."""

from __future__ import annotations

DOCUMENTATION = r"""
name: promotion_report
short_description: The report of a promotion or rollback, from the role's registered results
version_added: 0.3.0
description:
  - Builds one JSON-ready document of a run of the C(casper.directus_promote.promote) role (a promotion or a
    rollback, check mode too) - run id, source, target, start and end, per phase its result, counts and duration,
    the database backup, the asset trash, the CloudFront invalidation ids and the warnings.
  - The role sets it as the fact C(promote_report), passes it to C(set_stats) and writes it to
    C(promote_report_dir). The filter C(casper.directus_promote.promotion_summary) prints it as a table.
options:
  _input:
    description:
      - C(kind), C(run_id), C(source), C(target), C(check_mode), C(marks) (C([phase, epoch seconds]) at the end of each
        phase, the first one C(start)), C(results) (phase result name -> the registered result, or null when the task
        did not run) and C(settings).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Build the report
  ansible.builtin.set_fact:
    promote_report: "{{ run | casper.directus_promote.promotion_report }}"
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
"""

import datetime

from ansible.errors import AnsibleFilterError

PHASES = {
    "promote": ("validate", "preflight", "assets_copy", "database", "assets_prune", "cdn", "cache", "verify"),
    "rollback": ("validate", "assets_restore", "database", "assets_remove", "cdn", "cache", "verify"),
}


def human_bytes(count):
    count = int(count or 0)
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= size:
            return "%.1f %s" % (count / size, unit)
    return "%d B" % count


def iso(epoch):
    if epoch is None:
        return None
    return datetime.datetime.fromtimestamp(float(epoch), datetime.timezone.utc).isoformat(timespec="seconds")


def durations(marks):
    """{phase: seconds} from the marks taken at the end of each phase (the first mark is the start)."""
    out, previous = {}, None
    for name, stamp in marks or []:
        stamp = float(stamp)
        if previous is not None:
            out[name] = round(out.get(name, 0) + stamp - previous, 3)
        previous = stamp
    return out


def ran(result):
    return isinstance(result, dict) and not result.get("skipped")


def outcome(result, check_mode):
    """The result column of one phase from its main registered result."""
    if result is None:
        return "not run"
    if result.get("skipped"):
        return "skipped"
    if result.get("failed"):
        return "FAILED"
    if result.get("changed"):
        return "would change" if check_mode else "changed"
    return "ok"


def _counts(result, *names):
    counts = (result or {}).get("counts") or {}
    return {name: int(counts.get(name) or 0) for name in names}


def _phase(name, result, check_mode, details="", counts=None, status=None):
    return {"name": name, "result": status or outcome(result, check_mode), "details": details, "counts": counts or {}}


def _preflight(res, settings, check_mode):
    parts = []
    versions = settings.get("versions") or {}
    if versions:
        parts.append("Directus " + " / ".join(sorted(set(str(v) for v in versions.values()))))
    db = res.get("preflight_db")
    if ran(db):
        findings = [f for f in (db.get("preflight") or {}).get("findings") or [] if isinstance(f, dict)]
        parts.append("%d db checks (%d with changes)" % (len(findings), len([f for f in findings if f.get("status") != "ok"])))
    if ran(res.get("preflight_cdn")):
        parts.append("distribution found")
    status = "ok" if any(ran(res.get(k)) for k in ("preflight_db", "preflight_s3", "preflight_cdn")) or versions else None
    failed = [k for k in ("preflight_db", "preflight_s3", "preflight_cdn") if (res.get(k) or {}).get("failed")]
    return _phase("preflight", None, check_mode, ", ".join(parts) or "nothing to check",
                  status="FAILED" if failed else status or "not run")


def _assets(name, result, check_mode):
    if not ran(result):
        return _phase(name, result, check_mode)
    if "restored" in result or "removed" in result:  # s3_mirror mode=restore
        counts = {name: int(result.get(name) or 0) for name in ("restored", "removed")}
        details = "%d put back, %d removed" % (counts["restored"], counts["removed"])
        if result.get("changed_since"):
            details += ", %d changed since (left alone)" % len(result["changed_since"])
    elif name == "assets_prune":
        counts = _counts(result, "deleted")
        details = "%d deleted" % counts["deleted"]
    else:
        counts = _counts(result, "copied", "updated", "unchanged", "bytes_copied")
        details = "%d copied, %d updated, %d unchanged, %s" % (
            counts["copied"], counts["updated"], counts["unchanged"], human_bytes(counts["bytes_copied"]))
    return _phase(name, result, check_mode, details, counts)


def _database(result, check_mode):
    if not ran(result):
        return _phase("database", result, check_mode)
    tables = list(result.get("changed_tables") or [])
    details = "%d table(s) changed" % len(tables)
    if result.get("backup_schema"):
        details += ", backup schema %s" % result["backup_schema"]
    if result.get("rollback_of"):
        details += ", backup %s swapped back in" % result["rollback_of"].get("backup_schema")
    return _phase("database", result, check_mode, details, {"changed_tables": len(tables)})


def _cdn(result, settings, check_mode):
    if not settings.get("distribution"):
        return _phase("cdn", result, check_mode, "no directus_cloudfront_distribution_id on %s" % settings.get("target"),
                      status="skipped")
    if result is None:
        return _phase("cdn", result, check_mode)
    if not ran(result):
        return _phase("cdn", result, check_mode, "nothing to invalidate", status="ok")
    ids = [i.get("id") or "new" for i in result.get("invalidations") or []]
    details = "%s (%d path(s)%s)" % (", ".join(ids) or "invalidation", len(result.get("paths") or []),
                                     (", collapsed: %s" % result.get("collapse_reason")) if result.get("collapsed") else "")
    return _phase("cdn", result, check_mode, details, {"paths": len(result.get("paths") or [])})


def _cache(result, settings, check_mode, changed, phase_ran):
    if not phase_ran:
        return _phase("cache", None, check_mode)
    if not settings.get("target_directus"):
        return _phase("cache", None, check_mode, "no directus_url/directus_admin_token on %s" % settings.get("target"),
                      status="skipped")
    if ran(result):
        restarts = int(settings.get("restart_commands") or 0)
        return _phase("cache", result, check_mode, "cleared (HTTP %s)%s" % (
            result.get("status", "?"), (", %d restart command(s)" % restarts) if restarts else ""),
            status="FAILED" if result.get("status") not in (200, 204) else "changed")
    if check_mode and (changed or settings.get("cache_force")):
        return _phase("cache", None, check_mode, "would clear the cache", status="would change")
    return _phase("cache", None, check_mode, "nothing changed: cache kept", status="ok")


def _verify(res, kind, check_mode, phase_ran):
    """What the verify phase compared; "skipped" for what it did not, never "in sync" without a comparison."""
    if not phase_ran:
        return _phase("verify", None, check_mode)
    parts = []
    health = res.get("health")
    if ran(health):
        parts.append("health %s" % ((health.get("json") or {}).get("status") or "?"))
    else:
        parts.append("health skipped")
    if kind == "rollback":
        compared = [("asset restore", res.get("verify_restore"), "complete")]
    else:
        compared = [("assets", res.get("verify_assets"), "in sync"), ("database", res.get("verify_db"), "in sync")]
    verdict = res.get("verify_check")
    failed = bool((health or {}).get("failed") or (verdict or {}).get("failed"))
    for label, result, good in compared:
        if not ran(result):
            parts.append("%s skipped" % label)
        elif result.get("failed") or failed:
            parts.append("%s FAILED" % label)
            failed = True
        else:
            parts.append("%s %s" % (label, good))
    return _phase("verify", None, check_mode, ", ".join(parts), status="FAILED" if failed else "ok")


def warnings_of(res, notices):
    out = list(notices or [])
    for name in sorted(res):
        result = res[name]
        if not isinstance(result, dict):
            continue
        out.extend("%s: %s" % (name, w) for w in result.get("warnings") or [])
        findings = (result.get("preflight") or {}).get("findings") or []
        out.extend("%s: %s" % (name, f.get("message")) for f in findings
                   if isinstance(f, dict) and f.get("status") == "warning")
    return out


def promotion_report(run):
    """The report of one run of the role (see DOCUMENTATION)."""
    if not isinstance(run, dict) or run.get("kind") not in PHASES:
        raise AnsibleFilterError("promotion_report: expects a dict with kind promote or rollback")
    kind, check_mode = run["kind"], bool(run.get("check_mode"))
    res = {k: v for k, v in (run.get("results") or {}).items() if isinstance(v, dict) or v is None}
    settings = dict(run.get("settings") or {}, target=run.get("target"))
    seconds = durations(run.get("marks"))
    marks = run.get("marks") or []

    phases = [_phase("validate", None, check_mode, "%s%s, run id %s%s" % (
        ("%s -> " % run.get("source")) if kind == "promote" else "undo the newest promotion of ", run.get("target"),
        run.get("run_id"), " (resumed: pending CDN paths of an earlier attempt)" if settings.get("resumed") else ""),
        status="ok")]
    if kind == "promote":
        phases.append(_preflight(res, settings, check_mode) if "preflight" in seconds
                      else _phase("preflight", None, check_mode))
        phases.append(_assets("assets_copy", res.get("assets_copy"), check_mode))
        phases.append(_database(res.get("database"), check_mode))
        phases.append(_assets("assets_prune", res.get("assets_prune"), check_mode))
    else:
        phases.append(_assets("assets_restore", res.get("assets_restore"), check_mode))
        phases.append(_database(res.get("database"), check_mode))
        phases.append(_assets("assets_remove", res.get("assets_remove"), check_mode))
    phases.append(_cdn(res.get("cdn"), settings, check_mode))
    changed = any(ran(res.get(k)) and res[k].get("changed")
                  for k in ("assets_copy", "database", "assets_prune", "assets_restore", "assets_remove"))
    phases.append(_cache(res.get("cache"), settings, check_mode, changed, "cache" in seconds))
    phases.append(_verify(res, kind, check_mode, "verify" in seconds))
    for phase in phases:
        phase["seconds"] = seconds.get(phase["name"])

    failed = [p["name"] for p in phases if p["result"] == "FAILED"]
    failure = run.get("failure") if isinstance(run.get("failure"), dict) else None
    result = "failed" if failed or failure else "check mode" if check_mode else "changed" if changed else "unchanged"
    db, trash = res.get("database") or {}, None
    for name in ("assets_copy", "assets_prune", "assets_restore", "assets_remove"):
        if ran(res.get(name)) and res[name].get("trash"):
            trash = res[name]["trash"]
    return {
        "kind": kind, "run_id": run.get("run_id"), "source": run.get("source") if kind == "promote" else None,
        "target": run.get("target"), "check_mode": check_mode, "result": result, "failed_phases": failed,
        "started": iso(marks[0][1]) if marks else None, "ended": iso(marks[-1][1]) if marks else None,
        "seconds": round(float(marks[-1][1]) - float(marks[0][1]), 3) if len(marks) > 1 else None,
        "phases": phases,
        "database_backup": (db.get("backup_schema") if ran(db) else None),
        "rollback_of": (db.get("rollback_of") if ran(db) else None),
        "asset_trash": trash,
        "cloudfront_invalidations": [i.get("id") for i in (res.get("cdn") or {}).get("invalidations") or [] if i.get("id")],
        "failure": failure,
        "warnings": warnings_of(res, run.get("notices")),
    }


def promotion_summary(report):
    """The report as lines of a table (phase, result, details, seconds) and one closing sentence."""
    rows = [(p["name"], p["result"], p["details"] or "", p.get("seconds")) for p in report["phases"]]
    widths = (12, 12, max([7] + [len(r[2]) for r in rows]))
    line = "+-%s-+-%s-+-%s-+---------+" % tuple("-" * w for w in widths)
    out = [line, "| %s | %s | %s | seconds |" % tuple(t.center(w) for t, w in zip(("phase", "result", "details"), widths)),
           line]
    for name, result, details, seconds in rows:
        out.append("| %-*s | %-*s | %-*s | %s |" % (widths[0], name, widths[1], result, widths[2], details,
                                                    "%7.1f" % seconds if seconds is not None else "      -"))
    out.append(line)
    what = "Promotion %s -> %s" % (report["source"], report["target"]) if report["kind"] == "promote" \
        else "Rollback of %s" % report["target"]
    if report["check_mode"]:
        out.append("CHECK MODE: nothing was changed; the table is the plan.")
    elif report["result"] == "failed":
        out.append("%s: FAILED%s (run id %s)" % (what, (" in " + ", ".join(report["failed_phases"])) if report["failed_phases"]
                                                 else (" at '%s'" % report["failure"]["task"]) if report.get("failure") else "",
                                                 report["run_id"]))
    elif report["result"] == "changed":
        out.append("%s: CHANGED" % what)
    else:
        writing = [p for p in report["phases"] if p["name"] in ("assets_copy", "database", "assets_prune")]
        if report["kind"] == "promote" and any(p["result"] == "not run" for p in writing):
            out.append("%s: no change (phases run: %s)" % (what, ", ".join(
                p["name"] for p in report["phases"] if p["result"] != "not run")))
        else:
            out.append("%s: no change%s" % (what, " (already in sync)" if report["kind"] == "promote" else ""))
    for warning in report.get("warnings") or []:
        out.append("warning: %s" % warning)
    return out


class FilterModule:
    def filters(self):
        return {"promotion_report": promotion_report, "promotion_summary": promotion_summary}
