# -*- coding: utf-8 -*-
# Copyright (c) 2026, casper.directus_promote contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""DDL that the target runs, built from verified parts of what the source reported (pure, no I/O).

The source's names, defaults and comments are staging's content, and its server may be
compromised: its ``SHOW CREATE TABLE`` text is never split into lines or searched with regular
expressions. It is read by a tokenizer that follows MariaDB's own lexical rules (a string or a
quoted name is one token, whatever it holds), checked against a strict grammar of what a table
definition may contain, and the statement the target runs is rendered from those tokens:
foreign keys rebuilt from information_schema data, nothing executable (no SELECT, no executable
comment, no file, server or engine a table could reach out with) passes. Columns added to kept
tables are defined from information_schema values, each checked or quoted here.
"""

from __future__ import annotations

import collections
import functools
import re

from ansible_collections.casper.directus_promote.plugins.module_utils.mysql import qualified, quote_ident, quote_string


class UnsafeText(Exception):
    """A definition the target must not run (message names what was refused, never the whole text)."""


Token = collections.namedtuple("Token", "kind text")

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<ident>`(?:[^`]|``)*`)
  | (?P<string>'(?:[^'\\]|\\.|'')*')
  | (?P<hexstr>[xX]'[0-9A-Fa-f]*'|[bB]'[01]*')
  | (?P<number>0x[0-9A-Fa-f]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<bad>/\*[!M]|--(?:[ \t\r\n]|$))
  | (?P<comment>/\*(?:[^*]|\*(?!/))*\*/)
  | (?P<punct>[(),.=+\-*/<>!%&|^~])
""", re.VERBOSE | re.DOTALL)

# words that may be followed by "(": column types, the functions a DEFAULT, a generated column, a CHECK
# or a partitioning clause may call (deterministic, reading nothing but the row), and clause words
TYPE_WORDS = frozenset("""
    bit tinyint smallint mediumint int integer bigint decimal dec numeric fixed float double real bool boolean
    char varchar binary varbinary tinytext text mediumtext longtext tinyblob blob mediumblob longblob enum set
    date datetime timestamp time year json uuid inet4 inet6 geometry point linestring polygon multipoint
    multilinestring multipolygon geometrycollection national nchar nvarchar character
""".split())
CALL_WORDS = frozenset("""
    current_timestamp now localtime localtimestamp curdate current_date curtime current_time utc_timestamp utc_date
    utc_time sysdate uuid uuid_short json_valid json_extract json_unquote json_value json_length json_type
    concat concat_ws lower upper lcase ucase trim ltrim rtrim substring substr left right length char_length
    character_length octet_length coalesce ifnull if nullif abs round floor ceil ceiling mod greatest least
    date year month day hour minute second to_days to_seconds unix_timestamp md5 sha1 sha2 crc32 cast convert replace
    regexp_replace hex unhex
    key unique index primary foreign references check constraint using values in columns range list hash default
    partition partitions subpartition subpartitions less than
""".split()) | TYPE_WORDS
# words no part of a table definition may hold: a query, a sequence, a file, another server
DENIED_WORDS = frozenset("""
    select from into outfile dumpfile load_file sleep benchmark next previous nextval lastval setval directory
    connection union insert_method tablespace
""".split())
ENGINES = frozenset(("innodb", "aria", "myisam"))
TABLE_OPTIONS = frozenset("""
    engine auto_increment default charset character set collate row_format comment key_block_size stats_persistent
    stats_auto_recalc stats_sample_pages page_compressed page_compression_level pack_keys checksum delay_key_write
    transactional avg_row_length max_rows min_rows encrypted encryption_key_id with system versioning
    sequence
""".split())


