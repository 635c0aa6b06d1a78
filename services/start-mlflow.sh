#!/usr/bin/env bash
# Migrate the MLflow database, then run `mlflow server` in the foreground: what the `mlflow`
# compose service runs and what tests/integration/cluster.py runs on loopback.
#
# Environment (defaults suit the container):
#   MLFLOW_BACKEND_STORE_URI      required, e.g. postgresql+psycopg2://USER:PW@postgres:5432/mlflow
#   MLFLOW_ARTIFACTS_DESTINATION=/mlartifacts  where the server stores artifacts
#   MLFLOW_HOST=0.0.0.0
#   MLFLOW_PORT=5000
#   MLFLOW_ALLOWED_HOSTS=mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*
#                                 Host headers the server answers (others get 403)
#   MLFLOW_WORKERS=2
#   MLFLOW_CMD=mlflow             the mlflow CLI, e.g. "/venv/bin/python -m mlflow"
#   MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
#                                 MLflow's job runner (GenAI scorers, trace roll-ups), which sweeps
#                                 never use: `true` starts it, 8 more processes, costly to start
#                                 and to stop and busy while idle (docs/performance.md)
# Extra arguments are passed on to `mlflow server`.
set -euo pipefail

: "${MLFLOW_BACKEND_STORE_URI:?start-mlflow.sh: set MLFLOW_BACKEND_STORE_URI (the tracking database URL)}"
mlflow_cmd="${MLFLOW_CMD:-mlflow}"
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"

# The server refuses an out-of-date schema. `db upgrade` creates the tables on an empty
# database (MLflow 3.17 checks for that first) and is a no-op on a current one.
# shellcheck disable=SC2086
$mlflow_cmd db upgrade "$MLFLOW_BACKEND_STORE_URI"

# shellcheck disable=SC2086
exec $mlflow_cmd server \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --artifacts-destination "${MLFLOW_ARTIFACTS_DESTINATION:-/mlartifacts}" \
    --serve-artifacts \
    --host "${MLFLOW_HOST:-0.0.0.0}" \
    --port "${MLFLOW_PORT:-5000}" \
    --allowed-hosts "${MLFLOW_ALLOWED_HOSTS:-mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*}" \
    --workers "${MLFLOW_WORKERS:-2}" \
    "$@"
