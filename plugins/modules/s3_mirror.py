# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: s3_mirror
short_description: Incremental, safe, parallel S3 bucket-to-bucket mirror
version_added: 0.1.0
description:
  - Makes a target bucket (or prefix) a copy of a source bucket (or prefix) without the target ever missing an
    object. New and changed objects are copied first, extra objects are deleted only after every copy succeeded.
  - Objects are compared by size and ETag. When a copy cannot keep the source's ETag (multipart copies and uploads,
    copies of multipart-uploaded objects, encrypted objects), the source ETag is recorded in the copy's user metadata
    C(x-amz-meta-mirror-source-etag), so that a second run recognises it as unchanged and sends no write request.
  - Objects up to O(multipart_threshold) are copied with one server-side C(CopyObject); larger ones with a multipart
    upload of C(UploadPartCopy) parts. Content-Type, Cache-Control, Content-Disposition, Content-Encoding,
    Content-Language, Expires, user metadata and tags are identical on the copy on both paths.
  - Listings are streamed page by page and merged as two sorted streams (S3 returns keys in UTF-8 binary order), so
    memory holds the actions to execute (about key length + 60 bytes each), never the listings.
  - The source is listed one page after the other. The target is read ahead, up to O(workers) (at most 8) pages at
    once, with C(ListObjectsV2) requests that start after the keys where the source's pages end; on a target that
    already mirrors the source, that is one request per page, sent together instead of one after the other. Each
    answer is used only from where the keys read so far end, so a target with other keys costs a few more requests,
    never a key.
  - Before any change a deletion guard refuses runs that would delete the target's objects from an empty source, or
    delete more than O(max_delete) objects or O(max_delete_percent) percent of the target (O(max_delete_percent_min_count)
    says which few deletions the percentage spares). The error names the objects, and the options that would let them go.
  - Every object a run overwrites or deletes stays recoverable (O(trash)), and V(restore) undoes a run. Keys in
    O(protect), and their Directus thumbnails, are never overwritten or deleted. See C(docs/asset-trash.md).
  - SIGTERM or SIGINT (an AWX cancel, Ctrl-C) ends the run with a failure that lists what was copied and deleted so far.
author:
  - casper.directus_promote contributors (@casper)
extends_documentation_fragment:
  - casper.directus_promote.aws
  - casper.directus_promote.aws.source
  - casper.directus_promote.progress
attributes:
  check_mode:
    support: full
    description: Lists both buckets (reads only) and returns the plan a real run would execute; writes nothing.
  diff_mode:
    support: full
    description: Lists the target keys that would be added, updated and deleted, truncated to O(max_keys_returned) with totals.
  idempotent:
    support: full
    description: A second run with an unchanged source reports RV(changed=false) and sends no write request.
