//===- ExtractKernels.cpp - MLIR kernels to KernelIR ----------------------===//
//
// Reads a dyn.kernel function (tensor.empty, scalar constants and
// linalg.generic ops on static shapes) into the neutral KernelIR that the
// Halide emitter consumes.
//
//===----------------------------------------------------------------------===//

#include "codegen/ExtractKernels.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineExprVisitor.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;

namespace dyncc {
namespace {

FailureOr<kir::ElemType> toElemType(Type type) {
  if (type.isF32())
    return kir::ElemType::F32;
  if (type.isF64())
    return kir::ElemType::F64;
  if (type.isIndex())
    return kir::ElemType::I64;
  if (auto i = dyn_cast<IntegerType>(type)) {
    switch (i.getWidth()) {
    case 1:
      return kir::ElemType::I1;
    case 8:
      return kir::ElemType::I8;
    case 16:
      return kir::ElemType::I16;
    case 32:
      return kir::ElemType::I32;
    case 64:
      return kir::ElemType::I64;
    }
  }
  return failure();
}

/// Turns an affine expression of the loops into sum(coeffs * loops) + offset.
LogicalResult toAffineDim(AffineExpr expr, unsigned numLoops,
                          kir::AffineDim &out) {
  out.coeffs.assign(numLoops, 0);
  out.offset = 0;
  out.divisor = 1;
  out.modulus = 0;
  std::function<bool(AffineExpr, int64_t)> add = [&](AffineExpr e,
                                                     int64_t scale) -> bool {
    if (auto d = dyn_cast<AffineDimExpr>(e)) {
      out.coeffs[d.getPosition()] += scale;
      return true;
    }
    if (auto c = dyn_cast<AffineConstantExpr>(e)) {
      out.offset += scale * c.getValue();
      return true;
    }
    auto bin = dyn_cast<AffineBinaryOpExpr>(e);
    if (!bin)
      return false;
    if (bin.getKind() == AffineExprKind::Add)
      return add(bin.getLHS(), scale) && add(bin.getRHS(), scale);
    if (bin.getKind() == AffineExprKind::Mul) {
      if (auto c = dyn_cast<AffineConstantExpr>(bin.getRHS()))
        return add(bin.getLHS(), scale * c.getValue());
      if (auto c = dyn_cast<AffineConstantExpr>(bin.getLHS()))
        return add(bin.getRHS(), scale * c.getValue());
    }
    return false;
  };
  // (linear floordiv c) mod m, either part optional, c and m positive.
  auto constant = [](AffineExpr e) -> int64_t {
    auto c = dyn_cast<AffineConstantExpr>(e);
    return c && c.getValue() > 0 ? c.getValue() : 0;
  };
  if (auto mod = dyn_cast<AffineBinaryOpExpr>(expr);
      mod && mod.getKind() == AffineExprKind::Mod) {
    if (!(out.modulus = constant(mod.getRHS())))
      return failure();
    expr = mod.getLHS();
  }
  if (auto div = dyn_cast<AffineBinaryOpExpr>(expr);
      div && div.getKind() == AffineExprKind::FloorDiv) {
    if (!(out.divisor = constant(div.getRHS())))
      return failure();
    expr = div.getLHS();
  }
  return success(add(expr, 1));
}

/// tensor.empty, possibly reshaped.
bool isUninitialized(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (isa<tensor::EmptyOp>(def))
      return true;
    if (!isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(def))
      return false;
    v = def->getOperand(0);
  }
  return false;
}

class Extractor {
public:
  explicit Extractor(func::FuncOp fn) : fn(fn) {}

  FailureOr<kir::Kernel> run() {
    kernel.name = fn.getSymName().str();
    if (auto kind = fn->getAttrOfType<StringAttr>("dyn.kernel"))
      kernel.kind = kind.str();
    for (BlockArgument arg : fn.getArguments()) {
      FailureOr<int> id = addTensor(arg, kir::Tensor::Role::Input, fn);
      if (failed(id))
        return failure();
      kernel.inputs.push_back(*id);
    }
    for (Operation &op : fn.getBody().front()) {
      LogicalResult ok =
          llvm::TypeSwitch<Operation *, LogicalResult>(&op)
              .Case([&](linalg::GenericOp g) { return addStage(g); })
              .Case([&](tensor::EmptyOp) { return success(); })
              .Case<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(
                  [&](Operation *reshape) -> LogicalResult {
                    if (isUninitialized(reshape->getResult(0)))
                      return success();
                    return reshape->emitError("reshapes inside kernels are "
                                              "not supported");
                  })
              .Case([&](arith::ConstantOp c) -> LogicalResult {
                if (isa<ShapedType>(c.getType()))
                  return c.emitError("tensor constants inside kernels are "
                                     "not supported yet");
                return success();
              })
              .Case([&](func::ReturnOp ret) { return addOutputs(ret); })
              .Default([&](Operation *other) -> LogicalResult {
                return other->emitError("unexpected op '")
                       << other->getName() << "' in a kernel";
              });
      if (failed(ok))
        return failure();
    }
    return std::move(kernel);
  }

private:
  func::FuncOp fn;
  kir::Kernel kernel;
  llvm::DenseMap<Value, int> tensorOf;

