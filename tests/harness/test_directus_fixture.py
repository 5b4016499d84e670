"""The Directus-shaped fixtures, checked against the sandbox's real MariaDB servers and S3 emulator."""

from __future__ import annotations

import datetime
import uuid

import pymysql
import pytest

from sandbox import directus_fixture as fx

SEED = 7
DB = 'fixture_check'

# From directus-facts.md: foreign keys into directus_users.id on a real 11.3.5 (MariaDB reports a
# missing ON DELETE clause as RESTRICT).
FACTS_USER_FKS = {
    'directus_access.user': 'CASCADE', 'directus_notifications.recipient': 'CASCADE',
    'directus_presets.user': 'CASCADE', 'directus_sessions.user': 'CASCADE',
    'directus_comments.user_created': 'SET NULL', 'directus_dashboards.user_created': 'SET NULL',
    'directus_flows.user_created': 'SET NULL', 'directus_operations.user_created': 'SET NULL',
    'directus_panels.user_created': 'SET NULL', 'directus_shares.user_created': 'SET NULL',
    'directus_versions.user_created': 'SET NULL',
    'directus_comments.user_updated': 'RESTRICT', 'directus_files.uploaded_by': 'RESTRICT',
    'directus_files.modified_by': 'RESTRICT', 'directus_notifications.sender': 'RESTRICT',
    'directus_versions.user_updated': 'RESTRICT',
}


@pytest.fixture(scope='module')
def built(sandbox):
    """One staging build on the staging server and one prod build on the prod server."""
    conns = {'staging': sandbox.staging.connect(), 'prod': sandbox.prod.connect()}
    results = {env: fx.build_directus_db(conns[env], DB, env=env, seed=SEED, content_rows=300, files=12)
               for env in fx.ENVS}
    try:
        yield conns, results
    finally:
        for conn in conns.values():
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS `{DB}`')
            conn.close()


def _fk_rules(conn, schema):
    with conn.cursor() as cur:
        cur.execute('SELECT k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, r.DELETE_RULE '
                    'FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r '
                    'ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME '
                    'AND r.TABLE_NAME = k.TABLE_NAME WHERE k.TABLE_SCHEMA = %s', (schema,))
        return {(t, c): (ref, rule) for t, c, ref, rule in cur.fetchall()}


def test_schema_has_all_system_tables_innodb_utf8mb4(built):
    conns, _fixture_info = built
    with conns['prod'].cursor() as cur:
        cur.execute('SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s',
                    (DB,))
        tables = {name: (engine, coll) for name, engine, coll in cur.fetchall()}
    system = {t for t in tables if t.startswith('directus_')}
    assert system == set(fx.SYSTEM_TABLES) and len(system) == 27
    assert set(fx.CONTENT_TABLES) <= set(tables)
    assert {engine for engine, _collation in tables.values()} == {'InnoDB'}
    assert all(coll.startswith('utf8mb4_') for _engine, coll in tables.values())


def test_foreign_keys_and_on_delete_rules_are_real(built):
    conns, _fixture_info = built
    for env, conn in conns.items():
        rules = _fk_rules(conn, DB)
        into_users = {f'{t}.{c}': rule for (t, c), (ref, rule) in rules.items()
                      if ref == 'directus_users' and t.startswith('directus_')}
        assert into_users == FACTS_USER_FKS, env
        assert rules[('directus_users', 'role')] == ('directus_roles', 'SET NULL')
        assert rules[('directus_access', 'role')] == ('directus_roles', 'CASCADE')
        assert rules[('directus_access', 'policy')] == ('directus_policies', 'CASCADE')
        assert rules[('directus_permissions', 'policy')] == ('directus_policies', 'CASCADE')
        assert rules[('directus_revisions', 'activity')] == ('directus_activity', 'CASCADE')
        assert rules[('articles', 'author')] == ('authors', 'SET NULL')  # content -> content
        for table in ('articles', 'authors', 'awkward_values'):
            assert rules[(table, 'user_created')][0] == 'directus_users'
            assert rules[(table, 'user_updated')][0] == 'directus_users'
        assert ('activity', 'user') not in rules and ('directus_activity', 'user') not in rules
        # loaded with foreign_key_checks=0, so prove nothing dangles
        assert fx.fk_violations(conn, DB) == {}, env


