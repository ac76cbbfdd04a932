#!/usr/bin/python3
"""GPU check of `dyncc compile --target=cuda`: the workloads of WORKLOADS.md
compiled for the CPU and for CUDA, run on the same inputs through the C API
(ctypes), compared, and timed next to PyTorch eager on the GPU.

    gpu_check.py --dyncc build/tools/dyncc/dyncc --work DIR      # everything
    gpu_check.py --dyncc ... --work DIR --compile-only           # no run (a machine without GPU)
    gpu_check.py --prebuilt --work DIR                           # the libraries DIR already holds

Steps:

 1. generate: each workload's model (a PyTorch module with dyncc.nn,
    exported by dyncc.export: torch.export and torch-mlir, so run with
    ROOT/.venv/bin/python when it exists), weights and cases, with the
    examples' command lines, into DIR/models (--models):
      w1_switch  examples/moe/model.py --strategy switch, capacity factor
                 1.25, T=512 d=512 ffn=2048 E=8, the gate layer inside
                 (logits returned)
      w1_top2    the same with --strategy top_k --k 2 (GShard's top-2
                 capacity rule, as bench/w1_bench.py)
      w1_gshard  the same with --strategy gshard --seed 42 (top-2, the second
                 expert kept at random, as GShard)
      w2         examples/early-exit/model.py at W2 size (its defaults: 12
                 layers, d=256, 4 heads, d_ff=1024, seq 128, batch 1), entropy
      w3         examples/skim/methods.py --method skim_rnn --seq 200
                 --dim 128 --hidden 256 --small 32
      w4         examples/early-exit/model.py as w2 (the per-sample model,
                 batch 1) with --cases 32: the 32 cases are one batch,
                 compiled with --batch-buckets=1,4,8,16,32 --compaction=auto
      w4_static  examples/early-exit/model.py as w2 with --batch 32 (a
                 static batch)
 2. compile: every model twice, `dyncc compile M.mlir --shared
    --target=host -o DIR/cpu/NAME` and `--target=cuda -o DIR/cuda/NAME`
    (w4 with --batch-buckets=1,4,8,16,32 --compaction=auto; in parallel,
    --jobs); a failure is reported and makes the exit status 1.
 3. the GPU: dynrt_cuda_available() of the runtime in the libraries (in a
    child process). Without a usable GPU: "skipped: no GPU (<its message>)",
    exit status 0 when everything compiled.
 4. per workload, in a child process (a crash is reported, the others go
    on): both libraries loaded, the same cases run on both (outputs poisoned
    with NaN first), and compared:
      - outputs within 1e-3: max |cuda - cpu| / max(1, |cpu|);
      - the dynamic decisions exactly: the exit_layer output (w2, w4,
        w4_static), the route report's assignment, tokens_per_expert and
        dropped (w1), the skip report's steps and trace (w3). A decision
        that differs where the two libraries' floats legitimately straddle
        a tie is a warning, not a failure: w1 when each library's
        assignment is exactly the reference's routing
        (dyncc.nn.routing.route, the eager module's) of that library's own
        gate logits;
        w2/w3/w4 when the reference's decision margin there is below
        --near-tie. Outputs are then compared on the tokens / samples whose
        decisions agree.
      - w4 (dynrt_model_run_batch): the 32 samples at every threshold of the
        generator's list (all exit at layer 1 .. none exits), and the first
        13 and the first 1 at the default threshold; besides exit layers
        and logits, the stage report (active samples and bucket of each
        stage) exactly, and each library's report consistent with its exit
        layers (active: the samples whose exit layer is past the stage's
        first layer; bucket: one of the compiled ones holding them, 0 for
        a stage nobody reaches); the 13- and 1-sample runs give each sample
        the exit layer (and logits) of the 32-sample run.
    then timed: median latency of --runs runs after --warmup (the first
    CUDA run, with its PTX JIT and module load, is reported apart) of the
    CPU library, the CUDA library and, when torch.cuda.is_available(),
    PyTorch eager on the GPU: examples/moe/model.py's EagerMoE (w1_switch,
    w1_top2; none for gshard's random choice), the dyncc.nn.EarlyExit
    module's loop on one sample (w2) and on the batch (w4, w4_static: 32
    samples), its bookkeeping on the GPU, bench/w3_bench.py's EagerSkimRNN
    (w3); float32, no_grad, synchronized after each run. The eager modules
    are rebuilt in the child from the examples (same seeds; the early-exit
    one loads the weights file), so the child's Python needs torch.
 5. a markdown table with the date and the GPU's name (also --md FILE).

--prebuilt skips step 1's export and step 2: for a GPU machine without
the toolchain or torch-mlir (bench/gpu-check.sh --prepare compiles
elsewhere, docs/gpu.md). It regenerates the data (weights are too large to
carry) with the examples' --weights-only (dyncc.export_weights: the
weights file of the export, no tracing, no torch-mlir) and this Python,
and uses the libraries in DIR/cpu and DIR/cuda; DIR/manifest.json says how
they were made, and regenerated weights or inputs that differ from those
the libraries were prepared with are reported (the libraries' shapes are
checked against the data in any case).

Exit status: 0 when everything compiled and every check passed (or was
skipped for want of a GPU), 1 otherwise, 2 for bad arguments.
"""

import argparse
import concurrent.futures
import ctypes
import datetime
import hashlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

import dynrt_ctypes  # noqa: E402
from dynrt_ctypes import DEVICE_CPU, DEVICE_CUDA, RouteReport, RunReport, SkipReport  # noqa: E402

TOL = 1e-3
NEAR_TIE = 1e-3

W1_SIZE = ["--capacity-factor", "1.25", "--tokens", "512", "--dim", "512", "--ffn", "2048",
           "--experts", "8", "--skew", "0.5"]

W4_BUCKETS = "1,4,8,16,32"

# name -> (kind, generator script (its command line), its options, label)
WORKLOADS = {
    "w1_switch": ("moe", "examples/moe/model.py",
                  ["--strategy", "switch"] + W1_SIZE + ["--cases", "3"],
                  "W1 MoE top-1 (`switch`)"),
    "w1_top2": ("moe", "examples/moe/model.py",
                ["--strategy", "top_k", "--k", "2"] + W1_SIZE + ["--cases", "3"],
                "W1 MoE top-2 (`top_k`, k=2)"),
    "w1_gshard": ("moe", "examples/moe/model.py",
                  ["--strategy", "gshard", "--seed", "42"] + W1_SIZE + ["--cases", "3"],
                  "W1 MoE top-2 (`gshard`)"),
    "w2": ("early_exit", "examples/early-exit/model.py",
           ["--criterion", "entropy", "--cases", "8"],
           "W2 early-exit encoder, batch 1 (entropy)"),
    "w3": ("skim", "examples/skim/methods.py",
           ["--method", "skim_rnn", "--seq", "200", "--dim", "128", "--hidden", "256",
            "--small", "32", "--cases", "8"],
           "W3 Skim-RNN, 200 steps"),
    "w4": ("early_exit_batch", "examples/early-exit/model.py",
           ["--criterion", "entropy", "--cases", "32"],
           f"W4 early-exit encoder, 32 samples, buckets {W4_BUCKETS} + compaction (entropy)"),
    "w4_static": ("early_exit", "examples/early-exit/model.py",
                  ["--criterion", "entropy", "--batch", "32", "--cases", "2"],
                  "W4 early-exit encoder, static batch 32 (entropy)"),
}
# more `dyncc compile` options of a workload (both targets)
COMPILE_OPTS = {"w4": [f"--batch-buckets={W4_BUCKETS}", "--compaction=auto"]}
# w4: the batch sizes run at the default threshold besides the whole batch
# (below max_batch the runtime runs on max-size copies; 1 starts at bucket 1)
W4_SUBSETS = (13, 1)
TARGETS = (("cpu", "host"), ("cuda", "cuda"))


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------
# The C API (runtime/dynrt.h), through runtime/python/dynrt_ctypes.py


