#!/usr/bin/env bash
# The whole stack on the embedded defaults, in the foreground; Ctrl-C stops everything.
#
#   ./scripts/demo.sh [--fresh]
#
# 1. the embedded S3 server (SeaweedFS on 127.0.0.1:8333)
# 2. one pipeline run when the registry has no production model yet (~6 min: SASRec trains ~5 of them)
# 3. the Airflow console (standalone, SQLite) on http://127.0.0.1:8080, admin password printed
# 4. the API on http://127.0.0.1:8000 and the UI on http://127.0.0.1:8501
# --fresh deletes var/ (local S3 data, Airflow DB, model cache) first.
# Each part must answer within DEMO_READY_TIMEOUT_S (600) of its start, or the demo stops, naming it.
# Exits 130 on Ctrl-C and 1 when a part never became ready or died; nothing it started keeps running.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$ROOT/scripts/ports.sh"
case "${1:-}" in
  -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --fresh) "$ROOT/scripts/s3.sh" stop >/dev/null 2>&1 || true; rm -rf "$VAR_DIR"; exec "$0" ;;
  "") ;;
  *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac

mkdir -p "$VAR_DIR/logs" "$AIRFLOW_HOME"
PIDS=()
NAMES=()
STARTED_S3=0
cleanup() {
  # Stop first, report after, and ignore SIGPIPE: under `demo.sh | tee log`, Ctrl-C closes the pipe, and
  # an echo into it must not kill the script before the services are stopped.
  trap - INT TERM EXIT
  trap '' PIPE
  local pid i
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
  # Airflow takes a few seconds to stop its scheduler, triggerer and API server: wait for each group
  # to be gone (up to 30 s), then kill what is left rather than leave it holding a port.
  for (( i = 0; i < 60; i++ )); do
    local alive=0
    for pid in "${PIDS[@]}"; do if kill -0 -- "-$pid" 2>/dev/null; then alive=1; fi; done
    (( alive )) || break
    sleep 0.5
  done
  for pid in "${PIDS[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  if [[ $STARTED_S3 == 1 ]]; then "$ROOT/scripts/s3.sh" stop >/dev/null 2>&1 || true; fi
  { echo; echo "==> stopped the stack"; } 2>/dev/null || true
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

start() {  # start NAME COMMAND...: in its own process group, output to var/logs/NAME.log
  local name="$1"; shift
  setsid "$@" > "$VAR_DIR/logs/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
}

never_ready() {  # never_ready NAME WHY [LOG]: name the part, show its log; the EXIT trap stops the rest
  local log="${3:-$VAR_DIR/logs/$1.log}"
  {
    echo "==> $1 never became ready: $2"
    echo "   its log: $log (last lines below)"
    tail -n 15 "$log" 2>/dev/null | sed 's/^/   | /'
  } >&2
  exit 1
}

wait_ready() {  # wait_ready NAME URL: until the part answers URL (ready), exits or runs out of time (not)
  local name="$1" pid="" i status
  for i in "${!NAMES[@]}"; do [[ "${NAMES[$i]}" != "$name" ]] || pid="${PIDS[$i]}"; done
  until curl -fsS -o /dev/null "$2" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      status=0; wait "$pid" || status=$?
      never_ready "$name" "it exited with status $status before $2 answered"
    fi
    if (( $(date +%s) > STARTED_AT + READY_TIMEOUT_S )); then
      never_ready "$name" "$2 did not answer within $READY_TIMEOUT_S s (DEMO_READY_TIMEOUT_S)"
    fi
    sleep 1
  done
  echo "   $name ready at $2"
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

# Right after a restart SeaweedFS can answer reads with InternalError while its volumes load (seen once in
# five restarts): that answer is asked again, so it does not pass for "no model" and re-run the pipeline.
has_production_model() {  # exit 0: there is one; 1: there is none; stops the demo if S3 keeps erring
  local out i
  for (( i = 0; i < 15; i++ )); do
    if out="$("$PY" -m services.core.registry_cli verify rating 2>&1)"; then return 0; fi
    [[ "$out" == *InternalError* || "$out" == *ServiceUnavailable* ]] || return 1
    sleep 2
  done
  echo "==> S3 keeps failing: $out" >&2
  exit 1
}
if ! has_production_model; then
  echo "==> no production rating model yet: running the pipeline once"
  SERVE_URL="" "$ROOT/scripts/pipeline.sh" --date "$(date -u +%Y-%m-%d)"
fi

echo "==> Airflow, API and UI (logs in $VAR_DIR/logs/)"
airflow db migrate > "$VAR_DIR/logs/airflow-db-migrate.log" 2>&1 \
  || never_ready airflow "airflow db migrate failed" "$VAR_DIR/logs/airflow-db-migrate.log"
# Generous: Airflow took 150 s to answer on a 2-core machine under load. A part that crashes is
# reported at once (wait_ready sees it exit); the timeout only catches one that hangs.
READY_TIMEOUT_S="${DEMO_READY_TIMEOUT_S:-600}"
STARTED_AT=$(date +%s)
start airflow airflow standalone
start api "$ROOT/scripts/serve.sh"
start ui "$ROOT/scripts/ui.sh"
wait_ready api "http://127.0.0.1:${SERVE_PORT:-8000}/ready"
wait_ready ui "http://127.0.0.1:${UI_PORT:-8501}/_stcore/health"
wait_ready airflow "http://127.0.0.1:$AIRFLOW_PORT/api/v2/version"

cat <<INFO

  Movie intelligence is up. Ctrl-C stops everything.

  UI (rating form, recommendations, models)  http://127.0.0.1:${UI_PORT:-8501}
  API docs (OpenAPI)                          http://127.0.0.1:${SERVE_PORT:-8000}/docs
  Airflow console (DAG movie_pipeline)        http://127.0.0.1:$AIRFLOW_PORT
      login: admin / $("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['admin'])" "$PASSWORDS")
  S3 (SeaweedFS)                              $S3_ENDPOINT_URL  bucket $S3_BUCKET

  ./scripts/registry.sh versions rating   lists model versions;  ./scripts/pipeline.sh --date YYYY-MM-DD runs a day
INFO

# Stay in the foreground; if a service dies, say which and stop the rest.
while true; do
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      echo "==> ${NAMES[$i]} exited; see $VAR_DIR/logs/${NAMES[$i]}.log" >&2; exit 1
    fi
  done
  sleep 2
done
