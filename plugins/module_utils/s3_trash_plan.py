# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure planning functions of s3_mirror's asset trash, restore, purge and protected keys.

Nothing here talks to a service (docs/asset-trash.md describes the design):

- trash keys: a run's objects live under ``<trash_prefix><run_id>/``: saved copies under ``objects/<target key>``,
  journal parts ``manifest-<seq>-<mode>.json``;
- manifests: each s3_mirror call that writes appends one part (JSON) before its first target write; the parts of a
  run merge into one RunRecord (the first save of a key wins: it holds the bytes from before the run);
- the trash actions of a plan, the restore plan and the purge plan;
- protected keys and their Directus thumbnails (``<stem>__<anything>``).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import uuid

MANIFEST_FORMAT = 1
DEFAULT_TRASH_PREFIX = "_directus_promote_trash/"
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MANIFEST_RE = re.compile(r"^manifest-(\d{6})-([a-z_]+)\.json$")
OBJECTS_DIR = "objects/"


class TrashError(Exception):
    """A problem with the trash that must stop the run; the message is for the user."""


# ---------------------------------------------------------------- run ids and keys

def new_run_id(now=None):
    """A fresh run id: UTC time (sorts by start) and 8 random hex digits."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return "%s-%s" % (now.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:8])


def valid_run_id(run_id):
    """Run ids become one path segment of the trash: letters, digits, ``.``, ``_``, ``-``; no ``/``."""
    return bool(run_id) and bool(RUN_ID_RE.match(run_id)) and run_id not in (".", "..")


def run_prefix(trash_prefix, run_id):
    return "%s%s/" % (trash_prefix, run_id)


def trash_object_key(trash_prefix, run_id, target_key):
    """Where the saved copy of ``target_key`` (a full key of the target bucket) lives."""
    return run_prefix(trash_prefix, run_id) + OBJECTS_DIR + target_key


def manifest_key(trash_prefix, run_id, seq, mode):
    return "%smanifest-%06d-%s.json" % (run_prefix(trash_prefix, run_id), seq, mode)


def parse_manifest_key(trash_prefix, run_id, key):
    """``(seq, mode)`` of a manifest part's key, or None for any other key."""
    prefix = run_prefix(trash_prefix, run_id)
    if not key.startswith(prefix):
        return None
    match = MANIFEST_RE.match(key[len(prefix):])
    return (int(match.group(1)), match.group(2)) if match else None


def run_of_key(trash_prefix, key):
    """The run id a key of the trash location belongs to (None for a key outside a run's folder)."""
    if not key.startswith(trash_prefix):
        return None
    rest = key[len(trash_prefix):]
    run_id, slash, _tail = rest.partition("/")
    return run_id if slash and valid_run_id(run_id) else None


def trash_inside_target(target_bucket, target_prefix, trash_bucket, trash_prefix):
    """The trash prefix relative to the target prefix when the trash lies inside the mirrored range, else None."""
    if trash_bucket == target_bucket and trash_prefix.startswith(target_prefix):
        return trash_prefix[len(target_prefix):]
    return None


def trash_location_problems(source_bucket, source_prefix, target_bucket, target_prefix, trash_bucket, trash_prefix):
    """Why a trash location cannot be used (pure; checked before any request)."""
    problems = []
    if not trash_prefix:
        problems.append("trash_prefix must not be empty (the trash needs a folder of its own)")
        return problems
    if trash_bucket == target_bucket and target_prefix.startswith(trash_prefix):
        problems.append("the target range lies inside the trash location s3://%s/%s" % (trash_bucket, trash_prefix))
    if source_bucket and trash_bucket == source_bucket and (
            trash_prefix.startswith(source_prefix) or source_prefix.startswith(trash_prefix)):
        problems.append("the trash location s3://%s/%s overlaps the source range" % (trash_bucket, trash_prefix))
    return problems


def exclude_prefix(selected, relative_prefix):
    """A key predicate that also leaves out keys under ``relative_prefix`` (None: ``selected`` unchanged)."""
    if relative_prefix is None:
        return selected

    def keep(key):
        if key.startswith(relative_prefix):
            return False
        return selected is None or selected(key)

    return keep


# ---------------------------------------------------------------- protected keys

