#!/usr/bin/env python3
"""Differential test of one exit criterion: generates an early-exit encoder
with examples/early-exit/make_early_exit.py (PyTorch reference), compiles it
with dyncc into a shared object, runs every case at every threshold through
the C API (ctypes) and compares the exit layers exactly and the logits to
1e-4 with the reference.

  check_criteria.py DYNCC WORKDIR CRITERION [make_early_exit options...]
"""
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "runtime", "python"))

from dynrt_ctypes import Library, ModelStats  # noqa: E402

PARAM = {"patience": "patience", "per_class": "class_thresholds"}


def main():
    dyncc, work, criterion = sys.argv[1:4]
    extra = sys.argv[4:]
    os.makedirs(work, exist_ok=True)
    name = "ee_" + criterion
    subprocess.run([sys.executable, os.path.join(ROOT, "examples/early-exit/make_early_exit.py"),
                    "--criterion", criterion, "--out-dir", work, "--name", name] + extra,
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run([dyncc, "compile", f"{work}/{name}.mlir", "-o", f"{work}/lib/{name}",
                    "--shared"], check=True)
    L = Library(f"{work}/lib/lib{name}.so", name)
    L.create(f"{work}/{name}.safetensors")
    xs = np.load(f"{work}/{name}.x.npy").astype(np.float32)
    want = np.load(f"{work}/{name}.expected.npz")
    thresholds, layers, logits = want["thresholds"], want["exit_layer"], want["logits"]
    param = PARAM.get(criterion, "theta")
    mismatches, worst, hist = 0, 0.0, {}
    for t in range(len(thresholds)):
        L.set_param(param, np.atleast_1d(thresholds[t]))
        for k in range(xs.shape[0]):
            x = np.ascontiguousarray(xs[k])
            out = np.full(logits.shape[2:], np.nan, np.float32)
            lay = np.full(layers.shape[2:], -1, np.int32)
            L.run([x], [out, lay])
            if not np.array_equal(lay, layers[t, k]):
                mismatches += 1
                if mismatches <= 5:
                    print(f"threshold {thresholds[t]} case {k}: exit layer {lay} != {layers[t, k]}")
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
    for l in layers.ravel():
        expected[int(l)] = expected.get(int(l), 0) + 1
    if mismatches == 0 and counted != expected:
        print(f"exit histogram {counted} != {expected}")
        mismatches += 1
    L.destroy()
    total = len(thresholds) * xs.shape[0]
    print(f"{criterion}: {total - mismatches}/{total} runs with the reference's exit "
          f"layers; max logit error {worst:.2g}; exit layers {dict(sorted(hist.items()))}")
    sys.exit(0 if mismatches == 0 and worst <= 1e-4 else 1)


if __name__ == "__main__":
    main()
