"""Running the collection's modules as Ansible does (a fresh interpreter, arguments on stdin), for tests and benches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"
MODULE_PACKAGE = "ansible_collections.casper.directus_promote.plugins.modules"


def module_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = os.pathsep.join([str(COLLECTIONS)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.update(extra or {})
    return env


def execute_module(name, args, check=False, diff=False, env=None, timeout=600):
    """Run plugins/modules/<name>.py in a fresh interpreter with its arguments on stdin.

    This is what AnsiballZ does on the managed host, minus the zip: the module
    parses ANSIBLE_MODULE_ARGS through its argument spec, honours check and
    diff mode, and prints one JSON result.
    """
    payload = dict(args)
    payload.update({"_ansible_check_mode": check, "_ansible_diff": diff, "_ansible_verbosity": 0})
    proc = subprocess.run(
        [sys.executable, "-m", "%s.%s" % (MODULE_PACKAGE, name)],
        input=json.dumps({"ANSIBLE_MODULE_ARGS": payload}), capture_output=True, text=True,
        env=module_env(env), timeout=timeout, check=False)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON (rc=%s)\nstdout: %s\nstderr: %s"
                             % (name, proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:])) from None
    result["_rc"] = proc.returncode
    result["_stdout"] = proc.stdout
    result["_stderr"] = proc.stderr
    return result
