# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: directus_db_replicate vs `mariadb-dump --single-transaction | mariadb` (same run, same servers).

    python bench/bench_db.py --rows 1000000

Starts its own sandbox (two mariadbd processes), builds a Directus-shaped staging database with the
fixture code (``--rows`` content rows) and a production one (``--prod-rows``), then measures:

  1. the pipeline the module replaces: ``mariadb-dump --single-transaction --ignore-table=<db>.directus_users
     <db> | mariadb <db>`` (credentials in 0600 defaults files, never argv), on a freshly built production;
  2. a full promotion with the module (run exactly as Ansible runs it), on a freshly built production;
  3. the no-change re-run of the module;
  4. a floor, right after the pipeline: the target server copying every table the pipeline loaded into a
     scratch schema (``INSERT ... SELECT`` in 20,000-id chunks, two connections), with no client, no source
     server and no SQL parsing in the way; no way of promoting that writes every row can be faster here;
  5. ``--repeats`` repeat promotions on the now promoted production: each round is an editor session on
     staging (``staging_edit``: 3 articles updated, 1 added, a permission tweaked) followed by a promotion.

2, 3 and 5 all run with ``keep_backups=--keep-backups``, so backup schemas accumulate across them as they
do on a real production. During 1, 2 and 5 a prober reads a content table and ``directus_users`` on the
target every 10 ms and counts errors (any exception, or an empty content table). Prints two tables and
the ratios; all ratios to the pipeline use the pipeline time of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO / "collections")]

from sandbox.module_runner import execute_module  # noqa: E402  (tests/ on the path above)
from sandbox import Sandbox  # noqa: E402
from sandbox import directus_fixture as fx  # noqa: E402

DB = "directus"


class Prober(threading.Thread):
    """Reads articles and directus_users on the target every `interval` seconds; counts failures."""

    def __init__(self, server, interval=0.010):
        super().__init__(daemon=True)
        self.server = server
        self.interval = interval
        self.stop_event = threading.Event()
        self.probes = 0
        self.errors = 0
        self.error_kinds = {}
        self.max_latency = 0.0

    def _connect(self):
        return self.server.connect(database=DB, connect_timeout=2, read_timeout=30)

    def run(self):
        conn = None
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                if conn is None:
                    conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute("SELECT id, title FROM articles ORDER BY id LIMIT 5")
                    if not cur.fetchall():
                        raise LookupError("articles is empty")
                    cur.execute("SELECT id, email, role FROM directus_users LIMIT 5")
                    if not cur.fetchall():
                        raise LookupError("directus_users is empty")
            except Exception as exc:  # noqa: BLE001 - every failure is a data point
                self.errors += 1
                kind = type(exc).__name__ + ": " + str(exc)[:60]
                self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
            self.probes += 1
            self.max_latency = max(self.max_latency, time.monotonic() - started)
            time.sleep(self.interval)
        if conn is not None:
            conn.close()

    def stop(self):
        self.stop_event.set()
        self.join()
        return {"probes": self.probes, "errors": self.errors, "max_latency_ms": round(self.max_latency * 1000, 1),
                "error_kinds": self.error_kinds}


def defaults_file(directory, server, name):
    path = Path(directory) / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("[client]\nhost=%s\nport=%d\nuser=%s\npassword=%s\n" % (
            server.host, server.port, server.user, server.password))
    return str(path)


def build_prod(sb, rows):
    conn = sb.prod.root_connect()
    with conn.cursor() as cur:
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'directus\\_\\_%'")
        for (name,) in cur.fetchall():
            cur.execute("DROP DATABASE `%s`" % name)
    fx.build_directus_db(conn, DB, env="prod", seed=1, content_rows=rows)
    conn.close()


def run_pipeline(sb, tmp):
    src = defaults_file(tmp, sb.staging, "staging.cnf")
    dst = defaults_file(tmp, sb.prod, "prod.cnf")
    dump = ["mariadb-dump", "--defaults-extra-file=" + src, "--single-transaction", "--ignore-table=%s.directus_users" % DB,
            DB]
    load = ["mariadb", "--defaults-extra-file=" + dst, DB]
    started = time.monotonic()
    p1 = subprocess.Popen(dump, stdout=subprocess.PIPE)
    p2 = subprocess.Popen(load, stdin=p1.stdout)
    p1.stdout.close()
    rc2 = p2.wait()
    rc1 = p1.wait()
    if rc1 or rc2:
        raise SystemExit("pipeline failed: dump rc=%s load rc=%s" % (rc1, rc2))
    return time.monotonic() - started


