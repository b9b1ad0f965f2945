#!/usr/bin/env bash
# The Streamlit UI on http://127.0.0.1:${UI_PORT:-8501}; it calls the API at ${API_URL:-http://127.0.0.1:8000}.
#   ./scripts/ui.sh              start it in the foreground (Ctrl-C stops it)
#   ./scripts/ui.sh --help       this help
# Extra arguments go to `streamlit run` (e.g. --server.runOnSave true). Start the API first.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [[ "${1:-}" =~ ^(-h|--help)$ ]]; then sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
export UI_PORT="${UI_PORT:-8501}"
export API_URL="${API_URL:-http://127.0.0.1:8000}"
echo "UI on http://127.0.0.1:$UI_PORT (API: $API_URL)" >&2
exec "$PY" -m streamlit run services/ui/app.py \
  --server.headless true \
  --browser.gatherUsageStats false \
  --server.address 127.0.0.1 \
  --server.port "$UI_PORT" \
  --client.toolbarMode minimal \
  "$@"
