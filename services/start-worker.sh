#!/usr/bin/env bash
# Start a Ray worker node in the foreground (`ray start --address=HEAD --block`): what the
# `ray-worker` compose service runs and what tests/integration/cluster.py runs on loopback.
#
# Environment (defaults suit the container):
#   RAY_HEAD_ADDRESS=ray-head:6379  the head's GCS address
#   RAY_NODE_IP                     --node-ip-address, when set
#   RAY_NUM_CPUS                    --num-cpus, when set
#   RAY_AUTH_TOKEN                  cluster token; or a file at RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token
#   RAY_CMD=ray                     the ray CLI, e.g. "/other/python -m ray.scripts.scripts"
# Extra arguments are passed on to `ray start`.
set -euo pipefail

# Without RAY_AUTH_MODE=token the node cannot join a head that has token auth on.
export RAY_AUTH_MODE=token
if [[ -z "${RAY_AUTH_TOKEN:-}" && ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]]; then
    echo "start-worker.sh: no Ray auth token: set RAY_AUTH_TOKEN (see .env.example) or write one to" \
        "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token} (RAY_AUTH_TOKEN_PATH)" >&2
    exit 2
fi

args=(start --block --address="${RAY_HEAD_ADDRESS:-ray-head:6379}")
if [[ -n "${RAY_NODE_IP:-}" ]]; then args+=(--node-ip-address="$RAY_NODE_IP"); fi
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus="$RAY_NUM_CPUS"); fi

# RAY_CMD may be several words ("python -m ray.scripts.scripts"): split it on purpose.
# shellcheck disable=SC2086
exec ${RAY_CMD:-ray} "${args[@]}" "$@"
