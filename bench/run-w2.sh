#!/usr/bin/env bash
# W2 of WORKLOADS.md: the 12-layer early-exit encoder (d=256, 4 heads,
# d_ff=1024, seq 128, a 2-class head after every layer) at batch 1: the
# dyncc.nn.EarlyExit module of examples/early-exit/model.py exported by
# dyncc.export and compiled by dyncc, next to its PyTorch 2.x peers (the
# module's eager loop; per-layer segments with a Python exit check, eager and
# under torch.compile; torch.compile of the plain encoder) and ONNX Runtime
# (a session per segment; the encoder as one session), same weights and
# input, in one process, with the probed torch.matmul peak
# (bench/w2_bench.py). Prints two markdown tables.
#   bench/run-w2.sh [build-dir] [runs] [rounds]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build;
#        W2_FLAGS: more w2_bench.py options (--no-compile, sizes, ...).
#   The AVX2 code path on an AVX-512 CPU, against peers capped to AVX2:
#     ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \
#     W2_FLAGS="--target=x86-64-linux-avx-avx2-f16c-fma-sse41 --no-bf16" bench/run-w2.sh
# Runs in the project's .venv (scripts/install-deps.sh): PyPI PyTorch,
# torch-mlir, ONNX Runtime. OMP_WAIT_POLICY is left as it is (unset:
# libgomp's default), as for W1 and M1: bench/eager-env.sh's PASSIVE was
# tuned for Debian's PyTorch with OpenBLAS. The table prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
runs="${2:-10}"
rounds="${3:-3}"
py="$PWD/.venv/bin/python"
if [ ! -x "$py" ]; then
  echo "run-w2.sh: no .venv here: run scripts/install-deps.sh first" >&2
  exit 1
fi

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$py" bench/w2_bench.py --dyncc "$dyncc" --threads 2 --runs "$runs" --rounds "$rounds" \
  ${W2_FLAGS:-}
