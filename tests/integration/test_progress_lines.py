# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live progress (docs/progress.md) in the real ``ansible-playbook``'s output, against the sandbox.

A promotion of a few thousand assets and a few hundred thousand rows prints progress lines while
its asset copy and its database copy run -- while, not after: each line is read from the pipe as
ansible-playbook writes it, long before the task's result -- at most one per
``promote_progress_interval``. A module's result is the same with and without progress.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox import directus_fixture as fx
from sandbox.tcp_rewrite import RewritingProxy

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DB = "directus"
BULK_OBJECTS = 2000
BULK_ROWS = 300_000
#: bytes a second from staging's database: the 300,000 rows (about 70 MB of row literals) take at least 4 s
SOURCE_RATE = 16_000_000
# what the action plugin prints: what the module does, done of total, rate, elapsed, ETA
LINE = re.compile(r"^(?P<module>s3_mirror|directus_db_replicate|cloudfront_invalidate): (?P<phase>[^:(]+?)"
                  r"(?: \((?P<detail>[^)]*)\))?: (?P<done>[\d,]+)/(?P<total>[\d,?]+) (?P<unit>\w+)(?: \(\d+%\))?"
                  r"(?P<rest>.*), (?P<elapsed>\w+) elapsed(?:, ETA (?P<eta>\w+))?$")


def put_bulk_objects(s3, bucket, count, prefix="bulk/"):
    def put(number):
        s3.put_object(Bucket=bucket, Key="%s%05d.bin" % (prefix, number), Body=b"%d" % number * 64)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, range(count)))


def add_bulk_table(server, rows):
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE %s.bulk_rows (id INT PRIMARY KEY, label VARCHAR(64), body VARCHAR(255))" % DB)
            cur.execute("INSERT INTO %s.bulk_rows SELECT seq, CONCAT('row ', seq), REPEAT('x', 200) FROM %s.seq_1_to_%d"
                        % (DB, DB, rows))
            cur.execute("ANALYZE TABLE %s.bulk_rows" % DB)
        conn.commit()
    finally:
        conn.close()


