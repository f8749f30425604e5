#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ on the stable toolchain for a bounded time each: the README's
# test command runs this (tools/test.sh, stage "fuzz"); tools/fuzz/run.sh is the nightly
# version with AddressSanitizer (not needed for safe Rust to find panics, loops and
# overflows, and nightly cannot be installed on every machine).
#
#   tools/fuzz/stable.sh                     # every target, FUZZ_SECONDS (15) each
#   FUZZ_SECONDS=120 tools/fuzz/stable.sh period
#   FUZZ_SEED=0 FUZZ_SECONDS=600 tools/fuzz/stable.sh   # a random seed, to look further
#
# The targets are built in release mode with debug assertions and overflow checks, and with
# LLVM's SanitizerCoverage instrumentation (stable `-C passes` / `-C llvm-args`, what cargo-fuzz
# adds on nightly), so libFuzzer is coverage-guided as usual. They build into
# ${CARGO_TARGET_DIR:-target}/fuzz-stable (a cache, like the main build). Each run starts from
# the committed seeds (fuzz/corpus/<target>/seed-*) in a scratch corpus, so the repository is not
# written to; a crash, panic or input over FUZZ_TIMEOUT seconds (10) fails the run and its input
# is copied to fuzz/artifacts/<target>/ (gitignored) for `cargo +nightly fuzz run`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root/fuzz"
seconds="${FUZZ_SECONDS:-15}"
timeout="${FUZZ_TIMEOUT:-10}"
# A fixed seed: every run explores the same sequence of inputs (a slower machine a shorter
# prefix of it), so the test command does not fail on one day for a new random find.
# FUZZ_SEED=0 lets libFuzzer pick one, for exploring.
seed="${FUZZ_SEED:-1}"
target_dir="${CARGO_TARGET_DIR:-$root/target}/fuzz-stable"

export RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Coverflow-checks \
 -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares"
unset CARGO_TARGET_DIR

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    targets=()
    for f in fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi

# An explicit --target keeps RUSTFLAGS off the build scripts (they cannot link the coverage
# hooks), as cargo-fuzz does.
host="$(rustc -vV | sed -n 's/^host: //p')"
echo "== building ${#targets[@]} fuzz targets (stable, release, coverage-instrumented) into $target_dir"
cargo build --locked --release --bins --target "$host" --target-dir "$target_dir" 2>&1 | tail -3
bin_dir="$target_dir/$host/release"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
    corpus="$scratch/corpus-$t"
    mkdir -p "$corpus" "$scratch/art-$t"
    cp corpus/"$t"/seed-* "$corpus"/ 2>/dev/null || true
    log="$scratch/$t.log"
    status=0
    "$bin_dir/$t" "$corpus" -seed="$seed" -max_total_time="$seconds" -timeout="$timeout" \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$scratch/art-$t/" \
        >"$log" 2>&1 || status=$?
    runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
    cov="$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)"
    echo "-- $t: $runs runs in ${seconds} s, $cov"
    if [[ $status -ne 0 ]]; then
        echo "-- $t FAILED (exit $status):"
        { grep -E -A4 'panicked at' "$log" | head -12
          grep -E 'ERROR: libFuzzer|Test unit written to' "$log"; } || tail -20 "$log"
        mkdir -p "artifacts/$t"
        cp "$scratch/art-$t"/* "artifacts/$t/" 2>/dev/null || true
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz: failures in: ${failed[*]} (inputs under fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: OK (${#targets[@]} targets, ${seconds} s each, stable toolchain)"
