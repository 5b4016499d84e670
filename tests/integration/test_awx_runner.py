# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/promote.yml run the way AWX / Automation Controller runs a job template (docs/awx.md).

What AWX does, reproduced here against the sandbox:

* the project is this repository (ansible-runner's project_dir; its ansible.cfg applies);
* the inventory is "sourced from a project": AWX imports it with ``ansible-inventory --list --export``
  and, at job time, writes it as an executable script ``inventory/hosts`` that prints the JSON;
* the survey answers (docs/awx/survey_promote.json) and the template's extra vars become extravars;
* the custom credential type (docs/awx/credential_type_directus_promotion.yml) is rendered like AWX
  renders injectors, into environment variables; the inventory's group vars
  (docs/awx/inventory_group_vars.yml, copied verbatim) map them onto each environment;
* the vault credential answers the ``Vault password:`` prompt of ``--ask-vault-pass``;
* AWX's job environment (ANSIBLE_COLLECTIONS_PATHS / ANSIBLE_ROLES_PATH with /runner/requirements_*
  first, suppressed env files) is set as AWX's RunJob.build_env does.

Directus itself is a recording stub here (the real one runs in tests/e2e).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jinja2.meta
import jinja2.sandbox
import pytest
import yaml

from directus_stub import DirectusStub
from sandbox import directus_fixture as fx
from sandbox.inventory import environment_vars, vault_encrypt

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
AWX_DOCS = REPO / "docs" / "awx"
DB = "directus"
SEED = 11
FILES = 8
VAULT_PROMPT = r"Vault password:\s*?$"  # AWX RunJob.get_password_prompts
# a table big enough that copying it lasts a few seconds: the job shows its progress (docs/progress.md)
BULK_ROWS = 800_000  # long enough for several 1 s progress lines on a quiet machine (200,000 took ~2 s)
PROGRESS = re.compile(r"^directus_db_replicate: copying tables into the shadow schema(?: \([^)]*\))?: "
                      r"[\d,]+/[\d,]+ rows \(\d+%\), .*\d+s elapsed")
SECRET_SETTINGS = ("directus_aws_access_key", "directus_aws_secret_key", "directus_aws_session_token",
                   "directus_admin_token")


def credential_type():
    return yaml.safe_load((AWX_DOCS / "credential_type_directus_promotion.yml").read_text())


def survey_defaults():
    spec = json.loads((AWX_DOCS / "survey_promote.json").read_text())["spec"]
    return {q["variable"]: q["default"] for q in spec}


def render_injectors(definition, inputs):
    """Render `injectors.env` as AWX does (sandboxed Jinja; a field that was not filled in renders empty)."""
    declared = {f["id"] for f in definition["inputs"]["fields"]}
    unknown = set(inputs) - declared
    assert not unknown, "inputs not declared by the credential type: %s" % unknown
    missing = [f for f in definition["inputs"].get("required", []) if not inputs.get(f)]
    assert not missing, "AWX would refuse this credential: required %s" % missing
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.Undefined)
    namespace = {field: inputs.get(field, "") for field in declared}
    return {key: env.from_string(value).render(**namespace) for key, value in definition["injectors"]["env"].items()}


def snapshot(sandbox):
    conn = sandbox.prod.connect()
    try:
        checksums = fx.table_checksums(conn, DB)
    finally:
        conn.close()
    return {"tables": checksums, "bucket": fx.bucket_listing(sandbox.aws.client("s3"), sandbox.buckets["prod"])}


