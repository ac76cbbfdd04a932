"""Checks run/gelu-tanh-nan.test's outputs against float64 (argv[1]: the run's folder)."""
import math
import sys

import numpy as np

d = sys.argv[1]
x, w = np.load(d + "/x.npy"), np.load(d + "/w.npy")
with np.errstate(invalid="ignore"):
    mm = x.astype(np.float64) @ w.astype(np.float64)
    erf = np.vectorize(lambda v: math.erf(v) if not math.isnan(v) else v)
    want = [mm * 0.5 * (1 + erf(mm / math.sqrt(2))), np.tanh(2 * mm + 1)]
for i, ref in enumerate(want):
    y = np.load(f"{d}/output{i}.npy").astype(np.float64)
    assert (np.isnan(y) == np.isnan(ref)).all(), (i, np.argwhere(np.isnan(y) != np.isnan(ref)))
    inf = np.isinf(ref)
    assert (y[inf] == ref[inf]).all(), (i, y[inf], ref[inf])
    f = np.isfinite(ref)
    err = np.abs(y[f] - ref[f]) / np.maximum(np.abs(ref[f]), 1)
    print(f"output{i}: max error {err.max():.2g}, {int(np.isnan(ref).sum())} NaN, {int(inf.sum())} inf")
    assert err.max() <= 1e-5, (i, err.max())
# The rows that hold them: NaN (row 1), +-inf (rows 2, 3), large (row 4).
assert np.isnan(want[0][1]).all() and np.isinf(want[0][2]).any() and np.isnan(want[0][3]).any()
