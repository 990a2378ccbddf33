#!/usr/bin/env bash
# Install gz-llava and everything it needs into .venv (idempotent). Used by .ci/run and scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first and pinned: the CPU wheel (an unpinned torch pulls gigabytes of CUDA packages)
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test]"
