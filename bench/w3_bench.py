#!/usr/bin/python3
"""W3 of WORKLOADS.md: Skim-RNN at batch 1 compiled by dyncc next to the
eager PyTorch step loop, in one process, interleaved. Prints a markdown
table.

The model (examples/skim/methods.py --method skim_rnn: dyncc.nn.Skim around
nn.LSTMCell's, exported with dyncc.export): embeddings D=128,
a big LSTM cell (H=256) and a small one (32) over S=200 steps; at every
step a read/skim decision, argmax of a linear layer of [x, h] (2 logits):
read updates the whole state with the big cell, skim the first 32 units
with the small one. dyncc compiles it as one `dyn.skip` (the loop in host
code, the cells and the decision as kernels); the eager baseline is the
natural implementation: a Python loop over the steps with nn.LSTMCell
(big, small), nn.Linear on torch.cat([x, h]), .argmax().item() and a
branch (EagerSkimRNN below), float32, no_grad, the same weights and input.

Single-step GEMVs are latency-bound, and PyTorch's intra-op threads often
cost more than they give there: the eager loop is timed with 1 and with 2
threads (torch.set_num_threads before each of its blocks) and the speed-up
is taken against the better of the two. dyncc runs with --threads threads
(2).

Timing (as bench/w1_bench.py): rounds of one block of runs per side, the
order of the sides rotating, a pause before each block, the first run of a
block untimed; medians over all timed runs; per step = the run / the steps
taken (S: Skim-RNN never stops early). Checks before timing: the compiled
model's trace (every step's action) equals the reference's (the
dyncc.nn.Skim module run eagerly) and the eager loop's, and the final states
agree to 1e-4; a wrong answer exits 1. If dyncc cannot compile the model,
the table reports the error and the eager side alone.

The model is exported by examples/skim/methods.py in the project's Python
environment (--venv-python, default .venv/bin/python: torch-mlir); this
process builds the same model (same seeds) for the reference and times the
eager loop on its own PyTorch (run-w3.sh: /usr/bin/python3's, as before).

  w3_bench.py --dyncc build/tools/dyncc/dyncc [--work DIR] [--rounds 5] [--runs 20]
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
from bench_util import cpu_name, interleaved, timed, close  # noqa: E402
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

    def forward(self, emb, trace=None):
        """emb [S, D] -> (h, c) [1, H]; appends each step's action to trace."""
        h = emb.new_zeros(1, self.H)
        c = emb.new_zeros(1, self.H)
        Hs = self.Hs
        for t in range(emb.shape[0]):
            x = emb[t:t + 1]
            a = self.act(torch.cat([x, h], 1)).argmax(1).item()
            if a == 0:      # read: the big cell updates the whole state
                h, c = self.big(x, (h, c))
            else:           # skim: the small cell updates the first Hs units
                hs, cs = self.small(x, (h[:, :Hs], c[:, :Hs]))
                h = torch.cat([hs, h[:, Hs:]], 1)
                c = torch.cat([cs, c[:, Hs:]], 1)
            if trace is not None:
                trace.append(a)
        return h, c


