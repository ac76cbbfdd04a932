//===- Interpreter.cpp - the reference interpreter of the op set ----------===//
//
// Functions run op by op on whole tensors; linalg ops run their loop nest
// point by point in row-major order and their body through ScalarProgram.
// Every check that the verifiers already make is repeated where a violation
// would otherwise read out of bounds: this interpreter must never crash.
//
//===----------------------------------------------------------------------===//

#include "reference/Interpreter.h"
#include "reference/ScalarProgram.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/AffineExpr.h"
#include "mlir/IR/AffineMap.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/SymbolTable.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cmath>
#include <limits>
#include <optional>
#include <string>

using namespace mlir;

namespace dyncc::reference {

int64_t getNumElements(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t size : shape)
    count *= size;
  return count;
}

namespace {

/// The values of one function activation.
using Env = llvm::DenseMap<Value, Tensor>;
using Results = std::vector<Tensor>;

//===----------------------------------------------------------------------===//
// Shapes and types.
//===----------------------------------------------------------------------===//

/// Row-major strides of `shape`.
SmallVector<int64_t> getStrides(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t dim = static_cast<int64_t>(shape.size()) - 2; dim >= 0; --dim)
    strides[dim] = strides[dim + 1] * shape[dim + 1];
  return strides;
}

/// Calls `fn` on every index of `shape` in row-major order (once for a
/// scalar), until it fails.
LogicalResult
forEachIndex(ArrayRef<int64_t> shape,
             llvm::function_ref<LogicalResult(ArrayRef<int64_t>)> fn) {
  if (getNumElements(shape) == 0)
    return success();
  SmallVector<int64_t> index(shape.size(), 0);
  while (true) {
    if (failed(fn(index)))
      return failure();
    int64_t dim = static_cast<int64_t>(shape.size()) - 1;
    for (; dim >= 0; --dim) {
      if (++index[dim] < shape[dim])
        break;
      index[dim] = 0;
    }
    if (dim < 0)
      return success();
  }
}

/// "a scalar", "shape 4x8", plus the element count where it disagrees.
std::string describe(const Tensor &value) {
  std::string text = value.shape.empty()
                         ? std::string("a scalar")
                         : fmt::format("shape {}", fmt::join(value.shape, "x"));
  if (static_cast<int64_t>(value.data.size()) != getNumElements(value.shape))
    text += fmt::format(" with {} elements", value.data.size());
  return text;
}

/// Whether values of `type` can be interpreted: scalars and ranked tensors of
/// float, integer and index.
bool isSupportedType(Type type) {
  if (auto tensorType = dyn_cast<RankedTensorType>(type))
    return getScalarKind(tensorType.getElementType()).has_value();
  return getScalarKind(type).has_value();
}

/// Whether `value` has the shape of `type` (any size where it is dynamic)
/// and as many elements as that shape.
bool matchesType(Type type, const Tensor &value) {
  if (static_cast<int64_t>(value.data.size()) != getNumElements(value.shape))
    return false;
  auto tensorType = dyn_cast<RankedTensorType>(type);
  if (!tensorType)
    return value.shape.empty() && getScalarKind(type);
  if (tensorType.getRank() != static_cast<int64_t>(value.shape.size()))
    return false;
  for (auto [expected, actual] : llvm::zip(tensorType.getShape(), value.shape))
    if (!ShapedType::isDynamic(expected) && expected != actual)
      return false;
  return true;
}

