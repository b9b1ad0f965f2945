#!/usr/bin/env bash
# The model registry in S3: ls [PREFIX] | versions MODEL | show MODEL [VERSION] |
# verify MODEL [VERSION] | promote MODEL VERSION | rollback MODEL [--from VERSION] [--reason TEXT] |
# pointer MODEL   (MODEL: rating, recommender; --help for details)
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec "$PY" -m services.core.registry_cli "$@"
