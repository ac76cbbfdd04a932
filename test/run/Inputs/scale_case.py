"""Weights, inputs and expected outputs of Inputs/scale.mlir in argv[1]:
scale.safetensors, scale.x{i}.npy and scale.expected{i}.npy for i < argv[2]."""
import json
import struct
import sys

import numpy as np

d, n = sys.argv[1], int(sys.argv[2])
w = np.array([1.0, -2.0, 0.5], np.float32)
h = json.dumps({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 12]}}).encode()
h += b" " * ((-(8 + len(h))) % 64)
open(f"{d}/scale.safetensors", "wb").write(struct.pack("<Q", len(h)) + h + w.tobytes())
rng = np.random.default_rng(5)
for i in range(n):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    np.save(f"{d}/scale.x{i}.npy", x)
    np.save(f"{d}/scale.expected{i}.npy", x * w)
