#!/usr/bin/env bash
# Simulated users drive the real stack for a few days; each day's pipeline trains on their feedback.
#
#   ./scripts/simulate.sh [--users 50] [--days 3] [--seed 0] [--max-epochs N] [--api URL]
#
# Starts the embedded S3 when it is the configured one, runs the pipeline once if nothing is
# published, starts an API of its own (its own spool under var/spool-simulate) unless --api is
# given, then for each day: users ask /recommend and like what is in their real future, the spool
# is flushed, and scripts/pipeline.sh runs. Prints per-day online metrics per recommender version
# and the version each day's pipeline trained (scripts/simulate/loop.py). Logs: var/logs/simulate-*.log.
# A day's pipeline trains the recommender to early stop (~4 min); --max-epochs 3 makes it quick.
#
#   ./scripts/simulate.sh --candidate worse|better [--users-per-day 150] [--days N] [--share 0.5]
#                         [--seed 0] [--max-epochs N] [--api URL]
#
# An online experiment instead (scripts/simulate/experiment.py): worse = the popularity baseline is
# the candidate against the trained recommender, and should be rolled back; better = popularity is
# made production and the trained recommender is the candidate, and should be promoted. Each day new
# users arrive and earlier ones return, ask /recommend with their user id and like what is in their
# real future; the day is judged by the DAG's judge_experiment, which prints users, hit rate per arm,
# the difference with its 95% interval and the verdict, until the first promote or rollback. Share
# 0.5 by default (652 simulated users are enough for 200 per arm; EXPERIMENT_MIN_USERS sets that).
# The API stamps events with the real time, so every simulated day lands in today's partition;
# simulated day k is judged as data day today + k - 1, reading the experiment's impressions
# cumulatively: each judgement sees all the traffic so far. Reports show on the UI's Model page.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ "${1:-}" =~ ^(-h|--help)$ ]]; then sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
# Stop the embedded S3 afterwards if this script started it: leave the machine as it was found.
if [[ "$S3_EMBEDDED" == "1" ]] && ! "$PY" -m services.core.embedded_s3 status >/dev/null 2>&1; then
  trap '"$PY" -m services.core.embedded_s3 stop >/dev/null 2>&1 || true' EXIT
fi
s3_up
if [[ " $* " == *" --candidate"* ]]; then
  "$PY" -m scripts.simulate.experiment "$@"
else
  "$PY" -m scripts.simulate.loop "$@"
fi
