#!/usr/bin/env python3
"""W2 of WORKLOADS.md: the early-exit encoder at batch 1 compiled by dyncc
next to its PyTorch 2.x and ONNX Runtime peers, in one process, interleaved.
Prints two markdown tables (the early-exit loops, the backbone).

The model: examples/early-exit/model.py --criterion entropy (a
dyncc.nn.EarlyExit module: 12 post-LN layers, d=256, 4 heads, d_ff=1024,
seq 128, a 2-class head on the first token after every layer, the weights
fitted so that every layer is an exit layer for some threshold), exported
with dyncc.export and compiled by dyncc; every side runs the same module's
weights on the same input, float32, --threads threads (2).

Early exit, the exit put at layer 3, 6 and 12 (at 12 every check runs):
  - dyncc: the compiled model, its entropy threshold (runtime parameter
    theta) bisected until the sample exits there (over the cases in turn:
    the first case that can exit there is the input of every side);
  - PyTorch eager, EarlyExit module: the module's own forward (the DeeBERT /
    PABEE loop: layer, head, the criterion of dyncc.nn.exits exactly as the
    compiled library decides it, a data-dependent break), the exit forced
    with model.Forced;
  - the deployment without dyncc (WORKLOADS.md, "Peers"): one segment per
    layer (layer l and its exit head: h -> (h, logits)) and a Python loop
    that checks the entropy of the logits between segments (after the last
    one no check), the exit forced at the layer (theta 0: the check runs but
    never holds). Segments run as PyTorch eager modules, as torch.compile
    (inductor, default mode) of each segment, and as one ONNX Runtime
    session per segment (torch.onnx.export, dynamo exporter; CPU EP,
    ORT_ENABLE_ALL, intra-op --threads, inter-op 1,
    session.intra_op.allow_spinning 0). torch.compile cannot capture the
    EarlyExit module's loop as one graph (its data-dependent break: the
    reason is printed), which is why the compiled peer is per segment.

The backbone (12 layers and the final head, no exit points): dyncc on the
plain encoder (model.plain_encoder, exported and compiled on its own) and
on the early-exit model with theta 0 (never exits, every check runs);
PyTorch eager and torch.compile of the plain encoder; ONNX Runtime on it as
one session, with spinning off (as the loops) and on (ORT's default). Its
FLOPs: bench_util.encoder_flops (2 per multiply-add of the GEMMs: Q, K, V, O
projections 4·S·d², FFN 2·S·d·d_ff, QKᵀ and PV 2·S²·d per layer; 2.617
GFLOP for W2's 12 layers at S = 128), as GFLOP/s and as a share of the
probed fp32 peak (bench_util.probe_peak: the best torch.matmul GFLOP/s
1024³ / 2048³, probed at the start and at the end of the run, the best
kept).

Checks before timing: every side's logits against the eager EarlyExit
module's (forced at the same layer; the plain encoder's for the backbone),
max |a - b| / max(1, |b|) <= 1e-4, and its exit layer. A peer that
disagrees or fails is reported in its cell and not timed; dyncc wrong (or
not exiting at the asked layer) exits 1.

Timing (as bench/w1_bench.py): --rounds rounds of one block of --runs runs
per side, the order of the sides rotating, a pause before each block
outlasting the other sides' spinning thread pools, the first run of a
block untimed (and --warmup runs per side before the first round). Medians
over all timed runs; speed-up = the peer's median / dyncc's, with the
median and range of the per-round ratios.

  w2_bench.py --dyncc build/tools/dyncc/dyncc [--rounds 3] [--runs 10]
              [--exit-layers 3,6,12] [--no-compile] [--no-onnx] [sizes: model.py's]

Runs in the project's Python environment (.venv: PyPI PyTorch with MKL /
oneDNN, torch-mlir, onnxruntime; bench/run-w2.sh).
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "examples", "early-exit"))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, HERE)

import model as ee  # noqa: E402  (sets OPENBLAS_CORETYPE before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dyncc  # noqa: E402
from bench_util import (OtherLoad, record_target, bf16_target_note, dyncc_bf16_path, fma_note, fma_needed, fma_peak, kernel_profile, print_kernel_table, best_peak, add_peer_arguments, close, module_version, cpu_name, encoder_flops, first_line,  # noqa: E402
                        fullgraph_failure, interleaved, onnx_export, ort_session, probe_peak,
                        timed)

TOL = 1e-4
LOOP_SIDES = ["dyncc", "eager module", "eager segments", "torch.compile segments",
              "ONNX Runtime segments"]
BACKBONE_SIDES = ["dyncc", "dyncc, early-exit model at theta 0", "eager", "torch.compile",
                  "ONNX Runtime, spinning off", "ONNX Runtime, spinning on"]
# --bf16: the backbone in bf16 (dyncc --precision=bf16: the GEMMs' operands
# rounded to bf16, fp32 accumulation and elsewhere; PyTorch: the module cast
# to bfloat16), each against the fp32 eager backbone within BF16_TOL.
# "weights fp32": --bf16-weights=false, the weights kept fp32 in memory and
# rounded in the GEMMs (the same results; dyncc bf16 keeps them as bf16).
BF16_SIDES = ["dyncc bf16", "dyncc bf16, weights fp32", "eager bf16", "torch.compile bf16"]
BF16_TOL = 0.3  # PyTorch's bf16 module is bf16 throughout (layer norms, softmax)
# --bf16: the thresholds (besides the bisected ones) at which the bf16 early-
# exit model's exit layers are compared with the fp32 model's, every case.
BF16_THETAS = [0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6]


class Segment(nn.Module):
    """One layer and its exit head: h -> (layer(h), head(layer(h)))."""

    def __init__(self, layer, head):
        super().__init__()
        self.layer, self.head = layer, head

    def forward(self, h):
        h = self.layer(h)
        return h, self.head(h)


def entropy_torch(z):
    """The entropy of softmax(z) of one sample's logits [1, C], a float."""
    return float(torch.special.entr(torch.softmax(z, -1)).sum())


