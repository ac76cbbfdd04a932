#!/usr/bin/env bash
# K1 benchmark: dyncc's Halide GEMM against torch.matmul (OpenBLAS), both at
# 2 threads, measured side by side. Builds dyncc-bench-k1, then runs both
# programs alternately ROUNDS times (this machine is shared: interleaving
# spreads the other tenants' load over both sides) and prints one markdown
# table. Every number is a median: per round, the median of RUNS timed calls
# after warm-up; in the table, the median over rounds.
#
# usage: bench/run-k1.sh [build-dir]     (env: ROUNDS=5 RUNS=30 THREADS=2)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
rounds="${ROUNDS:-5}"
runs="${RUNS:-30}"
threads="${THREADS:-2}"
python=/usr/bin/python3 # Debian's: the one that sees python3-torch

if ! "$python" -c "import torch" 2>/dev/null; then
  echo "run-k1: $python cannot import torch (apt-get install python3-torch)" >&2
  exit 1
fi
if ! ls /usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas*.so* >/dev/null 2>&1; then
  echo "run-k1: warning: libopenblas0-pthread is not installed; the baseline" \
    "runs Debian's reference BLAS" >&2
fi

if [ ! -f "$build/build.ninja" ]; then
  cmake -G Ninja -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
ninja -C "$build" dyncc-bench-k1 >/dev/null

export HL_NUM_THREADS="$threads"
# Without it Debian's OpenBLAS picks a generic kernel here (WORKLOADS.md).
export OPENBLAS_CORETYPE=SkylakeX

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
for ((i = 1; i <= rounds; i++)); do
  "$build/bench/dyncc-bench-k1" --runs "$runs" >"$out/dyncc.$i"
  "$python" "$root/bench/k1_torch.py" --runs "$runs" --threads "$threads" \
    >"$out/torch.$i"
done

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
family="$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
model="$(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
avx512="$(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"

"$python" - "$out" "$rounds" <<EOF
import statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def read(side):
    per_shape, header = {}, []
    for i in range(1, rounds + 1):
        for line in open(f"{out}/{side}.{i}"):
            if line.startswith("#"):
                if i == 1:
                    header.append(line[1:].strip())
                continue
            m, k, n, _, med, _best = line.split()
            per_shape.setdefault((int(m), int(k), int(n)), []).append(float(med))
    return per_shape, header

dyncc, dyncc_header = read("dyncc")
torch, torch_header = read("torch")
print("K1, $(date -u +'%Y-%m-%d %H:%M UTC'): $cpu (family $family model $model,"
      " AVX-512: $avx512), $(nproc) cores; $threads threads each side.")
print()
print("| shape M x K x N | dyncc GFLOP/s | PyTorch (OpenBLAS) GFLOP/s | ratio |"
      " ratio per round (min..max) |")
print("|---|---:|---:|---:|---|")
for shape in dyncc:
    d, t = dyncc[shape], torch[shape]
    ratios = [a / b for a, b in zip(d, t)]
    print("| %d x %d x %d | %.1f | %.1f | %.2f | %.2f..%.2f |" % (
        *shape, statistics.median(d), statistics.median(t),
        statistics.median(d) / statistics.median(t), min(ratios), max(ratios)))
print()
print("C[M,N] = A[M,K] x B[K,N], fp32, row-major. Each GFLOP/s is the median"
      " over $rounds interleaved rounds of the median of $runs timed calls"
      " (after warm-up).")
for h in dyncc_header[:1] + torch_header[:2]:
    print("- " + h)
EOF
