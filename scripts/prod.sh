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

# The parts live in scripts/prod/, one file per seam; each only defines functions (and their state).
source "$ROOT/scripts/prod/packages.sh"
source "$ROOT/scripts/prod/secrets.sh"
source "$ROOT/scripts/prod/processes.sh"
source "$ROOT/scripts/prod/s3.sh"
source "$ROOT/scripts/prod/postgres.sh"
source "$ROOT/scripts/prod/redis.sh"
source "$ROOT/scripts/prod/airflow.sh"
source "$ROOT/scripts/prod/serving.sh"
source "$ROOT/scripts/prod/prometheus.sh"
source "$ROOT/scripts/prod/commands.sh"

command="${1:-}"; shift || true
case "$command" in
  -h|--help|help) usage; exit 0 ;;
  up|down|status|logs|kill) mkdir -p "$RUN" "$LOGS"; chmod 755 "$PROD_DIR" ;;
  *) usage >&2; exit 2 ;;
esac
"cmd_$command" "$@"