options:
  source_bucket:
    description:
      - Name of the bucket to copy from.
      - Required with O(mode=mirror), O(mode=copy) and O(mode=prune).
    type: str
  source_prefix:
    description:
      - Only objects under this prefix are mirrored; their keys are remapped to O(target_prefix).
      - A non-empty prefix is a folder; a missing trailing C(/) is added, so C(a) means C(a/) and never matches C(ab/x).
    type: str
    default: ''
  target_bucket:
    description: Name of the bucket to copy to.
    type: str
    required: true
  target_prefix:
    description:
      - Prefix the objects land under in O(target_bucket). C(a/x) under O(source_prefix=a/) lands at C(b/x) under
        O(target_prefix=b/). Only target objects under this prefix are compared and pruned.
      - A missing trailing C(/) is added, as for O(source_prefix).
    type: str
    default: ''
  mode:
    description:
      - V(mirror) copies new and changed objects, then deletes target objects absent from the source.
      - V(copy) only adds and updates; it never deletes.
      - V(prune) only deletes target objects absent from the source.
      - Promotions run V(copy) before switching the database and V(prune) after it, so that production never
        misses an object its database points to.
      - V(restore) undoes the run O(run_id) (all its calls). It puts back every object it overwrote or deleted, then
        deletes the objects it added. Objects changed since the run are left alone and returned in
        RV(changed_since). Needs no source options.
      - V(purge_trash) deletes the trash of all runs but the newest O(keep_runs). Needs no source options.
    type: str
    choices: [mirror, copy, prune, restore, purge_trash]
    default: mirror
  run_id:
    description:
      - Id of the promotion this call belongs to; the calls of one promotion (V(copy), then V(prune)) pass the same
        one, and V(restore) undoes all of them. Letters, digits, C(.), C(_) and C(-).
      - Omitted, a new one is generated and returned in RV(run_id).
      - A call repeated with the same id (a retried promotion) keeps the objects the first attempt saved.
    type: str
  trash:
    description:
      - Keep every target object this run overwrites or deletes recoverable, so that V(restore) can undo the run.
      - On a versioned target bucket (versioning Enabled) the previous versions are kept by the bucket and their ids
        recorded; otherwise the objects are copied into the trash location first.
      - V(false) keeps nothing and records nothing.
    type: bool
    default: true
  trash_bucket:
    description: Bucket of the trash location. Defaults to O(target_bucket).
    type: str
  trash_prefix:
    description:
      - Prefix of the trash location; each run's objects and records are under C(<trash_prefix><run_id>/).
      - Choose a place Directus does not serve. When it lies inside the mirrored range (O(trash_bucket) is the target
        bucket and it is under O(target_prefix)), it is left out of the mirror on both sides.
    type: str
    default: _directus_promote_trash/
  keep_runs:
    description:
      - With O(mode=purge_trash), the number of newest runs whose trash is kept (required there). O(run_id), when
        given, is kept too.
    type: int
  protect:
    description:
      - Keys relative to O(target_prefix) that are never overwritten or deleted, together with their Directus
        transformations and thumbnails (C(<stem>__*) for a key C(<stem>.<ext>)).
      - The promote role passes the C(filename_disk) of the files production keeps.
    type: list
    elements: str
    default: []
  restore_scope:
    description:
      - With O(mode=restore), what to undo. V(saved) only puts back what the run deleted or overwrote, V(added) only
        removes what it added, V(all) does both (put-backs first).
      - A rollback puts back with V(saved), swaps its database backup in, then removes with V(added), so that
        neither database ever references a missing object.
    type: str
    choices: [all, saved, added]
    default: all
  include:
    description:
      - Glob patterns (fnmatch syntax, case-sensitive, C(*) also matches C(/)) on keys relative to the prefix.
        When given, only matching objects are mirrored. Applied to both buckets.
    type: list
    elements: str
  exclude:
    description:
      - Glob patterns of relative keys to leave alone on both sides (neither copied nor deleted). Wins over O(include).
    type: list
    elements: str
  max_delete:
    description: Refuse to run when more than this many objects would be deleted, unless O(force_delete=true).
    type: int
    default: 1000
  max_delete_percent:
    description:
      - Refuse to run when the deletions are more than this percentage of the target's objects in scope, unless
        O(force_delete=true).
      - Not applied to fewer than O(max_delete_percent_min_count) deletions from a source that lists at least as many
        objects. So a first promotion onto a young target with a few objects of its own goes through, while a source
        that is a small fraction of the target does not.
      - V(100) turns this check off.
    type: float
    default: 50
  max_delete_percent_min_count:
    description:
      - The number of deletions from which O(max_delete_percent) applies whatever the source's size; see there.
      - V(0) applies it to every deletion.
    type: int
    default: 10
  allow_empty_source:
    description:
      - Allow a run whose source lists no object to delete the target's objects.
      - Without it, an empty source (a wrong bucket, prefix or credentials) never empties the target.
    type: bool
    default: false
  force_delete:
    description: Skip the O(max_delete) and O(max_delete_percent) checks (not the empty-source check).
    type: bool
    default: false
  guard_option_names:
    description:
      - The names a refusal gives the deletion guard's options, for a caller that sets them under other names
        (the promote role passes its C(promote_s3_*) variables). Options not named here keep their own names.
    type: dict
    suboptions:
      max_delete:
        description: Name of O(max_delete).
        type: str
      max_delete_percent:
        description: Name of O(max_delete_percent).
        type: str
      max_delete_percent_min_count:
        description: Name of O(max_delete_percent_min_count).
        type: str
      allow_empty_source:
        description: Name of O(allow_empty_source).
        type: str
      force_delete:
        description: Name of O(force_delete).
        type: str
  multipart_threshold:
    description:
      - Objects larger than this many bytes are copied with a multipart upload instead of one C(CopyObject)
        (C(CopyObject) cannot copy more than 5 GiB).
      - At most 5 GiB.
    type: int
    default: 5368709120
  multipart_chunksize:
    description:
      - Part size in bytes of multipart copies, at least 5 MiB; grown automatically to stay within 10,000 parts.
      - With O(copy_method=stream), objects larger than one part are uploaded in parts.
    type: int
    default: 16777216
  copy_method:
    description:
      - V(server) copies inside S3 (C(CopyObject)/C(UploadPartCopy)) with the target's credentials, which must be
        able to read the source.
      - V(stream) reads with the source credentials and writes with the target's (C(GetObject) then C(PutObject) or a
        multipart upload). The objects and parts in transit hold at most 256 MiB in memory together, or one part when
        O(multipart_chunksize) is larger. Needed when the target's credentials
        cannot read the source or the two sides are different services.
      - V(auto) uses V(stream) when the two sides have different endpoints, V(server) when they share credentials,
        and otherwise checks with one C(HeadObject) whether the target's credentials can read the source.
    type: str
    choices: [auto, server, stream]
    default: auto
  workers:
    description: Number of concurrent requests (at most 256). The S3 clients' connection pools are sized to match.
    type: int
    default: 128
  max_keys_returned:
    description: Maximum number of keys in RV(changed_keys), RV(deleted_keys) and in the diff; totals are always returned.
    type: int
    default: 1000
  retry_mode:
    description:
      - botocore retry mode for transient errors (5xx, C(SlowDown), throttling, connection errors).
      - V(standard) backs off each failed request exponentially (with jitter) and retries it.
      - V(adaptive) also slows down every request of the client after throttling, which with many workers and
        occasional C(SlowDown) answers makes a run much longer.
    type: str
    choices: [adaptive, standard]
    default: standard
  retry_max_attempts:
    description: Maximum attempts of one request, including the first, before its object counts as failed.
    type: int
    default: 10
notes:
  - "Versioned buckets: the current versions of the source are mirrored; a deletion in a versioned target adds a delete
    marker, so the previous version stays recoverable (and billed) until a lifecycle rule expires it."
  - Only metadata and content changes that change size or ETag are detected; a metadata-only change of a source
    object (same content) is not propagated, as with other S3 sync tools.
  - Server-side encryption of copies follows the target bucket's default encryption. Storage class and ACLs are not copied.
  - If an object still fails after retries, the module fails listing the failed keys, and nothing is deleted in that run;
    the next run copies only what is still missing.
  - Keys are compared in UTF-8 binary order; a listing out of that order (a broken S3-compatible server) fails the
    run rather than risk deleting objects. Both listings go on from the last key read (StartAfter), so a page that says
    it is truncated but carries no continuation token does not end them early.