@functools.lru_cache(maxsize=4096)
def tokenize(text):
    """The tokens of a statement (whitespace and plain comments left out); UnsafeText when a character
    is not part of what MariaDB's SHOW CREATE TABLE writes (a ``#`` or ``--`` comment, ``;``, an
    executable ``/*!...*/`` comment, a double-quoted string, a user variable)."""
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.lastgroup == "bad":
            raise UnsafeText("unexpected text at character %d: %r" % (pos, text[pos:pos + 12]))
        pos = m.end()
        if m.lastgroup not in ("ws", "comment"):
            tokens.append(Token(m.lastgroup, m.group()))
    return tuple(tokens)


def _word(token):
    return token.text.lower() if token.kind == "word" else None


def render(tokens):
    """Tokens as one line of SQL: strings and quoted names verbatim (the tokenizer checked where they end).

    A space between tokens, except inside ``name(``, ``(x``, ``x)``, ``x,`` and around ``.``."""
    out = []
    previous = None
    for token in tokens:
        if previous is not None and not (
                (token.text == "(" and previous.kind == "word") or token.text in (")", ",", ".")
                or previous.text in ("(", ".")):
            out.append(" ")
        out.append(token.text)
        previous = token
    return "".join(out)


def _split_top(tokens):
    """Split tokens at commas outside parentheses."""
    parts, current, depth = [], [], 0
    for token in tokens:
        if token.text == "(":
            depth += 1
        elif token.text == ")":
            depth -= 1
            if depth < 0:
                raise UnsafeText("unbalanced parentheses")
        if token.text == "," and depth == 0 and token.kind == "punct":
            parts.append(current)
            current = []
        else:
            current.append(token)
    if depth:
        raise UnsafeText("unbalanced parentheses")
    parts.append(current)
    return parts


def _check_words(tokens, where):
    """No denied word, and every word followed by "(" a known type, function or clause word."""
    for i, token in enumerate(tokens):
        word = _word(token)
        if word is None:
            continue
        if word in DENIED_WORDS:
            raise UnsafeText("%s holds %s" % (where, token.text.upper()))
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if following is not None and following.text == "(" and following.kind == "punct" and word not in CALL_WORDS:
            raise UnsafeText("%s calls %s(), which is not a function a table definition may use here" % (where, token.text))


def ident_name(token):
    if token.kind != "ident":
        raise UnsafeText("expected a quoted name, found %r" % token.text[:20])
    return token.text[1:-1].replace("``", "`")


Element = collections.namedtuple("Element", "kind name tokens")
CreateTable = collections.namedtuple("CreateTable", "name elements options")


@functools.lru_cache(maxsize=1024)
def parse_create_table(text):
    """``CREATE TABLE `name` (element, ...) options`` -> CreateTable, each element a column, index,
    foreign key or check; UnsafeText for anything else."""
    tokens = tokenize(text)
    _check_engines(tokens)
    if len(tokens) < 5 or [_word(t) for t in tokens[:2]] != ["create", "table"] or tokens[3].text != "(":
        raise UnsafeText("not a plain CREATE TABLE statement")
    name = ident_name(tokens[2])
    depth, close = 0, None
    for i in range(3, len(tokens)):
        if tokens[i].kind == "punct" and tokens[i].text == "(":
            depth += 1
        elif tokens[i].kind == "punct" and tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                close = i
                break
    if close is None:
        raise UnsafeText("unbalanced parentheses")
    elements = []
    for part in _split_top(tokens[4:close]):
        if not part:
            raise UnsafeText("empty element in table %s" % name)
        elements.append(_element(name, part))
    options = tokens[close + 1:]
    _check_options(name, options)
    return CreateTable(name, tuple(elements), tuple(options))


def _element(table, part):
    first = _word(part[0])
    where = "the definition of %s" % quote_ident(table)
    _check_words(part, where)
    if part[0].kind == "ident":
        return Element("column", ident_name(part[0]), tuple(part))
    if first == "constraint" and len(part) > 2 and _word(part[2]) == "foreign":
        return Element("foreign_key", ident_name(part[1]), tuple(part))
    if first == "foreign":
        return Element("foreign_key", None, tuple(part))
    if first in ("constraint", "check"):
        return Element("check", None, tuple(part))
    if first in ("primary", "unique", "key", "index", "fulltext", "spatial"):
        return Element("index", None, tuple(part))
    raise UnsafeText("%s holds an element starting with %r" % (where, part[0].text[:20]))


