# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""s3_mirror's asset trash against S3: saving objects before a run changes them, the journal (manifests), restore,
purge, and the SIGTERM/SIGINT handling of the module. The decisions are in s3_trash_plan (pure)."""

from __future__ import annotations

import contextlib
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ansible_collections.casper.directus_promote.plugins.module_utils.aws import aws_error_code, aws_error_message, http_status
from ansible_collections.casper.directus_promote.plugins.module_utils.faults import fault_point
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import (
    SOURCE_ETAG_METADATA,
    copy_metadata,
    normalize_etag,
    normalize_prefix,
    part_ranges,
    ranges_overlap,
    tagging_header,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_trash_plan import (
    DEFAULT_TRASH_PREFIX,
    TrashActions,
    TrashError,
    exclude_prefix,
    manifest_document,
    manifest_key,
    manifests_last,
    merge_manifests,
    parse_manifest,
    parse_manifest_key,
    plan_purge,
    plan_restore,
    plan_trash,
    purge_versions,
    run_prefix,
    serialize_manifest,
    split_protected,
    trash_inside_target,
    trash_location_problems,
    trash_object_key,
    valid_run_id,
)

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - the module reports missing botocore
    BotoCoreError = ClientError = Exception

NOT_FOUND = ("404", "NoSuchKey", "NotFound", "NoSuchVersion")
DELETE_BATCH = 1000
SINGLE_COPY_LIMIT = 5 * 1024 ** 3


# ---------------------------------------------------------------- signals

class Interrupted(BaseException):
    """SIGTERM (an AWX cancel) or SIGINT (Ctrl-C). A BaseException, so that no ``except Exception`` swallows it."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.name = signal.Signals(signum).name


@contextlib.contextmanager
def interrupts_raise():
    """The first SIGTERM/SIGINT raises Interrupted in the main thread; later ones are ignored while the run winds
    down (requests already sent finish, so that what the result reports is what happened)."""
    fired = []

    def handler(signum, _frame):
        if fired:
            return
        fired.append(signum)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def interrupts_fail(module):
    """Until a write phase takes over: SIGTERM/SIGINT end the module with a JSON failure (nothing changed yet)."""
    def handler(signum, _frame):
        ignore_interrupts()
        module.fail_json(msg="s3_mirror interrupted by %s before any change; nothing was changed" % signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def ignore_interrupts():
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)


# ---------------------------------------------------------------- S3 helpers

def is_not_found(exc):
    return isinstance(exc, ClientError) and (aws_error_code(exc) in NOT_FOUND or http_status(exc) == 404)


def bucket_versioned(client, bucket):
    """Whether versioning is Enabled (a Suspended bucket overwrites the null version: it counts as unversioned).

    A server without versioning (GetBucketVersioning not implemented) is unversioned."""
    try:
        return client.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"
    except ClientError as exc:
        if aws_error_code(exc) == "NotImplemented" or http_status(exc) == 501:
            return False
        raise


