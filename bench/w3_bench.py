#!/usr/bin/env python3
"""W3 of WORKLOADS.md: Skim-RNN at batch 1 compiled by dyncc next to its
PyTorch 2.x and ONNX Runtime peers, in one process, interleaved. Prints a
markdown table.

The model (examples/skim/methods.py --method skim_rnn: dyncc.nn.Skim around
nn.LSTMCell's, exported with dyncc.export): embeddings D=128,
a big LSTM cell (H=256) and a small one (32) over S=200 steps; at every
step a read/skim decision, argmax of a linear layer of [x, h] (2 logits):
read updates the whole state with the big cell, skim the first 32 units
with the small one. dyncc compiles it as one `dyn.skip` (the loop in host
code, the cells and the decision as kernels). The peers, float32, no_grad,
the same weights and input:
  - PyTorch eager: the natural implementation, a Python loop over the steps
    with nn.LSTMCell (big, small), nn.Linear on torch.cat([x, h]),
    .argmax().item() and a branch (EagerSkimRNN below);
  - torch.compile (inductor, default mode): dynamo cannot capture the loop
    as one graph (the .item() that picks the branch; the reason is
    printed), so the step's pieces are compiled, each on its own
    (EagerSkimRNN.decide, .read, .skim), and the same Python loop drives
    them;
  - ONNX Runtime: the same three pieces exported with torch.onnx.export
    (dynamo exporter), one session each (CPU EP, ORT_ENABLE_ALL, inter-op
    1, session.intra_op.allow_spinning 0), the same loop over numpy
    arrays.

dyncc's own model is also timed compiled with --hoist-step-inputs=false
(the cells' input projections computed step by step instead of as one GEMM
before the loop, docs/skim.md) and, with --bf16, --precision=bf16. After
the timing, a model created with DYNRT_PROFILE=1 gives each kernel's time
(--profile-runs), and the run's time less its kernels' is the host code's
per step.

Single-step GEMVs are latency-bound, and intra-op threads often cost more
than they give there: every peer is timed with each of --eager-threads (1
and 2: torch.set_num_threads before each of its blocks; ONNX Runtime one
set of sessions per count), and dyncc's speed-up is given over each and
over the better count of each peer. dyncc runs with --threads threads (2).

Timing (as bench/w1_bench.py): rounds of one block of runs per side, the
order of the sides rotating, a pause before each block, the first run of a
block untimed; medians over all timed runs; per step = the run / the steps
taken (S: Skim-RNN never stops early). Checks before timing: the compiled
model's trace (every step's action) equals the reference's (the
dyncc.nn.Skim module run eagerly) and the final states agree to 1e-4 (a
wrong answer exits 1); so must every peer's (one that does not is
reported and not timed). If dyncc cannot compile the model, the table
reports the error and the peers alone.

The model is exported by examples/skim/methods.py in a child process of
the project's Python environment (--venv-python, default .venv/bin/python:
torch-mlir); this process builds the same model (same seeds) for the
reference and times the peers (run-w3.sh: the same .venv).

  w3_bench.py --dyncc build/tools/dyncc/dyncc [--work DIR] [--rounds 5] [--runs 20]
              [--no-compile] [--no-onnx]
"""

import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "skim"))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

import methods  # noqa: E402  (sets OPENBLAS_CORETYPE before torch loads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import (OtherLoad, record_target, kernel_profile, print_kernel_table, fma_peak, add_peer_arguments, close, module_version, cpu_name, first_line, fullgraph_failure,  # noqa: E402
                        interleaved, onnx_export, ort_session, timed)
import torch  # noqa: E402
from torch import nn  # noqa: E402

import dynrt_ctypes  # noqa: E402


