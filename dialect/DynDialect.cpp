//===- DynDialect.cpp - dialect registration ------------------------------===//

#include "dialect/DynDialect.h"

#include "mlir/Transforms/InliningUtils.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSwitch.h"

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

namespace {

/// The argument and result attributes of the dyn dialect and what each
/// holds; see docs/dialect.md, "Function attributes".
enum class ValueAttrKind { String, Unit, Count, Unknown };

/// The argument attributes, for messages. dyn.expert_shard (a weight that
/// holds one rank's shard of the experts: the rank count) is written by
/// -dyn-lower-route's expert-parallel mode.
constexpr StringRef kArgAttrs[] = {"dyn.weight", "dyn.name", "dyn.param",
                                   "dyn.batch_count", "dyn.expert_shard"};

ValueAttrKind valueAttrKind(StringRef name, bool result) {
  if (result)
    return name == "dyn.name" ? ValueAttrKind::String : ValueAttrKind::Unknown;
  return llvm::StringSwitch<ValueAttrKind>(name)
      .Cases("dyn.weight", "dyn.name", "dyn.param", ValueAttrKind::String)
      .Case("dyn.batch_count", ValueAttrKind::Unit)
      .Case("dyn.expert_shard", ValueAttrKind::Count)
      .Default(ValueAttrKind::Unknown);
}

LogicalResult verifyValueAttr(Operation *op, unsigned index, NamedAttribute attr,
                              bool result) {
  StringRef name = attr.getName().strref();
  const char *what = result ? "result" : "argument";
  switch (valueAttrKind(name, result)) {
  case ValueAttrKind::Unknown: {
    std::string known =
        result ? "dyn.name" : llvm::join(ArrayRef<StringRef>(kArgAttrs), ", ");
    InFlightDiagnostic diag = op->emitOpError()
                              << "unknown " << what << " attribute '" << name
                              << "' on " << what << " #" << index;
    // The nearest known name (a misspelt `dyn.wieght` would otherwise make
    // the weight an input without a word).
    StringRef best;
    unsigned bestDistance = 3;
    for (StringRef k : kArgAttrs) {
      if (result && k != "dyn.name")
        continue;
      unsigned d = name.edit_distance(k);
      if (d < bestDistance)
        best = k, bestDistance = d;
    }
    if (!best.empty())
      diag << "; did you mean '" << best << "'?";
    else
      diag << " (known: " << known << ")";
    return diag;
  }
  case ValueAttrKind::String: {
    auto s = dyn_cast<StringAttr>(attr.getValue());
    if (!s || s.getValue().empty())
      return op->emitOpError()
             << "'" << name << "' of " << what << " #" << index
             << " must be a non-empty string, got " << attr.getValue();
    if (s.size() > 256)
      return op->emitOpError() << "'" << name << "' of " << what << " #"
                               << index << " is longer than 256 characters";
    for (char c : s.getValue())
      if (!llvm::isPrint(c))
        return op->emitOpError()
               << "'" << name << "' of " << what << " #" << index
               << " contains a control or non-ASCII character";
    return success();
  }
  case ValueAttrKind::Count: {
    auto n = dyn_cast<IntegerAttr>(attr.getValue());
    if (!n || n.getValue().getSExtValue() < 1)
      return op->emitOpError() << "'" << name << "' of " << what << " #"
                               << index << " must be a positive integer, got "
                               << attr.getValue();
    return success();
  }
  case ValueAttrKind::Unit:
    if (!isa<UnitAttr>(attr.getValue()))
      return op->emitOpError() << "'" << name << "' of " << what << " #"
                               << index << " takes no value";
    return success();
  }
  return success();
}

} // namespace

LogicalResult DynDialect::verifyRegionArgAttribute(Operation *op, unsigned,
                                                   unsigned argIndex,
                                                   NamedAttribute attr) {
  return verifyValueAttr(op, argIndex, attr, /*result=*/false);
}

LogicalResult DynDialect::verifyRegionResultAttribute(Operation *op, unsigned,
                                                      unsigned resultIndex,
                                                      NamedAttribute attr) {
  return verifyValueAttr(op, resultIndex, attr, /*result=*/true);
}