def _check_engines(tokens):
    """Every ENGINE= (of the table or of a partition) names an engine that keeps its rows in the server's files."""
    for i, token in enumerate(tokens):
        if _word(token) == "engine":
            value = tokens[i + 2] if i + 2 < len(tokens) and tokens[i + 1].text == "=" else None
            if value is None or _word(value) not in ENGINES:
                raise UnsafeText("engine %s is not promoted (only %s)" % (
                    value.text[:20] if value else "?", ", ".join(sorted(ENGINES))))


def _check_options(table, options):
    where = "the table options of %s" % quote_ident(table)
    _check_words(options, where)
    i = 0
    while i < len(options):
        token = options[i]
        word = _word(token)
        if word == "partition":
            return  # the partitioning clause: its words and calls were checked above
        if word not in TABLE_OPTIONS:
            raise UnsafeText("%s hold %r" % (where, token.text[:20]))
        i += 1
        if i < len(options) and options[i].text == "=":
            if i + 1 >= len(options) or options[i + 1].kind not in ("word", "number", "string"):
                raise UnsafeText("%s: option %s has no plain value" % (where, token.text))
            i += 2


def checked_create(text, name, side):
    """The SHOW CREATE TABLE text of ``name`` once it parses and passes the grammar; UnsafeText naming the side."""
    try:
        parsed = parse_create_table(text)
    except UnsafeText as exc:
        raise UnsafeText("%s table %s: %s; nothing was changed" % (side, quote_ident(name), exc)) from None
    if parsed.name != name:
        raise UnsafeText("%s table %s: SHOW CREATE TABLE described %s; nothing was changed" % (
            side, quote_ident(name), quote_ident(parsed.name)))
    return text


# --------------------------------------------------------------------------- comparing definitions

def _fk_shape(element):
    """A foreign key element without RESTRICT/NO ACTION rules (InnoDB's default, shown only when spelled out)."""
    tokens, out, i = element.tokens, [], 0
    while i < len(tokens):
        words = [_word(t) for t in tokens[i:i + 4]]
        if words[:1] == ["on"] and len(words) > 2 and words[1] in ("delete", "update"):
            if words[2] == "restrict":
                i += 3
                continue
            if words[2:4] == ["no", "action"]:
                i += 4
                continue
        out.append(tokens[i])
        i += 1
    return render(out)


def shape(text, foreign_keys=True):
    """What makes two tables' definitions the same: columns in order, indexes and constraints in any
    order, table options but the AUTO_INCREMENT counter; without foreign keys when asked."""
    parsed = parse_create_table(text)
    columns = [render(e.tokens) for e in parsed.elements if e.kind == "column"]
    others = sorted(_fk_shape(e) if e.kind == "foreign_key" else render(e.tokens)
                    for e in parsed.elements if e.kind != "column" and (foreign_keys or e.kind != "foreign_key"))
    options = _without_counter(parsed.options)
    return (parsed.name, tuple(columns), tuple(others), render(options))


def _without_counter(options):
    out, i = [], 0
    while i < len(options):
        if _word(options[i]) == "auto_increment" and i + 2 < len(options) and options[i + 1].text == "=":
            i += 3
            continue
        out.append(options[i])
        i += 1
    return out


def same_shape(text_a, text_b, foreign_keys=True):
    """Whether two SHOW CREATE TABLE texts define the same table (False when either does not parse)."""
    if text_a is None or text_b is None:
        return False
    try:
        return shape(text_a, foreign_keys) == shape(text_b, foreign_keys)
    except UnsafeText:
        return False


def auto_increment(text):
    """The AUTO_INCREMENT counter of a table definition, or None."""
    options = parse_create_table(text).options
    for i, token in enumerate(options):
        if _word(token) == "auto_increment" and i + 2 < len(options) and options[i + 2].kind == "number":
            return int(options[i + 2].text)
    return None


