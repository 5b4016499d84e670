# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The role's request check (filter casper.directus_promote.promotion_request)."""

from __future__ import annotations

import pytest
from jinja2 import Undefined
from ansible.errors import AnsibleError, AnsibleUndefinedVariable

from ansible_collections.casper.directus_promote.plugins.filter.promotion_request import FilterModule, promotion_request

GROUP = "directus_environments"


def env(**extra):
    base = {"directus_db_name": "directus", "directus_db_user": "u", "directus_db_password": "p",
            "directus_db_host": "db", "directus_s3_bucket": "assets", "directus_url": "https://cms.example.com",
            "directus_admin_token": "t", "directus_cloudfront_distribution_id": "E1"}
    base.update(extra)
    return {k: v for k, v in base.items() if v is not None}


class Vars(dict):
    """hostvars of one host whose `vault_*` references are missing: reading them raises, as Ansible does."""

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if value == "{{ vault_missing }}":
            raise AnsibleUndefinedVariable("'vault_missing' is undefined")
        return value


def check(staging, prod, source="staging", target="prod", kind="promote", groups=None):
    hostvars = {"staging": staging, "prod": prod}
    return promotion_request(groups if groups is not None else {GROUP: ["staging", "prod"]}, hostvars, GROUP,
                             source, target, kind)


def test_a_valid_request_has_no_problem_and_no_notice():
    assert check(env(directus_db_name="staging_db", directus_s3_bucket="staging-assets"),
                 env(directus_promote_allow_target=True)) == {"problems": [], "notices": []}


def test_an_undefined_marker_is_a_problem():
    """ansible-core 2.19 returns a marker (a jinja2 Undefined) for a value that references an undefined variable."""
    staging = env(directus_db_name="s", directus_s3_bucket="s", directus_db_password=Undefined(name="vault_x"))
    assert check(staging, env(directus_promote_allow_target=True))["problems"] == [
        "source 'staging': directus_db_password is not defined (or references an undefined variable, e.g. a vault_* "
        "variable missing from the vault file)"]


def test_every_problem_is_listed_at_once():
    result = check(env(directus_db_name=None, directus_db_port="x"), env(directus_s3_bucket=None, directus_url="ftp://x"))
    assert result["problems"] == [
        "source 'staging': directus_db_name is not defined (or references an undefined variable, e.g. a vault_* "
        "variable missing from the vault file)",
        "source 'staging': directus_db_port must be a TCP port number, got 'x'",
        "target 'prod': directus_s3_bucket is not defined (or references an undefined variable, e.g. a vault_* "
        "variable missing from the vault file)",
        "target 'prod': directus_url must start with http:// or https://",
        "target 'prod' does not allow being overwritten: set directus_promote_allow_target: true on that environment"]
    assert result["notices"] == []


def test_an_undefined_vault_reference_is_a_problem_not_an_exception():
    staging = Vars(env(directus_db_name="s", directus_s3_bucket="s", directus_db_password="{{ vault_missing }}"))
    problems = check(staging, env(directus_promote_allow_target=True))["problems"]
    assert problems == ["source 'staging': directus_db_password is not defined (or references an undefined variable, "
                        "e.g. a vault_* variable missing from the vault file)"]


@pytest.mark.parametrize("value, allowed", [(True, True), ("yes", True), ("true", True), (False, False), ("no", False),
                                            ("{{ vault_missing }}", False)])
def test_the_target_must_allow_being_overwritten(value, allowed):
    problems = check(env(directus_db_name="s", directus_s3_bucket="s"),
                     Vars(env(directus_promote_allow_target=value)))["problems"]
    assert (problems == []) is allowed, problems


@pytest.mark.parametrize("source, target, same", [
    ({}, {}, True),
    ({"directus_db_port": 3306}, {}, True),           # the default port, spelled out
    ({"directus_db_port": 3307}, {}, False),
    ({"directus_db_host": "other"}, {}, False),
    ({"directus_db_name": "other"}, {}, False),
])
def test_the_same_database_is_refused(source, target, same):
    problems = check(env(directus_s3_bucket="s", **source), env(directus_promote_allow_target=True, **target))["problems"]
    assert any("use the same database" in p for p in problems) is same, problems


@pytest.mark.parametrize("source_prefix, target_prefix, overlap", [
    ("", "", True), ("staging", "", True), ("/staging/", "staging", True), ("staging", "staging/old", True),
    ("staging", "staging-old", False), ("a/b", "a/c", False)])
def test_overlapping_assets_in_one_bucket_are_refused(source_prefix, target_prefix, overlap):
    problems = check(env(directus_db_name="s", directus_s3_prefix=source_prefix),
                     env(directus_promote_allow_target=True, directus_s3_prefix=target_prefix))["problems"]
    assert any("assets overlap" in p for p in problems) is overlap, problems


def test_unknown_and_missing_environments():
    assert check(env(), env(), source="", target="qa")["problems"] == [
        "source is not set: pass -e source=<environment> (one of: staging, prod)",
        "target 'qa' is not a host of group 'directus_environments' (known: staging, prod)"]
    assert check(env(), env(), groups={})["problems"] == [
        "the inventory has no group 'directus_environments' (each environment must be a host of it)",
        "source 'staging' is not a host of group 'directus_environments' (known: none)",
        "target 'prod' is not a host of group 'directus_environments' (known: none)"]
    assert "source and target are the same environment ('prod')" in check(
        env(), env(directus_promote_allow_target=True), source="prod")["problems"]


def test_a_rollback_needs_only_the_target():
    assert check(None, env(directus_promote_allow_target=True), source="", kind="rollback") == {
        "problems": [], "notices": []}
    assert check(None, env(directus_promote_allow_target=False), source="nonsense", kind="rollback")["problems"] == [
        "target 'prod' does not allow being overwritten: set directus_promote_allow_target: true on that environment"]
    with pytest.raises(AnsibleError):
        check(env(), env(), kind="undo")


def test_notices_name_the_optional_settings_that_are_absent():
    result = check(env(directus_db_name="s", directus_s3_bucket="s", directus_url=None),
                   env(directus_promote_allow_target=True, directus_admin_token="", directus_cloudfront_distribution_id=None))
    assert result["notices"] == [
        "WARNING: source 'staging' has no directus_url: no Directus version check",
        "WARNING: target 'prod' has directus_url but no directus_admin_token: no Directus version check and no cache clear",
        "NOTICE: target 'prod' has no directus_cloudfront_distribution_id: no CDN invalidation"]


def test_the_filter_is_registered():
    assert FilterModule().filters()["promotion_request"] is promotion_request
