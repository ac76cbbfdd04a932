"""dyncc.Model.profile() (dynrt_model_kernel_profile) of a library whose
inputs are all .npy files: runs it N times with DYNRT_PROFILE=1 set before
the model is created and prints every kernel's calls, FLOPs a call and
whether its GFLOP/s is calls x FLOPs / seconds; then checks that a model
created without DYNRT_PROFILE refuses with the reason.

  profile.py LIB INPUT.npy... N
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "python"))
import dyncc  # noqa: E402

lib, inputs, n = sys.argv[1], sys.argv[2:-1], int(sys.argv[-1])
xs = [np.load(p) for p in inputs]
os.environ["DYNRT_PROFILE"] = "1"
m = dyncc.load(lib, None)
del os.environ["DYNRT_PROFILE"]
for _ in range(n):
    m(*xs)
for r in m.profile():
    rate = r["gflops"]
    consistent = (rate is None if r["flops"] == 0 else
                  abs(rate - r["calls"] * r["flops"] / r["seconds"] / 1e9) <= 1e-9 * rate)
    print(f"kernel {r['kernel']}: calls {r['calls']}, flops {r['flops']:.0f}, "
          f"GFLOP/s {'consistent' if consistent else 'WRONG'}")
m.close()
quiet = dyncc.load(lib, None)
try:
    quiet.profile()
    print("no error without DYNRT_PROFILE")
except RuntimeError as e:
    print(f"without DYNRT_PROFILE: {e}")
quiet.close()