def head_state(client, bucket, key):
    """HeadObject of ``key``, or None when it does not exist."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            return None
        raise


def state_of(head):
    """``(size, etag, recorded source etag)`` of a HeadObject answer (None: no object)."""
    if head is None:
        return None
    recorded = (head.get("Metadata") or {}).get(SOURCE_ETAG_METADATA)
    return head.get("ContentLength"), normalize_etag(head.get("ETag")), normalize_etag(recorded) if recorded else None


def server_copy(client, source, bucket, key, size, chunksize=16 * 1024 ** 2):
    """Copy ``source`` (a CopySource dict, VersionId allowed) to ``bucket``/``key`` inside S3, headers, user
    metadata and tags included; in parts above CopyObject's 5 GiB. Returns the new object's ETag."""
    if size is None or size <= SINGLE_COPY_LIMIT:
        response = client.copy_object(Bucket=bucket, Key=key, CopySource=source, MetadataDirective="COPY",
                                      TaggingDirective="COPY")
        return normalize_etag(response.get("CopyObjectResult", {}).get("ETag"))
    extra = {"VersionId": source["VersionId"]} if source.get("VersionId") else {}
    head = client.head_object(Bucket=source["Bucket"], Key=source["Key"], **extra)
    params = copy_metadata(head)
    tags = client.get_object_tagging(Bucket=source["Bucket"], Key=source["Key"], **extra).get("TagSet")
    if tags:
        params["Tagging"] = tagging_header(tags)
    upload = client.create_multipart_upload(Bucket=bucket, Key=key, **params)
    try:
        parts = []
        for number, (start, end) in enumerate(part_ranges(size, chunksize), start=1):
            part = client.upload_part_copy(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=number,
                                           CopySource=source, CopySourceRange="bytes=%d-%d" % (start, end))
            parts.append({"ETag": part["CopyPartResult"]["ETag"], "PartNumber": number})
        done = client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                                MultipartUpload={"Parts": parts})
    except BaseException:
        with contextlib.suppress(BotoCoreError, ClientError):
            client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
        raise
    return normalize_etag(done.get("ETag"))


def parallel(function, items, workers):
    items = list(items)
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        return list(pool.map(function, items))


def list_keys(client, bucket, prefix):
    """``(key, last modified)`` of every object under ``prefix``."""
    found = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents") or ():
            found.append((obj["Key"], obj.get("LastModified")))
    return found


def delete_keys(client, bucket, keys):
    """Delete keys in batches; returns the number deleted, raises TrashError naming the first failures."""
    deleted = 0
    keys = list(keys)
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start:start + DELETE_BATCH]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        errors = response.get("Errors") or []
        if errors:
            raise TrashError("cannot delete %d object(s) of s3://%s, e.g. %r: %s %s" % (
                len(errors), bucket, errors[0].get("Key"), errors[0].get("Code"), errors[0].get("Message")))
        deleted += len(batch)
    return deleted


# ---------------------------------------------------------------- the journal

def load_record(client, trash_bucket, trash_prefix, run_id):
    """The RunRecord of ``run_id`` from its manifest parts (empty for a new run)."""
    prefix = run_prefix(trash_prefix, run_id)
    parts = []
    for key, _modified in list_keys(client, trash_bucket, prefix + "manifest-"):
        parsed = parse_manifest_key(trash_prefix, run_id, key)
        if parsed is None:
            continue
        body = client.get_object(Bucket=trash_bucket, Key=key)["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        parts.append((parsed[0], parsed[1], parse_manifest(data)))
    return merge_manifests(parts)


class Trash:
    """One run's trash location: saves objects, writes the run's manifest parts."""

    def __init__(self, client, target_bucket, target_prefix, trash_bucket, trash_prefix, run_id, versioned, workers,
                 chunksize=16 * 1024 ** 2):
        self.client = client
        self.target_bucket = target_bucket
        self.target_prefix = target_prefix
        self.trash_bucket = trash_bucket
        self.trash_prefix = trash_prefix
        self.run_id = run_id
        self.versioned = versioned
        self.workers = workers
        self.chunksize = chunksize
        self.lock = threading.Lock()

    def location(self):
        return "s3://%s/%s" % (self.trash_bucket, run_prefix(self.trash_prefix, self.run_id))

    def save(self, keys):
        """Make each existing target object recoverable; returns the manifest's ``saved`` entries (key order).

        Versioned target: its current version id. Otherwise: a server-side copy into the trash. A key that no
        longer exists has nothing to save."""
        def one(key):
            head = head_state(self.client, self.target_bucket, key)
            if head is None:
                return None
            entry = {"key": key, "size": head.get("ContentLength"), "etag": normalize_etag(head.get("ETag"))}
            if self.versioned and head.get("VersionId"):
                entry["version_id"] = head["VersionId"]
                return entry
            trash_key = trash_object_key(self.trash_prefix, self.run_id, key)
            source = {"Bucket": self.target_bucket, "Key": key}
            if head.get("VersionId"):
                source["VersionId"] = head["VersionId"]
            entry["trash_key"] = trash_key
            entry["trash_etag"] = server_copy(self.client, source, self.trash_bucket, trash_key, entry["size"], self.chunksize)
            return entry

        return [entry for entry in parallel(one, sorted(keys), self.workers) if entry is not None]

    def write_manifest(self, record, mode, saved, added, written):
        """Write one manifest part (before the target writes it journals); returns its key."""
        seq = record.next_seq()
        key = manifest_key(self.trash_prefix, self.run_id, seq, mode)
        document = manifest_document(self.run_id, mode, seq, self.target_bucket, self.target_prefix, self.trash_bucket,
                                     self.trash_prefix, self.versioned, saved, added, written)
        self.client.put_object(Bucket=self.trash_bucket, Key=key, Body=serialize_manifest(document),
                               ContentType="application/json")
        record.add_part(seq, mode, document)
        return key


# ---------------------------------------------------------------- restore and purge

def current_states(client, bucket, keys, workers):
    """Full key -> ``(size, etag, recorded etag)`` or None, by HeadObject."""
    keys = sorted(keys)
    return dict(zip(keys, parallel(lambda key: state_of(head_state(client, bucket, key)), keys, workers)))


def restore_entry(client, target_bucket, trash_bucket, entry, chunksize):
    if entry.get("version_id"):
        source = {"Bucket": target_bucket, "Key": entry["key"], "VersionId": entry["version_id"]}
    else:
        source = {"Bucket": trash_bucket, "Key": entry["trash_key"]}
    return server_copy(client, source, target_bucket, entry["key"], entry.get("size"), chunksize)


def current_versions(client, bucket, keys, workers):
    """Full key -> current version id (None when the key has none, e.g. a delete marker is current)."""
    keys = sorted(keys)

    def one(key):
        head = head_state(client, bucket, key)
        return head.get("VersionId") if head else None

    return dict(zip(keys, parallel(one, keys, workers)))


def purge_run(client, trash_bucket, trash_prefix, run_id, keys, workers, check_mode):
    """Delete one run's trash: recorded noncurrent versions, then saved copies, then manifests.

    Returns ``(versions deleted, objects deleted)`` (in check mode: that would be)."""
    record = load_record(client, trash_bucket, trash_prefix, run_id)
    versions = []
    if any(entry.get("version_id") for entry in record.saved.values()):
        bucket = record.target[0]
        keys_with_versions = [key for key, entry in record.saved.items() if entry.get("version_id")]
        versions = purge_versions(record, current_versions(client, bucket, keys_with_versions, workers))
    if check_mode:
        return len(versions), len(keys)
    for key, version_id in versions:
        try:
            client.delete_object(Bucket=record.target[0], Key=key, VersionId=version_id)
        except ClientError as exc:
            if not is_not_found(exc):
                raise
    ordered = manifests_last(keys)
    data = [key for key in ordered if not key.rsplit("/", 1)[-1].startswith("manifest-")]
    manifests = [key for key in ordered if key.rsplit("/", 1)[-1].startswith("manifest-")]
    deleted = delete_keys(client, trash_bucket, data)
    deleted += delete_keys(client, trash_bucket, manifests)
    return len(versions), deleted


def error_text(exc):
    if isinstance(exc, (BotoCoreError, ClientError)):
        return aws_error_message(exc)
    return str(exc)


# ---------------------------------------------------------------- s3_mirror's options and modes

MIRROR_MODES = ("mirror", "copy", "prune")


def trash_argument_spec():
    return dict(
        run_id=dict(type="str"),
        trash=dict(type="bool", default=True),
        trash_bucket=dict(type="str"),
        trash_prefix=dict(type="str", default=DEFAULT_TRASH_PREFIX),
        keep_runs=dict(type="int"),
        protect=dict(type="list", elements="str", default=[]),
        restore_scope=dict(type="str", default="all", choices=["all", "saved", "added"]),
    )


def trash_location(params):
    """``(bucket, prefix)`` of the trash (the prefix normalized like the others)."""
    return params["trash_bucket"] or params["target_bucket"], normalize_prefix(params["trash_prefix"])


def trash_problems(params):
    """Problems with the trash options (pure), checked with the others before any request."""
    problems = []
    mode = params["mode"]
    if params["run_id"] is not None and not valid_run_id(params["run_id"]):
        problems.append("run_id must be 1 to 128 letters, digits, '.', '_' or '-' (it names a folder of the trash)")
    if mode == "restore" and not params["run_id"]:
        problems.append("run_id is required with mode=restore (the run to undo)")
    if mode == "purge_trash" and params["keep_runs"] is None:
        problems.append("keep_runs is required with mode=purge_trash")
    if params["keep_runs"] is not None and params["keep_runs"] < 0:
        problems.append("keep_runs must not be negative")
    if params["trash"] or mode not in MIRROR_MODES:
        bucket, prefix = trash_location(params)
        source = params["source_bucket"] if mode in MIRROR_MODES else None
        if source and ranges_overlap(source, normalize_prefix(params["source_prefix"]), params["target_bucket"],
                                     normalize_prefix(params["target_prefix"])):
            source = None  # reported as such; the trash's overlap would only repeat it
        problems.extend(trash_location_problems(source, normalize_prefix(params["source_prefix"]), params["target_bucket"],
                                                normalize_prefix(params["target_prefix"]), bucket, prefix))
    return problems


def trash_filter(params, selected):
    """The mirror's key predicate without the trash location when that lies inside the target range."""
    bucket, prefix = trash_location(params)
    relative = trash_inside_target(params["target_bucket"], normalize_prefix(params["target_prefix"]), bucket, prefix)
    return exclude_prefix(selected, relative)


