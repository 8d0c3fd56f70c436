#!/usr/bin/env bash
# Set up .venv, then run the main job on the generated default dataset and render the tables:
# all registered models on `synthetic-weather` with the `quick` profile (minutes on a laptop CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/bench run --models all --dataset synthetic-weather --profile quick "$@"
.venv/bin/bench table --format all
