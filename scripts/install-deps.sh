#!/usr/bin/env bash
# Installs the Debian packages dyncc builds and tests with, where missing.
# Safe to run any number of times; does nothing when all are present.
set -euo pipefail

packages=(
  # MLIR/LLVM 19: libraries, mlir-tblgen, FileCheck, lit (llvm-19-tools).
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  # Halide 14 (kernels) and its LLVM 14.
  libhalide14-0-dev
  # The AMX kernel (runtime/AmxGemm.c): clang's AMX C API, and LLVM's scalar
  # lowering of the tile instructions for its emulated twin (tests).
  clang-14
  # Build and test tools.
  cmake ninja-build ccache g++ python3 libfmt-dev googletest
  # JSON parser for safetensors weight file headers (runtime/).
  nlohmann-json3-dev
  # The PyTorch reference of the differential tests and the baseline of the
  # benchmarks (with an OpenBLAS that has a fast kernel for this CPU).
  python3-numpy python3-torch libopenblas0-pthread
  # The project's Python environment (.venv, below).
  python3-venv python3-pip
  # Expert parallelism: MPI for libdynrt_mpi (runtime/mpi/) and its mpirun
  # tests (mpi.comm.*); without it both are left out.
  openmpi-bin libopenmpi-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
else
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The project's Python environment: PyTorch 2.x, torch-mlir, ONNX, ONNX
# Runtime, transformers (pinned in python/requirements.txt) and the dyncc
# package (python/, editable). Made with Debian's python3; reinstalled only
# when the requirements change.
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements"
if ! cmp -s "$root/python/requirements.txt" "$stamp" 2>/dev/null; then
  echo "install-deps: making the Python environment $venv"
  [ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/python/requirements.txt"
  "$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$root/python"
  cp "$root/python/requirements.txt" "$stamp"
fi
