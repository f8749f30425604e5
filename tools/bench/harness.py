"""Shared pieces of the emulator-backed benchmarks (iam_sweep.py, registry_fanout.py).

- `resolve_binary`: `--bin`, else `$BIN`, else ${CARGO_TARGET_DIR:-target}/release/bedrock-cost-mcp,
  built with `cargo build --release` when missing; a debug binary (passed explicitly) gets a loud
  warning (debug numbers are not to be recorded);
- `Emulator`: one of the loopback emulators (tools/emulator, tools/registry_emulator), spawned with
  stdin=PIPE (it exits when we do), `READY <port>` read with a deadline, control calls over HTTP;
- `McpServer`: `bedrock-cost-mcp ... serve` over stdio, newline-delimited JSON-RPC as startup.py
  drives it (initialize 2025-11-25, notifications/initialized, then tools/call), each call timed
  with time.perf_counter from the write of the request to the read of its response line.

Python 3.11 standard library only (the emulators themselves need the tools venv). Linux.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shlex
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

# Shared helpers from the sibling benchmark (same folder, so on sys.path when run as a script).
from startup import PROTOCOL_VERSION, LineReader, RunFailed, kill_group, send

REPO = Path(__file__).resolve().parents[2]
EXIT_GRACE_S = 5.0
READY_TIMEOUT_S = 60.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def warn_loudly(lines: list[str]) -> None:
    bar = "!" * 78
    log(bar)
    for line in lines:
        log(f"!! {line}")
    log(bar)


def shown_command(argv: list[str]) -> str:
    py = sys.executable
    try:
        rel = os.path.relpath(py)
        py = rel if not rel.startswith("..") else py
    except ValueError:
        pass
    return shlex.join([py, *argv])


def default_target() -> Path:
    """${CARGO_TARGET_DIR:-target}, relative paths taken from the repository root."""
    target = Path(os.environ.get("CARGO_TARGET_DIR") or "target")
    return target if target.is_absolute() else REPO / target


def resolve_binary(arg: str | None, build: bool = True) -> tuple[str, bool]:
    """(path, is_debug): `--bin`, else `$BIN`, else the release binary under the target dir.

    The default release binary is built with `cargo build --release` when it is missing (and
    `build` is true); that takes 20-30 minutes on 2 cores. Exits with a message when there is no
    binary.
    """
    chosen = arg or os.environ.get("BIN")
    if chosen:
        binary = str(Path(chosen).absolute())
        if not Path(binary).is_file():
            raise SystemExit(f"{binary} (from {'--bin' if arg else '$BIN'}) does not exist")
    else:
        release = default_target() / "release" / "bedrock-cost-mcp"
        if not release.is_file():
            if not build:
                raise SystemExit(f"no release binary at {release}; cargo build --release, or pass --bin / set BIN")
            log(f"{release} is missing: running cargo build --release in {REPO} (20-30 minutes on 2 cores)")
            r = subprocess.run(["cargo", "build", "--release"], cwd=REPO)
            if r.returncode != 0 or not release.is_file():
                raise SystemExit(f"cargo build --release failed (exit {r.returncode}); pass --bin or set BIN")
        binary = str(release)
    debug = Path(binary).parent.name == "debug"
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"{binary} is not an executable file")
    if debug:
        warn_loudly([f"using the DEBUG binary {binary}",
                     "debug numbers are NOT to be recorded: build with cargo build --release"])
    return binary, debug


def debug_banner(binary: str) -> list[str]:
    return ["> **DEBUG BUILD** (`" + binary + "`): these numbers are not to be recorded; "
            "build with `cargo build --release`.", ""]


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """Our environment without AWS_* and BEDROCK_COST_MCP_* settings, plus `extra`.

    The shared config and credentials files are pointed at /dev/null so that a profile on this
    machine cannot add endpoints, regions or credentials: the server talks to the emulator only.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BEDROCK_COST_MCP_"))}
    env.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
                "AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/dev/null",
                "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    env.update(extra)
    return env


def stderr_tail(f, lines: int = 15) -> str:
    try:
        f.flush()
        f.seek(0)
        text = f.read().decode(errors="replace")
    except (OSError, ValueError):
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------- emulators


