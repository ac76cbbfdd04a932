//===- FormKernels.cpp - group tensor ops into kernels --------------------===//
//
// Turns the tensor program of a model into calls of kernels, each a private
// function holding a few linalg.generic ops that codegen emits as one Halide
// pipeline:
//
//   gemm         a contraction plus its elementwise epilogue (bias, act, ...)
//   reduction    reductions and elementwise ops over the same rows
//                (softmax, layer norm, argmax)
//   elementwise  elementwise chains that have no producer to join
//   attention    a contraction (scores), the reduction kernels that alone
//                read it (softmax) and the contraction that alone reads
//                those (the value product), as one kernel: codegen computes
//                it per block of queries without storing the scores
//
// Named linalg ops are generalized and linalg.softmax is decomposed first, so
// one grouping rule serves every op of the accepted set (docs/ops.md).
// Fills and tensor.empty that only initialize a kernel's outputs are cloned
// into the kernel rather than passed in.
//
//===----------------------------------------------------------------------===//

#include "dialect/DynDialect.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Linalg/Transforms/Transforms.h"
#include "mlir/Dialect/Linalg/Utils/Utils.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tensor/Transforms/Transforms.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/PatternMatch.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"
#include "llvm/ADT/SetVector.h"

namespace dyncc {
#define GEN_PASS_DEF_DYNFORMKERNELS
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;

namespace dyncc {

llvm::StringRef kernelKindName(KernelKind kind) {
  switch (kind) {
  case KernelKind::Gemm:
    return "gemm";
  case KernelKind::Reduction:
    return "reduction";
  case KernelKind::Elementwise:
    return "elementwise";
  case KernelKind::Attention:
    return "attention";
  }
  llvm_unreachable("unknown kernel kind");
}

bool isHostScalarOp(Operation *op) {
  if (!isa<arith::ArithDialect>(op->getDialect()))
    return false;
  auto scalar = [](Type t) { return t.isIntOrIndex(); };
  return llvm::all_of(op->getOperandTypes(), scalar) &&
         llvm::all_of(op->getResultTypes(), scalar);
}

bool isKernelBodyOp(Operation *op) {
  return isa<arith::AddFOp, arith::SubFOp, arith::MulFOp, arith::DivFOp,
             arith::NegFOp, arith::MaximumFOp, arith::MinimumFOp,
             arith::MaxNumFOp, arith::MinNumFOp, arith::CmpFOp,
             arith::SelectOp, arith::ConstantOp, arith::ExtFOp,
             arith::TruncFOp, arith::SIToFPOp, arith::UIToFPOp,
             arith::FPToSIOp, arith::IndexCastOp, arith::AddIOp,
             arith::SubIOp, arith::MulIOp, arith::DivSIOp, arith::RemSIOp,
             arith::CmpIOp, arith::AndIOp, arith::OrIOp, arith::XOrIOp,
             arith::ExtSIOp, arith::ExtUIOp, arith::TruncIOp, math::ExpOp,
             math::LogOp, math::TanhOp, math::ErfOp, math::SqrtOp,
             math::RsqrtOp, math::AbsFOp, math::PowFOp, math::Log1pOp,
             math::SinOp, math::CosOp, math::FloorOp, math::CeilOp,
             math::RoundOp, math::RoundEvenOp, math::AbsIOp, arith::MaxSIOp,
             arith::MinSIOp, arith::MaxUIOp, arith::MinUIOp,
             arith::FloorDivSIOp, arith::CeilDivSIOp, linalg::IndexOp,
             linalg::YieldOp, tensor::ExtractOp, cf::AssertOp>(op);
}

} // namespace dyncc

namespace {

using dyncc::KernelKind;

/// Folds a reshape that splits the outermost dimension in two (torch-mlir's
/// [B*H, S, S] scores expanded to [B, H, S, S] around SDPA's softmax, and
/// collapsed back for the value product) into the generic that reads it: the
/// generic then iterates the merged dimension. An operand holding the split
/// dimensions side by side is read through tensor.collapse_shape (a view);
/// one holding only some of them (the mask, per batch element and not per
/// head) reads them as floordiv/mod of the merged loop, which only
/// elementwise generics may do (a contraction's operands stay plain loops
/// for the GEMM path). The results are expanded back, so the rewrite
/// spreads along a chain of generics until the reshapes meet and fold: the
/// scores, the softmax and the value product then share one iteration space
/// and kernel formation can make them one attention kernel.
struct MergeSplitDims : OpRewritePattern<linalg::GenericOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(linalg::GenericOp op,
                                PatternRewriter &rewriter) const override {
    if (!op.hasPureTensorSemantics() || op->hasAttr(dyncc::kRowMaskAttr) ||
        op.getNumLoops() < 2 ||
        !llvm::all_of(op->getOperandTypes(), [](Type t) {
          auto ranked = dyn_cast<RankedTensorType>(t);
          return !ranked || ranked.hasStaticShape();
        }) ||
        !llvm::all_of(op.getIndexingMapsArray(),
                      [](AffineMap m) { return m.isProjectedPermutation(); }))
      return failure();
    for (OpOperand *in : op.getDpsInputOperands()) {
      auto expand = in->get().getDefiningOp<tensor::ExpandShapeOp>();
      if (!expand)
        continue;
      if (succeeded(mergeOutermost(op, op.getMatchingIndexingMap(in),
                                   expand.getReassociationIndices(),
                                   rewriter)))
        return success();
    }
    // A generic whose results are only ever collapsed (a fill of a
    // reduction's init, read through the view the rewrite made).
    if (op->use_empty())
      return failure();
    SmallVector<ReassociationIndices> collapsed;
    for (Operation *user : op->getUsers()) {
      auto collapse = dyn_cast<tensor::CollapseShapeOp>(user);
      if (!collapse || (!collapsed.empty() &&
                        collapse.getReassociationIndices() != collapsed))
        return failure();
      collapsed = collapse.getReassociationIndices();
    }
    for (OpResult result : op->getResults())
      if (succeeded(mergeOutermost(op, op.getIndexingMapMatchingResult(result),
                                   collapsed, rewriter)))
        return success();
    return failure();
  }

