//===- ScalarProgram.h - linalg bodies, evaluated per point -----*- C++ -*-===//
//
// The region of a linalg op runs once per point of its iteration domain, so
// it is translated once into a flat list of instructions over numbered slots
// instead of walking the IR (and hashing Values) at every point.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_REFERENCE_SCALARPROGRAM_H
#define DYNCC_REFERENCE_SCALARPROGRAM_H

#include "reference/Interpreter.h"

#include "mlir/IR/Block.h"
#include "mlir/IR/Types.h"
#include "mlir/IR/Value.h"

#include "llvm/ADT/APInt.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>

namespace dyncc::reference {

/// How a scalar type is computed: floats of every width as double, integers
/// (index included, as 64 bits) wrapped to `width` bits.
struct ScalarKind {
  bool isFloat = false;
  unsigned width = 0;
};

/// The kind of `type`; none for anything but a float, integer or index.
std::optional<ScalarKind> getScalarKind(mlir::Type type);

/// The stored value of an integer attribute of `width` bits: sign-extended,
/// except booleans, which are 0 and 1.
double integerToDouble(const llvm::APInt &value, unsigned width);

/// Reports `op` as outside the op set of docs/ops.md; always failure().
mlir::LogicalResult reportUnsupported(mlir::Operation *op);

/// A linalg region translated to slot instructions.
class ScalarProgram {
public:
  /// Looks up a value defined outside the region (a captured scalar or the
  /// table of a `tensor.extract`); null where it has no value yet.
  using OuterLookup = llvm::function_ref<const Tensor *(mlir::Value)>;

  /// Translates `body`, which must take `numArgs` block arguments (set at
  /// every point) and yield `numYields` values. Reports unsupported ops on
  /// the op and fails. The program keeps the tensors `lookup` returns for
  /// `tensor.extract`: they must outlive it.
  static mlir::FailureOr<ScalarProgram> build(mlir::Block &body,
                                              unsigned numArgs,
                                              unsigned numYields,
                                              OuterLookup lookup);

  /// Runs the program at the iteration point `loopIndices` with the block
  /// arguments `args`; fills `yielded`. Fails (with a diagnostic on the op)
  /// on an out-of-range `tensor.extract` or an integer division by zero.
  mlir::LogicalResult run(llvm::ArrayRef<double> args,
                          llvm::ArrayRef<int64_t> loopIndices,
                          llvm::SmallVectorImpl<double> &yielded);

private:
  enum class Opcode {
    // Floats.
    AddF,
    SubF,
    MulF,
    DivF,
    NegF,
    MaximumF,
    MinimumF,
    CmpF,
    Copy,
    AbsF,
    Exp,
    Log,
    Tanh,
    Erf,
    Sqrt,
    Rsqrt,
    PowF,
    // Conversions.
    SIToFP,
    UIToFP,
    FPToSI,
    IndexCast,
    // Integers.
    AddI,
    SubI,
    MulI,
    DivSI,
    RemSI,
    CmpI,
    AndI,
    OrI,
    XOrI,
    // Any type.
    Select,
    Index,
    Extract
  };

  struct Instruction {
    Opcode opcode;
    /// The op the instruction came from, for diagnostics.
    mlir::Operation *op = nullptr;
    llvm::SmallVector<unsigned, 3> operands;
    unsigned result = 0;
    /// Bit widths of the (integer) result and first operand; 0 for floats.
    unsigned width = 0;
    unsigned operandWidth = 0;
    /// The comparison predicate, or the loop dimension of `linalg.index`.
    int64_t attr = 0;
    /// The table read by `tensor.extract`.
    const Tensor *table = nullptr;
  };

  ScalarProgram() = default;

  /// One slot per block argument, op result and captured value. Constants
  /// and captured values are stored once by build(); every other slot is
  /// written by exactly one instruction (SSA), so run() never clears them.
  std::vector<double> slots;
  std::vector<Instruction> instructions;
  llvm::SmallVector<unsigned> yieldSlots;
};

} // namespace dyncc::reference

#endif // DYNCC_REFERENCE_SCALARPROGRAM_H
