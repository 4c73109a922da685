#!/usr/bin/env bash
# The main job on the built-in defaults: a fresh sklearn project from init to a prediction.
# Works in a temporary folder (or $1) and removes the endpoint it started.
set -euo pipefail
work="${1:-$(mktemp -d -t mldock-main-job-XXXX)}"
mkdir -p "$work" && cd "$work"
echo "== working in $work"
set -x
mldock init iris --template sklearn --no-input
cd iris
mldock build
run_id=$(mldock train)
trap 'mldock undeploy >/dev/null 2>&1 || true' EXIT
mldock deploy --run "$run_id"
mldock predict --data sample.json
mldock runs list
mldock runs show "$run_id" --json
mldock undeploy
trap - EXIT
