# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End-to-end: promote a real Directus 11.3.5 staging onto a real production with playbooks/promote.yml.

Both environments are bootstrapped separately (different admins -> different role and policy ids) on the
sandbox's two MariaDB servers, with S3 storage on their own bucket of the sandbox's emulator. Staging's
content is made through its REST API; production gets its own editor (role + user-level policy) who
logs in once. Then the playbook runs (check mode first, then for real, then a second time) and every
claim is checked through production's REST API, as a user of production would see it.

Production's Directus is never restarted and uses a data + schema cache (memory store): it only shows
the promoted content if the promotion cleared its cache.
"""

from __future__ import annotations

import json
import secrets
import threading
import time

import pytest

import e2e_content as content
from e2e_support import run_playbook
from sandbox.directus_app import DirectusApp, DirectusClient
from sandbox.inventory import environment_vars, vault_encrypt

pytestmark = pytest.mark.slow

ADMINS = {"staging": "admin@staging.example.com", "prod": "admin@prod.example.com"}
TRASH = "_directus_promote_trash/"  # the role's default trash location, in production's own bucket
EDITOR = "editor@prod.example.com"
CONTENT = ("categories", "articles", "site_settings")


# --------------------------------------------------------------------------- helpers

def reset_environment(sandbox, env):
    """An empty Directus database and an empty bucket (the session sandbox is shared with other tests): also without
    the backups, journal and lock that earlier tests' promotions left beside the database."""
    server = sandbox.server(env)
    conn = server.root_connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES")
            for (name,) in cur.fetchall():
                if name.startswith(server.database + "__"):
                    cur.execute("DROP DATABASE `%s`" % name)
            cur.execute("DROP DATABASE IF EXISTS `%s`" % server.database)
            cur.execute("CREATE DATABASE `%s` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" % server.database)
    finally:
        conn.close()
    s3 = sandbox.aws.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sandbox.buckets[env]):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=sandbox.buckets[env], Delete={"Objects": keys})


def make_app(sandbox, env, cli, workdir):
    server = sandbox.server(env)
    plain, _secret = environment_vars(sandbox, env)
    return DirectusApp(
        env, cli=cli, workdir=workdir, admin_email=ADMINS[env], admin_password=secrets.token_urlsafe(12),
        db={"host": server.host, "port": server.port, "user": server.user, "password": server.password,
            "database": server.database},
        s3={"bucket": sandbox.buckets[env], "endpoint_url": sandbox.aws.endpoint_url, "region": sandbox.aws.region,
            "access_key": sandbox.aws.access_key, "secret_key": sandbox.aws.secret_key,
            "root": plain.get("directus_s3_prefix") or ""})


def write_directus_inventory(sandbox, directory, apps, tokens):
    """A second inventory source adding directus_url / directus_admin_token (vault-encrypted) per env."""
    password = (sandbox.inventory_dir / ".vault_pass").read_text().strip()
    directory.mkdir(parents=True, exist_ok=True)
    hosts = {"all": {"children": {"directus_environments": {"hosts": {env: {} for env in apps}}}}}
    (directory / "hosts.yml").write_text(json.dumps(hosts, indent=2))
    for env, app in apps.items():
        host_vars = directory / "host_vars" / env
        host_vars.mkdir(parents=True, exist_ok=True)
        (host_vars / "directus.yml").write_text(json.dumps({
            "directus_url": app.url, "directus_admin_token": "{{ vault_directus_admin_token }}"}, indent=2))
        (host_vars / "vault.yml").write_text(vault_encrypt(json.dumps({"vault_directus_admin_token": tokens[env]}),
                                                           password))
    return directory


