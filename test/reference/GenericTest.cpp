//===- GenericTest.cpp - linalg.generic and scalar bodies -----------------===//
//
// The compositions docs/ops.md names (layer norm, GELU, sigmoid, argmax,
// embedding lookup) and the arith semantics of generic bodies: integer
// wrap-around, every cmpf predicate with NaNs, conversions.
//
//===----------------------------------------------------------------------===//

#include "ReferenceTest.h"

#include <cstdint>
#include <functional>
#include <limits>

using namespace dyncc::reference;
using namespace dyncc::reference::test;

namespace {

using GenericTest = ReferenceTest;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

TEST_F(GenericTest, LayerNormFromTwoReducesAndAGeneric) {
  const char *source = R"mlir(
    #row = affine_map<(d0, d1) -> (d0)>
    #col = affine_map<(d0, d1) -> (d1)>
    #id = affine_map<(d0, d1) -> (d0, d1)>
    func.func @main(%x: tensor<3x6xf32>, %gamma: tensor<6xf32>, %beta: tensor<6xf32>) -> tensor<3x6xf32> {
      %zero = arith.constant 0.0 : f32
      %e1 = tensor.empty() : tensor<3xf32>
      %acc = linalg.fill ins(%zero : f32) outs(%e1 : tensor<3xf32>) -> tensor<3xf32>
      %sum = linalg.reduce ins(%x : tensor<3x6xf32>) outs(%acc : tensor<3xf32>) dimensions = [1]
        (%in: f32, %a: f32) {
          %s = arith.addf %in, %a : f32
          linalg.yield %s : f32
        }
      %sumsq = linalg.reduce ins(%x : tensor<3x6xf32>) outs(%acc : tensor<3xf32>) dimensions = [1]
        (%in: f32, %a: f32) {
          %sq = arith.mulf %in, %in : f32
          %s = arith.addf %sq, %a : f32
          linalg.yield %s : f32
        }
      %e = tensor.empty() : tensor<3x6xf32>
      %y = linalg.generic {indexing_maps = [#id, #row, #row, #col, #col, #id],
                           iterator_types = ["parallel", "parallel"]}
          ins(%x, %sum, %sumsq, %gamma, %beta : tensor<3x6xf32>, tensor<3xf32>, tensor<3xf32>, tensor<6xf32>, tensor<6xf32>)
          outs(%e : tensor<3x6xf32>) {
        ^bb0(%v: f32, %s: f32, %ss: f32, %g: f32, %b: f32, %o: f32):
          %n = arith.constant 6.0 : f32
          %eps = arith.constant 1.0e-05 : f32
          %mean = arith.divf %s, %n : f32
          %meansq = arith.divf %ss, %n : f32
          %sqmean = arith.mulf %mean, %mean : f32
          %var = arith.subf %meansq, %sqmean : f32
          %vareps = arith.addf %var, %eps : f32
          %rstd = math.rsqrt %vareps : f32
          %c = arith.subf %v, %mean : f32
          %nrm = arith.mulf %c, %rstd : f32
          %scaled = arith.mulf %nrm, %g : f32
          %r = arith.addf %scaled, %b : f32
          linalg.yield %r : f32
      } -> tensor<3x6xf32>
      return %y : tensor<3x6xf32>
    })mlir";
  Tensor x = makeTensor({3, 6}, 31, -2.0, 2.0);
  Tensor gamma = makeTensor({6}, 32, 0.5, 1.5), beta = makeTensor({6}, 33);
  // Two-pass mean and variance, unlike the one-pass form of the program.
  std::vector<double> expected;
  for (int i = 0; i < 3; ++i) {
    double mean = 0, var = 0;
    for (int j = 0; j < 6; ++j)
      mean += x.data[i * 6 + j] / 6;
    for (int j = 0; j < 6; ++j)
      var += (x.data[i * 6 + j] - mean) * (x.data[i * 6 + j] - mean) / 6;
    for (int j = 0; j < 6; ++j)
      expected.push_back((x.data[i * 6 + j] - mean) /
                             std::sqrt(var + static_cast<double>(1e-5f)) *
                             gamma.data[j] +
                         beta.data[j]);
  }
  std::vector<Tensor> results = runMain(source, {x, gamma, beta});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {3, 6}, expected, 1e-10);
}

