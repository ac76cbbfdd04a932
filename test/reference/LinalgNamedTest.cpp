//===- LinalgNamedTest.cpp - named linalg ops -----------------------------===//

#include "ReferenceTest.h"

#include <limits>

using namespace dyncc::reference;
using namespace dyncc::reference::test;

namespace {

using LinalgNamedTest = ReferenceTest;

/// C[i][j] = init[i][j] + sum_k A[i][k] * B[k][j], B given as [K][N] or,
/// transposed, as [N][K].
std::vector<double> matmul(const Tensor &a, const Tensor &b,
                           std::vector<double> init, int64_t m, int64_t n,
                           int64_t k, bool transposeB, int64_t aOffset = 0,
                           int64_t bOffset = 0, int64_t cOffset = 0) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double sum = init[cOffset + i * n + j];
      for (int64_t p = 0; p < k; ++p) {
        double bValue = transposeB ? b.data[bOffset + j * k + p]
                                   : b.data[bOffset + p * n + j];
        sum += a.data[aOffset + i * k + p] * bValue;
      }
      init[cOffset + i * n + j] = sum;
    }
  return init;
}

TEST_F(LinalgNamedTest, Matmul) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3x4xf32>, %b: tensor<4x5xf32>) -> tensor<3x5xf32> {
      %zero = arith.constant 0.0 : f32
      %e = tensor.empty() : tensor<3x5xf32>
      %init = linalg.fill ins(%zero : f32) outs(%e : tensor<3x5xf32>) -> tensor<3x5xf32>
      %r = linalg.matmul ins(%a, %b : tensor<3x4xf32>, tensor<4x5xf32>)
                         outs(%init : tensor<3x5xf32>) -> tensor<3x5xf32>
      return %r : tensor<3x5xf32>
    })mlir";
  Tensor a = makeTensor({3, 4}, 1), b = makeTensor({4, 5}, 2);
  std::vector<Tensor> results = runMain(source, {a, b});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {3, 5},
                   matmul(a, b, std::vector<double>(15, 0.0), 3, 5, 4,
                          /*transposeB=*/false));
}

TEST_F(LinalgNamedTest, MatmulAccumulatesIntoInit) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x3xf64>, %b: tensor<3x4xf64>, %c: tensor<2x4xf64>) -> tensor<2x4xf64> {
      %r = linalg.matmul ins(%a, %b : tensor<2x3xf64>, tensor<3x4xf64>)
                         outs(%c : tensor<2x4xf64>) -> tensor<2x4xf64>
      return %r : tensor<2x4xf64>
    })mlir";
  Tensor a = makeTensor({2, 3}, 3), b = makeTensor({3, 4}, 4);
  Tensor c = makeTensor({2, 4}, 5, 10.0, 20.0);
  std::vector<Tensor> results = runMain(source, {a, b, c});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 4},
                   matmul(a, b, c.data, 2, 4, 3, /*transposeB=*/false));
}

TEST_F(LinalgNamedTest, BatchMatmul) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x3x4xf32>, %b: tensor<2x4x5xf32>, %c: tensor<2x3x5xf32>) -> tensor<2x3x5xf32> {
      %r = linalg.batch_matmul ins(%a, %b : tensor<2x3x4xf32>, tensor<2x4x5xf32>)
                               outs(%c : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
      return %r : tensor<2x3x5xf32>
    })mlir";
  Tensor a = makeTensor({2, 3, 4}, 6), b = makeTensor({2, 4, 5}, 7);
  Tensor c = makeTensor({2, 3, 5}, 8);
  std::vector<double> expected = c.data;
  for (int64_t batch = 0; batch < 2; ++batch)
    expected = matmul(a, b, expected, 3, 5, 4, /*transposeB=*/false, batch * 12,
                      batch * 20, batch * 15);
  std::vector<Tensor> results = runMain(source, {a, b, c});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 3, 5}, expected);
}

