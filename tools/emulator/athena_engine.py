"""Athena queries computed with DuckDB over local CUR 2.0 Parquet, for the emulator (aws_emulator.py).

moto 5.2.5 answers every Athena query from a queue of seeded results. This module runs the
submitted SQL instead, with DuckDB, when it names a table registered with
``POST /_emulator/athena/tables`` (a local folder of Parquet files with hive partition folders such
as ``BILLING_PERIOD=YYYY-MM``, as an Athena table over a CUR 2.0 export), and returns what Athena
would: column names and Athena type names, values as strings, the bytes of the files read, or a
FAILED reason in Athena's ``ERROR_NAME: line L:C: message`` form.

Like Athena, a table reads every file under its location (names starting with ``_`` or ``.``
excepted) and no manifest: a create-new export with several deliveries of a month is counted
once per delivery, as on AWS.

The few Athena (Trino) dialect differences are translated as listed in README.md ("Athena
computed with DuckDB"); ``translate`` does the textual part. The module knows nothing of moto or
HTTP; the hooks in aws_emulator.py call ``AthenaEngine.run`` from StartQueryExecution.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Callable

DEFAULT_CATALOG = "AwsDataCatalog"
DEFAULT_DATABASE = "default"
# Athena error categories and types (Athena error catalog): 2 = user error; 1000 user error,
# 1001 data error, 1006 syntax error (the type the other selftests use for SYNTAX_ERROR).
USER_ERROR = 2
ERROR_TYPE_USER = 1000
ERROR_TYPE_DATA = 1001
ERROR_TYPE_SYNTAX = 1006

# The columns of an empty table (a location without files yet): the CUR 2.0 columns the server
# reads, typed as in an export, so a query over it answers no rows instead of failing.
EMPTY_TABLE_COLUMNS = [
    ("bill_billing_period_start_date", "TIMESTAMP"),
    ("line_item_usage_start_date", "TIMESTAMP"),
    ("line_item_usage_end_date", "TIMESTAMP"),
    ("line_item_iam_principal", "VARCHAR"),
    ("line_item_line_item_type", "VARCHAR"),
    ("line_item_product_code", "VARCHAR"),
    ("line_item_usage_type", "VARCHAR"),
    ("line_item_operation", "VARCHAR"),
    ("line_item_usage_account_id", "VARCHAR"),
    ("line_item_usage_amount", "DOUBLE"),
    ("pricing_unit", "VARCHAR"),
    ("line_item_unblended_cost", "DOUBLE"),
    ("line_item_net_unblended_cost", "DOUBLE"),
    ("line_item_currency_code", "VARCHAR"),
    ("product_region_code", "VARCHAR"),
    ("product", "MAP(VARCHAR, VARCHAR)"),
    ("tags", "MAP(VARCHAR, VARCHAR)"),
]

# Translation 1: Trino's element_at(map, key) is the value, NULL for a missing key (and
# element_at(array, i) the i-th element, 1-based, negative from the end); DuckDB's element_at
# returns a list. A temporary macro of the same name shadows DuckDB's with subscript semantics
# (map[key] is the value or NULL, list[i] is 1-based), so the SQL text keeps the call as written.
SESSION_MACROS = [
    "CREATE TEMP MACRO element_at(container, key_or_index) AS container[key_or_index]",
    # Translation 4: Trino's approx_distinct is DuckDB's approx_count_distinct.
    "CREATE TEMP MACRO approx_distinct(x) AS approx_count_distinct(x)",
    # Translation 6: Trino's date_format(ts, format) takes MySQL format specifiers; DuckDB's
    # strftime takes C ones. The specifiers are rewritten in an order where no result is rewritten
    # again (%M month name before %i minutes becomes %M).
    "CREATE TEMP MACRO date_format(ts, fmt) AS strftime(ts, "
    + "".join("replace(" for _ in range(11)) + "fmt, '%M', '%B'), '%W', '%A'), '%i', '%M'), '%s', '%S'), "
    "'%c', '%-m'), '%e', '%-d'), '%k', '%-H'), '%h', '%I'), '%l', '%-I'), '%T', '%H:%M:%S'), "
    "'%r', '%I:%M:%S %p'))",
    # Translation 5: Trino's map subscript m['k'] fails on a missing key (element_at is the NULL-safe
    # form); DuckDB's gives NULL. `map_subscripts` rewrites name['literal'] to this macro.
    "CREATE TEMP MACRO trino_map_subscript(m, k) AS CASE WHEN m IS NULL THEN NULL "
    "WHEN map_contains(m, k) THEN m[k] ELSE error('Key not present in map: ' || k) END",
]


class AthenaEngineError(Exception):
    """A table registration the emulator refuses (answered as HTTP 400)."""


@dataclass(frozen=True)
class Table:
    catalog: str
    database: str
    table: str
    location: str

    def key(self) -> tuple[str, str, str]:
        return (self.catalog.lower(), self.database.lower(), self.table.lower())

    def qualified(self) -> str:
        return f"{self.catalog}.{self.database}.{self.table}".lower()

    def files(self) -> list[tuple[str, dict[str, str]]]:
        """Every data file under the location, with its hive partition values (``key=value``
        folders between the location and the file), in path order. Like Athena, names starting
        with ``_`` or ``.`` (files or folders) are skipped."""
        found = []
        for dirpath, dirnames, names in os.walk(self.location):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(("_", ".")))
            for name in sorted(names):
                if name.startswith(("_", ".")):
                    continue
                path = os.path.join(dirpath, name)
                if not os.path.isfile(path):
                    continue
                parts = os.path.relpath(dirpath, self.location).split(os.sep)
                partitions = dict(p.split("=", 1) for p in parts if "=" in p)
                found.append((path, partitions))
        return found


@dataclass
class EngineResult:
    """What one query execution computed: rows as Athena returns them, or an Athena failure."""

    translated_sql: str
    tables: list[str]
    column_info: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # Athena Row objects, header first
    scanned_bytes: int = 0
    scanned_files: list[str] = field(default_factory=list)
    error: tuple[str, int, int] | None = None  # (reason, ErrorCategory, ErrorType)
    elapsed_ms: int = 0

    def results_answer(self) -> dict[str, Any]:
        """A GetQueryResults answer with every row (the caller pages it)."""
        return {
            "UpdateCount": 0,
            "ResultSet": {"Rows": list(self.rows), "ResultSetMetadata": {"ColumnInfo": self.column_info}},
        }


# ---------------------------------------------------------------------------------------------
# Lexing, parameters, table references
# ---------------------------------------------------------------------------------------------

TOKEN = re.compile(
    r"""(?P<ws>\s+)
      | (?P<comment>--[^\n]*|/\*.*?\*/)
      | (?P<string>'(?:[^']|'')*')
      | (?P<qident>"(?:[^"]|"")*")
      | (?P<ident>[A-Za-z_][A-Za-z0-9_$@]*)
      | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
      | (?P<param>\?)
      | (?P<punct>.)""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int


