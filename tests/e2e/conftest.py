# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the real-Directus end-to-end tests.

The Directus install (npm, ~470 MB) lives in a cache outside the repository and is reused between runs
(see sandbox/directus_app.py). Without Node >= 18 / npm the tests are skipped with the reason printed;
any other failure (npm install, bootstrap, start) fails the tests loudly.
"""

from __future__ import annotations

import contextlib
import sys
import time

import pytest

from sandbox import directus_app


def _say(config, message):
    """Print to the terminal even while pytest captures output."""
    capture = config.pluginmanager.getplugin("capturemanager")
    reporter = config.pluginmanager.getplugin("terminalreporter")
    ctx = capture.global_and_fixture_disabled() if capture else contextlib.nullcontext()
    with ctx:
        if reporter:
            reporter.write_line("[e2e] %s" % message)
        else:
            print("[e2e] %s" % message, file=sys.stderr)


@pytest.fixture(scope="session")
def directus_cli(request):
    """Path of Directus' cli.js (installing it into the cache on first use), or skip with the reason."""
    problem = directus_app.runtime_problem()
    if problem:
        _say(request.config, "SKIPPING the real Directus end-to-end tests: %s" % problem)
        pytest.skip("real Directus end-to-end tests need Node >= 18 and npm: %s" % problem)
    if not directus_app.is_installed():
        _say(request.config, "Directus %s is not in the cache %s yet: installing it with npm (one time)"
             % (directus_app.DIRECTUS_VERSION, directus_app.install_dir()))
    started = time.monotonic()
    cli = directus_app.ensure_installed(log=lambda msg: _say(request.config, msg))
    if time.monotonic() - started > 5:
        _say(request.config, "Directus install took %.0f s" % (time.monotonic() - started))
    return cli


@pytest.fixture(scope="session")
def say(request):
    return lambda message: _say(request.config, message)