seealso:
  - module: casper.directus_promote.cloudfront_invalidate
"""

EXAMPLES = r"""
- name: Mirror the staging assets bucket to production
  casper.directus_promote.s3_mirror:
    source_bucket: directus-staging
    target_bucket: directus-prod

- name: Promotion step 1 - add and update assets, delete nothing
  casper.directus_promote.s3_mirror:
    source_bucket: acme-staging
    source_prefix: uploads/
    target_bucket: acme-prod
    target_prefix: uploads/
    mode: copy
  register: s3_copy

- name: Promotion step 3 - after the database switch, delete what production no longer references
  casper.directus_promote.s3_mirror:
    source_bucket: acme-staging
    source_prefix: uploads/
    target_bucket: acme-prod
    target_prefix: uploads/
    mode: prune
    max_delete: 200
  register: s3_prune

- name: Staging and production in different AWS accounts
  casper.directus_promote.s3_mirror:
    source_bucket: acme-staging
    source_access_key: "{{ vault_staging_aws_access_key }}"
    source_secret_key: "{{ vault_staging_aws_secret_key }}"
    target_bucket: acme-prod
    access_key: "{{ vault_prod_aws_access_key }}"
    secret_key: "{{ vault_prod_aws_secret_key }}"
    copy_method: auto

- name: Promotion with a run id; production's own files stay
  casper.directus_promote.s3_mirror:
    source_bucket: acme-staging
    target_bucket: acme-prod
    mode: copy
    run_id: "{{ promote_run_id }}"
    protect: "{{ kept_files | map(attribute='filename_disk') | list }}"

- name: Undo that promotion's asset changes
  casper.directus_promote.s3_mirror:
    target_bucket: acme-prod
    mode: restore
    run_id: "{{ promote_run_id }}"

- name: Keep the trash of the newest 3 promotions only
  casper.directus_promote.s3_mirror:
    target_bucket: acme-prod
    mode: purge_trash
    keep_runs: 3

- name: Only images, never the thumbnails cache
  casper.directus_promote.s3_mirror:
    source_bucket: directus-staging
    target_bucket: directus-prod
    include: ["*.jpg", "*.png", "*.webp"]
    exclude: ["cache/*"]
"""

RETURN = r"""
changed:
  description: Whether any object was copied or deleted (in check mode, whether any would be).
  returned: always
  type: bool
counts:
  description: What the run did (in check mode, what it would do).
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: dict
  contains:
    copied:
      description: Objects added to the target.
      type: int
    updated:
      description: Target objects replaced because size or ETag differed.
      type: int
    deleted:
      description: Target objects deleted.
      type: int
    unchanged:
      description: Objects already identical.
      type: int
    bytes_copied:
      description: Bytes copied (added and updated objects).
      type: int
  sample: {copied: 12, updated: 1, deleted: 3, unchanged: 9984, bytes_copied: 401233}
changed_keys:
  description: Full target keys added or updated, at most O(max_keys_returned).
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: list
  elements: str
  sample: ["uploads/3f1c.jpg"]
changed_keys_total:
  description: Number of target keys added or updated.
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: int
deleted_keys:
  description: Full target keys deleted, at most O(max_keys_returned).
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: list
  elements: str
deleted_keys_total:
  description: Number of target keys deleted.
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: int
keys_truncated:
  description: Whether RV(changed_keys) or RV(deleted_keys) was truncated.
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: bool
failed_keys:
  description: Source keys whose copy (or target keys whose deletion) failed after retries, at most O(max_keys_returned).
  returned: on failure of some objects
  type: list
  elements: str
failed_keys_total:
  description: Number of objects that failed after retries.
  returned: on failure of some objects
  type: int
plan:
  description: Summary of the plan (identical in check mode and in a real run).
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: dict
  sample:
    mode: mirror
    source_objects: 10000
    target_objects: 9990
    source_bytes: 335544320
    to_copy: 12
    to_update: 1
    to_delete: 3
    unchanged: 9984
    bytes_to_copy: 401233
    bytes_to_delete: 1024
    unverified: 0
    copy_method: server
    ignored_by_mode: {missing_not_copied: 0, changed_not_updated: 0, extra_not_deleted: 0}
timings:
  description: Seconds spent listing and planning, verifying, copying, deleting and in total.
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: dict
  sample: {plan: 0.41, verify: 0.0, copy: 1.2, delete: 0.05, total: 1.7}
diff:
  description: Target keys to add, update (before and after) and delete, truncated with totals.
  returned: in diff mode
  type: dict
run_id:
  description: The run id (O(run_id), or the one generated).
  returned: except with O(mode=purge_trash)
  type: str
  sample: prod-20261125T134620Z-de32f65f
trash:
  description: Where the run's trash is and what this call put there (in check mode, would put).
  returned: always
  type: dict
  contains:
    enabled:
      description: Whether O(trash) is on.
      type: bool
    run_id:
      description: The run id.
      type: str
    bucket:
      description: Bucket of the trash location.
      type: str
    prefix:
      description: O(trash_prefix), with a trailing C(/).
      type: str
    location:
      description: The run's folder, C(s3://<bucket>/<prefix><run_id>/) (with O(mode=purge_trash), the trash location).
      type: str
    versioned:
      description: Whether the target bucket is versioned (objects are recorded by version id, not copied); null when
        the call changes nothing.
      type: bool
    saved:
      description: Objects this call made recoverable before overwriting or deleting them (with O(mode=restore),
        objects the run saved).
      type: int
    added:
      description: Objects this call adds that did not exist before the run (with O(mode=restore), that the run added).
      type: int
    manifest:
      description: Key of the record this call wrote, null when it wrote none (nothing to change, or check mode).
      type: str
  sample: {enabled: true, run_id: prod-20261125T134620Z-de32f65f, bucket: acme-prod, prefix: _directus_promote_trash/,
           location: "s3://acme-prod/_directus_promote_trash/prod-20261125T134620Z-de32f65f/", versioned: false,
           saved: 1, added: 7, manifest: _directus_promote_trash/prod-20261125T134620Z-de32f65f/manifest-000001-copy.json}
