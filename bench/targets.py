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

With --by-cpu FILE it also keeps this CPU's latest values in FILE (a JSON
record per CPU: model, family and model number, flags, date, commit and
the targets), and --render-by-cpu FILE prints them as one table with a
column per CPU, which run-all.sh keeps at the top of docs/performance.md:
issue 16 asks for no ratio below its target on two different CPUs.

    bench/targets.py SUMMARY.jsonl [--command "what made it"] [--by-cpu FILE --commit REV]
    bench/targets.py --render-by-cpu FILE
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, __import__("os").path.dirname(__file__))
from bench_util import cpu_has, cpu_name  # noqa: E402


FLAGS = (("AVX-512", "avx512f"), ("AVX512-BF16", "avx512_bf16"), ("AMX", "amx_bf16"))


def cpu_ident():
    """This CPU as a record's key: its model name, family and model number
    (a VM's name alone can be as plain as "Intel(R) Xeon(R) Processor")."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key = key.strip()
            if key in ("cpu family", "model") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break
    name = cpu_name() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    return name


def met(r):
    return r["measured"] >= r["target"] if r["higher"] else r["measured"] <= r["target"]


def wanted(r):
    return ("≥ " if r["higher"] else "≤ ") + f"{r['target']:g}"


def flags_text():
    return ", ".join(f"{name}: {'yes' if cpu_has(flag) else 'no'}" for name, flag in FLAGS)


def shown(v):
    return f"{v:.2g}" if 0 < abs(v) < 0.01 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def load_records(path, missing_ok=False):
    """The records of `path` ({} for a missing file where missing_ok)."""
    if missing_ok and not os.path.exists(path):
        return {}
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        sys.exit(f"targets.py: {path}: {e.strerror}")
    except json.JSONDecodeError as e:
        sys.exit(f"targets.py: {path}:{e.lineno}: not JSON ({e.msg})")


def update_by_cpu(path, rows, command, commit):
    """Replaces this CPU's record in `path` by this run's targets."""
    data = load_records(path, missing_ok=True)
    data[cpu_ident()] = {
        "flags": flags_text(),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "commit": commit, "command": command, "source": "measured by targets.py",
        "targets": [{k: r[k] for k in ("workload", "measured", "target", "higher")}
                    | {"note": r.get("note", "")} for r in rows]}
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def render_by_cpu(path):
    """A markdown table: a row per target, a column per CPU of `path`."""
    data = load_records(path)
    cpus = sorted(data, key=lambda c: data[c]["date"], reverse=True)
    order = {}  # workload: its first record's wanted value, in order
    for c in cpus:
        for r in data[c]["targets"]:
            order.setdefault(r["workload"], wanted(r))
    print("Issue 16's targets on each CPU the benches have run on, the latest run of "
          "each (bench/targets.py --by-cpu; bench/run-all.sh updates its CPU's column): "
          "the value, and whether it meets the target.")
    print()
    print("| target | wanted | " + " | ".join(
        f"{c}: {data[c]['flags']}; {data[c]['date']}, dyncc at `{data[c]['commit']}`"
        for c in cpus) + " |")
    print("|---|---:|" + "---|" * len(cpus))
    for w, want in order.items():
        cells = []
        for c in cpus:
            r = next((r for r in data[c]["targets"] if r["workload"] == w), None)
            cells.append("—" if r is None else
                         f"{shown(r['measured'])} {'yes' if met(r) else '**no**'}")
        print(f"| {w} | {want} | " + " | ".join(cells) + " |")
    print("| met | | " + " | ".join(
        f"{sum(met(r) for r in data[c]['targets'])} of {len(data[c]['targets'])}"
        for c in cpus) + " |")
    for c in cpus:
        if data[c].get("source", "").startswith("measured"):
            continue
        print()
        print(f"- {c}: {data[c]['source']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("summary", nargs="?", help="the JSON lines file ($DYNCC_BENCH_SUMMARY)")
    ap.add_argument("--command", default="bench/run-all.sh", help="named under the table")
    ap.add_argument("--by-cpu", metavar="FILE",
                    help="keep this run's values as this CPU's record in FILE")
    ap.add_argument("--commit", default="unknown", help="dyncc's commit, for --by-cpu")
    ap.add_argument("--render-by-cpu", metavar="FILE",
                    help="print FILE's records as a table, a column per CPU, and stop")
    a = ap.parse_args()
    if a.render_by_cpu:
        render_by_cpu(a.render_by_cpu)
        return
    if not a.summary:
        ap.error("the summary file is needed (or --render-by-cpu FILE)")
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
    flags = flags_text()
    print(f"Targets (WORKLOADS.md, issue 16) on {' / '.join(cpus)} ({flags}), "
          f"{time.strftime('%Y-%m-%d', time.gmtime())}; made by `{a.command}`. "
          "Ratios are dyncc's speed-up over the peer (medians, one run).")
    print()
    print("| target | measured | wanted | met | needs (% of the FMA rate) |")
    print("|---|---:|---:|---|---:|")
    missed = above = 0
    for r in rows:
        ok = met(r)
        missed += not ok
        note = f" ({r['note']})" if r.get("note") else ""
        needs = r.get("needs")
        above += not ok and needs is not None and needs > 100
        print(f"| {r['workload']} | {shown(r['measured'])} | {wanted(r)} | "
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
    if a.by_cpu:
        update_by_cpu(a.by_cpu, rows, a.command, a.commit)


if __name__ == "__main__":
    main()