def test_on_delete_rules_act(built):
    """Deleting users/roles on prod behaves as Directus' FKs say (inside a rolled-back transaction)."""
    conns, _fixture_info = built
    conn = conns['prod']
    ids = fx.describe(conn, DB)
    reviewer, editor = ids['users']['reviewer@example.test'], ids['users']['editor@example.test']
    conn.begin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'SELECT COUNT(*) FROM `{DB}`.directus_access WHERE user = %s', (reviewer,))
            assert cur.fetchone()[0] == 1
            with pytest.raises(pymysql.err.IntegrityError) as err:  # files.uploaded_by / modified_by RESTRICT
                cur.execute(f'DELETE FROM `{DB}`.directus_users WHERE id = %s', (reviewer,))
            assert err.value.args[0] == 1451
            cur.execute(f'UPDATE `{DB}`.directus_files SET uploaded_by = NULL, modified_by = NULL '
                        'WHERE %s IN (uploaded_by, modified_by)', (reviewer,))
            cur.execute(f'UPDATE `{DB}`.articles SET user_created = NULL WHERE user_created = %s', (reviewer,))
            cur.execute(f'UPDATE `{DB}`.articles SET user_updated = NULL WHERE user_updated = %s', (reviewer,))
            cur.execute(f'UPDATE `{DB}`.authors SET user_created = NULL WHERE user_created = %s', (reviewer,))
            cur.execute(f'DELETE FROM `{DB}`.directus_users WHERE id = %s', (reviewer,))
            cur.execute(f'SELECT COUNT(*) FROM `{DB}`.directus_access WHERE user = %s', (reviewer,))
            assert cur.fetchone()[0] == 0  # CASCADE
            with pytest.raises(pymysql.err.IntegrityError) as err:
                cur.execute(f'DELETE FROM `{DB}`.directus_users WHERE id = %s', (editor,))  # comments.user_updated
            assert err.value.args[0] == 1451
            cur.execute(f'DELETE FROM `{DB}`.directus_roles WHERE id = %s', (ids['admin_role_id'],))
            cur.execute(f'SELECT role FROM `{DB}`.directus_users WHERE id = %s', (ids['admin_user_id'],))
            assert cur.fetchone()[0] is None  # SET NULL: the admin silently loses the role
    finally:
        conn.rollback()
    assert fx.describe(conn, DB)['admin_role_id'] == ids['admin_role_id']


def test_environments_get_separate_bootstrap_ids(built):
    conns, results = built
    st, pr = fx.describe(conns['staging'], DB), fx.describe(conns['prod'], DB)
    for key in ('admin_user_id', 'admin_role_id', 'admin_policy_id'):
        assert st[key] and pr[key] and st[key] != pr[key], key
        uuid.UUID(st[key])
        assert st[key] == results['staging'][key] and pr[key] == results['prod'][key]
    assert st['policies']['$t:public_label'] == pr['policies']['$t:public_label'] == fx.PUBLIC_POLICY_ID
    assert st['roles']['Editor'] == pr['roles']['Editor']  # promoted earlier: same id
    assert st['admin_email'] != pr['admin_email']
    shared = set(st['users']) & set(pr['users'])
    assert 'editor@example.test' in shared and set(st['users']) != set(pr['users'])
    assert all(st['users'][e] != pr['users'][e] for e in shared)
    assert st['migrations'] == pr['migrations'] == len(fx.MIGRATIONS)
    assert st['project_url'] != pr['project_url']
    assert 'Translator' in st['roles'] and 'Translator' not in pr['roles']
    # prod keeps a user-level access row and a user preset for its editor
    assert any(a['user'] == pr['users']['editor@example.test'] for a in pr['access'])
    with conns['prod'].cursor() as cur:
        cur.execute(f'SELECT COUNT(*) FROM `{DB}`.directus_presets WHERE user = %s', (pr['users']['editor@example.test'],))
        assert cur.fetchone()[0] == 1
    # expected_ids is the pure version of the same
    exp = fx.expected_ids('prod', SEED)
    assert exp['admin_user_id'] == pr['admin_user_id'] and exp['roles'] == pr['roles']