def protect_matcher(keys):
    """A predicate on keys relative to the target prefix: a protected key, or a Directus transformation of one.

    Directus stores the thumbnails and transformations of ``<stem><ext>`` as ``<stem>__<hash><ext'>`` beside it,
    so every key ``<stem>__*`` is protected too. Returns None when nothing is protected.
    """
    keys = {key for key in (keys or []) if key}
    if not keys:
        return None
    stems = set()
    for key in keys:
        head, base = key.rsplit("/", 1) if "/" in key else ("", key)
        stem = os.path.splitext(base)[0] or base
        stems.add((head + "/" if head else "") + stem)

    def protected(rel):
        if rel in keys:
            return True
        start = rel.rfind("/") + 1
        index = rel.find("__", start)
        while index != -1:
            if rel[:index] in stems:
                return True
            index = rel.find("__", index + 1)
        return False

    return protected


def split_protected(entries, protected, make_entries):
    """``(kept, spared)``: ``entries`` without the protected keys, and those keys (relative)."""
    kept = make_entries()
    spared = []
    for key, size, etag, flag in entries:
        if protected(key):
            spared.append(key)
        else:
            kept.append(key, size, etag, flag)
    return kept, spared


# ---------------------------------------------------------------- manifests

class RunRecord:
    """What the manifests of one run say, merged.

    ``saved``: full target key -> the first save of it (the object as it was before the run): ``size``, ``etag``,
    and ``trash_key`` + ``trash_etag`` (a copy) or ``version_id`` (a versioned bucket).
    ``added``: full target keys that did not exist before the run.
    ``written``: full target key -> ETags the run wrote into it (to tell the run's bytes from later changes).
    """

    def __init__(self):
        self.saved = {}
        self.added = set()
        self.written = {}
        self.parts = []   # (seq, mode)
        self.target = None

    def knows(self, key):
        return key in self.saved or key in self.added

    def add_part(self, seq, mode, document):
        if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
            raise TrashError("manifest part %d of run %r has an unknown format" % (seq, document.get("run_id") if isinstance(document, dict) else None))
        target = document.get("target") or {}
        target = (target.get("bucket"), target.get("prefix"))
        if self.target is None:
            self.target = target
        elif target[0] != self.target[0]:
            raise TrashError("the manifests of the run name two target buckets (%r, %r)" % (self.target[0], target[0]))
        self.parts.append((seq, mode))
        for entry in document.get("saved") or ():
            self.saved.setdefault(entry["key"], dict(entry))
        for entry in document.get("added") or ():
            if entry["key"] not in self.saved:
                self.added.add(entry["key"])
            if entry.get("etag"):
                self.written.setdefault(entry["key"], set()).add(entry["etag"])
        for entry in document.get("written") or ():
            if entry.get("etag"):
                self.written.setdefault(entry["key"], set()).add(entry["etag"])
        return self

    def next_seq(self):
        return max([seq for seq, _mode in self.parts] or [0]) + 1


def merge_manifests(parts):
    """A RunRecord from ``(seq, mode, document)`` parts, merged in sequence order."""
    record = RunRecord()
    for seq, mode, document in sorted(parts, key=lambda part: part[0]):
        record.add_part(seq, mode, document)
    return record


def manifest_document(run_id, mode, seq, target_bucket, target_prefix, trash_bucket, trash_prefix, versioned,
                      saved, added, written, now=None):
    """One manifest part as a dict (``serialize_manifest`` makes it JSON)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "format": MANIFEST_FORMAT,
        "run_id": run_id,
        "mode": mode,
        "seq": seq,
        "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "target": {"bucket": target_bucket, "prefix": target_prefix},
        "trash": {"bucket": trash_bucket, "prefix": trash_prefix},
        "versioned": bool(versioned),
        "saved": list(saved),
        "added": list(added),
        "written": list(written),
    }


def serialize_manifest(document):
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def parse_manifest(data):
    try:
        document = json.loads(data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TrashError("a manifest is not valid JSON: %s" % exc) from None
    if not isinstance(document, dict):
        raise TrashError("a manifest is not a JSON object")
    return document


class TrashActions:
    """What a plan does to the trash: objects to save before they are overwritten or deleted, the journal entries."""

    def __init__(self):
        self.to_save = []   # full keys of existing objects the run changes for the first time
        self.added = []     # {"key", "etag", "size"}: objects that did not exist before the run
        self.written = []   # {"key", "etag"}: objects the run already knows, written again

    def journal_size(self):
        return len(self.to_save) + len(self.added) + len(self.written)


def plan_trash(copies, deletes, target_prefix, record, add_flag=0):
    """The trash actions of a plan's ``copies`` and ``deletes`` (``(rel, size, etag, flag)`` entries).

    A key the run already knows (saved or added by an earlier call with the same run id) is never saved again: its
    saved copy holds the bytes from before the run. A copy onto a key that did not exist is journalled as added;
    any other copy or deletion saves the target object first. ``to_save`` holds full target keys.
    """
    actions = TrashActions()
    for rel, size, etag, flag in copies:
        key = target_prefix + rel
        if record.knows(key):
            actions.written.append({"key": key, "etag": etag})
        elif flag == add_flag:
            actions.added.append({"key": key, "etag": etag, "size": size})
        else:
            actions.to_save.append(key)
            actions.written.append({"key": key, "etag": etag})
    for rel, _size, _etag, _flag in deletes:
        key = target_prefix + rel
        if not record.knows(key):
            actions.to_save.append(key)
    return actions


# ---------------------------------------------------------------- restore

class RestorePlan:
    def __init__(self):
        self.restore = []     # saved entries to put back
        self.remove = []      # (key, etag) added objects still holding what the run wrote
        self.in_place = []    # saved keys already holding the bytes from before the run
        self.gone = []        # added keys no longer there
        self.changed_since = []  # keys changed after the run wrote them: left alone

    def changed(self):
        return bool(self.restore or self.remove)


def _holds(state, etags):
    """Whether a target object's state ``(size, etag, recorded source etag)`` is one of ``etags``."""
    if state is None:
        return False
    _size, etag, recorded = state
    return etag in etags or (recorded is not None and recorded in etags)


