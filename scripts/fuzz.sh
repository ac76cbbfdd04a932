#!/usr/bin/env bash
# Fuzzes libdynrt's parsers and C API with libFuzzer (test/fuzz): configures
# a clang build directory with -DDYNCC_FUZZ=ON (ASan + UBSan + libFuzzer),
# builds only the fuzz targets and runs each for a while, seeded with the
# checked-in corpus test/fuzz/corpus/<target>/. New coverage goes to
# <build>/fuzz-corpus/<target>/, crash inputs to <build>/fuzz-artifacts/
# (add them to test/fuzz/corpus/<target>/ as crash-<what> once fixed).
#   scripts/fuzz.sh [seconds-per-target] [target...]
#     default: 300 seconds each; targets safetensors npy capi
#   FUZZ_BUILD=dir   build directory (default build-fuzz)
#   FUZZ_CXX=clang++-N  the compiler (default: clang++-19, else clang++-14,
#                       else clang++; libFuzzer comes with clang's runtime)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors npy capi)
build="${FUZZ_BUILD:-build-fuzz}"

cxx="${FUZZ_CXX:-}"
if [ -z "$cxx" ]; then
  for candidate in clang++-19 clang++-14 clang++; do
    if command -v "$candidate" >/dev/null; then cxx="$candidate"; break; fi
  done
fi
[ -n "$cxx" ] || { echo "fuzz.sh: no clang++ found" >&2; exit 1; }
cc="${cxx/clang++/clang}"

export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$(cd .. && pwd)}"
CC="$cc" CXX="$cxx" cmake -G Ninja -S . -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDYNCC_FUZZ=ON >/dev/null
nice cmake --build "$build" -j2 --target "${targets[@]/#/dynrt-fuzz-}"

status=0
for target in "${targets[@]}"; do
  work="$build/fuzz-corpus/$target"
  artifacts="$build/fuzz-artifacts/$target/"
  mkdir -p "$work" "$artifacts"
  echo "== fuzz_$target for ${seconds}s ($cxx)"
  start=$(date +%s)
  if ! nice "$build/test/fuzz/dynrt-fuzz-$target" \
      -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
      -print_final_stats=1 -artifact_prefix="$artifacts" \
      "$work" "test/fuzz/corpus/$target"; then
    echo "== fuzz_$target FAILED: see $artifacts" >&2
    status=1
  fi
  echo "== fuzz_$target ran $(( $(date +%s) - start ))s"
done
exit $status
