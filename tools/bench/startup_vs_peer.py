#!/usr/bin/env python3
"""Startup side by side: ours (demo and AWS mode) against the leading peer, over stdio.

Starts the AWS emulator (tools/emulator/aws_emulator.py), then runs startup.py's measurement
(spawn -> initialize -> notifications/initialized -> tools/list, line by line, each answer
awaited; peak RSS from VmHWM) for three servers, alternating A, B, C, A, B, C, ...:

- `ours-demo`: `$BIN --demo serve` (bundled demo data, no AWS calls);
- `ours-aws`:  `$BIN serve` (loads the AWS config and builds its SDK clients);
- `peer`:      the console entry point of awslabs-billing-cost-management-mcp-server==0.0.42
               in the bench venv (tools/bench/setup.sh).

Every server gets the same environment: dummy credentials (testing/testing), us-east-1,
AWS_ENDPOINT_URL = the emulator, AWS_EC2_METADATA_DISABLED=true, and the shared AWS config and
credentials files pointed at /dev/null. The emulator's call counters are read at the end: no
server is expected to call AWS before its first tool call.

Targets (issue 9): peer startup median / ours >= 200x, peer tools/list bytes / ours >= 20x.
They are reported (met / NOT MET), not enforced; a failed run makes the exit status 1.

Example:
  tools/bench/.venv/bin/python tools/bench/startup_vs_peer.py --runs 20 --json /tmp/startup_vs_peer.json
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

import startup
from harness import REPO, Emulator, peer_parser, log, resolve_binary, server_env, shown_command

EMULATOR = REPO / "tools" / "emulator" / "aws_emulator.py"
TARGET_STARTUP_X = 200.0
TARGET_BYTES_X = 20.0


def parse_args(argv: list[str]):
    p = peer_parser(__doc__)
    p.add_argument("--runs", type=int, default=20, help="recorded runs per server (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="unrecorded warmup rounds (default 2)")
    p.add_argument("--timeout", type=float, default=60.0, help="per-run timeout, spawn to tools/list (default 60)")
    p.add_argument("--json", metavar="FILE", help="write every run's raw numbers as JSON (startup.py's format)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be >= 1 and --warmup >= 0")
    return args


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT MET**"


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    command = shown_command(argv)
    binary, _ = resolve_binary(args.bin)
    peer_argv = shlex.split(args.peer)
    if not peer_argv or not (os.access(peer_argv[0], os.X_OK) or any(
            os.access(os.path.join(d, peer_argv[0]), os.X_OK) for d in os.environ.get("PATH", "").split(":"))):
        raise SystemExit(f"peer command not found: {args.peer!r}; run tools/bench/setup.sh and use its "
                         "python (tools/bench/.venv/bin/python), or pass --peer")

    em = Emulator(EMULATOR, name="AWS emulator")
    try:
        log(f"AWS emulator at {em.url}")
        # startup.py runs each server with os.environ plus --env; give it exactly server_env().
        env = server_env({"AWS_ENDPOINT_URL": em.url, "BEDROCK_COST_MCP_LOG": "warn"})
        os.environ.clear()
        os.environ.update(env)
        json_path = args.json or tempfile.mkstemp(prefix="startup-vs-peer-", suffix=".json")[1]
        st_argv = [str(Path(startup.__file__)), "--runs", str(args.runs), "--warmup", str(args.warmup),
                   "--timeout", str(args.timeout), "--json", json_path,
                   "--server", f"ours-demo={shlex.join([binary, '--demo', 'serve'])}",
                   "--server", f"ours-aws={shlex.join([binary, 'serve'])}",
                   "--server", f"peer={args.peer}",
                   "--baseline", "ours-demo", "--baseline", "ours-aws"]
        print("```sh")
        print(command)
        print("```")
        print()
        print(f"Environment for every server: AWS_ENDPOINT_URL={em.url} (the AWS emulator), "
              "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY=testing, AWS_REGION=us-east-1, "
              "AWS_EC2_METADATA_DISABLED=true, AWS_CONFIG_FILE=AWS_SHARED_CREDENTIALS_FILE=/dev/null.")
        print()
        sys.stdout.flush()
        rc = startup.main(st_argv)
        calls = em.calls()
    finally:
        em.stop()

    with open(json_path) as f:
        doc = json.load(f)
    if not args.json:
        os.unlink(json_path)
    summ = {s["name"]: s["summary"] for s in doc["servers"]}
    peer = summ["peer"]
    print()
    print(f"AWS requests at the emulator during all runs: {json.dumps(calls) if calls else 'none'}.")
    print()
    print("| target (issue 9) | ours-demo | ours-aws |")
    print("|---|---:|---:|")
    rows_t, rows_b = [], []
    for mode in ("ours-demo", "ours-aws"):
        o = summ[mode]
        if peer.get("tools_list_ms_median") and o.get("tools_list_ms_median"):
            x = peer["tools_list_ms_median"] / o["tools_list_ms_median"]
            rows_t.append(f"{x:.0f}x ({verdict(x >= TARGET_STARTUP_X)})")
        else:
            rows_t.append("-")
        if peer.get("result_bytes") and o.get("result_bytes"):
            x = peer["result_bytes"] / o["result_bytes"]
            rows_b.append(f"{x:.1f}x ({verdict(x >= TARGET_BYTES_X)})")
        else:
            rows_b.append("-")
    print(f"| startup, peer median / ours median >= {TARGET_STARTUP_X:.0f}x | {rows_t[0]} | {rows_t[1]} |")
    print(f"| tools/list bytes, peer / ours >= {TARGET_BYTES_X:.0f}x | {rows_b[0]} | {rows_b[1]} |")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
