//===- Passes.cpp - the dyncc pass pipeline -------------------------------===//

#include "passes/Passes.h"

#include "mlir/Transforms/Passes.h"

namespace dyncc {

void buildDynccPipeline(mlir::OpPassManager &pm) {
  pm.addPass(createDynCheckModel());
  pm.addPass(createDynCollectParams());
}

void buildKernelPipeline(mlir::OpPassManager &pm,
                         const KernelPipelineOptions &options) {
  // Inline first: the exit chains, routes and skip loops of models exported
  // from dyncc.nn sit in private functions (LowerExitIf adds results and
  // parameter arguments to the function that holds a chain), and the
  // weight transposes of LegalizeImport fold only on the entry's
  // dyn.weight arguments.
  pm.addPass(mlir::createInlinerPass());
  pm.addPass(mlir::createSymbolDCEPass());
  pm.addPass(createDynLegalizeImport());
  if (!options.batchBuckets.empty()) {
    DynBatchBucketsOptions batch;
    batch.buckets = options.batchBuckets;
    batch.compaction = options.compaction;
    pm.addPass(createDynBatchBuckets(batch));
  }
  pm.addPass(createDynLowerExitIf());
  if (!options.batchBuckets.empty()) {
    // Models that run sample after sample, their exit chains now lowered.
    DynBatchBucketsOptions loop;
    loop.buckets = options.batchBuckets;
    loop.compaction = options.compaction;
    loop.sampleLoop = true;
    pm.addPass(createDynBatchBuckets(loop));
  }
  pm.addPass(mlir::createInlinerPass());
  DynLowerRouteOptions route;
  route.ranks = options.expertParallel;
  pm.addPass(createDynLowerRoute(route));
  DynLowerSkipOptions skip;
  skip.hoistInputs = options.hoistStepInputs;
  pm.addPass(createDynLowerSkip(skip));
  pm.addPass(mlir::createSymbolDCEPass());
  pm.addPass(createDynFormKernels());
  pm.addPass(mlir::createCSEPass());
}

} // namespace dyncc