class Emulator:
    """A loopback emulator process: `python SCRIPT --port 0`, which prints `READY <port>`."""

    def __init__(self, script: Path, python: str = sys.executable, name: str = "emulator"):
        self.name = name
        self.script = script
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([python, str(script), "--port", "0", "--host", "127.0.0.1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     start_new_session=True)
        reader = LineReader(self.proc.stdout.fileno())
        try:
            line = reader.readline(time.perf_counter() + READY_TIMEOUT_S)
        except RunFailed:
            line = None
        if not line or not line.startswith(b"READY "):
            self.stop()
            raise SystemExit(f"{name} ({script}) did not print READY within {READY_TIMEOUT_S:.0f} s: "
                             f"{line!r}\n{stderr_tail(self.err)}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def request(self, method: str, path: str, body=None, timeout: float = 60.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
        except urllib.error.HTTPError as e:
            raise SystemExit(f"{self.name}: {method} {path} -> HTTP {e.code}: "
                             f"{e.read().decode(errors='replace')[:500]}") from None
        return json.loads(raw) if raw.strip() else None

    def calls(self) -> dict[str, int]:
        return self.request("GET", "/_emulator/calls")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the emulator exits on EOF of a piped stdin
            except OSError:
                pass
            try:
                self.proc.wait(EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                kill_group(self.proc.pid)
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


def calls_diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Calls made between two /_emulator/calls snapshots (operations with none left out)."""
    return {k: after[k] - before.get(k, 0) for k in sorted(after) if after[k] - before.get(k, 0)}


# --------------------------------------------------------------------------- the MCP server


def vm_hwm_kib(pid: int) -> int | None:
    """Peak RSS of the running process `pid` (VmHWM, KiB).

    ru_maxrss from wait4 is no use here: Linux carries the parent's high-water mark into a child's
    ru_maxrss across exec, and this script (boto3, urllib) is far larger than a small server, so
    every child would report the script's size. VmHWM belongs to the exec'd image alone.
    """
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class McpServer:
    """`argv` (ending in `serve`) over stdio; one process, any number of timed tools/call."""

    def __init__(self, argv: list[str], env: dict[str, str], client: str):
        self.err = tempfile.TemporaryFile()
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
                                     env=env, bufsize=0, start_new_session=True)
        self.reader = LineReader(self.proc.stdout.fileno())
        self.next_id = 1
        self.client = client
        self.peak_rss_kib: int | None = None  # ru_maxrss: at least this script's RSS at fork (see vm_hwm_kib)
        self.vm_hwm_kib: int | None = None  # the server's own peak RSS, read just before closing
        self.exit_status: int | None = None
        self.killed = False
        self.closed = False

    def _request(self, method: str, params: dict, timeout: float) -> tuple[dict, float, int]:
        """(result, elapsed ms from writing the request to reading its response line, line bytes)."""
        req_id = self.next_id
        self.next_id += 1
        t0 = time.perf_counter()
        deadline = t0 + timeout
        send(self.proc.stdin.fileno(), {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params})
        while True:  # bounded by the deadline: readline raises RunFailed when it passes
            try:
                line = self.reader.readline(deadline)
            except RunFailed:
                raise RunFailed(f"no {method} response within {timeout:.0f} s") from None
            t1 = time.perf_counter()
            if line is None:
                raise RunFailed(f"server stdout closed before the {method} response:\n{stderr_tail(self.err)}")
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict) or msg.get("id") != req_id or "method" in msg:
                continue  # notifications (we ask for no progress) or stray lines
            if "error" in msg:
                raise RunFailed(f"{method} returned an error: {json.dumps(msg['error'])[:500]}")
            if not isinstance(msg.get("result"), dict):
                raise RunFailed(f"{method} response has no result object: {line[:300]!r}")
            return msg["result"], (t1 - t0) * 1000, len(line)

    def initialize(self, timeout: float) -> float:
        """initialize + notifications/initialized; ms from spawn to the initialize response."""
        self._request("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                     "clientInfo": {"name": self.client, "version": "1.0.0"}}, timeout)
        ms = (time.perf_counter() - self.t_spawn) * 1000
        send(self.proc.stdin.fileno(), {"jsonrpc": "2.0", "method": "notifications/initialized"})
        return ms

    def call_tool(self, name: str, arguments: dict, timeout: float) -> tuple[dict, float, int]:
        """(structuredContent, ms, response line bytes); RunFailed on an error answer."""
        result, ms, n = self._request("tools/call", {"name": name, "arguments": arguments}, timeout)
        if result.get("isError"):
            text = " ".join(c.get("text", "") for c in result.get("content", []) if isinstance(c, dict))
            raise RunFailed(f"{name} failed: {text[:800]}")
        sc = result.get("structuredContent")
        if not isinstance(sc, dict):
            raise RunFailed(f"{name} answer has no structuredContent")
        return sc, ms, n

    def close(self) -> None:
        """Close stdin, wait up to EXIT_GRACE_S for exit (then SIGKILL); keep ru_maxrss."""
        if self.closed:
            return
        self.closed = True
        self.vm_hwm_kib = vm_hwm_kib(self.proc.pid)
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        end = time.perf_counter() + EXIT_GRACE_S
        while True:  # bounded by `end`
            wpid, status, rusage = os.wait4(self.proc.pid, os.WNOHANG)
            if wpid == self.proc.pid:
                break
            if time.perf_counter() >= end:
                self.killed = True
                kill_group(self.proc.pid)
                _, status, rusage = os.wait4(self.proc.pid, 0)
                break
            if self.reader.eof:
                time.sleep(0.005)
                continue
            # Drain stdout so the server cannot block on a full pipe while exiting.
            ready, _, _ = select.select([self.reader.fd], [], [], 0.01)
            if ready and not os.read(self.reader.fd, 65536):
                self.reader.eof = True
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping again
        self.exit_status = self.proc.returncode
        self.peak_rss_kib = rusage.ru_maxrss
        self.proc.stdout.close()

    def kill(self) -> None:
        """SIGKILL (the server leads its own session) and reap; for error paths."""
        if not self.closed:
            kill_group(self.proc.pid)
            self.close()

    def stderr_tail(self, lines: int = 15) -> str:
        return stderr_tail(self.err, lines)


# The peer (awslabs-billing-cost-management-mcp-server), installed by tools/bench/setup.sh.
PEER_ENTRY = "awslabs.billing-cost-management-mcp-server"


def default_peer() -> str:
    """The peer's console script next to this interpreter (the bench venv)."""
    return str(Path(sys.executable).parent / PEER_ENTRY)


def peer_parser(doc: str) -> argparse.ArgumentParser:
    """The argument parser of a side-by-side benchmark: the script's docstring as help, and
    --bin (ours) and --peer (theirs)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n", 1)[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=doc.split("\n\n", 1)[1])
    p.add_argument("--bin", help="bedrock-cost-mcp binary (default $BIN, else ${CARGO_TARGET_DIR:-target}/"
                                 "release/bedrock-cost-mcp, built with cargo build --release when missing)")
    p.add_argument("--peer", default=default_peer(),
                   help=f"peer command (default: {PEER_ENTRY} next to this Python)")
    return p