  /// Merges the loops that `map` (an operand's or a result's) reads as the
  /// outermost group of `reassociation`, if that group splits a dimension.
  /// Only the outermost dimension's split (a batch flattened for a batched
  /// matmul): an inner split is a layout (heads x head size) whose
  /// permutations the GEMM path already reads through.
  static LogicalResult
  mergeOutermost(linalg::GenericOp op, AffineMap map,
                 ArrayRef<ReassociationIndices> reassociation,
                 PatternRewriter &rewriter) {
    if (reassociation.empty() || reassociation.front().size() < 2)
      return failure();
    SmallVector<unsigned> loops;
    for (int64_t d : reassociation.front())
      loops.push_back(cast<AffineDimExpr>(map.getResult(d)).getPosition());
    return merge(op, loops, rewriter);
  }

  /// Merges loops `loops` (consecutive, outermost first) of `op` into one.
  static LogicalResult merge(linalg::GenericOp op, ArrayRef<unsigned> loops,
                             PatternRewriter &rewriter) {
    const unsigned first = loops.front(), k = loops.size();
    for (unsigned i = 0; i < k; ++i)
      if (loops[i] != first + i ||
          op.getIteratorTypesArray()[loops[i]] != utils::IteratorType::parallel)
        return failure();
    // A masked expert body keeps its loops (dropUnitDims): its producers
    // (the dispatch gather) keep theirs, so that they still meet it.
    for (Operation *user : op->getUsers())
      if (user->hasAttr(dyncc::kRowMaskAttr))
        return failure();
    bool indexed = false;
    op.getBody()->walk([&](linalg::IndexOp index) {
      indexed |= index.getDim() >= first && index.getDim() < first + k;
    });
    if (indexed)
      return failure();
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    for (unsigned i = 0; i < k; ++i)
      if (ranges[first + i] <= 0)
        return failure();
    // Loop loops[i] = (merged floordiv stride[i]) mod extent[i].
    SmallVector<int64_t> stride(k, 1);
    for (int i = (int)k - 2; i >= 0; --i)
      stride[i] = stride[i + 1] * ranges[first + i + 1];
    MLIRContext *ctx = op.getContext();
    const unsigned numLoops = op.getNumLoops() - (k - 1);
    AffineExpr merged = getAffineDimExpr(first, ctx);
    auto newDim = [&](unsigned d) {
      return getAffineDimExpr(d < first ? d : d - (k - 1), ctx);
    };
    auto piece = [&](unsigned i) {
      AffineExpr e = stride[i] == 1 ? merged : merged.floorDiv(stride[i]);
      return i == 0 ? e : e % ranges[first + i];
    };

    bool elementwise = op.getNumReductionLoops() == 0;
    Location loc = op.getLoc();
    SmallVector<AffineMap> maps;
    SmallVector<std::optional<SmallVector<ReassociationIndices>>> collapsedAs;
    for (OpOperand &operand : op->getOpOperands()) {
      AffineMap map = op.getMatchingIndexingMap(&operand);
      SmallVector<AffineExpr> results;
      SmallVector<ReassociationIndices> reassociation;
      unsigned present = 0;
      int at = -1;
      for (unsigned r = 0; r < map.getNumResults(); ++r) {
        unsigned d = cast<AffineDimExpr>(map.getResult(r)).getPosition();
        if (d >= first && d < first + k) {
          ++present;
          if (d == first)
            at = (int)r;
        }
      }
      // Side by side, outermost first: collapsed into the merged loop.
      bool together = present == k && at >= 0 &&
                      at + k <= map.getNumResults();
      for (unsigned i = 0; together && i < k; ++i)
        together = cast<AffineDimExpr>(map.getResult(at + i)).getPosition() ==
                   first + i;
      bool isInit = op.isDpsInit(&operand);
      if ((isInit && !together) || (present && !together && !elementwise))
        return failure();
      for (unsigned r = 0; r < map.getNumResults(); ++r) {
        unsigned d = cast<AffineDimExpr>(map.getResult(r)).getPosition();
        if (together && (int)r > at && (int)r < at + (int)k)
          continue;
        if (together && (int)r == at) {
          results.push_back(merged);
          reassociation.push_back({});
          for (unsigned i = 0; i < k; ++i)
            reassociation.back().push_back(r + i);
          continue;
        }
        results.push_back(d >= first && d < first + k ? piece(d - first)
                                                      : newDim(d));
        reassociation.push_back({(int64_t)r});
      }
      maps.push_back(AffineMap::get(numLoops, 0, results, ctx));
      collapsedAs.push_back(together ? std::optional(reassociation)
                                     : std::nullopt);
    }
    // Checked every operand: now rewrite.
    SmallVector<Value> operands;
    for (auto [operand, reassociation] :
         llvm::zip(op->getOpOperands(), collapsedAs))
      operands.push_back(reassociation
                             ? rewriter.create<tensor::CollapseShapeOp>(
                                   loc, operand.get(), *reassociation)
                             : operand.get());
    SmallVector<utils::IteratorType> iterators;
    for (auto [l, it] : llvm::enumerate(op.getIteratorTypesArray()))
      if (l <= first || l >= first + k)
        iterators.push_back(it);
    unsigned numInputs = op.getNumDpsInputs();
    ValueRange allOperands(operands);
    SmallVector<Type> resultTypes;
    for (Value init : allOperands.drop_front(numInputs))
      resultTypes.push_back(init.getType());
    auto rewritten = rewriter.create<linalg::GenericOp>(
        loc, resultTypes, allOperands.take_front(numInputs),
        allOperands.drop_front(numInputs), maps, iterators);
    rewritten->setDiscardableAttrs(op->getDiscardableAttrDictionary());
    rewriter.cloneRegionBefore(op.getRegion(), rewritten.getRegion(),
                               rewritten.getRegion().begin());
    rewritten.getBody()->walk([&](linalg::IndexOp index) {
      if (index.getDim() >= first + k)
        index.setDim(index.getDim() - (k - 1));
    });
    SmallVector<Value> replacements;
    for (auto [r, result] : llvm::enumerate(rewritten->getResults())) {
      Value old = op->getResult(r);
      replacements.push_back(rewriter.create<tensor::ExpandShapeOp>(
          loc, old.getType(), result, *collapsedAs[numInputs + r]));
    }
    rewriter.replaceOp(op, replacements);
    return success();
  }
};

/// acc + x * y with x, y read from inputs or gathered (tensor.extract): a
/// contraction whose operand may be selected by a table (the expert weights
/// of a dropless MoE block, see LowerRoute.cpp), or that carries a row mask
/// as an extra input (dyn.row_mask, a batched expert body).
bool isGatherContraction(linalg::GenericOp op) {
  if (op.getNumReductionLoops() != 1 || op.getNumDpsInits() != 1)
    return false;
  Block *body = op.getBody();
  auto yield = cast<linalg::YieldOp>(body->getTerminator());
  auto add = yield.getValues()[0].getDefiningOp<arith::AddFOp>();
  if (!add)
    return false;
  Value acc = body->getArguments().back();
  Value prod = add.getLhs() == acc ? add.getRhs() : add.getLhs();
  if (add.getLhs() != acc && add.getRhs() != acc)
    return false;
  auto mul = prod.getDefiningOp<arith::MulFOp>();
  if (!mul)
    return false;
  auto factor = [&](Value v) {
    if (auto arg = dyn_cast<BlockArgument>(v))
      return arg.getOwner() == body && arg != acc;
    return v.getDefiningOp<tensor::ExtractOp>() != nullptr;
  };
  // Plain inputs on both sides are isaContractionOpInterface's business
  // (and x * x of a variance is not a contraction).
  bool gathered = mul.getLhs().getDefiningOp<tensor::ExtractOp>() ||
                  mul.getRhs().getDefiningOp<tensor::ExtractOp>();
  bool masked = op->hasAttr(dyncc::kRowMaskAttr) &&
                mul.getLhs() != mul.getRhs() && op.getNumDpsInputs() == 3;
  return (gathered || masked) && factor(mul.getLhs()) && factor(mul.getRhs());
}

KernelKind classify(linalg::GenericOp op) {
  // MLIR 19's isContractionBody dereferences the op that defines the
  // yielded value: a body that yields a block argument (a copy, or a
  // reduction whose loops were all size 1) has none.
  Value yielded = op.getBody()->getTerminator()->getNumOperands() == 1
                      ? op.getBody()->getTerminator()->getOperand(0)
                      : Value();
  bool computed = yielded && yielded.getDefiningOp() &&
                  yielded.getDefiningOp()->getBlock() == op.getBody();
  if ((computed &&
       linalg::isaContractionOpInterface(cast<linalg::LinalgOp>(*op))) ||
      isGatherContraction(op))
    return KernelKind::Gemm;
  if (op.getNumReductionLoops() > 0)
    return KernelKind::Reduction;
  return KernelKind::Elementwise;
}

/// An elementwise op that only widens its one input (torch-mlir computes a
/// layer norm's variance in f64 from an extf of the f32 activations): it
/// joins its consumers' kernel rather than its producer's, which would store
/// the wide copy (twice the bytes) for the next kernel to read back.
bool isWideningCast(linalg::GenericOp op) {
  if (op.getNumDpsInputs() != 1 || op.getNumDpsInits() != 1 ||
      !isa<ShapedType>(op.getDpsInputOperand(0)->get().getType()) ||
      op.getNumReductionLoops() != 0)
    return false;
  Block *body = op.getBody();
  auto ext = dyn_cast<arith::ExtFOp>(&body->front());
  return ext && ext->getNextNode() == body->getTerminator() &&
         ext.getIn() == body->getArgument(0) &&
         body->getTerminator()->getOperand(0) == ext.getResult();
}

/// Ops that only provide values without reading tensors: tensor.empty,
/// scalar constants and fills (generics without tensor inputs). They are
/// cloned into each kernel that needs them instead of being kernels.
bool isInitProducer(Operation *op) {
  if (isa<tensor::EmptyOp>(op))
    return true;
  // A reshape of an uninitialized tensor (canonicalization makes these out
  // of reshaped fills).
  if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
    return op->getOperand(0).getDefiningOp<tensor::EmptyOp>() != nullptr;
  if (auto cst = dyn_cast<arith::ConstantOp>(op))
    return !isa<ShapedType>(cst.getType());
  auto generic = dyn_cast<linalg::GenericOp>(op);
  if (!generic)
    return false;
  for (OpOperand *in : generic.getDpsInputOperands())
    if (isa<ShapedType>(in->get().getType()))
      return false;
  // A body that reads tensors (concat, insert_slice) is real work.
  return generic.getBody()->walk([](tensor::ExtractOp) {
                                     return WalkResult::interrupt();
                                   }).wasInterrupted() == false;
}

/// Ops allowed in a function body around the kernels: views, control flow,
/// calls and the dyn ops (lowered by their own passes).
bool isHostOp(Operation *op) {
  return isa<func::ReturnOp, func::CallOp, tensor::ExpandShapeOp,
             tensor::CollapseShapeOp, tensor::ExtractOp>(op) ||
         isa<scf::IfOp, scf::WhileOp, scf::ForOp, scf::YieldOp,
             scf::ConditionOp, scf::IndexSwitchOp>(op) ||
         isa<dyncc::dyn::DynDialect>(op->getDialect()) ||
         isa<tensor::FromElementsOp, arith::ConstantOp>(op) ||
         dyncc::isHostScalarOp(op);
}

/// The row-major identity map over `rank` loops.
AffineMap identityMap(unsigned rank, MLIRContext *ctx) {
  return AffineMap::getMultiDimIdentityMap(rank, ctx);
}

/// `out[i] = source[offsets + i * strides]` (dropped dimensions at their
/// offset) through tensor.extract in the body of a generic without inputs.
Value buildSliceGather(OpBuilder &b, tensor::ExtractSliceOp op) {
  Location loc = op.getLoc();
  RankedTensorType result = op.getResultType();
  unsigned rank = result.getRank();
  llvm::SmallBitVector dropped = op.getDroppedDims();
  Value init = b.create<tensor::EmptyOp>(loc, result.getShape(),
                                         result.getElementType());
  auto generic = b.create<linalg::GenericOp>(
      loc, result, ValueRange{}, ValueRange{init},
      ArrayRef<AffineMap>{AffineMap::getMultiDimIdentityMap(rank, b.getContext())},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location nloc, ValueRange) {
        SmallVector<Value> at;
        unsigned loop = 0;
        for (auto [d, offset, stride] :
             llvm::enumerate(op.getStaticOffsets(), op.getStaticStrides())) {
          Value off = nb.create<arith::ConstantIndexOp>(nloc, offset);
          if (dropped.test(d)) {
            at.push_back(off);
            continue;
          }
          Value i = nb.create<linalg::IndexOp>(nloc, loop++);
          Value str = nb.create<arith::ConstantIndexOp>(nloc, stride);
          at.push_back(nb.create<arith::AddIOp>(
              nloc, nb.create<arith::MulIOp>(nloc, i, str), off));
        }
        Value v = nb.create<tensor::ExtractOp>(nloc, op.getSource(), at);
        nb.create<linalg::YieldOp>(nloc, v);
      });
  return generic->getResult(0);
}

