"""Sessions opened by module_utils.mysql.connect: the same settings whatever the server's defaults."""

from __future__ import annotations

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils import mysql as mysql_utils

# what a hosting provider may set for its web clients, each breaking a promotion in its own way
HOSTILE = {
    "sql_mode": "'ANSI_QUOTES,NO_BACKSLASH_ESCAPES,PAD_CHAR_TO_FULL_LENGTH'",
    "max_statement_time": "0.5",
    "wait_timeout": "2",
    "net_read_timeout": "3",
    "net_write_timeout": "3",
}


@pytest.fixture
def hostile_defaults(sandbox):
    servers = (sandbox.staging, sandbox.prod)
    saved = {}
    for server in servers:
        conn = server.root_connect()
        with conn.cursor() as cur:
            cur.execute("SELECT %s" % ", ".join("@@GLOBAL.%s" % name for name in HOSTILE))
            saved[server] = dict(zip(HOSTILE, cur.fetchone()))
            cur.execute("SET GLOBAL " + ", ".join("%s = %s" % kv for kv in HOSTILE.items()))
        conn.close()
    yield servers
    for server in servers:
        conn = server.root_connect()
        with conn.cursor() as cur:
            for name, value in saved[server].items():
                cur.execute("SET GLOBAL %s = %%s" % name, (value,))
        conn.close()


@pytest.mark.parametrize("raw, streaming", [(False, False), (True, True)])
def test_sessions_set_their_own_sql_mode_and_limits(hostile_defaults, raw, streaming):
    for server in hostile_defaults:
        params = dict(host=server.host, port=server.port, user=server.user, password=server.password, database="mysql")
        conn = mysql_utils.connect(params, "target", raw=raw, streaming=streaming)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT @@SESSION.sql_mode, @@SESSION.max_statement_time, @@SESSION.wait_timeout, "
                            "@@SESSION.net_read_timeout, @@SESSION.net_write_timeout, @@GLOBAL.max_statement_time")
                row = [v.decode() if isinstance(v, bytes) else v for v in cur.fetchall()[0]]
                # a statement longer than the server's 0.5 s limit runs to its end
                cur.execute("SELECT SLEEP(0.8)")
                assert [int(float(v)) for v in cur.fetchall()[0]] == [0]
        finally:
            conn.close()
        assert row[0] == mysql_utils.SESSION_SQL_MODE
        assert float(row[1]) == 0 and float(row[5]) == 0.5
        assert [int(v) for v in row[2:5]] == [28800, 600, 600]


def test_statement_time_variable_by_server_flavour():
    assert mysql_utils.statement_time_variable("5.5.5-10.11.19-MariaDB-0+deb12u1") == "max_statement_time"
    assert mysql_utils.statement_time_variable("8.0.36") == "max_execution_time"
