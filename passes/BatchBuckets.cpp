//===- BatchBuckets.cpp - batched runs with buckets and compaction --------===//
//
// -dyn-batch-buckets turns a per-sample model (its entry function computes
// one sample) into a batched one of max_batch samples that runs each part
// of the network at a compiled bucket size (docs/early-exit.md, "Batched
// runs"):
//
//   - every per-sample input and output gains a leading dimension of
//     max_batch; an argument `dyn.batch_count` (tensor<1xi32>) says how many
//     samples the request holds;
//   - the network is cut into stages at its exit points (a model without an
//     exit chain is one stage); each stage is an scf.index_switch over the
//     bucket index with one case per bucket, holding the stage's ops batched
//     to that bucket (every tensor op gets a leading sample dimension);
//   - after each exit point the runtime's compaction builtin
//     (DYNRT_BUILTIN_BATCH_COMPACT) retires the samples that exited, decides
//     by its cost model whether to gather the still-active samples into a
//     dense prefix, and picks the bucket of the next stage; the carried
//     state (the hidden states, the criteria's memory) is gathered
//     accordingly, and each sample's logits and exit layer are merged into
//     the outputs in request order.
//
// Each sample computes exactly what it computes alone: every batched op is
// the per-sample op with an extra parallel loop, and the criteria are
// evaluated per row.
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "passes/ExitCriteria.h"
#include "passes/Passes.h"

#include "mlir/IR/IRMapping.h"

#include <fmt/format.h>

namespace dyncc {
#define GEN_PASS_DEF_DYNBATCHBUCKETS
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;
using namespace dyncc::dyn;

namespace {

// DYNRT_BUILTIN_BATCH_COMPACT and its config (runtime/dynrt.h).
constexpr int32_t kBuiltinBatchCompact = 3;
enum : int {
  kCfgMode = 0,
  kCfgStage = 1,
  kCfgMaxBatch = 2,
  kCfgPolicy = 3,
  kCfgGatherCost = 4,
  kCfgRemaining = 5,
  kCfgCount = 6
};
constexpr StringLiteral kBatchCountAttr = "dyn.batch_count";
constexpr StringLiteral kNameAttr = "dyn.name";

/// The state tensor of the compaction builtin: alive, bucket index, n, used,
/// slot_of[B], src[B].
int64_t stateSize(int64_t maxBatch) { return 4 + 2 * maxBatch; }

/// min / max of index values through cmpi + select (the kernel body ops).
Value minIndex(OpBuilder &b, Location loc, Value x, Value y) {
  Value lt = b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::slt, x, y);
  return b.create<arith::SelectOp>(loc, lt, x, y);
}
Value maxIndex(OpBuilder &b, Location loc, Value x, Value y) {
  Value gt = b.create<arith::CmpIOp>(loc, arith::CmpIPredicate::sgt, x, y);
  return b.create<arith::SelectOp>(loc, gt, x, y);
}

RankedTensorType withBatch(int64_t batch, Type t) {
  auto r = cast<RankedTensorType>(t);
  SmallVector<int64_t> shape{batch};
  llvm::append_range(shape, r.getShape());
  return RankedTensorType::get(shape, r.getElementType());
}

/// Clones per-sample ops with a leading sample dimension of `batch`.
/// `mapping` maps per-sample values to their batched versions for those in
/// `batched`; every other value is used as it is (weights, constants,
/// hoisted ops).
class SampleBatcher {
public:
  SampleBatcher(OpBuilder &b, int64_t batch) : b(b), batch(batch) {}

  OpBuilder &b;
  int64_t batch;
  IRMapping mapping;
  llvm::DenseSet<Value> batched;

  void map(Value from, Value to) {
    mapping.map(from, to);
    batched.insert(from);
  }
  Value lookup(Value v) { return mapping.lookupOrDefault(v); }

  /// The batched version of `v`: its mapping when it depends on the sample,
  /// else `v` broadcast to every sample (a shared fill or constant that a
  /// per-sample op writes into or concatenates with).
  Value perSample(Value v) {
    if (batched.contains(v))
      return lookup(v);
    auto type = cast<RankedTensorType>(v.getType());
    auto batchedType = withBatch(batch, type);
    Location loc = v.getLoc();
    Value empty = b.create<tensor::EmptyOp>(loc, batchedType.getShape(),
                                            type.getElementType());
    MLIRContext *ctx = b.getContext();
    unsigned rank = batchedType.getRank();
    SmallVector<AffineExpr> dims;
    for (unsigned d = 1; d < rank; ++d)
      dims.push_back(getAffineDimExpr(d, ctx));
    SmallVector<AffineMap> maps{AffineMap::get(rank, 0, dims, ctx),
                                AffineMap::getMultiDimIdentityMap(rank, ctx)};
    SmallVector<utils::IteratorType> its(rank, utils::IteratorType::parallel);
    return b
        .create<linalg::GenericOp>(
            loc, batchedType, v, empty, maps, its,
            [](OpBuilder &nb, Location nloc, ValueRange args) {
              nb.create<linalg::YieldOp>(nloc, args[0]);
            })
        .getResult(0);
  }

  LogicalResult batchOp(Operation &op) {
    Location loc = op.getLoc();
    if (auto generic = dyn_cast<linalg::GenericOp>(op))
      return batchGeneric(generic);
    if (auto collapse = dyn_cast<tensor::CollapseShapeOp>(op)) {
      auto t = withBatch(batch, collapse.getResultType());
      map(collapse.getResult(),
          b.create<tensor::CollapseShapeOp>(loc, t, lookup(collapse.getSrc()),
                                            shifted(collapse.getReassociationIndices())));
      return success();
    }
    if (auto expand = dyn_cast<tensor::ExpandShapeOp>(op)) {
      auto t = withBatch(batch, expand.getResultType());
      map(expand.getResult(),
          b.create<tensor::ExpandShapeOp>(loc, t, lookup(expand.getSrc()),
                                          shifted(expand.getReassociationIndices())));
      return success();
    }
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
      if (!batched.contains(slice.getSource()) ||
          llvm::any_of(slice->getOperands().drop_front(),
                       [&](Value v) { return batched.contains(v); }))
        return op.emitOpError("cannot be batched: only its source may depend "
                              "on the sample");
      SmallVector<OpFoldResult> offsets{b.getIndexAttr(0)}, sizes{b.getIndexAttr(batch)},
          strides{b.getIndexAttr(1)};
      llvm::append_range(offsets, slice.getMixedOffsets());
      llvm::append_range(sizes, slice.getMixedSizes());
      llvm::append_range(strides, slice.getMixedStrides());
      auto t = withBatch(batch, slice.getResultType());
      map(slice.getResult(),
          b.create<tensor::ExtractSliceOp>(loc, t, lookup(slice.getSource()),
                                           offsets, sizes, strides));
      return success();
    }
    if (auto insert = dyn_cast<tensor::InsertSliceOp>(op)) {
      if (llvm::any_of(insert->getOperands().drop_front(2),
                       [&](Value v) { return batched.contains(v); }))
        return op.emitOpError("cannot be batched: its offsets and sizes may "
                              "not depend on the sample");
      SmallVector<OpFoldResult> offsets{b.getIndexAttr(0)}, sizes{b.getIndexAttr(batch)},
          strides{b.getIndexAttr(1)};
      llvm::append_range(offsets, insert.getMixedOffsets());
      llvm::append_range(sizes, insert.getMixedSizes());
      llvm::append_range(strides, insert.getMixedStrides());
      map(insert.getResult(),
          b.create<tensor::InsertSliceOp>(loc, perSample(insert.getSource()),
                                          perSample(insert.getDest()), offsets,
                                          sizes, strides));
      return success();
    }
    if (auto concat = dyn_cast<tensor::ConcatOp>(op)) {
      SmallVector<Value> inputs;
      for (Value v : concat.getInputs())
        inputs.push_back(perSample(v));
      map(concat.getResult(),
          b.create<tensor::ConcatOp>(loc, concat.getDim() + 1, inputs));
      return success();
    }
    return op.emitOpError("cannot be batched over samples (--batch-buckets "
                          "supports linalg ops, reshapes, extract_slice, "
                          "insert_slice and concat on per-sample values)");
  }

private:
  SmallVector<ReassociationIndices>
  shifted(ArrayRef<ReassociationIndices> groups) {
    SmallVector<ReassociationIndices> out{{0}};
    for (const ReassociationIndices &g : groups) {
      ReassociationIndices n;
      for (int64_t d : g)
        n.push_back(d + 1);
      out.push_back(n);
    }
    return out;
  }

