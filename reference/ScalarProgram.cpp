//===- ScalarProgram.cpp - linalg bodies, evaluated per point -------------===//
//
// Scalar semantics of the arith and math ops allowed in linalg bodies, in
// float64 for every float type and with wrap-around for integers.
//
//===----------------------------------------------------------------------===//

#include "reference/ScalarProgram.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/TypeSwitch.h"

#include <cmath>
#include <limits>

using namespace mlir;

namespace dyncc::reference {

std::optional<ScalarKind> getScalarKind(Type type) {
  if (isa<FloatType>(type))
    return ScalarKind{/*isFloat=*/true, /*width=*/0};
  if (auto integer = dyn_cast<IntegerType>(type))
    return ScalarKind{/*isFloat=*/false, integer.getWidth()};
  if (isa<IndexType>(type))
    return ScalarKind{/*isFloat=*/false, /*width=*/64};
  return std::nullopt;
}

double integerToDouble(const llvm::APInt &value, unsigned width) {
  if (width == 1)
    return static_cast<double>(value.getZExtValue());
  return static_cast<double>(value.getSExtValue());
}

LogicalResult reportUnsupported(Operation *op) {
  return op->emitError() << "unsupported op '" << op->getName()
                         << "' in the reference interpreter";
}

namespace {

//===----------------------------------------------------------------------===//
// Integers. A stored integer of width w > 1 is its signed value; a boolean is
// 0 or 1. Bitwise and wrapping ops work on the two's complement bits, which
// are the same for both readings.
//===----------------------------------------------------------------------===//

/// The bits of a stored integer. Stored integers are exact by construction;
/// the range check only keeps a corrupt value from being undefined behaviour.
uint64_t toBits(double value) {
  if (!(value > -9.2e18 && value < 9.2e18))
    return 0;
  return static_cast<uint64_t>(static_cast<int64_t>(value));
}

/// Truncates `bits` to `width` bits and stores the result.
double wrap(uint64_t bits, unsigned width) {
  if (width == 1)
    return static_cast<double>(bits & 1);
  if (width >= 64)
    return static_cast<double>(static_cast<int64_t>(bits));
  unsigned shift = 64 - width;
  return static_cast<double>(static_cast<int64_t>(bits << shift) >> shift);
}

int64_t signedValue(double value, unsigned width) {
  uint64_t bits = toBits(value);
  if (width == 1)
    return (bits & 1) ? -1 : 0;
  return static_cast<int64_t>(bits);
}

uint64_t unsignedValue(double value, unsigned width) {
  uint64_t bits = toBits(value);
  if (width >= 64)
    return bits;
  return bits & ((uint64_t(1) << width) - 1);
}

int64_t minSigned(unsigned width) {
  return width >= 64 ? std::numeric_limits<int64_t>::min()
                     : -(int64_t(1) << (width - 1));
}

int64_t maxSigned(unsigned width) {
  return width >= 64 ? std::numeric_limits<int64_t>::max()
                     : (int64_t(1) << (width - 1)) - 1;
}

/// fptosi; out-of-range results are poison in arith, saturated here so that
/// they are at least deterministic.
double floatToSigned(double value, unsigned width) {
  if (std::isnan(value))
    return 0;
  double truncated = std::trunc(value);
  int64_t lo = minSigned(width), hi = maxSigned(width);
  int64_t result;
  if (truncated <= static_cast<double>(lo))
    result = lo;
  else if (truncated >= static_cast<double>(hi))
    result = hi;
  else
    result = static_cast<int64_t>(truncated);
  return wrap(static_cast<uint64_t>(result), width);
}

bool compareIntegers(arith::CmpIPredicate predicate, double lhs, double rhs,
                     unsigned width) {
  int64_t sl = signedValue(lhs, width), sr = signedValue(rhs, width);
  uint64_t ul = unsignedValue(lhs, width), ur = unsignedValue(rhs, width);
  switch (predicate) {
  case arith::CmpIPredicate::eq:
    return ul == ur;
  case arith::CmpIPredicate::ne:
    return ul != ur;
  case arith::CmpIPredicate::slt:
    return sl < sr;
  case arith::CmpIPredicate::sle:
    return sl <= sr;
  case arith::CmpIPredicate::sgt:
    return sl > sr;
  case arith::CmpIPredicate::sge:
    return sl >= sr;
  case arith::CmpIPredicate::ult:
    return ul < ur;
  case arith::CmpIPredicate::ule:
    return ul <= ur;
  case arith::CmpIPredicate::ugt:
    return ul > ur;
  case arith::CmpIPredicate::uge:
    return ul >= ur;
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Floats, IEEE 754 as arith specifies them.
//===----------------------------------------------------------------------===//

/// arith.maximumf: NaN if either operand is NaN, and +0 is above -0.
double maximumF(double lhs, double rhs) {
  if (std::isnan(lhs) || std::isnan(rhs))
    return std::numeric_limits<double>::quiet_NaN();
  if (lhs == rhs)
    return std::signbit(lhs) ? rhs : lhs;
  return lhs > rhs ? lhs : rhs;
}

/// arith.minimumf: NaN if either operand is NaN, and -0 is below +0.
double minimumF(double lhs, double rhs) {
  if (std::isnan(lhs) || std::isnan(rhs))
    return std::numeric_limits<double>::quiet_NaN();
  if (lhs == rhs)
    return std::signbit(lhs) ? lhs : rhs;
  return lhs < rhs ? lhs : rhs;
}

bool compareFloats(arith::CmpFPredicate predicate, double lhs, double rhs) {
  bool unordered = std::isnan(lhs) || std::isnan(rhs);
  switch (predicate) {
  case arith::CmpFPredicate::AlwaysFalse:
    return false;
  case arith::CmpFPredicate::OEQ:
    return !unordered && lhs == rhs;
  case arith::CmpFPredicate::OGT:
    return !unordered && lhs > rhs;
  case arith::CmpFPredicate::OGE:
    return !unordered && lhs >= rhs;
  case arith::CmpFPredicate::OLT:
    return !unordered && lhs < rhs;
  case arith::CmpFPredicate::OLE:
    return !unordered && lhs <= rhs;
  case arith::CmpFPredicate::ONE:
    return !unordered && lhs != rhs;
  case arith::CmpFPredicate::ORD:
    return !unordered;
  case arith::CmpFPredicate::UEQ:
    return unordered || lhs == rhs;
  case arith::CmpFPredicate::UGT:
    return unordered || lhs > rhs;
  case arith::CmpFPredicate::UGE:
    return unordered || lhs >= rhs;
  case arith::CmpFPredicate::ULT:
    return unordered || lhs < rhs;
  case arith::CmpFPredicate::ULE:
    return unordered || lhs <= rhs;
  case arith::CmpFPredicate::UNE:
    return unordered || lhs != rhs;
  case arith::CmpFPredicate::UNO:
    return unordered;
  case arith::CmpFPredicate::AlwaysTrue:
    return true;
  }
  return false;
}

} // namespace

//===----------------------------------------------------------------------===//
// Translation.
//===----------------------------------------------------------------------===//

FailureOr<ScalarProgram> ScalarProgram::build(Block &body, unsigned numArgs,
                                              unsigned numYields,
                                              OuterLookup lookup) {
  Operation *parent = body.getParentOp();
  ScalarProgram program;
  llvm::DenseMap<Value, unsigned> slotOf;
  auto newSlot = [&](Value value, double initial = 0) {
    program.slots.push_back(initial);
    unsigned slot = program.slots.size() - 1;
    slotOf[value] = slot;
    return slot;
  };

  if (body.getNumArguments() != numArgs)
    return parent->emitError()
           << "expected a region with " << numArgs << " arguments, found "
           << body.getNumArguments();
  for (BlockArgument arg : body.getArguments()) {
    if (!getScalarKind(arg.getType()))
      return parent->emitError()
             << "region argument #" << arg.getArgNumber() << " has type "
             << arg.getType()
             << "; only float, integer and index are supported";
    newSlot(arg);
  }

  // Values of the function the region uses directly: scalars are copied into
  // a slot once (they are constant over the loop nest).
  auto operandSlot = [&](Operation *user, Value value) -> FailureOr<unsigned> {
    if (auto it = slotOf.find(value); it != slotOf.end())
      return it->second;
    const Tensor *outer = lookup(value);
    if (!outer || !outer->shape.empty() || outer->data.size() != 1 ||
        !getScalarKind(value.getType()))
      return user->emitError()
             << "operand of type " << value.getType()
             << " is neither defined in the region nor a scalar of the "
                "function";
    return newSlot(value, outer->data.front());
  };

  bool sawYield = false;
  for (Operation &op : body) {
    if (auto yield = dyn_cast<linalg::YieldOp>(op)) {
      if (yield->getNumOperands() != numYields)
        return yield.emitError()
               << "expected " << numYields << " yielded values, found "
               << yield->getNumOperands();
      for (Value value : yield->getOperands()) {
        FailureOr<unsigned> slot = operandSlot(yield, value);
        if (failed(slot))
          return failure();
        program.yieldSlots.push_back(*slot);
      }
      sawYield = true;
      continue;
    }

    if (op.getNumResults() != 1 || op.getNumRegions() != 0 ||
        !getScalarKind(op.getResult(0).getType()))
      return reportUnsupported(&op);
    Value result = op.getResult(0);
    unsigned width = getScalarKind(result.getType())->width;

    // Constants fill their slot now and need no instruction.
    if (auto constant = dyn_cast<arith::ConstantOp>(op)) {
      if (auto value = dyn_cast<FloatAttr>(constant.getValue())) {
        newSlot(result, value.getValueAsDouble());
        continue;
      }
      if (auto value = dyn_cast<IntegerAttr>(constant.getValue())) {
        newSlot(result, integerToDouble(value.getValue(), width));
        continue;
      }
      return reportUnsupported(&op);
    }

    Instruction instruction;
    instruction.op = &op;
    instruction.width = width;
    std::optional<Opcode> opcode =
        llvm::TypeSwitch<Operation *, std::optional<Opcode>>(&op)
            .Case([](arith::AddFOp) { return Opcode::AddF; })
            .Case([](arith::SubFOp) { return Opcode::SubF; })
            .Case([](arith::MulFOp) { return Opcode::MulF; })
            .Case([](arith::DivFOp) { return Opcode::DivF; })
            .Case([](arith::NegFOp) { return Opcode::NegF; })
            .Case([](arith::MaximumFOp) { return Opcode::MaximumF; })
            .Case([](arith::MinimumFOp) { return Opcode::MinimumF; })
            .Case([&](arith::CmpFOp cmp) {
              instruction.attr = static_cast<int64_t>(cmp.getPredicate());
              return Opcode::CmpF;
            })
            .Case<arith::ExtFOp, arith::TruncFOp>(
                [](Operation *) { return Opcode::Copy; })
            .Case([](arith::SIToFPOp) { return Opcode::SIToFP; })
            .Case([](arith::UIToFPOp) { return Opcode::UIToFP; })
            .Case([](arith::FPToSIOp) { return Opcode::FPToSI; })
            .Case([](arith::IndexCastOp) { return Opcode::IndexCast; })
            .Case([](arith::AddIOp) { return Opcode::AddI; })
            .Case([](arith::SubIOp) { return Opcode::SubI; })
            .Case([](arith::MulIOp) { return Opcode::MulI; })
            .Case([](arith::DivSIOp) { return Opcode::DivSI; })
            .Case([](arith::RemSIOp) { return Opcode::RemSI; })
            .Case([&](arith::CmpIOp cmp) {
              instruction.attr = static_cast<int64_t>(cmp.getPredicate());
              return Opcode::CmpI;
            })
            .Case([](arith::AndIOp) { return Opcode::AndI; })
            .Case([](arith::OrIOp) { return Opcode::OrI; })
            .Case([](arith::XOrIOp) { return Opcode::XOrI; })
            .Case([](arith::SelectOp) { return Opcode::Select; })
            .Case([](math::AbsFOp) { return Opcode::AbsF; })
            .Case([](math::ExpOp) { return Opcode::Exp; })
            .Case([](math::LogOp) { return Opcode::Log; })
            .Case([](math::TanhOp) { return Opcode::Tanh; })
            .Case([](math::ErfOp) { return Opcode::Erf; })
            .Case([](math::SqrtOp) { return Opcode::Sqrt; })
            .Case([](math::RsqrtOp) { return Opcode::Rsqrt; })
            .Case([](math::PowFOp) { return Opcode::PowF; })
            .Case([&](linalg::IndexOp index) {
              instruction.attr = index.getDim();
              return Opcode::Index;
            })
            .Case([](tensor::ExtractOp) { return Opcode::Extract; })
            .Default([](Operation *) { return std::nullopt; });
    if (!opcode)
      return reportUnsupported(&op);
    instruction.opcode = *opcode;

    // Vector or tensor operands (e.g. a vector select) are not scalar ops.
    auto operands = op.getOperands();
    if (auto extract = dyn_cast<tensor::ExtractOp>(op)) {
      instruction.table = lookup(extract.getTensor());
      if (!instruction.table)
        return extract.emitError()
               << "the tensor must be defined outside the linalg body";
      if (instruction.table->shape.size() != extract.getIndices().size())
        return extract.emitError()
               << "expected " << instruction.table->shape.size()
               << " indices, found " << extract.getIndices().size();
      operands = extract.getIndices();
    }
    for (Value operand : operands) {
      if (!getScalarKind(operand.getType()))
        return reportUnsupported(&op);
      FailureOr<unsigned> slot = operandSlot(&op, operand);
      if (failed(slot))
        return failure();
      instruction.operands.push_back(*slot);
    }
    if (!operands.empty())
      instruction.operandWidth =
          getScalarKind(operands.front().getType())->width;
    instruction.result = newSlot(result);
    program.instructions.push_back(std::move(instruction));
  }
  if (!sawYield)
    return parent->emitError() << "region has no linalg.yield";
  return program;
}

//===----------------------------------------------------------------------===//
// Evaluation.
//===----------------------------------------------------------------------===//

LogicalResult ScalarProgram::run(ArrayRef<double> args,
                                 ArrayRef<int64_t> loopIndices,
                                 SmallVectorImpl<double> &yielded) {
  std::copy(args.begin(), args.end(), slots.begin());
  for (const Instruction &instruction : instructions) {
    const auto &in = instruction.operands;
    auto operand = [&](unsigned i) { return slots[in[i]]; };
    unsigned width = instruction.width;
    unsigned operandWidth = instruction.operandWidth;
    double result = 0;
    switch (instruction.opcode) {
    case Opcode::AddF:
      result = operand(0) + operand(1);
      break;
    case Opcode::SubF:
      result = operand(0) - operand(1);
      break;
    case Opcode::MulF:
      result = operand(0) * operand(1);
      break;
    case Opcode::DivF:
      result = operand(0) / operand(1);
      break;
    case Opcode::NegF:
      result = -operand(0);
      break;
    case Opcode::MaximumF:
      result = maximumF(operand(0), operand(1));
      break;
    case Opcode::MinimumF:
      result = minimumF(operand(0), operand(1));
      break;
    case Opcode::CmpF:
      result =
          compareFloats(static_cast<arith::CmpFPredicate>(instruction.attr),
                        operand(0), operand(1));
      break;
    case Opcode::Copy:
      result = operand(0);
      break;
    case Opcode::AbsF:
      result = std::fabs(operand(0));
      break;
    case Opcode::Exp:
      result = std::exp(operand(0));
      break;
    case Opcode::Log:
      result = std::log(operand(0));
      break;
    case Opcode::Tanh:
      result = std::tanh(operand(0));
      break;
    case Opcode::Erf:
      result = std::erf(operand(0));
      break;
    case Opcode::Sqrt:
      result = std::sqrt(operand(0));
      break;
    case Opcode::Rsqrt:
      result = 1.0 / std::sqrt(operand(0));
      break;
    case Opcode::PowF:
      result = std::pow(operand(0), operand(1));
      break;
    case Opcode::SIToFP:
      result = static_cast<double>(signedValue(operand(0), operandWidth));
      break;
    case Opcode::UIToFP:
      result = static_cast<double>(unsignedValue(operand(0), operandWidth));
      break;
    case Opcode::FPToSI:
      result = floatToSigned(operand(0), width);
      break;
    case Opcode::IndexCast:
      // Sign-extends to index, truncates from it.
      result = wrap(
          static_cast<uint64_t>(signedValue(operand(0), operandWidth)), width);
      break;
    case Opcode::AddI:
      result = wrap(toBits(operand(0)) + toBits(operand(1)), width);
      break;
    case Opcode::SubI:
      result = wrap(toBits(operand(0)) - toBits(operand(1)), width);
      break;
    case Opcode::MulI:
      result = wrap(toBits(operand(0)) * toBits(operand(1)), width);
      break;
    case Opcode::AndI:
      result = wrap(toBits(operand(0)) & toBits(operand(1)), width);
      break;
    case Opcode::OrI:
      result = wrap(toBits(operand(0)) | toBits(operand(1)), width);
      break;
    case Opcode::XOrI:
      result = wrap(toBits(operand(0)) ^ toBits(operand(1)), width);
      break;
    case Opcode::DivSI:
    case Opcode::RemSI: {
      int64_t lhs = signedValue(operand(0), width);
      int64_t rhs = signedValue(operand(1), width);
      // Both are undefined behaviour in arith (and in C++).
      if (rhs == 0)
        return instruction.op->emitError() << "integer division by zero";
      if (lhs == minSigned(width) && rhs == -1)
        return instruction.op->emitError() << "signed integer overflow";
      int64_t value =
          instruction.opcode == Opcode::DivSI ? lhs / rhs : lhs % rhs;
      result = wrap(static_cast<uint64_t>(value), width);
      break;
    }
    case Opcode::CmpI:
      result =
          compareIntegers(static_cast<arith::CmpIPredicate>(instruction.attr),
                          operand(0), operand(1), operandWidth);
      break;
    case Opcode::Select:
      result = operand(0) != 0 ? operand(1) : operand(2);
      break;
    case Opcode::Index:
      if (instruction.attr >= static_cast<int64_t>(loopIndices.size()))
        return instruction.op->emitError()
               << "dimension " << instruction.attr << " is not a loop of "
               << "the enclosing op";
      result = static_cast<double>(loopIndices[instruction.attr]);
      break;
    case Opcode::Extract: {
      const Tensor &table = *instruction.table;
      int64_t offset = 0;
      for (auto [dim, size] : llvm::enumerate(table.shape)) {
        int64_t index = signedValue(operand(dim), operandWidth);
        if (index < 0 || index >= size)
          return instruction.op->emitError()
                 << "index " << index << " of dimension " << dim
                 << " is out of range [0, " << size << ")";
        offset = offset * size + index;
      }
      result = table.data[offset];
      break;
    }
    }
    slots[instruction.result] = result;
  }
  yielded.clear();
  for (unsigned slot : yieldSlots)
    yielded.push_back(slots[slot]);
  return success();
}

} // namespace dyncc::reference
