#!/usr/bin/env python3
"""`check_budget` on warm caches over streamable HTTP: latency per call and AWS calls per check.

Steps:

1. Start the AWS emulator (tools/emulator/aws_emulator.py, moto 5.2.5) and seed it: IAM role
   `MlRole` tagged team=ml-platform (CreateRole with a trust policy), an AWS budget (CreateBudget:
   monthly, 100 USD, FilterExpression Tags iamPrincipal/team = ml-platform), Cost Explorer
   GetDimensionValues SERVICE = ["Amazon Bedrock"] and one GetCostAndUsage result of 60 USD for
   this month (first of the month to tomorrow).
2. Start `bedrock-cost-mcp serve --http 127.0.0.1:0` (AWS_ENDPOINT_URL = the emulator, dummy
   credentials, a fresh ledger and cache folder) and wait for `listening on http://.../mcp`.
3. One persistent HTTP/1.1 connection (http.client, keep-alive), streamable HTTP stateless JSON:
   POST /mcp `initialize` (2025-11-25), `notifications/initialized`, then every request with
   `MCP-Protocol-Version: 2025-11-25`. An SSE answer (text/event-stream) is read from its `data:`
   lines.
4. `--warmup` calls (default 20) of tools/call check_budget
   {"who": "arn:aws:sts::123456789012:assumed-role/MlRole/s1", "cost_usd": 0.01} fill the caches
   (IAM inventory, STS identity, AWS budgets, Cost Explorer service names and spend).
5. `--runs` rounds (default 1), each: `--calls` `ping` (default 1000) and `--calls` `tools/list`
   (the floors: the same HTTP + JSON-RPC path with no tool work), then `--calls` check_budget, each
   loop sequential and bracketed by GET /_emulator/calls. Every call is timed with
   time.perf_counter from writing the request to reading the whole response body.

Reported: median, p90, p99, min, max of each loop; AWS calls per warm check (total and per
operation, target 0); check_budget median minus the ping median as an approximation of the
server-side tool time (target <= 2 ms); the verdicts. Every check_budget answer must be a
JSON-RPC result with isError not true, name the seeded budget and read 60 USD from Cost Explorer;
a failed call makes the exit status 1. The targets are reported, not enforced.

Each allow/warn check records its cost (0.01 USD) in the ledger, so unbilled spend grows with
every call and the verdict may turn to warn (80% of the budget, or a forecast above it) after
enough calls; the counts are reported.

Needs the tools venv (boto3, moto, werkzeug): tools/setup-venv.sh. Linux.

Example:
  tools/.venv/bin/python tools/bench/budget_check.py --json /tmp/budget_check.json
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone

from harness import (EXIT_GRACE_S, REPO, Emulator, calls_diff, debug_banner, log, resolve_binary, server_env,
                     shown_command, stderr_tail, vm_hwm_kib, warn_loudly)
from startup import PROTOCOL_VERSION, RunFailed, fmt, host_line, kill_group, pct

EMULATOR = REPO / "tools" / "emulator" / "aws_emulator.py"
ACCOUNT = "123456789012"
ROLE = "MlRole"
TEAM = "ml-platform"
BUDGET_NAME = "ml-platform-bedrock"
BUDGET_LIMIT = 100.0
SPENT = 60.0
WHO = f"arn:aws:sts::{ACCOUNT}:assumed-role/{ROLE}/s1"
ARGS = {"who": WHO, "cost_usd": 0.01}
LISTEN_TIMEOUT_S = 60.0
# Server caches that a long loop could outlive (src/server.rs, src/config.rs defaults).
CACHE_TTLS_S = {"IAM inventory (BEDROCK_COST_MCP_IAM_CACHE_SECS)": 300, "AWS budgets": 300,
                "Cost Explorer, open period (BEDROCK_COST_MCP_CACHE_TTL_OPEN_SECS)": 900}


# --------------------------------------------------------------------------- seeding


def seed(em: Emulator, today: date) -> dict:
    """IAM role, AWS budget and Cost Explorer answers; returns what was seeded."""
    import boto3  # the tools venv; imported here so --help works without it

    kw = {"endpoint_url": em.url, "region_name": "us-east-1", "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "bedrock.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    boto3.client("iam", **kw).create_role(
        RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust), Description="ML platform agents",
        Tags=[{"Key": "team", "Value": TEAM}])
    budget = {"BudgetName": BUDGET_NAME, "BudgetLimit": {"Amount": f"{BUDGET_LIMIT:g}", "Unit": "USD"},
              "TimeUnit": "MONTHLY", "BudgetType": "COST",
              "FilterExpression": {"Tags": {"Key": "iamPrincipal/team", "Values": [TEAM]}}}
    boto3.client("budgets", **kw).create_budget(AccountId=ACCOUNT, Budget=budget)
    em.request("POST", "/_emulator/ce/dimension-values", {"SERVICE": ["Amazon Bedrock"]})
    start, end = today.replace(day=1).isoformat(), (today + timedelta(days=1)).isoformat()
    em.request("POST", "/moto-api/static/ce/cost-and-usage-results", {"results": [{
        "GroupDefinitions": [], "ResultsByTime": [{
            "TimePeriod": {"Start": start, "End": end},
            "Total": {"UnblendedCost": {"Amount": f"{SPENT:g}", "Unit": "USD"}}, "Groups": [], "Estimated": True}],
        "DimensionValueAttributes": []}]})
    return {"role": ROLE, "role_tags": {"team": TEAM}, "budget": budget,
            "ce_dimension_values": {"SERVICE": ["Amazon Bedrock"]},
            "ce_cost_and_usage": {"start": start, "end": end, "unblended_usd": SPENT}}


# --------------------------------------------------------------------------- the server over HTTP


class HttpServer:
    """`bedrock-cost-mcp serve --http 127.0.0.1:0`; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, argv: list[str], env: dict[str, str]):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.err,
                                     env=env, start_new_session=True)
        self.exit_status: int | None = None
        self.killed = False
        self.vm_hwm_kib: int | None = None
        deadline = time.perf_counter() + LISTEN_TIMEOUT_S
        self.host, self.port, self.path = "", 0, ""
        while True:  # bounded by the deadline
            self.err.seek(0)
            for line in self.err.read().decode(errors="replace").splitlines():
                if line.startswith("listening on http://"):
                    hostport, _, path = line.split("://", 1)[1].partition("/")
                    self.host, _, port = hostport.rpartition(":")
                    self.port, self.path = int(port), "/" + path.strip()
                    break
            if self.port:
                break
            if self.proc.poll() is not None or time.perf_counter() > deadline:
                self.stop()
                raise SystemExit(f"the server did not print 'listening on http://...' within {LISTEN_TIMEOUT_S:.0f} s "
                                 f"(exit status {self.proc.returncode}):\n{stderr_tail(self.err)}")
            time.sleep(0.02)
        self.err.seek(0, os.SEEK_END)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.vm_hwm_kib = vm_hwm_kib(self.proc.pid)
            try:
                self.proc.send_signal(signal.SIGTERM)  # graceful shutdown (src/transport/http.rs)
                self.proc.wait(EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                self.killed = True
                kill_group(self.proc.pid)
                self.proc.wait()
        self.exit_status = self.proc.returncode

    def stderr_tail(self, lines: int = 15) -> str:
        return stderr_tail(self.err, lines)


class McpHttpClient:
    """Streamable HTTP, stateless, over one keep-alive connection (http.client)."""

    def __init__(self, host: str, port: int, path: str, timeout: float):
        self.conn = http.client.HTTPConnection(host, port, timeout=timeout)
        self.path = path
        self.next_id = 1
        self.protocol: str | None = None  # the MCP-Protocol-Version header, after initialize
        self.connects = 0  # TCP connections opened (1 when keep-alive holds)
        self.sse_answers = 0

    def _post(self, msg: dict) -> tuple[int, str, bytes, float]:
        """(status, content type, body, ms from writing the request to reading the whole body)."""
        body = json.dumps(msg, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.protocol:
            headers["MCP-Protocol-Version"] = self.protocol
        if self.conn.sock is None:
            self.connects += 1
            self.conn.connect()  # outside the timed part only for the very first request
        t0 = time.perf_counter()
        try:
            self.conn.request("POST", self.path, body=body, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            raise RunFailed(f"{msg.get('method')}: HTTP exchange failed: {e!r}") from None
        ms = (time.perf_counter() - t0) * 1000
        if resp.will_close:
            self.conn.close()  # the next request reconnects and is counted
        return resp.status, resp.getheader("Content-Type", ""), raw, ms

    def request(self, method: str, params: dict | None) -> tuple[dict, float, int]:
        """(result, ms, response body bytes); RunFailed on anything but a JSON-RPC result."""
        req_id = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        status, ctype, raw, ms = self._post(msg)
        if status != 200:
            raise RunFailed(f"{method}: HTTP {status}: {raw[:300]!r}")
        answer = self._parse(ctype, raw, req_id, method)
        if "error" in answer:
            raise RunFailed(f"{method} returned an error: {json.dumps(answer['error'])[:500]}")
        if not isinstance(answer.get("result"), dict):
            raise RunFailed(f"{method} response has no result object: {raw[:300]!r}")
        return answer["result"], ms, len(raw)

    def _parse(self, ctype: str, raw: bytes, req_id: int, method: str) -> dict:
        if ctype.startswith("text/event-stream"):
            self.sse_answers += 1
            for event in raw.decode(errors="replace").replace("\r\n", "\n").split("\n\n"):
                data = "\n".join(line[5:].lstrip(" ") for line in event.split("\n") if line.startswith("data:"))
                if not data.strip():
                    continue
                try:
                    m = json.loads(data)
                except ValueError:
                    continue
                if isinstance(m, dict) and m.get("id") == req_id and "method" not in m:
                    return m
            raise RunFailed(f"{method}: no response with id {req_id} in the event stream: {raw[:300]!r}")
        try:
            m = json.loads(raw)
        except ValueError:
            raise RunFailed(f"{method}: {ctype or 'no content type'} answer is not JSON: {raw[:300]!r}") from None
        if not isinstance(m, dict) or m.get("id") != req_id:
            raise RunFailed(f"{method}: answer is not the response to id {req_id}: {raw[:300]!r}")
        return m

    def initialize(self) -> float:
        result, ms, _ = self.request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                                    "clientInfo": {"name": "budget-check-bench", "version": "1.0.0"}})
        self.protocol = result.get("protocolVersion") or PROTOCOL_VERSION
        status, _, raw, _ = self._post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if status not in (200, 202):
            raise RunFailed(f"notifications/initialized: HTTP {status}: {raw[:300]!r}")
        return ms

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------- loops


@dataclass
class Loop:
    round: int  # 0-based; -1 for the warmup
    kind: str  # "warmup", "ping", "tools/list", "check_budget"
    ms: list[float] = field(default_factory=list)
    response_bytes: list[int] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)  # check_budget only
    failures: list[str] = field(default_factory=list)
    calls: dict = field(default_factory=dict)  # emulator operations during the loop
    seconds: float = 0.0  # wall clock of the whole loop
    first_answer: dict | None = None  # check_budget structuredContent of the loop's first call
    last_answer: dict | None = None  # ... and of its last


