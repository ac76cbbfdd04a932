#!/usr/bin/env python3
"""O1: writes a model that is a chain of N tiny kernels (x <- tanh(x W),
[1, 8] x [8, 8], a contraction each, so no two fuse) for dyncc, or times the
same chain in PyTorch eager.

  o1_chain.py mlir N > chain.mlir
  o1_chain.py torch N RUNS      (prints the median microseconds per op)
"""
import statistics
import sys
import time


def mlir(n):
    print("// O1: a chain of %d tiny kernels (bench/o1_chain.py)." % n)
    print("func.func @chain(%x: tensor<1x8xf32> {dyn.name = \"x\"}, "
          "%w: tensor<8x8xf32> {dyn.weight = \"w\"}) -> tensor<1x8xf32> {")
    print("  %zero = arith.constant 0.0 : f32")
    print("  %e = tensor.empty() : tensor<1x8xf32>")
    print("  %acc = linalg.fill ins(%zero : f32) outs(%e : tensor<1x8xf32>) -> tensor<1x8xf32>")
    prev = "%x"
    for i in range(n):
        print(f"  %m{i} = linalg.matmul ins({prev}, %w : tensor<1x8xf32>, tensor<8x8xf32>) "
              f"outs(%acc : tensor<1x8xf32>) -> tensor<1x8xf32>")
        print(f"  %t{i} = linalg.tanh ins(%m{i} : tensor<1x8xf32>) outs(%e : tensor<1x8xf32>) -> tensor<1x8xf32>")
        prev = f"%t{i}"
    print(f"  return {prev} : tensor<1x8xf32>")
    print("}")


def torch_time(n, runs):
    import torch
    torch.set_num_threads(2)
    x = torch.randn(1, 8)
    w = torch.randn(8, 8) / 3
    with torch.no_grad():
        def chain():
            y = x
            for _ in range(n):
                y = torch.tanh(torch.matmul(y, w))
            return y
        for _ in range(20):
            chain()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            chain()
            times.append(time.perf_counter() - start)
    # Two ops (matmul, tanh) per link of the chain; dyncc fuses them into one
    # kernel, so report both views.
    med = statistics.median(times)
    print("%.3f %.3f" % (med / n * 1e6, med / (2 * n) * 1e6))


if __name__ == "__main__":
    if sys.argv[1] == "mlir":
        mlir(int(sys.argv[2]))
    else:
        torch_time(int(sys.argv[2]), int(sys.argv[3]))
