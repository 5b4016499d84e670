# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # AWS connection options, named and resolved as amazon.aws does, so that
    # module_defaults and environment variables users already have keep working.
    DOCUMENTATION = r"""
options:
  access_key:
    description:
      - AWS access key ID.
      - If not set, the environment variables E(AWS_ACCESS_KEY_ID), E(AWS_ACCESS_KEY) or E(EC2_ACCESS_KEY) are used,
        then the boto3 credential chain (profile, instance role).
      - Mutually exclusive with O(profile).
    type: str
    aliases: [aws_access_key_id, aws_access_key, ec2_access_key]
  secret_key:
    description:
      - AWS secret access key.
      - If not set, E(AWS_SECRET_ACCESS_KEY), E(AWS_SECRET_KEY) or E(EC2_SECRET_KEY) are used.
    type: str
    aliases: [aws_secret_access_key, aws_secret_key, ec2_secret_key]
  session_token:
    description:
      - AWS STS session token for temporary credentials.
      - If not set, E(AWS_SESSION_TOKEN) or E(AWS_SECURITY_TOKEN) are used.
    type: str
    aliases: [aws_session_token, security_token, aws_security_token]
  profile:
    description:
      - A named profile from the AWS shared configuration files.
      - If not set, E(AWS_PROFILE) or E(AWS_DEFAULT_PROFILE) are used.
      - Mutually exclusive with O(access_key), O(secret_key) and O(session_token).
    type: str
    aliases: [aws_profile]
  region:
    description:
      - The AWS region.
      - If not set, E(AWS_REGION), E(AWS_DEFAULT_REGION) or E(EC2_REGION) are used, then the profile's region.
    type: str
    aliases: [aws_region, ec2_region]
  endpoint_url:
    description:
      - An alternative endpoint, for S3-compatible services and emulators.
      - If not set, E(AWS_URL), E(AWS_ENDPOINT_URL) or E(EC2_URL) are used.
      - When set, S3 requests use path-style addressing.
    type: str
    aliases: [aws_endpoint_url, ec2_url, s3_url]
  validate_certs:
    description:
      - Whether to verify TLS certificates of the endpoint.
    type: bool
    default: true
  aws_ca_bundle:
    description:
      - A CA bundle to verify TLS certificates with.
      - If not set, E(AWS_CA_BUNDLE) is used.
    type: path
requirements:
  - python >= 3.9
  - botocore >= 1.31.0 (installed with boto3; the modules import botocore only)
notes:
  - Transient failures (throttling, 5xx, connection errors) are retried by botocore's C(adaptive) retry mode.
"""

    # The source side of a copy between two accounts. Each option falls back
    # to its target-side twin when unset, so one set of credentials is enough
    # when both buckets live in the same account.
    SOURCE = r"""
options:
  source_access_key:
    description:
      - AWS access key ID for the source side. Falls back to O(access_key).
    type: str
    aliases: [source_aws_access_key_id]
  source_secret_key:
    description:
      - AWS secret access key for the source side. Falls back to O(secret_key).
    type: str
    aliases: [source_aws_secret_access_key]
  source_session_token:
    description:
      - AWS STS session token for the source side. Falls back to O(session_token).
    type: str
    aliases: [source_aws_session_token]
  source_profile:
    description:
      - Named AWS profile for the source side. Falls back to O(profile).
    type: str
    aliases: [source_aws_profile]
  source_region:
    description:
      - AWS region of the source side. Falls back to O(region).
    type: str
    aliases: [source_aws_region]
  source_endpoint_url:
    description:
      - Endpoint of the source side. Falls back to O(endpoint_url).
    type: str
    aliases: [source_aws_endpoint_url]
  source_validate_certs:
    description:
      - Whether to verify TLS certificates of the source endpoint. Falls back to O(validate_certs).
    type: bool
  source_aws_ca_bundle:
    description:
      - CA bundle for the source endpoint. Falls back to O(aws_ca_bundle).
    type: path
"""
