#!/usr/bin/env python3
"""A mixture-of-experts layer compiled with --batch-buckets: the samples of a
request run one after another, each routed exactly as alone (its own
capacity). Generates the layer with examples/moe/make_moe.py, compiles it
with --batch-buckets=N and runs the cases N at a time (and a partial batch)
through dynrt_model_run_batch; every sample's outputs must equal the PyTorch
reference's to 1e-4 and the route report's tokens per expert and dropped
pairs must be the sums of the samples' (the assignment is the last sample's).

  check_batch.py DYNCC WORKDIR N [make_moe options...]
"""
import ctypes
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

from dynrt_ctypes import Library, RouteReport, RunReport  # noqa: E402


def main():
    dyncc, work, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    opts = sys.argv[4:]
    os.makedirs(work, exist_ok=True)
    name = "moe_batch"
    subprocess.run([sys.executable, os.path.join(ROOT, "examples/moe/make_moe.py"),
                    "--out-dir", work, "--name", name, "--cases", str(2 * batch)] + opts,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                    "--shared", f"--batch-buckets={batch}"], check=True)
    L = Library(f"{work}/lib/lib{name}.so", name)
    L.create(f"{work}/{name}.safetensors")
    d = L.desc
    xs = np.load(f"{work}/{name}.x.npy").astype(np.float32)
    want = np.load(f"{work}/{name}.expected.npz")
    outs = [str(o) for o in want["outputs"]]
    route = d.routes[0]
    problems, worst = [], 0.0
    for sel in (list(range(batch)), list(range(batch, 2 * batch - 3))):
        n = len(sel)
        y = [np.full((n,) + s[1:], np.nan, dt) for _, dt, s in L.outputs]
        tpe = np.full(route.num_experts, 7, np.uint64)
        asg = np.full(route.num_tokens * route.experts_per_token, 7, np.int32)
        rep = RouteReport(0, 0, 0, 99, tpe.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                          asg.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        L.run_batch([np.ascontiguousarray(xs[sel])], y, n, RunReport(1, ctypes.pointer(rep)))
        for k, name_ in enumerate(outs):
            ref = want[name_][sel]
            err = float((np.abs(y[k] - ref) / np.maximum(1.0, np.abs(ref))).max())
            worst = max(worst, err)
        if not np.array_equal(tpe, want["tokens_per_expert"][sel].sum(0).astype(np.uint64)):
            problems.append(f"batch of {n}: tokens per expert {tpe} != the samples' sums "
                            f"{want['tokens_per_expert'][sel].sum(0)}")
        if rep.dropped != int(want["dropped"][sel].sum()):
            problems.append(f"batch of {n}: {rep.dropped} dropped != {int(want['dropped'][sel].sum())}")
        if not np.array_equal(asg, want["assignment"][sel[-1]]):
            problems.append(f"batch of {n}: the assignment is not the last sample's")
    L.destroy()
    for p in problems:
        print("  " + p)
    ok = not problems and worst <= 1e-4
    print(f"moe --batch-buckets={batch} {' '.join(opts)}: max output error {worst:.2g}, "
          f"{len(problems)} problem(s)" + ("" if ok else " -- FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
