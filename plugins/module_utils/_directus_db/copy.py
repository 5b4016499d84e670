# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Copy: the shadow schema filled from the source snapshot (or recycled from a backup), verified, transformed."""

from __future__ import annotations

import queue
import threading
import time
import zlib

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog, ddl, recycle
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.plan import FILES_TABLE
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.rows import (
    fetch_raw,
    key_text,
    merge_remaps,
    remapped,
    row_digest,
)
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import (
    Failure,
    fetch,
    stream_rows,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.faults import fault_point
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    LOAD_SQL_MODE,
    RowTooLong,
    case_map_sql,
    friendly_error,
    insert_batches,
    literal_kind,
    qualified,
    quote_ident,
    row_encoder,
    row_literal_check,
    server_row_sql,
)

try:
    import pymysql
except ImportError:  # pragma: no cover
    pymysql = None

INLINE_MAP_LIMIT = 500
COPY_WRITERS = 2
COPY_QUEUE = 16
RESTART = object()


def plain_columns(plan, name, side="source"):
    cols = plan.src_cols if side == "source" else plan.tgt_cols
    return [c for c in cols[name] if not c[2]]


def checked_encoder(table, kinds, total=None):
    """Server-built row literals, each checked against the literal grammar of its columns before the
    target sees it (a source server could send any SQL); their CRC32 summed into ``total[0]`` when given."""
    check = row_literal_check(tuple(kinds))

    def encode(row):
        value = row[0]
        if value is None:
            raise RowTooLong()
        if check(value) is None:
            raise Failure("source: a row of %s is not a plain row of values (%r...); refusing to send it to the "
                          "target; the live tables were not changed" % (table, bytes(value[:60])))
        if total is not None:
            total[0] += zlib.crc32(value)
        return value
    return encode


