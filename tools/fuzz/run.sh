#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a bounded time each.
#
#   tools/fuzz/run.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 tools/fuzz/run.sh     # longer
#   tools/fuzz/run.sh period tool_args     # some targets
#
# Needs the nightly toolchain and cargo-fuzz (`rustup toolchain install nightly`,
# `cargo install cargo-fuzz`). Builds in release mode with debug assertions and
# overflow checks, under AddressSanitizer, into fuzz/target (FUZZ_TARGET_DIR to
# move it); never into the main build's target dir. The corpus of each target
# lives in fuzz/corpus/<target>/: the committed seed-* files plus whatever the
# fuzzer finds (kept locally, gitignored). A crash, panic, leak or a single input
# running over FUZZ_TIMEOUT seconds (default 10) is saved under
# fuzz/artifacts/<target>/ and makes the script exit non-zero after the other
# targets ran. Reproduce one with:
#   cargo +nightly fuzz run -O -a <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root/fuzz"
seconds="${FUZZ_SECONDS:-60}"
timeout="${FUZZ_TIMEOUT:-10}"
target_dir="${FUZZ_TARGET_DIR:-$root/fuzz/target}"
# The main build's CARGO_TARGET_DIR must not receive sanitizer builds.
unset CARGO_TARGET_DIR

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz: the nightly toolchain is needed: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is needed: cargo install cargo-fuzz" >&2
    exit 2
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

flags=(-O -a --target-dir "$target_dir")
echo "== building the fuzz targets (release, debug assertions, ASan) into $target_dir"
cargo +nightly fuzz build "${flags[@]}"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="$(mktemp)"
    echo "== $t: ${seconds} s"
    status=0
    cargo +nightly fuzz run "${flags[@]}" "$t" "corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
        -print_final_stats=1 >"$log" 2>&1 || status=$?
    # libFuzzer's closing lines: runs done, coverage, corpus size.
    grep -E '^Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ *DONE' "$log" || true
    if [[ $status -ne 0 ]]; then
        echo "-- $t FAILED (exit $status):"
        # The panic message (or sanitizer report) and where the input was saved.
        { grep -E -A4 'panicked at' "$log" | grep -v 'stack backtrace' | head -12
          grep -E -A3 '^==[0-9]+==ERROR|ERROR: libFuzzer: (timeout|out-of-memory)' "$log" | head -8
          grep -E '^SUMMARY|Test unit written to|^artifact_prefix' "$log"; } || tail -20 "$log"
        failed+=("$t")
    fi
    rm -f "$log"
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: crashes in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: OK (${#targets[@]} targets, ${seconds} s each)"
