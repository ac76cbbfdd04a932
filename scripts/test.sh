#!/usr/bin/env bash
# The test command of the README: installs what is missing, configures,
# builds, and runs every test (lit and GoogleTest, through ctest), then the
# runtime's tests under the sanitizers.
#   scripts/test.sh [build-dir]        (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"

scripts/install-deps.sh
cmake -G Ninja -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j2
ctest --test-dir "$build" --output-on-failure -j2
# The runtime's tests and the fuzz corpus replays again under ASan + UBSan
# (a separate build of libdynrt only; docs/reliability.md).
scripts/sanitize.sh "$build-sanitize"
