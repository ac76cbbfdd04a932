"""Input and numpy reference output of examples/embed/mlp.mlir: writes
x.npy, x64.npy (wrong dtype) and expected.npy into the directory argv[1],
reading the weights from argv[1]/w.safetensors."""
import json
import struct
import sys

import numpy as np

d = sys.argv[1]
raw = open(f"{d}/w.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
w = {k: np.frombuffer(data[v["data_offsets"][0]:v["data_offsets"][1]],
                      dtype=np.float32).reshape(v["shape"])
     for k, v in header.items()}
x = (np.arange(32) % 7 * 0.25 - 0.5).astype(np.float32).reshape(4, 8)
h = np.maximum(x.astype(np.float64) @ w["fc1.weight"] + w["fc1.bias"], 0)
logits = h @ w["fc2.weight"]
e = np.exp(logits - logits.max(1, keepdims=True))
np.save(f"{d}/x.npy", x)
np.save(f"{d}/x64.npy", x.astype(np.float64))
np.save(f"{d}/expected.npy", e / e.sum(1, keepdims=True))
