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

import datetime

# botocore alone: boto3 adds resources and s3transfer, which these modules do not
# use; not importing them took about 20 ms off every module start (measured).
try:
    import botocore.handlers
    import botocore.session
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserFactory, RestXMLParser
    from botocore.utils import parse_timestamp
except ImportError as exc:  # pragma: no cover - reported through HAS_BOTOCORE
    HAS_BOTOCORE = False
    BOTOCORE_IMPORT_ERROR = exc
    BotoCoreError = ClientError = Exception
    ResponseParserFactory = RestXMLParser = object
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


def fast_timestamp(value):
    """botocore's timestamp parser with a fast path for ISO 8601.

    botocore hands every timestamp of a response (each LastModified of a
    ListObjectsV2 page) to dateutil, which is most of the CPU a listing costs;
    ``fromisoformat`` reads the same text many times faster. HTTP dates and
    anything else still go to botocore's own parser.
    """
    if isinstance(value, str) and "T" in value:
        try:
            return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            pass
    return parse_timestamp(value)


_SCALAR_TYPES = ("string", "integer", "long", "timestamp")


class FlatStructureXMLParser(RestXMLParser):
    """botocore's REST-XML parser with a shortcut for flat structures.

    A ListObjectsV2 page holds 1,000 ``<Contents>`` structures, and botocore
    reads each one generically (an index of the children, a loop over every
    member of the shape, one decorated handler call per field): about two
    thirds of the client CPU a listing costs. A structure whose XML children
    are string, integer, long or timestamp members (each at most once) or
    flattened lists of strings is read here straight into the same dict
    botocore would build. Anything else (nested structures, attributes,
    repeated or unknown elements) takes botocore's own path, unchanged.
    """

    def __init__(self, *args, shape_cache=None, **kwargs):
        super().__init__(*args, **kwargs)
        # botocore makes a parser per response; the factory shares one cache
        # (shapes are kept in it, so their ids stay theirs)
        self._flat_fields = {} if shape_cache is None else shape_cache
        self._local_tags = {}

    def _fields(self, shape):
        """{xml name: (member name, scalar type)} for a shape the shortcut may read, else None."""
        key = id(shape)
        if key not in self._flat_fields:
            fields = {}
            if shape.metadata.get("exception") or getattr(shape, "is_tagged_union", False):
                fields = None
            else:
                for name, member in shape.members.items():
                    serialization = member.serialization
                    if serialization.get("location") or serialization.get("eventheader") or serialization.get("xmlAttribute"):
                        fields = None
                        break
                    if member.type_name in _SCALAR_TYPES:
                        fields[serialization.get("name", name)] = (name, member.type_name)
                    elif (member.type_name == "list" and serialization.get("flattened")
                          and member.member.type_name == "string"):
                        # e.g. <ChecksumAlgorithm>, repeated in place
                        xml_name = member.member.serialization.get("name") or serialization.get("name", name)
                        fields[xml_name] = (name, "strings")
            self._flat_fields[key] = (shape, fields)
        return self._flat_fields[key][1]

    def _local_tag(self, tag):
        local = self._local_tags.get(tag)
        if local is None:
            local = self._local_tags[tag] = self._namespace_re.sub("", tag)
        return local

    def _handle_structure(self, shape, node):
        fields = None if isinstance(node, list) else self._fields(shape)
        if not fields:
            return super()._handle_structure(shape, node)
        parsed = {}
        for child in node:
            field = fields.get(self._local_tag(child.tag))
            if field is None or len(child):
                return super()._handle_structure(shape, node)
            text = child.text or ""
            kind = field[1]
            if kind == "strings":
                parsed.setdefault(field[0], []).append(text)
                continue
            if field[0] in parsed:
                return super()._handle_structure(shape, node)
            if kind == "string":
                parsed[field[0]] = text
            elif kind == "timestamp":
                parsed[field[0]] = self._timestamp_parser(text)
            else:
                parsed[field[0]] = int(text)
        return parsed


class FastParserFactory(ResponseParserFactory):
    """botocore's parser factory, handing REST-XML (S3) responses to FlatStructureXMLParser."""

    def __init__(self):
        super().__init__()
        self._shape_cache = {}

    def create_parser(self, protocol_name):
        if protocol_name == "rest-xml":
            return FlatStructureXMLParser(shape_cache=self._shape_cache, **self._defaults)
        return super().create_parser(protocol_name)


def listing_aware_200_check(original):
    """botocore's check for S3 errors sent with status 200, minus a second parse of listings.

    botocore parses every S3 response body once more, only to see whether its
    root element is <Error> or the XML is cut short. For a complete
    ListObjectsV2 page (it opens as a ListBucketResult and ends with its closing
    tag) neither can be true, and the page is parsed right after anyway; every
    other response, and any page that does not look complete, gets botocore's
    own check.
    """

    def check(operation_model, response_dict, **kwargs):
        if operation_model.name == "ListObjectsV2" and response_dict and response_dict.get("status_code") == 200:
            body = response_dict.get("body") or b""
            if body.rstrip().endswith(b"</ListBucketResult>") and b"<ListBucketResult" in body[:512]:
                return None
        return original(operation_model=operation_model, response_dict=response_dict, **kwargs)

    return check


def skip_listing_reparse(client):
    """Swap botocore's 200-error check on ``client`` for listing_aware_200_check."""
    original = getattr(botocore.handlers, "_handle_200_error", None)
    if original is None:  # another botocore: keep whatever it does
        return
    events = client.meta.events
    events.unregister("before-parse.s3.*", original)
    events.register_first("before-parse.s3.*", listing_aware_200_check(original))


def aws_session(resolved):
    """A botocore session with the resolved options, set up as boto3.Session would set it up."""
    session = botocore.session.get_session()
    factory = FastParserFactory()
    factory.set_parser_defaults(timestamp_parser=fast_timestamp)
    session.register_component("response_parser_factory", factory)
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


def aws_client(module, service, prefix="", max_pool_connections=10, retry_mode="adaptive", max_attempts=10, **config_kwargs):
    """A botocore client for one side, failing the module with a clear message.

    ``max_attempts`` is botocore's ``retries.max_attempts``: retries after the
    first attempt.
    """
    return aws_client_and_credentials(module, service, prefix, max_pool_connections, retry_mode, max_attempts,
                                      **config_kwargs)[0]


def aws_client_and_credentials(module, service, prefix="", max_pool_connections=10, retry_mode="adaptive",
                               max_attempts=10, **config_kwargs):
    """aws_client() and the botocore credentials object it signs with (None when unsigned)."""
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
        client = session.create_client(
            service,
            region_name=resolved.get("region") or session.get_config_variable("region") or "us-east-1",
            endpoint_url=resolved.get("endpoint_url"),
            verify=verify,
            config=botocore_config(service, resolved, max_pool_connections, retry_mode, max_attempts, **config_kwargs),
        )
        if service == "s3":
            skip_listing_reparse(client)
        # the session resolved and cached these while creating the client: the same object, refreshed alike
        return client, session.get_credentials()
    except (BotoCoreError, ClientError, ValueError) as exc:
        module.fail_json(msg="Cannot create the %s client%s: %s" % (
            service, " for the %s side" % prefix.rstrip("_") if prefix else "", aws_error_message(exc)))
    return None, None  # not reached: fail_json exits


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
