#!/usr/bin/env bash
# The main job on the built-in data, on a fresh machine: set up .venv, then `gptkit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/setup-env.sh ""
exec gptkit demo "$@"