def entropy_numpy(z):
    e = np.exp(z - z.max())
    p = e / e.sum()
    return float(-(p * np.log(np.where(p > 0, p, 1.0))).sum())


def segment_loop(steps, entropy, x, theta, force=0):
    """The early-exit loop over segment functions h -> (h, logits): after
    each but the last, exit when entropy(logits) < theta or at layer
    `force`. Returns (logits, exit layer)."""
    h = x
    last = len(steps)
    for layer, step in enumerate(steps, 1):
        h, z = step(h)
        if layer == last or entropy(z) < theta or layer == force:
            return z, layer
    raise AssertionError("no segments")


# The environment variables that cap PyTorch's (ATen, oneDNN, MKL) vector ISA.
ISA_CAPS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


class Dyncc:
    """A model compiled by dyncc --shared and created with num_threads."""

    def __init__(self, mlir, work, name, weights, threads, *flags):
        self.lib, self.stats = dyncc.build(mlir, os.path.join(work, "lib", name), *flags,
                                           stats=True)
        self.weights = weights
        self.model = dyncc.load(self.lib, weights, num_threads=threads)

    def run(self, x):
        """(logits, exit layer or None) on x."""
        out = self.model(x)
        return (out[0], int(out[1].reshape(-1)[0])) if isinstance(out, tuple) else (out, None)

    def bisect(self, xs, want):
        """(theta, case): an entropy threshold at which case `case` of xs
        (the first that can) exits at layer `want` (larger theta exits
        earlier; 2 classes: the entropy is <= ln 2 < 1); (0, 0) for want = 0."""
        if want == 0:
            return 0.0, 0
        for case in range(len(xs)):
            lo, hi = 0.0, 1.0
            for _ in range(40):
                theta = 0.5 * (lo + hi)
                self.model.set_param("theta", [theta])
                got = self.run(xs[case])[1]
                if got == want:
                    return theta, case
                if got > want:
                    lo = theta
                else:
                    hi = theta
        raise SystemExit(f"w2_bench: no case exits at layer {want} for any theta")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_peer_arguments(ap, rounds=3, runs=10)
    ee.add_shape_arguments(ap)
    ap.add_argument("--cases", type=int, default=20, help="inputs the exit layers are sought on")
    ap.add_argument("--exit-layers", default="3,6,12")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--peak-runs", type=int, default=5)
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                    help="also the backbone in bf16 (dyncc --precision=bf16, PyTorch's module "
                    "cast to bfloat16) and the bf16 early-exit model's decisions against fp32's")
    ap.add_argument("--target", default="host",
                    help="dyncc compile --target of dyncc's libraries (an AVX2-only Halide "
                    "target string measures the AVX2 code path on an AVX-512 CPU; cap the "
                    "peers with ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 "
                    "MKL_ENABLE_INSTRUCTIONS=AVX2, set before the run: the table prints them)")
    ap.add_argument("--profile-runs", type=int, default=30,
                    help="runs of the fp32 backbone in a model created with DYNRT_PROFILE=1, "
                    "for the table of dyncc's kernels against the FMA rate (0: none)")
    a = ap.parse_args()
    if a.batch != 1:
        ap.error("W2 is batch 1 (W4 is the batched bench)")
    if a.target != "host" and a.bf16:
        ap.error("--target other than host: add --no-bf16 (bf16 is timed for the host's ISA)")
    target = [] if a.target == "host" else [f"--target={a.target}"]
    exits = [int(v) for v in a.exit_layers.split(",") if v]
    if any(not 1 <= le <= a.layers for le in exits):
        ap.error(f"--exit-layers must be in 1..{a.layers}")
    os.environ["DYNCC"] = os.path.abspath(a.dyncc)

    torch.set_num_threads(a.threads)
    peak = probe_peak(a.threads, a.peak_runs)
    work = a.work or tempfile.mkdtemp(prefix="w2_")
    os.makedirs(work, exist_ok=True)
    notes, fail, setup = [], {}, {}
    try:
        # the module, its weights and inputs (model.py's command line), exported
        margs = ["--criterion", "entropy", "--cases", str(a.cases), "--no-expected",
                 "--out-dir", work, "--name", "w2"]
        for k in ("layers", "d_model", "heads", "d_ff", "seq", "classes", "seed"):
            margs += [f"--{k.replace('_', '-')}", str(getattr(a, k))]
        t0 = time.perf_counter()
        model, _, _, xs, _ = ee.generate(ee.parser().parse_args(margs))
        model.eval()
        plain = ee.plain_encoder(model).eval()
        xs = [xs[i].contiguous() for i in range(xs.shape[0])]       # [1, S, D] each
        dyncc.export(plain, (xs[0],), os.path.join(work, "w2_backbone"))
        setup["export"] = f"model.py and dyncc.export {time.perf_counter() - t0:.1f} s"
        L, crit = model.num_layers, model.criterion

        t0 = time.perf_counter()
        dy = Dyncc(os.path.join(work, "w2.mlir"), work, "w2",
                   os.path.join(work, "w2.safetensors"), a.threads, *target)
        dyb = Dyncc(os.path.join(work, "w2_backbone.mlir"), work, "w2_backbone",
                    os.path.join(work, "w2_backbone.safetensors"), a.threads, *target)
        setup["dyncc"] = f"dyncc compile (both) {time.perf_counter() - t0:.1f} s"

        # per exit layer: dyncc's theta and case, the eager module's logits there
        rows = {}
        for le in exits:
            theta, case = dy.bisect(xs, le)
            x = xs[case]
            model.criterion = ee.Forced(crit, le)
            with torch.no_grad():
                ref = model(x).numpy()
            assert int(model.exit_layer[0]) == le, model.exit_layer
            rows[le] = dict(theta=theta, case=case, x=x, ref=ref, fns={}, err={}, prep={})
        model.criterion = crit
        x0 = xs[0]
        with torch.no_grad():
            ref0 = plain(x0).numpy()
        back = dict(x=x0, ref=ref0, fns={}, err={}, prep={})

        def side(row, name, run, fn, prep=None, want_layer=None, tol=TOL):
            """Checks run() -> (logits, layer) against the row's reference;
            adds fn as the row's side `name` if it agrees."""
            try:
                with torch.no_grad():
                    z, got = run()
                err = close(z.numpy() if torch.is_tensor(z) else np.asarray(z), row["ref"])
                row["err"][name] = err
                if want_layer is not None and got != want_layer:
                    fail[name, id(row)] = f"exits at layer {got}, not {want_layer}; not timed"
                elif not err <= tol:
                    fail[name, id(row)] = f"disagrees with eager (max error {err:.1g}); not timed"
                else:
                    row["fns"][name] = fn
                    if prep is not None:
                        row["prep"][name] = prep
            except Exception as e:  # noqa: BLE001 (a failing peer is reported, not fatal)
                fail[name, id(row)] = "failed: " + first_line(e)

        # dyncc
        for le, r in rows.items():
            th = r["theta"]

            def prep(th=th):
                dy.model.set_param("theta", [th])
            prep()
            side(r, "dyncc", lambda r=r: dy.run(r["x"]), dy.model.runner(r["x"]), prep, le)
        side(back, "dyncc", lambda: dyb.run(x0), dyb.model.runner(x0))

        def never():
            dy.model.set_param("theta", [0.0])
        never()
        side(back, BACKBONE_SIDES[1], lambda: dy.run(x0), dy.model.runner(x0), never, L)

        # PyTorch eager: the module's loop (forced), the segment loop, the plain encoder
        segments = [Segment(layer, head).eval() for layer, head in zip(model.layers, model.heads)]
        forced = {le: ee.Forced(crit, le) for le in rows}
        for le, r in rows.items():
            def run_module(le=le, x=r["x"]):
                model.criterion = forced[le]
                with torch.no_grad():
                    z = model(x)
                return z, int(model.exit_layer[0])

            def module_fn(le=le, x=r["x"]):
                model.criterion = forced[le]
                model(x)
            side(r, "eager module", run_module, module_fn, None, le)
            loop = (lambda x=r["x"], le=le:
                    segment_loop(segments, entropy_torch, x, 0.0, le))
            side(r, "eager segments", loop, loop, None, le)
        side(back, "eager", lambda: (plain(x0), None), lambda: plain(x0))

        # torch.compile: the module's loop as one graph (it cannot), the segments, the encoder
        if a.compile:
            model.criterion = crit
            why = fullgraph_failure(lambda x: model(x), x0)
            notes.append("torch.compile(EarlyExit, fullgraph=True): "
                          + (why or "captured as one graph (the segment loop is timed anyway)"))
            counters = torch._dynamo.utils.counters
            counters.clear()
            t0 = time.perf_counter()
            csegs = [torch.compile(s) for s in segments]
            for le, r in rows.items():
                loop = (lambda x=r["x"], le=le:
                        segment_loop(csegs, entropy_torch, x, 0.0, le))
                with torch.no_grad():
                    loop()
                side(r, "torch.compile segments", loop, loop, None, le)
            setup["torch.compile segments"] = (
                f"first calls {time.perf_counter() - t0:.1f} s, dynamo compiled "
                f"{counters['frames'].get('ok', 0)} of {counters['frames'].get('total', 0)} "
                f"frames, {counters['stats'].get('unique_graphs', 0)} graph(s) for the "
                f"{L} segments")
            t0 = time.perf_counter()
            cplain = torch.compile(plain)
            with torch.no_grad():
                cplain(x0)
            setup["torch.compile"] = f"first call {time.perf_counter() - t0:.1f} s"
            side(back, "torch.compile", lambda: (cplain(x0), None), lambda: cplain(x0))
        else:
            for r in list(rows.values()):
                fail["torch.compile segments", id(r)] = "not run (--no-compile)"
            fail["torch.compile", id(back)] = "not run (--no-compile)"

        # ONNX Runtime: a session per segment, the encoder as one session
        if a.onnx:
            try:
                import onnxruntime as ort
                t0 = time.perf_counter()
                sessions = []
                for l, s in enumerate(segments):
                    path = os.path.join(work, "onnx", f"segment{l + 1}.onnx")
                    onnx_export(s, (x0,), path, ["h"], ["h_out", "logits"])
                    sessions.append(ort_session(path, a.threads, spinning=False))
                path = os.path.join(work, "onnx", "backbone.onnx")
                onnx_export(plain, (x0,), path, ["x"], ["logits"])
                bsess = {False: ort_session(path, a.threads, spinning=False),
                         True: ort_session(path, a.threads, spinning=True)}
                setup["ONNX Runtime"] = (f"{ort.__version__}: export and sessions "
                                         f"{time.perf_counter() - t0:.1f} s")
                steps = [lambda h, s=s: s.run(None, {"h": h}) for s in sessions]
                for le, r in rows.items():
                    xn = r["x"].numpy()
                    loop = (lambda xn=xn, le=le:
                            segment_loop(steps, entropy_numpy, xn, 0.0, le))
                    side(r, "ONNX Runtime segments", loop, loop, None, le)
                xn0 = x0.numpy()
                for spin, s in bsess.items():
                    run = (lambda s=s: (s.run(None, {"x": xn0})[0], None))
                    side(back, BACKBONE_SIDES[5 if spin else 4], run, run)
            except Exception as e:  # noqa: BLE001 (export or session failures are reported)
                for r in list(rows.values()) + [back]:
                    for n in ("ONNX Runtime segments", *BACKBONE_SIDES[4:]):
                        fail.setdefault((n, id(r)), "failed: " + first_line(e))
        else:
            for r in list(rows.values()) + [back]:
                for n in ("ONNX Runtime segments", *BACKBONE_SIDES[4:]):
                    fail[n, id(r)] = "not run (--no-onnx)"

        # bf16: the backbone three ways, and the early-exit model's decisions
        agree = None
        if a.bf16:
            t0 = time.perf_counter()
            dyb16 = Dyncc(os.path.join(work, "w2_backbone.mlir"), work, "w2_backbone_bf16",
                          os.path.join(work, "w2_backbone.safetensors"), a.threads,
                          "--precision=bf16")
            dy16 = Dyncc(os.path.join(work, "w2.mlir"), work, "w2_bf16",
                         os.path.join(work, "w2.safetensors"), a.threads, "--precision=bf16")
            setup["dyncc bf16"] = f"dyncc compile --precision=bf16 (both) {time.perf_counter() - t0:.1f} s"
            side(back, "dyncc bf16", lambda: dyb16.run(x0), dyb16.model.runner(x0), tol=BF16_TOL)
            dyb16w = Dyncc(os.path.join(work, "w2_backbone.mlir"), work, "w2_backbone_bf16w32",
                           os.path.join(work, "w2_backbone.safetensors"), a.threads,
                           "--precision=bf16", "--bf16-weights=false")
            side(back, "dyncc bf16, weights fp32", lambda: dyb16w.run(x0),
                 dyb16w.model.runner(x0), tol=BF16_TOL)
            import copy
            plain16 = copy.deepcopy(plain).to(torch.bfloat16).eval()
            x016 = x0.to(torch.bfloat16)
            side(back, "eager bf16", lambda: (plain16(x016).float(), None),
                 lambda: plain16(x016), tol=BF16_TOL)
            if a.compile:
                t0 = time.perf_counter()
                cplain16 = torch.compile(plain16)
                with torch.no_grad():
                    cplain16(x016)
                setup["torch.compile bf16"] = f"first call {time.perf_counter() - t0:.1f} s"
                side(back, "torch.compile bf16", lambda: (cplain16(x016).float(), None),
                     lambda: cplain16(x016), tol=BF16_TOL)
            else:
                fail["torch.compile bf16", id(back)] = "not run (--no-compile)"
            # exit layers of every case at every threshold, bf16 against fp32
            # (and, for scale, PyTorch's bf16 segment loop against its fp32 one)
            thetas = sorted(set(BF16_THETAS) | {r["theta"] for r in rows.values() if r["theta"] > 0})
            segs16 = [copy.deepcopy(s).to(torch.bfloat16).eval() for s in segments]
            same = total = tsame = 0
            diffs = []
            with torch.no_grad():
                for th in thetas:
                    dy.model.set_param("theta", [th])
                    dy16.model.set_param("theta", [th])
                    for c, x in enumerate(xs):
                        l32, l16 = dy.run(x)[1], dy16.run(x)[1]
                        total += 1
                        same += l32 == l16
                        if l32 != l16:
                            diffs.append(f"case {c} at theta {th:.4g}: {l32} vs {l16}")
                        t32 = segment_loop(segments, entropy_torch, x, th)[1]
                        t16 = segment_loop(segs16, lambda z: entropy_torch(z.float()),
                                           x.to(torch.bfloat16), th)[1]
                        tsame += t32 == t16
            agree = (same, total, len(thetas), diffs, tsame)

        # interleaved timing of every (row, side)
        table = {("backbone", n): (back, n) for n in BACKBONE_SIDES + BF16_SIDES
                 if n in back["fns"]}
        for le, r in rows.items():
            table.update({(le, n): (r, n) for n in LOOP_SIDES if n in r["fns"]})
        names = list(table)

        def block(key, count):
            r, n = table[key]
            if n in r["prep"]:
                r["prep"][n]()
            with torch.no_grad():
                return timed(r["fns"][n], count)
        for key in names:
            block(key, a.warmup)
        with OtherLoad() as load:
            times, per_round = interleaved(names, block, a.rounds, a.runs, a.pause)
        model.criterion = crit
        # dyncc's kernels one by one, in a model of their own (DYNRT_PROFILE=1)
        kprof = (kernel_profile(dyb.lib, dyb.weights, [x0], a.threads, a.profile_runs)
                 if a.profile_runs > 0 else None)
        again = probe_peak(a.threads, a.peak_runs)
        peak = best_peak(peak, again)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in times.items()}

    def ratios(row, peer, base="dyncc"):
        """(peer median / base median, [the same per round])."""
        q = [m[row, peer] / m[row, base] for m in per_round
             if (row, peer) in m and (row, base) in m]
        return med[row, peer] / med[row, base], q

    def speedup(row, n, base):
        """'x.xx x (per round)': side n's median over side base's; '—' for base."""
        if n == base or (row, base) not in med:
            return "—"
        x, q = ratios(row, n, base)
        return f"{x:.2f}x ({spread(q)})"

    def depth_share(le):
        """dyncc's time at exit layer le over its time at the last layer: the
        median over rounds of the ratio within a round (both rows timed in
        it), which a burst of other load in one round does not move."""
        q = [m[le, "dyncc"] / m[a.layers, "dyncc"] for m in per_round
             if (le, "dyncc") in m and (a.layers, "dyncc") in m]
        return statistics.median(q) if q else med[le, "dyncc"] / med[a.layers, "dyncc"]

    def spread(q):
        return f"{statistics.median(q):.2f}, {min(q):.2f}..{max(q):.2f}"

    def cell(row, r, n):
        """'ms (dyncc's speed-up over it)' or why the side is missing."""
        if (row, n) not in med:
            return fail.get((n, id(r)), "n/a")
        s = f"{med[row, n] * 1e3:.2f}"
        if n != "dyncc" and (row, "dyncc") in med:
            s += f" ({ratios(row, n)[0]:.2f}x)"
        return s

    cpu = cpu_name() or "unknown CPU"
    bf16 = f"{peak['bf16']:.0f}" if peak["bf16"] is not None else "None (no bf16 matmul)"
    flops = encoder_flops(a.layers, a.seq, a.d_model, a.d_ff)
    ort_v = module_version("onnxruntime")
    print(f"## W2: early-exit encoder, batch 1, against PyTorch {torch.__version__} and "
          f"ONNX Runtime {ort_v} ({time.strftime('%Y-%m-%d', time.gmtime())}, {cpu}, "
          f"{a.threads} threads)")
    print()
    print(f"CPU: {cpu}; probed peak fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {bf16} GFLOP/s "
          f"(torch.matmul, {a.threads} threads, best of the probes at the start and the end)")
    print()
    if a.target != "host":
        caps = ", ".join(f"{v}={os.environ[v]}" for v in ISA_CAPS if os.environ.get(v)) or "none"
        print(f"dyncc's kernels compiled for Halide target `{a.target}` (not the host's). The "
              f"peers' ISA caps: {caps}; ONNX Runtime has none (it runs the CPU's own).")
        print()
    print(f"{a.layers} post-LN layers (d={a.d_model}, {a.heads} heads, d_ff={a.d_ff}, seq "
          f"{a.seq}), a {a.classes}-class head on the first token after every layer, entropy "
          "criterion (DeeBERT); examples/early-exit/model.py's dyncc.nn.EarlyExit module, "
          "exported with dyncc.export. dyncc exits at the layer by its runtime threshold "
          "(bisected); the peers' exit is forced there (every check up to it runs). \"eager "
          "module\": the EarlyExit module's forward; \"segments\": one segment per layer (layer "
          "+ exit head) and a Python loop checking the entropy between them, the segments as "
          "eager modules, as torch.compile (inductor) of each, and as ONNX Runtime sessions "
          f"(dynamo export, ORT_ENABLE_ALL, intra-op {a.threads}, allow_spinning 0). Same "
          f"weights and input, in one process, interleaved; median of {a.rounds} rounds x "
          f"{a.runs} runs, ms; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}. "
          "In parentheses: dyncc's speed-up over that side (its median / dyncc's); against the "
          "best peer also per round (median, min..max).")
    print()
    print("| exit | " + " | ".join(LOOP_SIDES) + " | dyncc vs best peer | dyncc time / time at "
          f"{a.layers} (per round, median) |")
    print("|---|" + "---:|" * len(LOOP_SIDES) + "---|---|")
    bad = False
    for le, r in rows.items():
        peers = [n for n in LOOP_SIDES[1:] if (le, n) in med]
        best = min(peers, key=lambda n: med[le, n]) if peers else None
        vs = "n/a"
        if best and (le, "dyncc") in med:
            sp, q = ratios(le, best)
            vs = f"**{sp:.2f}x** over {best} ({spread(q)})"
        frac = ""
        if (le, "dyncc") in med and (a.layers, "dyncc") in med:
            f = depth_share(le)
            frac = f"{f:.3f} (L/{a.layers} = {le / a.layers:.3f}, {(f * a.layers / le - 1) * 100:+.1f}%)"
        label = f"layer {le}" + (" (every check runs)" if le == a.layers else "")
        print(f"| {label} | " + " | ".join(cell(le, r, n) for n in LOOP_SIDES) + f" | {vs} | {frac} |")
        if "dyncc" not in r["fns"]:
            bad = True
    print()
    print(f"Backbone: the {a.layers} layers and the final head, no exit points; "
          f"{flops / 1e9:.3f} GFLOP (the GEMMs: Q, K, V, O projections, FFN, QKᵀ and PV; "
          "2 per multiply-add). dyncc's second row is the early-exit model at theta 0 (never "
          "exits, every check runs). ONNX Runtime: the plain encoder as one session.")
    print()
    print("| side | median (ms) | dyncc speed-up over it (per round: median, min..max) "
          "| GFLOP/s | % of fp32 peak | max error vs eager |")
    print("|---|---:|---|---:|---:|---:|")
    def backbone_rows(sides, columns, cells):
        """A row per side: its median (ms) and the `columns` cells(n, median),
        or why it is missing."""
        for n in sides:
            if ("backbone", n) not in med:
                print(f"| {n} | {fail.get((n, id(back)), 'n/a')} |" + " |" * columns)
                continue
            t = med["backbone", n]
            print(f"| {n} | {t * 1e3:.2f} | " + " | ".join(cells(n, t)) + " |")

    def fp32_cells(n, t):
        gf = flops / t / 1e9
        err = "(reference)" if n == "eager" else f"{back['err'].get(n, float('nan')):.1g}"
        return [speedup("backbone", n, "dyncc"), f"{gf:.0f}", f"{gf / peak['fp32'] * 100:.0f}%",
                err]
    backbone_rows(BACKBONE_SIDES, 4, fp32_cells)
    if "dyncc" not in back["fns"]:
        bad = True
    # issue 16's targets (bench/targets.py)
    fma = fma_peak(a.threads, a.dyncc)
    if ("backbone", "dyncc") in med:
        orts = [n for n in BACKBONE_SIDES if n.startswith("ONNX Runtime") and ("backbone", n) in med]
        if orts:
            fastest = min(orts, key=lambda n: med["backbone", n])
            record_target("W2 backbone fp32: x ONNX Runtime (its faster setting)",
                          ratios("backbone", fastest)[0], 1.3,
                          needs=fma_needed(flops, med["backbone", fastest], 1.3, fma))
        if ("backbone", "torch.compile") in med:
            record_target("W2 backbone fp32: x torch.compile", ratios("backbone", "torch.compile")[0],
                          2.0, needs=fma_needed(flops, med["backbone", "torch.compile"], 2.0, fma))
        record_target("W2 backbone fp32: % of the probed fp32 peak",
                      flops / med["backbone", "dyncc"] / 1e9 / peak["fp32"] * 100, 65)
    for le in rows:
        peers = [n for n in LOOP_SIDES[1:] if (le, n) in med]
        if peers and (le, "dyncc") in med:
            best = min(peers, key=lambda n: med[le, n])
            record_target(f"W2 early exit at layer {le}: x the best peer loop",
                          ratios(le, best)[0], 1.3, note=best,
                          needs=fma_needed(flops * le / a.layers, med[le, best], 1.3, fma))
        if le != a.layers and (le, "dyncc") in med and (a.layers, "dyncc") in med:
            f = depth_share(le)
            record_target(f"W2 early exit at layer {le}: % off (L/{a.layers}) x full",
                          abs(f * a.layers / le - 1) * 100, 5, higher=False)
    print()
    if a.bf16:
        print(f"bf16 backbone (probed bf16 peak {bf16} GFLOP/s): dyncc --precision=bf16 rounds "
              "the operands of the GEMMs of 32 columns or more to bf16 and accumulates in "
              f"fp32 (on AMX tiles where the CPU has them, else AVX512-BF16's vdpbf16ps; "
              f"here: {dyncc_bf16_path()}), everything else fp32, "
              "and keeps the weights only those GEMMs read as bf16 (\"weights fp32\": "
              "--bf16-weights=false); "
              "PyTorch runs the module cast to bfloat16. Errors against the fp32 eager "
              "backbone.")
        print()
        print("| side | median (ms) | dyncc bf16 speed-up over it (per round: median, "
              "min..max) | dyncc fp32 time / this | max error vs fp32 eager |")
        print("|---|---:|---|---:|---:|")
        def bf16_cells(n, t):
            vs32 = (f"{med['backbone', 'dyncc'] / t:.2f}x" if ("backbone", "dyncc") in med
                    else "n/a")
            return [speedup("backbone", n, "dyncc bf16"), vs32,
                    f"{back['err'].get(n, float('nan')):.1g}"]
        backbone_rows(BF16_SIDES, 3, bf16_cells)
        print()
        amx = bf16_target_note()
        if ("backbone", "dyncc bf16") in med and ("backbone", "torch.compile bf16") in med:
            record_target("W2 backbone bf16: x torch.compile bf16",
                          ratios("backbone", "torch.compile bf16", "dyncc bf16")[0], 1.3, note=amx)
        if agree:
            same, total, nth, diffs, tsame = agree
            record_target("W2 bf16: exit decisions equal to fp32's (%)", same / total * 100, 99)
            print(f"- bf16 early-exit model's exit layers equal to the fp32 model's on {same} of "
                  f"{total} decisions ({same / total * 100:.1f}%: {len(xs)} cases x {nth} "
                  "thresholds)" + (": differ at " + "; ".join(diffs[:10]) if diffs else ""))
            print(f"- for scale, PyTorch's bf16 segment loop (bf16 throughout) against its fp32 "
                  f"one: {tsame} of {total} ({tsame / total * 100:.1f}%)")
        print()
    errs = "; ".join(f"layer {le}: " + ", ".join(f"{n} {e:.1g}" for n, e in r["err"].items())
                     for le, r in rows.items())
    print(f"- max error vs the eager module at the exit layer: {errs}")
    print("- inputs and thresholds: " + ", ".join(
        f"layer {le}: case {r['case']}, dyncc theta {r['theta']:.6g}" for le, r in rows.items())
        + "; backbone: case 0")
    print(f"- probed peak: fp32 {peak['fp32_1024']:.0f} GFLOP/s at 1024³, "
          f"{peak['fp32_2048']:.0f} at 2048³; bf16 {bf16} at 2048³ (best of {a.peak_runs}); "
          + fma_note(fma, peak["fp32"]))
    for n in notes:
        print(f"- {n}")
    print("- setup: " + "; ".join(f"{k}: {v}" for k, v in setup.items()))
    print(f"- other load during timing: {load.others:.2f} cores")
    if kprof:
        print_kernel_table("of the fp32 backbone", kprof, dyb.stats, a.profile_runs, fma)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
