//===- FunctionTest.cpp - calls and function boundaries -------------------===//

#include "ReferenceTest.h"

#include "llvm/Support/raw_ostream.h"

using namespace dyncc::reference;
using namespace dyncc::reference::test;

namespace {

using FunctionTest = ReferenceTest;

constexpr const char *kCallChain = R"mlir(
  func.func private @double(%x: tensor<3xf32>) -> tensor<3xf32> {
    %e = tensor.empty() : tensor<3xf32>
    %r = linalg.add ins(%x, %x : tensor<3xf32>, tensor<3xf32>) outs(%e : tensor<3xf32>) -> tensor<3xf32>
    return %r : tensor<3xf32>
  }
  func.func @double_plus(%x: tensor<3xf32>, %y: tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>) {
    %d = func.call @double(%x) : (tensor<3xf32>) -> tensor<3xf32>
    %e = tensor.empty() : tensor<3xf32>
    %s = linalg.add ins(%d, %y : tensor<3xf32>, tensor<3xf32>) outs(%e : tensor<3xf32>) -> tensor<3xf32>
    return %s, %d : tensor<3xf32>, tensor<3xf32>
  }
  func.func @main(%x: tensor<3xf32>, %y: tensor<3xf32>) -> tensor<3xf32> {
    %a:2 = func.call @double_plus(%x, %y) : (tensor<3xf32>, tensor<3xf32>) -> (tensor<3xf32>, tensor<3xf32>)
    %b = func.call @double(%a#0) : (tensor<3xf32>) -> tensor<3xf32>
    %e = tensor.empty() : tensor<3xf32>
    %c = linalg.sub ins(%b, %a#1 : tensor<3xf32>, tensor<3xf32>) outs(%e : tensor<3xf32>) -> tensor<3xf32>
    return %c : tensor<3xf32>
  })mlir";

TEST_F(FunctionTest, CallChain) {
  Tensor x = makeTensor({3}, 51), y = makeTensor({3}, 52);
  // b = 2 (2x + y), c = b - 2x.
  std::vector<double> expected;
  for (int i = 0; i < 3; ++i)
    expected.push_back(2 * x.data[i] + 2 * y.data[i]);
  std::vector<Tensor> results = runMain(kCallChain, {x, y});
  ASSERT_EQ(results.size(), 1u);
  expectTensorNear(results[0], {3}, expected);

  // A callee runs on its own too, with several results.
  mlir::FailureOr<std::vector<Tensor>> inner = run("double_plus", {x, y});
  ASSERT_TRUE(mlir::succeeded(inner)) << allDiagnostics();
  ASSERT_EQ(inner->size(), 2u);
  std::vector<double> sum, twice;
  for (int i = 0; i < 3; ++i) {
    sum.push_back(2 * x.data[i] + y.data[i]);
    twice.push_back(2 * x.data[i]);
  }
  expectTensorNear((*inner)[0], {3}, sum);
  expectTensorNear((*inner)[1], {3}, twice);
}

TEST_F(FunctionTest, InterpretationLeavesTheModuleUnchanged) {
  ASSERT_TRUE(parse(kCallChain)) << allDiagnostics();
  auto print = [&] {
    std::string text;
    llvm::raw_string_ostream os(text);
    module->print(os);
    return text;
  };
  std::string before = print();
  ASSERT_TRUE(
      mlir::succeeded(run("main", {makeTensor({3}, 53), makeTensor({3}, 54)})));
  EXPECT_EQ(print(), before);
}

TEST_F(FunctionTest, ScalarArgumentsAndResults) {
  const char *source = R"mlir(
    func.func @main(%s: f32, %n: i64, %t: tensor<f32>) -> (i64, f32, tensor<f32>) {
      return %n, %s, %t : i64, f32, tensor<f32>
    })mlir";
  std::vector<Tensor> results =
      runMain(source, {makeScalar(0.5), makeScalar(-3), makeScalar(7.0)});
  ASSERT_EQ(results.size(), 3u);
  expectTensorNear(results[0], {}, {-3}, 0.0);
  expectTensorNear(results[1], {}, {0.5}, 0.0);
  expectTensorNear(results[2], {}, {7.0}, 0.0);
}

} // namespace
