//===- Passes.h - the dyncc pass pipeline -----------------------*- C++ -*-===//

#ifndef DYNCC_PASSES_PASSES_H
#define DYNCC_PASSES_PASSES_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace dyncc {

#define GEN_PASS_DECL
#include "passes/Passes.h.inc"

/// The name of the module attribute that dyn-collect-params writes.
inline constexpr llvm::StringLiteral kRuntimeParamsAttrName =
    "dyn.runtime_params";

/// Adds the dyn-level passes that run on every model, in order.
void buildDynccPipeline(mlir::OpPassManager &pm);

#define GEN_PASS_REGISTRATION
#include "passes/Passes.h.inc"

} // namespace dyncc

#endif // DYNCC_PASSES_PASSES_H