/// extract_slice (static offsets, sizes, strides; rank-reducing too) as a
/// generic whose input map adds the offsets and scales by the strides.
LogicalResult rewriteExtractSlice(tensor::ExtractSliceOp op,
                                  IRRewriter &rewriter) {
  if (!op.hasUnitStride() && llvm::any_of(op.getStaticStrides(), ShapedType::isDynamic))
    return op.emitError("extract_slice needs static strides");
  if (llvm::any_of(op.getStaticOffsets(), ShapedType::isDynamic) ||
      llvm::any_of(op.getStaticSizes(), ShapedType::isDynamic))
    return op.emitError("extract_slice needs static offsets and sizes");
  MLIRContext *ctx = op.getContext();
  RankedTensorType result = op.getResultType();
  unsigned rank = result.getRank();
  llvm::SmallBitVector dropped = op.getDroppedDims();
  // A dimension read as plain `d` (offset 0, stride 1) but shorter than the
  // source would make linalg take the source's extent as the loop range;
  // such slices read their source with tensor.extract instead.
  ArrayRef<int64_t> sourceShape = op.getSourceType().getShape();
  bool ambiguous = false;
  for (auto [d, offset, stride, size] :
       llvm::enumerate(op.getStaticOffsets(), op.getStaticStrides(),
                       op.getStaticSizes()))
    ambiguous |= !dropped.test(d) && offset == 0 && stride == 1 &&
                 size != sourceShape[d];
  if (ambiguous) {
    rewriter.setInsertionPoint(op);
    Value v = buildSliceGather(rewriter, op);
    rewriter.replaceOp(op, v);
    return success();
  }
  SmallVector<AffineExpr> exprs;
  unsigned loop = 0;
  for (auto [d, offset, stride] :
       llvm::enumerate(op.getStaticOffsets(), op.getStaticStrides())) {
    if (dropped.test(d)) {
      exprs.push_back(getAffineConstantExpr(offset, ctx));
      continue;
    }
    exprs.push_back(getAffineDimExpr(loop++, ctx) * stride + offset);
  }
  rewriter.setInsertionPoint(op);
  Value init = rewriter.create<tensor::EmptyOp>(op.getLoc(), result.getShape(),
                                                result.getElementType());
  auto generic = rewriter.create<linalg::GenericOp>(
      op.getLoc(), result, ValueRange{op.getSource()}, ValueRange{init},
      ArrayRef<AffineMap>{AffineMap::get(rank, 0, exprs, ctx),
                          identityMap(rank, ctx)},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [](OpBuilder &b, Location loc, ValueRange args) {
        b.create<linalg::YieldOp>(loc, args[0]);
      });
  rewriter.replaceOp(op, generic->getResults());
  return success();
}

