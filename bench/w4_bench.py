#!/usr/bin/python3
"""W4 of WORKLOADS.md: the W2 early-exit encoder at batch 32, exit layers
spread over 1..12, compiled by dyncc with batch buckets next to the eager
PyTorch batched loop, in one process, interleaved. Prints a markdown table.

The model: examples/early-exit/model.py --criterion entropy at its defaults
(a dyncc.nn.EarlyExit module: 12 post-LN layers, d=256, 4 heads, d_ff=1024,
seq 128, 2 classes), exported by dyncc.export at batch 1 (a per-sample
model; the export runs in the project's .venv, --venv-python), 32 cases =
the batch. dyncc compiles it twice
with `--shared --batch-buckets=1,4,8,16,32`: `--compaction=auto` (after
each exit point the still-active samples are gathered into a dense prefix
when the cost model says the smaller bucket pays for it) and
`--compaction=never` (the stages run at the bucket of the slots in use: the
batch runs whole until its last samples exit, as eager does). Both run the
32 samples with dynrt_model_run_batch.

The threshold (runtime parameter theta, entropy < theta exits) is chosen on
the float32 eager model's full-depth statistics of the 32 samples: among
thresholds in the gaps of the statistic, one whose mean exit layer is within
0.5 of (L + 1) / 2, with the most distinct exit layers, then the widest
margin (--theta overrides). Rows:

  - dyncc, compaction: the auto library at theta
  - dyncc, no compaction: the never library at theta
  - dyncc, full depth: the auto library at theta = 0 (never exits: all L
    layers at batch 32); ideal = its throughput x L / mean exit layer
  - PyTorch eager, batched loop: the same dyncc.nn.EarlyExit module's
    forward (the whole batch through every layer while any sample is
    active, the criterion after each), float32, no_grad, same weights
    (loaded from the exported safetensors), inputs and theta
  - PyTorch eager, full depth: the plain encoder (torch_eager.Encoder, same
    layers and final head), no exits

Checks before timing (a failure exits 1): the exit layers of the compaction
run equal those of the never run and of the eager batched loop; their logits
agree with the eager loop's to 1e-3 (relative to max(1, |x|)); the full
depth run exits nowhere; the eager loop's exit layers equal those decided
on its full-depth logits.

Timing: after --warmup runs per side, --rounds rounds of --runs cycles; a
cycle runs every side once, back to back, a pause (--pause, outlasting the
other side's spinning thread pool) before each run; the order of the sides
reverses every round. Times: the median over all runs of a side. Ratios (vs
eager, vs ideal): the median over the cycles of the ratio within the cycle:
this shared machine's speed drifts by up to ~30% over seconds, and the sides
of one cycle see the same state. The vs-ideal ratio of compaction is also
given as min..max over the cycles.

  w4_bench.py --dyncc build/tools/dyncc/dyncc [--work DIR] [--runs 5] [--rounds 3]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EE = os.path.join(ROOT, "examples", "early-exit")
sys.path.insert(0, EE)
sys.path.insert(0, os.path.join(ROOT, "examples", "encoder"))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

import model as ee  # noqa: E402  (sets OPENBLAS_CORETYPE before torch loads)
from dyncc.nn.exits import Criterion  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_util import OtherLoad, record_target, smoke_test, cpu_name, timed, close  # noqa: E402
import torch  # noqa: E402

import dynrt_ctypes  # noqa: E402


# Runs a compiled bucketed model once on the batch in a child process, so
# that a library that crashes is reported instead of killing the benchmark.
SMOKE = r"""
import sys
import numpy as np
so, name, weights, where, xpath, theta = sys.argv[1:7]
sys.path.insert(0, where)
from dynrt_ctypes import Library
L = Library(so, name)
try:
    if L.max_batch <= 0:
        sys.exit("the library is not bucketed (max_batch 0)")
    L.create(weights, num_threads=2)
    L.set_param("theta", [float(theta)])
    x = np.ascontiguousarray(np.load(xpath).astype(np.float32))
    n = x.shape[0]
    outs = [np.zeros((n,) + shape[1:], dt) for _, dt, shape in L.outputs]
    L.run_batch([x], outs, n)
except RuntimeError as e:
    sys.exit(str(e))
