#!/usr/bin/env bash
# O1 of WORKLOADS.md: the runtime's dispatch overhead per kernel call, on a chain
# of N calls of a tiny kernel compiled by dyncc, next to PyTorch eager's per-op time on
# the same chain, in one run.   bench/run-o1.sh [build-dir] [N]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
n="${2:-200}"
py=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cmake --build "$build" --target dyncc >/dev/null
"$py" bench/o1_chain.py mlir "$n" > "$work/chain.mlir"
"$py" - "$work/w.safetensors" <<'PY'
import json, struct, sys
import numpy as np
w = (np.random.default_rng(0).standard_normal((8, 8)) / 3).astype(np.float32)
h = json.dumps({"w": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, 256]}}).encode()
h += b" " * ((-(8 + len(h))) % 64)
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + w.tobytes())
PY
"$build/tools/dyncc/dyncc" compile "$work/chain.mlir" -o "$work/chain"
cc -O2 bench/o1_dispatch.c -I"$work" "$work/libchain.a" -lstdc++ -lpthread -ldl -lm -o "$work/o1"
dyncc_us=$("$work/o1" "$work/w.safetensors" 15 "$n")
read -r torch_link torch_op < <(OPENBLAS_CORETYPE=SkylakeX "$py" bench/o1_chain.py torch "$n" 15)
echo "## O1: dispatch overhead per kernel ($(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'))"
echo
echo "chain of $n links, each x <- tanh(x W) on [1, 8] x [8, 8] (one dyncc kernel call, two PyTorch ops;" \
  "dyncc compiles the identical links into one kernel and calls it once per link)"
echo
echo "| | µs per kernel call (dyncc) / per op (PyTorch) |"
echo "|---|---|"
echo "| dyncc (runtime dispatch + tiny kernel) | $dyncc_us |"
# WORKLOADS.md's target (bench/targets.py; bench_util.record_target's format)
if [ -n "${DYNCC_BENCH_SUMMARY:-}" ]; then
  printf '{"cpu": "%s", "workload": "O1: µs per kernel call", "measured": %s, "target": 1.0, "higher": false, "note": ""}\n' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//; s/"//g')" "$dyncc_us" \
    >>"$DYNCC_BENCH_SUMMARY"
fi
echo "| PyTorch eager, per op | $torch_op |"
echo "| PyTorch eager, per link (matmul + tanh) | $torch_link |"