TEST_F(GenericTest, GeluErfForm) {
  const char *source = R"mlir(
    #id = affine_map<(d0) -> (d0)>
    func.func @main(%x: tensor<7xf32>) -> tensor<7xf32> {
      %e = tensor.empty() : tensor<7xf32>
      %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
          ins(%x : tensor<7xf32>) outs(%e : tensor<7xf32>) {
        ^bb0(%v: f32, %o: f32):
          %half = arith.constant 0.5 : f32
          %one = arith.constant 1.0 : f32
          %rsqrt2 = arith.constant 0.707106781 : f32
          %s = arith.mulf %v, %rsqrt2 : f32
          %erf = math.erf %s : f32
          %p = arith.addf %erf, %one : f32
          %h = arith.mulf %v, %half : f32
          %r = arith.mulf %h, %p : f32
          linalg.yield %r : f32
      } -> tensor<7xf32>
      return %y : tensor<7xf32>
    })mlir";
  Tensor x{{7}, {-3.0, -1.0, -0.25, 0.0, 0.25, 1.0, 3.0}};
  double rsqrt2 = static_cast<float>(0.707106781);
  std::vector<double> expected;
  for (double v : x.data)
    expected.push_back(0.5 * v * (1.0 + std::erf(v * rsqrt2)));
  std::vector<Tensor> results = runMain(source, {x});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {7}, expected);
}

TEST_F(GenericTest, Sigmoid) {
  const char *source = R"mlir(
    #id = affine_map<(d0, d1) -> (d0, d1)>
    func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
      %e = tensor.empty() : tensor<2x4xf32>
      %y = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel", "parallel"]}
          ins(%x : tensor<2x4xf32>) outs(%e : tensor<2x4xf32>) {
        ^bb0(%v: f32, %o: f32):
          %one = arith.constant 1.0 : f32
          %n = arith.negf %v : f32
          %ex = math.exp %n : f32
          %d = arith.addf %ex, %one : f32
          %r = arith.divf %one, %d : f32
          linalg.yield %r : f32
      } -> tensor<2x4xf32>
      return %y : tensor<2x4xf32>
    })mlir";
  Tensor x = makeTensor({2, 4}, 34, -6.0, 6.0);
  std::vector<double> expected;
  for (double v : x.data)
    expected.push_back(1.0 / (1.0 + std::exp(-v)));
  std::vector<Tensor> results = runMain(source, {x});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 4}, expected);
}