  /// The batched version of a per-sample init that does not depend on the
  /// sample (an empty tensor, a fill): the same producer at the batched
  /// shape.
  FailureOr<Value> batchedInit(Value v, Operation *user) {
    auto t = withBatch(batch, v.getType());
    if (v.getDefiningOp<tensor::EmptyOp>())
      return b.create<tensor::EmptyOp>(user->getLoc(), t.getShape(),
                                       t.getElementType())
          .getResult();
    if (auto fill = v.getDefiningOp<linalg::GenericOp>()) {
      bool plain = fill.getNumDpsInits() == 1 &&
                   fill.getDpsInits()[0].getDefiningOp<tensor::EmptyOp>() &&
                   llvm::none_of(fill.getDpsInputs(), [](Value in) {
                     return isa<ShapedType>(in.getType());
                   });
      if (plain) {
        Value empty = b.create<tensor::EmptyOp>(fill.getLoc(), t.getShape(),
                                                t.getElementType());
        SmallVector<AffineMap> maps;
        for (AffineMap m : fill.getIndexingMapsArray())
          maps.push_back(m.shiftDims(1));
        SmallVector<AffineExpr> out{b.getAffineDimExpr(0)};
        llvm::append_range(out, maps.back().getResults());
        maps.back() = AffineMap::get(fill.getNumLoops() + 1, 0, out, b.getContext());
        SmallVector<utils::IteratorType> its{utils::IteratorType::parallel};
        llvm::append_range(its, fill.getIteratorTypesArray());
        auto op = b.create<linalg::GenericOp>(fill.getLoc(), TypeRange{t},
                                              fill.getDpsInputs(), ValueRange{empty},
                                              maps, its);
        IRMapping bodyMap;
        fill.getRegion().cloneInto(&op.getRegion(), bodyMap);
        op.getRegion().front().walk(
            [](linalg::IndexOp idx) { idx.setDim(idx.getDim() + 1); });
        return op.getResult(0);
      }
    }
    // Any other shared tensor (a broadcast bias a convolution accumulates
    // into): every sample starts from a copy of it.
    if (isa<RankedTensorType>(v.getType()))
      return perSample(v);
    return user->emitOpError("writes into a tensor that does not depend on "
                             "the sample and is not a ranked tensor; it "
                             "cannot be batched");
  }

  /// Whether `op` batches better folded: every tensor operand depends on
  /// the sample and loop 0 is a parallel loop that leads every operand and
  /// appears nowhere else (a batch_matmul of attention). Folding the
  /// samples into that loop keeps the op a 3-D batched contraction.
  bool foldable(linalg::GenericOp op) {
    if (op.getNumReductionLoops() == 0 ||
        op.getIteratorTypesArray()[0] != utils::IteratorType::parallel)
      return false;
    for (OpOperand &operand : op->getOpOperands()) {
      if (!batched.contains(operand.get()) && !op.isDpsInit(&operand))
        return false;
      AffineMap m = op.getMatchingIndexingMap(&operand);
      if (m.getNumResults() == 0 || m.getResult(0) != b.getAffineDimExpr(0))
        return false;
      for (AffineExpr e : m.getResults().drop_front())
        if (e.isFunctionOfDim(0))
          return false;
    }
    bool usesIndex0 = false;
    op.getBody()->walk([&](linalg::IndexOp idx) { usesIndex0 |= idx.getDim() == 0; });
    return !usesIndex0;
  }