def env_of(sandbox):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    env.update(ANSIBLE_VAULT_PASSWORD_FILE=str(sandbox.inventory_dir / ".vault_pass"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_FORCE_COLOR="0", ANSIBLE_DEPRECATION_WARNINGS="0",
               PATH=str(BIN) + os.pathsep + env.get("PATH", ""))
    return env


def watch(cmd, env):
    """Run ansible-playbook; [(seconds since start, line)] as each line came out of its pipe."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = [(time.monotonic() - started, line.rstrip("\n")) for line in proc.stdout]
    proc.wait(timeout=600)
    return proc.returncode, lines


def by_task(lines):
    """{task name: [(arrival, line)]} of the lines printed under each TASK header (the last run of a name)."""
    tasks, current = {}, None
    for arrival, line in lines:
        if line.startswith(("TASK [", "RUNNING HANDLER [")):
            current = line.split("[", 1)[1].rsplit("]", 1)[0].split(" : ", 1)[-1]
            tasks[current] = []
        elif current is not None:
            tasks[current].append((arrival, line))
    return tasks


def progress_of(task_lines, module, phase):
    return [(arrival, LINE.match(line)) for arrival, line in task_lines
            if LINE.match(line) and LINE.match(line)["module"] == module and LINE.match(line)["phase"] == phase]


def result_arrival(task_lines):
    return next(arrival for arrival, line in task_lines if line.startswith(("ok: [", "changed: [")))


def inventory_with_source_port(sandbox, port, directory):
    """A copy of the sandbox's inventory whose staging database is reached on ``port``."""
    shutil.copytree(sandbox.inventory_dir, directory)
    path = directory / "host_vars" / "staging" / "vars.yml"
    plain = json.loads(path.read_text())   # the sandbox writes its YAML as JSON
    plain["directus_db_port"] = port
    path.write_text(json.dumps(plain))
    return directory / "hosts.yml"


@pytest.fixture(scope="module")
def promotion(sandbox, tmp_path_factory):
    """Staging with BULK_OBJECTS more assets and a BULK_ROWS-row table, promoted with a 1 s interval.

    Staging's database is reached through a link of SOURCE_RATE: the table copy then lasts several intervals
    however fast the machine (on a fast one it took under two and printed one line)."""
    fx.build_environments(sandbox, DB, seed=5, content_rows=200, files=10)
    put_bulk_objects(sandbox.aws.client("s3"), sandbox.buckets["staging"], BULK_OBJECTS)
    add_bulk_table(sandbox.staging, BULK_ROWS)
    link = RewritingProxy(sandbox.staging.host, sandbox.staging.port, rate=SOURCE_RATE)
    inventory = inventory_with_source_port(sandbox, link.port, tmp_path_factory.mktemp("progress") / "inventory")
    cmd = [str(BIN / "ansible-playbook"), "playbooks/promote.yml", "-i", str(inventory),
           "-e", "source=staging", "-e", "target=prod", "-e", "promote_progress_interval=1"]
    try:
        rc, lines = watch(cmd, env_of(sandbox))
    finally:
        link.close()
    if os.environ.get("PROGRESS_DEBUG"):
        Path(os.environ["PROGRESS_DEBUG"]).write_text("\n".join("%6.2f %s" % pair for pair in lines))
    return {"rc": rc, "lines": lines, "tasks": by_task(lines), "out": "\n".join(line for _a, line in lines)}


def test_the_promotion_succeeds(promotion):
    assert promotion["rc"] == 0, promotion["out"][-6000:]


@pytest.mark.parametrize("task, module, phase, total, unit", [
    ("Copy new and changed assets to the target bucket", "s3_mirror", "copying objects", BULK_OBJECTS, "objects"),
    ("Replicate the database onto the target", "directus_db_replicate", "copying tables into the shadow schema",
     None, "rows"),
])
def test_long_phases_print_progress_while_they_run(promotion, task, module, phase, total, unit):
    lines = promotion["tasks"][task]
    shown = progress_of(lines, module, phase)
    assert len(shown) >= 2, "no progress of %s in:\n%s" % (phase, "\n".join(line for _a, line in lines))
    done = [int(m["done"].replace(",", "")) for _a, m in shown]
    totals = {int(m["total"].replace(",", "")) for _a, m in shown}
    assert all(m["unit"] == unit for _a, m in shown)
    assert done == sorted(done) and done[-1] > 0
    if total is not None:   # and the few files that differ between the two environments
        assert len(totals) == 1 and total <= totals.pop() < total + 50
    else:   # InnoDB's estimate of the rows, then the rows really read
        assert all(BULK_ROWS * 0.8 < t < BULK_ROWS * 1.5 for t in totals), totals
    assert any(m["eta"] for _a, m in shown) and any("%s/s" % unit in m["rest"] for _a, m in shown)
    arrivals = [a for a, _m in shown]
    # live: the first line came out at least a second before the task's result ...
    assert result_arrival(lines) - arrivals[0] >= 1.0
    # ... and lines at most once per interval (1 s; the pipe may bunch two a little)
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    assert sum(gaps) >= 0.9 * (len(gaps)) and min(gaps) > 0.3, gaps


def test_short_phases_and_other_tasks_print_no_progress(promotion):
    for task, lines in promotion["tasks"].items():
        if task not in ("Copy new and changed assets to the target bucket", "Replicate the database onto the target",
                        "Plan the asset mirror (both buckets, deletion guards)", "Re-plan the assets after the promotion",
                        "Plan the database promotion (module preflight)", "Re-plan the database after the promotion"):
            assert not [line for _a, line in lines if LINE.match(line)], task


def test_the_result_is_the_same_with_and_without_progress(sandbox, tmp_path):
    """s3_mirror copying BULK_OBJECTS into two new buckets, once printing progress every 1 s, once not."""
    s3 = sandbox.aws.client("s3")
    source = "progress-src-%s" % uuid.uuid4().hex[:8]
    targets = ["progress-a-%s" % uuid.uuid4().hex[:8], "progress-b-%s" % uuid.uuid4().hex[:8]]
    for bucket in [source] + targets:
        s3.create_bucket(Bucket=bucket)
    put_bulk_objects(s3, source, BULK_OBJECTS)
    results = tmp_path / "results"
    playbook = tmp_path / "mirror.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost", "connection": "local", "gather_facts": False,
        "tasks": [{
            "name": "Mirror with progress interval %s" % interval,
            "casper.directus_promote.s3_mirror": sandbox.aws.module_args(
                source_bucket=source, target_bucket=target, mode="copy", progress_interval=interval),
            "register": "mirrored",
        }, {
            "name": "Keep the result %s" % interval,
            "ansible.builtin.copy": {"content": "{{ mirrored | to_json }}", "dest": str(results) + "-%s.json" % interval},
        }]} for interval, target in ((1, targets[0]), (0, targets[1]))]))
    rc, lines = watch([str(BIN / "ansible-playbook"), str(playbook)], env_of(sandbox))
    out = "\n".join(line for _a, line in lines)
    assert rc == 0, out[-4000:]
    tasks = by_task(lines)
    assert len(progress_of(tasks["Mirror with progress interval 1"], "s3_mirror", "copying objects")) >= 1, out
    assert not [line for _a, line in tasks["Mirror with progress interval 0"] if LINE.match(line)]
    with_progress, without = (json.loads(Path(str(results) + "-%s.json" % i).read_text()) for i in (1, 0))
    for result in (with_progress, without):
        result.pop("timings")   # durations
        result.pop("invocation", None)   # (not registered by ansible-core 2.19)
        result.pop("run_id")   # generated per call, and it names each target's trash location
        result.pop("trash")
    assert with_progress == without
    assert with_progress["counts"]["copied"] == BULK_OBJECTS


