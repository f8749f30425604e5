#!/usr/bin/env python3
"""`untagged_principals` over a large IAM account: time to the first page and to the full report.

Steps:

1. Start the AWS emulator (tools/emulator/aws_emulator.py, moto 5.2.5) and seed it through the
   real IAM API (boto3, `--workers` threads, timed) with `--roles` roles and `--users` users:
   ~60% tagged team + cost-center, ~20% team only, ~20% neither (some of those carry other tags),
   several IAM paths, and some roles whose trust policy allows sts:TagSession. Seed the
   cost-allocation tags iamPrincipal/team and iamPrincipal/cost-center as Active.
2. Probe what moto does with the sweep the server makes (GetAccountAuthorizationDetails,
   Filter User+Role, MaxItems 1000): principals per page, pages for the account.
3. `--warmup` + `--runs` rounds, each with a fresh `bedrock-cost-mcp serve` (no --cur; the
   inventory is cached for 5 minutes inside one process, so a fresh process sweeps again):
   initialize, then tools/call untagged_principals
   {"required_keys": ["team", "cost-center"], "include_no_spend": true, "max_results": 50}
   (timed: the first page), then every page with cursor = next_cursor until it is absent
   (timed each: the full report is the sum of the page latencies; page 2 is the cached one).
   The emulator's per-operation call counts are read before and after the first page and after
   the last.
4. Checks, every round: principals_scanned = roles + users; the findings over all pages are
   exactly the team-only and untagged principals seeded (by kind and name, no duplicates);
   iam_requests of the first page = the emulator's GetAccountAuthorizationDetails count =
   the pages moto needs for the account, with no ListRoleTags/ListUserTags; pages 2..n make no
   IAM call and say iam_requests 0.

Needs the tools venv (boto3, moto, werkzeug): tools/setup-venv.sh. Linux.

Example:
  tools/.venv/bin/python tools/bench/iam_sweep.py --json /tmp/iam_sweep.json
  tools/.venv/bin/python tools/bench/iam_sweep.py --roles 300 --users 150 --runs 3
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from harness import (REPO, Emulator, McpServer, calls_diff, debug_banner, log, resolve_binary, server_env,
                     shown_command, warn_loudly)
from startup import RunFailed, fmt, host_line, pct

EMULATOR = REPO / "tools" / "emulator" / "aws_emulator.py"
ACCOUNT = "123456789012"
REQUIRED = ["team", "cost-center"]
SWEEP_MAX_ITEMS = 1000  # what src/sources/iam.rs asks GetAccountAuthorizationDetails for
TEAMS = ["payments", "search", "ml-platform", "support", "finance-apps", "growth", "data-eng", "security",
         "mobile", "platform", "risk", "marketing-tech"]
ROLE_KINDS = [  # (name part, trust principal service)
    ("bedrock-agent", "bedrock.amazonaws.com"),
    ("agentcore-runtime", "bedrock-agentcore.amazonaws.com"),
    ("lambda-exec", "lambda.amazonaws.com"),
    ("ecs-task", "ecs-tasks.amazonaws.com"),
    ("sagemaker-exec", "sagemaker.amazonaws.com"),
    ("batch-job", "batch.amazonaws.com"),
    ("glue-etl", "glue.amazonaws.com"),
]
ROLE_PATHS = [("/", 55), ("/service-role/", 15), ("/agents/", 15), ("/teams/{team}/", 10), ("/application/", 5)]
USER_PATHS = [("/", 60), ("/engineering/", 20), ("/contractors/", 10), ("/ci/", 10)]
FIRST = ["ana", "ben", "chen", "dara", "eli", "fatima", "goran", "hana", "ivan", "jun", "kofi", "lena", "mateo",
         "nora", "omar", "priya", "quinn", "rosa", "sven", "tara", "umar", "vera", "wei", "yara", "zoe"]
LAST = ["alvarez", "brown", "costa", "dubois", "eriksen", "fischer", "garcia", "haddad", "ito", "jensen",
        "kim", "lopez", "meyer", "novak", "okafor", "patel", "rossi", "silva", "tanaka", "weber"]


# --------------------------------------------------------------------------- the population


@dataclass
class Entity:
    kind: str  # "role" or "user"
    name: str
    path: str
    tags: dict[str, str]
    cls: str  # "full", "team_only", "untagged"
    trust: dict | None = None  # roles
    tag_session: bool = False


def weighted(rng: random.Random, choices: list[tuple[str, int]]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def classes(rng: random.Random, n: int) -> list[str]:
    """Exactly round(60%) full, round(20%) team only, the rest untagged; shuffled."""
    full, team_only = round(n * 0.6), round(n * 0.2)
    out = ["full"] * full + ["team_only"] * team_only + ["untagged"] * (n - full - team_only)
    rng.shuffle(out)
    return out


def tags_for(rng: random.Random, cls: str, team: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    if cls in ("full", "team_only"):
        tags["team"] = team
    if cls == "full":
        tags["cost-center"] = f"CC-{1000 + 7 * TEAMS.index(team):04d}"
    # Unrelated tags, as real accounts carry them (an untagged principal may still have some).
    if rng.random() < 0.5:
        tags["environment"] = rng.choice(["production", "staging", "development"])
    if rng.random() < 0.2:
        tags["owner"] = f"{rng.choice(FIRST)}.{rng.choice(LAST)}@example.com"
    if cls == "untagged" and rng.random() < 0.1:
        tags["Team"] = team  # wrong case: not the required key
    return tags


def population(roles: int, users: int, seed: int) -> list[Entity]:
    rng = random.Random(seed)
    out: list[Entity] = []
    for i, cls in enumerate(classes(rng, roles)):
        team = rng.choice(TEAMS)
        part, service = rng.choice(ROLE_KINDS)
        path = weighted(rng, ROLE_PATHS).format(team=team)
        tag_session = rng.random() < 0.12
        if tag_session:  # assumed by people or pipelines that pass session tags
            stmt = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                    "Action": ["sts:AssumeRole", "sts:TagSession"]}
        else:
            stmt = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        out.append(Entity("role", f"{team}-{part}-{i:05d}", path, tags_for(rng, cls, team), cls,
                          {"Version": "2012-10-17", "Statement": [stmt]}, tag_session))
    for i, cls in enumerate(classes(rng, users)):
        team = rng.choice(TEAMS)
        path = weighted(rng, USER_PATHS)
        if path == "/ci/":
            name = f"ci-{team}-{i:05d}"
        elif rng.random() < 0.15:
            name = f"svc-{team}-{i:05d}"
        else:
            name = f"{rng.choice(FIRST)}.{rng.choice(LAST)}.{i:05d}"
        out.append(Entity("user", name, path, tags_for(rng, cls, team), cls))
    return out


# --------------------------------------------------------------------------- seeding


def seed_iam(url: str, entities: list[Entity], workers: int) -> float:
    """Create every entity through the IAM API from `workers` threads; seconds taken."""
    import boto3  # the tools venv; imported here so --help works without it
    from botocore.config import Config

    local = threading.local()
    cfg = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=workers)

    def client():
        if not hasattr(local, "iam"):
            local.iam = boto3.session.Session().client(
                "iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                aws_secret_access_key="testing", config=cfg)
        return local.iam

    def create(e: Entity) -> None:
        tags = [{"Key": k, "Value": v} for k, v in e.tags.items()]
        if e.kind == "role":
            client().create_role(RoleName=e.name, Path=e.path, AssumeRolePolicyDocument=json.dumps(e.trust),
                                 Description=f"{e.name} execution role", Tags=tags)
        else:
            client().create_user(UserName=e.name, Path=e.path, Tags=tags)

    done = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(create, entities, chunksize=64):  # raises the first failure
            done += 1
            if done % 2500 == 0:
                log(f"  seeded {done:,}/{len(entities):,} ({time.perf_counter() - t0:.1f} s)")
    return time.perf_counter() - t0


def probe_sweep(url: str) -> dict:
    """What moto does with the server's sweep: principals per page and pages for the account."""
    import boto3

    iam = boto3.client("iam", endpoint_url=url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    iam.list_account_aliases()  # connection and client set up outside the timed walk
    pages, users, roles, first_page, marker = 0, 0, 0, None, None
    t0 = time.perf_counter()
    for _ in range(100_000):  # bounded; moto 5.2.5 answers everything in one page
        kw = {"Filter": ["User", "Role"], "MaxItems": SWEEP_MAX_ITEMS}
        if marker:
            kw["Marker"] = marker
        r = iam.get_account_authorization_details(**kw)
        pages += 1
        users += len(r.get("UserDetailList", []))
        roles += len(r.get("RoleDetailList", []))
        if first_page is None:
            first_page = users + roles
        marker = r.get("Marker") if r.get("IsTruncated") else None
        if not marker:
            break
    return {"pages": pages, "users": users, "roles": roles, "first_page_principals": first_page,
            "boto3_ms": (time.perf_counter() - t0) * 1000,
            "max_items": SWEEP_MAX_ITEMS, "paginates": pages > 1}


# --------------------------------------------------------------------------- rounds


@dataclass
class Round:
    index: int  # 0-based, warmups included
    warmup: bool
    ok: bool = False
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    initialize_ms: float | None = None  # spawn -> initialize response
    first_page_ms: float | None = None  # tools/call -> response, page 1 (sweeps IAM)
    second_page_ms: float | None = None  # page 2 (cached inventory), None with one page
    page_ms: list[float] = field(default_factory=list)
    full_report_ms: float | None = None  # sum of page latencies
    pages: int = 0
    findings: int = 0
    first_page_bytes: int | None = None
    summary: dict = field(default_factory=dict)
    iam_requests_first: int | None = None
    iam_requests_later: list[int] = field(default_factory=list)
    paid_requests_first: int | None = None
    calls_first_page: dict = field(default_factory=dict)  # emulator operations during page 1
    calls_later_pages: dict = field(default_factory=dict)  # during pages 2..n
    peak_rss_kib: int | None = None  # server VmHWM just before closing (harness.vm_hwm_kib)
    ru_maxrss_kib: int | None = None  # wait4; floored at this script's RSS, kept for reference
    exit_status: int | None = None
    killed: bool = False
    warnings: list[str] = field(default_factory=list)


def one_round(args, binary: str, env: dict, em: Emulator, expect: dict, rnd: Round) -> None:
    server = McpServer([binary, "serve"], env, "iam-sweep-bench")
    arguments = {"required_keys": REQUIRED, "include_no_spend": True, "max_results": args.page_size}
    try:
        rnd.initialize_ms = server.initialize(args.timeout)
        before = em.calls()
        sc, ms, nbytes = server.call_tool("untagged_principals", arguments, args.timeout)
        after_first = em.calls()
        rnd.first_page_ms, rnd.first_page_bytes = ms, nbytes
        rnd.page_ms.append(ms)
        rnd.summary = sc.get("summary", {})
        rnd.iam_requests_first = sc.get("iam_requests")
        rnd.paid_requests_first = sc.get("paid_requests")
        rnd.warnings = sc.get("warnings", [])
        findings = list(sc.get("findings", []))
        cursor = sc.get("next_cursor")
        max_pages = math.ceil(expect["findings"] / args.page_size) + 2
        while cursor:
            if len(rnd.page_ms) >= max_pages:
                raise RunFailed(f"more than {max_pages} pages for {expect['findings']} expected findings")
            sc, ms, _ = server.call_tool("untagged_principals", dict(arguments, cursor=cursor), args.timeout)
            rnd.page_ms.append(ms)
            if len(rnd.page_ms) == 2:
                rnd.second_page_ms = ms
            rnd.iam_requests_later.append(sc.get("iam_requests"))
            if len(sc.get("findings", [])) > args.page_size:
                rnd.problems.append(f"page {len(rnd.page_ms)} holds {len(sc['findings'])} findings, "
                                    f"more than max_results {args.page_size}")
            findings.extend(sc.get("findings", []))
            cursor = sc.get("next_cursor")
        after_all = em.calls()
        rnd.calls_first_page = calls_diff(before, after_first)
        rnd.calls_later_pages = calls_diff(after_first, after_all)
        rnd.pages = len(rnd.page_ms)
        rnd.findings = len(findings)
        rnd.full_report_ms = sum(rnd.page_ms)
        check(rnd, findings, expect)
        rnd.ok = not rnd.problems
        if rnd.problems:
            rnd.error = "; ".join(rnd.problems[:5]) + (f" (+{len(rnd.problems) - 5} more)" if len(rnd.problems) > 5 else "")
    except RunFailed as e:
        rnd.error = f"{e}\n{server.stderr_tail()}"
        server.kill()
    finally:
        server.close()
        rnd.peak_rss_kib, rnd.ru_maxrss_kib = server.vm_hwm_kib, server.peak_rss_kib
        rnd.exit_status, rnd.killed = server.exit_status, server.killed


def check(rnd: Round, findings: list[dict], expect: dict) -> None:
    p = rnd.problems
    s = rnd.summary
    if s.get("principals_scanned") != expect["principals"]:
        p.append(f"principals_scanned {s.get('principals_scanned')} != roles + users {expect['principals']}")
    if s.get("fully_tagged") != expect["fully_tagged"]:
        p.append(f"fully_tagged {s.get('fully_tagged')} != seeded {expect['fully_tagged']}")
    missing = (s.get("missing_with_spend") or 0) + (s.get("missing_without_spend") or 0)
    if missing != expect["findings"]:
        p.append(f"missing_with_spend + missing_without_spend = {missing} != seeded {expect['findings']}")
    got = [(f.get("kind"), f.get("name")) for f in findings]
    if len(got) != expect["findings"]:
        p.append(f"{len(got)} findings over {rnd.pages} page(s) != seeded team-only + untagged {expect['findings']}")
    if len(set(got)) != len(got):
        p.append(f"{len(got) - len(set(got))} duplicate finding(s) across pages")
    if set(got) != expect["finding_keys"]:
        extra, lost = set(got) - expect["finding_keys"], expect["finding_keys"] - set(got)
        p.append(f"findings differ from the seeded set: {len(extra)} unexpected (e.g. {sorted(extra)[:3]}), "
                 f"{len(lost)} missing (e.g. {sorted(lost)[:3]})")
    wrong_keys = [f["name"] for f in findings
                  if sorted(f.get("missing_keys", [])) != sorted(expect["missing_by_key"].get((f.get("kind"), f.get("name")), []))]
    if wrong_keys:
        p.append(f"{len(wrong_keys)} finding(s) with the wrong missing_keys, e.g. {wrong_keys[:3]}")
    flagged = {(f["kind"], f["name"]) for f in findings if "may_be_tagged_per_session" in f.get("flags", [])}
    if flagged != expect["tag_session_findings"]:
        p.append(f"{len(flagged)} findings flagged may_be_tagged_per_session, seeded "
                 f"{len(expect['tag_session_findings'])} such roles among the findings")
    gaad = rnd.calls_first_page.get("GetAccountAuthorizationDetails", 0)
    if rnd.iam_requests_first != gaad:
        p.append(f"iam_requests {rnd.iam_requests_first} != emulator GetAccountAuthorizationDetails {gaad}")
    if gaad != expect["sweep_pages"]:
        p.append(f"GetAccountAuthorizationDetails {gaad} != pages of one sweep {expect['sweep_pages']}")
    for op in ("ListRoleTags", "ListUserTags", "ListRoles", "ListUsers", "GetRole", "GetUser"):
        if rnd.calls_first_page.get(op) or rnd.calls_later_pages.get(op):
            p.append(f"{op} called ({rnd.calls_first_page.get(op, 0)} + {rnd.calls_later_pages.get(op, 0)}): "
                     "the sweep should be GetAccountAuthorizationDetails only")
    if rnd.calls_later_pages.get("GetAccountAuthorizationDetails"):
        p.append(f"pages 2..n made {rnd.calls_later_pages['GetAccountAuthorizationDetails']} "
                 "GetAccountAuthorizationDetails call(s): the inventory was not reused")
    if any(x != 0 for x in rnd.iam_requests_later):
        p.append(f"pages 2..n report iam_requests {rnd.iam_requests_later} (want 0: cached)")
    if expect["findings"] > 0 and rnd.pages != math.ceil(expect["findings"] / expect["page_size"]):
        p.append(f"{rnd.pages} pages for {expect['findings']} findings at {expect['page_size']} per page")


def expectations(entities: list[Entity], page_size: int, probe: dict) -> dict:
    found = [e for e in entities if e.cls != "full"]
    return {
        "principals": len(entities),
        "fully_tagged": sum(e.cls == "full" for e in entities),
        "findings": len(found),
        "finding_keys": {(e.kind, e.name) for e in found},
        "missing_by_key": {(e.kind, e.name): [k for k in REQUIRED if k not in e.tags] for e in found},
        "tag_session_findings": {(e.kind, e.name) for e in found if e.tag_session},
        "sweep_pages": probe["pages"],
        "page_size": page_size,
    }


# --------------------------------------------------------------------------- output


def summarize(rounds: list[Round]) -> dict:
    ok = [r for r in rounds if r.ok]
    out: dict = {"runs": len(rounds), "ok": len(ok), "failed": len(rounds) - len(ok)}
    if not ok:
        return out

    def stats(name: str, vals: list[float]) -> None:
        if vals:
            out.update({f"{name}_median": statistics.median(vals), f"{name}_p90": pct(vals, 90),
                        f"{name}_min": min(vals), f"{name}_max": max(vals)})

    stats("first_page_ms", [r.first_page_ms for r in ok])
    stats("second_page_ms", [r.second_page_ms for r in ok if r.second_page_ms is not None])
    stats("later_page_ms", [m for r in ok for m in r.page_ms[1:]])
    stats("full_report_ms", [r.full_report_ms for r in ok])
    stats("initialize_ms", [r.initialize_ms for r in ok])
    rss = [r.peak_rss_kib / 1024 for r in ok if r.peak_rss_kib]
    out.update(peak_rss_mib_median=statistics.median(rss) if rss else None, peak_rss_mib_max=max(rss) if rss else None,
               pages=ok[0].pages, findings=ok[0].findings, first_page_bytes=ok[0].first_page_bytes,
               iam_requests_first=ok[0].iam_requests_first, paid_requests_first=ok[0].paid_requests_first,
               calls_first_page=ok[0].calls_first_page, calls_later_pages=ok[0].calls_later_pages,
               principals_scanned=ok[0].summary.get("principals_scanned"),
               fully_tagged=ok[0].summary.get("fully_tagged"))
    return out


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "es" if word.endswith("s") else "s")


