#!/usr/bin/env bash
# Simulated users drive the real stack for a few days; each day's pipeline trains on their feedback.
#
#   ./scripts/simulate.sh [--users 50] [--days 3] [--seed 0] [--max-epochs N] [--api URL]
#
# Starts the embedded S3 when it is the configured one, runs the pipeline once if nothing is
# published, starts an API of its own (its own spool under var/spool-simulate) unless --api is
# given, then for each day: users ask /recommend and like what is in their real future, the spool
# is flushed, and scripts/pipeline.sh runs. Prints per-day online metrics per recommender version
# and the version each day's pipeline trained. Logs go to var/logs/simulate-*.log.
# A day's pipeline trains the recommender to early stop (~4 min); --max-epochs 3 makes it quick.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ "${1:-}" =~ ^(-h|--help)$ ]]; then sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
# Stop the embedded S3 afterwards if this script started it: leave the machine as it was found.
if [[ "$S3_EMBEDDED" == "1" ]] && ! "$PY" -m services.core.embedded_s3 status >/dev/null 2>&1; then
  trap '"$PY" -m services.core.embedded_s3 stop >/dev/null 2>&1 || true' EXIT
fi
s3_up
"$PY" scripts/simulate.py "$@"
