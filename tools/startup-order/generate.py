#!/usr/bin/env python3
"""Regenerate `symbols.txt`: the functions the server runs from exec to its `tools/list` answer,
then those its first CUR answers add.

build.rs hands the list to the linker (`--symbol-ordering-file`, release binaries on x86_64
Linux), which places those functions first in `.text`, in first-call order. Start-up then touches
~1.4 MB of contiguous code instead of the same code scattered over the 110 MB text section, where
every first touch maps a 64 KiB fault-around window (BENCHMARKS.md, "start-up RSS"). The query
functions (~8 MB, mostly DataFusion) come after the start-up ones, so they cost start-up nothing,
and the first `bedrock_spend` on CUR maps ~8 MB of code instead of ~70 MB.

How: `bptrace.c` (an LD_PRELOAD library, built here with `cc`) puts an int3 on every function
start of the binary and logs each function the first time it runs; this script drives the server
through `initialize` and `tools/list` over stdio in `--demo` and AWS mode, several runs each (the
worker threads vary a little), then `--demo` through a few `bedrock_spend` questions (CUR) over
stdio and over streamable HTTP (`serve --http`, as `tools/bench/http_load.py` asks), and writes
the union in first-call order as mangled symbol names.

A stale list costs only memory: names that no longer exist are skipped by the linker (the warning is
off), functions missing from the list keep their usual place. Regenerate after larger changes:

  cargo build --release
  python3 tools/startup-order/generate.py            # --bin PATH, --runs N, --out FILE
  cargo build --release                              # relinks with the new order

`--check` only reports how much of the committed list the binary still has, and where the
start-up functions it runs now are (a stale list shows as start-up functions outside the front
of `.text`).

Linux x86_64, Python 3.11 standard library, binutils (`nm`, `readelf`) and a C compiler.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools", "bench"))
from budget_check import HttpServer, McpHttpClient  # noqa: E402
from startup import LineReader, Run, await_response, handshake, send  # noqa: E402

MODES = [
    ("demo", ["--demo", "serve"], {}),
    ("aws", ["serve"], {"AWS_EC2_METADATA_DISABLED": "true"}),
]
# After start-up: the first CUR answers (`--demo` answers `bedrock_spend` from the embedded
# engine). Their functions follow the start-up ones, so they cost no start-up memory; together
# they keep the first query from mapping ~70 MB of DataFusion code scattered over the section.
QUERIES = [
    {"period": "last_month", "group_by": ["tag:team"]},
    {"period": "last_month", "group_by": ["tag:team"], "granularity": "daily"},
    {"group_by": ["principal"]},
    {"group_by": ["model", "token_kind"]},
]


def text_bounds(binary: str) -> tuple[int, int]:
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+\.text\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m:
            start = int(m.group(1), 16)
            return start, start + int(m.group(2), 16)
    sys.exit(f"{binary}: no .text section")


def functions(binary: str) -> dict[int, list[str]]:
    """Function start address -> the symbol names there (mangled), inside .text."""
    lo, hi = text_bounds(binary)
    out = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True, check=True).stdout
    names: dict[int, list[str]] = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            addr = int(parts[0], 16)
            if lo <= addr < hi:
                names.setdefault(addr, []).append(parts[2])
    return names


def trace(binary: str, args: list[str], env_extra: dict[str, str], lib: str, funcs: str, out: str,
          queries: list[dict] = ()) -> list[int]:
    env = dict(os.environ, LD_PRELOAD=lib, BPTRACE_FUNCS=funcs, BPTRACE_OUT=out, **env_extra)
    proc = subprocess.Popen([binary, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env, bufsize=0)
    reader, run, fd = LineReader(proc.stdout.fileno()), Run(server="trace", round=0, warmup=False), proc.stdin.fileno()
    deadline = time.perf_counter() + 120
    try:
        handshake(fd, reader, "startup-order", deadline, run)
        send(fd, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        await_response(reader, 2, "tools/list", deadline, run)
        for i, arguments in enumerate(queries, start=3):
            send(fd, {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                      "params": {"name": "bedrock_spend", "arguments": arguments}})
            msg, _ = await_response(reader, i, "tools/call", deadline, run)
            if msg["result"].get("isError"):
                sys.exit(f"bedrock_spend {arguments} failed: {msg['result']}")
    finally:
        proc.kill()  # what runs after the answer is not start-up
        proc.wait()
    with open(out) as f:
        return [int(line, 16) for line in f if line.strip()]


def trace_http(binary: str, lib: str, funcs: str, out: str) -> list[int]:
    """`--demo serve --http`: initialize, tools/list, the http_load.py question twice (the second
    from the cache), on two keep-alive connections."""
    env = dict(os.environ, LD_PRELOAD=lib, BPTRACE_FUNCS=funcs, BPTRACE_OUT=out)
    server = HttpServer([binary, "--demo", "serve", "--http", "127.0.0.1:0"], env)
    try:
        for _ in range(2):
            client = McpHttpClient(server.host, server.port, server.path, timeout=120)
            client.initialize()
            client.request("tools/list", {})
            for _ in range(2):
                result, _, _ = client.request("tools/call", {"name": "bedrock_spend", "arguments": QUERIES[0]})
                if result.get("isError"):
                    sys.exit(f"bedrock_spend over HTTP failed: {result}")
            client.close()
    finally:
        server.proc.kill()
        server.proc.wait()
    with open(out) as f:
        return [int(line, 16) for line in f if line.strip()]


def check(binary: str, names: dict[int, list[str]], listed: str) -> int:
    with open(listed) as f:
        wanted = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    have = {n for ns in names.values() for n in ns}
    found = sum(1 for n in wanted if n in have)
    print(f"{found} of {len(wanted)} listed symbols are in {binary}")
    with tempfile.TemporaryDirectory() as tmp:
        lib, funcs = build_tracer(tmp, names)
        hits = trace(binary, MODES[0][1], MODES[0][2], lib, funcs, os.path.join(tmp, "t.txt"))
    listed_names = set(wanted)
    missing = [a for a in hits if not any(n in listed_names for n in names.get(a, []))]
    windows = len({a >> 16 for a in hits})
    print(f"--demo start-up runs {len(hits)} functions in {windows} distinct 64 KiB windows; "
          f"{len(missing)} of them are not in the list")
    return 0


def build_tracer(tmp: str, names: dict[int, list[str]]) -> tuple[str, str]:
    """Compile bptrace.so into `tmp` and write the function addresses it traps: (lib, funcs)."""
    lib = os.path.join(tmp, "bptrace.so")
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", "-o", lib,
                    os.path.join(HERE, "bptrace.c")], check=True)
    funcs = os.path.join(tmp, "funcs.txt")
    with open(funcs, "w") as f:
        f.writelines(f"{a:x}\n" for a in sorted(names))
    return lib, funcs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    ap.add_argument("--bin", default=os.path.join(target, "release", "bedrock-cost-mcp"))
    ap.add_argument("--runs", type=int, default=3, help="traced runs per mode (default 3)")
    ap.add_argument("--out", default=os.path.join(HERE, "symbols.txt"))
    ap.add_argument("--no-queries", dest="queries", action="store_false",
                    help="start-up functions only, without the CUR answers (stdio and HTTP) after them")
    ap.add_argument("--check", action="store_true",
                    help="compare the binary with the committed list instead of writing one")
    args = ap.parse_args()
    names = functions(args.bin)
    if args.check:
        return check(args.bin, names, args.out)
    with tempfile.TemporaryDirectory() as tmp:
        lib, funcs = build_tracer(tmp, names)
        order: dict[int, None] = {}
        for mode, mode_args, env_extra in MODES:
            for i in range(args.runs):
                hits = trace(args.bin, mode_args, env_extra, lib, funcs, os.path.join(tmp, f"{mode}{i}.txt"))
                new = sum(1 for a in hits if a not in order)
                order.update(dict.fromkeys(hits))
                print(f"{mode} run {i + 1}: {len(hits)} functions, {new} new", file=sys.stderr)
        start_up = len(order)
        if args.queries:
            for i in range(args.runs):
                hits = trace(args.bin, MODES[0][1], {}, lib, funcs, os.path.join(tmp, f"q{i}.txt"), QUERIES)
                new = sum(1 for a in hits if a not in order)
                order.update(dict.fromkeys(hits))
                print(f"queries run {i + 1}: {len(hits)} functions, {new} new", file=sys.stderr)
            for i in range(args.runs):
                hits = trace_http(args.bin, lib, funcs, os.path.join(tmp, f"h{i}.txt"))
                new = sum(1 for a in hits if a not in order)
                order.update(dict.fromkeys(hits))
                print(f"http run {i + 1}: {len(hits)} functions, {new} new", file=sys.stderr)
    lines = [
        "# Functions run from exec to the `tools/list` answer, in first-call order: the linker puts",
        "# them first in .text (build.rs). Generated by tools/startup-order/generate.py; do not edit.",
    ]
    for n, addr in enumerate(order):
        if n == start_up:
            lines.append("# After start-up: the first --demo bedrock_spend answers (the CUR engine), stdio and HTTP.")
        lines.extend(names.get(addr, []))
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{start_up} start-up functions, {len(order) - start_up} more for the queries -> {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
