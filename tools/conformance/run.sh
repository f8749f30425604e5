#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, pinned in
# package-lock.json) against the real binary serving streamable HTTP on a free loopback port.
#
#   tools/conformance/run.sh            # BIN defaults to ${CARGO_TARGET_DIR:-target}/debug/bedrock-cost-mcp
#   BIN=path/to/bedrock-cost-mcp tools/conformance/run.sh
#   CONFORMANCE_OUT=DIR tools/conformance/run.sh   # keep every scenario's checks.json in DIR
#
# Installs the suite with `npm ci` into tools/conformance/node_modules (gitignored) when missing
# or when package-lock.json changed; a stamp file makes later runs skip npm. The suite needs
# Node >= 22: the lock pins npm's `node` package (22.23.3), so any npm installs the Node that
# runs it (from the npm registry, checked against the lock's integrity hashes).
# Scenarios listed in expected-failures.yml must fail, every other one must pass (a listed one
# that passes fails the run too). Exit status: 0 when that holds, non-zero otherwise.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

bin="${BIN:-${CARGO_TARGET_DIR:-target}/debug/bedrock-cost-mcp}"
if [[ ! -x "$bin" ]]; then
    echo "conformance: no binary at $bin; run 'cargo build' first or set BIN" >&2
    exit 2
fi
if ! command -v npm >/dev/null; then
    echo "conformance: npm is needed (it installs the pinned suite and the Node 22 that runs it)" >&2
    exit 2
fi

# Install the pinned suite once per package-lock.json.
suite="$here/node_modules/@modelcontextprotocol/conformance/dist/index.js"
stamp="$here/node_modules/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [[ ! -f "$suite" || ! -x "$here/node_modules/.bin/node" || "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" > "$stamp"
fi

work="$(mktemp -d)"
out="${CONFORMANCE_OUT:-$work/results}"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the kernel picks a free port and the server prints the address it got, so there is
# no window between choosing a port and binding it. Demo mode: no AWS account, no network.
"$bin" --demo serve --http 127.0.0.1:0 </dev/null 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 1 200); do
    url="$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*/mcp' "$work/server.log" || true)"
    [[ -n "$url" ]] && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    sleep 0.05
done
if [[ -z "$url" ]]; then
    echo "conformance: the server did not start; its stderr:" >&2
    cat "$work/server.log" >&2
    exit 1
fi

status=0
"$here/node_modules/.bin/node" "$suite" server --url "$url" --suite all \
    --expected-failures "$here/expected-failures.yml" -o "$out" >"$work/suite.log" 2>&1 || status=$?

if [[ $status -eq 0 ]]; then
    # The per-scenario progress lines are noise on success; the summary says it all.
    sed -n '/=== SUMMARY ===/,$p' "$work/suite.log"
    echo "conformance: OK ($url, $bin)"
else
    cat "$work/suite.log"
    echo "conformance: FAILED (exit $status); server stderr:" >&2
    tail -n 50 "$work/server.log" >&2
    if [[ -n "${CONFORMANCE_OUT:-}" ]]; then
        echo "conformance: per-scenario checks.json in $out" >&2
    else
        echo "conformance: rerun with CONFORMANCE_OUT=DIR to keep each scenario's checks.json" >&2
    fi
fi
exit $status
