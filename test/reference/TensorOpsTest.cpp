//===- TensorOpsTest.cpp - tensor dialect ops -----------------------------===//

#include "ReferenceTest.h"

using namespace dyncc::reference;
using namespace dyncc::reference::test;

namespace {

using TensorOpsTest = ReferenceTest;

TEST_F(TensorOpsTest, ExtractSliceStridedAndRankReducing) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<4x6xf32>) -> (tensor<2x3xf32>, tensor<3xf32>) {
      %s = tensor.extract_slice %a[1, 0] [2, 3] [2, 2] : tensor<4x6xf32> to tensor<2x3xf32>
      %r = tensor.extract_slice %a[2, 1] [1, 3] [1, 1] : tensor<4x6xf32> to tensor<3xf32>
      return %s, %r : tensor<2x3xf32>, tensor<3xf32>
    })mlir";
  Tensor a = makeTensor({4, 6}, 41);
  std::vector<double> strided, row;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      strided.push_back(a.data[(1 + 2 * i) * 6 + 2 * j]);
  for (int j = 0; j < 3; ++j)
    row.push_back(a.data[2 * 6 + 1 + j]);
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {2, 3}, strided, 0.0);
  expectTensorNear(results[1], {3}, row, 0.0);
}

TEST_F(TensorOpsTest, InsertSliceStridedAndRankReduced) {
  const char *source = R"mlir(
    func.func @main(%dst: tensor<4x6xf32>, %src: tensor<2x2xf32>, %row: tensor<6xf32>) -> tensor<4x6xf32> {
      %a = tensor.insert_slice %src into %dst[1, 2] [2, 2] [1, 2] : tensor<2x2xf32> into tensor<4x6xf32>
      %b = tensor.insert_slice %row into %a[3, 0] [1, 6] [1, 1] : tensor<6xf32> into tensor<4x6xf32>
      return %b : tensor<4x6xf32>
    })mlir";
  Tensor dst = makeTensor({4, 6}, 42), src = makeTensor({2, 2}, 43);
  Tensor row = makeTensor({6}, 44);
  std::vector<double> expected = dst.data;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      expected[(1 + i) * 6 + 2 + 2 * j] = src.data[i * 2 + j];
  for (int j = 0; j < 6; ++j)
    expected[3 * 6 + j] = row.data[j];
  std::vector<Tensor> results = runMain(source, {dst, src, row});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {4, 6}, expected, 0.0);
}

TEST_F(TensorOpsTest, ConcatAlongInnerAndOuterDimensions) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<2x1xf32>, %b: tensor<2x3xf32>, %c: tensor<2x2xf32>)
        -> (tensor<2x6xf32>, tensor<4x3xf32>) {
      %inner = tensor.concat dim(1) %a, %b, %c
        : (tensor<2x1xf32>, tensor<2x3xf32>, tensor<2x2xf32>) -> tensor<2x6xf32>
      %outer = tensor.concat dim(0) %b, %b : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
      return %inner, %outer : tensor<2x6xf32>, tensor<4x3xf32>
    })mlir";
  Tensor a = makeTensor({2, 1}, 45), b = makeTensor({2, 3}, 46);
  Tensor c = makeTensor({2, 2}, 47);
  std::vector<double> inner, outer;
  for (int i = 0; i < 2; ++i) {
    inner.push_back(a.data[i]);
    for (int j = 0; j < 3; ++j)
      inner.push_back(b.data[i * 3 + j]);
    for (int j = 0; j < 2; ++j)
      inner.push_back(c.data[i * 2 + j]);
  }
  outer = b.data;
  outer.insert(outer.end(), b.data.begin(), b.data.end());
  std::vector<Tensor> results = runMain(source, {a, b, c});
  ASSERT_EQ(results.size(), 2u);
  expectTensorNear(results[0], {2, 6}, inner, 0.0);
  expectTensorNear(results[1], {4, 3}, outer, 0.0);
}

TEST_F(TensorOpsTest, ExpandAndCollapseShape) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<6x4xf32>) -> (tensor<2x3x4xf32>, tensor<2x12xf32>) {
      %x = tensor.expand_shape %a [[0, 1], [2]] output_shape [2, 3, 4] : tensor<6x4xf32> into tensor<2x3x4xf32>
      %y = tensor.collapse_shape %x [[0], [1, 2]] : tensor<2x3x4xf32> into tensor<2x12xf32>
      return %x, %y : tensor<2x3x4xf32>, tensor<2x12xf32>
    })mlir";
  Tensor a = makeTensor({6, 4}, 48);
  std::vector<Tensor> results = runMain(source, {a});
  ASSERT_EQ(results.size(), 2u);
  // Row-major reshapes keep the element order.
  expectTensorNear(results[0], {2, 3, 4}, a.data, 0.0);
  expectTensorNear(results[1], {2, 12}, a.data, 0.0);
}

TEST_F(TensorOpsTest, EmptyAndConstants) {
  const char *source = R"mlir(
    func.func @main() -> (tensor<2x3xf32>, tensor<4xf64>, tensor<3xi32>, tensor<2xi1>,
                          tensor<2xf32>, f32, i64, tensor<2x2xf32>) {
      %d = arith.constant dense<[[1.0, 2.5, -3.0], [0.125, 5.0, 6.0]]> : tensor<2x3xf32>
      %s = arith.constant dense<0.5> : tensor<4xf64>
      %i = arith.constant dense<[-1, 2, 2147483647]> : tensor<3xi32>
      %b = arith.constant dense<[true, false]> : tensor<2xi1>
      %r = arith.constant dense_resource<blob> : tensor<2xf32>
      %f = arith.constant -1.25 : f32
      %n = arith.constant -9 : i64
      %e = tensor.empty() : tensor<2x2xf32>
      return %d, %s, %i, %b, %r, %f, %n, %e
        : tensor<2x3xf32>, tensor<4xf64>, tensor<3xi32>, tensor<2xi1>, tensor<2xf32>, f32, i64, tensor<2x2xf32>
    }
    {-#
      dialect_resources: {
        builtin: {
          blob: "0x040000000000803F000000C0"
        }
      }
    #-})mlir";
  std::vector<Tensor> results = runMain(source, {});
  ASSERT_EQ(results.size(), 8u);
  expectTensorNear(results[0], {2, 3}, {1.0, 2.5, -3.0, 0.125, 5.0, 6.0}, 0.0);
  expectTensorNear(results[1], {4}, {0.5, 0.5, 0.5, 0.5}, 0.0);
  expectTensorNear(results[2], {3}, {-1, 2, 2147483647}, 0.0);
  expectTensorNear(results[3], {2}, {1, 0}, 0.0);
  expectTensorNear(results[4], {2}, {1.0, -2.0}, 0.0);
  expectTensorNear(results[5], {}, {-1.25}, 0.0);
  expectTensorNear(results[6], {}, {-9}, 0.0);
  expectTensorNear(results[7], {2, 2}, {0, 0, 0, 0}, 0.0);
}

} // namespace