class Compiled:
    """The model compiled by dyncc --shared, loaded through ctypes."""

    def __init__(self, dyncc, mlir, work, name, weights, threads):
        out = os.path.join(work, "lib", name)
        p = subprocess.run([dyncc, "compile", mlir, "-o", out, "--shared"],
                           capture_output=True, text=True)
        if p.returncode:
            err = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if "error" in ln]
            raise RuntimeError(err[0] if err else f"dyncc exited with {p.returncode}")
        so = os.path.join(work, "lib", f"lib{name}.so")
        self.L = dynrt_ctypes.Library(so, name)
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
    methods.py's command line, same seeds), so that this process may time
    the eager loop on another PyTorch (run-w3.sh: the system's, as before)."""
    p = subprocess.run([a.venv_python, os.path.join(ROOT, "examples", "skim", "methods.py"),
                        "--method", "skim_rnn", "--seq", str(a.seq), "--dim", str(a.dim),
                        "--hidden", str(a.hidden), "--small", str(a.small),
                        "--cases", str(a.case + 1), "--gemv", a.gemv, "--out-dir", work,
                        "--name", name],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"w3_bench: exporting the model failed:\n{p.stdout}{p.stderr}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dyncc", required=True, help="the dyncc binary")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
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
    ap.add_argument("--eager-threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per side and round")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pause", type=float, default=0.25)
    a = ap.parse_args()

    work = a.work or tempfile.mkdtemp(prefix="w3_")
    os.makedirs(work, exist_ok=True)
    name = "w3_skim"
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

        # the eager loop, checked against the reference
        eager = EagerSkimRNN.from_model(g.model)
        xt = torch.from_numpy(x)
        tr = []
        with torch.no_grad():
            eh, ec = eager(xt, tr)
        row["eager_err"] = max(close(eh[0].numpy(), ref.state[0]), close(ec[0].numpy(), ref.state[1]))
        row["eager_trace_ok"] = tr == ref_actions
        if not row["eager_trace_ok"] or row["eager_err"] > 1e-4:
            bad = True

        sides = {}
        eager_threads = [int(t) for t in a.eager_threads.split(",")]
        for t in eager_threads:
            def go(t=t):
                with torch.no_grad():
                    eager(xt)
            sides[f"eager{t}"] = (t, go)

        weights = os.path.join(work, name + ".safetensors")
        try:
            comp = Compiled(a.dyncc, os.path.join(work, name + ".mlir"), work, name, weights,
                            a.threads)
            h, c, steps, trace = comp.run_traced(x, B, H)
            want = np.array(ref.trace, np.int32)
            row["dyncc_trace_ok"] = steps == ref.steps and np.array_equal(trace, want)
            row["dyncc_err"] = max(close(h, ref.state[0]), close(c, ref.state[1]))
            if not row["dyncc_trace_ok"] or row["dyncc_err"] > 1e-4:
                bad = True
            sides["dyncc"] = (None, comp.bind(x, H))
        except RuntimeError as e:
            row["dyncc_error"] = str(e)

        # interleaved timing
        names = list(sides)

        def block(n, count):
            t, fn = sides[n]
            if t is not None:
                torch.set_num_threads(t)
            return timed(fn, count)

        for n in names:
            block(n, a.warmup)
        times, per_round = interleaved(names, block, a.rounds, a.runs, a.pause)
        ratios = [min(med[f"eager{t}"] for t in eager_threads) / med["dyncc"]
                  for med in per_round if "dyncc" in med]
        for n in names:
            row[n] = statistics.median(times[n])
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)

    cpu = cpu_name()
    steps = row["steps"]
    us = lambda k: row[k] / steps * 1e6  # noqa: E731
    print(f"## W3: Skim-RNN, batch 1 ({time.strftime('%Y-%m-%d', time.gmtime())}, {cpu})")
    print()
    print(f"Embeddings {D}, big LSTM {H}, small LSTM {Hs}, {S} steps, a read/skim decision per "
          f"step (argmax of a linear layer of [x, h]); this input reads {row['reads']} of "
          f"{steps} steps with the big cell ({100.0 * row['reads'] / steps:.0f}%). The model: "
          f"examples/skim/methods.py --gemv {a.gemv} ({GEMV_NOTE[a.gemv]}), exported with "
          "dyncc.export. dyncc "
          f"(`dyn.skip`, {a.threads} threads) against the eager PyTorch loop (nn.LSTMCell, "
          "nn.Linear, argmax().item(), a Python branch per step), same weights and input, in "
          f"one process, interleaved; median of {a.rounds} rounds x {a.runs} runs of the whole "
          f"sequence, per step; OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}"
          f", OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}. Speed-up: the "
          "better eager time over dyncc's (target >= 10x).")
    print()
    print("| | µs per step | ms per sequence | speed-up (per round: median, min..max) | "
          "trace = reference | max state error |")
    print("|---|---:|---:|---|---|---:|")
    best_eager = min((row[f"eager{t}"], t) for t in eager_threads)
    if "dyncc" in row:
        sp = (f"**{best_eager[0] / row['dyncc']:.1f}x** ({statistics.median(ratios):.1f}, "
              f"{min(ratios):.1f}..{max(ratios):.1f})")
        print(f"| dyncc, {a.threads} thread{'s' if a.threads > 1 else ''} | {us('dyncc'):.2f} | {row['dyncc'] * 1e3:.3f} | {sp} "
              f"| {'yes' if row['dyncc_trace_ok'] else 'NO'} | {row['dyncc_err']:.1g} |")
    else:
        print("| dyncc | n/a | n/a | n/a | n/a | n/a |")
    for t in eager_threads:
        k = f"eager{t}"
        note = " (best)" if t == best_eager[1] else ""
        print(f"| PyTorch eager, {t} thread{'s' if t > 1 else ''}{note} | {us(k):.2f} | "
              f"{row[k] * 1e3:.3f} | | {'yes' if row['eager_trace_ok'] else 'NO'} | "
              f"{row['eager_err']:.1g} |")
    if "dyncc_error" in row:
        print()
        print(f"- no dyncc model: {row['dyncc_error']}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
