#!/usr/bin/env bash
# Create tools/.venv and install tools/requirements.txt into it.
# Idempotent: a stamp file in the venv records the sha256 of requirements.txt, and pip is skipped
# while it matches. The last line printed is the venv's python path.
set -euo pipefail

tools_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$tools_dir/.venv"
requirements="$tools_dir/requirements.txt"
stamp="$venv/.requirements.sha256"
python="$venv/bin/python"

if [[ ! -x "$python" ]]; then
    python3 -m venv "$venv"
fi

want="$(sha256sum "$requirements" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ "$want" != "$have" ]]; then
    "$python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$want" > "$stamp"
fi

echo "$python"
