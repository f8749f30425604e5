#!/usr/bin/env python3
"""Our embedded CUR engine (DataFusion, via the `spend` CLI) against DuckDB on the same SQL and files.

The question: Bedrock spend for one month grouped by principal and model. Steps:

1. Data: reuse `--data DIR` when its truth.json has `usage_rows == --rows`, else write it with
   `bedrock-cost-mcp generate-cur` (timed; the time is kept in DIR/bench-generate.json).
2. Verification round (not timed): run our CLI once with the CUR debug log on and take the SQL
   it ran (`CUR query sql=...`); run that SQL in DuckDB over the same Parquet files; check
   totals (ours = DuckDB's Usage rows = truth.json by_month) and per-principal totals (ours
   through `serve` + `tools/call bedrock_spend` group_by principal, every page) to the cent.
3. Baselines: the CLI on a tiny export (process start + shaping) and `python -c "import duckdb"`.
4. A server (`serve` on stdio with `--cur-rollup-dir WARM`) is asked the question once and builds
   the month's rollup in the background (the summary later questions read,
   src/sources/cur_rollup.rs); one-shot commands never build one.
5. `--warmup` unrecorded rounds, then `--runs` recorded rounds, alternating ours (three ways) / DuckDB:
   - ours: `bedrock-cost-mcp --cur DIR --no-cur-rollups spend --start M --end M+1 --by principal,model
     --top 500 --json` (the export scanned, as every question did before rollups);
   - ours_cold: the same with `--cur-rollup-dir <fresh empty folder>`: a one-shot question about a
     month nobody summarised yet (rollups on, none there: it scans, and builds nothing);
   - ours_warm: the same with `--cur-rollup-dir WARM`: any later question about the month;
   - DuckDB: a fresh `python -c` process: import duckdb, connect (threads = os.cpu_count()),
     CREATE VIEW cur AS SELECT * FROM read_parquet('DIR/data/*/*.parquet', hive_partitioning=true),
     then execute + fetchall the same SQL (timed inside the process and printed).
   Wall time is spawn to exit (os.wait4); peak RSS is ru_maxrss of that process.

Needs the tools venv (duckdb, pyarrow): tools/setup-venv.sh. Linux (ru_maxrss in KiB).

Example:
  tools/.venv/bin/python tools/bench/cur_vs_duckdb.py --json /tmp/cur_vs_duckdb.json
  tools/.venv/bin/python tools/bench/cur_vs_duckdb.py --rows 200000 --runs 3 --data /tmp/bench-small
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Shared helpers from the sibling benchmark (same folder, so on sys.path when run as a script).
from startup import PROTOCOL_VERSION, LineReader, RunFailed, fmt, host_line, kill_group, pct, ratio, send
from harness import resolve_binary

REPO = Path(__file__).resolve().parents[2]
BENCH_ROOT = Path("/var/tmp/bedrock-cost-mcp-bench")
SIDE_FILE = "bench-generate.json"  # generation spec and time, next to truth.json
TINY_ROWS = 1_000
CENT = 0.005  # "to the cent": absolute difference below half a cent
SQL_LOG_RE = re.compile(r"CUR query sql=(.*)$")
# identifier['key'] (a map lookup, DataFusion syntax); keys are validated tag keys, never quoted.
MAP_ACCESS_RE = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\['([^'\\]*)'\]")

# Runs in a fresh interpreter for every DuckDB measurement: argv = glob, sql, threads, mode.
# mode "time": print timings; "verify": also sum the result rows (after the timed part) the
# way the comparison needs, so the benchmark process itself never holds the rows (see rss_floor_mib).
DUCKDB_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import duckdb
t1 = time.perf_counter()
glob, sql, threads, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
con = duckdb.connect(config={"threads": threads})
con.execute("SET enable_progress_bar = false")
con.execute("CREATE VIEW cur AS SELECT * FROM read_parquet('" + glob.replace("'", "''") + "', hive_partitioning=true)")
t2 = time.perf_counter()
con.execute(sql)
rows = con.fetchall()
t3 = time.perf_counter()
columns = [d[0] for d in con.description]
out = {
    "import_ms": (t1 - t0) * 1000,
    "setup_ms": (t2 - t1) * 1000,
    "query_ms": (t3 - t2) * 1000,
    "result_rows": len(rows),
    "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
    "version": duckdb.__version__,
}
if mode == "verify":
    out["columns"] = columns
    need = ("line_item_iam_principal", "line_item_line_item_type", "cost")
    if all(c in columns for c in need):
        ip, it, ic = (columns.index(c) for c in need)
        usage = other = 0.0
        by_principal = {}
        for r in rows:
            cost = r[ic] or 0.0
            if r[it] == "Usage":
                usage += cost
                # Lines without a principal (NULL or ''): ours shows them as one "no_principal"
                # row (AgentCore compute, provisioned throughput, Guardrails).
                k = r[ip] or "no_principal"
                by_principal[k] = by_principal.get(k, 0.0) + cost
            else:
                other += cost
        out.update(usage_total=usage, other_total=other, by_principal=by_principal)
print(json.dumps(out))
"""

# Run once: versions, and what DuckDB's m['k'] returns on a MAP (a value, or a list in older DuckDB).
PROBE_CHILD = r"""
import json, duckdb, pyarrow
con = duckdb.connect()
kind = con.execute("SELECT typeof(MAP {'k': 'v'}['k'])").fetchall()[0][0]
print(json.dumps({"duckdb": duckdb.__version__, "pyarrow": pyarrow.__version__, "map_lookup_type": kind}))
"""

