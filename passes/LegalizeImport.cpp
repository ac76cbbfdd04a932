//===- LegalizeImport.cpp - bring imported models into the accepted op set ===//
//
// Models imported from PyTorch and ONNX (torch-mlir's linalg-on-tensors) use
// forms that the hand-written subset of docs/ops.md does not. This pass
// rewrites them into that subset before anything else runs:
//
//   splat tensor constants         -> tensor.empty + linalg.fill
//   tensor.pad (constant value)    -> fill + tensor.insert_slice
//   outputs indexed by constant 0  -> the unit dims collapsed away
//     ((d0, d1, d2) -> (d0, d1, 0): reductions keeping a unit dim)
//   batch_matmul by one matrix     -> matmul of the rows of all batches
//     broadcast over the batch          (nn.Linear on [B, S, D] as exported:
//                                       the weight copied per batch element)
//   transposes of weights          -> folded into their consumers' maps
//     (nn.Linear: the transpose of W becomes the GEMM reading W transposed,
//     never a copy per run)
//   pooling windows (unused empty inputs) -> zero fills
//   math.fpowi in kernel bodies    -> multiplications (small constant
//     exponents) or math.powf
//   scf.for with constant bounds   -> unrolled, slices at constant offsets
//     (the time loop of ONNX LSTM/GRU)
//
// cf.assert in kernel bodies stays: it becomes a run-time check of the kernel
// that fails the run with its message (docs/import.md).
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/SCF/Utils/Utils.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/IR/Matchers.h"
#include "mlir/IR/PatternMatch.h"

