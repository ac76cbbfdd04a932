//===- DynUtils.cpp - policy arithmetic shared by dyn passes --------------===//

#include "dialect/DynUtils.h"
#include "dialect/DynDialect.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/TypeSwitch.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace dyncc::dyn {

int64_t computeCapacity(int64_t tokens, int64_t experts, int64_t k,
                        double factor, int64_t groups) {
  int64_t perGroup = tokens / groups;
  double slots = factor * static_cast<double>(k) *
                 static_cast<double>(perGroup) / static_cast<double>(experts);
  // The small epsilon keeps exact products (1.25 * 512 / 8 = 80) from being
  // rounded up by representation error.
  auto capacity = static_cast<int64_t>(std::ceil(slots - 1e-9));
  return std::clamp<int64_t>(capacity, 1, perGroup);
}

int64_t droplessRowBound(int64_t tokens, int64_t k, int64_t experts,
                         int64_t block) {
  return tokens * k + experts * (block - 1);
}

llvm::StringRef criterionName(mlir::Attribute criterion) {
  return llvm::TypeSwitch<mlir::Attribute, llvm::StringRef>(criterion)
      .Case([](EntropyCriterionAttr) { return "entropy"; })
      .Case([](MaxProbCriterionAttr) { return "max_prob"; })
      .Case([](PatienceCriterionAttr) { return "patience"; })
      .Case([](VotesCriterionAttr) { return "votes"; })
      .Case([](LearnedScoreCriterionAttr) { return "learned_score"; })
      .Case([](PerClassCriterionAttr) { return "per_class"; })
      .Default([](mlir::Attribute) { return ""; });
}

namespace {

/// Checks every value of `param` against [lo, hi]; `what` names the value.
std::optional<std::string> checkRange(RuntimeParamAttr param,
                                      llvm::StringRef what, double lo,
                                      double hi) {
  for (double v : param.getValues()) {
    if (std::isnan(v) || v < lo || v > hi)
      return fmt::format("{} '{}' = {} is outside [{}, {}]", what,
                         param.getName().str(), v, lo, hi);
  }
  return std::nullopt;
}

std::optional<std::string> requireScalar(RuntimeParamAttr param,
                                         llvm::StringRef what) {
  if (param.getIsVector())
    return fmt::format("{} '{}' must be a single value, not a vector", what,
                       param.getName().str());
  return std::nullopt;
}

} // namespace

std::optional<std::string> checkCriterionDomain(mlir::Attribute criterion,
                                                int64_t numClasses) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  auto scalarIn = [](RuntimeParamAttr p, llvm::StringRef what, double lo,
                     double hi) -> std::optional<std::string> {
    if (auto err = requireScalar(p, what))
      return err;
    return checkRange(p, what, lo, hi);
  };
  return llvm::TypeSwitch<mlir::Attribute, std::optional<std::string>>(
             criterion)
      .Case([&](EntropyCriterionAttr c) {
        return scalarIn(c.getThreshold(), "entropy threshold", 0.0, inf);
      })
      .Case([&](MaxProbCriterionAttr c) -> std::optional<std::string> {
        double t = c.getTemperature().getValueAsDouble();
        // Kernels divide f32 logits by it: a normal f32 (1e-320 used to
        // reach Halide as a division by zero).
        if (!(t >= std::numeric_limits<float>::min()) ||
            !(t <= std::numeric_limits<float>::max()))
          return fmt::format("temperature = {} must be a positive, normal f32 "
                             "and finite", t);
        return scalarIn(c.getThreshold(), "probability threshold", 0.0, 1.0);
      })
      .Case([&](PatienceCriterionAttr c) -> std::optional<std::string> {
        RuntimeParamAttr k = c.getK();
        if (auto err = requireScalar(k, "patience"))
          return err;
        double v = k.getScalar();
        if (!(v >= 1.0) || std::isinf(v) || v != std::floor(v))
          return fmt::format("patience '{}' = {} must be an integer >= 1",
                             k.getName().str(), v);
        return std::nullopt;
      })
      .Case([&](VotesCriterionAttr c) {
        return scalarIn(c.getThreshold(), "vote threshold", 0.0, inf);
      })
      .Case([&](LearnedScoreCriterionAttr c) {
        return scalarIn(c.getThreshold(), "score threshold", 0.0, 1.0);
      })
      .Case([&](PerClassCriterionAttr c) -> std::optional<std::string> {
        RuntimeParamAttr p = c.getThresholds();
        auto n = static_cast<int64_t>(p.getValues().size());
        if (n != numClasses)
          return fmt::format("per-class thresholds '{}' has {} values but the "
                             "classifier has {} classes",
                             p.getName().str(), n, numClasses);
        return checkRange(p, "per-class threshold", 0.0, 1.0);
      })
      .Default([](mlir::Attribute) {
        return std::optional<std::string>("unknown exit criterion");
      });
}

bool isValidParamName(llvm::StringRef name) {
  if (name.empty())
    return false;
  llvm::SmallVector<llvm::StringRef> parts;
  name.split(parts, '.');
  return llvm::all_of(parts, [](llvm::StringRef part) {
    return !part.empty() && (llvm::isAlpha(part.front()) || part.front() == '_') &&
           llvm::all_of(part, [](char c) { return llvm::isAlnum(c) || c == '_'; });
  });
}

} // namespace dyncc::dyn