def markdown(ctx: dict) -> str:
    a, s, seed, probe, ex = ctx["args"], ctx["summary"], ctx["seeding"], ctx["probe"], ctx["expect"]
    L = debug_banner(ctx["binary"]) if ctx["debug"] else []
    L += ["```sh", ctx["command"], "```", ""]
    L.append(f"Host: {host_line()}; load average {ctx['load_start']:.2f} at start, {ctx['load_end']:.2f} at end; "
             f"{ctx['date']}. Binary: `{ctx['binary']}` ({'DEBUG' if ctx['debug'] else 'release'} build). "
             f"Rounds: {a.runs} recorded after {a.warmup} warmup, each a fresh `serve` process (no --cur).")
    L.append("")
    L.append(f"Account (moto {ctx['moto_version']} in tools/emulator/aws_emulator.py): {a.roles:,} roles + "
             f"{a.users:,} users = {ex['principals']:,} principals; {ex['fully_tagged']:,} tagged team + cost-center, "
             f"{seed['team_only']:,} team only, {seed['untagged']:,} neither; {seed['tag_session_roles']:,} roles "
             f"trust sts:TagSession; {seed['non_root_paths']:,} principals on a path other than `/`. Seeded through "
             f"the IAM API with {a.workers} boto3 threads in {seed['seconds']:.1f} s "
             f"({ex['principals'] / seed['seconds']:,.0f} principals/s), seed {a.seed}.")
    L.append("")
    page_txt = (f"{probe['first_page_principals']:,} principals per page" if probe["paginates"] else
                f"everything in one page ({probe['first_page_principals']:,} principals, IsTruncated false): "
                f"moto 5.2.5 ignores MaxItems for this operation")
    L.append(f"Sweep: GetAccountAuthorizationDetails (Filter User, Role; MaxItems {probe['max_items']}), moto answers "
             f"{page_txt}; {plural(probe['pages'], 'page')} for this account. Against AWS ({probe['max_items']} per page at "
             f"most) the same account needs at least {plural(math.ceil(ex['principals'] / probe['max_items']), 'page')}.")
    L.append("")
    L.append(f"For scale: the same walk from this script with boto3 took {probe['boto3_ms']:,.0f} ms "
             "(moto building the answer plus boto3 parsing it), once, before the rounds.")
    L.append("")
    L.append("Call: `untagged_principals` `" + json.dumps(
        {"required_keys": REQUIRED, "include_no_spend": True, "max_results": a.page_size}) + "`, then `cursor` = "
        "`next_cursor` until it is absent.")
    L.append("")
    L.append("| measure | median | p90 | min | max | |")
    L.append("|---|---:|---:|---:|---:|---|")

    def row(label: str, key: str, note: str = "") -> None:
        L.append(f"| {label} | {fmt(s.get(key + '_median'))} | {fmt(s.get(key + '_p90'))} | "
                 f"{fmt(s.get(key + '_min'))} | {fmt(s.get(key + '_max'))} | {note} |")

    row("first page ms (fresh process, sweeps IAM)", "first_page_ms", plural(a.runs, "process"))
    row("second page ms (same process, cached)", "second_page_ms")
    row("any later page ms", "later_page_ms", f"{max(0, (s.get('pages') or 1) - 1)} per round")
    row("full report ms (sum over pages)", "full_report_ms", plural(s["pages"], "page") if s.get("pages") else "")
    row("initialize ms (spawn to initialize response)", "initialize_ms")
    L.append("")
    L.append("| check | value | expected | |")
    L.append("|---|---:|---:|---|")

    def chk(label: str, got, want) -> None:
        L.append(f"| {label} | {got if got is not None else '-'} | {want} | {'ok' if got == want else '**MISMATCH**'} |")

    chk("summary.principals_scanned", s.get("principals_scanned"), ex["principals"])
    chk("summary.fully_tagged", s.get("fully_tagged"), ex["fully_tagged"])
    chk("findings over all pages (team only + untagged)", s.get("findings"), ex["findings"])
    chk("pages", s.get("pages"), math.ceil(ex["findings"] / a.page_size) if ex["findings"] else 1)
    chk("iam_requests, first page", s.get("iam_requests_first"), probe["pages"])
    cf, cl = s.get("calls_first_page", {}), s.get("calls_later_pages", {})
    chk("emulator GetAccountAuthorizationDetails, first page", cf.get("GetAccountAuthorizationDetails", 0), probe["pages"])
    chk("emulator ListRoleTags + ListUserTags", cf.get("ListRoleTags", 0) + cf.get("ListUserTags", 0)
        + cl.get("ListRoleTags", 0) + cl.get("ListUserTags", 0), 0)
    chk("emulator calls on pages 2..n", sum(cl.values()), 0)
    L.append("")
    L.append(f"- Peak RSS of the server: median {fmt(s.get('peak_rss_mib_median'))} MiB, max "
             f"{fmt(s.get('peak_rss_mib_max'))} MiB (VmHWM read before closing stdin). First page answer: {fmt(s.get('first_page_bytes'), 'd')} bytes.")
    other = {k: v for k, v in cf.items() if k != "GetAccountAuthorizationDetails"}
    if other:
        L.append(f"- Other AWS calls during the first page (in its time): "
                 f"{', '.join(f'{k} {v}' for k, v in other.items())}; `paid_requests` {s.get('paid_requests_first')}. "
                 "Without --cur the findings are ranked with Cost Explorer (moto answers no spend).")
    L.append("- Times are wall clock from writing the tools/call request to reading its response line "
             "(time.perf_counter); the full report is the sum of the page latencies. p90 interpolates linearly.")
    if s.get("failed"):
        L.append(f"- {s['failed']} round(s) FAILED (see stderr / --json).")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        description="untagged_principals over a large moto IAM account: first page and full report.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--roles", type=int, default=10_000, help="IAM roles to seed (default 10000)")
    p.add_argument("--users", type=int, default=5_000, help="IAM users to seed (default 5000)")
    p.add_argument("--workers", type=int, default=8, help="boto3 seeding threads (default 8)")
    p.add_argument("--seed", type=int, default=42, help="random seed of the population (default 42)")
    p.add_argument("--page-size", type=int, default=50, help="max_results per page (default 50, as the brief)")
    p.add_argument("--runs", type=int, default=3, help="recorded rounds, each a fresh server (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="unrecorded warmup rounds (default 1)")
    p.add_argument("--bin", help="bedrock-cost-mcp binary (default $BIN, else ${CARGO_TARGET_DIR:-target}/"
                                 "release/bedrock-cost-mcp, built with cargo build --release when missing)")
    p.add_argument("--timeout", type=float, default=900.0, help="per tools/call timeout in seconds (default 900)")
    p.add_argument("--json", metavar="FILE", help="write every round's raw numbers as JSON")
    args = p.parse_args(argv)
    if args.roles < 0 or args.users < 0 or args.roles + args.users < 1:
        p.error("--roles and --users must be >= 0 and not both 0")
    if args.runs < 1 or args.warmup < 0 or args.workers < 1 or not 1 <= args.page_size <= 500:
        p.error("--runs and --workers must be >= 1, --warmup >= 0, --page-size 1..500")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    command = shown_command(argv)
    load_start = os.getloadavg()[0]
    binary, debug = resolve_binary(args.bin)
    import moto  # the tools venv

    entities = population(args.roles, args.users, args.seed)
    log(f"starting the AWS emulator ({EMULATOR.relative_to(REPO)})")
    em = Emulator(EMULATOR, name="AWS emulator")
    try:
        log(f"seeding {args.roles:,} roles + {args.users:,} users with {args.workers} threads")
        seconds = seed_iam(em.url, entities, args.workers)
        seeding = {"seconds": seconds, "roles": args.roles, "users": args.users, "workers": args.workers,
                   "full": sum(e.cls == "full" for e in entities),
                   "team_only": sum(e.cls == "team_only" for e in entities),
                   "untagged": sum(e.cls == "untagged" for e in entities),
                   "tag_session_roles": sum(e.tag_session for e in entities),
                   "non_root_paths": sum(e.path != "/" for e in entities),
                   "create_calls": em.calls()}
        log(f"seeded in {seconds:.1f} s ({len(entities) / seconds:,.0f}/s)")
        em.request("POST", "/_emulator/ce/cost-allocation-tags", {"CostAllocationTags": [
            {"TagKey": f"iamPrincipal/{k}", "Type": "UserDefined", "Status": "Active",
             "LastUpdatedDate": "2026-10-01T00:00:00Z", "LastUsedDate": "2026-11-20T00:00:00Z"} for k in REQUIRED]})
        probe = probe_sweep(em.url)
        log(f"moto sweep: {probe['pages']} page(s), {probe['first_page_principals']:,} principals on the first "
            f"(MaxItems {SWEEP_MAX_ITEMS}), {probe['roles']:,} roles + {probe['users']:,} users")
        if (probe["roles"], probe["users"]) != (args.roles, args.users):
            raise SystemExit(f"moto lists {probe['roles']} roles and {probe['users']} users, seeded "
                             f"{args.roles} and {args.users}")
        expect = expectations(entities, args.page_size, probe)
        env = server_env({"AWS_ENDPOINT_URL": em.url})

        rounds: list[Round] = []
        for i in range(args.warmup + args.runs):
            rnd = Round(i, i < args.warmup)
            one_round(args, binary, env, em, expect, rnd)
            rounds.append(rnd)
            label = "warmup" if rnd.warmup else f"run {i - args.warmup + 1}/{args.runs}"
            if rnd.ok:
                log(f"[{label}] first page {rnd.first_page_ms:.1f} ms (iam_requests {rnd.iam_requests_first}), "
                    f"second {fmt(rnd.second_page_ms)} ms, full report {rnd.full_report_ms:.1f} ms over "
                    f"{rnd.pages} pages, {rnd.findings:,} findings, peak RSS {fmt(rnd.peak_rss_kib and rnd.peak_rss_kib / 1024)} MiB")
            else:
                log(f"[{label}] FAILED: {rnd.error}")
    finally:
        em.stop()

    recorded = [r for r in rounds if not r.warmup]
    summary = summarize(recorded)
    ctx = {"args": args, "command": command, "binary": binary, "debug": debug, "summary": summary,
           "seeding": seeding, "probe": probe, "expect": expect, "moto_version": moto.__version__,
           "load_start": load_start, "load_end": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M %Z")}
    sys.stdout.write(markdown(ctx))

    if args.json:
        doc = {
            "command": command, "host": host_line(), "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "binary": binary, "debug_build": debug, "moto_version": moto.__version__,
            "load_avg_start": load_start, "load_avg_end": ctx["load_end"],
            "params": {"roles": args.roles, "users": args.users, "workers": args.workers, "seed": args.seed,
                       "page_size": args.page_size, "runs": args.runs, "warmup": args.warmup,
                       "timeout_s": args.timeout, "required_keys": REQUIRED},
            "seeding": seeding, "sweep_probe": probe,
            "expected": {k: v for k, v in expect.items()
                         if k not in ("finding_keys", "missing_by_key", "tag_session_findings")},
            "units": {"*_ms": "milliseconds, tools/call write to response read", "peak_rss_kib": "KiB (server VmHWM before closing)",
                      "ru_maxrss_kib": "KiB (wait4; floored at this script's RSS)"},
            "summary": summary, "rounds": [asdict(r) for r in rounds],
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2, default=str)
            f.write("\n")

    failed = [r for r in rounds if not r.ok]
    if failed:
        log(f"{len(failed)} round(s) failed (warmups included):")
        for r in failed:
            log(f"  round {r.index}: {r.error}")
        return 1
    if debug:
        warn_loudly(["DEBUG binary: the numbers above are not to be recorded"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
