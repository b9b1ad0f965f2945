#!/usr/bin/env bash
# The production shape on one machine, in the background, on 127.0.0.1, data under var/prod/.
#
#   ./scripts/prod.sh up [PART...]      start what is not running (all parts by default); data survives
#   ./scripts/prod.sh down [PART...]    stop by pid what this script started (all by default)
#   ./scripts/prod.sh status            each part, its port and health; exit 1 when one is down
#   ./scripts/prod.sh logs [PART] [-f]  the last lines of every log, or of one part's (-f follows it)
#   ./scripts/prod.sh kill PART...      failure drill: SIGKILL a part's every process, as a crash would
#
# Training host: PostgreSQL 15 (Airflow's metadata DB and Celery's result backend; own cluster, run as the
# `postgres` user), Redis (Celery broker, password), Airflow 3.3 api-server (the console, :8080),
# scheduler, dag-processor, triggerer and two Celery workers (worker-1, worker-2: a task instance's
# hostname says which ran it). Serving host: two API replicas (:8001, :8002), nginx in front (:8000, the
# config docker-compose-serve.yaml mounts), the UI (:8501, through nginx), Prometheus (127.0.0.1:9090).
# S3: the embedded SeaweedFS of scripts/env.sh (var/s3, shared with demo.sh) unless S3_ENDPOINT_URL is set.
# Secrets (Airflow admin, Postgres, Redis, the API's ADMIN_TOKEN, ...) are generated once into
# var/prod/secrets.env (mode 600) and never printed. Log in to the console as admin with
# AIRFLOW_ADMIN_PASSWORD from that file. Missing Debian packages (postgresql redis-server nginx
# prometheus) are installed when run as root (apt-get, log in var/prod/logs/apt.log).
#
# Parts: s3 postgres redis api-server scheduler dag-processor triggerer worker-1 worker-2 api-1 api-2
#        nginx ui prometheus
# Environment (defaults): PROD_DIR (var/prod), PROD_PG_PORT (5433), PROD_REDIS_PORT (6380),
# AIRFLOW_PORT (8080), PROD_API_PORT (8000, nginx), PROD_REPLICA_PORTS ("8001 8002"), UI_PORT (8501),
# PROMETHEUS_PORT (9090), PROD_SCHEDULER_HEALTH_PORT (8974), RECOMMENDER_MAX_EPOCHS (unset: train to
# early stop). Workers and triggerer serve no logs over HTTP (Airflow binds that server to every
# interface): they write them to var/prod/airflow/logs, which the api-server reads on this one host.
set -euo pipefail
source "$(dirname "$0")/env.sh"
source "$ROOT/scripts/ports.sh"
usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'; }

PROD_DIR="${PROD_DIR:-$VAR_DIR/prod}"
PG_PORT="${PROD_PG_PORT:-5433}"
REDIS_PORT="${PROD_REDIS_PORT:-6380}"
LB_PORT="${PROD_API_PORT:-8000}"
read -r -a REPLICA_PORTS <<<"${PROD_REPLICA_PORTS:-8001 8002}"
SCHEDULER_HEALTH_PORT="${PROD_SCHEDULER_HEALTH_PORT:-8974}"
UI_PORT="${UI_PORT:-8501}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PG_BIN=/usr/lib/postgresql/15/bin
RUN="$PROD_DIR/run"
LOGS="$PROD_DIR/logs"
SECRETS="$PROD_DIR/secrets.env"
ALL_PARTS=(s3 postgres redis api-server scheduler dag-processor triggerer worker-1 worker-2 api-1 api-2
  nginx ui prometheus)

part_port() {
  case "$1" in
    s3) echo "$S3_PORT" ;; postgres) echo "$PG_PORT" ;; redis) echo "$REDIS_PORT" ;;
    api-server) echo "$AIRFLOW_PORT" ;; scheduler) echo "$SCHEDULER_HEALTH_PORT" ;;
    dag-processor|triggerer|worker-1|worker-2) echo "-" ;;
    api-1) echo "${REPLICA_PORTS[0]}" ;; api-2) echo "${REPLICA_PORTS[1]}" ;;
    nginx) echo "$LB_PORT" ;; ui) echo "$UI_PORT" ;; prometheus) echo "$PROMETHEUS_PORT" ;;
    *) echo "unknown part: $1 (parts: ${ALL_PARTS[*]})" >&2; exit 2 ;;
  esac
}

