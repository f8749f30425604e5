"""CloudWatch Logs Insights `stats` queries over moto's stored log events.

moto 5.2.5 answers StartQuery/GetQueryResults with its own small query engine, which has no
`stats`. This module evaluates the subset of the Logs Insights query language
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax.html) that
bedrock-cost-mcp sends over model invocation logs, on the JSON messages of the log group's events:

    filter <term> [and <term> ...] [| filter ...]
    | stats <agg> as <name>, ... by <key> [as <name>], ...

- terms: `field = "text"`, `field = number`, `ispresent(field)`, `not ispresent(field)`;
- aggregates: `sum(field)`, `count(*)`, `count(field)`, `max(field)`, `min(field)`; `@timestamp`
  is the event's timestamp; a field is a dotted path into the JSON message (`identity.arn`);
- keys: `bin(<n>m|h|d)` over `@timestamp`, or a field.

As Logs Insights answers: each result row is a list of {"field", "value"} with every value a
string; `bin` values and `max(@timestamp)` print as `YYYY-MM-DD HH:MM:SS.mmm` (UTC); an aggregate
with no value in a group is left out of that row; statistics give records scanned (events in the
time range), records matched (after the filters) and bytes scanned (the messages' bytes). A
query outside this subset raises InsightsError, which the emulator answers as
MalformedQueryException, so a test never passes on a query the engine did not understand.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

_TERM_EQ = re.compile(r'^([@\w.]+)\s*=\s*(".*"|-?\d+(?:\.\d+)?)$')
_TERM_PRESENT = re.compile(r"^(not\s+)?ispresent\(\s*([@\w.]+)\s*\)$")
_AGG = re.compile(r"^(sum|count|max|min)\(\s*(\*|[@\w.]+)\s*\)\s+as\s+(\w+)$")
_BIN = re.compile(r"^bin\(\s*(\d+)\s*([mhd])\s*\)(?:\s+as\s+(\w+))?$")
_KEY = re.compile(r"^([@\w.]+)(?:\s+as\s+(\w+))?$")


class InsightsError(Exception):
    """A query outside the supported subset."""


@dataclass
class Query:
    filters: list[tuple[str, str, Any]] = field(default_factory=list)  # (kind, field, value)
    aggs: list[tuple[str, str, str]] = field(default_factory=list)  # (function, field, name)
    keys: list[tuple[str, Any, str]] = field(default_factory=list)  # ("bin", seconds, name) | ("field", path, name)


def _split_top(text: str, sep: str) -> list[str]:
    """Split on `sep` outside double quotes and parentheses."""
    parts, depth, quoted, cur = [], 0, False, []
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        if not quoted and depth == 0 and text.startswith(sep, i):
            parts.append("".join(cur))
            cur = []
            i += len(sep)
            continue
        cur.append(c)
        i += 1
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def parse(text: str) -> Query:
    q = Query()
    for command in _split_top(text, "|"):
        if command.startswith("filter "):
            for term in _split_top(command[len("filter "):], " and "):
                m = _TERM_EQ.match(term)
                if m:
                    raw = m.group(2)
                    value: Any = json.loads(raw) if raw.startswith('"') else float(raw)
                    q.filters.append(("eq", m.group(1), value))
                    continue
                m = _TERM_PRESENT.match(term)
                if m:
                    q.filters.append(("absent" if m.group(1) else "present", m.group(2), None))
                    continue
                raise InsightsError(f"unsupported filter term: {term}")
        elif command.startswith("stats "):
            body = command[len("stats "):]
            aggs_text, _, keys_text = body.partition(" by ")
            for agg in _split_top(aggs_text, ","):
                m = _AGG.match(agg)
                if not m:
                    raise InsightsError(f"unsupported aggregate: {agg}")
                q.aggs.append((m.group(1), m.group(2), m.group(3)))
            for key in _split_top(keys_text, ",") if keys_text else []:
                m = _BIN.match(key)
                if m:
                    unit = {"m": 60, "h": 3600, "d": 86400}[m.group(2)]
                    q.keys.append(("bin", int(m.group(1)) * unit, m.group(3) or f"bin({m.group(1)}{m.group(2)})"))
                    continue
                m = _KEY.match(key)
                if not m:
                    raise InsightsError(f"unsupported group key: {key}")
                q.keys.append(("field", m.group(1), m.group(2) or m.group(1)))
        else:
            raise InsightsError(f"unsupported command: {command}")
    if not q.aggs:
        raise InsightsError("only stats queries are emulated")
    return q


def _get(doc: Any, path: str, ts_ms: int) -> Any:
    if path == "@timestamp":
        return ts_ms
    cur = doc
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _time_text(ms: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M:%S.") + f"{int(ms % 1000):03d}"


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def run(q: Query, events: list[tuple[int, str]], start_s: int, end_s: int, limit: int) -> tuple[list, dict]:
    """Evaluate over (timestamp ms, message) events with start_s <= timestamp/1000 <= end_s."""
    scanned = matched = nbytes = 0
    groups: dict[tuple, dict[str, Any]] = {}
    for ts, message in events:
        if not (start_s * 1000 <= ts < (end_s + 1) * 1000):
            continue
        scanned += 1
        nbytes += len(message.encode())
        try:
            doc = json.loads(message)
        except ValueError:
            doc = {"@message": message}
        ok = True
        for kind, path, value in q.filters:
            got = _get(doc, path, ts)
            if kind == "eq":
                ok = got == value
            elif kind == "present":
                ok = got is not None
            else:
                ok = got is None
            if not ok:
                break
        if not ok:
            continue
        matched += 1
        key = []
        for kind, arg, _ in q.keys:
            if kind == "bin":
                key.append((ts // 1000 // arg) * arg * 1000)
            else:
                got = _get(doc, arg, ts)
                key.append(None if got is None else (got if isinstance(got, str) else json.dumps(got)))
        state = groups.setdefault(tuple(key), {})
        for fn, path, name in q.aggs:
            got = 1 if (fn == "count" and path == "*") else _get(doc, path, ts)
            if got is None:
                continue
            if fn == "count":
                state[name] = state.get(name, 0) + 1
                continue
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                continue
            if fn == "sum":
                state[name] = state.get(name, 0) + got
            elif fn == "max":
                state[name] = max(state.get(name, got), got)
            else:
                state[name] = min(state.get(name, got), got)
    rows = []
    for key, state in sorted(groups.items(), key=lambda kv: [str(k) for k in kv[0]]):
        row = []
        for (kind, _, name), value in zip(q.keys, key):
            if value is None:
                continue
            row.append({"field": name, "value": _time_text(value) if kind == "bin" else value})
        for fn, path, name in q.aggs:
            if name not in state:
                continue
            v = state[name]
            row.append({"field": name, "value": _time_text(v) if path == "@timestamp" else _number_text(v)})
        rows.append(row)
    stats = {"recordsMatched": float(matched), "recordsScanned": float(scanned), "bytesScanned": float(nbytes)}
    return rows[:limit], stats
