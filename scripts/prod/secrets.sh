# shellcheck shell=bash
# Sourced by scripts/prod.sh: secrets generated once into var/prod/secrets.env, and the environment every part runs in.

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