def lex(sql: str) -> list[Token]:
    return [Token(m.lastgroup or "punct", m.group(), m.start()) for m in TOKEN.finditer(sql)]


def name_of(token: Token) -> str:
    if token.kind == "qident":
        return token.text[1:-1].replace('""', '"')
    return token.text


# Words that end a FROM item (so they are not an alias).
NOT_ALIAS = {
    "where", "group", "order", "limit", "having", "join", "left", "right", "inner", "outer", "full",
    "cross", "on", "using", "union", "except", "intersect", "window", "offset", "fetch", "natural",
    "tablesample", "for", "lateral", "with", "select", "from", "qualify",
}


def table_refs(tokens: list[Token]) -> list[tuple[list[str], int]]:
    """Names after FROM and JOIN (and after commas of a FROM list), as their dotted parts, with
    the offset of each name in the SQL."""
    sig = [t for t in tokens if t.kind not in ("ws", "comment")]
    refs = []
    i = 0
    while i < len(sig):
        word = sig[i].text.lower() if sig[i].kind == "ident" else ""
        if word not in ("from", "join"):
            i += 1
            continue
        i += 1
        while i < len(sig) and sig[i].kind in ("ident", "qident") and not (
            sig[i].kind == "ident" and sig[i].text.lower() in NOT_ALIAS
        ):
            parts, at = [name_of(sig[i])], sig[i].start
            i += 1
            while i + 1 < len(sig) and sig[i].text == "." and sig[i + 1].kind in ("ident", "qident") and len(parts) < 3:
                parts.append(name_of(sig[i + 1]))
                i += 2
            refs.append((parts, at))
            if word != "from":
                break
            # An optional alias, then a comma continues the FROM list.
            if i < len(sig) and sig[i].kind == "ident" and sig[i].text.lower() == "as":
                i += 1
            if i < len(sig) and sig[i].kind in ("ident", "qident") and sig[i].text.lower() not in NOT_ALIAS:
                i += 1
            if i < len(sig) and sig[i].text == ",":
                i += 1
                continue
            break
    return refs


