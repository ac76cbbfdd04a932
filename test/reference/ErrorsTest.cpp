//===- ErrorsTest.cpp - located diagnostics -------------------------------===//
//
// Every failure is one located error and failure(), never a crash.
//
//===----------------------------------------------------------------------===//

#include "ReferenceTest.h"

#include <gmock/gmock.h>

using namespace dyncc::reference;
using namespace dyncc::reference::test;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

using ErrorsTest = ReferenceTest;

/// Expects exactly one diagnostic, on line `line`, saying `message`.
void expectOneError(const std::vector<std::string> &diagnostics, unsigned line,
                    const std::string &message) {
  ASSERT_EQ(diagnostics.size(), 1u)
      << fmt::format("{}", fmt::join(diagnostics, "\n"));
  EXPECT_THAT(diagnostics[0], StartsWith(std::to_string(line) + ":"));
  EXPECT_THAT(diagnostics[0], HasSubstr(message));
}

TEST_F(ErrorsTest, UnregisteredOpIsUnsupported) {
  context.allowUnregisteredDialects();
  const char *source = R"mlir(
    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %y = "foo.bar"(%x) : (tensor<4xf32>) -> tensor<4xf32>
      return %y : tensor<4xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({4}, 1)}),
                 lineOf(source, "foo.bar"),
                 "unsupported op 'foo.bar' in the reference interpreter");
}

TEST_F(ErrorsTest, DynOpIsUnsupported) {
  const char *source = R"mlir(
    func.func @main(%a: tensor<1x2xf32>, %b: tensor<1x2xf32>) -> tensor<1x2xf32> {
      %r = dyn.exit_if %a criterion #dyn.entropy<threshold = #dyn.param<"theta" = 0.3>> layer 1 : tensor<1x2xf32> {
        dyn.yield %b : tensor<1x2xf32>
      }
      return %r : tensor<1x2xf32>
    })mlir";
  expectOneError(runMainExpectingError(
                     source, {makeTensor({1, 2}, 2), makeTensor({1, 2}, 3)}),
                 lineOf(source, "dyn.exit_if"), "unsupported op 'dyn.exit_if'");
}

TEST_F(ErrorsTest, ScfOpIsUnsupported) {
  const char *source = R"mlir(
    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %r = scf.execute_region -> tensor<4xf32> {
        scf.yield %x : tensor<4xf32>
      }
      return %r : tensor<4xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({4}, 4)}),
                 lineOf(source, "scf.execute_region"),
                 "unsupported op 'scf.execute_region'");
}

TEST_F(ErrorsTest, ArithOnTensorsIsUnsupported) {
  const char *source = R"mlir(
    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %r = arith.addf %x, %x : tensor<4xf32>
      return %r : tensor<4xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({4}, 5)}),
                 lineOf(source, "arith.addf"), "unsupported op 'arith.addf'");
}

TEST_F(ErrorsTest, NamedLinalgOpOutsideTheOpSetIsUnsupported) {
  const char *source = R"mlir(
    func.func @main(%m: tensor<2x3xf32>, %v: tensor<3xf32>, %o: tensor<2xf32>) -> tensor<2xf32> {
      %r = linalg.matvec ins(%m, %v : tensor<2x3xf32>, tensor<3xf32>) outs(%o : tensor<2xf32>) -> tensor<2xf32>
      return %r : tensor<2xf32>
    })mlir";
  expectOneError(
      runMainExpectingError(source, {makeTensor({2, 3}, 6), makeTensor({3}, 7),
                                     makeTensor({2}, 8)}),
      lineOf(source, "linalg.matvec"), "unsupported op 'linalg.matvec'");
}

TEST_F(ErrorsTest, BodyOpOutsideTheOpSetIsUnsupported) {
  const char *source = R"mlir(
    #id = affine_map<(d0) -> (d0)>
    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %e = tensor.empty() : tensor<4xf32>
      %r = linalg.generic {indexing_maps = [#id, #id], iterator_types = ["parallel"]}
          ins(%x : tensor<4xf32>) outs(%e : tensor<4xf32>) {
        ^bb0(%v: f32, %o: f32):
          %s = math.sin %v : f32
          linalg.yield %s : f32
      } -> tensor<4xf32>
      return %r : tensor<4xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({4}, 9)}),
                 lineOf(source, "math.sin"), "unsupported op 'math.sin'");
}

TEST_F(ErrorsTest, ErrorInCalleeIsLocatedInTheCallee) {
  context.allowUnregisteredDialects();
  const char *source = R"mlir(
    func.func private @inner(%x: tensor<4xf32>) -> tensor<4xf32> {
      %y = "foo.baz"(%x) : (tensor<4xf32>) -> tensor<4xf32>
      return %y : tensor<4xf32>
    }
    func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
      %y = func.call @inner(%x) : (tensor<4xf32>) -> tensor<4xf32>
      return %y : tensor<4xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({4}, 10)}),
                 lineOf(source, "foo.baz"), "unsupported op 'foo.baz'");
}

//===----------------------------------------------------------------------===//
// Out-of-range gathers and undefined integer arithmetic.
//===----------------------------------------------------------------------===//

