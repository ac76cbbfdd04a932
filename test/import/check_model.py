"""ctest import.<path>.<model>: exports a small random-init model from
PyTorch (dyncc.export) or from its ONNX export (dyncc.import_onnx), compiles
it with dyncc, runs it on the example inputs and on other random inputs
(outputs poisoned before each run) and compares with PyTorch eager.

    check_model.py {torch,onnx} MODEL WORKDIR [--tol 1e-4]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import dyncc  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("path", choices=["torch", "onnx"])
    p.add_argument("model", choices=models.NAMES)
    p.add_argument("work")
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    module, example = models.make(a.model)
    base = os.path.join(a.work, f"{a.model}_{a.path}")
    if a.path == "torch":
        mlir, weights = dyncc.export(module, example, base)
    else:
        onnx_path = base + ".onnx"
        torch.onnx.export(module, example, onnx_path, dynamo=True, verbose=False)
        mlir, weights = dyncc.import_onnx(onnx_path, base)
    lib = dyncc.build(mlir, os.path.join(a.work, "lib", os.path.basename(base)))
    model = dyncc.load(lib, weights, num_threads=2)
    # The example inputs, then other random ones of the same shapes/dtypes.
    cases = [example]
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        case = []
        for x in example:
            if x.dtype == torch.long and x.max() > 1:   # token ids
                case.append(torch.randint(1, int(x.max()) + 1, x.shape, generator=g))
            elif x.dtype == torch.long:                 # attention mask
                m = torch.ones_like(x)
                m[0, int(torch.randint(1, x.shape[1], (1,), generator=g)):] = 0
                case.append(m)
            else:
                case.append(torch.randn(x.shape, generator=g))
        cases.append(tuple(case))
    worst = 0.0
    with torch.no_grad():
        for i, case in enumerate(cases):
            want = module(*case)
            want = (want if isinstance(want, torch.Tensor) else want[0]).numpy()
            got = model(*case)
            got = got if isinstance(got, np.ndarray) else got[0]
            if got.shape != want.shape:
                print(f"case {i}: shape {got.shape}, PyTorch {want.shape}")
                return 1
            err = float(np.abs(got.astype(np.float64) - want).max())
            scale = max(1.0, float(np.abs(want).max()))
            worst = max(worst, err / scale)
            print(f"case {i}: max abs difference {err:.3g} (|y| <= {scale:.3g})")
    model.close()
    ok = worst <= a.tol and np.isfinite(worst)
    print(f"{a.model} via {a.path}: worst {worst:.3g} (tolerance {a.tol:g}): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
