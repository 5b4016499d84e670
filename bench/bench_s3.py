"""Benchmark s3_mirror against `aws s3 sync`, `s5cmd sync` and `rclone sync --checksum`.

Same machine, same run, same local S3 servers (moto's server and `rclone serve s3`):
N objects of MIN..MAX KB (default 10,000 of 1-64 KB) in a source bucket, each tool
syncs into its own empty target bucket (first run), then twice again with nothing
changed (re-run, 2nd re-run: rclone serve s3 computes the MD5 of a new object the first
time it is listed, so the first re-run also waits for that). Every target is checked
to equal the source afterwards, and an extra, untimed re-run of each tool through a recording proxy counts its write requests.
It also measures the peak extra RSS of planning a synthetic 1,000,000-object
listing (generator-fed, no server) in a fresh interpreter.

Latency mode (``--latency 20,50,100``, milliseconds): the local servers answer in well
under a millisecond, S3 in tens of milliseconds, and then the wall time is set by how
many requests a tool keeps in flight. Every request of every tool then goes through a
pass-through (tests/sandbox/delay_proxy.py) that holds it for that long before
forwarding it; the tools are otherwise unchanged (s3_mirror at its defaults unless
``--workers``). ``--large 5x200`` adds a case of a few objects above the multipart
threshold (count x MB). ``--slowdown 0.1`` adds, at ``--fault-latency``, a first run of
``--fault-tools`` with that fraction of requests answered ``503 SlowDown``. Each timed
run's peak RSS is taken with /usr/bin/time when it is there. ``--pin`` runs the S3 server
and the proxy on the last CPU and the tools on the others: against S3 a tool's CPU is
its own, here it would otherwise take turns with the server on the same cores.

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
TRASH_PREFIX = "_directus_promote_trash/"  # s3_mirror's default trash_prefix, in the target bucket


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


def tool_command(tool, endpoint, src, dst, workers=None):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION=REGION,
               AWS_REGION=REGION, AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    stdin = None
    if tool == "s3_mirror":
        args = dict(source_bucket=src, target_bucket=dst, endpoint_url=endpoint, access_key=ACCESS_KEY,
                    secret_key=SECRET_KEY, region=REGION, force_delete=True,
                    _ansible_check_mode=False, _ansible_diff=False)
        if workers:
            args["workers"] = workers
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


TIME = "/usr/bin/time"
PEAK_RSS = {}  # tool: highest peak RSS (KB) of its timed runs
TOOL_CPUS = None  # --pin: the CPUs the tools run on (the server, the proxy and this script have the others)


def pin_cpus():
    """Give the S3 server (and the delay proxy in this process) the last CPU, the tools all the others.

    Against S3 a tool's CPU is its own and the server's is Amazon's; on one machine they would take turns on the
    same cores, and a tool that spends more CPU would slow the server down for itself."""
    global TOOL_CPUS  # pylint: disable=global-statement
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("--pin needs at least two CPUs")
    TOOL_CPUS = set(cpus[:-1])
    os.sched_setaffinity(0, {cpus[-1]})  # inherited by the server processes started after this


def tool_cpus():
    if TOOL_CPUS:
        os.sched_setaffinity(0, TOOL_CPUS)


def run_tool(tool, endpoint, src, dst, workers=None):
    cmd, env, stdin = tool_command(tool, endpoint, src, dst, workers)
    rss_file = None
    if os.path.exists(TIME):
        # ru_maxrss of a child forked from this (bigger) process would start from this process's size
        rss_file = tempfile.NamedTemporaryFile(prefix="bench-rss-", delete=False)  # noqa: SIM115
        rss_file.close()
        cmd = [TIME, "-f", "%M", "-o", rss_file.name] + cmd
    # A first run leaves 350-480 MB of the server's writes in the page cache, and the kernel writes them
    # back over the next 30 s, on the same two cores: flush them first, so that no timed run pays for the
    # writes of the run before it (a faster first run left more of them to its own re-run).
    os.sync()
    start = time.monotonic()
    proc = subprocess.run(cmd, input=stdin, env=env, capture_output=True, text=True, timeout=3600, check=False,
                          preexec_fn=tool_cpus if TOOL_CPUS else None)  # noqa: PLW1509 - sets the CPU affinity only
    elapsed = time.monotonic() - start
    if rss_file:
        try:
            PEAK_RSS[tool] = max(PEAK_RSS.get(tool, 0), int(Path(rss_file.name).read_text().split()[-1]))
        except (ValueError, IndexError):
            pass
        os.unlink(rss_file.name)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%s): %s %s" % (tool, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
    if tool.startswith("s3_mirror"):
        result = json.loads(proc.stdout)
        if result.get("failed"):
            raise RuntimeError("s3_mirror failed: %s" % result.get("msg"))
    return elapsed


def count_writes(tool, endpoint, src, dst, workers=None):
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
    parser.add_argument("--workers", type=int, default=None, help="s3_mirror workers (default: the module's default; "
                        "the other tools always run with their defaults)")
    parser.add_argument("--latency", default="", help="comma list of delays in ms added to every request (rclone server)")
    parser.add_argument("--rounds-others", type=int, default=None,
                        help="rounds of aws and rclone in latency mode (they take minutes per run at 100 ms)")
    parser.add_argument("--large", default="", help="COUNTxMB: also a case of a few large objects, e.g. 5x200")
    parser.add_argument("--rounds-large", type=int, default=None,
                        help="rounds of the large case (default --rounds): a server-side copy of 200 MB varies from round "
                        "to round with the disk, more rounds steady the median")
    parser.add_argument("--slowdown", type=float, default=0.0, help="fault mode: fraction of requests answered 503 SlowDown")
    parser.add_argument("--fault-latency", type=int, default=50, help="ms of delay in the fault mode")
    parser.add_argument("--fault-tools", default="s3_mirror,s5cmd")
    parser.add_argument("--memory-objects", type=int, default=1000000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-sync", action="store_true")
    parser.add_argument("--pin", action="store_true", help="run the S3 server and the delay proxy on the last CPU and "
                        "the tools on the others, so that a tool's CPU does not take the server's (as against S3)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.memory_child:
        memory_child(opts.memory_child, opts.memory_objects)
        return

    results = {"runs": [], "sync": [], "memory": [], "faults": [], "pinned": None}
    if opts.pin:
        pin_cpus()
        results["pinned"] = dict(tools=sorted(TOOL_CPUS), server_and_proxy=sorted(os.sched_getaffinity(0)))
        print("[pin] tools on CPU %s, S3 server and delay proxy on CPU %s" % (
            ",".join(map(str, sorted(TOOL_CPUS))), ",".join(map(str, sorted(os.sched_getaffinity(0))))), flush=True)
    tools = [t for t in opts.tools.split(",") if t]
    if opts.latency and not opts.skip_sync:
        latency_mode(opts, tools, results)
    elif not opts.skip_sync:
        for tool in tools:
            if not tool.startswith("s3_mirror"):
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
                            same = verify_target(s3, dst, expected)
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
    results["peak_rss_kb"] = dict(PEAK_RSS)
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


def verify_target(s3, dst, expected):
    """Whether the target holds every source object (keys and sizes), and nothing else but s3_mirror's trash.

    s3_mirror journals what it adds to the target in the target's trash folder (its default trash location), so
    that a rollback can remove it again; that manifest is not part of the mirrored content."""
    got = {key: value for key, value in listing(s3, dst).items() if not key.startswith(TRASH_PREFIX)}
    return {k: v[0] for k, v in got.items()} == {k: v[0] for k, v in expected.items()}


def empty_bucket(s3, bucket):
    keys = list(listing(s3, bucket))
    for start in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})


def populate_large(s3, bucket, count, megabytes):
    block = hashlib.sha256(b"large").digest() * (1024 * 1024 // 32)
    for i in range(count):
        body = (block * megabytes)[:megabytes * 1024 * 1024 - i]  # sizes differ a little
        s3.put_object(Bucket=bucket, Key="large/%02d.bin" % i, Body=body, ContentType="application/octet-stream")


def latency_mode(opts, tools, results):
    """Every tool through a DelayProxy in front of rclone serve s3, at each latency, small (and large) objects."""
    from sandbox.delay_proxy import DelayProxy

    latencies = [int(ms) for ms in opts.latency.split(",") if ms]
    for tool in tools:
        if not tool.startswith("s3_mirror"):
            find_tool(tool)
    cases = [("small", "bench-src")]
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as workdir:
        server = Server("rclone", workdir)
        try:
            s3 = client(server.endpoint)
            s3.create_bucket(Bucket="bench-src")
            start = time.monotonic()
            total = populate(s3, "bench-src", opts.objects, opts.min_kb, opts.max_kb, seed=1)
            print("[rclone] %d objects, %.1f MB in the source (%.1f s to upload)" % (
                opts.objects, total / 1e6, time.monotonic() - start), flush=True)
            if opts.large:
                count, megabytes = (int(x) for x in opts.large.lower().split("x"))
                s3.create_bucket(Bucket="bench-large")
                populate_large(s3, "bench-large", count, megabytes)
                cases.append(("large", "bench-large"))
                print("[rclone] %d objects of %d MB in bench-large" % (count, megabytes), flush=True)
            expected = {src: listing(s3, src) for _case, src in cases}
            for ms in latencies:
                with DelayProxy(server.endpoint, delay=ms / 1000.0) as proxy:
                    for case, src in cases:
                        label = "rclone +%d ms %s" % (ms, case)
                        rounds = opts.rounds_large if case == "large" and opts.rounds_large else opts.rounds
                        for round_no in range(rounds):
                            order = tools[round_no % len(tools):] + tools[:round_no % len(tools)]
                            for tool in order:
                                if tool in ("aws", "rclone") and opts.rounds_others is not None \
                                        and round_no >= opts.rounds_others:
                                    continue
                                dst = "dst-%d-%s-%s-r%d" % (ms, case, tool.replace("_", "-"), round_no)
                                s3.create_bucket(Bucket=dst)
                                row = dict(server=label, latency_ms=ms, case=case, tool=tool, round=round_no,
                                           objects=len(expected[src]), rerun_writes=None, rerun_requests=None)
                                try:
                                    row["first"] = round(run_tool(tool, proxy.url, src, dst, opts.workers), 2)
                                    row["target_complete"] = verify_target(s3, dst, expected[src])
                                    row["rerun"] = round(run_tool(tool, proxy.url, src, dst, opts.workers), 2)
                                    row["rerun2"] = round(run_tool(tool, proxy.url, src, dst, opts.workers), 2)
                                except RuntimeError as exc:
                                    print("[%s] round %d %s FAILED: %s" % (label, round_no, tool, str(exc)[:300]), flush=True)
                                    continue
                                finally:
                                    if case == "large":
                                        empty_bucket(s3, dst)  # 1 GB per target otherwise
                                results["runs"].append(row)
                                print("[%s] round %d %-9s first %7.2f s  re-run %6.2f s  2nd re-run %6.2f s  "
                                      "target complete: %s" % (label, round_no, tool, row["first"], row["rerun"],
                                                               row["rerun2"], row["target_complete"]), flush=True)
            if opts.slowdown:
                fault_mode(opts, s3, server, expected["bench-src"], results)
        finally:
            server.stop()


def fault_mode(opts, s3, server, expected, results):
    """First runs with a fraction of requests answered 503 SlowDown, against fault-free first runs in the same round."""
    from sandbox.delay_proxy import DelayProxy

    tools = [t for t in opts.fault_tools.split(",") if t]
    with DelayProxy(server.endpoint, delay=opts.fault_latency / 1000.0) as proxy:
        for round_no in range(opts.rounds):
            for tool in tools[round_no % len(tools):] + tools[:round_no % len(tools)]:
                row = dict(tool=tool, round=round_no, latency_ms=opts.fault_latency, fraction=opts.slowdown)
                for kind, fraction in (("clean", 0.0), ("slowdown", opts.slowdown)):
                    dst = "fault-%s-%s-r%d" % (kind, tool.replace("_", "-"), round_no)
                    s3.create_bucket(Bucket=dst)
                    proxy.set_slowdown(fraction)
                    before = proxy.slowdowns
                    try:
                        row[kind] = round(run_tool(tool, proxy.url, "bench-src", dst, opts.workers), 2)
                    except RuntimeError as exc:
                        row[kind] = None
                        print("[faults] %s %s FAILED: %s" % (tool, kind, str(exc)[:300]), flush=True)
                    finally:
                        proxy.set_slowdown(0.0)
                    row[kind + "_injected"] = proxy.slowdowns - before
                    row[kind + "_complete"] = verify_target(s3, dst, expected)
                results["faults"].append(row)
                print("[faults +%d ms, %.0f%% SlowDown] round %d %-9s fault-free %s s, with SlowDown %s s (%d injected), "
                      "complete: %s" % (opts.fault_latency, 100 * opts.slowdown, round_no, tool, row["clean"], row["slowdown"],
                                        row["slowdown_injected"], row["slowdown_complete"]), flush=True)


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
                print("ratio %s: %s, %s writes on re-run" % (server, ", ".join(
                    "%s %.2fx s5cmd" % (h, ours[f] / base[f]) for f, h in MEASURES), ours["rerun_writes"]))
    if results.get("peak_rss_kb"):
        print("\npeak RSS of a timed run: %s" % ", ".join(
            "%s %.0f MB" % (tool, kb / 1024) for tool, kb in sorted(results["peak_rss_kb"].items())))
    if results.get("faults"):
        print("\n| tool | latency | SlowDown | fault-free first run, median (min-max) s | with SlowDown | ratio | complete |")
        print("|---|---|---|---|---|---|---|")
        for tool in dict.fromkeys(r["tool"] for r in results["faults"]):
            mine = [r for r in results["faults"] if r["tool"] == tool and r["clean"] and r["slowdown"]]
            if not mine:
                continue
            clean = [r["clean"] for r in mine]
            slow = [r["slowdown"] for r in mine]
            print("| %s | %d ms | %.0f %% | %.2f (%.2f-%.2f) | %.2f (%.2f-%.2f) | %.2f | %s |" % (
                tool, mine[0]["latency_ms"], 100 * mine[0]["fraction"], statistics.median(clean), min(clean), max(clean),
                statistics.median(slow), min(slow), max(slow), statistics.median(slow) / statistics.median(clean),
                all(r["slowdown_complete"] and r["clean_complete"] for r in mine)))
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