TEST_F(GenericTest, ArgmaxAsTwoOutputReduction) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3x5xf32>) -> (tensor<3xf32>, tensor<3xi64>) {
      %ninf = arith.constant 0xFF800000 : f32
      %c0 = arith.constant 0 : i64
      %e0 = tensor.empty() : tensor<3xf32>
      %e1 = tensor.empty() : tensor<3xi64>
      %vinit = linalg.fill ins(%ninf : f32) outs(%e0 : tensor<3xf32>) -> tensor<3xf32>
      %iinit = linalg.fill ins(%c0 : i64) outs(%e1 : tensor<3xi64>) -> tensor<3xi64>
      %r:2 = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>,
                                              affine_map<(d0, d1) -> (d0)>,
                                              affine_map<(d0, d1) -> (d0)>],
                             iterator_types = ["parallel", "reduction"]}
          ins(%a : tensor<3x5xf32>) outs(%vinit, %iinit : tensor<3xf32>, tensor<3xi64>) {
        ^bb0(%x: f32, %best: f32, %bi: i64):
          %j = linalg.index 1 : index
          %ji = arith.index_cast %j : index to i64
          %gt = arith.cmpf ogt, %x, %best : f32
          %v = arith.select %gt, %x, %best : f32
          %i = arith.select %gt, %ji, %bi : i64
          linalg.yield %v, %i : f32, i64
      } -> (tensor<3xf32>, tensor<3xi64>)
      return %r#0, %r#1 : tensor<3xf32>, tensor<3xi64>
    })mlir";
  // Row 0 has a tie (the first maximum wins), row 2 is all negative.
  Tensor a{{3, 5},
           {1, 3, 3, 2, 0, 0.5, -1, 4, 8, 7.5, -5, -0.5, -2, -0.25, -9}};
  std::vector<double> values, indices;
  for (int i = 0; i < 3; ++i) {
    int best = 0;
    for (int j = 1; j < 5; ++j)
      if (a.data[i * 5 + j] > a.data[i * 5 + best])
        best = j;
    values.push_back(a.data[i * 5 + best]);
    indices.push_back(best);
  }
  EXPECT_EQ(indices, (std::vector<double>{1, 3, 3}));
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {3}, values);
  expectTensorNear(results[1], {3}, indices);
}

TEST_F(GenericTest, EmbeddingGather) {
  const char *source = R"mlir(
    func.func @main(%ids: tensor<2x3xi64>, %table: tensor<5x4xf32>) -> tensor<2x3x4xf32> {
      %e = tensor.empty() : tensor<2x3x4xf32>
      %r = linalg.generic {indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>,
                                            affine_map<(d0, d1, d2) -> (d0, d1, d2)>],
                           iterator_types = ["parallel", "parallel", "parallel"]}
          ins(%ids : tensor<2x3xi64>) outs(%e : tensor<2x3x4xf32>) {
        ^bb0(%id: i64, %o: f32):
          %row = arith.index_cast %id : i64 to index
          %col = linalg.index 2 : index
          %v = tensor.extract %table[%row, %col] : tensor<5x4xf32>
          linalg.yield %v : f32
      } -> tensor<2x3x4xf32>
      return %r : tensor<2x3x4xf32>
    })mlir";
  Tensor ids{{2, 3}, {4, 0, 2, 2, 1, 3}};
  Tensor table = makeTensor({5, 4}, 35);
  std::vector<double> expected;
  for (double id : ids.data)
    for (int j = 0; j < 4; ++j)
      expected.push_back(table.data[static_cast<int>(id) * 4 + j]);
  std::vector<Tensor> results = runMain(source, {ids, table});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 3, 4}, expected);
}

TEST_F(GenericTest, ConstantIndexInMapBroadcastsUnitDimension) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<1x4xf32>, %b: tensor<3x1xf32>) -> tensor<3x4xf32> {
      %e = tensor.empty() : tensor<3x4xf32>
      %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (0, d1)>,
                                            affine_map<(d0, d1) -> (d0, 0)>,
                                            affine_map<(d0, d1) -> (d0, d1)>],
                           iterator_types = ["parallel", "parallel"]}
          ins(%a, %b : tensor<1x4xf32>, tensor<3x1xf32>) outs(%e : tensor<3x4xf32>) {
        ^bb0(%x: f32, %y: f32, %o: f32):
          %s = arith.subf %x, %y : f32
          linalg.yield %s : f32
      } -> tensor<3x4xf32>
      return %r : tensor<3x4xf32>
    })mlir";
  Tensor a = makeTensor({1, 4}, 36), b = makeTensor({3, 1}, 37);
  std::vector<double> expected;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      expected.push_back(a.data[j] - b.data[i]);
  std::vector<Tensor> results = runMain(source, {a, b});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {3, 4}, expected);
}

