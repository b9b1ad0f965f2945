# shellcheck shell=bash
# Sourced by scripts/prod.sh: Airflow's api-server, scheduler, dag-processor, triggerer and Celery workers, and their health.

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