class Library(dynrt_ctypes.Library):
    """A model library compiled by dyncc --shared (its runtime included)."""

    def __init__(self, path, name):
        super().__init__(path, name)
        self.first_ms = None  # the first run in this process (CUDA: PTX JIT, module load)

    def arrange(self, named):
        """The inputs in the descriptor's order from {name: array}."""
        import numpy as np
        out = []
        for n, dt, shape in self.inputs:
            if n not in named:
                raise RuntimeError(f"the library takes an input {n!r} the workload does not have")
            a = np.asarray(named[n])
            if a.size != int(np.prod(shape, dtype=np.int64)):
                raise RuntimeError(f"input {n}: the data has shape {a.shape}, the library "
                                   f"expects {shape}")
            out.append(np.ascontiguousarray(a.astype(dt, copy=False).reshape(shape)))
        return out

    def run_reported(self, inputs, route_k=None, skip_capacity=None):
        """Runs on the arranged inputs. Returns (status message or None, outputs,
        report dict)."""
        import numpy as np
        ys = [np.full(shape, np.nan, dt) if np.dtype(dt).kind == "f" else
              np.full(shape, -7, dt) for _, dt, shape in self.outputs]
        rep = {}
        rr = RunReport(0, None, 0, None)
        keep = []
        if route_k is not None and self.desc.num_routes >= 1:
            rd = self.desc.routes[0]
            T, E, K = rd.num_tokens, rd.num_experts, rd.experts_per_token
            asg = np.full(T * K, 0x7EADBEEF, np.int32)
            tpe = np.full(E, 0xFFFFFFFF, np.uint64)
            r = RouteReport(-7, -7, -7, 0xDEADBEEF,
                            tpe.ctypes.data_as(ctypes.POINTER(ctypes.c_uint64)),
                            asg.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
            keep += [asg, tpe, r]
            rr.num_routes, rr.routes = 1, ctypes.pointer(r)
        if skip_capacity is not None and self.desc.num_skips >= 1:
            buf = np.full((skip_capacity, 3), 0x7EADBEEF, np.int32)
            s = SkipReport(-7, skip_capacity, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
            keep += [buf, s]
            rr.num_skips, rr.skips = 1, ctypes.pointer(s)
        t0 = time.perf_counter()
        msg = self.try_run(inputs, ys, rr)
        if self.first_ms is None:
            self.first_ms = (time.perf_counter() - t0) * 1e3
        if rr.num_routes:
            r = rr.routes[0]
            rep["route"] = dict(sizes=(r.num_tokens, r.num_experts, r.experts_per_token),
                                dropped=int(r.dropped), assignment=keep[0].copy(),
                                tokens_per_expert=keep[1].astype(np.int64))
        if rr.num_skips:
            s = rr.skips[0]
            steps = int(s.steps)
            rep["skip"] = dict(steps=steps, trace=keep[-2][:max(0, min(steps, skip_capacity))].copy())
        return msg, ys, rep

    def run_batch_reported(self, x):
        """A bucketed model on the samples x [n, ...] (dynrt_model_run_batch,
        64-byte aligned buffers, outputs poisoned first). Returns (status
        message or None, outputs, stage report {"active": [..], "bucket":
        [..]} of the num_stages stages)."""
        import numpy as np
        n = x.shape[0]
        xs = aligned(x.shape, self.inputs[0][1])
        xs[...] = x
        ys = []
        for _, dt, shape in self.outputs:
            y = aligned((n,) + tuple(shape[1:]), dt)
            y[...] = np.nan if np.dtype(dt).kind == "f" else -7
            ys.append(y)
        rep, active, bucket = self.stage_report()
        for i in range(self.num_stages):
            active[i], bucket[i] = -7, -7  # the run clears them
        t0 = time.perf_counter()
        msg = self.try_run_batch([xs], ys, n, rep)
        if self.first_ms is None:
            self.first_ms = (time.perf_counter() - t0) * 1e3
        return msg, ys, dict(active=list(active)[:self.num_stages],
                             bucket=list(bucket)[:self.num_stages])

    def runner(self, inputs, outputs=None):
        """For timing. A bucketed model runs the n samples of inputs[0]
        ([n, ...]) with dynrt_model_run_batch, on aligned buffers."""
        if not self.max_batch:
            return super().runner(inputs, outputs)
        n = inputs[0].shape[0]
        ins = []
        for v in inputs:
            c = aligned(v.shape, v.dtype)
            c[...] = v
            ins.append(c)
        outs = outputs or [aligned((n,) + tuple(shape[1:]), dt) for _, dt, shape in self.outputs]
        ip, op = dynrt_ctypes.pointers(ins), dynrt_ctypes.pointers(outs)
        run, model, check = self.lib.dynrt_model_run_batch, self.model, self.check

        def go(_keep=(ins, outs, ip, op)):
            st = run(model, n, ip, op, None)
            if st:
                check(st, "run_batch")
        return go


def aligned(shape, dtype):
    """A zeroed, 64-byte aligned array (run_batch copies unaligned buffers)."""
    import numpy as np
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.zeros(nbytes + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + nbytes].view(dtype).reshape(shape)


# ---------------------------------------------------------------------------
# Helpers


def close(got, want):
    """max |got - want| / max(1, |want|) (inf where got is NaN)."""
    import numpy as np
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.size == 0:
        return 0.0
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    err[np.isnan(err)] = np.inf
    return float(err.max())


def sync(a):
    if a.eager_device == "cuda":
        import torch
        torch.cuda.synchronize()


def median_ms(fn, warmup, runs, seconds=15.0):
    """Median of `runs` timed runs after `warmup` (at least one); fewer runs
    (at least 3) when they would take more than `seconds`."""
    t0 = time.perf_counter()
    fn()
    one = time.perf_counter() - t0
    for _ in range(warmup - 1):
        fn()
    runs = max(3, min(runs, int(seconds / max(one, 1e-9))))
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1e3


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def run_cmd(argv, timeout, env=None):
    """(returncode, combined output, seconds)"""
    t0 = time.time()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env)
        return p.returncode, p.stdout + p.stderr, time.time() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"") + (e.stderr or b"")
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        return 124, out + f"\n(timed out after {timeout} s)", time.time() - t0


def first_error(text, limit=300):
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    pick = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
    return pick[:limit]


def lib_path(work, sub, name):
    return os.path.join(work, sub, f"lib{name}.so")


def child_env(work):
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    extra = os.path.join(work, "lib")
    if os.path.isdir(extra):
        env["LD_LIBRARY_PATH"] = extra + (":" + env["LD_LIBRARY_PATH"]
                                          if env.get("LD_LIBRARY_PATH") else "")
    return env


# ---------------------------------------------------------------------------
# The child: one workload's comparison and timing


def example_module(subdir, modname):
    """examples/<subdir>/<modname>.py, imported (examples/moe and
    examples/early-exit both have a model.py: one per child process)."""
    import importlib
    sys.path.insert(0, os.path.join(ROOT, "examples", subdir))
    sys.modules.pop(modname, None)
    return importlib.import_module(modname)