# Parquet footers: files, bytes, rows overall and in one month's partition. argv = data dir, month.
FACTS_CHILD = r"""
import json, sys
from pathlib import Path
import pyarrow.parquet as pq
data, month = Path(sys.argv[1]), sys.argv[2]
files = sorted((data / "data").glob("*/*.parquet"))
facts = {"files": len(files), "bytes": 0, "disk_bytes": 0, "rows": 0, "month_files": 0, "month_rows": 0,
         "months": sorted({f.parent.name.split("=", 1)[-1] for f in files})}
for f in files:
    st = f.stat()
    n = pq.ParquetFile(f).metadata.num_rows
    facts["bytes"] += st.st_size
    facts["disk_bytes"] += st.st_blocks * 512
    facts["rows"] += n
    if f.parent.name == "BILLING_PERIOD=" + month:
        facts["month_files"] += 1
        facts["month_rows"] += n
print(json.dumps(facts))
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def warn_loudly(lines: list[str]) -> None:
    bar = "!" * 78
    log(bar)
    for line in lines:
        log(f"!! {line}")
    log(bar)


class Mismatch(Exception):
    pass


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    wall_ms: float
    peak_rss_kib: int
    exit_status: int
    stdout: bytes
    stderr: bytes
    timed_out: bool


def run_proc(argv: list[str], env: dict[str, str], timeout: float) -> Proc:
    """Spawn, wait (os.wait4, no polling), measure wall time spawn -> exit and ru_maxrss.

    stdout/stderr go to unlinked temporary files, so neither pipe can fill and stall the child.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env,
                                start_new_session=True)
        timed_out = threading.Event()

        def on_timeout() -> None:
            timed_out.set()
            kill_group(proc.pid)

        timer = threading.Timer(timeout, on_timeout)
        timer.start()
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
        except BaseException:
            kill_group(proc.pid)
            raise
        finally:
            timer.cancel()
        wall_ms = (time.perf_counter() - t0) * 1000
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping again
        out.seek(0)
        err.seek(0)
        return Proc(wall_ms, rusage.ru_maxrss, proc.returncode, out.read(), err.read(), timed_out.is_set())


def proc_failure(p: Proc, what: str) -> str | None:
    if p.timed_out:
        return f"{what}: timed out (killed)"
    if p.exit_status != 0:
        tail = p.stderr.decode(errors="replace").strip().splitlines()[-5:]
        return f"{what}: exit {p.exit_status}: " + " | ".join(tail)
    return None


