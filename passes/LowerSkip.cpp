//===- LowerSkip.cpp - skimming loops as scf.while ------------------------===//
//
// Lowers every dyn.skip op (docs/skim.md):
//
//   %r = dyn.skip %seq init(%s) budget B actions [...] decide {D} {A0} ...
//
// becomes
//
//   %pos, %n, %stop, %state = scf.while (0, 0, false, %s) {
//     scf.condition(0 <= pos < S && n < B && !stop) ...
//   } do {
//     %pt   = tensor.from_elements pos            // the position, for kernels
//     %x    = gather: x[...] = seq[pt[0], ...]     // the step input
//     D     (cloned)  -> %a, %amount
//     func.call @<fn>_skip<i>_step([pos, a, amount])  // runtime builtin:
//                                                   // trace, range check
//     %next, %stop', %state' = scf.index_switch %a
//       case k: A_k (cloned, or the state unchanged), the next position
//     scf.yield %next, n + 1, %stop', %state'
//   }
//
// Host code carries the position, the step count and the state; every
// tensor op of the regions becomes kernels inside the loop.
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

#include <fmt/format.h>

namespace dyncc {
#define GEN_PASS_DEF_DYNLOWERSKIP
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;
using namespace dyncc::dyn;

namespace {

// Config layout of the step builtin (runtime/dynrt.h, DYNRT_SKIP_CFG_*).
constexpr int32_t kBuiltinSkipStep = 2;
// The most bytes a loop's hoisted projections may hold (all positions' rows
// live in the arena through the loop): beyond, the rest stay in the step.
constexpr int64_t kMaxTableBytes = 64ll << 20;

class LowerSkipPass : public dyncc::impl::DynLowerSkipBase<LowerSkipPass> {
public:
  using DynLowerSkipBase::DynLowerSkipBase;

  void runOnOperation() override {
    SmallVector<SkipOp> skips;
    getOperation().walk([&](SkipOp op) { skips.push_back(op); });
    for (auto [index, op] : llvm::enumerate(skips))
      if (failed(lower(op, (int)index)))
        return signalPassFailure();
  }

private:
  /// Clones the single block of `region` with its arguments mapped to
  /// `args`; returns the operands of its terminator, mapped.
  static SmallVector<Value> inlineRegion(OpBuilder &b, Region &region,
                                         ValueRange args) {
    IRMapping map;
    Block &block = region.front();
    for (auto [from, to] : llvm::zip(block.getArguments(), args))
      map.map(from, to);
    for (Operation &op : block.without_terminator())
      b.clone(op, map);
    SmallVector<Value> results;
    for (Value v : block.getTerminator()->getOperands())
      results.push_back(map.lookupOrDefault(v));
    return results;
  }

