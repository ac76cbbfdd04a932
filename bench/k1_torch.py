#!/usr/bin/python3
"""K1 baseline: fp32 torch.matmul (OpenBLAS) on the K1 shapes.

Prints the same lines as dyncc-bench-k1: M K N median_ms median_GFLOP/s
best_GFLOP/s, for C[M,N] = A[M,K] x B[K,N]. Run with Debian's interpreter
(/usr/bin/python3: python3-torch) and OPENBLAS_CORETYPE=SkylakeX, or
Debian's OpenBLAS picks a generic kernel on this CPU (see WORKLOADS.md).

With --transpose-b, B is given as [N,K] (the weights of a linear layer) and
the product is torch.matmul(a, w.t()), the shape dyncc's transposeB covers.

usage: k1_torch.py [--runs R] [--warmup W] [--threads T] [--transpose-b]
                   [MxKxN ...]
"""
import argparse
import os
import time

import torch

SHAPES = [(128, 768, 768), (128, 768, 3072), (512, 512, 2048),
          (1024, 1024, 1024)]


def blas_libraries():
    """The BLAS shared objects mapped into this process (which one
    torch.matmul really calls: Debian's libblas.so.3 is an alternative)."""
    libs = set()
    with open("/proc/self/maps") as maps:
        for line in maps:
            path = line.split()[-1]
            if "blas" in os.path.basename(path):
                libs.add(os.path.realpath(path))
    return sorted(libs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--transpose-b", action="store_true")
    parser.add_argument("shapes", nargs="*", help="MxKxN")
    args = parser.parse_args()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes] or SHAPES
    runs = max(args.runs, 10)

    # Same thread count as the dyncc side (HL_NUM_THREADS=2).
    torch.set_num_threads(args.threads)
    print("# torch %s matmul, C[M,N] = A[M,K] x %s, fp32; threads %d; "
          "OPENBLAS_CORETYPE=%s; median of %d runs after %d warm-up"
          % (torch.__version__,
             "B[N,K]^T" if args.transpose_b else "B[K,N]",
             torch.get_num_threads(),
             os.environ.get("OPENBLAS_CORETYPE", "(unset)"), runs, args.warmup))
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))
    print("# BLAS loaded: %s" % (", ".join(blas_libraries()) or "(none found)"))
    print("# M K N median_ms median_GFLOP/s best_GFLOP/s")
    gen = torch.Generator().manual_seed(42)
    with torch.no_grad():
        for m, k, n in shapes:
            a = torch.rand(m, k, generator=gen) * 2 - 1
            if args.transpose_b:
                b = (torch.rand(n, k, generator=gen) * 2 - 1).t()
            else:
                b = torch.rand(k, n, generator=gen) * 2 - 1
            c = torch.empty(m, n)
            # out= keeps allocation out of the timing, as the dyncc side
            # writes into a preallocated buffer.
            for _ in range(args.warmup):
                torch.matmul(a, b, out=c)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                torch.matmul(a, b, out=c)
                times.append(time.perf_counter() - t0)
            times.sort()
            median = times[len(times) // 2]
            flop = 2.0 * m * n * k
            print("%d %d %d %.4f %.1f %.1f" % (m, k, n, median * 1e3,
                                                flop / median / 1e9,
                                                flop / times[0] / 1e9),
                  flush=True)


if __name__ == "__main__":
    main()