/// Builds `out[i] = select(i in piece k, piece_k[i - start_k], ...)` over
/// the output's loops, reading every piece with tensor.extract (clamped by
/// codegen, so untaken branches are safe). `pieces` are (value, offsets,
/// strides) placed in order; the last piece covers everything else.
Value buildPiecewise(OpBuilder &b, Location loc, RankedTensorType result,
                     Value base, ArrayRef<std::tuple<Value, SmallVector<int64_t>,
                                                     SmallVector<int64_t>>> pieces) {
  MLIRContext *ctx = b.getContext();
  unsigned rank = result.getRank();
  Value init = b.create<tensor::EmptyOp>(loc, result.getShape(),
                                         result.getElementType());
  SmallVector<Value> ins;
  SmallVector<AffineMap> maps;
  if (base) {
    ins.push_back(base);
    maps.push_back(identityMap(rank, ctx));
  }
  maps.push_back(identityMap(rank, ctx));
  auto generic = b.create<linalg::GenericOp>(
      loc, result, ins, ValueRange{init}, maps,
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location nloc, ValueRange args) {
        SmallVector<Value> idx;
        for (unsigned d = 0; d < rank; ++d)
          idx.push_back(nb.create<linalg::IndexOp>(nloc, d));
        Value acc = base ? args[0] : Value();
        for (auto &[piece, offsets, strides] : pieces) {
          auto type = cast<RankedTensorType>(piece.getType());
          Value inside = nb.create<arith::ConstantIntOp>(nloc, 1, 1);
          SmallVector<Value> at;
          for (unsigned d = 0; d < rank; ++d) {
            Value off = nb.create<arith::ConstantIndexOp>(nloc, offsets[d]);
            Value str = nb.create<arith::ConstantIndexOp>(nloc, strides[d]);
            Value rel = nb.create<arith::SubIOp>(nloc, idx[d], off);
            Value q = nb.create<arith::DivSIOp>(nloc, rel, str);
            Value r = nb.create<arith::RemSIOp>(nloc, rel, str);
            Value zero = nb.create<arith::ConstantIndexOp>(nloc, 0);
            Value ext = nb.create<arith::ConstantIndexOp>(nloc, type.getDimSize(d));
            Value ok = nb.create<arith::AndIOp>(
                nloc,
                nb.create<arith::CmpIOp>(nloc, arith::CmpIPredicate::sge, rel, zero),
                nb.create<arith::CmpIOp>(nloc, arith::CmpIPredicate::slt, q, ext));
            ok = nb.create<arith::AndIOp>(
                nloc, ok,
                nb.create<arith::CmpIOp>(nloc, arith::CmpIPredicate::eq, r, zero));
            inside = nb.create<arith::AndIOp>(nloc, inside, ok);
            at.push_back(q);
          }
          Value v = nb.create<tensor::ExtractOp>(nloc, piece, at);
          acc = acc ? nb.create<arith::SelectOp>(nloc, inside, v, acc).getResult() : v;
        }
        nb.create<linalg::YieldOp>(nloc, acc);
      });
  return generic->getResult(0);
}

