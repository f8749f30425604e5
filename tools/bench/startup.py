#!/usr/bin/env python3
"""Time from spawn to the `tools/list` answer, and peak RSS, for MCP servers over stdio.

Each run: spawn the server -> send `initialize` -> wait for its response -> send
`notifications/initialized` -> send `tools/list` (following `nextCursor` pages, if any)
-> wait for the (last) response -> record elapsed wall time -> close stdin -> wait for
exit (SIGKILL after 5 s). Peak RSS is the largest `VmHWM` (the kernel's high-water mark of a
process's own resident set) among the processes of the server's process group, read from /proc
right after the last `tools/list` answer. `ru_maxrss` from os.wait4 is kept as a second column but
is not the server's memory: when Python spawns with vfork, exec charges the *parent's* (this
script's) high-water RSS to the child, so a small server reports Python's ~15 MiB.

Runs alternate between servers (A, B, A, B, ...) so machine noise hits all alike.
Python 3.11 standard library only; Linux (ru_maxrss is in KiB there).

Example:
  python3 tools/bench/startup.py --runs 20 \\
      --server ours="target/release/bedrock-cost-mcp --demo serve" \\
      --server peer="npx -y some-other-mcp-server"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import shlex
import signal
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

PROTOCOL_VERSION = "2025-11-25"
EXIT_GRACE_S = 5.0
SECRET_KEY_RE = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|API_?KEY|ACCESS_KEY|SESSION", re.I)


class RunFailed(Exception):
    pass


@dataclass
class Server:
    name: str
    command: str
    argv: list[str]


@dataclass
class Run:
    server: str
    round: int  # 0-based, warmup rounds included
    warmup: bool
    ok: bool = False
    error: str | None = None
    initialize_ms: float | None = None  # spawn -> initialize response
    tools_list_ms: float | None = None  # spawn -> (last) tools/list response
    peak_rss_kib: int | None = None
    ru_maxrss_kib: int | None = None
    exit_status: int | None = None  # exit code, or -signal
    killed: bool = False  # did not exit within EXIT_GRACE_S after stdin closed
    pages: int | None = None
    tools: int | None = None
    result_bytes: int | None = None  # compact JSON of `result` (summed over pages)
    line_bytes: int | None = None  # raw response line(s) as received, newline excluded
    skipped_lines: int = 0  # stdout lines that were not the awaited response
    tool_names: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- one run


class LineReader:
    """Reads newline-delimited lines from a pipe fd with a deadline."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def readline(self, deadline: float) -> bytes | None:
        """A line without its newline, or None at EOF. Raises RunFailed on timeout."""
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 1 :]
                return line
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line
                return None
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise RunFailed("timed out")
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if chunk:
                self.buf += chunk
            else:
                self.eof = True


def send(fd: int, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
    try:
        while data:
            n = os.write(fd, data)
            data = data[n:]
    except (BrokenPipeError, OSError) as e:
        raise RunFailed(f"writing {message.get('method')}: {e}") from None


def await_response(reader: LineReader, req_id: int, method: str, deadline: float, run: Run) -> tuple[dict, int]:
    """The response object with id == req_id, and its raw line length in bytes."""
    while True:
        try:
            line = reader.readline(deadline)
        except RunFailed:
            raise RunFailed(f"timed out waiting for the {method} response") from None
        if line is None:
            raise RunFailed(f"stdout closed before the {method} response")
        line = line.rstrip(b"\r")
        try:
            msg = json.loads(line)
        except ValueError:
            run.skipped_lines += 1
            continue
        if not isinstance(msg, dict) or msg.get("id") != req_id or "method" in msg:
            run.skipped_lines += 1
            continue
        if "error" in msg:
            raise RunFailed(f"{method} returned an error: {json.dumps(msg['error'])[:300]}")
        if not isinstance(msg.get("result"), dict):
            raise RunFailed(f"{method} response has no result object: {line[:300]!r}")
        return msg, len(line)


def handshake(fd: int, reader: LineReader, client: str, deadline: float, run: Run) -> None:
    """`initialize` (answered), then `notifications/initialized`."""
    send(fd, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": PROTOCOL_VERSION, "capabilities": {},
        "clientInfo": {"name": client, "version": "1.0.0"}}})
    await_response(reader, 1, "initialize", deadline, run)
    send(fd, {"jsonrpc": "2.0", "method": "notifications/initialized"})