def child_moe(a, name, models, cpu, gpu, res):
    mm = example_module("moe", "model")  # sets OPENBLAS_CORETYPE, puts ROOT/python first
    import numpy as np
    import torch
    from dyncc.nn.routing import RouteError, route
    base = os.path.join(models, name)
    x_all = np.load(base + ".x.npy")
    exp = np.load(base + ".expected.npz")
    # the eager module, rebuilt as the generator built it (same options, seeds)
    _, margs = mm.parse_args(WORKLOADS[name][2])
    module, _ = mm.build_model(**mm.model_kwargs(margs))
    cfg = module.moe.cfg
    if cfg.to_json() != str(exp["config"]):
        res["problems"].append(f"the rebuilt module's route config {cfg.to_json()} is not the "
                               f"generator's {exp['config']}")
        return None, None
    N = x_all.shape[0]
    T, K = x_all.shape[1], cfg.per_token
    # the outputs' names (the library calls them output0, output1)
    onames = [str(n) for n in exp["outputs"]]
    if len(onames) != len(cpu.outputs):
        res["problems"].append(f"the library has {len(cpu.outputs)} outputs, the model {onames}")
        return None, None
    li = onames.index("logits") if "logits" in onames else None
    near, worst_y, worst_l, same_cases, ref_agree = 0, 0.0, 0.0, 0, 0

    def routes_own(asg, lg):
        try:
            r = route(cfg, torch.from_numpy(np.ascontiguousarray(lg, np.float32).reshape(T, -1)))
            return np.array_equal(asg, r.assignment)
        except RouteError as e:
            return f"the reference cannot route these logits: {e}"

    for i in range(N):
        ins_c = cpu.arrange({"x": x_all[i]})
        ins_g = gpu.arrange({"x": x_all[i]})
        ec, yc, rc = cpu.run_reported(ins_c, route_k=True)
        eg, yg, rg = gpu.run_reported(ins_g, route_k=True)
        if ec or eg:
            res["problems"].append(f"case {i}: run failed: cpu {ec!r}, cuda {eg!r}")
            continue
        if "route" not in rc or "route" not in rg:
            res["problems"].append(f"case {i}: no route report (the library has no dyn.route?)")
            continue
        ac, ag = rc["route"]["assignment"], rg["route"]["assignment"]
        ref_agree += int(np.array_equal(ac, exp["assignment"][i]))
        if rc["route"]["sizes"] != rg["route"]["sizes"]:
            res["problems"].append(f"case {i}: report sizes cpu {rc['route']['sizes']} "
                                   f"cuda {rg['route']['sizes']}")
        if li is not None:
            worst_l = max(worst_l, close(yg[li], yc[li]))
        same = (np.array_equal(ac, ag)
                and np.array_equal(rc["route"]["tokens_per_expert"], rg["route"]["tokens_per_expert"])
                and rc["route"]["dropped"] == rg["route"]["dropped"])
        rows = (ac.reshape(T, K) == ag.reshape(T, K)).all(axis=1)
        if same:
            same_cases += 1
        else:
            ndiff = int((~rows).sum())
            t0 = int(np.nonzero(~rows)[0][0]) if ndiff else -1
            detail = (f"{ndiff} token(s) differ (first: token {t0}, cpu "
                      f"{ac.reshape(T, K)[t0].tolist()}, cuda {ag.reshape(T, K)[t0].tolist()})"
                      if ndiff else "tokens_per_expert or dropped differ")
            if li is None:
                res["problems"].append(f"case {i}: route assignment differs: {detail}")
            else:
                oc, og = routes_own(ac, yc[li]), routes_own(ag, yg[li])
                if oc is True and og is True:
                    near += 1
                    res["warnings"].append(
                        f"case {i}: route assignment differs, {detail}; each library routed its own "
                        f"gate logits exactly as the reference (near-ties; logits differ by "
                        f"{close(yg[li], yc[li]):.2g})")
                else:
                    res["problems"].append(
                        f"case {i}: route assignment differs: {detail}; cpu consistent with its "
                        f"logits: {oc}, cuda: {og}")
        worst_y = max(worst_y, close(yg[0][rows], yc[0][rows]))
    res["decisions"] = f"{same_cases}/{N} cases ({T}x{K} choices) identical" + (
        f", {near} near-tie" if near else "")
    res["max_diff"] = max(worst_y, worst_l)
    if res["max_diff"] > TOL:
        res["problems"].append(f"outputs differ: y by {worst_y:.3g}, logits by {worst_l:.3g} "
                               f"(> {TOL})")
    res["detail"] = (f"y {worst_y:.2g}" + (f", logits {worst_l:.2g}" if li is not None else "")
                     + f"; dropped {rc['route']['dropped'] if 'route' in rc else '?'} (last case)"
                     + f"; cpu assignment = eager module's for {ref_agree}/{N} cases")
    bench_inputs = cpu.arrange({"x": x_all[0]}), gpu.arrange({"x": x_all[0]})

    def eager():
        if cfg.strategy not in ("switch", "top_k"):
            return None, f"n/a: EagerMoE has no {cfg.strategy} routing"
        m = mm.EagerMoE(mm.weights_dict(module), top_k=K, capacity_factor=cfg.capacity_factor,
                        renormalize=cfg.renormalize).float().eval().to(a.eager_device)
        x = torch.from_numpy(np.ascontiguousarray(x_all[0])).to(a.eager_device)

        def go():
            with torch.no_grad():
                y = m(x)
            sync(a)
            return y
        y = go().cpu().numpy()
        return go, f"eager vs cpu library {close(y, yc0[0]):.2g}"
    _, yc0, _ = cpu.run_reported(bench_inputs[0])
    return bench_inputs, eager


def early_exit_eager(model, x):
    """dyncc.nn.EarlyExit.forward's loop (sample granularity) on x [B, S, D]
    with its bookkeeping on x's device: the module keeps it on the CPU,
    which a CUDA x cannot mix with. The layers, heads and criterion are the
    module's; stops when every sample has exited (batch 1: at its exit
    layer). Returns (logits [B, C], exit_layer [B] int32)."""
    import torch
    L, B = model.num_layers, x.shape[0]
    crit = model.criterion
    state = crit.start(B)
    active = torch.ones(B, dtype=torch.bool, device=x.device)
    exit_layer = torch.full((B,), L, dtype=torch.int32, device=x.device)
    out, h = None, x
    for l in range(1, L + 1):
        h = model.layers[l - 1](h)
        z = model.heads[l - 1](h)
        if out is None:
            out = torch.empty_like(z)
        if l == L:
            out[active] = z[active]
            break
        s = model.score_heads[l - 1](h) if model.score_heads is not None else None
        exit_now, _ = crit.step(state, l, z.detach().reshape(B, -1), s)
        new = exit_now & active
        out[new] = z[new]
        exit_layer[new] = l
        active &= ~new
        if not bool(active.any()):
            break
    return out, exit_layer


def early_exit_model(name, models, exp):
    """(examples/early-exit/model.py, the eager module of workload `name`:
    its architecture built as the generator did, the weights of
    name.safetensors, the criterion at the default threshold)."""
    import numpy as np
    ee = example_module("early-exit", "model")
    ea = ee.parser().parse_args(WORKLOADS[name][2])
    if str(exp["criterion"]) != ea.criterion:
        raise RuntimeError(f"{name}.expected.npz is for {exp['criterion']}, the workload "
                           f"{ea.criterion}")
    m = ee.build_model(ea.criterion, ea.layers, ea.d_model, ea.heads, ea.d_ff, ea.seq,
                       ea.classes, ea.seed, temperature=float(exp["temperature"]), fit=False)
    ee.load_weights(m, os.path.join(models, name + ".safetensors"))
    ee.set_threshold(m, np.asarray(exp["default_threshold"], np.float64))
    return ee, m.float().eval()