TEST_F(GenericTest, BodyReadsScalarsOfTheFunction) {
  const char *source = R"mlir(
    #id = affine_map<(d0) -> (d0)>
    func.func @main(%x: tensor<4xf32>, %scale: f32) -> tensor<4xf32> {
      %shift = arith.constant 0.25 : f32
      %e = tensor.empty() : tensor<4xf32>
      %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
          ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
        ^bb0(%v: f32, %o: f32):
          %m = arith.mulf %v, %scale : f32
          %s = arith.addf %m, %shift : f32
          linalg.yield %s : f32
      } -> tensor<4xf32>
      return %r : tensor<4xf32>
    })mlir";
  Tensor x = makeTensor({4}, 38);
  std::vector<double> expected;
  for (double v : x.data)
    expected.push_back(v * -1.5 + 0.25);
  std::vector<Tensor> results = runMain(source, {x, makeScalar(-1.5)});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {4}, expected);
}

TEST_F(GenericTest, IntegerArithmeticWrapsAtI32) {
  const char *source = R"mlir(
    #id = affine_map<(d0) -> (d0)>
    func.func @main(%a: tensor<6xi32>, %b: tensor<6xi32>)
        -> (tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>,
            tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi1>, tensor<6xi1>) {
      %e = tensor.empty() : tensor<6xi32>
      %m = tensor.empty() : tensor<6xi1>
      %r:10 = linalg.generic {indexing_maps = [#id, #id, #id, #id, #id, #id, #id, #id, #id, #id, #id, #id],
                              iterator_types = ["parallel"]}
          ins(%a, %b : tensor<6xi32>, tensor<6xi32>)
          outs(%e, %e, %e, %e, %e, %e, %e, %e, %m, %m : tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>,
               tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi1>, tensor<6xi1>) {
        ^bb0(%x: i32, %y: i32, %o0: i32, %o1: i32, %o2: i32, %o3: i32, %o4: i32, %o5: i32, %o6: i32, %o7: i32, %o8: i1, %o9: i1):
          %add = arith.addi %x, %y : i32
          %sub = arith.subi %x, %y : i32
          %mul = arith.muli %x, %y : i32
          %div = arith.divsi %x, %y : i32
          %rem = arith.remsi %x, %y : i32
          %and = arith.andi %x, %y : i32
          %or = arith.ori %x, %y : i32
          %xor = arith.xori %x, %y : i32
          %slt = arith.cmpi slt, %x, %y : i32
          %ult = arith.cmpi ult, %x, %y : i32
          linalg.yield %add, %sub, %mul, %div, %rem, %and, %or, %xor, %slt, %ult
            : i32, i32, i32, i32, i32, i32, i32, i32, i1, i1
      } -> (tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>,
            tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi1>, tensor<6xi1>)
      return %r#0, %r#1, %r#2, %r#3, %r#4, %r#5, %r#6, %r#7, %r#8, %r#9
        : tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi32>,
          tensor<6xi32>, tensor<6xi32>, tensor<6xi32>, tensor<6xi1>, tensor<6xi1>
    })mlir";
  std::vector<int32_t> a = {7, -7, INT32_MAX, INT32_MIN, 100, -1};
  std::vector<int32_t> b = {2, 2, 1, 3, -7, 5};
  // Wrapping through uint32_t is the two's complement arithmetic of arith.
  using Fn = std::function<double(int32_t, int32_t)>;
  auto wrapped = [](uint32_t bits) {
    return static_cast<double>(static_cast<int32_t>(bits));
  };
  std::vector<Fn> fns = {
      [&](int32_t x, int32_t y) { return wrapped(uint32_t(x) + uint32_t(y)); },
      [&](int32_t x, int32_t y) { return wrapped(uint32_t(x) - uint32_t(y)); },
      [&](int32_t x, int32_t y) { return wrapped(uint32_t(x) * uint32_t(y)); },
      [](int32_t x, int32_t y) { return double(x / y); },
      [](int32_t x, int32_t y) { return double(x % y); },
      [](int32_t x, int32_t y) { return double(x & y); },
      [](int32_t x, int32_t y) { return double(x | y); },
      [](int32_t x, int32_t y) { return double(x ^ y); },
      [](int32_t x, int32_t y) { return double(x < y); },
      [](int32_t x, int32_t y) { return double(uint32_t(x) < uint32_t(y)); }};
  Tensor ta{{6}, {}}, tb{{6}, {}};
  for (size_t i = 0; i < a.size(); ++i) {
    ta.data.push_back(a[i]);
    tb.data.push_back(b[i]);
  }
  std::vector<Tensor> results = runMain(source, {ta, tb});
  ASSERT_EQ(results.size(), fns.size());
  for (size_t k = 0; k < fns.size(); ++k) {
    std::vector<double> expected;
    for (size_t i = 0; i < a.size(); ++i)
      expected.push_back(fns[k](a[i], b[i]));
    SCOPED_TRACE("result #" + std::to_string(k));
    expectTensorNear(results[k], {6}, expected, 0.0);
  }
}