def test_awkward_values_round_trip_exactly(built):
    conns, _fixture_info = built
    conn = conns['staging']
    creators = fx.creator_ids('staging', SEED, None)
    count = fx.row_counts(300)['awkward_values']
    expected = fx.awkward_rows(SEED, count, creators)
    with conn.cursor() as cur:
        cur.execute("SET SESSION time_zone = '+00:00'")
        cur.execute('SELECT {} FROM `{}`.awkward_values ORDER BY id'.format(', '.join(fx.AWKWARD_COLUMNS), DB))
        got = cur.fetchall()
    assert len(got) == len(expected)
    for want, have in zip(expected, got):
        assert tuple(have) == tuple(want), want[1]
    by_label = {row[1]: row for row in got}
    assert by_label['all nulls'][2] is None and by_label['empty strings'][2] == ''
    assert by_label['emoji + CJK'][11] == 2 ** 64 - 1 and by_label['zero bytes blob'][11] == 2 ** 63
    assert b'\x00' in by_label['zero bytes blob'][13]
    assert len(by_label['long text'][3].encode()) > 65536 and by_label['long text'][5].microsecond == 999000
    with conn.cursor() as cur:
        cur.execute(f"SELECT ST_AsText(pt), ST_AsText(geom) FROM `{DB}`.awkward_values WHERE label = 'emoji + CJK'")
        pt, geom = cur.fetchone()
        assert geom.startswith('LINESTRING(') and pt.startswith('POINT(')
        cur.execute(f'SELECT MAX(LENGTH(body)), MAX(views), SUM(location IS NOT NULL), SUM(signature LIKE %s) '
                    f'FROM `{DB}`.articles', (b'\x00%',))
        longest, max_views, points, blobs = cur.fetchone()
        assert longest > 65535 and max_views > 2 ** 63 and points > 0 and blobs > 0


def test_checksums_exact_and_sensitive(built):
    conns, _fixture_info = built
    conn = conns['staging']
    before = fx.table_checksums(conn, DB)
    assert set(fx.SYSTEM_TABLES) | set(fx.CONTENT_TABLES) == set(before)
    # a server-side copy of the content tables has identical checksums (name-independent, exact)
    copy = DB + '_copy'
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS `{copy}`')
        cur.execute(f'CREATE DATABASE `{copy}` CHARACTER SET utf8mb4')
        for table in ('awkward_values', 'articles'):
            cur.execute(f'CREATE TABLE `{copy}`.`{table}` LIKE `{DB}`.`{table}`')
            cur.execute(f'INSERT INTO `{copy}`.`{table}` SELECT * FROM `{DB}`.`{table}`')
    try:
        copied = fx.table_checksums(conn, copy)
        assert copied == {t: before[t] for t in ('awkward_values', 'articles')}
        for change in ("UPDATE `{db}`.awkward_values SET blob_value = CONCAT(blob_value, x'00') WHERE label = 'zero bytes blob'",
                       "UPDATE `{db}`.awkward_values SET text_value = NULL WHERE label = 'empty strings'",
                       "UPDATE `{db}`.articles SET published_at = published_at + INTERVAL 1000 MICROSECOND "
                       "WHERE published_at IS NOT NULL ORDER BY id LIMIT 1"):
            with conn.cursor() as cur:
                cur.execute(change.format(db=copy))
                assert cur.rowcount == 1
            after = fx.table_checksums(conn, copy)
            assert after != copied, change
            copied = after
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS `{copy}`')


def test_staging_is_newer_than_prod_and_deterministic(built, sandbox):
    conns, _fixture_info = built
    st, pr = fx.table_checksums(conns['staging'], DB), fx.table_checksums(conns['prod'], DB)
    for table in ('articles', 'articles_tags', 'directus_files', 'directus_users', 'directus_settings', 'directus_roles'):
        assert st[table] != pr[table], table
    assert st['directus_migrations'] != pr['directus_migrations']  # same versions, different timestamps
    with conns['staging'].cursor() as cur:
        cur.execute(f'SELECT version, name FROM `{DB}`.directus_migrations ORDER BY version')
        st_migs = cur.fetchall()
    with conns['prod'].cursor() as cur:
        cur.execute(f'SELECT version, name FROM `{DB}`.directus_migrations ORDER BY version')
        assert cur.fetchall() == st_migs
        cur.execute(f'SELECT id, title FROM `{DB}`.articles')
        prod_articles = dict(cur.fetchall())
    with conns['staging'].cursor() as cur:
        cur.execute(f'SELECT id, title FROM `{DB}`.articles')
        st_articles = dict(cur.fetchall())
    assert set(st_articles) - set(prod_articles), 'staging adds articles'
    assert set(prod_articles) - set(st_articles), 'staging deleted articles'
    assert any(st_articles[i] != prod_articles[i] for i in set(st_articles) & set(prod_articles))
    # same seed + env again on another server: byte-identical
    other = sandbox.prod.connect()
    try:
        fx.build_directus_db(other, DB + '_again', env='staging', seed=SEED, content_rows=300, files=12)
        assert fx.table_checksums(other, DB + '_again') == st
    finally:
        with other.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS `{DB}_again`')
        other.close()


