//===- LowerRoute.cpp - mixture of experts as static dispatch -------------===//
//
// Lowers every dyn.route op (docs/moe.md):
//
//   %y = dyn.route <strategy> %x, %gate experts(%w...) {...} { body }
//
// becomes
//
//   %slot_token, %tok_slot, %tok_weight = func.call @<fn>_route<i>(%gate)
//       // a runtime builtin (dyn.kernel = "builtin"): assignment, capacity,
//       // dropping, statistics
//   %xd  = dispatch: xd[e, r, :] = x[slot_token[e, r], :] (0 for -1)
//   %yd  = the body, cloned with static shapes and batched over the experts:
//          every linalg op gets a leading parallel loop over E and reads the
//          [E, ...] expert parameters directly
//   %y   = combine: y[t, :] = sum_j tok_weight[t, j] * yd[tok_slot[t, j], :]
//
// In dropless mode the dispatch buffer is [NB, block, D] and block `i`
// belongs to expert block_expert[i]: the batched body reads its parameters
// through that table (a gather the GEMM builder understands).
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "dialect/DynUtils.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

#include <fmt/format.h>

namespace dyncc {
#define GEN_PASS_DEF_DYNLOWERROUTE
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;
using namespace dyncc::dyn;

namespace {

// Config layout of the route builtin (runtime/dynrt.h, DYNRT_ROUTE_CFG_*).
enum RouteCfg {
  kCfgRoute = 0,
  kCfgStrategy,
  kCfgTokens,
  kCfgExperts,
  kCfgPerToken,
  kCfgK,
  kCfgCapacity,
  kCfgGroups,
  kCfgPriority,
  kCfgBlock,
  kCfgSeedLo,
  kCfgSeedHi,
  kCfgTemperature,
  kCfgThreshold,
  kCfgRenormalize,
  kCfgHasTable,
  kCfgSlots,
  kCfgBlocks,
  kCfgCount
};
constexpr int32_t kBuiltinRouteAssign = 1;
constexpr int32_t kBuiltinExpertExchange = 4;

// Config layout of the exchange builtin (DYNRT_EXCHANGE_CFG_*).
enum ExchangeCfg {
  kXCfgRoute = 0,
  kXCfgDirection, // 0: rows to their expert's rank, 1: results back
  kXCfgExperts,   // E
  kXCfgRanks,     // R
  kXCfgRows,      // rows per expert in the dispatch buffer
  kXCfgFeatures,  // features per row of the exchanged tensor
  kXCfgCount
};

/// Declares a runtime builtin (a private function the runtime implements,
/// dyn.kernel = "builtin") next to `fn` and calls it at `b`.
func::CallOp callBuiltin(OpBuilder &b, Location loc, func::FuncOp fn,
                         StringRef name, int32_t builtin,
                         ArrayRef<double> config, ValueRange args,
                         TypeRange results) {
  OpBuilder mb(fn);
  auto decl = mb.create<func::FuncOp>(
      loc, name, FunctionType::get(b.getContext(), args.getTypes(), results));
  decl.setPrivate();
  decl->setAttr(dyncc::kKernelAttrName, b.getStringAttr("builtin"));
  decl->setAttr("dyn.builtin", b.getI32IntegerAttr(builtin));
  decl->setAttr("dyn.config", b.getDenseF64ArrayAttr(config));
  return b.create<func::CallOp>(loc, decl, args);
}

/// The static layout of one route's dispatch buffer.
struct Layout {
  int64_t tokens, experts, perToken;
  int64_t capacity = 0; // per expert and group; 0: none
  int64_t groups = 1;
  int64_t block = 0;  // dropless block; 0: not dropless
  int64_t batch = 0;  // leading dimension of the dispatch buffer
  int64_t rows = 0;   // rows per batch element
  int64_t slots() const { return batch * rows; }
  bool dropless() const { return block > 0; }
};

Layout layoutOf(RouteOp op) {
  Layout l;
  auto input = cast<RankedTensorType>(op.getInput().getType());
  l.tokens = input.getDimSize(0);
  l.experts = op.getNumExperts();
  l.perToken = op.getExpertsPerToken();
  l.groups = op.getGroups().value_or(1);
  if (op.getStrategy() == RoutingStrategy::base) {
    l.batch = l.experts;
    l.rows = l.tokens / l.experts;
  } else if (std::optional<int64_t> block = op.getDroplessBlock()) {
    l.block = *block;
    int64_t bound = droplessRowBound(l.tokens, l.perToken, l.experts, *block);
    l.batch = (bound + *block - 1) / *block;
    l.rows = *block;
  } else if (auto factor = op.getCapacityFactor()) {
    l.capacity = computeCapacity(l.tokens, l.experts, l.perToken,
                                 factor->convertToDouble(), l.groups);
    l.batch = l.experts;
    l.rows = l.groups * l.capacity;
  } else {
    l.batch = l.experts;
    l.rows = l.tokens;
  }
  return l;
}

SmallVector<utils::IteratorType> parallel(unsigned n) {
  return SmallVector<utils::IteratorType>(n, utils::IteratorType::parallel);
}

/// `v` as a tensor of i32 (an elementwise cast when needed).
Value castToI32(OpBuilder &b, Location loc, Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  if (type.getElementType().isInteger(32))
    return v;
  auto i32 = b.getI32Type();
  auto outType = RankedTensorType::get(type.getShape(), i32);
  Value init = b.create<tensor::EmptyOp>(loc, type.getShape(), i32);
  AffineMap id = b.getMultiDimIdentityMap(type.getRank());
  bool wider = type.getElementType().getIntOrFloatBitWidth() > 32;
  return b
      .create<linalg::GenericOp>(
          loc, outType, v, init, ArrayRef<AffineMap>{id, id},
          parallel(type.getRank()),
          [&](OpBuilder &nb, Location nloc, ValueRange args) {
            Value r = wider ? nb.create<arith::TruncIOp>(nloc, i32, args[0])
                                  .getResult()
                            : nb.create<arith::ExtSIOp>(nloc, i32, args[0])
                                  .getResult();
            nb.create<linalg::YieldOp>(nloc, r);
          })
      .getResult(0);
}

/// Inside a linalg.generic body: table[row, linalg.index(colLoop)] for an
/// i32 `row` that may be -1 (no token), and whether it is a real row (the
/// gather clamps, so -1 reads row 0; the caller selects it away).
std::pair<Value, Value> gatherRow(OpBuilder &b, Location loc, Value table,
                                  Value row, unsigned colLoop) {
  Value r = b.create<arith::IndexCastOp>(loc, b.getIndexType(), row);
  Value col = b.create<linalg::IndexOp>(loc, colLoop);
  Value v = b.create<tensor::ExtractOp>(loc, table, ValueRange{r, col});
  Value valid = b.create<arith::CmpIOp>(
      loc, arith::CmpIPredicate::sge, row,
      b.create<arith::ConstantIntOp>(loc, 0, 32));
  return {v, valid};
}

Value zeroFloat(OpBuilder &b, Location loc) {
  return b.create<arith::ConstantFloatOp>(loc, APFloat(0.0f), b.getF32Type());
}

/// Clones the expert body with static shapes, batched over `layout.batch`.
/// `params` are the [E, ...] expert parameters; in dropless mode
/// `blockExpert` ([NB] i32) maps a batch element to its expert.
class BodyBatcher {
public:
  /// `rowMask` ([batch, rows] i32, -1 where no token is), when given,
  /// marks the rows nobody reads (kRowMaskAttr).
  BodyBatcher(OpBuilder &b, const Layout &layout, Value blockExpert,
              Value rowMask)
      : b(b), layout(layout), blockExpert(blockExpert), rowMask(rowMask) {}

