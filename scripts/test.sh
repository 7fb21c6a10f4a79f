#!/usr/bin/env bash
# The test suite, on a fresh machine: set up .venv with the dev, hf, ray, html and serve extras, then pytest on 2 workers.
# Extra arguments go to pytest (e.g. -m "not slow" for the quick subset).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck disable=SC1091
source scripts/setup-env.sh "dev,hf,ray,html,serve"
ruff check src tests benchmarks
# pytest exits 5 when it collects no tests, which fails this script (set -e): an empty run is a failure.
exec python -m pytest -n 2 --dist loadgroup "$@"