class EagerSkimRNN(nn.Module):
    """Skim-RNN the way a PyTorch user writes it: a Python loop over steps."""

    def __init__(self, D, H, Hs):
        super().__init__()
        self.H, self.Hs = H, Hs
        self.big = nn.LSTMCell(D, H)
        self.small = nn.LSTMCell(D, Hs)
        self.act = nn.Linear(D + H, 2)

    @classmethod
    def from_tensors(cls, t, D, H, Hs):
        m = cls(D, H, Hs)
        T = lambda n: torch.from_numpy(np.asarray(t[n], np.float32))  # noqa: E731
        with torch.no_grad():
            for p in ("big", "small"):
                cell = getattr(m, p)
                cell.weight_ih.copy_(T(p + ".w_ih"))
                cell.weight_hh.copy_(T(p + ".w_hh"))
                cell.bias_ih.copy_(T(p + ".b"))
                cell.bias_hh.zero_()
            m.act.weight.copy_(torch.cat([T("act.w_x"), T("act.w_h")], 1))
            m.act.bias.copy_(T("act.b"))
        return m.eval()

    @classmethod
    def from_model(cls, model):
        """The same weights as methods.py's skim_rnn model (a dyncc.nn.Skim:
        cells 0 (big) and 1 (small), decide.fc on [x, h])."""
        big, small = model.skim.cells["0"].cell, model.skim.cells["1"].cell
        fc = model.skim.decide.fc
        m = cls(big.input_size, big.hidden_size, small.hidden_size)
        with torch.no_grad():
            m.big.load_state_dict(big.state_dict())
            m.small.load_state_dict(small.state_dict())
            m.act.load_state_dict(fc.state_dict())
        return m.eval()

    # One step of the loop in three pieces, so that the peers can compile or
    # export each (dynamo cannot capture the loop: its .item() branch).
    def decide(self, x, h):
        """The read / skim logits [1, 2] of step input x [1, D] and state h."""
        return self.act(torch.cat([x, h], 1))

    def read(self, x, h, c):
        """The big cell updates the whole state."""
        return self.big(x, (h, c))

    def skim(self, x, h, c):
        """The small cell updates the first Hs units."""
        Hs = self.Hs
        hs, cs = self.small(x, (h[:, :Hs], c[:, :Hs]))
        return torch.cat([hs, h[:, Hs:]], 1), torch.cat([cs, c[:, Hs:]], 1)

    def forward(self, emb, trace=None):
        """emb [S, D] -> (h, c) [1, H]; appends each step's action to trace."""
        h = emb.new_zeros(1, self.H)
        c = emb.new_zeros(1, self.H)
        return skim_loop(self.decide, self.read, self.skim, torch_action, emb, h, c, trace)


def torch_action(z):
    return z.argmax(1).item()


def numpy_action(z):
    return int(z[0].argmax())


def skim_loop(decide, read, skim, action, emb, h, c, trace=None):
    """The Skim-RNN step loop over emb [S, D] from state (h, c), on any step
    functions (eager, compiled, ONNX Runtime sessions): action(decide(x, h))
    is 0 (read) or 1 (skim). Returns (h, c); appends each action to trace."""
    for t in range(emb.shape[0]):
        x = emb[t:t + 1]
        a = action(decide(x, h))
        h, c = read(x, h, c) if a == 0 else skim(x, h, c)
        if trace is not None:
            trace.append(a)
    return h, c


class _Step(nn.Module):
    """One of EagerSkimRNN's step methods as a module (for torch.onnx.export)."""

    def __init__(self, model, method):
        super().__init__()
        self.model, self.method = model, method

    def forward(self, *args):
        return getattr(self.model, self.method)(*args)


def onnx_steps(model, work, D, threads):
    """decide, read, skim of `model` as ONNX Runtime sessions (one each,
    intra-op `threads`, spinning off), as numpy functions."""
    # distinct example tensors: exported with one tensor as both h and c,
    # the read and skim sessions computed wrong states
    x, h, c = torch.zeros(1, D), torch.zeros(1, model.H), torch.zeros(1, model.H)
    fns = []
    for method, args, names, outs in (("decide", (x, h), ["x", "h"], ["logits"]),
                                      ("read", (x, h, c), ["x", "h", "c"], ["h_out", "c_out"]),
                                      ("skim", (x, h, c), ["x", "h", "c"], ["h_out", "c_out"])):
        path = os.path.join(work, "onnx", method + ".onnx")
        if not os.path.exists(path):
            onnx_export(_Step(model, method).eval(), args, path, names, outs)
        sess = ort_session(path, threads, spinning=False)
        if method == "decide":
            fns.append(lambda x, h, s=sess: s.run(None, {"x": x, "h": h})[0])
        else:
            fns.append(lambda x, h, c, s=sess: tuple(s.run(None, {"x": x, "h": h, "c": c})))
    return fns


