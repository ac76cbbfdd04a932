#!/usr/bin/env bash
# Runs every benchmark on this machine, one after the other (they share the
# cores), and puts the results as a new section at the top of
# docs/performance.md: first issue 16's targets as measured here
# (bench/targets.py: each target, the value, met or not, the CPU's model and
# flags), then each bench's own tables. Older sections stay below: they are
# other CPUs and other days. The targets also become this CPU's record in
# docs/targets-by-cpu.json, and the page's table of every CPU's latest
# values (between its "targets by CPU" markers) is made again from it.
#   bench/run-all.sh [build-dir]
#   env: DYNCC=path/to/dyncc (as each bench takes it); W2_FLAGS (added to
#        --bf16), RUN_ALL_QUICK=1: one short round of each, to check the
#        script, not to measure.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${1:-build}"
py=.venv/bin/python
if [ ! -x "$py" ]; then
  echo "run-all.sh: no .venv here: run scripts/install-deps.sh first" >&2
  exit 1
fi
summary="$(mktemp)"
body="$(mktemp)"
section="$(mktemp)"
trap 'rm -f "$summary" "$body" "$section"' EXIT
export DYNCC_BENCH_SUMMARY="$summary"
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
if [ -n "${RUN_ALL_QUICK:-}" ]; then
  k1=(env ROUNDS=1 RUNS=3 WAIT_IDLE=0) w2=(1 1) w1=(1 2) w3=(1 2) w4=(1 1) m1=(2)
else
  k1=(env ROUNDS=10 RUNS=50 WAIT_IDLE=5) w2=(10 3) w1=(5 10) w3=(5 20) w4=(3 2) m1=(10)
fi
{
  "${k1[@]}" bench/run-k1.sh "$build"
  echo
  bench/run-o1.sh "$build"
  echo
  bench/run-encoder.sh "$build"
  echo
  W2_FLAGS="--bf16 ${W2_FLAGS:-}" bench/run-w2.sh "$build" "${w2[@]}"
  echo
  bench/run-w1.sh "$build" "${w1[@]}"
  echo
  bench/run-m1.sh "$build" "${m1[@]}"
  echo
  bench/run-w3.sh "$build" "${w3[@]}"
  echo
  bench/run-w4.sh "$build" "${w4[@]}"
} >"$body"
{
  echo "## Every benchmark on $cpu ($(date -u +%F), \`bench/run-all.sh\`)"
  echo
  echo "dyncc at \`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`, $(nproc) cores."
  echo
  record=(--by-cpu docs/targets-by-cpu.json
          --commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)")
  [ -z "${RUN_ALL_QUICK:-}" ] || record=() # a check of the script: no record
  "$py" bench/targets.py "$summary" --command "bench/run-all.sh $build" "${record[@]}"
  echo
  sed 's/^## /### /' "$body" # each bench's heading, one level down
  echo
} >"$section"
# The new section goes above the first one of the page; the table of every
# CPU's latest values replaces the one between the markers.
"$py" bench/targets.py --render-by-cpu docs/targets-by-cpu.json >"$body"
"$py" - "$section" docs/performance.md "$body" <<'PY'
import sys
section, page, table = open(sys.argv[1]).read(), sys.argv[2], open(sys.argv[3]).read()
text = open(page).read()
at = text.find("\n## ")
text = text + "\n" + section if at < 0 else text[:at + 1] + section + text[at + 1:]
begin, end = "<!-- targets by CPU (bench/run-all.sh) -->\n", "<!-- end targets by CPU -->\n"
if begin in text and end in text:
    i, j = text.index(begin) + len(begin), text.index(end)
    text = text[:i] + table + text[j:]
open(page, "w").write(text)
PY
cat "$section"
