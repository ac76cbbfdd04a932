#!/usr/bin/env bash
# The GPU check of `dyncc compile --target=cuda` (bench/gpu_check.py): every
# workload compiled for the CPU and for CUDA, run on the same inputs,
# compared (outputs to 1e-3, decisions exactly) and timed next to PyTorch
# eager on the GPU; prints a markdown table. Without a usable GPU it still
# compiles everything for both targets, prints "skipped: no GPU (...)" and
# exits 0. Sized for one call of ~8 minutes on a 16-core GPU machine.
#
#   bench/gpu-check.sh [build-dir]              everything, here: installs the
#       packages (scripts/install-deps.sh), builds dyncc and dyncc-opt in
#       build-dir (default: build), work dir build-dir/gpu-check
#   bench/gpu-check.sh --prepare [build-dir]    a machine with the toolchain
#       but no GPU: the same build, then generate and compile both targets
#       only; leaves build-dir/gpu-check small (the libraries, the shared
#       libraries they need beyond libc/libstdc++, manifest.json), to carry
#       to a GPU machine that cannot build dyncc (docs/gpu.md)
#   bench/gpu-check.sh --prebuilt DIR           on that GPU machine: no
#       packages, no build, no torch-mlir; regenerates the data (the
#       examples' --weights-only) and checks the libraries in DIR (made by
#       --prepare)
#
# The models are dyncc.nn modules from the examples (examples/moe/model.py,
# examples/early-exit/model.py, examples/skim/methods.py); gpu_check.py
# exports them with .venv/bin/python (torch-mlir) where it exists.
# Environment: PYTHON (default: the first of /usr/bin/python3, python3 and
# .venv/bin/python whose torch sees a GPU, else the first that has torch
# and numpy), GPU_CHECK_ARGS (more gpu_check.py options, e.g. "--runs 10
# --workloads w2,w3"), GPU_CHECK_MD (also write the table to this file),
# GPU_CHECK_SECONDS (480: the whole call's time; gpu_check.py gets what the
# packages and the build left of it, and skips workloads it cannot finish).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
case "${1:-}" in
  --prepare) mode=prepare; shift ;;
  --prebuilt) mode=prebuilt; shift ;;
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
esac
jobs="$(nproc 2>/dev/null || echo 2)"
start=$(date +%s)
seconds="${GPU_CHECK_SECONDS:-480}"
left() { local l=$(( seconds - ($(date +%s) - start) - 10 )); echo $(( l < 60 ? 60 : l )); }
say() { echo "gpu-check [$(( $(date +%s) - start )) s]: $*"; }

# The Python that runs the check: torch with CUDA where there is one.
pick_python() {
  if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return; fi
  local c
  for c in /usr/bin/python3 python3 .venv/bin/python; do
    if command -v "$c" >/dev/null 2>&1 &&
       "$c" -c 'import numpy, torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  for c in /usr/bin/python3 python3 .venv/bin/python; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import numpy, torch' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  echo /usr/bin/python3
}

gpu_list() {
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi -L || echo "nvidia-smi -L failed"
  else
    echo "no nvidia-smi"
  fi
}

extra=()
if [ -n "${GPU_CHECK_ARGS:-}" ]; then read -r -a extra <<<"$GPU_CHECK_ARGS"; fi
if [ -n "${GPU_CHECK_MD:-}" ]; then extra+=(--md "$GPU_CHECK_MD"); fi

if [ "$mode" = prebuilt ]; then
  work="${1:?usage: bench/gpu-check.sh --prebuilt DIR (made by --prepare)}"
  if [ ! -d "$work/cuda" ]; then
    echo "gpu-check: $work/cuda is missing (bench/gpu-check.sh --prepare makes it)" >&2
    exit 2
  fi
  py="$(pick_python)"
  say "prebuilt libraries in $work; python $py"
  gpu_list
  exec "$py" bench/gpu_check.py --prebuilt --require-gpu --work "$work" --jobs "$jobs" \
    --budget "$(left)" "${extra[@]}"
fi

build="${1:-build}"
say "installing packages (scripts/install-deps.sh)"
if ! scripts/install-deps.sh; then
  echo "gpu-check: cannot install the packages here (no package registry?); compile elsewhere" \
    "with bench/gpu-check.sh --prepare, then run bench/gpu-check.sh --prebuilt DIR here" \
    "(docs/gpu.md)" >&2
  exit 1
fi
say "configuring $build"
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
say "building dyncc and dyncc-opt (-j$jobs)"
cmake --build "$build" --target dyncc dyncc-opt -j "$jobs"
dyncc="$build/tools/dyncc/dyncc"
work="$build/gpu-check"
py="$(pick_python)"
say "built; python $py"
gpu_list

if [ "$mode" = prepare ]; then
  rm -rf "$work"
  models="$(mktemp -d)"
  trap 'rm -rf "$models"' EXIT
  set +e
  "$py" bench/gpu_check.py --dyncc "$dyncc" --work "$work" --models "$models" \
    --compile-only --jobs "$jobs" "${extra[@]}"
  rc=$?
  set -e
  rm -rf "$work/results"
  say "$work holds $(du -sh "$work" | cut -f1) to carry;" \
    "on the GPU machine: bench/gpu-check.sh --prebuilt $work"
  exit $rc
fi

exec "$py" bench/gpu_check.py --dyncc "$dyncc" --work "$work" --jobs "$jobs" \
  --budget "$(left)" "${extra[@]}"