def kill_group(pid: int) -> None:
    # The child leads its own session (start_new_session), so this reaches wrappers'
    # children too (npx, uvx, shell scripts) and nothing else.
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def reap(proc: subprocess.Popen, run: Run, reader: LineReader | None, grace: float) -> None:
    """Wait up to `grace` seconds for exit (draining stdout), then SIGKILL; wait4 either way."""
    pid = proc.pid
    end = time.perf_counter() + grace
    status = rusage = None
    while True:
        wpid, status, rusage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            break
        remaining = end - time.perf_counter()
        if remaining <= 0:
            run.killed = True
            kill_group(pid)
            _, status, rusage = os.wait4(pid, 0)
            break
        # Drain stdout so a chatty server cannot block on a full pipe while exiting.
        if reader is not None and not reader.eof:
            ready, _, _ = select.select([reader.fd], [], [], min(remaining, 0.01))
            if ready:
                if not os.read(reader.fd, 65536):
                    reader.eof = True
        else:
            time.sleep(min(remaining, 0.002))
    proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping again
    run.exit_status = proc.returncode
    run.ru_maxrss_kib = rusage.ru_maxrss


def group_hwm_kib(pgid: int) -> int | None:
    """Largest VmHWM (KiB) among live processes in process group `pgid` (Linux /proc)."""
    best = None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
            # Fields after the parenthesised command name: state ppid pgrp ...
            fields = stat[stat.rindex(b")") + 2:].split()
            if int(fields[2]) != pgid:
                continue
            with open(f"/proc/{entry}/status", "rb") as f:
                for line in f:
                    if line.startswith(b"VmHWM:"):
                        kib = int(line.split()[1])
                        best = kib if best is None else max(best, kib)
                        break
        except (OSError, ValueError, IndexError):
            continue
    return best


def one_run(server: Server, env: dict[str, str], timeout: float, run: Run) -> None:
    t0 = time.perf_counter()
    try:
        proc = subprocess.Popen(
            server.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            bufsize=0,
            start_new_session=True,
        )
    except OSError as e:
        run.error = f"spawn failed: {e}"
        return
    deadline = t0 + timeout
    reader = LineReader(proc.stdout.fileno())
    in_fd = proc.stdin.fileno()
    try:
        try:
            send(in_fd, {
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "startup-bench", "version": "1.0.0"},
                },
            })
            await_response(reader, 1, "initialize", deadline, run)
            run.initialize_ms = (time.perf_counter() - t0) * 1000
            send(in_fd, {"jsonrpc": "2.0", "method": "notifications/initialized"})

            tools: list = []
            result_bytes = line_bytes = pages = 0
            cursor = None
            req_id = 2
            while True:
                params = {"cursor": cursor} if cursor is not None else {}
                send(in_fd, {"jsonrpc": "2.0", "id": req_id, "method": "tools/list", "params": params})
                msg, n = await_response(reader, req_id, "tools/list", deadline, run)
                result = msg["result"]
                pages += 1
                line_bytes += n
                result_bytes += len(json.dumps(result, separators=(",", ":")).encode())
                tools.extend(result.get("tools") or [])
                cursor = result.get("nextCursor")
                if not cursor:
                    break
                if pages >= 100:
                    raise RunFailed("tools/list: more than 100 pages")
                req_id += 1
            run.tools_list_ms = (time.perf_counter() - t0) * 1000
            run.pages = pages
            run.tools = len(tools)
            run.result_bytes = result_bytes
            run.line_bytes = line_bytes
            run.tool_names = [t.get("name") for t in tools if isinstance(t, dict)]
            run.peak_rss_kib = group_hwm_kib(proc.pid)
            run.ok = True
        except RunFailed as e:
            run.error = f"{e} (after {(time.perf_counter() - t0) * 1000:.0f} ms)"
            kill_group(proc.pid)
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            reap(proc, run, reader, 0 if run.error else EXIT_GRACE_S)
        except BaseException:
            kill_group(proc.pid)
            raise
        finally:
            proc.stdout.close()


# --------------------------------------------------------------------------- stats


def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summarize(runs: list[Run]) -> dict:
    ok = [r for r in runs if r.ok]
    out: dict = {"runs": len(runs), "ok": len(ok), "failed": len(runs) - len(ok)}
    if not ok:
        return out
    t = [r.tools_list_ms for r in ok]
    init = [r.initialize_ms for r in ok]
    rss = [r.peak_rss_kib / 1024 for r in runs if r.peak_rss_kib]
    out.update(
        tools_list_ms_median=statistics.median(t),
        tools_list_ms_p90=pct(t, 90),
        tools_list_ms_min=min(t),
        tools_list_ms_max=max(t),
        initialize_ms_median=statistics.median(init),
        peak_rss_mib_median=statistics.median(rss) if rss else None,
        peak_rss_mib_max=max(rss) if rss else None,
        result_bytes=ok[0].result_bytes,
        line_bytes=ok[0].line_bytes,
        approx_tokens=round(ok[0].result_bytes / 4),
        tools=ok[0].tools,
        pages=ok[0].pages,
        sizes_vary=len({(r.result_bytes, r.line_bytes, r.tools) for r in ok}) > 1,
        killed=sum(r.killed for r in ok),
        nonzero_exits=sum(1 for r in ok if r.exit_status not in (0, None) and not r.killed),
        skipped_lines=sum(r.skipped_lines for r in ok),
    )
    return out