LogicalResult rewriteStructuralOps(ModuleOp module, IRRewriter &rewriter) {
  SmallVector<Operation *> ops;
  module.walk([&](Operation *op) {
    if (isa<tensor::ExtractSliceOp, tensor::InsertSliceOp, tensor::ConcatOp>(op))
      ops.push_back(op);
  });
  for (Operation *op : ops) {
    if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
      if (failed(rewriteExtractSlice(slice, rewriter)))
        return failure();
      continue;
    }
    rewriter.setInsertionPoint(op);
    if (auto insert = dyn_cast<tensor::InsertSliceOp>(op)) {
      if (llvm::any_of(insert.getStaticOffsets(), ShapedType::isDynamic) ||
          llvm::any_of(insert.getStaticStrides(), ShapedType::isDynamic) ||
          insert.getSourceType().getRank() != insert.getDestType().getRank())
        return op->emitError("insert_slice needs static offsets and strides "
                             "and a source of the destination's rank");
      Value v = buildPiecewise(
          rewriter, op->getLoc(), insert.getDestType(), insert.getDest(),
          {{insert.getSource(), SmallVector<int64_t>(insert.getStaticOffsets()),
            SmallVector<int64_t>(insert.getStaticStrides())}});
      rewriter.replaceOp(op, v);
      continue;
    }
    auto concat = cast<tensor::ConcatOp>(op);
    auto result = cast<RankedTensorType>(concat.getType());
    if (!result.hasStaticShape())
      return op->emitError("concat needs static shapes");
    SmallVector<std::tuple<Value, SmallVector<int64_t>, SmallVector<int64_t>>> pieces;
    int64_t start = 0;
    for (Value in : concat.getInputs()) {
      SmallVector<int64_t> offsets(result.getRank(), 0);
      offsets[concat.getDim()] = start;
      pieces.push_back({in, offsets, SmallVector<int64_t>(result.getRank(), 1)});
      start += cast<RankedTensorType>(in.getType()).getDimSize(concat.getDim());
    }
    rewriter.replaceOp(op, buildPiecewise(rewriter, op->getLoc(), result,
                                          Value(), pieces));
  }
  return success();
}

/// See BlockGrouper::decisionLogits.
constexpr int64_t kDecisionLogits = 64;

struct Group {
  KernelKind kind;
  SmallVector<linalg::GenericOp> ops;
  llvm::SmallPtrSet<Operation *, 8> members;
  /// Groups whose outputs this group reads, transitively.
  llvm::SmallPtrSet<Group *, 8> deps;
};

/// Groups the generics of one block, in program order.
class BlockGrouper {
public:
  explicit BlockGrouper(Block &block) : block(block) {}

  SmallVector<std::unique_ptr<Group>> run() {
    for (Operation &op : block) {
      auto generic = dyn_cast<linalg::GenericOp>(op);
      if (!generic)
        continue;
      if (!isInitProducer(generic)) {
        place(generic);
        continue;
      }
      // A fill whose value leaves the kernels (yielded, returned) is computed
      // by a kernel of its own.
      bool escapes = llvm::any_of(generic->getUsers(), [](Operation *user) {
        return !isa<linalg::LinalgOp>(user);
      });
      if (escapes) {
        groups.push_back(std::make_unique<Group>());
        groups.back()->kind = KernelKind::Elementwise;
        add(*groups.back(), generic);
      }
    }
    mergeAttention();
    return std::move(groups);
  }

private:
  Block &block;
  SmallVector<std::unique_ptr<Group>> groups;
  llvm::DenseMap<Operation *, Group *> groupOf;
  /// Elementwise ops waiting for their single consumer to pull them in
  /// (bias broadcasts, transposes feeding a matmul, ...).
  llvm::SmallPtrSet<Operation *, 8> pending;

  void place(linalg::GenericOp op) {
    KernelKind kind = classify(op);
    SmallVector<linalg::GenericOp> pulled;
    collectPending(op, kind, pulled);
    if (pulled.empty() && isWideningCast(op) && !op->use_empty() &&
        llvm::all_of(op->getUsers(), [&](Operation *user) {
          return isa<linalg::GenericOp>(user) &&
                 user->getBlock() == op->getBlock();
        })) {
      // The first consumer pulls it in; another kernel reading it too gets
      // it as that kernel's output.
      pending.insert(op);
      return;
    }

    // The group of the latest producer among the inputs (and, for an
    // elementwise op, among the elementwise groups it gathers from: a
    // concatenation joins the kernel of its pieces).
    Group *target = nullptr;
    SmallVector<linalg::GenericOp> joining(pulled);
    joining.push_back(op);
    auto consider = [&](Group *g) {
      if (g && (!target || target->ops.back()->isBeforeInBlock(g->ops.back())))
        target = g;
    };
    for (linalg::GenericOp member : joining) {
      for (Value in : member->getOperands())
        consider(producerGroup(in));
      if (kind == KernelKind::Elementwise)
        for (Value in : gathered(member))
          if (Group *g = producerGroup(in);
              g && g->kind == KernelKind::Elementwise)
            consider(g);
    }
    if (target && !canJoin(*target, op, kind, pulled))
      target = nullptr;

    if (!target) {
      if (kind == KernelKind::Elementwise && op->hasOneUse() &&
          waitsForConsumer(*op->user_begin())) {
        // Wait for the consumer, which will pull this op and its producers.
        pending.insert(op);
        for (linalg::GenericOp producer : pulled)
          pending.insert(producer);
        return;
      }
      groups.push_back(std::make_unique<Group>());
      target = groups.back().get();
      target->kind = kind;
    } else if (kind != KernelKind::Elementwise &&
               target->kind != KernelKind::Gemm) {
      target->kind = kind; // a GEMM's kernel stays one (decisionLogits)
    }
    for (linalg::GenericOp member : pulled)
      add(*target, member);
    add(*target, op);
  }

  /// The values `op` reads: its operands and, with `gathers`, the tensors
  /// its body reads with tensor.extract from outside it (a concatenation's
  /// pieces, a slice read through a gather).
  static SmallVector<Value> readValues(linalg::GenericOp op, bool gathers) {
    SmallVector<Value> values(op->getOperands());
    if (gathers)
      values.append(gathered(op));
    return values;
  }

  /// The tensors `op`'s body reads with tensor.extract from outside it.
  static SmallVector<Value> gathered(linalg::GenericOp op) {
    SmallVector<Value> values;
    op.getBody()->walk([&](tensor::ExtractOp e) {
      Value t = e.getTensor();
      if (!op->isAncestor(t.getParentBlock()->getParentOp()))
        values.push_back(t);
    });
    return values;
  }

