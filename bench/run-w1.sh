#!/usr/bin/env bash
# W1 of WORKLOADS.md: one MoE layer (T=512, d=512, E=8 GELU FFN experts with
# d_ff=2048, capacity factor 1.25; top-1 Switch and top-2) compiled by dyncc
# next to its PyTorch 2.x peers, the Hugging Face-style layer (softmax, topk,
# a loop over the experts with index_select / index_add_) eager and under
# torch.compile, same weights and input, in one process, in the project's
# Python environment (.venv: PyPI PyTorch with MKL / oneDNN), with the probed
# torch.matmul peak (bench/w1_bench.py). Prints a markdown table.
#   bench/run-w1.sh [build-dir] [rounds] [runs]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
rounds="${2:-5}"
runs="${3:-10}"
py=.venv/bin/python
if [ ! -x "$py" ]; then
  echo "run-w1.sh: no project Python environment at $py (scripts/install-deps.sh makes it)" >&2
  exit 1
fi

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$py" bench/w1_bench.py --dyncc "$dyncc" --threads 2 --rounds "$rounds" --runs "$runs"