def project_inventory(sandbox, directory, stubs):
    """The inventory as kept in the project for AWX: no AWS keys or Directus tokens (the credential
    brings them), DB passwords in a vault file, docs/awx/inventory_group_vars.yml as group vars."""
    password = (sandbox.inventory_dir / ".vault_pass").read_text().strip()
    shutil.copy(sandbox.inventory_dir / "hosts.yml", directory / "hosts.yml")
    for env in ("staging", "prod"):
        plain, secret = environment_vars(sandbox, env)
        plain = {k: v for k, v in plain.items() if k not in SECRET_SETTINGS}
        plain["directus_url"] = stubs[env].url
        host_vars = directory / "host_vars" / env
        host_vars.mkdir(parents=True)
        (host_vars / "vars.yml").write_text(json.dumps(plain, indent=2))
        # Inline-encrypted values (ansible-vault encrypt_string): AWX's inventory import keeps them
        # encrypted; a whole-file vault would be decrypted at import and stored in AWX in clear text.
        cipher = vault_encrypt(secret["vault_directus_db_password"], password)
        (host_vars / "vault.yml").write_text("vault_directus_db_password: !vault |\n"
                                             + "".join("  %s\n" % line for line in cipher.splitlines()))
    group_vars = directory / "group_vars" / "directus_environments"
    group_vars.mkdir(parents=True)
    shutil.copy(AWX_DOCS / "inventory_group_vars.yml", group_vars / "awx.yml")
    return password


def awx_inventory_script(inventory_dir, private_data_dir, env):
    """AWX's inventory import (ansible-inventory --list --export, no vault password: the values stay
    encrypted) and the job-time script (inventory/hosts) that prints the stored inventory."""
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(inventory_dir),
                           "--list", "--export"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    script = private_data_dir / "inventory" / "hosts"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#! /usr/bin/env python3\n# -*- coding: utf-8 -*-\nprint(%r)\n" % json.dumps(data))
    script.chmod(0o700)
    return script


def awx_job_env(injected):
    """The job environment AWX builds (RunJob.build_env), plus the credential's injected variables."""
    env = {
        "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "ANSIBLE_FORCE_COLOR": "False",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_COLLECTIONS_PATHS": "/runner/requirements_collections:~/.ansible/collections:/usr/share/ansible/collections",
        # ansible.cfg's roles_path is read by AWX; its collections_path is not (AWX looks for collections_paths).
        "ANSIBLE_ROLES_PATH": "/runner/requirements_roles:./roles:~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles",
    }
    env.update(injected)
    return env


def launch(job, extra_vars=None, check=False):
    """One job launch through ansible-runner (what AWX's receptor worker runs)."""
    import ansible_runner

    pdd = job["tmp"] / ("job-%d" % job["launches"])
    job["launches"] += 1
    (pdd / "inventory").mkdir(parents=True)
    script = awx_inventory_script(job["inventory_dir"], pdd, job["clean_env"])
    extravars = dict(survey_defaults())
    extravars.update({"promote_state_dir": str(job["tmp"] / "state"), "promote_verify_health_delay": 1,
                      "promote_s3_max_delete_percent": 100, "promote_progress_interval": 1})
    extravars.update(extra_vars or {})
    cmdline = "--ask-vault-pass" + (" --check --diff" if check else "")
    result = ansible_runner.run(
        private_data_dir=str(pdd), project_dir=str(REPO), playbook="playbooks/promote.yml",
        inventory=str(script), extravars=extravars, envvars=job["env"], cmdline=cmdline,
        passwords={VAULT_PROMPT: job["vault_password"]}, suppress_env_files=True, quiet=True, timeout=900)
    events = list(result.events)
    stdout = result.stdout.read()
    return {"status": result.status, "rc": result.rc, "stats": result.stats or {}, "events": events,
            "stdout": stdout, "pdd": pdd, "inventory": script.read_text()}


