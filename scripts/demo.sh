#!/usr/bin/env bash
# The main job on the built-in data, on a fresh machine: set up .venv, then `gptkit demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo's 6 minutes start now: the setup below and the imports count too (gptkit.demo.STARTED_ENV).
GPTKIT_DEMO_STARTED="$(date +%s.%N)"
export GPTKIT_DEMO_STARTED
# shellcheck disable=SC1091
source scripts/setup-env.sh ""
exec gptkit demo "$@"
