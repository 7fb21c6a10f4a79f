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
if ! python -c "import torch" 2>/dev/null; then
  python -m pip install -q "torch==${TORCH_VERSION}"
fi
stamp=".venv/.gptkit-installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  python -m pip install -q -e ".${extras:+[$extras]}"
  touch "$stamp"
fi