  FailureOr<Value> run(RouteOp op, Value tokens, ValueRange params) {
    Block &body = op.getBody().front();
    // Named linalg ops become generics first: one form to batch.
    IRRewriter rewriter(b.getContext());
    SmallVector<linalg::LinalgOp> named;
    body.walk([&](linalg::LinalgOp l) {
      if (!isa<linalg::GenericOp>(l.getOperation()))
        named.push_back(l);
    });
    for (linalg::LinalgOp l : named) {
      rewriter.setInsertionPoint(l);
      if (failed(linalg::generalizeNamedOp(rewriter, l)))
        return l->emitOpError("cannot be generalized inside a dyn.route "
                              "expert body");
    }

    map(body.getArgument(0), tokens, /*batched=*/true);
    if (std::optional<unsigned> r = dynamicDim(body.getArgument(0).getType()))
      rowDim[body.getArgument(0)] = *r;
    for (auto [arg, p] : llvm::zip(body.getArguments().drop_front(), params))
      map(arg, p, /*batched=*/true, /*perExpert=*/true);

    for (Operation &inner : body.without_terminator())
      if (failed(batchOp(inner)))
        return failure();
    auto yield = cast<YieldOp>(body.getTerminator());
    Value result = yield.getValues()[0];
    if (!batched.contains(result))
      return yield.emitOpError("the expert body must yield a value computed "
                               "from its tokens");
    if (auto it = rowDim.find(result); it != rowDim.end() && it->second != 0)
      return mixError(yield) << "it yields the rows in dimension " << it->second
                             << " (must be dimension 0)";
    return mapping.lookup(result);
  }

private:
  OpBuilder &b;
  const Layout &layout;
  Value blockExpert;
  Value rowMask;
  IRMapping mapping;
  llvm::DenseSet<Value> batched;   // original values that gained a batch dim
  llvm::DenseSet<Value> perExpert; // original values indexed by expert
  // Original values holding one row per token, and which dimension that is
  // (the `?` one): each row must come from its own token alone.
  llvm::DenseMap<Value, unsigned> rowDim;

