#!/usr/bin/env bash
# Wheels for a GPU machine that has torch but not the project's stack (no trl/datasets/bitsandbytes, an older
# transformers, no ftfy): the pinned versions from constraints.txt, for CPython 3.12 on x86-64 Linux, into one folder
# that gpu_suite.sh installs with GZ_WHEELS=FOLDER. bitsandbytes keeps only its CPU and CUDA 13 libraries (43 -> 7 MB),
# so the folder stays small enough to travel with the working tree.
#
#   bash benchmarks/gpu_wheels.sh [FOLDER]        # default .whl (git-ignored through .git/info/exclude or .gitignore)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FOLDER="${1:-$REPO/.whl}"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
# What the 2026-12 H200 image lacked or had older (its torch 2.11 + cu130, numpy, pyarrow 25, accelerate 1.15 stay).
PACKAGES=(transformers trl datasets dill multiprocess peft bitsandbytes ftfy wcwidth)
mkdir -p "$FOLDER"
for name in "${PACKAGES[@]}"; do
  pin="$(grep -i -E "^${name}==" "$REPO/constraints.txt")" || { echo "gpu_wheels: $name is not pinned in constraints.txt" >&2; exit 2; }
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$FOLDER" "$pin"
done
"$PYTHON" - "$FOLDER" <<'EOF'
import glob, os, sys, zipfile

# bitsandbytes ships one library per CUDA/ROCm/XPU version; keep the CPU and CUDA 13.x ones (RECORD kept in step).
keep = lambda name: not name.endswith(".so") or any(k in name for k in ("_cpu.so", "cuda130", "cuda132"))
for wheel in glob.glob(os.path.join(sys.argv[1], "bitsandbytes-*.whl")):
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(wheel + ".tmp", "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if keep(item.filename):
                data = source.read(item.filename)
                if item.filename.endswith("RECORD"):
                    data = b"\n".join(line for line in data.split(b"\n") if keep(line.split(b",")[0].decode()))
                target.writestr(item, data)
    os.replace(wheel + ".tmp", wheel)
EOF
du -sh "$FOLDER"