@pytest.fixture(scope="module")
def awx(sandbox, tmp_path_factory, monkeypatch_module):
    tmp = tmp_path_factory.mktemp("awx")
    for name in [k for k in os.environ if k.startswith(("AWS_", "ANSIBLE_"))]:
        monkeypatch_module.delenv(name)  # only what the job template injects may reach the job
    fx.build_environments(sandbox, DB, seed=SEED, content_rows=150, files=FILES)
    conn = sandbox.staging.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE %s.bulk_rows (id INT PRIMARY KEY, label VARCHAR(64), body VARCHAR(255))" % DB)
            cur.execute("INSERT INTO %s.bulk_rows SELECT seq, CONCAT('row ', seq), REPEAT('x', 200) FROM %s.seq_1_to_%d"
                        % (DB, DB, BULK_ROWS))
        conn.commit()
    finally:
        conn.close()

    # The credential's inputs: each side its own (emulated) AWS account keys and Directus token.
    inputs = {
        "source_aws_access_key_id": "AKIASTAGINGAWX0001", "source_aws_secret_access_key": "awx-staging-secret-7c1f",
        "source_directus_admin_token": "awx-staging-directus-token-51ab",
        "target_aws_access_key_id": "AKIAPRODAWX00000002", "target_aws_secret_access_key": "awx-prod-secret-93de",
        "target_directus_admin_token": "awx-prod-directus-token-2fd0",
    }
    stubs = {"staging": DirectusStub(inputs["source_directus_admin_token"]).start(),
             "prod": DirectusStub(inputs["target_directus_admin_token"]).start()}
    inventory_dir = tmp / "project-inventory"
    inventory_dir.mkdir()
    try:
        vault_password = project_inventory(sandbox, inventory_dir, stubs)
        injected = render_injectors(credential_type(), inputs)
        job = {"tmp": tmp, "launches": 0, "inventory_dir": inventory_dir, "vault_password": vault_password,
               "env": awx_job_env(injected), "clean_env": dict(os.environ), "stubs": stubs, "inputs": inputs,
               "secrets": [vault_password, sandbox.staging.password, sandbox.prod.password]
               + [v for k, v in inputs.items() if "secret" in k or "token" in k]}
        job["before"] = snapshot(sandbox)
        job["check"] = launch(job, check=True)
        job["after_check"] = snapshot(sandbox)
        job["first"] = launch(job)
        job["after_first"] = snapshot(sandbox)
        job["second"] = launch(job)
        job["after_second"] = snapshot(sandbox)
        yield job
    finally:
        for stub in stubs.values():
            stub.stop()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _explain(run):
    return "status=%s rc=%s\n%s" % (run["status"], run["rc"], run["stdout"][-8000:])


def test_credential_type_definition_is_valid_for_awx():
    definition = credential_type()
    assert definition["kind"] in ("cloud", "net")  # the kinds AWX allows for custom types
    fields = definition["inputs"]["fields"]
    ids = [f["id"] for f in fields]
    assert len(ids) == len(set(ids))
    for field in fields:
        assert field["type"] in ("string", "boolean") and field["label"]
        if any(word in field["id"] for word in ("secret", "token")):
            assert field.get("secret") is True, field["id"]
    # every field is injected, every injection uses declared fields only
    env = jinja2.sandbox.ImmutableSandboxedEnvironment()
    used = set()
    for value in definition["injectors"]["env"].values():
        used |= jinja2.meta.find_undeclared_variables(env.parse(value))
    assert used == set(ids)


def test_project_config_accepts_awx_inventory_script(tmp_path):
    """AWX hands ansible-playbook the inventory as an executable script printing JSON (inventory/hosts)."""
    script = tmp_path / "hosts"
    script.write_text("#! /usr/bin/env python3\nprint(%r)\n" % json.dumps(
        {"directus_environments": {"hosts": ["staging", "prod"]}, "_meta": {"hostvars": {"staging": {}, "prod": {}}}}))
    script.chmod(0o700)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(script), "--graph"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "@directus_environments" in proc.stdout, (
        "the repository's ansible.cfg cannot read AWX's inventory script: [inventory] enable_plugins must "
        "include 'script'\n" + proc.stdout + proc.stderr)


def test_job_runs_successfully_like_awx(awx):
    for name in ("check", "first", "second"):
        run = awx[name]
        assert run["status"] == "successful" and run["rc"] == 0, "%s launch: %s" % (name, _explain(run))


def test_check_job_changes_nothing_first_job_promotes(sandbox, awx):
    assert awx["after_check"] == awx["before"], "the check-mode job changed production"
    first = awx["first"]
    assert first["stats"].get("changed"), _explain(first)
    assert awx["after_first"] != awx["before"]
    served = {k: v for k, v in awx["after_first"]["bucket"].items() if not k.startswith("_directus_promote_trash/")}
    assert served == fx.bucket_listing(sandbox.aws.client("s3"), sandbox.buckets["staging"])
    conn = sandbox.staging.connect()
    try:
        staging = fx.table_checksums(conn, DB, tables=["directus_collections", "directus_fields", "directus_relations"])
    finally:
        conn.close()
    assert {t: awx["after_first"]["tables"][t] for t in staging} == staging


