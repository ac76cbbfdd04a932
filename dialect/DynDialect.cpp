//===- DynDialect.cpp - dialect registration ------------------------------===//

#include "dialect/DynDialect.h"

#include "mlir/Transforms/InliningUtils.h"

using namespace mlir;
using namespace dyncc::dyn;

#include "dialect/DynDialect.cpp.inc"

namespace {

/// Calls inside the regions of dyn ops (the layers after an exit point, an
/// expert body, a recurrent cell) may be inlined, and dyn ops may be inlined
/// into other functions: none of them depends on its enclosing function.
struct DynInlinerInterface : public DialectInlinerInterface {
  using DialectInlinerInterface::DialectInlinerInterface;
  bool isLegalToInline(Operation *, Region *, bool, IRMapping &) const final {
    return true;
  }
  bool isLegalToInline(Region *, Region *, bool, IRMapping &) const final {
    return true;
  }
};

} // namespace

void DynDialect::initialize() {
  addInterfaces<DynInlinerInterface>();
  registerAttributes();
  addOperations<
#define GET_OP_LIST
#include "dialect/DynOps.cpp.inc"
      >();
}