def map_subscripts(tokens: list[Token]) -> list[Token]:
    """Translation 5: ``name['key']`` (a column, possibly qualified, subscripted by a string literal:
    a map lookup, as ``tags['iamPrincipal/team']``) becomes ``trino_map_subscript(name, 'key')``,
    which fails like Trino when the key is missing. ``ARRAY['a']`` (a constructor) is left alone."""
    sig = [i for i, t in enumerate(tokens) if t.kind not in ("ws", "comment")]
    out = list(tokens)
    # Right to left, so the indices of earlier tokens stay valid.
    for n in range(len(sig) - 3, 0, -1):
        bracket, key, close = (tokens[sig[n]], tokens[sig[n + 1]], tokens[sig[n + 2]])
        base_end = tokens[sig[n - 1]]
        if bracket.text != "[" or key.kind != "string" or close.text != "]":
            continue
        if base_end.kind not in ("ident", "qident") or base_end.text.lower() == "array":
            continue
        first = n - 1
        while first >= 2 and tokens[sig[first - 1]].text == "." and tokens[sig[first - 2]].kind in ("ident", "qident"):
            first -= 2
        base = "".join(t.text for t in tokens[sig[first]:sig[n - 1] + 1])
        call = Token("rewritten", f"trino_map_subscript({base}, {key.text})", tokens[sig[first]].start)
        out[sig[first]:sig[n + 2] + 1] = [call]
    return out


def substitute_parameters(tokens: list[Token], parameters: list[str]) -> str:
    """Translation 2: Athena replaces each ``?`` (outside literals and quoted names) by the next
    ExecutionParameters entry, itself SQL text (``'ml'``, ``42``); DuckDB gets the SQL with them
    written in."""
    wanted = sum(1 for t in tokens if t.kind == "param")
    if wanted != len(parameters):
        raise ParameterCountError(wanted, len(parameters))
    values = iter(parameters)
    return "".join(next(values) if t.kind == "param" else t.text for t in tokens)


class ParameterCountError(Exception):
    def __init__(self, wanted: int, given: int):
        super().__init__(f"Incorrect number of parameters: expected {wanted} but found {given}")


def strip_final_semicolon(tokens: list[Token]) -> tuple[list[Token], int]:
    """Drop one trailing ``;``; return the tokens and how many statements they hold."""
    sig = [i for i, t in enumerate(tokens) if t.kind not in ("ws", "comment")]
    if sig and tokens[sig[-1]].text == ";":
        tokens = tokens[:sig[-1]] + tokens[sig[-1] + 1:]
    statements = 1 + sum(1 for t in tokens if t.kind == "punct" and t.text == ";")
    return tokens, statements


# ---------------------------------------------------------------------------------------------
# Results: Athena's names, types and value strings
# ---------------------------------------------------------------------------------------------


