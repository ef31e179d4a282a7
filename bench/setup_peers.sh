#!/usr/bin/env bash
# Creates bench/.venv-peers: the baselines' packages, the load generator's
# client, matplotlib and the profilers, kept out of the project's venv; and
# installs nginx (as root, with apt-get) for the scale bench's cluster case.
# Re-running is cheap: pip runs only when requirements-bench.txt or the
# project's requirements.txt changed since the last install.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="$here/.venv-peers"
python="${PYTHON:-python3}"
stamp="$venv/.installed"

# The scale family's cluster case puts nginx in front of three processes
# (bench/scale_cases.py); without nginx that case is n/a, with the reason.
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y nginx \
            || echo "setup_peers: nginx not installed; the cluster case will be n/a" >&2
    else
        echo "setup_peers: no nginx (apt-get install -y nginx as root);" \
            "the scale bench's cluster case will be n/a" >&2
    fi
fi

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
