#!/usr/bin/env bash
# Runs every benchmark, one after the other (they share the 2 cores), and
# writes docs/performance.md.   bench/run-all.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
{
  echo "# Performance"
  echo
  echo "Ratios against PyTorch eager (Debian python3-torch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)' 2>/dev/null),"
  echo "OpenBLAS with OPENBLAS_CORETYPE=SkylakeX, 2 threads on both sides; K1, W1, W2 and"
  echo "W3 against PyPI PyTorch $(.venv/bin/python -c 'import torch; print(torch.__version__)' 2>/dev/null) eager and torch.compile, W2 and W3 also"
  echo "against ONNX Runtime, as their sections say), measured"
  echo "side by side in one run on a shared 2-core machine: absolute times drift,"
  echo "ratios hold. Made by \`bench/run-all.sh\` on $(date -u +%F); each section"
  echo "names its own script."
  echo
  bench/run-k1.sh "$build"
  echo
  bench/run-o1.sh "$build"
  echo
  bench/run-encoder.sh "$build"
  echo
  bench/run-w2.sh "$build"
  echo
  bench/run-w1.sh "$build"
  echo
  bench/run-w3.sh "$build"
  echo
  bench/run-w4.sh "$build"
} > "$out"
cp "$out" docs/performance.md
cat docs/performance.md
