//===- GemmKernelTest.cpp - the Halide GEMM against a double loop ---------===//
//
// JIT-compiles codegen/GemmKernel for many shapes (odd sizes that exercise
// every tail, M = 1, batches, a transposed B, fused epilogues) on the host
// and on the generic x86-64 target, and compares every output with a naive
// loop in double precision.
//
// This file includes Halide.h and no MLIR header (see codegen/).
//
//===----------------------------------------------------------------------===//

#include "codegen/GemmKernel.h"
#include "codegen/HalideTarget.h"

#include <Halide.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

using namespace Halide;
using dyncc::codegen::buildGemm;
using dyncc::codegen::GemmShape;
using dyncc::codegen::GemmTiling;

namespace {

enum class Epilogue { None, BiasRelu, Residual };

struct GemmCase {
  int batch; // 0: 2-D operands
  int M, K, N;
  bool transposeB = false;
  Epilogue epilogue = Epilogue::None;
  bool sharedB = false; // batched A with a 2-D B shared by the batch
  GemmTiling tiling = {};
  /// rowUsed: 0 none; 1 a prefix of each batch element's rows (of a
  /// different length each, empty and full included); 2 random rows.
  int mask = 0;
  bool bf16 = false; // GemmShape::bf16
};

std::string caseName(const GemmCase &c) {
  std::ostringstream s;
  if (c.batch > 0)
    s << "b" << c.batch << "_";
  s << c.M << "x" << c.K << "x" << c.N;
  if (c.transposeB)
    s << "_bT";
  if (c.sharedB)
    s << "_sharedB";
  if (c.epilogue == Epilogue::BiasRelu)
    s << "_biasrelu";
  if (c.epilogue == Epilogue::Residual)
    s << "_residual";
  if (c.tiling.path == dyncc::codegen::GemmPath::Tiled)
    s << "_tiled";
  if (c.tiling.path == dyncc::codegen::GemmPath::Stream)
    s << "_stream";
  if (c.tiling.path == dyncc::codegen::GemmPath::Dot)
    s << "_dot";
  if (c.tiling.vectorWidth)
    s << "_vw" << c.tiling.vectorWidth;
  if (c.tiling.rows)
    s << "_r" << c.tiling.rows;
  if (c.tiling.vectors)
    s << "_v" << c.tiling.vectors;
  if (c.tiling.blockRows)
    s << "_br" << c.tiling.blockRows;
  if (c.tiling.packB == 0)
    s << "_nopack";
  if (c.tiling.packB == 1)
    s << "_pack";
  if (c.mask == 1)
    s << "_prefixrows";
  if (c.mask == 2)
    s << "_randomrows";
  if (c.bf16)
    s << "_bf16";
  return s.str();
}

// gtest prints parameters of failed tests with this instead of their bytes.
void PrintTo(const GemmCase &c, std::ostream *os) { *os << caseName(c); }

Buffer<float> randomBuffer(std::vector<int> extents, std::mt19937 &rng) {
  Buffer<float> buf(extents);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  buf.for_each_value([&](float &v) { v = dist(rng); });
  return buf;
}

/// x rounded to bfloat16 (to nearest, ties to even), as a float.
float roundToBf16(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  bits = (bits + 0x7fffu + ((bits >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&x, &bits, 4);
  return x;
}

/// Runs a pipeline's parallel tasks one at a time, first to last or last to
/// first: an output written by two tasks with different values then differs
/// between the two orders (a race that a thread pool only sometimes shows).
template <bool Reverse>
int serialDoParFor(JITUserContext *ctx,
                   int (*f)(JITUserContext *, int, uint8_t *), int min,
                   int extent, uint8_t *closure) {
  for (int i = 0; i < extent; ++i)
    if (int r = f(ctx, Reverse ? min + extent - 1 - i : min + i, closure))
      return r;
  return 0;
}

/// Builds, JIT-compiles and runs the case for `target`, then checks every
/// output: |got - ref| <= 1e-4 * (sum_k |a*b| + |bias| + |residual|), i.e.
/// relative to the magnitude of the terms summed (a relative error on the
/// result alone is meaningless where the result cancels to ~0).
void runCase(const GemmCase &c, const Target &target) {
  const bool batched = c.batch > 0;
  const int nb = batched ? c.batch : 1;
  std::mt19937 rng(c.M * 131 + c.K * 7 + c.N + c.batch);

  std::vector<int> aExt = {c.K, c.M}, bExt = c.transposeB
                                                 ? std::vector<int>{c.K, c.N}
                                                 : std::vector<int>{c.N, c.K};
  std::vector<int> outExt = {c.N, c.M};
  if (batched) {
    aExt.push_back(c.batch);
    if (!c.sharedB)
      bExt.push_back(c.batch);
    outExt.push_back(c.batch);
  }
  Buffer<float> a = randomBuffer(aExt, rng), b = randomBuffer(bExt, rng);
  Buffer<float> bias = randomBuffer({c.N}, rng);
  Buffer<float> residual = randomBuffer(outExt, rng);

  ImageParam pa(Float(32), (int)aExt.size(), "A");
  ImageParam pb(Float(32), (int)bExt.size(), "B");
  ImageParam pbias(Float(32), 1, "bias");
  ImageParam pres(Float(32), (int)outExt.size(), "residual");
  pa.set(a);
  pb.set(b);
  pbias.set(bias);
  pres.set(residual);

  dyncc::codegen::GemmEpilogue epilogue;
  if (c.epilogue == Epilogue::BiasRelu)
    epilogue = [&](const Expr &acc, const std::vector<Var> &v) {
      return max(acc + pbias(v[0]), 0.0f);
    };
  else if (c.epilogue == Epilogue::Residual)
    epilogue = [&](const Expr &acc, const std::vector<Var> &v) {
      std::vector<Expr> args(v.begin(), v.end());
      return acc + pres(args);
    };

  GemmShape shape;
  shape.batch = c.batch;
  shape.M = c.M;
  shape.N = c.N;
  shape.K = c.K;
  shape.transposeB = c.transposeB;
  shape.bf16 = c.bf16;
  // bf16: the Tiled path multiplies the operands rounded to bf16, the
  // few-row paths fp32 A by B rounded to bf16.
  const dyncc::codegen::GemmTiling chosen =
      dyncc::codegen::chooseGemmTiling(shape, target, c.tiling);
  const bool rounded = chosen.bf16 || chosen.bf16B;
  auto operandA = [&](float v) { return chosen.bf16 ? roundToBf16(v) : v; };
  auto operandB = [&](float v) { return rounded ? roundToBf16(v) : v; };
  // Rows needed (c.mask): the others are don't-care and not checked.
  std::vector<int> usedExt = {c.M};
  if (batched)
    usedExt.push_back(c.batch);
  Buffer<int32_t> used(usedExt);
  for (int bi = 0; bi < nb; ++bi) {
    int prefix = nb == 1 ? c.M / 2 : (int)((int64_t)c.M * bi / (nb - 1));
    for (int m = 0; m < c.M; ++m) {
      int u = c.mask == 1 ? m < prefix : c.mask == 2 ? (int)(rng() % 3 == 0) : 1;
      if (batched)
        used(m, bi) = u;
      else
        used(m) = u;
    }
  }
  Func rowUsed;
  if (c.mask) {
    ImageParam pused(Int(32), (int)usedExt.size(), "used");
    pused.set(used);
    rowUsed = Func(pused);
  }
  Func gemm =
      buildGemm(shape, pa, pb, epilogue, target, "gemm", c.tiling, rowUsed);
  Buffer<float> out(outExt);
  out.fill(std::nanf(""));
  gemm.realize(out, target);

  // A prefix mask with a panel that divides N: the batch element without a
  // needed row (bi = 0) must have been skipped, its poison left in place.
  if (c.mask == 1 && batched && c.tiling.path == dyncc::codegen::GemmPath::Tiled &&
      c.N % 16 == 0)
    for (int m = 0; m < c.M; ++m)
      ASSERT_TRUE(std::isnan(out(0, m, 0)))
          << "row " << m << " of an empty batch element was computed";

  // With bf16, the result must follow the rounded operands: much closer to
  // their product than the fp32 operands' product is.
  double maxError = 0, maxRounding = 0;
  for (int bi = 0; bi < nb; ++bi)
    for (int m = 0; m < c.M; ++m)
      for (int n = 0; n < c.N; ++n) {
        if (!(batched ? used(m, bi) : used(m)))
          continue;
        double ref = 0, mag = 0, unrounded = 0;
        for (int k = 0; k < c.K; ++k) {
          int bb = c.sharedB ? 0 : bi;
          double av = batched ? a(k, m, bi) : a(k, m);
          double bv;
          if (batched && !c.sharedB)
            bv = c.transposeB ? b(k, n, bb) : b(n, k, bb);
          else
            bv = c.transposeB ? b(k, n) : b(n, k);
          unrounded += av * bv;
          av = operandA((float)av);
          bv = operandB((float)bv);
          ref += av * bv;
          mag += std::fabs(av * bv);
        }
        if (c.epilogue == Epilogue::BiasRelu) {
          ref = std::max(ref + bias(n), 0.0);
          mag += std::fabs(bias(n));
        } else if (c.epilogue == Epilogue::Residual) {
          double r = batched ? residual(n, m, bi) : residual(n, m);
          ref += r;
          mag += std::fabs(r);
        }
        float got = batched ? out(n, m, bi) : out(n, m);
        if (c.epilogue == Epilogue::None) {
          maxError = std::max(maxError, std::fabs(got - ref));
          maxRounding = std::max(maxRounding, std::fabs(unrounded - ref));
        }
        ASSERT_LE(std::fabs(got - ref), 1e-4 * mag + 1e-30)
            << "at b=" << bi << " m=" << m << " n=" << n << ": got " << got
            << ", expected " << ref << " (" << target.to_string() << ")";
      }

  if (rounded && c.epilogue == Epilogue::None && c.K >= 16)
    EXPECT_LT(maxError, 0.01 * maxRounding)
        << "a bf16 GEMM's result is not the product of bf16 operands";

  // Every output is written by one parallel task, or by several with the
  // same bits: the result does not depend on the order the tasks run in.
  Buffer<float> forward(outExt), backward(outExt);
  forward.fill(std::nanf(""));
  backward.fill(std::nanf(""));
  gemm.jit_handlers().custom_do_par_for = serialDoParFor<false>;
  gemm.realize(forward, target);
  gemm.jit_handlers().custom_do_par_for = serialDoParFor<true>;
  gemm.realize(backward, target);
  gemm.jit_handlers().custom_do_par_for = nullptr;
  ASSERT_EQ(0, std::memcmp(forward.data(), backward.data(),
                           forward.size_in_bytes()))
      << "the output depends on the order of the parallel tasks ("
      << target.to_string() << ")";
}

std::vector<GemmCase> cases() {
  // One case per line:
  // clang-format off
  std::vector<GemmCase> cs = {
      // {batch, M, K, N}
      {0, 1, 1, 1},
      {0, 7, 13, 5},
      {0, 1, 768, 768},
      {0, 33, 65, 17},
      {0, 3, 40, 100},
      {0, 2, 9, 15},
      {0, 17, 31, 129},
      {0, 64, 64, 64},
      {0, 128, 768, 768},
      {0, 100, 300, 200},
      {3, 5, 20, 37},
      {3, 33, 65, 17},
      {1, 16, 32, 48},
  };
  // clang-format on
  auto add = [&](GemmCase c) { cs.push_back(c); };
  // Transposed B ([out, in] weights): the dot-product path (small M) and
  // the packed path, with K a multiple of the vector width or not.
  add({0, 1, 1, 1, true});
  add({0, 1, 768, 768, true});
  add({0, 2, 7, 3, true});
  add({0, 33, 65, 17, true});
  add({0, 40, 7, 70, true});
  add({0, 96, 128, 96, true});
  add({0, 100, 64, 8, true}); // a router: 12 x 1 tiles, a tail of 4 rows
  add({3, 20, 33, 50, true});
  // Shared weights across a batch.
  add({3, 9, 24, 40, false, Epilogue::None, true});
  add({2, 20, 33, 50, true, Epilogue::BiasRelu, true});
  // Fused epilogues.
  add({0, 33, 65, 17, false, Epilogue::BiasRelu});
  add({0, 1, 768, 768, false, Epilogue::BiasRelu});
  add({0, 1, 768, 768, true, Epilogue::BiasRelu});
  add({0, 50, 64, 130, true, Epilogue::BiasRelu});
  add({0, 33, 65, 17, false, Epilogue::Residual});
  add({0, 70, 64, 96, true, Epilogue::Residual});
  add({3, 5, 20, 37, false, Epilogue::Residual});
  // Forced tilings: tails in every direction of the tiled path, the
  // unpacked tiled path, the packed path for small M.
  GemmCase forced = {0, 23, 19, 45};
  forced.tiling.rows = 5;
  forced.tiling.vectors = 2;
  forced.tiling.blockRows = 10;
  add(forced);
  forced.transposeB = true;
  add(forced);
  GemmCase noPack = {0, 40, 50, 60};
  noPack.tiling.packB = 0;
  add(noPack);
  GemmCase pack = {0, 3, 50, 60};
  pack.tiling.packB = 1;
  add(pack);
  // Every path on shapes Auto would not give it (odd K for Stream's k
  // unrolling and Dot's vector tail, large M, the other layout of B).
  using dyncc::codegen::GemmPath;
  for (GemmPath path : {GemmPath::Tiled, GemmPath::Stream, GemmPath::Dot}) {
    for (GemmCase c : std::vector<GemmCase>{{0, 1, 768, 768},
                                            {0, 5, 33, 70},
                                            {0, 20, 37, 45},
                                            {0, 6, 21, 40, true},
                                            {0, 13, 8, 3, true},
                                            {3, 3, 20, 37},
                                            {2, 9, 35, 17, true}}) {
      c.tiling.path = path;
      add(c);
    }
  }
  // Rows not needed (a MoE layer's empty capacity): the Tiled path skips
  // their micro-tiles; every needed row must still be exact. Tails in M and
  // N, batched and not, packed and in place, a transposed B, an epilogue.
  // N = 100 and 45: no panel divides N, every row is computed.
  for (GemmCase c : std::vector<GemmCase>{{8, 80, 64, 96},
                                          {5, 37, 33, 64, true},
                                          {0, 45, 20, 48},
                                          {8, 80, 64, 100},
                                          {3, 23, 19, 45}}) {
    for (int mask : {1, 2}) {
      c.mask = mask;
      c.tiling.path = GemmPath::Tiled;
      c.tiling.packB = mask == 1;
      add(c);
    }
  }
  // Large enough for parallel tasks, with tails that a task split can cut
  // across (checked for order independence): the batched early-exit
  // encoder's Dot GEMM (32 x 8 rows against shared [32, 32] weights) and
  // one per path.
  add({32, 8, 32, 32, true, Epilogue::BiasRelu, true});
  add({32, 8, 32, 32, true, Epilogue::Residual, true});
  for (GemmPath path : {GemmPath::Tiled, GemmPath::Stream, GemmPath::Dot})
    for (GemmCase c : std::vector<GemmCase>{{0, 4, 64, 1000, true},
                                            {0, 6, 64, 1000},
                                            {4, 37, 40, 77},
                                            {0, 130, 50, 90, true}}) {
      c.tiling.path = path;
      add(c);
    }
  GemmCase maskedBias = {4, 30, 40, 50, false, Epilogue::BiasRelu};
  maskedBias.mask = 1;
  add(maskedBias);
  maskedBias.tiling.path = GemmPath::Stream; // computes every row
  add(maskedBias);

  // Narrower vectors than the target's (the AVX2 / SSE shapes on AVX-512).
  GemmCase narrow = {0, 33, 65, 17};
  narrow.tiling.vectorWidth = 4;
  add(narrow);
  narrow.transposeB = true;
  add(narrow);
  narrow.tiling.vectorWidth = 8;
  add(narrow);

  // bf16 (--precision=bf16): the Tiled path on odd K (a pair padded with
  // zero) and even K (a transposed B packed through the staging tile), both
  // layouts of B, batches with shared and per-element B, tails, skipped row
  // tiles, epilogues; the few-row paths (Dot, Stream) round B where it
  // outgrows the L2 (768 x 768 and up), else stay fp32.
  for (GemmCase c : std::vector<GemmCase>{{0, 128, 768, 768, true},
                                          {0, 33, 65, 17},
                                          {0, 23, 19, 45, true},
                                          {0, 40, 7, 70, true},
                                          {3, 20, 33, 50, true},
                                          {2, 20, 33, 50, true, Epilogue::BiasRelu, true},
                                          {0, 70, 64, 96, true, Epilogue::Residual},
                                          {0, 130, 50, 90, true},
                                          {0, 1, 768, 768, true},
                                          {0, 1, 768, 768},
                                          {0, 4, 3000, 100, true},
                                          {0, 3, 2100, 130},
                                          {2, 1, 48, 64, true},
                                          {3, 20, 32, 50, true},
                                          {2, 20, 64, 50, true, Epilogue::BiasRelu, true},
                                          {0, 64, 1024, 256, true, Epilogue::Residual},
                                          {2, 17, 40, 33}}) {
    c.bf16 = true;
    add(c);
  }
  GemmCase bf16Masked = {8, 80, 64, 96};
  bf16Masked.bf16 = true;
  bf16Masked.mask = 2;
  bf16Masked.tiling.path = GemmPath::Tiled;
  add(bf16Masked);
  // A Stream GEMM asked for on a transposed B beyond the L2: B is rounded
  // in the transposed staging tile.
  GemmCase bf16StreamT = {0, 4, 1024, 1024, true};
  bf16StreamT.bf16 = true;
  bf16StreamT.tiling.path = GemmPath::Stream;
  add(bf16StreamT);
  GemmCase bf16Narrow = {0, 33, 65, 40, true};
  bf16Narrow.bf16 = true;
  bf16Narrow.tiling.vectorWidth = 8;
  add(bf16Narrow);
  return cs;
}

// Every case on every target in one test: the JIT compilations dominate,
// and one process per case keeps ctest's start-up cost down.
class GemmKernel : public ::testing::TestWithParam<GemmCase> {};

TEST_P(GemmKernel, MatchesDoubleLoop) {
  Target host(dyncc::codegen::hostKernelTarget());
  {
    SCOPED_TRACE("host target");
    runCase(GetParam(), host);
  }
  {
    SCOPED_TRACE("generic target");
    runCase(GetParam(), Target(dyncc::codegen::genericKernelTarget()));
  }
  // bf16 GEMMs with vdpbf16ps, where the host has AVX512-BF16.
  if (GetParam().bf16 && dyncc::codegen::hostHasAvx512Bf16()) {
    SCOPED_TRACE("host target with AVX512-BF16");
    runCase(GetParam(),
            Target(dyncc::codegen::bf16KernelTarget(host.to_string())));
  }
  // The 16-register micro-tiles of AVX2 without AVX-512, where the host
  // can run them.
  if (host.has_feature(Target::AVX2) && host.has_feature(Target::FMA)) {
    SCOPED_TRACE("avx2 target");
    runCase(GetParam(), Target("x86-64-linux-avx-avx2-f16c-fma-sse41"));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmKernel, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<GemmCase> &info) {
                           return caseName(info.param);
                         });

TEST(GemmKernelApi, RejectsBadShapesAndOperands) {
  ImageParam a(Float(32), 2, "A"), b(Float(32), 2, "B");
  ImageParam a3(Float(32), 3, "A3"), ai(Int(32), 2, "Ai");
  Target host(dyncc::codegen::hostKernelTarget());
  GemmShape shape;
  shape.M = 4;
  shape.N = 4;
  shape.K = 0;
  EXPECT_THROW(buildGemm(shape, a, b, nullptr, host), std::invalid_argument);
  shape.K = 4;
  // A 3-D operand needs a batched shape.
  EXPECT_THROW(buildGemm(shape, a3, b, nullptr, host), std::invalid_argument);
  EXPECT_THROW(buildGemm(shape, ai, b, nullptr, host), std::invalid_argument);
  EXPECT_NO_THROW(buildGemm(shape, a, b, nullptr, host));
  shape.batch = 2;
  EXPECT_NO_THROW(buildGemm(shape, a3, b, nullptr, host));
}

// A narrow N (a MoE router: 8 experts) leaves one vector per row: the
// micro-tile grows taller to keep its accumulators, even where the tile's
// own rows fit M exactly (6 accumulators wait on the FMAs' latency: 12 x 1
// ran 2.9x faster than 6 x 1 on the AMD EPYC).
TEST(GemmKernelApi, NarrowColumnsTakeTallerTiles) {
  Target avx512("x86-64-linux-avx-avx2-fma-f16c-sse41-avx512");
  GemmShape router;
  router.M = 512;
  router.N = 8;
  router.K = 512;
  router.transposeB = true;
  GemmTiling t = dyncc::codegen::chooseGemmTiling(router, avx512);
  EXPECT_EQ(t.path, dyncc::codegen::GemmPath::Tiled);
  EXPECT_EQ(t.vectors, 1);
  EXPECT_EQ(t.rows, 12);
  GemmShape few = router;
  few.M = 18;
  t = dyncc::codegen::chooseGemmTiling(few, avx512);
  EXPECT_EQ(t.rows, 12); // 2 tiles of 12 (6 rows recomputed) over 3 of 6
  GemmShape wide = router;
  wide.N = 64;
  t = dyncc::codegen::chooseGemmTiling(wide, avx512);
  EXPECT_EQ(t.vectors * t.rows, 24); // the 6 x 4 tile, unchanged
}

// AVX2's 16 ymm registers: a tile of fewer than 12 accumulators counts as
// slower in proportion, so a 128-row GEMM takes 6 x 2 (132 rows computed)
// over 2 x 4 (exact, 8 accumulators), with B in panels or packed; AVX-512's
// 4 x 4 (16) is unchanged.
TEST(GemmKernelApi, TilesKeepTwelveAccumulators) {
  Target avx2("x86-64-linux-avx-avx2-fma-f16c-sse41");
  Target avx512("x86-64-linux-avx-avx2-fma-f16c-sse41-avx512");
  GemmShape qkv;
  qkv.M = 128;
  qkv.N = 256;
  qkv.K = 256;
  qkv.bPanels = true;
  GemmTiling t = dyncc::codegen::chooseGemmTiling(qkv, avx2);
  EXPECT_EQ(t.rows, 6);
  EXPECT_EQ(t.vectors, 2);
  EXPECT_EQ(t.vectorWidth, 8);
  t = dyncc::codegen::chooseGemmTiling(qkv, avx512);
  EXPECT_EQ(t.rows, 4);
  EXPECT_EQ(t.vectors, 4);
  qkv.bPanels = false;
  qkv.transposeB = true;
  t = dyncc::codegen::chooseGemmTiling(qkv, avx2);
  EXPECT_GE(t.rows * t.vectors, 12);
}

// The machine a compile schedules for (dyncc compile --cores, --l2-kib):
// more cores cut the rows into more tasks; a smaller L2 packs a B that no
// longer fits it. Reset to the defaults at the end.
TEST(GemmKernelApi, TasksAndPackingFollowTheMachine) {
  Target avx512("x86-64-linux-avx-avx2-fma-f16c-sse41-avx512");
  GemmShape qkv;
  qkv.M = 128;
  qkv.N = 256;
  qkv.K = 256;
  qkv.transposeB = true;
  // A cross target defaults to 2 cores and 1 MiB: 4 panels x 2 row blocks.
  EXPECT_EQ(dyncc::codegen::targetTasks(avx512), 8);
  EXPECT_EQ(dyncc::codegen::chooseGemmTiling(qkv, avx512).blockRows, 64);
  dyncc::codegen::setScheduleMachine({16, 0});
  EXPECT_EQ(dyncc::codegen::targetTasks(avx512), 32);
  EXPECT_EQ(dyncc::codegen::chooseGemmTiling(qkv, avx512).blockRows, 16);
  dyncc::codegen::setScheduleMachine({1, 0});
  EXPECT_EQ(dyncc::codegen::targetTasks(avx512), 8); // never fewer
  // 64 x 512 x 512, B [K, N] of 1 MiB, rows 2 KiB apart: read in place
  // while it fits the L2, packed once it does not.
  GemmShape fits;
  fits.M = 64;
  fits.N = 512;
  fits.K = 512;
  dyncc::codegen::setScheduleMachine({0, 1 << 20});
  EXPECT_EQ(dyncc::codegen::chooseGemmTiling(fits, avx512).packB, 0);
  dyncc::codegen::setScheduleMachine({0, 512 << 10});
  EXPECT_EQ(dyncc::codegen::chooseGemmTiling(fits, avx512).packB, 1);
  dyncc::codegen::setScheduleMachine({});
  EXPECT_EQ(dyncc::codegen::targetL2Bytes(avx512), 1 << 20);
}

// The splits of a many-core (and an odd-core) schedule stay exact: every
// output written once, by one task, tails included, on every path.
TEST(GemmKernelApi, ManyCoreSchedulesMatchDoubleLoop) {
  std::vector<GemmCase> cs = {{0, 128, 256, 256, true},
                              {0, 100, 64, 200},
                              {0, 37, 129, 77, true},
                              {3, 50, 64, 70},
                              {0, 3, 256, 500, true},
                              {0, 5, 300, 1000}};
  cs.back().tiling.path = dyncc::codegen::GemmPath::Stream;
  GemmCase masked = {2, 60, 48, 96};
  masked.mask = 1;
  cs.push_back(masked);
  Target host(dyncc::codegen::hostKernelTarget());
  for (int cores : {16, 3}) {
    dyncc::codegen::setScheduleMachine({cores, 0});
    for (const GemmCase &c : cs) {
      SCOPED_TRACE(caseName(c) + " for " + std::to_string(cores) + " cores");
      runCase(c, host);
    }
  }
  dyncc::codegen::setScheduleMachine({});
}

// A B kept in panels of 64 rows (GemmShape::bPanels: a weight the runtime
// arranged, dyncc compile --pack-weights), read in place through the
// index arithmetic EmitHalide uses: the Tiled path, no copy, a micro-tile
// panel inside one of B's, and the double loop's results, rows' tails
// included.
TEST(GemmKernelApi, ReadsBInPanels) {
  struct Case {
    int M, N, K;
    GemmTiling tiling;
  };
  GemmTiling wide; // 8 x 3 vectors: 48 columns, narrowed to a divisor of 64
  wide.rows = 8;
  wide.vectors = 3;
  for (const Case &c : {Case{37, 128, 64, {}}, Case{100, 256, 192, {}},
                        Case{9, 64, 128, {}}, Case{40, 192, 64, wide}}) {
    SCOPED_TRACE(std::to_string(c.M) + "x" + std::to_string(c.K) + "x" +
                 std::to_string(c.N));
    std::mt19937 rng(c.M + c.N + c.K);
    Buffer<float> a = randomBuffer({c.K, c.M}, rng),
                  w = randomBuffer({c.K, c.N}, rng); // w(k, n): [N, K]
    // The runtime's arrangement: (n, k) at ((n / 64) * K + k) * 64 + n % 64
    // of the matrix, read through its flat view (codegen::panelView).
    const int P = dyncc::codegen::kPanelColumns;
    Buffer<float> panels(c.N * c.K);
    for (int n = 0; n < c.N; ++n)
      for (int k = 0; k < c.K; ++k)
        panels(((n / P) * c.K + k) * P + n % P) = w(k, n);
    ImageParam pa(Float(32), 2, "A"), pw(Float(32), 1, "W");
    pa.set(a);
    pw.set(panels);
    Var n("n"), k("k");
    Func b("b_panels");
    b(n, k) = pw(((n / P) * c.K + k) * P + n % P);
    GemmShape shape;
    shape.M = c.M;
    shape.N = c.N;
    shape.K = c.K;
    shape.bPanels = true;
    Target host(dyncc::codegen::hostKernelTarget());
    GemmTiling chosen;
    Func g = buildGemm(shape, pa, b, {}, host, "panels", c.tiling, {}, &chosen);
    EXPECT_EQ(chosen.path, dyncc::codegen::GemmPath::Tiled);
    EXPECT_EQ(chosen.packB, 0);
    EXPECT_EQ(P % (chosen.vectors * chosen.vectorWidth), 0);
    Buffer<float> out(c.N, c.M);
    out.fill(std::nanf(""));
    g.realize(out, host);
    for (int m = 0; m < c.M; ++m)
      for (int j = 0; j < c.N; ++j) {
        double ref = 0, mag = 0;
        for (int kk = 0; kk < c.K; ++kk) {
          ref += (double)a(kk, m) * w(kk, j);
          mag += std::fabs((double)a(kk, m) * w(kk, j));
        }
        ASSERT_LE(std::fabs(out(j, m) - ref), 1e-5 * mag)
            << "m " << m << " n " << j;
      }
  }
}

// Batched B [E, K, N] kept in panels of columns (MoE experts' weights):
// per expert (k, n) at ((n / 64) * K + k) * 64 + n % 64, row tiles skipped
// where no row is needed, as W1's expert GEMMs run.
TEST(GemmKernelApi, ReadsBatchedBInColumnPanels) {
  const int E = 3, M = 30, K = 48, N = 128, P = dyncc::codegen::kPanelColumns;
  std::mt19937 rng(11);
  Buffer<float> a = randomBuffer({K, M, E}, rng), w = randomBuffer({N, K, E}, rng);
  Buffer<float> panels(N * K, E); // the flat view (codegen::panelView)
  for (int e = 0; e < E; ++e)
    for (int k = 0; k < K; ++k)
      for (int n = 0; n < N; ++n)
        panels(((n / P) * K + k) * P + n % P, e) = w(n, k, e);
  ImageParam pa(Float(32), 3, "A"), pw(Float(32), 2, "W");
  pa.set(a);
  pw.set(panels);
  Var n("n"), k("k"), b("b"), m("m");
  Func bp("b_panels");
  bp(n, k, b) = pw(((n / P) * K + k) * P + n % P, b);
  Func used("used"); // rows m < 10 + 7 e of expert e are filled
  used(m, b) = m < 10 + 7 * b;
  GemmShape shape;
  shape.batch = E;
  shape.M = M;
  shape.N = N;
  shape.K = K;
  shape.bPanels = true;
  Target host(dyncc::codegen::hostKernelTarget());
  GemmTiling chosen;
  Func g = buildGemm(shape, pa, bp, {}, host, "panels_b", {}, used, &chosen);
  EXPECT_EQ(chosen.packB, 0);
  EXPECT_GT(chosen.skipRows, 0);
  EXPECT_EQ(P % (chosen.vectors * chosen.vectorWidth), 0);
  Buffer<float> out(N, M, E);
  out.fill(std::nanf(""));
  g.realize(out, host);
  for (int e = 0; e < E; ++e)
    for (int mm = 0; mm < 10 + 7 * e; ++mm)
      for (int j = 0; j < N; ++j) {
        double ref = 0, mag = 0;
        for (int kk = 0; kk < K; ++kk) {
          ref += (double)a(kk, mm, e) * w(j, kk, e);
          mag += std::fabs((double)a(kk, mm, e) * w(j, kk, e));
        }
        ASSERT_LE(std::fabs(out(j, mm, e) - ref), 1e-5 * mag)
            << "e " << e << " m " << mm << " n " << j;
      }
}

// bf16 weights kept in panels of pairs (GemmShape::bPanels with bf16:
// DYNRT_STORAGE_BF16_PANELS): (n, k) at ((n / 64) * K / 2 + k / 2) * 128 +
// (n % 64) * 2 + k % 2 of each [N, K] matrix, B given as its pairs (kk,
// n % 64, k2, n / 64[, b]) and read in place by the micro-kernel: a linear
// layer's [N, K] and a batch of them [E, N, K], on the host target and with
// vdpbf16ps where the host has AVX512-BF16, against the double loop of the
// bf16-rounded operands.
/// Multiplies a weight kept as bf16 pairs in panels (as the runtime keeps
/// it) on each target, with Halide's micro-kernel or, given `amxEntry`, on
/// AMX tiles through that extern, against a float64 double loop; adds the
/// micro-tiles' widths the cases took to `widths`.
void checkBf16PairsInPanels(const std::vector<Target> &targets,
                            const std::string &amxEntry, std::set<int> &widths) {
  const int P = dyncc::codegen::kPanelColumns, G = 2 * P;
  struct Case {
    int E, M, N, K; // E = 0: one [N, K]; else [E, N, K]
    bool shared = false; // E > 0: a batch of A, one [N, K] for all
    int halfPanel = 0;   // > 0: tiles of that many rows x 2 vectors asked for
  };
  // (The automatic tiles span the panel, 4 vectors; the last case asks for
  // 8 x 2: tiles of 32 columns, two a panel.)
  for (const Case &c : {Case{0, 37, 128, 256}, Case{0, 9, 64, 128},
                        Case{0, 130, 192, 384}, Case{0, 128, 384, 384},
                        Case{3, 30, 128, 128}, Case{2, 45, 128, 128, true},
                        Case{0, 128, 384, 384, false, 8}}) {
    SCOPED_TRACE(std::to_string(c.E) + (c.shared ? " shared" : "") + ": " +
                 std::to_string(c.M) + "x" + std::to_string(c.K) + "x" +
                 std::to_string(c.N));
    const int E = std::max(1, c.E), K2 = c.K / 2;
    const int WE = c.shared ? 1 : E;              // the weight's matrices
    const bool wBatched = c.E && !c.shared;
    std::mt19937 rng(c.M + c.N + c.K);
    Buffer<float> a = c.E ? randomBuffer({c.K, c.M, E}, rng)
                          : randomBuffer({c.K, c.M}, rng),
                  w = randomBuffer({c.K, c.N, WE}, rng); // w(k, n, e)
    // The runtime's arrangement, in the flat view a kernel reads it
    // through (codegen::panelView: each matrix one run of N x K).
    Buffer<bfloat16_t> panels(c.N * c.K, WE);
    for (int e = 0; e < WE; ++e)
      for (int n = 0; n < c.N; ++n)
        for (int k = 0; k < c.K; ++k) {
          int flat = ((n / P) * K2 + k / 2) * G + (n % P) * 2 + k % 2;
          panels(flat, e) = bfloat16_t(roundToBf16(w(k, n, e)));
        }
    if (!wBatched)
      panels = panels.sliced(1, 0);
    ImageParam pa(Float(32), c.E ? 3 : 2, "A"),
        pw(BFloat(16), wBatched ? 2 : 1, "W");
    pa.set(a);
    pw.set(panels);
    Var kk("kk"), j("j"), k2("k2"), t("t"), b("b");
    Expr flat = (t * K2 + k2) * G + j * 2 + kk;
    Func pairs("b_pairs");
    if (wBatched)
      pairs(kk, j, k2, t, b) = cast<float>(pw(flat, b));
    else
      pairs(kk, j, k2, t) = cast<float>(pw(flat));
    GemmShape shape;
    shape.batch = c.E;
    shape.M = c.M;
    shape.N = c.N;
    shape.K = c.K;
    shape.bf16 = true;
    shape.bPanels = true;
    for (const Target &target : targets) {
      SCOPED_TRACE(target.to_string());
      GemmTiling chosen;
      dyncc::codegen::GemmPanels panels;
      panels.amxEntry = amxEntry;
      panels.weights = pw.parameter();
      GemmTiling requested;
      if (c.halfPanel > 0) {
        requested.rows = c.halfPanel;
        requested.vectors = 2;
      }
      Func g = buildGemm(shape, pa, pairs, {}, target, "pairs", requested, {},
                         &chosen, panels);
      EXPECT_TRUE(chosen.bf16);
      EXPECT_EQ(chosen.packB, 0);
      EXPECT_EQ(chosen.amx, !amxEntry.empty());
      EXPECT_EQ(P % (chosen.vectors * chosen.vectorWidth), 0);
      widths.insert(chosen.vectors * chosen.vectorWidth);
      Buffer<float> out = c.E ? Buffer<float>(c.N, c.M, E)
                              : Buffer<float>(c.N, c.M);
      out.fill(std::nanf(""));
      g.realize(out, target);
      for (int e = 0; e < E; ++e)
        for (int mm = 0; mm < c.M; ++mm)
          for (int n = 0; n < c.N; ++n) {
            double ref = 0, mag = 0;
            for (int q = 0; q < c.K; ++q) {
              double p = (double)roundToBf16(c.E ? a(q, mm, e) : a(q, mm)) *
                         roundToBf16(w(q, n, c.shared ? 0 : e));
              ref += p;
              mag += std::fabs(p);
            }
            float got = c.E ? out(n, mm, e) : out(n, mm);
            ASSERT_LE(std::fabs(got - ref), 1e-5 * mag)
                << "e " << e << " m " << mm << " n " << n;
          }
    }
  }
}

TEST(GemmKernelApi, ReadsBf16PairsInPanels) {
  Target host(dyncc::codegen::hostKernelTarget());
  std::vector<Target> targets{host};
  if (dyncc::codegen::hostHasAvx512Bf16())
    targets.push_back(
        Target(dyncc::codegen::bf16KernelTarget(host.to_string())));
  std::set<int> widths;
  checkBf16PairsInPanels(targets, "", widths);
  // Panel-wide tiles and tiles of half a panel (on AVX-512).
  if (host.has_feature(Target::AVX512))
    EXPECT_EQ(widths, (std::set<int>{32, 64}));
}

TEST(GemmKernelApi, MultipliesBf16PairsOnAmxTiles) {
  // runtime/AmxGemm.c through LLVM's scalar lowering of its tile
  // instructions (the emulated twin, linked into this program): the same
  // kernel, blocks and tails as on a CPU with AMX, on any x86-64.
  std::set<int> widths;
  checkBf16PairsInPanels({Target(dyncc::codegen::hostKernelTarget())},
                         dyncc::codegen::kAmxEmulatedEntry, widths);
}

TEST(GemmKernelApi, CompilesAheadOfTimeForBothTargets) {
  // The kernel emitter compiles to objects, not with the JIT.
  for (const std::string &t : {dyncc::codegen::hostKernelTarget(),
                               dyncc::codegen::genericKernelTarget()}) {
    ImageParam a(Float(32), 2, "A"), b(Float(32), 2, "B");
    GemmShape shape;
    shape.M = 128;
    shape.N = 768;
    shape.K = 768;
    shape.transposeB = true;
    Target target(t);
    Func gemm = buildGemm(shape, a, b, nullptr, target, "gemm_aot");
    std::string path = ::testing::TempDir() + "gemm_aot.o";
    ASSERT_NO_THROW(gemm.compile_to_object(path, {a, b}, "gemm_aot", target))
        << t;
    std::ifstream object(path, std::ios::binary);
    char magic[4] = {};
    object.read(magic, 4);
    EXPECT_EQ(std::string(magic, 4), "\x7f"
                                     "ELF")
        << t;
  }
}

} // namespace
