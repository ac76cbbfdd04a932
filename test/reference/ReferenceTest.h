//===- ReferenceTest.h - fixture of the reference tests ---------*- C++ -*-===//
//
// Parses MLIR snippets, runs a function through the reference interpreter and
// keeps its diagnostics. Expected values are always computed by the tests
// themselves with plain loops, never with the interpreter's code.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_TEST_REFERENCE_REFERENCETEST_H
#define DYNCC_TEST_REFERENCE_REFERENCETEST_H

#include "reference/Interpreter.h"
#include "tools/dyncc/Registration.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Parser/Parser.h"

#include "llvm/ADT/StringRef.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace dyncc::reference::test {

/// Deterministic values in [lo, hi) (the same on every platform, unlike the
/// standard distributions).
inline Tensor makeTensor(std::vector<int64_t> shape, uint64_t seed,
                         double lo = -1.0, double hi = 1.0) {
  Tensor tensor{std::move(shape), {}};
  std::mt19937_64 generator(seed);
  int64_t count = getNumElements(tensor.shape);
  for (int64_t i = 0; i < count; ++i)
    tensor.data.push_back(lo + (hi - lo) *
                                   std::ldexp(double(generator() >> 11), -53));
  return tensor;
}

inline Tensor makeScalar(double value) { return Tensor{{}, {value}}; }

/// Expects `actual` to have `shape` and, elementwise, `expected` within
/// `tolerance` (relative above 1); NaNs match NaNs, infinities match exactly.
inline void expectTensorNear(const Tensor &actual,
                             const std::vector<int64_t> &shape,
                             const std::vector<double> &expected,
                             double tolerance = 1e-12) {
  ASSERT_EQ(actual.shape, shape);
  ASSERT_EQ(actual.data.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    double a = actual.data[i], e = expected[i];
    if (std::isnan(e)) {
      EXPECT_TRUE(std::isnan(a)) << "element " << i << ": " << a;
    } else if (std::isinf(e)) {
      EXPECT_EQ(a, e) << "element " << i;
    } else {
      EXPECT_NEAR(a, e, tolerance * std::max(1.0, std::fabs(e)))
          << "element " << i;
    }
  }
}

/// The 1-based line of the first occurrence of `needle` in `source`.
inline unsigned lineOf(llvm::StringRef source, llvm::StringRef needle) {
  size_t position = source.find(needle);
  EXPECT_NE(position, llvm::StringRef::npos) << needle.str();
  return source.take_front(position).count('\n') + 1;
}

class ReferenceTest : public ::testing::Test {
protected:
  ReferenceTest()
      : handler(&context, [this](mlir::Diagnostic &diagnostic) {
          std::string where;
          if (auto loc = mlir::dyn_cast<mlir::FileLineColLoc>(
                  diagnostic.getLocation()))
            where = fmt::format("{}:{}: ", loc.getLine(), loc.getColumn());
          diagnostics.push_back(where + diagnostic.str());
          return mlir::success();
        }) {
    mlir::DialectRegistry registry;
    dyncc::registerDialects(registry);
    context.appendDialectRegistry(registry);
    context.loadAllAvailableDialects();
  }

  /// Parses `source` as the module under test.
  bool parse(llvm::StringRef source) {
    module =
        mlir::parseSourceString<mlir::ModuleOp>(source, &context, "test.mlir");
    return static_cast<bool>(module);
  }

  /// Runs @`name` of the parsed module.
  mlir::FailureOr<std::vector<Tensor>> run(llvm::StringRef name,
                                           const std::vector<Tensor> &args) {
    auto fn = module->lookupSymbol<mlir::func::FuncOp>(name);
    EXPECT_TRUE(fn) << "no function @" << name.str();
    if (!fn)
      return mlir::failure();
    return interpret(fn, args);
  }

  /// Parses `source` and runs its @main, which must succeed.
  std::vector<Tensor> runMain(llvm::StringRef source,
                              const std::vector<Tensor> &args) {
    if (!parse(source)) {
      ADD_FAILURE() << "parse error: " << allDiagnostics();
      return {};
    }
    mlir::FailureOr<std::vector<Tensor>> results = run("main", args);
    if (mlir::failed(results)) {
      ADD_FAILURE() << "interpretation failed: " << allDiagnostics();
      return {};
    }
    return std::move(*results);
  }

  /// Parses `source`, runs its @main, which must fail, and returns the
  /// diagnostics ("line:column: message").
  std::vector<std::string>
  runMainExpectingError(llvm::StringRef source,
                        const std::vector<Tensor> &args) {
    if (!parse(source)) {
      ADD_FAILURE() << "parse error: " << allDiagnostics();
      return {};
    }
    EXPECT_TRUE(mlir::failed(run("main", args)));
    EXPECT_FALSE(diagnostics.empty());
    return diagnostics;
  }

  std::string allDiagnostics() const {
    return fmt::format("{}", fmt::join(diagnostics, "\n"));
  }

  mlir::MLIRContext context;
  mlir::ScopedDiagnosticHandler handler;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::vector<std::string> diagnostics;
};

} // namespace dyncc::reference::test

#endif // DYNCC_TEST_REFERENCE_REFERENCETEST_H
