//===- EncoderBlockTest.cpp - an encoder block vs. by hand ----------------===//
//
// Interprets Inputs/encoder_block.mlir (one post-LN encoder block) and
// compares it with a direct C++ implementation written from the textbook
// definition: per-head loops instead of reshapes and batched matmuls,
// two-pass variance instead of E[x^2] - mean^2.
//
//===----------------------------------------------------------------------===//

#include "ReferenceTest.h"

#include <limits>

using namespace dyncc::reference;
using namespace dyncc::reference::test;

namespace {

constexpr int kSeq = 4, kModel = 8, kHeads = 2, kHeadDim = 4, kHidden = 16;

using Matrix = std::vector<double>; // row-major

/// x [rows][in] times w [in][out] plus b [out].
Matrix linear(const Matrix &x, const Matrix &w, const Matrix &b, int rows,
              int in, int out) {
  Matrix y(rows * out);
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < out; ++j) {
      double sum = b[j];
      for (int k = 0; k < in; ++k)
        sum += x[i * in + k] * w[k * out + j];
      y[i * out + j] = sum;
    }
  return y;
}

Matrix layerNorm(const Matrix &x, const Matrix &gamma, const Matrix &beta) {
  // The model's epsilon is an f32 constant.
  const double eps = static_cast<double>(1e-5f);
  Matrix y(x.size());
  for (int i = 0; i < kSeq; ++i) {
    double mean = 0, var = 0;
    for (int j = 0; j < kModel; ++j)
      mean += x[i * kModel + j];
    mean /= kModel;
    for (int j = 0; j < kModel; ++j)
      var += (x[i * kModel + j] - mean) * (x[i * kModel + j] - mean);
    var /= kModel;
    for (int j = 0; j < kModel; ++j)
      y[i * kModel + j] =
          (x[i * kModel + j] - mean) / std::sqrt(var + eps) * gamma[j] +
          beta[j];
  }
  return y;
}

struct Weights {
  Matrix wq, bq, wk, bk, wv, bv, wo, bo, ln1Gamma, ln1Beta, w1, b1, w2, b2,
      ln2Gamma, ln2Beta;
};

Matrix attention(const Matrix &x, const Weights &p) {
  Matrix q = linear(x, p.wq, p.bq, kSeq, kModel, kModel);
  Matrix k = linear(x, p.wk, p.bk, kSeq, kModel, kModel);
  Matrix v = linear(x, p.wv, p.bv, kSeq, kModel, kModel);
  Matrix context(kSeq * kModel, 0.0);
  for (int h = 0; h < kHeads; ++h) {
    for (int i = 0; i < kSeq; ++i) {
      double scores[kSeq];
      double maximum = -std::numeric_limits<double>::infinity();
      for (int j = 0; j < kSeq; ++j) {
        double dot = 0;
        for (int c = 0; c < kHeadDim; ++c)
          dot += q[i * kModel + h * kHeadDim + c] *
                 k[j * kModel + h * kHeadDim + c];
        scores[j] = dot / std::sqrt(double(kHeadDim));
        maximum = std::max(maximum, scores[j]);
      }
      double sum = 0;
      for (int j = 0; j < kSeq; ++j)
        sum += std::exp(scores[j] - maximum);
      for (int j = 0; j < kSeq; ++j) {
        double weight = std::exp(scores[j] - maximum) / sum;
        for (int c = 0; c < kHeadDim; ++c)
          context[i * kModel + h * kHeadDim + c] +=
              weight * v[j * kModel + h * kHeadDim + c];
      }
    }
  }
  return linear(context, p.wo, p.bo, kSeq, kModel, kModel);
}

Matrix encoderBlock(const Matrix &x, const Weights &p) {
  Matrix attn = attention(x, p);
  Matrix residual1(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    residual1[i] = x[i] + attn[i];
  Matrix h = layerNorm(residual1, p.ln1Gamma, p.ln1Beta);

  Matrix hidden = linear(h, p.w1, p.b1, kSeq, kModel, kHidden);
  // The model's 1/sqrt(2) is an f32 constant.
  const double rsqrt2 = static_cast<double>(0.707106781f);
  for (double &z : hidden)
    z = 0.5 * z * (1.0 + std::erf(z * rsqrt2));
  Matrix ffn = linear(hidden, p.w2, p.b2, kSeq, kHidden, kModel);
  Matrix residual2(h.size());
  for (size_t i = 0; i < h.size(); ++i)
    residual2[i] = h[i] + ffn[i];
  return layerNorm(residual2, p.ln2Gamma, p.ln2Beta);
}

using EncoderBlockTest = ReferenceTest;

TEST_F(EncoderBlockTest, MatchesDirectImplementation) {
  std::string path = std::string(DYNCC_TEST_INPUTS) + "/encoder_block.mlir";
  mlir::ParserConfig config(&context);
  module = mlir::parseSourceFile<mlir::ModuleOp>(path, config);
  ASSERT_TRUE(module) << path << ": " << allDiagnostics();

  uint64_t seed = 100;
  auto weight = [&](std::vector<int64_t> shape) {
    return makeTensor(std::move(shape), seed++, -0.5, 0.5);
  };
  Tensor x = makeTensor({kSeq, kModel}, seed++, -2.0, 2.0);
  std::vector<Tensor> args = {x,
                              weight({kModel, kModel}),
                              weight({kModel}),
                              weight({kModel, kModel}),
                              weight({kModel}),
                              weight({kModel, kModel}),
                              weight({kModel}),
                              weight({kModel, kModel}),
                              weight({kModel}),
                              makeTensor({kModel}, seed++, 0.5, 1.5),
                              weight({kModel}),
                              weight({kModel, kHidden}),
                              weight({kHidden}),
                              weight({kHidden, kModel}),
                              weight({kModel}),
                              makeTensor({kModel}, seed++, 0.5, 1.5),
                              weight({kModel})};
  Weights p{args[1].data,  args[2].data,  args[3].data,  args[4].data,
            args[5].data,  args[6].data,  args[7].data,  args[8].data,
            args[9].data,  args[10].data, args[11].data, args[12].data,
            args[13].data, args[14].data, args[15].data, args[16].data};
  Matrix expected = encoderBlock(x.data, p);

  mlir::FailureOr<std::vector<Tensor>> results = run("encoder_block", args);
  ASSERT_TRUE(mlir::succeeded(results)) << allDiagnostics();
  ASSERT_EQ(results->size(), 1u);
  expectTensorNear((*results)[0], {kSeq, kModel}, expected, 1e-10);

  // Post-LN with gamma near 1: the output is far from the input, so the
  // comparison above checks more than the residual path.
  double moved = 0;
  for (size_t i = 0; i < expected.size(); ++i)
    moved += std::fabs(expected[i] - x.data[i]);
  EXPECT_GT(moved, 1.0);
}

} // namespace
