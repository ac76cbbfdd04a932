#!/usr/bin/env bash
# K1 benchmark: dyncc's Halide GEMM against torch.matmul (PyTorch 2.x from
# PyPI, MKL, in the project's .venv; PYTHON=/usr/bin/python3 for Debian's
# torch 1.13 on OpenBLAS, the baseline of the older tables), both at
# 2 threads, measured side by side in one process (bench/k1_torch.py loads
# the kernels compiled ahead of time, libdyncc_k1_kernels.so, and alternates
# blocks of calls of the two). Prints one markdown table.
#
# usage: bench/run-k1.sh [build-dir]
#   env: ROUNDS=10 (interleaved rounds), RUNS=100 (timed calls per side and
#        shape, >= 10), THREADS=2, WAIT_IDLE=120 (seconds to wait, before
#        each shape, for other processes to leave the CPUs idle; the machine
#        is shared, and the table reports the load that was left anyway),
#        K1_FLAGS (more k1_torch.py options: --halide-pool runs dyncc's
#        kernels on Halide's thread pool instead of the runtime's)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
rounds="${ROUNDS:-10}"
runs="${RUNS:-100}"
threads="${THREADS:-2}"
wait_idle="${WAIT_IDLE:-120}"
python="${PYTHON:-$root/.venv/bin/python}"

if ! "$python" -c "import torch" 2>/dev/null; then
  echo "run-k1: $python cannot import torch (scripts/install-deps.sh makes" \
    ".venv)" >&2
  exit 1
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$build" dyncc-bench-k1 dyncc_k1_kernels dyncc-fma-peak >/dev/null

export HL_NUM_THREADS="$threads"
# Without it Debian's OpenBLAS picks a generic kernel here (WORKLOADS.md).
export OPENBLAS_CORETYPE=SkylakeX

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
"$python" "$root/bench/k1_torch.py" --dyncc-lib \
  "$build/bench/libdyncc_k1_kernels.so" --threads "$threads" \
  --rounds "$rounds" --runs "$runs" --wait-idle "$wait_idle" ${K1_FLAGS:-} >"$out"

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
family="$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
model="$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
avx512="$(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"
# this CPU's fp32 FMA issue rate (bench/fma_peak.c), GFLOP/s: what the
# targets table's "needs" column is a share of
fma="$("$build/bench/dyncc-fma-peak" "$threads" | awk '{ print $1 }')"
target="$("$build/bench/dyncc-bench-k1" --runs 10 --shape 1x1x1 |
  sed -n 's/.*; target \([^;]*\);.*/\1/p')"

echo "K1, $(date -u +'%Y-%m-%d %H:%M UTC'): $cpu (family $family model" \
  "$model, AVX-512: $avx512), $(nproc) cores; $threads threads each side."
echo
echo "| shape M x K x N | dyncc GFLOP/s | PyTorch $("$python" -c 'import torch; print(torch.__version__)') GFLOP/s | ratio |" \
  "ratio per round: median (min..max) | other load (cores) |"
echo "|---|---:|---:|---:|---|---:|"
grep -v '^#' "$out" | while read -r m k n _ dg _ tg rmed rmin rmax others; do
  ratio="$(awk -v d="$dg" -v t="$tg" 'BEGIN { printf "%.2f", d / t }')"
  echo "| $m x $k x $n | $dg | $tg | $ratio | $rmed ($rmin..$rmax) | $others |"
  # issue 16's targets (bench/targets.py; bench_util.record_target's format)
  if [ -n "${DYNCC_BENCH_SUMMARY:-}" ]; then
    # needs: torch's GFLOP/s as a share of the FMA issue rate (a ratio of 1)
    printf '{"cpu": "%s", "workload": "K1 %s x %s x %s fp32: x torch.matmul", "measured": %s, "target": 1.0, "higher": true, "note": "", "needs": %s}\n' \
      "${cpu//\"/}" "$m" "$k" "$n" "$(awk -v d="$dg" -v t="$tg" 'BEGIN { printf "%.4f", d / t }')" \
      "$(awk -v t="$tg" -v f="$fma" 'BEGIN { if (f > 0) printf "%.2f", t / f * 100; else printf "null" }')" \
      >>"$DYNCC_BENCH_SUMMARY"
  fi
done
echo
echo "C[M,N] = A[M,K] x B[K,N], fp32, row-major; GFLOP/s = 2MNK / median" \
  "time. dyncc: Halide target $target, AOT; PyTorch: torch.matmul(out=)."
grep -v '^# M K N' "$out" | sed -n 's/^# /- /p'
echo "- other load: CPU time used by other processes during the shape's" \
  "measurement, in cores (2 = the whole machine was busy besides us)."
