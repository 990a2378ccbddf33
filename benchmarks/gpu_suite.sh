#!/usr/bin/env bash
# GZ-LLaVA at llava-1.5-7b shapes on one CUDA GPU (random weights: they measure memory and speed as real ones do),
# bf16, SDPA. One prepared run, under 8 minutes on an H200 (measured: about 7; each part's limit below, 9.7 minutes if all
# four ran into them); safe to rerun (every file is rewritten, scratch folders
# are removed). Writes into OUT_DIR (default benchmarks/gpu-results): one JSON per benchmark, their logs,
# gpu_suite.json (all of them) and gpu_suite.md (the table against the issue's goals).
#
#   bash benchmarks/gpu_suite.sh [OUT_DIR]
#   GZ_SUITE_SHAPE=tiny GZ_SUITE_DEVICE=cpu bash benchmarks/gpu_suite.sh /tmp/dry   # the script itself, on a CPU
#   GZ_SUITE_PARTS=bench_train,bench_decode_static bash benchmarks/gpu_suite.sh OUT_DIR  # rerun some parts
#   GZ_WHEELS=.whl bash benchmarks/gpu_suite.sh "$OUT"   # first install the wheels in .whl, made here by
#                                                        # `bash benchmarks/gpu_wheels.sh` (the pinned stack)
#
# Parts, in order of what they are worth, each with its own time limit so a slow part cannot take the others down:
#   1. bench_model.py   forward + generate, batch 8, against stock LlavaForConditionalGeneration (same tensors)
#   2. bench_decode.py  batch-1 decode (dynamic cache) against the memory-bandwidth limit; the 4-bit NF4 load
#   3. bench_train.py   QLoRA instruct stage, batch 4, 576 image tokens: ours, stock Llava on TRL, the resampler
#   4. bench_decode.py  batch-1 decode with the static cache, compiled by transformers (slowest to start: last)
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT_DIR="$(mkdir -p "${1:-$REPO/benchmarks/gpu-results}" && cd "${1:-$REPO/benchmarks/gpu-results}" && pwd)"
# Scratch for the 7B folders the NF4 and QLoRA parts save and load (14 GB each in bf16): memory-backed /dev/shm when
# it has 40 GB free, else the temp folder. GZ_SCRATCH overrides.
free_gb() { df --output=avail -B1G "$1" 2>/dev/null | tail -n 1 | tr -d ' '; }
if [ -z "${GZ_SCRATCH:-}" ]; then
  GZ_SCRATCH="${TMPDIR:-/tmp}"
  [ -d /dev/shm ] && [ "$(free_gb /dev/shm || echo 0)" -ge 40 ] 2>/dev/null && GZ_SCRATCH=/dev/shm
fi
SCRATCH="$GZ_SCRATCH"
PYTHON="${PYTHON:-python3}"
cd "$REPO"
PARTS=",${GZ_SUITE_PARTS:-bench_model,bench_decode,bench_train,bench_decode_static},"  # a rerun of some parts
rm -f "$OUT_DIR"/gpu_suite.md "$OUT_DIR"/gpu_suite.json

if [ -n "${GZ_WHEELS:-}" ]; then
  SITE="$(mktemp -d "${TMPDIR:-/tmp}/gz-site.XXXX")"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
    "$GZ_WHEELS"/*.whl || { echo "gpu_suite: installing the wheels in $GZ_WHEELS failed" >&2; exit 2; }
  export PYTHONPATH="$SITE"
fi
export PYTHONPATH="$REPO:$REPO/benchmarks${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1

echo "scratch: $SCRATCH ($(free_gb "$SCRATCH") GB free)" | tee "$OUT_DIR/environment.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | tee -a "$OUT_DIR/environment.log"
"$PYTHON" - <<'EOF' 2>&1 | tee -a "$OUT_DIR/environment.log"
import importlib, platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "NO CUDA DEVICE")
for name in ("transformers", "trl", "datasets", "peft", "accelerate", "bitsandbytes", "huggingface_hub", "pyarrow"):
    try:
        print(f"{name} {importlib.import_module(name).__version__}")
    except Exception as error:  # a missing package is reported here and fails its part below, loudly
        print(f"{name} MISSING: {error}")
EOF

failed=()
part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to OUT_DIR/NAME.log, note a failure and go on
  local name="$1" seconds="$2"; shift 2
  [[ "$PARTS" == *",$name,"* ]] || { echo "== $name: skipped (GZ_SUITE_PARTS)"; return; }
  rm -f "$OUT_DIR/$name.log" "$OUT_DIR/${name}_7b.json"  # no stale figures from an earlier run
  local start=$SECONDS
  echo "== $name (limit ${seconds} s): $*"
  timeout --kill-after=10 "$seconds" "$@" > "$OUT_DIR/$name.log" 2>&1
  local status=$?
  grep -v -E "it/s\]|s/it\]|Warning|warn\(" "$OUT_DIR/$name.log" | tail -n 40
  echo "== $name: exit $status after $((SECONDS - start)) s"
  [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

SHAPE="${GZ_SUITE_SHAPE:-llava-1.5-7b}" DEVICE="${GZ_SUITE_DEVICE:-cuda}"  # tiny + cpu: a dry run of the script itself
TRAIN_DEVICE=(); [ "$DEVICE" = cuda ] && TRAIN_DEVICE=(--cuda)
part bench_model 90 "$PYTHON" benchmarks/bench_model.py --shape "$SHAPE" --device "$DEVICE" --batch-size 8 \
  --new-tokens 32 --repeats 5 --warmup 1 --json "$OUT_DIR/bench_model_7b.json"
part bench_decode 100 "$PYTHON" benchmarks/bench_decode.py --shape "$SHAPE" --device "$DEVICE" --modes dynamic,nf4 \
  --new-tokens 32 --repeats 3 --workdir "$SCRATCH" --json "$OUT_DIR/bench_decode_7b.json"
part bench_train 250 "$PYTHON" benchmarks/bench_train.py --shape "$SHAPE" "${TRAIN_DEVICE[@]}" --batch 4 --steps 6 \
  --warmup 2 --rounds 1 --cases instruct-gz,instruct-stock,instruct-resampler --workdir "$SCRATCH" \
  --json "$OUT_DIR/bench_train_7b.json"
part bench_decode_static 140 "$PYTHON" benchmarks/bench_decode.py --shape "$SHAPE" --device "$DEVICE" --modes static \
  --new-tokens 32 --repeats 3 --json "$OUT_DIR/bench_decode_static_7b.json"

"$PYTHON" benchmarks/gpu_report.py "$OUT_DIR" || failed+=("gpu_report")
if [ "${#failed[@]}" -gt 0 ]; then
  echo "gpu_suite: failed: ${failed[*]} (logs in $OUT_DIR)" >&2
  exit 1
fi