def check_answer(result: dict) -> tuple[str | None, list[str]]:
    """(verdict, problems) of one check_budget result."""
    if result.get("isError"):
        text = " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
        return None, [f"isError: {text[:500]}"]
    sc = result.get("structuredContent")
    if not isinstance(sc, dict):
        return None, ["no structuredContent"]
    p = []
    verdict = sc.get("verdict")
    if verdict not in ("allow", "warn", "deny"):
        p.append(f"verdict {verdict!r}")
    if (sc.get("budget") or {}).get("name") != BUDGET_NAME:
        p.append(f"budget {sc.get('budget')!r}, want {BUDGET_NAME!r} (reasons: {sc.get('reasons')})")
    if sc.get("spent_source") != "cost_explorer" or sc.get("spent") != SPENT:
        p.append(f"spent {sc.get('spent')} from {sc.get('spent_source')}, want {SPENT:g} from cost_explorer "
                 f"(notes: {sc.get('notes')})")
    if sc.get("planned_cost") != ARGS["cost_usd"]:
        p.append(f"planned_cost {sc.get('planned_cost')}")
    if verdict in ("allow", "warn") and not sc.get("ledger_recorded"):
        p.append(f"{verdict} but ledger_recorded false (notes: {sc.get('notes')})")
    return verdict, p


