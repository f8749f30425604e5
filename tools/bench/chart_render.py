#!/usr/bin/env python3
"""Cold start to the first answered `bedrock_spend`, and the cost of `chart: true`.

1. Cold start: spawn `bedrock-cost-mcp --demo serve` -> initialize -> notifications/initialized ->
   tools/call bedrock_spend (last month by team) -> its response. Wall time from spawn, per run,
   a fresh process each time (the demo CUR export on disk is reused, as on a user's machine after
   the first run). Median, p90, min, max over --runs (default 20).
2. Chart render: in one warm server, the same question alternately without and with
   `chart: true` (--calls pairs after --warmup pairs). The render cost is the difference of the
   medians; it includes drawing, PNG encoding, base64 and the larger response line. Done for a
   ranked bar chart (monthly, by team) and a stacked chart (daily, by team).

Python 3.11 standard library only; Linux. Uses the release binary (see harness.resolve_binary).

Example:
  cargo build --release
  python3 tools/bench/chart_render.py --runs 20 --calls 30
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time

from harness import McpServer, RunFailed, debug_banner, log, resolve_binary, server_env, shown_command

QUESTION = {"period": "last_month", "group_by": ["tag:team"]}
DAILY = {"period": "last_month", "group_by": ["tag:team"], "granularity": "daily"}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


def cold_start(binary: str, runs: int, timeout: float) -> list[float]:
    times = []
    for i in range(runs + 1):  # the first run is a warmup (it may write the demo export)
        srv = McpServer([binary, "--demo", "serve"], server_env({}), "chart-bench")
        try:
            srv.initialize(timeout)
            srv.call_tool("bedrock_spend", QUESTION, timeout)
            ms = (time.perf_counter() - srv.t_spawn) * 1000
        finally:
            srv.close()
        if i > 0:
            times.append(ms)
        log(f"cold start {i}/{runs}: {ms:.1f} ms")
    return times


def call_full(srv: McpServer, args: dict, timeout: float) -> tuple[dict, float, int]:
    result, ms, n = srv._request("tools/call", {"name": "bedrock_spend", "arguments": args}, timeout)
    if result.get("isError"):
        raise RunFailed(f"bedrock_spend failed: {result}")
    return result, ms, n


def render_cost(binary: str, question: dict, calls: int, warmup: int, timeout: float) -> dict:
    srv = McpServer([binary, "--demo", "serve"], server_env({}), "chart-bench")
    plain, charted = [], []
    png_bytes, size, line_plain, line_chart = 0, (0, 0), 0, 0
    try:
        srv.initialize(timeout)
        for i in range(warmup + calls):
            _, ms_plain, n_plain = call_full(srv, question, timeout)
            result, ms_chart, n_chart = call_full(srv, {**question, "chart": True}, timeout)
            images = [c for c in result.get("content", []) if c.get("type") == "image"]
            if len(images) != 1 or images[0].get("mimeType") != "image/png":
                raise RunFailed("no PNG image block in the answer")
            png = base64.b64decode(images[0]["data"])
            chart = result["structuredContent"]["chart"]
            if len(png) != chart["bytes"] or png[:8] != b"\x89PNG\r\n\x1a\n":
                raise RunFailed("the PNG does not match the answer's chart summary")
            png_bytes, size = len(png), (chart["width"], chart["height"])
            line_plain, line_chart = n_plain, n_chart
            if i >= warmup:
                plain.append(ms_plain)
                charted.append(ms_chart)
    finally:
        srv.close()
    return {
        "kind": chart["kind"],
        "size": size,
        "png_bytes": png_bytes,
        "line_plain": line_plain,
        "line_chart": line_chart,
        "plain_median": statistics.median(plain),
        "chart_median": statistics.median(charted),
        "chart_p90": pct(charted, 0.9),
        "render_ms": statistics.median(charted) - statistics.median(plain),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", help="bedrock-cost-mcp binary (default: the release build)")
    ap.add_argument("--runs", type=int, default=20, help="cold starts to time (default 20)")
    ap.add_argument("--calls", type=int, default=30, help="timed call pairs per chart kind (default 30)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed call pairs first (default 3)")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    binary, debug = resolve_binary(a.bin)
    try:
        starts = cold_start(binary, a.runs, a.timeout)
        charts = [render_cost(binary, q, a.calls, a.warmup, a.timeout) for q in (QUESTION, DAILY)]
    except RunFailed as e:
        log(f"FAILED: {e}")
        return 1
    out = [f"`{shown_command(sys.argv)}`", ""]
    if debug:
        out += debug_banner(binary)
    out += [
        "| cold start to first bedrock_spend answer (--demo, stdio) | median | p90 | min | max |",
        "|---|---|---|---|---|",
        f"| {len(starts)} runs | {statistics.median(starts):.1f} ms | {pct(starts, 0.9):.1f} ms "
        f"| {min(starts):.1f} ms | {max(starts):.1f} ms |",
        "",
        "| chart | size | PNG | response line (plain -> chart) | call median plain | call median chart | chart p90 | render cost |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in charts:
        out.append(
            f"| {c['kind']} | {c['size'][0]}x{c['size'][1]} | {c['png_bytes'] / 1024:.1f} KiB "
            f"| {c['line_plain']} -> {c['line_chart']} B | {c['plain_median']:.2f} ms | {c['chart_median']:.2f} ms "
            f"| {c['chart_p90']:.2f} ms | {c['render_ms']:.2f} ms |"
        )
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
