#!/usr/bin/env python3
"""Differential test of dyn.skip: builds a skimming RNN with
examples/skim/methods.py (a PyTorch model around dyncc.nn.Skim, docs/skim.md),
runs every case through the eager module (the reference: its final state and
its Skim's trace), exports it with dyncc.export, compiles it with dyncc into
a shared object, runs every case through the C API (ctypes,
dynrt_model_run_ex with one dynrt_skip_report_t, capacity = the budget) and
compares with the eager module:

  - the trace exactly: the number of steps and every step's (pos, action,
    amount); the rows past the steps must read -1 (the run resets them);
  - the final state to 1e-4 (|got - want| / max(1, |want|)); the outputs are
    poisoned with NaN (the report with junk) before each run;
  - a run whose action is out of range (variant rim-bad-action) fails with
    a status that names the step, its position and the action, and its
    trace ends with that step;
  - on a few cases: a trace smaller than the steps (counted, only capacity
    rows written, nothing past them), no trace (NULL, capacity 0), a report
    without skips and dynrt_model_run without a report give the same state;
  - the descriptor's skip table (S, budget, number of actions) and, when the
    library has it, dynrt_model_skip_stats: runs, steps and action counts
    summed over the successful runs.

  check_skip.py DYNCC WORKDIR VARIANT [methods.py options...]
  check_skip.py DYNCC WORKDIR VARIANT --batch N [methods.py options...]
  check_skip.py --list

With --batch N the model is compiled with --batch-buckets=N (the samples of
a request run one after another, each as alone) and the cases run N at a
time (the last batch partial) through dynrt_model_run_batch with one trace
of N * budget rows: each sample's steps (the report's sample_steps), its
rows of the trace and its final state must equal the reference's.

VARIANT is one of VARIANTS below (its methods.py options, then any extra
options), or any name followed by methods.py options. Prints one line per
variant; exits 1 with the mismatches on failure.
"""
import ctypes
import faulthandler
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples", "skim"))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

import methods  # noqa: E402  (sets OPENBLAS_CORETYPE before torch)
from methods import METHODS  # noqa: E402
from dynrt_ctypes import ABI_VERSION, Library, RunReport, SkipReport  # noqa: E402

# The variants registered as ctests (test/CMakeLists.txt: skim.<name>): every
# method at the small default size (S=12, D=8, H=16; 64 cases each, all
# actions and the method's endings occur, see methods.REQUIRED), a run
# that fails on an out-of-range action, the cells written with torch.mv (the
# GEMVs reach dyncc as linalg.generic multiply + reduction, not as a
# transposed weight and a linalg.matmul as nn.LSTMCell's do) or as
# W @ v[:, None] (a linalg.matmul [O, I] x [I, 1]), longer
# sequences with jumps and shuttles, and W3's Skim-RNN.
VARIANTS = {m: ["--method", m, "--cases", "64"] for m in METHODS}
VARIANTS.update({
    "rim-bad-action": ["--method", "rim", "--bad-action", "--cases", "64"],
    "skim_rnn-generic": ["--method", "skim_rnn", "--gemv", "mv", "--cases", "50"],
    "skim_rnn-mm": ["--method", "skim_rnn", "--gemv", "mm", "--cases", "50"],
    "lstm_shuttle-long": ["--method", "lstm_shuttle", "--seq", "40", "--budget", "60",
                          "--hidden", "32", "--max-jump", "6", "--read", "3", "--cases", "50"],
    "yu2018-long": ["--method", "yu2018", "--seq", "40", "--budget", "48", "--hidden", "32",
                    "--max-jump", "6", "--cases", "50"],
    # W3 (WORKLOADS.md): embeddings 128, big LSTM 256, small LSTM 32, 200 steps
    "w3-skim_rnn": ["--method", "skim_rnn", "--seq", "200", "--dim", "128", "--hidden", "256",
                    "--small", "32", "--cases", "50"],
})

TOL = 1e-4
JUNK = 0x7EADBEEF


# ---------------------------------------------------------------------------


