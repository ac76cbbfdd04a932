#!/usr/bin/env bash
# W3 of WORKLOADS.md: Skim-RNN at batch 1 (embeddings 128, big LSTM 256,
# small LSTM 32, 200 steps, a read/skim decision per step) compiled by dyncc
# (one dyn.skip) next to its PyTorch 2.x and ONNX Runtime peers: the eager
# step loop (nn.LSTMCell, a Python branch per step), the same loop over the
# step's pieces compiled by torch.compile and as ONNX Runtime sessions; same
# weights and input, in one process (bench/w3_bench.py). Prints a markdown
# table: µs per step and dyncc's speed-up over each peer at 1 and 2 threads,
# and the same model compiled with --precision=bf16 (its decisions compared).
#   bench/run-w3.sh [build-dir] [rounds] [runs]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build;
#        W3_FLAGS: more w3_bench.py options (--no-compile, --no-onnx, ...).
# Runs in the project's .venv (scripts/install-deps.sh): PyPI PyTorch,
# torch-mlir, ONNX Runtime. OMP_WAIT_POLICY is left as it is (unset:
# libgomp's default), as for W1, W2 and M1. The table prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
rounds="${2:-5}"
runs="${3:-20}"
py="$PWD/.venv/bin/python"
if [ ! -x "$py" ]; then
  echo "run-w3.sh: no .venv here: run scripts/install-deps.sh first" >&2
  exit 1
fi

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$py" bench/w3_bench.py --dyncc "$dyncc" --threads 2 --eager-threads 1,2 \
  --rounds "$rounds" --runs "$runs" --bf16 ${W3_FLAGS:-}
