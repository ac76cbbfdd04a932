#!/usr/bin/env bash
# W1 by rank count (expert parallelism, docs/moe.md): the W1 layer compiled
# for one process and with --expert-parallel=1,2,4, run under mpirun on this
# machine (bench/w1_ranks.py). Prints a markdown table.
#   bench/run-w1-ranks.sh [build-dir] [w1_ranks.py options...]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
shift || true
cmake --build "$build" --target dyncc dynrt-ep-driver >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec .venv/bin/python bench/w1_ranks.py --dyncc "$build/tools/dyncc/dyncc" \
  --driver "$build/test/dynrt-ep-driver" "$@"
