#!/usr/bin/env bash
# Runs every test on a fresh machine: installs the pinned AWS emulator (moto)
# into tools/.venv when missing, then runs the Rust unit and integration tests,
# which start the emulator and the real binary on loopback themselves, then the
# official MCP conformance suite against the binary cargo test just built
# (pinned with npm into tools/conformance/node_modules; needs Node >= 20).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-venv.sh >/dev/null
# The registry emulator's selftest checks its wire format against the SDK crates' sources.
cargo fetch --locked
tools/.venv/bin/python tools/emulator/selftest.py
tools/.venv/bin/python tools/registry_emulator/selftest.py
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --locked "$@" 2>&1 | tee "$log"
# One line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
# cargo test built the debug binary; a --release run built that one instead.
profile=debug
for arg in "$@"; do
    if [[ "$arg" == "--release" ]]; then profile=release; fi
done
BIN="${CARGO_TARGET_DIR:-target}/$profile/bedrock-cost-mcp" tools/conformance/run.sh