# ---- packages -----------------------------------------------------------------------------------------
ensure_packages() {
  local missing=() pkg
  for pkg in postgresql redis-server nginx prometheus; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "missing Debian packages: ${missing[*]} (install them as root: apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  echo "==> installing ${missing[*]} (apt-get, ~1 min; log in $LOGS/apt.log)"
  # The lock timeout waits for another apt-get on the machine instead of failing at once.
  if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      -o DPkg::Lock::Timeout=300 "${missing[@]}") > "$LOGS/apt.log" 2>&1; then
    echo "   apt-get failed; see $LOGS/apt.log" >&2; exit 1
  fi
}

# ---- secrets ------------------------------------------------------------------------------------------
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
ensure_secrets() {
  if [[ ! -s "$SECRETS" ]]; then
    (umask 077; {
      echo "# Generated once by scripts/prod.sh; never committed, never printed."
      echo "POSTGRES_PASSWORD=$(hex 18)"
      echo "REDIS_PASSWORD=$(hex 18)"
      echo "AIRFLOW_ADMIN_PASSWORD=$(hex 12)"
      echo "ADMIN_TOKEN=$(hex 16)"
      echo "AIRFLOW__API_AUTH__JWT_SECRET=$(hex 32)"
      echo "AIRFLOW__API__SECRET_KEY=$(hex 32)"
      echo "AIRFLOW__CORE__FERNET_KEY=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_')"
    } > "$SECRETS")
    echo "==> generated secrets into $SECRETS (mode 600)"
  fi
  chmod 600 "$SECRETS"
}

load_env() {  # the environment every part runs in
  set -a
  # shellcheck disable=SC1091
  source "$ROOT/deploy/airflow/airflow.env"
  # shellcheck disable=SC1090
  source "$SECRETS"
  set +a
  export AIRFLOW_HOME="$PROD_DIR/airflow"
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
  local db="airflow:$POSTGRES_PASSWORD@127.0.0.1:$PG_PORT/airflow"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://$db"
  export AIRFLOW__CELERY__RESULT_BACKEND="db+postgresql://$db"
  export OPTUNA_STORAGE_URL="postgresql+psycopg2://airflow:$POSTGRES_PASSWORD@127.0.0.1:$PG_PORT/optuna"
  export AIRFLOW__CELERY__BROKER_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/0"
  # Users known by their id: the replicas share their state in the same Redis, database 1 (Celery has 0).
  export USER_STORE_URL="redis://:$REDIS_PASSWORD@127.0.0.1:$REDIS_PORT/1"
  export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST=127.0.0.1
  export AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT="$SCHEDULER_HEALTH_PORT"
  # The notify step reloads every replica directly (through nginx it would reach only one).
  local urls=() port
  for port in "${REPLICA_PORTS[@]}"; do urls+=("http://127.0.0.1:$port"); done
  SERVE_URL="$(IFS=,; echo "${urls[*]}")"
  export SERVE_URL ADMIN_TOKEN
  export API_URL="http://127.0.0.1:$LB_PORT"
  export PGPASSWORD="$POSTGRES_PASSWORD" REDISCLI_AUTH="$REDIS_PASSWORD"
}

# ---- processes ----------------------------------------------------------------------------------------
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

airflow_component_healthy() {  # from the api-server's /api/v2/monitor/health (heartbeats in Postgres)
  curl -fsS --max-time 3 "http://127.0.0.1:$AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null \
    | "$PY" -c "import json,sys; sys.exit(json.load(sys.stdin)['$1']['status'] != 'healthy')" 2>/dev/null
}