"""


def aligned(shape, dtype):
    """A zeroed, 64-byte aligned array (run_batch copies unaligned buffers)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.zeros(n + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + n].view(dtype).reshape(shape)


class Compiled:
    """The per-sample model compiled by dyncc --shared --batch-buckets."""

    def __init__(self, dyncc, mlir, work, name, weights, buckets, compaction, threads,
                 xpath, theta, reuse=False):
        out = os.path.join(work, "lib", name)
        so = os.path.join(work, "lib", f"lib{name}.so")
        t0 = time.time()
        if reuse and os.path.exists(so):
            p = subprocess.CompletedProcess([], 0)
            self.compile_s = None
        else:
            p = subprocess.run([dyncc, "compile", mlir, "-o", out, "--shared",
                                f"--batch-buckets={buckets}", f"--compaction={compaction}"],
                               capture_output=True, text=True)
            self.compile_s = time.time() - t0
        if p.returncode:
            err = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if "error" in ln]
            raise RuntimeError(err[0] if err else
                               (p.stderr or p.stdout).strip() or f"dyncc exited with {p.returncode}")
        smoke_test(SMOKE, so, name, weights, os.path.dirname(dynrt_ctypes.__file__), xpath, repr(theta))
        self.L = dynrt_ctypes.Library(so, name)
        self.L.create(weights, num_threads=threads)

    def run(self, x, theta):
        """(logits [n, C], exit_layer [n], active [stages], bucket [stages])"""
        n = x.shape[0]
        _, dt_z, shape_z = self.L.outputs[0]
        z = aligned((n,) + shape_z[1:], dt_z)
        z[...] = np.nan
        e = aligned((n,), np.int32)
        e[...] = -7
        self.L.set_param("theta", [theta])
        rep, active, bucket = self.L.stage_report()
        self.L.run_batch([x], [z, e], n, rep)
        return (z.reshape(n, -1).copy(), e.copy(), list(active)[:self.L.num_stages],
                list(bucket)[:self.L.num_stages])

    def bind(self, x, theta):
        """(setup, fn): setup sets theta; fn runs the batch (no report)."""
        n = x.shape[0]
        outs = [aligned((n,) + shape[1:], dt) for _, dt, shape in self.L.outputs]
        ip, op = dynrt_ctypes.pointers([x]), dynrt_ctypes.pointers(outs)
        lib, model, check = self.L.lib, self.L.model, self.L.check
        run = lib.dynrt_model_run_batch

        def go(_keep=(x, outs, ip, op)):
            st = run(model, n, ip, op, None)
            if st:
                check(st, "run_batch")
        return (lambda: self.L.set_param("theta", [theta])), go





def choose_theta(stat, logits32, L):
    """(theta, exit layers, margin): see the module docstring."""
    kind = "entropy"
    u = np.unique(stat[np.isfinite(stat)].astype(np.float64))
    target = (L + 1) / 2
    best = None
    for j in range(len(u) - 1):
        v = ee.nice_inside(u[j], u[j + 1])
        e = ee.exit_layers(kind, stat, None, v)
        m = float(ee.margins(kind, v, stat, logits32, e).min())
        key = (abs(float(e.mean()) - target) > 0.5, m < 1e-3, -len(np.unique(e)), -m)
        if best is None or key < best[0]:
            best = (key, v, e, m)
    if best is None:
        raise SystemExit("w4_bench: the statistic has no gaps to put a threshold in")
    return best[1], best[2], best[3]


