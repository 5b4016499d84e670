# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build Directus-shaped staging and prod on a sandbox, from its inventory (molecule prepare step).

usage: fixtures.py <sandbox inventory dir>     (PYTHONPATH must hold tests/ and collections/)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import boto3
import pymysql
from ansible.parsing.vault import VaultLib, VaultSecret

from sandbox import directus_fixture as fx

SEED = 11
FILES = 20


def environments(inventory):
    vault = VaultLib([("sandbox", VaultSecret((inventory / ".vault_pass").read_text().strip().encode()))])
    for env in ("staging", "prod"):
        plain = json.loads((inventory / "host_vars" / env / "vars.yml").read_text())
        plain.update(json.loads(vault.decrypt((inventory / "host_vars" / env / "vault.yml").read_text())))
        yield env, plain


def main(inventory):
    for env, hv in environments(Path(inventory)):
        conn = pymysql.connect(host=hv["directus_db_host"], port=int(hv["directus_db_port"]), user=hv["directus_db_user"],
                               password=hv["vault_directus_db_password"])
        try:
            fx.build_directus_db(conn, hv["directus_db_name"], env=env, seed=SEED, content_rows=300, files=FILES)
            if env == "staging":
                fx.staging_edit(conn, hv["directus_db_name"], seed=SEED)
        finally:
            conn.close()
        s3 = boto3.client("s3", endpoint_url=hv["directus_aws_endpoint_url"], region_name=hv["directus_aws_region"],
                          aws_access_key_id=hv["vault_directus_aws_access_key"],
                          aws_secret_access_key=hv["vault_directus_aws_secret_key"])
        bucket = hv["directus_s3_bucket"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects})
        fx.build_assets(s3, bucket, prefix=hv.get("directus_s3_prefix") or "", files=FILES, seed=SEED, env=env)
    print("built staging and prod (seed %d)" % SEED)


if __name__ == "__main__":
    main(sys.argv[1])