def eager_early_exit(a, name, models, exp, x, want_exit):
    """The eager side of w2 / w4 / w4_static: (timed function, note). x
    [B, S, D]; want_exit [B]: the cpu library's exit layers. The module's
    own forward on the CPU is the reference the loop is checked against."""
    import numpy as np
    import torch
    _, m = early_exit_model(name, models, exp)
    xc = torch.from_numpy(np.ascontiguousarray(x, np.float32))
    with torch.no_grad():
        m(xc)
    ref = m.exit_layer.numpy().reshape(-1)
    m = m.to(a.eager_device)
    xt = xc.to(a.eager_device)

    def go():
        with torch.no_grad():
            r = early_exit_eager(m, xt)
        sync(a)
        return r
    _, e = go()
    e = e.cpu().numpy().reshape(-1)
    agree = int((e == np.asarray(want_exit).reshape(-1)).sum())
    same = int((e == ref).sum())
    what = "batch1 loop" if e.size == 1 else f"batched loop ({e.size} samples)"
    return go, (f"eager {what} on {a.eager_device}: exit layers = the module's forward on the "
                f"CPU for {same}/{e.size}, = cpu library's for {agree}/{e.size}")


def child_early_exit(a, name, models, cpu, gpu, res):
    example_module("early-exit", "model")  # sets OPENBLAS_CORETYPE before numpy loads
    import numpy as np
    base = os.path.join(models, name)
    x_all = np.load(base + ".x.npy")
    exp = np.load(base + ".expected.npz")
    kind = str(exp["criterion"])
    default = np.asarray(exp["default_threshold"], np.float64)
    values = np.asarray(exp["thresholds"], np.float64)
    ti = int(np.argmin(np.abs(values.reshape(len(values), -1) - default.reshape(1, -1)).max(1)))
    pname = {"patience": "patience", "per_class": "class_thresholds"}.get(kind, "theta")
    for lib in (cpu, gpu):
        lib.set_param(pname, default)
    onames = [n for n, _, _ in cpu.outputs]
    ei = cpu.desc.exit_layer_output
    if ei < 0:
        res["problems"].append("the library has no exit_layer output")
        return None, None
    zi = 1 - ei if len(onames) == 2 else 0
    K = x_all.shape[0]
    near, worst, nsame, total, ref_agree = 0, 0.0, 0, 0, 0
    for i in range(K):
        ec, yc, _ = cpu.run_reported(cpu.arrange({"x": x_all[i]}))
        eg, yg, _ = gpu.run_reported(gpu.arrange({"x": x_all[i]}))
        if ec or eg:
            res["problems"].append(f"case {i}: run failed: cpu {ec!r}, cuda {eg!r}")
            continue
        lc, lg = yc[ei].reshape(-1), yg[ei].reshape(-1)
        want = exp["exit_layer"][ti, i].reshape(-1)
        ref_agree += int((lc == want).sum())
        same = lc == lg
        total += lc.size
        nsame += int(same.sum())
        for b in np.nonzero(~same)[0]:
            m = float(exp["margin"][ti, i].reshape(-1)[b])
            what = (f"case {i} sample {b}: exit layer cpu {int(lc[b])}, cuda {int(lg[b])} "
                    f"(reference {int(want[b])}, its margin to the threshold {m:.2g})")
            if m < a.near_tie:
                near += 1
                res["warnings"].append(what + ": near-tie")
            else:
                res["problems"].append(what)
        zc, zg = yc[zi].reshape(lc.size, -1), yg[zi].reshape(lc.size, -1)
        worst = max(worst, close(zg[same], zc[same]))
    res["decisions"] = f"{nsame}/{total} exit layers identical" + (f", {near} near-tie" if near else "")
    res["max_diff"] = worst
    if worst > TOL:
        res["problems"].append(f"logits differ by {worst:.3g} (> {TOL})")
    res["detail"] = (f"logits {worst:.2g}; cpu exit layers = reference's for {ref_agree}/{total}; "
                     f"{kind} threshold {default.reshape(-1).tolist()}")
    x0 = x_all[0]
    bench_inputs = cpu.arrange({"x": x0}), gpu.arrange({"x": x0})
    _, y0, _ = cpu.run_reported(bench_inputs[0])

    def eager():
        return eager_early_exit(a, name, models, exp, x0, y0[ei])
    return bench_inputs, eager


def stage_report_mismatch(exit_layer, rep, buckets):
    """Why a bucketed run's stage report does not fit its exit layers, or
    None. Stage s runs layer s + 1 for the samples whose exit layer is
    >= s + 1, at one of the compiled buckets that holds them (holes kept by
    the compaction policy may make it larger than the smallest); a stage
    that nobody reaches reports 0 samples at bucket 0."""
    import numpy as np
    e = np.asarray(exit_layer).reshape(-1)
    for s, (act, b) in enumerate(zip(rep["active"], rep["bucket"])):
        want = int((e >= s + 1).sum())
        if act != want:
            return f"stage {s}: {act} active, {want} samples exit at layer {s + 1} or later"
        if (want == 0 and b != 0) or (want > 0 and (b not in buckets or b < want)):
            return f"stage {s}: {want} active at bucket {b} (buckets {buckets})"
    return None


