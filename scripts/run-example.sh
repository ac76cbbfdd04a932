#!/usr/bin/env bash
# The main job of the README: builds dyncc (installing what is missing) and
# compiles the shipped early-exit example, printing the verified dyn-level
# module with its table of runtime parameters.
#
# dyncc does not execute models yet: code generation (kernels, host code,
# the runtime) is the next stage of the project (see README, "Status").
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"

scripts/install-deps.sh >/dev/null
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j2 --target dyncc >/dev/null

model=examples/early-exit/encoder.mlir
echo "== dyncc compile $model --emit=mlir"
"$build/tools/dyncc/dyncc" compile "$model" --emit=mlir -o -