/// The first element of `value` that is not a value of the integer element
/// type of `type` (booleans are 0 or 1, other integers exact and in range).
std::optional<size_t> findInvalidElement(Type type, const Tensor &value) {
  std::optional<ScalarKind> kind = getScalarKind(getElementTypeOrSelf(type));
  if (!kind || kind->isFloat)
    return std::nullopt;
  double lo = kind->width == 1 ? 0 : -std::ldexp(1.0, kind->width - 1);
  double hi = kind->width == 1 ? 1 : std::ldexp(1.0, kind->width - 1) - 1;
  for (auto [i, element] : llvm::enumerate(value.data))
    if (!(element >= lo && element <= hi) || std::trunc(element) != element)
      return i;
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Indexing maps.
//===----------------------------------------------------------------------===//

/// Evaluates a pure affine expression at the loop point `dims`; none where it
/// is not defined (division by zero, symbols).
std::optional<int64_t> evaluateAffine(AffineExpr expr, ArrayRef<int64_t> dims) {
  if (auto constant = dyn_cast<AffineConstantExpr>(expr))
    return constant.getValue();
  if (auto dim = dyn_cast<AffineDimExpr>(expr)) {
    if (dim.getPosition() >= dims.size())
      return std::nullopt;
    return dims[dim.getPosition()];
  }
  auto binary = dyn_cast<AffineBinaryOpExpr>(expr);
  if (!binary)
    return std::nullopt;
  std::optional<int64_t> lhs = evaluateAffine(binary.getLHS(), dims);
  std::optional<int64_t> rhs = evaluateAffine(binary.getRHS(), dims);
  if (!lhs || !rhs)
    return std::nullopt;
  switch (expr.getKind()) {
  case AffineExprKind::Add:
    return *lhs + *rhs;
  case AffineExprKind::Mul:
    return *lhs * *rhs;
  case AffineExprKind::Mod:
    if (*rhs <= 0)
      return std::nullopt;
    return ((*lhs % *rhs) + *rhs) % *rhs;
  case AffineExprKind::FloorDiv:
    if (*rhs == 0)
      return std::nullopt;
    return llvm::divideFloorSigned(*lhs, *rhs);
  case AffineExprKind::CeilDiv:
    if (*rhs == 0)
      return std::nullopt;
    return llvm::divideCeilSigned(*lhs, *rhs);
  default:
    return std::nullopt;
  }
}

/// How one operand of a linalg op is addressed at a loop point: a constant
/// offset, plus loop indices times strides for the results that are plain
/// dimensions, plus any other (rare) affine results evaluated at each point.
struct Access {
  struct ComputedResult {
    AffineExpr expr;
    int64_t stride;
    int64_t size;
  };
  int64_t base = 0;
  SmallVector<std::pair<unsigned, int64_t>> dimStrides;
  SmallVector<ComputedResult> computed;

  /// The element offset at `point`; none where a computed result leaves the
  /// operand.
  std::optional<int64_t> offsetAt(ArrayRef<int64_t> point) const {
    int64_t offset = base;
    for (auto [dim, stride] : dimStrides)
      offset += point[dim] * stride;
    for (const ComputedResult &result : computed) {
      std::optional<int64_t> index = evaluateAffine(result.expr, point);
      if (!index || *index < 0 || *index >= result.size)
        return std::nullopt;
      offset += *index * result.stride;
    }
    return offset;
  }
};

//===----------------------------------------------------------------------===//
// Constants.
//===----------------------------------------------------------------------===//

/// Appends the elements of `value` if it is a `dense_resource` constant of
/// kind `AttrT` whose blob is loaded; false otherwise.
template <typename AttrT>
bool appendResourceElements(Attribute value, std::vector<double> &data) {
  auto resource = dyn_cast<AttrT>(value);
  if (!resource)
    return false;
  auto elements = resource.tryGetAsArrayRef();
  if (!elements)
    return false;
  for (auto element : *elements)
    data.push_back(static_cast<double>(element));
  return true;
}

//===----------------------------------------------------------------------===//
// The interpreter.
//===----------------------------------------------------------------------===//

class Interpreter {
public:
  FailureOr<Results> callFunction(func::FuncOp fn, ArrayRef<Tensor> args);

private:
  FailureOr<Results> evaluate(Operation &op, const Env &env);
  FailureOr<Results> evaluateCall(func::CallOp call, const Env &env);
  FailureOr<Tensor> evaluateConstant(arith::ConstantOp op);
  FailureOr<Tensor> evaluateEmpty(tensor::EmptyOp op);
  FailureOr<Tensor> evaluateExtractSlice(tensor::ExtractSliceOp op,
                                         const Env &env);
  FailureOr<Tensor> evaluateInsertSlice(tensor::InsertSliceOp op,
                                        const Env &env);
  FailureOr<Tensor> evaluateConcat(tensor::ConcatOp op, const Env &env);
  FailureOr<Tensor> evaluateReshape(Operation *op, Value source,
                                    const Env &env);
  FailureOr<Tensor> evaluateSoftmax(linalg::SoftmaxOp op, const Env &env);
  FailureOr<Results> evaluateStructured(linalg::LinalgOp op, const Env &env);

  /// The functions being run, innermost last. Calling one of them again could
  /// never return: the op set has no control flow.
  SmallVector<Operation *> callStack;
};

/// The value of `value`, or null after an error on `user`.
const Tensor *lookup(Operation *user, Value value, const Env &env) {
  auto it = env.find(value);
  if (it != env.end())
    return &it->second;
  user->emitError() << "operand has no value in the reference interpreter "
                       "(defined in another region?)";
  return nullptr;
}

FailureOr<Results> Interpreter::callFunction(func::FuncOp fn,
                                             ArrayRef<Tensor> args) {
  if (fn.isExternal())
    return fn.emitError() << "cannot interpret @" << fn.getSymName()
                          << ": it has no body";
  if (llvm::is_contained(callStack, fn.getOperation()))
    return fn.emitError() << "recursive call of @" << fn.getSymName()
                          << " would never return";
  if (!fn.getBody().hasOneBlock())
    return fn.emitError() << "only single-block functions are supported";

  FunctionType type = fn.getFunctionType();
  if (args.size() != type.getNumInputs())
    return fn.emitError() << "expected " << type.getNumInputs()
                          << " arguments, got " << args.size();
  Env env;
  for (auto [i, arg] : llvm::enumerate(args)) {
    Type argType = type.getInput(i);
    if (!isSupportedType(argType))
      return fn.emitError()
             << "argument #" << i << " has unsupported type " << argType;
    if (!matchesType(argType, arg))
      return fn.emitError() << "argument #" << i << " has " << describe(arg)
                            << ", expected " << argType;
    if (std::optional<size_t> bad = findInvalidElement(argType, arg))
      return fn.emitError()
             << "argument #" << i << ": element " << *bad << " ("
             << fmt::format("{}", arg.data[*bad]) << ") is not a value of "
             << getElementTypeOrSelf(argType);
    env[fn.getArgument(i)] = arg;
  }

  callStack.push_back(fn);
  auto popCall = llvm::make_scope_exit([&] { callStack.pop_back(); });
  for (Operation &op : fn.getBody().front()) {
    if (auto ret = dyn_cast<func::ReturnOp>(op)) {
      Results results;
      for (Value operand : ret.getOperands()) {
        const Tensor *value = lookup(ret, operand, env);
        if (!value)
          return failure();
        results.push_back(*value);
      }
      return results;
    }

    FailureOr<Results> results = evaluate(op, env);
    if (failed(results))
      return failure();
    if (results->size() != op.getNumResults())
      return op.emitError()
             << "the reference interpreter computed " << results->size()
             << " values for " << op.getNumResults() << " results";
    for (auto [result, value] : llvm::zip(op.getResults(), *results)) {
      if (!matchesType(result.getType(), value))
        return op.emitError()
               << "result #" << result.getResultNumber() << " has "
               << describe(value) << ", expected " << result.getType();
      env[result] = std::move(value);
    }
  }
  return fn.emitError() << "function body does not end in func.return";
}

FailureOr<Results> Interpreter::evaluate(Operation &op, const Env &env) {
  auto single = [](FailureOr<Tensor> value) -> FailureOr<Results> {
    if (failed(value))
      return failure();
    Results results;
    results.push_back(std::move(*value));
    return results;
  };
  return llvm::TypeSwitch<Operation *, FailureOr<Results>>(&op)
      .Case([&](func::CallOp call) { return evaluateCall(call, env); })
      .Case([&](arith::ConstantOp constant) {
        return single(evaluateConstant(constant));
      })
      .Case([&](tensor::EmptyOp empty) { return single(evaluateEmpty(empty)); })
      .Case([&](tensor::ExtractSliceOp slice) {
        return single(evaluateExtractSlice(slice, env));
      })
      .Case([&](tensor::InsertSliceOp slice) {
        return single(evaluateInsertSlice(slice, env));
      })
      .Case([&](tensor::ConcatOp concat) {
        return single(evaluateConcat(concat, env));
      })
      .Case([&](tensor::ExpandShapeOp expand) {
        return single(evaluateReshape(expand, expand.getSrc(), env));
      })
      .Case([&](tensor::CollapseShapeOp collapse) {
        return single(evaluateReshape(collapse, collapse.getSrc(), env));
      })
      .Case([&](linalg::SoftmaxOp softmax) {
        return single(evaluateSoftmax(softmax, env));
      })
      // The structured ops of docs/ops.md; other named ops (convolutions,
      // pooling, ...) are outside the op set even though they would run.
      .Case<linalg::GenericOp, linalg::MapOp, linalg::ReduceOp, linalg::FillOp,
            linalg::BroadcastOp, linalg::TransposeOp, linalg::MatmulOp,
            linalg::BatchMatmulOp, linalg::MatmulTransposeBOp,
            linalg::BatchMatmulTransposeBOp, linalg::AddOp, linalg::SubOp,
            linalg::MulOp, linalg::DivOp, linalg::MaxOp, linalg::MinOp,
            linalg::ExpOp, linalg::LogOp, linalg::TanhOp, linalg::AbsOp,
            linalg::SqrtOp, linalg::RsqrtOp, linalg::ErfOp, linalg::NegFOp,
            linalg::ReciprocalOp, linalg::SquareOp, linalg::PowFOp>(
          [&](auto structured) {
            return evaluateStructured(
                cast<linalg::LinalgOp>(structured.getOperation()), env);
          })
      .Default([](Operation *other) -> FailureOr<Results> {
        return reportUnsupported(other);
      });
}

FailureOr<Results> Interpreter::evaluateCall(func::CallOp call,
                                             const Env &env) {
  auto callee = SymbolTable::lookupNearestSymbolFrom<func::FuncOp>(
      call, call.getCalleeAttr());
  if (!callee)
    return call.emitError()
           << "@" << call.getCallee() << " is not a function of the module";
  Results args;
  for (Value operand : call.getOperands()) {
    const Tensor *value = lookup(call, operand, env);
    if (!value)
      return failure();
    args.push_back(*value);
  }
  return callFunction(callee, args);
}

FailureOr<Tensor> Interpreter::evaluateConstant(arith::ConstantOp op) {
  Attribute value = op.getValue();
  Tensor result;
  if (auto floatAttr = dyn_cast<FloatAttr>(value)) {
    result.data.push_back(floatAttr.getValueAsDouble());
    return result;
  }
  if (auto integerAttr = dyn_cast<IntegerAttr>(value)) {
    std::optional<ScalarKind> kind = getScalarKind(integerAttr.getType());
    if (!kind)
      return reportUnsupported(op);
    result.data.push_back(integerToDouble(integerAttr.getValue(), kind->width));
    return result;
  }

  auto type = dyn_cast<RankedTensorType>(op.getType());
  if (!type || !type.hasStaticShape() || !isSupportedType(type))
    return op.emitError() << "unsupported constant type " << op.getType();
  result.shape.assign(type.getShape().begin(), type.getShape().end());
  ScalarKind kind = *getScalarKind(type.getElementType());
  if (auto dense = dyn_cast<DenseElementsAttr>(value)) {
    result.data.reserve(getNumElements(result.shape));
    if (kind.isFloat) {
      for (const APFloat &element : dense.getValues<APFloat>())
        result.data.push_back(FloatAttr::getValueAsDouble(element));
    } else {
      for (const APInt &element : dense.getValues<APInt>())
        result.data.push_back(integerToDouble(element, kind.width));
    }
    return result;
  }
  if (appendResourceElements<DenseF32ResourceElementsAttr>(value,
                                                           result.data) ||
      appendResourceElements<DenseF64ResourceElementsAttr>(value,
                                                           result.data) ||
      appendResourceElements<DenseBoolResourceElementsAttr>(value,
                                                            result.data) ||
      appendResourceElements<DenseI8ResourceElementsAttr>(value, result.data) ||
      appendResourceElements<DenseI16ResourceElementsAttr>(value,
                                                           result.data) ||
      appendResourceElements<DenseI32ResourceElementsAttr>(value,
                                                           result.data) ||
      appendResourceElements<DenseI64ResourceElementsAttr>(value, result.data))
    return result;
  return op.emitError() << "unsupported constant: only dense and splat "
                           "elements and dense resources with data";
}

FailureOr<Tensor> Interpreter::evaluateEmpty(tensor::EmptyOp op) {
  RankedTensorType type = op.getType();
  if (!type.hasStaticShape())
    return op.emitError() << "dynamic sizes are not supported";
  Tensor result;
  result.shape.assign(type.getShape().begin(), type.getShape().end());
  // Zeros stand for the undefined contents: valid programs never read them.
  result.data.assign(getNumElements(result.shape), 0.0);
  return result;
}

/// A static slice of a tensor of shape `shape`: where element `index` of the
/// slice lies in the tensor. Emits the error on `op` where the slice is
/// dynamic or leaves the tensor.
struct Slice {
  ArrayRef<int64_t> offsets, sizes, strides;
  SmallVector<int64_t> tensorStrides;

  static FailureOr<Slice> get(OffsetSizeAndStrideOpInterface op,
                              ArrayRef<int64_t> shape) {
    Slice slice{op.getStaticOffsets(), op.getStaticSizes(),
                op.getStaticStrides(), getStrides(shape)};
    auto isDynamic = [](ArrayRef<int64_t> values) {
      return llvm::any_of(values, ShapedType::isDynamic);
    };
    if (isDynamic(slice.offsets) || isDynamic(slice.sizes) ||
        isDynamic(slice.strides))
      return op->emitError()
             << "dynamic offsets, sizes or strides are not supported";
    if (slice.offsets.size() != shape.size() ||
        slice.sizes.size() != shape.size() ||
        slice.strides.size() != shape.size())
      return op->emitError() << "the slice does not have rank " << shape.size();
    for (auto [dim, size] : llvm::enumerate(shape)) {
      int64_t count = slice.sizes[dim];
      if (count < 0)
        return op->emitError() << "negative size in dimension " << dim;
      if (count == 0)
        continue;
      int64_t first = slice.offsets[dim];
      int64_t last = first + (count - 1) * slice.strides[dim];
      if (std::min(first, last) < 0 || std::max(first, last) >= size)
        return op->emitError() << "the slice leaves the tensor in dimension "
                               << dim << " (elements " << first << " to "
                               << last << " of " << size << ")";
    }
    return slice;
  }

  int64_t offsetOf(ArrayRef<int64_t> index) const {
    int64_t offset = 0;
    for (auto [dim, i] : llvm::enumerate(index))
      offset += (offsets[dim] + i * strides[dim]) * tensorStrides[dim];
    return offset;
  }
};

FailureOr<Tensor> Interpreter::evaluateExtractSlice(tensor::ExtractSliceOp op,
                                                    const Env &env) {
  const Tensor *source = lookup(op, op.getSource(), env);
  if (!source)
    return failure();
  FailureOr<Slice> slice = Slice::get(op, source->shape);
  if (failed(slice))
    return failure();
  // A rank-reducing slice drops unit dimensions: the elements are the same.
  Tensor result;
  result.shape.assign(op.getType().getShape().begin(),
                      op.getType().getShape().end());
  result.data.reserve(getNumElements(slice->sizes));
  (void)forEachIndex(slice->sizes, [&](ArrayRef<int64_t> index) {
    result.data.push_back(source->data[slice->offsetOf(index)]);
    return success();
  });
  return result;
}

FailureOr<Tensor> Interpreter::evaluateInsertSlice(tensor::InsertSliceOp op,
                                                   const Env &env) {
  const Tensor *source = lookup(op, op.getSource(), env);
  const Tensor *dest = lookup(op, op.getDest(), env);
  if (!source || !dest)
    return failure();
  FailureOr<Slice> slice = Slice::get(op, dest->shape);
  if (failed(slice))
    return failure();
  if (static_cast<int64_t>(source->data.size()) != getNumElements(slice->sizes))
    return op.emitError() << "the source (" << describe(*source)
                          << ") does not have the slice's "
                          << getNumElements(slice->sizes) << " elements";
  Tensor result = *dest;
  size_t next = 0;
  (void)forEachIndex(slice->sizes, [&](ArrayRef<int64_t> index) {
    result.data[slice->offsetOf(index)] = source->data[next++];
    return success();
  });
  return result;
}

FailureOr<Tensor> Interpreter::evaluateConcat(tensor::ConcatOp op,
                                              const Env &env) {
  SmallVector<const Tensor *> inputs;
  for (Value input : op.getInputs()) {
    inputs.push_back(lookup(op, input, env));
    if (!inputs.back())
      return failure();
  }
  uint64_t dim = op.getDim();
  if (inputs.empty() || dim >= inputs.front()->shape.size())
    return op.emitError() << "cannot concatenate along dimension " << dim;
  Tensor result;
  result.shape = inputs.front()->shape;
  result.shape[dim] = 0;
  for (const Tensor *input : inputs) {
    std::vector<int64_t> expected = result.shape;
    expected[dim] =
        input->shape.size() == expected.size() ? input->shape[dim] : 0;
    if (input->shape != expected)
      return op.emitError()
             << "input of " << describe(*input)
             << " does not fit a concatenation along dimension " << dim;
    result.shape[dim] += input->shape[dim];
  }
  // Each outer index (the dimensions before `dim`) takes one contiguous
  // chunk from every input in turn.
  int64_t outer = getNumElements(ArrayRef(result.shape).take_front(dim));
  result.data.reserve(getNumElements(result.shape));
  for (int64_t o = 0; o < outer; ++o) {
    for (const Tensor *input : inputs) {
      int64_t chunk = getNumElements(ArrayRef(input->shape).drop_front(dim));
      auto begin = input->data.begin() + o * chunk;
      result.data.insert(result.data.end(), begin, begin + chunk);
    }
  }
  return result;
}

FailureOr<Tensor> Interpreter::evaluateReshape(Operation *op, Value source,
                                               const Env &env) {
  const Tensor *input = lookup(op, source, env);
  if (!input)
    return failure();
  auto type = cast<RankedTensorType>(op->getResult(0).getType());
  if (!type.hasStaticShape())
    return op->emitError() << "dynamic sizes are not supported";
  if (type.getNumElements() != getNumElements(input->shape))
    return op->emitError() << "cannot reshape " << describe(*input) << " to "
                           << type;
  // Row-major order makes expand_shape and collapse_shape pure relabelings.
  Tensor result;
  result.shape.assign(type.getShape().begin(), type.getShape().end());
  result.data = input->data;
  return result;
}

FailureOr<Tensor> Interpreter::evaluateSoftmax(linalg::SoftmaxOp op,
                                               const Env &env) {
  const Tensor *input = lookup(op, op.getInput(), env);
  if (!input)
    return failure();
  uint64_t dim = op.getDimension();
  if (dim >= input->shape.size())
    return op.emitError() << "dimension " << dim << " is out of range";
  ArrayRef<int64_t> shape = input->shape;
  int64_t outer = getNumElements(shape.take_front(dim));
  int64_t count = shape[dim];
  int64_t inner = getNumElements(shape.drop_front(dim + 1));

  // The numerically stable form, as linalg decomposes softmax: subtract the
  // maximum (NaN-propagating, like arith.maximumf) before exponentiating.
  Tensor result = *input;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t k) -> double & {
        return result.data[(o * count + k) * inner + i];
      };
      double maximum = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < count; ++k)
        maximum = std::isnan(at(k)) || std::isnan(maximum)
                      ? std::numeric_limits<double>::quiet_NaN()
                      : std::max(maximum, at(k));
      double sum = 0;
      for (int64_t k = 0; k < count; ++k) {
        at(k) = std::exp(at(k) - maximum);
        sum += at(k);
      }
      for (int64_t k = 0; k < count; ++k)
        at(k) /= sum;
    }
  }
  return result;
}