def db_checksums(server):
    conn = server.root_connect(server.database)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
            tables = sorted(row[0] for row in cur.fetchall())
            cur.execute("CHECKSUM TABLE %s EXTENDED" % ", ".join("`%s`" % t for t in tables))
            sums = {row[0].split(".", 1)[1]: row[1] for row in cur.fetchall()}
            cur.execute("SHOW DATABASES")
            databases = sorted(row[0] for row in cur.fetchall())
        return {"tables": sums, "databases": databases}
    finally:
        conn.close()


def bucket_state(sandbox, env):
    s3 = sandbox.aws.client("s3")
    state = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=sandbox.buckets[env]):
        for obj in page.get("Contents", []):
            state[obj["Key"]] = (obj["ETag"], obj["Size"])
    return state


def invalidation_count(sandbox):
    listing = sandbox.aws.client("cloudfront").list_invalidations(DistributionId=sandbox.distribution_id)
    return listing["InvalidationList"].get("Quantity", 0)


def user_collections(api):
    return sorted(c["collection"] for c in api.get("/collections", params={"limit": -1})
                  if not c["collection"].startswith("directus_"))


def by(key, rows):
    return sorted(rows, key=lambda r: str(r.get(key)))


def strip(rows, *fields):
    return [{k: v for k, v in row.items() if k not in fields} for row in rows]


class ApiProber(threading.Thread):
    """Asks production's Directus every ~50 ms, during the promotion, what a visitor and an admin would:
    the health check (database + storage), the file list, the signed-in user. Records any answer that
    is not a success (5xx, 4xx, connection errors)."""

    PATHS = ("/server/health", "/files?limit=5&fields=id,filename_disk", "/users/me?fields=id,email,role")

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client = client
        self.stop_event = threading.Event()
        self.requests = 0
        self.failures = []

    def run(self):
        while not self.stop_event.is_set():
            for path in self.PATHS:
                try:
                    status = self.client.raw("GET", path).status
                except OSError as exc:
                    status = repr(exc)
                self.requests += 1
                if status != 200:
                    self.failures.append((round(time.monotonic(), 2), path, status))
            time.sleep(0.05)


def asset_name(file_id, params):
    return file_id + "".join("&%s=%s" % kv for kv in sorted(params.items()))


def prod_snapshot(api, thumbnails):
    """What production's users see, through its API: content, files (bytes and thumbnails), access.
    thumbnails: {file id: [params]} of the transformations production already stored (asking for a new one
    would store it)."""
    files = by("id", api.get("/files", params={"limit": -1, "fields": "*"}))
    assets = {}
    for item in files:
        for params in [{}] + thumbnails.get(item["id"], []):
            response = api.asset(item["id"], **params)
            assets[asset_name(item["id"], params)] = response.body if response.status == 200 else response.status
    everything = {"limit": -1, "fields": "*"}
    return {
        "collections": user_collections(api),
        "files": files,
        "assets": assets,
        "users": by("id", api.get("/users", params={"limit": -1, "fields": "id,email,role,status,avatar,policies"})),
        "roles": by("id", api.get("/roles", params=everything)),
        "policies": by("id", api.get("/policies", params=everything)),
        "access": by("id", api.get("/access", params=everything)),
        "permissions": by("id", api.get("/permissions", params=everything)),
        "folders": by("id", api.get("/folders", params=everything)),
        "settings": api.get("/settings")["project_name"],
    }


def log_errors(app, offset):
    """Error-level (pino level >= 50) lines Directus logged after byte offset."""
    with open(app.log_path, "rb") as handle:
        handle.seek(offset)
        lines = handle.read().decode("utf-8", "replace").splitlines()
    errors = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("level", 0) >= 50:
            errors.append(line[:500])
    return errors


# --------------------------------------------------------------------------- the promotion