def child_early_exit_batch(a, name, models, cpu, gpu, res):
    """w4: the per-sample early-exit model compiled with --batch-buckets; the
    generator's cases are one batch, run with dynrt_model_run_batch."""
    example_module("early-exit", "model")  # sets OPENBLAS_CORETYPE before numpy loads
    import numpy as np
    base = os.path.join(models, name)
    x_all = np.load(base + ".x.npy")                 # [cases, 1, S, D]
    x_all = x_all.reshape((-1,) + x_all.shape[2:])   # the cases' samples [cases, S, D]
    exp = np.load(base + ".expected.npz")
    for lib in {lib.path: lib for lib in (cpu, gpu)}.values():
        if not lib.max_batch:
            res["problems"].append(
                f"{lib.path} is not bucketed (max_batch 0): compiled without --batch-buckets "
                "(prepared by an older bench/gpu_check.py? run --prepare again)")
    if res["problems"]:
        return None, None
    if (cpu.max_batch, cpu.buckets, cpu.num_stages) != (gpu.max_batch, gpu.buckets, gpu.num_stages):
        res["problems"].append(f"the libraries' buckets differ: cpu {cpu.buckets} "
                               f"({cpu.num_stages} stages), cuda {gpu.buckets} ({gpu.num_stages})")
        return None, None
    L = int(exp["layers"])
    ei = cpu.desc.exit_layer_output
    if ei < 0 or cpu.num_stages != L:
        res["problems"].append(f"the library has exit_layer output {ei} and {cpu.num_stages} "
                               f"stages; the model has {L} layers")
        return None, None
    zi = 1 - ei if len(cpu.outputs) == 2 else 0
    B = min(x_all.shape[0], cpu.max_batch)
    per = tuple(cpu.inputs[0][2][1:])   # the exported model's input: one sample, [1, S, D]
    if int(np.prod(x_all.shape[1:])) != int(np.prod(per)):
        res["problems"].append(f"the cases have samples of shape {x_all.shape[1:]}, the library "
                               f"takes {cpu.inputs[0][2]}")
        return None, None
    x_eager = np.ascontiguousarray(x_all[:B].astype(np.float32))   # [B, S, D]
    x = x_eager.reshape((B,) + per)
    kind = str(exp["criterion"])
    default = np.asarray(exp["default_threshold"], np.float64)
    values = np.asarray(exp["thresholds"], np.float64)
    ti = int(np.argmin(np.abs(values.reshape(len(values), -1) - default.reshape(1, -1)).max(1)))
    pname = {"patience": "patience", "per_class": "class_thresholds"}.get(kind, "theta")

    def fmt(v):
        v = np.asarray(v).reshape(-1).tolist()
        return ",".join(f"{u:.4g}" for u in v)
    # the default threshold first: "CUDA first" is then the timed run's first time
    runs = ([(ti, B)] + [(t, B) for t in range(len(values)) if t != ti]
            + [(ti, n) for n in W4_SUBSETS if n < B])
    full = {}    # threshold index -> (cpu exit layers, cpu logits, cuda ..., cuda ...) at B
    near, worst, sub_worst, nsame, total, ref_agree, rep_same, nrep = 0, 0.0, 0.0, 0, 0, 0, 0, 0
    for t, n in runs:
        for lib in (cpu, gpu):
            lib.set_param(pname, values[t])
        tag = f"{kind} {fmt(values[t])}, {n} samples"
        ec, yc, rc = cpu.run_batch_reported(x[:n])
        eg, yg, rg = gpu.run_batch_reported(x[:n])
        if ec or eg:
            res["problems"].append(f"{tag}: run failed: cpu {ec!r}, cuda {eg!r}")
            continue
        lc, lg = yc[ei].reshape(-1), yg[ei].reshape(-1)
        zc, zg = yc[zi].reshape(n, -1), yg[zi].reshape(n, -1)
        want = exp["exit_layer"][t].reshape(-1)[:n]
        margin = exp["margin"][t].reshape(-1)[:n]
        ref_agree += int((lc == want).sum())
        same = lc == lg
        total += n
        nsame += int(same.sum())
        for b in np.nonzero(~same)[0]:
            what = (f"{tag}: sample {b}: exit layer cpu {int(lc[b])}, cuda {int(lg[b])} "
                    f"(reference {int(want[b])}, its margin to the threshold {margin[b]:.2g})")
            if margin[b] < a.near_tie:
                near += 1
                res["warnings"].append(what + ": near-tie")
            else:
                res["problems"].append(what)
        worst = max(worst, close(zg[same], zc[same]))
        for side, lib, le, r in (("cpu", cpu, lc, rc), ("cuda", gpu, lg, rg)):
            why = stage_report_mismatch(le, r, lib.buckets)
            if why:
                res["problems"].append(f"{tag}: the {side} stage report (active {r['active']}, "
                                       f"bucket {r['bucket']}) does not fit its exit layers: {why}")
        nrep += 1
        if rc == rg:
            rep_same += 1
        else:
            what = (f"{tag}: stage reports differ: cpu active {rc['active']} bucket {rc['bucket']}, "
                    f"cuda active {rg['active']} bucket {rg['bucket']}")
            if same.all():
                res["problems"].append(what)
            else:
                res["warnings"].append(what + " (after the near-tie exit layers)")
        if n == B:
            full[t] = (lc, zc, lg, zg, rc)
            continue
        # fewer samples: each sample as in the whole batch
        for side, le, z, k in (("cpu", lc, zc, 0), ("cuda", lg, zg, 2)):
            if t not in full:
                continue
            l0, z0 = full[t][k][:n], full[t][k + 1][:n]
            agree = le == l0
            for b in np.nonzero(~agree)[0]:
                what = (f"{tag}: {side} sample {b} exits at layer {int(le[b])}, at {int(l0[b])} in "
                        f"the {B}-sample run (reference's margin {margin[b]:.2g})")
                if margin[b] < a.near_tie:
                    res["warnings"].append(what + ": near-tie")
                else:
                    res["problems"].append(what)
            sub_worst = max(sub_worst, close(z[agree], z0[agree]))
    res["decisions"] = (f"{nsame}/{total} exit layers, {rep_same}/{nrep} stage reports identical"
                        + (f", {near} near-tie" if near else ""))
    res["max_diff"] = worst
    if worst > TOL:
        res["problems"].append(f"logits differ by {worst:.3g} (> {TOL})")
    if sub_worst > TOL:
        res["problems"].append(f"logits of the {'- and '.join(map(str, W4_SUBSETS))}-sample runs "
                               f"differ from the {B}-sample run's by {sub_worst:.3g} (> {TOL})")
    at = full.get(ti)
    stages = (f"; at it (cpu): active {at[4]['active']}, bucket {at[4]['bucket']}"
              if at else "")
    res["detail"] = (f"logits {worst:.2g}; cpu exit layers = reference's for {ref_agree}/{total}; "
                     f"{B} samples at {len(values)} thresholds, "
                     f"{' and '.join(str(n) for n in W4_SUBSETS if n < B)} at the default "
                     f"(logits vs the {B}-sample run {sub_worst:.2g}); buckets {cpu.buckets}; "
                     f"timed at {kind} {fmt(default)}{stages}")
    for lib in (cpu, gpu):
        lib.set_param(pname, default)
    bench_inputs = [x], [x]

    def eager():
        if not at:
            return None, "n/a: the default threshold's run failed"
        return eager_early_exit(a, name, models, exp, x_eager, at[0])
    return bench_inputs, eager


def child_skim(a, name, models, cpu, gpu, res):
    methods = example_module("skim", "methods")  # sets OPENBLAS_CORETYPE, ROOT/python first
    import numpy as np
    base = os.path.join(models, name)
    x_all = np.load(base + ".x.npy")
    exp = np.load(base + ".expected.npz")
    extra = {}
    for n, f in (("classes", ".classes.npy"), ("query", ".query.npy")):
        if os.path.exists(base + f):
            extra[n] = np.load(base + f)
    if cpu.desc.num_skips < 1:
        res["problems"].append("the library has no dyn.skip")
        return None, None
    B = cpu.desc.skips[0].budget
    N = x_all.shape[0]
    near, worst, nsame = 0, 0.0, 0

    def named(i):
        d = {"x": x_all[i]}
        d.update({k: v[i] for k, v in extra.items()})
        return d
    for i in range(N):
        ec, yc, rc = cpu.run_reported(cpu.arrange(named(i)), skip_capacity=B)
        eg, yg, rg = gpu.run_reported(gpu.arrange(named(i)), skip_capacity=B)
        if ec or eg:
            res["problems"].append(f"case {i}: run failed: cpu {ec!r}, cuda {eg!r}")
            continue
        sc, sg = rc["skip"], rg["skip"]
        if sc["steps"] == sg["steps"] and np.array_equal(sc["trace"], sg["trace"]):
            nsame += 1
            worst = max(worst, max(close(g, c) for g, c in zip(yg, yc)))
            continue
        n = min(sc["steps"], sg["steps"])
        first = next((s for s in range(n) if not np.array_equal(sc["trace"][s], sg["trace"][s])), n)
        m = float(exp["margin"][i])
        row_c = sc["trace"][first].tolist() if first < sc["steps"] else "-"
        row_g = sg["trace"][first].tolist() if first < sg["steps"] else "-"
        what = (f"case {i}: trace differs: cpu {sc['steps']} steps, cuda {sg['steps']}; first "
                f"difference at step {first} (cpu {row_c}, cuda {row_g}); reference's "
                f"smallest margin {m:.2g}")
        if m < a.near_tie:
            near += 1
            res["warnings"].append(what + ": near-tie")
        else:
            res["problems"].append(what)
    res["decisions"] = f"{nsame}/{N} traces identical" + (f", {near} near-tie" if near else "")
    res["max_diff"] = worst
    if worst > TOL:
        res["problems"].append(f"final states differ by {worst:.3g} (> {TOL})")
    res["detail"] = f"final state {worst:.2g}; budget {B}"
    bench_inputs = cpu.arrange(named(0)), gpu.arrange(named(0))
    _, y0, r0 = cpu.run_reported(bench_inputs[0], skip_capacity=B)

    def eager():
        if str(exp["method"]) != "skim_rnn":
            return None, f"n/a: no eager loop for {exp['method']}"
        import torch
        sys.path.insert(0, os.path.join(ROOT, "bench"))
        from w3_bench import EagerSkimRNN
        # the module, rebuilt as the generator built it (its config, --data-seed)
        _, sa = methods.parse_args(WORKLOADS[name][2])
        module, _ = methods.build_model(**json.loads(str(exp["config"])), seed=sa.data_seed)
        m = EagerSkimRNN.from_model(module).to(a.eager_device)
        x = torch.from_numpy(np.ascontiguousarray(x_all[0])).to(a.eager_device)

        def go(trace=None):
            with torch.no_grad():
                r = m(x, trace)
            sync(a)
            return r
        tr = []
        go(tr)
        want = r0["skip"]["trace"][:, 1].tolist()
        return go, f"eager trace = cpu library's: {tr == want}"
    return bench_inputs, eager


