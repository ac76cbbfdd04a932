#!/usr/bin/env bash
# Installs the Debian packages dyncc builds and tests with, where missing.
# Safe to run any number of times; does nothing when all are present.
set -euo pipefail

packages=(
  # MLIR/LLVM 19: libraries, mlir-tblgen, FileCheck, lit (llvm-19-tools).
  llvm-19-dev libmlir-19-dev mlir-19-tools llvm-19-tools
  # Halide 14 (kernels) and its LLVM 14.
  libhalide14-0-dev
  # Build and test tools.
  cmake ninja-build ccache g++ python3 libfmt-dev googletest
  # JSON parser for safetensors weight file headers (runtime/).
  nlohmann-json3-dev
  # The PyTorch reference of the differential tests and the baseline of the
  # benchmarks (with an OpenBLAS that has a fast kernel for this CPU).
  python3-numpy python3-torch libopenblas0-pthread
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  sudo_cmd=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
