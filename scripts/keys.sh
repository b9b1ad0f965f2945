#!/usr/bin/env bash
# API keys for clients: create NAME --scopes act-as-user[,admin,sign-up] | list | revoke KEY_ID
# (--help for details). The key file is API_KEYS_FILE ($VAR_DIR/api_keys.json), hashes only, mode 600.
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec "$PY" -m services.core.keys_cli "$@"
