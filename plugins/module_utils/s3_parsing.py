# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Faster parsing of S3 answers, for s3_mirror's own clients only.

A mirror reads its listings (1,000 objects per ListObjectsV2 page) through
botocore, whose generic parser spends most of the client's CPU on them. The
shortcuts here give the same parsed results (the unit tests parse pages both
ways and compare). They are applied by ``setup_session`` and ``setup_client``
to the session and client that s3_mirror creates for a run that writes;
nothing here changes botocore for any other client: every other module, and
s3_mirror in check mode (the promotion's preflight), use plain botocore.
"""

from __future__ import annotations

import datetime

try:
    import botocore.handlers
    from botocore.parsers import ResponseParserFactory, RestXMLParser
    from botocore.utils import parse_timestamp
except ImportError:  # pragma: no cover - the modules report missing botocore
    ResponseParserFactory = RestXMLParser = object


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


def setup_session(session):
    """Make the clients of this (s3_mirror's own) botocore session parse S3 answers with the shortcuts."""
    factory = FastParserFactory()
    factory.set_parser_defaults(timestamp_parser=fast_timestamp)
    session.register_component("response_parser_factory", factory)


def setup_client(client):
    """Skip the second parse of complete listing pages on this (s3_mirror's own) client."""
    skip_listing_reparse(client)
