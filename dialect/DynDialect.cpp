//===- DynDialect.cpp - dialect registration ------------------------------===//

#include "dialect/DynDialect.h"

using namespace mlir;
using namespace dyncc::dyn;

#include "dialect/DynDialect.cpp.inc"

void DynDialect::initialize() {
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "dialect/DynOps.cpp.inc"
      >();
}