  /// Whether an elementwise op whose one use is `user` waits for it to pull
  /// it in: `user` is a generic of this block, or a gather in the body of an
  /// elementwise one (the op is then computed at the gathered points).
  bool waitsForConsumer(Operation *user) {
    if (isa<linalg::GenericOp>(user))
      return user->getBlock() == &block;
    auto consumer = dyn_cast_or_null<linalg::GenericOp>(
        block.findAncestorOpInBlock(*user));
    return consumer && isa<tensor::ExtractOp>(user) &&
           user->getParentOp() == consumer &&
           classify(consumer) == KernelKind::Elementwise;
  }

  /// The pending producers that only `op` (of `kind`; or other pulled
  /// ops) use. Pending ops are elementwise (place).
  void collectPending(linalg::GenericOp op, KernelKind kind,
                      SmallVector<linalg::GenericOp> &pulled) {
    for (Value in : readValues(op, kind == KernelKind::Elementwise)) {
      Operation *def = in.getDefiningOp();
      if (!def || !pending.contains(def))
        continue;
      pending.erase(def);
      auto producer = cast<linalg::GenericOp>(def);
      collectPending(producer, KernelKind::Elementwise, pulled);
      pulled.push_back(producer);
    }
  }

  /// The groups other than `group` that read its values; false if a value
  /// of it is used outside the groups' generics (a return, host code).
  bool readersOf(const Group &group, llvm::SetVector<Group *> &readers) {
    for (linalg::GenericOp member : group.ops)
      for (Operation *user : member->getUsers()) {
        Operation *anchor = block.findAncestorOpInBlock(*user);
        if (anchor && group.members.contains(anchor))
          continue;
        auto it = anchor ? groupOf.find(anchor) : groupOf.end();
        if (it == groupOf.end() || anchor != user)
          return false;
        readers.insert(it->second);
      }
    return true;
  }

  /// Attention: a contraction's group (the scores) whose values only
  /// reduction or elementwise groups read (the softmax: PyTorch's SDPA adds
  /// a second one that zeroes fully masked rows), and theirs only those and
  /// one contraction of a last group, as an operand (the value product),
  /// become one `attention` kernel: codegen computes the scores, softmax and
  /// value product per block of queries (AttentionKernel.h) and never
  /// stores the scores. The merged kernel is called where the value
  /// product was, which every input of the others dominates; nothing
  /// outside them reads the scores or the softmax.
  void mergeAttention() {
    for (auto &owner : groups) {
      Group *scores = owner.get();
      if (!scores || scores->kind != KernelKind::Gemm || scores->ops.empty())
        continue;
      llvm::SetVector<Group *> softmax; // in the order they are reached
      Group *value = nullptr;
      SmallVector<Group *> work{scores};
      bool ok = true;
      while (ok && !work.empty()) {
        llvm::SetVector<Group *> readers;
        ok = readersOf(*work.pop_back_val(), readers);
        for (Group *r : readers) {
          if (r->kind == KernelKind::Gemm) {
            ok &= !value || value == r;
            value = r;
          } else if (r->kind == KernelKind::Attention) {
            ok = false; // another attention's kernel: not a softmax
          } else if (r != scores && softmax.insert(r)) {
            work.push_back(r);
          }
        }
        ok &= softmax.size() <= 4;
      }
      // A softmax: a reduction and an exp among the groups in between.
      auto hasExp = [](Group *g) {
        return llvm::any_of(g->ops, [](linalg::GenericOp op) {
          return !op.getBody()->getOps<math::ExpOp>().empty();
        });
      };
      if (!ok || !value || value->ops.empty() || value == scores ||
          llvm::none_of(softmax, [](Group *g) {
            return g->kind == KernelKind::Reduction;
          }) ||
          llvm::none_of(softmax, hasExp))
        continue;
      // The value product reads the scores' and the softmax's values only
      // by its contraction (not by its epilogue).
      bool operand = true;
      for (linalg::GenericOp op : value->ops)
        for (Value in : op->getOperands()) {
          Operation *def = in.getDefiningOp();
          auto it = def ? groupOf.find(def) : groupOf.end();
          if (it != groupOf.end() &&
              (it->second == scores || softmax.contains(it->second)))
            operand &= classify(op) == KernelKind::Gemm;
        }
      if (!operand)
        continue;
      SmallVector<Group *> from{scores};
      llvm::append_range(from, softmax);
      for (Group *g : from) {
        for (linalg::GenericOp op : g->ops) {
          value->ops.push_back(op);
          value->members.insert(op);
          groupOf[op] = value;
        }
        g->ops.clear();
      }
      value->kind = KernelKind::Attention;
    }
    llvm::erase_if(groups, [](const std::unique_ptr<Group> &g) {
      return g->ops.empty();
    });
  }

  /// A contraction's group whose results are a handful of logits in one
  /// dimension (a skim step's actions, an exit head's classes: at most
  /// kDecisionLogits values): the reduction that decides on them (argmax,
  /// softmax, entropy) joins it, one kernel call a step instead of two.
  static bool decisionLogits(const Group &group) {
    return llvm::all_of(group.ops, [](linalg::GenericOp op) {
      if (classify(op) != KernelKind::Gemm)
        return true;
      auto type = cast<RankedTensorType>(op->getResult(0).getType());
      return type.getRank() == 1 && type.getNumElements() <= kDecisionLogits;
    });
  }

  Group *producerGroup(Value v) {
    Operation *def = v.getDefiningOp();
    auto it = def ? groupOf.find(def) : groupOf.end();
    return it == groupOf.end() ? nullptr : it->second;
  }

