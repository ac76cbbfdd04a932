#!/usr/bin/env python3
"""W1 of WORKLOADS.md: one mixture-of-experts layer compiled by dyncc next to
its PyTorch 2.x peers (the layer written the Hugging Face Switch / Mixtral
way, eager and under torch.compile), in one process, interleaved. Prints a
markdown table.

The layer: T=512 tokens, d=512, E=8 GELU FFN experts (d_ff=2048), a linear
gate (gate.w, gate.b) inside the model, capacity factor 1.25, for top-1
(Switch: `dyn.route switch`) and top-2 (`dyn.route top_k`, k = 2, the GShard
capacity rule: choice-rank-major, token order). x -> y, no residual. The layer
is a PyTorch module with dyncc.nn.MoE (examples/moe/model.py build_model,
exported with dyncc.export); the eager layer is model.EagerMoE with the same
weights (softmax, topk, a loop over the experts with index_select /
index_add_), float32, no_grad. The third side is torch.compile (inductor,
default mode) of model.DenseDispatchMoE with the same weights: the same
layer with static shapes as the GShard / Switch reference code writes it
(cumsum capacity positions, one-hot dispatch and combine tensors [T, E, C],
einsum, batched expert matmuls over [E, C, d]; its y is checked against
EagerMoE's), which dynamo captures whole; torch.compile of EagerMoE itself
would be eager (dynamo gives up on its forward: the data-dependent
torch.where breaks the graph inside the loop over the experts). It is
warmed up before timing (its warm-up, i.e. compile, time is printed below
the table; a module that fails to compile is reported in its cell and the
other sides are timed without it). What dynamo made of the module is
printed too (frames compiled, graph breaks); its cell says "forward not
compiled" where dynamo gave up on the forward and ran it eagerly. The
dense-dispatch module run eagerly is timed too (a note, not a column).

Also timed, to split dyncc's layer time: a compiled model that is only the
experts, batched over E on the [E, C, d] dispatch buffer (torch.bmm +
GELU + torch.bmm, model.build_ffn_only, exported with dyncc.export), i.e.
the expert GEMMs the layer runs. "outside the expert GEMMs" = (layer - experts alone) / layer:
the gate GEMM, routing, dispatch and combine (W1's target: <= 10%).

FLOP counts (2 per multiply-add, both FFN GEMMs): useful = 4 (T K - dropped)
d d_ff (the (token, expert) pairs kept; what the eager layer computes);
computed = what dyncc's expert GEMMs run: `dyncc compile --stats` prints each
GEMM's schedule, and where it skips the row tiles no token occupies ("empty
row tiles of R skipped"), an expert with n kept pairs costs the tiles of R
rows that hold one of its first n rows (the rows it fills), else all E C rows
(computed_flops). The experts-alone model computes all E C rows.

Timing (as bench/k1_torch.py): rounds of one block of runs per side, the
order of the sides rotating; a pause before each block outlasts the other
sides' spinning thread pools (PyTorch's OpenMP, Halide); the first run of a
block is untimed. Medians over all timed runs; each speed-up (dyncc against
eager, dyncc against torch.compile) is also given per round (median of the
per-round ratios, min..max). Every side runs with --threads threads (2):
torch.set_num_threads, dynrt's num_threads.

The probed peak (WORKLOADS.md, "Peers"; bench_util.probe_peak): the best
GFLOP/s of torch.matmul fp32 on 1024^3 and 2048^3 and bf16 on 2048^3 in this
process at the same thread count, printed above the table; the expert GEMMs'
GFLOP/s are also given as a share of the fp32 peak.

  w1_bench.py --dyncc build/tools/dyncc/dyncc [--work DIR] [--rounds 5] [--runs 10]
              [--no-compile]

The bench runs in the project's Python environment (.venv: PyPI PyTorch 2.x
with MKL / oneDNN, what users run; bench/run-w1.sh); the modules it builds
are exported by examples/moe/model.py in a child process of that
environment (--python, default: this interpreter), its weights passed as an
.npz.

Checks before timing: the compiled layer's y against the dyncc.nn module run
eagerly (its decisions: dropped pairs) and against the eager layer; a wrong
answer exits 1. torch.compile's y against the eager layer's: a compiled peer
that disagrees is reported and not timed. If dyncc cannot compile the layer
(dyn.route not lowered yet), that row reports the error and the PyTorch
sides alone.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "moe"))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import (OtherLoad, record_target, add_peer_arguments, smoke_test, cpu_name, interleaved, timed, close,  # noqa: E402
                        probe_peak, fma_note, fma_needed, fma_peak)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import model as moe_model  # noqa: E402
from model import DenseDispatchMoE, EagerMoE  # noqa: E402

import dynrt_ctypes  # noqa: E402


# Runs a compiled model once on zero inputs in a child process, so that a
# library that crashes (a runtime without dyn.route's builtin, say) is
# reported instead of killing the benchmark.
SMOKE = r"""
import sys
import numpy as np
so, name, weights, where = sys.argv[1:5]
sys.path.insert(0, where)
from dynrt_ctypes import Library
L = Library(so, name)
try:
    L.create(weights)
    L.run([np.zeros(shape, dt) for _, dt, shape in L.inputs],
          [np.zeros(shape, dt) for _, dt, shape in L.outputs])
