#!/usr/bin/env bash
# Run the training DAG once, end to end, with `airflow dags test` (in-process, no scheduler).
#
#   ./scripts/pipeline.sh [--date YYYY-MM-DD]
#
# --date is the DATA DAY to process (default: yesterday, UTC, the day that has just ended): its TMDB
# movies, feedback, impressions and /predict log, as the scheduler's run at the next midnight does: it
# runs `airflow dags test` with D + 1, whose inferred data interval is D -> D + 1. To curate what was posted
# today so far, pass today's date.
#
# Uses the configured S3 (starts the embedded SeaweedFS when it is the configured one), the
# bundled snapshot unless TMDB_API_KEY is set, and W&B offline unless WANDB_API_KEY is set.
# Prints progress and a per-task timing table; the full Airflow log goes to var/logs/.
# Exits 1 when the run fails, and 3 when it ran through but its `alert` task failed: the day was
# marked bad (live error or drift past its threshold; see reports/alerts/), models still published.
set -euo pipefail
source "$(dirname "$0")/env.sh"

DATE="$(date -u -d yesterday +%Y-%m-%d)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --date) [[ $# -ge 2 ]] || { echo "--date needs a day, YYYY-MM-DD (see --help)" >&2; exit 2; }
            DATE="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$DATE" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] && date -u -d "$DATE" >/dev/null 2>&1 \
  || { echo "--date must be a day, YYYY-MM-DD, got $DATE" >&2; exit 2; }
# The scheduled run that processes data day D fires at D+1 00:00 UTC (services/train/schedule.py).
LOGICAL="$(date -u -d "$DATE + 1 day" +%Y-%m-%d)"

s3_up
mkdir -p "$VAR_DIR/logs" "$AIRFLOW_HOME"
LOG="$VAR_DIR/logs/pipeline-$DATE.log"
echo "==> airflow db migrate"
airflow db migrate > "$VAR_DIR/logs/airflow-db-migrate.log" 2>&1 || { tail -20 "$VAR_DIR/logs/airflow-db-migrate.log"; exit 1; }
echo "==> movie_pipeline for data day $DATE (dags test date $LOGICAL; S3 $S3_ENDPOINT_URL, bucket $S3_BUCKET; full log: $LOG)"
START=$(date +%s)
# `airflow dags test` defers SIGINT/SIGTERM until the running task ends: run it in its own process
# group so Ctrl-C here stops it at once.
setsid airflow dags test movie_pipeline "$LOGICAL" > >(tee "$LOG" | "$PY" -m scripts.ops.pipeline_progress) 2>&1 &
AF_PID=$!
interrupted() {
  echo; echo "==> interrupted: stopping the run"
  kill -TERM -- "-$AF_PID" 2>/dev/null; sleep 3; kill -KILL -- "-$AF_PID" 2>/dev/null
  "$PY" -m scripts.ops.airflow_fail_run "$LOG" 2>/dev/null || true
  exit 130
}
trap interrupted INT TERM
set +e
wait $AF_PID
STATUS=$?
set -e
trap - INT TERM
sleep 0.5  # let the progress filter print its timing table
echo "==> wall time: $(( $(date +%s) - START )) s"
if [[ $STATUS -ne 0 ]]; then
  FAILED="$("$PY" -m scripts.ops.run_failures "$LOG" 2>/dev/null | tr '\n' ' ' | sed 's/ *$//')"
  if [[ "$FAILED" == "alert" ]]; then
    "$PY" -m services.train.report "$DATE"
    echo "==> ALERT: $DATE is marked bad (the alert task failed on purpose; models were still published)" >&2
    exit 3
  fi
  echo "==> pipeline FAILED for $DATE${FAILED:+ (failed: $FAILED)} (see $LOG)" >&2
  exit 1
fi
"$PY" -m services.train.report "$DATE"