def plan_restore(record, current, scope="all"):
    """What a restore does, from a RunRecord and ``current``: full key -> ``(size, etag, recorded etag)`` or None.

    A saved key is put back when it is missing or holds what the run wrote; it is left alone when it already holds
    the bytes from before the run, or was changed since. An added key is removed when it still holds what the run
    wrote; changed since, it stays. Keys are in sorted order. ``scope``: ``saved`` plans only the put-backs, ``added``
    only the removals (a rollback swaps its database in between), ``all`` both.
    """
    plan = RestorePlan()
    for key in sorted(record.saved) if scope in ("all", "saved") else ():
        entry = record.saved[key]
        state = current.get(key)
        original = {etag for etag in (entry.get("etag"), entry.get("trash_etag")) if etag}
        if state is not None and state[1] in original and (entry.get("size") is None or state[0] == entry.get("size")):
            plan.in_place.append(key)
        elif state is None or _holds(state, record.written.get(key, set())):
            plan.restore.append(entry)
        else:
            plan.changed_since.append(key)
    for key in sorted(record.added) if scope in ("all", "added") else ():
        state = current.get(key)
        if state is None:
            plan.gone.append(key)
        elif _holds(state, record.written.get(key, set())):
            plan.remove.append((key, state[1]))
        else:
            plan.changed_since.append(key)
    plan.changed_since.sort()
    return plan


# ---------------------------------------------------------------- purge

def plan_purge(objects, trash_prefix, keep_runs, keep=None):
    """Which runs' trash a purge deletes.

    ``objects``: ``(key, last_modified)`` of the trash location. A run's age is its oldest object (its first save
    or manifest). The newest ``keep_runs`` runs stay, and so does ``keep`` (the current run). Returns
    ``(kept run ids, purged run ids newest first, {run id: [keys]})``.
    """
    started = {}
    keys = {}
    for key, modified in objects:
        run_id = run_of_key(trash_prefix, key)
        if run_id is None:
            continue
        keys.setdefault(run_id, []).append(key)
        if run_id not in started or modified < started[run_id]:
            started[run_id] = modified
    order = sorted(started, key=lambda run: (started[run], run), reverse=True)
    kept = list(order[:keep_runs])
    if keep and keep in started and keep not in kept:
        kept.append(keep)
    purged = [run for run in order if run not in kept]
    return kept, purged, {run: sorted(keys[run]) for run in purged}


def purge_versions(record, current_versions):
    """Recorded versions to delete: ``(key, version_id)`` of saved entries, except a version that is current
    (``current_versions``: key -> current version id or None); deleting it would delete the live object."""
    versions = []
    for key in sorted(record.saved):
        version_id = record.saved[key].get("version_id")
        if version_id and current_versions.get(key) != version_id:
            versions.append((key, version_id))
    return versions


def manifests_last(keys):
    """Delete order of a run's trash: saved copies first, manifests last (an interrupted purge can be repeated)."""
    return sorted(keys, key=lambda key: (key.rsplit("/", 1)[-1].startswith("manifest-"), key))