def protect_plan(plan, protected, update_flag):
    """Leave protected keys out of ``plan``'s updates and deletions; returns the relative keys spared."""
    if protected is None:
        return []
    make = type(plan.copies)
    copies = make()
    spared = []
    for key, size, etag, flag in plan.copies:
        if flag == update_flag and protected(key):
            spared.append(key)
        else:
            copies.append(key, size, etag, flag)
    deletes, spared_deletes = split_protected(plan.deletes, protected, make)
    plan.copies, plan.deletes = copies, deletes
    return sorted(spared + spared_deletes)


def in_background(function, *args):
    """``function(*args)`` on a daemon thread, as a Future: an answer nobody waits for does not hold up the exit."""
    future = Future()

    def run():
        try:
            future.set_result(function(*args))
        except Exception as exc:  # pylint: disable=broad-except
            future.set_exception(exc)  # raised where the answer is used, if it is

    threading.Thread(target=run, daemon=True).start()
    return future


class MirrorTrash:
    """The trash of one mirror/copy/prune call: what it saves and journals before its first target write."""

    def __init__(self, module, client, run_id):
        params = module.params
        self.module = module
        self.client = client
        self.run_id = run_id
        self.enabled = params["trash"]
        self.target_bucket = params["target_bucket"]
        self.target_prefix = normalize_prefix(params["target_prefix"])
        self.bucket, self.prefix = trash_location(params)
        self.mode = params["mode"]
        self.workers = params["workers"]
        self.chunksize = params["multipart_chunksize"]
        self.versioned = None
        self.record = None
        self.actions = None
        self.saved = []
        self.manifest = None
        self._reads = None

    def read_ahead(self):
        """Send prepare()'s two reads now, beside the listings, so that a run that writes does not wait for them."""
        if self.enabled and self._reads is None:
            self._reads = (in_background(bucket_versioned, self.client, self.target_bucket),
                           in_background(load_record, self.client, self.bucket, self.prefix, self.run_id))

    def prepare(self, plan, add_flag):
        """Read the target's versioning and the run's earlier manifests; plan the trash actions (reads only)."""
        if not self.enabled:
            return
        if not len(plan.copies) and not len(plan.deletes):
            self.actions = TrashActions()  # nothing to save or journal: the reads' answers are not needed
            return
        self.read_ahead()
        try:
            self.versioned = self._reads[0].result()
            self.record = self._reads[1].result()
        except (BotoCoreError, ClientError) as exc:
            self.module.fail_json(msg="Cannot read the trash of run %r at s3://%s/%s (or the versioning of %r): %s. "
                                      "Nothing was changed." % (self.run_id, self.bucket, self.prefix, self.target_bucket,
                                                                error_text(exc)))
        except TrashError as exc:
            self.module.fail_json(msg="%s. Nothing was changed." % exc)
        self.actions = plan_trash(plan.copies, plan.deletes, self.target_prefix, self.record, add_flag)

    def journal(self):
        """Save what the plan overwrites or deletes, then write the manifest part: before any target write."""
        if not self.enabled or not self.actions.journal_size():
            return
        trash = Trash(self.client, self.target_bucket, self.target_prefix, self.bucket, self.prefix, self.run_id,
                      self.versioned, self.workers, self.chunksize)
        self.saved = trash.save(self.actions.to_save)
        fault_point("trash_saved")
        self.manifest = trash.write_manifest(self.record, self.mode, self.saved, self.actions.added, self.actions.written)
        fault_point("journaled")

    def report(self, check_mode):
        result = dict(enabled=self.enabled, run_id=self.run_id)
        if not self.enabled:
            return result
        result.update(bucket=self.bucket, prefix=self.prefix, location="s3://%s/%s" % (self.bucket, run_prefix(self.prefix, self.run_id)),
                      versioned=self.versioned, manifest=self.manifest,
                      saved=len(self.actions.to_save) if check_mode else len(self.saved),
                      added=len(self.actions.added))
        return result