# --------------------------------------------------------------------------- building DDL

def fk_clause(fk, ref_schema=None):
    """``CONSTRAINT ... FOREIGN KEY ... REFERENCES ...`` from a foreign key's information_schema data.

    ``ref_schema`` None: the parent unqualified (the child's own schema)."""
    parent = quote_ident(fk["ref_table"]) if ref_schema is None else qualified(ref_schema, fk["ref_table"])
    clause = "CONSTRAINT %s FOREIGN KEY (%s) REFERENCES %s (%s)" % (
        quote_ident(fk["name"]), ", ".join(quote_ident(c) for c in fk["columns"]), parent,
        ", ".join(quote_ident(c) for c in fk["ref_columns"]))
    for event in ("delete", "update"):
        rule = str(fk["on_%s" % event] or "RESTRICT").upper()
        if rule not in ("RESTRICT", "NO ACTION", "CASCADE", "SET NULL", "SET DEFAULT"):
            raise UnsafeText("foreign key %s has the rule %r" % (quote_ident(fk["name"]), rule[:20]))
        if rule != "RESTRICT":
            clause += " ON %s %s" % (event.upper(), rule)
    return clause


def shadow_create(text, fks, source_schema, live_schema, local_tables):
    """The source table's CREATE TABLE for the shadow schema (run there with USE), rendered from its
    checked tokens, its foreign keys rebuilt from ``fks`` (information_schema): a parent swapped in
    with it (``local_tables``) in the shadow schema, a parent that stays live in ``live_schema``."""
    parsed = parse_create_table(text)
    parts = [render(e.tokens) for e in parsed.elements if e.kind != "foreign_key"]
    parts += [fk_clause(fk, _fk_parent_schema(fk, source_schema, live_schema, local_tables, None)) for fk in fks]
    return "CREATE TABLE %s (%s) %s" % (quote_ident(parsed.name), ", ".join(parts), render(parsed.options))


def shadow_fk_clauses(fks, source_schema, live_schema, shadow_schema, local_tables):
    """ADD clauses of the source's foreign keys for a table already in the shadow schema (every parent qualified)."""
    return ["ADD " + fk_clause(fk, _fk_parent_schema(fk, source_schema, live_schema, local_tables, shadow_schema))
            for fk in fks]


def _fk_parent_schema(fk, source_schema, live_schema, local_tables, shadow_schema):
    if fk["ref_schema"] != source_schema:
        return fk["ref_schema"]
    if fk["ref_table"] in local_tables:
        return shadow_schema
    return live_schema


ColumnAdd = collections.namedtuple("ColumnAdd", "table column definition after")


def add_column_sql(schema, add):
    sql = "ALTER TABLE %s ADD COLUMN %s %s" % (qualified(schema, add.table), quote_ident(add.column), add.definition)
    if add.after:
        sql += " AFTER %s" % quote_ident(add.after)
    return sql


def drop_column_sql(schema, add):
    return "ALTER TABLE %s DROP COLUMN %s" % (qualified(schema, add.table), quote_ident(add.column))


_NAME = re.compile(r"^[A-Za-z0-9_]+$")
_DEFAULT_CALLS = frozenset(("current_timestamp", "now", "localtime", "localtimestamp", "curdate", "current_date",
                            "curtime", "current_time", "utc_timestamp", "utc_date", "utc_time", "uuid", "sysdate"))


def column_type_sql(column_type):
    tokens = tokenize(column_type or "")
    if not tokens or _word(tokens[0]) not in TYPE_WORDS:
        raise UnsafeText("type %r is not a column type" % (column_type or "")[:40])
    for token in tokens:
        if token.kind not in ("word", "number", "string", "punct") or (token.kind == "punct" and token.text not in "(),"):
            raise UnsafeText("type %r is not a column type" % column_type[:40])
        if token.kind == "word" and _word(token) not in TYPE_WORDS | {"unsigned", "signed", "zerofill"}:
            raise UnsafeText("type %r is not a column type" % column_type[:40])
    return render(tokens)


