#!/usr/bin/env python3
"""Splits case 0 of examples/moe/model.py --cases output into .npy inputs
for dyncc run and writes the eager module's output and assignment.

  moe_case.py DIR NAME
"""
import sys

import numpy as np

d, name = sys.argv[1:3]
np.save(f"{d}/x.npy", np.load(f"{d}/{name}.x.npy")[0])
np.save(f"{d}/gate.npy", np.load(f"{d}/{name}.gate.npy")[0])
want = np.load(f"{d}/{name}.expected.npz")
np.save(f"{d}/expected.npy", want["y"][0])
np.save(f"{d}/expected_assignment.npy",
        want["assignment"][0].reshape(want["y"].shape[1], -1).astype(np.int32))