TEST_F(LinalgNamedTest, MatmulTransposeB) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3x4xf32>, %b: tensor<5x4xf32>, %c: tensor<3x5xf32>) -> tensor<3x5xf32> {
      %r = linalg.matmul_transpose_b ins(%a, %b : tensor<3x4xf32>, tensor<5x4xf32>)
                                     outs(%c : tensor<3x5xf32>) -> tensor<3x5xf32>
      return %r : tensor<3x5xf32>
    })mlir";
  Tensor a = makeTensor({3, 4}, 9), b = makeTensor({5, 4}, 10);
  Tensor c = makeTensor({3, 5}, 11);
  std::vector<Tensor> results = runMain(source, {a, b, c});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {3, 5},
                   matmul(a, b, c.data, 3, 5, 4, /*transposeB=*/true));
}

TEST_F(LinalgNamedTest, BatchMatmulTransposeB) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x3x4xf32>, %b: tensor<2x5x4xf32>, %c: tensor<2x3x5xf32>) -> tensor<2x3x5xf32> {
      %r = linalg.batch_matmul_transpose_b ins(%a, %b : tensor<2x3x4xf32>, tensor<2x5x4xf32>)
                                           outs(%c : tensor<2x3x5xf32>) -> tensor<2x3x5xf32>
      return %r : tensor<2x3x5xf32>
    })mlir";
  Tensor a = makeTensor({2, 3, 4}, 12), b = makeTensor({2, 5, 4}, 13);
  Tensor c = makeTensor({2, 3, 5}, 14);
  std::vector<double> expected = c.data;
  for (int64_t batch = 0; batch < 2; ++batch)
    expected = matmul(a, b, expected, 3, 5, 4, /*transposeB=*/true, batch * 12,
                      batch * 20, batch * 15);
  std::vector<Tensor> results = runMain(source, {a, b, c});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 3, 5}, expected);
}

//===----------------------------------------------------------------------===//
// Elementwise named ops, one instance each.
//===----------------------------------------------------------------------===//

struct ElementwiseCase {
  const char *name;
  unsigned arity;
  double (*fn)(double, double);
};

void PrintTo(const ElementwiseCase &c, std::ostream *os) { *os << c.name; }

class ElementwiseTest : public ReferenceTest,
                        public ::testing::WithParamInterface<ElementwiseCase> {
};

TEST_P(ElementwiseTest, MatchesScalarFunction) {
  const ElementwiseCase &param = GetParam();
  std::string ins = param.arity == 1
                        ? "%a : tensor<2x3xf32>"
                        : "%a, %b : tensor<2x3xf32>, tensor<2x3xf32>";
  std::string source = fmt::format(R"mlir(
    func.func @main(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>) -> tensor<2x3xf32> {{
      %e = tensor.empty() : tensor<2x3xf32>
      %r = linalg.{} ins({}) outs(%e : tensor<2x3xf32>) -> tensor<2x3xf32>
      return %r : tensor<2x3xf32>
    }})mlir",
                                   param.name, ins);
  // Positive first operands keep log, sqrt, rsqrt and powf real.
  Tensor a{{2, 3}, {0.5, 1.25, 2.0, 3.5, 0.1, 7.0}};
  Tensor b{{2, 3}, {-1.5, 0.75, 2.0, -0.25, 3.0, 0.5}};
  std::vector<double> expected;
  for (size_t i = 0; i < a.data.size(); ++i)
    expected.push_back(param.fn(a.data[i], b.data[i]));
  std::vector<Tensor> results = runMain(source, {a, b});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 3}, expected);
}

