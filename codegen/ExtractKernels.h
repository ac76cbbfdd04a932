//===- ExtractKernels.h - MLIR kernels to KernelIR --------------*- C++ -*-===//

#ifndef DYNCC_CODEGEN_EXTRACTKERNELS_H
#define DYNCC_CODEGEN_EXTRACTKERNELS_H

#include "codegen/KernelIR.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace dyncc {

/// Describes a kernel function (made by dyn-form-kernels) in KernelIR.
/// Anything it cannot describe is a located error on the offending op.
mlir::FailureOr<kir::Kernel> extractKernel(mlir::func::FuncOp kernel);

} // namespace dyncc

#endif // DYNCC_CODEGEN_EXTRACTKERNELS_H