  LogicalResult lower(SkipOp op, int index) {
    Location loc = op.getLoc();
    OpBuilder b(op);
    MLIRContext *ctx = b.getContext();
    RankedTensorType seqType = op.getSequence().getType();
    RankedTensorType stepType = op.getStepType();
    int64_t steps = seqType.getDimSize(0);
    int64_t budget = *op.getBudget();
    ArrayAttr actions = op.getActions();
    Type indexType = b.getIndexType(), i1 = b.getI1Type(), i32 = b.getI32Type();

    // The step builtin: trace and range check.
    auto fn = op->getParentOfType<func::FuncOp>();
    std::string name = fmt::format("{}_skip{}_step", fn.getSymName().str(), index);
    auto stepTensorType = RankedTensorType::get({3}, i32);
    OpBuilder mb(fn);
    auto decl = mb.create<func::FuncOp>(
        loc, name, FunctionType::get(ctx, {stepTensorType}, {}));
    decl.setPrivate();
    decl->setAttr(dyncc::kKernelAttrName, b.getStringAttr("builtin"));
    decl->setAttr("dyn.builtin", b.getI32IntegerAttr(kBuiltinSkipStep));
    decl->setAttr("dyn.config",
                  b.getDenseF64ArrayAttr({(double)index, (double)budget,
                                          (double)steps,
                                          (double)actions.size()}));

    auto cIndex = [&](OpBuilder &ob, int64_t v) -> Value {
      return ob.create<arith::ConstantIndexOp>(loc, v);
    };
    SmallVector<Value> inits{cIndex(b, 0), cIndex(b, 0),
                             b.create<arith::ConstantIntOp>(loc, 0, 1)};
    llvm::append_range(inits, op.getInit());
    SmallVector<Type> types = llvm::to_vector(ValueRange(inits).getTypes());

    auto loop = b.create<scf::WhileOp>(loc, types, inits);
    // Before: 0 <= pos < S && n < B && !stop.
    {
      Block *before = b.createBlock(&loop.getBefore(), {}, types,
                                    SmallVector<Location>(types.size(), loc));
      OpBuilder bb = OpBuilder::atBlockBegin(before);
      Value pos = before->getArgument(0), n = before->getArgument(1),
            stop = before->getArgument(2);
      Value geZero = bb.create<arith::CmpIOp>(loc, arith::CmpIPredicate::sge,
                                              pos, cIndex(bb, 0));
      Value ltS = bb.create<arith::CmpIOp>(loc, arith::CmpIPredicate::slt, pos,
                                           cIndex(bb, steps));
      Value ltB = bb.create<arith::CmpIOp>(loc, arith::CmpIPredicate::slt, n,
                                           cIndex(bb, budget));
      Value running = bb.create<arith::XOrIOp>(
          loc, stop, bb.create<arith::ConstantIntOp>(loc, 1, 1));
      Value go = bb.create<arith::AndIOp>(
          loc, bb.create<arith::AndIOp>(loc, geZero, ltS),
          bb.create<arith::AndIOp>(loc, ltB, running));
      bb.create<scf::ConditionOp>(loc, go, before->getArguments());
    }
    // After: one step.
    Block *after = b.createBlock(&loop.getAfter(), {}, types,
                                 SmallVector<Location>(types.size(), loc));
    OpBuilder ab = OpBuilder::atBlockBegin(after);
    Value pos = after->getArgument(0), n = after->getArgument(1);
    ValueRange state = after->getArguments().drop_front(3);

    Value pos32 = ab.create<arith::IndexCastOp>(loc, i32, pos);
    Value posTensor = ab.create<tensor::FromElementsOp>(
        loc, RankedTensorType::get({1}, i32), ValueRange{pos32});
    // x[...] = seq[pt[0], ...]
    unsigned rank = stepType.getRank();
    Value xInit = ab.create<tensor::EmptyOp>(loc, stepType.getShape(),
                                             stepType.getElementType());
    Value seq = op.getSequence();
    Value x = ab.create<linalg::GenericOp>(
                    loc, stepType, posTensor, xInit,
                    ArrayRef<AffineMap>{
                        AffineMap::get(rank, 0, {getAffineConstantExpr(0, ctx)},
                                       ctx),
                        ab.getMultiDimIdentityMap(rank)},
                    SmallVector<utils::IteratorType>(
                        rank, utils::IteratorType::parallel),
                    [&](OpBuilder &nb, Location nloc, ValueRange args) {
                      SmallVector<Value> at{nb.create<arith::IndexCastOp>(
                          nloc, nb.getIndexType(), args[0])};
                      for (unsigned d = 0; d < rank; ++d)
                        at.push_back(nb.create<linalg::IndexOp>(nloc, d));
                      nb.create<linalg::YieldOp>(
                          nloc,
                          nb.create<tensor::ExtractOp>(nloc, seq, at)
                              .getResult());
                    })
                  .getResult(0);

    SmallVector<Value> regionArgs{pos, x};
    llvm::append_range(regionArgs, state);
    // dyn.decide's operands: the action, then the amount if any.
    SmallVector<Value> decided = inlineRegion(ab, op.getDecide(), regionArgs);
    Value action = decided[0];
    Value amount = decided.size() > 1
                       ? decided[1]
                       : ab.create<arith::ConstantIntOp>(loc, 0, 64).getResult();
    Value action32 = ab.create<arith::IndexCastOp>(loc, i32, action);
    Value amount32 = ab.create<arith::TruncIOp>(loc, i32, amount);
    Value stepTensor = ab.create<tensor::FromElementsOp>(
        loc, stepTensorType, ValueRange{pos32, action32, amount32});
    ab.create<func::CallOp>(loc, decl, stepTensor);

    // The action: new state, next position, stop.
    SmallVector<Type> caseTypes{indexType, i1};
    llvm::append_range(caseTypes, op.getInit().getTypes());
    SmallVector<int64_t> cases;
    for (int64_t k = 0; k < (int64_t)actions.size(); ++k)
      cases.push_back(k);
    auto sw = ab.create<scf::IndexSwitchOp>(loc, caseTypes, action, cases,
                                            cases.size());
    for (auto [k, attr] : llvm::enumerate(actions.getAsRange<SkipActionAttr>())) {
      Region &body = op.getActionBodies()[k];
      Block *block = ab.createBlock(&sw.getCaseRegions()[k]);
      OpBuilder cb = OpBuilder::atBlockBegin(block);
      SmallVector<Value> newState =
          body.empty() ? SmallVector<Value>(state)
                       : inlineRegion(cb, body, regionArgs);
      Value next = pos;
      Value stop = cb.create<arith::ConstantIntOp>(loc, 0, 1);
      Value one = cIndex(cb, 1);
      switch (attr.getKind()) {
      case SkipActionKind::read:
      case SkipActionKind::skim:
      case SkipActionKind::skip:
      case SkipActionKind::partial:
      case SkipActionKind::flush:
      case SkipActionKind::upper:
        next = cb.create<arith::AddIOp>(loc, pos, one);
        break;
      case SkipActionKind::jump: {
        Value by = cb.create<arith::IndexCastOp>(loc, indexType, amount);
        by = cb.create<arith::MaxSIOp>(loc, by, one);
        next = cb.create<arith::AddIOp>(loc, pos, by);
        break;
      }
      case SkipActionKind::shuttle:
        next = cb.create<arith::AddIOp>(
            loc, pos, cb.create<arith::IndexCastOp>(loc, indexType, amount));
        break;
      case SkipActionKind::jump_to:
        next = nextOfClass(cb, loc, op, attr.getTargets(), posTensor, steps);
        break;
      case SkipActionKind::reread:
        break;
      case SkipActionKind::stop:
        stop = cb.create<arith::ConstantIntOp>(loc, 1, 1);
        break;
      }
      SmallVector<Value> yields{next, stop};
      llvm::append_range(yields, newState);
      cb.create<scf::YieldOp>(loc, yields);
    }
    {
      // Never taken: the step builtin fails the run first.
      Block *block = ab.createBlock(&sw.getDefaultRegion());
      OpBuilder db = OpBuilder::atBlockBegin(block);
      SmallVector<Value> yields{pos, db.create<arith::ConstantIntOp>(loc, 1, 1)};
      llvm::append_range(yields, state);
      db.create<scf::YieldOp>(loc, yields);
    }
    ab.setInsertionPointAfter(sw);
    SmallVector<Value> yields{sw.getResult(0),
                              ab.create<arith::AddIOp>(loc, n, cIndex(ab, 1)),
                              sw.getResult(1)};
    llvm::append_range(yields, sw.getResults().drop_front(2));
    ab.create<scf::YieldOp>(loc, yields);

    if (hoistInputs && visitsInOrder(actions)) {
      hoistProjections(loop, x, seq, std::min(steps, budget), posTensor);
      if (x.use_empty())
        x.getDefiningOp()->erase();
    }

    op.replaceAllUsesWith(loop.getResults().drop_front(3));
    op.erase();
    return success();
  }

