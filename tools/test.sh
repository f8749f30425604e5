#!/usr/bin/env bash
# Runs every test on a fresh machine, in stages, and prints how long each took:
#   setup        the pinned AWS emulator (moto) into tools/.venv when missing; crates fetched
#   selftests    the emulators' own checks (wire shapes against the SDK crates' sources)
#   lint         `cargo fmt --all --check` and `cargo clippy --workspace --all-targets -- -D
#                warnings` over the server and its core crate (core/) (the lints
#                Cargo.toml's [lints] sets, and clippy's defaults)
#   packaging    tools/packaging/check.sh: mcpb manifest and bundle, server.json against the registry
#                schema, hadolint/actionlint/shellcheck, install.sh against a fake release (pinned tools)
#   rust         every Rust unit and integration test of the server and core/, with --no-fail-fast: one failure never
#                hides another binary's tests (the integration tests start the emulators and
#                the real binary on loopback themselves)
#   calendar     the date-sensitive tests (tests/it/calendar.rs) again on hard dates: the last
#                and the first day of a year, 29 February, the first and the last day of a
#                month, late and early in the day, each in a far-off time zone
#   fuzz         every fuzz target of the pure parsers for FUZZ_SECONDS (20) each, coverage-guided
#                on the stable toolchain (tools/fuzz/stable.sh)
#   conformance  the official MCP conformance suite against the binary cargo test built (pinned
#                with npm into tools/conformance/node_modules, with the Node 22 it runs on)
# Extra arguments go to every `cargo test` (e.g. --release). The last lines are one total over
# every test binary and run, and the stage times. Exit status: non-zero if any stage failed.
set -uo pipefail
cd "$(dirname "$0")/.."

status=0
times=()
started=$SECONDS
stage() { # name, command...
    local name="$1" t0=$SECONDS
    shift
    echo "== $name"
    if ! "$@"; then
        echo "== $name FAILED"
        status=1
    fi
    times+=("$(printf '%-12s %4ds' "$name" $((SECONDS - t0)))")
}

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

setup() {
    tools/setup-venv.sh >/dev/null && cargo fetch --locked
}
selftests() {
    tools/.venv/bin/python tools/emulator/selftest.py &&
        tools/.venv/bin/python tools/registry_emulator/selftest.py
}
lint() {
    cargo fmt --all --check && cargo clippy --locked --workspace --all-targets -- -D warnings
}
packaging() {
    tools/packaging/check.sh
}
rust() {
    cargo test --locked --workspace --no-fail-fast "$@" 2>&1 | tee -a "$log"
}
# The hard dates: RFC 3339 instant and a time zone far from UTC (nothing may depend on it).
calendar() {
    local ok=0 at tz
    for pin in \
        "2026-12-31T23:40:00Z Pacific/Kiritimati" \
        "2027-01-01T00:20:00Z Pacific/Pago_Pago" \
        "2028-02-29T12:00:00Z Asia/Kathmandu" \
        "2027-03-01T00:05:00Z America/St_Johns" \
        "2027-04-30T23:40:00Z Australia/Lord_Howe"; do
        read -r at tz <<<"$pin"
        echo "-- calendar tests on $at (TZ=$tz)"
        BEDROCK_COST_MCP_NOW="$at" TZ="$tz" \
            cargo test --locked --no-fail-fast "$@" --test it -- calendar:: 2>&1 | tee -a "$log" ||
            ok=1
    done
    return $ok
}
fuzz() {
    FUZZ_SECONDS="${FUZZ_SECONDS:-20}" tools/fuzz/stable.sh
}
conformance() {
    # cargo test built the debug binary; a --release run built that one instead.
    local profile=debug arg
    for arg in "$@"; do
        if [[ "$arg" == "--release" ]]; then profile=release; fi
    done
    BIN="${CARGO_TARGET_DIR:-target}/$profile/bedrock-cost-mcp" tools/conformance/run.sh
}

stage setup setup
stage selftests selftests
stage lint lint
stage packaging packaging
stage rust rust "$@"
stage calendar calendar "$@"
stage fuzz fuzz
stage conformance conformance "$@"

# One line over every test binary and calendar run.
awk '/^test result:/ { p += $4; f += $6 } END { printf "total: %d passed, %d failed\n", p, f }' "$log"
printf '%s\n' "${times[@]}" "$(printf '%-12s %4ds' all $((SECONDS - started)))"
exit $status