class Compiled:
    """The model compiled by dyncc --shared, loaded through ctypes."""

    def __init__(self, dyncc, mlir, work, name, weights, threads, flags=()):
        out = os.path.join(work, "lib", name)
        p = subprocess.run([dyncc, "compile", mlir, "-o", out, "--shared", "--stats", *flags],
                           capture_output=True, text=True)
        if p.returncode:
            err = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if "error" in ln]
            raise RuntimeError(err[0] if err else f"dyncc exited with {p.returncode}")
        self.stats = p.stdout
        self.so = os.path.join(work, "lib", f"lib{name}.so")
        self.L = dynrt_ctypes.Library(self.so, name)
        self.L.create(weights, num_threads=threads)

    def run_traced(self, x, budget, H):
        """(h, c, steps, trace [steps, 3])"""
        h, c = np.full(H, np.nan, np.float32), np.full(H, np.nan, np.float32)
        buf = np.full((budget, 3), -7, np.int32)
        rep = dynrt_ctypes.SkipReport(-7, budget,
                                      buf.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        self.L.run([x], [h, c], dynrt_ctypes.RunReport(0, None, 1, ctypes.pointer(rep)))
        return h, c, rep.steps, buf[:rep.steps]

    def bind(self, x, H):
        """A function that runs the model on x (no report)."""
        return self.L.runner([x], [np.empty(H, np.float32), np.empty(H, np.float32)])




GEMV_NOTE = {"linear": "nn.LSTMCell", "mv": "cells written with torch.mv",
             "mm": "cells written with W @ v[:, None]"}


def export_model(a, work, name):
    """work/name.mlir and .safetensors: dyncc.export (torch.export and
    torch-mlir) runs in the project's Python environment (--venv-python,
    methods.py's command line, same seeds), in a child process, so that
    this one may time the peers on another PyTorch (run-w3.sh: the same
    .venv)."""
    p = subprocess.run([a.venv_python, os.path.join(ROOT, "examples", "skim", "methods.py"),
                        "--method", "skim_rnn", "--seq", str(a.seq), "--dim", str(a.dim),
                        "--hidden", str(a.hidden), "--small", str(a.small),
                        "--cases", str(a.case + 1), "--gemv", a.gemv, "--out-dir", work,
                        "--name", name],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"w3_bench: exporting the model failed:\n{p.stdout}{p.stderr}")


KINDS = {"eager": "PyTorch eager", "compile": "torch.compile (decide, read, skim)",
         "onnx": "ONNX Runtime (decide, read, skim sessions)"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_peer_arguments(ap, rounds=5, runs=20)
    ap.add_argument("--seq", type=int, default=200)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--small", type=int, default=32)
    ap.add_argument("--case", type=int, default=0, help="which generated input to time")
    ap.add_argument("--gemv", choices=("linear", "mv", "mm"), default="linear",
                    help="how the model's cells compute W v (examples/skim/methods.py): "
                    "nn.LSTMCell (linear), torch.mv, W @ v[:, None]")
    ap.add_argument("--venv-python", default=os.path.join(ROOT, ".venv", "bin", "python"),
                    help="the Python with torch-mlir that exports the model")
    ap.add_argument("--threads", type=int, default=2, help="dyncc's threads")
    ap.add_argument("--bf16", action="store_true",
                    help="also time the model compiled with --precision=bf16 (weights kept "
                         "as bfloat16) and compare its decisions with the reference's")
    ap.add_argument("--no-in-step", dest="in_step", action="store_false",
                    help="do not time the model compiled with --hoist-step-inputs=false "
                         "(the input projections computed step by step)")
    ap.add_argument("--profile-runs", type=int, default=50,
                    help="runs of the kernel profile (DYNRT_PROFILE=1; 0: none)")
    ap.add_argument("--eager-threads", default="1,2",
                    help="the thread counts every peer is timed with")
    a = ap.parse_args()

    work = a.work or tempfile.mkdtemp(prefix="w3_")
    os.makedirs(work, exist_ok=True)
    name = "w3_skim"
    threads = [int(t) for t in a.eager_threads.split(",")]
    notes, setup, fail, errs = [], {}, {}, {}
    try:
        cfg = methods.Config("skim_rnn", seq=a.seq, dim=a.dim, hidden=a.hidden, small=a.small,
                             gemv=a.gemv)
        g = methods.generate(cfg, cases=a.case + 1)
        export_model(a, work, name)
        results, cases = g.results, g.cases
        S, D, H, Hs, B = a.seq, a.dim, a.hidden, a.small, cfg.budget
        x = np.ascontiguousarray(cases[0][a.case])
        ref = results[a.case]
        ref_actions = [t[1] for t in ref.trace]
        reads = ref_actions.count(0)
        row = dict(steps=ref.steps, reads=reads)
        bad = False

        # name -> (torch threads or None, no-argument function)
        sides = {}

        def add_peer(kind, runs, torch_threads):
            """runs {thread count: run(trace) -> (h, c)}: each checked against
            the reference (trace, final state), then a side per count."""
            try:
                for t, run in runs.items():
                    if torch_threads:
                        torch.set_num_threads(t)
                    tr = []
                    with torch.no_grad():
                        h, c = run(tr)
                    h, c = (np.asarray(v.numpy() if torch.is_tensor(v) else v).reshape(-1)
                            for v in (h, c))
                    errs[kind] = (tr == ref_actions,
                                  max(errs.get(kind, (0, 0))[1], close(h, ref.state[0]),
                                      close(c, ref.state[1])))
                if not errs[kind][0] or errs[kind][1] > 1e-4:
                    fail[kind] = "trace or final state differs from the reference; not timed"
                    return
                for t, run in runs.items():
                    sides[f"{kind}{t}"] = (t if torch_threads else None,
                                           lambda run=run: run(None))
            except Exception as e:  # noqa: BLE001 (a failing peer is reported, not fatal)
                fail[kind] = "failed: " + first_line(e)

        # PyTorch eager: the step loop
        eager = EagerSkimRNN.from_model(g.model)
        xt = torch.from_numpy(x)
        add_peer("eager", {t: (lambda tr: eager(xt, tr)) for t in threads}, True)

        def state():
            return xt.new_zeros(1, H), xt.new_zeros(1, H)

        # torch.compile: the loop as one graph (it cannot), else each piece of a step
        if a.compile:
            torch.set_num_threads(a.threads)
            why = fullgraph_failure(lambda e: eager(e), xt)
            notes.append("torch.compile(EagerSkimRNN, fullgraph=True): "
                         + (why or "captured as one graph (the per-piece loop is timed anyway)"))
            counters = torch._dynamo.utils.counters
            counters.clear()
            steps = [torch.compile(f) for f in (eager.decide, eager.read, eager.skim)]
            t0 = time.perf_counter()
            add_peer("compile", {t: (lambda tr: skim_loop(*steps, torch_action, xt, *state(), tr))
                                 for t in threads}, True)
            setup["torch.compile"] = (
                f"first run {time.perf_counter() - t0:.1f} s, dynamo compiled "
                f"{counters['frames'].get('ok', 0)} of {counters['frames'].get('total', 0)} "
                f"frames, {counters['stats'].get('unique_graphs', 0)} graphs (one per piece "
                "and thread count: dynamo guards on the thread count)")
        else:
            fail["compile"] = "not run (--no-compile)"

        # ONNX Runtime: a session per piece, one set of sessions per thread count
        if a.onnx:
            try:
                import onnxruntime as ort
                t0 = time.perf_counter()
                sess = {t: onnx_steps(eager, work, D, t) for t in threads}
                setup["ONNX Runtime"] = (f"{ort.__version__}: export and sessions "
                                         f"{time.perf_counter() - t0:.1f} s")
                h0 = np.zeros((1, H), np.float32)
                add_peer("onnx", {t: (lambda tr, f=f: skim_loop(*f, numpy_action, x, h0, h0, tr))
                                  for t, f in sess.items()}, False)
            except Exception as e:  # noqa: BLE001 (an export that fails is reported)
                fail["onnx"] = "failed: " + first_line(e)
        else:
            fail["onnx"] = "not run (--no-onnx)"

        weights = os.path.join(work, name + ".safetensors")

        def compiled_side(key, suffix, flags=()):
            """Compiles the model with `flags`, checks its trace (equal) and
            final state (within 1e-4) against the reference into
            row[key + "_trace_ok"] and row[key + "_err"] (a wrong answer fails
            the run) and adds it as side `key`; returns the Compiled."""
            nonlocal bad
            lib = Compiled(a.dyncc, os.path.join(work, name + ".mlir"), work, name + suffix,
                           weights, a.threads, flags)
            h, c, steps_taken, trace = lib.run_traced(x, B, H)
            want = np.array(ref.trace, np.int32)
            row[key + "_trace_ok"] = steps_taken == ref.steps and np.array_equal(trace, want)
            row[key + "_err"] = max(close(h, ref.state[0]), close(c, ref.state[1]))
            if not row[key + "_trace_ok"] or row[key + "_err"] > 1e-4:
                bad = True
            sides[key] = (None, lib.bind(x, H))
            return lib

        try:
            comp = compiled_side("dyncc", "")
        except RuntimeError as e:
            row["dyncc_error"] = str(e)
        if a.in_step and "dyncc" in sides:
            try:
                compiled_side("dyncc_in_step", "_in_step", ["--hoist-step-inputs=false"])
            except RuntimeError as e:
                notes.append(f"dyncc --hoist-step-inputs=false: {e}")
        if a.bf16 and "dyncc" in sides:
            try:
                comp16 = Compiled(a.dyncc, os.path.join(work, name + ".mlir"), work,
                                  name + "_bf16", weights, a.threads, ["--precision=bf16"])
                h, c, steps_taken, trace = comp16.run_traced(x, B, H)
                want = np.array(ref.trace, np.int32)
                same = 0
                while (same < min(steps_taken, len(want))
                       and np.array_equal(trace[same], want[same])):
                    same += 1
                row["bf16_trace"] = (steps_taken == ref.steps and same == len(want), same)
                row["bf16_err"] = max(close(h, ref.state[0]), close(c, ref.state[1]))
                sides["dyncc_bf16"] = (None, comp16.bind(x, H))
            except RuntimeError as e:
                notes.append(f"dyncc --precision=bf16: {e}")

        # interleaved timing
        names = list(sides)

        def block(n, count):
            t, fn = sides[n]
            if t is not None:
                torch.set_num_threads(t)
            with torch.no_grad():
                return timed(fn, count)

        for n in names:
            block(n, a.warmup)
        with OtherLoad() as load:
            times, per_round = interleaved(names, block, a.rounds, a.runs, a.pause)
        for n in names:
            row[n] = statistics.median(times[n])
        # dyncc's kernels one by one, in a model of their own (DYNRT_PROFILE=1)
        kprof, kwall = (kernel_profile(comp.so, weights, [x], a.threads, a.profile_runs,
                                       wall=True)
                        if "dyncc" in sides and a.profile_runs > 0 else (None, None))
        fma = fma_peak(a.threads, a.dyncc)
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)

    def best(kind, med):
        """The better thread count's time of a peer in med (None if untimed)."""
        ts = [med[f"{kind}{t}"] for t in threads if f"{kind}{t}" in med]
        return min(ts) if ts else None

    def speedup(peer_times):
        """'overall (per round: median, min..max)' of dyncc over a peer: peer_times(med)."""
        q = [peer_times(m) / m["dyncc"] for m in per_round
             if "dyncc" in m and peer_times(m) is not None]
        if "dyncc" not in row or not q:
            return "n/a"
        return (f"{peer_times(row) / row['dyncc']:.1f}x ({statistics.median(q):.1f}, "
                f"{min(q):.1f}..{max(q):.1f})")

    cpu = cpu_name()
    steps = row["steps"]
    us = lambda k: row[k] / steps * 1e6  # noqa: E731
    print(f"## W3: Skim-RNN, batch 1, against PyTorch {torch.__version__} and ONNX Runtime "
          f"{module_version('onnxruntime')} ({time.strftime('%Y-%m-%d', time.gmtime())}, {cpu}, "
          f"{a.threads} threads)")
    print()
    print(f"Embeddings {D}, big LSTM {H}, small LSTM {Hs}, {S} steps, a read/skim decision per "
          f"step (argmax of a linear layer of [x, h]); this input reads {row['reads']} of "
          f"{steps} steps with the big cell ({100.0 * row['reads'] / steps:.0f}%). The model: "
          f"examples/skim/methods.py --gemv {a.gemv} ({GEMV_NOTE[a.gemv]}), exported with "
          f"dyncc.export. dyncc (`dyn.skip`, {a.threads} threads) against the PyTorch eager "
          "step loop (nn.LSTMCell, nn.Linear, argmax().item(), a Python branch per step), the "
          "same loop over the step's three pieces (decide, read, skim) compiled by "
          "torch.compile (inductor) and as ONNX Runtime sessions (dynamo export, "
          "ORT_ENABLE_ALL, allow_spinning 0), every peer at "
          f"{' and '.join(map(str, threads))} threads; same weights and input, in one process, "
          f"interleaved; median of {a.rounds} rounds x {a.runs} runs of the whole sequence, per "
          f"step; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}. Speed-up: the "
          "side's time over dyncc's (per round: median, min..max; target >= 10x the eager loop).")
    print()
    print("| side | µs per step | ms per sequence | dyncc speed-up over it | "
          "trace = reference | max state error |")
    print("|---|---:|---:|---|---|---:|")
    if "dyncc" in row:
        print(f"| dyncc, {a.threads} thread{'s' if a.threads > 1 else ''} | {us('dyncc'):.2f} "
              f"| {row['dyncc'] * 1e3:.3f} | — | {'yes' if row['dyncc_trace_ok'] else 'NO'} "
              f"| {row['dyncc_err']:.1g} |")
    else:
        print(f"| dyncc | n/a: {row.get('dyncc_error', '')} | | | | |")
    if "dyncc_in_step" in row:
        print(f"| dyncc `--hoist-step-inputs=false` (input projections in the step), "
              f"{a.threads} threads | {us('dyncc_in_step'):.2f} | "
              f"{row['dyncc_in_step'] * 1e3:.3f} | "
              f"{speedup(lambda m: m.get('dyncc_in_step'))} | "
              f"{'yes' if row['dyncc_in_step_trace_ok'] else 'NO'} "
              f"| {row['dyncc_in_step_err']:.1g} |")
    if "dyncc_bf16" in row:
        ok, same = row["bf16_trace"]
        q = [m["dyncc"] / m["dyncc_bf16"] for m in per_round
             if "dyncc" in m and "dyncc_bf16" in m]
        print(f"| dyncc `--precision=bf16`, {a.threads} threads | {us('dyncc_bf16'):.2f} | "
              f"{row['dyncc_bf16'] * 1e3:.3f} | fp32 time / this: "
              f"{row['dyncc'] / row['dyncc_bf16']:.2f} ({statistics.median(q):.2f}, "
              f"{min(q):.2f}..{max(q):.2f}) | "
              + ("yes" if ok else f"no: the first {same} of {steps} steps equal")
              + f" | {row['bf16_err']:.1g} |")
    for kind, label in KINDS.items():
        if kind in fail:
            print(f"| {label} | {fail[kind]} | | | "
                  + (f"{'yes' if errs[kind][0] else 'NO'} | {errs[kind][1]:.1g} |"
                     if kind in errs else " | |"))
            continue
        b = best(kind, row)
        for t in threads:
            k = f"{kind}{t}"
            note = " (best)" if row[k] == b and len(threads) > 1 else ""
            print(f"| {label}, {t} thread{'s' if t > 1 else ''}{note} | {us(k):.2f} | "
                  f"{row[k] * 1e3:.3f} | {speedup(lambda m, k=k: m.get(k))} "
                  f"| {'yes' if errs[kind][0] else 'NO'} | {errs[kind][1]:.1g} |")
    print()
    if "dyncc" in row and "eager" not in fail and best("eager", row) is not None:
        record_target("W3: x the eager loop", best("eager", row) / row["dyncc"], 10)
    for kind, label in KINDS.items():
        if kind not in fail:
            bold = "**" if kind == "eager" else ""
            print(f"- dyncc over {label} at its better thread count: {bold}"
                  f"{speedup(lambda m, kind=kind: best(kind, m))}{bold}"
                  + (" (target >= 10x)" if kind == "eager" else ""))
        else:
            print(f"- {label}: {fail[kind]}")
    for n in notes:
        print(f"- {n}")
    if setup:
        print("- setup: " + "; ".join(f"{k}: {v}" for k, v in setup.items()))
    if "dyncc_error" in row:
        print(f"- no dyncc model: {row['dyncc_error']}")
    print(f"- other load during timing: {load.others:.2f} cores")
    if kprof:
        kernels = sum(r["seconds"] for r in kprof) / a.profile_runs
        print(f"- per step, in the profiled model ({a.profile_runs} runs after the timing): "
              f"{kwall / steps * 1e6:.2f} µs, of which kernels {kernels / steps * 1e6:.2f} "
              f"(the table below) and between them (host code, the step builtin's trace, "
              f"the profiler's clocks) {(kwall - kernels) / steps * 1e6:.2f}")
        print_kernel_table("(fp32, one sequence)", kprof, comp.stats, a.profile_runs, fma)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
