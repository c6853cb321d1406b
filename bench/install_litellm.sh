#!/usr/bin/env bash
# Install the LiteLLM proxy from PyPI into its own venv (default bench/.venv-litellm).
# Usage: bench/install_litellm.sh [VENV_DIR]; prints the installed litellm version last.
set -euo pipefail
VENV="${1:-$(cd "$(dirname "$0")" && pwd)/.venv-litellm}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/litellm" ]; then
    "$PY" -m venv "$VENV"
    echo '*' > "$VENV/.gitignore"  # as Python 3.13's venv does: git and ruff skip it
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'litellm[proxy]'
fi
[ -f "$VENV/.gitignore" ] || echo '*' > "$VENV/.gitignore"
"$VENV/bin/python" -c 'from importlib.metadata import version; print(version("litellm"))'
