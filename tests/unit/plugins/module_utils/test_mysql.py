# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Row literal encoding and error messages of module_utils.mysql (no server needed)."""

from __future__ import annotations

import pymysql

from ansible_collections.casper.directus_promote.plugins.module_utils import mysql


def test_literal_kinds():
    assert mysql.literal_kind("bigint") == "num"
    assert mysql.literal_kind("DECIMAL") == "num"
    assert mysql.literal_kind("longblob") == "bin"
    assert mysql.literal_kind("point") == "bin"
    assert mysql.literal_kind("varchar") == "str"
    assert mysql.literal_kind("datetime") == "str"
    assert mysql.literal_kind("json") == "str"


def test_row_encoder_escapes_and_hexes():
    enc = mysql.row_encoder(["num", "str", "bin", "str", "bin"])
    row = (b"-12.50", b"it's a \\ back\x00slash", b"\x00\xff", None, b"")
    assert enc(row) == b"(-12.50,'it\\'s a \\\\ back\\0slash',0x00ff,NULL,'')"


def test_insert_batches_respect_size_and_keep_every_row():
    enc = mysql.row_encoder(["num"])
    rows = [(str(i).encode(),) for i in range(1000)]
    prefix = b"INSERT INTO t (a) VALUES "
    batches = list(mysql.insert_batches(iter(rows), prefix, enc, 200))
    assert sum(n for _s, n in batches) == 1000
    assert all(len(s) <= 200 for s, _n in batches)
    values = b",".join(s[len(prefix):] for s, _n in batches)
    assert values == b",".join(b"(%d)" % i for i in range(1000))
    # one row bigger than the limit still goes, alone
    big = list(mysql.insert_batches(iter([(b"1" * 500,), (b"2",)]), prefix, enc, 100))
    assert [n for _s, n in big] == [1, 1]


def test_friendly_errors_name_the_problem_and_never_the_password():
    params = {"host": "db.example", "port": 3307, "user": "directus", "password": "s3cret!", "database": "cms"}
    denied = pymysql.err.OperationalError(1045, "Access denied for user 'directus'@'x' (using password: YES)")
    msg = mysql.friendly_error("target", params, denied)
    assert msg.startswith("target: access denied for user 'directus' at db.example:3307")
    assert "s3cret" not in msg
    assert "unknown database 'cms'" in mysql.friendly_error(
        "source", params, pymysql.err.OperationalError(1049, "Unknown database 'cms'"))
    assert "cannot reach" in mysql.friendly_error(
        "source", params, pymysql.err.OperationalError(2003, "Can't connect to MySQL server on 'db.example'"))


def test_connection_options_hide_the_password():
    opts = mysql.mysql_connection_options()
    assert opts["password"]["no_log"] is True
    assert opts["database"]["required"] is True
    assert mysql.describe({"host": "h", "port": 1, "user": "u", "password": "p", "database": "d"}) == "u@h:1/d"


def test_quoting():
    assert mysql.quote_ident("we`ird") == "`we``ird`"
    assert mysql.qualified("a", "b") == "`a`.`b`"


def test_server_row_sql_builds_literals_on_the_server():
    sql = mysql.server_row_sql(["id", "name", "data"], ["num", "str", "bin"], {"name": "UPPER(`name`)"})
    assert sql == ("CONCAT('(', IFNULL(`id`, 'NULL'), ',', CONVERT(QUOTE(UPPER(`name`)) USING utf8mb4), ',', "
                   "IF(`data` IS NULL, 'NULL', CONCAT(\"X'\", HEX(`data`), \"'\")), ')')")
    assert mysql.server_row_encoder((b"(1)",)) == b"(1)"
    try:
        mysql.server_row_encoder((None,))
    except mysql.RowTooLong:
        pass
    else:
        raise AssertionError("a NULL row literal must raise RowTooLong")


def test_case_map_sql():
    sql = mysql.case_map_sql("user_created", {"s2": None, "s1": "t1"}, mysql.quote_string)
    assert sql == "CASE `user_created` WHEN 's1' THEN 't1' WHEN 's2' THEN NULL ELSE `user_created` END"


def test_row_digest_sql_length_prefixes_every_value():
    sql = mysql.row_digest_sql(["id", "title"], {"title": "UPPER(`title`)"})
    assert sql == ("UNHEX(SHA2(CONCAT(IF(`id` IS NULL, 'N', CONCAT(LENGTH(`id`), ':', `id`)), "
                   "IF(UPPER(`title`) IS NULL, 'N', CONCAT(LENGTH(UPPER(`title`)), ':', UPPER(`title`)))), 256))")