@pytest.fixture(scope="module")
def e2e(directus_cli, sandbox, tmp_path_factory, say):  # directus_cli first: skip before starting servers
    work = tmp_path_factory.mktemp("directus-e2e")
    started = time.monotonic()
    for env in ("staging", "prod"):
        reset_environment(sandbox, env)
    apps = {env: make_app(sandbox, env, directus_cli, work) for env in ("staging", "prod")}
    state = {"apps": apps, "work": work}
    try:
        for app in apps.values():
            app.bootstrap()
            app.start()
        staging, prod = apps["staging"], apps["prod"]
        say("Directus staging at %s, prod at %s (bootstrapped and started in %.0f s)"
            % (staging.url, prod.url, time.monotonic() - started))

        # Staging: content, access, files, flow, custom user field -- all through the REST API.
        s_admin = staging.admin()
        author_password = secrets.token_urlsafe(12)
        state["staging_seed"] = content.seed_staging(s_admin, author_password)
        s_admin.patch("/users/me", {"nickname": "stager"})

        # Production: its own Editor role / Content editing policy, the shared author, a prod-only editor.
        p_admin = prod.admin()
        state["prod_seed"] = content.seed_prod(p_admin, EDITOR, "editor-" + author_password)
        state["editor_password"] = "editor-" + author_password
        state["author_password"] = author_password
        content.create_author(p_admin, "prod-" + author_password, state["prod_seed"]["role"])
        state["prod_author_password"] = "prod-" + author_password
        state["prod_users_before"] = by("email", p_admin.get("/users", params={
            "fields": "id,email,role,status", "limit": -1}))
        login = prod.client().login_response(EDITOR, state["editor_password"])  # a session that must survive
        assert login.status == 200, login.body[:300]
        state["editor_refresh"] = login.json()["data"]["refresh_token"]
        state["prod_settings_before"] = p_admin.get("/settings")

        tokens = {"staging": secrets.token_urlsafe(24), "prod": secrets.token_urlsafe(24)}
        s_admin.patch("/users/me", {"token": tokens["staging"]})
        p_admin.patch("/users/me", {"token": tokens["prod"]})
        state["tokens"] = tokens
        seed = state["prod_seed"]
        state["prod_thumbnails"] = {seed["old_file"]: [{"width": 40}], seed["avatar"]: [{"width": 24}]}
        state["prod_before"] = prod_snapshot(prod.client(tokens["prod"]), state["prod_thumbnails"])
        editor = prod.client().login(EDITOR, state["editor_password"])
        state["editor_permissions_before"] = editor.get("/permissions/me")
        inv = write_directus_inventory(sandbox, work / "directus-inventory", apps, tokens)
        state["inventories"] = [sandbox.inventory_dir, inv]
        # A young production: 4 objects (2 files with a thumbnail each), the old banner's 2 pruned, the editor's
        # avatar (a kept user's file) kept. Default settings.
        state["extra"] = ["-e", "source=staging", "-e", "target=prod",
                          "-e", "promote_state_dir=%s" % (work / "promote-state"),
                          "-e", "promote_report_dir=%s" % (work / "reports")]

        # Warm production's caches (schema + data): stale unless the promotion clears them.
        assert user_collections(prod.client(tokens["prod"])) == []
        state["prod_pid"] = prod.proc.pid
        say("content created through the API in %.0f s" % (time.monotonic() - started))

        # 1. check mode: the full plan, nothing written anywhere.
        before = (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"), invalidation_count(sandbox))
        state["check"] = run_playbook(sandbox, state["inventories"], *state["extra"], "--check", "--diff")
        state["check_unchanged"] = before == (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"),
                                              invalidation_count(sandbox))
        state["invalidations_before"] = before[2]
        say("check-mode run: rc=%s in %.0f s" % (state["check"].rc, state["check"].seconds))

        # 2. the real promotion, with production's API probed all along.
        log_offset = prod.log_path.stat().st_size
        prober = ApiProber(prod.client(tokens["prod"]))
        prober.start()
        try:
            state["run1"] = run_playbook(sandbox, state["inventories"], *state["extra"])
        finally:
            prober.stop_event.set()
            prober.join(timeout=30)
        state["prober"] = prober
        state["prod_log_errors"] = log_errors(prod, log_offset)
        say("promotion: rc=%s changed=%s in %.0f s" % (state["run1"].rc, state["run1"].changed, state["run1"].seconds))
        yield state
    finally:
        for app in apps.values():
            app.stop()
        say("Directus instances stopped; e2e module took %.0f s" % (time.monotonic() - started))


@pytest.fixture(scope="module")
def promoted(e2e):
    """The state after the promotion. Its success is asserted by test_promotion_succeeds_and_reports_changes;
    the other checks look at production whatever the playbook's verdict, so a failing run still shows
    which of production's properties hold."""
    return e2e


@pytest.fixture(scope="module")
def clients(promoted):
    apps, tokens = promoted["apps"], promoted["tokens"]
    return {"staging": apps["staging"].client(tokens["staging"]), "prod": apps["prod"].client(tokens["prod"])}


# --------------------------------------------------------------------------- checks

def test_check_mode_plans_and_writes_nothing(e2e):
    assert e2e["check"].rc == 0, e2e["check"].tail()
    assert e2e["check_unchanged"], "check mode changed production's database, bucket or CDN\n" + e2e["check"].tail()
    assert e2e["check"].changed > 0, "check mode did not report the promotion as a change\n" + e2e["check"].tail()


def test_preflight_reads_both_directus_versions(e2e):
    """Directus 11 answers GET /server/info with data.version (admin token); the preflight must show it."""
    lines = [line for line in e2e["run1"].stdout.splitlines() if "Directus source:" in line or "Directus target:" in line]
    assert len(lines) == 2, e2e["run1"].tail()
    assert all("11.3.5" in line for line in lines), lines


def test_promotion_succeeds_and_reports_changes(promoted):
    run = promoted["run1"]
    assert run.rc == 0 and run.failed == 0, run.tail()
    assert run.changed > 0, run.tail()


def reports(work):
    """{kind: [reports]} written to promote_report_dir, oldest first."""
    out = {}
    for path in (work / "reports").glob("*.json"):
        report = json.loads(path.read_text())
        out.setdefault((report["kind"], report["check_mode"]), []).append(report)
    return {k: sorted(v, key=lambda r: r["started"]) for k, v in out.items()}


def test_the_promotion_report(promoted):
    report = reports(promoted["work"])[("promote", False)][0]
    assert report["result"] == "changed" and report["source"] == "staging" and report["target"] == "prod"
    phases = {p["name"]: p for p in report["phases"]}
    assert phases["assets_copy"]["counts"]["copied"] > 0 and phases["assets_prune"]["counts"]["deleted"] == 2
    assert report["database_backup"] and report["cloudfront_invalidations"]
    assert report["asset_trash"], report
    assert reports(promoted["work"])[("promote", True)][0]["result"] == "check mode"


def test_prod_api_shows_promoted_collections_without_restart(promoted, clients):
    app = promoted["apps"]["prod"]
    assert app.proc is not None and app.proc.poll() is None and app.proc.pid == promoted["prod_pid"], \
        "production's Directus was restarted or died"
    # The same admin token that cached an empty list before the promotion now sees the promoted schema.
    assert user_collections(clients["prod"]) == user_collections(clients["staging"]) == sorted(CONTENT)


@pytest.mark.parametrize("endpoint, key", [("/collections", "collection"), ("/relations", "field")])
def test_schema_equals_staging(clients, endpoint, key):
    staging, prod = (by(key, clients[e].get(endpoint, params={"limit": -1})) for e in ("staging", "prod"))
    assert prod == staging


def test_fields_equal_staging_including_custom_user_field(clients):
    def fields(api):
        return sorted(api.get("/fields", params={"limit": -1}), key=lambda f: (f["collection"], f["field"]))
    staging, prod = fields(clients["staging"]), fields(clients["prod"])
    assert [(f["collection"], f["field"]) for f in prod] == [(f["collection"], f["field"]) for f in staging]
    assert prod == staging
    assert any(f["collection"] == "directus_users" and f["field"] == "nickname" for f in prod)
    # The column exists in production's kept users table (else Directus answers 500 here).
    assert clients["prod"].get("/users/me", params={"fields": "email,nickname"})["email"] == ADMINS["prod"]


@pytest.mark.parametrize("collection", CONTENT)
def test_items_equal_staging(clients, collection):
    params = {"limit": -1, "fields": "*"}
    staging, prod = (clients[e].get("/items/%s" % collection, params=params) for e in ("staging", "prod"))
    if isinstance(staging, dict):  # singleton
        staging, prod = [staging], [prod]
    assert strip(by("id", prod), "user_created") == strip(by("id", staging), "user_created")
    assert len(prod) >= 1


def test_user_references_mapped_by_email_or_nulled(clients):
    params = {"limit": -1, "fields": "id,title,user_created.email"}
    staging = {a["id"]: a for a in clients["staging"].get("/items/articles", params=params)}
    prod = {a["id"]: a for a in clients["prod"].get("/items/articles", params=params)}
    assert set(prod) == set(staging)
    for item_id, item in staging.items():
        creator = (item["user_created"] or {}).get("email")
        expected = creator if creator == content.SHARED_AUTHOR else None  # staging's admin has no prod account
        assert ((prod[item_id]["user_created"] or {}).get("email")) == expected, (item["title"], creator)


@pytest.mark.parametrize("endpoint", ["/roles", "/policies", "/permissions", "/flows", "/operations",
                                      "/translations", "/folders", "/dashboards"])
def test_system_content_equals_staging(clients, endpoint):
    # Aliases listing access rows of users (roles.users, policies.users / policies.roles: directus_access
    # rows, production's user-level ones included) are compared in the access test; user_created was
    # staging's admin (no account in production: nulled).
    volatile = ("users", "user_created") + (("roles",) if endpoint == "/policies" else ())
    staging, prod = (strip(by("id", clients[e].get(endpoint, params={"limit": -1})), *volatile)
                     for e in ("staging", "prod"))
    assert prod == staging
    if endpoint in ("/roles", "/policies", "/permissions", "/flows", "/operations", "/folders"):
        assert staging, "staging has no %s: the test content is incomplete" % endpoint


def test_role_level_access_and_global_presets_from_staging(promoted, clients):
    def rows(api, endpoint, user_null=True):
        return by("id", api.get(endpoint, params={"limit": -1, "filter": {"user": {"_null": user_null}}}))
    for endpoint in ("/access", "/presets"):
        assert rows(clients["prod"], endpoint) == rows(clients["staging"], endpoint), endpoint
    # Production's user-level access row (the editor's policy) is kept, pointing at the promoted policy.
    staging_policies = {p["name"]: p["id"] for p in clients["staging"].get("/policies", params={"limit": -1})}
    user_rows = rows(clients["prod"], "/access", user_null=False)
    assert [(r["user"], r["policy"]) for r in user_rows] == [
        (promoted["prod_seed"]["editor"], staging_policies[content.EDITING_POLICY])]


def test_files_metadata_equals_staging(promoted, clients):
    params = {"limit": -1, "fields": "*"}
    staging, prod = (by("id", clients[e].get("/files", params=params)) for e in ("staging", "prod"))
    volatile = ("uploaded_by", "modified_by")  # staging user ids: mapped by email or nulled
    avatar = promoted["prod_seed"]["avatar"]  # production's own file, kept: a kept user references it
    assert [f["id"] for f in prod if f["id"] not in {g["id"] for g in staging}] == [avatar]
    assert strip([f for f in prod if f["id"] != avatar], *volatile) == strip(staging, *volatile)
    assert len(staging) == 4


def test_prod_users_own_upload_kept_with_its_object(promoted, clients):
    """The editor's avatar (a file row only production's users reference) survives, bytes and thumbnail."""
    prod, avatar = clients["prod"], promoted["prod_seed"]["avatar"]
    editor = prod.get("/users/%s" % promoted["prod_seed"]["editor"], params={"fields": "avatar"})
    assert editor["avatar"] == avatar
    before = promoted["prod_before"]["assets"]
    for params in ({}, {"width": 24}):
        got = prod.asset(avatar, **params)
        assert got.status == 200 and got.body == before[asset_name(avatar, params)], (params, got.status)


def test_every_asset_and_thumbnail_serves_staging_bytes(promoted, clients):
    staging, prod = clients["staging"], clients["prod"]
    for item in staging.get("/files", params={"limit": -1}):
        variants = [{}] + (list(content.THUMBNAILS) if item["type"].startswith("image/") else [])
        for params in variants:
            want, got = staging.asset(item["id"], **params), prod.asset(item["id"], **params)
            assert want.status == 200, (item["filename_download"], params, want.status)
            assert got.status == 200, (item["filename_download"], params, got.status, got.body[:300])
            assert got.body == want.body, (item["filename_download"], params)


def test_bucket_mirrored_and_prod_only_file_pruned(promoted, sandbox, clients):
    staging, prod = bucket_state(sandbox, "staging"), bucket_state(sandbox, "prod")
    avatar = promoted["prod_seed"]["avatar"]
    served = [key for key in prod if not key.startswith(TRASH) and not key.startswith(avatar)]
    assert sorted(served) == sorted(staging)
    assert [key for key in prod if key.startswith(TRASH)], "the pruned objects were not kept in the trash"
    assert any("__" in key for key in prod), "staging's generated thumbnails were not mirrored"
    old = promoted["prod_seed"]["old_file"]
    assert not [key for key in prod if key.startswith(old)], "production's own old file was not pruned"
    assert clients["prod"].asset(old).status in (403, 404)


def test_prod_api_never_failed_during_the_promotion(promoted):
    prober = promoted["prober"]
    assert prober.requests > 30, "the prober barely ran (%d requests)" % prober.requests
    assert prober.failures == [], "production's API failed during the promotion: %s" % prober.failures[:20]
    assert promoted["prod_log_errors"] == [], "production's Directus logged errors during the promotion"


def test_cdn_invalidated(promoted, sandbox):
    assert invalidation_count(sandbox) > promoted["invalidations_before"]


def test_prod_admin_logs_in_and_keeps_admin_rights(promoted):
    app = promoted["apps"]["prod"]
    admin = app.admin()  # password login
    me = admin.get("/users/me", params={"fields": "email,role.name"})
    assert me == {"email": ADMINS["prod"], "role": {"name": "Administrator"}}
    assert admin.get("/server/info").get("version") == "11.3.5"  # admin-only detail
    emails = {u["email"] for u in admin.get("/users", params={"limit": -1, "fields": "email"})}
    assert emails == {ADMINS["prod"], EDITOR, content.SHARED_AUTHOR}


def test_prod_users_sessions_and_settings_kept(promoted, clients):
    after = by("email", clients["prod"].get("/users", params={"fields": "id,email,role,status", "limit": -1}))
    before = promoted["prod_users_before"]
    assert [(u["id"], u["email"], u["status"]) for u in after] == [(u["id"], u["email"], u["status"]) for u in before]
    staging_roles = {r["name"]: r["id"] for r in clients["staging"].get("/roles", params={"limit": -1})}
    for user in after:  # production's role ids were remapped (by name) onto the promoted roles
        assert user["role"] in staging_roles.values(), user
    # The editor's session from before the promotion is still valid.
    refreshed = DirectusClient(promoted["apps"]["prod"].url).raw(
        "POST", "/auth/refresh", json_body={"refresh_token": promoted["editor_refresh"], "mode": "json"}, auth=False)
    assert refreshed.status == 200, refreshed.body[:300]
    settings = clients["prod"].get("/settings")
    assert settings["project_name"] == "Production CMS" == promoted["prod_settings_before"]["project_name"]


def test_prod_editor_logs_in_and_keeps_permissions(promoted, clients):
    prod = promoted["apps"]["prod"]
    editor = prod.client().login(EDITOR, promoted["editor_password"])
    assert editor.get("/users/me", params={"fields": "role.name"})["role"]["name"] == content.EDITOR_ROLE
    # Same permissions as staging's author, who holds staging's Editor role (Reading + Content editing).
    author = promoted["apps"]["staging"].client()
    staging_author = author.login(content.SHARED_AUTHOR, promoted["author_password"])
    assert editor.get("/permissions/me") == staging_author.get("/permissions/me")
    assert len(editor.get("/items/articles", params={"limit": -1})) == 6
    assert editor.raw("GET", "/items/site_settings").status == 403
    assert editor.raw("DELETE", "/items/articles/%s" % promoted["staging_seed"]["articles"][0]).status == 403
    # The shared author keeps production's password.
    assert prod.client().login_response(content.SHARED_AUTHOR, promoted["prod_author_password"]).status == 200


def test_staging_admin_cannot_log_in_to_prod(promoted):
    staging, prod = promoted["apps"]["staging"], promoted["apps"]["prod"]
    assert prod.client().login_response(staging.admin_email, staging.admin_password).status == 401
    assert prod.client(promoted["tokens"]["staging"]).raw("GET", "/users/me").status == 401
    assert staging.client().login_response(staging.admin_email, staging.admin_password).status == 200


def test_prod_health(promoted):
    health = promoted["apps"]["prod"].health()
    assert health.status == 200 and health.json()["status"] == "ok"


def test_second_run_changes_nothing(promoted, sandbox, clients):
    """Last: the same promotion again reports changed=0 and writes nothing."""
    before = (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"), invalidation_count(sandbox))
    run = run_playbook(sandbox, promoted["inventories"], *promoted["extra"])
    assert run.rc == 0, run.tail()
    assert run.changed == 0, "second run reported changes in: %s\n%s" % (run.changed_tasks(), run.tail())
    after = (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"), invalidation_count(sandbox))
    assert after[0]["tables"] == before[0]["tables"]
    assert after[1:] == before[1:]
    assert user_collections(clients["prod"]) == sorted(CONTENT)


# --------------------------------------------------------------------------- the rollback (after the promotion's checks)

@pytest.fixture(scope="module")
def rolled_back(promoted, sandbox, say):
    """playbooks/rollback.yml -e target=prod: check mode first, then for real with production's API probed."""
    state = {}
    prod = promoted["apps"]["prod"]
    # a session production writes after the promotion: a rollback keeps it, as a promotion would
    login = prod.client().login_response(EDITOR, promoted["editor_password"])
    assert login.status == 200, login.body[:300]
    state["editor_refresh"] = login.json()["data"]["refresh_token"]
    rollback = ["-e", "target=prod", "-e", "promote_state_dir=%s" % (promoted["work"] / "promote-state"),
                "-e", "promote_report_dir=%s" % (promoted["work"] / "reports")]
    before = (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"), invalidation_count(sandbox))
    state["check"] = run_playbook(sandbox, promoted["inventories"], *rollback, "--check", "--diff",
                                  playbook="playbooks/rollback.yml")
    state["check_unchanged"] = before == (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"),
                                          invalidation_count(sandbox))
    state["invalidations_before"] = before[2]
    log_offset = prod.log_path.stat().st_size
    prober = ApiProber(prod.client(promoted["tokens"]["prod"]))
    prober.start()
    try:
        state["run"] = run_playbook(sandbox, promoted["inventories"], *rollback, playbook="playbooks/rollback.yml")
    finally:
        prober.stop_event.set()
        prober.join(timeout=30)
    state["prober"] = prober
    state["log_errors"] = log_errors(prod, log_offset)
    say("rollback: rc=%s changed=%s in %.0f s" % (state["run"].rc, state["run"].changed, state["run"].seconds))
    state["before_again"] = (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"))
    state["again"] = run_playbook(sandbox, promoted["inventories"], *rollback, playbook="playbooks/rollback.yml")
    state["after_again"] = (db_checksums(sandbox.prod), bucket_state(sandbox, "prod"))
    return state


def test_rollback_check_mode_reports_the_plan_and_changes_nothing(rolled_back):
    check = rolled_back["check"]
    assert check.rc == 0, check.tail()
    assert rolled_back["check_unchanged"], "the check-mode rollback changed the database, the bucket or the CDN"
    assert "Undoing promotion prod-" in check.stdout, check.tail()
    assert check.changed > 0, "check mode reported nothing to undo\n" + check.tail()


def test_rollback_succeeds(rolled_back, sandbox):
    run = rolled_back["run"]
    assert run.rc == 0 and run.failed == 0, run.tail()
    assert invalidation_count(sandbox) > rolled_back["invalidations_before"]


def test_rollback_restores_what_production_showed_before_the_promotion(promoted, rolled_back):
    after = prod_snapshot(promoted["apps"]["prod"].client(promoted["tokens"]["prod"]), promoted["prod_thumbnails"])
    before = promoted["prod_before"]
    for part in ("collections", "users", "roles", "policies", "access", "permissions", "folders", "settings"):
        assert after[part] == before[part], part
    assert after["files"] == before["files"]
    missing = sorted(name for name in before["assets"] if after["assets"].get(name) != before["assets"][name])
    assert missing == [], "assets (or thumbnails) that differ from before the promotion: %s" % missing


def test_rollback_keeps_production_sessions_and_access(promoted, rolled_back):
    prod = promoted["apps"]["prod"]
    refreshed = DirectusClient(prod.url).raw(
        "POST", "/auth/refresh", json_body={"refresh_token": rolled_back["editor_refresh"], "mode": "json"}, auth=False)
    assert refreshed.status == 200, refreshed.body[:300]
    editor = prod.client().login(EDITOR, promoted["editor_password"])
    assert editor.get("/permissions/me") == promoted["editor_permissions_before"]
    admin = prod.admin()
    assert admin.get("/users/me", params={"fields": "email,role.name"}) == {
        "email": ADMINS["prod"], "role": {"name": "Administrator"}}


def test_prod_api_never_failed_during_the_rollback(rolled_back):
    prober = rolled_back["prober"]
    assert prober.requests > 10, "the prober barely ran (%d requests)" % prober.requests
    assert prober.failures == [], "production's API failed during the rollback: %s" % prober.failures[:20]
    assert rolled_back["log_errors"] == [], "production's Directus logged errors during the rollback"


def test_the_rollback_report(promoted, rolled_back):
    done = reports(promoted["work"])[("rollback", False)]
    assert [r["result"] for r in done] == ["changed", "failed"]  # the rollback, then the refused second one
    undone = reports(promoted["work"])[("promote", False)][0]
    assert done[0]["rollback_of"]["promotion_run_id"] == undone["run_id"]
    phases = {p["name"]: p for p in done[0]["phases"]}
    assert phases["assets_restore"]["counts"]["restored"] >= 2 and phases["assets_remove"]["counts"]["removed"] > 0
    assert reports(promoted["work"])[("rollback", True)][0]["result"] == "check mode"


def test_a_second_rollback_has_nothing_to_undo_and_refuses(rolled_back, sandbox):
    again = rolled_back["again"]
    assert again.rc != 0
    assert "Rollback refused (prod): nothing to roll back" in again.stdout, again.tail()
    assert rolled_back["after_again"] == rolled_back["before_again"]
