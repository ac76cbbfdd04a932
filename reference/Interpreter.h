//===- Interpreter.h - the reference interpreter of the op set --*- C++ -*-===//
//
// dyncc's compiled results are checked differentially against this
// interpreter. It runs the op set of docs/ops.md eagerly, in float64
// everywhere (accumulation included), and shares no code with the compiler's
// lowering, so that a bug in one does not hide in the other.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_REFERENCE_INTERPRETER_H
#define DYNCC_REFERENCE_INTERPRETER_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Support/LogicalResult.h"

#include "llvm/ADT/ArrayRef.h"

#include <cstdint>
#include <vector>

namespace dyncc::reference {

/// A value of the interpreted program: a tensor, or a scalar (empty shape,
/// one element). Row-major; integers and booleans are stored as exact doubles
/// (booleans as 0 and 1), so integers are exact up to 2^53.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<double> data;
};

/// The number of elements of a tensor of `shape` (1 for a scalar).
int64_t getNumElements(llvm::ArrayRef<int64_t> shape);

/// Runs `fn` on `args` (one per function argument, shapes must match the
/// function type exactly). Unsupported ops, shape mismatches and out-of-range
/// gathers are reported as located MLIR diagnostics on the op (emitError) and
/// give failure(); never a crash or an assert. `fn` and the functions it
/// calls are only read (named linalg ops may cache their indexing maps in an
/// attribute, as they do when verified).
///
/// Every float type is computed in double (`arith.truncf`/`arith.extf` do not
/// round); integer ops wrap to their bit width. Out-of-range `fptosi`
/// saturates (arith makes it poison); `tensor.empty` is zeros.
mlir::FailureOr<std::vector<Tensor>> interpret(mlir::func::FuncOp fn,
                                               llvm::ArrayRef<Tensor> args);

} // namespace dyncc::reference

#endif // DYNCC_REFERENCE_INTERPRETER_H
