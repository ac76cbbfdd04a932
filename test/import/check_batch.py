"""ctest import.batch.<model>: a model exported at batch 1 (dyncc.export)
and compiled with --batch-buckets=1,4,8 serves batches of 1 to 8 samples;
every sample's output must match PyTorch eager on that sample (outputs
poisoned before each run).

    check_batch.py MODEL WORKDIR
"""
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
import dyncc  # noqa: E402
from dyncc.library import _dynrt  # noqa: E402

BUCKETS = "1,4,8"


def main():
    name, work = sys.argv[1], sys.argv[2]
    os.makedirs(os.path.join(work, "lib"), exist_ok=True)
    module, example = models.make(name)
    mlir, weights = dyncc.export(module, example, os.path.join(work, name))
    base = os.path.join(work, "lib", name)
    subprocess.run([dyncc.dyncc_binary(), "compile", mlir, "-o", base, "--shared",
                    f"--batch-buckets={BUCKETS}"], check=True)
    lib = _dynrt().Library(os.path.join(work, "lib", f"lib{name}.so"), name)
    lib.create(weights, num_threads=2)
    print(f"{name}: max batch {lib.max_batch}, buckets {lib.buckets}")
    g = torch.Generator().manual_seed(3)
    worst = 0.0
    for n in (3, 8, 1, 5):
        # n samples like the example's: token ids, attention masks with padding
        samples = []
        for _ in range(n):
            case = []
            for x in example:
                if x.dtype == torch.long and x.max() > 1:
                    case.append(torch.randint(1, int(x.max()) + 1, x.shape, generator=g))
                elif x.dtype == torch.long:
                    m = torch.ones_like(x)
                    m[0, int(torch.randint(1, x.shape[1], (1,), generator=g)):] = 0
                    case.append(m)
                else:
                    case.append(torch.randn(x.shape, generator=g))
            samples.append(case)
        ins = []
        for k, (_, dtype, shape) in enumerate(lib.inputs):
            buf = np.zeros(shape, dtype)
            for s in range(n):
                buf[s] = samples[s][k].numpy()[0]
            ins.append(buf)
        outs = [np.full(shape, np.nan, dtype) for _, dtype, shape in lib.outputs]
        lib.run_batch(ins, outs, n)
        with torch.no_grad():
            for s in range(n):
                want = module(*samples[s])
                want = (want if isinstance(want, torch.Tensor) else want[0]).numpy()[0]
                err = float(np.abs(outs[0][s] - want).max() / max(1.0, np.abs(want).max()))
                worst = max(worst, err if np.isfinite(err) else np.inf)
        print(f"batch of {n}: worst relative difference so far {worst:.3g}")
    lib.destroy()
    ok = worst <= 1e-4
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
