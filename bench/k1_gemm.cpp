//===- k1_gemm.cpp - K1 benchmark: dyncc's Halide GEMM, fp32 -------------===//
//
// JIT-compiles codegen/GemmKernel for the host target for each K1 shape and
// prints one line per shape: M K N median_ms, median and best GFLOP/s.
// run-k1.sh puts these next to PyTorch's numbers measured in the same run.
//
// Usage: dyncc-bench-k1 [--runs R] [--warmup W] [--shape MxKxN]...
//                       [--transpose-b] [--rows R] [--vectors V]
//                       [--block-rows B] [--pack-b 0|1]
//                       [--path tiled|stream|dot]
//                       [--target T] [--asm FILE]
// Threads: HL_NUM_THREADS (set to 2 here unless the caller set it).
//
//===----------------------------------------------------------------------===//

#include "codegen/GemmKernel.h"
#include "codegen/HalideTarget.h"

#include <Halide.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace Halide;

namespace {

struct Shape {
  int M, K, N;
};

void usage(const char *argv0) {
  std::fprintf(stderr,
               "usage: %s [--runs R] [--warmup W] [--shape MxKxN]... "
               "[--transpose-b] [--rows R] [--vectors V] [--block-rows B] "
               "[--pack-b 0|1] [--path tiled|stream|dot] [--target T] "
               "[--asm FILE]\n",
               argv0);
  std::exit(2);
}

/// Checks a few outputs against a double-precision dot product, so that a
/// fast but wrong schedule can never produce a number.
bool spotCheck(const Buffer<float> &a, const Buffer<float> &b,
               const Buffer<float> &c, const Shape &s, bool transposeB) {
  std::mt19937 rng(7);
  for (int i = 0; i < 64; ++i) {
    int m = rng() % s.M, n = rng() % s.N;
    double ref = 0, mag = 0;
    for (int k = 0; k < s.K; ++k) {
      double p = double(a(k, m)) * (transposeB ? b(k, n) : b(n, k));
      ref += p;
      mag += std::fabs(p);
    }
    if (std::fabs(c(n, m) - ref) > 1e-4 * mag) {
      std::fprintf(stderr, "wrong result at m=%d n=%d: %g vs %g\n", m, n,
                   c(n, m), ref);
      return false;
    }
  }
  return true;
}

} // namespace

int main(int argc, char **argv) {
  // Before Halide's thread pool starts: the comparison is at 2 threads.
  setenv("HL_NUM_THREADS", "2", /*overwrite=*/0);

  int runs = 30, warmup = 5;
  bool transposeB = false;
  std::vector<Shape> shapes;
  dyncc::codegen::GemmTiling tiling;
  std::string targetString = dyncc::codegen::hostKernelTarget();
  std::string asmPath; // where to write the assembly of the first shape
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char * {
      if (i + 1 >= argc)
        usage(argv[0]);
      return argv[++i];
    };
    std::string arg = argv[i];
    if (arg == "--runs")
      runs = std::atoi(next());
    else if (arg == "--warmup")
      warmup = std::atoi(next());
    else if (arg == "--transpose-b")
      transposeB = true;
    else if (arg == "--rows")
      tiling.rows = std::atoi(next());
    else if (arg == "--vectors")
      tiling.vectors = std::atoi(next());
    else if (arg == "--block-rows")
      tiling.blockRows = std::atoi(next());
    else if (arg == "--path") {
      std::string path = next();
      if (path == "tiled")
        tiling.path = dyncc::codegen::GemmPath::Tiled;
      else if (path == "stream")
        tiling.path = dyncc::codegen::GemmPath::Stream;
      else if (path == "dot")
        tiling.path = dyncc::codegen::GemmPath::Dot;
      else
        usage(argv[0]);
    } else if (arg == "--pack-b")
      tiling.packB = std::atoi(next());
    else if (arg == "--asm")
      asmPath = next();
    else if (arg == "--target")
      targetString = next();
    else if (arg == "--shape") {
      Shape s;
      if (std::sscanf(next(), "%dx%dx%d", &s.M, &s.K, &s.N) != 3)
        usage(argv[0]);
      shapes.push_back(s);
    } else
      usage(argv[0]);
  }
  if (shapes.empty())
    shapes = {{128, 768, 768},
              {128, 768, 3072},
              {512, 512, 2048},
              {1024, 1024, 1024}};
  runs = std::max(runs, 10);

  Target target(targetString);
  std::printf("# dyncc K1 GEMM: C[M,N] = A[M,K] x B%s, fp32, row-major; "
              "target %s; HL_NUM_THREADS=%s; median of %d runs after %d "
              "warm-up\n",
              transposeB ? "[N,K]^T" : "[K,N]", target.to_string().c_str(),
              std::getenv("HL_NUM_THREADS"), runs, warmup);
  std::printf("# M K N median_ms median_GFLOP/s best_GFLOP/s\n");

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (const Shape &s : shapes) {
    // Halide buffers are innermost-first: a row-major [M, K] matrix is
    // (k, m).
    Buffer<float> a(s.K, s.M), c(s.N, s.M);
    Buffer<float> b =
        transposeB ? Buffer<float>(s.K, s.N) : Buffer<float>(s.N, s.K);
    a.for_each_value([&](float &v) { v = dist(rng); });
    b.for_each_value([&](float &v) { v = dist(rng); });

    // Dense row-major inputs with constant extents and strides, as the
    // kernel emitter declares them: address arithmetic folds to constants.
    ImageParam pa(Float(32), 2, "A"), pb(Float(32), 2, "B");
    pa.dim(0).set_bounds(0, s.K).dim(1).set_bounds(0, s.M).set_stride(s.K);
    if (transposeB)
      pb.dim(0).set_bounds(0, s.K).dim(1).set_bounds(0, s.N).set_stride(s.K);
    else
      pb.dim(0).set_bounds(0, s.N).dim(1).set_bounds(0, s.K).set_stride(s.N);
    pa.set(a);
    pb.set(b);

    dyncc::codegen::GemmShape shape;
    shape.M = s.M;
    shape.N = s.N;
    shape.K = s.K;
    shape.transposeB = transposeB;
    Func gemm = dyncc::codegen::buildGemm(shape, pa, pb, nullptr, target,
                                          "k1_gemm", tiling);
    Pipeline pipeline(gemm);
    if (!asmPath.empty()) {
      pipeline.compile_to_assembly(asmPath, {pa, pb}, "k1_gemm", target);
      asmPath.clear();
    }
    pipeline.compile_jit(target);

    for (int i = 0; i < warmup; ++i)
      pipeline.realize(c);
    if (!spotCheck(a, b, c, s, transposeB))
      return 1;
    std::vector<double> ms;
    for (int i = 0; i < runs; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      pipeline.realize(c);
      auto t1 = std::chrono::steady_clock::now();
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    double median = ms[ms.size() / 2];
    double flop = 2.0 * s.M * s.N * s.K;
    std::printf("%d %d %d %.4f %.1f %.1f\n", s.M, s.K, s.N, median,
                flop / (median * 1e6), flop / (ms.front() * 1e6));
    std::fflush(stdout);
  }
  return 0;
}