def run_restore(module, client):
    """mode=restore: put back what run ``run_id`` deleted or overwrote, then remove what it added."""
    params = module.params
    run_id = params["run_id"]
    target_bucket = params["target_bucket"]
    bucket, prefix = trash_location(params)
    workers, limit = params["workers"], params["max_keys_returned"]
    location = "s3://%s/%s" % (bucket, run_prefix(prefix, run_id))
    trash = dict(enabled=True, run_id=run_id, bucket=bucket, prefix=prefix, location=location)
    result = dict(changed=False, run_id=run_id, trash=trash, restored=0, restored_keys=[], removed=0, removed_keys=[],
                  in_place=0, changed_since=[])
    try:
        record = load_record(client, bucket, prefix, run_id)
        if record.target is not None and record.target[0] != target_bucket:
            raise TrashError("run %r changed bucket %r, not target_bucket %r" % (run_id, record.target[0], target_bucket))
        trash.update(manifests=len(record.parts), saved=len(record.saved), added=len(record.added),
                     versioned=any(entry.get("version_id") for entry in record.saved.values()))
        states = current_states(client, target_bucket, set(record.saved) | record.added, workers)
    except (BotoCoreError, ClientError, TrashError) as exc:
        module.fail_json(msg="Cannot read the trash of run %r at %s: %s. Nothing was changed." % (run_id, location, error_text(exc)),
                         **result)
    if not record.parts:
        result["msg"] = "run %r left no trash at %s: it changed nothing, or its trash was purged" % (run_id, location)
    plan = plan_restore(record, states, params["restore_scope"])
    result.update(changed=plan.changed(), restored=len(plan.restore), removed=len(plan.remove), in_place=len(plan.in_place),
                  restored_keys=[entry["key"] for entry in plan.restore][:limit],
                  removed_keys=[key for key, _etag in plan.remove][:limit], changed_since=plan.changed_since[:limit])
    if module._diff:
        result["diff"] = dict(
            before_header="s3://%s (restore of run %s)" % (target_bucket, run_id), after_header="s3://%s" % target_bucket,
            before="".join("%s (removed)\n" % key for key, _etag in plan.remove[:limit]),
            after="".join("%s (restored, %s bytes)\n" % (entry["key"], entry.get("size")) for entry in plan.restore[:limit]))
    if module.check_mode or not plan.changed():
        module.exit_json(**result)
    done = {"restored": [], "removed": []}
    chunksize = params["multipart_chunksize"]
    try:
        with interrupts_raise():
            # what existed before the run first; what the run added last: nothing that existed goes missing
            def put_back(entry):
                restore_entry(client, target_bucket, bucket, entry, chunksize)
                done["restored"].append(entry["key"])

            parallel(put_back, plan.restore, workers)
            fault_point("restored")
            for start in range(0, len(plan.remove), DELETE_BATCH):
                batch = [key for key, _etag in plan.remove[start:start + DELETE_BATCH]]
                delete_keys(client, target_bucket, batch)
                done["removed"].extend(batch)
    except Interrupted as exc:
        module.fail_json(msg="Restore of run %r interrupted by %s after restoring %d and removing %d object(s); run it "
                             "again to finish" % (run_id, exc.name, len(done["restored"]), len(done["removed"])),
                         **dict(result, changed=bool(done["restored"] or done["removed"]), restored=len(done["restored"]),
                                restored_keys=sorted(done["restored"])[:limit], removed=len(done["removed"]),
                                removed_keys=done["removed"][:limit]))
    except (BotoCoreError, ClientError, TrashError) as exc:
        module.fail_json(msg="Restore of run %r failed after restoring %d and removing %d object(s): %s; run it again to "
                             "finish" % (run_id, len(done["restored"]), len(done["removed"]), error_text(exc)),
                         **dict(result, changed=bool(done["restored"] or done["removed"]), restored=len(done["restored"]),
                                restored_keys=sorted(done["restored"])[:limit], removed=len(done["removed"]),
                                removed_keys=done["removed"][:limit]))
    ignore_interrupts()  # done: only the result is left
    module.exit_json(**result)