protected_keys:
  description: Full target keys left alone because of O(protect), at most O(max_keys_returned).
  returned: with O(mode=mirror), O(mode=copy) and O(mode=prune)
  type: list
  elements: str
restored:
  description: Objects put back (in check mode, to put back).
  returned: with O(mode=restore)
  type: int
restored_keys:
  description: Full target keys put back, at most O(max_keys_returned).
  returned: with O(mode=restore)
  type: list
  elements: str
removed:
  description: Objects the run added that were deleted (in check mode, to delete).
  returned: with O(mode=restore)
  type: int
removed_keys:
  description: Full target keys deleted, at most O(max_keys_returned).
  returned: with O(mode=restore)
  type: list
  elements: str
in_place:
  description: Objects the run saved that already hold their bytes from before the run.
  returned: with O(mode=restore)
  type: int
changed_since:
  description: Keys the run wrote that were changed since, left alone, at most O(max_keys_returned).
  returned: with O(mode=restore)
  type: list
  elements: str
kept_runs:
  description: Run ids whose trash is kept, newest first.
  returned: with O(mode=purge_trash)
  type: list
  elements: str
purged_runs:
  description: Run ids whose trash was deleted (in check mode, would be), newest first.
  returned: with O(mode=purge_trash)
  type: list
  elements: str
purged:
  description: Runs, trash objects and recorded versions deleted (in check mode, to delete).
  returned: with O(mode=purge_trash)
  type: dict
  sample: {runs: 2, objects: 14, versions: 3}
