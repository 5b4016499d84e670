# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cloudfront_invalidate
short_description: Invalidate CloudFront paths once per promotion, minimal and waitable
version_added: 0.1.0
description:
  - Creates CloudFront invalidations for a list of paths and/or S3 object keys.
  - Paths are normalised (leading C(/), de-duplicated, URL-encoded the way CloudFront expects) and, above
    O(collapse_threshold), collapsed to a few prefix wildcards or C(/*); more than 3,000 remaining paths
    are split into several invalidations.
  - Each invalidation is named by a CallerReference derived from O(run_id) and the sorted paths, so a
    retried task finds and returns the invalidation it already created (C(changed=false)) while every new
    promotion (new O(run_id)) invalidates again.
  - An existing invalidation with the reference is looked for among the distribution's most recent
    invalidations (never by listing all of them); further back, CloudFront itself answers a repeated
    CallerReference with the existing invalidation.
author:
  - casper.directus_promote contributors (@casper)
options:
  distribution_id:
    description:
      - ID of the CloudFront distribution.
      - Mutually exclusive with O(alias); one of them is required.
    type: str
  alias:
    description:
      - An alternate domain name (CNAME) of the distribution or its C(*.cloudfront.net) domain name; the
        distribution is looked up by it (case-insensitive).
      - Mutually exclusive with O(distribution_id).
    type: str
  paths:
    description:
      - CDN paths to invalidate, for example C(/index.html) or C(/assets/*).
      - A leading C(/) is added when missing. Characters CloudFront requires encoded (space, non-ASCII,
        C(%) not starting an escape, C(~), C(") and the other RFC 1738 unsafe characters) are
        percent-encoded; existing C(%XX) escapes are kept. C(+) is encoded in the path part (S3 reads a
        literal C(+) as a space). A C(?) starts a query string.
      - C(*) is a wildcard and only allowed as the last character.
    type: list
    elements: str
    default: []
  keys:
    description:
      - S3 object keys (for example the C(changed_keys) and C(deleted_keys) of P(casper.directus_promote.s3_mirror#module))
        to turn into CDN paths; O(key_prefix) is removed and O(path_prefix) added.
      - Every character of a key that could be read as something else in a URL (C(+), C(?), C(#), C(*),
        C(%), spaces, non-ASCII...) is percent-encoded.
    type: list
    elements: str
    default: []
  key_prefix:
    description:
      - Prefix (folder) removed from every key in O(keys); C(uploads) and C(uploads/) are the same.
      - A key not under it is an error.
    type: str
    default: ''
  path_prefix:
    description:
      - CDN path prefix put in front of every key in O(keys) (the distribution's path to the bucket
        prefix, for example C(/assets)).
    type: str
    default: ''
  collapse_threshold:
    description:
      - With more paths than this (or more than 15 wildcard paths), the paths are collapsed to at most 15
        paths (prefix wildcards, or C(/*)). The result says so (RV(collapsed), RV(collapse_reason)).
      - C(0) always collapses.
    type: int
    default: 100
  caller_reference:
    description:
      - CallerReference of the invalidation, used as is (suffixed C(-1), C(-2)... when the paths need
        several invalidations).
      - By default derived from O(run_id) and the sorted final paths.
    type: str
  run_id:
    description:
      - Identifies one promotion. The same O(run_id) and paths give the same CallerReference, so a
        retried task returns the existing invalidation instead of creating one.
      - When neither O(run_id) nor O(caller_reference) is set, a random one is used and every run creates
        new invalidations.
    type: str
  wait:
    description:
      - Wait until the invalidations are completed.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds, from the start of the task, for everything that may need waiting for; creating the
        invalidations (retried with back-off on C(TooManyInvalidationsInProgress) and throttling) and,
        with O(wait=true), their completion. The task fails with a clear message after it.
    type: int
    default: 600
extends_documentation_fragment:
  - casper.directus_promote.aws
  - casper.directus_promote.progress
attributes:
  check_mode:
    support: full
    description: Reports the invalidations that would be created (or that already exist); writes nothing.
  diff_mode:
    support: full
    description: Lists the paths; paths of invalidations that already exist are on both sides.
  idempotent:
    support: full
    description: With the same O(run_id) (or O(caller_reference)) and paths, a second run returns the existing invalidations.
notes:
  - CloudFront accepts at most 3,000 single paths and 15 wildcard paths in progress per distribution; a batch
    refused with C(TooManyInvalidationsInProgress) is retried with back-off until O(wait_timeout).
  - Without paths nothing is called at all, not even the distribution lookup.
  - Status is compared case-insensitively (emulators answer C(COMPLETED), AWS C(Completed)).
  - An existing invalidation is looked for among the 30 newest invalidations of the distribution (one
    C(ListInvalidations) page and at most 30 C(GetInvalidation) calls). Older ones are recognised when
    CloudFront answers C(CreateInvalidation) with an invalidation created before the task started.
  - "IAM permissions needed: C(cloudfront:CreateInvalidation), C(cloudfront:GetInvalidation),
    C(cloudfront:ListInvalidations), and C(cloudfront:ListDistributions) with O(alias)."
"""

EXAMPLES = r"""
- name: Invalidate what the asset mirror changed, once per promotion
  casper.directus_promote.cloudfront_invalidate:
    alias: cdn.example.com
    keys: "{{ (copy_result.changed_keys + prune_result.deleted_keys) | unique }}"
    key_prefix: uploads/
    path_prefix: /assets
    run_id: "{{ promotion_id }}"
    wait: true
    wait_timeout: 900

- name: Invalidate two pages by distribution ID
  casper.directus_promote.cloudfront_invalidate:
    distribution_id: E2QWRUHAPOMQZL
    paths:
      - /index.html
      - /news/*
    run_id: "{{ ansible_date_time.iso8601_basic }}"
"""

RETURN = r"""
distribution_id:
  description: The distribution (looked up when O(alias) was given; null when there was nothing to do).
  returned: always
  type: str
  sample: E2QWRUHAPOMQZL
invalidations:
  description: One entry per invalidation (batch of at most 3,000 paths).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Invalidation ID (null in check mode for one that would be created).
      type: str
    status:
      description: Status as CloudFront reports it (C(InProgress), C(Completed)); null in check mode for one that would be created.
      type: str
    caller_reference:
      description: The CallerReference.
      type: str
    path_count:
      description: Number of paths in the invalidation.
      type: int
    existing:
      description: Whether the invalidation existed before this task (a retry).
      type: bool
    create_time:
      description: Creation time (ISO 8601), null when not created.
      type: str
  sample:
    - id: I2J0I21PCUYOIK
      status: Completed
      caller_reference: directus-promote-5b1c4a46ac9c7300570f4f17abf8a1545b1c4a46
      path_count: 3
      existing: false
      create_time: "2026-01-01T12:00:00+00:00"
paths:
  description: The final, normalised paths (after collapsing).
  returned: always
  type: list
  elements: str
  sample: [/assets/a%20b.jpg, /index.html]
collapsed:
  description: Whether the paths were collapsed to wildcards.
  returned: always
  type: bool
collapse_reason:
  description: Why and to what the paths were collapsed; null when they were not.
  returned: always
  type: str
  sample: "503 paths exceed collapse_threshold 100: collapsed to 3 paths (2 wildcards)"
run_id:
  description: The run_id used to derive the CallerReference (generated when none was given).
  returned: when the CallerReference was derived
  type: str
"""

import datetime
import random
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.casper.directus_promote.plugins.module_utils.aws import (
    aws_client,
    aws_connection_argument_spec,
    aws_error_code,
    aws_error_message,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.cloudfront_plan import (
    PlanError,
    backoff_delays,
    build_plan,
    same_paths,
    status_is,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.progress import (
    Reporter,
    progress_argument_spec,
    reporter,
)

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - aws_client reports the missing library
    BotoCoreError = ClientError = Exception

#: Errors after which creating again later may succeed: CloudFront's in-progress limits and throttling
#: (botocore's own retries have been used up by then).
RETRYABLE_CREATE = frozenset((
    "TooManyInvalidationsInProgress", "Throttling", "ThrottlingException", "TooManyRequestsException",
    "RequestLimitExceeded", "RequestThrottled", "ServiceUnavailable", "InternalError", "InternalFailure",
))
RETRYABLE_READ = RETRYABLE_CREATE - {"TooManyInvalidationsInProgress"}

#: Only the most recent invalidations are searched for an existing CallerReference.
LIST_PAGE_SIZE = 100
#: Pages read at most when the server lists oldest first (an emulator): the newest are at the end.
MAX_LIST_PAGES = 20
#: How many of the newest invalidations are read (GetInvalidation) to compare references.
SCAN_LIMIT = 30
SCAN_WORKERS = 8
#: CreateInvalidation answering with an invalidation created this long before the task started means
#: CloudFront returned an existing one for a repeated CallerReference (allows for clock skew).
REPLAY_MARGIN = datetime.timedelta(minutes=5)


class InvalidationError(Exception):
    """A failure to report with fail_json, with what was done so far."""

    def __init__(self, msg, invalidations=None):
        super().__init__(msg)
        self.msg = msg
        self.invalidations = invalidations or []


def _utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _as_utc(value):
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    return None


def _summary(invalidation, existing):
    batch = invalidation.get("InvalidationBatch") or {}
    created = _as_utc(invalidation.get("CreateTime"))
    return {
        "id": invalidation.get("Id"),
        "status": invalidation.get("Status"),
        "caller_reference": batch.get("CallerReference"),
        "path_count": (batch.get("Paths") or {}).get("Quantity", len((batch.get("Paths") or {}).get("Items") or [])),
        "existing": existing,
        "create_time": created.isoformat() if created else None,
    }


def _paths_of(invalidation):
    return ((invalidation.get("InvalidationBatch") or {}).get("Paths") or {}).get("Items") or []


def find_distribution(client, name):
    """The ID of the distribution having ``name`` as alias or domain name (paginated list)."""
    wanted = name.strip().rstrip(".").lower()
    paginator = client.get_paginator("list_distributions")
    for page in paginator.paginate():
        for dist in (page.get("DistributionList") or {}).get("Items") or []:
            names = [dist.get("DomainName") or ""] + list((dist.get("Aliases") or {}).get("Items") or [])
            if wanted in (n.rstrip(".").lower() for n in names):
                return dist["Id"]
    raise InvalidationError("No CloudFront distribution has the alias or domain name %r" % name)


class Invalidator:
    """Executes a plan's batches against one distribution.

    ``sleep``, ``monotonic`` and ``now`` are injectable so that back-off and
    waiting are tested without waiting.
    """

    def __init__(self, client, distribution_id, timeout, sleep=time.sleep, monotonic=time.monotonic,
                 now=_utcnow, scan_limit=SCAN_LIMIT, workers=SCAN_WORKERS, jitter=True, progress=None):
        self.client = client
        self.progress = progress or Reporter()
        self.distribution_id = distribution_id
        self.sleep = sleep
        self.monotonic = monotonic
        self.deadline = monotonic() + timeout
        self.timeout = timeout
        self.started = now()
        self.scan_limit = scan_limit
        self.workers = workers
        self.jitter = jitter

    # -- helpers -------------------------------------------------------------------------
    def remaining(self):
        return self.deadline - self.monotonic()

    def _pause(self, delay):
        """Sleep ``delay`` (jittered) but not past the deadline; False when no time is left."""
        left = self.remaining()
        if left <= 0:
            return False
        if self.jitter:
            delay = delay / 2 + random.uniform(0, delay / 2)
        self.sleep(max(0.0, min(delay, left)))
        return True

    def _get(self, invalidation_id):
        return self.client.get_invalidation(DistributionId=self.distribution_id, Id=invalidation_id)["Invalidation"]

    # -- finding existing invalidations -------------------------------------------------
    def recent_summaries(self):
        """The newest invalidation summaries, newest first, without listing every invalidation.

        AWS lists newest first, so one page is enough; a server listing oldest first
        (the emulator) is paged further, up to MAX_LIST_PAGES.
        """
        summaries = []
        paginator = self.client.get_paginator("list_invalidations")
        pages = paginator.paginate(DistributionId=self.distribution_id, PaginationConfig={"PageSize": LIST_PAGE_SIZE})
        for number, page in enumerate(pages, 1):
            items = (page.get("InvalidationList") or {}).get("Items") or []
            summaries.extend(items)
            times = [_as_utc(item.get("CreateTime")) for item in items]
            newest_first = len(times) < 2 or None in times or times[0] >= times[-1]
            if newest_first or number >= MAX_LIST_PAGES:
                break
        summaries.sort(key=lambda item: _as_utc(item.get("CreateTime")) or self.started, reverse=True)
        return summaries[:self.scan_limit]

    def find_existing(self, references):
        """{caller_reference: invalidation} for those of ``references`` among the newest invalidations."""
        wanted = set(references)
        found = {}
        summaries = self.recent_summaries()
        chunk = max(1, self.workers)
        for start in range(0, len(summaries), chunk):
            ids = [item["Id"] for item in summaries[start:start + chunk]]
            if self.workers > 1 and len(ids) > 1:
                with ThreadPoolExecutor(max_workers=min(self.workers, len(ids))) as pool:
                    details = list(pool.map(self._get, ids))
            else:
                details = [self._get(i) for i in ids]
            for invalidation in details:
                ref = (invalidation.get("InvalidationBatch") or {}).get("CallerReference")
                if ref in wanted and ref not in found:
                    found[ref] = invalidation
            if len(found) == len(wanted):
                break
        return found

    # -- creating ---------------------------------------------------------------------------
    def create(self, reference, paths, done):
        """Create one invalidation, retrying in-progress limits and throttling until the deadline.

        Returns (invalidation, existing): existing is true when CloudFront answered a
        repeated CallerReference with the invalidation it created before.
        """
        batch = {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": reference}
        delays = backoff_delays(initial=2.0, maximum=30.0)
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self.client.create_invalidation(DistributionId=self.distribution_id, InvalidationBatch=batch)
            except ClientError as exc:
                code = aws_error_code(exc)
                if code == "InvalidationBatchAlreadyExists":
                    raise InvalidationError(
                        "CallerReference %r was already used on distribution %s for different paths "
                        "(InvalidationBatchAlreadyExists); use a new run_id or caller_reference"
                        % (reference, self.distribution_id), done)
                if code in RETRYABLE_CREATE and self._pause(next(delays)):
                    continue
                if code in RETRYABLE_CREATE:
                    raise InvalidationError(
                        "CloudFront still refused the invalidation %s after %d attempts in %d s (wait_timeout): %s%s"
                        % (reference, attempts, self.timeout, aws_error_message(exc),
                           "; CloudFront allows 3,000 paths and 15 wildcard paths in progress per distribution"
                           if code == "TooManyInvalidationsInProgress" else ""), done)
                raise InvalidationError("Cannot create the invalidation %s: %s" % (reference, aws_error_message(exc)), done)
            invalidation = response["Invalidation"]
            created = _as_utc(invalidation.get("CreateTime"))
            existing = created is not None and created < self.started - REPLAY_MARGIN
            return invalidation, existing

    # -- waiting ----------------------------------------------------------------------------
    def wait(self, summaries):
        """Poll every not yet completed invalidation until completed or the deadline."""
        delays = backoff_delays(initial=2.0, maximum=20.0)
        pending = [s for s in summaries if not status_is(s["status"], "completed")]
        self.progress.start("waiting for invalidation%s %s to complete" % ("" if len(pending) == 1 else "s", ", ".join(
            str(s["id"]) for s in pending)), len(pending), "invalidations", detail="wait_timeout %d s" % self.timeout)
        while pending:
            still = []
            for summary in pending:
                try:
                    invalidation = self._get(summary["id"])
                except ClientError as exc:
                    if aws_error_code(exc) in RETRYABLE_READ:
                        still.append(summary)
                        continue
                    raise InvalidationError("Cannot read invalidation %s: %s" % (summary["id"], aws_error_message(exc)), summaries)
                summary["status"] = invalidation.get("Status")
                if not status_is(summary["status"], "completed"):
                    still.append(summary)
            pending = still
            self.progress.update(done=len(summaries) - len(pending), detail="status %s, wait_timeout %d s" % (
                ", ".join(sorted(set(str(s["status"]) for s in pending))) or "Completed", self.timeout))
            if pending and not self._pause(next(delays)):
                raise InvalidationError(
                    "Timed out after %d s (wait_timeout) waiting for invalidation%s %s to complete (status %s)"
                    % (self.timeout, "" if len(pending) == 1 else "s", ", ".join(s["id"] for s in pending),
                       ", ".join(sorted(set(str(s["status"]) for s in pending)))), summaries)
        self.progress.finish()
        return summaries

    # -- the whole run ---------------------------------------------------------------------
    def run(self, batches, check_mode=False, wait=False):
        """Find or create each batch's invalidation; returns (summaries, changed)."""
        existing = self.find_existing([b["caller_reference"] for b in batches])
        summaries = []
        changed = False
        for batch in batches:
            ref = batch["caller_reference"]
            found = existing.get(ref)
            if found is not None:
                if not same_paths(_paths_of(found), batch["paths"]):
                    raise InvalidationError(
                        "CallerReference %r was already used for invalidation %s on distribution %s with different "
                        "paths (CloudFront answers InvalidationBatchAlreadyExists); use a new run_id or caller_reference"
                        % (ref, found.get("Id"), self.distribution_id), summaries)
                summaries.append(_summary(found, True))
                continue
            if check_mode:
                changed = True
                summaries.append({"id": None, "status": None, "caller_reference": ref, "path_count": len(batch["paths"]),
                                  "existing": False, "create_time": None})
                continue
            invalidation, replayed = self.create(ref, batch["paths"], summaries)
            changed = changed or not replayed
            summaries.append(_summary(invalidation, replayed))
        if wait and not check_mode:
            self.wait(summaries)
        return summaries, changed


def diff_text(batches, summaries):
    before, after = [], []
    for batch, summary in zip(batches, summaries):
        header = "# invalidation %s (%s)" % (summary.get("id") or "(new)", batch["caller_reference"])
        lines = [header] + list(batch["paths"])
        after.extend(lines)
        if summary.get("existing"):
            before.extend(lines)
    return {
        "before": "\n".join(before) + ("\n" if before else ""),
        "after": "\n".join(after) + ("\n" if after else ""),
        "before_header": "CloudFront invalidations (existing)",
        "after_header": "CloudFront invalidations",
    }


def argument_spec():
    spec = dict(
        distribution_id=dict(type="str"),
        alias=dict(type="str"),
        paths=dict(type="list", elements="str", default=[]),
        keys=dict(type="list", elements="str", default=[], no_log=False),
        key_prefix=dict(type="str", default="", no_log=False),
        path_prefix=dict(type="str", default=""),
        collapse_threshold=dict(type="int", default=100),
        caller_reference=dict(type="str"),
        run_id=dict(type="str"),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=600),
    )
    spec.update(aws_connection_argument_spec())
    spec.update(progress_argument_spec())
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        mutually_exclusive=[("distribution_id", "alias")],
        required_one_of=[("distribution_id", "alias")],
        supports_check_mode=True,
    )
    params = module.params
    if params["wait_timeout"] < 0:
        module.fail_json(msg="wait_timeout must be 0 or more")
    run_id = params["run_id"]
    generated_run_id = False
    if not params["caller_reference"] and not run_id:
        run_id = uuid.uuid4().hex
        generated_run_id = True
    try:
        plan = build_plan(
            paths=params["paths"], keys=params["keys"], key_prefix=params["key_prefix"],
            path_prefix=params["path_prefix"], collapse_threshold=params["collapse_threshold"],
            run_id=run_id, caller_reference=params["caller_reference"],
        )
    except PlanError as exc:
        module.fail_json(msg=str(exc))

    result = dict(
        changed=False,
        distribution_id=params["distribution_id"],
        invalidations=[],
        paths=plan["paths"],
        collapsed=plan["collapsed"],
        collapse_reason=plan["collapse_reason"],
    )
    if not plan["batches"]:
        result["msg"] = "No paths to invalidate"
        module.exit_json(**result)
    if not params["caller_reference"]:
        result["run_id"] = run_id
    if generated_run_id:
        module.warn("Neither run_id nor caller_reference is set: a random run_id is used, so a retry creates new invalidations")

    client = aws_client(module, "cloudfront")
    try:
        distribution_id = params["distribution_id"] or find_distribution(client, params["alias"])
        result["distribution_id"] = distribution_id
        invalidator = Invalidator(client, distribution_id, params["wait_timeout"], progress=reporter(params))
        summaries, changed = invalidator.run(plan["batches"], check_mode=module.check_mode, wait=params["wait"])
    except InvalidationError as exc:
        result["invalidations"] = exc.invalidations
        result["changed"] = any(not s.get("existing") and s.get("id") for s in exc.invalidations)
        module.fail_json(msg=exc.msg, **result)
    except (BotoCoreError, ClientError) as exc:
        module.fail_json(msg="CloudFront request failed for distribution %s: %s" % (
            result["distribution_id"] or params["alias"], aws_error_message(exc)), **result)
    result["changed"] = changed
    result["invalidations"] = summaries
    if module._diff:
        result["diff"] = diff_text(plan["batches"], summaries)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
