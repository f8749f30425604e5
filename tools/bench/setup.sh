#!/usr/bin/env bash
# Create tools/bench/.venv with the side-by-side benchmark tooling (tools/bench/requirements.txt):
# the peer MCP server, the official Python MCP SDK, DuckDB, and the AWS emulator's pins.
# Idempotent: a stamp file records the sha256 of requirements.txt; pip is skipped while it matches.
# The last line printed is the venv's python path.
set -euo pipefail

bench_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$bench_dir/.venv"
requirements="$bench_dir/requirements.txt"
stamp="$venv/.requirements.sha256"
python="$venv/bin/python"

if [[ ! -x "$python" ]]; then
    command -v python3 >/dev/null || { echo "setup.sh: python3 (3.11+) is required" >&2; exit 1; }
    python3 -m venv "$venv"
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    echo "setup.sh: installing tools/bench/requirements.txt into $venv (first time: a minute or two)" >&2
    "$python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
    echo "$want" > "$stamp"
fi

echo "$python"