def run_purge(module, client):
    """mode=purge_trash: delete the trash of every run but the newest ``keep_runs`` (and ``run_id``)."""
    params = module.params
    bucket, prefix = trash_location(params)
    workers, limit = params["workers"], params["max_keys_returned"]
    result = dict(changed=False, trash=dict(bucket=bucket, prefix=prefix, location="s3://%s/%s" % (bucket, prefix)),
                  kept_runs=[], purged_runs=[], purged=dict(runs=0, objects=0, versions=0))
    try:
        kept, purged, keys = plan_purge(list_keys(client, bucket, prefix), prefix, params["keep_runs"], params["run_id"])
    except (BotoCoreError, ClientError) as exc:
        module.fail_json(msg="Cannot list the trash at s3://%s/%s: %s. Nothing was changed." % (bucket, prefix, error_text(exc)),
                         **result)
    result.update(kept_runs=kept[:limit], purged_runs=purged[:limit], changed=bool(purged))
    if module._diff:
        result["diff"] = dict(before_header="s3://%s/%s" % (bucket, prefix), after_header="s3://%s/%s" % (bucket, prefix),
                              before="".join("%s%s/ (purged, %d object(s))\n" % (prefix, run, len(keys[run])) for run in purged[:limit]),
                              after="")
    counts = result["purged"]
    try:
        with interrupts_raise():
            for run in purged:
                versions, objects = purge_run(client, bucket, prefix, run, keys[run], workers, module.check_mode)
                counts["runs"] += 1
                counts["versions"] += versions
                counts["objects"] += objects
    except Interrupted as exc:
        module.fail_json(msg="Purge interrupted by %s after %d run(s); run it again to finish" % (exc.name, counts["runs"]),
                         **result)
    except (BotoCoreError, ClientError, TrashError) as exc:
        module.fail_json(msg="Purge failed after %d run(s): %s; run it again to finish" % (counts["runs"], error_text(exc)),
                         **result)
    ignore_interrupts()
    module.exit_json(**result)
