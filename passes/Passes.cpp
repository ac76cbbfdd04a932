//===- Passes.cpp - the dyncc pass pipeline -------------------------------===//

#include "passes/Passes.h"

namespace dyncc {

void buildDynccPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createDynCollectParams());
}

} // namespace dyncc
