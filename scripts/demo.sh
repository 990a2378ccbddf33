#!/usr/bin/env bash
# The main job on a fresh machine: install, then on the CPU train a small GZ-CLIP vision tower on the synthetic Galaxy
# Zoo and a tiny GZ-LLaVA on top of it (align, then QLoRA instruct), report accuracy against the baselines (and
# sim-to-real on the GZ2 test split when ../shared/data is there) and describe a galaxy. Logs: outputs/demo/logs/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
. .venv/bin/activate
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
python -m gzllava.demo "$@"
