#!/usr/bin/env bash
# W1 of WORKLOADS.md: one MoE layer (T=512, d=512, E=8 GELU FFN experts with
# d_ff=2048, capacity factor 1.25; top-1 Switch and top-2) compiled by dyncc
# next to the eager Hugging Face-style PyTorch layer (softmax, topk, a loop
# over the experts with index_select / index_add_), same weights and input,
# in one process (bench/w1_bench.py). Prints a markdown table.
#   bench/run-w1.sh [build-dir] [rounds] [runs]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
rounds="${2:-5}"
runs="${3:-10}"
py=/usr/bin/python3
# Without it Debian's OpenBLAS picks a generic kernel here (WORKLOADS.md).
export OPENBLAS_CORETYPE=SkylakeX
# PyTorch's OpenMP threads spin after each parallel region (index_select,
# gelu, ...) and, on 2 cores, take the CPUs from OpenBLAS's own threads in the
# next GEMM: the eager layer then runs 2-3x slower and erratically. PASSIVE
# (the default here) gives the baseline its best, stable time;
# OMP_WAIT_POLICY=default keeps libgomp's default. The table says which.
policy="${OMP_WAIT_POLICY:-PASSIVE}"
if [ "$policy" = default ]; then unset OMP_WAIT_POLICY; else export OMP_WAIT_POLICY="$policy"; fi

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$py" bench/w1_bench.py --dyncc "$dyncc" --threads 2 --rounds "$rounds" --runs "$runs"
