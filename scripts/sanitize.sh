#!/usr/bin/env bash
# libdynrt under AddressSanitizer and UndefinedBehaviorSanitizer: configures
# a separate build directory with -DDYNCC_SANITIZE=ON (the runtime and what
# links it built with -fsanitize=address,undefined, any undefined behaviour
# fatal), builds only the runtime's tests (GoogleTest, the C API program,
# the fuzz corpus replays) and runs them. For CI; a few minutes on 2 cores.
#   scripts/sanitize.sh [build-dir]        (default: build-sanitize)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build-sanitize}"

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd .. && pwd)}"
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DDYNCC_SANITIZE=ON >/dev/null
nice cmake --build "$build" -j2 --target dynrt-tests dynrt-c-api-test \
  dynrt-fuzz-replay-safetensors dynrt-fuzz-replay-npy dynrt-fuzz-replay-capi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --test-dir "$build" -R '^(dynrt[.-]|fuzz[.]replay-)' -j2 --output-on-failure
