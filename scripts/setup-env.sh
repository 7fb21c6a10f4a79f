#!/usr/bin/env bash
# Create .venv (if needed) and install gptkit into it with the given extras, torch first and pinned,
# so pip never resolves a bare `torch` to a multi-GB CUDA build on a CPU machine.
# Usage: source scripts/setup-env.sh [EXTRAS]   e.g. "dev,hf"
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
extras="${1:-}"
TORCH_VERSION="${GPTKIT_TORCH_VERSION:-2.13.0}"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
# --no-compile: no bytecode for the ~2,300 modules of torch (and the dependencies) at install time; Python
# compiles the few hundred a process imports when it imports them. On a fresh .venv (2 cores, local wheels,
# 2026-12-03): torch 9.4 s instead of 23.6, gptkit and its dependencies 11.3 s instead of 16.3, the first
# import of torch + gptkit 6.4 s instead of 3.0 (docs/training.md, round 11).
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q --no-compile "torch==${TORCH_VERSION}"
fi
stamp=".venv/.gptkit-installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q --no-compile -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
