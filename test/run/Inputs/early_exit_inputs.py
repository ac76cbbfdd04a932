"""Inputs of examples/early-exit/encoder.mlir (x and the weights, as .npy in
argv[1]) and the numpy reference: layer-1 and layer-2 logits, and the
entropy of layer 1 printed. With argv[2] == "nan" the first head's weights
hold a NaN, so that layer 1's logits are NaN (kernels use fast math: a NaN
in the input of a layer need not survive its ReLU)."""
import sys

import numpy as np

d = sys.argv[1]
rng = np.random.default_rng(1)
shapes = [(1, 16), (16, 16), (16,), (16, 2), (16, 16), (16,), (16, 2)]
a = [rng.standard_normal(s).astype(np.float32) for s in shapes]
if len(sys.argv) > 2 and sys.argv[2] == "nan":
    a[3][5, 1] = np.nan
for i, v in enumerate(a):
    np.save(f"{d}/a{i}.npy", v)
x, w1, b1, c1, w2, b2, c2 = [v.astype(np.float64) for v in a]
h1 = np.maximum(x @ w1 + b1, 0)
l1 = h1 @ c1
l2 = np.maximum(h1 @ w2 + b2, 0) @ c2
p = np.exp(l1 - l1.max())
p /= p.sum()
np.save(f"{d}/l1.npy", l1.astype(np.float32))
np.save(f"{d}/l2.npy", l2.astype(np.float32))
print("entropy", -(p * np.log(p)).sum())