"""

import gc

# Run as a module (Ansible runs it as __main__), nothing imported or set up before the listings start is garbage:
# the cyclic collector would only walk it, many times over while Ansible and botocore load. main() freezes what
# is loaded by then and turns the collector back on.
# Imported (tests, tools), it leaves the importing process's collector alone.
if __name__ == "__main__":
    gc.disable()

import threading  # noqa: E402 - after gc.disable(), on purpose
import time
from collections import deque
from contextlib import contextmanager
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.casper.directus_promote.plugins.module_utils.aws import (
    BOTOCORE_IMPORT_ERROR,
    HAS_BOTOCORE,
    aws_client,
    aws_connection_argument_spec,
    aws_error_code,
    aws_error_message,
    connection_params,
    http_status,
    is_denied,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.faults import faulted_jobs
from ansible_collections.casper.directus_promote.plugins.module_utils.progress import progress_argument_spec, reporter
from ansible_collections.casper.directus_promote.plugins.module_utils import s3_parsing
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_trash import (
    MIRROR_MODES,
    Interrupted,
    MirrorTrash,
    TrashError,
    ignore_interrupts,
    interrupts_fail,
    interrupts_raise,
    protect_plan,
    run_purge,
    run_restore,
    trash_argument_spec,
    trash_filter,
    trash_problems,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_trash_plan import new_run_id, protect_matcher
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_listing import (
    ListingError,
    ReadAheadListing,
    prefetched,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import (
    ADD,
    UPDATE,
    PlanError,
    build_diff,
    build_plan,
    copy_metadata,
    GUARD_OPTIONS,
    delete_guard,
    failure_message,
    is_unchanged_copy,
    iter_listing,
    key_filter,
    needs_recorded_etag,
    normalize_etag,
    normalize_prefix,
    part_ranges,
    plan_key_lists,
    ranges_overlap,
    resolve_verified,
    tagging_header,
)

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - reported through HAS_BOTOCORE
    BotoCoreError = ClientError = Exception

MIB = 1024 * 1024
GIB = 1024 * MIB
DELETE_BATCH = 1000
NOT_FOUND = ("404", "NoSuchKey", "NotFound")
#: ListObjectsV2 answers of each listing requested ahead of the merge, at most
LISTING_READ_AHEAD = 8
#: bytes that copy_method=stream holds in memory at once (objects and parts in transit), at most
STREAM_BUFFER = 256 * MIB


class ByteBudget:
    """At most ``limit`` bytes taken at once; one taker may exceed it alone (a part larger than the limit)."""

    def __init__(self, limit):
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    def take(self, size):
        with self._cond:
            while self.used and self.used + size > self.limit:
                self._cond.wait()
            self.used += size
            self.peak = max(self.peak, self.used)

    def give(self, size):
        with self._cond:
            self.used -= size
            self._cond.notify_all()

    @contextmanager
    def holding(self, size):
        self.take(size)
        try:
            yield
        finally:
            self.give(size)


class Runner:
    """Executes a plan with a thread pool and shared clients."""

    def __init__(self, module, source_client, target_client, method):
        params = module.params
        self.module = module
        self.src = source_client
        self.tgt = target_client
        self.method = method
        self.source_bucket = params["source_bucket"]
        self.target_bucket = params["target_bucket"]
        self.source_prefix = normalize_prefix(params["source_prefix"])
        self.target_prefix = normalize_prefix(params["target_prefix"])
        self.threshold = params["multipart_threshold"]
        self.chunksize = params["multipart_chunksize"]
        self.workers = params["workers"]
        self.budget = ByteBudget(STREAM_BUFFER)
        self.lock = threading.Lock()
        self.failed = []        # (key, message)
        self.copied = 0
        self.updated = 0
        self.deleted = 0
        self.bytes_copied = 0
        self.copied_keys = []
        self.deleted_keys = []
        self.limit = params["max_keys_returned"]
        self.progress = reporter(params)

    # ------------------------------------------------------------ scheduling

    def run(self, jobs):
        """Run callables (each returns follow-up callables or None), at most 2 x workers queued."""
        ready = deque()
        pending = set()
        jobs = iter(jobs)
        exhausted = False
        inflight = max(2 * self.workers, 4)
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while True:
                while len(pending) < inflight:
                    if ready:
                        job = ready.popleft()
                    elif not exhausted:
                        job = next(jobs, None)
                        if job is None:
                            exhausted = True
                            continue
                    else:
                        break
                    pending.add(pool.submit(job))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    follow = future.result()
                    if follow:
                        ready.extend(follow)
        self.progress.finish()

    def fail(self, key, exc):
        message = aws_error_message(exc) if isinstance(exc, (BotoCoreError, ClientError)) else str(exc)
        with self.lock:
            self.failed.append((key, message))

    def succeeded(self, rel, size, flag):
        with self.lock:
            if flag == UPDATE:
                self.updated += 1
            else:
                self.copied += 1
            self.bytes_copied += size
            if len(self.copied_keys) < self.limit:
                self.copied_keys.append(self.target_prefix + rel)
        self.progress.advance(1, size)

    # ------------------------------------------------------------ copies

    def copy_jobs(self, entries):
        self.progress.start("copying objects", len(entries), "objects", entries.total_size())
        for rel, size, etag, flag in entries:
            yield self._object_job(rel, size, etag, flag)

    def _object_job(self, rel, size, etag, flag):
        def job():
            try:
                if self.method == "stream":
                    return self._stream(rel, size, etag, flag)
                return self._server(rel, size, etag, flag)
            except (BotoCoreError, ClientError, OSError, ValueError) as exc:
                self.fail(self.source_prefix + rel, exc)
            return None
        return job

    def _source(self, rel):
        return {"Bucket": self.source_bucket, "Key": self.source_prefix + rel}

    def _record_in_place(self, tkey, etag):
        """Rewrite a fresh copy's metadata in place to record the source ETag (its own ETag differs)."""
        head = self.tgt.head_object(Bucket=self.target_bucket, Key=tkey)
        self.tgt.copy_object(
            Bucket=self.target_bucket, Key=tkey, CopySource={"Bucket": self.target_bucket, "Key": tkey},
            MetadataDirective="REPLACE", TaggingDirective="COPY", **copy_metadata(head, etag, True))

    def _server(self, rel, size, etag, flag):
        tkey = self.target_prefix + rel
        if size > self.threshold:
            head = self.tgt.head_object(**self._source(rel))
            tags = self.tgt.get_object_tagging(**self._source(rel)).get("TagSet")
            return self._start_multipart(rel, size, head, tags, flag, stream=False)
        if needs_recorded_etag(etag, False):
            head = self.tgt.head_object(**self._source(rel))
            self.tgt.copy_object(
                Bucket=self.target_bucket, Key=tkey, CopySource=self._source(rel),
                MetadataDirective="REPLACE", TaggingDirective="COPY",
                **copy_metadata(head, head.get("ETag"), True))
        else:
            response = self.tgt.copy_object(
                Bucket=self.target_bucket, Key=tkey, CopySource=self._source(rel),
                MetadataDirective="COPY", TaggingDirective="COPY")
            new_etag = normalize_etag(response.get("CopyObjectResult", {}).get("ETag"))
            if new_etag != etag:
                self._record_in_place(tkey, etag)
        self.succeeded(rel, size, flag)
        return None

    def _stream(self, rel, size, etag, flag):
        tkey = self.target_prefix + rel
        if size > min(self.threshold, self.chunksize):
            head = self.src.head_object(**self._source(rel))
            tags = self.src.get_object_tagging(**self._source(rel)).get("TagSet")
            return self._start_multipart(rel, size, head, tags, flag, stream=True)
        with self.budget.holding(size):
            return self._stream_one(rel, tkey, flag)

    def _stream_one(self, rel, tkey, flag):
        response = self.src.get_object(**self._source(rel))
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        src_etag = normalize_etag(response.get("ETag"))
        record = needs_recorded_etag(src_etag, False)
        params = copy_metadata(response, src_etag, record)
        if response.get("TagCount"):
            params["Tagging"] = tagging_header(self.src.get_object_tagging(**self._source(rel)).get("TagSet"))
        put = self.tgt.put_object(Bucket=self.target_bucket, Key=tkey, Body=data, **params)
        if not record and normalize_etag(put.get("ETag")) != src_etag:
            self._record_in_place(tkey, src_etag)
        self.succeeded(rel, len(data), flag)
        return None

    def _start_multipart(self, rel, size, head, tags, flag, stream):
        tkey = self.target_prefix + rel
        src_etag = head.get("ETag")
        params = copy_metadata(head, src_etag, True)
        if tags:
            params["Tagging"] = tagging_header(tags)
        upload = self.tgt.create_multipart_upload(Bucket=self.target_bucket, Key=tkey, **params)
        state = _Upload(rel, tkey, upload["UploadId"], src_etag, size, flag, part_ranges(size, self.chunksize))
        return [self._part_job(state, number, byte_range, stream)
                for number, byte_range in enumerate(state.ranges, start=1)]

    def _part_job(self, state, number, byte_range, stream):
        def job():
            if not state.failed:
                try:
                    range_header = "bytes=%d-%d" % byte_range
                    if stream:
                        with self.budget.holding(byte_range[1] - byte_range[0] + 1):
                            response = self.src.get_object(IfMatch=state.src_etag, Range=range_header, **self._source(state.rel))
                            body = response["Body"]
                            try:
                                data = body.read()
                            finally:
                                body.close()
                            part = self.tgt.upload_part(Bucket=self.target_bucket, Key=state.tkey, UploadId=state.upload_id,
                                                        PartNumber=number, Body=data)
                            del data
                        part_etag = part["ETag"]
                    else:
                        part = self.tgt.upload_part_copy(
                            Bucket=self.target_bucket, Key=state.tkey, UploadId=state.upload_id, PartNumber=number,
                            CopySource=self._source(state.rel), CopySourceRange=range_header,
                            CopySourceIfMatch=state.src_etag)
                        part_etag = part["CopyPartResult"]["ETag"]
                    state.etags[number - 1] = part_etag
                except (BotoCoreError, ClientError, OSError, ValueError) as exc:
                    with state.lock:
                        first = not state.failed
                        state.failed = True
                    if first:
                        self.fail(self.source_prefix + state.rel, exc)
            with state.lock:
                state.remaining -= 1
                last = state.remaining == 0
            if last:
                return [self._finish_job(state)]
            return None
        return job

    def _finish_job(self, state):
        def job():
            if state.failed:
                try:
                    self.tgt.abort_multipart_upload(Bucket=self.target_bucket, Key=state.tkey, UploadId=state.upload_id)
                except (BotoCoreError, ClientError):
                    pass
                return None
            try:
                self.tgt.complete_multipart_upload(
                    Bucket=self.target_bucket, Key=state.tkey, UploadId=state.upload_id,
                    MultipartUpload={"Parts": [{"ETag": etag, "PartNumber": number}
                                               for number, etag in enumerate(state.etags, start=1)]})
            except (BotoCoreError, ClientError) as exc:
                self.fail(self.source_prefix + state.rel, exc)
                try:
                    self.tgt.abort_multipart_upload(Bucket=self.target_bucket, Key=state.tkey, UploadId=state.upload_id)
                except (BotoCoreError, ClientError):
                    pass
                return None
            self.succeeded(state.rel, state.size, state.flag)
            return None
        return job

    # ------------------------------------------------------------ deletes

    def delete_jobs(self, entries):
        self.progress.start("deleting objects", len(entries), "objects")
        batch = []
        for rel, _size, _etag, _flag in entries:
            batch.append(self.target_prefix + rel)
            if len(batch) == DELETE_BATCH:
                yield self._delete_job(batch)
                batch = []
        if batch:
            yield self._delete_job(batch)

    def _delete_job(self, keys):
        def job():
            try:
                response = self.tgt.delete_objects(
                    Bucket=self.target_bucket, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                for key in keys:
                    self.fail(key, exc)
                return None
            errors = {error.get("Key"): "%s: %s" % (error.get("Code"), error.get("Message")) for error in response.get("Errors") or []}
            with self.lock:
                for key in keys:
                    if key in errors:
                        self.failed.append((key, errors[key]))
                    else:
                        self.deleted += 1
                        if len(self.deleted_keys) < self.limit:
                            self.deleted_keys.append(key)
            self.progress.advance(len(keys))
            return None
        return job


class _Upload:
    """State of one multipart copy shared by its part jobs."""

    def __init__(self, rel, tkey, upload_id, src_etag, size, flag, ranges):
        self.rel = rel
        self.tkey = tkey
        self.upload_id = upload_id
        self.src_etag = src_etag
        self.size = size
        self.flag = flag
        self.ranges = ranges
        self.etags = [None] * len(ranges)
        self.remaining = len(ranges)
        self.failed = False
        self.lock = threading.Lock()


def verify_recorded(module, client, plan, target_bucket, target_prefix, workers):
    """HeadObject the target objects whose ETag differs at equal size.

    Returns one bool per ``plan.verify`` entry: whether the object's metadata
    records the source ETag it was copied from (reads only; check mode too).
    """
    def head(entry):
        rel, _size, etag, _flag = entry
        try:
            metadata = client.head_object(Bucket=target_bucket, Key=target_prefix + rel).get("Metadata")
        except ClientError as exc:
            if aws_error_code(exc) in NOT_FOUND or http_status(exc) == 404:
                return False
            raise
        return is_unchanged_copy(etag, metadata)

    if not len(plan.verify):
        return []
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(head, plan.verify))
    except (BotoCoreError, ClientError) as exc:
        module.fail_json(msg="Cannot read the metadata of target objects in bucket %r: %s" % (target_bucket, aws_error_message(exc)))
    return []  # not reached: fail_json exits


