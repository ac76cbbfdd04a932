//===- ExitCriteria.h - exit criteria as linalg ops -------------*- C++ -*-===//
//
// The exit criteria of dyn.exit_if (docs/early-exit.md) built as linalg ops
// on [rows, classes] logits: used by -dyn-lower-exit-if and by the batched
// stages of -dyn-batch-buckets.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_PASSES_EXITCRITERIA_H
#define DYNCC_PASSES_EXITCRITERIA_H

#include "dialect/DynDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <limits>

namespace dyncc::exit {

using namespace mlir;

using Body = function_ref<void(OpBuilder &, Location, ValueRange)>;

/// Builds linalg ops on [B, C] logits.
class Builder {
public:
  Builder(OpBuilder &b, Location loc, int64_t batch, int64_t classes)
      : b(b), loc(loc), batch(batch), classes(classes) {}

  OpBuilder &b;
  Location loc;
  int64_t batch, classes;

  AffineMap rows() { return AffineMap::getMultiDimIdentityMap(2, b.getContext()); }
  AffineMap row() {
    return AffineMap::get(2, 0, {b.getAffineDimExpr(0)}, b.getContext());
  }
  AffineMap col() {
    return AffineMap::get(2, 0, {b.getAffineDimExpr(1)}, b.getContext());
  }
  AffineMap id1() { return AffineMap::getMultiDimIdentityMap(1, b.getContext()); }
  AffineMap scalar1() { return AffineMap::get(1, 0, {b.getAffineConstantExpr(0)}, b.getContext()); }

  Value empty(ArrayRef<int64_t> shape, Type elem) {
    return b.create<tensor::EmptyOp>(loc, shape, elem);
  }
  Value fill(ArrayRef<int64_t> shape, TypedAttr value) {
    Value cst = b.create<arith::ConstantOp>(loc, value);
    return b.create<linalg::FillOp>(loc, cst, empty(shape, value.getType()))
        .getResult(0);
  }

  /// A generic over `loops` loops; `iterators` "p"/"r" per loop.
  SmallVector<Value> generic(ValueRange ins, ArrayRef<AffineMap> inMaps,
                             ValueRange inits, ArrayRef<AffineMap> outMaps,
                             StringRef iterators, Body body) {
    SmallVector<AffineMap> maps(inMaps);
    llvm::append_range(maps, outMaps);
    SmallVector<utils::IteratorType> its;
    for (char c : iterators)
      its.push_back(c == 'r' ? utils::IteratorType::reduction
                             : utils::IteratorType::parallel);
    SmallVector<Type> types;
    for (Value v : inits)
      types.push_back(v.getType());
    auto op = b.create<linalg::GenericOp>(loc, types, ins, inits, maps, its, body);
    return SmallVector<Value>(op->getResults());
  }

  Value f32(double v) {
    return b.create<arith::ConstantOp>(loc, b.getF32FloatAttr(v));
  }

  /// Row-wise reduction of [B, C] into [B] with `combine(x, acc)`.
  Value reduceRows(Value z, TypedAttr init,
                   function_ref<Value(OpBuilder &, Location, Value, Value)> combine) {
    Value acc = fill({batch}, init);
    return generic({z}, {rows()}, {acc}, {row()}, "pr",
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     nb.create<linalg::YieldOp>(l, combine(nb, l, a[0], a[1]));
                   })[0];
  }

  /// Whether each row has a NaN ([B] i1).
  Value hasNaN(Value z) {
    return reduceRows(z, b.getBoolAttr(false),
                      [](OpBuilder &nb, Location l, Value x, Value acc) -> Value {
                        Value nan = nb.create<arith::CmpFOp>(
                            l, arith::CmpFPredicate::UNO, x, x);
                        return nb.create<arith::OrIOp>(l, nan, acc);
                      });
  }