def clean_env() -> dict[str, str]:
    """Our environment without BEDROCK_COST_MCP_* settings (--demo, --cur, log filters ...)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("BEDROCK_COST_MCP_")}


# --------------------------------------------------------------------------- our side


# Our three ways to answer (see --help): the export scanned every time; the first question after a
# delivery with month rollups on (an empty rollup folder: summarise the month, then answer from the
# summary); a later question (the folder already holds the month's rollup).
OUR_MODES = ("ours", "ours_cold", "ours_warm")
MODE_LABELS = {
    "ours": "ours, scan: `spend --no-cur-rollups` process",
    "ours_cold": "ours, one-shot on a month without rollup (scans, builds nothing)",
    "ours_warm": "ours, later question (reads the rollup)",
}


def spend_argv(binary: str, data: Path, month_start: dt.date, month_end: dt.date,
               rollups: str | None = None) -> list[str]:
    """`rollups`: the rollup folder, or None for --no-cur-rollups (scan the export)."""
    flags = ["--no-cur-rollups"] if rollups is None else ["--cur-rollup-dir", rollups]
    return [binary, "--cur", str(data), *flags, "spend", "--start", month_start.isoformat(),
            "--end", month_end.isoformat(), "--by", "principal,model", "--top", "500", "--json"]


def mcp_all_pages(binary: str, data: Path, env: dict[str, str], arguments: dict, timeout: float) -> dict:
    """`serve` over stdio, `tools/call bedrock_spend` following next_cursor; the first answer with all rows."""
    proc = subprocess.Popen([binary, "--cur", str(data), "--no-cur-rollups", "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, bufsize=0,
                            start_new_session=True)
    reader = LineReader(proc.stdout.fileno())
    deadline = time.perf_counter() + timeout

    def request(req_id: int, method: str, params: dict) -> dict:
        send(proc.stdin.fileno(), {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        while True:
            line = reader.readline(deadline)
            if line is None:
                raise RunFailed(f"serve: stdout closed before the {method} response")
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict) or msg.get("id") != req_id or "method" in msg:
                continue
            if "error" in msg:
                raise RunFailed(f"serve: {method} returned an error: {json.dumps(msg['error'])[:300]}")
            return msg["result"]

    try:
        request(1, "initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                  "clientInfo": {"name": "cur-vs-duckdb-bench", "version": "1.0.0"}})
        send(proc.stdin.fileno(), {"jsonrpc": "2.0", "method": "notifications/initialized"})
        answer = None
        cursor = None
        for req_id in range(2, 1000):
            args = dict(arguments, **({"cursor": cursor} if cursor else {}))
            result = request(req_id, "tools/call", {"name": "bedrock_spend", "arguments": args})
            if result.get("isError"):
                text = " ".join(c.get("text", "") for c in result.get("content", []))
                raise RunFailed(f"serve: bedrock_spend failed: {text[:500]}")
            page = result.get("structuredContent")
            if not isinstance(page, dict):
                raise RunFailed("serve: bedrock_spend answer has no structuredContent")
            if answer is None:
                answer = page
            else:
                answer["rows"].extend(page["rows"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if len(answer["rows"]) != answer["row_count"]:
            raise RunFailed(f"serve: pages hold {len(answer['rows'])} rows, row_count says {answer['row_count']}")
        return answer
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            kill_group(proc.pid)
            proc.wait()
        proc.stdout.close()


# --------------------------------------------------------------------------- DuckDB side


def python_json(python: str, code: str, *argv: str) -> dict:
    """Run a snippet in the venv python; its last stdout line is JSON."""
    r = subprocess.run([python, "-c", code, *argv], capture_output=True, env=clean_env())
    if r.returncode != 0:
        raise SystemExit(f"{python} -c ... failed: {r.stderr.decode(errors='replace').strip()[-2000:]}\n"
                         f"(needs the tools venv with duckdb and pyarrow: tools/setup-venv.sh)")
    return json.loads(r.stdout.decode().strip().splitlines()[-1])


def duckdb_sql(sql: str, probe: dict) -> tuple[str, list[str]]:
    """Our SQL as DuckDB needs it, and what was changed (nothing, ideally)."""
    adapted: list[str] = []
    if re.search(r"\$\d+", sql):
        raise SystemExit("the captured SQL has $n parameters; this benchmark passes none (no filters)")
    kind = probe["map_lookup_type"]
    if kind.upper() != "VARCHAR":  # older DuckDB: m['k'] is a list of matches
        sql, n = MAP_ACCESS_RE.subn(r"element_at(\1, '\2')[1]", sql)
        if n:
            adapted.append(f"map lookup m['k'] -> element_at(m, 'k')[1] ({n}x): DuckDB {probe['duckdb']} "
                           f"returns {kind} for m['k']")
    return sql, adapted


def duckdb_argv(python: str, glob: str, sql: str, threads: int, mode: str = "time") -> list[str]:
    return [python, "-c", DUCKDB_CHILD, glob, sql, str(threads), mode]


def rss_floor_mib() -> float:
    """This process's peak RSS. Linux keeps the pre-exec peak in a child's ru_maxrss (exec_mmap
    saves the old mm's high-water mark), so no child can report less than this."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- data


def first_of_last_month(today: dt.date) -> dt.date:
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def next_month(d: dt.date) -> dt.date:
    return (d.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def gen_spec(args) -> dict:
    return {"rows": args.rows, "start": args.start.isoformat(), "days": args.days,
            "principals": args.principals, "seed": args.seed}


def ensure_data(args, binary: str, env: dict[str, str]) -> dict:
    """Reuse or generate the export; returns {"generated": bool, "generate_s": float|None, ...}."""
    data: Path = args.data
    truth_path = data / "truth.json"
    side_path = data / SIDE_FILE
    spec = gen_spec(args)
    if truth_path.exists():
        truth = json.loads(truth_path.read_text())
        if truth.get("usage_rows") != args.rows:
            raise SystemExit(f"{data} holds {truth.get('usage_rows')} usage rows, not --rows {args.rows}; "
                             f"remove it (rm -rf {shlex.quote(str(data))}) or pass another --data")
        side = json.loads(side_path.read_text()) if side_path.exists() else None
        if side is None:
            log(f"reusing {data} (rows match; no {SIDE_FILE}, so start/days/principals/seed are unchecked)")
            return {"generated": False, "generate_s": None, "spec": None}
        if side.get("spec") != spec:
            raise SystemExit(f"{data} was generated with {side.get('spec')}, this run wants {spec}; "
                             f"remove it (rm -rf {shlex.quote(str(data))}) or pass another --data")
        log(f"reusing {data} (generated {side.get('generated_at')} in {side.get('generate_s', 0):.1f} s)")
        return {"generated": False, "generate_s": side.get("generate_s"), "spec": spec,
                "generated_at": side.get("generated_at"), "generate_argv": side.get("argv"),
                "generate_binary": side.get("binary")}
    if (data / "data").exists() and any((data / "data").iterdir()):
        raise SystemExit(f"{data}/data holds files but there is no truth.json (interrupted generation?); "
                         f"remove it (rm -rf {shlex.quote(str(data))}) or pass another --data")
    argv = [binary, "generate-cur", "--out", str(data), "--rows", str(args.rows), "--start", spec["start"],
            "--days", str(args.days), "--principals", str(args.principals), "--seed", str(args.seed)]
    log(f"generating {args.rows:,} rows into {data}: {shlex.join(argv)}")
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    generate_s = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"generate-cur failed (exit {r.returncode}): {r.stderr.decode(errors='replace')}")
    log(r.stderr.decode(errors="replace").strip() + f" ({generate_s:.1f} s)")
    now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    side_path.write_text(json.dumps({"spec": spec, "generate_s": generate_s, "generated_at": now,
                                     "binary": binary, "argv": argv}, indent=2) + "\n")
    return {"generated": True, "generate_s": generate_s, "spec": spec, "generated_at": now, "generate_argv": argv,
            "generate_binary": binary}


# --------------------------------------------------------------------------- verification


def close(a: float, b: float) -> bool:
    return abs(a - b) < CENT


def verify(args, binary: str, env: dict[str, str], glob: str, threads: int, month_start: dt.date,
           month_end: dt.date, truth: dict, probe: dict) -> dict:
    """The untimed round: capture our SQL, run it in DuckDB, compare totals. Raises Mismatch."""
    month = month_start.strftime("%Y-%m")
    # 1. Ours, with the CUR debug log on: the answer and the SQL it ran.
    dbg_env = dict(env, BEDROCK_COST_MCP_LOG="bedrock_cost_mcp::sources::cur=debug")
    p = run_proc(spend_argv(binary, args.data, month_start, month_end), dbg_env, args.timeout)
    if err := proc_failure(p, "ours (verification run)"):
        raise SystemExit(err)
    sqls = [m.group(1).strip() for line in p.stderr.decode(errors="replace").splitlines()
            if (m := SQL_LOG_RE.search(line))]
    if len(set(sqls)) != 1:
        raise SystemExit(f"expected one 'CUR query sql=' debug line from our CLI, found {len(sqls)}: {sqls[:3]}")
    sql = sqls[0]
    ours = json.loads(p.stdout)
    log(f"ours (verification): {p.wall_ms:.0f} ms, total {ours['total']}, {ours['row_count']} rows")

    # 2. DuckDB on the same SQL; the child sums its rows (Usage total, per principal, the rest).
    dsql, adapted = duckdb_sql(sql, probe)
    p = run_proc(duckdb_argv(args.python, glob, dsql, threads, "verify"), env, args.timeout)
    if err := proc_failure(p, "DuckDB (verification run)"):
        raise SystemExit(err)
    info = json.loads(p.stdout.decode().strip().splitlines()[-1])
    log(f"DuckDB (verification): {p.wall_ms:.0f} ms, {info['result_rows']} result rows, "
        f"DuckDB {info['version']}, threads {info['threads']}")
    if int(info["threads"]) != threads:
        raise SystemExit(f"DuckDB runs with {info['threads']} threads, wanted {threads}")
    if "usage_total" not in info:
        raise SystemExit(f"DuckDB result columns {info['columns']} lack line_item_iam_principal, "
                         f"line_item_line_item_type or cost")
    duck_usage = info["usage_total"]
    duck_other = info["other_total"]
    duck_by_principal: dict[str, float] = info["by_principal"]

    # 3. Our per-principal totals, every page, through the MCP tool (the CLI prints one page of
    #    200 rows, and principal,model at top 500 folds the rest into "others").
    by_p = mcp_all_pages(binary, args.data, env,
                         {"period": {"start": month_start.isoformat(), "end": month_end.isoformat()},
                          "group_by": ["principal"], "top_n": 500, "source": "cur"}, args.timeout)
    ours_by_principal: dict[str, float] = {}
    ours_others = 0.0
    for r in by_p["rows"]:
        if r["others"]:
            ours_others += r["amount"]
        else:
            key = r["keys"]["principal"]
            ours_by_principal[key] = ours_by_principal.get(key, 0.0) + r["amount"]

    problems: list[str] = []
    checks: list[str] = []
    if not ours.get("reconciliation", {}).get("reconciled"):
        problems.append(f"our answer does not reconcile: {ours.get('reconciliation')}")
    if not close(ours["total"], duck_usage):
        problems.append(f"total: ours {ours['total']:.4f} vs DuckDB Usage rows {duck_usage:.4f}")
    checks.append(f"total ${ours['total']:,.2f} = DuckDB Usage rows ${duck_usage:,.2f}")
    if not close(by_p["total"], ours["total"]):
        problems.append(f"total: group_by principal {by_p['total']:.4f} vs principal,model {ours['total']:.4f}")
    want = truth.get("by_month", {}).get(month)
    if want is None:
        problems.append(f"truth.json by_month has no {month} (months: {sorted(truth.get('by_month', {}))})")
    elif not close(ours["total"], want):
        problems.append(f"total: ours {ours['total']:.4f} vs truth.json by_month[{month}] {want:.4f}")
    else:
        checks.append(f"truth.json by_month[{month}] ${want:,.2f}")
    adj = sum(a["amount"] for a in ours.get("adjustments", []))
    if not close(adj, duck_other):
        problems.append(f"adjustments: ours {adj:.4f} vs DuckDB non-Usage rows {duck_other:.4f}")
    max_diff = 0.0
    for principal, amount in ours_by_principal.items():
        d = duck_by_principal.get(principal)
        if d is None:
            problems.append(f"principal {principal}: ours {amount:.4f}, absent from DuckDB's rows")
            continue
        max_diff = max(max_diff, abs(amount - d))
        if not close(amount, d):
            problems.append(f"principal {principal}: ours {amount:.4f} vs DuckDB {d:.4f}")
    rest = sum(v for k, v in duck_by_principal.items() if k not in ours_by_principal)
    if not close(ours_others, rest):
        problems.append(f"principals folded into others: ours {ours_others:.4f} vs DuckDB {rest:.4f} "
                        f"({len(duck_by_principal) - len(ours_by_principal)} principals)")
    checks.append(f"{len(ours_by_principal)} principals to the cent (max difference ${max_diff:.6f})"
                  + (f", others ${ours_others:,.2f}" if ours_others else ""))
    # Whole export inside this month: the generator's per-principal truth applies as well.
    if set(truth.get("by_month", {})) == {month} and truth.get("by_principal"):
        want_p = dict(truth["by_principal"])
        if truth.get("no_principal"):
            want_p["no_principal"] = truth["no_principal"]
        bad = [p for p, v in want_p.items() if not close(duck_by_principal.get(p, 0.0), v)]
        if bad or len(want_p) != len(duck_by_principal):
            problems.append(f"truth.json by_principal: {len(bad)} principal(s) differ from DuckDB, "
                            f"{len(want_p)} vs {len(duck_by_principal)} principals")
        else:
            checks.append("= truth.json by_principal")
    if problems:
        log("MISMATCH between our engine, DuckDB and truth.json:")
        for x in problems[:30]:
            log(f"  - {x}")
        if len(problems) > 30:
            log(f"  ... {len(problems) - 30} more")
        raise Mismatch(f"{len(problems)} mismatch(es)")
    log("verification: " + "; ".join(checks))
    return {"sql": sql, "duckdb_sql": dsql, "adapted": adapted, "duckdb_version": info["version"],
            "duckdb_result_rows": info["result_rows"], "total": ours["total"], "row_count": ours["row_count"],
            "duck_usage": duck_usage, "principals": len(ours_by_principal), "max_principal_diff": max_diff,
            "checks": checks}


# --------------------------------------------------------------------------- runs and stats


@dataclass
class Run:
    engine: str  # "ours" or "duckdb"
    round: int  # 0-based, warmup rounds included
    warmup: bool
    ok: bool = False
    error: str | None = None
    wall_ms: float | None = None  # spawn -> exit
    engine_ms: float | None = None  # ours: = wall_ms (whole CLI); duckdb: execute + fetchall
    peak_rss_kib: int | None = None
    exit_status: int | None = None
    detail: dict = field(default_factory=dict)


def prime_rollup(binary: str, data: Path, rollups: str, month_start: dt.date, month_end: dt.date,
                 env: dict, timeout: float) -> bool:
    """Have a server build the month's rollup: `serve` on stdio, one bedrock_spend call about the
    month (answered from the export; the rollup is then built in the background), then wait for
    the rollup file. One-shot commands never build rollups."""
    argv = [binary, "--cur", str(data), "--cur-rollup-dir", rollups, "--cur-rollup-min-mb", "0",
            "--cur-prebuild-months", "0", "serve"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    msgs = [
        {"jsonrpc": "2.0", "id": 1, "method": "initialize",
         "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "bench", "version": "1"}}},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
         "params": {"name": "bedrock_spend", "arguments": {
             "period": {"start": month_start.isoformat(), "end": month_end.isoformat()},
             "group_by": ["principal", "model"], "top_n": 500}}},
    ]
    try:
        for m in msgs:
            proc.stdin.write((json.dumps(m) + "\n").encode())
            proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(Path(rollups).glob("*.parquet")):
                return True
            time.sleep(0.2)
        return False
    finally:
        proc.kill()
        proc.wait()


def run_ours(args, binary, env, month_start, month_end, expect_total, run: Run,
             rollups: str | None = None) -> None:
    p = run_proc(spend_argv(binary, args.data, month_start, month_end, rollups), env, args.timeout)
    run.wall_ms, run.peak_rss_kib, run.exit_status = p.wall_ms, p.peak_rss_kib, p.exit_status
    if err := proc_failure(p, "ours"):
        run.error = err
        return
    try:
        out = json.loads(p.stdout)
    except ValueError as e:
        run.error = f"ours: stdout is not JSON: {e}"
        return
    if not isinstance(out.get("total"), (int, float)) or not close(out["total"], expect_total):
        run.error = f"ours: total {out.get('total')} differs from the verified {expect_total}"
        return
    run.engine_ms = p.wall_ms
    run.detail = {"total": out["total"], "row_count": out["row_count"]}
    run.ok = True


def run_duckdb(args, glob, dsql, threads, expect_rows, run: Run) -> None:
    p = run_proc(duckdb_argv(args.python, glob, dsql, threads), clean_env(), args.timeout)
    run.wall_ms, run.peak_rss_kib, run.exit_status = p.wall_ms, p.peak_rss_kib, p.exit_status
    if err := proc_failure(p, "DuckDB"):
        run.error = err
        return
    try:
        info = json.loads(p.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError) as e:
        run.error = f"DuckDB: no timing line on stdout: {e}"
        return
    if info["result_rows"] != expect_rows:
        run.error = f"DuckDB: {info['result_rows']} result rows, the verification run had {expect_rows}"
        return
    run.engine_ms = info["query_ms"]
    run.detail = info
    run.ok = True


def summarize(runs: list[Run]) -> dict:
    ok = [r for r in runs if r.ok]
    out: dict = {"runs": len(runs), "ok": len(ok), "failed": len(runs) - len(ok)}
    if not ok:
        return out
    wall = [r.wall_ms for r in ok]
    eng = [r.engine_ms for r in ok]
    rss = [r.peak_rss_kib / 1024 for r in ok]
    out.update(wall_ms_median=statistics.median(wall), wall_ms_p90=pct(wall, 90), wall_ms_min=min(wall),
               wall_ms_max=max(wall), engine_ms_median=statistics.median(eng), engine_ms_p90=pct(eng, 90),
               peak_rss_mib_median=statistics.median(rss), peak_rss_mib_max=max(rss))
    for k in ("import_ms", "setup_ms"):
        vals = [r.detail[k] for r in ok if k in r.detail]
        if vals:
            out[f"{k}_median"] = statistics.median(vals)
    return out


def baseline(argv: list[str], env: dict[str, str], timeout: float, n: int = 3) -> dict:
    """One unrecorded run, then n recorded: median wall time and peak RSS."""
    procs = []
    for i in range(n + 1):
        p = run_proc(argv, env, timeout)
        if err := proc_failure(p, shlex.join(argv[:3])):
            raise SystemExit(f"baseline failed: {err}")
        if i:
            procs.append(p)
    return {"argv": argv, "runs": n, "wall_ms_median": statistics.median(p.wall_ms for p in procs),
            "peak_rss_mib_median": statistics.median(p.peak_rss_kib / 1024 for p in procs)}


# --------------------------------------------------------------------------- output


def shown_command(argv: list[str]) -> str:
    py = sys.executable
    try:
        rel = os.path.relpath(py)
        py = rel if not rel.startswith("..") else py
    except ValueError:
        pass
    return shlex.join([py, *argv])


def mib(n: float) -> str:
    return f"{n / 1024 / 1024:,.1f} MiB"


def markdown(ctx: dict) -> str:
    a, s_o, s_d = ctx["args"], ctx["summary"]["ours"], ctx["summary"]["duckdb"]
    facts, gen, ver, base = ctx["facts"], ctx["gen"], ctx["verify"], ctx["baselines"]
    L = []
    if ctx["debug"]:
        L += ["> **DEBUG BUILD** (`" + ctx["binary"] + "`): these numbers are not to be recorded; "
              "build with `cargo build --release`.", ""]
    L += ["```sh", ctx["command"], "```", ""]
    L.append(f"Host: {host_line()}; load average {ctx['load_start']:.2f} at start, {ctx['load_end']:.2f} at end; "
             f"{ctx['date']}. Runs: {a.runs} recorded per engine after {a.warmup} warmup round(s) and one "
             f"verification round, alternating ours / DuckDB.")
    L.append("")
    L.append(f"Ours: `{ctx['binary']}` ({'DEBUG' if ctx['debug'] else 'release'} build), DataFusion target "
             f"partitions = available_parallelism. DuckDB {ver['duckdb_version']} (Python {ctx['py_version']}), "
             f"threads = {ctx['threads']} (os.cpu_count()).")
    L.append("")
    gen_txt = ("generated in this run" if gen["generated"] else f"generated {gen.get('generated_at') or '(unknown)'}")
    gen_time = f"{gen['generate_s']:.1f} s" if gen.get("generate_s") is not None else "unknown (reused, no record)"
    L.append(f"Data: `{a.data}`: {facts['files']} Parquet file(s), {mib(facts['bytes'])} "
             f"({mib(facts['disk_bytes'])} on disk), {facts['rows']:,} rows "
             f"({ctx['truth']['usage_rows']:,} Usage + {facts['rows'] - ctx['truth']['usage_rows']:,} adjustment), "
             f"billing months {', '.join(facts['months'])}; the queried month {ctx['month']} holds "
             f"{facts['month_rows']:,} rows in {facts['month_files']} file(s). {a.principals} principals, "
             f"{a.days} days from {a.start}, seed {a.seed}. Generation: {gen_time} ({gen_txt}"
             + (f" by `{gen['generate_binary']} generate-cur`" if gen.get("generate_binary") else "") + ").")
    L.append("")
    L.append(f"Query: {ctx['month_start']} to {ctx['month_end']} (one month) grouped by principal and model. "
             f"Ours: `{shlex.join(ctx['spend_argv_shown'])}`. DuckDB: the SQL our engine ran (below), "
             f"{'unchanged' if not ver['adapted'] else 'adapted: ' + '; '.join(ver['adapted'])}, on "
             f"`read_parquet('{ctx['glob']}', hive_partitioning=true)`, {ver['duckdb_result_rows']:,} result rows.")
    L.append("")
    L.append("Agreement (verification round): " + "; ".join(ver["checks"]) + ".")
    L.append("")
    L.append("| engine | ok/runs | wall median ms | wall p90 ms | engine median ms | engine p90 ms "
             "| peak RSS median MiB | peak RSS max MiB |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(MODE_LABELS[m], ctx["summary"][m]) for m in OUR_MODES]
    for name, s in (*rows, ("DuckDB: `python -c` process", s_d)):
        L.append("| " + " | ".join([
            name, f"{s['ok']}/{s['runs']}", fmt(s.get("wall_ms_median")), fmt(s.get("wall_ms_p90")),
            fmt(s.get("engine_ms_median")), fmt(s.get("engine_ms_p90")), fmt(s.get("peak_rss_mib_median")),
            fmt(s.get("peak_rss_mib_max"))]) + " |")
    L.append("")
    L.append("- wall = spawn to exit of the process (os.wait4). Engine for ours = the same whole CLI process "
             "(process start, opening the export, the query, shaping the answer in Rust, printing JSON); engine "
             "for DuckDB = `execute` + `fetchall` timed inside the process (no interpreter start, import, "
             "connect or view creation). Peak RSS = ru_maxrss of the process; DuckDB's includes the Python "
             "interpreter. p90 interpolates linearly.")
    for m in ("ours_cold", "ours_warm"):
        s_m = ctx["summary"][m]
        L.append(f"- {MODE_LABELS[m]} / DuckDB: wall median {ratio(s_m.get('wall_ms_median'), s_d.get('wall_ms_median'))}, "
                 f"peak RSS median {ratio(s_m.get('peak_rss_mib_median'), s_d.get('peak_rss_mib_median'))} "
                 f"(`--cur-rollup-dir DIR`: {'a fresh empty folder per run' if m == 'ours_cold' else 'a folder holding the month rollup'}).")
    L.append(f"- Ratios ours (scan)/DuckDB (above 1: ours slower or larger): wall median "
             f"{ratio(s_o.get('wall_ms_median'), s_d.get('wall_ms_median'))}; engine median (ours whole CLI vs "
             f"DuckDB execute+fetchall) {ratio(s_o.get('engine_ms_median'), s_d.get('engine_ms_median'))}; "
             f"peak RSS median {ratio(s_o.get('peak_rss_mib_median'), s_d.get('peak_rss_mib_median'))}.")
    bt, bp = base["ours_tiny"], base["python_duckdb"]
    est = (s_o["wall_ms_median"] - bt["wall_ms_median"]) if "wall_ms_median" in s_o else None
    L.append(f"- Ours on a tiny export ({TINY_ROWS:,} rows, same query): {bt['wall_ms_median']:.1f} ms, "
             f"{bt['peak_rss_mib_median']:.1f} MiB (median of {bt['runs']}): process start + open + shaping. "
             f"Ours median minus that: {fmt(est)} ms"
             + (f" (vs DuckDB execute+fetchall: {ratio(est, s_d.get('engine_ms_median'))})." if est else "."))
    L.append(f"- `python -c \"import duckdb\"`: {bp['wall_ms_median']:.1f} ms, {bp['peak_rss_mib_median']:.1f} MiB "
             f"(median of {bp['runs']}). Inside the timed DuckDB processes (medians): `import duckdb` "
             f"{fmt(s_d.get('import_ms_median'))} ms, connect + CREATE VIEW {fmt(s_d.get('setup_ms_median'))} ms; "
             f"the rest of the wall time is interpreter start, the query and exit.")
    floor = ctx["rss_floor_mib"]
    at_floor = [n for n, v in (("ours", s_o.get("peak_rss_mib_median")), ("DuckDB", s_d.get("peak_rss_mib_median")),
                               ("ours on the tiny export", bt["peak_rss_mib_median"]),
                               ("python + import duckdb", bp["peak_rss_mib_median"]))
                if v is not None and v < floor + 1]
    L.append(f"- RSS floor {floor:.1f} MiB: this script's own peak RSS, which Linux carries into every child's "
             f"ru_maxrss across exec; a child cannot report less."
             + (f" At the floor (true value may be lower): {', '.join(at_floor)}." if at_floor else ""))
    failed = [(n, s["failed"]) for n, s in ctx["summary"].items() if s.get("failed")]
    for n, k in failed:
        L.append(f"- `{n}`: {k} run(s) FAILED (see stderr / --json).")
    L.append("")
    L.append("SQL our engine ran (from its debug log):")
    L.append("")
    L.append("```sql")
    L.append(ver["sql"])
    L.append("```")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        description="Our CUR engine (spend CLI) vs DuckDB on the same SQL and Parquet files.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--rows", type=int, default=10_000_000, help="usage line items (default 10000000)")
    p.add_argument("--days", type=int, default=30, help="days of data (default 30)")
    p.add_argument("--start", type=dt.date.fromisoformat, default=first_of_last_month(dt.date.today()),
                   help="first day of data, YYYY-MM-DD; the query covers its month (default: first of last month)")
    p.add_argument("--principals", type=int, default=400, help="distinct callers (default 400)")
    p.add_argument("--seed", type=int, default=42, help="generator seed (default 42)")
    p.add_argument("--data", type=Path, help=f"export folder (default {BENCH_ROOT}/cur-<rows>)")
    p.add_argument("--bin", help="bedrock-cost-mcp binary (default $BIN, else ${CARGO_TARGET_DIR:-target}/"
                                 "release/bedrock-cost-mcp, built with cargo build --release when missing)")
    p.add_argument("--runs", type=int, default=7, help="recorded runs per engine (default 7)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded warmup rounds (default 1)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="DuckDB threads (default os.cpu_count(), as DataFusion's target partitions)")
    p.add_argument("--timeout", type=float, default=900.0, help="per-process timeout in seconds (default 900)")
    p.add_argument("--json", metavar="FILE", help="write every run's raw numbers as JSON")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.rows < 1 or args.days < 1 or args.principals < 1:
        p.error("--runs, --rows, --days and --principals must be >= 1, --warmup >= 0")
    if args.data is None:
        args.data = BENCH_ROOT / f"cur-{args.rows}"
    args.data = args.data.absolute()
    args.python = sys.executable
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    command = shown_command(argv)
    load_start = os.getloadavg()[0]
    # duckdb and pyarrow are used only in child processes: importing them here would raise this
    # process's peak RSS, and with it the floor under every child's ru_maxrss (see rss_floor_mib).
    probe = python_json(args.python, PROBE_CHILD)

    binary, debug = resolve_binary(args.bin)
    affinity = len(os.sched_getaffinity(0))
    if affinity != args.threads:
        log(f"note: DuckDB threads {args.threads}, but this process may use {affinity} CPU(s); "
            f"DataFusion sizes itself by available_parallelism (affinity and cgroup quota)")

    env = clean_env()
    month_start = args.start.replace(day=1)
    month_end = next_month(month_start)
    month = month_start.strftime("%Y-%m")
    data_end = args.start + dt.timedelta(days=args.days)
    if args.start > month_start or data_end < month_end:
        log(f"note: data covers {args.start} to {data_end} (exclusive), so the queried month {month} "
            f"is only partly filled")

    args.data.parent.mkdir(parents=True, exist_ok=True)
    gen = ensure_data(args, binary, env)
    truth = json.loads((args.data / "truth.json").read_text())
    facts = python_json(args.python, FACTS_CHILD, str(args.data), month)
    if facts["rows"] != truth["rows_written"]:
        raise SystemExit(f"Parquet footers count {facts['rows']} rows, truth.json rows_written says "
                         f"{truth['rows_written']}")
    glob = f"{args.data}/data/*/*.parquet"

    try:
        ver = verify(args, binary, env, glob, args.threads, month_start, month_end, truth, probe)
    except Mismatch as e:
        log(f"FAILED: the engines disagree ({e}); no timing done")
        return 1
    for line in ver["adapted"]:
        log(f"DuckDB SQL adapted: {line}")
    if not ver["adapted"]:
        log("DuckDB SQL: identical to ours (no adaptation needed)")

    log("baselines: ours on a tiny export, python -c 'import duckdb'")
    with tempfile.TemporaryDirectory(prefix="cur-tiny-") as tiny:
        g = subprocess.run([binary, "generate-cur", "--out", tiny, "--rows", str(TINY_ROWS), "--start",
                            month_start.isoformat(), "--days", "3", "--principals", "10"],
                           env=env, capture_output=True)
        if g.returncode != 0:
            raise SystemExit(f"tiny generate-cur failed: {g.stderr.decode(errors='replace')}")
        ours_tiny = baseline(spend_argv(binary, Path(tiny), month_start, month_end), env, args.timeout)
    py_duck = baseline([args.python, "-c", "import duckdb"], env, args.timeout)
    log(f"  ours tiny: {ours_tiny['wall_ms_median']:.1f} ms, {ours_tiny['peak_rss_mib_median']:.1f} MiB; "
        f"python+duckdb: {py_duck['wall_ms_median']:.1f} ms, {py_duck['peak_rss_mib_median']:.1f} MiB")

    # The folder the later-question runs read: the month's rollup, built here by a server.
    warm_tmp = tempfile.TemporaryDirectory(prefix="cur-rollups-warm-")
    warm_dir = warm_tmp.name
    primed = prime_rollup(binary, args.data, warm_dir, month_start, month_end, env, args.timeout)
    if not primed or not any(Path(warm_dir).glob("*.parquet")):
        raise SystemExit("building the month rollup failed: no rollup file written by the server")
    runs: dict[str, list[Run]] = {m: [] for m in (*OUR_MODES, "duckdb")}
    rounds = args.warmup + args.runs
    for rnd in range(rounds):
        warm = rnd < args.warmup
        label = "warmup" if warm else f"run {rnd - args.warmup + 1}/{args.runs}"
        done = []
        for mode in OUR_MODES:
            r = Run(mode, rnd, warm)
            if mode == "ours_cold":
                with tempfile.TemporaryDirectory(prefix="cur-rollups-cold-") as fresh:
                    run_ours(args, binary, env, month_start, month_end, ver["total"], r, fresh)
            else:
                run_ours(args, binary, env, month_start, month_end, ver["total"], r,
                         warm_dir if mode == "ours_warm" else None)
            runs[mode].append(r)
            done.append(r)
        d = Run("duckdb", rnd, warm)
        run_duckdb(args, glob, ver["duckdb_sql"], args.threads, ver["duckdb_result_rows"], d)
        runs["duckdb"].append(d)
        done.append(d)
        for x in done:
            if x.ok:
                extra = f", execute+fetchall {x.engine_ms:.1f} ms" if x.engine == "duckdb" else ""
                log(f"[{x.engine}] {label}: wall {x.wall_ms:.1f} ms{extra}, peak RSS {x.peak_rss_kib / 1024:.1f} MiB")
            else:
                log(f"[{x.engine}] {label}: FAILED: {x.error}")

    recorded = {k: [x for x in v if not x.warmup] for k, v in runs.items()}
    summary = {k: summarize(v) for k, v in recorded.items()}
    ctx = {
        "args": args, "command": command, "binary": binary, "debug": debug, "threads": args.threads,
        "py_version": sys.version.split()[0], "date": time.strftime("%Y-%m-%d %H:%M %Z"),
        "load_start": load_start, "load_end": os.getloadavg()[0], "month": month,
        "month_start": month_start.isoformat(), "month_end": month_end.isoformat(), "glob": glob,
        "facts": facts, "gen": gen, "truth": truth, "verify": ver, "summary": summary,
        "baselines": {"ours_tiny": ours_tiny, "python_duckdb": py_duck}, "rss_floor_mib": rss_floor_mib(),
        "spend_argv_shown": ["bedrock-cost-mcp", *spend_argv(binary, args.data, month_start, month_end)[1:]],
    }
    sys.stdout.write(markdown(ctx))

    if args.json:
        doc = {
            "command": command, "host": host_line(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "binary": binary, "debug_build": debug, "threads": args.threads,
            "load_avg_start": load_start, "load_avg_end": ctx["load_end"], "rss_floor_mib": ctx["rss_floor_mib"],
            "versions": probe,
            "params": {"rows": args.rows, "days": args.days, "start": args.start.isoformat(),
                       "principals": args.principals, "seed": args.seed, "data": str(args.data),
                       "runs": args.runs, "warmup": args.warmup, "timeout_s": args.timeout},
            "month": {"start": ctx["month_start"], "end": ctx["month_end"]},
            "data": facts, "generation": gen, "verification": ver, "baselines": ctx["baselines"],
            "units": {"*_ms": "milliseconds", "peak_rss_kib": "KiB (ru_maxrss)", "*_mib_*": "MiB"},
            "engines": {k: {"summary": summary[k], "runs": [asdict(x) for x in runs[k]]} for k in runs},
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")

    failed = [x for v in runs.values() for x in v if not x.ok]
    if failed:
        log(f"{len(failed)} run(s) failed (warmups included):")
        for x in failed:
            log(f"  [{x.engine}] round {x.round}: {x.error}")
        return 1
    if debug:
        warn_loudly(["DEBUG binary: the numbers above are not to be recorded"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
