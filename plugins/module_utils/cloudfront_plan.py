# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure planning functions of the cloudfront_invalidate module.

Nothing here talks to a service. Given the user's paths and/or S3 keys, the
plan is: normalised, URL-encoded invalidation paths; paths already covered by
a wildcard dropped; above a threshold, a collapse to at most 15 wildcard
paths; batches of at most 3,000 paths; one deterministic CallerReference per
batch.

Encoding (CloudFront compares invalidation paths with the URI viewers ask
for, byte for byte): non-ASCII characters (as UTF-8) and the characters RFC
1738 calls unsafe are percent-encoded, nothing else. S3 keys additionally get
``+`` (S3 reads a literal ``+`` in a URL path as a space), ``?``, ``#`` and
``*`` encoded, since those are part of the key, never a query, fragment or
wildcard. Hex digits of escapes are upper case.
"""

from __future__ import annotations

import hashlib
import heapq

#: CloudFront limits (per distribution, in progress at once).
MAX_PATHS_PER_BATCH = 3000
MAX_WILDCARDS = 15
#: CloudFront rejects longer invalidation paths.
MAX_PATH_LENGTH = 4000
#: Prefix of the CallerReference derived from run_id and paths.
REFERENCE_PREFIX = "directus-promote-"

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = "0123456789abcdefABCDEF"
#: Left as they are in a path: unreserved characters of RFC 1738 (without
#: ``+`` and ``*``, which have their own rules) and the characters RFC 1738
#: allows in an HTTP path segment.
PATH_SAFE = frozenset(_ALNUM + "-_.!$'(),;:@&=/")
#: In the query string of a user-given path, also ``?`` and ``+`` stay.
QUERY_SAFE = PATH_SAFE | frozenset("?+")

#: How many invalid entries one error message names.
_ERRORS_SHOWN = 10


class PlanError(ValueError):
    """Bad input: the message says what and where; nothing was touched."""


def _quote_char(char):
    return "".join("%%%02X" % byte for byte in char.encode("utf-8"))


def percent_encode(text, safe=PATH_SAFE, keep_escapes=False):
    """Percent-encode every character of ``text`` not in ``safe``.

    With ``keep_escapes``, an existing escape (``%`` and two hex digits) is kept
    (hex made upper case); a ``%`` not starting an escape is encoded as ``%25``.
    """
    out = []
    i = 0
    length = len(text)
    while i < length:
        char = text[i]
        if char == "%" and keep_escapes and i + 2 < length and text[i + 1] in _HEX and text[i + 2] in _HEX:
            out.append("%" + text[i + 1:i + 3].upper())
            i += 3
            continue
        if char in safe:
            out.append(char)
        else:
            try:
                out.append(_quote_char(char))
            except UnicodeEncodeError:
                raise PlanError("%r is not valid Unicode text (lone surrogate)" % text)
        i += 1
    return "".join(out)


def normalise_path(path):
    """Normalise one user-given invalidation path.

    Surrounding whitespace is removed, a leading ``/`` added, unsafe
    characters encoded (existing ``%XX`` escapes are kept). A ``?`` starts a
    query string. ``*`` is a wildcard and only allowed as the last character.
    Raises PlanError.
    """
    if not isinstance(path, str):
        raise PlanError("path %r is not a string" % (path,))
    text = path.strip()
    if not text:
        raise PlanError("empty path")
    wildcard = text.endswith("*")
    body = text[:-1] if wildcard else text
    if "*" in body:
        raise PlanError("path %r: '*' is only allowed as the last character (CloudFront wildcard)" % path)
    if not body.startswith("/"):
        body = "/" + body
    location, sep, query = body.partition("?")
    encoded = percent_encode(location, PATH_SAFE, keep_escapes=True)
    if sep:
        encoded += "?" + percent_encode(query, QUERY_SAFE, keep_escapes=True)
    encoded += "*" if wildcard else ""
    _check_length(encoded, path)
    return encoded


def _check_length(encoded, original):
    if len(encoded) > MAX_PATH_LENGTH:
        raise PlanError("path %r is %d characters long once encoded; CloudFront allows %d" % (
            original[:60] + "...", len(encoded), MAX_PATH_LENGTH))


def normalise_path_prefix(path_prefix):
    """The CDN path prefix for keys: '' or '/a/b' (no trailing slash, no wildcard, no query)."""
    text = (path_prefix or "").strip()
    if not text.strip("/"):
        return ""
    if "*" in text or "?" in text:
        raise PlanError("path_prefix %r must not contain '*' or '?'" % path_prefix)
    return normalise_path(text).rstrip("/")


def key_to_path(key, key_prefix="", path_prefix=""):
    """The CDN path of an S3 object key.

    ``key_prefix`` is removed from the key (a non-empty prefix is a folder:
    ``uploads`` and ``uploads/`` both take ``uploads/a.jpg`` to ``a.jpg``);
    ``path_prefix`` must already be normalised (see normalise_path_prefix).
    Every character of the rest of the key that could be read as something
    else in a URL is encoded. Raises PlanError for a key outside key_prefix.
    """
    if not isinstance(key, str):
        raise PlanError("key %r is not a string" % (key,))
    rest = key
    if key_prefix:
        folder = key_prefix if key_prefix.endswith("/") else key_prefix + "/"
        if key == key_prefix.rstrip("/") or key == folder:
            rest = ""
        elif key.startswith(folder):
            rest = key[len(folder):]
        else:
            raise PlanError("key %r is not under key_prefix %r" % (key, key_prefix))
    encoded = path_prefix + "/" + percent_encode(rest, PATH_SAFE)
    _check_length(encoded, key)
    return encoded


def _collect(items, convert, label, errors):
    out = []
    for item in items or ():
        try:
            out.append(convert(item))
        except PlanError as exc:
            errors.append("%s: %s" % (label, exc))
    return out


def normalise_paths(paths=None, keys=None, key_prefix="", path_prefix=""):
    """All invalidation paths, normalised, de-duplicated and sorted.

    Every bad entry is reported in one PlanError.
    """
    errors = []
    try:
        prefix = normalise_path_prefix(path_prefix)
    except PlanError as exc:
        raise PlanError(str(exc))
    result = set(_collect(paths, normalise_path, "paths", errors))
    result.update(_collect(keys, lambda key: key_to_path(key, key_prefix or "", prefix), "keys", errors))
    if errors:
        shown = errors[:_ERRORS_SHOWN]
        more = len(errors) - len(shown)
        raise PlanError("%d invalid entr%s: %s%s" % (
            len(errors), "y" if len(errors) == 1 else "ies", "; ".join(shown),
            " (and %d more)" % more if more else ""))
    return sorted(result)


def is_wildcard(path):
    return path.endswith("*")


def remove_covered(paths):
    """Drop paths a wildcard of the same list already covers. Input and output sorted."""
    items = sorted(_items(paths))
    kept = []
    cover = None
    for stem, exact in items:
        if cover is not None and stem.startswith(cover):
            continue
        kept.append(stem if exact else stem + "*")
        if not exact:
            cover = stem
    return sorted(kept)


def _items(paths):
    """(stem, exact) pairs: the wildcard '/a*' is ('/a', 0), sorting before the path '/a' ('/a', 1)."""
    return [(p[:-1], 0) if is_wildcard(p) else (p, 1) for p in paths]


def _common_prefix(first, last):
    n = min(len(first), len(last))
    i = 0
    while i < n and first[i] == last[i]:
        i += 1
    return first[:i]


def collapse(paths, threshold, max_wildcards=MAX_WILDCARDS):
    """Collapse a long list of paths into a few wildcards.

    Does nothing unless there are more than ``threshold`` paths or more than
    ``max_wildcards`` wildcard paths. Then the result has at most
    ``min(max(threshold, 1), max_wildcards)`` paths (a few wildcards, and
    single paths where a wildcard would cover just one), covers every input
    path, and is as narrow as a greedy split of the common prefixes (broadest
    first) allows — ``/*`` in the worst case.

    Returns (paths, collapsed, reason).
    """
    paths = remove_covered(paths)
    wildcards = sum(1 for p in paths if is_wildcard(p))
    reasons = []
    if len(paths) > threshold:
        reasons.append("%d paths exceed collapse_threshold %d" % (len(paths), threshold))
    if wildcards > max_wildcards:
        reasons.append("%d wildcard paths exceed CloudFront's limit of %d" % (wildcards, max_wildcards))
    if not reasons or len(paths) < 2:
        return paths, False, None
    total_limit = min(max(threshold, 1), max_wildcards)
    items = sorted(_items(paths))
    stems = [stem for stem, _exact in items]

    def group(lo, hi):
        """A group of items[lo:hi]: its stem, and whether it needs a wildcard."""
        if hi - lo == 1:
            return (stems[lo], not items[lo][1], lo, hi)
        return (_common_prefix(stems[lo], stems[hi - 1]), True, lo, hi)

    def children(grp):
        stem, _wild, lo, hi = grp
        depth = len(stem)
        out = []
        i = lo
        if len(stems[i]) == depth:
            if not items[i][1]:
                return None  # a wildcard at exactly this stem: nothing narrower covers it
            out.append((stems[i], False, i, i + 1))
            i += 1
        while i < hi:
            # All stems in items[lo:hi] start with stem; the ones sharing the next
            # character are contiguous. Encoded paths are ASCII, so next char + 1 bounds them.
            nxt = stems[i][depth]
            bound = stem + chr(ord(nxt) + 1)
            j = _bisect_left(stems, bound, i, hi)
            out.append(group(i, j))
            i = j
        return out

    final = []
    root = group(0, len(items))
    heap = [(len(root[0]), root[0], root)]
    count = 1
    wild_count = 1 if root[1] else 0
    while heap:
        _depth, _stem, grp = heapq.heappop(heap)
        if not grp[1] or grp[3] - grp[2] == 1:
            final.append(grp)
            continue
        kids = children(grp)
        if not kids:
            final.append(grp)
            continue
        new_wild = wild_count - 1 + sum(1 for kid in kids if kid[1])
        new_count = count - 1 + len(kids)
        if new_wild > max_wildcards or new_count > total_limit:
            final.append(grp)
            continue
        wild_count, count = new_wild, new_count
        for kid in kids:
            heapq.heappush(heap, (len(kid[0]), kid[0], kid))
    result = sorted(stem + "*" if wild else stem for stem, wild, _lo, _hi in final)
    if result == ["/*"]:
        outcome = "collapsed to '/*' (everything)"
    else:
        outcome = "collapsed to %d path%s (%d wildcard%s)" % (
            len(result), "" if len(result) == 1 else "s", wild_count, "" if wild_count == 1 else "s")
    return result, True, "%s: %s" % ("; ".join(reasons), outcome)


def _bisect_left(seq, value, lo, hi):
    while lo < hi:
        mid = (lo + hi) // 2
        if seq[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


def split_batches(paths, size=MAX_PATHS_PER_BATCH):
    """Consecutive batches of at most ``size`` paths (sorted input stays sorted)."""
    if size < 1:
        raise PlanError("batch size must be at least 1")
    return [paths[i:i + size] for i in range(0, len(paths), size)]


def derived_reference(run_id, paths):
    """A CallerReference from run_id and the sorted paths: same inputs, same reference."""
    digest = hashlib.sha256()
    digest.update(("run_id:%s\n" % run_id).encode("utf-8"))
    for path in sorted(paths):
        digest.update(path.encode("utf-8") + b"\n")
    return REFERENCE_PREFIX + digest.hexdigest()[:40]


def caller_references(batches, run_id=None, caller_reference=None):
    """One CallerReference per batch.

    An explicit caller_reference is used as is (suffixed -1, -2, ... with
    several batches); otherwise it is derived from run_id and all paths.
    """
    if caller_reference:
        base = caller_reference
    elif run_id is not None and run_id != "":
        base = derived_reference(run_id, [p for batch in batches for p in batch])
    else:
        raise PlanError("either caller_reference or run_id is needed to name the invalidation")
    if len(batches) == 1:
        return [base]
    return ["%s-%d" % (base, i + 1) for i in range(len(batches))]


def build_plan(paths=None, keys=None, key_prefix="", path_prefix="", collapse_threshold=100,
               run_id=None, caller_reference=None, batch_size=MAX_PATHS_PER_BATCH, max_wildcards=MAX_WILDCARDS):
    """The whole plan: {paths, collapsed, collapse_reason, batches: [{caller_reference, paths}]}."""
    if collapse_threshold is None or collapse_threshold < 0:
        raise PlanError("collapse_threshold must be 0 or more")
    final = normalise_paths(paths, keys, key_prefix, path_prefix)
    collapsed, reason = False, None
    if final:
        final, collapsed, reason = collapse(final, collapse_threshold, max_wildcards)
    batches = split_batches(final, batch_size) if final else []
    refs = caller_references(batches, run_id, caller_reference) if batches else []
    return {
        "paths": final,
        "collapsed": collapsed,
        "collapse_reason": reason,
        "batches": [{"caller_reference": ref, "paths": batch} for ref, batch in zip(refs, batches)],
    }


def same_paths(a, b):
    return sorted(set(a)) == sorted(set(b))


def status_is(status, wanted):
    """Case-insensitive status comparison (the emulator says COMPLETED, AWS Completed)."""
    return (status or "").strip().lower() == wanted.lower()


def backoff_delays(initial=1.0, factor=2.0, maximum=20.0):
    """Endless exponential back-off delays: initial, initial*factor, ... capped at maximum."""
    delay = initial
    while True:
        yield min(delay, maximum)
        delay = min(delay * factor, maximum)
