# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Plain CopyObject requests sent without botocore's per-call machinery.

A first mirror of many small objects is one CopyObject per object, and each
botocore call spends several times the CPU of the HTTP request itself
(event hooks, parameter validation, endpoint rules, a generic signer); on a
machine shared with the S3 server that CPU is taken from the server. For
that one request (copy an object keeping its metadata and tags), DirectCopy
sends what botocore sends, learned from botocore itself:

- the first copy goes through botocore; its request as botocore last sent
  it (URL, headers, Authorization), once the copy succeeded, gives the URL of
  the bucket's keys and the signing region and service;
- DirectCopy checks it would have built that very request: the same headers
  and, signed with the same date, the same SigV4 signature (``sign_v4``).
  Anything else botocore sent (another signing scheme, extra headers such as
  an expected bucket owner, an access point's copy source) leaves every copy
  with botocore;
- credentials come from botocore's provider chain, frozen per request, so
  refreshed credentials are picked up;
- requests go through the client's own HTTP session (TLS verification, CA
  bundle, proxies, timeouts, connection pool).

The first answer that is not a complete CopyObjectResult, or any transport
error, turns it off for the rest of the run; that copy and all that follow go
through botocore, whose retry mode and error handling take over. A CopyObject
is idempotent, so sending one again is safe.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import html
import re
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit

try:
    from botocore.awsrequest import AWSPreparedRequest
    from botocore.exceptions import BotoCoreError
    from botocore.utils import percent_encode
except ImportError:  # pragma: no cover - the modules report missing botocore
    BotoCoreError = Exception

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
# what botocore sends with a CopyObject besides the headers DirectCopy signs;
# SDK telemetry and the length of the empty body only
UNSIGNED_HEADERS = {"user-agent", "amz-sdk-invocation-id", "amz-sdk-request", "content-length"}
AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<access_key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=[0-9a-f]{64}$")
ETAG = re.compile(rb"<ETag>([^<]*)</ETag>")
ERROR_CODE = re.compile(rb"<Code>([^<]{1,100})</Code>")


def uri_encode(text):
    """Percent-encoding of an object key in a path or x-amz-copy-source, as botocore does it."""
    return percent_encode(text, safe="/~")


def canonical_host(url):
    """The Host header botocore signs for ``url``: the default port left out."""
    parts = urlsplit(url)
    if (parts.scheme, parts.port) in (("http", 80), ("https", 443)):
        return parts.hostname
    return parts.netloc


