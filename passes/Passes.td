//===- Passes.td - the dyncc pass pipeline -----------------*- tablegen -*-===//
//
// The passes of dyncc, in pipeline order. buildDynccPipeline() in
// Passes.cpp assembles them.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_PASSES_TD
#define DYNCC_PASSES_TD

include "mlir/Pass/PassBase.td"

def DynCheckModel : Pass<"dyn-check-model", "mlir::ModuleOp"> {
  let summary = "Reject models that dyncc cannot compile safely, with a "
                "located error";
  let description = [{
    Runs first. The public function's arguments and results must be
    statically shaped tensors; no tensor anywhere may have more than 2^40
    bytes (the byte size of every tensor must fit the runtime's size
    arithmetic); calls must not recurse; and the
    module must not grow past 2 million operations when every call is
    inlined (a few kilobytes of nested calls could otherwise expand to
    billions of operations). See docs/reliability.md.
  }];
}

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

def DynLegalizeImport : Pass<"dyn-legalize-import", "mlir::ModuleOp"> {
  let summary = "Rewrite what torch-mlir's linalg-on-tensors emits into the "
                "accepted op set";
  let description = [{
    Runs first. Splat tensor constants become fills; `tensor.pad` becomes a
    fill and an `insert_slice`; outputs indexed by the constant 0 (reductions
    that keep a unit dimension, `(d0, d1, d2) -> (d0, d1, 0)`) are collapsed
    to their non-unit dimensions; transposes of weights (function arguments
    and constants) fold into the indexing maps of their linalg consumers, so
    that no weight is copied per run; `math.fpowi` becomes multiplications
    or `math.powf`. `cf.assert` in kernel bodies is kept: kernels check it
    at run time and fail the run with its message. See docs/import.md.
  }];
  let dependentDialects = ["::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect"];
}

