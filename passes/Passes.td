//===- Passes.td - the dyncc pass pipeline -----------------*- tablegen -*-===//
//
// The passes of dyncc, in pipeline order. buildDynccPipeline() in
// Passes.cpp assembles them.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_PASSES_TD
#define DYNCC_PASSES_TD

include "mlir/Pass/PassBase.td"

def DynCollectParams : Pass<"dyn-collect-params", "mlir::ModuleOp"> {
  let summary = "Gather the runtime parameters of a model into one table";
  let description = [{
    Collects every `#dyn.param` used anywhere in the module (exit thresholds,
    the patience k, ...) into the module attribute `dyn.runtime_params`, a
    dictionary from parameter name to parameter, sorted by name. The
    generated library's parameter table (names, defaults, setters) is built
    from it. Two uses of one name with different defaults are an error that
    points at the second use.
  }];
  let dependentDialects = ["::dyncc::dyn::DynDialect"];
}

#endif // DYNCC_PASSES_TD
