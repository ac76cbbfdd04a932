//===- DynDialect.h - the dyn dialect ---------------------------*- C++ -*-===//
//
// Everything a user of the dyn dialect includes: the dialect, its enums,
// attributes and ops.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_DIALECT_DYNDIALECT_H
#define DYNCC_DIALECT_DYNDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "dialect/DynDialect.h.inc"
#include "dialect/DynEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "dialect/DynAttrs.h.inc"

#define GET_OP_CLASSES
#include "dialect/DynOps.h.inc"

#endif // DYNCC_DIALECT_DYNDIALECT_H
