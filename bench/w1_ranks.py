#!/usr/bin/env python3
"""W1 by rank count: the W1 layer of WORKLOADS.md (T=512, d=512, E=8 GELU
experts with d_ff=2048, capacity factor 1.25; top-1 Switch and top-2)
compiled for one process and with --expert-parallel=R for R = 1, 2, 4, run
under mpirun on this machine through the C API (test/mpi/ep_driver.cpp,
one thread per rank). Each rank runs its own batch of T tokens (the layer's
input is per rank, as in GShard), so R ranks process R x T tokens per step.

Per row: the weights each rank holds, the time per layer (median over the
ranks' mean, every run after a barrier), the exchange's share of it and the
bytes each rank sends per layer, and the tokens per second of all ranks. A
check before timing: every rank's outputs and decisions equal the
single-process library's (test/mpi/check_ep.py does the full test).

  bench/run-w1-ranks.sh [build-dir] [--repeat N]
  w1_ranks.py --dyncc DYNCC --driver DRIVER [--work DIR] [--repeat 20]
              [--ranks 1,2,4] [--tokens 512 --dim 512 --ffn 2048] (smaller: a smoke run)
"""
import argparse
import os
import re
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "test", "mpi"))
import check_ep  # noqa: E402  (mpirun, export, compile and driver helpers)
from bench_util import cpu_name  # noqa: E402

LAYERS = {
    "top-1 (switch)": ["--strategy", "switch", "--capacity-factor", "1.25"],
    "top-2 (top_k)": ["--strategy", "top_k", "--k", "2", "--capacity-factor", "1.25"],
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dyncc", required=True)
    ap.add_argument("--driver", required=True)
    ap.add_argument("--work", default=None)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--ranks", default="1,2,4")
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--ffn", type=int, default=2048)
    a = ap.parse_args()
    sys.argv = [sys.argv[0], a.dyncc, a.driver]  # check_ep.mpirun() reads them
    ranks = [int(r) for r in a.ranks.split(",")]
    work = a.work or tempfile.mkdtemp(prefix="w1-ranks-")
    size = ["--tokens", str(a.tokens), "--dim", str(a.dim), "--ffn", str(a.ffn),
            "--experts", "8", "--no-logits-output"]
    print(f"W1 by rank count: T={a.tokens} tokens per rank, d={a.dim}, d_ff={a.ffn}, "
          f"E=8, capacity factor 1.25; CPU: {cpu_name()}, {os.cpu_count()} cores, "
          f"1 thread per rank; {a.repeat} runs per case, {check_ep.CASES} cases\n")
    print("| layer | ranks | weights per rank (MiB) | ms per layer | exchange ms (share) "
          "| bytes sent per rank per layer | tokens/s, all ranks |")
    print("|---|---|---|---|---|---|---|")
    for label, options in LAYERS.items():
        lw = os.path.join(work, label.split()[0])
        base = check_ep.export(lw, "w1", options + size)
        _, ref_lib = check_ep.compile_lib(a.dyncc, base, os.path.join(lw, "lib1p", "w1"))
        inputs = check_ep.inputs_of(base, ref_lib, "w1")
        weights = base + ".safetensors"
        ref = os.path.join(lw, "ref")
        rows = [("1 process", 1, ref_lib, ref)]
        for R in ranks:
            lib = check_ep.compile_lib(a.dyncc, base, os.path.join(lw, f"lib{R}", "w1"),
                                       [f"--expert-parallel={R}"])[1]
            rows.append((str(R), R, lib, os.path.join(lw, f"ranks{R}")))
        from safetensors.numpy import load_file
        tensors = load_file(weights)
        for name, R, lib, out in rows:
            p, _ = check_ep.drive(a.driver, R, lib, "w1", weights, inputs, out,
                                  extra=["--repeat", str(a.repeat)])
            if out != ref:
                check_ep.compare(ref, out, 1, 1, f"{label} at {R} ranks")
            ms, xms, xbytes = [], [], []
            for line in p.stdout.splitlines():
                m = re.match(r"rank \d+/\d+: runs (\d+), ([\d.]+) ms per run, exchange (\d+) "
                             r"bytes ([\d.]+) ms per run", line)
                if m:
                    runs = int(m.group(1))
                    ms.append(float(m.group(2)))
                    xbytes.append(int(m.group(3)) / runs)
                    xms.append(float(m.group(4)))
            sharded = R if name != "1 process" else 1
            wbytes = sum(v.nbytes // (sharded if ".experts." in k else 1)
                         for k, v in tensors.items())
            t = float(np.median(ms))
            x = float(np.median(xms))
            print(f"| {label} | {name} | {wbytes / 2**20:.1f} | {t:.2f} | "
                  f"{x:.2f} ({100 * x / t:.0f}%) | {int(np.median(xbytes)):,} | "
                  f"{R * a.tokens / (t / 1e3):,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
