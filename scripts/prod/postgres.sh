# shellcheck shell=bash
# Sourced by scripts/prod.sh: PostgreSQL 15, Airflow's metadata DB and Celery's result backend (own cluster, as `postgres`).

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
