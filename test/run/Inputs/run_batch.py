"""Runs a library compiled with --batch-buckets on the first N cases of a
generator's NAME.x{i}.npy, poisoned outputs, and compares every sample's
output with NAME.expected{i}.npy; prints the report's stages.

  run_batch.py LIB_DIR NAME N TOLERANCE
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "runtime", "python"))
from dynrt_ctypes import Library  # noqa: E402

lib_dir, name, n, tol = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
work = os.path.dirname(lib_dir.rstrip("/"))
L = Library(f"{lib_dir}/lib{name}.so", name)
L.create(f"{work}/{name}.safetensors")
print(f"max_batch {L.max_batch} buckets {L.buckets} stages {L.num_stages}")
x = np.stack([np.load(f"{work}/{name}.x{i}.npy") for i in range(n)]).astype(np.float32)
want = np.stack([np.load(f"{work}/{name}.expected{i}.npy") for i in range(n)])
y = np.full((n,) + L.outputs[0][2][1:], np.nan, np.float32)
report, active, bucket = L.stage_report()
L.run_batch([x], [y], n, report)
err = float(np.abs(y - want.reshape(y.shape)).max())
print(f"batch {n}: active {list(active)[:L.num_stages]} bucket {list(bucket)[:L.num_stages]}")
print(f"max abs difference {err:.3g}")
sys.exit(0 if err <= tol else 1)