  /// Whether every action moves to the next position: then the loop visits
  /// positions 0, 1, ..., min(S, B) - 1, each once, in order.
  static bool visitsInOrder(ArrayAttr actions) {
    return llvm::all_of(actions.getAsRange<SkipActionAttr>(), [](auto a) {
      switch (a.getKind()) {
      case SkipActionKind::read:
      case SkipActionKind::skim:
      case SkipActionKind::skip:
      case SkipActionKind::partial:
      case SkipActionKind::flush:
      case SkipActionKind::upper:
        return true;
      default:
        return false;
      }
    });
  }

  /// Input projections out of the loop (docs/skim.md). A loop that visits
  /// positions 0 .. rows-1 in order computes, at every step, f(x) for each
  /// linalg.generic f that reduces the step input x (as [1, ...x], through
  /// tensor.expand_shape) with values defined outside the loop, into a fill
  /// of such a value, its leading unit dimension a parallel loop that
  /// nothing else reads: an LSTM's W_ih x. The same generic over the rows
  /// seq[0 .. rows-1] computes every step's f(x) at once before the loop
  /// (one GEMM where there were GEMVs, each streaming the weights), and the
  /// step reads its row. The row is the same sum of the same products; only
  /// the order of the additions may differ.
  static void hoistProjections(scf::WhileOp loop, Value x, Value seq,
                               int64_t rows, Value posTensor) {
    SmallVector<std::pair<linalg::GenericOp, unsigned>> found;
    int64_t tableBytes = 0;
    auto stepType = cast<RankedTensorType>(x.getType());
    SmallVector<int64_t> unitShape{1};
    llvm::append_range(unitShape, stepType.getShape());
    for (Operation *user : x.getUsers()) {
      auto expand = dyn_cast<tensor::ExpandShapeOp>(user);
      if (!expand || expand.getResultType().getShape() != ArrayRef(unitShape))
        continue;
      for (OpOperand &use : expand.getResult().getUses())
        if (auto g = dyn_cast<linalg::GenericOp>(use.getOwner()))
          if (g.isDpsInput(&use) && hoistable(loop, g, use.getOperandNumber())) {
            auto rowType = cast<RankedTensorType>(g.getResult(0).getType());
            int64_t bytes = rows * rowType.getNumElements() *
                            std::max<int64_t>(
                                1, rowType.getElementTypeBitWidth() / 8);
            if (tableBytes + bytes > kMaxTableBytes)
              continue;
            tableBytes += bytes;
            found.push_back({g, use.getOperandNumber()});
          }
    }
    if (found.empty())
      return;

    Location loc = loop.getLoc();
    OpBuilder hb(loop);
    auto seqType = cast<RankedTensorType>(seq.getType());
    Value input = seq;
    if (rows < seqType.getDimSize(0)) {
      SmallVector<OpFoldResult> offsets(seqType.getRank(), hb.getIndexAttr(0)),
          strides(seqType.getRank(), hb.getIndexAttr(1)), sizes;
      for (int64_t d : seqType.getShape())
        sizes.push_back(hb.getIndexAttr(sizes.empty() ? rows : d));
      input = hb.create<tensor::ExtractSliceOp>(loc, seq, offsets, sizes,
                                                strides);
    }
    for (auto [g, operand] : found) {
      auto rowType = cast<RankedTensorType>(g.getResult(0).getType());
      SmallVector<int64_t> allShape{rows};
      llvm::append_range(allShape, rowType.getShape().drop_front());
      auto fill = g.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
      IRMapping map;
      map.map(g->getOperand(operand), input);
      for (Value v : g.getDpsInputs())
        if (v != g->getOperand(operand))
          map.map(v, outside(hb, loop, v));
      Value empty = hb.create<tensor::EmptyOp>(loc, allShape,
                                               rowType.getElementType());
      map.map(g.getDpsInits()[0],
              hb.create<linalg::FillOp>(
                    loc, outside(hb, loop, fill.getInputs()[0]), empty)
                  .getResult(0));
      Operation *all = hb.clone(*g, map);
      all->getResult(0).setType(
          RankedTensorType::get(allShape, rowType.getElementType()));

      // In the step: row[0, ...] = all[pos, ...].
      OpBuilder rb(g);
      Value rowInit = rb.create<tensor::EmptyOp>(loc, rowType.getShape(),
                                                 rowType.getElementType());
      unsigned rank = rowType.getRank();
      MLIRContext *ctx = rb.getContext();
      Value table = all->getResult(0);
      Value row =
          rb.create<linalg::GenericOp>(
                loc, rowType, posTensor, rowInit,
                ArrayRef<AffineMap>{
                    AffineMap::get(rank, 0, {getAffineConstantExpr(0, ctx)},
                                   ctx),
                    rb.getMultiDimIdentityMap(rank)},
                SmallVector<utils::IteratorType>(rank,
                                                 utils::IteratorType::parallel),
                [&](OpBuilder &nb, Location nloc, ValueRange args) {
                  SmallVector<Value> at{nb.create<arith::IndexCastOp>(
                      nloc, nb.getIndexType(), args[0])};
                  for (unsigned d = 1; d < rank; ++d)
                    at.push_back(nb.create<linalg::IndexOp>(nloc, d));
                  nb.create<linalg::YieldOp>(
                      nloc,
                      nb.create<tensor::ExtractOp>(nloc, table, at).getResult());
                })
              .getResult(0);
      g.getResult(0).replaceAllUsesWith(row);
      Value expanded = g->getOperand(operand);
      g.erase();
      if (expanded.use_empty())
        expanded.getDefiningOp()->erase();
      if (fill->use_empty())
        fill.erase();
    }
  }

