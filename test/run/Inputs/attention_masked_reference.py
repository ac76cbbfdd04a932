"""attention_masked_reference.py DIR: inputs for Inputs/attention_masked.mlir
(a mask with -inf at random keys, every key of query row 3 and 17 masked)
and numpy's result (float64; fully masked rows give zeros) as
DIR/masked_expected.npy."""
import sys

import numpy as np

d = sys.argv[1]
r = np.random.default_rng(13)
q = r.standard_normal((2, 24, 8)).astype(np.float32)
kt = r.standard_normal((2, 8, 19)).astype(np.float32)
v = r.standard_normal((2, 19, 16)).astype(np.float32)
mask = np.where(r.random((2, 24, 19)) < 0.3, -np.inf, 0.0).astype(np.float32)
mask[:, 3, :] = -np.inf
mask[1, 17, :] = -np.inf
for name, a in (("mq", q), ("mkt", kt), ("mmask", mask), ("mv", v)):
    np.save(f"{d}/{name}.npy", a)
s = q.astype(np.float64) @ kt + mask
with np.errstate(invalid="ignore"):
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
p[np.isinf(s).all(-1)] = 0.0
np.save(f"{d}/masked_expected.npy", p @ v)
