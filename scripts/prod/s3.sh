# shellcheck shell=bash
# Sourced by scripts/prod.sh: the embedded SeaweedFS of scripts/env.sh, when it is the configured S3.

start_s3() {
  [[ "$S3_EMBEDDED" == "1" ]] || { echo "   s3: external ($S3_ENDPOINT_URL)"; return 0; }
  check_ports_free "s3=$S3_PORT"
  "$PY" -m services.core.embedded_s3 start > "$LOGS/s3.log" 2>&1 || { tail -n 20 "$LOGS/s3.log" >&2; return 1; }
  touch "$RUN/s3.started"
  wait_healthy s3 60
}
