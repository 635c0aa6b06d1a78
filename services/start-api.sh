#!/usr/bin/env bash
# Start the REST API (`sweep serve`) in the foreground: what the `api` compose service runs and
# what tests/integration/test_api_service.py runs on loopback.
#
# Environment (defaults suit the container):
#   SWEEP_RAY_ADDRESS    the cluster's Jobs API, e.g. http://ray-head:8265 (required: without it
#                        `sweep serve` would start a Ray head of its own)
#   SWEEP_TRACKING_URI   MLflow, for the service and every job it submits (required)
#   SWEEP_API_TOKEN      the bearer token clients send (required: the service binds SWEEP_HOST)
#   RAY_AUTH_TOKEN       the cluster's token; or a file at RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token
#   SWEEP_HOST=0.0.0.0   interface to bind
#   SWEEP_PORT=8000      port
#   SWEEP_CMD=sweep      the sweep CLI, e.g. "/venv/bin/python -m sweep"
# The service reads its other SWEEP_* settings itself (docs/api.md); extra arguments are passed
# on to `sweep serve`.
set -euo pipefail

: "${SWEEP_RAY_ADDRESS:?start-api.sh: set SWEEP_RAY_ADDRESS to the Jobs API of the cluster (http://ray-head:8265)}"
: "${SWEEP_TRACKING_URI:?start-api.sh: set SWEEP_TRACKING_URI to the MLflow tracking server}"
: "${SWEEP_API_TOKEN:?start-api.sh: set SWEEP_API_TOKEN (see .env.example): clients send it as a bearer token}"

# The Jobs API has token authentication on, as every Ray node does.
export RAY_AUTH_MODE=token
if [[ -z "${RAY_AUTH_TOKEN:-}" && ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]]; then
    echo "start-api.sh: no Ray auth token: set RAY_AUTH_TOKEN (see .env.example) or write one to" \
        "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token} (RAY_AUTH_TOKEN_PATH)" >&2
    exit 2
fi

# SWEEP_CMD may be several words ("python -m sweep"): split it on purpose.
# shellcheck disable=SC2086
exec ${SWEEP_CMD:-sweep} serve --host "${SWEEP_HOST:-0.0.0.0}" --port "${SWEEP_PORT:-8000}" "$@"
