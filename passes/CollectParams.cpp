//===- CollectParams.cpp - gather the runtime parameters of a model -------===//
//
// The runtime lets the caller retune thresholds by name; this pass makes the
// set of names (and their defaults) explicit and checks it is consistent.
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "passes/Passes.h"

#include "llvm/ADT/StringMap.h"

namespace dyncc {
#define GEN_PASS_DEF_DYNCOLLECTPARAMS
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;
using namespace dyncc;
using namespace dyncc::dyn;

namespace {

struct DynCollectParamsPass
    : public dyncc::impl::DynCollectParamsBase<DynCollectParamsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    llvm::StringMap<std::pair<RuntimeParamAttr, Operation *>> seen;
    bool failedAny = false;
    module.walk([&](Operation *op) {
      op->getAttrDictionary().walk([&](RuntimeParamAttr param) {
        auto [it, inserted] = seen.try_emplace(param.getName(), param, op);
        if (inserted || it->second.first == param)
          return;
        InFlightDiagnostic diag =
            op->emitError() << "runtime parameter '" << param.getName()
                            << "' is declared again with a different default ("
                            << param << " vs " << it->second.first << ")";
        diag.attachNote(it->second.second->getLoc()) << "first declared here";
        failedAny = true;
      });
    });
    if (failedAny)
      return signalPassFailure();

    SmallVector<NamedAttribute> entries;
    for (auto &entry : seen)
      entries.emplace_back(StringAttr::get(&getContext(), entry.getKey()),
                           entry.getValue().first);
    llvm::sort(entries, [](const NamedAttribute &a, const NamedAttribute &b) {
      return a.getName().strref() < b.getName().strref();
    });
    module->setAttr(kRuntimeParamsAttrName,
                    DictionaryAttr::get(&getContext(), entries));
  }
};

} // namespace
