#!/usr/bin/env bash
# W4 of WORKLOADS.md: the W2 early-exit encoder (12 post-LN layers, d=256,
# 4 heads, d_ff=1024, seq 128, entropy criterion; a per-sample model: the
# dyncc.nn.EarlyExit module of examples/early-exit/model.py, exported by
# dyncc.export in the project's .venv) at batch 32 with exit layers spread
# over 1..12, compiled by dyncc with --batch-buckets=1,4,8,16,32
# (--compaction=auto and =never) next to the same module's eager forward
# (the whole batch through every layer while any sample is active), same
# weights, inputs and threshold, in one process (bench/w4_bench.py). Prints a markdown table: samples/s, and compaction's
# throughput against ideal = full-depth throughput x 12 / mean exit layer.
# Run twice: with the buckets 1,4,8,16,32 and with finer ones
# (1,2,4,8,12,...,32), whose padding bound on the ratio to ideal is higher.
#   bench/run-w4.sh [build-dir] [runs] [rounds]
#   env: DYNCC=path/to/dyncc uses that binary and skips the build.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
runs="${2:-5}"
rounds="${3:-3}"
py=/usr/bin/python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
source bench/eager-env.sh

dyncc="${DYNCC:-}"
if [ -z "$dyncc" ]; then
  cmake --build "$build" --target dyncc >/dev/null
  dyncc="$build/tools/dyncc/dyncc"
fi
for buckets in 1,4,8,16,32 1,2,4,8,12,16,20,24,28,32; do
  "$py" bench/w4_bench.py --dyncc "$dyncc" --work "$work/$buckets" --threads 2 \
    --batch 32 --buckets "$buckets" --runs "$runs" --rounds "$rounds"
  echo
done
