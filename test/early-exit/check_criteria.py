#!/usr/bin/env python3
"""Differential test of one exit criterion: builds the early-exit encoder of
examples/early-exit/model.py (a dyncc.nn.EarlyExit module), exports it with
dyncc.export, compiles it with dyncc into a shared object, runs every case at
every threshold through the C API (ctypes) and compares the exit layers
exactly and the logits to 1e-4 with the eager module. A sample whose
criterion value is within 1e-4 of the threshold (float32 GEMMs round
differently) may exit elsewhere: such samples are counted and reported.

  check_criteria.py DYNCC WORKDIR CRITERION [model.py options...]
"""
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))
sys.path.insert(0, os.path.join(ROOT, "examples", "early-exit"))

import model as ee  # noqa: E402
from dynrt_ctypes import Library, ModelStats  # noqa: E402

NEAR = 1e-4

PARAM = {"patience": "patience", "per_class": "class_thresholds"}


def main():
    dyncc, work, criterion = sys.argv[1:4]
    extra = sys.argv[4:]
    os.makedirs(work, exist_ok=True)
    name = "ee_" + criterion
    a = ee.parser().parse_args(["--criterion", criterion, "--out-dir", work, "--name", name] + extra)
    _, values, _, xs, (layers, logits, margin) = ee.generate(a)
    subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                    "--shared"], check=True)
    L = Library(f"{work}/lib/lib{name}.so", name)
    L.create(f"{work}/{name}.safetensors")
    xs = xs.numpy()
    thresholds = values
    param = PARAM.get(criterion, "theta")
    mismatches, near, worst, hist = 0, 0, 0.0, {}
    got_layers = np.zeros_like(layers)
    for t in range(len(thresholds)):
        L.set_param(param, np.atleast_1d(np.asarray(thresholds[t], np.float32)))
        for k in range(xs.shape[0]):
            x = np.ascontiguousarray(xs[k])
            out = np.full(logits.shape[2:], np.nan, np.float32)
            lay = np.full(layers.shape[2:], -1, np.int32)
            L.run([x], [out, lay])
            got_layers[t, k] = lay
            diff = lay != layers[t, k]
            if diff.any():
                if (margin[t, k][diff] < NEAR).all():
                    near += int(diff.sum())
                else:
                    mismatches += 1
                    if mismatches <= 5:
                        print(f"threshold {thresholds[t]} case {k}: exit layer {lay} != "
                              f"{layers[t, k]} (margin {margin[t, k].min():.2g})")
                continue
            err = np.abs(out - logits[t, k]) / np.maximum(1.0, np.abs(logits[t, k]))
            worst = max(worst, float(err.max()))
            for l in lay.ravel():
                hist[int(l)] = hist.get(int(l), 0) + 1
    # The runtime's exit histogram counts every sample of every run.
    stats = ModelStats()
    L.check(L.lib.dynrt_model_stats(L.model, stats), "dynrt_model_stats")
    counted = {l: n for l, n in enumerate(stats.exit_histogram) if n}
    expected = {}
    for l in got_layers.ravel():
        expected[int(l)] = expected.get(int(l), 0) + 1
    if mismatches == 0 and counted != expected:
        print(f"exit histogram {counted} != {expected}")
        mismatches += 1
    L.destroy()
    total = len(thresholds) * xs.shape[0]
    print(f"{criterion}: {total - mismatches}/{total} runs with the eager module's exit "
          f"layers ({near} samples within {NEAR:g} of the threshold exited elsewhere); "
          f"max logit error {worst:.2g}; exit layers {dict(sorted(hist.items()))}")
    if len(hist) < 2:
        print(f"only exit layers {sorted(hist)} seen: the test decides nothing")
        mismatches += 1
    sys.exit(0 if mismatches == 0 and worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
