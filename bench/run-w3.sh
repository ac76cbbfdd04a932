#!/usr/bin/env bash
# W3 of WORKLOADS.md: Skim-RNN at batch 1 (embeddings 128, big LSTM 256,
# small LSTM 32, 200 steps, a read/skim decision per step) compiled by dyncc
# (one dyn.skip) next to the eager PyTorch step loop (nn.LSTMCell, a Python
# branch per step), same weights and input, in one process
# (bench/w3_bench.py). Prints a markdown table: µs per step and the speed-up
# over the better of eager at 1 and 2 threads.
#   bench/run-w3.sh [build-dir] [rounds] [runs]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
rounds="${2:-5}"
runs="${3:-20}"
py=/usr/bin/python3
source bench/eager-env.sh

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$py" bench/w3_bench.py --dyncc "$dyncc" --threads 2 --eager-threads 1,2 \
  --rounds "$rounds" --runs "$runs"