except RuntimeError as e:
    sys.exit(str(e))
"""


class Compiled:
    """A model compiled by dyncc --shared, loaded through ctypes."""

    def __init__(self, dyncc, mlir, work, name, weights, threads, flags=()):
        out = os.path.join(work, "lib", name)
        p = subprocess.run([dyncc, "compile", mlir, "-o", out, "--shared", "--stats", *flags],
                           capture_output=True, text=True)
        if p.returncode:
            err = (p.stderr or p.stdout).strip().splitlines()
            raise RuntimeError(err[0] if err else f"dyncc exited with {p.returncode}")
        self.stats = p.stdout
        so = os.path.join(work, "lib", f"lib{name}.so")
        smoke_test(SMOKE, so, name, weights, os.path.dirname(dynrt_ctypes.__file__))
        self.lib = dynrt_ctypes.Library(so, name)
        self.lib.create(weights, num_threads=threads)

    def bind(self, inputs, outputs):
        """A function that runs the model on these arrays."""
        return self.lib.runner(inputs, outputs)





def tile_rows(filled, M, R):
    """Rows a GEMM computes for an expert whose first `filled` of M rows are
    occupied, in tiles of R (the last tile shifted inwards to end at M, as
    codegen/GemmKernel.cpp cuts them): R per tile that starts below `filled`."""
    return sum(R for t in range(-(-M // R)) if min(t * R, M - R) < filled)


def computed_flops(stats, tokens_per_expert, E, M):
    """FLOPs of the [E, M, ...] expert GEMMs listed by dyncc compile --stats
    (lines "gemm <kernel>: bE mM nN kK: <schedule>"), counting the row tiles
    they skip; None when the stats list none."""
    total, found = 0.0, False
    for line in stats.splitlines():
        m = re.match(r"gemm \S+: b(\d+) m(\d+) n(\d+) k(\d+)\b.*?"
                     r"(?:empty row tiles of (\d+) skipped)?$", line)
        if not m or int(m.group(1)) != E or int(m.group(2)) != M:
            continue
        N, K, R = int(m.group(3)), int(m.group(4)), m.group(5)
        rows = (sum(tile_rows(int(c), M, int(R)) for c in tokens_per_expert) if R
                else E * M)
        total += 2.0 * N * K * rows
        found = True
    return total if found else None


def export(a, work, name, argv):
    """examples/moe/model.py ARGV in the project's Python environment: writes
    work/name.mlir and .safetensors; returns their paths."""
    cmd = [a.python, os.path.join(ROOT, "examples", "moe", "model.py"), *argv,
           "--out-dir", work, "--name", name]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stdout}{p.stderr}")
    base = os.path.join(work, name)
    return base + ".mlir", base + ".safetensors"


def bench_variant(a, label, strategy, work):
    """Returns a dict of the row's numbers."""
    name = "w1_" + strategy["strategy"]
    size = dict(capacity_factor=a.capacity_factor, tokens=a.tokens, dim=a.dim, ffn=a.ffn,
                experts=a.experts, skew=0.0, logits_output=False)
    module, (xt,) = moe_model.build_model(**size, **strategy)
    state = os.path.join(work, name + ".state.npz")
    np.savez(state, **{k: v.detach().numpy() for k, v in module.state_dict().items()})
    argv = ["--load-state", state]
    for k, v in dict(size, **strategy).items():
        if k != "logits_output":
            argv += [f"--{k.replace('_', '-')}", str(v)]
    argv.append("--no-logits-output")
    mlir, weights = export(a, work, name, argv)
    cfg = module.moe.cfg
    T, D, Fd, E, K = a.tokens, a.dim, a.ffn, a.experts, cfg.per_token
    C = cfg.capacity(T)
    rows = moe_model.capacity_rows(module)
    x = np.ascontiguousarray(xt.numpy())
    (y_ref,), r = moe_model.run_eager(module, (xt,))
    dropped = int(r.dropped)
    row = dict(label=label, C=C, rows=rows, dropped=dropped, K=K,
               all_rows=4.0 * rows * D * Fd, useful=4.0 * (T * K - dropped) * D * Fd)

    # the eager layer
    tensors = moe_model.weights_dict(module)
    eager = EagerMoE(tensors, top_k=K, capacity_factor=cfg.capacity_factor).float().eval()
    with torch.no_grad():
        y_eager = eager(xt).numpy()
    row["eager_err"] = close(y_eager, y_ref)

    sides = {}
    with torch.no_grad():
        sides["eager"] = lambda: eager(xt)

    # the same layer with static shapes (dense one-hot dispatch / combine):
    # torch.compile's peer, also timed eagerly (a note)
    dense = DenseDispatchMoE(tensors, top_k=K, capacity_factor=cfg.capacity_factor).float().eval()
    with torch.no_grad():
        y_dense = dense(xt).numpy()
    row["dense_err"] = close(y_dense, y_ref)
    row["dense_vs_eager"] = close(y_dense, y_eager)
    if row["dense_vs_eager"] <= 1e-4:
        with torch.no_grad():
            sides["dense_eager"] = lambda: dense(xt)

    # torch.compile of the dense-dispatch module (inductor, default mode):
    # one graph, static shapes, compiled in the first call. Warm-up: that
    # first call and two more; then the warm-up runs of every side below.
    if a.compile:
        try:
            torch._dynamo.reset()
            counters = torch._dynamo.utils.counters
            counters.clear()
            compiled = torch.compile(dense)
            t0 = time.perf_counter()
            with torch.no_grad():
                y_compile = compiled(xt).numpy()
                row["compile_first"] = time.perf_counter() - t0
                timed(lambda: compiled(xt), 2)
            row["compile_warmup"] = time.perf_counter() - t0
            # what dynamo made of it: frames compiled, graph breaks (their
            # first lines), whether it gave up on forward (runs eagerly)
            frames = counters["frames"]
            breaks = sorted({k.strip().splitlines()[0] for k in counters["unimplemented"]})
            row["compile_note"] = (f"dynamo compiled {frames.get('ok', 0)} of "
                                   f"{frames.get('total', 0)} frames"
                                   + (f"; graph breaks: {'; '.join(breaks)}" if breaks else "")
                                   + ("; inductor's on-disk FX graph cache hit (not a cold "
                                      "compile)" if counters["inductor"].get("fxgraph_cache_hit")
                                      else ""))
            row["compile_skipped"] = (any("frame skipped: forward" in k
                                          for k in counters["unimplemented"])
                                      or not frames.get("ok", 0))
            row["compile_err"] = close(y_compile, y_ref)
            row["compile_vs_eager"] = close(y_compile, y_eager)
            if row["compile_vs_eager"] > 1e-4:
                row["compile_error"] = (f"disagrees with eager (max error "
                                        f"{row['compile_vs_eager']:.1g}), not timed")
            else:
                with torch.no_grad():
                    sides["compile"] = lambda: compiled(xt)
        except Exception as e:  # noqa: BLE001 (any failure of the peer is reported)
            lines = str(e).strip().splitlines()
            row["compile_error"] = "failed: " + (lines[0] if lines else type(e).__name__)
    else:
        row["compile_error"] = "not run (--no-compile)"

    # the compiled layer
    try:
        layer = Compiled(a.dyncc, mlir, work, name, weights, a.threads)
        y = np.full((T, D), np.nan, np.float32)
        sides["dyncc"] = layer.bind([x], [y])
        sides["dyncc"]()
        row["dyncc_err"] = close(y, y_ref)
        if (cfg.groups or 1) <= 1:  # one block of rows per expert (see computed_flops)
            computed = computed_flops(layer.stats, r.tokens_per_expert, E, rows // E)
            if computed is not None:
                row["computed"] = computed
        row["dyncc_vs_eager"] = close(y, y_eager)
    except RuntimeError as e:
        row["dyncc_error"] = str(e)

    # the layer in bf16 (--precision=bf16: the experts' GEMMs; the gate, 8
    # columns, stays fp32), against the fp32 reference
    if a.bf16:
        try:
            layer16 = Compiled(a.dyncc, mlir, work, name + "_bf16", weights, a.threads,
                               ["--precision=bf16"])
            y16 = np.full((T, D), np.nan, np.float32)
            sides["dyncc_bf16"] = layer16.bind([x], [y16])
            sides["dyncc_bf16"]()
            row["bf16_err"] = close(y16, y_ref)
        except RuntimeError as e:
            row["bf16_error"] = str(e)

    # the experts alone on the [E, G*C, d] dispatch buffer
    fname = name + "_experts"
    _, (buf_t,) = moe_model.build_ffn_only(module, rows // E)
    fmlir, fweights = export(a, work, fname, argv + ["--ffn-only", "--rows", str(rows // E)])
    try:
        ffn = Compiled(a.dyncc, fmlir, work, fname, fweights, a.threads)
        buf = np.ascontiguousarray(buf_t.numpy())
        out = np.full((E, rows // E, D), np.nan, np.float32)
        sides["experts"] = ffn.bind([buf], [out])
        sides["experts"]()
        row["experts_stats"] = ffn.stats
        # check one expert's rows against torch
        w = {k: torch.from_numpy(np.asarray(v)) for k, v in tensors.items()}
        ref = torch.nn.functional.gelu(torch.from_numpy(buf[1]).double() @ w["experts.w1"][1].double()
                                       + w["experts.b1"][1].double()) @ w["experts.w2"][1].double() \
            + w["experts.b2"][1].double()
        row["experts_err"] = close(out[1], ref.numpy())
    except RuntimeError as e:
        row["experts_error"] = str(e)

    # interleaved timing
    names = list(sides)
    for fn in sides.values():
        with torch.no_grad():
            timed(fn, a.warmup)

    def block(n, count):
        with torch.no_grad():
            return timed(sides[n], count)
    with OtherLoad() as load:
        times, per_round = interleaved(names, block, a.rounds, a.runs, a.pause)
    for peer in ("eager", "compile"):
        row["ratios_" + peer] = [med[peer] / med["dyncc"] for med in per_round
                                 if "dyncc" in med and peer in med]
    row["others"] = load.others
    for n in names:
        row[n] = statistics.median(times[n])
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_peer_arguments(ap, rounds=5, runs=10, onnx=False)
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--ffn", type=int, default=2048)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--capacity-factor", type=float, default=1.25)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="top1,top2")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="also time the layer compiled with --precision=bf16 (a note per "
                    "variant)")
    ap.add_argument("--peak-runs", type=int, default=5,
                    help="timed runs per size of the probed peak (best of)")
    ap.add_argument("--python", default=os.environ.get("DYNCC_VENV_PYTHON", sys.executable),
                    help="the Python environment that exports the models (torch-mlir; "
                         "default: this one)")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    peak = probe_peak(a.threads, a.peak_runs)
    work = a.work or tempfile.mkdtemp(prefix="w1_")
    os.makedirs(work, exist_ok=True)
    variants = {"top1": ("top-1 (`switch`)", dict(strategy="switch")),
                "top2": ("top-2 (`top_k`, k = 2)", dict(strategy="top_k", k=2))}
    rows = []
    try:
        for v in a.variants.split(","):
            label, opts = variants[v]
            rows.append(bench_variant(a, label, opts, work))
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)

    cpu = cpu_name() or "unknown CPU"
    bf16 = f"{peak['bf16']:.0f}" if peak["bf16"] is not None else "None (no bf16 matmul)"
    print(f"## W1: MoE layer ({time.strftime('%Y-%m-%d', time.gmtime())}, {cpu}, "
          f"{a.threads} threads)")
    print()
    print(f"CPU: {cpu}, probed peak fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {bf16} GFLOP/s "
          f"(torch.matmul, {a.threads} threads)")
    print()
    print(f"T={a.tokens} tokens, d={a.dim}, E={a.experts} GELU FFN experts (d_ff={a.ffn}), a linear "
          f"gate inside the model, capacity factor {a.capacity_factor}; dyncc `dyn.route` against "
          f"PyTorch {torch.__version__} (MKL {torch.backends.mkl.is_available()}, oneDNN "
          f"{torch.backends.mkldnn.is_available()}) running the Hugging Face-style layer (softmax, "
          "topk, loop over experts with index_select / index_add_) eager, and `torch.compile` "
          "(inductor, default mode) of the dense-dispatch layer, in one process, interleaved; "
          "median of "
          f"{a.rounds} rounds x {a.runs} runs, ms; OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}. The torch.compile column compiles the "
          "same layer written with static shapes (GShard / Switch reference style: cumsum "
          "capacity, one-hot dispatch and combine [T, E, C], einsum, batched expert matmuls on "
          "all E·C rows), which dynamo captures whole; the Hugging Face-style module does not "
          "compile (a data-dependent torch.where in its loop over the experts). Speed-ups: the "
          "peer's time / dyncc's (overall medians; per round: median, min..max). \"experts "
          "alone\": a compiled model that is only the batched expert FFN on the [E, C, d] "
          "dispatch buffer (all E·C rows); \"outside\" = (layer - experts alone x computed / "
          "(E·C rows' FLOPs)) / layer, an estimate: gate, routing, dispatch and combine (target "
          "<= 10%). GFLOP/s count both FFN GEMMs: on all E·C buffer rows for the experts alone "
          "(also as a share of the probed fp32 peak), on the kept (token, expert) pairs (useful) "
          "for the layers. \"computed / useful\": the FLOPs dyncc's expert GEMMs run (the row "
          "tiles no token occupies are skipped; from `dyncc compile --stats`) over the useful "
          "ones. Targets (issue 16): >= 2x eager, >= 1.5x torch.compile, computed <= 1.05x "
          "useful.")
    print()
    print("| | dyncc (ms) | PyTorch eager (ms) | torch.compile (ms) | dyncc vs eager, per round "
          "| dyncc vs torch.compile, per round | experts alone (ms) | outside the expert GEMMs "
          "| expert GEMMs GFLOP/s (E·C rows) | % of fp32 peak | computed / useful "
          "| useful GFLOP/s dyncc / eager / compile | C, dropped "
          "| max error vs reference (dyncc / eager / compile) | other load (cores) |")
    print("|---|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---|---|---|---:|")
    bad = False
    fma = fma_peak(a.threads, a.dyncc)
    for r in rows:
        ms = lambda k: f"{r[k] * 1e3:.2f}" if k in r else "n/a"  # noqa: E731
        gfs = lambda k: f"{r['useful'] / r[k] / 1e9:.0f}" if k in r else "n/a"  # noqa: E731

        def speedup(peer):
            ratios = r["ratios_" + peer]
            if "dyncc" not in r or peer not in r or not ratios:
                return "n/a"
            return (f"{r[peer] / r['dyncc']:.2f}x ({statistics.median(ratios):.2f}, "
                    f"{min(ratios):.2f}..{max(ratios):.2f})")
        compile_ms = ms("compile") if "compile" in r else r.get("compile_error", "n/a")
        if r.get("compile_skipped"):
            compile_ms += " (forward not compiled)"
        errs = [f"{r['dyncc_err']:.1g}" if "dyncc_err" in r else "n/a", f"{r['eager_err']:.1g}",
                f"{r['compile_err']:.1g}" if "compile_err" in r else "n/a"]
        if r.get("dyncc_err", 0) > 1e-4:
            bad = True
            errs[0] += " WRONG"
        if r.get("compile_vs_eager", 0) > 1e-4:
            errs[2] += " WRONG"
        ratio = f"{r['computed'] / r['useful']:.3f}" if "computed" in r else "n/a"
        outside = "n/a"
        if "dyncc" in r and "experts" in r and "computed" in r:
            gemms = r["experts"] * r["computed"] / r["all_rows"]
            outside = f"{(r['dyncc'] - gemms) / r['dyncc'] * 100:.1f}% (est.)"
            record_target(f"W1 {r['label']}: % outside the expert GEMMs (routing, dispatch, "
                          "combine; est.)", (r["dyncc"] - gemms) / r["dyncc"] * 100, 10,
                          higher=False)
        gf, share = "n/a", "n/a"
        if "experts" in r:
            gflops = r["all_rows"] / r["experts"] / 1e9
            gf, share = f"{gflops:.0f}", f"{gflops / peak['fp32'] * 100:.0f}%"
        if r.get("experts_err", 0) > 1e-4:
            bad = True
            gf += " (WRONG)"
        if "dyncc" in r:
            for peer, name, target in (("eager", "PyTorch eager", 2.0),
                                       ("compile", "torch.compile", 1.5)):
                if peer in r:
                    record_target(f"W1 {r['label']} fp32: x {name}", r[peer] / r["dyncc"], target,
                                  needs=fma_needed(r.get("computed"), r[peer], target, fma))
        if "computed" in r:
            record_target(f"W1 {r['label']}: computed / useful FLOPs", r["computed"] / r["useful"],
                          1.05, higher=False)
        print(f"| {r['label']} | {ms('dyncc')} | {ms('eager')} | {compile_ms} | {speedup('eager')} "
              f"| {speedup('compile')} | {ms('experts')} | {outside} | {gf} | {share} | {ratio} "
              f"| {gfs('dyncc')} / {gfs('eager')} / {gfs('compile')} "
              f"| {r['C']}, {r['dropped']} of {a.tokens * r['K']} | {' / '.join(errs)} "
              f"| {r['others']:.2f} |")
    notes = [f"probed peak: fp32 {peak['fp32_1024']:.0f} GFLOP/s at 1024^3, "
             f"{peak['fp32_2048']:.0f} at 2048^3; bf16 {bf16} at 2048^3 (best of {a.peak_runs}); "
             + fma_note(fma, peak["fp32"])]
    notes += [f"{r['label']}: torch.compile (DenseDispatchMoE) warm-up {r['compile_warmup']:.1f} s "
              f"(first call {r['compile_first']:.1f} s, then 2 calls); {r['compile_note']}"
              + ("; dynamo did not compile DenseDispatchMoE.forward, which then runs eagerly"
                 if r.get("compile_skipped") else "")
              for r in rows if "compile_warmup" in r]
    notes += [f"{r['label']}: DenseDispatchMoE eager (the torch.compile peer's code without "
              f"torch.compile) {r['dense_eager'] * 1e3:.2f} ms"
              + (f" ({r['dense_eager'] / r['dyncc']:.2f}x dyncc)" if "dyncc" in r else "")
              + f", max error {r['dense_err']:.1g} vs reference"
              for r in rows if "dense_eager" in r]
    notes += [f"{r['label']}: dyncc --precision=bf16 (the experts' GEMMs on bf16 operands, "
              f"fp32 accumulation; the gate stays fp32) {r['dyncc_bf16'] * 1e3:.2f} ms"
              + (f", {r['eager'] / r['dyncc_bf16']:.2f}x eager fp32" if "eager" in r else "")
              + (f", {r['compile'] / r['dyncc_bf16']:.2f}x torch.compile fp32"
                 if "compile" in r else "")
              + (f", {r['dyncc'] / r['dyncc_bf16']:.2f}x dyncc fp32" if "dyncc" in r else "")
              + f"; max error {r['bf16_err']:.1g} vs the fp32 reference"
              for r in rows if "dyncc_bf16" in r]
    notes += [f"{r['label']}: no bf16 layer: {r['bf16_error']}"
              for r in rows if "bf16_error" in r]
    notes += [f"{r['label']}: DenseDispatchMoE disagrees with EagerMoE (max error "
              f"{r['dense_vs_eager']:.1g}): not timed" for r in rows
              if r.get("dense_vs_eager", 0) > 1e-4]
    notes += [f"{r['label']}: no dyncc layer: {r['dyncc_error']}"
              for r in rows if "dyncc_error" in r]
    notes += [f"{r['label']}: no experts-alone model: {r['experts_error']}"
              for r in rows if "experts_error" in r]
    notes += [f"{r['label']}: torch.compile {r['compile_error']}"
              for r in rows if "compile_error" in r]
    print()
    for n in notes:
        print(f"- {n}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
