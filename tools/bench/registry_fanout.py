#!/usr/bin/env python3
"""`search_registry` fan-out: end-to-end latency over 5 registries with 50 ms per AWS call.

Steps:

1. Start the Agent Registry emulator (tools/registry_emulator/registry_emulator.py) and replace
   its catalog (POST /_emulator/seed) with `--registries` AWS_IAM READY registries, each holding
   `--records` APPROVED records that mention "invoice" (MCP servers with tools, A2A agents with
   skills, skills with SKILL.md, built with the emulator's own descriptor builders), plus records
   that must not come back: APPROVED ones that do not mention the term and DRAFT / DEPRECATED /
   PENDING_APPROVAL ones that do.
2. Set the emulator's latency (`--latency-ms`, default 50) for every AWS call.
3. Start `bedrock-cost-mcp --registry-max-results 100 serve` (the default cap of 50 hits would cut
   the answer), initialize, then `--warmup` unrecorded and `--runs` recorded calls of
   search_registry {"query": "invoice", "max_results": 20}, each timed from the write of the
   request to the read of its response; the emulator's call counts are read around every call.
   The server lists the registries (ListRegistries, control plane, delayed too), then searches
   them concurrently: ideal ~ 2 x latency + overhead, serial >= (1 + registries) x latency.
4. Latency 0, `--baseline-runs` more calls (default 1): the overhead without injected latency.

Checks, every call: hits = registries x min(records, 20) (or the server's cap, reported), no
duplicate, each registry contributes min(records, 20), only APPROVED records that mention the
term; registries_searched = the seeded ids; no registry_errors; the emulator saw 1 ListRegistries
and 1 SearchDiscoverableRegistryRecords per registry, nothing else.

Needs the tools venv (werkzeug, for the emulator and its descriptor builders). Linux.

Example:
  tools/.venv/bin/python tools/bench/registry_fanout.py --json /tmp/registry_fanout.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

from harness import (REPO, Emulator, McpServer, calls_diff, debug_banner, log, resolve_binary, server_env,
                     shown_command, warn_loudly)
from startup import RunFailed, fmt, host_line, pct

EMULATOR = REPO / "tools" / "registry_emulator" / "registry_emulator.py"
sys.path.insert(0, str(EMULATOR.parent))
sys.dont_write_bytecode = True  # leave no __pycache__ in the emulator's folder
# The emulator's own builders, so the descriptors have exactly the layout its README documents.
from registry_emulator import a2a_descriptor, mcp_descriptor, skill_descriptor  # noqa: E402

sys.dont_write_bytecode = False

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/"
QUERY = "invoice"
SEARCH_MAX = 20  # per registry: the API's and the tool's upper bound
REGISTRIES = [  # (name, team, description)
    ("finance-agents", "finance-apps", "Agents and tools of the finance applications team."),
    ("procurement-tools", "procurement", "Purchasing, supplier onboarding and purchase order tooling."),
    ("ap-automation", "accounts-payable", "Accounts payable automation: capture, approval, payment runs."),
    ("erp-integrations", "erp-platform", "Connectors into the ERP: ledger, vendors, tax."),
    ("partner-billing", "partner-ops", "Billing and settlement with partners and resellers."),
    ("treasury-ops", "treasury", "Cash management, bank statements and FX."),
    ("tax-compliance", "tax", "Indirect tax determination and e-filing."),
    ("revenue-ops", "revops", "Quote-to-cash and revenue recognition."),
]
THINGS = [  # (slug, display, what it does) -- every one mentions invoices
    ("capture", "Capture", "Captures supplier invoice PDFs from the AP mailbox and extracts header and line fields"),
    ("matching", "Matching", "Three-way matching of each invoice against purchase orders and goods receipts"),
    ("approval", "Approval", "Routes an invoice for approval by cost center owner and amount thresholds"),
    ("posting", "Posting", "Posts approved invoice documents to the general ledger"),
    ("dedupe", "Duplicate Check", "Flags duplicate invoice submissions by supplier, amount and date"),
    ("ocr", "OCR", "OCR for scanned invoice images with table extraction"),
    ("tax", "Tax Check", "Validates VAT and sales tax on every invoice line"),
    ("dispute", "Dispute Desk", "Tracks invoice disputes with suppliers until resolved"),
    ("payment-run", "Payment Run", "Schedules invoice payments into the next payment run"),
    ("e-invoicing", "E-Invoicing", "Sends and receives structured e-invoice documents (Peppol, UBL)"),
    ("accruals", "Accruals", "Accrues uninvoiced receipts at month end and reverses them when the invoice arrives"),
    ("vendor-portal", "Vendor Portal", "Answers supplier questions about invoice and payment status"),
]
OTHERS = [  # APPROVED, never mention the query term
    ("bank-statements", "Bank Statements", "Imports bank statements and reconciles cash positions"),
    ("fx-rates", "FX Rates", "Daily foreign exchange rates for all ledger currencies"),
    ("cost-center-lookup", "Cost Center Lookup", "Looks up cost center owners and budgets"),
    ("travel-booking", "Travel Booking", "Books flights and hotels within the travel policy"),
]


# --------------------------------------------------------------------------- the catalog


def rid(prefix: str, i: int, j: int) -> str:
    """A 12-character record id ([a-zA-Z0-9]{12}), unique per (i, j)."""
    return f"{prefix}{i:02d}R{j:04d}x"[:12].ljust(12, "x")


def ts(day: int, sec: int) -> str:
    """A timestamp between 2026-09-01 and 2026-11-28, with milliseconds and Z."""
    day %= 84
    return f"2026-{9 + day // 28:02d}-{1 + day % 28:02d}T{sec // 3600 % 24:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{sec % 1000:03d}Z"


def matching_record(i: int, j: int, team: str, status: str = "APPROVED") -> dict:
    slug, display, what = THINGS[j % len(THINGS)]
    n = j // len(THINGS) + 1
    kind = j % 3
    version = f"{1 + j % 4}.{j % 7}.{j % 3}"
    role = f"{ROLE}{team.title().replace('-', '')}Invoice{slug.title().replace('-', '')}Role"
    meta = {"team": team, "environment": "production" if j % 5 else "staging"}
    if kind == 0:  # MCP server; the term in the name
        name = f"invoice-{slug}-mcp-{n}"
        desc = mcp_descriptor(
            f"io.acme.{team}/{name}", f"{what}.", version, f"https://mcp.{team}.acme.example/{name}/mcp",
            [(f"get_invoice_{slug.replace('-', '_')}", f"{what} for one invoice."),
             (f"list_invoices_{slug.replace('-', '_')}", "List invoices in a state, newest first."),
             ("get_supplier", "Fetch a supplier with payment terms.")])
        rtype, disp = "MCP", f"Invoice {display} MCP {n}"
        meta["iamRoleArn"] = role
    elif kind == 1:  # A2A agent; the term in the description and the card only
        name = f"{slug}-agent-{n}"
        desc = a2a_descriptor(
            f"{display} Agent {n}", f"{what}.", version, f"https://agents.{team}.acme.example/{name}/a2a",
            [(f"{slug}-invoice", f"{display} invoice", f"{what}."),
             ("explain-status", "Explain status", "Explain where an invoice is in its workflow.")])
        rtype, disp = "AGENT", f"{display} Agent {n}"
        meta["iamRoleArn"] = role
    else:  # skill
        name = f"invoice-{slug}-skill-{n}"
        desc = skill_descriptor(
            name, f"{what}.", version,
            f"---\nname: {name}\ndescription: {what}.\n---\n\n# Invoice {display.lower()}\n\n"
            "1. Read the invoice header and lines.\n2. Apply the team's policy.\n3. Record the outcome.\n")
        rtype, disp = "SKILL", f"Invoice {display} Skill {n}"
    rec = {"recordId": rid(f"I{i}", i, j), "name": name, "displayName": disp, "description": f"{what}.",
           "recordType": rtype, "recordVersion": version, "status": status,
           "createdAt": ts(j, 3600 + 97 * j), "updatedAt": ts(j + 20, 7200 + 89 * j),
           "descriptors": desc, "customMetadata": meta, "createdBy": ACCOUNT}
    if status == "DEPRECATED":
        rec["statusReason"] = "Superseded by the next major version."
    return rec


def other_record(i: int, j: int, team: str) -> dict:
    slug, display, what = OTHERS[j % len(OTHERS)]
    name = f"{slug}-mcp"
    return {"recordId": rid(f"O{i}", i, j), "name": name, "displayName": display, "description": f"{what}.",
            "recordType": "MCP", "recordVersion": "1.0.0", "status": "APPROVED",
            "createdAt": ts(j, 500 + j), "updatedAt": ts(j, 500 + j),
            "descriptors": mcp_descriptor(f"io.acme.{team}/{name}", f"{what}.", "1.0.0",
                                          f"https://mcp.{team}.acme.example/{slug}/mcp",
                                          [(slug.replace("-", "_"), f"{what}.")]),
            "customMetadata": {"team": team, "environment": "production"}, "createdBy": ACCOUNT}


def catalog(registries: int, records: int) -> tuple[dict, dict]:
    """(seed document, expectations)."""
    regs, expect_ids = [], {}
    for i in range(registries):
        name, team, description = REGISTRIES[i % len(REGISTRIES)]
        if i >= len(REGISTRIES):
            name = f"{name}-{i}"
        reg_id = f"BenchInv{i:02d}Reg{chr(65 + i % 26)}"  # 14 characters, [a-zA-Z0-9]{12,16}
        recs = [matching_record(i, j, team) for j in range(records)]
        recs += [other_record(i, j, team) for j in range(len(OTHERS))]
        hidden = [("DRAFT", 0), ("DEPRECATED", 1), ("PENDING_APPROVAL", 2)]
        for k, (status, _) in enumerate(hidden):
            r = matching_record(i, records + k, team, status)
            r["recordId"] = rid(f"H{i}", i, k)
            r["name"] = f"unreleased-invoice-{status.lower().replace('_', '-')}"
            recs.append(r)
        regs.append({"registryId": reg_id, "name": name, "description": description, "authorizerType": "AWS_IAM",
                     "status": "READY", "createdAt": ts(i, 100 + i),
                     "approvalConfiguration": {"autoApprovalRules": []}, "records": recs})
        expect_ids[reg_id] = {r["recordId"] for r in recs[:records]}
    return {"accountId": ACCOUNT, "region": "us-east-1", "registries": regs}, expect_ids


# --------------------------------------------------------------------------- calls


@dataclass
class Call:
    index: int  # 0-based over all calls of the phase, warmups included
    phase: str  # "warmup", "latency", "baseline"
    latency_ms: int  # injected per AWS call
    ok: bool = False
    error: str | None = None
    ms: float | None = None  # tools/call write -> response read
    hits: int | None = None
    hits_per_registry: dict = field(default_factory=dict)
    response_bytes: int | None = None
    registries_searched: list[str] = field(default_factory=list)
    registry_errors: list[str] = field(default_factory=list)
    calls: dict = field(default_factory=dict)  # emulator operations during the call
    problems: list[str] = field(default_factory=list)


def one_call(server: McpServer, em: Emulator, args, expect: dict, call: Call) -> None:
    before = em.calls()
    try:
        sc, call.ms, call.response_bytes = server.call_tool(
            "search_registry", {"query": QUERY, "max_results": args.max_results}, args.timeout)
    except RunFailed as e:
        call.error = str(e)
        return
    call.calls = calls_diff(before, em.calls())
    hits = sc.get("hits", [])
    call.hits = len(hits)
    call.registries_searched = sc.get("registries_searched", [])
    call.registry_errors = sc.get("registry_errors", [])
    for h in hits:
        call.hits_per_registry[h.get("registry_id")] = call.hits_per_registry.get(h.get("registry_id"), 0) + 1
    p = call.problems
    if call.hits != expect["hits"]:
        p.append(f"{call.hits} hits, want {expect['hits']}")
    keys = [(h.get("registry_id"), h.get("record_id")) for h in hits]
    if len(set(keys)) != len(keys):
        p.append(f"{len(keys) - len(set(keys))} duplicate hit(s)")
    stray = [k for k in keys if k[1] not in expect["ids"].get(k[0], set())]
    if stray:
        p.append(f"{len(stray)} hit(s) that are not APPROVED records mentioning {QUERY!r}, e.g. {stray[:3]}")
    if not expect["capped"]:
        uneven = {r: n for r, n in call.hits_per_registry.items() if n != expect["per_registry"]}
        missing = [r for r in expect["ids"] if r not in call.hits_per_registry]
        if uneven or missing:
            p.append(f"hits per registry {call.hits_per_registry}, want {expect['per_registry']} each")
    if sorted(call.registries_searched) != sorted(expect["ids"]):
        p.append(f"registries_searched {call.registries_searched}, want {sorted(expect['ids'])}")
    if call.registry_errors:
        p.append(f"registry_errors: {call.registry_errors}")
    want_calls = {"ListRegistries": 1, "SearchDiscoverableRegistryRecords": len(expect["ids"])}
    want_calls.update({f"SearchDiscoverableRegistryRecords:{r}": 1 for r in expect["ids"]})
    if call.calls != want_calls:
        p.append(f"emulator calls {call.calls}, want {want_calls}")
    call.ok = not p
    if p:
        call.error = "; ".join(p)


def check_request_bodies(em: Emulator, args, expect: dict) -> list[str]:
    """The last search requests asked for the query and max_results given (read once)."""
    reqs = [r for r in em.request("GET", "/_emulator/requests") if r["operation"] == "SearchDiscoverableRegistryRecords"]
    problems = []
    for r in reqs[-len(expect["ids"]):]:
        body = json.loads(r["body"] or "{}")
        if body.get("searchQuery") != QUERY or body.get("maxResults") != args.max_results:
            problems.append(f"search body {body} (want searchQuery {QUERY!r}, maxResults {args.max_results})")
        if r["authorization"] != "sigv4":
            problems.append(f"search authorization {r['authorization']} (want sigv4)")
    return problems


# --------------------------------------------------------------------------- output


def stats(vals: list[float]) -> dict:
    if not vals:
        return {}
    return {"median": statistics.median(vals), "p90": pct(vals, 90), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def ratio_txt(a, b) -> str:
    return "-" if a is None or not b else f"{a / b:.2f}"


def markdown(ctx: dict) -> str:
    a, ex, lat, base = ctx["args"], ctx["expect"], ctx["latency_stats"], ctx["baseline_stats"]
    L = debug_banner(ctx["binary"]) if ctx["debug"] else []
    L += ["```sh", ctx["command"], "```", ""]
    L.append(f"Host: {host_line()}; load average {ctx['load_start']:.2f} at start, {ctx['load_end']:.2f} at end; "
             f"{ctx['date']}. Binary: `{ctx['binary']}` ({'DEBUG' if ctx['debug'] else 'release'} build), "
             f"`{' '.join(ctx['server_args'])}`, one process for all calls.")
    L.append("")
    L.append(f"Catalog (tools/registry_emulator, POST /_emulator/seed): {a.registries} AWS_IAM READY registries, each "
             f"with {a.records} APPROVED records mentioning \"{QUERY}\" (MCP servers with tools, A2A agents with skills, "
             f"skills), {len(OTHERS)} APPROVED records that do not, and 3 DRAFT / DEPRECATED / PENDING_APPROVAL ones "
             f"that do ({ctx['catalog_records']} records in all). Injected latency: {a.latency_ms} ms before every "
             f"AWS call (control plane included).")
    L.append("")
    L.append("Call: `search_registry` `" + json.dumps({"query": QUERY, "max_results": a.max_results}) +
             f"`: {a.warmup} warmup, {a.runs} recorded at {a.latency_ms} ms, then {a.baseline_runs} at 0 ms.")
    L.append("")
    L.append("| measure | value | |")
    L.append("|---|---:|---|")
    L.append(f"| end-to-end median ms ({a.latency_ms} ms per AWS call) | {fmt(lat.get('median'))} | "
             f"p90 {fmt(lat.get('p90'))}, min {fmt(lat.get('min'))}, max {fmt(lat.get('max'))}, n {lat.get('n', 0)} |")
    L.append(f"| baseline ms (0 ms per AWS call) | {fmt(base.get('median'))} | "
             f"{'median of ' + str(base['n']) if base.get('n', 0) > 1 else 'one call'} |")
    L.append(f"| ideal concurrent ms = 2 x {a.latency_ms} + baseline | {fmt(ctx['ideal_ms'])} | "
             "ListRegistries, then all searches at once |")
    L.append(f"| serial bound ms = (1 + {a.registries}) x {a.latency_ms} | {fmt(ctx['serial_ms'], '.0f')} | "
             "one search after the other, overhead not counted |")
    L.append(f"| median / serial bound | {ratio_txt(lat.get('median'), ctx['serial_ms'])} | "
             f"{ctx['concurrency_verdict']} |")
    L.append(f"| median / ideal concurrent | {ratio_txt(lat.get('median'), ctx['ideal_ms'])} | |")
    L.append(f"| (median - baseline) / latency | {fmt(ctx['latency_rounds'], '.2f')} | "
             f"AWS round trips on the critical path (ideal 2, serial {1 + a.registries}) |")
    L.append(f"| hits per answer | {ctx['hits_txt']} | want {ex['hits']}{' (server cap)' if ex['capped'] else ''}; "
             f"{ex['per_registry']} per registry{' before the cap' if ex['capped'] else ''} |")
    L.append(f"| response bytes (median) | {fmt(ctx['bytes_median'], ',.0f')} | |")
    L.append("")
    L.append("Emulator calls per search_registry call (every recorded call identical: "
             f"{'yes' if ctx['calls_uniform'] else '**no**, see --json'}):")
    L.append("")
    L.append("| operation | registry | calls |")
    L.append("|---|---|---:|")
    for op, n in ctx["calls_example"].items():
        o, _, r = op.partition(":")
        L.append(f"| {o} | {ctx['reg_names'].get(r, '(all)') + (' `' + r + '`' if r else '')} | {n} |")
    L.append("")
    L.append("- Times are wall clock from writing the tools/call request to reading its response line "
             "(time.perf_counter), in one warm server process. p90 interpolates linearly.")
    L.append(f"- The server caps hits across registries at `--registry-max-results` ({a.registry_max_results} here; "
             "default 50)." + (" The expected hits exceed it, so the answer is capped." if ex["capped"] else ""))
    L.append("- The emulator's werkzeug server answers `Connection: close`, so every AWS call opens a new "
             "loopback TCP connection; that cost is in both the latency runs and the baseline.")
    for note in ctx["notes"]:
        L.append(f"- {note}")
    if ctx["failed"]:
        L.append(f"- {ctx['failed']} call(s) FAILED (see stderr / --json).")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        description="search_registry fan-out latency over several registries with injected AWS latency.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--registries", type=int, default=5, help="READY AWS_IAM registries to seed (default 5)")
    p.add_argument("--records", type=int, default=24,
                   help=f"APPROVED records mentioning {QUERY!r} per registry (default 24; >= 20 fills max_results)")
    p.add_argument("--max-results", type=int, default=SEARCH_MAX, help="search_registry max_results (default 20)")
    p.add_argument("--latency-ms", type=int, default=50, help="emulator latency per AWS call (default 50)")
    p.add_argument("--runs", type=int, default=20, help="recorded calls with latency (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="unrecorded calls first (default 2)")
    p.add_argument("--baseline-runs", type=int, default=1, help="calls at latency 0 (default 1)")
    p.add_argument("--registry-max-results", type=int, default=100,
                   help="passed to the server (its default is 50, which would cap 5 x 20 hits; default here 100)")
    p.add_argument("--bin", help="bedrock-cost-mcp binary (default $BIN, else ${CARGO_TARGET_DIR:-target}/"
                                 "release/bedrock-cost-mcp, built with cargo build --release when missing)")
    p.add_argument("--timeout", type=float, default=60.0, help="per tools/call timeout in seconds (default 60)")
    p.add_argument("--json", metavar="FILE", help="write every call's raw numbers as JSON")
    args = p.parse_args(argv)
    if not 1 <= args.registries <= 50 or args.records < 1 or not 1 <= args.max_results <= SEARCH_MAX:
        p.error("--registries 1..50, --records >= 1, --max-results 1..20")
    if args.runs < 1 or args.warmup < 0 or args.baseline_runs < 1 or args.latency_ms < 1 or args.registry_max_results < 1:
        p.error("--runs, --baseline-runs, --latency-ms and --registry-max-results must be >= 1, --warmup >= 0")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    command = shown_command(argv)
    load_start = os.getloadavg()[0]
    binary, debug = resolve_binary(args.bin)

    seed, ids = catalog(args.registries, args.records)
    per = min(args.records, args.max_results)
    full = per * args.registries
    expect = {"ids": ids, "per_registry": per, "hits": min(full, args.registry_max_results),
              "capped": full > args.registry_max_results}
    reg_names = {r["registryId"]: r["name"] for r in seed["registries"]}
    if expect["capped"]:
        log(f"note: {args.registries} x {per} = {full} hits exceed --registry-max-results "
            f"{args.registry_max_results}: the server caps the answer at {args.registry_max_results}")
    server_args = ["bedrock-cost-mcp", "--registry-max-results", str(args.registry_max_results), "serve"]
    calls: list[Call] = []
    notes: list[str] = []
    log(f"starting the registry emulator ({EMULATOR.relative_to(REPO)})")
    em = Emulator(EMULATOR, name="registry emulator")
    server = None
    try:
        seeded = em.request("POST", "/_emulator/seed", seed)
        log(f"seeded {seeded}")
        em.request("POST", "/_emulator/latency", {"ms": args.latency_ms})
        env = server_env({"AWS_ENDPOINT_URL_AGENT_REGISTRY": em.url, "AWS_ENDPOINT_URL_AGENT_REGISTRY_CONTROL": em.url,
                          # Anything else the server might call stays on loopback too.
                          "AWS_ENDPOINT_URL": em.url})
        server = McpServer([binary, *server_args[1:]], env, "registry-fanout-bench")
        try:
            init_ms = server.initialize(args.timeout)
        except RunFailed as e:
            raise SystemExit(f"server did not initialize: {e}\n{server.stderr_tail()}")
        plan = [("warmup", args.latency_ms)] * args.warmup + [("latency", args.latency_ms)] * args.runs
        for i, (phase, latency) in enumerate(plan):
            c = Call(i, phase, latency)
            one_call(server, em, args, expect, c)
            calls.append(c)
            label = f"{phase} {i + 1 - (args.warmup if phase == 'latency' else 0)}"
            log(f"[{label}] {fmt(c.ms)} ms, {c.hits} hits" + ("" if c.ok else f": FAILED: {c.error}"))
            if i == 0 and c.ok:
                notes.extend(f"request check: {x}" for x in check_request_bodies(em, args, expect))
        em.request("POST", "/_emulator/latency", {"ms": 0})
        for i in range(args.baseline_runs):
            c = Call(len(calls), "baseline", 0)
            one_call(server, em, args, expect, c)
            calls.append(c)
            log(f"[baseline {i + 1}] {fmt(c.ms)} ms, {c.hits} hits" + ("" if c.ok else f": FAILED: {c.error}"))
        server.close()
        if server.exit_status not in (0, None) or server.killed:
            notes.append(f"the server exited with status {server.exit_status}{' (killed)' if server.killed else ''} "
                         "after stdin closed")
    finally:
        if server is not None:
            server.kill()
        em.stop()

    rec = [c for c in calls if c.phase == "latency" and c.ok]
    lat = stats([c.ms for c in rec])
    base = stats([c.ms for c in calls if c.phase == "baseline" and c.ok])
    ideal = 2 * args.latency_ms + base["median"] if base else None
    serial = (1 + args.registries) * args.latency_ms
    rounds = (lat["median"] - base["median"]) / args.latency_ms if lat and base else None
    if lat:
        verdict = ("concurrent" if lat["median"] < (ideal + serial) / 2 else "closer to serial than concurrent")
    else:
        verdict = "-"
    hits = sorted({c.hits for c in rec})
    signature = [json.dumps(c.calls, sort_keys=True) for c in rec]
    ctx = {"args": args, "command": command, "binary": binary, "debug": debug, "expect": expect,
           "latency_stats": lat, "baseline_stats": base, "ideal_ms": ideal, "serial_ms": serial,
           "latency_rounds": rounds, "concurrency_verdict": verdict, "server_args": server_args,
           "hits_txt": ", ".join(str(h) for h in hits) or "-",
           "bytes_median": statistics.median([c.response_bytes for c in rec]) if rec else None,
           "calls_uniform": len(set(signature)) <= 1, "calls_example": rec[0].calls if rec else {},
           "reg_names": reg_names, "notes": notes, "failed": sum(not c.ok for c in calls),
           "catalog_records": sum(len(r["records"]) for r in seed["registries"]),
           "load_start": load_start, "load_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    sys.stdout.write(markdown(ctx))

    if args.json:
        doc = {
            "command": command, "host": host_line(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "binary": binary, "debug_build": debug, "server_args": server_args,
            "load_avg_start": load_start, "load_avg_end": ctx["load_end"], "initialize_ms": init_ms,
            "params": {"registries": args.registries, "records": args.records, "max_results": args.max_results,
                       "latency_ms": args.latency_ms, "runs": args.runs, "warmup": args.warmup,
                       "baseline_runs": args.baseline_runs, "registry_max_results": args.registry_max_results,
                       "timeout_s": args.timeout, "query": QUERY},
            "registries": reg_names,
            "expected": {"hits": expect["hits"], "per_registry": per, "capped": expect["capped"]},
            "latency": lat, "baseline": base, "ideal_concurrent_ms": ideal, "serial_bound_ms": serial,
            "median_over_serial_bound": lat["median"] / serial if lat else None,
            "latency_rounds_on_critical_path": rounds, "notes": notes,
            "units": {"ms": "milliseconds, tools/call write to response read"},
            "calls": [asdict(c) for c in calls],
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")

    failed = [c for c in calls if not c.ok]
    if failed or notes and any(n.startswith("request check") for n in notes):
        log(f"{len(failed)} call(s) failed (warmups included):")
        for c in failed:
            log(f"  [{c.phase} {c.index}] {c.error}")
        for n in notes:
            log(f"  {n}")
        return 1
    if debug:
        warn_loudly(["DEBUG binary: the numbers above are not to be recorded"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