  /// The position of the single dynamic (row) dimension of a tensor type.
  static std::optional<unsigned> dynamicDim(Type type) {
    auto t = dyn_cast<RankedTensorType>(type);
    if (!t || t.getNumDynamicDims() != 1)
      return std::nullopt;
    for (unsigned i = 0; i < t.getRank(); ++i)
      if (t.isDynamicDim(i))
        return i;
    return std::nullopt;
  }

  static InFlightDiagnostic mixError(Operation *op) {
    return op->emitOpError("mixes tokens inside a dyn.route expert body: ");
  }

  /// Checks that a generic computes each row from the same row of its
  /// operands (the loop over rows is parallel, no other operand is read by
  /// row position, every result keeps the rows) and records its results'
  /// row dimensions. The lowering runs the body on dispatch buffers whose
  /// rows are other tokens, padding or dropped slots, so a body that mixes
  /// rows would compute something eager PyTorch does not.
  LogicalResult checkRows(linalg::GenericOp op,
                          std::optional<unsigned> &rowLoop) {
    for (OpOperand &operand : op->getOpOperands()) {
      auto it = rowDim.find(operand.get());
      if (it == rowDim.end())
        continue;
      AffineMap m = op.getMatchingIndexingMap(&operand);
      auto d = dyn_cast<AffineDimExpr>(m.getResult(it->second));
      if (!d || (rowLoop && *rowLoop != d.getPosition()))
        return mixError(op) << "operand " << operand.getOperandNumber()
                            << " is not read row by row";
      rowLoop = d.getPosition();
    }
    if (!rowLoop)
      return success();
    if (op.getIteratorTypesArray()[*rowLoop] != utils::IteratorType::parallel)
      return mixError(op) << "it reduces over the rows (loop d" << *rowLoop << ")";
    bool indexed = false;
    op.getRegion().walk([&](linalg::IndexOp idx) {
      indexed |= idx.getDim() == *rowLoop;
    });
    if (indexed)
      return mixError(op) << "its body reads the row position (linalg.index "
                          << *rowLoop << ")";
    for (OpOperand &operand : op->getOpOperands()) {
      AffineMap m = op.getMatchingIndexingMap(&operand);
      bool isRow = rowDim.count(operand.get());
      if (!isRow && m.isFunctionOfDim(*rowLoop))
        return mixError(op) << "operand " << operand.getOperandNumber()
                            << " is read by row position";
      if (op.isDpsInit(&operand) && !isRow)
        return mixError(op) << "result " << op.getTiedOpResult(&operand).getResultNumber()
                            << " does not keep the rows";
    }
    for (OpResult r : op->getResults())
      rowDim[r] = rowDim.lookup(op.getDpsInitOperand(r.getResultNumber())->get());
    return success();
  }

  void map(Value from, Value to, bool isBatched, bool isPerExpert = false) {
    mapping.map(from, to);
    if (isBatched)
      batched.insert(from);
    if (isPerExpert)
      perExpert.insert(from);
  }

  /// The static batched type of an original (maybe `?`-row) tensor type.
  RankedTensorType batchedType(RankedTensorType t) {
    SmallVector<int64_t> shape{layout.batch};
    for (int64_t d : t.getShape())
      shape.push_back(ShapedType::isDynamic(d) ? layout.rows : d);
    return RankedTensorType::get(shape, t.getElementType());
  }