TEST_F(GenericTest, EveryCmpFPredicateWithNaNs) {
  Tensor a{{6}, {1, 2, 3, kNaN, 1, kNaN}};
  Tensor b{{6}, {2, 2, 1, 1, kNaN, kNaN}};
  using Fn = std::function<bool(double, double)>;
  auto ordered = [](double x, double y) {
    return !std::isnan(x) && !std::isnan(y);
  };
  std::vector<std::pair<const char *, Fn>> predicates = {
      {"false", [](double, double) { return false; }},
      {"oeq", [&](double x, double y) { return ordered(x, y) && x == y; }},
      {"ogt", [&](double x, double y) { return ordered(x, y) && x > y; }},
      {"oge", [&](double x, double y) { return ordered(x, y) && x >= y; }},
      {"olt", [&](double x, double y) { return ordered(x, y) && x < y; }},
      {"ole", [&](double x, double y) { return ordered(x, y) && x <= y; }},
      {"one", [&](double x, double y) { return ordered(x, y) && x != y; }},
      {"ord", [&](double x, double y) { return ordered(x, y); }},
      {"ueq", [&](double x, double y) { return !ordered(x, y) || x == y; }},
      {"ugt", [&](double x, double y) { return !ordered(x, y) || x > y; }},
      {"uge", [&](double x, double y) { return !ordered(x, y) || x >= y; }},
      {"ult", [&](double x, double y) { return !ordered(x, y) || x < y; }},
      {"ule", [&](double x, double y) { return !ordered(x, y) || x <= y; }},
      {"une", [&](double x, double y) { return !ordered(x, y) || x != y; }},
      {"uno", [&](double x, double y) { return !ordered(x, y); }},
      {"true", [](double, double) { return true; }}};
  for (const auto &[name, fn] : predicates) {
    SCOPED_TRACE(name);
    std::string source = fmt::format(R"mlir(
      #id = affine_map<(d0) -> (d0)>
      func.func @main(%a: tensor<6xf32>, %b: tensor<6xf32>) -> tensor<6xi1> {{
        %e = tensor.empty() : tensor<6xi1>
        %r = linalg.generic {{indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}}
            ins(%a, %b : tensor<6xf32>, tensor<6xf32>) outs(%e : tensor<6xi1>) {{
          ^bb0(%x: f32, %y: f32, %o: i1):
            %c = arith.cmpf {}, %x, %y : f32
            linalg.yield %c : i1
        }} -> tensor<6xi1>
        return %r : tensor<6xi1>
      }})mlir",
                                     name);
    std::vector<double> expected;
    for (size_t i = 0; i < a.data.size(); ++i)
      expected.push_back(fn(a.data[i], b.data[i]) ? 1.0 : 0.0);
    std::vector<Tensor> results = runMain(source, {a, b});
    ASSERT_EQ(results.size(), 1u);
    expectTensorNear(results[0], {6}, expected, 0.0);
  }
}