  FailureOr<int> addTensor(Value v, kir::Tensor::Role role, Operation *at) {
    auto type = dyn_cast<RankedTensorType>(v.getType());
    if (!type || !type.hasStaticShape())
      return at->emitError("kernel values must be statically shaped tensors, "
                           "got ")
             << v.getType();
    FailureOr<kir::ElemType> elem = toElemType(type.getElementType());
    if (failed(elem))
      return at->emitError("unsupported element type ")
             << type.getElementType() << " in a kernel";
    kir::Tensor t;
    t.name = "t" + std::to_string(kernel.tensors.size());
    t.shape.assign(type.getShape().begin(), type.getShape().end());
    t.type = *elem;
    t.role = role;
    kernel.tensors.push_back(t);
    int id = static_cast<int>(kernel.tensors.size()) - 1;
    tensorOf[v] = id;
    return id;
  }

  LogicalResult addOutputs(func::ReturnOp ret) {
    for (Value v : ret.getOperands()) {
      auto it = tensorOf.find(v);
      if (it == tensorOf.end() ||
          kernel.tensors[it->second].role != kir::Tensor::Role::Temp)
        return ret.emitError("a kernel must return values it computes");
      kernel.tensors[it->second].role = kir::Tensor::Role::Output;
      kernel.outputs.push_back(it->second);
    }
    return success();
  }

  LogicalResult addStage(linalg::GenericOp op) {
    kir::Stage stage;
    SmallVector<int64_t> ranges = op.getStaticLoopRanges();
    unsigned numLoops = ranges.size();
    stage.loopExtents.assign(ranges.begin(), ranges.end());
    for (utils::IteratorType it : op.getIteratorTypesArray())
      stage.isReduction.push_back(it == utils::IteratorType::reduction);
    if (llvm::any_of(ranges, ShapedType::isDynamic))
      return op.emitError("kernel loops must have static extents");

    SmallVector<AffineMap> maps = op.getIndexingMapsArray();
    auto access = [&](OpOperand &operand, int tensor) -> FailureOr<kir::Access> {
      kir::Access a;
      a.tensor = tensor;
      AffineMap map = maps[operand.getOperandNumber()];
      for (AffineExpr e : map.getResults()) {
        kir::AffineDim dim;
        if (failed(toAffineDim(e, numLoops, dim)))
          return op.emitError("indexing map ")
                 << AffineMapAttr::get(map)
                 << " is not a sum of scaled loops plus a constant";
        a.dims.push_back(dim);
      }
      return a;
    };

    Block *body = op.getBody();
    // Body block argument -> expression index.
    llvm::DenseMap<Value, int> exprOf;
    std::function<int(kir::Expr)> emit = [&](kir::Expr e) {
      stage.exprs.push_back(std::move(e));
      return static_cast<int>(stage.exprs.size()) - 1;
    };

    for (OpOperand *in : op.getDpsInputOperands()) {
      BlockArgument arg = body->getArgument(in->getOperandNumber());
      FailureOr<kir::ElemType> elem = toElemType(arg.getType());
      if (failed(elem))
        return op.emitError("unsupported element type ") << arg.getType();
      if (!isa<ShapedType>(in->get().getType())) {
        // A scalar input: must be a constant cloned into the kernel.
        auto cst = in->get().getDefiningOp<arith::ConstantOp>();
        if (!cst)
          return op.emitError("scalar inputs of kernel ops must be constants");
        exprOf[arg] = emit(constant(cst.getValue(), *elem));
        continue;
      }
      auto it = tensorOf.find(in->get());
      if (it == tensorOf.end())
        return op.emitError("input is not a kernel value");
      FailureOr<kir::Access> a = access(*in, it->second);
      if (failed(a))
        return failure();
      stage.inputs.push_back(*a);
      if (auto mask = op->getAttrOfType<IntegerAttr>(kRowMaskAttr);
          mask && mask.getInt() == in->getOperandNumber())
        stage.rowMask = static_cast<int>(stage.inputs.size()) - 1;
      kir::Expr load{kir::OpCode::Load, *elem};
      load.index = static_cast<int64_t>(stage.inputs.size()) - 1;
      exprOf[arg] = emit(load);
    }

    int stageId = static_cast<int>(kernel.stages.size());
    SmallVector<int> outTensors;
    for (auto [o, init] : llvm::enumerate(op.getDpsInitsMutable())) {
      BlockArgument arg = body->getArgument(init.getOperandNumber());
      FailureOr<kir::ElemType> elem = toElemType(arg.getType());
      if (failed(elem))
        return op.emitError("unsupported element type ") << arg.getType();
      auto initIt = tensorOf.find(init.get());
      stage.inits.push_back(initIt == tensorOf.end() ? -1 : initIt->second);
      if (initIt == tensorOf.end() && !isUninitialized(init.get()))
        return op.emitError("output init must be tensor.empty or a kernel value");
      Value result = op->getResult(o);
      FailureOr<int> t = addTensor(result, kir::Tensor::Role::Temp, op);
      if (failed(t))
        return failure();
      kernel.tensors[*t].stage = stageId;
      kernel.tensors[*t].result = static_cast<int>(o);
      FailureOr<kir::Access> a = access(init, *t);
      if (failed(a))
        return failure();
      for (const kir::AffineDim &d : a->dims)
        if (d.loop() < 0)
          return op.emitError("output indexing maps must be projected "
                              "permutations");
      stage.outputs.push_back(*a);
      kir::Expr acc{kir::OpCode::Acc, *elem};
      acc.index = static_cast<int64_t>(o);
      exprOf[arg] = emit(acc);
    }

    for (Operation &bodyOp : body->without_terminator()) {
      if (auto check = dyn_cast<cf::AssertOp>(bodyOp)) {
        auto it = exprOf.find(check.getArg());
        if (it == exprOf.end())
          return check.emitError("the condition of a check must be computed "
                                 "in the kernel body");
        stage.checks.push_back(it->second);
        stage.checkMessages.push_back(check.getMsg().str());
        continue;
      }
      FailureOr<int> e = translate(bodyOp, exprOf, emit);
      if (failed(e))
        return failure();
      exprOf[bodyOp.getResult(0)] = *e;
    }
    for (Value y : body->getTerminator()->getOperands())
      stage.yields.push_back(exprOf.lookup(y));
    kernel.stages.push_back(std::move(stage));
    return success();
  }

