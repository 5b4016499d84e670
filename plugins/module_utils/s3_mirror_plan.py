# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure planning functions of the s3_mirror module.

Nothing here talks to a service: listings come in as iterables of
``(key, size, etag)`` tuples, so every decision is unit-tested without S3.

Memory: the two listings are merged as two sorted streams (S3 returns
ListObjectsV2 keys in UTF-8 binary order, which is Python's code point order
for ``str``), so neither listing is ever held. Only the actions to execute
are kept, in a compact byte buffer (about key length + 60 bytes per action);
unchanged objects only count.
"""

from __future__ import annotations

import fnmatch
import math
import re
from array import array

#: User metadata key (``x-amz-meta-<key>``) recording the source ETag on a copy
#: whose own ETag cannot equal the source's (multipart copies and uploads,
#: copies of multipart-uploaded objects, encrypted objects).
SOURCE_ETAG_METADATA = "mirror-source-etag"

#: The object headers that must be identical on the copy (HeadObject/GetObject
#: response names, which are also the CreateMultipartUpload/PutObject parameter names).
COPIED_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding", "ContentLanguage", "Expires")

ADD = 0
UPDATE = 1

MODES = ("mirror", "copy", "prune")

S3_MAX_PARTS = 10000
S3_MIN_PART = 5 * 1024 * 1024
S3_MAX_PART = 5 * 1024 * 1024 * 1024


class PlanError(Exception):
    """A problem that makes a plan unsafe or impossible; the message is for the user."""


# ---------------------------------------------------------------- keys and filters

def normalize_prefix(prefix):
    """Folder semantics: a non-empty prefix always ends with ``/``.

    ``staging`` would otherwise also match ``staging-old/...``, and a prune
    could delete objects outside the intended folder.
    """
    prefix = prefix or ""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return prefix


def remap_key(source_key, source_prefix, target_prefix):
    """``a/x`` under source prefix ``a/`` lands at ``b/x`` under target prefix ``b/``."""
    if not source_key.startswith(source_prefix):
        raise ValueError("key %r is not under prefix %r" % (source_key, source_prefix))
    return target_prefix + source_key[len(source_prefix):]


def ranges_overlap(source_bucket, source_prefix, target_bucket, target_prefix):
    """True when source and target ranges of one bucket contain each other."""
    if source_bucket != target_bucket:
        return False
    return source_prefix.startswith(target_prefix) or target_prefix.startswith(source_prefix)


def key_filter(include=None, exclude=None):
    """A predicate on keys relative to the prefix.

    Globs use fnmatch syntax (``*``, ``?``, ``[seq]``), case-sensitive, and
    ``*`` also matches ``/``. A key is selected when it matches any include
    (or there is none) and no exclude. Returns None when nothing is filtered.
    """
    include = [p for p in (include or []) if p is not None]
    exclude = [p for p in (exclude or []) if p is not None]
    if not include and not exclude:
        return None
    inc = re.compile("|".join("(?:%s)" % fnmatch.translate(p) for p in include), re.S) if include else None
    exc = re.compile("|".join("(?:%s)" % fnmatch.translate(p) for p in exclude), re.S) if exclude else None

    def selected(key):
        if inc is not None and not inc.match(key):
            return False
        if exc is not None and exc.match(key):
            return False
        return True

    return selected


def normalize_etag(etag):
    return (etag or "").strip().strip('"')


def is_multipart_etag(etag):
    return "-" in normalize_etag(etag)


def iter_listing(pages, prefix="", selected=None, side="listing"):
    """Relative ``(key, size, etag)`` tuples from ListObjectsV2 pages, in order.

    ``pages`` is any iterable of response dicts (a boto3 paginator, or test
    data). Keys must come in strictly increasing order: a plan merged from an
    unordered listing could delete objects that exist, so it fails instead.
    """
    plen = len(prefix)
    last = None
    for page in pages:
        for obj in page.get("Contents") or ():
            key = obj["Key"]
            if not key.startswith(prefix):
                raise PlanError("the %s returned key %r outside prefix %r" % (side, key, prefix))
            rel = key[plen:]
            if last is not None and rel <= last:
                raise PlanError(
                    "the %s is not in UTF-8 binary key order (%r after %r); refusing to plan on it" % (side, key, prefix + last))
            last = rel
            if selected is not None and not selected(rel):
                continue
            yield rel, obj.get("Size", 0), normalize_etag(obj.get("ETag"))


# ---------------------------------------------------------------- compact action store

class Entries:
    """Append-only compact list of ``(key, size, etag, flag)``.

    Strings live UTF-8 encoded in one bytearray with offsets in typed arrays:
    about ``len(key) + len(etag) + 25`` bytes an entry instead of ~250 for
    tuples of Python objects.
    """

    __slots__ = ("_blob", "_ends", "_sizes", "_flags")

    def __init__(self):
        self._blob = bytearray()
        self._ends = array("q")
        self._sizes = array("q")
        self._flags = bytearray()

    def append(self, key, size, etag="", flag=0):
        self._blob += key.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._blob))
        self._blob += etag.encode("utf-8", "surrogatepass")
        self._ends.append(len(self._blob))
        self._sizes.append(size)
        self._flags.append(flag)

    def __len__(self):
        return len(self._sizes)

    def __getitem__(self, index):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        start = self._ends[2 * index - 1] if index else 0
        mid = self._ends[2 * index]
        end = self._ends[2 * index + 1]
        blob = self._blob
        return (bytes(blob[start:mid]).decode("utf-8", "surrogatepass"), self._sizes[index],
                bytes(blob[mid:end]).decode("utf-8", "surrogatepass"), self._flags[index])

    def __iter__(self):
        for index in range(len(self)):
            yield self[index]

    def keys(self, limit=None):
        count = len(self) if limit is None else min(limit, len(self))
        return [self[i][0] for i in range(count)]

    def total_size(self):
        return sum(self._sizes)

    def count_flag(self, flag):
        return self._flags.count(flag)


# ---------------------------------------------------------------- the plan

class Plan:
    """What a run does. ``copies`` (flag ADD/UPDATE), ``verify`` and ``deletes`` hold relative keys.

    ``verify`` holds objects of equal size whose ETags differ: the target's
    recorded source ETag (metadata) decides whether they changed, which only
    a HeadObject can tell; ``resolve_verified`` settles them.
    """

    def __init__(self, mode):
        self.mode = mode
        self.copies = Entries()
        self.verify = Entries()
        self.deletes = Entries()
        self.unchanged = 0
        self.source_objects = 0
        self.target_objects = 0
        self.source_bytes = 0
        self.missing_ignored = 0   # prune: source-only objects not copied
        self.changed_ignored = 0   # prune: differing objects not updated
        self.extra_ignored = 0     # copy: target-only objects not deleted

    @property
    def to_add(self):
        return len(self.copies) - self.to_update

    @property
    def to_update(self):
        return self.copies.count_flag(UPDATE)

    @property
    def bytes_to_copy(self):
        return self.copies.total_size()

    def changed(self):
        return bool(len(self.copies) or len(self.deletes) or len(self.verify))

    def summary(self):
        return {
            "mode": self.mode,
            "source_objects": self.source_objects,
            "target_objects": self.target_objects,
            "source_bytes": self.source_bytes,
            "to_copy": self.to_add,
            "to_update": self.to_update,
            "to_delete": len(self.deletes),
            "unchanged": self.unchanged,
            "bytes_to_copy": self.bytes_to_copy,
            "bytes_to_delete": self.deletes.total_size(),
            "unverified": len(self.verify),
            "ignored_by_mode": {
                "missing_not_copied": self.missing_ignored,
                "changed_not_updated": self.changed_ignored,
                "extra_not_deleted": self.extra_ignored,
            },
        }


_END = object()


def build_plan(source, target, mode="mirror"):
    """Merge two sorted listings of relative ``(key, size, etag)`` into a Plan.

    Both iterables are consumed once, in step; neither is held.
    """
    if mode not in MODES:
        raise PlanError("unknown mode %r" % (mode,))
    plan = Plan(mode)
    do_copy = mode in ("mirror", "copy")
    do_delete = mode in ("mirror", "prune")
    src_iter = iter(source)
    tgt_iter = iter(target)
    src = next(src_iter, _END)
    tgt = next(tgt_iter, _END)
    while src is not _END or tgt is not _END:
        if tgt is _END or (src is not _END and src[0] < tgt[0]):
            plan.source_objects += 1
            plan.source_bytes += src[1]
            if do_copy:
                plan.copies.append(src[0], src[1], src[2], ADD)
            else:
                plan.missing_ignored += 1
            src = next(src_iter, _END)
        elif src is _END or tgt[0] < src[0]:
            plan.target_objects += 1
            if do_delete:
                plan.deletes.append(tgt[0], tgt[1], tgt[2])
            else:
                plan.extra_ignored += 1
            tgt = next(tgt_iter, _END)
        else:
            plan.source_objects += 1
            plan.target_objects += 1
            plan.source_bytes += src[1]
            key, size, etag = src
            if size == tgt[1] and etag == tgt[2]:
                plan.unchanged += 1
            elif not do_copy:
                plan.changed_ignored += 1
            elif size == tgt[1] and etag:
                # Same size, other ETag: a multipart copy recorded the source ETag?
                plan.verify.append(key, size, etag)
            else:
                plan.copies.append(key, size, etag, UPDATE)
            src = next(src_iter, _END)
            tgt = next(tgt_iter, _END)
    return plan


def is_unchanged_copy(source_etag, target_metadata):
    """Whether a target object's metadata records the source ETag it was copied from."""
    recorded = (target_metadata or {}).get(SOURCE_ETAG_METADATA)
    return bool(recorded) and normalize_etag(recorded) == normalize_etag(source_etag)


