#!/usr/bin/env python3
"""Differential test of batched early exit (dyncc compile --batch-buckets):
builds the per-sample early-exit encoder of examples/early-exit/model.py (a
dyncc.nn.EarlyExit module), exports it at batch 1 with dyncc.export,
compiles it twice (as exported, one sample per run; and bucketed), and at
every threshold of model.py's spread runs the cases as batches through
dynrt_model_run_batch. Every sample's exit layer must equal its batch-1
run's exactly and the eager module's (samples within 1e-4 of the threshold
may differ from eager: counted and reported), its logits its batch-1 run's
to 1e-5 (kernels of other batch sizes may sum in another order) and the
eager module's to 1e-4; the run
report's active count per stage must equal the samples whose exit layer is
past the stage, and its bucket must be the one the compaction policy picks.
Outputs are poisoned before every run, and every batch is run twice: the
second run must give the same bits.

  check_batch.py DYNCC WORKDIR CRITERION BUCKETS POLICY [model.py options...]
"""
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "early-exit"))

import model as ee  # noqa: E402
from dynrt_ctypes import Library, RunReport  # noqa: E402

NEAR = 1e-4

PARAM = {"patience": "patience", "per_class": "class_thresholds"}


def smallest(buckets, n):
    return next(b for b in buckets if b >= n)


def expected_buckets(buckets, layers, policy, stages):
    """The bucket of every stage for the exit layers of one batch (the
    runtime's compaction rule; auto compacts whenever the bucket shrinks, as
    the gather is far cheaper than a stage here)."""
    n = len(layers)
    slots = list(range(n))        # slot of each alive sample
    alive = list(range(n))
    out = []
    for s in range(stages):
        if not alive:
            out.append(0)
            continue
        used = max(slots[j] for j in alive) + 1
        out.append(smallest(buckets, used))
        exited = [j for j in alive if layers[j] == s + 1]
        alive = [j for j in alive if layers[j] != s + 1]
        if not alive:
            continue
        used = max(slots[j] for j in alive) + 1
        compact = (policy == "always" and (exited or used > len(alive))) or \
                  (policy == "auto" and smallest(buckets, len(alive)) < smallest(buckets, used))
        if compact:
            for i, j in enumerate(sorted(alive, key=lambda j: slots[j])):
                slots[j] = i
    return out


def main():
    dyncc, work, criterion, buckets, policy = sys.argv[1:6]
    extra = sys.argv[6:]
    buckets = [int(b) for b in buckets.split(",")]
    B = buckets[-1]
    os.makedirs(work, exist_ok=True)
    name = "bb_" + criterion
    a = ee.parser().parse_args(["--criterion", criterion, "--out-dir", work, "--name", name,
                                "--cases", str(B)] + extra)
    _, values, _, xs, (layers, logits, margin) = ee.generate(a)
    subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/one/{name}",
                    "--shared"], check=True)
    subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/batch/{name}",
                    "--shared", f"--batch-buckets={','.join(map(str, buckets))}",
                    f"--compaction={policy}"], check=True)
    one = Library(f"{work}/one/lib{name}.so", name)
    one.create(f"{work}/{name}.safetensors")
    bat = Library(f"{work}/batch/lib{name}.so", name)
    bat.create(f"{work}/{name}.safetensors")
    desc = bat.desc
    stages = desc.num_stages
    assert desc.max_batch == B, (desc.max_batch, B)
    xs = xs.numpy()                     # [B cases, 1, S, D]
    thresholds = values
    param = PARAM.get(criterion, "theta")
    failures, worst_one, worst_ref, runs, seen, near = 0, 0.0, 0.0, 0, set(), 0

    def fail(msg):
        nonlocal failures
        failures += 1
        if failures <= 8:
            print(msg)

    for t in range(len(thresholds)):
        th = np.atleast_1d(np.asarray(thresholds[t], np.float32))
        one.set_param(param, th)
        bat.set_param(param, th)
        # Batch-1 results of every case.
        z1, l1 = [], []
        for k in range(B):
            out = np.full(logits.shape[2:], np.nan, np.float32)
            lay = np.full(layers.shape[2:], -1, np.int32)
            one.run([np.ascontiguousarray(xs[k])], [out, lay])
            z1.append(out)
            l1.append(lay)
        z1, l1 = np.stack(z1), np.stack(l1).reshape(B)
        diff = l1 != layers[t, :B].reshape(B)
        m1 = margin[t, :B].reshape(B)
        near += int((diff & (m1 < NEAR)).sum())
        if (m1[diff] >= NEAR).any():
            fail(f"threshold {th}: batch-1 exit layers {l1} != eager {layers[t, :B].ravel()}")
        agree = ~diff
        # Batches: the full one, a partial one, a single sample, a shuffled one.
        rng = np.random.default_rng(t)
        for sel in (np.arange(B), np.arange(min(13, B)), np.arange(1),
                    rng.permutation(B)[: max(1, (3 * B) // 4)]):
            n = len(sel)
            x = np.ascontiguousarray(xs[sel])
            out = np.full((n,) + logits.shape[2:], np.nan, np.float32)
            lay = np.full((n,), -7, np.int32)
            report = RunReport()
            active = (np.full(stages, -5, np.int32))
            bucket = (np.full(stages, -5, np.int32))
            report.num_stages = stages
            report.active = active.ctypes.data_as(type(report.active))
            report.bucket = bucket.ctypes.data_as(type(report.bucket))
            bat.run_batch([x], [out, lay], n, report)
            runs += 1
            # Deterministic: the same batch again gives the same bits (a
            # kernel whose parallel tasks race on an output would not).
            again, lay2 = np.full_like(out, np.nan), np.full_like(lay, -7)
            bat.run_batch([x], [again, lay2], n)
            if not (np.array_equal(again, out) and np.array_equal(lay2, lay)):
                fail(f"threshold {th} batch {n}: a second run of the same batch differs "
                     f"(max {float(np.nanmax(np.abs(again - out))):.3g})")
            if not np.array_equal(lay, l1[sel]):
                fail(f"threshold {th} batch {n}: exit layers {lay} != batch-1 {l1[sel]}")
                continue
            seen.update(int(v) for v in lay)
            worst_one = max(worst_one, float((np.abs(out - z1[sel]) / np.maximum(1.0, np.abs(z1[sel]))).max()))
            ref = logits[t, sel].reshape(out.shape)
            ok = agree[sel]
            if ok.any():
                worst_ref = max(worst_ref, float((np.abs(out - ref)[ok] /
                                                  np.maximum(1.0, np.abs(ref[ok]))).max()))
            want_active = [int((lay > s).sum()) for s in range(stages)]
            if list(active) != want_active:
                fail(f"threshold {th} batch {n}: active per stage {list(active)} != {want_active}")
            want_bucket = expected_buckets(buckets, list(lay), policy, stages)
            if list(bucket) != want_bucket:
                fail(f"threshold {th} batch {n} ({policy}): buckets {list(bucket)} != {want_bucket}"
                     f" for exit layers {list(lay)}")
    one.destroy()
    bat.destroy()
    ok = failures == 0 and worst_one <= 1e-5 and worst_ref <= 1e-4
    if len(seen) < 2:
        fail(f"only exit layers {sorted(seen)} seen: the test decides nothing")
        ok = False
    print(f"{criterion} buckets {buckets} compaction {policy}: {runs} batched runs, "
          f"{failures} failures; max logit difference to batch 1 {worst_one:.2g}, "
          f"to the eager module {worst_ref:.2g}; exit layers seen {sorted(seen)}; "
          f"{near} batch-1 samples within {NEAR:g} of the threshold exited elsewhere than eager")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