  /// Whether `op` (with its pulled producers) may join `group`: the kinds
  /// fit (a contraction starts its own kernel and takes only elementwise
  /// epilogues), no other group in between depends on `group` (the call
  /// would not dominate its user), and every outside use of the group's
  /// values comes after `op` (where the call will be).
  bool canJoin(const Group &group, linalg::GenericOp op, KernelKind kind,
               ArrayRef<linalg::GenericOp> pulled) {
    if (kind == KernelKind::Gemm)
      return false;
    if (kind == KernelKind::Reduction && group.kind == KernelKind::Gemm &&
        !decisionLogits(group))
      return false;
    llvm::SmallPtrSet<Operation *, 8> joining(pulled.begin(), pulled.end());
    joining.insert(op);
    for (Operation *member : joining)
      for (Value in : readValues(cast<linalg::GenericOp>(member), true))
        if (Group *g = producerGroup(in))
          if (g != &group && g->deps.contains(&group))
            return false;
    for (linalg::GenericOp member : group.ops)
      for (Operation *user : member->getUsers()) {
        Operation *anchor = block.findAncestorOpInBlock(*user);
        if (!anchor || group.members.contains(anchor) ||
            joining.contains(anchor))
          continue;
        if (!op->isBeforeInBlock(anchor))
          return false;
      }
    return true;
  }

  void add(Group &group, linalg::GenericOp op) {
    for (Value in : readValues(op, /*gathers=*/true))
      if (Group *g = producerGroup(in))
        if (g != &group) {
          group.deps.insert(g);
          group.deps.insert(g->deps.begin(), g->deps.end());
        }
    group.ops.push_back(op);
    group.members.insert(op);
    groupOf[op] = &group;
  }
};

