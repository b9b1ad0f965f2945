# Sourced by every script: the project's defaults, overridable from the environment or .env.
# Embedded defaults: SeaweedFS on 127.0.0.1, Airflow on SQLite, W&B offline, the bundled snapshot.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
cd "$ROOT"
if [[ -f .env ]]; then set -a; source .env; set +a; fi
[[ -x .venv/bin/python ]] && [[ -n "$(ls .venv/.installed-* 2>/dev/null)" ]] || ./scripts/setup.sh
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export VAR_DIR="${VAR_DIR:-$ROOT/var}"
mkdir -p "$VAR_DIR"

# --- S3: embedded unless S3_ENDPOINT_URL (or S3_USE_AWS=1) says otherwise ----------------------
export S3_BUCKET="${S3_BUCKET:-movie-intel}"
export S3_PORT="${S3_PORT:-8333}"
export S3_DATA_DIR="${S3_DATA_DIR:-$VAR_DIR/s3}"
if [[ -z "${S3_EMBEDDED:-}" ]]; then
  if [[ -z "${S3_ENDPOINT_URL:-}" && "${S3_USE_AWS:-0}" != "1" ]]; then S3_EMBEDDED=1; else S3_EMBEDDED=0; fi
fi
export S3_EMBEDDED
if [[ "$S3_EMBEDDED" == "1" ]]; then
  export S3_ENDPOINT_URL="${S3_ENDPOINT_URL:-http://127.0.0.1:$S3_PORT}"
  # Local keys are generated once per checkout (never committed, never a default in code).
  mkdir -p "$S3_DATA_DIR"
  if [[ ! -f "$S3_DATA_DIR/keys.env" ]]; then
    (umask 077; printf 'AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n' \
      "local$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')" \
      "$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')" > "$S3_DATA_DIR/keys.env")
  fi
  set -a; source "$S3_DATA_DIR/keys.env"; set +a
fi

# --- Airflow standalone on SQLite ----------------------------------------------------------------
export AIRFLOW_HOME="${AIRFLOW_HOME:-$VAR_DIR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-4}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:-True}"
export AIRFLOW_PORT="${AIRFLOW_PORT:-8080}"
export AIRFLOW__API__PORT="$AIRFLOW_PORT"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$AIRFLOW_PORT/execution/}"
export AIRFLOW__LOGGING__WORKER_LOG_SERVER_HOST="${AIRFLOW__LOGGING__WORKER_LOG_SERVER_HOST:-127.0.0.1}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-$AIRFLOW_HOME/passwords.json}"

# --- W&B offline by default; online when a key is set ---------------------------------------------
if [[ -n "${WANDB_API_KEY:-}" ]]; then export WANDB_MODE="${WANDB_MODE:-online}"; else export WANDB_MODE="${WANDB_MODE:-offline}"; fi
export WANDB_DIR="${WANDB_DIR:-$VAR_DIR/wandb}"
export WANDB_SILENT="${WANDB_SILENT:-true}"
export MODEL_CACHE_DIR="${MODEL_CACHE_DIR:-$VAR_DIR/model-cache}"
# Optuna's studies (the weekly search) when OPTUNA_STORAGE_URL is unset: SQLite beside the rest of var/.
export TUNE_SQLITE_PATH="${TUNE_SQLITE_PATH:-$VAR_DIR/optuna.db}"
# Clients' API keys, hashed (./scripts/keys.sh writes it; the API reads it).
export API_KEYS_FILE="${API_KEYS_FILE:-$VAR_DIR/api_keys.json}"

s3_up() {  # start the embedded S3 server when it is the configured one
  if [[ "$S3_EMBEDDED" == "1" ]]; then "$PY" -m services.core.embedded_s3 start; fi
}