INSTANTIATE_TEST_SUITE_P(
    NamedOps, ElementwiseTest,
    ::testing::Values(
        ElementwiseCase{"add", 2, [](double x, double y) { return x + y; }},
        ElementwiseCase{"sub", 2, [](double x, double y) { return x - y; }},
        ElementwiseCase{"mul", 2, [](double x, double y) { return x * y; }},
        ElementwiseCase{"div", 2, [](double x, double y) { return x / y; }},
        ElementwiseCase{"max", 2,
                        [](double x, double y) { return x > y ? x : y; }},
        ElementwiseCase{"min", 2,
                        [](double x, double y) { return x < y ? x : y; }},
        ElementwiseCase{"powf", 2,
                        [](double x, double y) { return std::pow(x, y); }},
        ElementwiseCase{"exp", 1, [](double x, double) { return std::exp(x); }},
        ElementwiseCase{"log", 1, [](double x, double) { return std::log(x); }},
        ElementwiseCase{"tanh", 1,
                        [](double x, double) { return std::tanh(x); }},
        ElementwiseCase{"abs", 1,
                        [](double x, double) { return std::fabs(x); }},
        ElementwiseCase{"sqrt", 1,
                        [](double x, double) { return std::sqrt(x); }},
        ElementwiseCase{"rsqrt", 1,
                        [](double x, double) { return 1.0 / std::sqrt(x); }},
        ElementwiseCase{"erf", 1, [](double x, double) { return std::erf(x); }},
        ElementwiseCase{"negf", 1, [](double x, double) { return -x; }},
        ElementwiseCase{"reciprocal", 1,
                        [](double x, double) { return 1.0 / x; }},
        ElementwiseCase{"square", 1, [](double x, double) { return x * x; }}),
    [](const ::testing::TestParamInfo<ElementwiseCase> &info) {
      return std::string(info.param.name);
    });

TEST_F(LinalgNamedTest, MaxAndMinPropagateNaN) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3xf32>, %b: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
      %e = tensor.empty() : tensor<3xf32>
      %max = linalg.max ins(%a, %b : tensor<3xf32>, tensor<3xf32>) outs(%e : tensor<3xf32>) -> tensor<3xf32>
      %min = linalg.min ins(%a, %b : tensor<3xf32>, tensor<3xf32>) outs(%e : tensor<3xf32>) -> tensor<3xf32>
      return %max, %min : tensor<3xf32>, tensor<3xf32>
    })mlir";
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor a{{3}, {nan, 1.0, -0.0}};
  Tensor b{{3}, {1.0, nan, 0.0}};
  std::vector<Tensor> results = runMain(source, {a, b});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {3}, {nan, nan, 0.0});
  expectTensorNear(results[1], {3}, {nan, nan, -0.0});
  // maximumf/minimumf order the zeros: +0 above -0.
  EXPECT_FALSE(std::signbit(results[0].data[2]));
  EXPECT_TRUE(std::signbit(results[1].data[2]));
}

//===----------------------------------------------------------------------===//
// Data movement and generic-bodied named ops.
//===----------------------------------------------------------------------===//

TEST_F(LinalgNamedTest, Broadcast) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3xf32>) -> (tensor<3x4xf32>, tensor<4x3xf32>) {
      %e0 = tensor.empty() : tensor<3x4xf32>
      %rows = linalg.broadcast ins(%a : tensor<3xf32>) outs(%e0 : tensor<3x4xf32>) dimensions = [1]
      %e1 = tensor.empty() : tensor<4x3xf32>
      %cols = linalg.broadcast ins(%a : tensor<3xf32>) outs(%e1 : tensor<4x3xf32>) dimensions = [0]
      return %rows, %cols : tensor<3x4xf32>, tensor<4x3xf32>
    })mlir";
  Tensor a = makeTensor({3}, 15);
  std::vector<double> rows, cols;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      rows.push_back(a.data[i]);
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      cols.push_back(a.data[j]);
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {3, 4}, rows);
  expectTensorNear(results[1], {4, 3}, cols);
}