def test_relaunch_changes_nothing(awx):
    second = awx["second"]
    assert second["status"] == "successful", _explain(second)
    assert not second["stats"].get("changed"), "relaunch changed: %s\n%s" % (second["stats"], _explain(second))
    assert awx["after_second"] == awx["after_first"]


def test_credential_tokens_reach_each_side(awx):
    staging, prod = awx["stubs"]["staging"], awx["stubs"]["prod"]
    info = staging.calls_to("GET", "/server/info")
    assert info and all(c.authorized for c in info), "source token from the credential not used: %s" % info
    clears = prod.calls_to("POST", "/utils/cache/clear")
    assert len(clears) == 1 and clears[0].authorized, clears  # first job only (the check and relaunch: nothing)


def test_job_output_never_shows_a_secret(awx):
    for name in ("check", "first", "second"):
        run = awx[name]
        assert run["events"], "%s job produced no events" % name
        # What AWX shows and stores: the job's stdout and its events.
        blobs = [run["stdout"]] + [json.dumps(event) for event in run["events"]]
        for secret in awx["secrets"]:
            leaks = [i for i, blob in enumerate(blobs) if secret in blob]
            assert not leaks, "%s job: a secret appears in %d output blob(s)" % (name, len(leaks))


def test_inventory_stored_in_awx_holds_no_clear_text_secret(awx):
    inventory = awx["first"]["inventory"]
    assert "__ansible_vault" in inventory  # the DB passwords, still encrypted
    for secret in awx["secrets"]:
        assert secret not in inventory


def test_job_output_shows_the_summary(awx):
    stdout = awx["first"]["stdout"]
    for phase in ("validate", "preflight", "assets_copy", "database", "assets_prune", "cdn", "cache", "verify"):
        assert phase in stdout, phase
    assert "staging" in stdout and "prod" in stdout


def test_job_artifact_holds_the_promotion_report(awx):
    """set_stats: AWX shows the report among the job's artifacts (the stats event's artifact_data)."""
    reports = {}
    for name in ("check", "first", "second"):
        stats = [e for e in awx[name]["events"] if e.get("event") == "playbook_on_stats"]
        assert stats, name
        reports[name] = stats[-1]["event_data"]["artifact_data"]["promote_report"]
    assert [reports[n]["result"] for n in ("check", "first", "second")] == ["check mode", "changed", "unchanged"]
    first = reports["first"]
    assert (first["source"], first["target"], first["kind"]) == ("staging", "prod", "promote")
    assert first["database_backup"] and [p["name"] for p in first["phases"]][0] == "validate"
    text = json.dumps(reports)
    for secret in awx["secrets"]:
        assert secret not in text


def test_job_events_show_the_progress_of_the_database_copy(awx):
    """What AWX shows while the job runs: the module's progress lines, as job events of the running task."""
    events = awx["first"]["events"]
    tasks = {e["uuid"]: e["event_data"].get("task") for e in events if e["event"] == "playbook_on_task_start"}
    shown = [e for e in events if PROGRESS.match(e.get("stdout", ""))]
    assert len(shown) >= 2, "no progress line among the job's events:\n%s" % _explain(awx["first"])
    for event in shown:
        assert event["event"] == "verbose", event
        assert tasks.get(event.get("parent_uuid")) == "Replicate the database onto the target", event
    # one line at most every promote_progress_interval (1 s) of the job
    created = sorted(datetime.datetime.fromisoformat(event["created"]) for event in shown)
    gaps = [(b - a).total_seconds() for a, b in zip(created, created[1:])]
    assert min(gaps) > 0.5, gaps
    assert not [e for e in awx["second"]["events"] if PROGRESS.match(e.get("stdout", ""))]  # nothing to copy