def choose_method(module, target_client, plan, source_bucket, source_prefix):
    """Resolve copy_method=auto (reads only, so check mode decides the same)."""
    params = module.params
    method = params["copy_method"]
    if method != "auto":
        return method
    target = connection_params(params)
    source = connection_params(params, "source_")
    if (source.get("endpoint_url") or None) != (target.get("endpoint_url") or None):
        return "stream"
    same_credentials = all(source.get(name) == target.get(name) for name in ("access_key", "secret_key", "session_token", "profile"))
    if same_credentials or not len(plan.copies):
        return "server"
    try:
        target_client.head_object(Bucket=source_bucket, Key=source_prefix + plan.copies[0][0])
    except (BotoCoreError, ClientError) as exc:
        if is_denied(exc):
            return "stream"
    return "server"


def interrupted_message(signal_name, runner, trash):
    """What an interrupted run did: counts, and where the trash that undoes it is."""
    message = "s3_mirror interrupted by %s after copying %d and deleting %d object(s)" % (
        signal_name, runner.copied + runner.updated, runner.deleted)
    if runner.failed:
        message += " (%d failed)" % len(runner.failed)
    if trash.get("enabled"):
        message += "; mode=restore with run_id=%s undoes them (trash %s)" % (trash["run_id"], trash.get("location"))
    return message + "; run it again to finish"