class ShadowCopy:
    """The shadow schema of one promotion and what filling it produced."""

    def __init__(self, run, plan, shadow, journal):
        self.run = run
        self.plan = plan
        self.shadow = shadow
        self.journal = journal
        self.copied = {}          # table -> rows read from the source
        self.crc = {}             # table -> summed CRC32 of the source's row literals
        self.recycled = {}        # table -> source digest lines inserted into a recycled table
        self.recycled_report = []
        self.inline = {}          # table -> {column: CASE mapping user ids, evaluated by the source}
        self.new_state = {}       # table_state rows this promotion records
        self.merged = []          # per-user rows of merged tables, what was merged (the catch-up after the swap needs it)
        self.kept_files = {}      # table -> production rows added after verification
        self.donor = None
        self.loader = None
        self.batch = None
        self._digest_conn = None
        self._source_keys = {}
        self._source_fks = None

    # ------------------------------------------------------------------ connections
    def open_loader(self):
        loader = self.run.open("target", database=False)
        for sql in ("SET SESSION foreign_key_checks = 0", "SET SESSION unique_checks = 0",
                    "SET SESSION sql_mode = '%s'" % LOAD_SQL_MODE, "SET SESSION time_zone = '+00:00'"):
            self.run.sql(loader, sql, record=False)
        self.run.sql(loader, "USE %s" % quote_ident(self.shadow), record=False)
        return loader

    def digest_conn(self):
        """The target connection that reads digests (one per run; every use closes its cursor)."""
        if self._digest_conn is None:
            self._digest_conn = self.run.open("target", raw=True, streaming=True)
            # TIMESTAMP values read as text depend on the session time zone: the snapshot's is UTC
            self.run.sql(self._digest_conn, "SET SESSION time_zone = '+00:00'", record=False)
        return self._digest_conn

    def source_fks(self, name):
        """The source table's foreign keys, from information_schema."""
        if self._source_fks is None:
            self._source_fks = {}
            for fk in catalog.foreign_keys(self.run.source, [self.run.src_db]):
                self._source_fks.setdefault(fk["table"], []).append(fk)
        return self._source_fks.get(name, [])

    def source_key(self, name):
        """The source table's primary key columns, or None when it has none usable for recycling."""
        if name not in self._source_keys:
            key = catalog.primary_key(self.run.source, self.run.src_db, name)
            plain = {c[0] for c in plain_columns(self.plan, name)}
            mapped = set(self.inline.get(name, {}))
            self._source_keys[name] = key if key and all(k in plain and k not in mapped for k in key) else None
        return self._source_keys[name]

    # ------------------------------------------------------------------ the whole phase
    def build(self):
        run, plan = self.run, self.plan
        run.create_schema_like_live(self.shadow)
        self.loader = loader = self.open_loader()
        local = set(plan.swap_in)
        max_packet = int(fetch(run.target, "SELECT @@max_allowed_packet")[0][0])
        self.batch = max(64 * 1024, min(int(run.params["batch_bytes"]), max_packet // 2))
        # user references are mapped while reading (CASE on the source) when the map is small
        if plan.user_map and len(plan.user_map) <= INLINE_MAP_LIMIT:
            for table, column in plan.user_cols:
                if table in local:
                    self.inline.setdefault(table, {})[column] = case_map_sql(column, plan.user_map, run.source.escape)
        with run.timed("recycle"):
            recycle.recycle_tables(self)
        for name in sorted(plan.swap_in):
            if name not in self.recycled:
                # FKs to tables that are not swapped in (kept users, unchanged tables) point at live from the start
                run.sql(loader, ddl.shadow_create(plan.src_create[name], self.source_fks(name), run.src_db, run.db, local))
        # smallest first: when the reader reaches the biggest table, the second biggest is still being
        # inserted by the other writer from its queue, so the two largest loads overlap
        order = sorted((n for n in plan.swap_in if n not in self.recycled), key=lambda n: (plan.src_bytes.get(n, 0), n))
        fault_point("copy")
        self.copy_tables(order)
        self.run.progress.finish()
        scans = self.verify()
        self.transform()
        self.keep_target_files()
        for name in sorted(plan.swap_in):
            if plan.actions[name] == "merge" and name in plan.tgt_tables:
                self.merge_target_rows(name)
        self.record_state(scans)

    # ------------------------------------------------------------------ copying
    def copy_tables(self, names):
        """Stream tables from the one snapshot connection into the shadow schema.

        The source is read table after table (one consistent snapshot); each table is written by
        one of COPY_WRITERS target connections, so a big table's inserts overlap with reading and
        inserting the next ones. The last (biggest) table is also written by the other connection
        as soon as it is free: the target's inserts, not the reading, are what take the time.
        Row literals are built by the source server and checked here; a table whose rows are too
        long for that is re-read with client-side literals.
        """
        # rows: InnoDB's estimates, replaced by each table's real count once it is read
        self._rows_total = sum(self.plan.src_est.get(n, 0) for n in names)
        self.run.progress.start("copying tables into the shadow schema", self._rows_total, "rows")
        pool = queue.Queue()
        for _i in range(COPY_WRITERS):
            pool.put(self.open_loader())
        errors = []
        threads = []
        try:
            for index, name in enumerate(names):
                conn = pool.get()
                if errors:
                    pool.put(conn)
                    break
                work = queue.Queue(maxsize=COPY_QUEUE)
                thread = threading.Thread(target=self._writer, args=(conn, work, name, pool, errors), daemon=True)
                thread.start()
                threads.append(thread)
                if index == len(names) - 1 and index > 0:
                    helper = threading.Thread(target=self._second_writer, args=(work, name, pool, errors), daemon=True)
                    helper.start()
                    threads.append(helper)
                try:
                    self.run.progress.update(detail="reading table %d of %d: %s" % (index + 1, len(names), name))
                    self._read_table(name, work, errors)
                    self._rows_total += self.copied[name] - self.plan.src_est.get(name, 0)
                    self.run.progress.update(total=max(self._rows_total, 1))
                except BaseException as exc:
                    errors.append((name, exc))  # the writers skip what is still queued
                    raise
                finally:
                    work.put(None)
        finally:
            for thread in threads:
                thread.join()
        if errors:
            name, exc = errors[0]
            if isinstance(exc, Failure):
                raise exc
            raise Failure("%s while loading %s into the shadow schema" % (
                friendly_error("target", self.run.params["target"], exc), name))

    def _second_writer(self, work, name, pool, errors):
        """Share ``work`` with its first writer once another connection is free (both commit per statement)."""
        self._writer(pool.get(), work, name, pool, errors)

    def _writer(self, conn, work, name, pool, errors):
        started = time.monotonic()
        statements = 0
        failed = False
        try:
            # autocommit per statement: measured 2-3x faster than one transaction per table on
            # MariaDB 10.11 (its bulk-insert path for empty tables is slow with large rows)
            with conn.cursor() as cur:
                while True:
                    item = work.get()
                    if item is None:
                        work.task_done()
                        work.put(None)  # for the other writer of this table, if any
                        break
                    try:
                        if failed or errors:
                            continue
                        if item is RESTART:
                            cur.execute("TRUNCATE TABLE %s" % qualified(self.shadow, name))
                            continue
                        cur.execute(item[0])
                        statements += 1
                        self.run.progress.advance(item[1])  # rows inserted, as they are
                    except Exception as exc:  # noqa: BLE001 - handed to the reading thread
                        errors.append((name, exc))
                        failed = True
                    finally:
                        work.task_done()  # the reader joins the queue before a RESTART
                if not failed and statements:
                    self.run.commands.append("INSERT INTO %s: %d statements in %.2f s" % (
                        qualified(self.shadow, name), statements, time.monotonic() - started))
        except Exception as exc:  # noqa: BLE001
            errors.append((name, exc))
        finally:
            pool.put(conn)

    def _read_table(self, name, work, errors):
        run, plan = self.run, self.plan
        cols = plain_columns(plan, name)
        kinds = [literal_kind(c[1]) for c in cols]
        col_sql = ", ".join(quote_ident(c[0]) for c in cols)
        prefix = ("INSERT INTO %s (%s) VALUES " % (qualified(self.shadow, name), col_sql)).encode("utf-8")
        where = ""
        if plan.actions[name] == "merge":
            where = " WHERE %s IS NULL" % quote_ident(rules.merge_column(name, plan.merge_spec))
        exprs = self.inline.get(name)
        for server_side in (True, False):
            if server_side:
                select = server_row_sql([c[0] for c in cols], kinds, exprs)
                crc = [0] if exprs else None
                encoder = checked_encoder(name, kinds, crc)
            else:
                select = col_sql
                encoder = row_encoder(kinds)
                if exprs:
                    raise Failure("a row of %s is too long for the source server to build (max_allowed_packet) and user "
                                  "references are mapped while reading; raise the source's max_allowed_packet" % name)
            total = 0
            cur = run.source.cursor()
            try:
                cur.execute("SELECT %s FROM %s%s" % (select, qualified(run.src_db, name), where))
                for stmt, count in insert_batches(stream_rows(cur), prefix, encoder, self.batch):
                    if errors:
                        break
                    work.put((stmt, count))
                    total += count
                cur.close()
            except pymysql.err.MySQLError as exc:
                raise Failure("%s while copying %s" % (friendly_error("source", run.params["source"], exc), name)) from None
            except RowTooLong:
                cur.close()  # drains the unbuffered result so the snapshot connection stays usable
                # two writers may share this table: every INSERT queued so far ends before it is emptied,
                # and it is empty before the first re-read row is queued
                work.join()
                work.put(RESTART)
                work.join()
                run.progress.advance(-total)
                run.commands.append("%s: rows too long for server-side literals, copied with client-side ones" % name)
                continue
            self.copied[name] = total
            if crc is not None and server_side:
                self.crc[name] = crc[0]
            return

    # ------------------------------------------------------------------ verification
    def verify(self):
        """Every replaced table against the source snapshot, before any further transformation."""
        run, plan = self.run, self.plan
        with run.timed("verify"):
            replaced = [n for n in plan.swap_in if plan.actions[n] == "replace"]
            plain = [n for n in replaced if n not in self.inline]
            # user references mapped while reading are final: transform() leaves those tables as loaded
            settled = [n for n in plan.transformed if n in self.inline]
            scans = self.verification_scans(replaced, plain, settled)
            shadow_ck = {n: scans[("checksum", n)] for n in plain if ("checksum", n) in scans}
            for name in sorted(replaced):
                if ("crc", name) in scans:
                    got, crc = scans[("crc", name)]
                    if int(got) != self.copied[name] or int(crc) != self.crc[name]:
                        raise Failure("verification failed for %s: %s rows / CRC %s in the shadow copy, %d rows / CRC %d "
                                      "read from the source snapshot" % (name, got, crc, self.copied[name], self.crc[name]))
                    continue
                got = scans[("count", name)]
                if got != self.copied[name]:
                    raise Failure("verification failed for %s: %d rows read from the source, %d in the shadow copy"
                                  % (name, self.copied[name], got))
                if plan.comparable and name in plain and shadow_ck.get(name) != plan.src_ck.get(name) \
                        and name in plan.src_reused:
                    # the recorded checksum stood in for the source's: compute the real one before judging the copy
                    real = catalog.checksums(run.source, run.src_db, [name]).get(name)
                    run.add("checksums", "warning", "%s: the checksum recorded by the last promotion (%s) no longer "
                            "matched the source (%s) although its statistics said unchanged" % (name, plan.src_ck.get(name), real))
                    plan.src_ck[name] = real
                    del plan.src_reused[name]
                if plan.comparable and name in plain and shadow_ck.get(name) != plan.src_ck.get(name):
                    raise Failure("verification failed for %s: checksum %s in the shadow copy, %s in the source snapshot"
                                  % (name, shadow_ck.get(name), plan.src_ck.get(name)))
            recycle.verify_inserted(self)
            for name in sorted(plan.swap_in):
                if plan.actions[name] == "merge":
                    split = rules.merge_column(name, plan.merge_spec)
                    got = catalog.count(run.target, self.shadow, name, "WHERE %s IS NULL" % quote_ident(split))
                    if got != self.copied[name]:
                        raise Failure("verification failed for %s: %d promoted rows read from the source, %d in the shadow "
                                      "copy" % (name, self.copied[name], got))
        return scans

    def verification_scans(self, replaced, plain, settled):
        """Read back every replaced shadow table: {(kind, table): result}, kind in count, crc, checksum.

        ``crc`` (rows, summed CRC32 of the row literals) for tables whose user ids were mapped while
        reading, to compare with what the source sent; ``count`` for the others, with ``checksum``
        (CHECKSUM TABLE) where the source's can be compared; ``checksum`` also for ``settled`` tables,
        whose checksum the next run's reuse needs. Each is a full scan, so they run on COPY_WRITERS
        connections at once, biggest table first. The row literals hold TIMESTAMP values as text, so
        these sessions use the UTC of the snapshot, whatever the target server's own time zone.
        """
        plan = self.plan
        scans = {}
        for name in replaced:
            table = qualified(self.shadow, name)
            if name in self.crc and plan.comparable:
                cols = plain_columns(plan, name)
                row_sql = server_row_sql([c[0] for c in cols], [literal_kind(c[1]) for c in cols])
                scans[("crc", name)] = "SELECT COUNT(*), COALESCE(SUM(CRC32(%s)), 0) FROM %s" % (row_sql, table)
            else:
                scans[("count", name)] = "SELECT COUNT(*) FROM %s" % table
            if (name in plain and plan.comparable) or name in settled:
                scans[("checksum", name)] = "CHECKSUM TABLE %s" % table
        work = queue.Queue()
        for key in sorted(scans, key=lambda k: (-plan.src_bytes.get(k[1], 0), k)):
            work.put(key)
        self.run.progress.start("verifying the shadow tables", len(scans), "scans",
                                sum(plan.src_bytes.get(key[1], 0) for key in scans) or None)
        results, errors = {}, []

        def scan():
            try:
                conn = self.run.utc("target")
                while not errors:
                    try:
                        key = work.get_nowait()
                    except queue.Empty:
                        return
                    row = fetch(conn, scans[key])[0]
                    if key[0] == "count":
                        results[key] = int(row[0])
                    elif key[0] == "crc":
                        results[key] = (int(row[0]), int(row[1]))
                    else:
                        results[key] = None if row[1] is None else str(row[1])
                    self.run.progress.advance(1, plan.src_bytes.get(key[1], 0))
            except Exception as exc:  # noqa: BLE001 - re-raised below
                errors.append(exc)

        threads = [threading.Thread(target=scan, daemon=True) for _i in range(min(COPY_WRITERS, len(scans)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.run.progress.finish()
        if errors:
            raise errors[0]
        return results

    # ------------------------------------------------------------------ transforming
    def transform(self):
        """User references -> target users; kept parts of merged tables -> promoted role/policy ids."""
        run, plan = self.run, self.plan
        loader = self.loader
        targets = [(t, c) for t, c in plan.user_cols if t in plan.swap_in and c not in self.inline.get(t, {})]
        if plan.user_map and targets:
            id_type = fetch(run.target, "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND "
                            "TABLE_NAME=%s AND COLUMN_NAME='id'", (run.db, rules.USERS_TABLE))
            id_type = ddl.column_type_sql(id_type[0][0] if id_type else "varchar(255)")
            umap = qualified(self.shadow, "__user_map")
            run.sql(loader, "CREATE TABLE %s (src %s NOT NULL PRIMARY KEY, dst %s NULL)" % (umap, id_type, id_type))
            items = sorted(plan.user_map.items(), key=lambda kv: str(kv[0]))
            for i in range(0, len(items), 1000):
                chunk = items[i:i + 1000]
                run.sql(loader, "INSERT INTO %s (src, dst) VALUES %s" % (
                    umap, ", ".join(["(%s, %s)"] * len(chunk))), tuple(v for kv in chunk for v in kv), record=False)
            for table, column in targets:
                run.sql(loader, "UPDATE %s t JOIN %s m ON t.%s = m.src SET t.%s = m.dst" % (
                    qualified(self.shadow, table), umap, quote_ident(column), quote_ident(column)))
            run.sql(loader, "DROP TABLE %s" % umap)

    def record_state(self, scans):
        """The table_state rows of this promotion (checksums of what goes live)."""
        run, plan = self.run, self.plan
        replaced = [n for n in plan.swap_in if plan.actions[n] == "replace"]
        transformed = plan.transformed
        plain = [n for n in replaced if n not in self.inline]
        shadow_ck = {n: scans[("checksum", n)] for n in plain if ("checksum", n) in scans}
        after_ck = {n: scans[("checksum", n)] for n in transformed
                    if ("checksum", n) in scans and n in self.inline and n not in self.kept_files}
        rewritten = [n for n in transformed if n not in after_ck]
        after_ck.update(catalog.checksums(run.target, self.shadow, rewritten) if rewritten else {})
        for name in replaced:
            self.new_state[name] = {"source_checksum": plan.src_ck.get(name),
                                    "target_checksum": after_ck.get(name, shadow_ck.get(name)),
                                    "fingerprint": plan.transform_fp(name) if name in transformed else None}

    def keep_target_files(self):
        """Production's directus_files rows that kept rows reference and the source lacks (compare.plan_kept_files)
        go into the shadow copy as production has them, read with their literals built here; a reference of theirs
        to a promoted row that does not exist (a folder only production has) is set to NULL."""
        run, plan = self.run, self.plan
        name = FILES_TABLE
        if not plan.kept_files or name not in plan.swap_in:
            return
        tgt = {c[0]: c for c in plain_columns(plan, name, "target")}
        cols = [c for c in plain_columns(plan, name) if c[0] in tgt]
        col_names = [c[0] for c in cols]
        encode = row_encoder([literal_kind(c[1]) for c in cols])
        ids = list(plan.kept_files)
        rows = []
        for i in range(0, len(ids), 1000):
            chunk = ids[i:i + 1000]
            rows += fetch_raw(self.digest_conn_plain(), "SELECT %s FROM %s WHERE id IN (%s)" % (
                ", ".join(quote_ident(c) for c in col_names), qualified(run.db, name), ", ".join(["%s"] * len(chunk))),
                tuple(chunk))
        table = qualified(self.shadow, name)
        self.insert_rows(table, col_names, [encode(r) for r in rows])
        for fk in self.source_fks(name):
            if len(fk["columns"]) == 1 and fk["ref_table"] in plan.swap_in and fk["columns"][0] in col_names:
                column, parent = quote_ident(fk["columns"][0]), qualified(self.shadow, fk["ref_table"])
                run.sql(self.loader, "UPDATE %s SET %s = NULL WHERE id IN (%s) AND %s IS NOT NULL AND %s NOT IN "
                        "(SELECT %s FROM %s)" % (table, column, ", ".join(["%s"] * len(ids)), column, column,
                                                 quote_ident(fk["ref_columns"][0]), parent), tuple(ids))
        self.kept_files[name] = len(rows)
        run.commands.append("%s: %d production file row(s) kept (referenced by kept rows)" % (table, len(rows)))

    # ------------------------------------------------------------------ merged tables
    def merge_target_rows(self, name):
        """Add production's per-user rows to the shadow copy of a merged table, as read in one snapshot, with
        literals built here; a row whose auto-increment key collides with a promoted row gets a new key.

        What was merged is recorded (each row's digest by key) so that, right after the swap, the rows
        production changed in the meantime are caught up from the backup (cutover.catch_up_merged)."""
        run, plan = self.run, self.plan
        split = rules.merge_column(name, plan.merge_spec)
        tgt = {c[0]: c for c in plain_columns(plan, name, "target")}
        cols = [c for c in plain_columns(plan, name) if c[0] in tgt]
        col_names = [c[0] for c in cols]
        kinds = [literal_kind(c[1]) for c in cols]
        encode = row_encoder(kinds)
        pk = catalog.primary_key(run.target, run.db, name)
        auto = bool(pk) and len(pk) == 1 and any("auto_increment" in (r[0] or "") for r in fetch(
            run.target, "SELECT EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME=%s "
            "AND COLUMN_NAME=%s", (run.db, name, pk[0])))
        remap = merge_remaps(plan, name, col_names)
        reader = self.digest_conn_plain()
        rows = fetch_raw(reader, "SELECT %s FROM %s WHERE %s IS NOT NULL" % (
            ", ".join(quote_ident(c) for c in col_names), qualified(run.db, name), quote_ident(split)))
        shadow_table = qualified(self.shadow, name)
        record = {"table": name, "split": split, "pk": pk[0] if len(pk) == 1 else None, "columns": col_names,
                  "kinds": kinds, "auto": auto, "remap": dict(remap), "snapshot": {}, "rekeyed": {}}
        if len(pk) != 1 or pk[0] not in col_names:
            run.add("merge", "warning", "%s has no single-column primary key: its per-user rows are merged as read and "
                    "rows production writes during the promotion are not caught up" % name)
            self.insert_rows(shadow_table, col_names, [encode(remapped(r, col_names, remap)) for r in rows], ignore=True)
            return
        at = col_names.index(pk[0])
        promoted = {bytes(r[0]) for r in fetch_raw(reader, "SELECT %s FROM %s WHERE %s IS NULL" % (
            quote_ident(pk[0]), shadow_table, quote_ident(split)))}
        plain_rows, clashing = [], []
        for row in rows:
            # the digest of the row as production holds it: the catch-up compares the backup's rows with it
            record["snapshot"][key_text(row[at])] = row_digest(encode(row))
            (clashing if bytes(row[at]) in promoted else plain_rows).append(remapped(row, col_names, remap))
        self.insert_rows(shadow_table, col_names, [encode(r) for r in plain_rows])
        if clashing and auto:
            others = [c for c in col_names if c != pk[0]]
            encode_others = row_encoder([k for c, k in zip(col_names, kinds) if c != pk[0]])
            for row in sorted(clashing, key=lambda r: r[at]):
                self.insert_rows(shadow_table, others, [encode_others([v for i, v in enumerate(row) if i != at])])
                record["rekeyed"][key_text(row[at])] = str(fetch(self.loader, "SELECT LAST_INSERT_ID()")[0][0])
            run.add("merge", "changed", "%s: %d kept row(s) got a new %s (it collided with a promoted row)"
                    % (name, len(clashing), pk[0]))
        elif clashing:
            run.add("merge", "warning", "%s: %d kept row(s) share their key with a promoted row and were not kept"
                    % (name, len(clashing)))
        self.merged.append(record)

    def digest_conn_plain(self):
        """A raw (bytes), buffered target connection in UTC for reading production's rows."""
        if getattr(self, "_plain_raw", None) is None:
            self._plain_raw = self.run.open("target", raw=True)
            self.run.sql(self._plain_raw, "SET SESSION time_zone = '+00:00'", record=False)
        return self._plain_raw

    def insert_rows(self, table, columns, literals, ignore=False):
        names = ", ".join(quote_ident(c) for c in columns)
        prefix = ("INSERT %sINTO %s (%s) VALUES " % ("IGNORE " if ignore else "", table, names)).encode("utf-8")
        for stmt, _count in insert_batches(literals, prefix, lambda lit: lit, self.batch or 1024 * 1024):
            self.run.sql(self.loader, stmt, record=False)
