//===- DynAttrsTest.cpp - enums and attributes of the dyn dialect ---------===//

#include "dialect/DynDialect.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

using namespace mlir;
using namespace dyncc::dyn;

namespace {

class DynAttrsTest : public ::testing::Test {
protected:
  DynAttrsTest() { context.loadDialect<DynDialect>(); }

  /// Parses `text`; returns null (and keeps the message) on failure.
  Attribute parse(const std::string &text) {
    lastError.clear();
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      lastError = diag.str();
      return success();
    });
    return parseAttribute(text, &context);
  }

  static std::string print(Attribute attr) {
    std::string out;
    llvm::raw_string_ostream os(out);
    attr.print(os);
    return out;
  }

  MLIRContext context;
  std::string lastError;
};

TEST_F(DynAttrsTest, RoutingStrategyNamesRoundTrip) {
  for (uint32_t i = 0; i <= getMaxEnumValForRoutingStrategy(); ++i) {
    auto strategy = static_cast<RoutingStrategy>(i);
    llvm::StringRef name = stringifyRoutingStrategy(strategy);
    ASSERT_FALSE(name.empty());
    EXPECT_EQ(symbolizeRoutingStrategy(name), strategy) << name.str();
  }
  EXPECT_EQ(stringifyRoutingStrategy(RoutingStrategy::switch_), "switch");
  EXPECT_FALSE(symbolizeRoutingStrategy("top2").has_value());
}

TEST_F(DynAttrsTest, SkipActionNamesRoundTrip) {
  for (uint32_t i = 0; i <= getMaxEnumValForSkipActionKind(); ++i) {
    auto kind = static_cast<SkipActionKind>(i);
    EXPECT_EQ(symbolizeSkipActionKind(stringifySkipActionKind(kind)), kind);
  }
  EXPECT_EQ(getMaxEnumValForSkipActionKind(), 10u) << "Table 1 has 11 actions";
}

TEST_F(DynAttrsTest, ScalarParamRoundTrips) {
  Attribute attr = parse(R"(#dyn.param<"theta" = 0.3>)");
  ASSERT_TRUE(attr) << lastError;
  auto param = cast<RuntimeParamAttr>(attr);
  EXPECT_EQ(param.getName(), "theta");
  EXPECT_FALSE(param.getIsVector());
  EXPECT_DOUBLE_EQ(param.getScalar(), 0.3);
  EXPECT_EQ(parse(print(attr)), attr);
}

TEST_F(DynAttrsTest, VectorParamRoundTrips) {
  Attribute attr = parse(R"(#dyn.param<"layer1.per_class" = [0.9, 0.5, 1]>)");
  ASSERT_TRUE(attr) << lastError;
  auto param = cast<RuntimeParamAttr>(attr);
  EXPECT_TRUE(param.getIsVector());
  ASSERT_EQ(param.getValues().size(), 3u);
  EXPECT_DOUBLE_EQ(param.getValues()[2], 1.0);
  EXPECT_EQ(parse(print(attr)), attr);
}

TEST_F(DynAttrsTest, InfinityIsAValidDefault) {
  Attribute attr = parse(R"(#dyn.param<"theta" = inf>)");
  ASSERT_TRUE(attr) << lastError;
  EXPECT_TRUE(std::isinf(cast<RuntimeParamAttr>(attr).getScalar()));
  EXPECT_EQ(print(attr), R"(#dyn.param<"theta" = inf>)");
}

TEST_F(DynAttrsTest, ParamValuesPrintShortAndParseBackExactly) {
  for (double v : {0.3, 2.0, 1e-5, -4.5e20, 0.1 + 0.2}) {
    auto param = RuntimeParamAttr::get(&context, "p", {v}, false);
    Attribute back = parse(print(param));
    ASSERT_TRUE(back) << print(param) << ": " << lastError;
    EXPECT_EQ(cast<RuntimeParamAttr>(back).getScalar(), v) << print(param);
  }
  EXPECT_EQ(print(RuntimeParamAttr::get(&context, "p", {0.3}, false)),
            R"(#dyn.param<"p" = 0.3>)");
}

TEST_F(DynAttrsTest, ParamNameMustBeAnIdentifier) {
  EXPECT_FALSE(parse(R"(#dyn.param<"1theta" = 0.3>)"));
  EXPECT_NE(lastError.find("is not an identifier"), std::string::npos)
      << lastError;
  EXPECT_FALSE(parse(R"(#dyn.param<"" = 0.3>)"));
}

TEST_F(DynAttrsTest, CriterionCarriesItsParams) {
  Attribute attr = parse(
      R"(#dyn.max_prob<temperature = 1.5 : f64, threshold = #dyn.param<"tau" = 0.9>>)");
  ASSERT_TRUE(attr) << lastError;
  auto crit = cast<MaxProbCriterionAttr>(attr);
  EXPECT_DOUBLE_EQ(crit.getTemperature().getValueAsDouble(), 1.5);
  EXPECT_EQ(crit.getThreshold().getName(), "tau");
}

TEST_F(DynAttrsTest, JumpToActionKeepsTargets) {
  Attribute attr = parse("#dyn.action<jump_to, targets = [1, 2]>");
  ASSERT_TRUE(attr) << lastError;
  auto action = cast<SkipActionAttr>(attr);
  EXPECT_EQ(action.getKind(), SkipActionKind::jump_to);
  EXPECT_EQ(action.getTargets(), llvm::ArrayRef<int64_t>({1, 2}));
  EXPECT_TRUE(cast<SkipActionAttr>(parse("#dyn.action<stop>")).getTargets().empty());
}

} // namespace