  static kir::Expr constant(Attribute value, kir::ElemType type) {
    kir::Expr e{kir::OpCode::Const, type};
    if (auto f = dyn_cast<FloatAttr>(value))
      e.fval = f.getValueAsDouble();
    else if (auto i = dyn_cast<IntegerAttr>(value))
      e.ival = i.getType().isInteger(1) ? i.getValue().getZExtValue()
                                        : i.getValue().getSExtValue();
    return e;
  }

  FailureOr<int> translate(Operation &op, llvm::DenseMap<Value, int> &exprOf,
                           const std::function<int(kir::Expr)> &emit) {
    if (op.getNumResults() != 1)
      return op.emitError("kernel body ops must have one result");
    FailureOr<kir::ElemType> type = toElemType(op.getResult(0).getType());
    if (failed(type))
      return op.emitError("unsupported type ") << op.getResult(0).getType();
    kir::Expr e{kir::OpCode::Const, *type};
    for (Value operand : op.getOperands()) {
      auto it = exprOf.find(operand);
      if (it != exprOf.end()) {
        e.args.push_back(it->second);
        continue;
      }
      if (isa<tensor::ExtractOp>(op) && operand == op.getOperand(0))
        continue; // the table, handled below
      // A scalar constant captured from the kernel function.
      if (auto cst = operand.getDefiningOp<arith::ConstantOp>()) {
        FailureOr<kir::ElemType> ct = toElemType(cst.getType());
        if (succeeded(ct)) {
          int id = emit(constant(cst.getValue(), *ct));
          exprOf[operand] = id;
          e.args.push_back(id);
          continue;
        }
      }
      return op.emitError("operand is defined outside the kernel body");
    }
    using kir::OpCode;
    auto set = [&](OpCode code) -> FailureOr<int> {
      e.op = code;
      return emit(e);
    };
    return llvm::TypeSwitch<Operation *, FailureOr<int>>(&op)
        .Case([&](arith::ConstantOp c) -> FailureOr<int> {
          return emit(constant(c.getValue(), *type));
        })
        .Case([&](arith::AddFOp) { return set(OpCode::AddF); })
        .Case([&](arith::SubFOp) { return set(OpCode::SubF); })
        .Case([&](arith::MulFOp) { return set(OpCode::MulF); })
        .Case([&](arith::DivFOp) { return set(OpCode::DivF); })
        .Case([&](arith::NegFOp) { return set(OpCode::NegF); })
        .Case([&](arith::MaximumFOp) { return set(OpCode::MaximumF); })
        .Case([&](arith::MinimumFOp) { return set(OpCode::MinimumF); })
        .Case([&](arith::MaxNumFOp) { return set(OpCode::MaxNumF); })
        .Case([&](arith::MinNumFOp) { return set(OpCode::MinNumF); })
        .Case([&](arith::CmpFOp c) {
          e.pred = static_cast<int>(c.getPredicate());
          return set(OpCode::CmpF);
        })
        .Case([&](arith::CmpIOp c) {
          e.pred = static_cast<int>(c.getPredicate());
          return set(OpCode::CmpI);
        })
        .Case([&](arith::SelectOp) { return set(OpCode::Select); })
        .Case<arith::ExtFOp, arith::TruncFOp, arith::SIToFPOp, arith::FPToSIOp,
              arith::IndexCastOp, arith::ExtSIOp, arith::TruncIOp>(
            [&](Operation *) { return set(OpCode::Cast); })
        .Case<arith::UIToFPOp, arith::ExtUIOp>([&](Operation *) {
          e.unsignedSource = true;
          return set(OpCode::Cast);
        })
        .Case([&](arith::AddIOp) { return set(OpCode::AddI); })
        .Case([&](arith::SubIOp) { return set(OpCode::SubI); })
        .Case([&](arith::MulIOp) { return set(OpCode::MulI); })
        .Case([&](arith::DivSIOp) { return set(OpCode::DivSI); })
        .Case([&](arith::RemSIOp) { return set(OpCode::RemSI); })
        .Case([&](arith::AndIOp) { return set(OpCode::AndI); })
        .Case([&](arith::OrIOp) { return set(OpCode::OrI); })
        .Case([&](arith::XOrIOp) { return set(OpCode::XOrI); })
        .Case([&](math::ExpOp) { return set(OpCode::Exp); })
        .Case([&](math::LogOp) { return set(OpCode::Log); })
        .Case([&](math::TanhOp) { return set(OpCode::Tanh); })
        .Case([&](math::ErfOp) { return set(OpCode::Erf); })
        .Case([&](math::SqrtOp) { return set(OpCode::Sqrt); })
        .Case([&](math::RsqrtOp) { return set(OpCode::Rsqrt); })
        .Case([&](math::AbsFOp) { return set(OpCode::AbsF); })
        .Case([&](math::Log1pOp) { return set(OpCode::Log1p); })
        .Case([&](math::SinOp) { return set(OpCode::Sin); })
        .Case([&](math::CosOp) { return set(OpCode::Cos); })
        .Case([&](math::FloorOp) { return set(OpCode::Floor); })
        .Case([&](math::CeilOp) { return set(OpCode::Ceil); })
        .Case([&](math::RoundOp) { return set(OpCode::Round); })
        .Case([&](math::RoundEvenOp) { return set(OpCode::RoundEven); })
        .Case([&](math::AbsIOp) { return set(OpCode::AbsI); })
        .Case([&](arith::MaxSIOp) { return set(OpCode::MaxSI); })
        .Case([&](arith::FloorDivSIOp) { return set(OpCode::FloorDivSI); })
        .Case([&](arith::CeilDivSIOp) { return set(OpCode::CeilDivSI); })
        .Case([&](arith::MinSIOp) { return set(OpCode::MinSI); })
        .Case([&](arith::MaxUIOp) { return set(OpCode::MaxUI); })
        .Case([&](arith::MinUIOp) { return set(OpCode::MinUI); })
        .Case([&](math::PowFOp) { return set(OpCode::PowF); })
        .Case([&](linalg::IndexOp idx) {
          e.index = idx.getDim();
          return set(OpCode::LoopIndex);
        })
        .Case([&](tensor::ExtractOp ex) -> FailureOr<int> {
          auto it = tensorOf.find(ex.getTensor());
          if (it == tensorOf.end())
            return ex.emitError("gather tables must be kernel inputs");
          e.index = it->second;
          e.checkedIndex = ex->hasAttr(kCheckedIndexAttrName);
          return set(OpCode::Extract);
        })
        .Default([&](Operation *other) -> FailureOr<int> {
          return other->emitError("unsupported op '")
                 << other->getName() << "' in a kernel body";
        });
  }
};

} // namespace

FailureOr<kir::Kernel> extractKernel(func::FuncOp kernel) {
  return Extractor(kernel).run();
}

} // namespace dyncc
