"""bf16.test: the --precision=bf16 run against the product of the operands
rounded to bfloat16 (with --b-only, of x by the rounded w: a few-row GEMM),
the fp32 run against the fp32 operands (float64 references), each much
closer to its own reference than to the other.

    check_bf16.py DIR [--b-only]"""
import sys

import numpy as np

d = sys.argv[1]
b_only = "--b-only" in sys.argv[2:]
x, w, b = (np.load(f"{d}/{n}.npy") for n in ("x", "w", "b"))


def bf16(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


exact = x.astype(np.float64) @ w.astype(np.float64) + b
rounded = (x.astype(np.float64) if b_only else bf16(x)) @ bf16(w) + b
mag = np.abs(x.astype(np.float64)) @ np.abs(w.astype(np.float64)) + np.abs(b)
gap = np.abs(exact - rounded).max()
assert gap > 1e-3, gap  # the two references differ
for name, ref, other in (("bf16", rounded, exact), ("fp32", exact, rounded)):
    y = np.load(f"{d}/{name}/output0.npy").astype(np.float64)
    err = np.abs(y - ref)
    assert (err <= 1e-5 * mag + 1e-6).all(), (name, err.max())
    assert err.max() < 0.01 * gap, (name, err.max(), gap)
    print(f"{name}: follows the {'rounded' if name == 'bf16' else 'fp32'} operands "
          f"(max error {err.max():.2e}, references {gap:.2e} apart)")