# --------------------------------------------------------------------------- output


def shown_command(argv: list[str]) -> str:
    """The command line (argv includes the script path), secret-looking --env values redacted."""
    shown = ["python3", argv[0]]
    redact_next = False
    for a in argv[1:]:
        if redact_next or (a.startswith("--env=")):
            prefix = "--env=" if a.startswith("--env=") else ""
            kv = a[len(prefix):]
            key = kv.split("=", 1)[0]
            if "=" in kv and SECRET_KEY_RE.search(key):
                a = f"{prefix}{key}=<redacted>"
        redact_next = a == "--env"
        shown.append(a)
    return shlex.join(shown)


def host_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def fmt(v, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def ratio(a, b) -> str:
    if a is None or b is None or b == 0:
        return "-"
    r = a / b
    return f"{r:.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def markdown(command: str, args, servers: list[Server], summaries: dict[str, dict]) -> str:
    L = []
    L.append("```sh")
    L.append(command)
    L.append("```")
    L.append("")
    L.append(f"Host: {host_line()}. Runs per server: {args.runs} recorded after {args.warmup} warmup, "
             f"servers alternating; {time.strftime('%Y-%m-%d %H:%M %Z')}.")
    L.append("")
    L.append("| server | ok/runs | tools/list median ms | p90 ms | min ms | max ms | initialize median ms "
             "| peak RSS median MiB | peak RSS max MiB | tools | result bytes | line bytes | ~tokens (bytes/4) |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        m = summaries[s.name]
        L.append("| " + " | ".join([
            s.name,
            f"{m['ok']}/{m['runs']}",
            fmt(m.get("tools_list_ms_median")),
            fmt(m.get("tools_list_ms_p90")),
            fmt(m.get("tools_list_ms_min")),
            fmt(m.get("tools_list_ms_max")),
            fmt(m.get("initialize_ms_median")),
            fmt(m.get("peak_rss_mib_median")),
            fmt(m.get("peak_rss_mib_max")),
            fmt(m.get("tools"), "d"),
            fmt(m.get("result_bytes"), "d"),
            fmt(m.get("line_bytes"), "d"),
            fmt(m.get("approx_tokens"), "d"),
        ]) + " |")
    L.append("")
    L.append("Servers:")
    L.append("")
    for s in servers:
        L.append(f"- `{s.name}`: `{s.command}`")
    L.append("")
    L.append("Time is wall clock from spawn to the `tools/list` response (spawn, `initialize`, "
             "`notifications/initialized`, `tools/list`). p90 interpolates linearly. Peak RSS is "
             "the largest `VmHWM` among the server's process group after the `tools/list` answer (a "
             "wrapper's server child included; never a sum); `ru_maxrss` is not used because exec after "
             "vfork charges this script's own RSS to the child. Result bytes = compact JSON re-serialisation of the "
             "`tools/list` `result`; line bytes = the raw response line as sent, newline excluded; "
             "tokens are approximate (result bytes / 4), not a tokenizer count.")
    notes = []
    for s in servers:
        m = summaries[s.name]
        if m.get("pages", 1) and m.get("pages", 1) > 1:
            notes.append(f"`{s.name}`: tools/list was paginated over {m['pages']} pages; sizes are summed.")
        if m.get("sizes_vary"):
            notes.append(f"`{s.name}`: tools/list size differed between runs; the first run's is shown.")
        if m.get("killed"):
            notes.append(f"`{s.name}`: {m['killed']} run(s) did not exit within {EXIT_GRACE_S:.0f} s of stdin closing and were killed.")
        if m.get("nonzero_exits"):
            notes.append(f"`{s.name}`: {m['nonzero_exits']} run(s) exited non-zero after stdin closed.")
        if m.get("failed"):
            notes.append(f"`{s.name}`: {m['failed']} run(s) FAILED (see stderr / --json).")
    if notes:
        L.append("")
        L.extend(f"- {n}" for n in notes)
    if len(servers) > 1:
        for base in (args.baseline or [servers[0].name]):
            b = summaries[base]
            L.append("")
            L.append(f"Ratios relative to `{base}` (other / {base}; above 1 means {base} is faster or smaller):")
            L.append("")
            for s in servers:
                if s.name == base:
                    continue
                m = summaries[s.name]
                L.append(f"- {s.name}/{base} startup median: {ratio(m.get('tools_list_ms_median'), b.get('tools_list_ms_median'))}, "
                         f"p90: {ratio(m.get('tools_list_ms_p90'), b.get('tools_list_ms_p90'))}, "
                         f"peak RSS median: {ratio(m.get('peak_rss_mib_median'), b.get('peak_rss_mib_median'))}, "
                         f"tools/list bytes: {ratio(m.get('result_bytes'), b.get('result_bytes'))}")
    return "\n".join(L) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        description="Time to tools/list and peak RSS of MCP servers over stdio.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    p.add_argument("--server", action="append", required=True, metavar="NAME=COMMAND",
                   help="server to measure; COMMAND is split with shlex (repeatable; the first is the ratio baseline)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="environment variable for all servers (repeatable)")
    p.add_argument("--runs", type=int, default=20, help="recorded runs per server (default 20)")
    p.add_argument("--warmup", type=int, default=2, help="unrecorded warmup runs per server (default 2)")
    p.add_argument("--timeout", type=float, default=30.0, help="per-run timeout in seconds, spawn to tools/list (default 30)")
    p.add_argument("--json", metavar="FILE", help="write every run's raw numbers as JSON")
    p.add_argument("--baseline", action="append", default=[], metavar="NAME",
                   help="server the ratios are relative to (repeatable; default the first --server)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        p.error("--runs must be >= 1 and --warmup >= 0")
    servers = []
    for spec in args.server:
        name, sep, command = spec.partition("=")
        if not sep or not name or not command.strip():
            p.error(f"--server wants NAME=COMMAND, got {spec!r}")
        if any(s.name == name for s in servers):
            p.error(f"duplicate server name {name!r}")
        servers.append(Server(name, command, shlex.split(command)))
    for base in args.baseline:
        if not any(s.name == base for s in servers):
            p.error(f"--baseline {base!r} is not a --server name")
    env = dict(os.environ)
    for kv in args.env:
        k, sep, v = kv.partition("=")
        if not sep or not k:
            p.error(f"--env wants KEY=VALUE, got {kv!r}")
        env[k] = v
    return args, servers, env


def main(argv: list[str]) -> int:
    args, servers, env = parse_args(argv[1:])
    command = shown_command(argv)
    runs: dict[str, list[Run]] = {s.name: [] for s in servers}
    rounds = args.warmup + args.runs
    for rnd in range(rounds):
        for s in servers:
            run = Run(server=s.name, round=rnd, warmup=rnd < args.warmup)
            one_run(s, env, args.timeout, run)
            runs[s.name].append(run)
            label = "warmup" if run.warmup else f"run {rnd - args.warmup + 1}/{args.runs}"
            if run.ok:
                print(f"[{s.name}] {label}: tools/list {run.tools_list_ms:.1f} ms, "
                      f"peak RSS {run.peak_rss_kib / 1024:.1f} MiB, exit {run.exit_status}"
                      f"{' (killed)' if run.killed else ''}", file=sys.stderr)
            else:
                print(f"[{s.name}] {label}: FAILED: {run.error}", file=sys.stderr)

    recorded = {name: [r for r in rs if not r.warmup] for name, rs in runs.items()}
    summaries = {name: summarize(rs) for name, rs in recorded.items()}
    sys.stdout.write(markdown(command, args, servers, summaries))

    if args.json:
        doc = {
            "command": command,
            "host": host_line(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "protocol_version": PROTOCOL_VERSION,
            "runs": args.runs,
            "warmup": args.warmup,
            "timeout_s": args.timeout,
            "exit_grace_s": EXIT_GRACE_S,
            "units": {"*_ms": "milliseconds, wall clock from spawn", "peak_rss_kib": "KiB (max VmHWM in the process group)", "ru_maxrss_kib": "KiB (wait4; includes the spawner's RSS)",
                      "peak_rss_mib_*": "MiB", "approx_tokens": "result_bytes / 4"},
            "servers": [
                {"name": s.name, "command": s.command, "argv": s.argv,
                 "summary": summaries[s.name], "runs": [asdict(r) for r in runs[s.name]]}
                for s in servers
            ],
        }
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")

    failed = [r for rs in runs.values() for r in rs if not r.ok]
    if failed:
        print(f"{len(failed)} run(s) failed (warmups included):", file=sys.stderr)
        for r in failed:
            print(f"  [{r.server}] round {r.round}: {r.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
