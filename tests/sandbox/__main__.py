"""Drive the sandbox from a shell: ``python -m sandbox up|down|status [--dir DIR]``.

``up`` starts the servers detached and prints the state file's path; ``down``
stops the servers recorded in that file and removes the directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from . import STATE_FILE, Sandbox, _alive


def up(directory):
    directory = Path(directory).resolve()
    if (directory / STATE_FILE).exists():
        down(directory)
    sandbox = Sandbox(base_dir=directory)
    sandbox.start()
    # The servers outlive this process: keep them, forget the at-exit teardown.
    sandbox._stopped = True
    for marked in sandbox._marked_dirs():
        (marked / "owner.pid").unlink(missing_ok=True)
    print(json.dumps(json.loads((directory / STATE_FILE).read_text()), indent=2))


def down(directory):
    directory = Path(directory).resolve()
    state_file = directory / STATE_FILE
    if not state_file.exists():
        print("no sandbox in %s" % directory)
        return
    state = json.loads(state_file.read_text())
    pids = state.get("pids", [])
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.2)
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    if state.get("server_dir"):
        shutil.rmtree(state["server_dir"], ignore_errors=True)
    shutil.rmtree(directory, ignore_errors=True)
    print("sandbox in %s stopped" % directory)


def status(directory):
    state_file = Path(directory).resolve() / STATE_FILE
    if not state_file.exists():
        print("no sandbox")
        return 1
    state = json.loads(state_file.read_text())
    alive = [_alive(pid) for pid in state["pids"]]
    print(json.dumps(dict(state, alive=alive), indent=2))
    return 0 if all(alive) else 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=".sandbox")
    args = parser.parse_args(argv)
    result = {"up": up, "down": down, "status": status}[args.command](args.dir)
    return result or 0


if __name__ == "__main__":
    sys.exit(main())