def resolve_verified(plan, unchanged):
    """Settle ``plan.verify``; ``unchanged`` holds one bool per entry, in order.

    Each bool is ``is_unchanged_copy(source etag, target metadata)`` for that
    entry: objects whose metadata records the current source ETag are
    unchanged, the others become updates. Returns the plan.
    """
    unchanged = list(unchanged)
    if len(unchanged) != len(plan.verify):
        raise ValueError("%d verification results for %d objects" % (len(unchanged), len(plan.verify)))
    for (key, size, etag, _flag), same in zip(plan.verify, unchanged):
        if same:
            plan.unchanged += 1
        else:
            plan.copies.append(key, size, etag, UPDATE)
    plan.verify = Entries()
    return plan


# ---------------------------------------------------------------- copy decisions

def copy_strategy(size, source_etag, threshold):
    """``single`` (one CopyObject/PutObject) or ``multipart`` for one object."""
    return "multipart" if size > threshold else "single"


def needs_recorded_etag(source_etag, multipart):
    """Whether the copy's ETag cannot equal the source's, so metadata must record it."""
    return bool(multipart) or is_multipart_etag(source_etag)


def part_ranges(size, chunksize):
    """Inclusive byte ranges of the parts of a multipart copy.

    The chunk size grows when it would need more than 10,000 parts, and stays
    within S3's 5 MiB (except the last part) .. 5 GiB limits.
    """
    if size <= 0:
        return [(0, -1)]
    chunk = max(int(chunksize), S3_MIN_PART)
    if -(-size // chunk) > S3_MAX_PARTS:
        chunk = -(-size // S3_MAX_PARTS)
    chunk = min(chunk, S3_MAX_PART)
    return [(start, min(start + chunk, size) - 1) for start in range(0, size, chunk)]


def copy_metadata(head, source_etag=None, record_etag=False):
    """Parameters that give a new object the source's headers and user metadata.

    ``head`` is a HeadObject/GetObject response. Used where S3 cannot copy
    them itself (multipart uploads, streamed copies, MetadataDirective=REPLACE).
    """
    params = {}
    for name in COPIED_HEADERS:
        value = head.get(name)
        if value not in (None, ""):
            params[name] = value
    metadata = dict(head.get("Metadata") or {})
    if record_etag:
        metadata[SOURCE_ETAG_METADATA] = normalize_etag(source_etag)
    params["Metadata"] = metadata
    return params


def tagging_header(tag_set):
    """A GetObjectTagging TagSet as the URL-encoded ``Tagging`` parameter ('' when none)."""
    from urllib.parse import urlencode

    return urlencode([(tag["Key"], tag["Value"]) for tag in (tag_set or [])])


# ---------------------------------------------------------------- guards

#: The deletion guard's options, as delete_guard and s3_mirror name them.
GUARD_OPTIONS = ("max_delete", "max_delete_percent", "max_delete_percent_min_count", "allow_empty_source", "force_delete")


def delete_guard(plan, max_delete=1000, max_delete_percent=50.0, max_delete_percent_min_count=10,
                 allow_empty_source=False, force_delete=False, names=None, sample=20):
    """The refusal message for a plan's deletions, or None when they may go ahead.

    Refused are deletions planned on a source that lists no object (unless
    ``allow_empty_source``), more than ``max_delete`` deletions, and deletions
    of more than ``max_delete_percent`` of the target's objects in scope
    (both unless ``force_delete``). The percentage spares fewer than
    ``max_delete_percent_min_count`` deletions when the source lists at least
    as many objects as would be deleted: a young target with a few objects of
    its own, not a source that is a small fraction of the target.

    Each reason says which option to change, under the name ``names`` gives
    it (option -> name, e.g. a role variable) or its own. The message names
    what would have been deleted.
    """
    count = len(plan.deletes)
    if not count:
        return None

    def name(option):
        return (names or {}).get(option) or option

    force = "set %s=true" % name("force_delete")
    reasons = []
    if plan.source_objects == 0 and not allow_empty_source:
        reasons.append("the source lists no object (set %s=true to empty the target)" % name("allow_empty_source"))
    if not force_delete:
        if max_delete is not None and count > max_delete:
            reasons.append("more than %s=%d (raise it to %d, or %s)" % (name("max_delete"), max_delete, count, force))
        percent = 100.0 * count / plan.target_objects
        spared = count < max_delete_percent_min_count and count <= plan.source_objects
        if max_delete_percent is not None and percent > max_delete_percent and not spared:
            reasons.append("%.1f%% of the target's %s, more than %s=%g%s (raise it to %d, or %s)" % (
                percent, objects(plan.target_objects), name("max_delete_percent"), max_delete_percent,
                ", from a source of only %s" % objects(plan.source_objects) if 0 < plan.source_objects < count else "",
                math.ceil(percent), force))
    if not reasons:
        return None
    keys = plan.deletes.keys(sample)
    more = count - len(keys)
    return "Refusing to delete %s: %s. Would delete: %s%s" % (
        objects(count), "; ".join(reasons), ", ".join(keys), " ... and %d more" % more if more > 0 else "")


def objects(count):
    return "%d object%s" % (count, "" if count == 1 else "s")


# ---------------------------------------------------------------- results and diff

def failure_message(failed, nothing_deleted=False, shown=20):
    """One message for the (key, reason) pairs of objects that failed.

    Keys are grouped by reason, so a reason shared by many keys (an outage, a
    permission) is said once; at most ``shown`` keys are named.
    """
    reasons = {}
    for key, reason in sorted(failed):
        reasons.setdefault(reason, []).append(key)
    named = 0
    parts = []
    for reason, keys in sorted(reasons.items(), key=lambda item: item[1][0]):
        if named >= shown:
            break
        take = keys[:shown - named]
        named += len(take)
        parts.append("%s (%s%s)" % (reason, ", ".join(take), ", ..." if len(take) < len(keys) else ""))
    total = len(failed)
    message = "%d object%s failed after retries%s: %s" % (
        total, "" if total == 1 else "s", "; nothing was deleted" if nothing_deleted else "", "; ".join(parts))
    if total > named:
        message += " ... and %d more" % (total - named)
    return message


def truncated(keys, total, limit):
    """``(list, total, truncated)`` of at most ``limit`` keys."""
    keys = list(keys)[:limit] if limit is not None else list(keys)
    return keys, total, total > len(keys)


def plan_key_lists(plan, target_prefix, limit):
    """changed_keys/deleted_keys (full target keys, truncated) with totals."""
    changed = [target_prefix + key for key in plan.copies.keys(limit)]
    deleted = [target_prefix + key for key in plan.deletes.keys(limit)]
    return {
        "changed_keys": changed,
        "changed_keys_total": len(plan.copies),
        "deleted_keys": deleted,
        "deleted_keys_total": len(plan.deletes),
        "keys_truncated": len(changed) < len(plan.copies) or len(deleted) < len(plan.deletes),
    }


def build_diff(plan, target_bucket, target_prefix, limit):
    """Ansible diff of the target: objects replaced or deleted before, added or replaced after."""
    before, after = [], []
    shown = 0
    for key, size, etag, flag in plan.copies:
        if shown >= limit:
            break
        shown += 1
        if flag == UPDATE:
            before.append("%s%s" % (target_prefix, key))
            after.append("%s%s (updated, %d bytes)" % (target_prefix, key, size))
        else:
            after.append("%s%s (added, %d bytes)" % (target_prefix, key, size))
    copies_more = len(plan.copies) - shown
    if copies_more > 0:
        after.append("... and %d more objects added or updated" % copies_more)
    shown = 0
    for key, size, etag, flag in plan.deletes:
        if shown >= limit:
            break
        shown += 1
        before.append("%s%s (deleted, %d bytes)" % (target_prefix, key, size))
    deletes_more = len(plan.deletes) - shown
    if deletes_more > 0:
        before.append("... and %d more objects deleted" % deletes_more)
    header = "s3://%s/%s" % (target_bucket, target_prefix)
    totals = "%d to add, %d to update, %d to delete" % (plan.to_add, plan.to_update, len(plan.deletes))
    return {
        "before_header": "%s (%s)" % (header, totals),
        "after_header": header,
        "before": "\n".join(before) + ("\n" if before else ""),
        "after": "\n".join(after) + ("\n" if after else ""),
    }
