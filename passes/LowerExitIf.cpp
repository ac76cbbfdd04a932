//===- LowerExitIf.cpp - early exit as control flow -----------------------===//
//
// Lowers every chain of sample-level dyn.exit_if ops (docs/early-exit.md):
//
//   %r = dyn.exit_if %z criterion C layer l { R; dyn.yield %deeper }
//
// becomes, per exit point, the criterion as linalg ops giving one exit flag
// per sample, then
//
//   %all = every sample exited (a reduction), %c = tensor.extract %all[0]
//   %r, %layer = scf.if %c {
//     yield %z, l                          // nothing deeper runs
//   } else {
//     R (with the inner exit points lowered the same way)
//     yield select(flag, %z, %deeper), select(flag, l, %deeper_layer)
//   }
//
// so that at batch 1 the rest of the network does not run once the sample
// exited, and at batch B every sample keeps its first exit. The exit layer of
// every sample becomes an extra result `exit_layer` (i32, [B]) of the
// function. Criteria with memory (patience, votes) thread their state along
// the chain. Thresholds are runtime parameters: each `#dyn.param` used
// becomes a function argument `tensor<Nxf32> {dyn.param = "name"}` that the
// runtime binds to the parameter's current value.
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "passes/ExitCriteria.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"

#include <limits>

namespace dyncc {
#define GEN_PASS_DEF_DYNLOWEREXITIF
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;
using namespace dyncc::dyn;

namespace {

using dyncc::exit::Builder;
using dyncc::exit::ChainState;

struct DynLowerExitIfPass
    : public dyncc::impl::DynLowerExitIfBase<DynLowerExitIfPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    for (func::FuncOp fn : funcs)
      if (failed(lowerFunction(fn)))
        return signalPassFailure();
  }

  llvm::StringMap<Value> params;

  /// The argument holding runtime parameter `p` (added on first use).
  Value paramValue(func::FuncOp fn, RuntimeParamAttr p) {
    return dyncc::exit::runtimeParamArgument(fn, p, params);
  }

  LogicalResult lowerFunction(func::FuncOp fn) {
    params.clear();
    SmallVector<ExitIfOp> roots;
    fn.walk([&](ExitIfOp op) {
      if (!op.getPreviousInChain())
        roots.push_back(op);
    });
    if (roots.empty())
      return success();
    SmallVector<Value> layers;
    for (ExitIfOp root : roots) {
      if (root->getParentOp() != fn)
        return root.emitError("an exit chain must start in the function body "
                              "(not inside another region)");
      FailureOr<Value> layer = lowerExit(root, fn, ChainState{});
      if (failed(layer))
        return failure();
      layers.push_back(*layer);
    }
    // The exit layers become extra results of the function.
    auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
    SmallVector<Value> results(ret.getOperands());
    unsigned first = results.size();
    llvm::append_range(results, layers);
    OpBuilder b(ret);
    b.create<func::ReturnOp>(ret.getLoc(), results);
    ret.erase();
    SmallVector<Type> types(fn.getResultTypes());
    for (Value l : layers)
      types.push_back(l.getType());
    fn.setFunctionType(FunctionType::get(fn.getContext(), fn.getArgumentTypes(), types));
    for (auto [i, l] : llvm::enumerate(layers))
      fn.setResultAttr(first + i, "dyn.name",
                       StringAttr::get(fn.getContext(),
                                       i == 0 ? "exit_layer"
                                              : "exit_layer" + std::to_string(i + 1)));
    return success();
  }

  FailureOr<Value> exitFlags(ExitIfOp op, func::FuncOp fn, Builder &g,
                             ChainState &state, Value z, Value score) {
    return dyncc::exit::buildExitFlags(
        op, g, state, z, score,
        [&](RuntimeParamAttr p) { return paramValue(fn, p); });
  }

  /// [B, S, ...] -> [B*S, ...] (token-level values are handled as rows).
  static Value flatten(OpBuilder &b, Location loc, Value v) {
    return dyncc::exit::flattenLeading(b, loc, v);
  }

