#!/usr/bin/env bash
# The online user store (what /recommend knows of each user_id): rebuild [--days N] | show USER_ID |
# delete USER_ID   (--help for details). USER_STORE_URL (Redis) or USER_STORE_PATH (SQLite) as the API has it.
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec "$PY" -m services.train.feedback.users_cli "$@"
