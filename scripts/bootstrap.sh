#!/usr/bin/env bash
# Create .venv holding exactly the pinned lock files; a no-op while they are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
UV_VERSION=0.13.8
LOCKS=(requirements.txt requirements-dev.txt)
# Bytecode is compiled once, here (about 30 s on 2 cores). uv writes none by default, and where
# Python may not write it either (PYTHONDONTWRITEBYTECODE, set in many CI and sandbox images),
# every Airflow process (each `airflow dags test`, scheduler, worker) compiles some 3,000 modules
# from source again: 5-6 s of CPU each, a third of a `dags test` of the flagship.
SYNC_OPTIONS=(--compile-bytecode)

# The options are part of the stamp, so an environment synced without them is synced again.
stamp=.venv/.synced-$({ cat "${LOCKS[@]}"; echo "${SYNC_OPTIONS[*]}"; } | sha256sum | cut -c1-16)
[[ -f "$stamp" ]] && exit 0

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "bootstrap: Python 3.11 is required, found $("$PYTHON" --version 2>&1); set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet "uv==$UV_VERSION"
# sync, not install: the environment becomes exactly the locks, nothing more.
.venv/bin/uv pip sync --quiet "${SYNC_OPTIONS[@]}" --python .venv/bin/python "${LOCKS[@]}"
rm -f .venv/.synced-*
touch "$stamp"
echo "bootstrap: .venv synced with ${LOCKS[*]}"