  LogicalResult batchGeneric(linalg::GenericOp op) {
    Location loc = op.getLoc();
    MLIRContext *ctx = b.getContext();
    // A per-sample tensor read inside the body is fine as the table of a
    // tensor.extract (a gather): the batched op reads the sample's row.
    bool gathersPerSample = false;
    for (Operation &inner : op.getBody()->getOperations())
      for (OpOperand &use : inner.getOpOperands()) {
        if (!batched.contains(use.get()))
          continue;
        if (!isa<tensor::ExtractOp>(inner) || use.getOperandNumber() != 0)
          return op.emitOpError("reads a per-sample tensor inside its body; "
                                "it cannot be batched");
        gathersPerSample = true;
      }
    SmallVector<Value> inits;
    for (Value init : op.getDpsInits()) {
      if (batched.contains(init)) {
        inits.push_back(lookup(init));
        continue;
      }
      FailureOr<Value> v = batchedInit(init, op);
      if (failed(v))
        return failure();
      inits.push_back(*v);
    }
    if (!gathersPerSample && foldable(op)) {
      // [batch, d0, ...] -> [batch * d0, ...], the op, and back.
      auto collapse = [&](Value v) {
        return dyncc::exit::flattenLeading(b, loc, v);
      };
      SmallVector<Value> ins, outs;
      for (Value in : op.getDpsInputs())
        ins.push_back(collapse(lookup(in)));
      for (Value init : inits)
        outs.push_back(collapse(init));
      SmallVector<Type> types;
      for (Value o : outs)
        types.push_back(o.getType());
      auto folded = b.create<linalg::GenericOp>(loc, types, ins, outs,
                                                op.getIndexingMapsArray(),
                                                op.getIteratorTypesArray());
      IRMapping bodyMap;
      op.getRegion().cloneInto(&folded.getRegion(), bodyMap);
      for (auto [r, init] : llvm::zip(op.getResults(), inits)) {
        auto t = cast<RankedTensorType>(init.getType());
        SmallVector<ReassociationIndices> groups{{0, 1}};
        for (int64_t d = 2; d < t.getRank(); ++d)
          groups.push_back({d});
        map(r, b.create<tensor::ExpandShapeOp>(
                   loc, t, folded.getResult(r.getResultNumber()), groups));
      }
      return success();
    }
    AffineExpr d0 = getAffineDimExpr(0, ctx);
    unsigned loops = op.getNumLoops();
    SmallVector<Value> ins;
    SmallVector<AffineMap> maps;
    for (OpOperand *operand : op.getDpsInputOperands()) {
      AffineMap m = op.getMatchingIndexingMap(operand).shiftDims(1);
      if (batched.contains(operand->get())) {
        SmallVector<AffineExpr> results{d0};
        llvm::append_range(results, m.getResults());
        m = AffineMap::get(loops + 1, 0, results, ctx);
      }
      ins.push_back(lookup(operand->get()));
      maps.push_back(m);
    }
    for (OpOperand &operand : op.getDpsInitsMutable()) {
      AffineMap m = op.getMatchingIndexingMap(&operand).shiftDims(1);
      SmallVector<AffineExpr> results{d0};
      llvm::append_range(results, m.getResults());
      maps.push_back(AffineMap::get(loops + 1, 0, results, ctx));
    }
    SmallVector<Type> types;
    for (Value init : inits)
      types.push_back(init.getType());
    SmallVector<utils::IteratorType> its{utils::IteratorType::parallel};
    llvm::append_range(its, op.getIteratorTypesArray());
    auto out = b.create<linalg::GenericOp>(loc, types, ins, inits, maps, its);
    IRMapping bodyMap;
    op.getRegion().cloneInto(&out.getRegion(), bodyMap);
    out.getRegion().front().walk(
        [](linalg::IndexOp idx) { idx.setDim(idx.getDim() + 1); });
    // Gathers from per-sample tables read the row of the current sample.
    SmallVector<tensor::ExtractOp> gathers;
    out.getRegion().front().walk([&](tensor::ExtractOp ex) {
      if (batched.contains(ex.getTensor()))
        gathers.push_back(ex);
    });
    for (tensor::ExtractOp ex : gathers) {
      OpBuilder inner(ex);
      SmallVector<Value> indices{
          inner.create<linalg::IndexOp>(ex.getLoc(), 0).getResult()};
      llvm::append_range(indices, ex.getIndices());
      ex.replaceAllUsesWith(inner.create<tensor::ExtractOp>(
          ex.getLoc(), lookup(ex.getTensor()), indices).getResult());
      ex.erase();
    }
    for (auto [r, nr] : llvm::zip(op.getResults(), out.getResults()))
      map(r, nr);
    return success();
  }
};

/// One stage of the batched network: the ops of a segment between exit
/// points and the exit point that ends it (none for the last stage).
struct Stage {
  SmallVector<Operation *> ops;
  ExitIfOp exit;  // null for the last stage
  Value logits;   // the stage's logits (the exit's, or the final result)
};

/// What flows from stage to stage, at full size ([max_batch, ...]): the
/// compaction state, the merged logits and exit layers, the per-sample
/// values later stages use (`keys`: the per-sample values, `full`: their
/// batched versions) and the memory of the criteria (patience, votes).
struct Flow {
  Value state, outZ, outL;
  SmallVector<Value> keys, full;
  Value memPrev, memCount, memVotes;
};

