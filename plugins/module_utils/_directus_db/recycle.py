# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Recycling: a replaced table's shadow copy built from the backup this promotion prunes anyway
(directus_db.recycle_donor), rewriting only the rows whose digest differs from the source snapshot."""

from __future__ import annotations

import time

from ansible_collections.casper.directus_promote.plugins.module_utils import directus_db as rules
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import catalog, ddl, locks
from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db.run import (
    FETCH_CHUNK,
    Failure,
    fetch,
    tagged,
)
from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import (
    insert_batches,
    literal_kind,
    qualified,
    quote_ident,
    row_digest_sql,
    row_encoder,
    row_literal_check,
    server_row_sql,
)

# rows compared before a table is read whole for recycling
RECYCLE_SAMPLE = 2000


def recycle_tables(copy):
    """Take replaced tables from the backup this promotion prunes anyway.

    A table qualifies when it has the source's shape and primary key and differs from the source
    snapshot in at most rules.RECYCLE_MAX_SHARE of its rows: it moves into the shadow schema, gets
    the source's foreign keys, and only the differing rows are deleted and re-inserted.
    """
    run, plan, shadow = copy.run, copy.plan, copy.shadow
    if not run.params["recycle_backups"] or not plan.comparable:
        return
    donor = rules.recycle_donor(run.schemas(), run.db, int(run.params["keep_backups"]))
    if donor is None:
        return
    tgt = run.target
    donor_tables = set(catalog.base_tables(tgt, donor)[0])
    # a FK from another schema would follow its parent into production: such parents stay put
    pinned = {r[0] for r in fetch(tgt, "SELECT DISTINCT REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
                                  "WHERE REFERENCED_TABLE_SCHEMA = %s AND TABLE_SCHEMA <> %s", (donor, donor))}
    user_tables = {t for t, _c in plan.user_cols}
    # rows rewritten after loading would not compare with the source's
    remapped = {t for t, _c in plan.role_cols + plan.policy_cols}
    chosen = {}
    candidates = [n for n in sorted(plan.swap_in) if plan.actions[n] == "replace" and n in donor_tables
                  and plan.src_est.get(n, 0) >= int(run.params["recycle_min_rows"])]
    run.progress.start("comparing rows with the backup %s" % donor, sum(plan.src_est.get(n, 0) for n in candidates), "rows",
                       detail="0/%d tables" % len(candidates))
    for name in sorted(plan.swap_in):
        if name in candidates:
            run.progress.update(done=sum(plan.src_est.get(n, 0) for n in candidates[:candidates.index(name)]),
                                detail="%d/%d tables" % (candidates.index(name), len(candidates)))
        if (plan.actions[name] != "replace" or name not in donor_tables or name in pinned or name in remapped
                or plan.src_est.get(name, 0) < int(run.params["recycle_min_rows"])
                or (name in user_tables and plan.user_map and name not in copy.inline)
                or not copy.source_key(name)
                or not ddl.same_shape(catalog.show_create(tgt, donor, name), plan.src_create[name], foreign_keys=False)):
            continue
        found = compare_rows(copy, donor, name)
        if found is not None:
            chosen[name] = found
    run.progress.finish()
    if not chosen:
        return
    names = sorted(chosen)
    # from here on the donor lacks tables: a failure (or the recovery of a killed run) drops it, as this run
    # would have pruned it anyway
    copy.journal.step("donor", "intent", {"donor": donor, "tables": names})
    copy.donor = donor
    copy.journal.order["donor"] = donor
    copy.journal.save_order()
    drops = [fk for fk in catalog.foreign_keys(tgt, [donor])
             if fk["table"] in chosen or (fk["ref_schema"] == donor and fk["ref_table"] in chosen)]
    for table_fks in group_by_table(drops):
        run.sql(tgt, "ALTER TABLE %s %s" % (qualified(donor, table_fks[0]["table"]), ", ".join(
            "DROP FOREIGN KEY %s" % quote_ident(fk["name"]) for fk in table_fks)))
    run.sql(tgt, "RENAME TABLE " + ", ".join("%s TO %s" % (qualified(donor, n), qualified(shadow, n)) for n in names))
    local = set(plan.swap_in)
    for name in names:
        fill_recycled(copy, donor, name, chosen[name], local)


def group_by_table(fks):
    by_table = {}
    for fk in fks:
        by_table.setdefault((fk["schema"], fk["table"]), []).append(fk)
    return [group for _key, group in sorted(by_table.items())]


def fill_recycled(copy, donor, name, found, local):
    run, plan, shadow, loader = copy.run, copy.plan, copy.shadow, copy.loader
    table = qualified(shadow, name)
    clauses = ddl.shadow_fk_clauses(copy.source_fks(name), run.src_db, run.db, shadow, local)
    if clauses:
        # adding a FK waits for production's write transactions on its live parent
        locks.bounded_ddl(run, loader, "ALTER TABLE %s %s" % (table, ", ".join(clauses)))
    key_sql = "(%s)" % ", ".join(quote_ident(k) for k in copy.source_key(name))
    inserted = [rules.line_key(line) for line in found["insert"]]
    for i in range(0, len(found["delete"]), 1000):
        # the donor's own key literals (target-built)
        run.sql(loader, b"DELETE FROM " + table.encode("utf-8") + b" WHERE " + key_sql.encode("utf-8")
                + b" IN (" + b",".join(found["delete"][i:i + 1000]) + b")", record=False)
    cols = [c for c in plan.src_cols[name] if not c[2]]
    prefix = ("INSERT INTO %s (%s) VALUES " % (table, ", ".join(quote_ident(c[0]) for c in cols))).encode("utf-8")
    # few rows: literals built here, so that no row is too long for the source to build one
    exprs = copy.inline.get(name, {})
    select = ", ".join(exprs.get(c[0]) or quote_ident(c[0]) for c in cols)
    encoder = row_encoder([literal_kind(c[1]) for c in cols])
    for i in range(0, len(inserted), 1000):
        with tagged(run.source), run.source.cursor() as cur:
            cur.execute(("SELECT %s FROM %s WHERE %s IN (" % (select, qualified(run.src_db, name), key_sql)).encode(
                "utf-8") + b",".join(inserted[i:i + 1000]) + b")")
            rows = cur.fetchall()
        for stmt, _count in insert_batches(rows, prefix, encoder, copy.batch):
            run.sql(loader, stmt, record=False)
    counter = ddl.auto_increment(plan.src_create[name])
    if counter:
        run.sql(loader, "ALTER TABLE %s AUTO_INCREMENT = %d" % (table, counter))
    copy.copied[name] = found["rows"]
    copy.recycled[name] = found["insert"]
    run.commands.append("%s: recycled from %s: %d rows deleted, %d inserted (%d rows)" % (
        table, quote_ident(donor), len(found["delete"]), len(found["insert"]), found["rows"]))
    copy.recycled_report.append({"table": name, "from_schema": donor, "rows": found["rows"],
                                 "deleted": len(found["delete"]), "inserted": len(found["insert"])})


def key_kinds(copy, name):
    kinds = {c[0]: literal_kind(c[1]) for c in copy.plan.src_cols[name] if not c[2]}
    return tuple(kinds[k] for k in copy.source_key(name))


def digest_sql(copy, name, source):
    """(row digest SQL, key literal SQL) of a table; on the source with user ids mapped as when copying."""
    cols = [c for c in copy.plan.src_cols[name] if not c[2]]
    kinds = dict((c[0], literal_kind(c[1])) for c in cols)
    key = copy.source_key(name)
    exprs = copy.inline.get(name) if source else None
    return row_digest_sql([c[0] for c in cols], exprs), server_row_sql(key, [kinds[k] for k in key])


def digest_query(copy, schema, name, source, keys=None, limit=None):
    """SELECT of digest lines: the rows with these key literals, or every row (up to ``limit``) in
    primary-key order (InnoDB's own order: no sort)."""
    digest, key_sql = digest_sql(copy, name, source)
    key_cols = ", ".join(quote_ident(k) for k in copy.source_key(name))
    sql = ("SELECT CONCAT(%s, HEX(%s)) FROM %s" % (digest, key_sql, qualified(schema, name))).encode("utf-8")
    if keys is not None:
        return sql + (" WHERE (%s) IN (" % key_cols).encode("utf-8") + b",".join(keys) + b")"
    return sql + (" ORDER BY %s%s" % (key_cols, " LIMIT %d" % limit if limit else "")).encode("utf-8")


def sample_pays(copy, donor, name):
    """Compare the donor's first RECYCLE_SAMPLE rows (key order) with the source's before reading whole tables."""
    run = copy.run
    delta = rules.RowDelta()
    with tagged(copy.digest_conn()), copy.digest_conn().cursor() as cur:
        cur.execute(digest_query(copy, donor, name, False, limit=RECYCLE_SAMPLE))
        lines = [row[0] for row in cur.fetchall()]
    if not lines or None in lines:
        # nothing to sample, or a row too long to digest (compare_rows says so)
        return True
    delta.add_target(lines)
    with tagged(run.source), run.source.cursor() as cur:
        cur.execute(digest_query(copy, run.src_db, name, True, keys=delta.result()[0]))
        delta.add_source(row[0] for row in cur.fetchall() if row[0] is not None)
    delete, insert = delta.result()
    if rules.recycle_pays(delta.target_rows, delta.target_rows, delete, insert):
        return True
    run.commands.append("%s: copied whole (%d of the first %d rows of %s differ from the source)" % (
        name, len(delete), delta.target_rows, donor))
    return False


def compare_rows(copy, donor, name):
    """Row digests of the source snapshot and of the donor's table, paired; None when recycling does not pay.

    Both servers stream their digests in key order at the same time; one thread reads a chunk of
    each in turn, so neither server waits long and only unmatched rows stay in memory.
    """
    run = copy.run
    if not sample_pays(copy, donor, name):
        return None
    started = time.monotonic()
    delta = rules.RowDelta()
    source = run.source.cursor()
    target = copy.digest_conn().cursor()
    try:
        with tagged(run.source):
            source.execute(digest_query(copy, run.src_db, name, True))
        with tagged(copy.digest_conn()):
            target.execute(digest_query(copy, donor, name, False))
        streams = [(source, run.source, delta.add_source), (target, copy.digest_conn(), delta.add_target)]
        while streams:
            for stream in list(streams):
                with tagged(stream[1]):
                    lines = [row[0] for row in stream[0].fetchmany(FETCH_CHUNK)]
                if None in lines:
                    run.commands.append("%s: copied whole (a row is longer than max_allowed_packet to digest)" % name)
                    return None
                if lines:
                    stream[2](lines)
                    if stream[1] is run.source:
                        run.progress.advance(len(lines))
                else:
                    streams.remove(stream)
    finally:
        for cursor in (source, target):
            try:
                cursor.close()
            except Exception:  # noqa: BLE001 - a broken stream must not hide the error that broke it
                pass
        run.timings["recycle_digests"] = round(run.timings.get("recycle_digests", 0) + time.monotonic() - started, 3)
    delete, insert = delta.result()
    if not rules.recycle_pays(delta.source_rows, delta.target_rows, delete, insert):
        run.commands.append("%s: copied whole (%d of %d rows differ from %s)" % (
            name, max(len(delete), len(insert)), delta.source_rows, donor))
        return None
    return {"delete": delete, "insert": insert, "rows": delta.source_rows}


def verify_inserted(copy):
    """The rows inserted into recycled tables, read back: the kept ones matched the source's digests already.
    Their key literals came from the source: each is checked against the key's literal grammar first."""
    for name, inserted in sorted(copy.recycled.items()):
        check = row_literal_check(key_kinds(copy, name))
        for i in range(0, len(inserted), 1000):
            chunk = inserted[i:i + 1000]
            keys = [rules.line_key(line) for line in chunk]
            bad = [k for k in keys if check(k) is None]
            if bad:
                raise Failure("source: a key of %s is not a plain key value (%r...); refusing to send it to the target"
                              % (name, bytes(bad[0][:60])))
            with tagged(copy.digest_conn()), copy.digest_conn().cursor() as cur:
                cur.execute(digest_query(copy, copy.shadow, name, False, keys=keys))
                got = {row[0] for row in cur.fetchall()}
            if got != set(chunk):
                raise Failure("verification failed for %s: rows inserted into the recycled table differ from the "
                              "source snapshot" % name)
