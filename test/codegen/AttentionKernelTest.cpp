//===- AttentionKernelTest.cpp - fused attention against a double loop ----===//
//
// JIT-compiles codegen/AttentionKernel (scores, softmax and value product in
// one pipeline, per block of queries) for many shapes and tilings (blocks
// with tails, fewer queries than a vector, one key, odd feature counts,
// with and without batch, a scale and an additive mask in the scores'
// epilogue, a bias in the output's) on the host, generic and AVX2 targets,
// and compares every output with a loop in double precision; then checks
// that the result does not depend on the order of the parallel tasks.
//
// This file includes Halide.h and no MLIR header (see codegen/).
//
//===----------------------------------------------------------------------===//

#include "codegen/AttentionKernel.h"
#include "codegen/HalideTarget.h"

#include <Halide.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <cstring>
#include <random>
#include <sstream>
#include <string>

using namespace Halide;
using dyncc::codegen::AttentionKeyTiles;
using dyncc::codegen::AttentionShape;
using dyncc::codegen::AttentionSoftmax;
using dyncc::codegen::AttentionTiling;
using dyncc::codegen::buildAttention;

namespace {

struct AttentionCase {
  int batch; // 0: 2-D operands
  int M, N, K, D;
  bool mask = false; // an additive mask [b][m][n] (some -1e9) after the scale
  bool bias = false; // a bias over d added to the output
  AttentionTiling tiling = {};
  /// K given as a Func that scales it (torch's SDPA scales Q and K by
  /// scale^(1/2) each): buildAttention stages its values per task.
  bool scaledK = false;
  /// Padding: per batch element, every key from a random length on masked
  /// with -inf for all queries, and keyLive given (buildAttention skips
  /// those keys; the result must equal the unskipped one to the bit).
  bool padded = false;
};

std::string caseName(const AttentionCase &c) {
  std::ostringstream s;
  if (c.batch > 0)
    s << "b" << c.batch << "_";
  s << "m" << c.M << "_n" << c.N << "_k" << c.K << "_d" << c.D;
  if (c.mask)
    s << "_mask";
  if (c.bias)
    s << "_bias";
  if (c.scaledK)
    s << "_scaledk";
  if (c.padded)
    s << "_padded";
  if (c.tiling.queries)
    s << "_q" << c.tiling.queries;
  if (c.tiling.vectorWidth)
    s << "_vw" << c.tiling.vectorWidth;
  if (c.tiling.keys)
    s << "_keys" << c.tiling.keys;
  if (c.tiling.valueRows)
    s << "_rows" << c.tiling.valueRows;
  if (c.tiling.valueVectors)
    s << "_vv" << c.tiling.valueVectors;
  return s.str();
}

void PrintTo(const AttentionCase &c, std::ostream *os) { *os << caseName(c); }

Buffer<float> randomBuffer(std::vector<int> extents, std::mt19937 &rng,
                           float scale = 1.0f) {
  Buffer<float> buf(extents);
  std::uniform_real_distribution<float> dist(-scale, scale);
  buf.for_each_value([&](float &v) { v = dist(rng); });
  return buf;
}

template <bool Reverse>
int serialDoParFor(JITUserContext *, int (*f)(JITUserContext *, int, uint8_t *),
                   int min, int extent, uint8_t *closure) {
  for (int i = 0; i < extent; ++i)
    if (int r = f(nullptr, Reverse ? min + extent - 1 - i : min + i, closure))
      return r;
  return 0;
}

/// The softmax as dyncc's kernels decompose it (docs/codegen.md): a max,
/// exp(x - max), a sum and a divide, each a Func; where keys are skipped,
/// exp and divide are 0 at a skipped key and computed over the key tiles
/// (AttentionKeyTiles), as EmitHalide builds them.
AttentionSoftmax softmaxOf(const Func &scores, int N, bool batched,
                           const AttentionKeyTiles &tiles) {
  Var n("sn"), m("sm"), b("sb");
  auto at = [&](std::vector<Expr> a) {
    if (batched)
      a.push_back(b);
    return a;
  };
  auto vars = [&](std::vector<Var> v) {
    if (batched)
      v.push_back(b);
    return v;
  };
  RDom r(0, N, "r");
  Func mx("mx"), e("e"), sum("sum"), p("p");
  mx(vars({m})) = Float(32).min();
  mx(vars({m})) = max(mx(at({m})), scores(at({r, m})));
  auto perKey = [&](Func f, const std::string &name,
                    const std::function<Expr(Expr)> &value) {
    if (!tiles.skip) {
      f(vars({n, m})) = value(n);
      return;
    }
    f(vars({n, m})) = 0.0f;
    RDom k = tiles.domain(batched ? Expr(b) : Expr(), name);
    f(at({tiles.key(k), m})) = value(tiles.key(k));
  };
  perKey(e, "e_tiles",
         [&](Expr key) { return exp(scores(at({key, m})) - mx(at({m}))); });
  sum(vars({m})) = 0.0f;
  sum(vars({m})) += e(at({r, m}));
  perKey(p, "p_tiles",
         [&](Expr key) { return e(at({key, m})) / sum(at({m})); });
  AttentionSoftmax sm;
  sm.probs = p;
  sm.perKey = {e, p};
  sm.perQuery = {mx, sum};
  return sm;
}

void runCase(const AttentionCase &c, const Target &target) {
  const bool batched = c.batch > 0;
  const int nb = batched ? c.batch : 1;
  std::mt19937 rng(c.M * 131 + c.N * 7 + c.K + c.D * 3 + c.batch);
  auto ext = [&](int inner, int outer) {
    std::vector<int> e{inner, outer};
    if (batched)
      e.push_back(c.batch);
    return e;
  };
  Buffer<float> q = randomBuffer(ext(c.K, c.M), rng, 2.0f),
                k = randomBuffer(ext(c.K, c.N), rng, 2.0f),
                v = randomBuffer(ext(c.D, c.N), rng),
                mask = randomBuffer(ext(c.N, c.M), rng),
                bias = randomBuffer({c.D}, rng);
  // Masked keys (never all of a row's: key 0 stays).
  mask.for_each_element([&](const int *pos) {
    if (pos[0] > 0 && rng() % 4 == 0)
      mask(pos) = -1e9f;
  });
  if (c.padded) {
    // Key 0 always kept; with a batch, its last element keeps every key.
    for (int bi = 0; bi < nb; ++bi) {
      int length = nb > 1 && bi == nb - 1 ? c.N : 1 + (int)(rng() % c.N);
      mask.for_each_element([&](const int *pos) {
        if ((batched ? pos[2] : 0) == bi && pos[0] >= length)
          mask(pos) = -INFINITY;
      });
    }
  }
  ImageParam pq(Float(32), batched ? 3 : 2, "q"), pk(Float(32), batched ? 3 : 2, "k"),
      pv(Float(32), batched ? 3 : 2, "v"), pmask(Float(32), batched ? 3 : 2, "mask"),
      pbias(Float(32), 1, "bias");
  pq.set(q);
  pk.set(k);
  pv.set(v);
  pmask.set(mask);
  pbias.set(bias);
  const float scale = 1.0f / std::sqrt((float)c.K);
  dyncc::codegen::GemmEpilogue scoreEpilogue =
      [&](const Expr &acc, const std::vector<Var> &vars) {
        Expr s = acc * scale;
        if (c.mask)
          s = s + pmask(std::vector<Expr>(vars.begin(), vars.end()));
        return s;
      };
  dyncc::codegen::GemmEpilogue outEpilogue;
  if (c.bias)
    outEpilogue = [&](const Expr &acc, const std::vector<Var> &vars) {
      return acc + pbias(vars[0]);
    };
  AttentionShape shape;
  shape.batch = c.batch;
  shape.M = c.M;
  shape.N = c.N;
  shape.K = c.K;
  shape.D = c.D;
  const float kScale = c.scaledK ? 0.5f : 1.0f;
  Func kf("kf");
  {
    Var x("x"), y("y"), z("z");
    std::vector<Var> xs{x, y};
    if (batched)
      xs.push_back(z);
    kf(xs) = pk(std::vector<Expr>(xs.begin(), xs.end())) * kScale;
  }
  auto build = [&](const std::string &name, const Func &keyLive) {
    return buildAttention(
        shape, pq, c.scaledK ? kf : Func(pk), pv, scoreEpilogue,
        [&](const Func &scores, const AttentionKeyTiles &tiles) {
          return softmaxOf(scores, c.N, batched, tiles);
        },
        outEpilogue, target, name, c.tiling, nullptr, keyLive);
  };
  Func keyLive;
  if (c.padded) {
    Var n("ln"), m("lm"), b("lb");
    std::vector<Var> lv{n, m};
    if (batched)
      lv.push_back(b);
    keyLive = Func("live");
    keyLive(lv) = scoreEpilogue(Expr(0.0f), lv) != Expr(-INFINITY);
  }
  Func att = build("att", keyLive);
  Buffer<float> out(ext(c.D, c.M));
  out.fill(std::nanf(""));
  att.realize(out, target);

  auto get = [&](Buffer<float> &buf, int x, int y, int bi) {
    return batched ? buf(x, y, bi) : buf(x, y);
  };
  for (int bi = 0; bi < nb; ++bi)
    for (int m = 0; m < c.M; ++m) {
      std::vector<double> s(c.N);
      double mx = -INFINITY;
      for (int n = 0; n < c.N; ++n) {
        double dot = 0;
        for (int kk = 0; kk < c.K; ++kk)
          dot += (double)get(q, kk, m, bi) * (get(k, kk, n, bi) * kScale);
        s[n] = dot * scale + (c.mask ? get(mask, n, m, bi) : 0.0);
        mx = std::max(mx, s[n]);
      }
      double sum = 0;
      for (int n = 0; n < c.N; ++n)
        sum += s[n] = std::exp(s[n] - mx);
      for (int d = 0; d < c.D; ++d) {
        double ref = 0, mag = 0;
        for (int n = 0; n < c.N; ++n) {
          ref += s[n] / sum * get(v, d, n, bi);
          mag += std::fabs(s[n] / sum * get(v, d, n, bi));
        }
        if (c.bias) {
          ref += bias(d);
          mag += std::fabs(bias(d));
        }
        float got = get(out, d, m, bi);
        ASSERT_LE(std::fabs(got - ref), 2e-5 * mag + 1e-6)
            << "at b=" << bi << " m=" << m << " d=" << d << ": got " << got
            << ", expected " << ref << " (" << target.to_string() << ")";
      }
    }

  Buffer<float> forward(ext(c.D, c.M)), backward(ext(c.D, c.M));
  forward.fill(std::nanf(""));
  backward.fill(std::nanf(""));
  att.jit_handlers().custom_do_par_for = serialDoParFor<false>;
  att.realize(forward, target);
  att.jit_handlers().custom_do_par_for = serialDoParFor<true>;
  att.realize(backward, target);
  att.jit_handlers().custom_do_par_for = nullptr;
  ASSERT_EQ(0, std::memcmp(forward.data(), backward.data(),
                           forward.size_in_bytes()))
      << "the output depends on the order of the parallel tasks ("
      << target.to_string() << ")";
  ASSERT_EQ(0, std::memcmp(forward.data(), out.data(), out.size_in_bytes()))
      << "the thread pool's result differs from a serial run's";
  if (c.padded) {
    // Skipping the padding changes no bit of the result.
    Buffer<float> whole(ext(c.D, c.M));
    whole.fill(std::nanf(""));
    build("whole", Func()).realize(whole, target);
    // The skipped terms are exact zeros; the two pipelines' code may
    // contract multiplies and adds into FMAs in different places (a few
    // ulps), never more.
    for (size_t i = 0; i < (size_t)out.number_of_elements(); ++i)
      ASSERT_LE(std::fabs(out.data()[i] - whole.data()[i]),
                2e-6f * std::fabs(whole.data()[i]) + 1e-7f)
          << "skipping the masked keys changed output " << i << ": "
          << out.data()[i] << " against " << whole.data()[i];
  }
}

std::vector<AttentionCase> cases() {
  // {batch, M, N, K, D}
  std::vector<AttentionCase> cs = {
      {4, 128, 128, 64, 64},        // W2: 4 heads of 64
      {12, 128, 128, 32, 32, true}, // all-MiniLM-L6-v2 with its mask
      {0, 16, 16, 16, 16},
      {0, 1, 1, 1, 1},
      {2, 3, 5, 7, 9},       // fewer queries than a vector
      {3, 33, 50, 24, 80},   // tails everywhere
      {2, 100, 1, 8, 8},     // one key
      {1, 40, 300, 16, 20, true, true},
      {0, 70, 129, 3, 5, false, true},
      {2, 17, 64, 64, 130, true},
      // A partial last block of queries and a shifted last tile of keys,
      // with a mask: rows once computed by two tasks differed in their
      // last bits (the order check below).
      {0, 70, 129, 3, 5, true},
      {2, 70, 129, 3, 5, true},
      {1, 70, 129, 3, 5, true},
  };
  AttentionCase twoVectors = {2, 64, 96, 32, 64, true};
  twoVectors.tiling.queries = 32;
  cs.push_back(twoVectors);
  for (AttentionCase scaled : {AttentionCase{12, 128, 128, 32, 32, true},
                                AttentionCase{3, 33, 50, 24, 80},
                                AttentionCase{0, 70, 129, 3, 5, false, true}}) {
    scaled.scaledK = true;
    cs.push_back(scaled);
  }
  // Padding skipped (keyLive): M1's shape, tails, one key, no batch.
  for (AttentionCase padded : {AttentionCase{12, 128, 128, 32, 32, true},
                               AttentionCase{3, 33, 50, 24, 80, true, true},
                               AttentionCase{2, 100, 1, 8, 8, true},
                               AttentionCase{0, 70, 129, 3, 5, true}}) {
    padded.padded = true;
    cs.push_back(padded);
  }
  AttentionCase small = {1, 37, 45, 12, 40};
  small.tiling.queries = 8;
  small.tiling.vectorWidth = 4;
  small.tiling.keys = 7;
  small.tiling.valueRows = 3;
  small.tiling.valueVectors = 3;
  cs.push_back(small);
  return cs;
}

class AttentionKernel : public ::testing::TestWithParam<AttentionCase> {};

TEST_P(AttentionKernel, MatchesDoubleLoop) {
  Target host(dyncc::codegen::hostKernelTarget());
  {
    SCOPED_TRACE("host target");
    runCase(GetParam(), host);
  }
  {
    SCOPED_TRACE("generic target");
    runCase(GetParam(), Target(dyncc::codegen::genericKernelTarget()));
  }
  if (host.has_feature(Target::AVX2) && host.has_feature(Target::FMA)) {
    SCOPED_TRACE("avx2 target");
    runCase(GetParam(), Target("x86-64-linux-avx-avx2-f16c-fma-sse41"));
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionKernel, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<AttentionCase> &i) {
                           return caseName(i.param);
                         });

TEST(AttentionKernelApi, RejectsBadShapesOperandsAndTargets) {
  ImageParam q(Float(32), 3, "q"), k(Float(32), 3, "k"), v(Float(32), 3, "v"),
      v2(Float(32), 2, "v2");
  Target host(dyncc::codegen::hostKernelTarget());
  auto softmax = [](const Func &s, const AttentionKeyTiles &tiles) {
    return softmaxOf(s, 4, true, tiles);
  };
  AttentionShape shape;
  shape.batch = 2;
  shape.M = shape.N = shape.K = shape.D = 4;
  EXPECT_NO_THROW(buildAttention(shape, q, k, v, nullptr, softmax, nullptr,
                                 host, "ok"));
  EXPECT_THROW(buildAttention(shape, q, k, v2, nullptr, softmax, nullptr, host,
                              "arity"),
               std::invalid_argument);
  AttentionTiling bad;
  bad.keys = -1;
  EXPECT_THROW(buildAttention(shape, q, k, v, nullptr, softmax, nullptr, host,
                              "tiling", bad),
               std::invalid_argument);
  EXPECT_THROW(buildAttention(shape, q, k, v, nullptr, softmax, nullptr,
                              host.with_feature(Target::CUDA), "gpu"),
               std::invalid_argument);
  shape.D = 0;
  EXPECT_THROW(buildAttention(shape, q, k, v, nullptr, softmax, nullptr, host,
                              "shape"),
               std::invalid_argument);
}

} // namespace
