"""Weights, input and numpy reference of examples/early-exit/cascade.mlir:
writes w.safetensors, x.npy, small.npy and large.npy (the two models'
logits) into argv[1] and prints the small model's calibrated confidence."""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "examples", "encoder"))
from torch_eager import save_safetensors  # noqa: E402

d = sys.argv[1]
rng = np.random.default_rng(5)
w = {"small.w": (rng.standard_normal((8, 3)) * 2).astype(np.float32),
     "large.w1": rng.standard_normal((8, 8)).astype(np.float32),
     "large.w": (rng.standard_normal((8, 3)) * 2).astype(np.float32)}
x = rng.standard_normal((1, 6, 8)).astype(np.float32)
save_safetensors(f"{d}/w.safetensors", w)
np.save(f"{d}/x.npy", x)
x64 = x.astype(np.float64)
small = x64.mean(1) @ w["small.w"]
large = np.tanh(x64.reshape(6, 8) @ w["large.w1"]).mean(0, keepdims=True) @ w["large.w"]
np.save(f"{d}/small.npy", small.astype(np.float32))
np.save(f"{d}/large.npy", large.astype(np.float32))
u = small / 1.5
p = np.exp(u - u.max())
print("confidence %.4f" % (p / p.sum()).max())
