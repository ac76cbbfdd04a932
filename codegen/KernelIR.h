//===- KernelIR.h - kernels between MLIR and Halide -------------*- C++ -*-===//
//
// The neutral description of one kernel (a dyn.kernel function: a few
// linalg.generic ops on static shapes). ExtractKernels.cpp builds it from
// MLIR; EmitHalide.cpp turns it into a Halide pipeline. Neither MLIR nor
// Halide headers appear here: the two never meet in one translation unit
// (they bring different LLVMs).
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_KERNELIR_H
#define DYNCC_CODEGEN_KERNELIR_H

#include <cstdint>
#include <string>
#include <vector>

namespace dyncc::kir {

/// BF16: bfloat16 storage only (a weight kept rounded to bfloat16 for the
/// bf16 GEMMs that read it, EmitLibrary.cpp); reads widen it to f32.
enum class ElemType : uint8_t { F32, F64, I1, I8, I16, I32, I64, BF16 };

/// Bytes per element as stored in memory (i1 takes one byte).
int64_t elemSize(ElemType type);
const char *elemTypeName(ElemType type);

enum class OpCode : uint8_t {
  // Leaves.
  Load,      // the stage's input access `index` at the current point
  Acc,       // the current value of the stage's output `index`
  LoopIndex, // the value of loop `index` (linalg.index)
  Const,     // `fval` (floats) or `ival` (integers, i1)
  Extract,   // tensor `index` at the integer operands (one per dim), clamped
  // Floating point.
  AddF, SubF, MulF, DivF, PowF,
  MaximumF, MinimumF, // NaN-propagating (arith.maximumf / minimumf)
  MaxNumF, MinNumF,   // NaN-ignoring (arith.maxnumf / minnumf)
  NegF, Exp, Log, Tanh, Erf, Sqrt, Rsqrt, AbsF,
  Log1p, Sin, Cos, Floor, Ceil, Round /* half away from 0 */, RoundEven,
  CmpF, // predicate `pred` = arith::CmpFPredicate value
  // Integers.
  AddI, SubI, MulI, DivSI, RemSI, AndI, OrI, XOrI,
  MaxSI, MinSI, MaxUI, MinUI, AbsI, FloorDivSI, CeilDivSI,
  CmpI, // predicate `pred` = arith::CmpIPredicate value
  // Any type.
  Select,
  Cast, // to `type`; `unsignedSource` for uitofp / extui
};

struct Expr {
  OpCode op;
  ElemType type;
  int64_t index = 0;
  int64_t ival = 0;
  double fval = 0.0;
  int pred = 0;
  bool unsignedSource = false;
  /// Extract: an index outside the table fails the run (gathers the model
  /// wrote; the compiler's own gathers rely on clamping instead).
  bool checkedIndex = false;
  std::vector<int> args; // indices into Stage::exprs, always smaller
};

/// One tensor dimension as a function of the loops:
/// ((sum(coeffs[l] * loop_l) + offset) floordiv divisor) mod modulus, the
/// mod only when modulus > 0 (a loop that merged several tensor dimensions,
/// read by an operand that holds only some of them: FormKernels'
/// MergeSplitDims).
struct AffineDim {
  std::vector<int64_t> coeffs;
  int64_t offset = 0;
  int64_t divisor = 1;
  int64_t modulus = 0;

  /// The one loop this dimension is (coefficient 1, no offset, divisor or
  /// modulus: a projected permutation's dimension), or -1.
  int loop() const;
};

struct Access {
  int tensor = -1;
  std::vector<AffineDim> dims;
};

/// One linalg.generic: a loop nest with parallel and reduction loops.
struct Stage {
  std::vector<int64_t> loopExtents;
  std::vector<bool> isReduction;
  std::vector<Access> inputs;  // Load `i` reads inputs[i]
  std::vector<Access> outputs; // output `o` of the stage writes outputs[o]
  /// Per output: the tensor holding its initial value, or -1 (uninitialized
  /// tensor.empty: the body must not depend on it).
  std::vector<int> inits;
  std::vector<Expr> exprs;
  std::vector<int> yields; // per output, an index into exprs
  /// Run-time checks (cf.assert in the body): i1 exprs that must hold at
  /// every point, and the message of each; a failing check fails the run.
  std::vector<int> checks;
  std::vector<std::string> checkMessages;
  /// -1, or the input (inputs[rowMask], an i32 tensor) that is negative at
  /// the loop points whose outputs nobody reads (dyn.row_mask: a MoE
  /// layer's empty capacity); codegen may skip computing them.
  int rowMask = -1;
};

struct Tensor {
  enum class Role : uint8_t { Input, Output, Temp };
  std::string name;
  std::vector<int64_t> shape; // row-major, outermost first
  ElemType type = ElemType::F32;
  Role role = Role::Temp;
  int stage = -1;  // the stage that writes it (Temp/Output)
  int result = -1; // which output of that stage
};

struct Kernel {
  std::string name; // the symbol of the generated function
  std::string kind; // "gemm", "reduction", "elementwise"
  std::vector<Tensor> tensors;
  std::vector<Stage> stages;
  std::vector<int> inputs;  // tensor ids, in argument order
  std::vector<int> outputs; // tensor ids, in result order
};

} // namespace dyncc::kir

#endif // DYNCC_CODEGEN_KERNELIR_H
