//===- KernelsTest.cpp - compiled kernels against the reference -----------===//
//
// Every public function of Inputs/*.mlir is one case: it runs through the
// kernel pipeline (inlining, dyn-form-kernels), its kernels are extracted
// and JIT-compiled through Halide for the host and the generic x86-64
// target, and the result is compared with the reference interpreter on
// random inputs. Output buffers are poisoned (NaN) before every run.
//
//===----------------------------------------------------------------------===//

#include "codegen/EmitHalide.h"
#include "codegen/ExtractKernels.h"
#include "codegen/HalideTarget.h"
#include "passes/Passes.h"
#include "reference/Interpreter.h"
#include "tools/dyncc/Registration.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>

using namespace mlir;
using dyncc::codegen::HostTensor;
using dyncc::kir::ElemType;

namespace {

std::vector<int64_t> vec(llvm::ArrayRef<int64_t> shape) {
  return std::vector<int64_t>(shape.begin(), shape.end());
}

struct Buffer {
  std::vector<int64_t> shape;
  ElemType type = ElemType::F32;
  std::shared_ptr<std::vector<uint8_t>> bytes;

  int64_t count() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  /// Kernels get 64-byte aligned buffers, as the runtime guarantees.
  uint8_t *data() const {
    auto p = reinterpret_cast<uintptr_t>(bytes->data());
    return bytes->data() + ((64 - p % 64) % 64);
  }
  void allocate(uint8_t fill) {
    bytes->assign(count() * dyncc::kir::elemSize(type) + 64, fill);
  }
  HostTensor host() const { return {data(), shape, type}; }
};

ElemType elemTypeOf(Type type) {
  if (type.isF64())
    return ElemType::F64;
  if (type.isInteger(1))
    return ElemType::I1;
  if (type.isInteger(32))
    return ElemType::I32;
  if (type.isInteger(64) || type.isIndex())
    return ElemType::I64;
  return ElemType::F32;
}

Buffer fromReference(const dyncc::reference::Tensor &t, ElemType type) {
  Buffer b{t.shape, type, std::make_shared<std::vector<uint8_t>>()};
  b.allocate(0);
  for (int64_t i = 0; i < b.count(); ++i) {
    double v = t.data[i];
    uint8_t *p = b.data() + i * dyncc::kir::elemSize(type);
    switch (type) {
    case ElemType::F32: {
      float f = (float)v;
      std::memcpy(p, &f, 4);
      break;
    }
    case ElemType::F64:
      std::memcpy(p, &v, 8);
      break;
    case ElemType::I32: {
      int32_t x = (int32_t)v;
      std::memcpy(p, &x, 4);
      break;
    }
    case ElemType::I64: {
      int64_t x = (int64_t)v;
      std::memcpy(p, &x, 8);
      break;
    }
    default:
      *p = v != 0.0;
    }
  }
  return b;
}

double valueAt(const Buffer &b, int64_t i) {
  const uint8_t *p = b.data() + i * dyncc::kir::elemSize(b.type);
  switch (b.type) {
  case ElemType::F32: {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  case ElemType::F64: {
    double d;
    std::memcpy(&d, p, 8);
    return d;
  }
  case ElemType::I32: {
    int32_t x;
    std::memcpy(&x, p, 4);
    return x;
  }
  case ElemType::I64: {
    int64_t x;
    std::memcpy(&x, p, 8);
    return (double)x;
  }
  default:
    return *p;
  }
}

/// Runs a kernel-formed function: kernel calls through Halide, reshapes as
/// views of the same bytes.
class Executor {
public:
  Executor(ModuleOp module, std::string target)
      : module(module), target(std::move(target)) {}

  std::vector<Buffer> run(func::FuncOp fn, const std::vector<Buffer> &args) {
    std::map<void *, Buffer> values;
    auto key = [](Value v) { return v.getAsOpaquePointer(); };
    for (auto [arg, buf] : llvm::zip(fn.getArguments(), args))
      values[key(arg)] = buf;
    for (Operation &op : fn.getBody().front()) {
      if (auto call = dyn_cast<func::CallOp>(op)) {
        auto callee = module.lookupSymbol<func::FuncOp>(call.getCallee());
        EXPECT_TRUE(callee && callee->hasAttr(dyncc::kKernelAttrName));
        FailureOr<dyncc::kir::Kernel> kernel = dyncc::extractKernel(callee);
        EXPECT_TRUE(succeeded(kernel)) << "cannot extract " << call.getCallee().str();
        if (failed(kernel))
          return {};
        std::vector<HostTensor> ins, outs;
        for (Value v : call.getOperands())
          ins.push_back(values.at(key(v)).host());
        for (Value r : call.getResults()) {
          auto type = cast<RankedTensorType>(r.getType());
          Buffer b{vec(type.getShape()), elemTypeOf(type.getElementType()),
                   std::make_shared<std::vector<uint8_t>>()};
          b.allocate(0xFF); // NaN
          values[key(r)] = b;
          outs.push_back(b.host());
        }
        std::string error;
        EXPECT_TRUE(dyncc::codegen::runKernel(*kernel, ins, outs, target, error))
            << call.getCallee().str() << ": " << error;
        ++kernelsRun;
        continue;
      }
      if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op)) {
        Buffer b = values.at(key(op.getOperand(0)));
        b.shape = vec(cast<RankedTensorType>(op.getResult(0).getType()).getShape());
        values[key(op.getResult(0))] = b;
        continue;
      }
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        std::vector<Buffer> results;
        for (Value v : ret.getOperands())
          results.push_back(values.at(key(v)));
        return results;
      }
      ADD_FAILURE() << "unexpected op in a compiled function: " << op.getName().getStringRef().str();
      return {};
    }
    return {};
  }

  int kernelsRun = 0;