TEST_F(LinalgNamedTest, Transpose) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
      %e = tensor.empty() : tensor<4x2x3xf32>
      %t = linalg.transpose ins(%a : tensor<2x3x4xf32>) outs(%e : tensor<4x2x3xf32>) permutation = [2, 0, 1]
      return %t : tensor<4x2x3xf32>
    })mlir";
  Tensor a = makeTensor({2, 3, 4}, 16);
  std::vector<double> expected;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k)
        expected.push_back(a.data[j * 12 + k * 4 + i]);
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {4, 2, 3}, expected);
}

TEST_F(LinalgNamedTest, Fill) {
  const char *source = R"mlir(
    func.func @main(%v: f32, %init: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<4xi64>) {
      %r = linalg.fill ins(%v : f32) outs(%init : tensor<2x3xf32>) -> tensor<2x3xf32>
      %c = arith.constant -7 : i64
      %e = tensor.empty() : tensor<4xi64>
      %i = linalg.fill ins(%c : i64) outs(%e : tensor<4xi64>) -> tensor<4xi64>
      return %r, %i : tensor<2x3xf32>, tensor<4xi64>
    })mlir";
  std::vector<Tensor> results =
      runMain(source, {makeScalar(2.5), makeTensor({2, 3}, 17)});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {2, 3}, std::vector<double>(6, 2.5));
  expectTensorNear(results[1], {4}, std::vector<double>(4, -7.0));
}

TEST_F(LinalgNamedTest, MapDoesNotReadItsInit) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x3xf32>, %b: tensor<2x3xf32>, %init: tensor<2x3xf32>) -> tensor<2x3xf32> {
      %r = linalg.map ins(%a, %b : tensor<2x3xf32>, tensor<2x3xf32>) outs(%init : tensor<2x3xf32>)
        (%x: f32, %y: f32) {
          %m = arith.mulf %x, %y : f32
          %s = arith.addf %m, %x : f32
          linalg.yield %s : f32
        }
      return %r : tensor<2x3xf32>
    })mlir";
  Tensor a = makeTensor({2, 3}, 18), b = makeTensor({2, 3}, 19);
  Tensor init = makeTensor({2, 3}, 20, 100.0, 200.0);
  std::vector<double> expected;
  for (size_t i = 0; i < a.data.size(); ++i)
    expected.push_back(a.data[i] * b.data[i] + a.data[i]);
  std::vector<Tensor> results = runMain(source, {a, b, init});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 3}, expected);
}

TEST_F(LinalgNamedTest, ReduceSumAccumulatesIntoInit) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3x4x5xf32>, %init: tensor<3x5xf32>) -> tensor<3x5xf32> {
      %r = linalg.reduce ins(%a : tensor<3x4x5xf32>) outs(%init : tensor<3x5xf32>) dimensions = [1]
        (%in: f32, %acc: f32) {
          %s = arith.addf %in, %acc : f32
          linalg.yield %s : f32
        }
      return %r : tensor<3x5xf32>
    })mlir";
  Tensor a = makeTensor({3, 4, 5}, 21), init = makeTensor({3, 5}, 22);
  std::vector<double> expected = init.data;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k)
        expected[i * 5 + k] += a.data[i * 20 + j * 5 + k];
  std::vector<Tensor> results = runMain(source, {a, init});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {3, 5}, expected);
}

TEST_F(LinalgNamedTest, ReduceMaxOverTwoDimensions) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3x4x5xf32>) -> tensor<4xf32> {
      %ninf = arith.constant 0xFF800000 : f32
      %e = tensor.empty() : tensor<4xf32>
      %init = linalg.fill ins(%ninf : f32) outs(%e : tensor<4xf32>) -> tensor<4xf32>
      %r = linalg.reduce ins(%a : tensor<3x4x5xf32>) outs(%init : tensor<4xf32>) dimensions = [0, 2]
        (%in: f32, %acc: f32) {
          %m = arith.maximumf %in, %acc : f32
          linalg.yield %m : f32
        }
      return %r : tensor<4xf32>
    })mlir";
  Tensor a = makeTensor({3, 4, 5}, 23);
  std::vector<double> expected(4, -std::numeric_limits<double>::infinity());
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 5; ++k)
        expected[j] = std::max(expected[j], a.data[i * 20 + j * 5 + k]);
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {4}, expected);
}