  /// The inverse of flatten, to `type`.
  static Value unflatten(OpBuilder &b, Location loc, Value v, RankedTensorType type) {
    SmallVector<ReassociationIndices> groups{{0, 1}};
    for (int64_t d = 2; d < type.getRank(); ++d)
      groups.push_back({d});
    return b.create<tensor::ExpandShapeOp>(loc, type, v, groups);
  }

  /// Lowers `op` and the exit points nested in it; returns its exit layers.
  FailureOr<Value> lowerExit(ExitIfOp op, func::FuncOp fn, ChainState state) {
    OpBuilder b(op);
    Location loc = op.getLoc();
    auto zType = cast<RankedTensorType>(op.getLogits().getType());
    bool token = op.isTokenLevel();
    // Rows: samples, or the tokens of every sample.
    Value z = token ? flatten(b, loc, op.getLogits()) : op.getLogits();
    Value score = op.getScore();
    if (token && score)
      score = flatten(b, loc, score);
    auto rowsType = cast<RankedTensorType>(z.getType());
    Builder g(b, loc, rowsType.getDimSize(0), rowsType.getDimSize(1));
    FailureOr<Value> flags = exitFlags(op, fn, g, state, z, score);
    if (failed(flags))
      return failure();

    // Token level: who is done after this point, and the state the deeper
    // layers see (tokens done earlier keep the state of their exit).
    Value done = *flags;
    Value frozenFlat;
    if (token) {
      Value hidden = flatten(b, loc, op.getHidden());
      if (state.done) {
        done = g.map1({state.done, *flags}, b.getI1Type(),
                      [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                        return nb.create<arith::OrIOp>(l, a[0], a[1]);
                      });
        auto ht = cast<RankedTensorType>(hidden.getType());
        frozenFlat = g.generic({state.done, state.frozen, hidden},
                               {g.row(), g.rows(), g.rows()},
                               {g.empty(ht.getShape(), ht.getElementType())},
                               {g.rows()}, "pp",
                               [](OpBuilder &nb, Location l, ValueRange a) {
                                 nb.create<linalg::YieldOp>(l, nb.create<arith::SelectOp>(l, a[0], a[1], a[2]).getResult());
                               })[0];
      } else {
        frozenFlat = hidden;
      }
      state.done = done;
      state.frozen = frozenFlat;
    }

    // Whether every row exited: a reduction into a rank-0 tensor.
    Value all = g.generic({done}, {g.id1()}, {g.fill({}, b.getBoolAttr(true))},
                          {AffineMap::get(1, 0, {}, b.getContext())}, "r",
                          [](OpBuilder &nb, Location l, ValueRange a) {
                            nb.create<linalg::YieldOp>(l, nb.create<arith::AndIOp>(l, a[0], a[1]).getResult());
                          })[0];
    Value cond = b.create<tensor::ExtractOp>(loc, all, ValueRange{});
    SmallVector<int64_t> layerShape(zType.getShape().drop_back());
    auto layerType = RankedTensorType::get(layerShape, b.getI32Type());
    int64_t layer = op.getLayer();
    Value frozen = token ? unflatten(b, loc, frozenFlat,
                                     cast<RankedTensorType>(op.getHidden().getType()))
                         : Value();
    auto ifOp = b.create<scf::IfOp>(loc, TypeRange{zType, layerType}, cond,
                                    /*withElseRegion=*/true);
    {
      OpBuilder tb = ifOp.getThenBodyBuilder();
      Builder tg(tb, loc, g.batch, g.classes);
      Value l = tg.fill(layerShape, tb.getI32IntegerAttr(layer));
      tb.create<scf::YieldOp>(loc, ValueRange{op.getLogits(), l});
    }
    // The else branch: the region's body, then the per-row merge.
    Block *elseBlock = ifOp.elseBlock();
    Block &body = op.getBody().front();
    if (token)
      body.getArgument(0).replaceAllUsesWith(frozen);
    auto yield = cast<YieldOp>(body.getTerminator());
    elseBlock->getOperations().splice(elseBlock->begin(), body.getOperations(),
                                      body.begin(), std::prev(body.end()));
    // Lower the next exit point of the chain, now inside the else branch.
    SmallVector<ExitIfOp> inner;
    for (Operation &o : *elseBlock)
      if (auto e = dyn_cast<ExitIfOp>(o))
        inner.push_back(e);
    llvm::DenseMap<Value, Value> layerOf;
    for (ExitIfOp e : inner) {
      FailureOr<Value> l = lowerExit(e, fn, state);
      if (failed(l))
        return failure();
      layerOf[lastResult] = *l;
    }
    if (!elseBlock->empty() && isa<scf::YieldOp>(elseBlock->back()))
      elseBlock->back().erase();
    OpBuilder eb = OpBuilder::atBlockEnd(elseBlock);
    Builder egen(eb, loc, g.batch, g.classes);
    Value deeper = yield.getValues()[0];
    auto it = layerOf.find(deeper);
    Value deeperLayer = it != layerOf.end()
                            ? it->second
                            : egen.fill(layerShape, eb.getI32IntegerAttr(layer + 1));
    Value deeperRows = token ? flatten(eb, loc, deeper) : deeper;
    Value deeperLayerRows = token ? flatten(eb, loc, deeperLayer) : deeperLayer;
    AffineMap rows = egen.rows(), row = egen.row();
    Value mergedZ = egen.generic({*flags, z, deeperRows}, {row, rows, rows},
                                 {egen.empty({g.batch, g.classes}, zType.getElementType())}, {rows}, "pp",
                                 [](OpBuilder &nb, Location l, ValueRange a) {
                                   nb.create<linalg::YieldOp>(l, nb.create<arith::SelectOp>(l, a[0], a[1], a[2]).getResult());
                                 })[0];
    Value lconst = eb.create<arith::ConstantOp>(loc, eb.getI32IntegerAttr(layer));
    Value mergedL = egen.generic({*flags, deeperLayerRows}, {egen.id1(), egen.id1()},
                                 {egen.empty({g.batch}, eb.getI32Type())}, {egen.id1()}, "p",
                                 [&](OpBuilder &nb, Location l, ValueRange a) {
                                   nb.create<linalg::YieldOp>(l, nb.create<arith::SelectOp>(l, a[0], lconst, a[1]).getResult());
                                 })[0];
    if (token) {
      mergedZ = unflatten(eb, loc, mergedZ, zType);
      mergedL = unflatten(eb, loc, mergedL, layerType);
    }
    eb.create<scf::YieldOp>(loc, ValueRange{mergedZ, mergedL});
    yield.erase();
    op.getResult().replaceAllUsesWith(ifOp.getResult(0));
    lastResult = ifOp.getResult(0);
    op.erase();
    return ifOp.getResult(1);
  }

