#!/usr/bin/env bash
# W2 of WORKLOADS.md: the 12-layer early-exit encoder (d=256, 4 heads,
# d_ff=1024, seq 128, a 2-class head after every layer) at batch 1: the
# dyncc.nn.EarlyExit module of examples/early-exit/model.py exported by
# dyncc.export (the project's .venv) and compiled by dyncc, next to the same
# module's eager loop (bench/w2_eager.py, the DeeBERT/PABEE way, Debian's
# PyTorch as for every eager baseline) on the same weights and input, in one run.
#   bench/run-w2.sh [build-dir] [runs]
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
theta=$("$venv" examples/early-exit/model.py --criterion entropy --cases 20 --no-expected \
  --out-dir "$work" --name w2 | awk '/^default threshold/ {print $3}')
"$py" -c "import numpy as np, sys; np.load(sys.argv[1]).astype(np.float32).reshape(-1).tofile(sys.argv[2])" \
  "$work/w2.x.npy" "$work/x.bin"
"$dyncc" compile "$work/w2.mlir" -o "$work/lib/w2"
cc -O2 bench/w2_bench.c -I"$work/lib" "$work/lib/libw2.a" -lstdc++ -lpthread -ldl -lm -o "$work/bench"

"$work/bench" "$work/w2.safetensors" "$work/x.bin" "$runs" 3 6 12 0 > "$work/dyncc.txt"
"$py" bench/w2_eager.py --weights "$work/w2.safetensors" --x "$work/w2.x.npy" \
  --threshold "$theta" --exit-layers 3,6,12 --runs "$runs" > "$work/eager.txt"

d() { awk -v l="$1" '$1 == l {print $2}' "$work/dyncc.txt"; }
# Every requested exit layer must have been reached exactly.
awk '$1 != 0 && $1 != $3 {print "run-w2: asked exit " $1 ", got " $3 > "/dev/stderr"; bad = 1} END {exit bad}' "$work/dyncc.txt"
e() { grep "$1" "$work/eager.txt" | awk '{print $(NF-2)}'; }
e3=$(e "exit at layer 3 "); e6=$(e "exit at layer 6 "); e12=$(e "exit at layer 12 ")
eall=$(e "all 12 layers")
d3=$(d 3); d6=$(d 6); d12=$(d 12); dall=$(d 0)
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
dev() { awk -v t="$1" -v full="$2" -v l="$3" 'BEGIN {r = t / full; printf "%.3f (L/12 = %.3f, %+.1f%%)", r, l / 12, (r / (l / 12) - 1) * 100}'; }
echo "## W2: early-exit encoder, batch 1 ($(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), 2 threads)"
echo
echo "12 post-LN layers (d=256, 4 heads, d_ff=1024, seq 128), a 2-class head after every layer;"
echo "Entropy criterion (DeeBERT); the exit is put at a layer by bisecting the runtime threshold"
echo "(dyncc) and by forcing it in the eager loop (bench/w2_eager.py). Median of $runs runs, ms;"
echo "the dyncc column's exit layer is checked (third column of bench/w2_bench.c's output)."
echo
echo "| | dyncc | PyTorch eager loop | speed-up | dyncc time / time at 12 |"
echo "|---|---|---|---|---|"
echo "| exit at layer 3 | $d3 | $e3 | $(ratio "$e3" "$d3")x | $(dev "$d3" "$d12" 3) |"
echo "| exit at layer 6 | $d6 | $e6 | $(ratio "$e6" "$d6")x | $(dev "$d6" "$d12" 6) |"
echo "| exit at layer 12 (every check runs) | $d12 | $e12 | $(ratio "$e12" "$d12")x | 1 |"
echo "| all 12 layers, never exits | $dall | $eall (plain encoder, no checks) | $(ratio "$eall" "$dall")x | |"
