#!/usr/bin/env bash
# The main job on a fresh machine: install, then train a tiny GZ-LLaVA on the synthetic Galaxy Zoo on the CPU
# (align, then QLoRA instruct), report accuracy against the baselines and describe galaxies. About 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
python -m gzllava.demo "$@"
