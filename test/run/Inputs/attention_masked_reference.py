"""attention_masked_reference.py DIR CASE: inputs for a masked attention test
and numpy's result (float64; fully masked rows give zeros), masks with -inf
at random keys:
  masked   Inputs/attention_masked.mlir, 2 heads; every key of query row 3
           (both heads) and 17 (head 1) masked: DIR/mq, mkt, mmask, mv.npy
           and DIR/masked_expected.npy.
  batched  Inputs/attention_batched.mlir, 2 batch elements x 3 heads, a mask
           per batch element; every key of query row 5 of element 1 masked:
           DIR/bq, bkt, bmask, bv.npy and DIR/batched_expected.npy."""
import sys

import numpy as np

d, case = sys.argv[1], sys.argv[2]
batch, heads, rows, seed, prefix = {
    "masked": (2, 1, 24, 13, "m"),
    "batched": (2, 3, 21, 17, "b"),
}[case]
r = np.random.default_rng(seed)
q = r.standard_normal((batch * heads, rows, 8)).astype(np.float32)
kt = r.standard_normal((batch * heads, 8, 19)).astype(np.float32)
v = r.standard_normal((batch * heads, 19, 16)).astype(np.float32)
mask = np.where(r.random((batch, rows, 19)) < 0.3, -np.inf, 0.0).astype(np.float32)
if case == "masked":
    mask[:, 3, :] = -np.inf
    mask[1, 17, :] = -np.inf
else:
    mask[1, 5, :] = -np.inf
for name, a in (("q", q), ("kt", kt), ("mask", mask), ("v", v)):
    np.save(f"{d}/{prefix}{name}.npy", a)
# Scores per batch element and head; the mask is per batch element.
s = (q.astype(np.float64) @ kt).reshape(batch, heads, rows, 19) + mask[:, None]
with np.errstate(invalid="ignore"):
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
p[np.isinf(s).all(-1)] = 0.0
np.save(f"{d}/{case}_expected.npy", p.reshape(batch * heads, rows, 19) @ v)
