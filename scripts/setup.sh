#!/usr/bin/env bash
# Create .venv with every host's extras (train, serve, ui, dev). Idempotent: a second run only
# re-installs when pyproject.toml changed since the last successful install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)

if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
if [[ -f "$STAMP" ]]; then
  echo "==> .venv is up to date"
else
  echo "==> installing the project and its extras into .venv (first time: ~3 min)"
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch is pinned to the CPU wheel; installing it first stops any other package pulling CUDA builds.
  .venv/bin/python -m pip install --quiet "torch==2.13.0"
  .venv/bin/python -m pip install --quiet -e ".[train,serve,ui,dev]"
  rm -f .venv/.installed-*
  touch "$STAMP"
fi
