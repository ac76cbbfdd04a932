#!/usr/bin/env bash
# bench/targets.py's table from a bench's records (bench_util.record_target):
# W3 at a tiny size, one round, with $DYNCC_BENCH_SUMMARY set, then the
# table: the W3 target's row and the count line must be there, a target
# that needs more than the FMA issue rate is counted so, --by-cpu keeps the
# run as this CPU's record beside another CPU's and --render-by-cpu puts
# them side by side, and a file that is not JSON lines must be refused with
# its line number.
#   targets_smoke.sh PYTHON DYNCC WORKDIR
set -euo pipefail
py="$1" dyncc="$2" work="$3"
if [ ! -x "$py" ]; then
  echo "SKIP: no project Python environment at $py (scripts/install-deps.sh makes it)"
  exit 77
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error TOKENIZERS_PARALLELISM=false
root="$(cd "$(dirname "$0")/../.." && pwd)"
rm -rf "$work" && mkdir -p "$work"
DYNCC_BENCH_SUMMARY="$work/summary.jsonl" "$py" "$root/bench/w3_bench.py" --dyncc "$dyncc" \
  --seq 20 --dim 16 --hidden 32 --small 8 --rounds 1 --runs 2 --warmup 1 --pause 0 \
  --no-compile --no-onnx >"$work/w3.md"
"$py" "$root/bench/targets.py" "$work/summary.jsonl" >"$work/targets.md"
cat "$work/targets.md"
grep -q '^| W3: x the eager loop | [0-9.]* | ≥ 10 | ' "$work/targets.md"
grep -q '^[0-9]* of 1 targets met on this CPU\.$' "$work/targets.md"
# A speed-up that needs more than the FMA issue rate (bench_util.fma_needed:
# 2 GFLOP twice as fast as a peer's 20 ms is 200 GFLOP/s, twice a 100 GFLOP/s
# rate) is missed and counted as such, with its share in the needs column.
needs="$(PYTHONPATH="$root/bench" "$py" -c 'import bench_util as b; print(round(b.fma_needed(2e9, 0.02, 2.0, 100)))')"
[ "$needs" = 200 ] || { echo "fma_needed gave $needs, not 200" >&2; exit 1; }
cp "$work/summary.jsonl" "$work/needs.jsonl"
echo '{"cpu": "any", "workload": "made up: x a peer", "measured": 1.5, "target": 2.0, "higher": true, "note": "", "needs": 200.0}' >>"$work/needs.jsonl"
"$py" "$root/bench/targets.py" "$work/needs.jsonl" >"$work/needs.md"
grep -q '^| made up: x a peer | 1.500 | ≥ 2 | \*\*no\*\* | 200% |$' "$work/needs.md"
grep -q '^[0-9]* of 2 targets met on this CPU; 1 of the [12] misses would need more than this CPU.s FMA issue rate\.$' "$work/needs.md"
# --by-cpu keeps this run as this CPU's record (replacing its last one, next
# to another CPU's), and --render-by-cpu makes the table with a column each.
cat >"$work/by-cpu.json" <<'JSON'
{"Other CPU (family 6 model 1)": {"flags": "AVX-512: no, AVX512-BF16: no, AMX: no", "date": "2000-01-01", "commit": "0000000", "command": "by hand", "source": "a test record", "targets": [{"workload": "W3: x the eager loop", "measured": 3.5, "target": 10, "higher": true, "note": ""}, {"workload": "made up: only there", "measured": 1, "target": 2, "higher": true, "note": ""}]}}
JSON
for round in 1 2; do
  "$py" "$root/bench/targets.py" "$work/summary.jsonl" --by-cpu "$work/by-cpu.json" --commit abc1234 >/dev/null
done
"$py" - "$work/by-cpu.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 2, list(d)
mine = [v for k, v in d.items() if not k.startswith("Other CPU")][0]
assert mine["commit"] == "abc1234" and [t["workload"] for t in mine["targets"]] == ["W3: x the eager loop"], mine
PY
"$py" "$root/bench/targets.py" --render-by-cpu "$work/by-cpu.json" >"$work/by-cpu.md"
cat "$work/by-cpu.md"
grep -q '^| W3: x the eager loop | ≥ 10 | [0-9.]* \(yes\|\*\*no\*\*\) | 3.500 \*\*no\*\* |$' "$work/by-cpu.md"
grep -q '^| made up: only there | ≥ 2 | — | 1.000 \*\*no\*\* |$' "$work/by-cpu.md"
grep -q '^| met | | [01] of 1 | 0 of 2 |$' "$work/by-cpu.md"
grep -q '^- Other CPU (family 6 model 1): a test record$' "$work/by-cpu.md"
echo '{"not": json' >"$work/bad.jsonl"
if "$py" "$root/bench/targets.py" "$work/bad.jsonl" 2>"$work/bad.err"; then
  echo "targets.py accepted a bad file" >&2
  exit 1
fi
grep -q 'bad.jsonl:1: not a JSON line' "$work/bad.err"
echo '{"not": json' >"$work/bad.json"
if "$py" "$root/bench/targets.py" --render-by-cpu "$work/bad.json" 2>"$work/bad-json.err"; then
  echo "targets.py rendered a bad record file" >&2
  exit 1
fi
grep -q 'bad.json:1: not JSON' "$work/bad-json.err"
echo ok
