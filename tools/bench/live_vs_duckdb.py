#!/usr/bin/env python3
"""The live layer's aggregation of Bedrock model invocation logs against DuckDB on the same files.

The question: the spend of one day of invocation logs grouped by principal and model (the records
aggregated per hour, caller, model and Region, then priced). Steps:

1. Data: reuse `--data DIR` when its truth.json has the same generator spec, else write it with
   `bedrock-cost-mcp generate-cur --write-invocation-logs` (timed; kept in DIR/bench-generate.json):
   one day of gzipped JSON-lines objects under DIR/invocation-logs/AWSLogs/... (one object per
   account, Region and hour, as Bedrock delivers them), about 2.8 records per CUR line.
2. Verification (not timed): our answer through `spend --source live --by principal --json` and
   DuckDB's per-principal token sums over the same files must agree token for token, and the record
   counts must equal truth.json's `logs.records`.
3. `--warmup` unrecorded rounds, then `--runs` recorded rounds, alternating:
   - ours: `bedrock-cost-mcp --demo --invocation-logs DIR/invocation-logs spend --source live
     --start D --end D+1 --by principal,model --top 500 --json` (a fresh process: list, gunzip,
     parse, aggregate, price, shape);
   - DuckDB: a fresh `python -c` process: import duckdb, connect (threads = os.cpu_count()), then
     SELECT the token sums and call counts per principal, model and Region over
     read_json('DIR/invocation-logs/**/*.json.gz', format='newline_delimited', columns={...}) with
     the record's schema given (no sampling), timed inside the process and printed. DuckDB does not
     price: it answers the aggregation only, which is the part that scales with the records.
   Wall time is spawn to exit (os.wait4); peak RSS is ru_maxrss of that process.

The generator spreads a day's records over its 24 hours; an hour at 1,000 calls/s is 3.6M records,
so `--rows 1300000` (about 3.6M records) is that hour's work in one day's files.

Needs the tools venv (duckdb): tools/setup-venv.sh. Linux (ru_maxrss in KiB).

Example:
  tools/.venv/bin/python tools/bench/live_vs_duckdb.py --json /tmp/live_vs_duckdb.json
  tools/.venv/bin/python tools/bench/live_vs_duckdb.py --rows 100000 --runs 3 --data /tmp/live-small
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from cur_vs_duckdb import clean_env, proc_failure, run_proc
from harness import resolve_binary
from startup import fmt, host_line, pct, ratio

REPO = Path(__file__).resolve().parents[2]
BENCH_ROOT = Path("/var/tmp/bedrock-cost-mcp-bench")
SIDE_FILE = "bench-generate.json"
DAY = dt.date(2026, 11, 10)

DUCKDB_CHILD = r"""
import json, os, sys, time
import duckdb
glob, threads, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = time.perf_counter()
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute("SET enable_progress_bar = false")
src = ("read_json(?, format='newline_delimited', compression='gzip', columns={"
       "'timestamp': 'VARCHAR', 'identity': 'STRUCT(arn VARCHAR)', 'modelId': 'VARCHAR', "
       "'region': 'VARCHAR', 'input': 'STRUCT(inputTokenCount BIGINT, cacheReadInputTokenCount BIGINT, "
       "cacheWriteInputTokenCount BIGINT)', 'output': 'STRUCT(outputTokenCount BIGINT)'})")
if mode == "verify":
    sql = (f"SELECT identity.arn, sum(input.inputTokenCount + output.outputTokenCount + "
           f"coalesce(input.cacheReadInputTokenCount, 0) + coalesce(input.cacheWriteInputTokenCount, 0)), "
           f"count(*) FROM {src} GROUP BY 1")
    rows = con.execute(sql, [glob]).fetchall()
    print(json.dumps({"by_principal": {r[0]: int(r[1]) for r in rows},
                      "records": sum(int(r[2]) for r in rows)}))