constexpr const char *kGather = R"mlir(
  func.func @main(%ids: tensor<3xi64>, %table: tensor<5x2xf32>) -> tensor<3x2xf32> {
    %e = tensor.empty() : tensor<3x2xf32>
    %r = linalg.generic {indexing_maps = [affine_map<(d0, d1) -> (d0)>, affine_map<(d0, d1) -> (d0, d1)>],
                         iterator_types = ["parallel", "parallel"]}
        ins(%ids : tensor<3xi64>) outs(%e : tensor<3x2xf32>) {
      ^bb0(%id: i64, %o: f32):
        %row = arith.index_cast %id : i64 to index
        %col = linalg.index 1 : index
        %v = tensor.extract %table[%row, %col] : tensor<5x2xf32>
        linalg.yield %v : f32
    } -> tensor<3x2xf32>
    return %r : tensor<3x2xf32>
  })mlir";

TEST_F(ErrorsTest, GatherIndexPastTheEnd) {
  expectOneError(runMainExpectingError(
                     kGather, {Tensor{{3}, {0, 5, 1}}, makeTensor({5, 2}, 11)}),
                 lineOf(kGather, "tensor.extract"),
                 "index 5 of dimension 0 is out of range [0, 5)");
}

TEST_F(ErrorsTest, NegativeGatherIndex) {
  expectOneError(runMainExpectingError(kGather, {Tensor{{3}, {0, 1, -1}},
                                                 makeTensor({5, 2}, 12)}),
                 lineOf(kGather, "tensor.extract"),
                 "index -1 of dimension 0 is out of range [0, 5)");
}

TEST_F(ErrorsTest, IntegerDivisionByZero) {
  const char *source = R"mlir(
    #id = affine_map<(d0) -> (d0)>
    func.func @main(%a: tensor<2xi32>, %b: tensor<2xi32>) -> tensor<2xi32> {
      %e = tensor.empty() : tensor<2xi32>
      %r = linalg.generic {indexing_maps = [#id, #id, #id], iterator_types = ["parallel"]}
          ins(%a, %b : tensor<2xi32>, tensor<2xi32>) outs(%e : tensor<2xi32>) {
        ^bb0(%x: i32, %y: i32, %o: i32):
          %q = arith.divsi %x, %y : i32
          linalg.yield %q : i32
      } -> tensor<2xi32>
      return %r : tensor<2xi32>
    })mlir";
  expectOneError(
      runMainExpectingError(source, {Tensor{{2}, {4, 4}}, Tensor{{2}, {2, 0}}}),
      lineOf(source, "arith.divsi"), "integer division by zero");
}

//===----------------------------------------------------------------------===//
// Function boundaries.
//===----------------------------------------------------------------------===//

constexpr const char *kIdentity = R"mlir(
  func.func @main(%x: tensor<2x3xf32>, %ids: tensor<2xi64>) -> tensor<2x3xf32> {
    return %x : tensor<2x3xf32>
  })mlir";

TEST_F(ErrorsTest, ArgumentShapeMismatch) {
  expectOneError(runMainExpectingError(
                     kIdentity, {makeTensor({3, 2}, 13), Tensor{{2}, {0, 1}}}),
                 lineOf(kIdentity, "func.func"),
                 "argument #0 has shape 3x2, expected 'tensor<2x3xf32>'");
}

TEST_F(ErrorsTest, ArgumentRankMismatch) {
  expectOneError(runMainExpectingError(
                     kIdentity, {makeTensor({6}, 14), Tensor{{2}, {0, 1}}}),
                 lineOf(kIdentity, "func.func"), "argument #0 has shape 6");
}

TEST_F(ErrorsTest, ArgumentDataDoesNotFillItsShape) {
  expectOneError(runMainExpectingError(kIdentity, {Tensor{{2, 3}, {1, 2, 3}},
                                                   Tensor{{2}, {0, 1}}}),
                 lineOf(kIdentity, "func.func"),
                 "argument #0 has shape 2x3 with 3 elements");
}

TEST_F(ErrorsTest, ArgumentCountMismatch) {
  expectOneError(runMainExpectingError(kIdentity, {makeTensor({2, 3}, 15)}),
                 lineOf(kIdentity, "func.func"), "expected 2 arguments, got 1");
}

TEST_F(ErrorsTest, IntegerArgumentWithAFraction) {
  expectOneError(runMainExpectingError(kIdentity, {makeTensor({2, 3}, 16),
                                                   Tensor{{2}, {0, 1.5}}}),
                 lineOf(kIdentity, "func.func"),
                 "argument #1: element 1 (1.5) is not a value of 'i64'");
}

TEST_F(ErrorsTest, RecursiveCall) {
  const char *source = R"mlir(
    func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
      %y = func.call @main(%x) : (tensor<2xf32>) -> tensor<2xf32>
      return %y : tensor<2xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({2}, 17)}),
                 lineOf(source, "func.func"),
                 "recursive call of @main would never return");
}

TEST_F(ErrorsTest, CallOfADeclaration) {
  const char *source = R"mlir(
    func.func private @external(tensor<2xf32>) -> tensor<2xf32>
    func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {
      %y = func.call @external(%x) : (tensor<2xf32>) -> tensor<2xf32>
      return %y : tensor<2xf32>
    })mlir";
  expectOneError(runMainExpectingError(source, {makeTensor({2}, 18)}),
                 lineOf(source, "@external"),
                 "cannot interpret @external: it has no body");
}

} // namespace