def run_loop(client: McpHttpClient, em: Emulator, loop: Loop, n: int) -> None:
    before = em.calls()
    t0 = time.perf_counter()
    for i in range(n):
        try:
            if loop.kind in ("warmup", "check_budget"):
                result, ms, nbytes = client.request("tools/call", {"name": "check_budget", "arguments": ARGS})
                verdict, problems = check_answer(result)
                if isinstance(result.get("structuredContent"), dict):
                    loop.last_answer = result["structuredContent"]
                    if loop.first_answer is None:
                        loop.first_answer = loop.last_answer
                if verdict:
                    loop.verdicts.append(verdict)
                if problems:
                    loop.failures.append(f"call {i + 1}: " + "; ".join(problems))
            elif loop.kind == "ping":
                result, ms, nbytes = client.request("ping", None)
            else:
                result, ms, nbytes = client.request("tools/list", {})
                if not result.get("tools"):
                    loop.failures.append(f"call {i + 1}: tools/list answered no tools")
        except RunFailed as e:
            loop.failures.append(f"call {i + 1}: {e}")
            if len(loop.failures) >= 10:
                loop.failures.append("stopped after 10 failures")
                break
            continue
        loop.ms.append(ms)
        loop.response_bytes.append(nbytes)
    loop.seconds = time.perf_counter() - t0
    loop.calls = calls_diff(before, em.calls())



