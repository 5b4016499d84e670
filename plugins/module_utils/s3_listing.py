# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The two ListObjectsV2 listings s3_mirror plans on, each read ahead at guessed page starts.

A listing is a chain of pages: asked one after the other, the next request
can only be sent once the page before it is in, and a bucket of 100 pages
costs 100 round trips. ReadAheadListing sends ``ListObjectsV2(StartAfter=k)``
for keys ``k`` where later pages most likely begin, several at once, before the
chain gets there. The guesses come from two places:

- The keys of the first page. Directus names each file by a random UUID, so
  below a common stem (the storage root) keys are spread evenly over the hex
  digits: the first page's share of that range says how many keys follow and
  where each following page begins (``id_guesses``). Keys that are not hex ids
  give no such guesses.
- For the target, the source's pages: after a first mirror both buckets hold
  the same keys, so each source page ends at a key the target holds too. The
  guess is a little before the page end (a twentieth of a page): a target with
  a few keys the source lacks (s3_mirror's own trash manifest, say) ends its
  pages that many keys earlier, and an answer that starts before the chain's
  position still serves it; one that starts after it would be useless.

A guess never decides what the plan sees. The listing is read as a chain of
answers, each one taken up exactly where the keys read so far end: an answer
is used when its StartAfter is the last key read, or when it starts before
that key and reaches beyond it (its keys up to there are skipped); otherwise
the request for that key is sent then. An answer that is not truncated holds
every key after its StartAfter, and ends the listing. So a bucket with more,
fewer or other keys than guessed costs a few extra requests, never a key.
"""

from __future__ import annotations

import threading
from bisect import bisect_right
from collections import deque
from os.path import commonprefix
from queue import Full, Queue

from ansible_collections.casper.directus_promote.plugins.module_utils.aws import aws_error_code, aws_error_message, is_denied
from ansible_collections.casper.directus_promote.plugins.module_utils.s3_mirror_plan import PlanError, remap_key

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # pragma: no cover - the module reports missing botocore
    BotoCoreError = ClientError = Exception

PAGE_SIZE = 1000


class ListingError(Exception):
    def __init__(self, side, bucket, exc):
        super().__init__(side, bucket, exc)
        self.side = side
        self.bucket = bucket
        self.exc = exc

    def message(self):
        if aws_error_code(self.exc) == "NoSuchBucket":
            return "The %s bucket %r does not exist." % (self.side, self.bucket)
        if is_denied(self.exc):
            return "Access denied listing the %s bucket %r (%s); check the %s credentials." % (
                self.side, self.bucket, aws_error_message(self.exc), self.side)
        return "Cannot list the %s bucket %r: %s" % (self.side, self.bucket, aws_error_message(self.exc))


HEX_DIGITS = "0123456789abcdef"
ID_DIGITS = 8  # a UUID's first group: where the keys' spread is read from
PAGE_SPACING = 0.85  # guesses are this many estimated pages apart, so that each answer most likely reaches the next
MAX_GUESSES = 10000


def id_guesses(keys, prefix, page_size, limit=MAX_GUESSES):
    """StartAfter keys where the pages after a first page of random hex ids most likely begin.

    ``keys`` is the first page (truncated, in key order) of a listing under
    ``prefix``. Below the stem its second half shares (hex digits not counted),
    nine keys in ten must go on with ``ID_DIGITS`` lowercase hex digits, as
    Directus' UUID file names do (a few others, such as s3_mirror's trash
    manifest, may sort among them); else there is no guess. The first guess is
    the page's last key (the chain's own next link), the others follow every
    ``PAGE_SPACING`` estimated pages up to the end of the hex range, at most
    ``limit`` in all.
    """
    if len(keys) < 2:
        return []
    stem = commonprefix([keys[len(keys) // 2], keys[-1]]).rstrip(HEX_DIGITS)
    if len(stem) < len(prefix):
        stem = prefix
    values = []
    for key in keys:
        digits = key[len(stem):len(stem) + ID_DIGITS] if key.startswith(stem) else ""
        values.append(int(digits, 16) if len(digits) == ID_DIGITS and not digits.strip(HEX_DIGITS) else None)
    last = values[-1]  # the guesses start after the last key: it must be an id
    values = [value for value in values if value is not None]
    if last is None or len(values) < 0.9 * len(keys) or last <= values[0]:
        return []
    step = max(1, int(PAGE_SPACING * page_size * (last - values[0]) / (len(values) - 1)))
    guesses = [keys[-1]]
    value = last + step
    while value < 16 ** ID_DIGITS and len(guesses) < limit:
        guesses.append("%s%0*x" % (stem, ID_DIGITS, value))
        value += step
    return guesses


_DONE = object()


def prefetched(iterable, depth=2):
    """Iterate ``iterable`` in a thread started now, ``depth`` items ahead.

    The listing starts at once and loads while the merge consumes it; at most
    ``depth`` pages wait in memory.
    """
    queue = Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for item in iterable:
                while not stop.is_set():
                    try:
                        queue.put((True, item), timeout=0.2)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((True, _DONE))
        except BaseException as exc:  # pylint: disable=broad-except
            queue.put((False, exc))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()

    def consume():
        try:
            while True:
                ok, item = queue.get()
                if not ok:
                    raise item
                if item is _DONE:
                    return
                yield item
        finally:
            stop.set()

    return consume()


class _Answer:
    """One ListObjectsV2(StartAfter=after) request, sent in a thread of its own."""

    __slots__ = ("after", "done", "contents", "keys", "truncated", "error")

    def __init__(self, after):
        self.after = after
        self.done = threading.Event()
        self.contents = []
        self.keys = []
        self.truncated = False
        self.error = None

    def reaches_beyond(self, key):
        """Whether this answer, in, holds keys after ``key`` or knows there are none."""
        return self.done.is_set() and self.error is None and (not self.truncated or (self.keys and self.keys[-1] > key))


class ReadAheadListing:
    """A bucket's pages in key order, read ahead at guessed page starts.

    ``pages()`` is consumed by one thread (the plan's merge). ``follow()``, for
    the target, wraps the source's pages and is iterated by another (the
    source's prefetch). At most ``depth`` answers are requested and not yet
    used; the first request goes out when the object is created, and reading
    ahead starts only once that first answer showed more than one page.
    """

    def __init__(self, client, side, bucket, prefix, depth, source_prefix=None, page_size=PAGE_SIZE):
        self._client = client
        self._side = side
        self._page_size = page_size
        self._bucket = bucket
        self._prefix = prefix
        self._source_prefix = source_prefix
        self._depth = max(1, depth)
        self._margin = page_size // 20  # keys before a source page end where its read-ahead starts
        self._lock = threading.Lock()
        self._answers = {}  # StartAfter -> _Answer, requested and not used up
        self._asked = set()  # every StartAfter requested: none is read ahead twice
        self._ends = deque()  # guessed page starts, in key order, not requested yet
        self._guessed = False  # the first page gave id guesses: the source's page ends are not needed
        self._position = None  # the last key pages() has given out
        self._used_from = None  # the StartAfter of the answer pages() used last
        self._read_ahead = False
        self._finished = False
        with self._lock:
            self._request(None)

    @property
    def requests(self):
        """ListObjectsV2 requests sent so far."""
        return len(self._asked)

    # ------------------------------------------------------------ source side

    def follow(self, source_pages):
        """Yield the source's pages, noting where each truncated one ends (a margin before its last key)."""
        for page in source_pages:
            contents = page.get("Contents")
            if page.get("IsTruncated") and contents:
                try:
                    end = remap_key(contents[max(0, len(contents) - 1 - self._margin)]["Key"], self._source_prefix,
                                    self._prefix)
                except ValueError:
                    end = None  # a key outside the source prefix: the plan refuses the page, nothing to read ahead
                with self._lock:
                    if end is not None and not self._finished and not self._guessed:
                        self._ends.append(end)
                        self._top_up()
            yield page

    # ------------------------------------------------------------ requests (lock held)

    def _request(self, after):
        answer = _Answer(after)
        self._answers[after] = answer
        self._asked.add(after)
        threading.Thread(target=self._fetch, args=(answer,), daemon=True).start()
        return answer

    def _worth_reading_ahead(self, after):
        return ((self._position is None or after > self._position) and after not in self._asked
                and self._answer_reaching_past(after) is None)

    def _top_up(self):
        if not self._read_ahead or self._finished:
            return
        while self._ends and len(self._answers) < self._depth:
            after = self._ends.popleft()
            if self._worth_reading_ahead(after):
                self._request(after)

    def _pending_within(self, start, key):
        """An answer not in yet that starts after ``start`` and before ``key`` (None: there is none)."""
        return next((a for a in self._answers.values() if not a.done.is_set() and a.after is not None
                     and (start is None or a.after > start) and a.after < key), None)

    def _answer_reaching_past(self, key):
        """An answer in that starts before ``key`` and reaches past it: the chain goes on from there."""
        return next((a for a in self._answers.values() if (a.after is None or a.after < key) and a.reaches_beyond(key)),
                    None)

    def _fetch(self, answer):
        kwargs = {"Bucket": self._bucket, "MaxKeys": self._page_size}
        if self._prefix:
            kwargs["Prefix"] = self._prefix
        if answer.after is not None:
            kwargs["StartAfter"] = answer.after
        try:
            page = self._client.list_objects_v2(**kwargs)
            answer.contents = page.get("Contents") or []
            answer.keys = [obj["Key"] for obj in answer.contents]
            answer.truncated = bool(page.get("IsTruncated"))
        except Exception as exc:  # pylint: disable=broad-except
            answer.error = exc  # raised by pages(), if this answer is ever needed
        with self._lock:
            if answer.error is None and answer.truncated and not self._finished:
                if answer.after is None:
                    self._read_ahead = True
                    guesses = id_guesses(answer.keys, self._prefix, self._page_size)
                    if guesses:
                        self._guessed = True
                        self._ends = deque(guesses)
                self._top_up()
                # the chain's own next link, unless it is asked for already or an answer on its way will most likely
                # serve it (it starts between this answer's start and its last key)
                link = answer.keys[-1] if answer.keys else None
                if link is not None and len(self._answers) < self._depth and self._worth_reading_ahead(link) \
                        and self._pending_within(answer.after, link) is None:
                    self._request(link)
        answer.done.set()

    # ------------------------------------------------------------ consumer side

    def _next_answer(self):
        """The answer to read next, and whether it is one: else an answer to wait for before looking again."""
        with self._lock:
            position = self._position
            answer = self._answers.get(position)
            if answer is None and position is not None:
                answer = self._answer_reaching_past(position)
                pending = None if answer else self._pending_within(self._used_from, position)
                if pending is not None:
                    # a read-ahead that starts within the page just used is on its way and most likely reaches past
                    # the position: wait for it rather than send the same request again
                    return pending, False
            return answer or self._request(position), True

    def _used(self, answer, last_key):
        with self._lock:
            self._answers.pop(answer.after, None)
            self._used_from = answer.after
            if last_key is not None:
                self._position = last_key
            if not answer.truncated:
                self._finished = True
                self._answers.clear()
                self._ends.clear()
                return
            position = self._position
            for after, other in list(self._answers.items()):
                if other.done.is_set() and after is not None and after < position and not other.reaches_beyond(position):
                    del self._answers[after]
            self._top_up()

    def pages(self):
        """The bucket's ListObjectsV2 pages (``Contents``, ``IsTruncated``), each key once, in key order."""
        while True:
            answer, usable = self._next_answer()
            answer.done.wait()
            if not usable:
                continue
            if answer.error is not None:
                if isinstance(answer.error, (BotoCoreError, ClientError)):
                    raise ListingError(self._side, self._bucket, answer.error)
                raise answer.error
            keys = answer.keys
            # the server's order decides which keys an answer skips: it must be the order the plan assumes
            disorder = next((i for i in range(len(keys) - 1) if keys[i] >= keys[i + 1]), None)
            if disorder is not None:
                raise PlanError("the %s listing is not in UTF-8 binary key order (%r after %r); refusing to plan on it"
                                % (self._side, keys[disorder + 1], keys[disorder]))
            start = 0 if answer.after == self._position else bisect_right(keys, self._position)
            if start == len(keys) and answer.truncated:
                raise ListingError(self._side, self._bucket, RuntimeError(
                    "the server answered a truncated page without keys after %r" % (self._position,)))
            self._used(answer, keys[-1] if start < len(keys) else None)
            if start < len(keys):
                yield {"Contents": answer.contents[start:], "IsTruncated": answer.truncated}
            if not answer.truncated:
                return
