#!/usr/bin/env python3
"""dyncc.compile(..., precision="bf16") (ctest nn.precision).

- A linear layer on 48 rows (the GEMM's Tiled path): the bf16 library's
  output equals the product of the operands rounded to bfloat16 (float64
  reference, 1e-5 relative to the terms summed) and is much closer to it
  than to the fp32 operands' product; the fp32 library's the other way
  round.
- An early-exit encoder (dyncc.nn.EarlyExit, 4 layers of 32 tokens): the
  bf16 library's logits within 5e-2 of eager fp32, and its exit layers
  against eager's at 5 thresholds on 8 inputs, reported (bf16 rounding may
  move a criterion's value across a threshold: at most 10% of them may
  differ here).
- precision="fp16" is refused with ValueError.

    check_precision.py WORK_DIR
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

import dyncc
import dyncc.nn as dnn

failures = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        failures.append(what)


def bf16(a):
    u = np.asarray(a, np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64)


class Layer(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
        self.norm = nn.LayerNorm(d)

    def forward(self, h):
        return self.norm(h + self.ff(h))


class Head(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.out = nn.Linear(d, 3)

    def forward(self, h):
        return self.out(h[:, 0])


class Net(nn.Module):
    def __init__(self, d=32, layers=4):
        super().__init__()
        self.ee = dnn.EarlyExit([Layer(d) for _ in range(layers)],
                                [Head(d) for _ in range(layers)], dnn.Entropy(0.5))

    def forward(self, x):
        return self.ee(x)


def main():
    work = sys.argv[1]
    os.makedirs(work, exist_ok=True)
    os.environ["DYNCC_CACHE"] = os.path.join(work, "cache")
    torch.manual_seed(0)

    print("linear layer, 48 x 96 -> 80")
    lin = nn.Linear(96, 80).eval()
    x = torch.randn(48, 96)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy().astype(np.float64)
    xn = x.numpy()
    exact = xn.astype(np.float64) @ w.T.astype(np.float64) + b
    rounded = bf16(xn) @ bf16(w).T + b
    mag = np.abs(xn.astype(np.float64)) @ np.abs(w.T.astype(np.float64)) + np.abs(b)
    gap = float(np.abs(exact - rounded).max())
    for precision, ref, other in (("bf16", rounded, exact), ("fp32", exact, rounded)):
        y = dyncc.compile(lin, (x,), precision=precision)(x)
        y = np.asarray(y, np.float64)
        err = np.abs(y - ref)
        check(bool((err <= 1e-5 * mag + 1e-6).all()),
              f"{precision}: within 1e-5 of its reference (max {err.max():.2e})")
        check(float(err.max()) < 0.01 * gap,
              f"{precision}: follows its operands (max error {err.max():.2e}, the two "
              f"references {gap:.2e} apart)")

    print("early-exit encoder, 4 layers, 32 tokens, d 32")
    net = Net().eval()
    xs = [torch.randn(1, 32, 32) for _ in range(8)]
    fast = dyncc.compile(net, (xs[0],), precision="bf16")
    same = total = 0
    worst = 0.0
    for theta in (0.05, 0.2, 0.5, 0.8, 1.0):
        net.ee.criterion = dnn.Entropy(theta)
        fast.set_param("theta", theta)
        for x in xs:
            with torch.no_grad():
                want = net(x).numpy()
            got = np.asarray(fast(x))
            total += 1
            if int(fast.report.exit_layer[0]) == int(net.ee.exit_layer[0]):
                same += 1
                worst = max(worst, float(np.abs(got - want).max() / max(1.0, np.abs(want).max())))
    print(f"  exit layers equal to eager fp32 on {same} of {total}")
    check(same >= 0.9 * total, f"exit layers: {same} of {total} equal to eager fp32")
    check(worst <= 5e-2, f"logits within 5e-2 of eager fp32 where the exit layers agree "
                          f"(max {worst:.2e})")

    try:
        dyncc.compile(lin, (x,), precision="fp16")
        check(False, "precision='fp16' refused")
    except ValueError as e:
        check("precision" in str(e), f"precision='fp16' refused: {e}")

    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("all passed")


if __name__ == "__main__":
    main()
