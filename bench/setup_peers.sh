#!/usr/bin/env bash
# Creates bench/.venv-peers: the baselines' packages, the load generator's
# client, matplotlib and the profilers, kept out of the project's venv.
# Re-running is cheap: pip runs only when requirements-bench.txt or the
# project's requirements.txt changed since the last install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"
stamp="$venv/.installed"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
want="$(cat "$here/requirements-bench.txt" "$here/../requirements.txt" \
    "$here/../clients/python/pyproject.toml" | sha256sum)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
(cd "$here" && "$venv/bin/python" -m pip install --quiet -r requirements-bench.txt)
echo "$want" > "$stamp"
