#!/usr/bin/env bash
# The encoder example (2 post-LN layers of W2's shape: d=256, 4 heads,
# d_ff=1024, seq 128, batch 1): examples/encoder/torch_eager.Encoder exported
# by dyncc.export (examples/encoder/export_encoder.py, the project's .venv)
# and compiled by dyncc, next to the same module in PyTorch eager (Debian's
# PyTorch, as for every eager baseline) on the same weights and input, in one
# run: median latency over RUNS passes and peak resident memory of each process.
#   bench/run-encoder.sh [build-dir] [runs]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
runs="${2:-20}"
py=/usr/bin/python3
venv=.venv/bin/python
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source bench/eager-env.sh

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
"$venv" examples/encoder/export_encoder.py --layers 2 --out-dir "$work" --name encoder >/dev/null
"$py" -c "import numpy as np, sys; np.load(sys.argv[1]).astype(np.float32).tofile(sys.argv[2])" \
  "$work/encoder.x.npy" "$work/x.bin"
"$dyncc" compile "$work/encoder.mlir" -o "$work/lib/encoder" --stats > "$work/stats"
cc -O2 bench/encoder_bench.c -I"$work/lib" "$work/lib/libencoder.a" -lstdc++ -lpthread -ldl -lm -o "$work/bench"

torch_run() {
  "$py" - "$work/encoder.safetensors" "$work/encoder.x.npy" "$runs" <<'PY'
import resource, sys, time
import numpy as np
sys.path.insert(0, "examples/encoder")
import torch
from torch_eager import load_encoder
torch.set_num_threads(2)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
model = load_encoder(sys.argv[1]).float().eval()
x = torch.from_numpy(np.load(sys.argv[2]).astype(np.float32))
times = []
with torch.no_grad():
    for _ in range(3):
        model(x)
    for _ in range(int(sys.argv[3])):
        t0 = time.perf_counter()
        model(x)
        times.append((time.perf_counter() - t0) * 1e3)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("%.3f %.1f %.1f" % (float(np.median(times)), peak / 1024, base / 1024))
PY
}

# Interleave three rounds; report the median of each side's medians.
d=(); t=()
for round in 1 2 3; do
  d+=("$("$work/bench" "$work/encoder.safetensors" "$work/x.bin" "$runs")")
  t+=("$(torch_run)")
done
med() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
d_ms=$(med "${d[0]%% *}" "${d[1]%% *}" "${d[2]%% *}")
t_ms=$(med "${t[0]%% *}" "${t[1]%% *}" "${t[2]%% *}")
read -r _ d_rss arena <<<"${d[0]}"
read -r _ t_rss t_base <<<"${t[0]}"
weights_mib=$(awk '/weight bytes/ {printf "%.1f", $3 / 1048576}' "$work/stats")
kernels=$(awk '/kernels/ {print $2}' "$work/stats")
echo "## Encoder example: 2 layers of W2 ($(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), 2 threads)"
echo
echo "| | dyncc | PyTorch eager | ratio |"
echo "|---|---|---|---|"
echo "| latency, median of $runs runs x 3 rounds (ms) | $d_ms | $t_ms | $(awk -v a="$t_ms" -v b="$d_ms" 'BEGIN {printf "%.2fx faster", a / b}') |"
echo "| peak resident memory (MiB) | $d_rss | $t_rss ($t_base before loading the model) | |"
echo
echo "dyncc: $kernels kernels, weights $weights_mib MiB, arena $(awk -v a="$arena" 'BEGIN {printf "%.2f", a / 1048576}') MiB;"
echo "peak RSS - weights - arena = $(awk -v r="$d_rss" -v w="$weights_mib" -v a="$arena" 'BEGIN {printf "%.1f", r - w - a / 1048576}') MiB (target < 16)."