  LogicalResult batchOp(Operation &op) {
    Location loc = op.getLoc();
    if (auto dim = dyn_cast<tensor::DimOp>(op)) {
      std::optional<int64_t> index = dim.getConstantIndex();
      auto type = dyn_cast<RankedTensorType>(dim.getSource().getType());
      if (!index || !type)
        return op.emitOpError("needs a constant dimension inside a dyn.route "
                              "expert body");
      int64_t size = type.getDimSize(*index);
      if (ShapedType::isDynamic(size))
        size = layout.rows;
      mapping.map(dim.getResult(),
                  b.create<arith::ConstantIndexOp>(loc, size).getResult());
      return success();
    }
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
      // A slice of the rows' values (torch's chunk/split of a fused
      // projection): the same slice of every expert's batch.
      if (!batched.contains(slice.getSource()))
        return op.emitOpError("inside a dyn.route expert body must slice a "
                              "value computed from the tokens");
      if (slice.getSourceType().getRank() != slice.getType().getRank())
        return op.emitOpError("must keep its rank inside a dyn.route expert body");
      if (auto it = rowDim.find(slice.getSource()); it != rowDim.end()) {
        unsigned r = it->second;
        std::optional<int64_t> offset = getConstantIntValue(slice.getMixedOffsets()[r]);
        std::optional<int64_t> stride = getConstantIntValue(slice.getMixedStrides()[r]);
        if (!slice.getType().isDynamicDim(r) || offset != 0 || stride != 1)
          return mixError(&op) << "it slices the rows (dimension " << r
                               << "); slice the features only";
        rowDim[slice.getResult()] = r;
      }
      // Offsets and strides as constants (mapped values included), after
      // the leading expert dimension's 0 and 1.
      auto constants = [&](ArrayRef<OpFoldResult> in,
                           SmallVectorImpl<OpFoldResult> &out) {
        for (OpFoldResult r : in) {
          if (auto v = dyn_cast<Value>(r))
            r = mapping.lookupOrDefault(v);
          std::optional<int64_t> c = getConstantIntValue(r);
          if (!c)
            return false;
          out.push_back(b.getIndexAttr(*c));
        }
        return true;
      };
      SmallVector<OpFoldResult> offsets{b.getIndexAttr(0)}, sizes, strides{b.getIndexAttr(1)};
      if (!constants(slice.getMixedOffsets(), offsets))
        return op.emitOpError("needs constant offsets inside a dyn.route expert body");
      if (!constants(slice.getMixedStrides(), strides))
        return op.emitOpError("needs constant strides inside a dyn.route expert body");
      RankedTensorType t = batchedType(slice.getType());
      for (int64_t d : t.getShape())
        sizes.push_back(b.getIndexAttr(d));
      Value src = mapping.lookup(slice.getSource());
      map(slice.getResult(),
          b.create<tensor::ExtractSliceOp>(loc, t, src, offsets, sizes, strides),
          /*isBatched=*/true);
      return success();
    }
    if (auto empty = dyn_cast<tensor::EmptyOp>(op)) {
      if (std::optional<unsigned> r = dynamicDim(empty.getType()))
        rowDim[empty.getResult()] = *r;
      RankedTensorType t = batchedType(empty.getType());
      map(empty.getResult(),
          b.create<tensor::EmptyOp>(loc, t.getShape(), t.getElementType()),
          /*batched=*/true);
      return success();
    }
    if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
      std::optional<unsigned> rowLoop;
      if (failed(checkRows(generic, rowLoop)))
        return failure();
      return batchGeneric(generic, rowLoop);
    }
    bool scalar = llvm::all_of(op.getResultTypes(), [](Type t) {
      return !isa<ShapedType>(t);
    }) && op.getNumRegions() == 0;
    if (scalar && (isa<arith::ArithDialect, math::MathDialect>(op.getDialect()))) {
      // Folded right away: the sizes torch-mlir checks (dynamic rows) are
      // constants here, so that their asserts can be decided below.
      Operation *copy = b.clone(op, mapping);
      SmallVector<OpFoldResult> folded;
      if (copy->hasTrait<OpTrait::ConstantLike>() || failed(copy->fold(folded)) ||
          folded.size() != op.getNumResults())
        return success();
      for (auto [from, f] : llvm::zip(op.getResults(), folded)) {
        if (auto v = dyn_cast<Value>(f))
          mapping.map(from, v);
        else if (auto attr = dyn_cast<TypedAttr>(cast<Attribute>(f)))
          mapping.map(from, b.create<arith::ConstantOp>(loc, attr).getResult());
      }
      return success();
    }
    if (auto check = dyn_cast<cf::AssertOp>(op)) {
      // Shape checks of imported expert bodies: true for the static
      // dispatch shapes, or the body is wrong for them.
      Value cond = mapping.lookupOrDefault(check.getArg());
      if (matchPattern(cond, m_One()))
        return success();
      if (matchPattern(cond, m_Zero()))
        return op.emitOpError("fails for the dispatch's static shapes: ")
               << check.getMsg();
      return op.emitOpError("depends on the tokens' values; a dyn.route "
                            "expert body may only check its shapes");
    }
    return op.emitOpError("is not supported in a dyn.route expert body "
                          "(supported: linalg ops, tensor.empty, tensor.dim, "
                          "tensor.extract_slice, scalar arith and math)");
  }