def run_child(a):
    """One workload: compare and time; writes the result JSON."""
    name = a.child
    kind = WORKLOADS[name][0]
    res = dict(workload=name, problems=[], warnings=[], decisions="", max_diff=None, detail="",
               cpu_ms=None, cuda_ms=None, cuda_first_ms=None, eager_ms=None, eager_note="")
    out = os.path.join(a.work, "results", name + ".json")

    def save():
        with open(out, "w") as f:
            json.dump(res, f, indent=1)
    try:
        weights = os.path.join(a.models, name + ".safetensors")
        cpu = Library(lib_path(a.work, "cpu", name), name)
        gpu = Library(lib_path(a.work, "cpu" if a.fake_gpu else "cuda", name), name)
        gdev = DEVICE_CPU if a.fake_gpu else DEVICE_CUDA
        a.eager_device = "cpu" if a.fake_gpu else "cuda"
        want_abi = dynrt_ctypes.ABI_VERSION
        for lib, dev in ((cpu, DEVICE_CPU), (gpu, gdev)):
            if want_abi is not None and lib.abi != want_abi:
                res["problems"].append(f"{os.path.basename(lib.path)}: descriptor ABI {lib.abi}, "
                                       f"runtime/dynrt.h has {want_abi}")
            if lib.device != dev:
                res["problems"].append(f"{lib.path}: descriptor device {lib.device}, want {dev}")
        if cpu.inputs != gpu.inputs or cpu.outputs != gpu.outputs:
            res["problems"].append(f"the libraries' signatures differ: cpu {cpu.inputs} -> "
                                   f"{cpu.outputs}, cuda {gpu.inputs} -> {gpu.outputs}")
        if res["problems"]:
            return save()
        cpu.create(weights, num_threads=a.threads, device=DEVICE_CPU)
        t0 = time.perf_counter()
        gpu.create(weights, num_threads=a.threads, device=gdev)
        res["cuda_create_ms"] = (time.perf_counter() - t0) * 1e3
        fn = {"moe": child_moe, "early_exit": child_early_exit,
              "early_exit_batch": child_early_exit_batch, "skim": child_skim}[kind]
        bench_inputs, eager = fn(a, name, a.models, cpu, gpu, res)
        res["cuda_first_ms"] = gpu.first_ms
        save()
        if bench_inputs is None:
            return
        # timing
        rc, rg = cpu.runner(bench_inputs[0]), gpu.runner(bench_inputs[1])
        res["cpu_ms"] = median_ms(rc, a.warmup, a.runs)
        res["cuda_ms"] = median_ms(rg, a.warmup, a.runs)
        save()
        try:
            import torch
            if a.fake_gpu:
                res["gpu_name"] = "none (--fake-gpu: the host library twice, eager on the CPU)"
            if not a.fake_gpu and not torch.cuda.is_available():
                res["eager_note"] = "n/a: torch.cuda.is_available() is False"
            else:
                if not a.fake_gpu:
                    res["gpu_name"] = torch.cuda.get_device_name(0)
                go, note = eager()
                res["eager_note"] = note
                if go is not None:
                    res["eager_ms"] = median_ms(go, a.warmup, a.runs)
        except Exception as e:  # noqa: BLE001 (the eager side is optional)
            res["eager_note"] = f"n/a: {type(e).__name__}: {str(e)[:200]}"
        save()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        res["problems"].append(f"{type(e).__name__}: {e}")
        save()


# ---------------------------------------------------------------------------
# The parent


def probe(a, so):
    """Runs dynrt_cuda_available of library `so` in a child: (ok, message)."""
    code = ("import ctypes, json, sys\nsys.path.insert(0, sys.argv[2])\n"
            "from dynrt_ctypes import cuda_available\n"
            "print(json.dumps(cuda_available(ctypes.CDLL(sys.argv[1]))))")
    rc, out, _ = run_cmd([sys.executable, "-c", code, so, os.path.dirname(dynrt_ctypes.__file__)],
                         120, child_env(a.work))
    if rc != 0:
        return False, f"probing the CUDA driver failed (exit status {rc}): {first_error(out)}"
    try:
        ok, msg = json.loads(out.strip().splitlines()[-1])
        return ok, msg
    except (ValueError, IndexError):
        return False, f"unexpected probe output: {out[-300:]}"


