#!/usr/bin/env python3
"""One Cost Explorer question, asked of ours and of the leading peer through the same MCP client.

The question: Amazon Bedrock spend last month, grouped by the principal tag `iamPrincipal/team`.

- ours: tool `bedrock_spend` {"period": "last_month", "group_by": ["tag:team"]}
  (`$BIN serve`, AWS mode; no --cur, so the source is Cost Explorer);
- peer: awslabs-billing-cost-management-mcp-server 0.0.42, tool `cost-explorer`
  {"operation": "getCostAndUsage", "start_date": <first of last month>, "end_date": <first of
  this month>, "granularity": "MONTHLY", "metrics": ["UnblendedCost"],
  "group_by": [{"Type": "TAG", "Key": "iamPrincipal/team"}],
  "filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}}}.

Both run over stdio, driven by the official Python MCP SDK (`mcp==2.3.0`, `mcp.Client`,
mode "legacy" = the initialize handshake, client-side response cache off), against the AWS
emulator (tools/emulator/aws_emulator.py: moto 5.2.5 plus Cost Explorer gap fills). Each
`--rounds` round (default 3) measures both servers, alternating which goes first; for each:

1. POST /_emulator/reset, then seed: GetDimensionValues SERVICE = ["Amazon Bedrock",
   "Amazon EC2"] (so our service discovery finds exactly the peer's filter value) and one
   GetCostAndUsage answer (ml 123.45, web 20.00, untagged 7.10 USD; the same literal answer the
   tests seed, tests/common/mod.rs `ce_month`). moto ignores GroupBy/Filter and answers any body.
2. Spawn the server with the SDK client, initialize.
3. First ask: one tools/call, timed from the SDK call to its return; then GET /_emulator/calls.
4. `--repeats` more asks (default 10) of the same question in the same session, each timed;
   then GET /_emulator/calls again.

Paid requests are counted at the emulator, never taken from the servers: every Cost Explorer
request (GetCostAndUsage, GetDimensionValues, ...) is billed $0.01. Response bytes are the
compact JSON re-serialisation of the tools/call `result` as the client received it (fields the
server did not send left out); text bytes are the text content blocks alone (what a client that
ignores structuredContent hands the model).

Every answer is checked: not isError, and the seeded amounts read back (ours: rows ml 123.45,
web 20.00, untagged 7.10, total 150.55, `cached` true on repeats; peer: the same three groups in
its GetCostAndUsage JSON). A failed check makes the exit status 1. The target (issue 9):
0 paid requests for ours on repeated questions; reported met / NOT MET.

Needs the bench venv (tools/bench/setup.sh: mcp, the peer, moto). Linux.

Example:
  tools/bench/.venv/bin/python tools/bench/ce_question.py --json /tmp/ce_question.json
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness import REPO, Emulator, peer_parser, calls_diff, log, resolve_binary, server_env, shown_command
from startup import fmt, host_line, pct

EMULATOR = REPO / "tools" / "emulator" / "aws_emulator.py"
CE_OPERATIONS = {"GetCostAndUsage", "GetCostAndUsageWithResources", "GetDimensionValues", "GetTags",
                 "GetCostForecast", "GetUsageForecast", "GetCostCategories", "ListCostAllocationTags",
                 "GetAnomalies", "GetAnomalyMonitors"}
SEED_GROUPS = [("ml", "123.45"), ("web", "20.00"), ("", "7.10")]
SEED_TOTAL = 150.55
OURS_ARGS = {"period": "last_month", "group_by": ["tag:team"]}


def last_month(today: dt.date) -> tuple[str, str]:
    this = today.replace(day=1)
    last = (this - dt.timedelta(days=1)).replace(day=1)
    return last.isoformat(), this.isoformat()


def peer_args(start: str, end: str) -> dict:
    return {"operation": "getCostAndUsage", "start_date": start, "end_date": end, "granularity": "MONTHLY",
            "metrics": ["UnblendedCost"], "group_by": [{"Type": "TAG", "Key": "iamPrincipal/team"}],
            "filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}}}


def ce_seed(start: str, end: str) -> dict:
    groups = [{"Keys": [f"iamPrincipal/team${v}"], "Metrics": {"UnblendedCost": {"Amount": a, "Unit": "USD"}}}
              for v, a in SEED_GROUPS]
    return {"GroupDefinitions": [{"Type": "TAG", "Key": "iamPrincipal/team"}],
            "ResultsByTime": [{"TimePeriod": {"Start": start, "End": end}, "Total": {}, "Groups": groups,
                               "Estimated": False}],
            "DimensionValueAttributes": []}


# --------------------------------------------------------------------------- answer checks


def result_doc(result) -> dict:
    """The tools/call result as received: pydantic model -> JSON-able dict of the fields sent."""
    return result.model_dump(mode="json", by_alias=True, exclude_unset=True)


def text_of(doc: dict) -> str:
    return "".join(c.get("text", "") for c in doc.get("content", []) if isinstance(c, dict))


def check_ours(doc: dict, repeat: bool) -> list[str]:
    problems = []
    sc = doc.get("structuredContent")
    if doc.get("isError") or not isinstance(sc, dict):
        return [f"isError or no structuredContent: {text_of(doc)[:300]}"]
    rows = {(r.get("keys") or {}).get("tag:team"): r.get("amount") for r in sc.get("rows", [])}
    want = {"ml": 123.45, "web": 20.0, "untagged": 7.1}
    if rows != want:
        problems.append(f"rows {rows} != {want}")
    if sc.get("total") != SEED_TOTAL:
        problems.append(f"total {sc.get('total')} != {SEED_TOTAL}")
    if sc.get("source") != "cost_explorer":
        problems.append(f"source {sc.get('source')!r}, expected cost_explorer")
    if repeat and sc.get("cached") is not True:
        problems.append(f"repeat answer not cached (cached={sc.get('cached')!r})")
    return problems


def check_peer(doc: dict, repeat: bool) -> list[str]:
    if doc.get("isError"):
        return [f"isError: {text_of(doc)[:300]}"]
    sc = doc.get("structuredContent")
    if not isinstance(sc, dict):
        try:
            sc = json.loads(text_of(doc))
        except ValueError:
            return [f"answer is neither structured nor JSON text: {text_of(doc)[:300]}"]
    try:
        groups = sc["data"]["ResultsByTime"][0]["Groups"]
        got = {g["Keys"][0]: g["Metrics"]["UnblendedCost"]["Amount"] for g in groups}
    except (KeyError, IndexError, TypeError):
        return [f"unexpected answer shape: {json.dumps(sc)[:300]}"]
    want = {f"iamPrincipal/team${v}": a for v, a in SEED_GROUPS}
    return [] if got == want else [f"groups {got} != {want}"]


# --------------------------------------------------------------------------- one session


@dataclass
class Session:
    server: str
    round: int
    order: int  # 0 = went first in its round
    ok: bool = False
    error: str | None = None
    connect_ms: float | None = None  # spawn + initialize, as the SDK does it
    first_ms: float | None = None
    repeat_ms: list[float] = field(default_factory=list)
    first_bytes: int | None = None
    first_text_bytes: int | None = None
    repeat_bytes: list[int] = field(default_factory=list)
    repeat_text_bytes: list[int] = field(default_factory=list)
    calls_first: dict = field(default_factory=dict)  # emulator operations during the first ask
    calls_repeats: dict = field(default_factory=dict)  # ... during the repeats
    calls_connect: dict = field(default_factory=dict)  # ... between spawn and the first ask
    problems: list[str] = field(default_factory=list)
    first_answer: dict | None = None


def paid(calls: dict) -> int:
    return sum(n for op, n in calls.items() if op in CE_OPERATIONS)


async def run_session(sess: Session, command: list[str], env: dict, tool: str, arguments: dict, check,
                      em: Emulator, repeats: int, timeout: float, errlog) -> None:
    from mcp import Client, StdioServerParameters  # the bench venv
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    before = em.calls()
    t0 = time.perf_counter()
    async with Client(stdio_client(params, errlog=errlog), mode="legacy", cache=None,
                      read_timeout_seconds=timeout) as client:
        sess.connect_ms = (time.perf_counter() - t0) * 1000
        c0 = em.calls()
        sess.calls_connect = calls_diff(before, c0)
        t = time.perf_counter()
        r = await asyncio.wait_for(client.call_tool(tool, arguments), timeout)
        sess.first_ms = (time.perf_counter() - t) * 1000
        doc = result_doc(r)
        sess.first_answer = doc
        sess.first_bytes = len(json.dumps(doc, separators=(",", ":")).encode())
        sess.first_text_bytes = len(text_of(doc).encode())
        sess.problems += [f"first ask: {p}" for p in check(doc, False)]
        c1 = em.calls()
        sess.calls_first = calls_diff(c0, c1)
        for i in range(repeats):
            t = time.perf_counter()
            r = await asyncio.wait_for(client.call_tool(tool, arguments), timeout)
            sess.repeat_ms.append((time.perf_counter() - t) * 1000)
            doc = result_doc(r)
            sess.repeat_bytes.append(len(json.dumps(doc, separators=(",", ":")).encode()))
            sess.repeat_text_bytes.append(len(text_of(doc).encode()))
            sess.problems += [f"repeat {i + 1}: {p}" for p in check(doc, True)]
        sess.calls_repeats = calls_diff(c1, em.calls())
    sess.ok = not sess.problems


def emulator_floor(em: Emulator, start: str, end: str, n: int) -> list[float]:
    """ms per GetCostAndUsage made directly with boto3 (the peer's own client library): the emulator's
    share of every uncached answer."""
    import boto3  # the bench venv (moto depends on it)

    seed(em, start, end)
    ce = boto3.client("ce", endpoint_url=em.url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    kw = {"TimePeriod": {"Start": start, "End": end}, "Granularity": "MONTHLY", "Metrics": ["UnblendedCost"],
          "GroupBy": [{"Type": "TAG", "Key": "iamPrincipal/team"}],
          "Filter": {"Dimensions": {"Key": "SERVICE", "Values": ["Amazon Bedrock"]}}}
    ce.get_cost_and_usage(**kw)  # connection set-up and moto's first-answer path, not timed
    out = []
    for _ in range(n):
        t = time.perf_counter()
        ce.get_cost_and_usage(**kw)
        out.append((time.perf_counter() - t) * 1000)
    return out


def seed(em: Emulator, start: str, end: str) -> None:
    em.request("POST", "/_emulator/reset")
    em.request("POST", "/_emulator/ce/dimension-values", {"SERVICE": ["Amazon Bedrock", "Amazon EC2"]})
    em.request("POST", "/moto-api/static/ce/cost-and-usage-results", {"results": [ce_seed(start, end)]})


# --------------------------------------------------------------------------- report


def summarize(sessions: list[Session], repeats: int) -> dict:
    ok = [s for s in sessions if s.ok]
    out: dict = {"sessions": len(sessions), "ok": len(ok)}
    if not ok:
        return out
    first = [s.first_ms for s in ok]
    rep = [x for s in ok for x in s.repeat_ms]
    conn = [s.connect_ms for s in ok]
    out.update(
        connect_ms_median=statistics.median(conn),
        first_ms_median=statistics.median(first), first_ms_min=min(first), first_ms_max=max(first),
        repeat_ms_median=statistics.median(rep) if rep else None, repeat_ms_p90=pct(rep, 90) if rep else None,
        repeats_total_ms_median=statistics.median([sum(s.repeat_ms) for s in ok]),
        first_bytes=ok[0].first_bytes, first_text_bytes=ok[0].first_text_bytes,
        repeat_bytes=ok[0].repeat_bytes[0] if ok[0].repeat_bytes else None,
        repeat_text_bytes=ok[0].repeat_text_bytes[0] if ok[0].repeat_text_bytes else None,
        paid_first=max(paid(s.calls_first) for s in ok),
        paid_repeats=max(paid(s.calls_repeats) for s in ok),
        paid_connect=max(paid(s.calls_connect) for s in ok),
        gcau_first=max(s.calls_first.get("GetCostAndUsage", 0) for s in ok),
        gcau_repeats=max(s.calls_repeats.get("GetCostAndUsage", 0) for s in ok),
        calls_first=ok[0].calls_first, calls_repeats=ok[0].calls_repeats,
        paid_consistent=len({(paid(s.calls_first), paid(s.calls_repeats)) for s in ok}) == 1,
    )
    return out


def x_ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "-" if a in (None, 0) or b is None else "inf"
    r = a / b
    return f"{r:.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def markdown(command: str, args, start: str, end: str, summ: dict, ours_cmd: str, peer_cmd: str,
             floor: list[float]) -> str:
    o, p = summ["ours"], summ["peer"]
    L = ["```sh", command, "```", "",
         f"Host: {host_line()}; {time.strftime('%Y-%m-%d %H:%M %Z')}. {args.rounds} round(s), servers "
         f"alternating which goes first; each round: a fresh process per server, 1 first ask + "
         f"{args.repeats} repeats in the same session. Period {start} to {end} (end exclusive).", "",
         "| server | sessions ok | spawn+initialize median ms | first ask median ms (min-max) | repeat ask median ms | "
         "repeat p90 ms | first answer bytes (text) | repeat answer bytes (text) | paid CE requests, first ask "
         "(GetCostAndUsage) | paid CE requests, " + f"{args.repeats} repeats (GetCostAndUsage) |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, m in (("ours", o), ("peer", p)):
        if not m.get("ok"):
            L.append(f"| {name} | 0/{m['sessions']} | - | - | - | - | - | - | - | - |")
            continue
        L.append(f"| {name} | {m['ok']}/{m['sessions']} | {fmt(m['connect_ms_median'])} | "
                 f"{fmt(m['first_ms_median'])} ({fmt(m['first_ms_min'])}-{fmt(m['first_ms_max'])}) | "
                 f"{fmt(m['repeat_ms_median'], '.2f')} | {fmt(m['repeat_ms_p90'], '.2f')} | "
                 f"{m['first_bytes']:,} ({m['first_text_bytes']:,}) | "
                 f"{fmt(m['repeat_bytes'], ',')} ({fmt(m['repeat_text_bytes'], ',')}) | "
                 f"{m['paid_first']} ({m['gcau_first']}) | {m['paid_repeats']} ({m['gcau_repeats']}) |")
    L += ["", "Servers:", "", f"- `ours`: `{ours_cmd}`, tool `bedrock_spend` `{json.dumps(OURS_ARGS)}`",
          f"- `peer`: `{peer_cmd}`, tool `cost-explorer` `{json.dumps(peer_args(start, end))}`", ""]
    if o.get("ok") and p.get("ok"):
        n = args.repeats
        o_paid, p_paid = o["paid_first"] + o["paid_repeats"], p["paid_first"] + p["paid_repeats"]
        L += [f"Ratios (peer / ours): first ask latency {x_ratio(p['first_ms_median'], o['first_ms_median'])}, "
              f"repeat latency {x_ratio(p['repeat_ms_median'], o['repeat_ms_median'])}, "
              f"first answer bytes {x_ratio(p['first_bytes'], o['first_bytes'])} "
              f"(text {x_ratio(p['first_text_bytes'], o['first_text_bytes'])}), "
              f"paid requests for 1 + {n} asks: peer {p_paid} (${p_paid * 0.01:.2f}) vs ours {o_paid} "
              f"(${o_paid * 0.01:.2f}).", ""]
        L.append(f"Emulator calls per session: ours first ask {json.dumps(o['calls_first'])}, repeats "
                 f"{json.dumps(o['calls_repeats']) if o['calls_repeats'] else '{}'}; peer first ask "
                 f"{json.dumps(p['calls_first'])}, repeats {json.dumps(p['calls_repeats'])}. Every Cost "
                 "Explorer request is billed $0.01; ours also spends one GetDimensionValues (service-name "
                 "discovery, cached a day) on its first ask.")
        L.append("")
        if floor:
            L.append(f"Emulator floor: one GetCostAndUsage made directly with boto3 takes {statistics.median(floor):.1f} ms "
                     f"(median of {len(floor)}; moto behind werkzeug, a new connection per request): that much of "
                     "each uncached answer is the emulator, for either server.")
            L.append("")
        met = o["paid_repeats"] == 0 and o["paid_consistent"]
        L.append(f"Target (issue 9): 0 paid requests for ours on {n} repeated questions: "
                 f"{'met' if met else '**NOT MET**'} ({o['paid_repeats']}).")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = peer_parser(__doc__)
    p.add_argument("--rounds", type=int, default=3, help="rounds, each a fresh session per server (default 3)")
    p.add_argument("--repeats", type=int, default=10, help="repeated asks after the first (default 10)")
    p.add_argument("--timeout", type=float, default=60.0, help="per call timeout in seconds (default 60)")
    p.add_argument("--json", metavar="FILE", help="write every session's numbers and first answers as JSON")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.repeats < 0:
        p.error("--rounds must be >= 1, --repeats >= 0")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    command = shown_command(argv)
    try:
        import mcp  # noqa: F401
    except ImportError:
        raise SystemExit("the official MCP SDK (mcp==2.3.0) is not importable: run tools/bench/setup.sh and use "
                         "tools/bench/.venv/bin/python") from None
    binary, _ = resolve_binary(args.bin)
    peer_cmd = shlex.split(args.peer)
    if not peer_cmd or not os.access(peer_cmd[0], os.X_OK):
        raise SystemExit(f"peer command not found or not executable: {args.peer!r} (tools/bench/setup.sh installs it)")
    start, end = last_month(dt.datetime.now(dt.timezone.utc).date())
    ours_cmd = [binary, "serve"]
    servers = {
        "ours": (ours_cmd, "bedrock_spend", OURS_ARGS, check_ours),
        "peer": (peer_cmd, "cost-explorer", peer_args(start, end), check_peer),
    }
    sessions: dict[str, list[Session]] = {"ours": [], "peer": []}
    em = Emulator(EMULATOR, name="AWS emulator")
    errlog = tempfile.TemporaryFile(mode="w+")
    floor: list[float] = []
    try:
        env = server_env({"AWS_ENDPOINT_URL": em.url, "BEDROCK_COST_MCP_LOG": "warn",
                          "FASTMCP_LOG_LEVEL": "ERROR"})
        with tempfile.TemporaryDirectory(prefix="ce-question-") as tmp:
            # Our server keeps no state between sessions except these folders; fresh ones per run.
            env.update({"XDG_CACHE_HOME": f"{tmp}/cache", "XDG_STATE_HOME": f"{tmp}/state",
                        "HOME": os.environ.get("HOME", tmp)})
            for rnd in range(args.rounds):
                order = ["ours", "peer"] if rnd % 2 == 0 else ["peer", "ours"]
                for i, name in enumerate(order):
                    cmd, tool, targs, check = servers[name]
                    seed(em, start, end)
                    sess = Session(name, rnd, i)
                    try:
                        asyncio.run(run_session(sess, cmd, env, tool, targs, check, em, args.repeats,
                                                args.timeout, errlog))
                    except BaseException as e:  # noqa: BLE001 - report and go on; SDK errors come as groups
                        if isinstance(e, KeyboardInterrupt):
                            raise
                        sess.error = f"{type(e).__name__}: {e}"[:800]
                    sess.ok = sess.ok and sess.error is None
                    sessions[name].append(sess)
                    status = "ok" if sess.ok else f"FAILED: {sess.error or '; '.join(sess.problems)[:500]}"
                    log(f"[{name}] round {rnd + 1}/{args.rounds}: connect {fmt(sess.connect_ms)} ms, first ask "
                        f"{fmt(sess.first_ms)} ms, repeats median "
                        f"{fmt(statistics.median(sess.repeat_ms) if sess.repeat_ms else None, '.2f')} ms, "
                        f"paid {paid(sess.calls_first)} + {paid(sess.calls_repeats)}: {status}")
        floor = emulator_floor(em, start, end, max(args.repeats, 5))
        log(f"emulator floor: GetCostAndUsage via boto3 median {statistics.median(floor):.1f} ms")
    finally:
        em.stop()
        errlog.close()

    summ = {k: summarize(v, args.repeats) for k, v in sessions.items()}
    sys.stdout.write(markdown(command, args, start, end, summ, shlex.join(["bedrock-cost-mcp", "serve"]),
                              shlex.join([Path(peer_cmd[0]).name, *peer_cmd[1:]]), floor))
    if args.json:
        doc = {"command": command, "host": host_line(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "binary": binary, "peer": args.peer, "period": {"start": start, "end": end},
               "rounds": args.rounds, "repeats": args.repeats,
               "arguments": {"ours": OURS_ARGS, "peer": peer_args(start, end)},
               "summary": summ, "emulator_floor_ms": floor, "sessions": {k: [asdict(s) for s in v] for k, v in sessions.items()}}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
    failed = [s for v in sessions.values() for s in v if not s.ok]
    for s in failed:
        log(f"FAILED [{s.server}] round {s.round + 1}: {s.error or ''} {'; '.join(s.problems)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
