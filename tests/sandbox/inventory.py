"""Write the sandbox's two environments as an Ansible inventory, secrets vault-encrypted.

The layout is the one users keep for real environments (see inventories/example):
plain variables reference ``vault_*`` variables that live in encrypted files.
"""

from __future__ import annotations

import json
import os
import secrets

VAULT_ID = "sandbox"


def vault_encrypt(plaintext, password):
    from ansible.parsing.vault import VaultLib, VaultSecret

    vault = VaultLib([(VAULT_ID, VaultSecret(password.encode()))])
    return vault.encrypt(plaintext.encode(), vault_id=VAULT_ID).decode()


def _yaml(data):
    # JSON is YAML; it keeps this module free of a YAML dependency and quotes everything safely.
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def environment_vars(sandbox, env):
    server = sandbox.server(env)
    plain = {
        "directus_db_host": server.host,
        "directus_db_port": server.port,
        "directus_db_name": server.database,
        "directus_db_user": server.user,
        "directus_db_password": "{{ vault_directus_db_password }}",
        "directus_s3_bucket": sandbox.buckets[env],
        "directus_s3_prefix": "",
        "directus_aws_region": sandbox.aws.region,
        "directus_aws_endpoint_url": sandbox.aws.endpoint_url,
        "directus_aws_access_key": "{{ vault_directus_aws_access_key }}",
        "directus_aws_secret_key": "{{ vault_directus_aws_secret_key }}",
        "directus_promote_allow_target": env == "prod",
    }
    if env == "prod":
        plain["directus_cloudfront_distribution_id"] = sandbox.distribution_id
    secret = {
        "vault_directus_db_password": server.password,
        "vault_directus_aws_access_key": sandbox.aws.access_key,
        "vault_directus_aws_secret_key": sandbox.aws.secret_key,
    }
    return plain, secret


def write_inventory(sandbox):
    """Write hosts.yml, host_vars/<env>/{vars,vault}.yml and the sandbox-only .vault_pass."""
    root = sandbox.inventory_dir
    password = secrets.token_urlsafe(24)
    _write(root / ".vault_pass", password + "\n", mode=0o600)
    hosts = {"all": {"children": {"directus_environments": {"hosts": {
        "staging": {"ansible_connection": "local"},
        "prod": {"ansible_connection": "local"},
    }}}}}
    _write(root / "hosts.yml", "# Written by the sandbox (tests/sandbox); regenerated on every start.\n" + _yaml(hosts))
    for env in ("staging", "prod"):
        plain, secret = environment_vars(sandbox, env)
        _write(root / "host_vars" / env / "vars.yml", _yaml(plain))
        _write(root / "host_vars" / env / "vault.yml", vault_encrypt(_yaml(secret), password), mode=0o600)
    return root