//===----------------------------------------------------------------------===//
// Softmax.
//===----------------------------------------------------------------------===//

/// Softmax of `count` values `stride` apart, by definition with the maximum
/// subtracted first (the only form that survives large inputs).
void softmaxInPlace(std::vector<double> &data, int64_t start, int64_t count,
                    int64_t stride) {
  double maximum = -std::numeric_limits<double>::infinity();
  for (int64_t k = 0; k < count; ++k)
    maximum = std::max(maximum, data[start + k * stride]);
  double sum = 0;
  for (int64_t k = 0; k < count; ++k)
    sum += std::exp(data[start + k * stride] - maximum);
  for (int64_t k = 0; k < count; ++k)
    data[start + k * stride] =
        std::exp(data[start + k * stride] - maximum) / sum;
}

TEST_F(LinalgNamedTest, SoftmaxAlongInnerAndMiddleDimensions) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<3x5xf32>, %b: tensor<2x3x4xf32>) -> (tensor<3x5xf32>, tensor<2x3x4xf32>) {
      %e0 = tensor.empty() : tensor<3x5xf32>
      %r0 = linalg.softmax dimension(1) ins(%a : tensor<3x5xf32>) outs(%e0 : tensor<3x5xf32>) -> tensor<3x5xf32>
      %e1 = tensor.empty() : tensor<2x3x4xf32>
      %r1 = linalg.softmax dimension(1) ins(%b : tensor<2x3x4xf32>) outs(%e1 : tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
      return %r0, %r1 : tensor<3x5xf32>, tensor<2x3x4xf32>
    })mlir";
  Tensor a = makeTensor({3, 5}, 24, -3.0, 3.0);
  Tensor b = makeTensor({2, 3, 4}, 25, -3.0, 3.0);
  std::vector<double> expectedA = a.data, expectedB = b.data;
  for (int i = 0; i < 3; ++i)
    softmaxInPlace(expectedA, i * 5, 5, 1);
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k)
      softmaxInPlace(expectedB, i * 12 + k, 3, 4);
  std::vector<Tensor> results = runMain(source, {a, b});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {3, 5}, expectedA);
  expectTensorNear(results[1], {2, 3, 4}, expectedB);
}

TEST_F(LinalgNamedTest, SoftmaxIsStableWithInfinityAndLargeValues) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x4xf32>) -> tensor<2x4xf32> {
      %e = tensor.empty() : tensor<2x4xf32>
      %r = linalg.softmax dimension(1) ins(%a : tensor<2x4xf32>) outs(%e : tensor<2x4xf32>) -> tensor<2x4xf32>
      return %r : tensor<2x4xf32>
    })mlir";
  double inf = std::numeric_limits<double>::infinity();
  // exp(1000) overflows: only the max-subtracted form gives finite values.
  Tensor a{{2, 4}, {-inf, 1000.0, 999.0, 0.0, 1.0, 2.0, -inf, 3.0}};
  double first = 1.0 + std::exp(-1.0) + std::exp(-1000.0);
  double second = std::exp(-2.0) + std::exp(-1.0) + 1.0;
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {2, 4},
                   {0.0, 1.0 / first, std::exp(-1.0) / first,
                    std::exp(-1000.0) / first, std::exp(-2.0) / second,
                    std::exp(-1.0) / second, 0.0, 1.0 / second});
  for (int row = 0; row < 2; ++row) {
    double sum = 0;
    for (int k = 0; k < 4; ++k)
      sum += results[0].data[row * 4 + k];
    EXPECT_NEAR(sum, 1.0, 1e-15);
  }
}

} // namespace
