# shellcheck shell=bash
# Sourced by scripts/prod.sh: up, down, kill, status and logs, over the parts of the other files.

start_part() {
  case "$1" in
    s3) start_s3 ;; postgres) start_postgres ;; redis) start_redis ;;
    api-server|scheduler|dag-processor|triggerer|worker-1|worker-2) start_airflow "$1" ;;
    api-1|api-2) start_replica "$1" ;; nginx) start_nginx ;; ui) start_ui ;;
    prometheus) start_prometheus ;;
  esac
}

cmd_up() {
  local parts=("$@") part migrated=0
  [[ ${#parts[@]} -gt 0 ]] || parts=("${ALL_PARTS[@]}")
  for part in "${parts[@]}"; do part_port "$part" > /dev/null; done
  ensure_packages
  ensure_secrets
  load_env
  echo "==> production shape under $PROD_DIR (logs in $LOGS/)"
  for part in "${parts[@]}"; do
    if [[ -n "$(pid_of "$part")" ]]; then echo "   $part already running (pid $(pid_of "$part"))"; continue; fi
    case "$part" in api-server|scheduler|dag-processor|triggerer|worker-*)
      # The schema must be current before any Airflow part starts; a running api-server means it is.
      if [[ $migrated == 0 && -z "$(pid_of api-server)" ]]; then airflow_ready_db; fi
      migrated=1 ;;
    esac
    [[ "$part" == s3 || "$part" == postgres ]] || rm -f "$RUN/$part.pid"
    start_part "$part"
  done
  cat <<INFO

  The production shape is up (./scripts/prod.sh status; ./scripts/prod.sh down stops it).
  UI                      http://127.0.0.1:$UI_PORT
  API through nginx       http://127.0.0.1:$LB_PORT/docs   (replicas: ${REPLICA_PORTS[*]})
  Airflow console         http://127.0.0.1:$AIRFLOW_PORT   (login admin, AIRFLOW_ADMIN_PASSWORD in $SECRETS)
INFO
}

cmd_down() {
  local parts=("$@") i
  [[ ${#parts[@]} -gt 0 ]] || parts=("${ALL_PARTS[@]}")
  for part in "${parts[@]}"; do part_port "$part" > /dev/null; done
  echo "==> stopping"
  # Reverse order: serving first, then Airflow, then its databases.
  for (( i=${#parts[@]}-1; i>=0; i-- )); do stop_part "${parts[$i]}"; done
}

cmd_kill() {  # for failure drills: SIGKILL every process of the parts, as a crash would
  local part pid
  [[ $# -gt 0 ]] || { echo "kill needs parts (see --help)" >&2; exit 2; }
  for part in "$@"; do
    part_port "$part" > /dev/null
    case "$part" in s3|postgres) echo "kill $part: use down (it is not run from a pid file here)" >&2; exit 2 ;; esac
    pid="$(pid_of "$part")" || { echo "   $part is not running"; continue; }
    signal_part "$part" KILL
    echo "   killed $part (session $pid)"
  done
}

cmd_status() {
  [[ -f "$SECRETS" ]] && load_env
  local part pid port health down=0 extra
  printf '%-14s %-6s %-8s %s\n' PART PORT PID HEALTH
  for part in "${ALL_PARTS[@]}"; do
    port="$(part_port "$part")"; pid="$(pid_of "$part" || true)"; extra=""
    if [[ "$part" == prometheus && ! -f "$ROOT/deploy/prometheus/prometheus.yml" ]]; then
      printf '%-14s %-6s %-8s %s\n' "$part" "$port" - "skipped (no deploy/prometheus/prometheus.yml)"; continue
    fi
    if [[ "$part" == s3 && "$S3_EMBEDDED" != 1 ]]; then
      printf '%-14s %-6s %-8s %s\n' s3 - - "external ($S3_ENDPOINT_URL)"; continue
    fi
    if healthy "$part"; then
      health=ok
      if [[ "$part" == api-* ]]; then
        extra="$(curl -sS --max-time 3 "http://127.0.0.1:$port/ready" 2>/dev/null | "$PY" -c \
          'import json,sys; r=json.load(sys.stdin); print("ready: rating " + str(r.get("rating_version")) + ", recommender " + str(r.get("recommender_version")) if r["ready"] else "not ready: " + str(r.get("detail")))' 2>/dev/null || true)"
      fi
    else
      health=DOWN; down=1
    fi
    printf '%-14s %-6s %-8s %s\n' "$part" "$port" "${pid:--}" "$health${extra:+ ($extra)}"
  done
  return $down
}

cmd_logs() {
  local part="${1:-}" follow="${2:-}"
  if [[ -z "$part" ]]; then
    for f in "$LOGS"/*.log; do [[ -f "$f" ]] || continue; echo "==> $f"; tail -n "${LINES:-5}" "$f"; done
    return 0
  fi
  part_port "$part" > /dev/null
  if [[ "$follow" == -f ]]; then exec tail -n 50 -f "$LOGS/$part.log"; fi
  tail -n "${LINES:-50}" "$LOGS/$part.log"
}
