#!/usr/bin/env bash
# The prediction API (FastAPI under uvicorn), loading production models from the S3 registry.
#   ./scripts/serve.sh            serve on http://127.0.0.1:8000 (docs at /docs)
#   ./scripts/serve.sh --help     this text
# Environment: SERVE_HOST (127.0.0.1), SERVE_PORT (8000), SERVE_ACCESS_LOG (0; 1 logs every request),
# SPOOL_DIR (var/spool: the replica's event spool, one per replica), ADMIN_TOKEN (enables POST
# /admin/reload), S3_* and MODEL_CACHE_DIR as in scripts/env.sh. One uvicorn worker: scale with replicas.
# Extra arguments go to uvicorn. Starts the embedded S3 server first when it is the configured one.
# See docs/serving.md.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ "${1:-}" =~ ^(-h|--help)$ ]]; then sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
if [[ "${SERVE_WORKERS:-1}" != "1" ]]; then
  echo "SERVE_WORKERS=${SERVE_WORKERS}: run one uvicorn worker per replica. Each process needs an event spool" >&2
  echo "of its own (SPOOL_DIR); scale out with more replicas on their own ports behind a load balancer." >&2
  exit 2
fi
s3_up
# httptools named explicitly: uvicorn would quietly fall back to h11, which costs 2x the CPU per request.
# The access log is off by default: ~0.05 ms of CPU per request (a third of /health's); /metrics counts
# requests per route and status anyway.
access_log=(--no-access-log)
[[ "${SERVE_ACCESS_LOG:-0}" == "1" ]] && access_log=()
exec "$PY" -m uvicorn services.serve.app:create_app --factory \
  --host "${SERVE_HOST:-127.0.0.1}" --port "${SERVE_PORT:-8000}" --workers "${SERVE_WORKERS:-1}" \
  --http httptools "${access_log[@]}" --no-server-header "$@"