def _expression_default(text):
    """A default that is a time or UUID function call, e.g. ``current_timestamp()`` or ``current_timestamp(3)``."""
    tokens = tokenize(text)
    words = [_word(t) for t in tokens]
    if words and words[0] in _DEFAULT_CALLS and (
            len(tokens) == 1 or [t.text for t in tokens[1:]] == ["(", ")"]
            or (len(tokens) == 4 and tokens[1].text == "(" and tokens[2].kind == "number" and tokens[3].text == ")")):
        return render(tokens)
    raise UnsafeText("default %r is not a literal or a time function" % text[:40])


def _default_sql(column, mariadb):
    default, extra = column["default"], column["extra"].lower()
    if not mariadb:
        # MySQL: the raw value, and DEFAULT_GENERATED in EXTRA for an expression
        if default is None:
            return "DEFAULT NULL" if column["nullable"] else None
        if "default_generated" in extra:
            return "DEFAULT " + _expression_default(default)
        return "DEFAULT " + quote_string(default)
    # MariaDB: NULL when there is none, else the default as SQL: a literal or an expression
    if default is None:
        return None
    tokens = tokenize(default)
    if len(tokens) == 1 and tokens[0].kind in ("string", "number", "hexstr"):
        return "DEFAULT " + tokens[0].text
    if len(tokens) == 2 and tokens[0].text == "-" and tokens[1].kind == "number":
        return "DEFAULT -" + tokens[1].text
    if len(tokens) == 1 and _word(tokens[0]) == "null":
        return "DEFAULT NULL"
    return "DEFAULT " + _expression_default(default)


def column_definition(column, mariadb=True):
    """``<type> [CHARACTER SET c COLLATE c] NULL|NOT NULL [DEFAULT d] [ON UPDATE f] [COMMENT '...']`` from one
    information_schema.COLUMNS row (catalog.column_details), every part checked or quoted here."""
    extra = column["extra"].lower().replace("default_generated", "").strip()
    if "generated" in extra or extra in ("virtual", "persistent", "stored") or column.get("generation"):
        raise UnsafeText("column %s is generated" % quote_ident(column["name"]))
    parts = [column_type_sql(column["type"])]
    for label, value in (("CHARACTER SET", column["charset"]), ("COLLATE", column["collation"])):
        if value is not None:
            if not _NAME.match(value):
                raise UnsafeText("column %s has the %s %r" % (quote_ident(column["name"]), label.lower(), value[:40]))
            parts.append("%s %s" % (label, value))
    parts.append("NULL" if column["nullable"] else "NOT NULL")
    default = _default_sql(column, mariadb)
    if default:
        parts.append(default)
    rest = extra
    if rest.startswith("on update "):
        parts.append("ON UPDATE " + _expression_default(rest[len("on update "):]))
        rest = ""
    if rest == "auto_increment":
        parts.append("AUTO_INCREMENT")
    elif rest == "invisible":
        parts.append("INVISIBLE")
    elif rest:
        raise UnsafeText("column %s has the attribute %r" % (quote_ident(column["name"]), rest[:40]))
    if column["comment"]:
        parts.append("COMMENT " + quote_string(column["comment"]))
    return " ".join(parts)


def missing_columns(table, declared, source_columns, target_columns, source_version):
    """[ColumnAdd] for the columns of ``declared`` (the source's directus_fields of a kept table) that the
    source table really has and the target's lacks, defined from the source's information_schema rows,
    each placed after the column it follows on the source when the target has that one."""
    mariadb = "mariadb" in str(source_version or "").lower()
    target = set(target_columns)
    out = []
    previous = None
    for column in source_columns:
        name = column["name"]
        if name in declared and name not in target:
            try:
                definition = column_definition(column, mariadb)
            except UnsafeText as exc:
                raise UnsafeText("column %s.%s: %s" % (table, name, exc)) from None
            out.append(ColumnAdd(table, name, definition, previous if previous in target else None))
        previous = name
    return out
