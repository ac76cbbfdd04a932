//===- Passes.cpp - the dyncc pass pipeline -------------------------------===//

#include "passes/Passes.h"

#include "mlir/Transforms/Passes.h"

namespace dyncc {

void buildDynccPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createDynCollectParams());
}

void buildKernelPipeline(mlir::OpPassManager &pm,
                         const KernelPipelineOptions &options) {
  pm.addPass(createDynLegalizeImport());
  if (!options.batchBuckets.empty()) {
    DynBatchBucketsOptions batch;
    batch.buckets = options.batchBuckets;
    batch.compaction = options.compaction;
    pm.addPass(mlir::createInlinerPass());
    pm.addPass(mlir::createSymbolDCEPass());
    pm.addPass(createDynBatchBuckets(batch));
  }
  pm.addPass(createDynLowerExitIf());
  pm.addPass(mlir::createInlinerPass());
  pm.addPass(createDynLowerRoute());
  pm.addPass(createDynLowerSkip());
  pm.addPass(mlir::createSymbolDCEPass());
  pm.addPass(createDynFormKernels());
  pm.addPass(mlir::createCSEPass());
}

} // namespace dyncc
