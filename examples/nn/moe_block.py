"""A Mixtral-style and a Switch-style MoE transformer block with dyncc.nn.MoE.

The block is ordinary PyTorch (RMSNorm, causal multi-head self-attention,
residuals) around a `dyncc.nn.MoE` feed-forward layer:

- mixtral: top-2 of 8 SwiGLU experts, weights renormalized over the two,
  no capacity (no token dropped);
- switch: top-1 of 8 GELU experts with capacity factor 1.25 (tokens over an
  expert's capacity are dropped and pass on the residual path).

Each is compiled with dyncc.compile and run on random sequences; the script
prints the compiled library's tokens per expert, dropped tokens and the
first assignments next to the eager module's, checks that every assignment
is equal and the outputs agree to 1e-5, and times both.

    .venv/bin/python examples/nn/moe_block.py [--style mixtral|switch|both] [--tokens 128]
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import dyncc
import dyncc.nn as dnn
from timing import best_ms


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Attention(nn.Module):
    """Causal multi-head self-attention on one sequence [T, D]."""

    def __init__(self, d, heads):
        super().__init__()
        self.h = heads
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.out = nn.Linear(d, d, bias=False)

    def forward(self, x):
        T, D = x.shape
        q, k, v = self.qkv(x).split(D, dim=-1)
        q, k, v = (t.reshape(T, self.h, D // self.h).transpose(0, 1) for t in (q, k, v))
        s = q @ k.transpose(-1, -2) / (D // self.h) ** 0.5
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        s = s.masked_fill(~causal, float("-inf"))
        o = torch.softmax(s, -1) @ v
        return self.out(o.transpose(0, 1).reshape(T, D))


class SwiGLU(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.w1 = nn.Linear(d, f, bias=False)
        self.w3 = nn.Linear(d, f, bias=False)
        self.w2 = nn.Linear(f, d, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class GeluFFN(nn.Module):
    def __init__(self, d, f):
        super().__init__()
        self.fc1 = nn.Linear(d, f)
        self.fc2 = nn.Linear(f, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, d, heads, ffn, experts, style):
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(d), RMSNorm(d)
        self.attn = Attention(d, heads)
        if style == "mixtral":
            self.moe = dnn.MoE(nn.Linear(d, experts, bias=False),
                               [SwiGLU(d, ffn) for _ in range(experts)], "top_k", k=2,
                               renormalize=True)
        else:
            self.moe = dnn.MoE(nn.Linear(d, experts, bias=False),
                               [GeluFFN(d, ffn) for _ in range(experts)], "switch",
                               capacity_factor=1.25)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.moe(self.norm2(x))


def run(style, a):
    torch.manual_seed(0)
    block = Block(a.dim, 4, a.ffn, a.experts, style).eval()
    x = torch.randn(a.tokens, a.dim)
    t0 = time.perf_counter()
    fast = dyncc.compile(block, (x,), threads=a.threads)
    print(f"== {style}: block of {a.tokens} tokens, d={a.dim}, {a.experts} experts "
          f"(ffn {a.ffn}), {block.moe.cfg.strategy}; compiled in {time.perf_counter() - t0:.1f} s")
    ok = True
    g = torch.Generator().manual_seed(1)
    for case in range(a.cases):
        xs = torch.randn(a.tokens, a.dim, generator=g)
        with torch.no_grad():
            want = block(xs)
        got = fast(xs)
        r, rep = block.moe.routing, fast.report.routes[0]
        same = np.array_equal(rep["assignment"], r.assignment)
        err = float((got - want).abs().max() / want.abs().max())
        ok = ok and same and err <= 1e-5
        K = block.moe.cfg.per_token
        print(f"  case {case}: tokens per expert dyncc {rep['tokens_per_expert'].tolist()}, "
              f"eager {r.tokens_per_expert.tolist()}; dropped {rep['dropped']} / {r.dropped}; "
              f"assignments {'equal' if same else 'DIFFER'}; output within {err:.1e}")
        if case == 0:
            first = rep["assignment"][:8 * K].reshape(8, K).tolist()
            print(f"    first 8 tokens' experts: dyncc {first}")
            print(f"                             eager {r.assignment[:8 * K].reshape(8, K).tolist()}")
    xs = torch.randn(a.tokens, a.dim, generator=g)
    times = {"dyncc": best_ms(lambda: fast(xs), a.repeat),
             "eager": best_ms(lambda: block(xs), a.repeat)}
    print(f"  time per block: dyncc {times['dyncc']:.2f} ms, PyTorch eager {times['eager']:.2f} ms "
          f"({times['eager'] / times['dyncc']:.2f}x)")
    fast.close()
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", choices=["mixtral", "switch", "both"], default="both")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--ffn", type=int, default=128)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--cases", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=None)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.work:
        os.environ.setdefault("DYNCC_CACHE", os.path.join(a.work, "cache"))
    else:
        os.environ.setdefault("DYNCC_CACHE", os.path.join(tempfile.gettempdir(), "dyncc-cache"))
    styles = ["mixtral", "switch"] if a.style == "both" else [a.style]
    ok = all([run(s, a) for s in styles])
    print("all assignments equal, outputs within 1e-5" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