  /// softmax(z / temperature) by rows, max subtracted ([B, C]).
  Value softmax(Value z, double temperature) {
    Type f32t = b.getF32Type();
    Value u = z;
    if (temperature != 1.0) {
      Value t = f32(temperature);
      u = generic({z}, {rows()}, {empty({batch, classes}, f32t)}, {rows()}, "pp",
                  [&](OpBuilder &nb, Location l, ValueRange a) {
                    nb.create<linalg::YieldOp>(l, nb.create<arith::DivFOp>(l, a[0], t).getResult());
                  })[0];
    }
    Value m = reduceRows(u, b.getF32FloatAttr(-std::numeric_limits<float>::infinity()),
                         [](OpBuilder &nb, Location l, Value x, Value acc) -> Value {
                           return nb.create<arith::MaxNumFOp>(l, x, acc);
                         });
    Value e = generic({u, m}, {rows(), row()}, {empty({batch, classes}, f32t)}, {rows()}, "pp",
                      [&](OpBuilder &nb, Location l, ValueRange a) {
                        Value d = nb.create<arith::SubFOp>(l, a[0], a[1]);
                        nb.create<linalg::YieldOp>(l, nb.create<math::ExpOp>(l, d).getResult());
                      })[0];
    Value s = reduceRows(e, b.getF32FloatAttr(0.0),
                         [](OpBuilder &nb, Location l, Value x, Value acc) -> Value {
                           return nb.create<arith::AddFOp>(l, x, acc);
                         });
    return generic({e, s}, {rows(), row()}, {empty({batch, classes}, f32t)}, {rows()}, "pp",
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     nb.create<linalg::YieldOp>(l, nb.create<arith::DivFOp>(l, a[0], a[1]).getResult());
                   })[0];
  }

  /// First argmax by rows ([B] i64).
  Value argmax(Value z) {
    Value best = fill({batch}, b.getF32FloatAttr(-std::numeric_limits<float>::infinity()));
    Value at = fill({batch}, b.getI64IntegerAttr(0));
    return generic({z}, {rows()}, {best, at}, {row(), row()}, "pr",
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     Value j = nb.create<arith::IndexCastOp>(
                         l, nb.getI64Type(), nb.create<linalg::IndexOp>(l, 1));
                     Value gt = nb.create<arith::CmpFOp>(l, arith::CmpFPredicate::OGT, a[0], a[1]);
                     Value nb1 = nb.create<arith::SelectOp>(l, gt, a[0], a[1]);
                     Value na = nb.create<arith::SelectOp>(l, gt, j, a[2]);
                     nb.create<linalg::YieldOp>(l, ValueRange{nb1, na});
                   })[1];
  }

  /// Elementwise over [B]: f(args...).
  Value map1(ValueRange ins, Type elem,
             function_ref<Value(OpBuilder &, Location, ValueRange)> f) {
    SmallVector<AffineMap> maps(ins.size(), id1());
    return generic(ins, maps, {empty({batch}, elem)}, {id1()}, "p",
                   [&](OpBuilder &nb, Location l, ValueRange a) {
                     nb.create<linalg::YieldOp>(l, f(nb, l, a.drop_back()));
                   })[0];
  }
};

struct ChainState {
  Value prevClass; // [N] i64, -1 for "no class" (patience)
  Value count;     // [N] i64 (patience)
  Value votes;     // [N, C] f32 (votes)
  Value done;      // [N] i1, token-level: exited at an earlier point
  Value frozen;    // [N, D], token-level: the state handed to the region
};


/// [B, S, ...] -> [B*S, ...]: the two leading dimensions as one.
inline Value flattenLeading(OpBuilder &b, Location loc, Value v) {
  auto t = cast<RankedTensorType>(v.getType());
  SmallVector<ReassociationIndices> groups{{0, 1}};
  SmallVector<int64_t> shape{t.getDimSize(0) * t.getDimSize(1)};
  for (int64_t d = 2; d < t.getRank(); ++d) {
    groups.push_back({d});
    shape.push_back(t.getDimSize(d));
  }
  return b.create<tensor::CollapseShapeOp>(
      loc, RankedTensorType::get(shape, t.getElementType()), v, groups);
}

/// The argument of `fn` holding runtime parameter `p` ([N] f32, marked
/// `dyn.param`): added on first use, remembered in `args` by name.
Value runtimeParamArgument(func::FuncOp fn, dyn::RuntimeParamAttr p,
                           llvm::StringMap<Value> &args);

/// The exit flag of every row at `op` ([rows] i1) for logits `z` ([rows,
/// classes], f32) and the optional `score`; updates the chain state of the
/// criteria with memory. `param` gives the value holding a runtime parameter.
FailureOr<Value> buildExitFlags(dyn::ExitIfOp op, Builder &g, ChainState &state,
                                Value z, Value score,
                                function_ref<Value(dyn::RuntimeParamAttr)> param);

} // namespace dyncc::exit

#endif // DYNCC_PASSES_EXITCRITERIA_H
