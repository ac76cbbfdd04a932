#!/usr/bin/env python3
"""The targets of WORKLOADS.md (and issue 16) as measured on this CPU:
reads the JSON lines the benches append to $DYNCC_BENCH_SUMMARY
(bench_util.record_target; run-k1.sh and run-o1.sh in the same format) and
prints a markdown table: each target, the value measured, whether it is
met, with the CPU's model, its AVX-512 / AVX512-BF16 / AMX flags and the
command that made it, and for a speed-up over a peer the share of the CPU's
FMA issue rate that meeting it takes (bench_util.fma_needed).
bench/run-all.sh runs the benches with the variable set and puts this table
first in its section of docs/performance.md.

    bench/targets.py SUMMARY.jsonl [--command "what made it"]
"""

import argparse
import json
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_util import cpu_has, cpu_name  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary", help="the JSON lines file ($DYNCC_BENCH_SUMMARY)")
    ap.add_argument("--command", default="bench/run-all.sh", help="named under the table")
    a = ap.parse_args()
    rows = []
    with open(a.summary) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                sys.exit(f"targets.py: {a.summary}:{n}: not a JSON line ({e.msg})")
    cpus = sorted({r.get("cpu", "") for r in rows}) or [cpu_name()]
    flags = ", ".join(f"{name}: {'yes' if cpu_has(flag) else 'no'}" for name, flag in
                      (("AVX-512", "avx512f"), ("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_bf16")))
    print(f"Targets (WORKLOADS.md, issue 16) on {' / '.join(cpus)} ({flags}), "
          f"{time.strftime('%Y-%m-%d', time.gmtime())}; made by `{a.command}`. "
          "Ratios are dyncc's speed-up over the peer (medians, one run).")
    print()
    print("| target | measured | wanted | met | needs (% of the FMA rate) |")
    print("|---|---:|---:|---|---:|")
    missed = above = 0
    for r in rows:
        ok = r["measured"] >= r["target"] if r["higher"] else r["measured"] <= r["target"]
        missed += not ok
        wanted = ("≥ " if r["higher"] else "≤ ") + f"{r['target']:g}"
        note = f" ({r['note']})" if r.get("note") else ""
        v = r["measured"]
        shown = (f"{v:.2g}" if 0 < abs(v) < 0.01 else f"{v:.3f}" if abs(v) < 10
                 else f"{v:.1f}")
        needs = r.get("needs")
        above += not ok and needs is not None and needs > 100
        print(f"| {r['workload']} | {shown} | {wanted} | "
              f"{'yes' if ok else '**no**'}{note} | "
              f"{'' if needs is None else f'{needs:.0f}%'} |")
    print()
    print(f"{len(rows) - missed} of {len(rows)} targets met on this CPU"
          + (f"; {above} of the {missed} misses would need more than this CPU's FMA issue rate"
             if above else "") + ".")
    if any(r.get("needs") is not None for r in rows):
        print()
        print("needs: for a speed-up over a peer, the share of this CPU's fp32 FMA issue rate "
              "(bench/fma_peak.c, 12 independent chains a thread) at which dyncc would have to "
              "run its FLOPs (GEMMs and attention products; W1: the row tiles it computes) to "
              "meet the target against the peer's measured time. Above 100% no fp32 schedule "
              "meets it on this CPU; the kernels' own share is in the W2 and M1 kernel tables.")


if __name__ == "__main__":
    main()
