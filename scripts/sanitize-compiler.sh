#!/usr/bin/env bash
# The compiler under AddressSanitizer and UndefinedBehaviorSanitizer: builds
# dyncc and dyncc-opt (their own code: the dialect, the passes, codegen, the
# tools and the runtime they embed; MLIR, LLVM and Halide stay as Debian
# ships them) with -fsanitize=address,undefined in a separate build
# directory and runs every lit test with them. Every sanitizer report goes to
# a file (a report inside a test that expects dyncc to fail would otherwise
# pass unseen); the run fails on a lit failure or on any report.
#
# Not part of CI: a cold sanitized build of the compiler takes 15-35 min on
# 2 cores. CI runs scripts/sanitize.sh (the runtime and the fuzz corpora).
#   scripts/sanitize-compiler.sh [build-dir]     (default: build-sanitize-compiler)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-sanitize-compiler}"
flags="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd .. && pwd)}"
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
nice cmake --build "$build" -j2 --target dyncc dyncc-opt dyncc-doc-gen

reports="$(mktemp -d)"
trap 'rm -rf "$reports"' EXIT
# Leaks: the compiling thread ends the process with _Exit (docs/reliability.md).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"
status=0
python="${PYTHON:-.venv/bin/python}"
[ -x "$python" ] || python=python3
"$python" /usr/lib/llvm-19/build/utils/lit/lit.py -q "$build/test" || status=1

# ASan warns once per process about makecontext (Halide's runtime); only
# ERROR reports and UBSan's runtime errors count.
found=0
for f in "$reports"/*; do
  [ -e "$f" ] || continue
  if grep -q "ERROR: AddressSanitizer\|runtime error:" "$f"; then
    echo "sanitizer report ($f):"
    head -40 "$f"
    found=1
  fi
done
if [ "$found" = 1 ]; then
  echo "sanitize-compiler: sanitizer reports (above)"
  status=1
fi
[ "$status" = 0 ] && echo "sanitize-compiler: lit passed with no sanitizer report"
exit "$status"