  /// `rowLoop`: the loop over the body's rows (checkRows), if any.
  LogicalResult batchGeneric(linalg::GenericOp op,
                             std::optional<unsigned> rowLoop) {
    Location loc = op.getLoc();
    unsigned loops = op.getNumLoops();
    MLIRContext *ctx = b.getContext();
    AffineExpr d0 = getAffineDimExpr(0, ctx);
    SmallVector<Value> ins, outs;
    SmallVector<AffineMap> maps;
    // Per-expert operands reached through block_expert (dropless): read in
    // the body with tensor.extract at (block_expert[b], original indices).
    SmallVector<std::pair<unsigned, AffineMap>> gathered;
    for (OpOperand &operand : op->getOpOperands()) {
      Value v = operand.get();
      AffineMap m = op.getMatchingIndexingMap(&operand).shiftDims(1);
      Value mapped = mapping.lookupOrDefault(v);
      bool isInit = op.isDpsInit(&operand);
      if (blockExpert && perExpert.contains(v)) {
        if (isInit)
          return op.emitOpError("writes an expert parameter");
        gathered.push_back({operand.getOperandNumber(), m});
        continue;
      }
      if (batched.contains(v)) {
        SmallVector<AffineExpr> results{d0};
        llvm::append_range(results, m.getResults());
        m = AffineMap::get(loops + 1, 0, results, ctx);
      }
      (isInit ? outs : ins).push_back(mapped);
      maps.push_back(m);
    }
    if (!gathered.empty()) {
      ins.insert(ins.begin(), blockExpert);
      maps.insert(maps.begin(), AffineMap::get(loops + 1, 0, {d0}, ctx));
    }
    // The rows the combine reads: slot_token[b, r] >= 0. An op that
    // computes rows from rows (not a fill) gets the table as a last input
    // (its body ignores it) and kRowMaskAttr naming it; codegen may then
    // leave the other rows unwritten (docs/moe.md, "Empty capacity").
    bool masked = rowMask && rowLoop &&
                  llvm::any_of(op.getDpsInputs(), [&](Value v) {
                    return rowDim.contains(v);
                  });
    if (masked) {
      ins.push_back(rowMask);
      maps.insert(maps.begin() + ins.size() - 1,
                  AffineMap::get(loops + 1, 0,
                                 {d0, getAffineDimExpr(*rowLoop + 1, ctx)},
                                 ctx));
    }
    SmallVector<Type> resultTypes;
    for (Value init : op.getDpsInits()) {
      if (!batched.contains(init))
        return op.emitOpError("inside a dyn.route expert body must write "
                              "tensors made there");
      resultTypes.push_back(mapping.lookup(init).getType());
    }
    SmallVector<utils::IteratorType> iterators{utils::IteratorType::parallel};
    llvm::append_range(iterators, op.getIteratorTypesArray());
    auto batchedOp = b.create<linalg::GenericOp>(loc, resultTypes, ins, outs,
                                                 maps, iterators);
    // The body: clone it, shift linalg.index by one, and feed the gathered
    // operands from tensor.extract.
    IRMapping bodyMap = mapping;
    op.getRegion().cloneInto(&batchedOp.getRegion(), bodyMap);
    Block &nb = batchedOp.getRegion().front();
    nb.walk([&](linalg::IndexOp idx) {
      idx.setDim(idx.getDim() + 1);
    });
    if (!gathered.empty()) {
      OpBuilder bb = OpBuilder::atBlockBegin(&nb);
      BlockArgument expertArg =
          nb.insertArgument(0u, b.getI32Type(), loc);
      Value expert = bb.create<arith::IndexCastOp>(loc, bb.getIndexType(),
                                                   expertArg);
      // Block arguments follow operand order; after inserting the table's,
      // gathered operand k sits at k + 1.
      for (auto &[number, m] : llvm::reverse(gathered)) {
        BlockArgument arg = nb.getArgument(number + 1);
        SmallVector<Value> indices{expert};
        for (AffineExpr e : m.getResults()) {
          auto dim = dyn_cast<AffineDimExpr>(e);
          if (!dim)
            return op.emitOpError("reads an expert parameter through a "
                                  "non-projection map in dropless mode");
          indices.push_back(
              bb.create<linalg::IndexOp>(loc, dim.getPosition()).getResult());
        }
        Value param = mapping.lookup(op->getOperand(number));
        Value v = bb.create<tensor::ExtractOp>(loc, param, indices);
        arg.replaceAllUsesWith(v);
        nb.eraseArgument(number + 1);
      }
    }
    if (masked) {
      // The block argument of the table, after the other inputs'.
      unsigned at = batchedOp.getNumDpsInputs() - 1;
      nb.insertArgument(at, b.getI32Type(), loc);
      batchedOp->setAttr(dyncc::kRowMaskAttr, b.getI64IntegerAttr(at));
    }
    for (auto [from, to] : llvm::zip(op.getResults(), batchedOp.getResults()))
      map(from, to, /*batched=*/true);
    return success();
  }
};