CELERY_NODES=""
celery_online() {  # celery_online worker-N: the worker answers a Celery ping through the broker
  # One ping (about 2 s) per call of this script while the worker is seen online; the broker URL (with
  # its password) goes through the environment, not a command line.
  if [[ " $CELERY_NODES " != *" $1@"* ]]; then
    CELERY_NODES="$(BROKER="$AIRFLOW__CELERY__BROKER_URL" "$PY" -c '
import os
from celery import Celery
replies = Celery(broker=os.environ["BROKER"]).control.ping(timeout=1.0)
print(" ".join(sorted(name for reply in replies for name in reply)))' 2>/dev/null)" || CELERY_NODES=""
  fi
  [[ " $CELERY_NODES " == *" $1@"* ]]
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

# ---- parts --------------------------------------------------------------------------------------------
start_s3() {
  [[ "$S3_EMBEDDED" == "1" ]] || { echo "   s3: external ($S3_ENDPOINT_URL)"; return 0; }
  check_ports_free "s3=$S3_PORT"
  "$PY" -m services.core.embedded_s3 start > "$LOGS/s3.log" 2>&1 || { tail -n 20 "$LOGS/s3.log" >&2; return 1; }
  touch "$RUN/s3.started"
  wait_healthy s3 60
}

start_postgres() {
  local dir="$PROD_DIR/postgres"
  check_ports_free "postgres=$PG_PORT"
  mkdir -p "$dir"
  chown postgres: "$dir"
  if ! runuser -u postgres -- test -w "$dir"; then
    echo "   the postgres user cannot write $dir: every parent folder must be searchable (chmod o+x)" >&2
    return 1
  fi
  touch "$LOGS/postgres.log"; chown postgres: "$LOGS/postgres.log"
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    echo "   creating the cluster in $dir/data"
    (umask 077; printf '%s\n' "$POSTGRES_PASSWORD" > "$dir/pwfile"); chown postgres: "$dir/pwfile"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -A scram-sha-256 --pwfile="$dir/pwfile" \
      -U airflow -E UTF8 >> "$LOGS/postgres.log" 2>&1
    rm -f "$dir/pwfile"
  fi
  # Unix socket in the cluster's own folder (not /var/run/postgresql, which belongs to the system one).
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$LOGS/postgres.log" -w -t 60 \
    -o "-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1" start > /dev/null
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='airflow'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -qc "CREATE DATABASE airflow" > /dev/null
  fi
  # The Optuna studies of the weekly search (dags/rating_tune.py): a database of their own beside Airflow's.
  if ! psql -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='optuna'" | grep -q 1; then
    psql -h 127.0.0.1 -p "$PG_PORT" -U airflow -d postgres -qc "CREATE DATABASE optuna" > /dev/null
  fi
  wait_healthy postgres 30
}

start_redis() {
  local dir="$PROD_DIR/redis"
  check_ports_free "redis=$REDIS_PORT"
  mkdir -p "$dir"
  # The password goes in a config file of mode 600, not on a command line that `ps` shows.
  (umask 077; cat > "$dir/redis.conf" <<CONF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
requirepass $REDIS_PASSWORD
dir $dir
save 60 1
appendonly no
daemonize no
CONF
)
  launch redis redis-server "$dir/redis.conf"
  wait_healthy redis 20
}

airflow_ready_db() {  # migrate the metadata database and write the admin's password file
  mkdir -p "$AIRFLOW_HOME"
  (umask 077; printf '{"admin": "%s"}\n' "$AIRFLOW_ADMIN_PASSWORD" > "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
  echo "   airflow db migrate (log in $LOGS/airflow-migrate.log)"
  airflow db migrate >> "$LOGS/airflow-migrate.log" 2>&1 || { tail -n 20 "$LOGS/airflow-migrate.log" >&2; return 1; }
}

start_airflow() {  # start_airflow PART
  local part="$1"
  case "$part" in
    api-server)
      check_ports_free "api-server=$AIRFLOW_PORT"
      launch api-server airflow api-server --host 127.0.0.1 --port "$AIRFLOW_PORT" --workers 1
      wait_healthy api-server 180 ;;
    scheduler)
      check_ports_free "scheduler=$SCHEDULER_HEALTH_PORT"
      launch scheduler airflow scheduler; wait_healthy scheduler 180 ;;
    dag-processor) launch dag-processor airflow dag-processor; wait_healthy dag-processor 180 ;;
    triggerer) launch triggerer airflow triggerer --skip-serve-logs; wait_healthy triggerer 180 ;;
    worker-1|worker-2)
      # AIRFLOW_HOSTNAME names the task instances this worker runs ([core] hostname_callable);
      # --celery-hostname gives the Celery node a name of its own on the shared host.
      AIRFLOW_HOSTNAME="$part" launch "$part" airflow celery worker --celery-hostname "$part@%h" --skip-serve-logs
      CELERY_NODES=""
      wait_healthy "$part" 180 ;;
  esac
}