# --------------------------------------------------------------------------- output


def stats(vals: list[float]) -> dict:
    if not vals:
        return {}
    return {"median": statistics.median(vals), "p90": pct(vals, 90), "p99": pct(vals, 99), "min": min(vals),
            "max": max(vals), "mean": statistics.fmean(vals), "n": len(vals)}


def summarize(loops: list[Loop]) -> dict:
    out: dict = {}
    for kind in ("ping", "tools/list", "check_budget"):
        ls = [lp for lp in loops if lp.kind == kind]
        out[kind] = stats([m for lp in ls for m in lp.ms])
        out[kind]["bytes_median"] = statistics.median([b for lp in ls for b in lp.response_bytes]) if ls and ls[0].response_bytes else None
        out[kind]["per_round_median"] = [statistics.median(lp.ms) if lp.ms else None for lp in ls]
        out[kind]["seconds"] = sum(lp.seconds for lp in ls)
    checks = [lp for lp in loops if lp.kind == "check_budget"]
    total = Counter()
    for lp in checks:
        total.update(lp.calls)
    n_checks = sum(len(lp.ms) for lp in checks)
    out["aws_calls_total"] = dict(sorted(total.items()))
    out["aws_calls_per_check"] = {k: v / n_checks for k, v in sorted(total.items())} if n_checks else {}
    out["aws_calls_per_check_total"] = sum(total.values()) / n_checks if n_checks else None
    floors = Counter()
    for lp in loops:
        if lp.kind in ("ping", "tools/list"):
            floors.update(lp.calls)
    out["aws_calls_during_floors"] = dict(sorted(floors.items()))
    out["verdicts"] = dict(Counter(v for lp in checks for v in lp.verdicts))
    out["verdicts_warmup"] = dict(Counter(v for lp in loops if lp.kind == "warmup" for v in lp.verdicts))
    # Drift: the ledger grows by one entry per allow/warn check and is rewritten on each.
    all_check_ms = [m for lp in checks for m in lp.ms]
    tenth = max(1, len(all_check_ms) // 10)
    out["check_first_tenth_median"] = statistics.median(all_check_ms[:tenth]) if all_check_ms else None
    out["check_last_tenth_median"] = statistics.median(all_check_ms[-tenth:]) if all_check_ms else None
    answers = [lp.first_answer for lp in checks[:1]] + [lp.last_answer for lp in checks[-1:]]
    out["ledger_checks_first_last"] = [(a or {}).get("unbilled_checks") for a in answers]
    c, p, t = out["check_budget"].get("median"), out["ping"].get("median"), out["tools/list"].get("median")
    out["server_tool_ms_approx"] = c - p if c is not None and p is not None else None
    out["server_tool_ms_approx_vs_tools_list"] = c - t if c is not None and t is not None else None
    return out


def met(ok: bool | None) -> str:
    return "-" if ok is None else "met" if ok else "**NOT MET**"


def markdown(ctx: dict) -> str:
    a, s = ctx["args"], ctx["summary"]
    L = debug_banner(ctx["binary"]) if ctx["debug"] else []
    L += ["```sh", ctx["command"], "```", ""]
    L.append(f"Host: {host_line()}; load average {ctx['load_start']:.2f} at start, {ctx['load_end']:.2f} at end; "
             f"{ctx['date']}. Binary: `{ctx['binary']}` ({'DEBUG' if ctx['debug'] else 'release'} build), "
             f"`bedrock-cost-mcp serve --http 127.0.0.1:0`, one process for all calls.")
    L.append("")
    L.append(f"Emulator (moto {ctx['moto_version']}, tools/emulator/aws_emulator.py): role `{ROLE}` tagged "
             f"team={TEAM}; AWS budget `{BUDGET_NAME}` (monthly, {BUDGET_LIMIT:g} USD, Tags iamPrincipal/team = "
             f"{TEAM}); Cost Explorer: SERVICE Amazon Bedrock, {SPENT:g} USD this month "
             f"({ctx['seeded']['ce_cost_and_usage']['start']} to {ctx['seeded']['ce_cost_and_usage']['end']}).")
    L.append("")
    L.append(f"Client: streamable HTTP (stateless, JSON answers) over one keep-alive HTTP/1.1 connection "
             f"(Python http.client; TCP connections opened: {ctx['connects']}; SSE answers: {ctx['sse_answers']}). "
             f"Call: `check_budget` `{json.dumps(ARGS)}`; {a.warmup} warmup calls, then {a.runs} round(s) of "
             f"{a.calls:,} `ping`, {a.calls:,} `tools/list` and {a.calls:,} `check_budget`, sequential.")
    L.append("")
    L.append("| request | median ms | p90 | p99 | min | max | n | response bytes |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, label in (("check_budget", "tools/call check_budget"), ("ping", "ping (floor)"),
                        ("tools/list", "tools/list")):
        st = s[kind]
        L.append(f"| {label} | {fmt(st.get('median'), '.3f')} | {fmt(st.get('p90'), '.3f')} | "
                 f"{fmt(st.get('p99'), '.3f')} | {fmt(st.get('min'), '.3f')} | {fmt(st.get('max'), '.3f')} | "
                 f"{st.get('n', 0):,} | {fmt(st.get('bytes_median'), ',.0f')} |")
    L.append("")
    approx, per_check = s["server_tool_ms_approx"], s["aws_calls_per_check_total"]
    L.append("| measure | value | target | |")
    L.append("|---|---:|---:|---|")
    L.append(f"| server-side tool time ms, approx. = check_budget median - ping median | {fmt(approx, '.3f')} | "
             f"<= 2 | {met(None if approx is None else approx <= 2.0)} |")
    L.append(f"| same, against the tools/list median | {fmt(s['server_tool_ms_approx_vs_tools_list'], '.3f')} | | |")
    L.append(f"| check_budget round trip median ms (client-observed) | {fmt(s['check_budget'].get('median'), '.3f')} | | |")
    L.append(f"| AWS calls per warm check | {fmt(per_check, '.4f')} | 0 | "
             f"{met(None if per_check is None else per_check == 0)} |")
    L.append(f"| check_budget median, first / last tenth of the calls | {fmt(s['check_first_tenth_median'], '.3f')} / "
             f"{fmt(s['check_last_tenth_median'], '.3f')} | | live ledger entries before the first / last recorded "
             f"check: {' / '.join(fmt(x, ',d') for x in s['ledger_checks_first_last']) or '-'} |")
    vd = ", ".join(f"{k} {v:,}" for k, v in sorted(s["verdicts"].items())) or "-"
    vw = ", ".join(f"{k} {v:,}" for k, v in sorted(s["verdicts_warmup"].items())) or "-"
    L.append(f"| verdicts (recorded checks) | {vd} | | warmup: {vw} |")
    if ctx["peak_rss_kib"]:
        L.append(f"| server peak RSS MiB (VmHWM at the end) | {ctx['peak_rss_kib'] / 1024:.1f} | | |")
    L.append("")
    if s["aws_calls_total"]:
        L.append("AWS calls during the recorded check_budget loops (warm caches):")
        L.append("")
        L.append("| operation | calls | per check |")
        L.append("|---|---:|---:|")
        for op, n in s["aws_calls_total"].items():
            L.append(f"| {op} | {n:,} | {s['aws_calls_per_check'][op]:.4f} |")
        L.append("")
    L.append(f"AWS calls during the warmup: {ctx['warmup_calls_txt']}.")
    L.append("")
    L.append("- Times are wall clock from writing the HTTP request to reading the whole response body "
             "(time.perf_counter), so they include the loopback round trip, hyper/axum, rmcp's stateless "
             "streamable HTTP handling and the client's own send/receive. p90/p99 interpolate linearly.")
    L.append("- The server-side tool time is an **approximation**, not a measurement inside the server: "
             "`ping` goes through the same HTTP, JSON-RPC and per-request service path with no tool work, so "
             "check_budget median minus ping median is roughly the tool (cache lookups, the ledger write, "
             "building and serialising the answer) plus the extra bytes of its bigger response. The tools/list "
             "line is for scale (its answer is the whole tool catalog).")
    L.append("- Each allow/warn check appends 0.01 USD to the ledger (BEDROCK_COST_MCP_LEDGER, a fresh temporary "
             "file) and rewrites the whole file, so the ledger grows by one entry per call: compare the first and "
             "last tenth above. The verdict may turn to warn once billed + unbilled spend passes 80% of the budget "
             "or the month-end forecast passes it.")
    for note in ctx["notes"]:
        L.append(f"- {note}")
    if ctx["failed"]:
        L.append(f"- {ctx['failed']} call(s) FAILED (see stderr / --json).")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        description="check_budget latency on warm caches over streamable HTTP, and AWS calls per check.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--calls", type=int, default=1000,
                   help="check_budget calls per round, and as many ping and tools/list calls (default 1000)")
    p.add_argument("--runs", type=int, default=1, help="recorded rounds in the same server process (default 1)")
    p.add_argument("--warmup", type=int, default=20, help="unrecorded check_budget calls first (default 20)")
    p.add_argument("--bin", help="bedrock-cost-mcp binary (default $BIN, else ${CARGO_TARGET_DIR:-target}/"
                                 "release/bedrock-cost-mcp, built with cargo build --release when missing)")
    p.add_argument("--timeout", type=float, default=60.0, help="per request timeout in seconds (default 60)")
    p.add_argument("--json", metavar="FILE", help="write every call's latency and the raw numbers as JSON")
    args = p.parse_args(argv)
    if not 1 <= args.calls <= 1_000_000 or not 1 <= args.runs <= 100 or args.warmup < 1 or args.timeout <= 0:
        p.error("--calls 1..1000000, --runs 1..100, --warmup >= 1, --timeout > 0")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    command = shown_command(argv)
    load_start = os.getloadavg()[0]
    binary, debug = resolve_binary(args.bin)
    import moto  # the tools venv

    today = datetime.now(timezone.utc).date()
    loops: list[Loop] = []
    notes: list[str] = []
    log(f"starting the AWS emulator ({EMULATOR.relative_to(REPO)})")
    em = Emulator(EMULATOR, name="AWS emulator")
    server = client = None
    tmp = tempfile.TemporaryDirectory(prefix="budget-check-bench-")
    try:
        seeded = seed(em, today)
        log(f"seeded role {ROLE}, budget {BUDGET_NAME}, Cost Explorer {SPENT:g} USD; {em.calls()}")
        env = server_env({"AWS_ENDPOINT_URL": em.url, "BEDROCK_COST_MCP_LEDGER": os.path.join(tmp.name, "ledger.json"),
                          "XDG_CACHE_HOME": os.path.join(tmp.name, "cache"), "BEDROCK_COST_MCP_LOG": "warn"})
        server = HttpServer([binary, "serve", "--http", "127.0.0.1:0"], env)
        log(f"server listening on http://{server.host}:{server.port}{server.path}")
        client = McpHttpClient(server.host, server.port, server.path, args.timeout)
        try:
            init_ms = client.initialize()
        except RunFailed as e:
            raise SystemExit(f"initialize failed: {e}\n{server.stderr_tail()}")
        t_warm = time.perf_counter()
        warm = Loop(-1, "warmup")
        run_loop(client, em, warm, args.warmup)
        loops.append(warm)
        log(f"[warmup] {len(warm.ms)} calls, median {fmt(statistics.median(warm.ms) if warm.ms else None, '.2f')} ms, "
            f"first {fmt(warm.ms[0] if warm.ms else None, '.1f')} ms, AWS calls {warm.calls}"
            + (f"; FAILED: {warm.failures[0]}" if warm.failures else ""))
        for r in range(args.runs):
            if any(lp.failures for lp in loops):
                break
            for kind in ("ping", "tools/list", "check_budget"):
                lp = Loop(r, kind)
                run_loop(client, em, lp, args.calls)
                loops.append(lp)
                vs = dict(Counter(lp.verdicts))
                log(f"[round {r + 1}/{args.runs} {kind}] {len(lp.ms):,} calls in {lp.seconds:.1f} s, median "
                    f"{fmt(statistics.median(lp.ms) if lp.ms else None, '.3f')} ms, AWS calls {lp.calls or 'none'}"
                    + (f", verdicts {vs}" if vs else "") + (f"; FAILED: {lp.failures[0]}" if lp.failures else ""))
        warm_span = time.perf_counter() - t_warm
        if server.proc.poll() is not None:
            notes.append(f"the server exited during the run (status {server.proc.returncode}):\n"
                         f"{server.stderr_tail()}")
        client.close()
        server.stop()
        if server.killed or server.exit_status not in (0, None):
            notes.append(f"the server exited with status {server.exit_status}"
                         f"{' (killed after SIGTERM)' if server.killed else ''}")
        tail = "\n".join(x for x in server.stderr_tail(6).splitlines() if not x.startswith("listening on "))
        if tail.strip():
            notes.append(f"server stderr (last lines, BEDROCK_COST_MCP_LOG=warn): `{' | '.join(tail.splitlines())[:600]}`")
    finally:
        if client is not None:
            client.close()
        if server is not None:
            server.stop()
        em.stop()
        tmp.cleanup()

    expired = [f"{k} {v} s" for k, v in CACHE_TTLS_S.items() if warm_span > v]
    if expired:
        notes.append(f"warmup to end took {warm_span:.0f} s, longer than these cache lifetimes: {', '.join(expired)}; "
                     "refreshes during the recorded loops are then expected")
    summary = summarize(loops)
    if summary["aws_calls_during_floors"]:
        notes.append(f"AWS calls during the ping/tools/list loops (expected none): {summary['aws_calls_during_floors']}")
    failed = sum(len(lp.failures) for lp in loops)
    warm_calls = warm.calls
    ctx = {"args": args, "command": command, "binary": binary, "debug": debug, "summary": summary,
           "seeded": seeded, "moto_version": moto.__version__, "connects": client.connects if client else 0,
           "sse_answers": client.sse_answers if client else 0, "notes": notes, "failed": failed,
           "warmup_calls_txt": ", ".join(f"{k} {v}" for k, v in warm_calls.items()) or "none",
           "peak_rss_kib": server.vm_hwm_kib if server else None,
           "load_start": load_start, "load_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    sys.stdout.write(markdown(ctx))

    if args.json:
        doc = {
            "command": command, "host": host_line(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "binary": binary, "debug_build": debug, "moto_version": moto.__version__,
            "load_avg_start": load_start, "load_avg_end": ctx["load_end"], "initialize_ms": init_ms,
            "params": {"calls": args.calls, "runs": args.runs, "warmup": args.warmup, "timeout_s": args.timeout,
                       "arguments": ARGS},
            "seeded": seeded, "tcp_connections": ctx["connects"], "sse_answers": ctx["sse_answers"],
            "warmup_to_end_s": warm_span, "peak_rss_kib": ctx["peak_rss_kib"], "notes": notes,
            "units": {"ms": "milliseconds, HTTP request write to response body read (client-observed)"},
            "summary": summary,
            "loops": [asdict(lp) for lp in loops],
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")

    if failed or any(n.startswith("the server exited") for n in notes):
        log(f"{failed} call(s) failed (warmups included):")
        for lp in loops:
            for msg in lp.failures[:5]:
                log(f"  [{'warmup' if lp.round < 0 else f'round {lp.round + 1} {lp.kind}'}] {msg}")
        return 1
    if debug:
        warn_loudly(["DEBUG binary: the numbers above are not to be recorded"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