def copy_chunks(cur, table, step=20_000):
    """WHERE clauses splitting ``table`` into ``step``-id ranges of a one-integer-column primary key, else one."""
    cur.execute("SELECT k.COLUMN_NAME, c.DATA_TYPE FROM information_schema.KEY_COLUMN_USAGE k "
                "JOIN information_schema.COLUMNS c USING (TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME) "
                "WHERE k.TABLE_SCHEMA = %s AND k.TABLE_NAME = %s AND k.CONSTRAINT_NAME = 'PRIMARY'", (DB, table))
    key = cur.fetchall()
    if len(key) != 1 or "int" not in key[0][1]:
        return [""]
    column = key[0][0]
    cur.execute("SELECT MIN(`{0}`), MAX(`{0}`) FROM `{1}`.`{2}`".format(column, DB, table))
    low, high = cur.fetchone()
    if low is None:
        return []
    return ["WHERE `%s` BETWEEN %d AND %d" % (column, start, start + step - 1) for start in range(low, high + 1, step)]


def measure_floor(server, connections=2, scratch="bench_floor"):
    """Seconds for ``server`` to copy every table but directus_users of DB into an empty schema by itself.

    Biggest tables first, in id-range chunks that ``connections`` connections take from one queue and
    commit one by one (as the module's writers do). The scratch tables have no foreign keys (``CREATE
    TABLE ... LIKE``), so this is less work than any real promotion does.
    """
    conn = server.root_connect()
    work = queue.Queue()
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS `%s`" % scratch)
        cur.execute("CREATE DATABASE `%s`" % scratch)
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                    "AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME <> 'directus_users' "
                    "ORDER BY DATA_LENGTH + INDEX_LENGTH DESC", (DB,))
        for (table,) in cur.fetchall():
            cur.execute("CREATE TABLE `%s`.`%s` LIKE `%s`.`%s`" % (scratch, table, DB, table))
            for where in copy_chunks(cur, table):
                work.put("INSERT INTO `%s`.`%s` SELECT * FROM `%s`.`%s` %s" % (scratch, table, DB, table, where))

    def writer():
        own = server.root_connect()
        with own.cursor() as cur:
            cur.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
            while True:
                try:
                    statement = work.get_nowait()
                except queue.Empty:
                    break
                cur.execute(statement)
                own.commit()
        own.close()

    started = time.monotonic()
    writers = [threading.Thread(target=writer) for _i in range(connections)]
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    seconds = time.monotonic() - started
    with conn.cursor() as cur:
        cur.execute("DROP DATABASE `%s`" % scratch)
    conn.close()
    return seconds


def module_args(sb, keep_backups):
    def conn(server):
        return dict(host=server.host, port=server.port, user=server.user, password=server.password, database=DB)
    return dict(source=conn(sb.staging), target=conn(sb.prod), keep_backups=keep_backups)


