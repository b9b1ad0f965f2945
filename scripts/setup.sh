#!/usr/bin/env bash
# Create .venv with every host's extras (train, serve, ui, dev). Idempotent: a second run only
# re-installs when pyproject.toml changed since the last successful install.
#
#   ./scripts/setup.sh          PYTHON (python3, 3.11 or newer) makes the env
#   ./scripts/setup.sh --help   this text
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
  -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null; then
  echo "setup.sh: no Python at '$PY': install Python 3.11 or newer, or point PYTHON at one" >&2; exit 1
fi
STAMP=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)

if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
# pip's "Location ... is ignored" warnings come from a host's pip.conf pointing at index folders that
# lack a package; they are noise, so they are dropped (everything else pip says still shows).
pip_install() {
  .venv/bin/python -m pip install --quiet "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

if [[ -f "$STAMP" ]]; then
  echo "==> .venv is up to date"
else
  echo "==> installing the project and its extras into .venv (first time: ~3 min)"
  pip_install --upgrade pip
  # torch is pinned to the CPU wheel; installing it first stops any other package pulling CUDA builds.
  pip_install "torch==2.13.0"
  # PYTHONWARNINGS hides setuptools' editable-install banner (a Python warning in its build step);
  # pip's own messages are logs, not warnings, and still show.
  PYTHONWARNINGS=ignore pip_install -e ".[train,serve,ui,dev]"
  rm -f .venv/.installed-*
  touch "$STAMP"
fi