def java_double(value: float) -> str:
    """A double as Athena (Java's Double.toString) writes it: ``625.0``, ``0.25``, ``2.5E7``,
    ``1.0E-4`` (scientific below 1e-3 and from 1e7 on)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    shortest = Decimal(repr(abs(value))).normalize()
    if 1e-3 <= abs(value) < 1e7:
        plain = format(shortest, "f")
        return sign + (plain if "." in plain else plain + ".0")
    digits = "".join(map(str, shortest.as_tuple().digits))
    exponent = len(digits) + shortest.as_tuple().exponent - 1
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{sign}{mantissa}E{exponent}"


def athena_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        zone = ""
        if value.tzinfo is not None:
            value, zone = value.astimezone(timezone.utc), " UTC"
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}" + zone
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{athena_text(k)}={athena_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(athena_text(v) for v in value) + "]"
    if isinstance(value, bytes):
        return " ".join(f"{b:02x}" for b in value)
    return str(value)


def cell(value: Any) -> dict[str, str]:
    # Athena leaves VarCharValue out for NULL.
    return {} if value is None else {"VarCharValue": athena_text(value)}


SIMPLE_TYPES = {
    "VARCHAR": ("varchar", 2147483647), "DOUBLE": ("double", 17), "FLOAT": ("real", 9),
    "BIGINT": ("bigint", 19), "HUGEINT": ("bigint", 19), "UBIGINT": ("bigint", 19),
    "UHUGEINT": ("bigint", 19), "UINTEGER": ("bigint", 19), "INTEGER": ("integer", 10),
    "USMALLINT": ("integer", 10), "SMALLINT": ("smallint", 5), "UTINYINT": ("smallint", 5),
    "TINYINT": ("tinyint", 3), "BOOLEAN": ("boolean", 0), "DATE": ("date", 0),
    "TIMESTAMP": ("timestamp", 3), "TIMESTAMP_MS": ("timestamp", 3), "TIMESTAMP_S": ("timestamp", 3),
    "TIMESTAMP_NS": ("timestamp", 3), "TIMESTAMP WITH TIME ZONE": ("timestamp with time zone", 3),
    "TIME": ("time", 3), "BLOB": ("varbinary", 2147483647), "INTERVAL": ("interval day to second", 0),
    "UUID": ("uuid", 0), "NULL": ("unknown", 0), '"NULL"': ("unknown", 0),
}


def athena_type(duckdb_type: str) -> tuple[str, int, int]:
    """(Athena type name, Precision, Scale) for a DuckDB result type."""
    upper = duckdb_type.upper()
    if upper in SIMPLE_TYPES:
        name, precision = SIMPLE_TYPES[upper]
        return name, precision, 0
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", upper)
    if decimal:
        return "decimal", int(decimal.group(1)), int(decimal.group(2))
    if upper.endswith("]"):
        return "array", 0, 0
    if upper.startswith("MAP("):
        return "map", 0, 0
    if upper.startswith("STRUCT("):
        return "row", 0, 0
    return duckdb_type.lower(), 0, 0


def column_info(name: str, duckdb_type: str) -> dict[str, Any]:
    kind, precision, scale = athena_type(duckdb_type)
    # The members Athena sends for every column of a SELECT.
    return {
        "CatalogName": "hive", "SchemaName": "", "TableName": "", "Name": name, "Label": name,
        "Type": kind, "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN",
        "CaseSensitive": kind == "varchar",
    }


SIMPLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def trino_names(ast: dict[str, Any] | None, duckdb_names: list[str]) -> list[str]:
    """Translation 3: result column names as Trino gives them: an alias, or the name of a bare
    column reference, else ``_col<position>`` (0-based); lower case."""
    node = None
    if ast and not ast.get("error") and len(ast.get("statements", [])) == 1:
        node = ast["statements"][0].get("node")
        while isinstance(node, dict) and node.get("type") == "SET_OPERATION_NODE":
            node = node.get("left")
    select = node.get("select_list") if isinstance(node, dict) and node.get("type") == "SELECT_NODE" else None
    if (
        isinstance(select, list)
        and len(select) == len(duckdb_names)
        and not any(e.get("class") in ("STAR", "COLUMNS") for e in select)
    ):
        names = []
        for i, expr in enumerate(select):
            if expr.get("alias"):
                names.append(expr["alias"])
            elif expr.get("class") == "COLUMN_REF" and expr.get("column_names"):
                names.append(expr["column_names"][-1])
            else:
                names.append(f"_col{i}")
        return [n.lower() for n in names]
    return [n.lower() if SIMPLE_NAME.fullmatch(n) else f"_col{i}" for i, n in enumerate(duckdb_names)]


# ---------------------------------------------------------------------------------------------
# Data scanned: the files of the partitions the query reads
# ---------------------------------------------------------------------------------------------


def literal_text(node: Any) -> str | None:
    if not isinstance(node, dict) or node.get("class") != "CONSTANT":
        return None
    literal = node.get("literal") or node.get("value") or {}
    if isinstance(literal, dict):
        for key in ("text", "value"):
            if isinstance(literal.get(key), (str, int, float)):
                return str(literal[key])
    return None


def column_name(node: Any) -> str | None:
    if isinstance(node, dict) and node.get("class") == "COLUMN_REF" and node.get("column_names"):
        return str(node["column_names"][-1]).lower()
    return None


def partition_constraints(where: Any) -> dict[str, set[str]]:
    """Partition values a WHERE pins: top-level AND-ed ``col = 'v'`` and ``col IN ('v', ...)``."""
    found: dict[str, set[str]] = {}
    stack = [where]
    conjuncts = []
    while stack:
        node = stack.pop()
        if isinstance(node, dict) and node.get("type") == "CONJUNCTION_AND":
            stack.extend(node.get("children") or [])
        elif node is not None:
            conjuncts.append(node)
    for node in conjuncts:
        if not isinstance(node, dict):
            continue
        column, values = None, None
        if node.get("type") == "COMPARE_IN":
            children = node.get("children") or []
            column = column_name(children[0]) if children else None
            values = [literal_text(c) for c in children[1:]]
        elif node.get("type") == "COMPARE_EQUAL":
            left, right = node.get("left"), node.get("right")
            column, values = column_name(left), [literal_text(right)]
            if column is None:
                column, values = column_name(right), [literal_text(left)]
        if column and values and all(v is not None for v in values):
            found[column] = found.get(column, set(values)) & set(values)
    return found


def scanned_files(
    ast: dict[str, Any] | None,
    resolve: Callable[[list[str]], tuple[str, str, str]],
    all_files: dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]],
) -> set[str]:
    """The files the query reads: for each registered table a SELECT reads alone, the files of the
    partitions its WHERE pins; for any other reference (joins, unparsed SQL) all its files."""
    if not ast or ast.get("error"):
        return {path for files in all_files.values() for path, _ in files}
    chosen: set[str] = set()

    def base_tables(node: Any) -> list[dict[str, Any]]:
        if not isinstance(node, dict):
            return []
        if node.get("type") == "BASE_TABLE":
            return [node]
        if node.get("type") == "JOIN":
            return base_tables(node.get("left")) + base_tables(node.get("right"))
        return []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        if node.get("type") == "SELECT_NODE":
            tables = base_tables(node.get("from_table"))
            for ref in tables:
                qualified = resolve([p for p in (ref.get("catalog_name"), ref.get("schema_name"), ref.get("table_name")) if p])
                files = all_files.get(qualified)
                if files is None:
                    continue
                keys = {k.lower() for _, partitions in files for k in partitions}
                pins = partition_constraints(node.get("where_clause")) if len(tables) == 1 else {}
                pins = {col: values for col, values in pins.items() if col in keys}
                for path, partitions in files:
                    lowered = {k.lower(): v for k, v in partitions.items()}
                    if all(lowered.get(col) in values for col, values in pins.items()):
                        chosen.add(path)
        for value in node.values():
            walk(value)

    walk(ast.get("statements"))
    return chosen


# ---------------------------------------------------------------------------------------------
# Errors: DuckDB's exceptions as Athena failure reasons
# ---------------------------------------------------------------------------------------------


def error_position(message: str) -> tuple[int, int]:
    match = re.search(r"^LINE (\d+): (.*)\n( *)\^", message, re.MULTILINE)
    if not match:
        return 1, 1
    prefix = len(f"LINE {match.group(1)}: ")
    return int(match.group(1)), max(len(match.group(3)) - prefix, 0) + 1


def athena_failure(err: Exception, missing_table: str | None) -> tuple[str, int, int]:
    message = str(err)
    first = message.split("\n", 1)[0]
    detail = first.split(": ", 1)[1] if ": " in first else first
    line, col = error_position(message)
    at = f"line {line}:{col}: "
    kind = type(err).__name__
    if kind == "ParserException":
        return f"SYNTAX_ERROR: {at}{detail}", USER_ERROR, ERROR_TYPE_SYNTAX
    if kind == "CatalogException":
        if "Table with name" in detail or ("does not exist" in detail and "Function" not in detail):
            table = missing_table
            if table is None:
                found = re.search(r'Table with name "?([^"!]+?)"? does not exist', detail)
                table = found.group(1).lower() if found else "unknown"
            return f"TABLE_NOT_FOUND: {at}Table '{table}' does not exist", USER_ERROR, ERROR_TYPE_USER
        found = re.search(r"Function with name \"?(\w+)", detail)
        if found:
            return f"FUNCTION_NOT_FOUND: {at}Function '{found.group(1)}' not registered", USER_ERROR, ERROR_TYPE_USER
    if kind == "BinderException":
        found = re.search(r'Referenced column "?([^"]+?)"? not found', detail)
        if found:
            return (f"COLUMN_NOT_FOUND: {at}Column '{found.group(1)}' cannot be resolved or requester is not "
                    "authorized to access requested resources", USER_ERROR, ERROR_TYPE_USER)
        if "must appear in the GROUP BY" in detail:
            return f"EXPRESSION_NOT_AGGREGATE: {at}{detail}", USER_ERROR, ERROR_TYPE_USER
        if "No function matches" in detail:
            return f"FUNCTION_NOT_FOUND: {at}{detail}", USER_ERROR, ERROR_TYPE_USER
        return f"TYPE_MISMATCH: {at}{detail}", USER_ERROR, ERROR_TYPE_USER
    if "Key not present in map" in detail:
        return f"INVALID_FUNCTION_ARGUMENT: {detail}", USER_ERROR, ERROR_TYPE_USER
    if kind in ("ConversionException", "OutOfRangeException"):
        return f"INVALID_CAST_ARGUMENT: {detail}", USER_ERROR, ERROR_TYPE_USER
    if kind in ("IOException", "InvalidInputException", "PermissionException"):
        return f"HIVE_BAD_DATA: {detail}", USER_ERROR, ERROR_TYPE_DATA
    return f"GENERIC_USER_ERROR: {detail}", USER_ERROR, ERROR_TYPE_USER


# ---------------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------------


def sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def sql_name(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def table_select(files: list[tuple[str, dict[str, str]]]) -> str:
    """The SELECT behind one table: its files, one read_parquet per partition (the partition
    values as VARCHAR columns, as Athena's string partition keys), unioned by column name."""
    if not files:
        columns = ", ".join(f"CAST(NULL AS {t}) AS {sql_name(n)}" for n, t in EMPTY_TABLE_COLUMNS)
        return f"SELECT {columns}, CAST(NULL AS VARCHAR) AS \"$path\" WHERE false"
    groups: dict[tuple[tuple[str, str], ...], list[str]] = {}
    for path, partitions in files:
        groups.setdefault(tuple(sorted(partitions.items())), []).append(path)
    parts = []
    for partitions, paths in groups.items():
        extra = "".join(f", {sql_string(v)} AS {sql_name(k)}" for k, v in partitions)
        listed = ", ".join(sql_string(p) for p in paths)
        # Athena's "$path" pseudo-column: the file a row came from (an s3:// URI on AWS).
        parts.append(f"SELECT * EXCLUDE (filename), filename AS \"$path\"{extra} FROM read_parquet([{listed}], "
                     "union_by_name = true, hive_partitioning = false, filename = true)")
    return " UNION ALL BY NAME ".join(parts)


def resolve_name(parts: list[str], catalog: str, database: str) -> tuple[str, str, str]:
    """(catalog, database, table) of a 1-3 part table name, in lower case (Glue names are)."""
    full = [catalog, database][: 3 - len(parts)] + list(parts)
    return (full[0].lower(), full[1].lower(), full[2].lower())


class AthenaEngine:
    """Registered tables; one per emulator, cleared by any reset."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tables: dict[tuple[str, str, str], Table] = {}

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        catalog = body.get("catalog", DEFAULT_CATALOG)
        database, table, location = body.get("database"), body.get("table"), body.get("location")
        for what, value in (("catalog", catalog), ("database", database), ("table", table)):
            if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
                raise AthenaEngineError(f"{what} must be a name of letters, digits, _ and -")
        if not isinstance(location, str) or not os.path.isabs(location) or not os.path.isdir(location):
            raise AthenaEngineError('"location" must be an absolute path to an existing local folder')
        entry = Table(catalog, database, table, os.path.abspath(location))
        with self.lock:
            self.tables[entry.key()] = entry
        return self.describe(entry)

    @staticmethod
    def describe(entry: Table) -> dict[str, Any]:
        return {"catalog": entry.catalog, "database": entry.database, "table": entry.table,
                "location": entry.location}

    def list(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.describe(t) for t in self.tables.values()]

    def clear(self) -> None:
        with self.lock:
            self.tables.clear()

    def run(self, sql: Any, parameters: Any, catalog: Any, database: Any) -> EngineResult | None:
        """Run ``sql`` when it names a registered table; None when it names none (moto's turn)."""
        if not isinstance(sql, str):
            return None
        catalog = catalog or DEFAULT_CATALOG
        database = database or DEFAULT_DATABASE
        with self.lock:
            tables = dict(self.tables)
        if not tables:
            return None
        tokens = lex(sql)

        refs = [resolve_name(parts, catalog, database) for parts, _ in table_refs(tokens)]
        named = [tables[r] for r in dict.fromkeys(refs) if r in tables]
        if not named:
            return None
        missing = next((".".join(r) for r in refs if r not in tables), None)
        result = EngineResult(translated_sql=sql, tables=[t.qualified() for t in named])
        started = time.monotonic()
        try:
            tokens, statements = strip_final_semicolon(tokens)
            if statements > 1:
                result.error = (f"SYNTAX_ERROR: line 1:1: Only one sql statement is allowed. Got: {statements}",
                                USER_ERROR, ERROR_TYPE_SYNTAX)
                return result
            params = parameters or []
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                result.error = ("INVALID_PARAMETER_USAGE: line 1:1: ExecutionParameters must be strings",
                                USER_ERROR, ERROR_TYPE_USER)
                return result
            try:
                result.translated_sql = substitute_parameters(map_subscripts(tokens), params)
            except ParameterCountError as err:
                result.error = (f"INVALID_PARAMETER_USAGE: line 1:1: {err}", USER_ERROR, ERROR_TYPE_USER)
                return result
            try:
                self._execute(result, tables, catalog, database, missing)
            except Exception as err:  # noqa: BLE001 - an emulator bug shows as a FAILED query, not a 500
                result.error = (f"GENERIC_INTERNAL_ERROR: emulator: {type(err).__name__}: {err}", 1, 200)
        finally:
            result.elapsed_ms = int((time.monotonic() - started) * 1000)
        return result

    def _execute(self, result: EngineResult, tables: dict[tuple[str, str, str], Table], catalog: str,
                 database: str, missing: str | None) -> None:
        import duckdb  # imported here: the emulator starts without it when no table is registered

        files = {t.key(): t.files() for t in tables.values()}
        connection = duckdb.connect()
        try:
            self._setup(connection, tables, files, catalog, database)
        except duckdb.Error as err:
            # A view reads its files' schemas when created: an unreadable file fails here.
            connection.close()
            result.error = athena_failure(err, missing)
            return
        try:
            try:
                ast = json.loads(connection.execute("SELECT json_serialize_sql(?)", [result.translated_sql]).fetchone()[0])
            except duckdb.Error:
                ast = None
            try:
                cursor = connection.execute(result.translated_sql)
                description = cursor.description or []
                rows = cursor.fetchall() if description else []
            except duckdb.Error as err:
                result.error = athena_failure(err, missing)
                return
            names = trino_names(ast, [d[0] for d in description])
            result.column_info = [column_info(n, str(d[1])) for n, d in zip(names, description)]
            result.rows = [{"Data": [{"VarCharValue": n} for n in names]}] if description else []
            result.rows.extend({"Data": [cell(v) for v in row]} for row in rows)

            named = {t.key(): files[t.key()] for t in tables.values() if t.qualified() in result.tables}
            read = scanned_files(ast, lambda parts: resolve_name(parts, catalog, database), named)
            result.scanned_files = sorted(read)
            result.scanned_bytes = sum(os.path.getsize(p) for p in read if os.path.exists(p))
        finally:
            connection.close()

    @staticmethod
    def _setup(connection: Any, tables: dict[tuple[str, str, str], Table],
               files: dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]], catalog: str, database: str) -> None:
        """Macros, one view per registered table (in an attached catalog of its name), the query's
        catalog and database as the default, and the sandbox."""
        for statement in SESSION_MACROS:
            connection.execute(statement)
        attached = set()
        for key, entry in tables.items():
            if key[0] not in attached:
                attached.add(key[0])
                connection.execute(f"ATTACH ':memory:' AS {sql_name(entry.catalog)}")
            connection.execute(f"CREATE SCHEMA IF NOT EXISTS {sql_name(entry.catalog)}.{sql_name(entry.database)}")
            connection.execute(
                f"CREATE VIEW {sql_name(entry.catalog)}.{sql_name(entry.database)}.{sql_name(entry.table)} "
                f"AS {table_select(files[key])}"
            )
        if any(k[:2] == (catalog.lower(), database.lower()) for k in tables):
            # Unqualified names resolve in the query's Catalog and Database.
            connection.execute(f"USE {sql_name(catalog)}.{sql_name(database)}")
        # The query may read the registered locations and nothing else on this machine.
        allowed = sorted({t.location.rstrip(os.sep) + os.sep for t in tables.values()})
        connection.execute(f"SET allowed_directories = [{', '.join(sql_string(a) for a in allowed)}]")
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
