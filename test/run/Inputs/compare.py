"""compare.py got.npy want.npy tol: exits 1 unless every element of got
matches want within tol (absolute, relative to max(1, |want|))."""
import sys

import numpy as np

got, want, tol = np.load(sys.argv[1]), np.load(sys.argv[2]), float(sys.argv[3])
if got.shape != want.shape:
    sys.exit(f"shape {got.shape} != {want.shape}")
err = np.abs(got.astype(np.float64) - want) / np.maximum(1.0, np.abs(want))
print(f"max error {err.max():.3g}")
sys.exit(0 if err.max() <= tol else 1)