def argument_spec():
    spec = dict(
        source_bucket=dict(type="str"),
        source_prefix=dict(type="str", default=""),
        target_bucket=dict(type="str", required=True),
        target_prefix=dict(type="str", default=""),
        mode=dict(type="str", default="mirror", choices=["mirror", "copy", "prune", "restore", "purge_trash"]),
        include=dict(type="list", elements="str"),
        exclude=dict(type="list", elements="str"),
        max_delete=dict(type="int", default=1000),
        max_delete_percent=dict(type="float", default=50),
        max_delete_percent_min_count=dict(type="int", default=10),
        allow_empty_source=dict(type="bool", default=False),
        force_delete=dict(type="bool", default=False),
        guard_option_names=dict(type="dict", options={option: dict(type="str") for option in GUARD_OPTIONS}),
        multipart_threshold=dict(type="int", default=5 * GIB),
        multipart_chunksize=dict(type="int", default=16 * MIB),
        copy_method=dict(type="str", default="auto", choices=["auto", "server", "stream"]),
        workers=dict(type="int", default=128),
        max_keys_returned=dict(type="int", default=1000, no_log=False),
        retry_mode=dict(type="str", default="standard", choices=["adaptive", "standard"]),
        retry_max_attempts=dict(type="int", default=10),
    )
    spec.update(trash_argument_spec())
    spec.update(aws_connection_argument_spec())
    spec.update(aws_connection_argument_spec(prefix="source_"))
    spec.update(progress_argument_spec())
    return spec


def validate(params):
    """Problems with the options (pure), checked before any request."""
    problems = []
    if not 1 <= params["workers"] <= 256:
        problems.append("workers must be between 1 and 256")
    if params["max_delete"] < 0:
        problems.append("max_delete must not be negative")
    if not 0 <= params["max_delete_percent"] <= 100:
        problems.append("max_delete_percent must be between 0 and 100")
    if params["max_delete_percent_min_count"] < 0:
        problems.append("max_delete_percent_min_count must not be negative")
    if not 0 < params["multipart_threshold"] <= 5 * GIB:
        problems.append("multipart_threshold must be between 1 byte and 5 GiB (the CopyObject limit)")
    if not 5 * MIB <= params["multipart_chunksize"] <= 5 * GIB:
        problems.append("multipart_chunksize must be between 5 MiB and 5 GiB")
    if params["max_keys_returned"] < 0:
        problems.append("max_keys_returned must not be negative")
    if params["retry_max_attempts"] < 1:
        problems.append("retry_max_attempts must be at least 1")
    mirroring = params["mode"] in MIRROR_MODES
    if not params["target_bucket"]:
        problems.append("target_bucket must not be empty")
    if mirroring and not params["source_bucket"]:
        problems.append("source_bucket is required with mode=%s" % params["mode"])
    if mirroring and params["source_bucket"] and ranges_overlap(
            params["source_bucket"], normalize_prefix(params["source_prefix"]),
            params["target_bucket"], normalize_prefix(params["target_prefix"])):
        problems.append("source and target overlap (same bucket, one prefix contains the other)")
    problems.extend(trash_problems(params))
    return problems