def test_recycling_and_verification_write_their_progress(sandbox, run_module, tmp_path):
    """directus_db_replicate with a backup to recycle from: the snapshot file, read at the module's pause before the
    table copy (the test-only fault point 'copy') and after the run, holds the finished recycling and
    verification phases with their counts."""
    sb = sandbox
    server_args = {side: dict(host=s.host, port=s.port, user=s.user, password=s.password, database=DB)
                   for side, s in (("source", sb.staging), ("target", sb.prod))}
    fx.build_environments(sb, DB, seed=8, content_rows=1500, files=10)
    args = dict(server_args, keep_backups=2, recycle_min_rows=0)
    for seed in (None, 31):   # the second backup makes the first one a donor of the third promotion
        if seed is not None:
            conn = sb.staging.root_connect()
            fx.staging_edit(conn, DB, seed=seed)
            conn.close()
        assert run_module("directus_db_replicate", args)["changed"] is True
    conn = sb.staging.root_connect()
    fx.staging_edit(conn, DB, seed=32)
    conn.close()
    marker, path = tmp_path / "paused", tmp_path / "progress.json"
    run = {}
    thread = threading.Thread(target=lambda: run.update(result=run_module(
        "directus_db_replicate", dict(args, progress_file=str(path)),
        env={"CASPER_DIRECTUS_PROMOTE_FAULT": "copy:wait:%s" % marker})))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        assert marker.exists(), run
        recycling = json.loads(path.read_text())
    finally:
        marker.unlink(missing_ok=True)
        thread.join(timeout=300)
    result = run["result"]
    assert result["changed"] is True and not result.get("failed"), result.get("msg")
    assert recycling["phase"].startswith("comparing rows with the backup directus__backup_"), recycling
    assert recycling["active"] is False and recycling["unit"] == "rows" and recycling["total"] > 0
    assert 0 < recycling["done"] <= recycling["total"] * 2, recycling
    verified = json.loads(path.read_text())
    assert verified["phase"] == "verifying the shadow tables" and verified["active"] is False, verified
    assert verified["done"] == verified["total"] > 0 and verified["bytes_done"] == verified["bytes_total"] > 0
    assert result["invocation"]["module_args"]["progress_file"] == str(path)   # run without the action plugin


def test_asset_copy_and_prune_write_their_progress(sandbox, run_module, tmp_path):
    """s3_mirror's last snapshot of a copy and of a prune: every object and byte counted, the phase ended."""
    s3 = sandbox.aws.client("s3")
    source, target = ("progress-%s-%s" % (side, uuid.uuid4().hex[:8]) for side in ("src", "dst"))
    for bucket in (source, target):
        s3.create_bucket(Bucket=bucket)
    put_bulk_objects(s3, source, 40)
    put_bulk_objects(s3, target, 25, prefix="stale/")
    args = sandbox.aws.module_args(source_bucket=source, target_bucket=target, max_delete_percent=100)
    path = tmp_path / "progress.json"
    copy = run_module("s3_mirror", dict(args, mode="copy", progress_file=str(path)))
    assert copy["counts"]["copied"] == 40, copy.get("msg")
    copied = json.loads(path.read_text())
    assert (copied["phase"], copied["unit"], copied["active"]) == ("copying objects", "objects", False)
    assert copied["done"] == copied["total"] == 40
    assert copied["bytes_done"] == copied["bytes_total"] == copy["counts"]["bytes_copied"] > 0
    prune = run_module("s3_mirror", dict(args, mode="prune", progress_file=str(path)))
    assert prune["counts"]["deleted"] == 25, prune.get("msg")
    pruned = json.loads(path.read_text())
    assert (pruned["phase"], pruned["active"], pruned["done"], pruned["total"]) == ("deleting objects", False, 25, 25)