  Value lastResult;
};

} // namespace

FailureOr<Value> dyncc::exit::buildExitFlags(
  ExitIfOp op, Builder &g, ChainState &state, Value z, Value score,
  function_ref<Value(RuntimeParamAttr)> param) {
  OpBuilder &b = g.b;
  Location loc = g.loc;
  if (!cast<RankedTensorType>(z.getType()).getElementType().isF32())
    return op.emitError("exit criteria are lowered for f32 logits");
  Value nan = g.hasNaN(z);
  Type i1 = b.getI1Type();
  auto notNanAnd = [&](Value cond) {
    return g.map1({nan, cond}, i1, [](OpBuilder &nb, Location l, ValueRange a) -> Value {
      Value one = nb.create<arith::ConstantIntOp>(l, 1, 1);
      Value ok = nb.create<arith::XOrIOp>(l, a[0], one);
      return nb.create<arith::AndIOp>(l, ok, a[1]);
    });
  };
  // theta[0] read per sample through a constant map.
  auto scalarParam = [&](RuntimeParamAttr p) -> Value { return param(p); };
  Attribute crit = op.getCriterion();
  if (auto c = dyn_cast<EntropyCriterionAttr>(crit)) {
    Value p = g.softmax(z, 1.0);
    Value h = g.reduceRows(p, b.getF32FloatAttr(0.0),
                           [](OpBuilder &nb, Location l, Value x, Value acc) -> Value {
                             Value zero = nb.create<arith::ConstantOp>(l, nb.getF32FloatAttr(0.0));
                             Value pos = nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGT, x, zero);
                             Value t = nb.create<arith::MulFOp>(l, x, nb.create<math::LogOp>(l, x));
                             Value term = nb.create<arith::SelectOp>(l, pos, t, zero);
                             return nb.create<arith::SubFOp>(l, acc, term);
                           });
    Value theta = scalarParam(c.getThreshold());
    Value below = g.generic({h, theta}, {g.id1(), g.scalar1()}, {g.empty({g.batch}, i1)}, {g.id1()}, "p",
                            [](OpBuilder &nb, Location l, ValueRange a) {
                              nb.create<linalg::YieldOp>(l, nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OLT, a[0], a[1]).getResult());
                            })[0];
    return notNanAnd(below);
  }
  if (auto c = dyn_cast<MaxProbCriterionAttr>(crit)) {
    Value p = g.softmax(z, c.getTemperature().getValueAsDouble());
    Value m = g.reduceRows(p, b.getF32FloatAttr(0.0),
                           [](OpBuilder &nb, Location l, Value x, Value acc) -> Value {
                             return nb.create<arith::MaxNumFOp>(l, x, acc);
                           });
    Value theta = scalarParam(c.getThreshold());
    Value above = g.generic({m, theta}, {g.id1(), g.scalar1()}, {g.empty({g.batch}, i1)}, {g.id1()}, "p",
                            [](OpBuilder &nb, Location l, ValueRange a) {
                              nb.create<linalg::YieldOp>(l, nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGT, a[0], a[1]).getResult());
                            })[0];
    return notNanAnd(above);
  }
  if (auto c = dyn_cast<PerClassCriterionAttr>(crit)) {
    Value p = g.softmax(z, 1.0);
    Value cls = g.argmax(z);
    Value theta = scalarParam(c.getThresholds());
    // p[b, c*] > theta[c*], through a gather of both.
    Value above = g.generic({cls}, {g.id1()}, {g.empty({g.batch}, i1)}, {g.id1()}, "p",
                            [&](OpBuilder &nb, Location l, ValueRange a) {
                              Value ci = nb.create<arith::IndexCastOp>(l, nb.getIndexType(), a[0]);
                              Value bi = nb.create<linalg::IndexOp>(l, 0);
                              Value pv = nb.create<tensor::ExtractOp>(l, p, ValueRange{bi, ci});
                              Value tv = nb.create<tensor::ExtractOp>(l, theta, ValueRange{ci});
                              nb.create<linalg::YieldOp>(l, nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGT, pv, tv).getResult());
                            })[0];
    return notNanAnd(above);
  }
  if (auto c = dyn_cast<LearnedScoreCriterionAttr>(crit)) {
    Value s = score;
    auto st = cast<RankedTensorType>(s.getType());
    AffineMap sm = st.getRank() == 1
                       ? g.id1()
                       : AffineMap::get(1, 0, {b.getAffineDimExpr(0), b.getAffineConstantExpr(0)}, b.getContext());
    Value theta = scalarParam(c.getThreshold());
    Value above = g.generic({s, theta}, {sm, g.scalar1()}, {g.empty({g.batch}, i1)}, {g.id1()}, "p",
                            [](OpBuilder &nb, Location l, ValueRange a) {
                              nb.create<linalg::YieldOp>(l, nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGT, a[0], a[1]).getResult());
                            })[0];
    return notNanAnd(above);
  }
  // Criteria with memory: the class of each sample (-1 when NaN).
  Value cls = g.map1({g.argmax(z), nan}, b.getI64Type(),
                     [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                       Value none = nb.create<arith::ConstantIntOp>(l, -1, 64);
                       return nb.create<arith::SelectOp>(l, a[1], none, a[0]);
                     });
  if (auto c = dyn_cast<PatienceCriterionAttr>(crit)) {
    Value count;
    if (!state.prevClass) {
      count = g.fill({g.batch}, b.getI64IntegerAttr(0));
    } else {
      count = g.map1({cls, state.prevClass, state.count}, b.getI64Type(),
                     [](OpBuilder &nb, Location l, ValueRange a) -> Value {
                       Value none = nb.create<arith::ConstantIntOp>(l, -1, 64);
                       Value same = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq, a[0], a[1]);
                       Value valid = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::ne, a[0], none);
                       Value one = nb.create<arith::ConstantIntOp>(l, 1, 64);
                       Value zero = nb.create<arith::ConstantIntOp>(l, 0, 64);
                       Value inc = nb.create<arith::AddIOp>(l, a[2], one);
                       Value keep = nb.create<arith::AndIOp>(l, same, valid);
                       return nb.create<arith::SelectOp>(l, keep, inc, zero);
                     });
    }
    state.prevClass = cls;
    state.count = count;
    Value k = scalarParam(c.getK());
    return g.generic({count, k}, {g.id1(), g.scalar1()}, {g.empty({g.batch}, i1)}, {g.id1()}, "p",
                     [](OpBuilder &nb, Location l, ValueRange a) {
                       Value n = nb.create<arith::SIToFPOp>(l, nb.getF32Type(), a[0]);
                       nb.create<linalg::YieldOp>(l, nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGE, n, a[1]).getResult());
                     })[0];
  }
  if (auto c = dyn_cast<VotesCriterionAttr>(crit)) {
    SmallVector<Value> ins{cls};
    SmallVector<AffineMap> maps{g.row()};
    if (state.votes) {
      ins.push_back(state.votes);
      maps.push_back(g.rows());
    }
    bool hasPrev = static_cast<bool>(state.votes);
    Value votes = g.generic(ins, maps, {g.empty({g.batch, g.classes}, b.getF32Type())}, {g.rows()}, "pp",
                            [&](OpBuilder &nb, Location l, ValueRange a) {
                              Value j = nb.create<arith::IndexCastOp>(l, nb.getI64Type(), nb.create<linalg::IndexOp>(l, 1));
                              Value hit = nb.create<arith::CmpIOp>(l, arith::CmpIPredicate::eq, a[0], j);
                              Value one = nb.create<arith::ConstantOp>(l, nb.getF32FloatAttr(1.0));
                              Value zero = nb.create<arith::ConstantOp>(l, nb.getF32FloatAttr(0.0));
                              Value add = nb.create<arith::SelectOp>(l, hit, one, zero);
                              Value v = hasPrev ? nb.create<arith::AddFOp>(l, a[1], add).getResult() : add;
                              nb.create<linalg::YieldOp>(l, v);
                            })[0];
    state.votes = votes;
    Value most = g.reduceRows(votes, b.getF32FloatAttr(0.0),
                              [](OpBuilder &nb, Location l, Value x, Value acc) -> Value {
                                return nb.create<arith::MaxNumFOp>(l, x, acc);
                              });
    Value theta = scalarParam(c.getThreshold());
    return g.generic({most, theta}, {g.id1(), g.scalar1()}, {g.empty({g.batch}, i1)}, {g.id1()}, "p",
                     [](OpBuilder &nb, Location l, ValueRange a) {
                       nb.create<linalg::YieldOp>(l, nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGT, a[0], a[1]).getResult());
                     })[0];
  }
  return op.emitError("unknown exit criterion");
}

Value dyncc::exit::runtimeParamArgument(func::FuncOp fn, RuntimeParamAttr p,
                                        llvm::StringMap<Value> &args) {
  auto it = args.find(p.getName());
  if (it != args.end())
    return it->second;
  auto type = RankedTensorType::get({(int64_t)p.getValues().size()},
                                    Float32Type::get(fn.getContext()));
  unsigned index = fn.getNumArguments();
  fn.insertArgument(index, type, {}, fn.getLoc());
  fn.setArgAttr(index, dyncc::kParamAttrName,
                StringAttr::get(fn.getContext(), p.getName()));
  Value v = fn.getArgument(index);
  args[p.getName()] = v;
  return v;
}
