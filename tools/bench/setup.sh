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

# A venv whose creation was cut short has a python but no pip: make it again.
if [[ ! -x "$python" ]] || ! "$python" -m pip --version >/dev/null 2>&1; then
    command -v python3 >/dev/null || { echo "setup.sh: python3 (3.11+) is required" >&2; exit 1; }
    python3 -m venv --clear "$venv"
fi

# The stamp alone is not trusted: an install cut short leaves a venv without its packages.
installed() {
    [[ -x "$venv/bin/awslabs.billing-cost-management-mcp-server" ]] &&
        "$python" -c "import mcp, duckdb, pyarrow, moto, boto3" 2>/dev/null
}

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" != "$have" ]] || ! installed; then
    rm -f "$stamp"
    echo "setup.sh: installing tools/bench/requirements.txt into $venv (first time: a minute or two)" >&2
    "$python" -m pip install -q --disable-pip-version-check -r "$requirements" >&2
    installed || { echo "setup.sh: the install finished but the packages do not import; see pip's output above" >&2; exit 1; }
    echo "$want" > "$stamp"
fi

echo "$python"
