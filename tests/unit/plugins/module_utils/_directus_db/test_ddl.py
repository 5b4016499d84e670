# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ddl: table definitions read by tokens, DDL built from checked parts (no server needed)."""

from __future__ import annotations

import pytest

from ansible_collections.casper.directus_promote.plugins.module_utils._directus_db import ddl

# every character str.splitlines() splits on besides \n and \r: MariaDB does not escape them in a string
SPLITTERS = ["\u2028", "\u2029", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85"]

CREATE = """CREATE TABLE `articles` (
  `id` char(36) NOT NULL,
  `author` int(10) unsigned DEFAULT NULL,
  `user_created` char(36) DEFAULT NULL,
  `body` longtext CHARACTER SET utf8mb4 COLLATE utf8mb4_bin DEFAULT NULL CHECK (json_valid(`body`)),
  `created` timestamp(3) NOT NULL DEFAULT current_timestamp(3) ON UPDATE current_timestamp(3),
  PRIMARY KEY (`id`),
  KEY `articles_author_foreign` (`author`),
  KEY `articles_user_created_foreign` (`user_created`),
  CONSTRAINT `articles_author_foreign` FOREIGN KEY (`author`) REFERENCES `authors` (`id`) ON DELETE SET NULL,
  CONSTRAINT `articles_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `directus_users` (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=42 DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci"""

FKS = [
    {"schema": "staging", "table": "articles", "name": "articles_author_foreign", "columns": ["author"],
     "ref_schema": "staging", "ref_table": "authors", "ref_columns": ["id"], "on_update": "RESTRICT", "on_delete": "SET NULL"},
    {"schema": "staging", "table": "articles", "name": "articles_user_created_foreign", "columns": ["user_created"],
     "ref_schema": "staging", "ref_table": "directus_users", "ref_columns": ["id"], "on_update": "RESTRICT",
     "on_delete": "RESTRICT"},
]


def column(**override):
    col = {"name": "department", "type": "varchar(255)", "nullable": True, "default": "'Sales, EU'", "extra": "",
           "charset": "utf8mb4", "collation": "utf8mb4_unicode_ci", "comment": "", "generation": None}
    col.update(override)
    return col


def test_a_create_table_parses_into_its_elements():
    parsed = ddl.parse_create_table(CREATE)
    assert parsed.name == "articles"
    kinds = [(e.kind, e.name) for e in parsed.elements]
    assert kinds[:5] == [("column", "id"), ("column", "author"), ("column", "user_created"), ("column", "body"),
                         ("column", "created")]
    assert ("foreign_key", "articles_author_foreign") in kinds and [k for k, _n in kinds].count("index") == 3
    assert ddl.auto_increment(CREATE) == 42
    assert ddl.auto_increment(CREATE.replace(" AUTO_INCREMENT=42", "")) is None


@pytest.mark.parametrize("splitter", SPLITTERS + ["\n"])
def test_a_string_holding_a_line_break_or_a_fake_column_stays_one_string(splitter):
    hostile = "x%s`pwn` int, DROP COLUMN `password` #" % splitter
    text = CREATE.replace("`author` int(10) unsigned DEFAULT NULL,",
                          "`author` int(10) unsigned DEFAULT NULL COMMENT '%s'," % hostile.replace("'", "''"))
    parsed = ddl.parse_create_table(text)
    assert [e.name for e in parsed.elements if e.kind == "column"] == ["id", "author", "user_created", "body", "created"]
    author = [e for e in parsed.elements if e.name == "author"][0]
    assert [t.kind for t in author.tokens][-2:] == ["word", "string"] and hostile in author.tokens[-1].text


def test_references_inside_a_comment_is_not_a_foreign_key():
    text = CREATE.replace("`user_created` char(36) DEFAULT NULL,",
                          "`user_created` char(36) DEFAULT NULL COMMENT 'see REFERENCES `directus_users` (`id`)',")
    shadow = ddl.shadow_create(text, FKS, "staging", "live", {"articles", "authors"})
    assert "COMMENT 'see REFERENCES `directus_users` (`id`)'" in shadow
    assert shadow.count("REFERENCES `live`.`directus_users`") == 1
    assert ddl.same_shape(text, text) and not ddl.same_shape(text, CREATE)


def test_shadow_create_rebuilds_foreign_keys_from_their_data():
    shadow = ddl.shadow_create(CREATE, FKS, "staging", "live", {"articles", "authors"})
    assert shadow.startswith("CREATE TABLE `articles` (`id` char(36) NOT NULL, ")
    assert "CONSTRAINT `articles_author_foreign` FOREIGN KEY (`author`) REFERENCES `authors` (`id`) ON DELETE SET NULL" in shadow
    assert ("CONSTRAINT `articles_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `live`.`directus_users` "
            "(`id`)") in shadow
    assert shadow.endswith(") ENGINE = InnoDB AUTO_INCREMENT = 42 DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_general_ci")
    # a FK to another schema of the source keeps its schema; to a table swapped in too it stays local
    other = dict(FKS[0], ref_schema="elsewhere")
    assert "REFERENCES `elsewhere`.`authors`" in ddl.shadow_create(CREATE, [other], "staging", "live", set())
    clauses = ddl.shadow_fk_clauses(FKS, "staging", "live", "shadow", {"articles", "authors"})
    assert clauses == [
        "ADD CONSTRAINT `articles_author_foreign` FOREIGN KEY (`author`) REFERENCES `shadow`.`authors` (`id`) "
        "ON DELETE SET NULL",
        "ADD CONSTRAINT `articles_user_created_foreign` FOREIGN KEY (`user_created`) REFERENCES `live`.`directus_users` "
        "(`id`)"]


def test_names_with_backticks_quotes_and_unicode_are_one_token_each():
    name = "we`ird 'na\"me ü\u2028x"
    quoted = "`" + name.replace("`", "``") + "`"
    text = "CREATE TABLE %s (\n  %s int NOT NULL,\n  PRIMARY KEY (%s)\n) ENGINE=InnoDB" % (quoted, quoted, quoted)
    parsed = ddl.parse_create_table(text)
    assert parsed.name == name and parsed.elements[0].name == name
    fk = dict(FKS[0], name=name, columns=[name], ref_table=name, ref_columns=[name])
    assert ddl.fk_clause(fk, "live") == "CONSTRAINT %s FOREIGN KEY (%s) REFERENCES `live`.%s (%s) ON DELETE SET NULL" % (
        quoted, quoted, quoted, quoted)
    assert ddl.checked_create(text, name, "source") == text
    with pytest.raises(ddl.UnsafeText, match="described"):
        ddl.checked_create(text, "articles", "source")


@pytest.mark.parametrize("text, why", [
    ("CREATE TABLE `t` (`id` int) SELECT password FROM directus.directus_users", "hold"),
    ("CREATE TABLE `t` (`id` int) AS SELECT 1", "hold"),
    ("CREATE TABLE `t` LIKE `u`", "plain CREATE TABLE"),
    ("CREATE TABLE `t` (`id` int DEFAULT (SELECT 1))", "SELECT"),
    ("CREATE TABLE `t` (`id` int DEFAULT load_file('/etc/passwd'))", "LOAD_FILE"),
    ("CREATE TABLE `t` (`id` int DEFAULT sys_exec('rm'))", "sys_exec"),
    ("CREATE TABLE `t` (`id` int DEFAULT (NEXT VALUE FOR s))", "NEXT"),
    ("CREATE TABLE `t` (`id` int) ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'", "engine"),
    ("CREATE TABLE `t` (`id` int) ENGINE=FEDERATED CONNECTION='mysql://x'", "engine"),
    ("CREATE TABLE `t` (`id` int) ENGINE=InnoDB DATA DIRECTORY='/tmp'", "DIRECTORY"),
    ("CREATE TABLE `t` (`id` int); DROP DATABASE directus", "unexpected text"),
    ("CREATE TABLE `t` (`id` int) /*!50000 , DROP TABLE x */", "unexpected text"),
    ("CREATE TABLE `t` (`id` int) -- x", "unexpected text"),
    ("CREATE TABLE `t` (`id` int DEFAULT \"x\")", "unexpected text"),
    ("CREATE TABLE `t` (`id` int DEFAULT @x)", "unexpected text"),
    ("CREATE TABLE `t` (`id` int, (`x` int))", "element"),
    ("CREATE TABLE `t` (`id` int", "unbalanced"),
    ("CREATE TEMPORARY TABLE `t` (`id` int)", "plain CREATE TABLE"),
    ("CREATE TABLE `a`.`t` (`id` int)", "plain CREATE TABLE"),
])
def test_anything_but_a_table_definition_is_refused(text, why):
    with pytest.raises(ddl.UnsafeText, match="(?i)" + why):
        ddl.parse_create_table(text)


def test_plain_comments_are_left_out_and_partitions_are_checked():
    assert ddl.render(ddl.tokenize("a /* x */ b")) == "a b"
    text = ("CREATE TABLE `t` (`id` int NOT NULL, PRIMARY KEY (`id`)) ENGINE=InnoDB PARTITION BY RANGE (`id`) "
            "(PARTITION p0 VALUES LESS THAN (10) ENGINE = InnoDB)")
    assert ddl.parse_create_table(text).name == "t"
    with pytest.raises(ddl.UnsafeText):
        ddl.parse_create_table(text.replace("ENGINE = InnoDB)", "DATA DIRECTORY = '/x' ENGINE = InnoDB)"))
    with pytest.raises(ddl.UnsafeText):
        ddl.parse_create_table(text.replace("ENGINE = InnoDB)", "ENGINE = CONNECT)"))


def test_shape_ignores_the_counter_index_order_and_default_rules_but_not_columns():
    lines = CREATE.split("\n")
    keys_swapped = "\n".join(lines[:7] + [lines[8], lines[7]] + lines[9:])
    assert keys_swapped != CREATE and ddl.same_shape(keys_swapped, CREATE)
    restrict = CREATE.replace("AUTO_INCREMENT=42", "AUTO_INCREMENT=7").replace(
        "REFERENCES `directus_users` (`id`)", "REFERENCES `directus_users` (`id`) ON DELETE RESTRICT ON UPDATE NO ACTION")
    assert ddl.same_shape(restrict, CREATE)
    columns_swapped = "\n".join(lines[:1] + [lines[2], lines[1]] + lines[3:])
    assert not ddl.same_shape(columns_swapped, CREATE)
    assert not ddl.same_shape(CREATE.replace("char(36) NOT NULL", "char(40) NOT NULL"), CREATE)
    assert not ddl.same_shape(CREATE.replace("utf8mb4_general_ci", "utf8mb4_unicode_ci"), CREATE)
    no_fks = "\n".join(line for line in lines if "FOREIGN KEY" not in line).replace(
        "(`user_created`),\n)", "(`user_created`)\n)")
    assert ddl.same_shape(CREATE, no_fks, foreign_keys=False) and not ddl.same_shape(CREATE, no_fks)
    assert not ddl.same_shape(CREATE, None) and not ddl.same_shape(CREATE, "CREATE TABLE `x` LIKE `y`")


def test_a_kept_table_column_is_defined_from_information_schema():
    assert ddl.column_definition(column()) == (
        "varchar(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NULL DEFAULT 'Sales, EU'")
    assert ddl.column_definition(column(type="int(10) unsigned", charset=None, collation=None, nullable=False,
                                        default="-1", comment="it's 100%")) == (
        "int(10) unsigned NOT NULL DEFAULT -1 COMMENT 'it\\'s 100%'")
    assert ddl.column_definition(column(type="timestamp(3)", charset=None, collation=None, default="current_timestamp(3)",
                                        extra="on update current_timestamp(3)")) == (
        "timestamp(3) NULL DEFAULT current_timestamp(3) ON UPDATE current_timestamp(3)")
    assert ddl.column_definition(column(type="enum('a','b''c')", default="NULL")).startswith("enum('a', 'b''c') ")
    # MySQL reports a literal default raw and an expression with DEFAULT_GENERATED
    assert ddl.column_definition(column(default="it's"), mariadb=False).endswith("DEFAULT 'it\\'s'")
    assert ddl.column_definition(column(type="datetime", charset=None, collation=None, default="CURRENT_TIMESTAMP",
                                        extra="DEFAULT_GENERATED"), mariadb=False) == "datetime NULL DEFAULT CURRENT_TIMESTAMP"


@pytest.mark.parametrize("splitter", SPLITTERS + ["\n", "\r", "\0"])
def test_a_hostile_comment_or_default_of_a_kept_column_stays_a_string(splitter):
    hostile = "x%s` int, DROP COLUMN `password` #'\\" % splitter
    definition = ddl.column_definition(column(comment=hostile))
    assert definition.endswith(" COMMENT '%s'" % hostile.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0"))
    assert ddl.tokenize(definition)[-1].kind == "string"
    quoted_default = "'" + hostile.replace("\\", "\\\\").replace("'", "''") + "'"
    definition = ddl.column_definition(column(default=quoted_default))
    assert [t.kind for t in ddl.tokenize(definition)][-2:] == ["word", "string"]


@pytest.mark.parametrize("override, why", [
    (dict(default="(SELECT password FROM directus_users LIMIT 1)"), "default"),
    (dict(default="'a' , DROP COLUMN `x`"), "default"),
    (dict(default="load_file('/etc/passwd')"), "default"),
    (dict(type="varchar(255) DEFAULT (SELECT 1)"), "type"),
    (dict(type="int, DROP COLUMN `password`"), "type"),
    (dict(charset="utf8mb4; DROP"), "character set"),
    (dict(extra="VIRTUAL GENERATED", generation="`a` + 1"), "generated"),
    (dict(extra="on update (SELECT 1)"), "default"),
    (dict(extra="something else"), "attribute"),
])
def test_a_kept_column_definition_that_is_not_plain_is_refused(override, why):
    with pytest.raises(ddl.UnsafeText, match=why):
        ddl.column_definition(column(**override))


def test_missing_columns_adds_only_real_declared_columns_after_their_neighbour():
    source = [column(name="id", type="char(36)", default=None, nullable=False), column(name="email", default="NULL"),
              column(), column(name="role", type="char(36)", default="NULL")]
    got = ddl.missing_columns("directus_users", {"department", "email", "ghost"}, source, ["id", "email", "role"],
                              "10.11.19-MariaDB")
    assert got == [ddl.ColumnAdd("directus_users", "department", ddl.column_definition(column()), "email")]
    assert ddl.add_column_sql("d", got[0]) == (
        "ALTER TABLE `d`.`directus_users` ADD COLUMN `department` varchar(255) CHARACTER SET utf8mb4 COLLATE "
        "utf8mb4_unicode_ci NULL DEFAULT 'Sales, EU' AFTER `email`")
    assert ddl.drop_column_sql("d", got[0]) == "ALTER TABLE `d`.`directus_users` DROP COLUMN `department`"
    with pytest.raises(ddl.UnsafeText, match="directus_users.department"):
        ddl.missing_columns("directus_users", {"department"}, [column(default="(SELECT 1)")], [], "10.11.19-MariaDB")


def test_fk_rules_are_checked_words():
    assert ddl.fk_clause(dict(FKS[0], on_update="CASCADE"), None).endswith("ON DELETE SET NULL ON UPDATE CASCADE")
    with pytest.raises(ddl.UnsafeText):
        ddl.fk_clause(dict(FKS[0], on_delete="SET NULL, DROP FOREIGN KEY x"), None)