struct DynFormKernelsPass
    : public dyncc::impl::DynFormKernelsBase<DynFormKernelsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (failed(prepare(module)))
      return signalPassFailure();

    SymbolTable symbols(module);
    SmallVector<func::FuncOp> funcs(module.getOps<func::FuncOp>());
    for (func::FuncOp fn : funcs) {
      if (fn.isExternal() || fn->hasAttr(dyncc::kKernelAttrName))
        continue;
      unsigned counter = 0;
      SmallVector<Block *> blocks;
      fn.walk<WalkOrder::PreOrder>([&](Block *block) {
        if (!isa<linalg::LinalgOp>(block->getParentOp()))
          blocks.push_back(block);
      });
      for (Block *block : blocks)
        for (auto &group : BlockGrouper(*block).run())
          outline(*group, fn, symbols, counter++);
      // Initializers that every kernel cloned are dead now.
      SmallVector<Operation *> dead;
      fn.walk([&](Operation *op) {
        if (isInitProducer(op) && op->use_empty())
          dead.push_back(op);
      });
      while (!dead.empty()) {
        Operation *op = dead.pop_back_val();
        SmallVector<Operation *> operands;
        for (Value v : op->getOperands())
          if (Operation *def = v.getDefiningOp())
            operands.push_back(def);
        op->erase();
        for (Operation *def : operands)
          if (isInitProducer(def) && def->use_empty() &&
              !llvm::is_contained(dead, def))
            dead.push_back(def);
      }
    }
    dedupeKernels(module);
  }

  /// Kernels with the same body, argument types and attributes (the layers
  /// of a deep network, the buckets' stages of one shape) become one: the
  /// calls of the duplicates call the first, and only it is compiled.
  void dedupeKernels(ModuleOp module) {
    llvm::StringMap<func::FuncOp> first;
    llvm::DenseMap<StringAttr, FlatSymbolRefAttr> replacement;
    SmallVector<func::FuncOp> duplicates;
    MLIRContext *ctx = module.getContext();
    for (func::FuncOp k : llvm::make_early_inc_range(module.getOps<func::FuncOp>())) {
      if (k.isExternal() || !k->hasAttr(dyncc::kKernelAttrName))
        continue;
      // The kernel printed under a fixed name is its key.
      OpBuilder b(ctx);
      auto probe = cast<func::FuncOp>(b.clone(*k));
      probe.setSymName("kernel");
      std::string key;
      llvm::raw_string_ostream os(key);
      probe->print(os, OpPrintingFlags().useLocalScope());
      probe->erase();
      auto [it, inserted] = first.try_emplace(key, k);
      if (inserted)
        continue;
      replacement[k.getSymNameAttr()] = FlatSymbolRefAttr::get(it->second.getSymNameAttr());
      duplicates.push_back(k);
    }
    if (duplicates.empty())
      return;
    module.walk([&](func::CallOp call) {
      auto it = replacement.find(call.getCalleeAttr().getAttr());
      if (it != replacement.end())
        call.setCalleeAttr(it->second);
    });
    for (func::FuncOp k : duplicates)
      k.erase();
  }

  /// Generalizes named linalg ops, decomposes softmax, rewrites slices and
  /// concatenation as generics, and rejects ops outside the accepted set.
  /// Size-1 loops out of every generic (torch's keepdim reductions and
  /// batch-1 dimensions): the reshapes that added or removed them between
  /// ops then fold away, so that a producer and its consumer meet directly
  /// and can share a kernel (a GEMM and its GELU, a softmax's reductions).
  LogicalResult dropUnitDims(ModuleOp module) {
    MLIRContext *ctx = module.getContext();
    RewritePatternSet patterns(ctx);
    linalg::ControlDropUnitDims options;
    // A masked expert-body op (kRowMaskAttr) keeps its loops: the rewritten
    // generic would lose the attribute, and the GEMM its tile skipping.
    options.controlFn = [all = options.controlFn](Operation *op) {
      return op->hasAttr(dyncc::kRowMaskAttr) ? SmallVector<unsigned>{}
                                              : all(op);
    };
    linalg::populateFoldUnitExtentDimsPatterns(patterns, options);
    return applyFoldingReshapes(module, std::move(patterns),
                                "dropping unit dimensions");
  }

  /// Applies `patterns`, with the canonicalizations that fold the reshapes
  /// they leave where two meet, to the model's functions (not the kernels).
  static LogicalResult applyFoldingReshapes(ModuleOp module,
                                            RewritePatternSet patterns,
                                            llvm::StringRef what) {
    MLIRContext *ctx = module.getContext();
    tensor::ExpandShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::CollapseShapeOp::getCanonicalizationPatterns(patterns, ctx);
    tensor::populateFoldTensorEmptyPatterns(patterns);
    FrozenRewritePatternSet frozen(std::move(patterns));
    for (func::FuncOp fn : module.getOps<func::FuncOp>()) {
      if (fn.isExternal() || fn->hasAttr(dyncc::kKernelAttrName))
        continue;
      if (failed(applyPatternsAndFoldGreedily(fn, frozen)))
        return fn.emitError(what) << " did not converge";
    }
    return success();
  }

  /// MergeSplitDims over the model's functions.
  LogicalResult mergeSplitDims(ModuleOp module) {
    RewritePatternSet patterns(module.getContext());
    patterns.add<MergeSplitDims>(module.getContext());
    return applyFoldingReshapes(module, std::move(patterns),
                                "merging split dimensions");
  }

  LogicalResult prepare(ModuleOp module) {
    IRRewriter rewriter(module.getContext());
    if (failed(rewriteStructuralOps(module, rewriter)))
      return failure();
    if (failed(dyncc::generalizeLinalg(module)))
      return failure();
    if (failed(dropUnitDims(module)) || failed(mergeSplitDims(module)))
      return failure();

    WalkResult checked = module.walk<WalkOrder::PreOrder>([&](Operation *op) -> WalkResult {
      if (isa<ModuleOp, func::FuncOp>(op) || isHostOp(op) ||
          isa<tensor::EmptyOp>(op))
        return WalkResult::advance();
      if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
        if (!generic.hasPureTensorSemantics())
          return op->emitError("linalg.generic must work on tensors");
        for (Operation &bodyOp : generic.getBody()->getOperations())
          if (!dyncc::isKernelBodyOp(&bodyOp))
            return bodyOp.emitError("unsupported op '")
                   << bodyOp.getName()
                   << "' in a kernel body (see docs/ops.md)";
        return WalkResult::skip();
      }
      return op->emitError("unsupported op '")
             << op->getName() << "' (see docs/ops.md for the accepted ops)";
    });
    return failure(checked.wasInterrupted());
  }

  /// Moves `group` into a new private function and calls it.
  void outline(Group &group, func::FuncOp fn, SymbolTable &symbols,
               unsigned index) {
    MLIRContext *ctx = fn.getContext();
    // Values from outside: inputs, except init producers that are cloned.
    llvm::SetVector<Value> inputs;
    llvm::SetVector<Operation *> clones;
    std::function<void(Value)> visit;
    // The values an op's regions use from outside it (a generic's body may
    // read a scalar constant or a gather table of the function).
    auto visitCaptured = [&](Operation *op) {
      op->walk([&](Operation *inner) {
        for (Value operand : inner->getOperands())
          if (!op->isAncestor(operand.getParentBlock()->getParentOp()))
            visit(operand);
      });
    };
    visit = [&](Value v) {
      Operation *def = v.getDefiningOp();
      if (def && group.members.contains(def))
        return;
      if (def && isInitProducer(def)) {
        if (clones.contains(def))
          return;
        for (Value operand : def->getOperands())
          visit(operand);
        visitCaptured(def);
        clones.insert(def);
        return;
      }
      inputs.insert(v);
    };
    llvm::sort(group.ops, [](linalg::GenericOp a, linalg::GenericOp b) {
      return a->isBeforeInBlock(b);
    });
    for (linalg::GenericOp op : group.ops) {
      for (Value operand : op->getOperands())
        visit(operand);
      visitCaptured(op);
    }
    llvm::sort(group.ops, [](linalg::GenericOp a, linalg::GenericOp b) {
      return a->isBeforeInBlock(b);
    });
    linalg::GenericOp last = group.ops.back();
    // Outputs: every result used outside the group (the last op's results,
    // and intermediates that later code reads too).
    SmallVector<Value> outputs;
    for (linalg::GenericOp op : group.ops)
      for (Value result : op->getResults())
        if (llvm::any_of(result.getUsers(), [&](Operation *user) {
              Operation *anchor =
                  last->getBlock()->findAncestorOpInBlock(*user);
              return !anchor || !group.members.contains(anchor);
            }))
          outputs.push_back(result);

    OpBuilder builder(ctx);
    builder.setInsertionPoint(fn);
    std::string name =
        (fn.getSymName() + "_kernel" + llvm::Twine(index)).str();
    auto type = builder.getFunctionType(
        llvm::to_vector(llvm::map_range(inputs, [](Value v) { return v.getType(); })),
        llvm::to_vector(llvm::map_range(outputs, [](Value v) { return v.getType(); })));
    auto kernel = builder.create<func::FuncOp>(last.getLoc(), name, type);
    kernel.setPrivate();
    kernel->setAttr(dyncc::kKernelAttrName,
                    StringAttr::get(ctx, dyncc::kernelKindName(group.kind)));
    symbols.insert(kernel);

    Block *entry = kernel.addEntryBlock();
    IRMapping map;
    for (auto [v, arg] : llvm::zip(inputs, entry->getArguments()))
      map.map(v, arg);
    builder.setInsertionPointToStart(entry);
    for (Operation *op : clones)
      builder.clone(*op, map);
    for (linalg::GenericOp op : group.ops)
      builder.clone(*op, map);
    builder.create<func::ReturnOp>(
        last.getLoc(), llvm::to_vector(llvm::map_range(
                           outputs, [&](Value v) { return map.lookup(v); })));

    builder.setInsertionPoint(last);
    auto call = builder.create<func::CallOp>(last.getLoc(), kernel,
                                             inputs.getArrayRef());
    for (auto [out, result] : llvm::zip(outputs, call.getResults()))
      out.replaceAllUsesWith(result);
    for (linalg::GenericOp op : llvm::reverse(group.ops))
      op->erase();
    for (Operation *op : llvm::reverse(clones))
      if (op->use_empty())
        op->erase();
  }
};

} // namespace

LogicalResult dyncc::generalizeLinalg(Operation *root) {
  IRRewriter rewriter(root->getContext());
  SmallVector<linalg::SoftmaxOp> softmaxes;
  root->walk([&](linalg::SoftmaxOp op) { softmaxes.push_back(op); });
  for (linalg::SoftmaxOp op : softmaxes) {
    rewriter.setInsertionPoint(op);
    FailureOr<SmallVector<Value>> parts = op.decomposeOperation(rewriter);
    if (failed(parts))
      return op.emitError("cannot decompose linalg.softmax");
    rewriter.replaceOp(op, *parts);
  }
  SmallVector<linalg::LinalgOp> named;
  root->walk([&](linalg::LinalgOp op) {
    if (!isa<linalg::GenericOp>(op))
      named.push_back(op);
  });
  for (linalg::LinalgOp op : named) {
    rewriter.setInsertionPoint(op);
    if (failed(linalg::generalizeNamedOp(rewriter, op)))
      return op->emitError("cannot generalize '")
             << op->getName() << "' into linalg.generic";
  }
  return success();
}
