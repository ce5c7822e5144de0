#!/usr/bin/env bash
# Create ./venv and install action_rec (editable) with its dev extra. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    || { echo "init_venv.sh: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

if [ ! -x venv/bin/python ]; then
    echo "Creating venv/ with $("$PYTHON" --version)"
    "$PYTHON" -m venv venv
fi

stamp=venv/.action_rec-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && venv/bin/python -c 'import action_rec' 2>/dev/null; then
    echo "venv/ is up to date with pyproject.toml; nothing to install."
else
    venv/bin/python -m pip install --disable-pip-version-check -q --upgrade "pip>=24" setuptools wheel
    venv/bin/python -m pip install --disable-pip-version-check --progress-bar off -e ".[dev]"
    touch "$stamp"
fi

echo
echo "Done. Activate the environment with:"
echo "    source venv/bin/activate"
