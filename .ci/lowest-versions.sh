#!/usr/bin/env bash
# The declared floors, seen working: every package of the workspace installed at the lowest
# version of each of its direct dependencies (`uv pip install --resolution lowest-direct`) in a
# venv of its own, then the non-Docker suite run against that venv.
#
# Why: the workspace lock always holds recent versions, so a `>=` in a pyproject.toml is never
# exercised there; a floor that no longer works only shows up on a user's machine that happens to
# have the old version (typer 0.12, pydantic 2.6.0, docker 7.0, boto3 1.34 and mlflow-skinny 2.14
# all did). Transitive dependencies resolve to their newest allowed version, as pip gives users.
#
# Left out, on purpose: Docker tests (the same code runs against the newest versions in the main
# run), tests/platforms (the cloud SDKs' own venvs), tests/packaging (builds its own venvs from
# PyPI's newest versions) and tests/test_docs*.py (the docs toolchain is the dev group's, not a
# package's dependency). Usage: bash .ci/lowest-versions.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d -t mldock-lowest-XXXX)
trap 'rm -rf "$work"' EXIT
# the workspace's interpreter: old floors have wheels for it (a newer Python may need a build)
python=$(uv run --no-sync python -c 'import sys; print(sys.executable)')
uv venv -q --python "$python" "$work/venv"

packages=(-e "core[testing,tune]")  # tune: Optuna, for the local tuner's tests
for plugin in plugins/*/pyproject.toml; do
  packages+=(-e "$(dirname "$plugin")[test]")
done
# emulators the core tests start, at the floor the dev group declares for them
emulators=$(uv run --no-sync python - <<'EOF'
import tomllib
dev = tomllib.load(open("pyproject.toml", "rb"))["dependency-groups"]["dev"]
print(" ".join(d for d in dev if d.startswith("gcp-storage-emulator")))
EOF
)
# shellcheck disable=SC2086 # one word per requirement
uv pip install -q --python "$work/venv/bin/python" --resolution lowest-direct "${packages[@]}" \
  $emulators
uv pip list -q --python "$work/venv/bin/python" >"${LOGDIR:-$work}/lowest-versions.txt"

PATH="$work/venv/bin:$PATH" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider \
  -m "not docker" --ignore=tests/platforms --ignore=tests/packaging --ignore-glob='tests/test_docs*.py' \
  core/tests plugins tests "$@"