private:
  ModuleOp module;
  std::string target;
};

struct Case {
  std::string file, function;
};

std::vector<Case> allCases() {
  std::vector<Case> cases;
  for (const char *file : {"ops.mlir", "../../reference/Inputs/encoder_block.mlir"}) {
    MLIRContext context;
    DialectRegistry registry;
    dyncc::registerDialects(registry);
    context.appendDialectRegistry(registry);
    OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(
        std::string(DYNCC_KERNEL_INPUTS) + "/" + file, &context);
    if (!module)
      continue;
    for (func::FuncOp fn : module->getOps<func::FuncOp>())
      if (fn.isPublic())
        cases.push_back({file, fn.getSymName().str()});
  }
  return cases;
}

class KernelCase : public ::testing::TestWithParam<Case> {};

void runCase(const Case &c, const std::string &target) {
  MLIRContext context;
  DialectRegistry registry;
  dyncc::registerDialects(registry);
  context.appendDialectRegistry(registry);
  context.loadAllAvailableDialects();
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(
      std::string(DYNCC_KERNEL_INPUTS) + "/" + c.file, &context);
  ASSERT_TRUE(module);
  auto fn = module->lookupSymbol<func::FuncOp>(c.function);
  ASSERT_TRUE(fn);

  // Random inputs; integer arguments are ids in [0, 8).
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> real(-2.0, 2.0);
  std::uniform_int_distribution<int> id(0, 7);
  std::vector<dyncc::reference::Tensor> refArgs;
  std::vector<Buffer> args;
  for (Type t : fn.getArgumentTypes()) {
    auto type = cast<RankedTensorType>(t);
    dyncc::reference::Tensor r;
    r.shape = vec(type.getShape());
    bool isInt = isa<IntegerType>(type.getElementType());
    for (int64_t i = 0; i < dyncc::reference::getNumElements(r.shape); ++i) {
      double v = isInt ? id(rng) : real(rng);
      // Round floats to f32 so that both sides see the same inputs.
      r.data.push_back(isInt ? v : (double)(float)v);
    }
    args.push_back(fromReference(r, elemTypeOf(type.getElementType())));
    refArgs.push_back(std::move(r));
  }
  FailureOr<std::vector<dyncc::reference::Tensor>> expected =
      dyncc::reference::interpret(fn, refArgs);
  ASSERT_TRUE(succeeded(expected)) << "reference failed on " << c.function;

  PassManager pm(&context);
  dyncc::buildKernelPipeline(pm);
  ASSERT_TRUE(succeeded(pm.run(*module))) << "kernel pipeline failed";
  fn = module->lookupSymbol<func::FuncOp>(c.function);
  Executor exec(*module, target);
  std::vector<Buffer> got = exec.run(fn, args);
  ASSERT_EQ(got.size(), expected->size());
  EXPECT_GT(exec.kernelsRun, 0);
  for (size_t o = 0; o < got.size(); ++o) {
    const dyncc::reference::Tensor &want = (*expected)[o];
    ASSERT_EQ(got[o].shape, want.shape);
    double worst = 0.0;
    int64_t worstAt = 0;
    for (int64_t i = 0; i < got[o].count(); ++i) {
      double err = std::abs(valueAt(got[o], i) - want.data[i]) /
                   std::max(1.0, std::abs(want.data[i]));
      if (!(err <= worst)) {
        worst = err;
        worstAt = i;
      }
    }
    EXPECT_LE(worst, 1e-4) << c.function << " output " << o << " element "
                           << worstAt << ": got " << valueAt(got[o], worstAt)
                           << ", want " << want.data[worstAt];
  }
}

TEST_P(KernelCase, HostTarget) {
  runCase(GetParam(), dyncc::codegen::hostKernelTarget());
}

// Scheduled for 16 cores (dyncc compile --cores=16): more, smaller tasks,
// with their tails, give the same results.
TEST_P(KernelCase, HostTargetSixteenCores) {
  struct Machine { // the defaults again however the case ends
    Machine() { dyncc::codegen::setScheduleMachine({16, 0}); }
    ~Machine() { dyncc::codegen::setScheduleMachine({}); }
  } machine;
  runCase(GetParam(), dyncc::codegen::hostKernelTarget());
}

TEST_P(KernelCase, GenericTarget) {
  runCase(GetParam(), dyncc::codegen::genericKernelTarget());
}

INSTANTIATE_TEST_SUITE_P(Ops, KernelCase, ::testing::ValuesIn(allCases()),
                         [](const ::testing::TestParamInfo<Case> &info) {
                           return info.param.function;
                         });

} // namespace
