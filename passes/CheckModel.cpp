//===- CheckModel.cpp - reject what dyncc cannot compile safely -----------===//
//
// The first pass of every pipeline. It turns inputs that would otherwise
// crash, exhaust memory or silently wrap sizes in a later stage into
// located errors: dynamic entry shapes, oversized tensors,
// recursion and call trees that explode when inlined.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/MathExtras.h"

namespace dyncc {
#define GEN_PASS_DEF_DYNCHECKMODEL
#include "passes/Passes.h.inc"
} // namespace dyncc

using namespace mlir;

namespace {

/// The largest tensor, in bytes: sizes and offsets stay far from int64
/// overflow in every product the compiler and the runtime form.
constexpr int64_t kMaxTensorBytes = int64_t(1) << 40;
/// The most operations a module may hold after inlining.
constexpr int64_t kMaxInlinedOps = 2'000'000;

/// Bytes per element of a tensor element type (1 for i1 and unknown types:
/// the element type itself is checked later, by the stage that handles it).
int64_t elementBytes(Type type) {
  if (type.isIntOrFloat())
    return std::max<int64_t>(1, (type.getIntOrFloatBitWidth() + 7) / 8);
  return 1;
}

LogicalResult checkType(Type type, Location loc) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor)
    return success();
  int64_t bytes = elementBytes(tensor.getElementType());
  for (int64_t d : tensor.getShape()) {
    if (ShapedType::isDynamic(d))
      continue;
    if (d < 0 || llvm::MulOverflow(bytes, d, bytes) || bytes > kMaxTensorBytes)
      return emitError(loc) << "tensor " << type
                            << " is larger than the limit of 2^40 bytes";
  }
  return success();
}

struct DynCheckModelPass
    : public dyncc::impl::DynCheckModelBase<DynCheckModelPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool bad = false;
    // Every value's type: op results and block arguments.
    module.walk([&](Operation *op) {
      for (Value v : op->getResults())
        bad |= failed(checkType(v.getType(), op->getLoc()));
      for (Region &region : op->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            bad |= failed(checkType(arg.getType(), arg.getLoc()));
      if (auto fn = dyn_cast<func::FuncOp>(op))
        for (Type t : fn.getFunctionType().getResults())
          bad |= failed(checkType(t, fn.getLoc()));
    });
    if (bad)
      return signalPassFailure();

    // The entry's signature: what the generated C API takes and returns.
    for (func::FuncOp fn : module.getOps<func::FuncOp>()) {
      if (!dyncc::isEntryCandidate(fn))
        continue;
      FunctionType type = fn.getFunctionType();
      for (auto [i, t] : llvm::enumerate(type.getInputs()))
        if (auto s = dyn_cast<ShapedType>(t); s && !s.hasStaticShape()) {
          fn.emitError() << "entry shapes must be static: argument #" << i
                         << " of @" << fn.getSymName() << " is " << t;
          bad = true;
        }
      for (auto [i, t] : llvm::enumerate(type.getResults()))
        if (auto s = dyn_cast<ShapedType>(t); s && !s.hasStaticShape()) {
          fn.emitError() << "entry shapes must be static: result #" << i
                         << " of @" << fn.getSymName() << " is " << t;
          bad = true;
        }
    }
    if (bad)
      return signalPassFailure();

    if (failed(checkInlinedSize(module)))
      return signalPassFailure();

    // The model's own gathers are checked at run time (kCheckedIndexAttrName),
    // unless the model opts into clamping them (kClampIndicesAttrName).
    if (module->hasAttr(dyncc::kClampIndicesAttrName))
      return;
    module.walk([&](tensor::ExtractOp ex) {
      if (ex->getParentOfType<linalg::GenericOp>())
        ex->setAttr(dyncc::kCheckedIndexAttrName, UnitAttr::get(&getContext()));
    });
  }

  /// The size of every function with its calls inlined, memoized; recursion
  /// and sizes past the limit are errors at the call that causes them.
  LogicalResult checkInlinedSize(ModuleOp module) {
    SymbolTable symbols(module);
    llvm::DenseMap<Operation *, int64_t> size;
    llvm::DenseMap<Operation *, bool> active;
    std::function<FailureOr<int64_t>(func::FuncOp)> visit =
        [&](func::FuncOp fn) -> FailureOr<int64_t> {
      if (auto it = size.find(fn); it != size.end())
        return it->second;
      active[fn] = true;
      int64_t total = 0;
      WalkResult walk = fn.walk([&](Operation *op) {
        ++total;
        auto call = dyn_cast<func::CallOp>(op);
        if (!call)
          return WalkResult::advance();
        auto callee = symbols.lookup<func::FuncOp>(call.getCallee());
        if (!callee || callee.isExternal())
          return WalkResult::advance();
        if (active.lookup(callee)) {
          call.emitError() << "recursive call to @" << call.getCallee()
                           << ": dyncc compiles call trees without recursion";
          return WalkResult::interrupt();
        }
        FailureOr<int64_t> inner = visit(callee);
        if (failed(inner))
          return WalkResult::interrupt();
        total = total > kMaxInlinedOps - *inner ? kMaxInlinedOps + 1 : total + *inner;
        if (total > kMaxInlinedOps) {
          call.emitError() << "inlining the calls of @" << fn.getSymName()
                           << " would create more than " << kMaxInlinedOps
                           << " operations";
          return WalkResult::interrupt();
        }
        return WalkResult::advance();
      });
      active[fn] = false;
      if (walk.wasInterrupted())
        return failure();
      size[fn] = total;
      return total;
    };
    for (func::FuncOp fn : module.getOps<func::FuncOp>())
      if (failed(visit(fn)))
        return failure();
    return success();
  }
};

} // namespace