struct DynBatchBucketsPass
    : public dyncc::impl::DynBatchBucketsBase<DynBatchBucketsPass> {
  using DynBatchBucketsBase::DynBatchBucketsBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (buckets.empty())
      return;
    SmallVector<int64_t> sizes(buckets.begin(), buckets.end());
    for (size_t i = 0; i < sizes.size(); ++i)
      if (sizes[i] < 1 || (i > 0 && sizes[i] <= sizes[i - 1])) {
        module.emitError("--batch-buckets must be ascending positive sizes, "
                         "got ")
            << fmt::format("{}", fmt::join(sizes, ","));
        return signalPassFailure();
      }
    if (policy() < 0) {
      module.emitError("--compaction must be never, always or auto, got '")
          << compaction << "'";
      return signalPassFailure();
    }
    SmallVector<func::FuncOp> entries;
    for (func::FuncOp fn : module.getOps<func::FuncOp>())
      if (fn.isPublic() && !fn.isExternal())
        entries.push_back(fn);
    if (entries.size() != 1) {
      module.emitError("--batch-buckets needs exactly one public function "
                       "(the per-sample model), found ")
          << entries.size();
      return signalPassFailure();
    }
    if (sampleLoop) {
      // The second run: a model the first one marked, its exits lowered.
      if (!module->removeAttr(kSampleLoopAttrName))
        return;
      if (failed(loopSamples(entries[0], sizes.back())))
        return signalPassFailure();
      return;
    }
    if (failed(batchFunction(entries[0], sizes)))
      return signalPassFailure();
  }

  static constexpr llvm::StringLiteral kSampleLoopAttrName = "dyn.batch_sample_loop";

  /// Whether the exit points of `fn` cut it into stages: none, or one chain
  /// of sample-level exit points, each the last op of its block and its
  /// result the only value the block returns.
  static bool cutsIntoStages(func::FuncOp fn) {
    int64_t total = 0, onChain = 0;
    fn.walk([&](ExitIfOp) { ++total; });
    Block *block = &fn.getBody().front();
    while (true) {
      ExitIfOp exit;
      for (Operation &op : block->without_terminator()) {
        if (exit)
          return false; // an op after the exit point
        if (auto e = dyn_cast<ExitIfOp>(op)) {
          if (e.isTokenLevel())
            return false;
          exit = e;
        }
      }
      if (!exit)
        return onChain == total;
      ++onChain;
      Operation *term = block->getTerminator();
      if (term->getNumOperands() != 1 || term->getOperand(0) != exit.getResult())
        return false;
      block = &exit.getBody().front();
    }
  }

  int policy() const {
    if (compaction == "never")
      return 0;
    if (compaction == "always")
      return 1;
    if (compaction == "auto")
      return 2;
    return -1;
  }

  llvm::StringMap<Value> params;

  Value paramValue(func::FuncOp fn, RuntimeParamAttr p) {
    return dyncc::exit::runtimeParamArgument(fn, p, params);
  }

  /// Cuts the body of `fn` into stages at its exit chain, whose structure
  /// cutsIntoStages has checked (one sample-level chain, each exit point the
  /// last op of its block, its result the only value returned).
  LogicalResult collectStages(func::FuncOp fn, SmallVector<Stage> &stages) {
    Block *block = &fn.getBody().front();
    while (true) {
      Stage stage;
      for (Operation &op : block->without_terminator()) {
        if (auto e = dyn_cast<ExitIfOp>(op))
          stage.exit = e;
        else
          stage.ops.push_back(&op);
      }
      if (!stage.exit) {
        Operation *term = block->getTerminator();
        if (term->getNumOperands() != 1)
          return term->emitError("--batch-buckets: the model must return one "
                                 "value (its logits)");
        stage.logits = term->getOperand(0);
        stages.push_back(stage);
        return success();
      }
      stage.logits = stage.exit.getLogits();
      stages.push_back(stage);
      block = &stage.exit.getBody().front();
    }
  }

  /// The per-sample inputs of `fn`: arguments that are neither weights nor
  /// runtime parameters.
  static FailureOr<SmallVector<BlockArgument>> sampleArguments(func::FuncOp fn) {
    SmallVector<BlockArgument> out;
    for (BlockArgument arg : fn.getArguments()) {
      unsigned i = arg.getArgNumber();
      if (fn.getArgAttr(i, "dyn.weight") || fn.getArgAttr(i, dyncc::kParamAttrName))
        continue;
      if (!isa<RankedTensorType>(arg.getType()))
        return fn.emitError("--batch-buckets: input ")
               << i << " must be a ranked tensor";
      out.push_back(arg);
    }
    if (out.empty())
      return fn.emitError("--batch-buckets: the model has no per-sample input");
    return out;
  }

  /// Adds the batched version of every per-sample input and the count
  /// argument; returns the count.
  static Value addBatchArguments(func::FuncOp fn, ArrayRef<BlockArgument> sampleArgs,
                                 int64_t maxBatch,
                                 llvm::DenseMap<Value, Value> &fullOf) {
    MLIRContext *ctx = fn.getContext();
    for (BlockArgument arg : sampleArgs) {
      unsigned index = fn.getNumArguments();
      fn.insertArgument(index, withBatch(maxBatch, arg.getType()),
                        fn.getArgAttrDict(arg.getArgNumber()), arg.getLoc());
      fullOf[arg] = fn.getArgument(index);
    }
    unsigned countIndex = fn.getNumArguments();
    fn.insertArgument(countIndex,
                      RankedTensorType::get({1}, IntegerType::get(ctx, 32)), {},
                      fn.getLoc());
    fn.setArgAttr(countIndex, kBatchCountAttr, UnitAttr::get(ctx));
    return fn.getArgument(countIndex);
  }

  /// A builtin of the compaction family (dynrt.h DYNRT_BUILTIN_BATCH_COMPACT).
  static func::FuncOp declareBuiltin(func::FuncOp fn, StringRef name,
                                     TypeRange args, TypeRange results,
                                     ArrayRef<double> config) {
    OpBuilder mb(fn);
    MLIRContext *ctx = fn.getContext();
    auto decl = mb.create<func::FuncOp>(fn.getLoc(), name,
                                        FunctionType::get(ctx, args, results));
    decl.setPrivate();
    decl->setAttr(dyncc::kKernelAttrName, mb.getStringAttr("builtin"));
    decl->setAttr("dyn.builtin", mb.getI32IntegerAttr(kBuiltinBatchCompact));
    decl->setAttr("dyn.config", mb.getDenseF64ArrayAttr(config));
    return decl;
  }

  /// The end of both forms: the per-sample inputs go (their batched
  /// versions stay), the function returns `results`, and the module records
  /// the buckets and stages for the library's descriptor.
  static void finishSignature(func::FuncOp fn, ArrayRef<BlockArgument> sampleArgs,
                              TypeRange results, ArrayRef<int64_t> buckets,
                              int64_t numStages) {
    llvm::BitVector erase(fn.getNumArguments());
    for (BlockArgument arg : sampleArgs)
      erase.set(arg.getArgNumber());
    fn.eraseArguments(erase);
    MLIRContext *ctx = fn.getContext();
    fn.setFunctionType(FunctionType::get(ctx, fn.getArgumentTypes(), results));
    SmallVector<int32_t> sizes(buckets.begin(), buckets.end());
    ModuleOp module = fn->getParentOfType<ModuleOp>();
    module->setAttr("dyn.batch_buckets", DenseI32ArrayAttr::get(ctx, sizes));
    module->setAttr("dyn.batch_stages",
                    IntegerAttr::get(IntegerType::get(ctx, 32), numStages));
  }

  /// Models whose ops cannot be batched over samples (a dyn.skip loop moves
  /// each sample its own way; a dyn.route balances a sample's tokens): the
  /// samples of a request run one after another in an scf.while, each
  /// exactly as alone, its outputs written to its row. A builtin call at
  /// the start of each sample tells the runtime which sample runs (skip
  /// budgets and traces are per sample).
  LogicalResult loopSamples(func::FuncOp fn, int64_t maxBatch) {
    MLIRContext *ctx = fn.getContext();
    Location loc = fn.getLoc();
    FailureOr<SmallVector<BlockArgument>> sampleArgs = sampleArguments(fn);
    if (failed(sampleArgs))
      return failure();
    Block &entry = fn.getBody().front();
    SmallVector<Operation *> body;
    for (Operation &op : entry.without_terminator())
      body.push_back(&op);
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    for (Value r : ret.getOperands())
      if (!isa<RankedTensorType>(r.getType()))
        return ret.emitError("--batch-buckets: results must be ranked tensors");
    llvm::DenseMap<Value, Value> fullOf;
    Value count = addBatchArguments(fn, *sampleArgs, maxBatch, fullOf);

    OpBuilder b(ret);
    Type i32 = b.getI32Type(), indexType = b.getIndexType();
    SmallVector<double> config(kCfgCount, 0.0);
    config[kCfgMode] = 2;
    config[kCfgMaxBatch] = maxBatch;
    auto sampleDecl = declareBuiltin(fn, fn.getSymName().str() + "_batch_sample",
                                     {RankedTensorType::get({1}, i32)}, {}, config);
    Value n = b.create<arith::IndexCastOp>(
        loc, indexType,
        b.create<tensor::ExtractOp>(
            loc, count, ValueRange{b.create<arith::ConstantIndexOp>(loc, 0)}));
    SmallVector<Value> inits{b.create<arith::ConstantIndexOp>(loc, 0)};
    for (Value r : ret.getOperands()) {
      auto t = withBatch(maxBatch, r.getType());
      dyncc::exit::Builder g(b, loc, maxBatch, 1);
      inits.push_back(g.fill(t.getShape(), b.getZeroAttr(t.getElementType())));
    }
    SmallVector<Type> types = llvm::to_vector(ValueRange(inits).getTypes());
    auto loop = b.create<scf::WhileOp>(loc, types, inits);
    {
      Block *before = b.createBlock(&loop.getBefore(), {}, types,
                                    SmallVector<Location>(types.size(), loc));
      OpBuilder bb = OpBuilder::atBlockBegin(before);
      Value go = bb.create<arith::CmpIOp>(loc, arith::CmpIPredicate::slt,
                                          before->getArgument(0), n);
      bb.create<scf::ConditionOp>(loc, go, before->getArguments());
    }
    Block *after = b.createBlock(&loop.getAfter(), {}, types,
                                 SmallVector<Location>(types.size(), loc));
    OpBuilder ab = OpBuilder::atBlockBegin(after);
    Value i = after->getArgument(0);
    Value it = ab.create<tensor::FromElementsOp>(
        loc, RankedTensorType::get({1}, i32),
        ValueRange{ab.create<arith::IndexCastOp>(loc, i32, i)});
    ab.create<func::CallOp>(loc, sampleDecl, ValueRange{it});
    IRMapping mapping;
    for (BlockArgument arg : *sampleArgs) {
      // x[...] = full[it[0], ...]
      auto t = cast<RankedTensorType>(arg.getType());
      unsigned rank = t.getRank();
      Value full = fullOf.lookup(arg);
      Value init = ab.create<tensor::EmptyOp>(loc, t.getShape(), t.getElementType());
      Value x = ab.create<linalg::GenericOp>(
                      loc, t, it, init,
                      ArrayRef<AffineMap>{
                          AffineMap::get(rank, 0, {getAffineConstantExpr(0, ctx)}, ctx),
                          ab.getMultiDimIdentityMap(rank)},
                      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
                      [&](OpBuilder &nb, Location l, ValueRange a) {
                        SmallVector<Value> at{
                            nb.create<arith::IndexCastOp>(l, nb.getIndexType(), a[0])};
                        for (unsigned d = 0; d < rank; ++d)
                          at.push_back(nb.create<linalg::IndexOp>(l, d));
                        nb.create<linalg::YieldOp>(
                            l, nb.create<tensor::ExtractOp>(l, full, at).getResult());
                      })
                    .getResult(0);
      mapping.map(arg, x);
    }
    for (Operation *op : body)
      ab.clone(*op, mapping);
    SmallVector<Value> yields{ab.create<arith::AddIOp>(
        loc, i, ab.create<arith::ConstantIndexOp>(loc, 1))};
    for (auto [k, r] : llvm::enumerate(ret.getOperands())) {
      // out[j, ...] = j == it[0] ? y[...] : out[j, ...]
      Value y = mapping.lookupOrDefault(r);
      Value out = after->getArgument(k + 1);
      auto t = cast<RankedTensorType>(out.getType());
      unsigned rank = t.getRank();
      SmallVector<AffineExpr> rest;
      for (unsigned d = 1; d < rank; ++d)
        rest.push_back(getAffineDimExpr(d, ctx));
      Value init = ab.create<tensor::EmptyOp>(loc, t.getShape(), t.getElementType());
      Value w = ab.create<linalg::GenericOp>(
                      loc, t, ValueRange{out, y, it}, init,
                      ArrayRef<AffineMap>{ab.getMultiDimIdentityMap(rank),
                                          AffineMap::get(rank, 0, rest, ctx),
                                          AffineMap::get(rank, 0, {getAffineConstantExpr(0, ctx)}, ctx),
                                          ab.getMultiDimIdentityMap(rank)},
                      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
                      [&](OpBuilder &nb, Location l, ValueRange a) {
                        Value j = nb.create<arith::IndexCastOp>(
                            l, nb.getI32Type(), nb.create<linalg::IndexOp>(l, 0));
                        Value here = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq, j, a[2]);
                        nb.create<linalg::YieldOp>(
                            l, nb.create<arith::SelectOp>(l, here, a[1], a[0]).getResult());
                      })
                    .getResult(0);
      yields.push_back(w);
    }
    ab.create<scf::YieldOp>(loc, yields);

    b.setInsertionPoint(ret);
    b.create<func::ReturnOp>(loc, loop.getResults().drop_front());
    ret.erase();
    for (Operation *op : llvm::reverse(body))
      op->erase();
    finishSignature(fn, *sampleArgs, loop.getResults().drop_front().getTypes(),
                    {maxBatch}, /*numStages=*/0);
    return success();
  }

  LogicalResult batchFunction(func::FuncOp fn, ArrayRef<int64_t> sizes) {
    params.clear();
    MLIRContext *ctx = fn.getContext();
    Location loc = fn.getLoc();
    int64_t maxBatch = sizes.back();
    bool loopOps = false, exits = false;
    fn.walk([&](Operation *op) {
      loopOps |= isa<SkipOp, RouteOp>(op);
      exits |= isa<ExitIfOp>(op);
    });
    if (exits && (loopOps || !cutsIntoStages(fn))) {
      // Sample after sample, once -dyn-lower-exit-if has made the exit
      // layers results (the second run of this pass).
      fn->getParentOfType<ModuleOp>()->setAttr(kSampleLoopAttrName,
                                               UnitAttr::get(ctx));
      return success();
    }
    if (loopOps)
      return loopSamples(fn, maxBatch);
    if (fn.getNumResults() != 1)
      return fn.emitError("--batch-buckets: the model must return one value "
                          "(its logits, or its output)");

    // One form to batch: generics (named ops generalized, softmax
    // decomposed).
    if (failed(dyncc::generalizeLinalg(fn)))
      return failure();
    WalkResult calls = fn.walk([&](func::CallOp call) {
      call.emitError("--batch-buckets needs every call inlined (this one "
                     "was not)");
      return WalkResult::interrupt();
    });
    if (calls.wasInterrupted())
      return failure();

    SmallVector<Stage> stages;
    if (failed(collectStages(fn, stages)))
      return failure();
    int64_t numStages = stages.size();

    // Which values depend on the sample: the non-weight, non-param inputs
    // and everything computed from them.
    FailureOr<SmallVector<BlockArgument>> sampleArgsOr = sampleArguments(fn);
    if (failed(sampleArgsOr))
      return failure();
    SmallVector<BlockArgument> sampleArgs = *sampleArgsOr;
    llvm::DenseSet<Value> perSample(sampleArgs.begin(), sampleArgs.end());
    auto dependsOnSample = [&](Operation *op) {
      bool dep = false;
      op->walk([&](Operation *inner) {
        for (Value v : inner->getOperands())
          dep |= perSample.contains(v);
      });
      return dep;
    };
    // The stage of each per-sample value's last use; ops that do not depend
    // on the sample move to the top, computed once.
    llvm::DenseMap<Value, int64_t> lastUse;
    Block &entry = fn.getBody().front();
    for (Stage &stage : stages) {
      SmallVector<Operation *> kept;
      for (Operation *op : stage.ops) {
        if (!dependsOnSample(op)) {
          // Computed once, before the stages (in program order).
          if (op->getBlock() != &entry)
            op->moveBefore(entry.getTerminator());
          continue;
        }
        perSample.insert(op->result_begin(), op->result_end());
        kept.push_back(op);
      }
      stage.ops = kept;
    }
    auto use = [&](Value v, int64_t s) {
      if (!perSample.contains(v))
        return;
      auto it = lastUse.find(v);
      if (it == lastUse.end() || it->second < s)
        lastUse[v] = s;
    };
    for (auto [s, stage] : llvm::enumerate(stages)) {
      for (Operation *op : stage.ops)
        op->walk([&](Operation *inner) {
          for (Value v : inner->getOperands())
            use(v, s);
        });
      use(stage.logits, s);
      if (stage.exit && stage.exit.getScore())
        use(stage.exit.getScore(), s);
    }
    if (!perSample.contains(stages.back().logits))
      return fn.emitError("--batch-buckets: the model's result does not "
                          "depend on its inputs");
    // Values carried into stage s (defined before it, used in it or later).
    auto carriedInto = [&](int64_t s) {
      SmallVector<Value> out;
      for (BlockArgument arg : sampleArgs)
        if (lastUse.count(arg) && lastUse[arg] >= s)
          out.push_back(arg);
      for (auto [s2, stage] : llvm::enumerate(stages)) {
        if ((int64_t)s2 >= s)
          break;
        for (Operation *op : stage.ops)
          for (Value r : op->getResults())
            if (lastUse.count(r) && lastUse[r] >= s)
              out.push_back(r);
      }
      return out;
    };

    // The result of a sample, merged as a row of `classes` values: the
    // logits ([C] or [1, C]) of an exit chain, any shape without one.
    auto zType = cast<RankedTensorType>(stages.back().logits.getType());
    int64_t classes = zType.getNumElements();
    bool hasExits = numStages > 1;
    // The final classifier's layer: one past the innermost exit point.
    int64_t finalLayer = hasExits ? stages[numStages - 2].exit.getLayer() + 1 : 1;
    if (hasExits) {
      if (zType.getRank() > 2 || (zType.getRank() == 2 && zType.getDimSize(0) != 1) ||
          zType.getRank() == 0)
        return stages.front().exit.emitError(
            "--batch-buckets: a sample's logits must be [C] or [1, C], got ")
               << zType;
    }

    // The new arguments: batched inputs, the count.
    OpBuilder b = OpBuilder::atBlockTerminator(&entry);
    Type i32 = b.getI32Type(), i1 = b.getI1Type();
    llvm::DenseMap<Value, Value> fullOf; // per-sample value -> [maxBatch] version
    Value count = addBatchArguments(fn, sampleArgs, maxBatch, fullOf);

    // Builtin declarations.
    int64_t stSize = stateSize(maxBatch);
    auto stType = RankedTensorType::get({stSize}, i32);
    auto flagsType = RankedTensorType::get({maxBatch}, i1);
    auto declare = [&](std::string name, TypeRange args, SmallVector<double> config) {
      return declareBuiltin(fn, name, args, {stType}, config);
    };
    std::string base = fn.getSymName().str();
    SmallVector<double> initConfig(kCfgCount, 0.0);
    initConfig[kCfgMode] = 0;
    initConfig[kCfgMaxBatch] = maxBatch;
    initConfig[kCfgPolicy] = policy();
    auto initDecl = declare(base + "_batch_init", {count.getType()}, initConfig);

    // Cost model inputs: iterations per sample of each stage, bytes per
    // sample carried after it.
    SmallVector<double> stageCost(numStages, 0.0);
    for (auto [s, stage] : llvm::enumerate(stages))
      for (Operation *op : stage.ops)
        op->walk([&](linalg::GenericOp g) {
          double n = 1;
          for (int64_t r : g.getStaticLoopRanges())
            n *= (double)std::max<int64_t>(r, 1);
          stageCost[s] += n;
        });
    auto bytesOf = [](Value v) {
      auto t = cast<RankedTensorType>(v.getType());
      return (double)t.getNumElements() *
             std::max<unsigned>(1, t.getElementTypeBitWidth() / 8);
    };

    Flow flow;
    flow.state = b.create<func::CallOp>(loc, initDecl, ValueRange{count}).getResult(0);
    dyncc::exit::Builder top0(b, loc, maxBatch, classes);
    flow.outZ = top0.fill({maxBatch, classes}, b.getZeroAttr(zType.getElementType()));
    flow.outL = top0.fill({maxBatch}, b.getI32IntegerAttr(0));
    flow.keys = carriedInto(0);
    for (Value v : flow.keys)
      flow.full.push_back(fullOf.lookup(v));

    for (int64_t s = 0; s < numStages; ++s) {
      Stage &stage = stages[s];
      SmallVector<Value> nextKeys = s + 1 < numStages ? carriedInto(s + 1) : SmallVector<Value>{};
      // Memory of the criteria after this stage's exit point: which exist.
      bool isPatience = stage.exit && isa<PatienceCriterionAttr>(stage.exit.getCriterion());
      bool isVotes = stage.exit && isa<VotesCriterionAttr>(stage.exit.getCriterion());
      bool hasPrev = flow.memPrev || isPatience,
           hasVotes = flow.memVotes || isVotes;

      SmallVector<Type> types{stType, flow.outZ.getType(), flow.outL.getType()};
      for (Value v : nextKeys)
        types.push_back(withBatch(maxBatch, v.getType()));
      if (hasPrev) {
        types.push_back(RankedTensorType::get({maxBatch}, b.getI64Type()));
        types.push_back(RankedTensorType::get({maxBatch}, b.getI64Type()));
      }
      if (hasVotes)
        types.push_back(RankedTensorType::get({maxBatch, classes}, b.getF32Type()));

      // The step builtin of this stage.
      SmallVector<double> config(kCfgCount, 0.0);
      config[kCfgMode] = 1;
      config[kCfgStage] = s;
      config[kCfgMaxBatch] = maxBatch;
      config[kCfgPolicy] = policy();
      for (Value v : nextKeys)
        config[kCfgGatherCost] += bytesOf(v);
      for (int64_t r = s + 1; r < numStages; ++r)
        config[kCfgRemaining] += stageCost[r];
      auto stepDecl = declare(fmt::format("{}_batch_step{}", base, s),
                              {flagsType, stType}, config);

      Value k = b.create<arith::IndexCastOp>(
          loc, b.getIndexType(),
          b.create<tensor::ExtractOp>(
              loc, flow.state, ValueRange{b.create<arith::ConstantIndexOp>(loc, 1)}));
      SmallVector<int64_t> caseValues;
      for (size_t c = 0; c < sizes.size(); ++c)
        caseValues.push_back(c);
      auto sw = b.create<scf::IndexSwitchOp>(loc, types, k, caseValues,
                                             caseValues.size());
      // Default: every sample exited; nothing runs.
      {
        Block &blk = sw.getDefaultRegion().emplaceBlock();
        OpBuilder db = OpBuilder::atBlockBegin(&blk);
        dyncc::exit::Builder dg(db, loc, maxBatch, classes);
        SmallVector<Value> yields{flow.state, flow.outZ, flow.outL};
        for (Value v : nextKeys) {
          auto it = llvm::find(flow.keys, v);
          if (it != flow.keys.end()) {
            yields.push_back(flow.full[it - flow.keys.begin()]);
            continue;
          }
          auto t = withBatch(maxBatch, v.getType());
          yields.push_back(dg.fill(t.getShape(), db.getZeroAttr(t.getElementType())));
        }
        if (hasPrev) {
          yields.push_back(flow.memPrev ? flow.memPrev : dg.fill({maxBatch}, db.getI64IntegerAttr(0)));
          yields.push_back(flow.memCount ? flow.memCount : dg.fill({maxBatch}, db.getI64IntegerAttr(0)));
        }
        if (hasVotes)
          yields.push_back(flow.memVotes ? flow.memVotes
                                    : dg.fill({maxBatch, classes}, db.getF32FloatAttr(0)));
        db.create<scf::YieldOp>(loc, yields);
      }
      for (auto [c, size] : llvm::enumerate(sizes)) {
        Block &blk = sw.getCaseRegions()[c].emplaceBlock();
        OpBuilder cb = OpBuilder::atBlockBegin(&blk);
        SmallVector<Value> yields;
        if (failed(buildCase(cb, fn, stage, size, maxBatch, classes, flow,
                             nextKeys, hasPrev, hasVotes, finalLayer, stepDecl,
                             yields)))
          return failure();
        cb.create<scf::YieldOp>(loc, yields);
      }
      flow.state = sw.getResult(0);
      flow.outZ = sw.getResult(1);
      flow.outL = sw.getResult(2);
      flow.keys = nextKeys;
      flow.full.clear();
      unsigned r = 3;
      for (size_t i = 0; i < nextKeys.size(); ++i)
        flow.full.push_back(sw.getResult(r++));
      if (hasPrev) {
        flow.memPrev = sw.getResult(r++);
        flow.memCount = sw.getResult(r++);
      }
      if (hasVotes)
        flow.memVotes = sw.getResult(r++);
    }

    // The results: the logits in the per-sample shape, batched, and the exit
    // layers.
    SmallVector<Value> results;
    auto outType = withBatch(maxBatch, zType);
    Value z = flow.outZ; // [maxBatch, classes]
    if (zType.getRank() == 0) {
      z = b.create<tensor::CollapseShapeOp>(
          loc, outType, z, SmallVector<ReassociationIndices>{{0, 1}});
    } else if (zType.getRank() > 1) {
      ReassociationIndices inner;
      for (int64_t d = 1; d <= zType.getRank(); ++d)
        inner.push_back(d);
      z = b.create<tensor::ExpandShapeOp>(
          loc, outType, z, SmallVector<ReassociationIndices>{{0}, inner});
    }
    results.push_back(z);
    if (hasExits)
      results.push_back(flow.outL);
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    DictionaryAttr resultAttrs = fn.getResultAttrDict(0);

    // Remove the per-sample body: the chain and the ops that depended on
    // the sample (the hoisted ones stay).
    b.setInsertionPoint(ret);
    b.create<func::ReturnOp>(loc, results);
    ret.erase();
    if (hasExits)
      stages.front().exit.erase();
    for (Operation *op : llvm::reverse(stages.front().ops))
      op->erase();
    SmallVector<Type> resultTypes{outType};
    if (hasExits)
      resultTypes.push_back(flow.outL.getType());
    finishSignature(fn, sampleArgs, resultTypes, sizes, numStages);
    if (resultAttrs)
      fn.setResultAttrs(0, resultAttrs);
    if (hasExits)
      fn.setResultAttr(1, kNameAttr, StringAttr::get(ctx, "exit_layer"));
    return success();
  }

  /// out[i, ...] = v[min(src[i], size - 1), ...] with src = st[4 + B + i]:
  /// the carried value of the bucket back at full size, compacted.
  Value gatherFull(OpBuilder &b, Location loc, Value v, Value st, int64_t size,
                   int64_t maxBatch) {
    auto t = cast<RankedTensorType>(v.getType());
    auto full = withBatch(maxBatch, RankedTensorType::get(t.getShape().drop_front(),
                                                          t.getElementType()));
    unsigned rank = full.getRank();
    Value init = b.create<tensor::EmptyOp>(loc, full.getShape(), full.getElementType());
    auto g = b.create<linalg::GenericOp>(
        loc, TypeRange{full}, ValueRange{}, ValueRange{init},
        ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, b.getContext())},
        SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
        [&](OpBuilder &nb, Location l, ValueRange) {
          Value i = nb.create<linalg::IndexOp>(l, 0);
          Value at = nb.create<arith::AddIOp>(
              l, i, nb.create<arith::ConstantIndexOp>(l, 4 + maxBatch));
          Value src = nb.create<arith::IndexCastOp>(
              l, nb.getIndexType(), nb.create<tensor::ExtractOp>(l, st, ValueRange{at}));
          Value last = nb.create<arith::ConstantIndexOp>(l, size - 1);
          Value zero = nb.create<arith::ConstantIndexOp>(l, 0);
          src = minIndex(nb, l, maxIndex(nb, l, src, zero), last);
          SmallVector<Value> idx{src};
          for (unsigned d = 1; d < rank; ++d)
            idx.push_back(nb.create<linalg::IndexOp>(l, d));
          nb.create<linalg::YieldOp>(l, nb.create<tensor::ExtractOp>(l, v, idx).getResult());
        });
    return g.getResult(0);
  }

  /// The first `size` samples of a full-size value.
  static Value prefix(OpBuilder &b, Location loc, Value full, int64_t size) {
    auto t = cast<RankedTensorType>(full.getType());
    if (t.getDimSize(0) == size)
      return full;
    SmallVector<OpFoldResult> offsets(t.getRank(), b.getIndexAttr(0)),
        strides(t.getRank(), b.getIndexAttr(1)), sizes;
    sizes.push_back(b.getIndexAttr(size));
    for (int64_t d : t.getShape().drop_front())
      sizes.push_back(b.getIndexAttr(d));
    SmallVector<int64_t> shape{size};
    llvm::append_range(shape, t.getShape().drop_front());
    return b.create<tensor::ExtractSliceOp>(
        loc, RankedTensorType::get(shape, t.getElementType()), full, offsets,
        sizes, strides);
  }

  /// Rows [size, ...] collapsed to [size, inner] (inner = the product).
  static Value rows2d(OpBuilder &b, Location loc, Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() == 2)
      return v;
    int64_t inner = 1;
    ReassociationIndices rest;
    for (int64_t d = 1; d < t.getRank(); ++d) {
      inner *= t.getDimSize(d);
      rest.push_back(d);
    }
    if (t.getRank() == 1)
      return b.create<tensor::ExpandShapeOp>(
          loc, RankedTensorType::get({t.getDimSize(0), 1}, t.getElementType()), v,
          SmallVector<ReassociationIndices>{{0, 1}});
    return b.create<tensor::CollapseShapeOp>(
        loc, RankedTensorType::get({t.getDimSize(0), inner}, t.getElementType()),
        v, SmallVector<ReassociationIndices>{{0}, rest});
  }

  /// One case of a stage's switch: the stage batched to `size` samples,
  /// its exit decision, the merge of the exiting samples' results, the
  /// compaction step and the gather of what flows on; `yields` gets the
  /// case's results.
  LogicalResult buildCase(OpBuilder &b, func::FuncOp fn, Stage &stage,
                          int64_t size, int64_t maxBatch, int64_t classes,
                          const Flow &flow, ArrayRef<Value> nextKeys,
                          bool hasPrev, bool hasVotes, int64_t finalLayer,
                          func::FuncOp stepDecl, SmallVector<Value> &yields) {
    Value state = flow.state;
    Location loc = stage.logits.getLoc();
    SampleBatcher batcher(b, size);
    for (auto [key, full] : llvm::zip(flow.keys, flow.full))
      batcher.map(key, prefix(b, loc, full, size));
    for (Operation *op : stage.ops)
      if (failed(batcher.batchOp(*op)))
        return failure();
    Value z = rows2d(b, loc, batcher.lookup(stage.logits));
    dyncc::exit::Builder g(b, loc, size, classes);
    Type i1 = b.getI1Type();

    // This stage's exit flag of every slot ([maxBatch] i1; the last stage
    // retires everyone).
    Value flags;
    dyncc::exit::ChainState chain;
    if (flow.memPrev) {
      chain.prevClass = prefix(b, loc, flow.memPrev, size);
      chain.count = prefix(b, loc, flow.memCount, size);
    }
    if (flow.memVotes)
      chain.votes = prefix(b, loc, flow.memVotes, size);
    if (stage.exit) {
      Value score = stage.exit.getScore() ? rows2d(b, loc, batcher.lookup(stage.exit.getScore()))
                                          : Value();
      FailureOr<Value> f = dyncc::exit::buildExitFlags(
          stage.exit, g, chain, z, score,
          [&](RuntimeParamAttr p) { return paramValue(fn, p); });
      if (failed(f))
        return failure();
      Value fb = *f;
      dyncc::exit::Builder fg(b, loc, maxBatch, classes);
      flags = fg.generic({}, {}, {fg.empty({maxBatch}, i1)}, {fg.id1()}, "p",
                         [&](OpBuilder &nb, Location l, ValueRange) {
                           Value i = nb.create<linalg::IndexOp>(l, 0);
                           Value last = nb.create<arith::ConstantIndexOp>(l, size - 1);
                           Value in = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::ule, i, last);
                           Value at = minIndex(nb, l, i, last);
                           Value v = nb.create<tensor::ExtractOp>(l, fb, ValueRange{at});
                           nb.create<linalg::YieldOp>(l, nb.create<arith::AndIOp>(l, in, v).getResult());
                         })[0];
    } else {
      dyncc::exit::Builder fg(b, loc, maxBatch, classes);
      flags = fg.fill({maxBatch}, b.getBoolAttr(true));
    }

    // Merge the logits and exit layers of the samples that exit here, in
    // request order: sample j sits in slot st[4 + j].
    int64_t layer = stage.exit ? stage.exit.getLayer() : finalLayer;
    dyncc::exit::Builder mg(b, loc, maxBatch, classes);
    auto slotOf = [&](OpBuilder &nb, Location l, Value j) {
      Value at = nb.create<arith::AddIOp>(l, j, nb.create<arith::ConstantIndexOp>(l, 4));
      return nb.create<tensor::ExtractOp>(l, state, ValueRange{at}).getResult();
    };
    auto takes = [&](OpBuilder &nb, Location l, Value slot) -> std::pair<Value, Value> {
      // (sample is alive and its slot's flag is set, the clamped slot)
      Value zero = nb.create<arith::ConstantIntOp>(l, 0, 32);
      Value alive = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::sge, slot, zero);
      Value idx = nb.create<arith::IndexCastOp>(l, nb.getIndexType(),
                                                maxIndex(nb, l, slot, zero));
      Value last = nb.create<arith::ConstantIndexOp>(l, size - 1);
      idx = minIndex(nb, l, idx, last);
      Value f = nb.create<tensor::ExtractOp>(l, flags, ValueRange{idx});
      return {nb.create<arith::AndIOp>(l, alive, f), idx};
    };
    Type zElem = cast<RankedTensorType>(flow.outZ.getType()).getElementType();
    Value newZ = mg.generic({flow.outZ}, {mg.rows()}, {mg.empty({maxBatch, classes}, zElem)},
                            {mg.rows()}, "pp",
                            [&](OpBuilder &nb, Location l, ValueRange a) {
                              Value j = nb.create<linalg::IndexOp>(l, 0);
                              Value c = nb.create<linalg::IndexOp>(l, 1);
                              auto [take, idx] = takes(nb, l, slotOf(nb, l, j));
                              Value v = nb.create<tensor::ExtractOp>(l, z, ValueRange{idx, c});
                              nb.create<linalg::YieldOp>(l, nb.create<arith::SelectOp>(l, take, v, a[0]).getResult());
                            })[0];
    Value newL = mg.generic({flow.outL}, {mg.id1()}, {mg.empty({maxBatch}, b.getI32Type())},
                            {mg.id1()}, "p",
                            [&](OpBuilder &nb, Location l, ValueRange a) {
                              Value j = nb.create<linalg::IndexOp>(l, 0);
                              Value take = takes(nb, l, slotOf(nb, l, j)).first;
                              Value lv = nb.create<arith::ConstantIntOp>(l, layer, 32);
                              nb.create<linalg::YieldOp>(l, nb.create<arith::SelectOp>(l, take, lv, a[0]).getResult());
                            })[0];

    // Retire, compact, choose the next bucket.
    Value next = b.create<func::CallOp>(loc, stepDecl, ValueRange{flags, state}).getResult(0);
    yields = {next, newZ, newL};
    for (Value key : nextKeys) {
      Value v = batcher.lookup(key);
      yields.push_back(gatherFull(b, loc, v, next, size, maxBatch));
    }
    if (hasPrev) {
      yields.push_back(gatherFull(b, loc, chain.prevClass, next, size, maxBatch));
      yields.push_back(gatherFull(b, loc, chain.count, next, size, maxBatch));
    }
    if (hasVotes)
      yields.push_back(gatherFull(b, loc, chain.votes, next, size, maxBatch));
    return success();
  }

};

} // namespace
