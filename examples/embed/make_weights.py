#!/usr/bin/env python3
"""Writes mlp.safetensors, the weights of mlp.mlir (fixed seed), with numpy
only; every tensor's data starts on a 64-byte boundary."""
import json
import struct
import sys

import numpy as np

rng = np.random.default_rng(0)
tensors = {
    "fc1.weight": rng.standard_normal((8, 16)).astype(np.float32),
    "fc1.bias": rng.standard_normal(16).astype(np.float32),
    "fc2.weight": rng.standard_normal((16, 3)).astype(np.float32),
}
header, blobs, offset = {}, [], 0
for name, value in tensors.items():
    data = value.tobytes()
    pad = (-len(data)) % 64
    header[name] = {"dtype": "F32", "shape": list(value.shape),
                    "data_offsets": [offset, offset + len(data)]}
    blobs.append(data + b"\0" * pad)
    offset += len(data) + pad
text = json.dumps(header).encode()
text += b" " * ((-(8 + len(text))) % 64)
path = sys.argv[1] if len(sys.argv) > 1 else "mlp.safetensors"
with open(path, "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))