def close(got, want):
    """max |got - want| / max(1, |want|) (inf where got is NaN)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
    err[np.isnan(err)] = np.inf
    return float(err.max()) if err.size else 0.0


def fmt_step(row, acts):
    pos, a, amt = (int(v) for v in row)
    kind = acts[a][0] if 0 <= a < len(acts) else "?"
    return f"(pos {pos}, action {a} {kind}, amount {amt})"


def trace_mismatch(case, got_steps, got, want_steps, want, acts, margins, limit=3):
    lines = []
    n = min(got_steps, want_steps)
    first = next((s for s in range(n) if not np.array_equal(got[s], want[s])), None)
    if first is None and got_steps != want_steps:
        first = n
    lines.append(f"  case {case}: {got_steps} step(s), the reference took {want_steps}; "
                 f"first difference at step {first}")
    for s in range(first, min(first + limit, max(got_steps, want_steps))):
        g = fmt_step(got[s], acts) if s < got_steps else "-"
        w = fmt_step(want[s], acts) if s < want_steps else "-"
        lines.append(f"    step {s}: compiled {g}, reference {w}")
    if margins is not None:
        lines.append(f"    (the reference's smallest decision margin in this case: {margins:.3g})")
    return lines


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--list":
        for k, v in VARIANTS.items():
            print(k, " ".join(v))
        return 0
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    dyncc, work, variant = sys.argv[1:4]
    rest = sys.argv[4:]
    batch = 0
    if rest[:1] == ["--batch"]:
        batch, rest = int(rest[1]), rest[2:]
    opts = VARIANTS.get(variant, []) + rest
    if not opts:
        print(f"unknown variant {variant!r} and no methods.py options (check_skip.py --list)")
        return 2
    name = "skim_" + "".join(c if c.isalnum() else "_" for c in variant)
    os.makedirs(work, exist_ok=True)
    t0 = time.time()
    _, a = methods.parse_args(opts + ["--out-dir", work, "--name", name])
    cfg = methods.config_of(a)
    g = methods.generate(cfg, a.cases, a.data_seed, a.min_margin, out_base=f"{work}/{name}")
    exp, results, cases, hist, ev = methods.expected(g), g.results, g.cases, g.hist, g.ev
    xs, clss, qs = cases
    N, S, B = a.cases, cfg.seq, cfg.budget
    acts = json.loads(str(exp["actions"]))
    t_gen = time.time() - t0

    # -- compile
    t0 = time.time()
    p = subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                        "--shared"] + ([f"--batch-buckets={batch}"] if batch else []),
                       capture_output=True, text=True)
    if p.returncode:
        print((p.stdout + p.stderr)[-4000:])
        print(f"{variant}: FAILED: dyncc compile {work}/{name}.mlir exited with {p.returncode}")
        return 1
    t_compile = time.time() - t0
    try:
        L = Library(f"{work}/lib/lib{name}.so", name)
        if not hasattr(L.lib, "dynrt_model_run_ex"):
            raise RuntimeError(f"{L.path} has no dynrt_model_run_ex")
    except (OSError, RuntimeError) as e:
        print(f"{variant}: FAILED: {e}")
        return 1
    d = L.desc
    problems = []
    if d.abi_version != ABI_VERSION:
        problems.append(f"descriptor ABI version {d.abi_version}, runtime/dynrt.h has {ABI_VERSION}")
    if batch:
        return check_batched(L, variant, name, work, exp, results, cases, cfg, batch, acts,
                             [str(n) for n in exp["outputs"]])
    ins, outs = L.inputs, L.outputs
    want_ins = [str(n) for n in exp["inputs"]]
    want_outs = [str(n) for n in exp["outputs"]]
    if [n for n, _, _ in ins] != want_ins:
        problems.append(f"inputs {[n for n, _, _ in ins]} != {want_ins}")
    want_shapes = [exp["state_" + n].shape[1:] for n in want_outs]
    if [s for _, _, s in outs] != [tuple(s) for s in want_shapes]:
        problems.append(f"outputs {[(n, s) for n, _, s in outs]}, expected the state "
                        f"{list(zip(want_outs, want_shapes))}")
    if not problems:
        skips = [(d.skips[i].sequence_length, d.skips[i].budget, d.skips[i].num_actions)
                 for i in range(d.num_skips)]
        if skips != [(S, B, len(acts))]:
            problems.append(f"descriptor skips (S, budget, actions) {skips} != "
                            f"{[(S, B, len(acts))]}")
    if problems:
        for pr in problems:
            print("  " + pr)
        print(f"{variant}: FAILED: the library's descriptor does not match the model")
        return 1

    m = L.create(f"{work}/{name}.safetensors")

    def inputs_of(i):
        v = [xs[i]]
        if cfg.uses_classes:
            v.append(clss[i])
        if cfg.uses_query:
            v.append(qs[i])
        return [np.ascontiguousarray(t) for t in v]

    def run(i, capacity=B, with_trace=True, skips=1, ex=True):
        """(status message or None, outputs, steps, trace buffer [rows, 3])"""
        arrs = inputs_of(i)
        y = [np.full(shape, np.nan, dt) for _, dt, shape in outs]
        rows = max(capacity, 0) + 2         # two guard rows past the capacity
        buf = np.full((rows, 3), JUNK, np.int32)
        rep = SkipReport(-7, capacity,
                         buf.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)) if with_trace else None)
        run_report = RunReport(0, None, skips, ctypes.pointer(rep) if skips else None)
        return L.try_run(arrs, y, run_report if ex else None), y, rep.steps, buf

    mismatches, worst = 0, 0.0
    msgs = []
    runs_ok, steps_ok, counts = 0, 0, np.zeros(len(acts), np.int64)
    errors_seen = 0
    t0 = time.time()
    for i in range(N):
        r = results[i]
        err, y, steps, buf = run(i)
        want_steps = int(exp["steps"][i])
        want = exp["trace"][i]
        bad = []
        if r.error is not None:
            # the run must fail at the reference's step, naming it
            e_step, e_pos, e_action = r.error
            if err is None:
                bad.append(f"  case {i}: the run succeeded, but step {e_step} (position {e_pos}) "
                           f"chose action {e_action}, outside [0, {len(acts)})")
            else:
                errors_seen += 1
                key = f"step {e_step} (position {e_pos}) chose action {e_action}"
                if key not in err:
                    bad.append(f"  case {i}: the status does not say {key!r}: {err!r}")
        elif err is not None:
            bad.append(f"  case {i}: the run failed: {err}")
        if steps != want_steps or not np.array_equal(buf[:want_steps], want[:want_steps]):
            bad += trace_mismatch(i, steps, buf, want_steps, want, acts, r.margin)
        elif not (buf[want_steps:B] == -1).all() or not (buf[B:] == JUNK).all():
            bad.append(f"  case {i}: trace rows past the {want_steps} step(s) are not -1 "
                       f"(or rows past the capacity were written): "
                       f"{buf[want_steps:].tolist()}")
        if r.error is None and err is None:
            e_state = max(close(y[k], exp["state_" + n][i]) for k, n in enumerate(want_outs))
            if e_state > TOL:
                k = max(range(len(y)), key=lambda k: close(y[k], exp["state_" + want_outs[k]][i]))
                bad.append(f"  case {i}: final state error {e_state:.3g} > {TOL} (in "
                           f"{want_outs[k]}; trace identical, {want_steps} steps)")
            worst = max(worst, e_state)
            runs_ok += 1
            steps_ok += steps
            for s in range(steps):
                counts[buf[s, 1]] += 1
        if bad:
            mismatches += 1
            msgs += bad

    # -- the report's corner cases on a few cases, and the plain run
    extra_bad = []
    picks = [i for i in range(N) if results[i].error is None and results[i].steps >= 2][:4]
    for i in picks:
        want_steps = int(exp["steps"][i])
        want = exp["trace"][i]
        cap = want_steps // 2
        err, y, steps, buf = run(i, capacity=cap)
        if err is not None or steps != want_steps or not np.array_equal(buf[:cap], want[:cap]) \
                or not (buf[cap:] == JUNK).all():
            extra_bad.append(f"  case {i}, capacity {cap} < {want_steps} steps: status {err!r}, "
                             f"steps {steps}, trace {buf.tolist()}")
        err2, y2, steps2, _ = run(i, capacity=0, with_trace=False)
        if err2 is not None or steps2 != want_steps:
            extra_bad.append(f"  case {i}, no trace (NULL, capacity 0): status {err2!r}, "
                             f"steps {steps2} (want {want_steps})")
        err3, y3, steps3, _ = run(i, skips=0)
        err4, y4, _, _ = run(i, ex=False)
        for label, e_, yy in (("capacity/2", err, y), ("no trace", err2, y2),
                              ("a report without skips", err3, y3),
                              ("dynrt_model_run", err4, y4)):
            if e_ is not None:
                extra_bad.append(f"  case {i}, {label}: the run failed: {e_}")
            elif max(close(yy[k], exp["state_" + n][i]) for k, n in enumerate(want_outs)) > TOL:
                extra_bad.append(f"  case {i}, {label}: a different final state")
        runs_ok += 4
        steps_ok += 4 * want_steps
        for s in range(want_steps):
            counts[want[s, 1]] += 4
    msgs += extra_bad
    t_run = time.time() - t0

    stats_text = "n/a"
    stats_ok = True
    if hasattr(L.lib, "dynrt_model_skip_stats"):
        r_runs, r_steps = ctypes.c_uint64(), ctypes.c_uint64()
        ac = (ctypes.c_uint64 * len(acts))()
        msg = L.status(L.lib.dynrt_model_skip_stats(m, 0, ctypes.byref(r_runs),
                                                    ctypes.byref(r_steps), ac, len(acts)))
        if msg is not None:
            msgs.append(f"  dynrt_model_skip_stats failed: {msg}")
            stats_ok = False
        elif mismatches == 0 and not extra_bad:
            got = (r_runs.value, r_steps.value, list(ac))
            want = (runs_ok, steps_ok, counts.tolist())
            if got != want:
                msgs.append(f"  dynrt_model_skip_stats: (runs, steps, action counts) {got}, the "
                            f"successful runs' sums are {want}")
                stats_ok = False
        stats_text = "OK" if stats_ok else "WRONG"
        if stats_ok and (mismatches or extra_bad):
            stats_text = "not compared"
    L.destroy()

    for line in msgs[:40]:
        print(line)
    if len(msgs) > 40:
        print(f"  ... {len(msgs) - 40} more line(s)")
    ok = mismatches == 0 and not extra_bad and stats_ok and worst <= TOL
    hist_text = ", ".join(f"{acts[k][0]}{'' if acts[k][0] != 'jump_to' else acts[k][1]} "
                          f"{hist[k]}" for k in range(len(acts)))
    ends = ", ".join(f"{k} {ev[k]}" for k in ("stop", "end", "start", "budget", "error") if ev[k])
    print(f"{variant}: {N - mismatches}/{N} cases with the reference's trace"
          f"{' and final state' if not cfg.bad_action else ', state or failure'}; "
          f"max state error {worst:.2g}; S={S} B={B} steps {int(exp['steps'].sum())} "
          f"({hist_text}; {ends}"
          + (f"; {errors_seen} failed runs named the bad step" if cfg.bad_action else "")
          + f"); report corner cases {'OK' if not extra_bad else 'WRONG'}; skip stats {stats_text}"
          + f" [gen {t_gen:.1f}s, compile {t_compile:.1f}s, run {t_run:.1f}s]"
          + ("" if ok else " -- FAILED"))
    return 0 if ok else 1


def check_batched(L, variant, name, work, exp, results, cases, cfg, batch, acts, want_outs):
    """The --batch mode: every case inside batches of `batch` samples."""
    xs, clss, qs = cases
    N, B = len(xs), cfg.budget
    if L.max_batch != batch or L.num_stages != 0:
        print(f"{variant}: FAILED: descriptor max_batch {L.max_batch}, stages {L.num_stages}")
        return 1
    L.create(f"{work}/{name}.safetensors")
    msgs, worst, done = [], 0.0, 0
    for start in range(0, N, batch):
        sel = list(range(start, min(N, start + batch)))
        if any(results[i].error is not None for i in sel):
            continue
        n = len(sel)
        arrs = [np.stack([xs[i] for i in sel])]
        if cfg.uses_classes:
            arrs.append(np.stack([clss[i] for i in sel]))
        if cfg.uses_query:
            arrs.append(np.stack([qs[i] for i in sel]))
        arrs = [np.ascontiguousarray(a) for a in arrs]
        y = [np.full((n,) + shape[1:], np.nan, dt) for _, dt, shape in L.outputs]
        buf = np.full((batch * B + 2, 3), JUNK, np.int32)
        per = np.full(batch, -5, np.int32)
        rep = SkipReport(-7, batch * B, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                         per.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)))
        err = L.try_run_batch(arrs, y, n, RunReport(0, None, 1, ctypes.pointer(rep)))
        if err is not None:
            msgs.append(f"  batch at case {start}: the run failed: {err}")
            continue
        row = 0
        for k, i in enumerate(sel):
            want_steps, want = int(exp["steps"][i]), exp["trace"][i]
            got = buf[row:row + per[k]]
            if per[k] != want_steps or not np.array_equal(got, want[:want_steps]):
                msgs += trace_mismatch(i, int(per[k]), got, want_steps, want, acts, results[i].margin)
            row += max(int(per[k]), 0)
            e = max(close(y[o][k], exp["state_" + nm][i]) for o, nm in enumerate(want_outs))
            worst = max(worst, e)
            if e > TOL:
                msgs.append(f"  case {i}: final state error {e:.3g} > {TOL} in a batch of {n}")
            done += 1
        if rep.steps != row or (per[n:] != 0).any():
            msgs.append(f"  batch at case {start}: {rep.steps} steps reported, the samples' "
                        f"steps add to {row}; entries past the batch {per[n:].tolist()}")
    L.destroy()
    for line in msgs[:40]:
        print(line)
    ok = not msgs and worst <= TOL and done > 0
    print(f"{variant} --batch {batch}: {done} cases in batches, {len(msgs)} problem(s); "
          f"max state error {worst:.2g}" + ("" if ok else " -- FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    faulthandler.enable()
    sys.exit(main())