start_replica() {  # start_replica api-N
  local part="$1" n="${1#api-}" port home
  port="${REPLICA_PORTS[$((n - 1))]}"; home="$PROD_DIR/$part"
  check_ports_free "$part=$port"
  mkdir -p "$home"
  # One spool and one model cache per replica: the spool serves one process (services/serve/spool.py).
  SERVE_PORT="$port" SPOOL_DIR="$home/spool" MODEL_CACHE_DIR="$home/model-cache" \
    REPLICA_ID="${PROD_REPLICA_PREFIX:-$(hostname -s)}-$part" \
    launch "$part" "$ROOT/scripts/serve.sh"
  wait_healthy "$part" 120
}

start_nginx() {
  local dir="$PROD_DIR/nginx" port servers=""
  check_ports_free "nginx=$LB_PORT"
  mkdir -p "$dir"
  # The shared nginx.conf (docker-compose-serve.yaml mounts the same file); what differs per host is in
  # the two files it includes from its own folder: the replicas' addresses and the listen address.
  cp "$ROOT/deploy/nginx/nginx.conf" "$dir/nginx.conf"
  for port in "${REPLICA_PORTS[@]}"; do servers+="  server 127.0.0.1:$port max_fails=1 fail_timeout=5s;"$'\n'; done
  printf '# Written by scripts/prod.sh\nupstream api {\n%s  keepalive 32;\n}\n' "$servers" > "$dir/upstream.conf"
  printf '# Written by scripts/prod.sh\nlisten 127.0.0.1:%s;\n' "$LB_PORT" > "$dir/listen.conf"
  nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$LOGS/nginx-error.log" -g "pid $RUN/nginx.master.pid;"
  launch nginx nginx -p "$dir" -c "$dir/nginx.conf" -e "$LOGS/nginx-error.log" \
    -g "daemon off; pid $RUN/nginx.master.pid;"
  wait_healthy nginx 20
}

start_ui() {
  check_ports_free "ui=$UI_PORT"
  UI_PORT="$UI_PORT" launch ui "$ROOT/scripts/ui.sh"
  wait_healthy ui 90
}

start_prometheus() {
  local dir="$PROD_DIR/prometheus" src="$ROOT/deploy/prometheus/prometheus.yml" i targets=()
  if [[ ! -f "$src" ]]; then echo "   prometheus: skipped ($src does not exist)"; return 0; fi
  check_ports_free "prometheus=$PROMETHEUS_PORT"
  mkdir -p "$dir/targets" "$dir/data"
  cp "$src" "$dir/prometheus.yml"
  rm -rf "$dir/rules"
  if [[ -d "$ROOT/deploy/prometheus/rules" ]]; then cp -r "$ROOT/deploy/prometheus/rules" "$dir/rules"; fi
  # The replicas, for the file_sd_configs' relative targets/*.json (compose lists its own).
  for i in "${!REPLICA_PORTS[@]}"; do
    targets+=("{\"targets\": [\"127.0.0.1:${REPLICA_PORTS[$i]}\"], \"labels\": {\"deployment\": \"prod\", \"replica\": \"api-$((i + 1))\"}}")
  done
  printf '[%s]\n' "$(IFS=,; echo "${targets[*]}")" > "$dir/targets/api.json"
  promtool check config "$dir/prometheus.yml" > "$LOGS/promtool.log" 2>&1 \
    || { echo "   promtool rejects the config:" >&2; tail -n 10 "$LOGS/promtool.log" >&2; return 1; }
  launch prometheus prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_healthy prometheus 30
}

start_part() {
  case "$1" in
    s3) start_s3 ;; postgres) start_postgres ;; redis) start_redis ;;
    api-server|scheduler|dag-processor|triggerer|worker-1|worker-2) start_airflow "$1" ;;
    api-1|api-2) start_replica "$1" ;; nginx) start_nginx ;; ui) start_ui ;;
    prometheus) start_prometheus ;;
  esac
}

# ---- commands -----------------------------------------------------------------------------------------
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

command="${1:-}"; shift || true
case "$command" in
  -h|--help|help) usage; exit 0 ;;
  up|down|status|logs|kill) mkdir -p "$RUN" "$LOGS"; chmod 755 "$PROD_DIR" ;;
  *) usage >&2; exit 2 ;;
esac
"cmd_$command" "$@"