def signing_key(secret_key, day, region, service):
    key = hmac.new(("AWS4" + secret_key).encode("utf-8"), day.encode("ascii"), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def sign_v4(method, path, headers, access_key, key, region, service, amz_date, payload_hash=EMPTY_SHA256):
    """The Authorization header of a request without query string (pure).

    ``headers`` (lowercase names) are all signed; ``key`` is signing_key()'s
    result for ``amz_date``'s day. S3 signs the path as sent, without encoding
    it again.
    """
    names = sorted(headers)
    canonical_headers = "".join("%s:%s\n" % (name, " ".join(str(headers[name]).split())) for name in names)
    signed = ";".join(names)
    canonical_request = "\n".join((method, path, "", canonical_headers, signed, payload_hash))
    scope = "%s/%s/%s/aws4_request" % (amz_date[:8], region, service)
    string_to_sign = "\n".join((ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()))
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return "%s Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (ALGORITHM, access_key, scope, signed, signature)


def copy_headers(source_bucket, source_key, host, amz_date, token, payload_hash=EMPTY_SHA256):
    """The signed headers of a CopyObject keeping metadata and tags (pure)."""
    headers = {
        "host": host,
        "x-amz-content-sha256": payload_hash,
        "x-amz-copy-source": uri_encode(source_bucket + "/" + source_key),
        "x-amz-date": amz_date,
        "x-amz-metadata-directive": "COPY",
        "x-amz-tagging-directive": "COPY",
    }
    if token:
        headers["x-amz-security-token"] = token
    return headers


def text(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def learn_copy_request(method, url, sent_headers, target_key, source_bucket, source_key, credentials):
    """From botocore's CopyObject as sent: (URL prefix of keys, region, service, payload hash), or a reason (pure)."""
    headers = {name.lower(): text(value) for name, value in sent_headers.items()}
    parts = urlsplit(url)
    encoded_key = uri_encode(target_key)
    if method != "PUT" or parts.query or parts.fragment or not parts.path.endswith("/" + encoded_key):
        return None, "botocore sent the copy as %s %s" % (method, parts.path)
    auth = AUTHORIZATION.match(headers.get("authorization", ""))
    if not auth:
        return None, "botocore did not sign the copy with plain SigV4 headers"
    if auth.group("access_key") != credentials.access_key:
        return None, "botocore signed with other credentials"
    signed = {name: headers.get(name) for name in auth.group("signed").split(";")}
    signed["host"] = canonical_host(url)
    payload_hash = headers.get("x-amz-content-sha256", "")
    expected = copy_headers(source_bucket, source_key, signed["host"], headers.get("x-amz-date", ""),
                            credentials.token, payload_hash)
    if signed != expected or set(headers) - set(expected) - UNSIGNED_HEADERS - {"authorization"}:
        extra = sorted((set(headers) ^ set(expected)) - UNSIGNED_HEADERS - {"authorization", "host"})
        differ = sorted(name for name in expected if name in signed and signed[name] != expected[name])
        return None, "botocore's copy request has other headers (%s)" % ", ".join(extra + differ)
    region, service, amz_date = auth.group("region"), auth.group("service"), expected["x-amz-date"]
    mine = sign_v4(method, parts.path, expected, credentials.access_key,
                   signing_key(credentials.secret_key, amz_date[:8], region, service), region, service, amz_date, payload_hash)
    if mine != headers["authorization"]:
        return None, "the module's SigV4 signature of botocore's copy request differs from botocore's"
    prefix = "%s://%s%s" % (parts.scheme, parts.netloc, parts.path[:-len(encoded_key)])
    return (prefix, region, service, payload_hash), None


class DirectCopy:
    """CopyObject (metadata and tags copied) into one target bucket, sent as the module docstring says."""

    def __init__(self, client, credentials, user_agent):
        self.sent = 0
        self.enabled = False
        self.stopped_by = None
        self._lock = threading.Lock()
        self._watch = threading.local()
        self._keys = {}
        self._user_agent = user_agent
        self._credentials = credentials
        self._http = getattr(getattr(client, "_endpoint", None), "http_session", None)
        if credentials is None:
            self.stopped_by = "no credentials (unsigned requests)"
        elif not callable(getattr(self._http, "send", None)):
            self.stopped_by = "botocore's HTTP session is not reachable"
        self._learning = self.stopped_by is None
        if self._learning:
            client.meta.events.register_first("before-send.s3.CopyObject", self._learn)

    @contextmanager
    def watching(self, target_key, source_bucket, source_key):
        """Let the CopyObject botocore sends from this thread, for these keys, teach the template once it succeeded.

        botocore may send one call more than once (a retry, or a redirect to the
        bucket's region): the last request sent is the one that worked. A call
        that raises teaches nothing; the next copy is watched instead.
        """
        self._watch.copy = (target_key, source_bucket, source_key) if self._learning else None
        self._watch.sent = None
        try:
            yield
            sent = self._watch.sent
            if sent is not None:
                self._commit(sent, self._watch.copy)
        finally:
            self._watch.copy = self._watch.sent = None

    def _learn(self, request, **kwargs):
        if getattr(self._watch, "copy", None) is not None:
            self._watch.sent = (request.method, request.url, dict(request.headers.items()))

    def _commit(self, sent, watched):
        with self._lock:
            if not self._learning:
                return
            self._learning = False
            template, reason = learn_copy_request(*sent, *watched, credentials=self._credentials.get_frozen_credentials())
            if template:
                self._prefix, self._region, self._service, self._payload_hash = template
                self._host = canonical_host(self._prefix)
                self._path_prefix = urlsplit(self._prefix).path
                self.enabled = True
            else:
                self.stopped_by = reason

    def stop(self, reason):
        with self._lock:
            if self.enabled:
                self.enabled = False
                self.stopped_by = reason

    def _key(self, secret_key, day):
        key = self._keys.get((secret_key, day))
        if key is None:
            key = self._keys[(secret_key, day)] = signing_key(secret_key, day, self._region, self._service)
        return key

    def copy(self, target_key, source_bucket, source_key):
        """The new object's ETag (as sent), or None when the copy must go through botocore."""
        if not self.enabled:
            return None
        credentials = self._credentials.get_frozen_credentials()
        amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        encoded_key = uri_encode(target_key)
        headers = copy_headers(source_bucket, source_key, self._host, amz_date, credentials.token, self._payload_hash)
        headers["authorization"] = sign_v4(
            "PUT", self._path_prefix + encoded_key, headers, credentials.access_key,
            self._key(credentials.secret_key, amz_date[:8]), self._region, self._service, amz_date, self._payload_hash)
        headers["user-agent"] = self._user_agent
        try:
            response = self._http.send(AWSPreparedRequest("PUT", self._prefix + encoded_key, headers, b"", False))
            body = response.content
        except (BotoCoreError, OSError) as exc:
            self.stop("%s: %s" % (type(exc).__name__, exc))
            return None
        if response.status_code == 200 and body.rstrip().endswith(b"</CopyObjectResult>"):
            etag = ETAG.search(body)
            if etag:
                with self._lock:
                    self.sent += 1
                return html.unescape(etag.group(1).decode("utf-8"))
        code = ERROR_CODE.search(body or b"")
        self.stop("HTTP %s%s" % (response.status_code, " " + code.group(1).decode("utf-8", "replace") if code else ""))
        return None

    def report(self):
        return {"enabled": self.enabled, "sent": self.sent, "stopped_by": self.stopped_by}
