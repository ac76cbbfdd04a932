//===- Passes.h - the dyncc pass pipeline -----------------------*- C++ -*-===//

#ifndef DYNCC_PASSES_PASSES_H
#define DYNCC_PASSES_PASSES_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace dyncc {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// The name of the module attribute that dyn-collect-params writes.
inline constexpr llvm::StringLiteral kRuntimeParamsAttrName =
    "dyn.runtime_params";

/// The argument attribute that binds an argument to a runtime parameter.
inline constexpr llvm::StringLiteral kParamAttrName = "dyn.param";

/// Marks a tensor.extract in a linalg.generic body that the model itself
/// wrote (dyn-check-model sets it): kernels check its indices at run time
/// instead of clamping them, so that an embedding lookup at an id outside
/// the table fails the run. Gathers that passes create are not marked.
inline constexpr llvm::StringLiteral kCheckedIndexAttrName = "dyn.checked_index";

/// A unit attribute on the model's module: its gathers clamp an index
/// outside the table to the nearest row (as compiler-made gathers do)
/// instead of failing the run, for models trained with that behaviour.
inline constexpr llvm::StringLiteral kClampIndicesAttrName = "dyn.clamp_indices";

/// On a linalg.generic of a MoE layer's batched expert body (dyn-lower-route):
/// the index of a DPS input ([batch, rows] i32) that is negative at the rows
/// no token occupies. The body does not read it; those rows of the results
/// are never read, and codegen may leave them unwritten (docs/moe.md).
inline constexpr llvm::StringLiteral kRowMaskAttr = "dyn.row_mask";

/// The attribute that marks a kernel function and names its kind.
inline constexpr llvm::StringLiteral kKernelAttrName = "dyn.kernel";
/// Module attribute set by -dyn-lower-skip: what each skimming loop
/// hoisted, one line a loop (dyncc compile --stats).
inline constexpr llvm::StringLiteral kHoistedProjectionsAttr =
    "dyn.hoisted_projections";

/// Whether `fn` is the model's entry: a public function with a body that is
/// not a kernel (a model has exactly one; codegen's findEntry says which).
inline bool isEntryCandidate(mlir::func::FuncOp fn) {
  return !fn.isExternal() && fn.isPublic() && !fn->hasAttr(kKernelAttrName);
}

enum class KernelKind { Gemm, Reduction, Elementwise, Attention };
llvm::StringRef kernelKindName(KernelKind kind);

/// Whether `op` may appear in the body of a kernel's linalg.generic.
bool isKernelBodyOp(mlir::Operation *op);

/// Integer and index arithmetic (integer constants included) that host code
/// runs itself: positions, step counts, decisions read back from kernels.
/// FormKernels leaves these between kernels; EmitLibrary lowers them.
bool isHostScalarOp(mlir::Operation *op);

/// Decomposes linalg.softmax and generalizes every named linalg op under
/// `root` into linalg.generic (the one form kernel formation and batching
/// work on); a located error for an op that cannot be generalized.
mlir::LogicalResult generalizeLinalg(mlir::Operation *root);

/// Adds the dyn-level passes that run on every model, in order.
void buildDynccPipeline(mlir::OpPassManager &pm);

/// Options of the kernel pipeline (dyncc compile flags).
struct KernelPipelineOptions {
  /// --batch-buckets: compile the per-sample model for these batch sizes
  /// (ascending); empty: compile it as written.
  std::vector<int64_t> batchBuckets;
  /// --compaction: never, always or auto.
  std::string compaction = "auto";
  /// --expert-parallel: split every dyn.route's experts over this many
  /// processes (0: one process).
  int64_t expertParallel = 0;
  /// --hoist-step-inputs: compute the step input's projections of skimming
  /// loops that visit every position in order before the loop.
  bool hoistStepInputs = true;
};

/// Adds the passes from the dyn level to kernels: batching (with buckets),
/// the dyn lowerings, inlining, kernel formation, cleanup.
void buildKernelPipeline(mlir::OpPassManager &pm,
                         const KernelPipelineOptions &options = {});

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace dyncc

#endif // DYNCC_PASSES_PASSES_H