namespace dyncc {
#define GEN_PASS_DEF_DYNLEGALIZEIMPORT
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;

namespace {

/// Whether `op` sits in the body of a linalg op (a scalar computation).
bool inKernelBody(Operation *op) {
  return op->getParentOfType<linalg::LinalgOp>() != nullptr;
}

/// tensor.empty + linalg.fill of `value`, of `type`.
Value filled(OpBuilder &b, Location loc, RankedTensorType type, Value value) {
  Value empty = b.create<tensor::EmptyOp>(loc, type.getShape(),
                                          type.getElementType());
  return b.create<linalg::FillOp>(loc, value, empty).getResult(0);
}

LogicalResult expandSplatConstants(ModuleOp module) {
  SmallVector<arith::ConstantOp> splats;
  module.walk([&](arith::ConstantOp op) {
    auto type = dyn_cast<RankedTensorType>(op.getType());
    auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
    if (type && dense && dense.isSplat() && !inKernelBody(op))
      splats.push_back(op);
  });
  for (arith::ConstantOp op : splats) {
    OpBuilder b(op);
    auto type = cast<RankedTensorType>(op.getType());
    auto dense = cast<DenseElementsAttr>(op.getValue());
    Value scalar = b.create<arith::ConstantOp>(
        op.getLoc(), cast<TypedAttr>(dense.getSplatValue<Attribute>()));
    op.replaceAllUsesWith(filled(b, op.getLoc(), type, scalar));
    op.erase();
  }
  return success();
}

LogicalResult expandPads(ModuleOp module) {
  SmallVector<tensor::PadOp> pads;
  module.walk([&](tensor::PadOp op) { pads.push_back(op); });
  for (tensor::PadOp pad : pads) {
    Value value = pad.getConstantPaddingValue();
    if (!value)
      return pad.emitError("tensor.pad needs a constant padding value");
    if (!pad.getResultType().hasStaticShape() || !pad.getStaticLow().size() ||
        llvm::any_of(pad.getStaticLow(), ShapedType::isDynamic))
      return pad.emitError("tensor.pad needs static shapes and padding");
    OpBuilder b(pad);
    Location loc = pad.getLoc();
    if (value.getParentRegion() == &pad.getRegion()) {
      // A constant defined in the pad's body: clone it outside.
      auto cst = value.getDefiningOp<arith::ConstantOp>();
      if (!cst)
        return pad.emitError("tensor.pad needs a constant padding value");
      value = b.create<arith::ConstantOp>(loc, cst.getValue());
    }
    Value init = filled(b, loc, pad.getResultType(), value);
    auto sourceType = cast<RankedTensorType>(pad.getSource().getType());
    SmallVector<int64_t> strides(sourceType.getRank(), 1);
    Value result = b.create<tensor::InsertSliceOp>(
        loc, pad.getSource(), init, ValueRange{}, ValueRange{}, ValueRange{},
        b.getDenseI64ArrayAttr(pad.getStaticLow()),
        b.getDenseI64ArrayAttr(sourceType.getShape()),
        b.getDenseI64ArrayAttr(strides));
    pad.replaceAllUsesWith(result);
    pad.erase();
  }
  return success();
}

/// The groups of a collapse_shape that drops the dims in `drop` (all of size
/// 1) from a tensor of `rank` dims: each dropped dim joins its next kept dim
/// (trailing ones join the last kept dim).
SmallVector<ReassociationIndices> dropGroups(int64_t rank,
                                             const llvm::SmallBitVector &drop) {
  SmallVector<ReassociationIndices> groups;
  ReassociationIndices pending;
  for (int64_t d = 0; d < rank; ++d) {
    pending.push_back(d);
    if (!drop.test(d)) {
      groups.push_back(pending);
      pending.clear();
    }
  }
  if (!pending.empty() && !groups.empty())
    groups.back().append(pending.begin(), pending.end());
  return groups;
}

/// Rewrites a generic whose outputs are indexed by constants (only 0 into
/// unit dims is possible in bounds) into one on the collapsed outputs.
LogicalResult dropConstantOutputDims(linalg::GenericOp op) {
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  unsigned numInputs = op.getNumDpsInputs();
  bool any = false;
  SmallVector<llvm::SmallBitVector> drops;
  for (OpOperand &init : op.getDpsInitsMutable()) {
    AffineMap map = maps[init.getOperandNumber()];
    auto type = cast<RankedTensorType>(init.get().getType());
    llvm::SmallBitVector drop(map.getNumResults());
    for (auto [d, e] : llvm::enumerate(map.getResults())) {
      auto c = dyn_cast<AffineConstantExpr>(e);
      if (!c)
        continue;
      if (c.getValue() != 0 || type.getDimSize(d) != 1)
        return op.emitError("output indexing map ")
               << AffineMapAttr::get(map)
               << " writes a constant index into a dimension that is not "
                  "of size 1";
      drop.set(d);
      any = true;
    }
    drops.push_back(drop);
  }
  if (!any)
    return success();

  OpBuilder b(op);
  Location loc = op.getLoc();
  SmallVector<Value> inits;
  SmallVector<Type> resultTypes;
  SmallVector<SmallVector<ReassociationIndices>> allGroups;
  for (auto [i, init] : llvm::enumerate(op.getDpsInits())) {
    auto type = cast<RankedTensorType>(init.getType());
    SmallVector<int64_t> shape;
    for (int64_t d = 0; d < type.getRank(); ++d)
      if (!drops[i].test(d))
        shape.push_back(type.getDimSize(d));
    auto collapsedType = RankedTensorType::get(shape, type.getElementType());
    SmallVector<ReassociationIndices> groups =
        dropGroups(type.getRank(), drops[i]);
    allGroups.push_back(groups);
    resultTypes.push_back(collapsedType);
    // Re-create fills and empties at the new shape; collapse anything else.
    if (init.getDefiningOp<tensor::EmptyOp>()) {
      inits.push_back(b.create<tensor::EmptyOp>(loc, shape,
                                                type.getElementType()));
      continue;
    }
    if (auto fill = init.getDefiningOp<linalg::FillOp>()) {
      if (fill.getOutputs()[0].getDefiningOp<tensor::EmptyOp>()) {
        inits.push_back(filled(b, loc, collapsedType, fill.getInputs()[0]));
        continue;
      }
    }
    inits.push_back(
        b.create<tensor::CollapseShapeOp>(loc, collapsedType, init, groups));
  }
  SmallVector<AffineMap> newMaps(maps.begin(), maps.begin() + numInputs);
  for (auto [i, init] : llvm::enumerate(op.getDpsInitsMutable())) {
    AffineMap map = maps[init.getOperandNumber()];
    SmallVector<AffineExpr> kept;
    for (auto [d, e] : llvm::enumerate(map.getResults()))
      if (!drops[i].test(d))
        kept.push_back(e);
    newMaps.push_back(
        AffineMap::get(map.getNumDims(), 0, kept, op.getContext()));
  }
  auto generic = b.create<linalg::GenericOp>(
      loc, resultTypes, op.getDpsInputs(), inits, newMaps,
      op.getIteratorTypesArray());
  generic.getRegion().takeBody(op.getRegion());
  for (auto [i, result] : llvm::enumerate(op.getResults())) {
    Value expanded = b.create<tensor::ExpandShapeOp>(
        loc, result.getType(), generic.getResult(i), allGroups[i]);
    result.replaceAllUsesWith(expanded);
  }
  op.erase();
  return success();
}

/// Whether `v` is a weight (an argument marked dyn.weight) or a constant,
/// used directly in the function body.
bool isWeightValue(Value v) {
  if (auto arg = dyn_cast<BlockArgument>(v)) {
    auto fn = dyn_cast<func::FuncOp>(arg.getOwner()->getParentOp());
    return fn && fn.getArgAttr(arg.getArgNumber(), "dyn.weight");
  }
  return v.getDefiningOp<arith::ConstantOp>() != nullptr;
}

/// Folds `transpose` into the indexing maps of its linalg consumers, so that
/// they read the weight itself. Consumers that are not linalg ops keep the
/// transpose.
LogicalResult foldWeightTranspose(linalg::TransposeOp transpose) {
  // Wherever the weight is read: inside an exit_if region (the layers after
  // an exit point) or a skip step too, where a transpose left in place
  // would copy the whole weight on every run or step.
  if (!isWeightValue(transpose.getInput()))
    return success();
  ArrayRef<int64_t> perm = transpose.getPermutation();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = i;
  IRRewriter rewriter(transpose.getContext());
  for (OpOperand &use :
       llvm::make_early_inc_range(transpose.getResult()[0].getUses())) {
    auto consumer = dyn_cast<linalg::LinalgOp>(use.getOwner());
    if (!consumer || !consumer.isDpsInput(&use) ||
        consumer->getParentRegion() != transpose->getParentRegion())
      continue;
    auto generic = dyn_cast<linalg::GenericOp>(consumer.getOperation());
    if (!generic) {
      rewriter.setInsertionPoint(consumer);
      FailureOr<linalg::GenericOp> g =
          linalg::generalizeNamedOp(rewriter, consumer);
      if (failed(g))
        continue;
      generic = *g;
    }
    unsigned number = use.getOperandNumber();
    SmallVector<AffineMap> maps = generic.getIndexingMapsArray();
    AffineMap map = maps[number];
    SmallVector<AffineExpr> exprs;
    for (int64_t j = 0; j < static_cast<int64_t>(perm.size()); ++j)
      exprs.push_back(map.getResult(inverse[j]));
    maps[number] =
        AffineMap::get(map.getNumDims(), 0, exprs, generic.getContext());
    generic.setIndexingMapsAttr(rewriter.getAffineMapArrayAttr(maps));
    generic->setOperand(number, transpose.getInput());
  }
  if (transpose->use_empty())
    transpose->erase();
  return success();
}

/// A batch_matmul whose right operand is one matrix broadcast over the
/// batch (a generic that only copies a [K, N] tensor into [B, K, N]: what
/// torch.export makes of nn.Linear on a [B, S, D] input) computes
/// [B * M, K] x [K, N]: rewritten as that matmul of the collapsed left
/// operand, its result expanded back to [B, M, N]. The GEMM then sees one
/// matrix (a weight stays a weight, kept in panels, its transpose folded)
/// and the copy of it per batch element is gone.
void collapseBroadcastBatchMatmul(linalg::BatchMatmulOp op) {
  if (op.getInputs().size() != 2 || op.getOutputs().size() != 1)
    return;
  Value a = op.getInputs()[0], b = op.getInputs()[1], init = op.getOutputs()[0];
  auto aType = dyn_cast<RankedTensorType>(a.getType());
  auto cType = dyn_cast<RankedTensorType>(init.getType());
  auto copy = b.getDefiningOp<linalg::GenericOp>();
  if (!aType || !cType || !aType.hasStaticShape() || !cType.hasStaticShape() ||
      !copy || copy.getNumDpsInputs() != 1 || copy.getNumDpsInits() != 1 ||
      !copy.getResult(0).hasOneUse())
    return;
  // The copy: out[b, k, n] = in[k, n], nothing else in its body.
  Value source = copy.getDpsInputOperand(0)->get();
  auto sourceType = dyn_cast<RankedTensorType>(source.getType());
  MLIRContext *ctx = op.getContext();
  AffineExpr d0, d1, d2;
  bindDims(ctx, d0, d1, d2);
  SmallVector<AffineMap> maps = copy.getIndexingMapsArray();
  auto yield = cast<linalg::YieldOp>(copy.getBody()->getTerminator());
  if (!sourceType || sourceType.getRank() != 2 ||
      maps[0] != AffineMap::get(3, 0, {d1, d2}, ctx) ||
      !maps[1].isIdentity() || copy.getBody()->getOperations().size() != 1 ||
      yield.getNumOperands() != 1 ||
      yield.getOperand(0) != copy.getBody()->getArgument(0))
    return;
  int64_t batch = aType.getDimSize(0), m = aType.getDimSize(1),
          n = cType.getDimSize(2);
  IRRewriter rewriter(ctx);
  rewriter.setInsertionPoint(op);
  Location loc = op.getLoc();
  SmallVector<ReassociationIndices> rows{{0, 1}, {2}};
  Value lhs = rewriter.create<tensor::CollapseShapeOp>(loc, a, rows);
  Value acc = rewriter.create<tensor::CollapseShapeOp>(loc, init, rows);
  auto flat = RankedTensorType::get({batch * m, n}, cType.getElementType());
  Value product = rewriter
                      .create<linalg::MatmulOp>(loc, TypeRange{flat},
                                                ValueRange{lhs, source},
                                                ValueRange{acc})
                      .getResult(0);
  rewriter.replaceOpWithNewOp<tensor::ExpandShapeOp>(op, cType, product, rows);
  if (copy->use_empty())
    copy->erase();
}

/// Pooling ops read their window through an uninitialized tensor whose
/// values the body never uses (linalg.pooling_nchw_max's second input); its
/// shape alone gives the window loops their extents. It becomes a (tiny)
/// zero fill, so that kernels see a value they can take.
LogicalResult fillUnusedEmptyInputs(ModuleOp module) {
  SmallVector<OpOperand *> operands;
  module.walk([&](linalg::LinalgOp op) {
    for (OpOperand *in : op.getDpsInputOperands())
      if (in->get().getDefiningOp<tensor::EmptyOp>() &&
          op.getMatchingBlockArgument(in).use_empty())
        operands.push_back(in);
  });
  for (OpOperand *in : operands) {
    OpBuilder b(in->getOwner());
    auto type = cast<RankedTensorType>(in->get().getType());
    Location loc = in->getOwner()->getLoc();
    Value zero = b.create<arith::ConstantOp>(
        loc, b.getZeroAttr(type.getElementType()));
    in->set(filled(b, loc, type, zero));
  }
  return success();
}

/// x^n for a constant n as multiplications (|n| <= 16), else math.powf.
void expandFPowI(math::FPowIOp op) {
  OpBuilder b(op);
  Location loc = op.getLoc();
  Value x = op.getLhs();
  Type type = x.getType();
  APInt n;
  if (matchPattern(op.getRhs(), m_ConstantInt(&n)) &&
      n.getSExtValue() >= -16 && n.getSExtValue() <= 16) {
    int64_t e = n.getSExtValue();
    Value result = b.create<arith::ConstantOp>(loc, b.getFloatAttr(type, 1.0));
    Value base = x;
    for (int64_t k = e < 0 ? -e : e; k; k >>= 1) {
      if (k & 1)
        result = b.create<arith::MulFOp>(loc, result, base);
      if (k > 1)
        base = b.create<arith::MulFOp>(loc, base, base);
    }
    if (e < 0)
      result = b.create<arith::DivFOp>(
          loc, b.create<arith::ConstantOp>(loc, b.getFloatAttr(type, 1.0)),
          result);
    op.replaceAllUsesWith(result);
    op.erase();
    return;
  }
  Value exponent = b.create<arith::SIToFPOp>(loc, type, op.getRhs());
  op.replaceAllUsesWith(b.create<math::PowFOp>(loc, x, exponent).getResult());
  op.erase();
}

/// Unrolls every scf.for with constant bounds (innermost first), then folds
/// the now-constant slice offsets. Trip counts above `kMaxUnroll` are a
/// located error: such loops would need dynamic offsets.
constexpr int64_t kMaxUnroll = 4096;

LogicalResult unrollForLoops(ModuleOp module) {
  SmallVector<scf::ForOp> loops;
  module.walk<WalkOrder::PostOrder>([&](scf::ForOp op) { loops.push_back(op); });
  if (loops.empty())
    return success();
  for (scf::ForOp loop : loops) {
    std::optional<int64_t> trips = constantTripCount(
        loop.getLowerBound(), loop.getUpperBound(), loop.getStep());
    if (!trips)
      return loop.emitError("scf.for needs constant bounds and step");
    if (*trips > kMaxUnroll)
      return loop.emitError("scf.for of ")
             << *trips << " iterations: at most " << kMaxUnroll
             << " are unrolled";
    if (*trips == 0) {
      loop.replaceAllUsesWith(loop.getInitArgs());
      loop.erase();
      continue;
    }
    if (failed(loopUnrollByFactor(loop, *trips)))
      return loop.emitError("cannot unroll this scf.for");
  }
  MLIRContext *ctx = module.getContext();
  RewritePatternSet patterns(ctx);
  tensor::ExtractSliceOp::getCanonicalizationPatterns(patterns, ctx);
  tensor::InsertSliceOp::getCanonicalizationPatterns(patterns, ctx);
  scf::ForOp::getCanonicalizationPatterns(patterns, ctx);
  for (RegisteredOperationName name : ctx->getRegisteredOperations())
    if (name.getDialectNamespace() == "arith")
      name.getCanonicalizationPatterns(patterns, ctx);
  return applyPatternsAndFoldGreedily(module, std::move(patterns));
}

struct LegalizeImportPass
    : dyncc::impl::DynLegalizeImportBase<LegalizeImportPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(unrollForLoops(module)) || failed(expandSplatConstants(module)) ||
        failed(expandPads(module)) || failed(fillUnusedEmptyInputs(module)))
      return signalPassFailure();
    SmallVector<linalg::GenericOp> generics;
    module.walk([&](linalg::GenericOp op) { generics.push_back(op); });
    for (linalg::GenericOp op : generics)
      if (failed(dropConstantOutputDims(op)))
        return signalPassFailure();
    SmallVector<linalg::BatchMatmulOp> batchMatmuls;
    module.walk([&](linalg::BatchMatmulOp op) { batchMatmuls.push_back(op); });
    for (linalg::BatchMatmulOp op : batchMatmuls)
      collapseBroadcastBatchMatmul(op);
    SmallVector<linalg::TransposeOp> transposes;
    module.walk([&](linalg::TransposeOp op) { transposes.push_back(op); });
    for (linalg::TransposeOp op : transposes)
      if (failed(foldWeightTranspose(op)))
        return signalPassFailure();
    SmallVector<math::FPowIOp> powers;
    module.walk([&](math::FPowIOp op) { powers.push_back(op); });
    for (math::FPowIOp op : powers)
      expandFPowI(op);
  }
};

} // namespace