else:
    sql = (f"SELECT identity.arn, modelId, region, sum(input.inputTokenCount), sum(output.outputTokenCount), "
           f"sum(input.cacheReadInputTokenCount), sum(input.cacheWriteInputTokenCount), count(*) "
           f"FROM {src} GROUP BY ALL")
    rows = con.execute(sql, [glob]).fetchall()
    print(json.dumps({"groups": len(rows), "records": sum(int(r[7]) for r in rows),
                      "ms": (time.perf_counter() - t0) * 1000}))
"""


def log(msg: str) -> None:
    print(f"[live_vs_duckdb] {msg}", file=sys.stderr, flush=True)


def spend_argv(binary: str, logs: Path, by: str) -> list[str]:
    end = DAY + dt.timedelta(days=1)
    return [binary, "--demo", "--invocation-logs", str(logs), "spend", "--source", "live",
            "--start", DAY.isoformat(), "--end", end.isoformat(), "--by", by, "--top", "500", "--json"]


def ensure_data(args, binary: str) -> dict:
    spec = {"rows": args.rows, "day": DAY.isoformat(), "principals": args.principals, "seed": 7}
    data = Path(args.data)
    side = data / SIDE_FILE
    if side.is_file() and json.loads(side.read_text()).get("spec") == spec:
        log(f"reusing {data}")
        return json.loads(side.read_text())
    if data.exists() and any(data.iterdir()):
        raise SystemExit(f"{data} holds other data; remove it or pass another --data")
    data.mkdir(parents=True, exist_ok=True)
    argv = [binary, "generate-cur", "--out", str(data), "--rows", str(args.rows), "--start", DAY.isoformat(),
            "--days", "1", "--principals", str(args.principals), "--seed", "7", "--write-invocation-logs"]
    log("generating: " + " ".join(argv))
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=clean_env(), capture_output=True)
    if r.returncode != 0:
        raise SystemExit(f"generate-cur failed: {r.stderr.decode(errors='replace')[-2000:]}")
    secs = time.perf_counter() - t0
    truth = json.loads((data / "truth.json").read_text())
    logs = data / "invocation-logs"
    size = sum(p.stat().st_size for p in logs.rglob("*.json.gz"))
    info = {"spec": spec, "generate_secs": round(secs, 1), "records": truth["logs"]["records"],
            "objects": len(truth["logs"]["files"]), "gz_bytes": size}
    side.write_text(json.dumps(info, indent=2))
    return info


def verify(args, binary: str, python: str, logs: Path, info: dict) -> None:
    # Every page of the answer (`call bedrock_spend` with the cursor until the last page).
    our_tokens: dict[str, int] = {}
    cursor, ours = None, None
    while True:
        question = {"source": "live", "period": {"start": DAY.isoformat(),
                    "end": (DAY + dt.timedelta(days=1)).isoformat()}, "group_by": ["principal"], "top_n": 100000}
        if cursor:
            question["cursor"] = cursor
        r = subprocess.run([binary, "--demo", "--invocation-logs", str(logs), "call", "bedrock_spend",
                            json.dumps(question), "--json"], env=clean_env(), capture_output=True)
        if r.returncode != 0:
            raise SystemExit(f"our spend failed: {r.stderr.decode(errors='replace')[-2000:]}")
        page = json.loads(r.stdout)
        ours = ours or page
        for row in page["rows"]:
            our_tokens[row["keys"]["principal"]] = round(row.get("usage") or 0)
        cursor = page.get("next_cursor")
        if not cursor:
            break
    glob = str(logs / "**" / "*.json.gz")
    d = subprocess.run([python, "-c", DUCKDB_CHILD, glob, str(os.cpu_count() or 2), "verify"],
                       env=clean_env(), capture_output=True)
    if d.returncode != 0:
        raise SystemExit(f"duckdb failed: {d.stderr.decode(errors='replace')[-2000:]}")
    theirs = json.loads(d.stdout.decode().strip().splitlines()[-1])
    if theirs["records"] != info["records"]:
        raise SystemExit(f"DuckDB read {theirs['records']} records, the generator wrote {info['records']}")
    if our_tokens != theirs["by_principal"]:
        diff = {k for k in set(our_tokens) | set(theirs["by_principal"])
                if our_tokens.get(k) != theirs["by_principal"].get(k)}
        raise SystemExit(f"token sums differ for {len(diff)} principals, e.g. {sorted(diff)[:3]}")
    notes = " ".join(ours.get("notes", []))
    if f"{info['records']} records in the window" not in notes:
        raise SystemExit(f"our answer did not read every record: {notes[:400]}")
    log(f"verified: {len(our_tokens)} principals, {info['records']} records, token sums equal")


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_300_000, help="CUR lines of the day (records: about 2.8x)")
    ap.add_argument("--principals", type=int, default=400)
    ap.add_argument("--data", default=None, help="data folder (default under /var/tmp/bedrock-cost-mcp-bench)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--python", default=sys.executable, help="python with duckdb (default: this one)")
    ap.add_argument("--json", default=None, help="write the results here")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args(argv)
    args.data = args.data or str(BENCH_ROOT / f"live-{args.rows}")
    binary, debug = resolve_binary(args.bin)
    info = ensure_data(args, binary)
    logs = Path(args.data) / "invocation-logs"
    verify(args, binary, args.python, logs, info)
    glob = str(logs / "**" / "*.json.gz")
    threads = os.cpu_count() or 2
    results: dict[str, list[dict]] = {"ours": [], "duckdb": []}
    for i in range(args.warmup + args.runs):
        for who in ("ours", "duckdb"):
            if who == "ours":
                p = run_proc(spend_argv(binary, logs, "principal,model"), clean_env(), args.timeout)
            else:
                p = run_proc([args.python, "-c", DUCKDB_CHILD, glob, str(threads), "time"], clean_env(),
                             args.timeout)
            failure = proc_failure(p, who)
            if failure:
                raise SystemExit(failure)
            if i >= args.warmup:
                rec = {"wall_ms": p.wall_ms, "rss_mib": p.peak_rss_kib / 1024}
                if who == "duckdb":
                    rec["inner_ms"] = json.loads(p.stdout.decode().strip().splitlines()[-1])["ms"]
                results[who].append(rec)
                log(f"run {i - args.warmup + 1} {who}: {p.wall_ms:.0f} ms, {p.peak_rss_kib / 1024:.0f} MiB")
    summary = {}
    for who, runs in results.items():
        walls = [r["wall_ms"] for r in runs]
        summary[who] = {"median_ms": statistics.median(walls), "p90_ms": pct(walls, 90),
                        "rss_mib": max(r["rss_mib"] for r in runs)}
        if who == "duckdb":
            summary[who]["inner_median_ms"] = statistics.median(r["inner_ms"] for r in runs)
    o, d = summary["ours"], summary["duckdb"]
    command = "tools/.venv/bin/python tools/bench/live_vs_duckdb.py " + " ".join(argv)
    md = "\n".join([
        f"Command: `{command.strip()}`  ",
        f"Host: {host_line()}{'  (DEBUG binary: not for the record)' if debug else ''}  ",
        f"Data: {info['records']:,} records in {info['objects']} objects, {info['gz_bytes'] / 2**20:.0f} MiB gzipped "
        f"(generated in {info['generate_secs']} s); {args.runs} runs after {args.warmup} warm-up",
        "",
        "| | median ms | p90 ms | peak RSS MiB |",
        "|---|---:|---:|---:|",
        f"| ours (`spend --source live --by principal,model`, process) | {fmt(o['median_ms'], '.0f')} | "
        f"{fmt(o['p90_ms'], '.0f')} | {fmt(o['rss_mib'], '.0f')} |",
        f"| DuckDB (`read_json` aggregate, process) | {fmt(d['median_ms'], '.0f')} | {fmt(d['p90_ms'], '.0f')} | "
        f"{fmt(d['rss_mib'], '.0f')} |",
        f"| DuckDB, query only (inside the process) | {fmt(d['inner_median_ms'], '.0f')} | | |",
        "",
        f"ours / DuckDB (process): {ratio(o['median_ms'], d['median_ms'])}",
    ])
    print(md)
    if args.json:
        Path(args.json).write_text(json.dumps({"info": info, "summary": summary, "runs": results,
                                               "markdown": md}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