def client_options(params, check_mode):
    """Keyword arguments of aws_client() for s3_mirror's clients."""
    # botocore's retries max_attempts counts retries after the first attempt; the pool also serves both listings (one
    # client when source and target share an account) and the trash's two reads beside them
    options = dict(max_pool_connections=params["workers"] + 2 * LISTING_READ_AHEAD + 2, retry_mode=params["retry_mode"],
                   max_attempts=params["retry_max_attempts"] - 1)
    if not check_mode:
        # s3_mirror's own parsing shortcuts, on its own clients, in runs that write (module_utils/s3_parsing.py);
        # check mode (the promotion's preflight) uses plain botocore
        options.update(setup_session=s3_parsing.setup_session, setup_client=s3_parsing.setup_client)
    return options


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_BOTOCORE:
        module.fail_json(msg=missing_required_lib("botocore"), exception=str(BOTOCORE_IMPORT_ERROR))
    params = module.params
    problems = validate(params)
    if problems:
        module.fail_json(msg="; ".join(problems))

    started = time.monotonic()
    timings = {}
    interrupts_fail(module)  # until the first write: a JSON failure saying that nothing was changed
    if params["mode"] not in MIRROR_MODES:
        client = aws_client(module, "s3", max_pool_connections=params["workers"], retry_mode=params["retry_mode"],
                            max_attempts=params["retry_max_attempts"] - 1)
        if params["mode"] == "restore":
            run_restore(module, client)  # exits
        run_purge(module, client)  # exits
    run_id = params["run_id"] or new_run_id()
    source_bucket, target_bucket = params["source_bucket"], params["target_bucket"]
    source_prefix = normalize_prefix(params["source_prefix"])
    target_prefix = normalize_prefix(params["target_prefix"])
    workers = params["workers"]
    options = client_options(params, module.check_mode)
    target_client = aws_client(module, "s3", **options)
    if connection_params(params, "source_") == connection_params(params):
        source_client = target_client  # one account: one shared client and connection pool
    else:
        source_client = aws_client(module, "s3", prefix="source_", **options)

    # What is loaded by now (Ansible, botocore and its service models) lives until the process ends. Frozen, the
    # cyclic garbage collector stops walking it on every full pass while listing pages are parsed, and once more
    # at exit (docs/performance.md).
    gc.freeze()
    gc.enable()
    selected = trash_filter(params, key_filter(params["include"], params["exclude"]))
    trash = MirrorTrash(module, target_client, run_id)
    trash.read_ahead()
    try:
        # both listings read ahead at guessed page starts (s3_listing explains why that is safe)
        read_ahead = min(workers, LISTING_READ_AHEAD)
        target_listing = ReadAheadListing(target_client, "target", target_bucket, target_prefix, read_ahead,
                                          source_prefix=source_prefix)
        source_listing = ReadAheadListing(source_client, "source", source_bucket, source_prefix, read_ahead)
        source_pages = target_listing.follow(source_listing.pages())
        source = iter_listing(prefetched(source_pages, depth=read_ahead + 1), source_prefix, selected, "source listing")
        target = iter_listing(target_listing.pages(), target_prefix, selected, "target listing")
        plan = build_plan(source, target, params["mode"])
    except ListingError as exc:
        module.fail_json(msg=exc.message())
    except PlanError as exc:
        module.fail_json(msg=str(exc))
    timings["plan"] = round(time.monotonic() - started, 3)

    mark = time.monotonic()
    resolve_verified(plan, verify_recorded(module, target_client, plan, target_bucket, target_prefix, workers))
    timings["verify"] = round(time.monotonic() - mark, 3)
    protected = protect_plan(plan, protect_matcher(params["protect"]), UPDATE)

    refusal = delete_guard(plan, **{option: params[option] for option in GUARD_OPTIONS},
                           names=params["guard_option_names"], sample=min(params["max_keys_returned"], 50))
    summary = plan.summary()
    summary["protected"] = len(protected)
    if refusal:
        module.fail_json(msg=refusal + ". Nothing was changed.", plan=summary,
                         **plan_key_lists(plan, target_prefix, params["max_keys_returned"]))

    method = choose_method(module, target_client, plan, source_bucket, source_prefix)
    summary["copy_method"] = method
    trash.prepare(plan, ADD)
    result = dict(changed=plan.changed(), plan=summary, run_id=run_id, protected_keys=[
        target_prefix + key for key in protected[:params["max_keys_returned"]]])
    if module._diff:
        result["diff"] = build_diff(plan, target_bucket, target_prefix, params["max_keys_returned"])

    if module.check_mode:
        result["trash"] = trash.report(check_mode=True)
        result["counts"] = dict(copied=summary["to_copy"], updated=summary["to_update"], deleted=summary["to_delete"],
                                unchanged=summary["unchanged"], bytes_copied=summary["bytes_to_copy"])
        result.update(plan_key_lists(plan, target_prefix, params["max_keys_returned"]))
        timings["total"] = round(time.monotonic() - started, 3)
        result["timings"] = timings
        module.exit_json(**result)

    runner = Runner(module, source_client, target_client, method)
    interrupted = None
    try:
        with interrupts_raise():
            mark = time.monotonic()
            try:
                trash.journal()  # saved and journalled before the first target write
            except (BotoCoreError, ClientError, TrashError) as exc:
                module.fail_json(msg="Cannot save to the trash %s: %s. Nothing was changed." % (
                    trash.report(False).get("location"), aws_error_message(exc) if not isinstance(exc, TrashError) else exc),
                    run_id=run_id)
            timings["trash"] = round(time.monotonic() - mark, 3)
            mark = time.monotonic()
            if len(plan.copies):
                runner.run(faulted_jobs(runner.copy_jobs(plan.copies), "copying", 2))
            timings["copy"] = round(time.monotonic() - mark, 3)

            mark = time.monotonic()
            if not runner.failed and len(plan.deletes):
                runner.run(faulted_jobs(runner.delete_jobs(plan.deletes), "deleting", 1))
            timings["delete"] = round(time.monotonic() - mark, 3)
    except Interrupted as exc:
        interrupted = exc
    ignore_interrupts()  # the result is all that is left to do
    timings["total"] = round(time.monotonic() - started, 3)

    result.update(
        changed=bool(runner.copied or runner.updated or runner.deleted),
        counts=dict(copied=runner.copied, updated=runner.updated, deleted=runner.deleted,
                    unchanged=summary["unchanged"], bytes_copied=runner.bytes_copied),
        timings=timings,
    )
    result["trash"] = trash.report(check_mode=False)
    if runner.failed or interrupted:
        # what was really done, in completion order
        result.update(
            changed_keys=runner.copied_keys, changed_keys_total=runner.copied + runner.updated,
            deleted_keys=runner.deleted_keys, deleted_keys_total=runner.deleted,
            keys_truncated=(len(runner.copied_keys) < runner.copied + runner.updated or len(runner.deleted_keys) < runner.deleted))
    else:
        # everything planned was done: the plan's lists, in key order
        result.update(plan_key_lists(plan, target_prefix, params["max_keys_returned"]))
    if interrupted:
        module.fail_json(msg=interrupted_message(interrupted.name, runner, trash.report(False)), **result)
    if runner.failed:
        limit = params["max_keys_returned"]
        failed = sorted(runner.failed)
        copying = len(plan.deletes) and not runner.deleted
        module.fail_json(
            msg=failure_message(failed, nothing_deleted=bool(copying)),
            failed_keys=[key for key, _message in failed[:limit]], failed_keys_total=len(failed), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
