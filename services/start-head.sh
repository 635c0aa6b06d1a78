#!/usr/bin/env bash
# Start the Ray head node in the foreground (`ray start --head --block`): what the `ray-head`
# compose service runs and what tests/integration/cluster.py runs on loopback.
#
# Environment (defaults suit the container):
#   RAY_PORT=6379              GCS port that workers join
#   RAY_DASHBOARD_HOST=0.0.0.0 interface of the dashboard, which serves the Jobs API
#   RAY_DASHBOARD_PORT=8265    Jobs API / dashboard port
#   RAY_NODE_IP                --node-ip-address, when set
#   RAY_NUM_CPUS               --num-cpus, when set
#   SWEEP_MAX_RUNNING_SWEEPS=2 sweeps whose driver runs at once: the head offers this many
#                              `sweep_slot`s and each sweep job takes one (sweep/admission.py)
#   RAY_JOB_START_TIMEOUT_SECONDS=2592000  how long a job may wait PENDING for its slot (30 days)
#   RAY_AUTH_TOKEN             cluster token; or a file at RAY_AUTH_TOKEN_PATH / ~/.ray/auth_token
#   RAY_CMD=ray                the ray CLI, e.g. "/other/python -m ray.scripts.scripts"
# Extra arguments are passed on to `ray start`.
set -euo pipefail

# Token authentication stays on: with RAY_AUTH_MODE unset and no token found, Ray 2.60's
# `ray start --head` only warns and starts with authentication off (scripts.py,
# maybe_enable_token_auth_if_token_available); with the mode set and no token it fails late.
export RAY_AUTH_MODE=token
if [[ -z "${RAY_AUTH_TOKEN:-}" && ! -s "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token}" ]]; then
    echo "start-head.sh: no Ray auth token: set RAY_AUTH_TOKEN (see .env.example) or write one to" \
        "${RAY_AUTH_TOKEN_PATH:-$HOME/.ray/auth_token} (RAY_AUTH_TOKEN_PATH)" >&2
    exit 2
fi

# `ray job stop` defaults. The job supervisor actor reads RAY_JOB_STOP_SIGNAL and
# RAY_JOB_STOP_WAIT_TIME_S from its own os.environ (ray/dashboard/modules/job/job_supervisor.py),
# i.e. this raylet's environment overlaid with the job's runtime_env env_vars, so a job's own
# env_vars win. SIGINT lets Tune save the experiment and exit; SIGKILL follows after the wait.
export RAY_JOB_STOP_SIGNAL="${RAY_JOB_STOP_SIGNAL:-SIGINT}"
export RAY_JOB_STOP_WAIT_TIME_S="${RAY_JOB_STOP_WAIT_TIME_S:-60}"

# Admission (sweep/admission.py, docs/api.md#queue): a sweep job asks for one `sweep_slot`, so
# Ray keeps it PENDING while every slot is taken. Ray's dashboard fails a job PENDING longer than
# RAY_JOB_START_TIMEOUT_SECONDS (default 900 s, ray/dashboard/consts.py): a queue waits longer.
slots="${SWEEP_MAX_RUNNING_SWEEPS:-2}"
if ! [[ "$slots" =~ ^[1-9][0-9]*$ ]]; then
    echo "start-head.sh: SWEEP_MAX_RUNNING_SWEEPS must be a whole number >= 1 (got '$slots')" >&2
    exit 2
fi
export RAY_JOB_START_TIMEOUT_SECONDS="${RAY_JOB_START_TIMEOUT_SECONDS:-2592000}"

args=(
    start --head --block
    --port="${RAY_PORT:-6379}"
    --dashboard-host="${RAY_DASHBOARD_HOST:-0.0.0.0}"
    --dashboard-port="${RAY_DASHBOARD_PORT:-8265}"
)
if [[ -n "${RAY_NODE_IP:-}" ]]; then args+=(--node-ip-address="$RAY_NODE_IP"); fi
if [[ -n "${RAY_NUM_CPUS:-}" ]]; then args+=(--num-cpus="$RAY_NUM_CPUS"); fi
args+=(--resources="{\"sweep_slot\": $slots}")

# RAY_CMD may be several words ("python -m ray.scripts.scripts"): split it on purpose.
# shellcheck disable=SC2086
exec ${RAY_CMD:-ray} "${args[@]}" "$@"