  /// Whether `v` is the same at every step: defined outside `loop`, or a
  /// constant.
  static bool invariant(scf::WhileOp loop, Value v) {
    Operation *owner = v.getParentRegion()->getParentOp();
    return (owner != loop && !loop->isProperAncestor(owner)) ||
           v.getDefiningOp<arith::ConstantOp>();
  }

  /// An invariant `v` for use before `loop`: itself, or a clone of the
  /// constant inside.
  static Value outside(OpBuilder &b, scf::WhileOp loop, Value v) {
    Operation *owner = v.getParentRegion()->getParentOp();
    if (owner != loop && !loop->isProperAncestor(owner))
      return v;
    return b.clone(*v.getDefiningOp())->getResult(0);
  }

  /// Whether `g`, reading the step input as [1, ...x] at operand `operand`,
  /// computes its result row from that row alone (see hoistProjections).
  static bool hoistable(scf::WhileOp loop, linalg::GenericOp g,
                        unsigned operand) {
    if (g.getNumDpsInits() != 1 || g.getNumReductionLoops() == 0 ||
        !g.hasPureTensorSemantics())
      return false;
    auto rowType = dyn_cast<RankedTensorType>(g.getResult(0).getType());
    if (!rowType || rowType.getRank() == 0 || rowType.getDimSize(0) != 1)
      return false;
    AffineMap xMap = g.getMatchingIndexingMap(&g->getOpOperand(operand));
    AffineMap outMap = g.getIndexingMapMatchingResult(g->getResult(0));
    auto dim = dyn_cast<AffineDimExpr>(xMap.getResult(0));
    if (!dim || outMap.getResult(0) != dim ||
        g.getIteratorTypesArray()[dim.getPosition()] !=
            utils::IteratorType::parallel)
      return false;
    unsigned r = dim.getPosition();
    auto usesRow = [&](AffineMap m, unsigned from) {
      for (unsigned i = from; i < m.getNumResults(); ++i)
        if (m.getResult(i).isFunctionOfDim(r))
          return true;
      return false;
    };
    if (usesRow(xMap, 1) || usesRow(outMap, 1))
      return false;
    for (OpOperand *in : g.getDpsInputOperands())
      if (in->getOperandNumber() != operand &&
          (!invariant(loop, in->get()) ||
           usesRow(g.getMatchingIndexingMap(in), 0)))
        return false;
    auto fill = g.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
    if (!fill || !invariant(loop, fill.getInputs()[0]))
      return false;
    // The body sees elements only: no linalg.index (it would see the row).
    bool indexes = false;
    g.getBody()->walk([&](linalg::IndexOp) { indexes = true; });
    return !indexes;
  }

