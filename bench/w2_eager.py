#!/usr/bin/python3
"""W2's eager baseline: the early-exit encoder of examples/early-exit/model.py
(a dyncc.nn.EarlyExit module, whose forward is the DeeBERT / PABEE loop: a
Python loop over the layers, after each the exit head and the criterion,
stopping when every sample has exited) on the weights that model.py
exported, timed in PyTorch eager (float32, no_grad).

    w2_eager.py --weights NAME.safetensors --x NAME.x.npy --threshold T [--exit-layers 3,6,12]

Rows: the loop forced to exit at each of --exit-layers (every exit point up
to it computes its head and criterion; model.Forced), the criterion
deciding at --threshold, and the plain encoder (the same layers and final
head, no exit points). Median of --runs runs (min), ms.
"""

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "early-exit"))

import model as ee  # noqa: E402  (sets OPENBLAS_CORETYPE before torch loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, help="NAME.safetensors of model.py")
    ap.add_argument("--x", required=True, help="NAME.x.npy of model.py, [K, B, S, D]")
    ap.add_argument("--criterion", default="entropy")
    ap.add_argument("--threshold", type=float, required=True)
    ee.add_shape_arguments(ap)
    ap.add_argument("--exit-layers", default="3,6,12")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--case", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    model = ee.build_model(a.criterion, a.layers, a.d_model, a.heads, a.d_ff, a.seq, a.classes,
                           threshold=a.threshold, fit=False)
    ee.load_weights(model, a.weights)
    plain = ee.plain_encoder(model)
    x = torch.from_numpy(np.load(a.x).astype(np.float32)[a.case])       # [B, S, D]
    L = a.layers
    crit = model.criterion

    def median_ms(fn):
        times = []
        with torch.no_grad():
            for _ in range(a.warmup):
                fn()
            for _ in range(a.runs):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return float(np.median(times)), min(times)

    print(f"eager early exit (dyncc.nn.EarlyExit forward), {crit}, batch {x.shape[0]}, "
          f"{torch.get_num_threads()} threads, OPENBLAS_CORETYPE="
          f"{os.environ.get('OPENBLAS_CORETYPE', '')}, median of {a.runs} runs (min):")
    rows = []
    for le in [int(v) for v in a.exit_layers.split(",") if v]:
        if not 1 <= le <= L:
            raise SystemExit(f"--exit-layers: {le} is not in 1..{L}")
        model.criterion = ee.Forced(crit, le)
        with torch.no_grad():
            model(x)
        assert (model.exit_layer == le).all(), model.exit_layer
        med, mn = median_ms(lambda: model(x))
        rows.append((f"exit at layer {le}", med, mn))
    model.criterion = crit
    med, mn = median_ms(lambda: model(x))
    e = model.exit_layer
    rows.append((f"criterion decides (exit {e.tolist()})", med, mn))
    med, mn = median_ms(lambda: plain(x))
    rows.append((f"all {L} layers, no exits (torch_eager.Encoder)", med, mn))
    for what, med, mn in rows:
        print(f"  {what:48s} {med:9.3f} ms  ({mn:.3f})")


if __name__ == "__main__":
    main()