def DynBatchBuckets : Pass<"dyn-batch-buckets", "mlir::ModuleOp"> {
  let summary = "Batch a per-sample model over compiled bucket sizes, with "
                "active-set compaction after each exit point";
  let description = [{
    The public function computes one sample. It becomes a function of
    `max_batch` samples (the largest bucket): every per-sample input and the
    result gain a leading sample dimension, an argument marked
    `dyn.batch_count` (tensor<1xi32>) holds the request's sample count, and
    a sample-level exit chain adds the result `exit_layer`. The network is
    cut into stages at its exit points; each stage is an `scf.index_switch`
    over the bucket index with the stage's ops batched to each bucket size.
    After each exit point the runtime's compaction builtin retires the
    samples that exited, decides whether to gather the active ones into a
    dense prefix (policy `compaction`: never, always, or auto by a cost
    model) and chooses the next stage's bucket. Calls must be inlined
    first. See docs/early-exit.md, "Batched runs".

    Models that cannot be cut into stages (a dyn.skip or dyn.route, a
    token-level exit chain, several chains, ops after an exit point) run
    their samples one after another, each exactly as alone. Their exit
    chains must be lowered first: this pass marks such a model
    (`dyn.batch_sample_loop`) and a second instance with `sample-loop`,
    after -dyn-lower-exit-if, builds the loop over samples.
  }];
  let options = [
    ListOption<"buckets", "buckets", "int64_t",
               "Batch sizes to compile, ascending; the last is the largest batch">,
    Option<"compaction", "compaction", "std::string", /*default=*/"\"auto\"",
           "When to gather the active samples: never, always, auto">,
    Option<"sampleLoop", "sample-loop", "bool", /*default=*/"false",
           "Build the loop over samples of a model the first run marked">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect"];
}

def DynLowerExitIf : Pass<"dyn-lower-exit-if", "mlir::ModuleOp"> {
  let summary = "Lower dyn.exit_if chains to criteria and scf.if";
  let description = [{
    Every chain of sample-level `dyn.exit_if` ops becomes, per exit point,
    the criterion as linalg ops (one exit flag per sample), an `scf.if` on
    "every sample exited" whose then-branch yields the logits and whose
    else-branch runs the rest of the network, and a per-sample merge. The
    exit layer of every sample becomes the extra result `exit_layer`; every
    runtime parameter used becomes an argument marked `dyn.param`. The exact
    semantics are in docs/early-exit.md.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::scf::SCFDialect"];
}

def DynLowerRoute : Pass<"dyn-lower-route", "mlir::ModuleOp"> {
  let summary = "Lower dyn.route to assignment, dispatch, batched experts, combine";
  let description = [{
    Every `dyn.route` becomes a call of the runtime's assignment builtin
    (a private function marked `dyn.kernel = "builtin"` with its settings in
    `dyn.config`), a gather of the tokens into a static dispatch buffer
    (`[E, C, D]`, or `[NB, block, D]` in dropless mode), the expert body
    cloned with static shapes and batched over the experts (one batched
    GEMM per matmul of the body), and a weighted combine back to token
    order. The exact semantics are in docs/moe.md.

    With `expert-parallel=R` (dyncc compile --expert-parallel=R) the model
    runs as R processes, each holding E/R experts: the expert weights become
    their rank's shard (`[E/R, ...]`, marked `dyn.expert_shard`), and
    around the batched body two calls of the runtime's exchange builtin
    move the dispatched rows to their expert's rank and the results back
    (docs/moe.md, "Expert parallelism").
  }];
  let options = [
    Option<"ranks", "expert-parallel", "int64_t", /*default=*/"0",
           "Split the experts over this many processes (0: one process)">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def DynLowerSkip : Pass<"dyn-lower-skip", "mlir::ModuleOp"> {
  let summary = "Lower dyn.skip to an scf.while over steps with an scf.index_switch on the action";
  let description = [{
    Every `dyn.skip` becomes an `scf.while` carrying the position, the step
    count, a stop flag and the state. Each iteration gathers the step input
    at the position, runs the `decide` region, calls the runtime's step
    builtin (which records the trace and rejects an action out of range),
    and runs the chosen action's region in an `scf.index_switch`, which also
    yields the next position. The exact semantics are in docs/skim.md.

    With `hoist-inputs` (the default), a loop whose every action advances
    by one position visits positions 0, 1, ... in order; there every
    contraction of the step input alone with values defined outside the
    loop (an LSTM's `W_ih x`: linalg.matvec, linalg.matmul or a contraction
    generic, on the input or on it with a unit dimension inserted) is
    computed for all the positions the loop can visit at once, before the
    loop (one GEMM instead of a GEMV per step), and the step reads its part
    (docs/skim.md "Input projections").
  }];
  let options = [
    Option<"hoistInputs", "hoist-inputs", "bool", /*default=*/"true",
           "Compute the step input's projections for every position before "
           "the loop, where the loop visits the positions in order">
  ];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect"];
}

def DynFormKernels : Pass<"dyn-form-kernels", "mlir::ModuleOp"> {
  let summary = "Group the tensor ops of a model into kernels";
  let description = [{
    Generalizes the named linalg ops, decomposes `linalg.softmax`, rejects
    ops outside the accepted set (docs/ops.md) with a located error, and
    groups the resulting `linalg.generic` ops of every block into kernels:
    a contraction with its elementwise epilogue (`gemm`), reductions with
    the elementwise ops over the same rows (`reduction`: softmax, layer
    norm, argmax), or an elementwise chain (`elementwise`). An op joins the
    group of its latest producer when the kinds fit and nothing outside the
    group uses the group's intermediate values. Each group becomes a private
    function marked `dyn.kernel = "<kind>"`, called where the group was;
    fills and `tensor.empty` that only initialize outputs are cloned into
    the kernels that need them.
  }];
  let dependentDialects = ["::mlir::func::FuncDialect",
                           "::mlir::linalg::LinalgDialect",
                           "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

#endif // DYNCC_PASSES_TD
