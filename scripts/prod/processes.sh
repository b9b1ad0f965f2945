# shellcheck shell=bash
# Sourced by scripts/prod.sh: a part's pid, launch, health, waiting and stopping (each part runs in a session of its own).

pid_of() {  # the recorded pid of a part, when that process is alive
  local pid
  case "$1" in
    postgres) pid="$(head -n 1 "$PROD_DIR/postgres/data/postmaster.pid" 2>/dev/null)" || return 1 ;;
    s3) pid="$(cat "$S3_DATA_DIR/weed.pid" 2>/dev/null)" || return 1 ;;
    *) pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 1 ;;
  esac
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

launch() {  # launch PART COMMAND...: in a session of its own (so down takes its children), log in logs/
  local part="$1"; shift
  setsid "$@" >> "$LOGS/$part.log" 2>&1 < /dev/null &
  echo "$!" > "$RUN/$part.pid"
}

http_ok() { curl -fsS -o /dev/null --max-time 3 "$1" 2>/dev/null; }

healthy() {  # healthy PART: exit 0 when the part answers
  local port; port="$(part_port "$1")"
  case "$1" in
    s3) "$PY" -m services.core.embedded_s3 status >/dev/null 2>&1 ;;
    postgres) "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" ;;
    redis) [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == "PONG" ]] ;;
    api-server) http_ok "http://127.0.0.1:$port/api/v2/version" ;;
    scheduler) http_ok "http://127.0.0.1:$port/health" ;;
    dag-processor|triggerer) [[ -n "$(pid_of "$1")" ]] && airflow_component_healthy "${1/-/_}" ;;
    worker-1|worker-2) [[ -n "$(pid_of "$1")" ]] && celery_online "$1" ;;
    api-1|api-2|nginx) http_ok "http://127.0.0.1:$port/health" ;;
    ui) http_ok "http://127.0.0.1:$port/_stcore/health" ;;
    prometheus) http_ok "http://127.0.0.1:$port/-/ready" ;;
  esac
}

wait_healthy() {  # wait_healthy PART SECONDS
  local deadline=$(( $(date +%s) + $2 ))
  until healthy "$1"; do
    if [[ "$1" != s3 && "$1" != postgres && -z "$(pid_of "$1")" ]]; then
      echo "   $1 exited; last lines of $LOGS/$1.log:" >&2; tail -n 15 "$LOGS/$1.log" >&2; return 1
    fi
    if (( $(date +%s) > deadline )); then
      echo "   $1 not healthy after $2 s (see $LOGS/$1.log)" >&2; return 1
    fi
    sleep 1
  done
  echo "   $1 up on port $(part_port "$1") (pid $(pid_of "$1" || echo '?'))"
}

session_pids() {  # the processes of a part's session (setsid), children that made groups of their own too
  ps -eo pid=,sid= | awk -v sid="$1" '$2 == sid { print $1 }'
}

signal_part() {  # signal_part PART SIGNAL: every process of the part's session
  local pid; pid="$(cat "$RUN/$1.pid" 2>/dev/null)" || return 0
  # shellcheck disable=SC2046
  kill -"$2" $(session_pids "$pid") 2>/dev/null || true
}

stop_part() {  # stop_part PART: SIGTERM its session, SIGKILL what is left after a grace period
  local part="$1" pid i
  pid="$(pid_of "$part")" || { rm -f "$RUN/$part.pid"; return 0; }
  case "$part" in
    postgres)
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PROD_DIR/postgres/data" stop -m fast -w -t 30 >/dev/null ;;
    s3)
      if [[ ! -f "$RUN/s3.started" ]]; then echo "   s3 left running (not started by prod.sh)"; return 0; fi
      "$PY" -m services.core.embedded_s3 stop >/dev/null 2>&1 || true
      rm -f "$RUN/s3.started" ;;
    *)
      # A Celery worker's task runs in a process group of its own (Airflow's supervisor), but in the
      # worker's session: signalling the session reaches it too.
      signal_part "$part" TERM
      for i in $(seq 1 40); do
        [[ -n "$(session_pids "$pid")" ]] || break
        sleep 0.5
      done
      signal_part "$part" KILL
      rm -f "$RUN/$part.pid" ;;
  esac
  echo "   stopped $part (pid $pid)"
}
