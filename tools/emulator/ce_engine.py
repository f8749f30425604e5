"""Cost Explorer answers computed from CUR 2.0 line items, for the emulator (aws_emulator.py).

moto 5.2.5 answers GetCostAndUsage from a queue of seeded results, so a test built on it proves
only how rows are shaped. This module answers GetCostAndUsage and GetDimensionValues from real
CUR 2.0 line items instead (an export folder of Parquet files, or lines posted inline), with the
request semantics of the AWS API reference (API_GetCostAndUsage, API_Expression, API_TagValues,
API_DimensionValues), so that the server's figures can be checked against an independent engine.

The module knows nothing of moto or HTTP: ``CeEngine`` takes request bodies as dicts and returns
answer dicts, raising ``CeError`` (an AWS error code and message) for requests AWS would refuse.
The hooks in aws_emulator.py route the calls here while line items are loaded.

Everything is computed in Python with ``Decimal`` sums of each line's amount as written in the
Parquet file (the shortest decimal form of the double), so the answer does not depend on the
order lines are read in, and shares no code with the Athena engine (athena_engine.py, DuckDB SQL).
See README.md ("Cost Explorer computed from line items") for the semantics and how they differ
from AWS.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any, Callable, Iterable

# GetCostAndUsage pages once an answer would hold more groups than this (settable by test).
DEFAULT_PAGE_GROUPS = 500
# At most two GroupBy entries (API reference: "You can group by up to two different types").
MAX_GROUP_BY = 2
# Amounts are summed exactly and written with at most this many decimals, trailing zeros dropped.
AMOUNT_DECIMALS = Decimal("1e-10")
DEFAULT_CURRENCY = "USD"

# CUR line_item_line_item_type -> Cost Explorer RECORD_TYPE value (anything else is unchanged).
RECORD_TYPES = {
    "Usage": "Usage",
    "Credit": "Credit",
    "Refund": "Refund",
    "Tax": "Tax",
    "Fee": "Fee",
    "RIFee": "Recurring reservation fee",
    "DiscountedUsage": "DiscountedUsage",
    "SavingsPlanCoveredUsage": "SavingsPlanCoveredUsage",
    "SavingsPlanNegation": "SavingsPlanNegation",
    "SavingsPlanRecurringFee": "SavingsPlanRecurringFee",
    "SavingsPlanUpfrontFee": "SavingsPlanUpfrontFee",
    "EdpDiscount": "Enterprise Discount Program Discount",
    "PrivateRateDiscount": "Private Rate Card Discount",
    "BundledDiscount": "Bundled Discount",
    "SppDiscount": "Solution Provider Program Discount",
}

# The Cost Explorer dimensions answered, and the CUR column each one reads.
DIMENSIONS: dict[str, Callable[["LineItem"], str]] = {
    "SERVICE": lambda line: line.service,
    "SERVICE_CODE": lambda line: line.product_code,
    "RECORD_TYPE": lambda line: RECORD_TYPES.get(line.line_type, line.line_type),
    "USAGE_TYPE": lambda line: line.usage_type,
    "OPERATION": lambda line: line.operation,
    "LINKED_ACCOUNT": lambda line: line.account,
    # Cost Explorer writes "NoRegion" for lines without a region (global services, tax).
    "REGION": lambda line: line.region or "NoRegion",
}

# Metric -> how a line contributes to it. AmortizedCost, BlendedCost and NetAmortizedCost have no
# CUR columns of their own here: they are the unblended (net unblended) cost.
COST_METRICS: dict[str, Callable[["LineItem"], Decimal]] = {
    "UnblendedCost": lambda line: line.unblended,
    "AmortizedCost": lambda line: line.unblended,
    "BlendedCost": lambda line: line.unblended,
    "NetUnblendedCost": lambda line: line.unblended if line.net is None else line.net,
    "NetAmortizedCost": lambda line: line.unblended if line.net is None else line.net,
}
USAGE_METRICS: dict[str, Callable[["LineItem"], Decimal]] = {
    "UsageQuantity": lambda line: line.usage,
    "NormalizedUsageAmount": lambda line: line.usage,
}
METRICS = {**COST_METRICS, **USAGE_METRICS}
EXPRESSION_OPERATORS = ("And", "Or", "Not", "Dimensions", "Tags", "CostCategories")
VALUE_MATCH_OPTIONS = {"EQUALS", "STARTS_WITH", "ENDS_WITH", "CONTAINS"}
MATCH_OPTIONS = VALUE_MATCH_OPTIONS | {"ABSENT", "CASE_SENSITIVE", "CASE_INSENSITIVE", "GREATER_THAN_OR_EQUAL"}
GROUP_TYPES = ("DIMENSION", "TAG", "COST_CATEGORY")


class CeError(Exception):
    """A request Cost Explorer refuses: an AWS error code (ValidationException, ...) and message."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def validation(message: str) -> CeError:
    return CeError("ValidationException", message)