def histogram(e, L):
    return np.bincount(np.asarray(e).reshape(-1), minlength=L + 1)[1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dyncc", required=True, help="the dyncc binary")
    ap.add_argument("--work", default=None, help="scratch directory (default: a temporary one)")
    ap.add_argument("--layers", type=int, default=12, help="(debugging: fewer layers)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--buckets", default="1,4,8,16,32")
    ap.add_argument("--compaction", default="auto", help="the compacting library's policy")
    ap.add_argument("--theta", type=float, default=None, help="default: chosen (see above)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5, help="timed runs per side and round")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--pause", type=float, default=0.25)
    ap.add_argument("--venv-python", default=os.path.join(ROOT, ".venv", "bin", "python"),
                    help="the Python that exports the model (torch-mlir)")
    ap.add_argument("--reuse", action="store_true",
                    help="with --work: use the libraries already compiled there (same sizes)")
    a = ap.parse_args()
    if int(a.buckets.split(",")[-1]) != a.batch:
        ap.error("the last bucket must be --batch")

    torch.set_num_threads(a.threads)
    work = a.work or tempfile.mkdtemp(prefix="w4_")
    os.makedirs(work, exist_ok=True)
    name = "w4"
    t_start = time.time()
    log = lambda *m: print("w4_bench:", *m, file=sys.stderr, flush=True)  # noqa: E731
    notes, bad = [], False
    try:
        p = subprocess.run([a.venv_python, os.path.join(EE, "model.py"),
                            "--criterion", "entropy", "--layers", str(a.layers),
                            "--cases", str(a.batch), "--no-expected", "--out-dir", work,
                            "--name", name], capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"w4_bench: model.py failed:\n{p.stderr}")
        base = os.path.join(work, name)
        weights, mlir, xpath = base + ".safetensors", base + ".mlir", base + ".x.npy"
        xin = np.load(xpath).astype(np.float32)                 # [B, 1, S, D]
        xin = xin.reshape(xin.shape[0], *xin.shape[2:])         # [B, S, D]
        x = aligned(xin.shape, np.float32)
        x[...] = xin
        B = x.shape[0]
        xt = torch.from_numpy(x)

        model = ee.load_weights(ee.build_model("entropy", layers=a.layers, fit=False), weights)
        L = model.num_layers
        z_all, _ = ee.full_depth(model, xt)                     # [B, L, C] float32
        logits32 = z_all.numpy()
        _, stat = ee.decide(Criterion("entropy", theta=0.5), z_all)
        stat = stat.numpy()                                     # [B, L-1]
        if a.theta is None:
            theta, e_pred, margin = choose_theta(stat, logits32, L)
        else:
            theta = a.theta
            e_pred = ee.exit_layers("entropy", stat, None, theta)
            margin = float(ee.margins("entropy", theta, stat, logits32, e_pred).min())
        theta = float(np.float32(theta))
        ee.set_threshold(model, theta)
        mean = float(np.mean(e_pred))
        row = dict(theta=theta, margin=margin, mean=mean, hist=histogram(e_pred, L))
        log(f"theta {theta:.6g}: mean exit layer {mean:.2f}, histogram "
            f"{histogram(e_pred, L).tolist()}, margin {margin:.3g}")

        # the eager loop
        plain = ee.plain_encoder(model)
        with torch.no_grad():
            ze = model(xt)
            el = model.exit_layer
            zf = plain(xt)
        ze, el, zf = ze.numpy(), el.numpy(), zf.numpy().reshape(B, -1)
        row["eager_pred_ok"] = np.array_equal(el, e_pred)
        if not row["eager_pred_ok"]:
            notes.append(f"ERROR: the eager batched loop's exit layers {el.tolist()} differ from "
                         f"those decided on its full-depth logits {e_pred.tolist()}")
            bad = True

        sides = {}
        sides["eager"] = (None, lambda: model(xt))
        sides["eager_full"] = (None, lambda: plain(xt))

        libs = {}
        for key, policy in (("auto", a.compaction), ("never", "never")):
            log(f"compiling the {L}-layer model, buckets {a.buckets}, --compaction={policy} ...")
            try:
                libs[key] = Compiled(a.dyncc, mlir, work, f"{name}_{policy}", weights, a.buckets,
                                     policy, a.threads, xpath, theta, reuse=a.reuse)
                if libs[key].compile_s is not None:
                    log(f"  compiled in {libs[key].compile_s:.0f} s")
                    row[f"{key}_compile_s"] = libs[key].compile_s
                else:
                    log("  reused")
            except RuntimeError as e:
                notes.append(f"ERROR: no dyncc library with --compaction={policy}: {e}")
                bad = True

        # correctness, before timing
        runs = {}
        for key, lib in libs.items():
            z, e, act, bkt = lib.run(x, theta)
            runs[key] = (z, e, act, bkt)
            if not np.array_equal(e, el):
                notes.append(f"ERROR: exit layers of dyncc ({key}) {e.tolist()} != eager batched "
                             f"loop's {el.tolist()}")
                bad = True
            err = close(z, ze)
            row[f"{key}_err"] = err
            if err > 1e-3:
                notes.append(f"ERROR: logits of dyncc ({key}) differ from the eager loop's by {err:.3g}")
                bad = True
        if "auto" in runs and "never" in runs and not np.array_equal(runs["auto"][1], runs["never"][1]):
            notes.append(f"ERROR: exit layers, compaction {runs['auto'][1].tolist()} != no compaction "
                         f"{runs['never'][1].tolist()}")
            bad = True
        if "auto" in libs:
            z, e, act, bkt = libs["auto"].run(x, 0.0)
            runs["full"] = (z, e, act, bkt)
            row["full_err"] = close(z, zf)
            if not (e == L).all() or row["full_err"] > 1e-3:
                notes.append(f"ERROR: full depth (theta = 0): exit layers {e.tolist()}, logits vs "
                             f"the eager encoder {row['full_err']:.3g}")
                bad = True
            sides["auto"] = libs["auto"].bind(x, theta)
            sides["full"] = libs["auto"].bind(x, 0.0)
        if "never" in libs:
            sides["never"] = libs["never"].bind(x, theta)

        # interleaved timing
        # compaction and full depth (the headline ratio) next to each other
        order0 = [n for n in ("auto", "full", "never", "eager", "eager_full") if n in sides]
        times = {n: [] for n in order0}
        cycles = []

        def block(n, count):
            setup, fn = sides[n]
            if setup is not None:
                setup()
            with torch.no_grad():
                return timed(fn, count)

        log(f"timing {len(order0)} sides, {a.rounds} rounds x {a.runs} runs ...")
        for n in order0:
            block(n, a.warmup)
        with OtherLoad() as load:
            for r in range(a.rounds):
                order = order0 if r % 2 == 0 else order0[::-1]
                for _ in range(a.runs):
                    t = {}
                    for n in order:
                        if a.pause > 0:
                            time.sleep(a.pause)
                        t[n] = block(n, 1)[0]
                        times[n].append(t[n])
                    cycles.append(t)
        row["others"] = load.others
        for n in order0:
            row[n] = statistics.median(times[n])
    finally:
        if a.work is None:
            shutil.rmtree(work, ignore_errors=True)
    elapsed = time.time() - t_start

    cpu = cpu_name()
    print(f"## W4: early-exit encoder, batch {B} ({time.strftime('%Y-%m-%d', time.gmtime())}, "
          f"{cpu}, {a.threads} threads)")
    print()
    print(f"The W2 model ({L} post-LN layers, d=256, 4 heads, d_ff=1024, seq 128, a 2-class head "
          f"after every layer, entropy criterion), compiled per sample and batched by dyncc "
          f"(`--batch-buckets={a.buckets}`), {B} samples per run (`dynrt_model_run_batch`), "
          f"theta = {theta:.6g} (chosen on the eager model's full-depth entropies: mean exit layer "
          f"{mean:.2f}, margin {margin:.2g}). Exit layers of the {B} samples, and per stage (layer "
          "l and its exit point) the samples still active and the bucket it ran at (the runs' "
          "reports); per sample: the mean exit layer, = sum(active) / batch, and sum(bucket) / "
          "batch, the layers each sample pays for:")
    print()
    print("| layer | " + " | ".join(str(l) for l in range(1, L + 1)) + " | per sample |")
    print("|---|" + "---:|" * (L + 1))
    print("| samples exiting | " + " | ".join(str(c) for c in row["hist"]) + f" | {mean:.2f} |")
    if "auto" in runs:
        act, bkt = runs["auto"][2], runs["auto"][3]
        print("| active at the stage | " + " | ".join(str(v) for v in act)
              + f" | {sum(act) / B:.2f} |")
        print(f"| bucket, compaction (`{a.compaction}`) | " + " | ".join(str(v) for v in bkt)
              + f" | {sum(bkt) / B:.2f} |")
    if "never" in runs:
        bkt = runs["never"][3]
        print("| bucket, no compaction (`never`) | " + " | ".join(str(v) for v in bkt)
              + f" | {sum(bkt) / B:.2f} |")
    print()
    print(f"Rows: `--compaction={a.compaction}` and `--compaction=never` libraries at theta; full "
          f"depth = the {a.compaction} library at theta = 0 (all {L} layers at batch {B}); ideal = "
          f"full-depth throughput x {L} / mean exit layer; PyTorch eager batched loop = "
          "the dyncc.nn.EarlyExit module's forward (examples/early-exit/model.py: the whole batch "
          "through every layer until the last sample exits), eager full depth = the plain encoder, float32, no_grad, "
          f"same weights, inputs and theta, in one process, interleaved run by run: median of "
          f"{a.rounds * a.runs} runs of the batch per side, ratios = median over those cycles of "
          "the ratio within a cycle (the sides back to back); OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}. vs eager: against the eager batched "
          "loop (full-depth dyncc: against eager full depth). Exit layers checked: compaction = no "
          "compaction = eager batched loop. Target: compaction >= 0.8x ideal.")
    print()
    print("| | samples/s | ms per batch | vs eager | vs ideal |")
    print("|---|---:|---:|---:|---:|")

    def cyc(num, den):
        """Median over the cycles of time(num) / time(den); "ideal" is the
        full-depth time x mean / L of the same cycle."""
        t = lambda c, k: c["full"] * mean / L if k == "ideal" else c[k]  # noqa: E731
        need = {num, den} - {"ideal"} | ({"full"} if "ideal" in (num, den) else set())
        r = [t(c, num) / t(c, den) for c in cycles if need <= set(c)]
        return (statistics.median(r), min(r), max(r)) if r else None

    def line(label, k, vs, bold=False, extra=False):
        if k not in row and k != "ideal":
            print(f"| {label} | n/a | n/a | n/a | n/a |")
            return
        t = row["full"] * mean / L if k == "ideal" else row[k]
        ve, vi = cyc(vs, k), cyc("ideal", k)
        ve = f"{ve[0]:.2f}x" if ve else "n/a"
        if vi:
            rng = f" ({vi[1]:.2f}..{vi[2]:.2f})" if extra else ""
            vi = (f"**{vi[0]:.2f}**" if bold else f"{vi[0]:.2f}") + rng
        else:
            vi = "n/a"
        print(f"| {label} | {B / t:.1f} | {t * 1e3:.1f} | {ve} | {vi} |")

    line(f"dyncc, compaction (`{a.compaction}`)", "auto", "eager", bold=True, extra=True)
    if "auto" in row and cyc("ideal", "auto"):
        record_target(f"W4 (buckets {a.buckets}): compaction's throughput / ideal",
                      cyc("ideal", "auto")[0], 0.8)
    line("dyncc, no compaction (`never`)", "never", "eager")
    line(f"dyncc, full depth ({L} layers)", "full", "eager_full")
    if "full" in row:
        line(f"ideal (full depth x {L} / {mean:.2f})", "ideal", "eager")
    line("PyTorch eager, batched loop", "eager", "eager")
    line(f"PyTorch eager, full depth ({L} layers)", "eager_full", "eager_full")
    print()
    if "auto" in runs:
        act, bkt = runs["auto"][2], runs["auto"][3]
        print(f"- the buckets' bound: sum(active) / sum(bucket) = {sum(act)}/{sum(bkt)} = "
              f"{sum(act) / max(1, sum(bkt)):.2f} of ideal for compaction (if a stage's time is "
              "proportional to its bucket)")
    checks = []
    for k in ("auto", "never"):
        if f"{k}_err" in row:
            checks.append(f"{k} {row[k + '_err']:.1g}")
    if "full_err" in row:
        checks.append(f"full depth vs eager encoder {row['full_err']:.1g}")
    print(f"- logits, max error vs eager: {', '.join(checks) or 'n/a'}")
    comp = ", ".join(f"{k} {row[k + '_compile_s']:.0f} s" for k in ("auto", "never")
                     if k + "_compile_s" in row)
    print(f"- compile times: {comp or 'n/a'}; whole bench {elapsed:.0f} s; other load while "
          f"timing: {row['others']:.2f} cores")
    for n in notes:
        print(f"- {n}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