  /// The smallest p > pos with classes[p] in `targets`, or `steps`: a
  /// reduction over the classes, read back as an index.
  static Value nextOfClass(OpBuilder &b, Location loc, SkipOp op,
                           ArrayRef<int64_t> targets, Value posTensor,
                           int64_t steps) {
    MLIRContext *ctx = b.getContext();
    Type i32 = b.getI32Type();
    auto outType = RankedTensorType::get({}, i32);
    Value init = b.create<tensor::EmptyOp>(loc, outType.getShape(), i32);
    Value limit = b.create<arith::ConstantIntOp>(loc, steps, 32);
    Value filled = b.create<linalg::FillOp>(loc, limit, init).getResult(0);
    Value classes = op.getClasses();
    auto classType = cast<RankedTensorType>(classes.getType());
    Type classElem = classType.getElementType();
    AffineMap zero = AffineMap::get(1, 0, {getAffineConstantExpr(0, ctx)}, ctx);
    Value next =
        b.create<linalg::GenericOp>(
             loc, outType, ValueRange{classes, posTensor}, filled,
             ArrayRef<AffineMap>{b.getMultiDimIdentityMap(1), zero,
                                 AffineMap::get(1, 0, {}, ctx)},
             ArrayRef<utils::IteratorType>{utils::IteratorType::reduction},
             [&](OpBuilder &nb, Location nloc, ValueRange args) {
               Value cls = args[0], pos = args[1], acc = args[2];
               Value p = nb.create<arith::IndexCastOp>(
                   nloc, i32, nb.create<linalg::IndexOp>(nloc, 0));
               Value hit = nb.create<arith::ConstantIntOp>(nloc, 0, 1);
               for (int64_t t : targets)
                 hit = nb.create<arith::OrIOp>(
                     nloc, hit,
                     nb.create<arith::CmpIOp>(
                         nloc, arith::CmpIPredicate::eq, cls,
                         nb.create<arith::ConstantIntOp>(nloc, t, classElem)));
               Value after = nb.create<arith::CmpIOp>(
                   nloc, arith::CmpIPredicate::sgt, p, pos);
               Value take = nb.create<arith::AndIOp>(nloc, hit, after);
               Value smaller = nb.create<arith::CmpIOp>(
                   nloc, arith::CmpIPredicate::slt, p, acc);
               Value r = nb.create<arith::SelectOp>(
                   nloc, nb.create<arith::AndIOp>(nloc, take, smaller), p, acc);
               nb.create<linalg::YieldOp>(nloc, r);
             })
            .getResult(0);
    Value v = b.create<tensor::ExtractOp>(loc, next, ValueRange{});
    return b.create<arith::IndexCastOp>(loc, b.getIndexType(), v);
  }
};

} // namespace