class LoadError(Exception):
    """Line items the engine cannot load (a bad path, a manifest naming a missing file)."""


# ---------------------------------------------------------------------------------------------
# Line items
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineItem:
    """The columns of one CUR 2.0 line that Cost Explorer answers from."""

    day: date  # line_item_usage_start_date, UTC
    line_type: str
    product_code: str
    usage_type: str
    operation: str
    account: str
    region: str
    service: str  # product['servicename']
    currency: str
    usage: Decimal
    unblended: Decimal
    net: Decimal | None
    tags: dict[str, str] = field(hash=False, compare=False)
    cost_categories: dict[str, str] = field(hash=False, compare=False)


def to_decimal(value: Any, column: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise LoadError(f"{column}: {value!r} is not a number")
    if isinstance(value, float):
        # The shortest decimal that reads back as this double: what the file "says".
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as err:
        raise LoadError(f"{column}: {value!r} is not a number") from err


def to_day(value: Any) -> date:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as err:
            raise LoadError(f"line_item_usage_start_date: {value!r} is not a date or timestamp") from err
        return to_day(parsed)
    raise LoadError(f"line_item_usage_start_date: {value!r} is not a date or timestamp")


def to_map(value: Any, column: str) -> dict[str, str]:
    """A CUR string map: a dict (DuckDB, JSON) or a list of (key, value) pairs (pyarrow)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = [(pair["key"], pair["value"]) if isinstance(pair, dict) else tuple(pair) for pair in value]
    else:
        raise LoadError(f"{column}: expected a map, got {value!r}")
    return {str(k): ("" if v is None else str(v)) for k, v in items}


def text(value: Any) -> str:
    return "" if value is None else str(value)


def line_item(row: dict[str, Any]) -> LineItem:
    """One line from a row keyed by CUR 2.0 column names; optional columns may be absent."""
    if row.get("line_item_usage_start_date") is None:
        raise LoadError(f"a line has no line_item_usage_start_date: {row!r}"[:300])
    product = to_map(row.get("product"), "product")
    return LineItem(
        day=to_day(row["line_item_usage_start_date"]),
        line_type=text(row.get("line_item_line_item_type")) or "Usage",
        product_code=text(row.get("line_item_product_code")),
        usage_type=text(row.get("line_item_usage_type")),
        operation=text(row.get("line_item_operation")),
        account=text(row.get("line_item_usage_account_id")),
        region=text(row.get("product_region_code")),
        service=product.get("servicename", ""),
        currency=text(row.get("line_item_currency_code")) or DEFAULT_CURRENCY,
        usage=to_decimal(row.get("line_item_usage_amount"), "line_item_usage_amount") or Decimal(0),
        unblended=to_decimal(row.get("line_item_unblended_cost"), "line_item_unblended_cost") or Decimal(0),
        net=to_decimal(row.get("line_item_net_unblended_cost"), "line_item_net_unblended_cost"),
        tags=to_map(row.get("tags"), "tags"),
        cost_categories=to_map(row.get("cost_category"), "cost_category"),
    )


PERIOD_PREFIX = "BILLING_PERIOD="


def export_files(root: str) -> tuple[list[str], dict[str, Any]]:
    """The Parquet files of a local CUR 2.0 export that count, and how they were chosen.

    Per billing period: when ``metadata/BILLING_PERIOD=YYYY-MM/`` holds a ``*Manifest.json``
    (the newest by mtime), exactly its ``dataFiles`` (``s3://bucket/prefix/export/data/...``,
    rebased onto ``root``); else every ``.parquet`` file under ``data/BILLING_PERIOD=YYYY-MM/``.
    ``root`` is the export folder (holding ``data/``), or its ``data/`` folder itself.
    """
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise LoadError(f"{root} is not a folder")
    data = os.path.join(root, "data")
    if not os.path.isdir(data) and os.path.basename(root) == "data":
        data, root = root, os.path.dirname(root)
    if not os.path.isdir(data):
        raise LoadError(f"{root} has no data/ folder (expected data/BILLING_PERIOD=YYYY-MM/...)")
    metadata = os.path.join(root, "metadata")
    periods = sorted(
        {name[len(PERIOD_PREFIX):] for base in (data, metadata) if os.path.isdir(base)
         for name in os.listdir(base) if name.startswith(PERIOD_PREFIX)}
    )
    files: list[str] = []
    info: dict[str, Any] = {}
    for period in periods:
        manifests = [
            m for m in glob.glob(os.path.join(glob.escape(metadata), f"{PERIOD_PREFIX}{glob.escape(period)}", "*Manifest.json"))
            if os.path.isfile(m)
        ]
        if manifests:
            manifest = max(manifests, key=lambda m: (os.path.getmtime(m), m))
            chosen = manifest_files(root, manifest)
            info[period] = {"manifest": os.path.relpath(manifest, root), "files": len(chosen)}
        else:
            folder = os.path.join(data, f"{PERIOD_PREFIX}{period}")
            chosen = sorted(
                os.path.join(dirpath, name)
                for dirpath, _, names in os.walk(folder)
                for name in names
                if name.endswith(".parquet")
            )
            info[period] = {"manifest": None, "files": len(chosen)}
        files.extend(chosen)
    return files, info


def manifest_files(root: str, manifest: str) -> list[str]:
    try:
        with open(manifest, encoding="utf-8") as handle:
            doc = json.load(handle)
    except (OSError, ValueError) as err:
        raise LoadError(f"cannot read manifest {manifest}: {err}") from err
    uris = doc.get("dataFiles") if isinstance(doc, dict) else None
    if not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise LoadError(f"manifest {manifest} has no dataFiles list")
    files = []
    for uri in uris:
        # s3://bucket/<prefix>/<export>/data/BILLING_PERIOD=YYYY-MM/...: keep data/... on.
        at = uri.rfind("/data/" + PERIOD_PREFIX)
        if at < 0:
            at = uri.rfind("/data/")
        if at < 0:
            raise LoadError(f"manifest {manifest}: {uri} has no /data/ part")
        local = os.path.join(root, *uri[at + 1:].split("/"))
        if not os.path.isfile(local):
            raise LoadError(f"manifest {manifest} names {uri}, but {local} does not exist")
        files.append(local)
    return files


def read_parquet_rows(files: list[str]) -> Iterable[dict[str, Any]]:
    if not files:
        return []
    import duckdb  # imported here: the emulator starts without it when no line items are loaded

    connection = duckdb.connect()
    try:
        cursor = connection.execute("SELECT * FROM read_parquet(?, union_by_name = true, hive_partitioning = false)", [files])
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        connection.close()


# ---------------------------------------------------------------------------------------------
# Filter expressions
# ---------------------------------------------------------------------------------------------

Predicate = Callable[[LineItem], bool]


def value_matcher(values: list[str], options: list[str], what: str) -> Callable[[str], bool]:
    unknown = [o for o in options if o not in MATCH_OPTIONS]
    if unknown:
        raise validation(f"{what}: unknown MatchOptions {unknown}; valid: {sorted(MATCH_OPTIONS)}")
    if "GREATER_THAN_OR_EQUAL" in options:
        raise validation(f"{what}: GREATER_THAN_OR_EQUAL is not supported by the emulator")
    modes = [o for o in options if o in VALUE_MATCH_OPTIONS] or ["EQUALS"]
    if len(modes) > 1:
        raise validation(f"{what}: at most one of {sorted(VALUE_MATCH_OPTIONS)} in MatchOptions")
    mode = modes[0]
    fold = "CASE_INSENSITIVE" in options
    wanted = [v.lower() if fold else v for v in values]

    def matches(actual: str) -> bool:
        if fold:
            actual = actual.lower()
        if mode == "EQUALS":
            return actual in wanted
        if mode == "STARTS_WITH":
            return any(actual.startswith(v) for v in wanted)
        if mode == "ENDS_WITH":
            return any(actual.endswith(v) for v in wanted)
        return any(v in actual for v in wanted)  # CONTAINS

    return matches


def string_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise validation(f"{what} must be a list of strings")
    return value


def dimension_predicate(spec: Any) -> Predicate:
    if not isinstance(spec, dict):
        raise validation("Dimensions must be an object with Key and Values")
    key = spec.get("Key")
    if key not in DIMENSIONS:
        raise validation(f"Dimension {key!r} is not supported by the emulator; supported: {sorted(DIMENSIONS)}")
    values = string_list(spec.get("Values"), "Dimensions.Values")
    if not values:
        raise validation(f"Dimensions {key}: Values must not be empty")
    options = string_list(spec.get("MatchOptions"), "Dimensions.MatchOptions")
    if "ABSENT" in options:
        raise validation(f"Dimensions {key}: ABSENT applies to Tags and CostCategories only")
    matches = value_matcher(values, options, f"Dimensions {key}")
    read = DIMENSIONS[key]
    return lambda line: matches(read(line))


def map_predicate(spec: Any, kind: str, read: Callable[[LineItem], dict[str, str]]) -> Predicate:
    """Tags or CostCategories: a line has the key when its map holds it with a non-empty value.

    No Values means ABSENT, as the TagValues reference says; a "" among the
    Values also matches lines without the key; ABSENT in MatchOptions matches them too.
    """
    if not isinstance(spec, dict):
        raise validation(f"{kind} must be an object with Key and Values")
    key = spec.get("Key")
    if not isinstance(key, str) or not key:
        raise validation(f"{kind}: Key is required")
    values = string_list(spec.get("Values"), f"{kind}.Values")
    options = string_list(spec.get("MatchOptions"), f"{kind}.MatchOptions")
    absent_ok = "ABSENT" in options or "" in values or not values
    named = [v for v in values if v]
    matches = value_matcher(named, options, f"{kind} {key}") if named else (lambda _actual: False)

    def predicate(line: LineItem) -> bool:
        actual = read(line).get(key, "")
        if not actual:
            return absent_ok
        return matches(actual)

    return predicate


def compile_expression(expr: Any, path: str = "Filter") -> Predicate:
    if not isinstance(expr, dict):
        raise validation(f"{path} must be an Expression object")
    present = [op for op in EXPRESSION_OPERATORS if expr.get(op) is not None]
    unknown = sorted(set(expr) - set(EXPRESSION_OPERATORS))
    if unknown:
        raise validation(f"{path}: unknown members {unknown}")
    if len(present) != 1:
        # AWS: each Expression can have only one operator; the service returns an error otherwise.
        raise validation(
            f"{path}: Expression has {'no' if not present else 'more than one'} root operator "
            f"({', '.join(present) or 'none'}); exactly one of And, Or, Not, Dimensions, Tags, "
            "CostCategories is allowed"
        )
    op = present[0]
    value = expr[op]
    if op in ("And", "Or"):
        if not isinstance(value, list) or not value:
            raise validation(f"{path}.{op} must be a non-empty list of Expressions")
        parts = [compile_expression(e, f"{path}.{op}[{i}]") for i, e in enumerate(value)]
        if op == "And":
            return lambda line: all(p(line) for p in parts)
        return lambda line: any(p(line) for p in parts)
    if op == "Not":
        inner = compile_expression(value, f"{path}.Not")
        return lambda line: not inner(line)
    if op == "Dimensions":
        return dimension_predicate(value)
    if op == "Tags":
        return map_predicate(value, "Tags", lambda line: line.tags)
    return map_predicate(value, "CostCategories", lambda line: line.cost_categories)


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def parse_day(value: Any, what: str) -> date:
    if not isinstance(value, str):
        raise validation(f"{what} must be a YYYY-MM-DD date")
    try:
        return date.fromisoformat(value)
    except ValueError as err:
        raise validation(f"{what} {value!r} is not a valid YYYY-MM-DD date") from err


def time_period(params: dict[str, Any]) -> tuple[date, date]:
    period = params.get("TimePeriod")
    if not isinstance(period, dict):
        raise validation("TimePeriod is required")
    start = parse_day(period.get("Start"), "TimePeriod.Start")
    end = parse_day(period.get("End"), "TimePeriod.End")
    if start >= end:
        raise validation("Start date (and hour) should be before end date (and hour)")
    return start, end


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def buckets(start: date, end: date, granularity: str) -> list[tuple[date, date]]:
    out = []
    cursor = start
    while cursor < end:
        step = cursor + timedelta(days=1) if granularity == "DAILY" else min(next_month(cursor), end)
        out.append((cursor, step))
        cursor = step
    return out


def format_amount(value: Decimal) -> str:
    """An amount as Cost Explorer writes it: plain decimal, at most 10 decimals, no trailing zeros."""
    rounded = value.quantize(AMOUNT_DECIMALS, rounding=ROUND_HALF_EVEN)
    if rounded == 0:
        return "0"
    return format(rounded.normalize(), "f")


def group_key_reader(spec: Any, index: int) -> tuple[dict[str, str], Callable[[LineItem], str]]:
    if not isinstance(spec, dict):
        raise validation(f"GroupBy[{index}] must be an object with Type and Key")
    kind, key = spec.get("Type"), spec.get("Key")
    if kind not in GROUP_TYPES:
        raise validation(f"GroupBy[{index}].Type must be one of {', '.join(GROUP_TYPES)}")
    if not isinstance(key, str) or not key:
        raise validation(f"GroupBy[{index}].Key is required")
    if kind == "DIMENSION":
        if key not in DIMENSIONS:
            raise validation(f"Dimension {key!r} is not supported by the emulator; supported: {sorted(DIMENSIONS)}")
        return {"Type": kind, "Key": key}, DIMENSIONS[key]
    if kind == "TAG":
        # AWS writes "<key>$<value>", "<key>$" for lines without the tag.
        return {"Type": kind, "Key": key}, lambda line: f"{key}${line.tags.get(key, '')}"
    return {"Type": kind, "Key": key}, lambda line: f"{key}${line.cost_categories.get(key, '')}"


def request_fingerprint(params: dict[str, Any]) -> str:
    stripped = {k: v for k, v in params.items() if k != "NextPageToken"}
    return hashlib.sha256(json.dumps(stripped, sort_keys=True).encode()).hexdigest()[:16]


def encode_token(fingerprint: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"ce-engine:{fingerprint}:{offset}".encode()).decode()


def decode_token(token: Any, fingerprint: str) -> int:
    if token is None or token == "":
        return 0
    try:
        kind, minted_for, value = base64.urlsafe_b64decode(str(token).encode()).decode().split(":")
        offset = int(value)
    except ValueError as err:
        raise CeError("InvalidNextTokenException", "The pagination token is invalid") from err
    if kind != "ce-engine" or offset <= 0:
        raise CeError("InvalidNextTokenException", "The pagination token is invalid")
    if minted_for != fingerprint:
        raise CeError(
            "RequestChangedException",
            "Your request parameters changed between pages. Try again with the old parameters or "
            "without a pagination token.",
        )
    return offset


@dataclass
class Sums:
    metrics: dict[str, Decimal]
    currencies: set[str] = field(default_factory=set)


class CeEngine:
    """Loaded line items and the page size; one per emulator, cleared by any reset."""

    def __init__(self) -> None:
        # werkzeug serves each request on its own thread; hold the lock to touch the fields.
        self.lock = threading.Lock()
        self.items: list[LineItem] | None = None
        self.source: dict[str, Any] = {}
        self.page_groups = DEFAULT_PAGE_GROUPS

    # --- control ---------------------------------------------------------------------------

    def load(self, body: dict[str, Any]) -> dict[str, Any]:
        if ("cur" in body) == ("line_items" in body):
            raise LoadError('expected {"cur": "/abs/path/to/export"} or {"line_items": [{...}, ...]}')
        if "cur" in body:
            path = body["cur"]
            if not isinstance(path, str) or not os.path.isabs(path):
                raise LoadError('"cur" must be an absolute path to a local CUR 2.0 export folder')
            files, periods = export_files(path)
            items = [line_item(row) for row in read_parquet_rows(files)]
            source = {"cur": path, "periods": periods, "files": [os.path.relpath(f, path) for f in files]}
        else:
            rows = body["line_items"]
            if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
                raise LoadError('"line_items" must be a list of objects keyed by CUR 2.0 column names')
            items = [line_item(row) for row in rows]
            source = {"inline": True}
        with self.lock:
            self.items = items
            self.source = source
        return {"line_items": len(items), **source}

    def clear(self) -> None:
        with self.lock:
            self.items = None
            self.source = {}
            self.page_groups = DEFAULT_PAGE_GROUPS

    def set_page_groups(self, groups: Any) -> None:
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise LoadError('expected {"groups": <integer >= 1>}')
        with self.lock:
            self.page_groups = groups

    def status(self) -> dict[str, Any]:
        with self.lock:
            loaded = self.items is not None
            return {"loaded": loaded, "line_items": len(self.items) if loaded else 0,
                    "page_groups": self.page_groups, **self.source}

    def clear_items(self) -> None:
        with self.lock:
            self.items = None
            self.source = {}

    def snapshot(self) -> tuple[list[LineItem], int] | None:
        with self.lock:
            return None if self.items is None else (self.items, self.page_groups)

    # --- GetCostAndUsage -------------------------------------------------------------------

    def get_cost_and_usage(self, params: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """The answer computed from the line items; None when none are loaded (moto answers)."""
        loaded = self.snapshot()
        if loaded is None:
            return None
        items, page_groups = loaded
        start, end = time_period(params)
        granularity = params.get("Granularity")
        if granularity == "HOURLY":
            raise validation("Hourly granularity is not supported by the emulator (use DAILY or MONTHLY)")
        if granularity not in ("DAILY", "MONTHLY"):
            raise validation("Granularity must be DAILY or MONTHLY")
        metrics = string_list(params.get("Metrics"), "Metrics")
        if not metrics:
            raise validation("Metrics must not be empty")
        unknown = [m for m in metrics if m not in METRICS]
        if unknown:
            raise validation(f"Invalid metrics {unknown}; valid: {sorted(METRICS)}")
        metrics = list(dict.fromkeys(metrics))
        group_by = params.get("GroupBy") or []
        if not isinstance(group_by, list):
            raise validation("GroupBy must be a list")
        if len(group_by) > MAX_GROUP_BY:
            raise validation(f"GroupBy can have at most {MAX_GROUP_BY} elements, got {len(group_by)}")
        definitions, readers = [], []
        for i, spec in enumerate(group_by):
            definition, reader = group_key_reader(spec, i)
            definitions.append(definition)
            readers.append(reader)
        predicate = compile_expression(params["Filter"]) if params.get("Filter") is not None else None
        fingerprint = request_fingerprint(params)
        offset = decode_token(params.get("NextPageToken"), fingerprint)

        spans = buckets(start, end, granularity)
        starts = [s for s, _ in spans]
        sums: list[dict[tuple[str, ...], Sums]] = [{} for _ in spans]
        for line in items:
            if not start <= line.day < end:
                continue
            if predicate is not None and not predicate(line):
                continue
            index = bisect_right(starts, line.day) - 1
            keys = tuple(read(line) for read in readers)
            entry = sums[index].get(keys)
            if entry is None:
                entry = sums[index][keys] = Sums({m: Decimal(0) for m in metrics})
            for m in metrics:
                entry.metrics[m] += METRICS[m](line)
            entry.currencies.add(line.currency)

        costs_asked = any(m in COST_METRICS for m in metrics)
        this_month = date(now.year, now.month, 1)

        def metric_values(entry: Sums | None, where: str) -> dict[str, dict[str, str]]:
            currencies = sorted(entry.currencies) if entry else []
            if costs_asked and len(currencies) > 1:
                # AWS converts to one currency; test data must not mix silently.
                raise validation(
                    f"{where} mixes currencies {', '.join(currencies)}; the emulator does not convert "
                    "currencies (filter or group the line items so that each group has one)"
                )
            unit = currencies[0] if currencies else DEFAULT_CURRENCY
            out = {}
            for m in metrics:
                amount = entry.metrics[m] if entry else Decimal(0)
                out[m] = {"Amount": format_amount(amount), "Unit": unit if m in COST_METRICS else "N/A"}
            return out

        results = []
        for (b_start, b_end), groups in zip(spans, sums):
            label = {"Start": b_start.isoformat(), "End": b_end.isoformat()}
            entry: dict[str, Any] = {"TimePeriod": label}
            if readers:
                entry["Total"] = {}
                entry["Groups"] = [
                    {"Keys": list(keys), "Metrics": metric_values(groups[keys], f"group {list(keys)} of {label}")}
                    for keys in sorted(groups)
                ]
            else:
                entry["Total"] = metric_values(groups.get(()), f"the total of {label}")
                entry["Groups"] = []
            entry["Estimated"] = b_end > this_month
            results.append(entry)

        answer: dict[str, Any] = {}
        if definitions:
            answer["GroupDefinitions"] = definitions
        if offset and offset >= sum(len(r["Groups"]) for r in results):
            # Only a page with groups left has a token; the line items changed, or it is forged.
            raise CeError("InvalidNextTokenException", "The pagination token is invalid")
        page, next_offset = page_results(results, offset, page_groups) if readers else (results, None)
        answer["ResultsByTime"] = page
        answer["DimensionValueAttributes"] = []
        if next_offset is not None:
            answer["NextPageToken"] = encode_token(fingerprint, next_offset)
        return answer

    # --- GetDimensionValues ----------------------------------------------------------------

    def get_dimension_values(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The values in the line items; None when none are loaded (the seeded values answer)."""
        loaded = self.snapshot()
        if loaded is None:
            return None
        items = loaded[0]
        start, end = time_period(params)
        dimension = params.get("Dimension")
        if dimension not in DIMENSIONS:
            raise validation(f"Dimension {dimension!r} is not supported by the emulator; supported: {sorted(DIMENSIONS)}")
        predicate = compile_expression(params["Filter"]) if params.get("Filter") is not None else None
        search = params.get("SearchString")
        read = DIMENSIONS[dimension]
        values = sorted({
            read(line) for line in items
            if start <= line.day < end and (predicate is None or predicate(line))
        })
        if search:
            values = [v for v in values if search.lower() in v.lower()]
        values = [v for v in values if v]
        max_results = params.get("MaxResults")
        if max_results is not None and (not isinstance(max_results, int) or max_results < 1):
            raise validation("MaxResults must be a positive integer")
        fingerprint = request_fingerprint(params)
        offset = decode_token(params.get("NextPageToken"), fingerprint)
        end_at = len(values) if max_results is None else offset + max_results
        chunk = values[offset:end_at]
        answer: dict[str, Any] = {
            "DimensionValues": [{"Value": v, "Attributes": {}} for v in chunk],
            "ReturnSize": len(chunk),
            "TotalSize": len(values),
        }
        if end_at < len(values):
            answer["NextPageToken"] = encode_token(fingerprint, end_at)
        return answer


def page_results(results: list[dict[str, Any]], offset: int, size: int) -> tuple[list[dict[str, Any]], int | None]:
    """One page of at most ``size`` groups, counted over all buckets from ``offset``.

    A bucket whose groups straddle two pages appears on both, with its share of the groups (as
    AWS does); a bucket without groups goes on the page where its position falls.
    """
    total = sum(len(r["Groups"]) for r in results)
    stop = offset + size
    page: list[dict[str, Any]] = []
    position = 0
    for result in results:
        groups = result["Groups"]
        if not groups:
            # An empty bucket at the position where the page ends belongs to the next page,
            # unless this is the last page.
            if offset <= position < stop or (position == total and offset <= position <= stop and stop >= total):
                page.append(dict(result))
            continue
        first, last = position, position + len(groups)
        share = groups[max(offset - first, 0):max(min(stop - first, len(groups)), 0)]
        if share:
            page.append({**result, "Groups": share})
        position = last
    return page, (stop if stop < total else None)