TEST_F(GenericTest, Conversions) {
  const char *source = R"mlir(
    #id = affine_map<(d0) -> (d0)>
    func.func @main(%f: tensor<4xf32>, %i: tensor<4xi32>, %m: tensor<4xi1>)
        -> (tensor<4xi32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>,
            tensor<4xi8>, tensor<4xi64>, tensor<4xf64>) {
      %ei = tensor.empty() : tensor<4xi32>
      %ef = tensor.empty() : tensor<4xf32>
      %e8 = tensor.empty() : tensor<4xi8>
      %e64 = tensor.empty() : tensor<4xi64>
      %ed = tensor.empty() : tensor<4xf64>
      %r:8 = linalg.generic {indexing_maps = [#id, #id, #id, #id, #id, #id, #id, #id, #id, #id, #id],
                             iterator_types = ["parallel"]}
          ins(%f, %i, %m : tensor<4xf32>, tensor<4xi32>, tensor<4xi1>)
          outs(%ei, %ef, %ef, %ef, %ef, %e8, %e64, %ed : tensor<4xi32>, tensor<4xf32>, tensor<4xf32>,
               tensor<4xf32>, tensor<4xf32>, tensor<4xi8>, tensor<4xi64>, tensor<4xf64>) {
        ^bb0(%x: f32, %n: i32, %b: i1, %o0: i32, %o1: f32, %o2: f32, %o3: f32, %o4: f32, %o5: i8, %o6: i64, %o7: f64):
          %fptosi = arith.fptosi %x : f32 to i32
          %sitofp = arith.sitofp %n : i32 to f32
          %uitofp = arith.uitofp %n : i32 to f32
          %bsigned = arith.sitofp %b : i1 to f32
          %bunsigned = arith.uitofp %b : i1 to f32
          %idx = arith.index_cast %n : i32 to index
          %i8 = arith.index_cast %idx : index to i8
          %i64 = arith.index_cast %idx : index to i64
          %ext = arith.extf %x : f32 to f64
          %trunc = arith.truncf %ext : f64 to f32
          %back = arith.extf %trunc : f32 to f64
          linalg.yield %fptosi, %sitofp, %uitofp, %bsigned, %bunsigned, %i8, %i64, %back
            : i32, f32, f32, f32, f32, i8, i64, f64
      } -> (tensor<4xi32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>,
            tensor<4xi8>, tensor<4xi64>, tensor<4xf64>)
      return %r#0, %r#1, %r#2, %r#3, %r#4, %r#5, %r#6, %r#7
        : tensor<4xi32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>,
          tensor<4xi8>, tensor<4xi64>, tensor<4xf64>
    })mlir";
  Tensor f{{4}, {2.7, -2.7, 100.9, -0.5}};
  Tensor i{{4}, {5, -1, 300, -200}};
  Tensor m{{4}, {1, 0, 1, 0}};
  std::vector<Tensor> results = runMain(source, {f, i, m});
  ASSERT_EQ(results.size(), 8u);
  expectTensorNear(results[0], {4}, {2, -2, 100, 0}, 0.0);
  expectTensorNear(results[1], {4}, {5, -1, 300, -200}, 0.0);
  expectTensorNear(results[2], {4}, {5, 4294967295.0, 300, 4294967096.0}, 0.0);
  // An i1 `true` is -1 when read as signed.
  expectTensorNear(results[3], {4}, {-1, 0, -1, 0}, 0.0);
  expectTensorNear(results[4], {4}, {1, 0, 1, 0}, 0.0);
  // index_cast to i8 truncates: 300 = 256 + 44, -200 = -256 + 56.
  expectTensorNear(results[5], {4}, {5, -1, 44, 56}, 0.0);
  expectTensorNear(results[6], {4}, {5, -1, 300, -200}, 0.0);
  // Every float type computes in double: extf/truncf do not round.
  expectTensorNear(results[7], {4}, f.data, 0.0);
}

} // namespace