def test_staging_edit_and_custom_user_field(sandbox):
    conn = sandbox.staging.connect()
    db = DB + '_edit'
    try:
        fx.build_directus_db(conn, db, env='staging', seed=3, content_rows=100, files=4,
                             extra_migrations=[('20250224A', 'Visual Editor')])
        before = fx.table_checksums(conn, db)
        edit = fx.staging_edit(conn, db, seed=3)
        assert len(edit['updated']) == 3 and len(edit['added']) == 1 and edit['permissions_updated'] == 1
        fx.add_custom_user_field(conn, db)
        after = fx.table_checksums(conn, db)
        assert {t for t in before if before[t] != after[t]} == {
            'articles', 'directus_permissions', 'directus_users', 'directus_fields'}
        with conn.cursor() as cur:
            cur.execute('SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s '
                        "AND TABLE_NAME = 'directus_users' AND COLUMN_NAME = 'department'", (db,))
            assert cur.fetchone() == ('varchar(255)',)
            cur.execute(f"SELECT COUNT(*) FROM `{db}`.directus_fields WHERE collection = 'directus_users' "
                        "AND field = 'department'")
            assert cur.fetchone()[0] == 1
            cur.execute(f'SELECT title, views FROM `{db}`.articles WHERE id = %s', (edit['added'][0],))
            title, views = cur.fetchone()
            assert '🆕' in title and views == 2 ** 63 + 3
        assert fx.describe(conn, db)['migrations'] == len(fx.MIGRATIONS) + 1
        assert fx.fk_violations(conn, db) == {}
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS `{db}`')
        conn.close()


def test_assets_match_files_and_carry_metadata(built, sandbox):
    conns, _fixture_info = built
    s3 = sandbox.aws.client('s3')
    bucket = 'fixture-check-' + uuid.uuid4().hex[:8]
    s3.create_bucket(Bucket=bucket)
    put = {}
    try:
        for env in fx.ENVS:
            keys = fx.build_assets(s3, bucket, prefix=f'{env}/', files=12, seed=SEED, env=env)
            assert sorted(keys) == sorted(f'{env}/{k}' for k in fx.asset_keys(env, SEED, 12))
            put[env] = keys
        listed = {}
        for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket):
            for obj in page.get('Contents', []):
                listed[obj['Key']] = obj
        assert set(listed) == set(put['staging']) | set(put['prod'])
        assert 'staging/café menu.pdf' in listed and 'staging/ünïcødé 图片.png' in listed
        assert any('__' in k for k in put['staging'])
        for env in fx.ENVS:
            with conns[env].cursor() as cur:
                cur.execute(f'SELECT filename_disk, filesize, type, storage FROM `{DB}`.directus_files')
                rows = cur.fetchall()
            originals = set(fx.asset_keys(env, SEED, 12, thumbnails=False))
            assert {r[0] for r in rows} == originals
            for disk, size, ctype, storage in rows:
                assert storage == 's3' and ctype == fx.content_type(disk)
                assert listed[f'{env}/{disk}']['Size'] == size
            head = s3.head_object(Bucket=bucket, Key=f'{env}/ünïcødé 图片.png')
            assert head['ContentType'] == 'image/png' and head['CacheControl'] == fx.ASSET_CACHE_CONTROL
            png = next(s for s in fx.file_specs(env, SEED, 12) if s['filename_disk'] == 'ünïcødé 图片.png')
            assert head['Metadata'] == {'directus-file-id': png['id']}
            body = s3.get_object(Bucket=bucket, Key=f'{env}/café menu.pdf')['Body'].read()
            assert body[:1] == b'\x00' and len(body) == listed[f'{env}/café menu.pdf']['Size']
        # one file changed on staging: same key and size, different bytes
        changed = [s['filename_disk'] for s in fx.file_specs('staging', SEED, 12) if s['content_version'] == 'staging']
        assert len(changed) == 1
        st, pr = listed['staging/' + changed[0]], listed['prod/' + changed[0]]
        assert st['Size'] == pr['Size'] and st['ETag'] != pr['ETag']
    finally:
        keys = [{'Key': k} for keys in put.values() for k in keys]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={'Objects': keys[start:start + 1000]})
        s3.delete_bucket(Bucket=bucket)


def test_file_plan_is_shared_and_dated():
    # pure checks: staging lacks one prod file, adds new ones; deterministic per seed
    st, pr = fx.file_specs('staging', 1, 20), fx.file_specs('prod', 1, 20)
    assert {s['id'] for s in pr} - {s['id'] for s in st} and {s['id'] for s in st} - {s['id'] for s in pr}
    assert fx.asset_keys('staging', 1, 20) == fx.asset_keys('staging', 1, 20)
    assert fx.asset_keys('staging', 1, 20) != fx.asset_keys('staging', 2, 20)
    with pytest.raises(ValueError):
        fx.expected_ids('qa')
    assert isinstance(fx.awkward_rows()[2][5], datetime.datetime)