FailureOr<Results> Interpreter::evaluateStructured(linalg::LinalgOp op,
                                                   const Env &env) {
  Operation *operation = op.getOperation();
  if (!op.hasPureTensorSemantics())
    return operation->emitError() << "only linalg ops on tensors are supported";
  if (operation->getNumRegions() != 1 || operation->getRegion(0).empty())
    return operation->emitError() << "expected a linalg op with a body";

  // Inputs first, then inits: the order of the indexing maps.
  SmallVector<const Tensor *> operands;
  SmallVector<Value> values = op.getDpsInputs();
  llvm::append_range(values, op.getDpsInits());
  for (Value value : values) {
    operands.push_back(lookup(operation, value, env));
    if (!operands.back())
      return failure();
  }
  unsigned numInputs = op.getNumDpsInputs();
  unsigned numInits = op.getNumDpsInits();
  SmallVector<AffineMap> maps = op.getIndexingMapsArray();
  if (maps.size() != operands.size())
    return operation->emitError() << "expected one indexing map per operand";

  // The loop bounds come from the operand dimensions that a map result
  // indexes directly; all of them must agree.
  unsigned numLoops = op.getNumLoops();
  SmallVector<int64_t> bounds(numLoops, -1);
  SmallVector<Access> accesses(operands.size());
  for (auto [k, operand, map] : llvm::enumerate(operands, maps)) {
    if (map.getNumDims() != numLoops || map.getNumSymbols() != 0 ||
        map.getNumResults() != operand->shape.size())
      return operation->emitError()
             << "indexing map #" << k << " (" << AffineMapAttr::get(map)
             << ") does not fit operand #" << k << " (" << describe(*operand)
             << ")";
    SmallVector<int64_t> strides = getStrides(operand->shape);
    Access &access = accesses[k];
    for (auto [r, expr] : llvm::enumerate(map.getResults())) {
      int64_t size = operand->shape[r];
      if (auto dim = dyn_cast<AffineDimExpr>(expr)) {
        int64_t &bound = bounds[dim.getPosition()];
        if (bound >= 0 && bound != size)
          return operation->emitError()
                 << "operand #" << k << " has size " << size << " in dimension "
                 << r << ", but loop d" << dim.getPosition() << " has size "
                 << bound;
        bound = size;
        access.dimStrides.push_back({dim.getPosition(), strides[r]});
      } else if (auto constant = dyn_cast<AffineConstantExpr>(expr)) {
        if (constant.getValue() < 0 || constant.getValue() >= size)
          return operation->emitError()
                 << "indexing map #" << k << " reads index "
                 << constant.getValue() << " of dimension " << r << " of size "
                 << size;
        access.base += constant.getValue() * strides[r];
      } else {
        access.computed.push_back({expr, strides[r], size});
      }
    }
  }
  for (auto [dim, bound] : llvm::enumerate(bounds))
    if (bound < 0)
      return operation->emitError()
             << "the size of loop d" << dim
             << " is not the size of an operand dimension";

  Results outputs;
  for (unsigned j = 0; j < numInits; ++j)
    outputs.push_back(*operands[numInputs + j]);

  // linalg.map is the one op whose body does not receive its init.
  bool initsAreArgs = !isa<linalg::MapOp>(operation);
  unsigned numArgs = numInputs + (initsAreArgs ? numInits : 0);
  FailureOr<ScalarProgram> program =
      ScalarProgram::build(operation->getRegion(0).front(), numArgs, numInits,
                           [&](Value value) -> const Tensor * {
                             auto it = env.find(value);
                             return it == env.end() ? nullptr : &it->second;
                           });
  if (failed(program))
    return failure();

  SmallVector<double> args(numArgs);
  SmallVector<double> yielded;
  SmallVector<int64_t> offsets(operands.size());
  LogicalResult walked =
      forEachIndex(bounds, [&](ArrayRef<int64_t> point) -> LogicalResult {
        for (auto [k, access] : llvm::enumerate(accesses)) {
          std::optional<int64_t> offset = access.offsetAt(point);
          if (!offset)
            return operation->emitError()
                   << "indexing map #" << k << " leaves operand #" << k
                   << " at loop point ("
                   << fmt::format("{}", fmt::join(point, ", ")) << ")";
          offsets[k] = *offset;
        }
        for (unsigned i = 0; i < numInputs; ++i)
          args[i] = operands[i]->data[offsets[i]];
        if (initsAreArgs)
          for (unsigned j = 0; j < numInits; ++j)
            args[numInputs + j] = outputs[j].data[offsets[numInputs + j]];
        if (failed(program->run(args, point, yielded)))
          return failure();
        for (unsigned j = 0; j < numInits; ++j)
          outputs[j].data[offsets[numInputs + j]] = yielded[j];
        return success();
      });
  if (failed(walked))
    return failure();
  return outputs;
}

} // namespace

FailureOr<std::vector<Tensor>> interpret(func::FuncOp fn,
                                         ArrayRef<Tensor> args) {
  return Interpreter().callFunction(fn, args);
}

} // namespace dyncc::reference
