"""attention_reference.py DIR: random q, kt, v for Inputs/attention.mlir in
DIR, and numpy's softmax(q kt / sqrt(8)) v (float64) as DIR/expected.npy."""
import sys

import numpy as np

d = sys.argv[1]
r = np.random.default_rng(11)
q = r.standard_normal((3, 20, 8)).astype(np.float32)
kt = r.standard_normal((3, 8, 37)).astype(np.float32)
v = r.standard_normal((3, 37, 24)).astype(np.float32)
for name, a in (("q", q), ("kt", kt), ("v", v)):
    np.save(f"{d}/{name}.npy", a)
s = q.astype(np.float64) @ kt / np.sqrt(8.0)
p = np.exp(s - s.max(-1, keepdims=True))
p /= p.sum(-1, keepdims=True)
np.save(f"{d}/expected.npy", p @ v)
