//===- DynUtils.h - policy arithmetic shared by dyn passes ------*- C++ -*-===//
//
// Small helpers whose results the verifiers, the lowerings and the runtime
// must agree on: expert capacity, dropless bounds, criterion domains.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_DIALECT_DYNUTILS_H
#define DYNCC_DIALECT_DYNUTILS_H

#include "mlir/IR/Attributes.h"
#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <optional>
#include <string>

namespace dyncc::dyn {

/// Slots per expert and group: ceil(factor * k * (tokens / groups) / experts),
/// at least 1 and at most tokens / groups (an expert never receives a token
/// twice).
int64_t computeCapacity(int64_t tokens, int64_t experts, int64_t k,
                        double factor, int64_t groups = 1);

/// Rows of the dispatch buffer in dropless mode: every (token, expert) pair
/// plus the padding of each expert's group to a multiple of `block`.
int64_t droplessRowBound(int64_t tokens, int64_t k, int64_t experts,
                         int64_t block);

/// The user-facing name of an exit criterion attribute ("entropy", ...), or
/// an empty string for any other attribute.
llvm::StringRef criterionName(mlir::Attribute criterion);

/// Checks the values of an exit criterion against their domains for a
/// classifier with `numClasses` classes. Returns a message naming the
/// offending value, or nothing when the criterion is valid.
std::optional<std::string> checkCriterionDomain(mlir::Attribute criterion,
                                                int64_t numClasses);

/// Whether `name` may name a runtime parameter: a C identifier, optionally
/// with '.'-separated parts ("layer3.theta").
bool isValidParamName(llvm::StringRef name);

} // namespace dyncc::dyn

#endif // DYNCC_DIALECT_DYNUTILS_H
