# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml: `ansible-builder create` produces a valid build context.

Building the image needs a container engine that is not available here, so this runs the `create`
step for real and checks what the build would install, including ansible-builder's own introspection
script run against the generated context.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def _tool(name):
    candidate = Path(sys.executable).with_name(name)
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, "%s is not installed (tests/requirements.txt pins it)" % name
    return found


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee-context")
    proc = subprocess.run([_tool("ansible-builder"), "create", "-f", str(REPO / "execution-environment.yml"),
                           "-c", str(out), "--output-filename", "Containerfile", "-v", "3"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return out


def _definition():
    return yaml.safe_load((REPO / "execution-environment.yml").read_text())


def test_definition_is_builder_v3_with_repo_requirement_files():
    definition = _definition()
    assert definition["version"] == 3
    deps = definition["dependencies"]
    assert deps["python"] == "requirements.txt" and deps["system"] == "bindep.txt"
    assert (REPO / "requirements.txt").is_file() and (REPO / "bindep.txt").is_file()


def test_context_carries_the_repo_requirement_files_verbatim(context):
    assert (context / "Containerfile").is_file()
    assert (context / "_build" / "requirements.txt").read_text() == (REPO / "requirements.txt").read_text()
    assert (context / "_build" / "bindep.txt").read_text() == (REPO / "bindep.txt").read_text()
    for script in ("assemble", "introspect.py", "install-from-bindep", "check_ansible", "entrypoint"):
        assert (context / "_build" / "scripts" / script).is_file(), script


def test_containerfile_installs_python_ansible_core_runner_and_requirements(context):
    text = (context / "Containerfile").read_text()
    definition = _definition()
    python_path = definition["dependencies"]["python_interpreter"]["python_path"]
    assert 'ARG PYCMD="%s"' % python_path in text
    assert 'ARG EE_BASE_IMAGE="%s"' % definition["images"]["base_image"]["name"] in text
    refs = next(line for line in text.splitlines() if line.startswith("ARG ANSIBLE_INSTALL_REFS="))
    assert "ansible-core" in refs and "ansible-runner" in refs
    assert "--user-pip=requirements.txt" in text and "--user-bindep=bindep.txt" in text
    assert "RUN /output/scripts/check_ansible $PYCMD" in text
    # ansible-core 2.19 (what the collection is tested with) needs Python >= 3.11.
    version = tuple(int(p) for p in python_path.rsplit("python", 1)[1].split("."))
    assert version >= (3, 11)


def test_builder_introspection_of_the_context_installs_the_module_dependencies(context, tmp_path):
    """Run ansible-builder's own introspect.py (what the builder stage runs) on the generated context."""
    build = context / "_build"
    pip_out, bindep_out = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    proc = subprocess.run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect",
                           "--user-pip=requirements.txt", "--user-bindep=bindep.txt",
                           "--write-pip=%s" % pip_out, "--write-bindep=%s" % bindep_out],
                          cwd=build, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pip_lines = [line.split("#")[0].strip().lower() for line in pip_out.read_text().splitlines()]
    names = {line.split(">")[0].split("=")[0].split("<")[0].strip() for line in pip_lines if line}
    assert {"boto3", "botocore", "pymysql"} <= names


def test_bindep_runtime_set_excludes_test_only_packages():
    """The image installs bindep's default profile: no MariaDB server, no Node.js (those are for tests)."""
    from bindep.depends import Depends

    depends = Depends((REPO / "bindep.txt").read_text())
    test_only = {"mariadb-server", "nodejs", "npm"}
    for platform in (["platform:rpm", "platform:centos", "platform:redhat"], ["platform:dpkg", "platform:debian"]):
        runtime = {rule[0] for rule in depends.active_rules(["default"] + platform)}
        assert not runtime & test_only, (platform, runtime)
    assert test_only <= {rule[0] for rule in depends.active_rules(["default", "test", "platform:dpkg"])}


def test_pinned_core_and_runner_are_the_tested_ones_and_satisfy_the_collection():
    from packaging.specifiers import SpecifierSet

    deps = _definition()["dependencies"]
    core = deps["ansible_core"]["package_pip"]
    runner = deps["ansible_runner"]["package_pip"]
    tested = (REPO / "tests" / "requirements.txt").read_text().split()
    assert core in tested and runner in tested, (core, runner)
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    assert SpecifierSet(runtime["requires_ansible"]).contains(core.split("==")[1])
