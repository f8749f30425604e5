#!/usr/bin/env python3
"""Where the server's resident memory is once it has answered `tools/list` over stdio.

Spawns the server, sends `initialize`, `notifications/initialized` and `tools/list` (as
`startup.py` does), then reads `/proc/PID/smaps` and `/proc/PID/status` before closing stdin, and
prints the resident set split by kind: the binary's text, read-only data (`.rodata`, `.eh_frame`,
...), relocated read-only data (`.data.rel.ro`, non-PIE: file-backed, written only by the loader
for copy relocations), writable data, heap, other anonymous mappings (mimalloc arenas, thread
stacks), shared libraries, and the kernel-provided pages.

With `--pages`, it also counts the binary's resident pages per ELF section (from
`/proc/PID/pagemap`'s present bits and the section headers) and says how many distinct 64 KiB
windows they fall in: file-backed read faults map the whole `fault_around_bytes` window (64 KiB by
default), so scattered code costs a window per touch.

With `--spend JSON`, it first answers one `bedrock_spend` with those arguments (e.g. the first
CUR answer in `--demo`), and measures after that instead.

Example:
  python3 tools/bench/rss_breakdown.py --runs 5 -- $BIN --demo serve
  python3 tools/bench/rss_breakdown.py --spend '{"period": "last_month", "group_by": ["tag:team"]}' -- $BIN --demo serve
  python3 tools/bench/rss_breakdown.py --pages -- $BIN serve
Linux only; Python 3.11 standard library (plus `readelf` for --pages).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from startup import LineReader, Run, await_response, handshake, send  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
HEADER_RE = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S{4}) ([0-9a-f]+) \S+ (\d+)\s*(.*)$")


def smaps(pid: int) -> list[dict]:
    maps = []
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = HEADER_RE.match(line)
            if m:
                cur = {
                    "start": int(m.group(1), 16),
                    "end": int(m.group(2), 16),
                    "perms": m.group(3),
                    "offset": int(m.group(4), 16),
                    "inode": int(m.group(5)),
                    "path": m.group(6).strip(),
                }
                maps.append(cur)
                continue
            key, _, rest = line.partition(":")
            parts = rest.split()
            if cur is not None and len(parts) == 2 and parts[1] == "kB":
                cur[key] = int(parts[0])
    return maps


def status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                out[key] = int(parts[0])
    return out


def kind(m: dict, exe: str) -> str:
    path, perms = m["path"], m["perms"]
    if path == exe:
        if "x" in perms:
            return "binary text (r-x)"
        if "w" in perms:
            return "binary data (rw-: .data/.got/.bss, COW)"
        return "binary read-only (r--: .rodata, .data.rel.ro, .eh_frame, ...)"
    if path == "[heap]":
        return "heap (brk)"
    if path.startswith("[stack"):
        return "main stack"
    if path in ("[vdso]", "[vvar]", "[vsyscall]", "[vvar_vclock]"):
        return "kernel (vdso/vvar)"
    if path and not path.startswith("["):
        return "shared libraries" if ".so" in path else f"other file ({os.path.basename(path)})"
    return "other anonymous (mimalloc arenas, thread stacks)"


def sections(exe: str) -> list[tuple[str, int, int]]:
    """(name, start address, end address) of the allocated sections."""
    out = subprocess.run(["readelf", "-SW", exe], capture_output=True, text=True, check=True).stdout
    secs = []
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)", line)
        if not m:
            continue
        name, addr, size, flags = m.group(1), int(m.group(2), 16), int(m.group(3), 16), m.group(4)
        if "A" in flags and addr:
            secs.append((name, addr, addr + size))
    return secs


def resident_pages(pid: int, start: int, end: int) -> list[int]:
    """Addresses of the pages in [start, end) that are present in the process's page table."""
    pages = []
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read((end - start) // PAGE * 8)
    for i in range(len(data) // 8):
        (entry,) = struct.unpack_from("<Q", data, i * 8)
        if entry >> 63:
            pages.append(start + i * PAGE)
    return pages


def page_report(pid: int, exe: str, maps: list[dict]) -> list[str]:
    secs = sections(exe)
    counts: dict[str, list[int]] = {}
    for m in maps:
        if m["path"] != exe:
            continue
        for page in resident_pages(pid, m["start"], m["end"]):
            name = next((s for s, a, b in secs if a <= page < b or (page <= a < page + PAGE)), "(other)")
            counts.setdefault(name, []).append(page)
    lines = ["", "| section | size KiB | resident KiB | 64 KiB windows touched |", "|---|---:|---:|---:|"]
    size = {s: (b - a) // 1024 for s, a, b in secs}
    for name, pages in sorted(counts.items(), key=lambda kv: -len(kv[1])):
        windows = len({p >> 16 for p in pages})
        lines.append(f"| {name} | {size.get(name, 0):,} | {len(pages) * PAGE // 1024:,} | {windows} |")
    return lines


def one(argv: list[str], env: dict[str, str], timeout: float, pages: bool,
        spend: dict | None) -> tuple[dict[str, int], dict[str, int], list[str]]:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, bufsize=0, start_new_session=True)
    reader = LineReader(proc.stdout.fileno())
    fd = proc.stdin.fileno()
    deadline = time.perf_counter() + timeout
    run = Run(server="x", round=0, warmup=False)
    try:
        handshake(fd, reader, "rss-breakdown", deadline, run)
        send(fd, {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        await_response(reader, 2, "tools/list", deadline, run)
        if spend is not None:
            send(fd, {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                      "params": {"name": "bedrock_spend", "arguments": spend}})
            msg, _ = await_response(reader, 3, "tools/call", deadline, run)
            if msg["result"].get("isError"):
                raise SystemExit(f"bedrock_spend failed: {json.dumps(msg['result'])[:300]}")
        exe = os.path.realpath(f"/proc/{proc.pid}/exe")
        maps = smaps(proc.pid)
        st = status(proc.pid)
        by_kind: dict[str, int] = {}
        for m in maps:
            k = kind(m, exe)
            by_kind[k] = by_kind.get(k, 0) + m.get("Rss", 0)
        extra = page_report(proc.pid, exe, maps) if pages else []
        return by_kind, st, extra
    finally:
        proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs; the table shows medians (default 3)")
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--pages", action="store_true", help="also count the binary's resident pages per ELF section (last run)")
    ap.add_argument("--spend", type=json.loads, metavar="JSON",
                    help="answer one bedrock_spend with these arguments first, then measure")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="-- server command line")
    args = ap.parse_args()
    argv = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not argv:
        ap.error("give the server command after --")
    results = [one(argv, dict(os.environ), args.timeout, args.pages and i == args.runs - 1, args.spend)
               for i in range(args.runs)]
    kinds = sorted({k for r in results for k in r[0]}, key=lambda k: -statistics.median(r[0].get(k, 0) for r in results))
    after = "`tools/list`" if args.spend is None else f"`tools/list` and `bedrock_spend` {json.dumps(args.spend)}"
    print(f"`{' '.join(argv)}`, after {after}, median of {args.runs} runs")
    print()
    print("| resident | KiB |")
    print("|---|---:|")
    for k in kinds:
        print(f"| {k} | {statistics.median(r[0].get(k, 0) for r in results):,.0f} |")
    for key in ("VmRSS", "RssFile", "RssAnon", "VmHWM"):
        print(f"| **{key}** | {statistics.median(r[1].get(key, 0) for r in results):,.0f} |")
    for line in results[-1][2]:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
