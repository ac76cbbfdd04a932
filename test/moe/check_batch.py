#!/usr/bin/env python3
"""A mixture-of-experts layer compiled with --batch-buckets: the samples of a
request run one after another, each routed exactly as alone (its own
capacity). Builds the layer as a PyTorch module with dyncc.nn.MoE
(examples/moe/model.py), exports it with dyncc.export, compiles it with
--batch-buckets=N and runs 2N cases N at a time (and a partial batch)
through dynrt_model_run_batch; every sample's outputs (y and the gate's
logits) must equal the eager module's to 1e-4, and the route report's
tokens per expert and dropped pairs must be the sums of the samples' (the
assignment is the last sample's). The eager module routes each sample on
the logits the compiled gate produced (model.route_on), so that a float32
near-tie cannot flip a decision; samples whose eager decisions on its own
logits differ are counted.

  check_batch.py DYNCC WORKDIR N [model.py options...]
"""
import ctypes
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "moe"))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

import model as moe_model  # noqa: E402  (puts this tree's python/ first)
import dyncc  # noqa: E402
from dynrt_ctypes import Library, RouteReport, RunReport  # noqa: E402


def rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    err[np.isnan(err)] = np.inf
    return float(err.max())


def main():
    dyncc_bin, work, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    opts = sys.argv[4:]
    os.makedirs(work, exist_ok=True)
    name = "moe_batch"
    _, a = moe_model.parse_args(opts)
    module, example = moe_model.build_model(**moe_model.model_kwargs(a))
    cases = moe_model.make_cases(module, 2 * batch)
    dyncc.export(module, example, os.path.join(work, name))
    subprocess.run([dyncc_bin, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                    "--shared", f"--batch-buckets={batch}"], check=True)
    L = Library(f"{work}/lib/lib{name}.so", name)
    L.create(f"{work}/{name}.safetensors")
    route = L.desc.routes[0]
    n_in = len(cases[0])
    gate_inside = module.spec["logits_output"]
    problems, worst, reroutes = [], 0.0, 0
    for sel in (list(range(batch)), list(range(batch, 2 * batch - 3))):
        n = len(sel)
        y = [np.full((n,) + s[1:], np.nan, dt) for _, dt, s in L.outputs]
        tpe = np.full(route.num_experts, 7, np.uint64)
        asg = np.full(route.num_tokens * route.experts_per_token, 7, np.int32)
        rep = RouteReport(0, 0, 0, 99, tpe.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                          asg.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        ins = [np.ascontiguousarray(np.stack([cases[i][k].numpy() for i in sel]))
               for k in range(n_in)]
        L.run_batch(ins, y, n, RunReport(1, ctypes.pointer(rep)))
        want_tpe, want_drop, last = np.zeros(route.num_experts, np.int64), 0, None
        for s, i in enumerate(sel):
            if gate_inside:
                _, r_own = moe_model.run_eager(module, cases[i])
                own = r_own.assignment.copy()
                with moe_model.route_on(module, y[1][s]):
                    want, r = moe_model.run_eager(module, cases[i])
                reroutes += not np.array_equal(own, r.assignment)
            else:
                want, r = moe_model.run_eager(module, cases[i])
            for k, w in enumerate(want):
                worst = max(worst, rel(y[k][s], w))
            want_tpe += r.tokens_per_expert.astype(np.int64)
            want_drop += int(r.dropped)
            last = r.assignment
        if not np.array_equal(tpe.astype(np.int64), want_tpe):
            problems.append(f"batch of {n}: tokens per expert {tpe} != the samples' sums {want_tpe}")
        if rep.dropped != want_drop:
            problems.append(f"batch of {n}: {rep.dropped} dropped != {want_drop}")
        if not np.array_equal(asg, last):
            problems.append(f"batch of {n}: the assignment is not the last sample's")
    L.destroy()
    for p in problems:
        print("  " + p)
    ok = not problems and worst <= 1e-4
    print(f"moe --batch-buckets={batch} {' '.join(opts)}: max output error {worst:.2g}, "
          f"{len(problems)} problem(s)"
          + (f", {reroutes} sample(s) routed differently on the eager module's own logits"
             if reroutes else "") + ("" if ok else " -- FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
