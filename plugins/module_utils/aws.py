# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""AWS connection options and clients shared by the collection's AWS modules.

Option names, aliases and environment fallbacks follow amazon.aws, so that
``module_defaults: group/casper.directus_promote.aws`` and the usual AWS_*
variables work as users expect.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

# botocore alone: boto3 adds resources and s3transfer, which these modules do not
# use; not importing them shortens every module start.
try:
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError as exc:  # pragma: no cover - reported through HAS_BOTOCORE
    HAS_BOTOCORE = False
    BOTOCORE_IMPORT_ERROR = exc
    BotoCoreError = ClientError = Exception
else:
    HAS_BOTOCORE = True
    BOTOCORE_IMPORT_ERROR = None

USER_AGENT = "casper.directus_promote/0.1.0"

CREDENTIAL_OPTIONS = ("access_key", "secret_key", "session_token", "profile")
ENDPOINT_OPTIONS = ("region", "endpoint_url", "validate_certs", "aws_ca_bundle")


def aws_connection_argument_spec(prefix=""):
    """Argument spec for one side's connection options.

    ``prefix=''`` is the target (or only) side, with amazon.aws aliases and
    environment fallbacks. ``prefix='source_'`` is the source side of a
    two-account copy: no environment fallbacks, since the environment
    describes the default (target) side, to which unset options fall back.
    """
    if prefix:
        return {
            prefix + "access_key": dict(type="str", aliases=[prefix + "aws_access_key_id"], no_log=True),
            prefix + "secret_key": dict(type="str", aliases=[prefix + "aws_secret_access_key"], no_log=True),
            prefix + "session_token": dict(type="str", aliases=[prefix + "aws_session_token"], no_log=True),
            prefix + "profile": dict(type="str", aliases=[prefix + "aws_profile"]),
            prefix + "region": dict(type="str", aliases=[prefix + "aws_region"]),
            prefix + "endpoint_url": dict(type="str", aliases=[prefix + "aws_endpoint_url"]),
            prefix + "validate_certs": dict(type="bool"),
            prefix + "aws_ca_bundle": dict(type="path"),
        }
    return {
        "access_key": dict(
            type="str", aliases=["aws_access_key_id", "aws_access_key", "ec2_access_key"], no_log=True,
            fallback=(env_fallback, ["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "EC2_ACCESS_KEY"]),
        ),
        "secret_key": dict(
            type="str", aliases=["aws_secret_access_key", "aws_secret_key", "ec2_secret_key"], no_log=True,
            fallback=(env_fallback, ["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "EC2_SECRET_KEY"]),
        ),
        "session_token": dict(
            type="str", aliases=["aws_session_token", "security_token", "aws_security_token"], no_log=True,
            fallback=(env_fallback, ["AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"]),
        ),
        "profile": dict(
            type="str", aliases=["aws_profile"],
            fallback=(env_fallback, ["AWS_PROFILE", "AWS_DEFAULT_PROFILE"]),
        ),
        "region": dict(
            type="str", aliases=["aws_region", "ec2_region"],
            fallback=(env_fallback, ["AWS_REGION", "AWS_DEFAULT_REGION", "EC2_REGION"]),
        ),
        "endpoint_url": dict(
            type="str", aliases=["aws_endpoint_url", "ec2_url", "s3_url"],
            fallback=(env_fallback, ["AWS_URL", "AWS_ENDPOINT_URL", "EC2_URL"]),
        ),
        "validate_certs": dict(type="bool", default=True),
        "aws_ca_bundle": dict(type="path", fallback=(env_fallback, ["AWS_CA_BUNDLE"])),
    }


def connection_params(params, prefix=""):
    """The effective connection settings of one side, as a plain dict.

    For the source side, credentials come from the ``source_*`` options as a
    whole when any of them is set (mixing a source key with a target secret
    would never be right); otherwise from the target side. Region, endpoint
    and TLS settings fall back one by one.
    """
    if not prefix:
        return {name: params.get(name) for name in CREDENTIAL_OPTIONS + ENDPOINT_OPTIONS}
    own_credentials = any(params.get(prefix + name) is not None for name in CREDENTIAL_OPTIONS)
    resolved = {}
    for name in CREDENTIAL_OPTIONS:
        resolved[name] = params.get(prefix + name) if own_credentials else params.get(name)
    for name in ENDPOINT_OPTIONS:
        value = params.get(prefix + name)
        resolved[name] = params.get(name) if value is None else value
    return resolved


def connection_problems(resolved, label=""):
    """Return a list of human-readable problems with resolved settings (pure)."""
    problems = []
    where = " for the %s side" % label if label else ""
    if resolved.get("profile") and (resolved.get("access_key") or resolved.get("secret_key")):
        problems.append("profile and access_key/secret_key are mutually exclusive%s" % where)
    if bool(resolved.get("access_key")) != bool(resolved.get("secret_key")):
        problems.append("access_key and secret_key must be given together%s" % where)
    return problems


def aws_session(resolved):
    """A botocore session with the resolved options, set up as boto3.Session would set it up."""
    session = botocore.session.get_session()
    if resolved.get("profile"):
        session.set_config_variable("profile", resolved["profile"])
    if resolved.get("access_key") or resolved.get("secret_key") or resolved.get("session_token"):
        session.set_credentials(resolved.get("access_key"), resolved.get("secret_key"), resolved.get("session_token"))
    if resolved.get("region"):
        session.set_config_variable("region", resolved["region"])
    return session


def botocore_config(service, resolved, max_pool_connections=10, retry_mode="adaptive", max_attempts=10, **config_kwargs):
    options = dict(
        retries={"mode": retry_mode, "max_attempts": max_attempts},
        max_pool_connections=max_pool_connections,
        user_agent_extra=USER_AGENT,
    )
    # Emulators and S3-compatible servers on an IP or a private name only
    # answer path-style requests.
    if service == "s3" and resolved.get("endpoint_url") and "s3" not in config_kwargs:
        options["s3"] = {"addressing_style": "path"}
    options.update(config_kwargs)
    return Config(**options)


def aws_client(module, service, prefix="", max_pool_connections=10, retry_mode="adaptive", max_attempts=10,
               setup_session=None, setup_client=None, **config_kwargs):
    """A botocore client for one side, failing the module with a clear message.

    ``max_attempts`` is botocore's ``retries.max_attempts``: retries after the
    first attempt. ``setup_session(session)`` and ``setup_client(client)``,
    when given, adjust this one client's own session and client (nothing
    shared with other clients); without them the client is plain botocore.
    """
    if not HAS_BOTOCORE:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(msg=missing_required_lib("botocore"), exception=str(BOTOCORE_IMPORT_ERROR))
    resolved = connection_params(module.params, prefix)
    problems = connection_problems(resolved, prefix.rstrip("_"))
    if problems:
        module.fail_json(msg="; ".join(problems))
    verify = resolved.get("validate_certs")
    if verify is None:
        verify = True
    if verify and resolved.get("aws_ca_bundle"):
        verify = resolved["aws_ca_bundle"]
    try:
        session = aws_session(resolved)
        if setup_session:
            setup_session(session)
        client = session.create_client(
            service,
            region_name=resolved.get("region") or session.get_config_variable("region") or "us-east-1",
            endpoint_url=resolved.get("endpoint_url"),
            verify=verify,
            config=botocore_config(service, resolved, max_pool_connections, retry_mode, max_attempts, **config_kwargs),
        )
        if setup_client:
            setup_client(client)
        return client
    except (BotoCoreError, ClientError, ValueError) as exc:
        module.fail_json(msg="Cannot create the %s client%s: %s" % (
            service, " for the %s side" % prefix.rstrip("_") if prefix else "", aws_error_message(exc)))
    return None  # not reached: fail_json exits


def aws_error_code(exc):
    if HAS_BOTOCORE and isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


DENIED = ("403", "AccessDenied", "Forbidden", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch")


def http_status(exc):
    return (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")


def is_denied(exc):
    return aws_error_code(exc) in DENIED or http_status(exc) == 403


def aws_error_message(exc):
    """A one-line message for a botocore exception: code, message, operation."""
    if HAS_BOTOCORE and isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code") or str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        message = error.get("Message") or ""
        operation = getattr(exc, "operation_name", "")
        text = "%s: %s" % (code, message) if message else code
        return "%s (%s)" % (text, operation) if operation else text
    return str(exc)
