#!/usr/bin/env bash
# The rating model's hyperparameter search by hand: what the weekly rating_tune DAG runs, outside Airflow.
#
#   ./scripts/tune.sh [--trials N] [--timeout S] [--algorithms xgboost,lightgbm,random_forest]
#
# Tunes each algorithm (Optuna, seeded TPE) on the newest train/validation split the daily pipeline
# stored in S3 (run ./scripts/pipeline.sh once first); the test rows are never read. --trials caps each
# algorithm's trials (TUNE_TRIALS, 60), --timeout is the time budget for all of them together
# (TUNE_TIMEOUT_S, 600 s). Logs one line per trial (number, validation RMSE, best so far), then writes
# tuning/rating/dt=<day>/best.json and the tuning/rating/latest.json pointer the next daily run trains
# with. Studies go to OPTUNA_STORAGE_URL, else SQLite at var/optuna.db; W&B gets the study's plots.
set -euo pipefail
source "$(dirname "$0")/env.sh"
case "${1:-}" in -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; esac
# The CLI starts the embedded S3 (when it is the configured one) once its arguments parse.
exec "$PY" -m services.train.rating.tuning.cli "$@"