class LowerRoutePass
    : public dyncc::impl::DynLowerRouteBase<LowerRoutePass> {
public:
  using DynLowerRouteBase::DynLowerRouteBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (ranks < 0 || ranks > 4096) {
      module.emitError("--expert-parallel must be in [1, 4096], got ")
          << ranks;
      return signalPassFailure();
    }
    if (ranks > 0) {
      if (module->hasAttr("dyn.batch_sample_loop") ||
          module->hasAttr("dyn.batch_buckets")) {
        module.emitError("--expert-parallel cannot be combined with "
                         "--batch-buckets yet: every rank must run the same "
                         "exchanges, and a bucketed run's count depends on "
                         "its batch");
        return signalPassFailure();
      }
      module->setAttr("dyn.expert_parallel",
                      IntegerAttr::get(IntegerType::get(&getContext(), 64),
                                       ranks));
    }
    SmallVector<RouteOp> routes;
    module.walk([&](RouteOp op) { routes.push_back(op); });
    for (auto [index, op] : llvm::enumerate(routes))
      if (failed(lower(op, (int)index)))
        return signalPassFailure();
  }

private:
  /// Makes each expert parameter of `op` its rank's shard: the parameter
  /// must be a weight of the entry (an argument marked dyn.weight) used
  /// only as expert parameters of routes with as many experts; its type
  /// becomes [E/R, ...] and it is marked dyn.expert_shard = R (the runtime
  /// binds rank r's rows [r * E/R, (r+1) * E/R) of the weights file's
  /// [E, ...] tensor, or a file holding the shard alone).
  LogicalResult shardExperts(RouteOp op, const Layout &l) {
    if (l.dropless())
      return op.emitOpError("uses dropless_block, which --expert-parallel "
                            "does not support yet (its blocks are not "
                            "grouped by rank); use a capacity_factor");
    if (l.experts % ranks != 0)
      return op.emitOpError("has ")
             << l.experts << " experts, which --expert-parallel=" << (int64_t)ranks
             << " cannot split evenly (the expert count must be a multiple "
                "of the rank count)";
    for (Value p : op.getExpertParams()) {
      auto arg = dyn_cast<BlockArgument>(p);
      auto fn = arg ? dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp())
                    : func::FuncOp();
      auto name = fn ? fn.getArgAttrOfType<StringAttr>(arg.getArgNumber(),
                                                       "dyn.weight")
                     : StringAttr();
      if (!name)
        return op.emitOpError("has an expert parameter that is not a weight "
                              "of the model (an entry argument marked "
                              "dyn.weight); --expert-parallel shards only "
                              "weights");
      for (OpOperand &use : arg.getUses()) {
        auto user = dyn_cast<RouteOp>(use.getOwner());
        bool asParam = user && use.getOperandNumber() >=
                                   user.getExpertParams().getBeginOperandIndex();
        if (!asParam || user.getNumExperts() != l.experts)
          return op.emitOpError("has expert weight '")
                 << name.getValue()
                 << "', which is also used outside the expert parameters; "
                    "--expert-parallel cannot shard it";
      }
      if (fn.getArgAttr(arg.getArgNumber(), "dyn.expert_shard"))
        continue; // shared with a route lowered before
      auto type = cast<RankedTensorType>(arg.getType());
      if (type.getRank() < 1 || type.getDimSize(0) != l.experts)
        return op.emitOpError("has expert weight '")
               << name.getValue() << "' of type " << type
               << "; its leading dimension must be the " << l.experts
               << " experts";
      SmallVector<int64_t> shape(type.getShape());
      shape[0] = l.experts / ranks;
      arg.setType(RankedTensorType::get(shape, type.getElementType()));
      fn.setArgAttr(arg.getArgNumber(), "dyn.expert_shard",
                    IntegerAttr::get(IntegerType::get(op.getContext(), 64),
                                     ranks));
      SmallVector<Type> inputs(fn.getArgumentTypes());
      inputs[arg.getArgNumber()] = arg.getType();
      fn.setFunctionType(FunctionType::get(op.getContext(), inputs,
                                           fn.getResultTypes()));
    }
    return success();
  }

  /// The exchange builtin: forward, the dispatched rows [E, rows, D] to
  /// their expert's rank ([E/R, R * rows, D]: rank s's rows of local expert
  /// e at [e, s * rows, ...]); back, the results to the rows they came from.
  Value exchange(OpBuilder &b, Location loc, func::FuncOp fn, int index,
                 bool back, Value rows, Value slotToken, const Layout &l,
                 int64_t features) {
    SmallVector<double> config(kXCfgCount, 0.0);
    config[kXCfgRoute] = index;
    config[kXCfgDirection] = back ? 1 : 0;
    config[kXCfgExperts] = l.experts;
    config[kXCfgRanks] = ranks;
    config[kXCfgRows] = l.rows;
    config[kXCfgFeatures] = features;
    SmallVector<int64_t> shape =
        back ? SmallVector<int64_t>{l.experts, l.rows, features}
             : SmallVector<int64_t>{l.experts / ranks, l.rows * ranks,
                                    features};
    auto type = RankedTensorType::get(shape, b.getF32Type());
    std::string name = fmt::format("{}_route{}_{}", fn.getSymName().str(),
                                   index, back ? "return" : "exchange");
    return callBuiltin(b, loc, fn, name, kBuiltinExpertExchange, config,
                       ValueRange{rows, slotToken}, type)
        .getResult(0);
  }

  LogicalResult lower(RouteOp op, int index) {
    Location loc = op.getLoc();
    OpBuilder b(op);
    MLIRContext *ctx = b.getContext();
    Layout l = layoutOf(op);
    if (ranks > 0 && failed(shardExperts(op, l)))
      return failure();
    auto input = cast<RankedTensorType>(op.getInput().getType());
    auto resultType = cast<RankedTensorType>(op.getResult().getType());
    if (!input.getElementType().isF32() || !resultType.getElementType().isF32())
      return op.emitOpError("is compiled for f32 tokens; got ")
             << input.getElementType();
    Type i32 = b.getI32Type(), f32 = b.getF32Type();

    // 1. The assignment builtin.
    Value gate = op.getGate();
    if (op.getStrategy() == RoutingStrategy::hash)
      gate = castToI32(b, loc, gate);
    else if (!cast<RankedTensorType>(gate.getType()).getElementType().isF32())
      return op.emitOpError("is compiled for f32 gate logits; got ")
             << cast<RankedTensorType>(gate.getType()).getElementType();
    SmallVector<Value> builtinArgs{gate};
    if (Value table = op.getTable())
      builtinArgs.push_back(castToI32(b, loc, table));
    auto slotType = RankedTensorType::get({l.slots()}, i32);
    auto tokSlotType = RankedTensorType::get({l.tokens, l.perToken}, i32);
    auto tokWeightType = RankedTensorType::get({l.tokens, l.perToken}, f32);
    SmallVector<Type> builtinResults{slotType, tokSlotType, tokWeightType};
    if (l.dropless())
      builtinResults.push_back(RankedTensorType::get({l.batch}, i32));

    auto fn = op->getParentOfType<func::FuncOp>();
    std::string name = fmt::format("{}_route{}", fn.getSymName().str(), index);
    SmallVector<double> config(kCfgCount, 0.0);
    uint64_t seed = static_cast<uint64_t>(op.getSeed().value_or(0));
    config[kCfgRoute] = index;
    config[kCfgStrategy] = static_cast<double>(op.getStrategy());
    config[kCfgTokens] = l.tokens;
    config[kCfgExperts] = l.experts;
    config[kCfgPerToken] = l.perToken;
    config[kCfgK] = op.getK().value_or(1);
    config[kCfgCapacity] = l.capacity;
    config[kCfgGroups] = l.groups;
    config[kCfgPriority] =
        op.getPriority() ? static_cast<double>(*op.getPriority()) : 0.0;
    config[kCfgBlock] = l.block;
    config[kCfgSeedLo] = static_cast<double>(seed & 0xffffffffu);
    config[kCfgSeedHi] = static_cast<double>(seed >> 32);
    if (auto t = op.getTemperature())
      config[kCfgTemperature] = t->convertToDouble();
    if (auto t = op.getThreshold())
      config[kCfgThreshold] = t->convertToDouble();
    config[kCfgRenormalize] = op.getRenormalize() ? 1.0 : 0.0;
    config[kCfgHasTable] = op.getTable() ? 1.0 : 0.0;
    config[kCfgSlots] = l.slots();
    config[kCfgBlocks] = l.dropless() ? l.batch : 0;
    auto call = callBuiltin(b, loc, fn, name, kBuiltinRouteAssign, config,
                            builtinArgs, builtinResults);
    Value slotToken = call.getResult(0), tokSlot = call.getResult(1),
          tokWeight = call.getResult(2);
    Value blockExpert = l.dropless() ? call.getResult(3) : Value();

    // 2. Dispatch: xd[b, r, d] = x[slot_token[b * rows + r], d] or 0.
    int64_t features = input.getDimSize(1);
    Value slots2d = b.create<tensor::ExpandShapeOp>(
        loc, RankedTensorType::get({l.batch, l.rows}, i32), slotToken,
        ArrayRef<ReassociationIndices>{{0, 1}});
    auto xdType = RankedTensorType::get({l.batch, l.rows, features}, f32);
    Value xdInit = b.create<tensor::EmptyOp>(loc, xdType.getShape(), f32);
    Value x = op.getInput();
    Value xd =
        b.create<linalg::GenericOp>(
             loc, xdType, slots2d, xdInit,
             ArrayRef<AffineMap>{
                 AffineMap::get(3, 0,
                                {getAffineDimExpr(0, ctx),
                                 getAffineDimExpr(1, ctx)},
                                ctx),
                 b.getMultiDimIdentityMap(3)},
             parallel(3),
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               auto [v, valid] = gatherRow(nb, nloc, x, args[0], 2);
               nb.create<linalg::YieldOp>(
                   nloc, nb.create<arith::SelectOp>(nloc, valid, v,
                                                    zeroFloat(nb, nloc))
                             .getResult());
             })
            .getResult(0);

    // 3. The experts, batched; with expert parallelism, this rank's E/R
    // experts over the rows every rank sent them ([E/R, R * rows, D]).
    Layout body = l;
    if (ranks > 0) {
      body.batch = l.experts / ranks;
      body.rows = l.rows * ranks;
      xd = exchange(b, loc, fn, index, /*back=*/false, xd, slotToken, l,
                    features);
    }
    // With expert parallelism the body's rows come from every rank: their
    // slots are not this rank's table, so every row is computed.
    BodyBatcher batcher(b, body, blockExpert, ranks > 0 ? Value() : slots2d);
    FailureOr<Value> yd = batcher.run(op, xd, op.getExpertParams());
    if (failed(yd))
      return failure();
    auto ydType = cast<RankedTensorType>(yd->getType());
    if (ydType.getRank() != 3 || ydType.getDimSize(1) != body.rows)
      return op.emitOpError("the expert body must yield [rows, features] "
                            "tensors");
    int64_t outFeatures = ydType.getDimSize(2);
    if (ranks > 0)
      yd = exchange(b, loc, fn, index, /*back=*/true, *yd, slotToken, l,
                    outFeatures);
    Value ydFlat = b.create<tensor::CollapseShapeOp>(
        loc, RankedTensorType::get({l.slots(), outFeatures}, f32), *yd,
        ArrayRef<ReassociationIndices>{{0, 1}, {2}});

    // 4. Combine: y[t, o] = sum_j select(slot >= 0, w * yd[slot, o], 0).
    Value yInit = b.create<tensor::EmptyOp>(loc, resultType.getShape(), f32);
    Value zero = b.create<arith::ConstantFloatOp>(loc, APFloat(0.0f),
                                                  cast<FloatType>(f32));
    Value yZero =
        b.create<linalg::FillOp>(loc, zero, yInit).getResult(0);
    AffineMap tj = AffineMap::get(
        3, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(2, ctx)}, ctx);
    AffineMap to = AffineMap::get(
        3, 0, {getAffineDimExpr(0, ctx), getAffineDimExpr(1, ctx)}, ctx);
    Value y =
        b.create<linalg::GenericOp>(
             loc, resultType, ValueRange{tokSlot, tokWeight}, yZero,
             ArrayRef<AffineMap>{tj, tj, to},
             ArrayRef<utils::IteratorType>{utils::IteratorType::parallel,
                                           utils::IteratorType::parallel,
                                           utils::IteratorType::reduction},
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               Value w = args[1], acc = args[2];
               auto [v, valid] = gatherRow(nb, nloc, ydFlat, args[0], 1);
               Value term = nb.create<arith::SelectOp>(
                   nloc, valid, nb.create<arith::MulFOp>(nloc, w, v),
                   zeroFloat(nb, nloc));
               nb.create<linalg::YieldOp>(
                   nloc, nb.create<arith::AddFOp>(nloc, acc, term).getResult());
             })
            .getResult(0);
    op.getResult().replaceAllUsesWith(y);
    op.erase();
    return success();
  }
};

} // namespace
