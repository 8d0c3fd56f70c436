#!/usr/bin/env bash
# Create ./.venv with a CPU build of torch and this project (editable, with the dev extra).
# Idempotent: does nothing when .venv is already up to date with pyproject.toml.
# GPU users: install the torch build for your CUDA first, then `pip install -e ".[dev,cuda]"`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_CPU_VERSION=${TORCH_CPU_VERSION:-2.13.0}
stamp=.venv/.diffuma-bench-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "installing torch==${TORCH_CPU_VERSION} ..."
  # Where plain pip would pull the multi-GB CUDA build, set TORCH_INDEX_URL to the CPU wheel index
  # (https://download.pytorch.org/whl/cpu). On this project's machines pip serves the CPU build.
  .venv/bin/python -m pip install --quiet "torch==${TORCH_CPU_VERSION}" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
fi
echo "installing diffuma-bench and its dependencies ..."
.venv/bin/python -m pip install --quiet -e ".[dev]"
echo "$want" > "$stamp"
