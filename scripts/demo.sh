#!/usr/bin/env bash
# The whole stack on the embedded defaults, in the foreground; Ctrl-C stops everything.
#
#   ./scripts/demo.sh [--fresh]
#
# 1. the embedded S3 server (SeaweedFS on 127.0.0.1:8333)
# 2. one pipeline run when the registry has no production model yet (~2-4 min the first time)
# 3. the Airflow console (standalone, SQLite) on http://127.0.0.1:8080, admin password printed
# 4. the API on http://127.0.0.1:8000 and the UI on http://127.0.0.1:8501
# --fresh deletes var/ (local S3 data, Airflow DB, model cache) first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$ROOT/scripts/ports.sh"
case "${1:-}" in
  -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --fresh) "$ROOT/scripts/s3.sh" stop >/dev/null 2>&1 || true; rm -rf "$VAR_DIR"; exec "$0" ;;
  "") ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

mkdir -p "$VAR_DIR/logs" "$AIRFLOW_HOME"
PIDS=()
STARTED_S3=0
cleanup() {
  # Stop first, report after, and ignore SIGPIPE: under `demo.sh | tee log`, Ctrl-C closes the pipe, and
  # an echo into it must not kill the script before the services are stopped.
  trap - INT TERM EXIT
  trap '' PIPE
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [[ $STARTED_S3 == 1 ]]; then "$ROOT/scripts/s3.sh" stop >/dev/null 2>&1 || true; fi
  { echo; echo "==> stopped the stack"; } 2>/dev/null || true
}
trap cleanup INT TERM EXIT

start() {  # start NAME COMMAND...: in its own process group, output to var/logs/NAME.log
  local name="$1"; shift
  setsid "$@" > "$VAR_DIR/logs/$name.log" 2>&1 &
  PIDS+=("$!")
}

wait_http() {  # wait_http NAME URL SECONDS
  local deadline=$(( $(date +%s) + $3 ))
  until curl -fsS -o /dev/null "$2" 2>/dev/null; do
    if (( $(date +%s) > deadline )); then echo "   $1 did not answer at $2 (see $VAR_DIR/logs/$1.log)"; return 1; fi
    sleep 1
  done
  echo "   $1 ready at $2"
}

# Secrets for this local stack: generated once, kept in var/ (git-ignored), never defaults in code.
if [[ -z "${ADMIN_TOKEN:-}" ]]; then
  [[ -f "$VAR_DIR/admin_token" ]] || (umask 077; od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$VAR_DIR/admin_token")
  ADMIN_TOKEN="$(cat "$VAR_DIR/admin_token")"; export ADMIN_TOKEN
fi
PASSWORDS="$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
if [[ ! -s "$PASSWORDS" ]]; then
  (umask 077; printf '{"admin": "%s"}\n' "$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')" > "$PASSWORDS")
fi
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="admin:admin"
export SERVE_URL="${SERVE_URL:-http://127.0.0.1:${SERVE_PORT:-8000}}"
export API_URL="${API_URL:-$SERVE_URL}"

# A second demo (or scripts/prod.sh) holding a port: say which process it is, before starting anything.
check_ports_free "airflow=$AIRFLOW_PORT" "api=${SERVE_PORT:-8000}" "ui=${UI_PORT:-8501}" || exit 1
echo "==> S3"
if [[ "$S3_EMBEDDED" == "1" ]] && ! "$ROOT/scripts/s3.sh" status >/dev/null 2>&1; then STARTED_S3=1; fi
s3_up

if ! "$PY" -m services.core.registry_cli verify rating >/dev/null 2>&1; then
  echo "==> no production rating model yet: running the pipeline once"
  SERVE_URL="" "$ROOT/scripts/pipeline.sh" --date "$(date -u +%Y-%m-%d)"
fi

echo "==> Airflow, API and UI (logs in $VAR_DIR/logs/)"
airflow db migrate > "$VAR_DIR/logs/airflow-db-migrate.log" 2>&1
start airflow airflow standalone
start api "$ROOT/scripts/serve.sh"
start ui "$ROOT/scripts/ui.sh"
wait_http api "http://127.0.0.1:${SERVE_PORT:-8000}/ready" 60 || true
wait_http ui "http://127.0.0.1:${UI_PORT:-8501}/_stcore/health" 60 || true
wait_http airflow "http://127.0.0.1:$AIRFLOW_PORT/api/v2/version" 120 || true

cat <<INFO

  Movie intelligence is up. Ctrl-C stops everything.

  UI (rating form, recommendations, models)  http://127.0.0.1:${UI_PORT:-8501}
  API docs (OpenAPI)                          http://127.0.0.1:${SERVE_PORT:-8000}/docs
  Airflow console (DAG movie_pipeline)        http://127.0.0.1:$AIRFLOW_PORT
      login: admin / $("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$PASSWORDS")
  S3 (SeaweedFS)                              $S3_ENDPOINT_URL  bucket $S3_BUCKET

  ./scripts/registry.sh versions rating   lists model versions;  ./scripts/pipeline.sh --date YYYY-MM-DD runs a day
INFO

# Stay in the foreground; if a service dies, say so and stop the rest.
while true; do
  for pid in "${PIDS[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then echo "==> a service exited (pid $pid); see $VAR_DIR/logs/"; exit 1; fi
  done
  sleep 2
done
