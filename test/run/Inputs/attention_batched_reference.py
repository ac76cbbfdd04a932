"""attention_batched_reference.py DIR: inputs for Inputs/attention_batched.mlir
(2 batch elements x 3 heads; a mask per batch element with -inf at random
keys, every key of query row 5 of element 1 masked) and numpy's result
(float64; fully masked rows give zeros) as DIR/batched_expected.npy."""
import sys

import numpy as np

d = sys.argv[1]
r = np.random.default_rng(17)
q = r.standard_normal((6, 21, 8)).astype(np.float32)
kt = r.standard_normal((6, 8, 19)).astype(np.float32)
v = r.standard_normal((6, 19, 16)).astype(np.float32)
mask = np.where(r.random((2, 21, 19)) < 0.3, -np.inf, 0.0).astype(np.float32)
mask[1, 5, :] = -np.inf
for name, a in (("bq", q), ("bkt", kt), ("bmask", mask), ("bv", v)):
    np.save(f"{d}/{name}.npy", a)
s = (q.astype(np.float64) @ kt).reshape(2, 3, 21, 19) + mask[:, None]
with np.errstate(invalid="ignore"):
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
p[np.isinf(s).all(-1)] = 0.0
np.save(f"{d}/batched_expected.npy", p.reshape(6, 21, 19) @ v)
