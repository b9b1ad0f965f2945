#!/usr/bin/env bash
# The whole test suite: lint, then pytest (unit, real SeaweedFS, real Airflow, real uvicorn, real
# Prometheus, real headless Chromium). Installs what it needs on a fresh machine (.venv, Debian's
# chromium, prometheus, nginx, faketime, strace, postgresql and redis-server).
#
#   ./scripts/test.sh                 everything
#   ./scripts/test.sh -m "not prod"   the quick loop: all but the production-shape tests
#   ./scripts/test.sh -m "not browser" tests/core/test_registry.py   (any pytest arguments)
set -euo pipefail
source "$(dirname "$0")/env.sh"
# What a test missing its program does: skip, or fail under REQUIRE_ALL_TESTS=1 (.ci/run sets it).
WILL=$([[ "${REQUIRE_ALL_TESTS:-0}" =~ ^(|0)$ ]] && echo "will skip" || echo "will fail (REQUIRE_ALL_TESTS=1)")
if [[ "${1:-}" =~ ^(-h|--help)$ ]]; then sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

# Browser tests drive Debian's chromium (Playwright's own browser download cannot work offline);
# the CJK and emoji fonts make the Korean form and the UI's icons readable in the screenshots.
MISSING=()
for pkg in chromium chromium-driver fonts-noto-cjk fonts-noto-color-emoji; do
  dpkg -s "$pkg" >/dev/null 2>&1 || MISSING+=("$pkg")
done
if [[ ${#MISSING[@]} -gt 0 && "${SKIP_BROWSER_INSTALL:-0}" != "1" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing ${MISSING[*]} for the browser tests (apt-get, ~1 min)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${MISSING[@]}") \
      > "$VAR_DIR/apt-browser.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-browser.log): browser tests $WILL"
  else
    echo "==> missing ${MISSING[*]} and not root: browser tests $WILL"
  fi
fi

# The monitoring tests run Debian's Prometheus and promtool on loopback (tests/stack/test_prometheus.py).
# No recommends: they would add a node exporter that nothing here uses.
if ! dpkg -s prometheus >/dev/null 2>&1 && [[ "${SKIP_PROMETHEUS_INSTALL:-0}" != "1" ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "==> installing prometheus for the monitoring tests (apt-get, ~30 s)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) \
      > "$VAR_DIR/apt-prometheus.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-prometheus.log): monitoring tests $WILL"
  else
    echo "==> missing prometheus and not root: monitoring tests $WILL"
  fi
fi

# The nginx tests (tests/stack/test_nginx.py) run Debian's nginx on loopback in front of two real replicas.
if ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "==> installing nginx for the nginx tests (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 nginx) \
    > "$VAR_DIR/apt-nginx.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-nginx.log): those tests $WILL"
fi

# The scheduler test (tests/stack/test_schedule.py) stamps a past day's events with Debian's faketime.
if ! command -v faketime >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "==> installing faketime for the scheduler test (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime) \
    > "$VAR_DIR/apt-faketime.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-faketime.log): that test $WILL"
fi

# The power-cut tests (tests/serve/test_power_cut.py) read the server's fsyncs with Debian's strace.
if ! command -v strace >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "==> installing strace for the power-cut tests (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 strace) \
    > "$VAR_DIR/apt-strace.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-strace.log): those tests will skip"
fi

# The Optuna search's Postgres storage test (tests/train/rating/test_tuning.py) runs a throw-away cluster of Debian's
# postgresql as the postgres user, as scripts/prod.sh does.
if [[ ! -x /usr/lib/postgresql/15/bin/initdb ]] && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "==> installing postgresql for the Optuna storage test (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 postgresql) \
    > "$VAR_DIR/apt-postgresql.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-postgresql.log): that test $WILL"
fi

# The users' store tests (tests/core/test_user_store.py, tests/serve/test_users.py) run Debian's redis-server
# on loopback with a password, as scripts/prod.sh does (which would install it too, but runs later).
if ! command -v redis-server >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "==> installing redis-server for the users' store tests (apt-get)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 redis-server) \
    > "$VAR_DIR/apt-redis.log" 2>&1 || echo "   install failed (see $VAR_DIR/apt-redis.log): those tests will fail"
fi

echo "==> ruff"
ruff check .
ruff format --check . > /dev/null || { ruff format --check .; exit 1; }
echo "==> lint-imports (layers and import cycles, pyproject.toml [tool.importlinter])"
lint-imports --no-cache > "$VAR_DIR/lint-imports.log" 2>&1 || { cat "$VAR_DIR/lint-imports.log"; exit 1; }
echo "==> pytest"
# Tests start their own S3 server, Airflow home and API on free ports: the dev stack is untouched.
unset S3_ENDPOINT_URL S3_EMBEDDED TMDB_API_KEY WANDB_API_KEY SERVE_URL
export WANDB_MODE=disabled
exec pytest "$@"