def gpu_name():
    if shutil.which("nvidia-smi"):
        rc, out, _ = run_cmd(["nvidia-smi", "--query-gpu=name,driver_version",
                              "--format=csv,noheader"], 30)
        if rc == 0 and out.strip():
            return out.strip().splitlines()[0].replace(", ", ", driver ")
    return None


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def bundle_runtime_deps(work, libs):
    """Copies the shared libraries the model libraries need beyond the C/C++
    base (libfmt) into WORK/lib, for a machine that lacks them."""
    base = ("linux-vdso", "libc.so", "libm.so", "libgcc_s", "libstdc++", "ld-linux",
            "libdl.so", "libpthread", "librt.so")
    dst = os.path.join(work, "lib")
    copied = set()
    for so in libs:
        rc, out, _ = run_cmd(["ldd", so], 30)
        if rc:
            continue
        for line in out.splitlines():
            m = re.match(r"\s*(\S+) => (/\S+)", line)
            if not m or any(m.group(1).startswith(b) for b in base):
                continue
            os.makedirs(dst, exist_ok=True)
            target = os.path.join(dst, m.group(1))
            if m.group(1) not in copied:
                shutil.copy2(os.path.realpath(m.group(2)), target)
                copied.add(m.group(1))
    return sorted(copied)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n".join(__doc__.split("\n")[1:]))
    ap.add_argument("--dyncc", help="the dyncc binary (not with --prebuilt)")
    ap.add_argument("--work", required=True, help="work directory: cpu/, cuda/, results/")
    ap.add_argument("--models", help="where the generated models go (default WORK/models)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated, of {', '.join(WORKLOADS)}")
    ap.add_argument("--compile-only", action="store_true",
                    help="generate and compile both targets, then stop (bundles the libraries' "
                         "runtime dependencies into WORK/lib and writes WORK/manifest.json)")
    ap.add_argument("--prebuilt", action="store_true",
                    help="do not compile: use the libraries in WORK/cpu and WORK/cuda")
    ap.add_argument("--runs", type=int, default=20, help="timed runs per side")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0,
                    help="the CPU library's threads (0: one per core)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2,
                    help="parallel generators / compilations")
    ap.add_argument("--near-tie", type=float, default=NEAR_TIE,
                    help="a differing decision whose reference margin is below this is a warning")
    ap.add_argument("--reuse", action="store_true",
                    help="do not regenerate a model whose files are in --models already")
    ap.add_argument("--child-timeout", type=int, default=240,
                    help="seconds for one workload's comparison and timing")
    ap.add_argument("--budget", type=int, default=0,
                    help="seconds for the whole run (0: no limit): a workload that cannot get "
                         "30 s more is skipped, so that the table still comes out")
    ap.add_argument("--require-gpu", action="store_true",
                    help="no usable GPU is a failure (exit status 1), not a skip")
    ap.add_argument("--md", help="also write the markdown table to this file")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    # Tests this script without a GPU: the "cuda" side is the host library
    # again, PyTorch eager runs on the CPU.
    ap.add_argument("--fake-gpu", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    a.models = os.path.abspath(a.models or os.path.join(a.work, "models"))
    if a.child:
        run_child(a)
        return 0
    names = [w for w in a.workloads.split(",") if w]
    bad = [w for w in names if w not in WORKLOADS]
    if bad:
        ap.error(f"unknown workloads {bad}; known: {', '.join(WORKLOADS)}")
    if not a.prebuilt and not a.dyncc:
        ap.error("--dyncc is required (or --prebuilt)")
    if a.prebuilt and a.compile_only:
        ap.error("--prebuilt and --compile-only exclude each other")
    os.makedirs(a.models, exist_ok=True)
    os.makedirs(os.path.join(a.work, "results"), exist_ok=True)
    t_start = time.time()
    failed = False
    try:
        import torch
        tinfo = f"torch {torch.__version__}"
    except Exception:  # noqa: BLE001
        tinfo = "no torch"
    log(f"gpu_check: {sys.executable} ({platform.python_version()}, {tinfo}); work {a.work}; "
        f"{'prebuilt libraries' if a.prebuilt else 'dyncc ' + a.dyncc}")

    manifest_path = os.path.join(a.work, "manifest.json")
    manifest = {}
    if a.prebuilt:
        try:
            with open(manifest_path) as f:
                manifest = json.load(f)
            log(f"prebuilt: libraries made {manifest.get('created', '?')} on "
                f"{manifest.get('host', '?')} by {manifest.get('dyncc', '?')}")
        except (OSError, ValueError) as e:
            log(f"prebuilt: no usable {manifest_path} ({e}); using what WORK/cpu and WORK/cuda hold")

    # -- 1. generate: dyncc.export needs torch-mlir (the project's .venv); the
    # prebuilt mode writes only the weights and the data (no torch-mlir)
    venv = os.path.join(ROOT, ".venv", "bin", "python")
    gen_python = sys.executable if a.prebuilt or not os.path.exists(venv) else venv
    gen_exts = (".safetensors", ".x.npy", ".expected.npz") + (() if a.prebuilt else (".mlir",))
    log(f"generating with {gen_python}" + (" (--weights-only)" if a.prebuilt else ""))

    def generate(n):
        kind, script, opts, _ = WORKLOADS[n]
        if a.reuse and all(os.path.exists(os.path.join(a.models, n + ext)) for ext in gen_exts):
            return n, 0, "", 0.0
        argv = [gen_python, os.path.join(ROOT, script)] + opts + \
            ["--out-dir", a.models, "--name", n] + (["--weights-only"] if a.prebuilt else [])
        limit = 600 if not a.budget else max(30, int(t_start + a.budget - time.time()))
        rc, out, sec = run_cmd(argv, limit, child_env(a.work))
        return n, rc, out, sec
    gen_ok = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(a.jobs, len(names)))) as ex:
        for n, rc, out, sec in ex.map(generate, names):
            gen_ok[n] = rc == 0
            if rc:
                failed = True
                log(f"generate {n}: FAILED ({sec:.0f} s): {first_error(out)}")
                log(out[-2000:])
            else:
                log(f"generate {n}: {sec:.1f} s")
    # what the libraries are checked on: a prebuilt run compares its regenerated
    # files with those the libraries were prepared with (manifest.json)
    data_sha = {n: {ext: sha256(os.path.join(a.models, n + ext))
                    for ext in (".safetensors", ".x.npy")} for n in names if gen_ok[n]}
    mlir_sha = {n: sha256(os.path.join(a.models, n + ".mlir")) for n in names
                if gen_ok[n] and not a.prebuilt}

    # -- 2. compile
    compiled = {}   # (name, sub) -> None or error
    if a.prebuilt:
        for n in names:
            m = manifest.get("workloads", {}).get(n, {})
            differ = [ext for ext, h in data_sha.get(n, {}).items()
                      if m.get("data_sha256", {}).get(ext) not in (None, h)]
            if differ:
                files = " and ".join(n + ext for ext in differ)
                log(f"prebuilt {n}: WARNING: the regenerated {files} "
                    f"differ{'s' if len(differ) == 1 else ''} from what the libraries were "
                    "prepared with (another torch/numpy here?); the check goes on with the "
                    "libraries' own shapes and runtime parameters")
            if m.get("generator") and m["generator"] != [WORKLOADS[n][1]] + WORKLOADS[n][2]:
                log(f"prebuilt {n}: WARNING: prepared with {' '.join(m['generator'])}, this "
                    f"script generates {' '.join([WORKLOADS[n][1]] + WORKLOADS[n][2])} (run "
                    "--prepare again)")
            if m and m.get("compile_options", []) != COMPILE_OPTS.get(n, []):
                log(f"prebuilt {n}: WARNING: compiled with {m.get('compile_options', [])}, this "
                    f"script compiles it with {COMPILE_OPTS.get(n, [])} (run --prepare again)")
            for sub, _ in TARGETS:
                so = lib_path(a.work, sub, n)
                compiled[(n, sub)] = None if os.path.exists(so) else (
                    m.get("compile", {}).get(sub, {}).get("error") or f"{so} is missing")
    else:
        def comp(job):
            n, sub, target = job
            out_base = os.path.join(a.work, sub, n)
            rc, out, sec = run_cmd([a.dyncc, "compile", os.path.join(a.models, n + ".mlir"),
                                    "--shared", f"--target={target}", "-o", out_base]
                                   + COMPILE_OPTS.get(n, []), 900)
            return n, sub, target, rc, out, sec
        jobs = [(n, sub, t) for n in names if gen_ok[n] for sub, t in TARGETS]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(a.jobs, len(jobs) or 1))) as ex:
            for n, sub, target, rc, out, sec in ex.map(comp, jobs):
                if rc == 0 and not os.path.exists(lib_path(a.work, sub, n)):
                    rc, out = 1, f"dyncc exited 0 but wrote no {lib_path(a.work, sub, n)}"
                compiled[(n, sub)] = None if rc == 0 else first_error(out)
                what = " ".join([f"--target={target}"] + COMPILE_OPTS.get(n, []))
                if rc:
                    failed = True
                    log(f"compile {n} {what}: FAILED ({sec:.1f} s): {first_error(out)}")
                else:
                    size = os.path.getsize(lib_path(a.work, sub, n)) / 1e6
                    log(f"compile {n} {what}: {sec:.1f} s, {size:.1f} MB")
        manifest = dict(
            created=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            host=f"{platform.node()} ({cpu_name()})", dyncc=os.path.abspath(a.dyncc),
            workloads={n: dict(generator=[WORKLOADS[n][1]] + WORKLOADS[n][2],
                               mlir_sha256=mlir_sha.get(n),
                               data_sha256=data_sha.get(n, {}),
                               compile_options=COMPILE_OPTS.get(n, []),
                               compile={sub: dict(target=t, ok=compiled.get((n, sub), "") is None,
                                                  error=compiled.get((n, sub)))
                                        for sub, t in TARGETS})
                       for n in names})
        if a.compile_only:
            libs = [lib_path(a.work, sub, n) for (n, sub), e in compiled.items() if e is None]
            deps = bundle_runtime_deps(a.work, libs)
            manifest["bundled"] = deps
            if deps:
                log(f"bundled into {a.work}/lib: {', '.join(deps)}")
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=1)

    n_ok = sum(1 for e in compiled.values() if e is None)
    log(f"compiled: {n_ok}/{len(compiled)} libraries "
        f"({sum(1 for (n, s), e in compiled.items() if s == 'cuda' and e is None)} for cuda)")
    if a.compile_only:
        log(f"compile-only: done in {time.time() - t_start:.0f} s"
            + ("" if not failed else " -- FAILED"))
        return 1 if failed else 0

    # -- 3. the GPU
    probe_so = next((lib_path(a.work, sub, n) for sub in ("cuda", "cpu") for n in names
                     if compiled.get((n, sub), "x") is None), None)
    if a.fake_gpu:
        ok, why = True, ""
    elif probe_so is None:
        ok, why = False, "no library compiled, so no runtime to ask dynrt_cuda_available"
    else:
        ok, why = probe(a, probe_so)
    if not ok:
        log(f"skipped: no GPU ({why})")
        smi = gpu_name()
        if smi:
            log(f"WARNING: nvidia-smi lists a GPU ({smi}), but the runtime cannot use it")
        if a.require_gpu:
            failed = True
            log("FAILED: --require-gpu")
        elif failed:
            log("FAILED: see the generate/compile lines above")
        return 1 if failed else 0
    if a.fake_gpu:
        log("--fake-gpu: the host libraries stand in for the cuda ones, PyTorch eager runs on the CPU")
    else:
        log(f"dynrt_cuda_available: yes ({os.path.basename(probe_so)})")

    # -- 4. per workload, in a child
    results = {}
    for n in names:
        if not gen_ok[n]:
            continue
        errs = {sub: compiled.get((n, sub)) for sub, _ in TARGETS
                if not (a.fake_gpu and sub == "cuda")}
        if any(e is not None for e in errs.values()):
            results[n] = dict(workload=n, problems=[f"not compiled: {errs}"], warnings=[])
            continue
        rpath = os.path.join(a.work, "results", n + ".json")
        if os.path.exists(rpath):
            os.remove(rpath)
        argv = [sys.executable, os.path.abspath(__file__), "--child", n, "--work", a.work,
                "--models", a.models, "--runs", str(a.runs), "--warmup", str(a.warmup),
                "--threads", str(a.threads), "--near-tie", str(a.near_tie)] + \
            (["--fake-gpu"] if a.fake_gpu else [])
        timeout = a.child_timeout
        if a.budget:
            timeout = min(timeout, int(t_start + a.budget - time.time()))
            if timeout < 30:
                results[n] = dict(workload=n, problems=[], warnings=[], skipped=True,
                                  decisions="not run: out of time (--budget)")
                log(f"{n}: not run, {max(0, timeout)} s left of --budget {a.budget}")
                failed = True
                continue
        rc, out, sec = run_cmd(argv, timeout, child_env(a.work))
        try:
            with open(rpath) as f:
                r = json.load(f)
        except (OSError, ValueError):
            r = dict(workload=n, problems=[], warnings=[])
        if rc != 0:
            why = (f"killed by signal {-rc}" if rc < 0 else
                   f"timed out after {timeout} s" if rc == 124 else f"exit status {rc}")
            r.setdefault("problems", []).append(f"the check process died ({why}): {first_error(out)}")
            log(out[-3000:])
        results[n] = r
        status = "FAILED" if r.get("problems") else "ok"
        log(f"{n}: {status} in {sec:.0f} s; {r.get('decisions', '')}; max diff "
            f"{r.get('max_diff')}; {r.get('detail', '')}")
        for p in r.get("problems", [])[:20]:
            log(f"  problem: {p}")
        for w in r.get("warnings", [])[:10]:
            log(f"  warning: {w}")
        if r.get("problems"):
            failed = True

    # -- 5. the table
    gname = next((r["gpu_name"] for r in results.values() if r.get("gpu_name")), None)
    smi = gpu_name()
    gpu_text = smi or gname or "unknown GPU"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    threads = a.threads or os.cpu_count()

    def ms(v):
        return "n/a" if v is None else (f"{v:.3f}" if v < 1 else f"{v:.2f}")

    def ratio(x, y):
        return "n/a" if x is None or y is None or y <= 0 else f"{x / y:.2f}x"
    lines = [f"## dyncc GPU check ({date}, {gpu_text}; CPU {cpu_name()}, {threads} threads)", "",
             "Each workload compiled twice by dyncc (`--target=host`, `--target=cuda`), run on the "
             "same inputs; decisions compared exactly, outputs to 1e-3 (max |cuda - cpu| / "
             f"max(1, |cpu|)). Median of {a.runs} runs (fewer, at least 3, where they would take over "
             f"15 s) after {a.warmup} warm-ups, ms; \"CUDA first\": "
             "the first run of the CUDA model in its process (PTX JIT, module load). PyTorch "
             "eager on the GPU: float32, no_grad, synchronized after each run.", "",
             "| workload | check | decisions (CUDA = CPU) | max diff | CPU lib | CUDA lib | "
             "CUDA first | PyTorch eager CUDA | CPU / CUDA lib | eager / CUDA lib |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    notes = []
    for n in names:
        r = results.get(n)
        if r is None:
            lines.append(f"| {WORKLOADS[n][3]} | not generated | | | | | | | | |")
            continue
        chk = ("not run" if r.get("skipped") else "FAILED" if r.get("problems") else
               "ok, warnings" if r.get("warnings") else "ok")
        md = r.get("max_diff")
        lines.append(f"| {WORKLOADS[n][3]} | {chk} | {r.get('decisions', '')} | "
                     f"{'n/a' if md is None else f'{md:.2g}'} | {ms(r.get('cpu_ms'))} | "
                     f"{ms(r.get('cuda_ms'))} | {ms(r.get('cuda_first_ms'))} | "
                     f"{ms(r.get('eager_ms'))} | {ratio(r.get('cpu_ms'), r.get('cuda_ms'))} | "
                     f"{ratio(r.get('eager_ms'), r.get('cuda_ms'))} |")
        if r.get("detail") or r.get("eager_note"):
            create = (f"; CUDA model created in {r['cuda_create_ms']:.0f} ms"
                      if r.get("cuda_create_ms") is not None else "")
            notes.append(f"- {n}: {r.get('detail', '')}{create}; {r.get('eager_note', '')}")
        for p in r.get("problems", [])[:3]:
            notes.append(f"- {n}: problem: {p}")
    text = "\n".join(lines + ([""] + notes if notes else []))
    log("")
    log(text)
    for path in filter(None, (a.md, os.path.join(a.work, "gpu-check.md"))):
        with open(path, "w") as f:
            f.write(text + "\n")
    log("")
    log(f"gpu_check: {'FAILED' if failed else 'passed'} in {time.time() - t_start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
