//===- DynUtilsTest.cpp - policy arithmetic of the dyn dialect ------------===//

#include "dialect/DynDialect.h"
#include "dialect/DynUtils.h"

#include "mlir/IR/MLIRContext.h"

#include <gtest/gtest.h>

#include <limits>

using namespace mlir;
using namespace dyncc::dyn;

namespace {

TEST(Capacity, MatchesTheW1Workload) {
  // T=512, E=8, capacity factor 1.25: Switch (k=1) and GShard (k=2).
  EXPECT_EQ(computeCapacity(512, 8, 1, 1.25), 80);
  EXPECT_EQ(computeCapacity(512, 8, 2, 1.25), 160);
}

TEST(Capacity, RoundsUpAndClamps) {
  EXPECT_EQ(computeCapacity(10, 3, 1, 1.0), 4);   // ceil(10/3)
  EXPECT_EQ(computeCapacity(10, 3, 1, 0.01), 1);  // never zero slots
  EXPECT_EQ(computeCapacity(16, 2, 2, 4.0), 16);  // never more than T
}

TEST(Capacity, IsPerGroup) {
  // Local group dispatching: 4 groups of 128 tokens.
  EXPECT_EQ(computeCapacity(512, 8, 1, 1.0, 4), 16);
}

TEST(Dropless, BoundCoversEveryPairAndPadding) {
  EXPECT_EQ(droplessRowBound(512, 2, 8, 64), 512 * 2 + 8 * 63);
  EXPECT_EQ(droplessRowBound(7, 1, 4, 1), 7);
}

TEST(ParamNames, IdentifiersWithDottedParts) {
  EXPECT_TRUE(isValidParamName("theta"));
  EXPECT_TRUE(isValidParamName("_x1"));
  EXPECT_TRUE(isValidParamName("layer3.theta"));
  EXPECT_FALSE(isValidParamName(""));
  EXPECT_FALSE(isValidParamName("3theta"));
  EXPECT_FALSE(isValidParamName("a..b"));
  EXPECT_FALSE(isValidParamName("a-b"));
  EXPECT_FALSE(isValidParamName("a."));
}

class CriterionDomain : public ::testing::Test {
protected:
  CriterionDomain() { context.loadDialect<DynDialect>(); }
  RuntimeParamAttr scalar(double v) {
    return RuntimeParamAttr::get(&context, "p", {v}, false);
  }
  RuntimeParamAttr vector(llvm::ArrayRef<double> v) {
    return RuntimeParamAttr::get(&context, "p", v, true);
  }
  MLIRContext context;
};

TEST_F(CriterionDomain, Entropy) {
  EXPECT_FALSE(checkCriterionDomain(EntropyCriterionAttr::get(&context, scalar(0.0)), 2));
  EXPECT_FALSE(checkCriterionDomain(
      EntropyCriterionAttr::get(&context, scalar(std::numeric_limits<double>::infinity())), 2));
  auto err = checkCriterionDomain(EntropyCriterionAttr::get(&context, scalar(-0.1)), 2);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("outside [0, inf]"), std::string::npos) << *err;
}

TEST_F(CriterionDomain, MaxProb) {
  auto temp = [&](double t) { return FloatAttr::get(Float64Type::get(&context), t); };
  EXPECT_FALSE(checkCriterionDomain(MaxProbCriterionAttr::get(&context, temp(1.0), scalar(1.0)), 2));
  EXPECT_TRUE(checkCriterionDomain(MaxProbCriterionAttr::get(&context, temp(1.0), scalar(1.5)), 2));
  auto err = checkCriterionDomain(MaxProbCriterionAttr::get(&context, temp(0.0), scalar(0.5)), 2);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("temperature"), std::string::npos) << *err;
}

TEST_F(CriterionDomain, PatienceIsAPositiveInteger) {
  EXPECT_FALSE(checkCriterionDomain(PatienceCriterionAttr::get(&context, scalar(3)), 2));
  EXPECT_TRUE(checkCriterionDomain(PatienceCriterionAttr::get(&context, scalar(0)), 2));
  EXPECT_TRUE(checkCriterionDomain(PatienceCriterionAttr::get(&context, scalar(2.5)), 2));
  EXPECT_TRUE(checkCriterionDomain(PatienceCriterionAttr::get(&context, vector({2, 3})), 2));
}

TEST_F(CriterionDomain, PerClassNeedsOneThresholdPerClass) {
  auto crit = PerClassCriterionAttr::get(&context, vector({0.9, 0.8}));
  EXPECT_FALSE(checkCriterionDomain(crit, 2));
  auto err = checkCriterionDomain(crit, 3);
  ASSERT_TRUE(err);
  EXPECT_NE(err->find("has 2 values but the classifier has 3 classes"),
            std::string::npos) << *err;
  EXPECT_TRUE(checkCriterionDomain(
      PerClassCriterionAttr::get(&context, vector({0.9, 1.2})), 2));
}

TEST_F(CriterionDomain, NamesEveryCriterion) {
  EXPECT_EQ(criterionName(VotesCriterionAttr::get(&context, scalar(2))), "votes");
  EXPECT_EQ(criterionName(LearnedScoreCriterionAttr::get(&context, scalar(0.5))),
            "learned_score");
  EXPECT_EQ(criterionName(scalar(1)), "");
}

} // namespace
