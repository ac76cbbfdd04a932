"""Weights, input and numpy reference of examples/early-exit/cascade.mlir:
writes w.safetensors, x.npy, small.npy and large.npy (the two models'
logits) into argv[1] and prints the small model's calibrated confidence."""
import json
import struct
import sys

import numpy as np

d = sys.argv[1]
rng = np.random.default_rng(5)
w = {"small.w": (rng.standard_normal((8, 3)) * 2).astype(np.float32),
     "large.w1": rng.standard_normal((8, 8)).astype(np.float32),
     "large.w": (rng.standard_normal((8, 3)) * 2).astype(np.float32)}
x = rng.standard_normal((1, 6, 8)).astype(np.float32)
header, blobs, off = {}, [], 0
for k, v in w.items():
    header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + v.nbytes]}
    blobs.append(v.tobytes() + b"\0" * ((-v.nbytes) % 64))
    off += len(blobs[-1])
h = json.dumps(header).encode()
h += b" " * ((-(8 + len(h))) % 64)
open(f"{d}/w.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
np.save(f"{d}/x.npy", x)
x64 = x.astype(np.float64)
small = x64.mean(1) @ w["small.w"]
large = np.tanh(x64.reshape(6, 8) @ w["large.w1"]).mean(0, keepdims=True) @ w["large.w"]
np.save(f"{d}/small.npy", small.astype(np.float32))
np.save(f"{d}/large.npy", large.astype(np.float32))
u = small / 1.5
p = np.exp(u - u.max())
print("confidence %.4f" % (p / p.sum()).max())
