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
/// The kinds whose next position is pos + 1 (docs/skim.md). Every kind
/// has its case, so that a new one is decided here (-Wswitch).
bool movesToNext(SkipActionKind kind) {
  switch (kind) {
  case SkipActionKind::read:
  case SkipActionKind::skim:
  case SkipActionKind::skip:
  case SkipActionKind::partial:
  case SkipActionKind::flush:
  case SkipActionKind::upper:
    return true;
  case SkipActionKind::jump:
  case SkipActionKind::shuttle:
  case SkipActionKind::jump_to:
  case SkipActionKind::reread:
  case SkipActionKind::stop:
    return false;
  }
  llvm_unreachable("unknown skip action kind");
}

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
    Value seq = op.getSequence();
    Value x = gatherAt(ab, loc, seq, posTensor, stepType);

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
      if (movesToNext(attr.getKind())) {
        next = cb.create<arith::AddIOp>(loc, pos, one);
      } else {
        switch (attr.getKind()) {
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
        default:
          llvm_unreachable("moves to the next position");
        }
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
      int64_t rows = std::min(steps, budget), bytes = 0;
      if (int count = hoistProjections(loop, x, seq, rows, posTensor, bytes)) {
        // For dyncc compile --stats.
        auto module = op->getParentOfType<ModuleOp>();
        SmallVector<Attribute> notes;
        if (auto old = module->getAttrOfType<ArrayAttr>(dyncc::kHoistedProjectionsAttr))
          llvm::append_range(notes, old);
        notes.push_back(b.getStringAttr(fmt::format(
            "skip{}: {} input projection(s) of {} positions computed before "
            "the loop ({} bytes)",
            index, count, rows, bytes)));
        module->setAttr(dyncc::kHoistedProjectionsAttr, b.getArrayAttr(notes));
      }
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
    return llvm::all_of(actions.getAsRange<SkipActionAttr>(),
                        [](auto a) { return movesToNext(a.getKind()); });
  }

  /// Input projections out of the loop (docs/skim.md). A loop that visits
  /// positions 0 .. rows-1 in order computes, at every step, f(x) for each
  /// linalg op f with a reduction that reads the step input x, as itself or
  /// with a unit dimension inserted (tensor.expand_shape: [1, K] for
  /// nn.Linear's x W^T, [K, 1] for W @ x[:, None]), next to values defined
  /// outside the loop, into a fill of such a value: an LSTM's W_ih x. The
  /// same op over the rows seq[0 .. rows-1] computes every step's f(x) at
  /// once before the loop (one GEMM where there were GEMVs, each streaming
  /// the weights), and the step reads its part: with a unit dimension (a
  /// parallel loop that only x and the result index), that loop runs over
  /// the rows and the step reads the result at the position there; for x
  /// itself, a new outer loop over the rows indexes x and the result. The
  /// part is the same sum of the same products; only the order of the
  /// additions may differ.
  /// Returns how many it hoisted; adds their tables' bytes to `bytes`.
  static int hoistProjections(scf::WhileOp loop, Value x, Value seq,
                              int64_t rows, Value posTensor, int64_t &bytes) {
    auto stepType = cast<RankedTensorType>(x.getType());
    if (rows <= 0 || !stepType.hasStaticShape())
      return 0; // no step, or a shape the tables cannot take
    struct Projection {
      linalg::LinalgOp op;
      unsigned operand;
      int unitAt; // x's unit dimension, whose loop runs over the rows; -1: x
    };
    SmallVector<Projection> found;
    int64_t tableBytes = 0;
    auto consider = [&](Value v, int unitAt) {
      for (OpOperand &use : v.getUses()) {
        auto op = dyn_cast<linalg::LinalgOp>(use.getOwner());
        if (!op || !op.isDpsInput(&use) ||
            !hoistable(loop, op, use.getOperandNumber(), unitAt))
          continue;
        // rows x the row's bytes, without overflow: past the budget left,
        // this one stays in the step.
        auto rowType = cast<RankedTensorType>(op->getResult(0).getType());
        int64_t elements = rowType.getNumElements(),
                width = std::max<int64_t>(
                    1, rowType.getElementTypeBitWidth() / 8);
        if (elements > kMaxTableBytes ||
            elements * width > (kMaxTableBytes - tableBytes) / rows)
          continue;
        tableBytes += rows * elements * width;
        found.push_back({op, use.getOperandNumber(), unitAt});
      }
    };
    consider(x, -1);
    for (Operation *user : x.getUsers())
      if (auto expand = dyn_cast<tensor::ExpandShapeOp>(user)) {
        // x with one unit dimension inserted at u.
        ArrayRef<int64_t> shape = expand.getResultType().getShape();
        for (unsigned u = 0; u < shape.size(); ++u) {
          SmallVector<int64_t> rest(shape);
          rest.erase(rest.begin() + u);
          if (shape[u] == 1 && ArrayRef(rest) == stepType.getShape()) {
            consider(expand.getResult(), u);
            break;
          }
        }
      }
    if (found.empty())
      return 0;
    bytes += tableBytes;

    Location loc = loop.getLoc();
    MLIRContext *ctx = loop.getContext();
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
    for (auto [op, operand, unitAt] : found) {
      auto rowType = cast<RankedTensorType>(op->getResult(0).getType());
      // The table's op: with a unit dimension, its loop over the rows (the
      // first dimension of seq and of the table: each step's part one
      // contiguous row); else a new outer loop that indexes them.
      SmallVector<AffineMap> maps = op.getIndexingMapsArray();
      SmallVector<utils::IteratorType> iterators = op.getIteratorTypesArray();
      AffineMap &xMap = maps[operand];
      unsigned rowAt = 0; // the rows' dimension in the table
      if (unitAt >= 0) {
        SmallVector<AffineExpr> results(xMap.getResults());
        AffineExpr unit = results[unitAt];
        results.erase(results.begin() + unitAt);
        results.insert(results.begin(), unit);
        xMap = AffineMap::get(xMap.getNumDims(), 0, results, ctx);
        AffineMap &outMap = maps.back();
        rowAt = *outMap.getResultPosition(unit);
        results.assign(outMap.getResults().begin(), outMap.getResults().end());
        results.erase(results.begin() + rowAt);
        results.insert(results.begin(), unit);
        outMap = AffineMap::get(outMap.getNumDims(), 0, results, ctx);
      } else {
        iterators.insert(iterators.begin(), utils::IteratorType::parallel);
        for (auto [i, m] : llvm::enumerate(maps)) {
          m = m.shiftDims(1);
          SmallVector<AffineExpr> results(m.getResults());
          if (i == operand || i == maps.size() - 1)
            results.insert(results.begin(), getAffineDimExpr(0, ctx));
          m = AffineMap::get(m.getNumDims(), 0, results, ctx);
        }
      }
      SmallVector<int64_t> tableShape(rowType.getShape());
      if (unitAt >= 0)
        tableShape.erase(tableShape.begin() + rowAt);
      tableShape.insert(tableShape.begin(), rows);
      auto tableType =
          RankedTensorType::get(tableShape, rowType.getElementType());
      SmallVector<Value> inputs;
      for (OpOperand *in : op.getDpsInputOperands())
        inputs.push_back(in->getOperandNumber() == operand
                             ? input
                             : outside(hb, loop, in->get()));
      auto fill = op.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
      Value init =
          hb.create<linalg::FillOp>(
                loc, outside(hb, loop, fill.getInputs()[0]),
                hb.create<tensor::EmptyOp>(loc, tableShape,
                                           rowType.getElementType())
                    .getResult())
              .getResult(0);
      auto all = hb.create<linalg::GenericOp>(loc, TypeRange{tableType}, inputs,
                                              ValueRange{init}, maps, iterators);
      IRMapping none;
      op->getRegion(0).cloneInto(&all.getRegion(), none);

      // In the step: part[i...] = table[pos, i...], the unit dimension at
      // rowAt (0 there) left out.
      OpBuilder rb(op);
      Value row = gatherAt(rb, loc, all.getResult(0), posTensor, rowType,
                           unitAt >= 0 ? std::optional<unsigned>(rowAt)
                                       : std::nullopt);
      op->getResult(0).replaceAllUsesWith(row);
      Value read = op->getOperand(operand);
      op->erase();
      if (read != x && read.use_empty())
        read.getDefiningOp()->erase();
      if (fill->use_empty())
        fill.erase();
    }
    return (int)found.size();
  }

  /// A tensor of `type` whose element i... is src[pt[0], i...] (the step
  /// input, a hoisted table's row), where `pt` is the position as a
  /// tensor<1xi32>; `unit`: a unit dimension of `type` that src lacks.
  static Value gatherAt(OpBuilder &b, Location loc, Value src, Value pt,
                        RankedTensorType type,
                        std::optional<unsigned> unit = std::nullopt) {
    unsigned rank = type.getRank();
    MLIRContext *ctx = b.getContext();
    Value init =
        b.create<tensor::EmptyOp>(loc, type.getShape(), type.getElementType());
    return b
        .create<linalg::GenericOp>(
            loc, type, pt, init,
            ArrayRef<AffineMap>{
                AffineMap::get(rank, 0, {getAffineConstantExpr(0, ctx)}, ctx),
                b.getMultiDimIdentityMap(rank)},
            SmallVector<utils::IteratorType>(rank,
                                             utils::IteratorType::parallel),
            [&](OpBuilder &nb, Location nloc, ValueRange args) {
              SmallVector<Value> at{nb.create<arith::IndexCastOp>(
                  nloc, nb.getIndexType(), args[0])};
              for (unsigned d = 0; d < rank; ++d)
                if (d != unit)
                  at.push_back(nb.create<linalg::IndexOp>(nloc, d));
              nb.create<linalg::YieldOp>(
                  nloc, nb.create<tensor::ExtractOp>(nloc, src, at).getResult());
            })
        .getResult(0);
  }

  static bool definedOutside(scf::WhileOp loop, Value v) {
    Operation *owner = v.getParentRegion()->getParentOp();
    return owner != loop && !loop->isProperAncestor(owner);
  }

  /// Whether `v` is the same at every step: defined outside `loop`, or a
  /// constant.
  static bool invariant(scf::WhileOp loop, Value v) {
    return definedOutside(loop, v) || v.getDefiningOp<arith::ConstantOp>();
  }

  /// An invariant `v` for use before `loop`: itself, or a clone of the
  /// constant inside.
  static Value outside(OpBuilder &b, scf::WhileOp loop, Value v) {
    return definedOutside(loop, v) ? v
                                   : b.clone(*v.getDefiningOp())->getResult(0);
  }

  /// Whether `op`, reading the step input at operand `operand` (with a
  /// unit dimension at `unitAt`, or -1), computes its result from that
  /// input alone (see hoistProjections).
  static bool hoistable(scf::WhileOp loop, linalg::LinalgOp op,
                        unsigned operand, int unitAt) {
    if (op->getNumResults() != 1 || op.getNumDpsInits() != 1 ||
        op.getNumReductionLoops() == 0 || !op.hasPureTensorSemantics() ||
        op->getNumRegions() != 1)
      return false;
    auto rowType = dyn_cast<RankedTensorType>(op->getResult(0).getType());
    if (!rowType || !rowType.hasStaticShape())
      return false;
    AffineMap xMap = op.getMatchingIndexingMap(&op->getOpOperand(operand));
    AffineMap outMap = op.getIndexingMapMatchingResult(op->getResult(0));
    // The unit dimension's loop: parallel, of extent 1 in the result, and
    // indexed only by x's unit dimension and one of the result's.
    std::optional<unsigned> r;
    if (unitAt >= 0) {
      auto dim = dyn_cast<AffineDimExpr>(xMap.getResult(unitAt));
      std::optional<unsigned> at =
          dim ? outMap.getResultPosition(dim) : std::nullopt;
      if (!at || rowType.getDimSize(*at) != 1 ||
          op.getIteratorTypesArray()[dim.getPosition()] !=
              utils::IteratorType::parallel)
        return false;
      r = dim.getPosition();
    }
    // How many of m's results read the unit dimension's loop.
    auto rowUses = [&](AffineMap m) {
      unsigned n = 0;
      for (AffineExpr e : m.getResults())
        n += r && e.isFunctionOfDim(*r);
      return n;
    };
    if (r && (rowUses(xMap) != 1 || rowUses(outMap) != 1))
      return false;
    for (OpOperand *in : op.getDpsInputOperands())
      if (in->getOperandNumber() != operand &&
          (!invariant(loop, in->get()) ||
           rowUses(op.getMatchingIndexingMap(in))))
        return false;
    auto fill = op.getDpsInits()[0].getDefiningOp<linalg::FillOp>();
    if (!fill || !invariant(loop, fill.getInputs()[0]))
      return false;
    // The body sees elements only (no linalg.index: it would see the row),
    // and nothing of the loop (it moves out of it).
    Region &body = op->getRegion(0);
    WalkResult walk = body.walk([&](Operation *inner) {
      if (isa<linalg::IndexOp>(inner))
        return WalkResult::interrupt();
      for (Value v : inner->getOperands())
        if (!body.isAncestor(v.getParentRegion()) && !definedOutside(loop, v))
          return WalkResult::interrupt();
      return WalkResult::advance();
    });
    return !walk.wasInterrupted();
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
