#!/usr/bin/env bash
# Benchmarks that print figures (never timed tests).
#
#   ./scripts/bench.sh rating      rating model vs the reference recipe on a time-respecting hold-out
#   ./scripts/bench.sh rating-fixes  fixes from the error analysis vs today's model, paired bootstrap intervals
#   ./scripts/bench.sh recommend   popularity, item-kNN and the torch recommender on the LOO protocol
#   ./scripts/bench.sh serve       API throughput and p50/p99 vs the reference serving pattern
#   ./scripts/bench.sh feedback    POST /feedback and /recommend with impression logging, beside /health
#   ./scripts/bench.sh scale       /predict and /recommend: 1 replica direct, 1 and 2 replicas behind nginx
#   ./scripts/bench.sh pipeline    one full pipeline run on a fresh bucket, with per-task times
#   ./scripts/bench.sh drift       the monitor task's time and peak RSS on a day of 10^6 logged predictions
#   ./scripts/bench.sh events      curate and evaluate one day of N synthetic events on a throw-away S3
#   ./scripts/bench.sh users       precompute time per 10,000 users; /recommend p99 for cached and live users
#   ./scripts/bench.sh experiment  the canary rule on simulated experiments: decisions by true difference, peeking
#
# Extra arguments go to the benchmark (each has --help). Each is a module, scripts/bench/<name>.py with
# a dash as an underscore, run as `.venv/bin/python -m scripts.bench.<name>` (so is user_store).
set -euo pipefail
source "$(dirname "$0")/env.sh"
what="${1:-}"; shift || true
case "$what" in
  rating)    exec "$PY" -m scripts.bench.rating "$@" ;;
  rating-fixes) exec "$PY" -m scripts.bench.rating_fixes "$@" ;;
  recommend) exec "$PY" -m scripts.bench.recommend "$@" ;;
  experiment) exec "$PY" -m scripts.bench.experiment "$@" ;;
  drift)     exec "$PY" -m scripts.bench.drift "$@" ;;  # starts a throw-away SeaweedFS of its own
  serve|feedback|scale)
    # wrk (C, low overhead) keeps the load generator from eating the server's CPU; Python fallback otherwise.
    if ! command -v wrk >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "==> installing wrk (apt-get)"; (apt-get update -qq && apt-get install -y -qq wrk) >/dev/null 2>&1 || true
    fi
    if [[ "$what" == scale ]] && ! command -v nginx >/dev/null && [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
      echo "==> installing nginx (apt-get, log in $VAR_DIR/apt-nginx.log)"
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 nginx) \
        > "$VAR_DIR/apt-nginx.log" 2>&1 || true
    fi
    # Start the embedded S3 if it is the configured one and down; stop it again afterwards, so a
    # benchmark leaves the machine as it found it.
    if [[ "$S3_EMBEDDED" == "1" ]] && ! "$PY" -m services.core.embedded_s3 status >/dev/null 2>&1; then
      trap '"$PY" -m services.core.embedded_s3 stop >/dev/null 2>&1 || true' EXIT
    fi
    if [[ "$what" == "feedback" ]]; then exec "$PY" -m scripts.bench.feedback "$@"; fi
    if [[ "$what" == "scale" ]]; then
      [[ " $* " =~ " -h "|" --help " ]] || s3_up
      "$PY" -m scripts.bench.scale "$@"; exit 0
    fi
    s3_up; "$PY" -m scripts.bench.serve "$@" ;;
  events)    exec "$PY" -m scripts.bench.events "$@" ;;
  users)     exec "$PY" -m scripts.bench.users "$@" ;;  # starts a throw-away SeaweedFS of its own
  pipeline)
    export S3_BUCKET="bench-pipeline-$(date +%s)"
    echo "==> fresh bucket $S3_BUCKET"
    exec "$ROOT/scripts/pipeline.sh" --date "${1:-2026-11-20}" ;;
  *) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; [[ "$what" =~ ^(-h|--help)$ ]] && exit 0 || exit 2 ;;
esac