def cell(value):
    """A table cell: '-' for a result key the module does not return, lists comma-separated."""
    if value is None:
        return "-"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def recycled_cell(recycled):
    """``table (-deleted/+inserted of rows)`` per table the promotion built from a backup."""
    if recycled is None:
        return "-"
    return ", ".join("%s (-%d/+%d of %d)" % (r["table"], r["deleted"], r["inserted"], r["rows"]) for r in recycled) or "none"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000, help="content rows on staging (default 1,000,000)")
    ap.add_argument("--prod-rows", type=int, default=None, help="content rows on prod (default rows * 0.9)")
    ap.add_argument("--repeats", type=int, default=3, help="edit-and-promote rounds after the re-run (default 3)")
    ap.add_argument("--keep-backups", type=int, default=2,
                    help="keep_backups for every module promotion (default 2)")
    ap.add_argument("--json", help="also write the results to this JSON file")
    opts = ap.parse_args()
    prod_rows = opts.prod_rows if opts.prod_rows is not None else int(opts.rows * 0.9)
    results = {"rows": opts.rows, "prod_rows": prod_rows, "keep_backups": opts.keep_backups, "repeats": []}
    with Sandbox() as sb, tempfile.TemporaryDirectory() as tmp:
        t = time.monotonic()
        conn = sb.staging.root_connect()
        fx.build_directus_db(conn, DB, env="staging", seed=1, content_rows=opts.rows)
        with conn.cursor() as cur:
            cur.execute("SELECT ROUND(SUM(DATA_LENGTH + INDEX_LENGTH) / 1048576), SUM(TABLE_ROWS) "
                        "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (DB,))
            size_mb, approx_rows = cur.fetchone()
        conn.close()
        results["staging_size_mb"] = int(size_mb)
        print("staging built: %s rows (~%s MB) in %.1f s" % (opts.rows, size_mb, time.monotonic() - t), flush=True)

        build_prod(sb, prod_rows)
        prober = Prober(sb.prod)
        prober.start()
        results["pipeline_s"] = run_pipeline(sb, tmp)
        results["pipeline_probe"] = prober.stop()
        print("pipeline: %.1f s, prober %s" % (results["pipeline_s"], results["pipeline_probe"]), flush=True)
        results["floor_s"] = measure_floor(sb.prod)
        print("floor (the target copying every row by itself, 2 connections): %.1f s" % results["floor_s"], flush=True)

        build_prod(sb, prod_rows)
        prober = Prober(sb.prod)
        prober.start()
        t = time.monotonic()
        res = execute_module("directus_db_replicate", module_args(sb, opts.keep_backups), timeout=3600)
        results["module_s"] = time.monotonic() - t
        results["module_probe"] = prober.stop()
        if res.get("failed") or not res.get("changed"):
            raise SystemExit("module run failed: %s" % res.get("msg"))
        results["module_timings"] = res["timings"]
        print("module: %.1f s, prober %s, timings %s" % (results["module_s"], results["module_probe"], res["timings"]),
              flush=True)

        t = time.monotonic()
        res = execute_module("directus_db_replicate", module_args(sb, opts.keep_backups), timeout=3600)
        results["rerun_s"] = time.monotonic() - t
        if res.get("failed") or res.get("changed"):
            raise SystemExit("re-run not a no-op: %s" % (res.get("msg") or res.get("changed_tables")))
        results["rerun_timings"] = res["timings"]

        # Prod is now a promoted copy of staging: the steady state of a real deployment, where each
        # promotion carries one editor session's worth of changes.
        conn = sb.staging.root_connect()
        for round_no in range(1, opts.repeats + 1):
            edit = fx.staging_edit(conn, DB, seed=round_no + 100)
            # an editor's session ends well before anyone promotes it; promoting within the same second
            # makes the module wait for the next one (its checksum-reuse mark needs a past second)
            time.sleep(1.0)
            prober = Prober(sb.prod)
            prober.start()
            t = time.monotonic()
            res = execute_module("directus_db_replicate", module_args(sb, opts.keep_backups), timeout=3600)
            seconds = time.monotonic() - t
            probe = prober.stop()
            if res.get("failed") or not res.get("changed"):
                raise SystemExit("repeat promotion %d failed or changed nothing: %s"
                                 % (round_no, res.get("msg") or res.get("changed_tables")))
            results["repeats"].append({
                "round": round_no, "seconds": seconds, "ratio": seconds / results["pipeline_s"],
                "timings": res["timings"], "recycled": res.get("recycled"), "changed_tables": res["changed_tables"],
                "probe": probe, "edit": edit})
            print("repeat %d: %.1f s, prober %s, timings %s" % (round_no, seconds, probe, res["timings"]), flush=True)
        conn.close()

    results["ratio_full"] = results["module_s"] / results["pipeline_s"]
    results["ratio_rerun"] = results["rerun_s"] / results["module_s"]
    print()
    print("| measurement | seconds | prober errors / probes |")
    print("|---|---|---|")
    print("| mariadb-dump --single-transaction \\| mariadb | %.1f | %d / %d |" % (
        results["pipeline_s"], results["pipeline_probe"]["errors"], results["pipeline_probe"]["probes"]))
    print("| directus_db_replicate, full promotion | %.1f | %d / %d |" % (
        results["module_s"], results["module_probe"]["errors"], results["module_probe"]["probes"]))
    print("| directus_db_replicate, no-change re-run | %.2f | - |" % results["rerun_s"])
    print("| floor: the target server copying every row by itself (2 connections) | %.1f | - |" % results["floor_s"])
    print()
    results["ratio_floor"] = results["floor_s"] / results["pipeline_s"]
    print("full promotion / pipeline = %.2f (target <= 0.5)" % results["ratio_full"])
    print("floor / pipeline = %.2f (a promotion that writes every row cannot go below this here)" % results["ratio_floor"])
    print("no-change re-run / full promotion = %.3f (target <= 0.05)" % results["ratio_rerun"])
    if results["repeats"]:
        print()
        print("| promotion | seconds | / pipeline | changed tables | recycled | prober errors |")
        print("|---|---|---|---|---|---|")
        for rnd in results["repeats"]:
            print("| repeat %d | %.1f | %.2f | %s | %s | %d / %d |" % (
                rnd["round"], rnd["seconds"], rnd["ratio"], cell(rnd["changed_tables"]), recycled_cell(rnd["recycled"]),
                rnd["probe"]["errors"], rnd["probe"]["probes"]))
        results["ratio_repeat_last"] = results["repeats"][-1]["ratio"]
        print()
        print("repeat promotion (last round) / pipeline = %.2f (target <= 0.5)" % results["ratio_repeat_last"])
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
