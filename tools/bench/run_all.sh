#!/usr/bin/env bash
# Side-by-side benchmarks in one command (issues 9 and 7):
#   1. startup to tools/list: ours (--demo and AWS mode) vs the peer     startup_vs_peer.py
#   2. one Cost Explorer question, first ask and 10 repeats, vs the peer  ce_question.py
#   3. CUR aggregation at 1M and 10M line items, ours vs DuckDB          cur_vs_duckdb.py
#   4. invocation-log aggregation (3.66M records), ours vs DuckDB        live_vs_duckdb.py
#   5. HTTP throughput on cached answers, 64 connections (ours only)     http_load.py (--demo: CUR;
#      --mode aws: Cost Explorer via the emulator)
#
# Usage: tools/bench/run_all.sh [--quick] [--bin PATH] [--out DIR]
#   --bin PATH  binary to measure (default $BIN, else ${CARGO_TARGET_DIR:-target}/release/bedrock-cost-mcp,
#               built with cargo build --release only when missing)
#   --out DIR   where the reports go (default /tmp/bedrock-cost-mcp-bench-YYYYmmdd-HHMMSS)
#   --quick     a smoke run (few runs, 200k CUR rows, one short HTTP run): not numbers to record
#
# Sets up tools/bench/.venv (tools/bench/setup.sh) and wrk (apt-get, as root) when missing. Every
# step runs even when an earlier one failed; the exit status is 1 if any failed. The reports are
# DIR/<step>.md (+ .json, + .log for progress), concatenated into DIR/report.md.
set -uo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench_dir/../.." && pwd)"
quick=0
bin="${BIN:-}"
out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1; shift ;;
        --bin) bin="${2:?--bin needs a path}"; shift 2 ;;
        --bin=*) bin="${1#--bin=}"; shift ;;
        --out) out="${2:?--out needs a folder}"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run_all.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

started=$(date +%s)
cd "$repo"

# The binary: given, or the default release build (built only when missing).
if [[ -n "$bin" ]]; then
    [[ -x "$bin" ]] || { echo "run_all.sh: $bin is not an executable file" >&2; exit 2; }
else
    target="${CARGO_TARGET_DIR:-target}"
    [[ "$target" = /* ]] || target="$repo/$target"
    bin="$target/release/bedrock-cost-mcp"
    if [[ ! -x "$bin" ]]; then
        echo "run_all.sh: $bin is missing: cargo build --release (20-30 minutes on 2 cores)" >&2
        cargo build --release || { echo "run_all.sh: cargo build --release failed" >&2; exit 1; }
    fi
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
export BIN="$bin"

out="${out:-/tmp/bedrock-cost-mcp-bench-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

echo "== setup: tools/bench/.venv" >&2
t0=$(date +%s)
py="$("$bench_dir/setup.sh" | tail -n1)"
[[ $? -eq 0 && -x "$py" ]] || { echo "run_all.sh: tools/bench/setup.sh failed" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
    if [[ $(id -u) -eq 0 ]]; then
        echo "== setup: apt-get install -y wrk" >&2
        (apt-get install -y -q wrk || (apt-get update -q && apt-get install -y -q wrk)) >/dev/null \
            || echo "run_all.sh: could not install wrk; the HTTP step will fail" >&2
    else
        echo "run_all.sh: wrk is missing and we are not root; the HTTP step will fail" >&2
    fi
fi
setup_s=$(( $(date +%s) - t0 ))

if [[ $quick -eq 1 ]]; then
    startup_args=(--runs 3 --warmup 1)
    ce_args=(--rounds 1 --repeats 10)
    cur_sizes=(200000)
    cur_args=(--runs 2 --warmup 0)
    live_args=(--rows 100000 --runs 2 --warmup 0)
    http_args=(--runs 1 --duration 3)
else
    startup_args=(--runs 20 --warmup 2)
    ce_args=(--rounds 5 --repeats 10)
    cur_sizes=(1000000 10000000)
    cur_args=(--runs 7 --warmup 1)
    live_args=(--runs 5 --warmup 1)
    http_args=(--runs 3 --duration 10)
fi

declare -a names statuses seconds
run_step() {  # name, command...
    local name="$1"; shift
    echo "== $name: $*" >&2
    local t=$(date +%s)
    "$@" --json "$out/$name.json" > "$out/$name.md" 2> >(tee "$out/$name.log" >&2)
    local rc=$?
    names+=("$name"); statuses+=("$rc"); seconds+=("$(( $(date +%s) - t ))")
    [[ $rc -eq 0 ]] || echo "== $name FAILED (exit $rc); see $out/$name.log" >&2
}

run_step startup "$py" "$bench_dir/startup_vs_peer.py" --bin "$bin" "${startup_args[@]}"
run_step ce_question "$py" "$bench_dir/ce_question.py" --bin "$bin" "${ce_args[@]}"
for rows in "${cur_sizes[@]}"; do
    run_step "cur_${rows}" "$py" "$bench_dir/cur_vs_duckdb.py" --bin "$bin" --rows "$rows" "${cur_args[@]}"
done
run_step live "$py" "$bench_dir/live_vs_duckdb.py" --bin "$bin" "${live_args[@]}"
run_step http_load "$py" "$bench_dir/http_load.py" --bin "$bin" "${http_args[@]}"
run_step http_load_aws "$py" "$bench_dir/http_load.py" --bin "$bin" --mode aws "${http_args[@]}"

total_s=$(( $(date +%s) - started ))
failed=0
{
    echo "# bedrock-cost-mcp side-by-side benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Command: \`tools/bench/run_all.sh$([[ $quick -eq 1 ]] && echo ' --quick')\` with BIN=\`$bin\`"
    echo "(commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$([[ -n "$(git -C "$repo" status --porcelain 2>/dev/null)" ]] && echo ', work tree modified')). Binary: $("$bin" --version 2>/dev/null), $(stat -c %s "$bin" | numfmt --to=iec) bytes, built $(date -u -r "$bin" '+%Y-%m-%d %H:%M UTC')."
    echo "Host: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(uname -sr); load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Versions: $("$py" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("awslabs.billing-cost-management-mcp-server", "mcp", "duckdb", "moto")))')."
    [[ $quick -eq 1 ]] && echo && echo "> **QUICK RUN**: smoke-test sizes, not numbers to record."
    echo
    echo "| step | exit | seconds |"
    echo "|---|---:|---:|"
    echo "| setup (venv, wrk) | 0 | $setup_s |"
    for i in "${!names[@]}"; do
        echo "| ${names[$i]} | ${statuses[$i]} | ${seconds[$i]} |"
        [[ ${statuses[$i]} -eq 0 ]] || failed=1
    done
    echo "| **total** | | **$total_s** |"
    for i in "${!names[@]}"; do
        echo
        echo "## ${names[$i]}"
        echo
        cat "$out/${names[$i]}.md"
    done
} > "$out/report.md"

echo "== done in ${total_s} s; report: $out/report.md" >&2
exit $failed
