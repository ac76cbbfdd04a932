//===- Registration.h - the dialects dyncc accepts --------------*- C++ -*-===//

#ifndef DYNCC_TOOLS_DYNCC_REGISTRATION_H
#define DYNCC_TOOLS_DYNCC_REGISTRATION_H

#include "mlir/IR/DialectRegistry.h"

namespace dyncc {

/// Registers the dyn dialect and the upstream dialects that models and the
/// pipeline use (func, arith, math, tensor, linalg, scf, ...).
void registerDialects(mlir::DialectRegistry &registry);

} // namespace dyncc

#endif // DYNCC_TOOLS_DYNCC_REGISTRATION_H
