//===- EmitLibrary.cpp - a model as a library and a C header --------------===//
//
// The last stage of dyncc compile. For the model's entry function (after
// kernel formation):
//
//   1. plan memory: inputs, weights and outputs are the caller's buffers; a
//      kernel result that is returned is written straight into its output
//      buffer; every other result gets a slot in one arena whose size is
//      known here (first fit over live ranges, 64-byte aligned), reshapes
//      are views of their source;
//   2. lower the host code to the LLVM dialect: one function that passes
//      buffer pointers to dynrt_invoke_kernel, kernel after kernel, and
//      stops at the first failure;
//   3. translate it to LLVM IR, add the model descriptor the runtime reads
//      (inputs, outputs, weights, kernels, arena size), emit an object;
//   4. compile every kernel with Halide, plus one Halide runtime;
//   5. write lib<name>.a (with libdynrt's objects), <name>.h and dynrt.h,
//      each atomically, only once everything above succeeded.
//
//===----------------------------------------------------------------------===//

#include "codegen/EmitLibrary.h"
#include "codegen/EmitHalide.h"
#include "codegen/ExtractKernels.h"
#include "codegen/Files.h"
#include "codegen/HalideTarget.h"
#include "passes/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "dialect/DynDialect.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Matchers.h"
#include "mlir/Target/LLVMIR/Dialect/Builtin/BuiltinToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Dialect/LLVMIR/LLVMToLLVMIRTranslation.h"
#include "mlir/Target/LLVMIR/Export.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/Constants.h"
#include "llvm/IR/LLVMContext.h"
#include "llvm/IR/LegacyPassManager.h"
#include "llvm/IR/Module.h"
#include "llvm/MC/TargetRegistry.h"
#include "llvm/Object/Archive.h"
#include "llvm/Object/ArchiveWriter.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/TargetSelect.h"
#include "llvm/Target/TargetMachine.h"
#include "llvm/Target/TargetOptions.h"
#include "llvm/TargetParser/Host.h"

#include "runtime/Weights.h"
#include "runtime/dynrt.h"

#include <fmt/format.h>

#include <optional>

using namespace mlir;
using dyncc::isHostScalarOp;

namespace dyncc {
namespace {

constexpr int64_t kAlignment = 64;
constexpr llvm::StringLiteral kWeightAttr = "dyn.weight";
constexpr llvm::StringLiteral kNameAttr = "dyn.name";
constexpr llvm::StringLiteral kParamAttr = "dyn.param";
/// A kernel the runtime implements (dynrt_builtin_t) and its settings.
constexpr llvm::StringLiteral kBuiltinAttr = "dyn.builtin";
constexpr llvm::StringLiteral kConfigAttr = "dyn.config";
/// dynrt_builtin_t values.
constexpr int kBuiltinRouteAssign = 1;
constexpr int kBuiltinSkipStep = 2;
/// DYNRT_MODEL_ABI_VERSION of the descriptor written here.
constexpr int kModelAbiVersion = 8;
/// Expert parallelism (dyn-lower-route expert-parallel=R): the module's rank
/// count and the entry arguments holding one rank's shard of an expert
/// weight.
constexpr llvm::StringLiteral kExpertParallelAttr = "dyn.expert_parallel";
constexpr llvm::StringLiteral kExpertShardAttr = "dyn.expert_shard";
/// The argument holding a bucketed model's sample count (dyn-batch-buckets):
/// the entry receives it as params[num_params].
constexpr llvm::StringLiteral kBatchCountAttr = "dyn.batch_count";

struct TensorSpec {
  std::string name;
  kir::ElemType type;
  SmallVector<int64_t> shape;

  int64_t bytes() const {
    int64_t n = kir::elemSize(type);
    for (int64_t d : shape)
      n *= d;
    return n;
  }
};

/// Where a tensor value of the host code lives.
struct Slot {
  enum class Kind { Input, Weight, Param, Output, Arena, Constant } kind;
  int64_t index = 0; // argument / output index, arena offset, or constant
};

struct HostPlan {
  std::string model;
  mutable func::FuncOp entry;
  std::vector<TensorSpec> inputs, outputs, weights, params;
  std::vector<SmallVector<double>> paramDefaults;
  std::vector<func::FuncOp> kernels;
  llvm::DenseMap<func::FuncOp, int> kernelIndex;
  llvm::DenseMap<Value, Slot> slots;
  /// Tensor constants of the host code (index tables, masks): read-only
  /// globals of the library.
  std::vector<DenseElementsAttr> constants;
  /// Outputs that are not computed in place: (output index, source value).
  std::vector<std::pair<int, Value>> copies;
  /// Branch results that are copied at the yield: (yield, operand index).
  std::vector<std::pair<scf::YieldOp, int>> yieldCopies;
  /// Loop-carried tensors of scf.while: one slot each, shared by the
  /// results and the block arguments; the initial values and every
  /// iteration's new values are copied into it.
  int64_t arenaBytes = 0;
  /// dynrt_device_t of the kernels.
  int device = 0;
  /// Batch buckets (dyn.batch_buckets), empty when not bucketed, and the
  /// exit stages reported per run.
  SmallVector<int32_t> buckets;
  int32_t numStages = 0;
  /// Expert parallelism: the rank count (0: one process) and, per weight,
  /// whether it is one rank's shard of an expert weight.
  int32_t ranks = 0;
  std::vector<uint8_t> weightSharded;
  /// Per weight, how the runtime keeps it (a weight_storage code: DYNRT_BF16
  /// from planBf16Weights, the panel codes from planPanelWeights; 0: as it
  /// is). --precision=bf16: per kernel (by kernelIndex), per input,
  /// DYNRT_BF16 where it receives such a weight, else 0 (empty: none).
  std::vector<uint8_t> weightStorage;
  std::vector<std::vector<uint8_t>> kernelInputsBf16;
  /// --pack-weights (planPanelWeights): per kernel, per input, how the
  /// weight it receives is kept (codegen::PanelStorage values).
  std::vector<std::vector<uint8_t>> kernelInputsPanels;
  /// Per kernel (by kernelIndex), the FLOPs of one call as compileKernel
  /// reports them (dynrt_kernel_desc_t::flops); empty before the kernels
  /// are compiled, 0 for a builtin.
  std::vector<double> kernelFlops;
  /// Per kernel (by kernelIndex), its KernelIR once extracted (kernelIR):
  /// the storage plans and the compile loop read the same one.
  std::vector<std::optional<kir::Kernel>> kernelIRs;

  /// Whether input `position` of kernel `k` is a weight kept as bf16.
  bool inputBf16(size_t k, size_t position) const {
    return k < kernelInputsBf16.size() &&
           position < kernelInputsBf16[k].size() &&
           kernelInputsBf16[k][position] != 0;
  }
  /// Whether input `position` of kernel `k` is a weight kept in panels
  /// (its kernel reads it through codegen::panelView).
  bool inputPanels(size_t k, size_t position) const {
    return k < kernelInputsPanels.size() &&
           position < kernelInputsPanels[k].size() &&
           kernelInputsPanels[k][position] != 0;
  }
};

FailureOr<kir::ElemType> elemType(Type type, Location loc) {
  if (type.isF32())
    return kir::ElemType::F32;
  if (type.isF64())
    return kir::ElemType::F64;
  if (type.isInteger(1))
    return kir::ElemType::I1;
  if (type.isInteger(8))
    return kir::ElemType::I8;
  if (type.isInteger(16))
    return kir::ElemType::I16;
  if (type.isInteger(32))
    return kir::ElemType::I32;
  if (type.isInteger(64))
    return kir::ElemType::I64;
  return emitError(loc, "unsupported element type ") << type;
}

/// The runtime's element type of a kernel element type.
dynrt_dtype_t dynrtDtype(kir::ElemType t) {
  switch (t) {
  case kir::ElemType::F32:
    return DYNRT_F32;
  case kir::ElemType::F64:
    return DYNRT_F64;
  case kir::ElemType::I8:
    return DYNRT_I8;
  case kir::ElemType::I16:
    return DYNRT_I16;
  case kir::ElemType::I32:
    return DYNRT_I32;
  case kir::ElemType::I64:
    return DYNRT_I64;
  case kir::ElemType::I1:
    return DYNRT_BOOL;
  case kir::ElemType::BF16:
    return DYNRT_BF16;
  }
  return DYNRT_F32;
}

FailureOr<TensorSpec> specOf(Value v, std::string name) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  Location loc = v.getLoc();
  if (!type || !type.hasStaticShape())
    return emitError(loc, "model values must be statically shaped tensors, "
                          "got ")
           << v.getType();
  if (type.getRank() > 8)
    return emitError(loc, "tensors of rank > 8 are not supported");
  FailureOr<kir::ElemType> elem = elemType(type.getElementType(), loc);
  if (failed(elem))
    return failure();
  return TensorSpec{std::move(name), *elem, SmallVector<int64_t>(type.getShape())};
}

/// The value whose buffer `v` shares (reshapes are views).
Value rootOf(Value v) {
  while (Operation *def = v.getDefiningOp()) {
    if (!isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(def))
      break;
    v = def->getOperand(0);
  }
  return v;
}

FailureOr<func::FuncOp> findEntry(ModuleOp module) {
  func::FuncOp entry;
  for (func::FuncOp fn : module.getOps<func::FuncOp>()) {
    if (!isEntryCandidate(fn))
      continue;
    if (entry)
      return fn.emitError("a model has one public function (its entry); ")
             << "found @" << entry.getSymName() << " and @" << fn.getSymName()
             << " (make helpers private)";
    entry = fn;
  }
  if (!entry)
    return module.emitError("the model has no public function to compile");
  return entry;
}

std::string cIdent(StringRef name);

/// The generated header names every input and output as a C parameter
/// (cIdent of its name): the identifiers must differ from each other, from
/// C and C++ keywords and from the names the header itself uses.
LogicalResult checkCNames(const HostPlan &plan) {
  static const llvm::StringSet<> reserved = {
      // C (C23) and C++ keywords.
      "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor",
      "bool", "break", "case", "catch", "char", "char8_t", "char16_t",
      "char32_t", "class", "compl", "concept", "const", "consteval",
      "constexpr", "constinit", "const_cast", "continue", "co_await",
      "co_return", "co_yield", "decltype", "default", "delete", "do",
      "double", "dynamic_cast", "else", "enum", "explicit", "export",
      "extern", "false", "float", "for", "friend", "goto", "if", "inline",
      "int", "long", "mutable", "namespace", "new", "noexcept", "not",
      "not_eq", "nullptr", "operator", "or", "or_eq", "private", "protected",
      "public", "register", "reinterpret_cast", "requires", "restrict",
      "return", "short", "signed", "sizeof", "static", "static_assert",
      "static_cast", "struct", "switch", "template", "this", "thread_local",
      "throw", "true", "try", "typedef", "typeid", "typename", "typeof",
      "typeof_unqual", "union", "unsigned", "using", "virtual", "void",
      "volatile", "wchar_t", "while", "xor", "xor_eq", "_Alignas",
      "_Alignof", "_Atomic", "_BitInt", "_Bool", "_Complex", "_Decimal32",
      "_Decimal64", "_Decimal128", "_Generic", "_Imaginary", "_Noreturn",
      "_Static_assert", "_Thread_local",
      // Macros of the headers the generated header includes.
      "NULL", "errno", "assert", "bool", "true", "false", "EOF",
      // The generated functions' own parameters and locals.
      "model", "inputs", "outputs", "batch", "report"};
  llvm::StringMap<std::string> seen;
  auto check = [&](const TensorSpec &s, StringRef what) -> LogicalResult {
    std::string id = cIdent(s.name);
    if (reserved.contains(id) || StringRef(id).starts_with("__") ||
        StringRef(id).starts_with("dynrt_") || StringRef(id).starts_with("DYNRT_"))
      return emitError(plan.entry.getLoc())
             << what << " '" << s.name << "' would be the C parameter '" << id
             << "' of the generated header, a reserved name: rename it "
                "(dyn.name)";
    auto [it, inserted] = seen.try_emplace(id, (what + " '" + s.name + "'").str());
    if (!inserted)
      return emitError(plan.entry.getLoc())
             << it->second << " and " << what << " '" << s.name
             << "' would both be the C parameter '" << id
             << "' of the generated header: give them distinct names (dyn.name)";
    return success();
  };
  for (const TensorSpec &s : plan.inputs)
    if (failed(check(s, "input")))
      return failure();
  for (const TensorSpec &s : plan.outputs)
    if (failed(check(s, "output")))
      return failure();
  return success();
}

FailureOr<HostPlan> planHost(ModuleOp module, StringRef name) {
  HostPlan plan;
  plan.model = name.str();
  FailureOr<func::FuncOp> entry = findEntry(module);
  if (failed(entry))
    return failure();
  plan.entry = *entry;
  Block &body = plan.entry.getBody().front();

  for (BlockArgument arg : plan.entry.getArguments()) {
    unsigned i = arg.getArgNumber();
    if (auto w = plan.entry.getArgAttrOfType<StringAttr>(i, kWeightAttr)) {
      FailureOr<TensorSpec> spec = specOf(arg, w.str());
      if (failed(spec))
        return failure();
      plan.slots[arg] = {Slot::Kind::Weight, (int64_t)plan.weights.size()};
      plan.weights.push_back(*spec);
      plan.weightSharded.push_back(
          plan.entry.getArgAttr(i, kExpertShardAttr) ? 1 : 0);
      continue;
    }
    if (auto p = plan.entry.getArgAttrOfType<StringAttr>(i, kParamAttr)) {
      FailureOr<TensorSpec> spec = specOf(arg, p.str());
      if (failed(spec))
        return failure();
      plan.slots[arg] = {Slot::Kind::Param, (int64_t)plan.params.size()};
      plan.params.push_back(*spec);
      continue;
    }
    if (plan.entry.getArgAttr(i, kBatchCountAttr))
      continue; // after the parameters, below
    auto n = plan.entry.getArgAttrOfType<StringAttr>(i, kNameAttr);
    FailureOr<TensorSpec> spec =
        specOf(arg, n ? n.str() : "input" + std::to_string(plan.inputs.size()));
    if (failed(spec))
      return failure();
    plan.slots[arg] = {Slot::Kind::Input, (int64_t)plan.inputs.size()};
    plan.inputs.push_back(*spec);
  }
  for (BlockArgument arg : plan.entry.getArguments())
    if (plan.entry.getArgAttr(arg.getArgNumber(), kBatchCountAttr))
      plan.slots[arg] = {Slot::Kind::Param, (int64_t)plan.params.size()};
  if (auto b = module->getAttrOfType<DenseI32ArrayAttr>("dyn.batch_buckets"))
    plan.buckets.assign(b.asArrayRef().begin(), b.asArrayRef().end());
  if (auto n = module->getAttrOfType<IntegerAttr>("dyn.batch_stages"))
    plan.numStages = (int32_t)n.getInt();
  if (auto r = module->getAttrOfType<IntegerAttr>(kExpertParallelAttr))
    plan.ranks = (int32_t)r.getInt();
  if (auto table = module->getAttrOfType<DictionaryAttr>("dyn.runtime_params"))
    for (TensorSpec &p : plan.params)
      if (auto def = dyn_cast_or_null<dyn::RuntimeParamAttr>(table.get(p.name)))
        plan.paramDefaults.push_back(SmallVector<double>(def.getValues()));
      else
        plan.paramDefaults.push_back(SmallVector<double>(p.shape[0], 0.0));

  // Positions in program order, nested regions included (pre-order).
  llvm::DenseMap<Operation *, int> position;
  int pos = 0;
  plan.entry.walk<WalkOrder::PreOrder>([&](Operation *op) {
    if (op != plan.entry.getOperation())
      position[op] = pos++;
  });
  // A loop's last position: a value used in a loop but defined before it
  // stays live until the loop ends (the next iteration reads it again).
  llvm::DenseMap<Operation *, int> loopEnd;
  plan.entry.walk([&](scf::WhileOp loop) {
    int end = position[loop];
    loop->walk([&](Operation *inner) { end = std::max(end, position[inner]); });
    loopEnd[loop] = end;
  });
  llvm::DenseMap<Value, int> lastUse;
  plan.entry.walk([&](Operation *op) {
    for (Value operand : op->getOperands()) {
      Value root = rootOf(operand);
      int use = position[op];
      Operation *def = root.getParentBlock()->getParentOp();
      if (Operation *d = root.getDefiningOp())
        def = d;
      for (auto loop = op->getParentOfType<scf::WhileOp>(); loop;
           loop = loop->getParentOfType<scf::WhileOp>())
        if (!loop->isAncestor(def))
          use = std::max(use, loopEnd[loop]);
      lastUse[root] = std::max(lastUse[root], use);
    }
  });

  auto ret = cast<func::ReturnOp>(body.getTerminator());
  for (auto [k, v] : llvm::enumerate(ret.getOperands())) {
    auto n = plan.entry.getResultAttrOfType<StringAttr>(k, kNameAttr);
    FailureOr<TensorSpec> spec =
        specOf(v, n ? n.str() : "output" + std::to_string(k));
    if (failed(spec))
      return failure();
    plan.outputs.push_back(*spec);
    Value root = rootOf(v);
    bool computed = isa_and_nonnull<func::CallOp, scf::IfOp>(root.getDefiningOp());
    if (computed && !plan.slots.count(root)) {
      plan.slots[root] = {Slot::Kind::Output, (int64_t)k};
      continue;
    }
    plan.copies.push_back({(int)k, v});
  }
  if (failed(checkCNames(plan)))
    return failure();

  // Results in the arena: first fit among the slots still live.
  struct Live {
    int64_t offset, size;
    int until;
  };
  std::vector<Live> live;
  auto allocate = [&](Value result, int until = -1) -> LogicalResult {
    if (plan.slots.count(result) || !isa<RankedTensorType>(result.getType()))
      return success();
    FailureOr<TensorSpec> spec = specOf(result, "");
    if (failed(spec))
      return failure();
    int64_t size = (spec->bytes() + kAlignment - 1) / kAlignment * kAlignment;
    llvm::sort(live, [](const Live &a, const Live &b) { return a.offset < b.offset; });
    int64_t offset = 0;
    for (const Live &l : live) {
      if (offset + size <= l.offset)
        break;
      offset = std::max(offset, l.offset + l.size);
    }
    live.push_back({offset, size, std::max(until, lastUse.lookup(result))});
    plan.slots[result] = {Slot::Kind::Arena, offset};
    plan.arenaBytes = std::max(plan.arenaBytes, offset + size);
    return success();
  };

  WalkResult walked = plan.entry.walk<WalkOrder::PreOrder>([&](Operation *op) -> WalkResult {
    if (op == plan.entry.getOperation() ||
        isa<func::ReturnOp, scf::YieldOp, scf::ConditionOp,
            tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
      return WalkResult::advance();
    if (auto cst = dyn_cast<arith::ConstantOp>(op)) {
      if (!isa<ShapedType>(cst.getType()))
        return WalkResult::advance();
      auto dense = dyn_cast<DenseElementsAttr>(cst.getValue());
      if (!dense)
        return op->emitError("tensor constants must be dense<...> literals; "
                             "a dense_resource (frozen weights) belongs in "
                             "the weights file: mark the tensor as an "
                             "argument {dyn.weight = \"name\"} (dyncc.export "
                             "and dyncc import do)");
      if (failed(specOf(cst.getResult(), "constant")))
        return WalkResult::interrupt();
      plan.slots[cst.getResult()] = {Slot::Kind::Constant,
                                     (int64_t)plan.constants.size()};
      plan.constants.push_back(dense);
      return WalkResult::advance();
    }
    if (isHostScalarOp(op) || isa<tensor::ExtractOp>(op))
      return WalkResult::advance(); // scalars live in registers
    int here = position[op];
    llvm::erase_if(live, [&](const Live &l) { return l.until < here; });
    if (auto fromElements = dyn_cast<tensor::FromElementsOp>(op)) {
      if (failed(allocate(fromElements.getResult())))
        return WalkResult::interrupt();
      return WalkResult::advance();
    }
    if (auto loop = dyn_cast<scf::WhileOp>(op)) {
      auto cond = cast<scf::ConditionOp>(loop.getBefore().front().getTerminator());
      for (auto [i, r] : llvm::enumerate(loop.getResults())) {
        if (!isa<RankedTensorType>(r.getType()))
          continue;
        if (cond.getArgs()[i] != loop.getBeforeArguments()[i])
          return loop.emitError("a loop-carried tensor must pass through "
                                "the loop condition unchanged"),
                 WalkResult::interrupt();
        if (failed(allocate(r, loopEnd[loop])))
          return WalkResult::interrupt();
        Slot slot = plan.slots.lookup(r);
        plan.slots[loop.getBeforeArguments()[i]] = slot;
        plan.slots[loop.getAfterArguments()[i]] = slot;
      }
      auto yield = cast<scf::YieldOp>(loop.getAfter().front().getTerminator());
      for (auto [i, v] : llvm::enumerate(yield.getOperands())) {
        auto arg = dyn_cast<BlockArgument>(v);
        if (isa<RankedTensorType>(v.getType()) && arg &&
            arg.getOwner() == &loop.getAfter().front() && arg.getArgNumber() != i)
          return loop.emitError("loop-carried tensors may not trade places"),
                 WalkResult::interrupt();
      }
      return WalkResult::advance();
    }
    SmallVector<Region *> branches;
    if (auto ifOp = dyn_cast<scf::IfOp>(op))
      branches = {&ifOp.getThenRegion(), &ifOp.getElseRegion()};
    if (auto sw = dyn_cast<scf::IndexSwitchOp>(op)) {
      for (Region &r : sw.getCaseRegions())
        branches.push_back(&r);
      branches.push_back(&sw.getDefaultRegion());
    }
    if (!branches.empty()) {
      for (Value r : op->getResults())
        if (failed(allocate(r)))
          return WalkResult::interrupt();
      // A branch's result made by a kernel of that branch is written in
      // place; anything else is copied at the yield.
      for (Region *region : branches) {
        if (region->empty())
          continue;
        auto yield = cast<scf::YieldOp>(region->front().getTerminator());
        llvm::SmallPtrSet<Value, 4> seen;
        for (auto [i, v] : llvm::enumerate(yield.getOperands())) {
          Value root = rootOf(v);
          bool local = isa_and_nonnull<func::CallOp>(root.getDefiningOp()) &&
                       root.getParentBlock() == &region->front();
          if (!isa<RankedTensorType>(v.getType()))
            continue;
          if (local && seen.insert(root).second && !plan.slots.count(root)) {
            plan.slots[root] = plan.slots.lookup(op->getResult(i));
            continue;
          }
          plan.yieldCopies.push_back({yield, (int)i});
        }
      }
      return WalkResult::advance();
    }
    auto call = dyn_cast<func::CallOp>(op);
    func::FuncOp callee =
        call ? module.lookupSymbol<func::FuncOp>(call.getCallee()) : nullptr;
    if (isa<dyn::DynDialect>(op->getDialect()))
      return op->emitError("'")
             << op->getName()
             << "' was not lowered: its lowering does not handle it in "
                "this position (see docs/early-exit.md, docs/moe.md, "
                "docs/skim.md)";
    if (!callee || !callee->hasAttr("dyn.kernel"))
      return op->emitError("'")
             << op->getName()
             << "' is not supported in the host code (code generation "
                "handles kernels, reshapes, scalar arithmetic, scf.if, "
                "scf.index_switch and scf.while)";
    if (!plan.kernelIndex.count(callee)) {
      plan.kernelIndex[callee] = plan.kernels.size();
      plan.kernels.push_back(callee);
    }
    for (Value result : call.getResults())
      if (failed(allocate(result)))
        return WalkResult::interrupt();
    return WalkResult::advance();
  });
  if (walked.wasInterrupted())
    return failure();
  return plan;
}

/// The slot of `v`, through views.
Slot slotOf(const HostPlan &plan, Value v) { return plan.slots.lookup(rootOf(v)); }

/// The weights the runtime keeps in another storage, given per kernel the
/// storage each of its inputs can take (`inputs`, by kernelIndex, a
/// weight_storage code or 0; empty for builtins). A weight qualifies when
/// every use of it (through views) is an input of a kernel call that takes
/// the same storage, and every call of such a kernel passes a qualifying
/// weight at that input (one kernel serves every layer). With `ownShape`
/// (a storage arranged by the weight's own shape, like panels of its last
/// two dimensions), a use through a view that changes the weight's type
/// disqualifies it: the runtime would arrange one matrix where the kernel
/// reads several. Fills plan.weightStorage and returns per kernel the
/// storage of the weights its inputs receive (0: as they are).
std::vector<std::vector<uint8_t>>
planWeightStorage(HostPlan &plan, std::vector<std::vector<uint8_t>> inputs,
                  bool ownShape) {
  // Every use of a weight: a kernel's input (kernel, position, weight), or
  // anything else (the weight then stays as it is).
  struct Use {
    size_t kernel, position;
    int64_t weight; // -1: not a weight
  };
  std::vector<Use> uses;
  std::vector<bool> ok(plan.weights.size(), false);
  for (size_t w = 0; w < plan.weights.size(); ++w)
    ok[w] = plan.weights[w].type == kir::ElemType::F32 &&
            !(w < plan.weightSharded.size() && plan.weightSharded[w]);
  std::vector<bool> used(plan.weights.size(), false);
  plan.entry.walk([&](Operation *op) {
    if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp>(op))
      return; // views: their uses are walked as the weight's
    std::optional<size_t> kernel;
    if (auto call = dyn_cast<func::CallOp>(op)) {
      auto callee = plan.entry->getParentOfType<ModuleOp>()
                        .lookupSymbol<func::FuncOp>(call.getCallee());
      auto it = callee ? plan.kernelIndex.find(callee) : plan.kernelIndex.end();
      if (it != plan.kernelIndex.end())
        kernel = it->second;
    }
    for (OpOperand &operand : op->getOpOperands()) {
      auto it = plan.slots.find(rootOf(operand.get()));
      int64_t weight = it != plan.slots.end() &&
                               it->second.kind == Slot::Kind::Weight
                           ? it->second.index
                           : -1;
      size_t position = operand.getOperandNumber();
      if (weight >= 0 && ownShape &&
          operand.get().getType() != rootOf(operand.get()).getType())
        ok[weight] = false;
      if (kernel && position < inputs[*kernel].size()) {
        uses.push_back({*kernel, position, weight});
        if (weight >= 0)
          used[weight] = true;
      } else if (weight >= 0) {
        ok[weight] = false;
      }
    }
  });
  for (size_t w = 0; w < ok.size(); ++w)
    ok[w] = ok[w] && used[w];
  // To a fixed point: an input that receives a weight kept as it is (or an
  // activation) does not take the storage, nor does a weight passed to such
  // an input, or to inputs that take different storages.
  std::vector<uint8_t> code(plan.weights.size(), 0);
  for (bool changed = true; changed;) {
    changed = false;
    for (const Use &u : uses) {
      uint8_t &in = inputs[u.kernel][u.position];
      if (in && (u.weight < 0 || !ok[u.weight])) {
        in = 0;
        changed = true;
      }
      if (u.weight < 0 || !ok[u.weight])
        continue;
      if (!in || (code[u.weight] && code[u.weight] != in)) {
        ok[u.weight] = false;
        changed = true;
      } else {
        code[u.weight] = in;
      }
    }
  }
  plan.weightStorage.assign(plan.weights.size(), 0);
  for (size_t w = 0; w < ok.size(); ++w)
    if (ok[w])
      plan.weightStorage[w] = code[w];
  return inputs;
}

/// Kernel `k`'s (by kernelIndex; not a builtin) KernelIR, extracted once.
FailureOr<const kir::Kernel *> kernelIR(HostPlan &plan, size_t k) {
  plan.kernelIRs.resize(plan.kernels.size());
  if (!plan.kernelIRs[k]) {
    FailureOr<kir::Kernel> kernel = extractKernel(plan.kernels[k]);
    if (failed(kernel))
      return failure();
    plan.kernelIRs[k] = std::move(*kernel);
  }
  return &*plan.kernelIRs[k];
}

/// Per kernel (by kernelIndex), the storage `which(kernel, index)` gives
/// each of its inputs (empty for builtins).
template <typename Which>
FailureOr<std::vector<std::vector<uint8_t>>> kernelInputs(HostPlan &plan,
                                                          Which which) {
  std::vector<std::vector<uint8_t>> inputs(plan.kernels.size());
  for (size_t k = 0; k < plan.kernels.size(); ++k) {
    if (plan.kernels[k]->hasAttr(kBuiltinAttr))
      continue;
    FailureOr<const kir::Kernel *> kernel = kernelIR(plan, k);
    if (failed(kernel))
      return failure();
    inputs[k] = which(**kernel, k);
  }
  return inputs;
}

/// --pack-weights: the weights that the runtime keeps in panels, those that
/// only GEMMs read whole as their B (codegen::panelInputs; with
/// options.bf16Gemms as bf16 pairs): the same results, the GEMMs then read
/// their panels of B in place. Fills plan.weightStorage and
/// plan.kernelInputsPanels.
LogicalResult planPanelWeights(HostPlan &plan, const std::string &target,
                               const codegen::KernelOptions &options) {
  static_assert(uint8_t(codegen::PanelStorage::Rows) == DYNRT_STORAGE_PANELS &&
                    uint8_t(codegen::PanelStorage::Cols) ==
                        DYNRT_STORAGE_PANELS_COLS &&
                    uint8_t(codegen::PanelStorage::Bf16Rows) ==
                        DYNRT_STORAGE_BF16_PANELS,
                "PanelStorage values are the runtime's storage codes");
  auto inputs = kernelInputs(plan, [&](const kir::Kernel &kernel, size_t) {
    std::vector<uint8_t> codes;
    for (codegen::PanelStorage p :
         codegen::panelInputs(kernel, target, options))
      codes.push_back(uint8_t(p));
    return codes;
  });
  if (failed(inputs))
    return failure();
  plan.kernelInputsPanels =
      planWeightStorage(plan, std::move(*inputs), /*ownShape=*/true);
  return success();
}

/// --precision=bf16: the weights that the runtime keeps as bfloat16: those
/// that only bf16 GEMMs read as an operand (codegen::bf16OnlyInputs). Those
/// GEMMs round the weight to bf16 anyway: kept so, the results are the same
/// bits and the weight's bytes are halved. With `panels` (--pack-weights),
/// those that only bf16 GEMMs read whole as their [N, K] B are kept as bf16
/// pairs in panels (DYNRT_STORAGE_BF16_PANELS, codegen::panelInputs), which
/// the GEMMs read in place instead of packing per task: the same pairs
/// summed in the same order, the same bits. Fills plan.weightStorage,
/// plan.kernelInputsBf16 and plan.kernelInputsPanels.
LogicalResult planBf16Weights(HostPlan &plan, const std::string &target,
                              bool panels) {
  codegen::KernelOptions options;
  options.bf16Gemms = true;
  std::vector<uint8_t> inPanels;
  if (panels) {
    if (failed(planPanelWeights(plan, target, options)))
      return failure();
    inPanels = plan.weightStorage;
  }
  // Each kernel with the panels it will read (as it is compiled with
  // them): a GEMM reading its B in panels rounds as the panels' tiling has
  // it, and --tune does not time the plain shape it never compiles.
  auto inputs = kernelInputs(plan, [&](const kir::Kernel &kernel, size_t k) {
    codegen::KernelOptions kernelOptions = options;
    if (k < plan.kernelInputsPanels.size())
      kernelOptions.panelInputs = plan.kernelInputsPanels[k];
    std::vector<uint8_t> codes;
    for (bool only : codegen::bf16OnlyInputs(kernel, target, kernelOptions))
      codes.push_back(only ? DYNRT_BF16 : 0);
    return codes;
  });
  if (failed(inputs))
    return failure();
  plan.kernelInputsBf16 =
      planWeightStorage(plan, std::move(*inputs), /*ownShape=*/false);
  // A weight in bf16 panels is one that only bf16 GEMMs read (their B is
  // such an input), so the bf16 plan keeps it as bf16 too: its kernels
  // receive it as bfloat16, arranged in panels.
  for (size_t w = 0; w < inPanels.size(); ++w) {
    if (!inPanels[w])
      continue;
    if (plan.weightStorage[w] != DYNRT_BF16)
      return plan.entry.emitError("internal error: weight '")
             << plan.weights[w].name
             << "' planned in bf16 panels but not as bf16";
    plan.weightStorage[w] = inPanels[w];
  }
  return success();
}

/// Builds `<model>_entry` in the LLVM dialect into `host`:
///   int32_t entry(inputs, outputs, weights, params, arena, ctx)
class HostLowering {
public:
  HostLowering(const HostPlan &plan, ModuleOp host)
      : plan(plan), b(host.getContext()), loc(plan.entry.getLoc()),
        ptr(LLVM::LLVMPointerType::get(host.getContext())),
        i8(b.getI8Type()), i32(b.getI32Type()), i64(b.getI64Type()) {
    b.setInsertionPointToEnd(host.getBody());
    invoke = b.create<LLVM::LLVMFuncOp>(
        loc, "dynrt_invoke_kernel",
        LLVM::LLVMFunctionType::get(i32, {ptr, i32, ptr}));
    memcpyFn = b.create<LLVM::LLVMFuncOp>(
        loc, "memcpy", LLVM::LLVMFunctionType::get(ptr, {ptr, ptr, i64}));
    indexErrorFn = b.create<LLVM::LLVMFuncOp>(
        loc, "dynrt_host_index_error",
        LLVM::LLVMFunctionType::get(i32, {ptr, ptr, i64, i64}));
    fn = b.create<LLVM::LLVMFuncOp>(
        loc, plan.model + "_entry",
        LLVM::LLVMFunctionType::get(i32, {ptr, ptr, ptr, ptr, ptr, ptr}));
    for (auto [i, dense] : llvm::enumerate(plan.constants))
      constantGlobals.push_back(defineConstant(dense, i));
  }

  LogicalResult run() {
    Block *entry = fn.addEntryBlock(b);
    fail = new Block();
    fn.getBody().push_back(fail);
    fail->addArgument(i32, loc);
    b.setInsertionPointToStart(fail);
    b.create<LLVM::ReturnOp>(loc, fail->getArgument(0));
    for (unsigned i = 0; i < 6; ++i)
      args[i] = entry->getArgument(i);
    b.setInsertionPointToStart(entry);
    size_t maxArgs = 1;
    for (func::FuncOp k : plan.kernels)
      maxArgs = std::max<size_t>(maxArgs, k.getNumArguments() + k.getNumResults());
    argArray = b.create<LLVM::AllocaOp>(
        loc, ptr, ptr,
        b.create<LLVM::ConstantOp>(loc, i32, b.getI32IntegerAttr(maxArgs)), 8);
    return lowerBlock(plan.entry.getBody().front());
  }

private:
  const HostPlan &plan;
  OpBuilder b;
  Location loc;
  Type ptr, i8, i32, i64;
  LLVM::LLVMFuncOp invoke, memcpyFn, indexErrorFn, fn;
  Block *fail = nullptr;
  int numStrings = 0;
  Value args[6]; // inputs, outputs, weights, params, arena, ctx
  Value argArray;
  std::vector<LLVM::GlobalOp> constantGlobals;

  /// A read-only global holding `dense` row-major, as kernels read it (i1 as
  /// one byte per element).
  LLVM::GlobalOp defineConstant(DenseElementsAttr dense, size_t index) {
    auto type = cast<ShapedType>(dense.getType());
    int64_t n = type.getNumElements();
    Type elem = type.getElementType();
    if (elem.isInteger(1)) {
      SmallVector<int8_t> bytes;
      for (bool v : dense.getValues<bool>())
        bytes.push_back(v ? 1 : 0);
      elem = i8;
      dense = DenseElementsAttr::get(RankedTensorType::get({n}, i8),
                                     ArrayRef<int8_t>(bytes));
    } else {
      dense = dense.reshape(RankedTensorType::get({n}, elem));
    }
    return b.create<LLVM::GlobalOp>(
        loc, LLVM::LLVMArrayType::get(elem, n), /*isConstant=*/true,
        LLVM::Linkage::Internal, plan.model + "_constant" + std::to_string(index),
        dense, /*alignment=*/64);
  }
  llvm::DenseMap<Value, Value> scalars; // host scalars -> LLVM values

  Value constant(Type t, int64_t v) {
    return b.create<LLVM::ConstantOp>(loc, t, b.getIntegerAttr(t, v));
  }

  Value pointerOf(Value v) {
    Slot s = slotOf(plan, v);
    auto load = [&](Value table) -> Value {
      Value at = b.create<LLVM::GEPOp>(loc, ptr, ptr, table,
                                       ArrayRef<LLVM::GEPArg>{(int32_t)s.index});
      return b.create<LLVM::LoadOp>(loc, ptr, at);
    };
    switch (s.kind) {
    case Slot::Kind::Input:
      return load(args[0]);
    case Slot::Kind::Output:
      return load(args[1]);
    case Slot::Kind::Weight:
      return load(args[2]);
    case Slot::Kind::Param:
      return load(args[3]);
    case Slot::Kind::Arena:
      return b.create<LLVM::GEPOp>(loc, ptr, i8, args[4],
                                   ArrayRef<LLVM::GEPArg>{(int32_t)s.index});
    case Slot::Kind::Constant:
      return b.create<LLVM::AddressOfOp>(loc, constantGlobals[s.index]);
    }
    return {};
  }

  void copy(Value dst, Value src, int64_t bytes) {
    b.create<LLVM::CallOp>(loc, memcpyFn,
                           ValueRange{dst, src, constant(i64, bytes)});
  }

  /// Bytes per element in memory (i1 takes one byte, as in the kernels).
  static int64_t elementBytes(Type elem) {
    return elem.isInteger(1) ? 1 : (elem.getIntOrFloatBitWidth() + 7) / 8;
  }

  int64_t bytesOf(Value v) {
    auto t = cast<RankedTensorType>(v.getType());
    return elementBytes(t.getElementType()) * t.getNumElements();
  }

  /// Continues in a new block when `status` is 0, else returns it.
  void checked(Value status) {
    Value bad = b.create<LLVM::ICmpOp>(loc, LLVM::ICmpPredicate::ne, status,
                                       constant(i32, 0));
    Block *next = new Block();
    fn.getBody().push_back(next);
    b.create<LLVM::CondBrOp>(loc, bad, fail, ValueRange{status}, next,
                             ValueRange{});
    b.setInsertionPointToStart(next);
  }

  /// The LLVM value of a host scalar (index is i64).
  Value scalar(Value v) { return scalars.lookup(v); }

  Type llvmScalarType(Type t) { return t.isIndex() ? Type(i64) : t; }

  /// Copies the tensors a yield hands over (listed in plan.yieldCopies) into
  /// the slots of `results`.
  void yieldTensors(scf::YieldOp yield, ResultRange results) {
    for (auto [y, i] : plan.yieldCopies)
      if (y == yield)
        copy(pointerOf(results[i]), pointerOf(yield.getOperand(i)),
             bytesOf(yield.getOperand(i)));
  }

  /// The scalar operands of `values`, as LLVM values.
  SmallVector<Value> scalarsOf(ValueRange values) {
    SmallVector<Value> out;
    for (Value v : values)
      if (!isa<RankedTensorType>(v.getType()))
        out.push_back(scalar(v));
    return out;
  }

  /// A block whose arguments are the scalars among `types`.
  Block *scalarBlock(TypeRange types) {
    Block *block = new Block();
    fn.getBody().push_back(block);
    for (Type t : types)
      if (!isa<RankedTensorType>(t))
        block->addArgument(llvmScalarType(t), loc);
    return block;
  }

  /// Maps the scalars among `values` to the arguments of `block`.
  void bindScalars(ValueRange values, Block *block) {
    unsigned a = 0;
    for (Value v : values)
      if (!isa<RankedTensorType>(v.getType()))
        scalars[v] = block->getArgument(a++);
  }

  bool sameSlot(Value x, Value y) {
    Slot a = slotOf(plan, x), c = slotOf(plan, y);
    return a.kind == c.kind && a.index == c.index;
  }

  LogicalResult lowerScalar(Operation &op) {
    auto bin = [&](auto tag) -> LogicalResult {
      using OpT = decltype(tag);
      scalars[op.getResult(0)] = b.create<OpT>(
          loc, llvmScalarType(op.getResult(0).getType()),
          scalar(op.getOperand(0)), scalar(op.getOperand(1)));
      return success();
    };
    auto resize = [&](Value v, Type to, bool isSigned) -> Value {
      unsigned from = v.getType().getIntOrFloatBitWidth(),
               width = to.getIntOrFloatBitWidth();
      if (from == width)
        return v;
      if (from > width)
        return b.create<LLVM::TruncOp>(loc, to, v);
      return isSigned ? b.create<LLVM::SExtOp>(loc, to, v).getResult()
                      : b.create<LLVM::ZExtOp>(loc, to, v).getResult();
    };
    return llvm::TypeSwitch<Operation *, LogicalResult>(&op)
        .Case([&](arith::ConstantOp c) {
          Type t = llvmScalarType(c.getType());
          int64_t v = cast<IntegerAttr>(c.getValue()).getValue().getSExtValue();
          scalars[c.getResult()] = b.create<LLVM::ConstantOp>(
              loc, t, b.getIntegerAttr(t, v));
          return success();
        })
        .Case([&](arith::AddIOp) { return bin(LLVM::AddOp()); })
        .Case([&](arith::SubIOp) { return bin(LLVM::SubOp()); })
        .Case([&](arith::MulIOp) { return bin(LLVM::MulOp()); })
        .Case([&](arith::DivSIOp) { return bin(LLVM::SDivOp()); })
        .Case([&](arith::RemSIOp) { return bin(LLVM::SRemOp()); })
        .Case([&](arith::AndIOp) { return bin(LLVM::AndOp()); })
        .Case([&](arith::OrIOp) { return bin(LLVM::OrOp()); })
        .Case([&](arith::XOrIOp) { return bin(LLVM::XOrOp()); })
        .Case<arith::MaxSIOp, arith::MinSIOp>([&](Operation *m) {
          Value x = scalar(m->getOperand(0)), y = scalar(m->getOperand(1));
          auto pred = isa<arith::MaxSIOp>(m) ? LLVM::ICmpPredicate::sgt
                                             : LLVM::ICmpPredicate::slt;
          scalars[m->getResult(0)] = b.create<LLVM::SelectOp>(
              loc, b.create<LLVM::ICmpOp>(loc, pred, x, y), x, y);
          return success();
        })
        .Case([&](arith::CmpIOp c) {
          scalars[c.getResult()] = b.create<LLVM::ICmpOp>(
              loc, static_cast<LLVM::ICmpPredicate>(c.getPredicate()),
              scalar(c.getLhs()), scalar(c.getRhs()));
          return success();
        })
        .Case([&](arith::SelectOp sel) {
          scalars[sel.getResult()] = b.create<LLVM::SelectOp>(
              loc, scalar(sel.getCondition()), scalar(sel.getTrueValue()),
              scalar(sel.getFalseValue()));
          return success();
        })
        .Case<arith::IndexCastOp, arith::ExtSIOp, arith::TruncIOp>(
            [&](Operation *c) {
              scalars[c->getResult(0)] =
                  resize(scalar(c->getOperand(0)),
                         llvmScalarType(c->getResult(0).getType()), true);
              return success();
            })
        .Case<arith::ExtUIOp, arith::IndexCastUIOp>([&](Operation *c) {
          scalars[c->getResult(0)] =
              resize(scalar(c->getOperand(0)),
                     llvmScalarType(c->getResult(0).getType()), false);
          return success();
        })
        .Default([&](Operation *other) {
          return other->emitError("'")
                 << other->getName() << "' is not supported in host code";
        });
  }

  /// The address of a NUL-terminated string in a private global.
  Value globalString(StringRef text) {
    std::string bytes = text.str();
    bytes.push_back('\0');
    auto type = LLVM::LLVMArrayType::get(i8, bytes.size());
    LLVM::GlobalOp global;
    {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(fn);
      global = b.create<LLVM::GlobalOp>(
          loc, type, /*isConstant=*/true, LLVM::Linkage::Private,
          plan.model + "_str" + std::to_string(numStrings++),
          b.getStringAttr(bytes), /*alignment=*/1);
    }
    return b.create<LLVM::AddressOfOp>(loc, global);
  }

  /// Byte address of element `indices` of tensor `t` read by `user`. An
  /// index that comes from data is checked against its dimension at run
  /// time (the run fails with a status naming `user`'s location; nothing
  /// outside the tensor is read); a constant one at compile time.
  FailureOr<Value> elementAddress(Value t, ValueRange indices, Operation *user) {
    auto type = cast<RankedTensorType>(t.getType());
    Value linear = constant(i64, 0);
    for (auto [d, idx] : llvm::enumerate(indices)) {
      int64_t extent = type.getDimSize(d);
      APInt known;
      if (matchPattern(idx, m_ConstantInt(&known))) {
        if (known.isNegative() || known.getSExtValue() >= extent)
          return user->emitError("index ")
                 << known.getSExtValue() << " of dimension " << d
                 << " is out of range [0, " << extent << ")";
      } else {
        Value ok = b.create<LLVM::ICmpOp>(loc, LLVM::ICmpPredicate::ult,
                                          scalar(idx), constant(i64, extent));
        Block *bad = new Block(), *next = new Block();
        fn.getBody().push_back(bad);
        fn.getBody().push_back(next);
        b.create<LLVM::CondBrOp>(loc, ok, next, bad);
        b.setInsertionPointToStart(bad);
        std::string where;
        llvm::raw_string_ostream os(where);
        if (auto file = user->getLoc()->findInstanceOf<FileLineColLoc>())
          os << file.getFilename().getValue() << ":" << file.getLine() << ":"
             << file.getColumn();
        else
          user->getLoc().print(os);
        os << ": dimension " << d << " of " << t.getType();
        Value code = b.create<LLVM::CallOp>(
                          loc, indexErrorFn,
                          ValueRange{args[5], globalString(where), scalar(idx),
                                     constant(i64, extent)})
                         .getResult();
        b.create<LLVM::BrOp>(loc, ValueRange{code}, fail);
        b.setInsertionPointToStart(next);
      }
      linear = b.create<LLVM::MulOp>(loc, linear, constant(i64, extent));
      linear = b.create<LLVM::AddOp>(loc, linear, scalar(idx));
    }
    Value offset = b.create<LLVM::MulOp>(
        loc, linear, constant(i64, elementBytes(type.getElementType())));
    return Value(b.create<LLVM::GEPOp>(loc, ptr, i8, pointerOf(t), ValueRange{offset}));
  }

  LogicalResult lowerBlock(Block &block) {
    for (Operation &op : block) {
      if (isHostScalarOp(&op)) {
        if (failed(lowerScalar(op)))
          return failure();
        continue;
      }
      if (auto ex = dyn_cast<tensor::ExtractOp>(op)) {
        FailureOr<Value> address =
            elementAddress(ex.getTensor(), ex.getIndices(), ex);
        if (failed(address))
          return failure();
        Value at = *address;
        Type t = ex.getType();
        if (t.isInteger(1)) {
          Value byte = b.create<LLVM::LoadOp>(loc, i8, at);
          scalars[ex.getResult()] = b.create<LLVM::ICmpOp>(
              loc, LLVM::ICmpPredicate::ne, byte, constant(i8, 0));
        } else {
          scalars[ex.getResult()] =
              b.create<LLVM::LoadOp>(loc, llvmScalarType(t), at);
        }
        continue;
      }
      if (auto fe = dyn_cast<tensor::FromElementsOp>(op)) {
        Value dst = pointerOf(fe.getResult());
        auto type = cast<RankedTensorType>(fe.getType());
        int64_t width = elementBytes(type.getElementType());
        for (auto [k, e] : llvm::enumerate(fe.getElements())) {
          Value v = scalar(e);
          if (v.getType() == b.getI1Type())
            v = b.create<LLVM::ZExtOp>(loc, i8, v);
          Value at = b.create<LLVM::GEPOp>(
              loc, ptr, i8, dst, ArrayRef<LLVM::GEPArg>{(int32_t)(k * width)});
          b.create<LLVM::StoreOp>(loc, v, at);
        }
        continue;
      }
      if (auto call = dyn_cast<func::CallOp>(op)) {
        auto callee = plan.entry->getParentOfType<ModuleOp>()
                          .lookupSymbol<func::FuncOp>(call.getCallee());
        int index = plan.kernelIndex.lookup(callee);
        int a = 0;
        SmallVector<Value> buffers(call.getOperands());
        llvm::append_range(buffers, call.getResults());
        for (Value v : buffers) {
          Value at = b.create<LLVM::GEPOp>(loc, ptr, ptr, argArray,
                                           ArrayRef<LLVM::GEPArg>{a++});
          b.create<LLVM::StoreOp>(loc, pointerOf(v), at);
        }
        checked(b.create<LLVM::CallOp>(
                     call.getLoc(), invoke,
                     ValueRange{args[5], constant(i32, index), argArray})
                    .getResult());
        continue;
      }
      if (auto ifOp = dyn_cast<scf::IfOp>(op)) {
        Value cond = scalar(ifOp.getCondition());
        if (!cond)
          return ifOp.emitError("branch conditions must be read from a "
                                "kernel result");
        Block *thenB = new Block(), *elseB = new Block();
        fn.getBody().push_back(thenB);
        fn.getBody().push_back(elseB);
        Block *merge = scalarBlock(ifOp.getResultTypes());
        b.create<LLVM::CondBrOp>(loc, cond, thenB, elseB);
        for (auto [region, target] :
             {std::pair{&ifOp.getThenRegion(), thenB},
              std::pair{&ifOp.getElseRegion(), elseB}}) {
          b.setInsertionPointToStart(target);
          SmallVector<Value> out;
          if (!region->empty()) {
            if (failed(lowerBlock(region->front())))
              return failure();
            auto yield = cast<scf::YieldOp>(region->front().getTerminator());
            yieldTensors(yield, ifOp.getResults());
            out = scalarsOf(yield.getOperands());
          }
          b.create<LLVM::BrOp>(loc, out, merge);
        }
        b.setInsertionPointToStart(merge);
        bindScalars(ifOp.getResults(), merge);
        continue;
      }
      if (auto sw = dyn_cast<scf::IndexSwitchOp>(op)) {
        Block *merge = scalarBlock(sw.getResultTypes());
        SmallVector<Block *> caseBlocks;
        SmallVector<int32_t> values;
        for (auto [k, v] : llvm::enumerate(sw.getCases())) {
          Block *c = new Block();
          fn.getBody().push_back(c);
          caseBlocks.push_back(c);
          values.push_back((int32_t)v);
        }
        Block *dflt = new Block();
        fn.getBody().push_back(dflt);
        Value selector = b.create<LLVM::TruncOp>(loc, i32, scalar(sw.getArg()));
        SmallVector<ValueRange> noOperands(caseBlocks.size(), ValueRange{});
        b.create<LLVM::SwitchOp>(loc, selector, dflt, ValueRange{}, values,
                                 caseBlocks, noOperands);
        SmallVector<std::pair<Region *, Block *>> regions;
        for (auto [k, c] : llvm::enumerate(caseBlocks))
          regions.push_back({&sw.getCaseRegions()[k], c});
        regions.push_back({&sw.getDefaultRegion(), dflt});
        for (auto [region, target] : regions) {
          b.setInsertionPointToStart(target);
          if (failed(lowerBlock(region->front())))
            return failure();
          auto yield = cast<scf::YieldOp>(region->front().getTerminator());
          yieldTensors(yield, sw.getResults());
          b.create<LLVM::BrOp>(loc, scalarsOf(yield.getOperands()), merge);
        }
        b.setInsertionPointToStart(merge);
        bindScalars(sw.getResults(), merge);
        continue;
      }
      if (auto loop = dyn_cast<scf::WhileOp>(op)) {
        // The carried tensors start as copies of the initial values.
        for (auto [init, result] : llvm::zip(loop.getInits(), loop.getResults()))
          if (isa<RankedTensorType>(init.getType()) && !sameSlot(init, result))
            copy(pointerOf(result), pointerOf(init), bytesOf(init));
        Block *header = scalarBlock(loop.getBefore().getArgumentTypes());
        Block *body = scalarBlock(loop.getAfter().getArgumentTypes());
        Block *exit = scalarBlock(loop.getResultTypes());
        b.create<LLVM::BrOp>(loc, scalarsOf(loop.getInits()), header);
        b.setInsertionPointToStart(header);
        bindScalars(loop.getBeforeArguments(), header);
        if (failed(lowerBlock(loop.getBefore().front())))
          return failure();
        auto cond = cast<scf::ConditionOp>(loop.getBefore().front().getTerminator());
        SmallVector<Value> passed = scalarsOf(cond.getArgs());
        b.create<LLVM::CondBrOp>(loc, scalar(cond.getCondition()), body, passed,
                                 exit, passed);
        b.setInsertionPointToStart(body);
        bindScalars(loop.getAfterArguments(), body);
        if (failed(lowerBlock(loop.getAfter().front())))
          return failure();
        auto yield = cast<scf::YieldOp>(loop.getAfter().front().getTerminator());
        for (auto [v, result] : llvm::zip(yield.getOperands(), loop.getResults()))
          if (isa<RankedTensorType>(v.getType()) && !sameSlot(v, result))
            copy(pointerOf(result), pointerOf(v), bytesOf(v));
        b.create<LLVM::BrOp>(loc, scalarsOf(yield.getOperands()), header);
        b.setInsertionPointToStart(exit);
        bindScalars(loop.getResults(), exit);
        continue;
      }
      if (auto ret = dyn_cast<func::ReturnOp>(op)) {
        for (auto [k, v] : plan.copies) {
          Value dst = b.create<LLVM::LoadOp>(
              loc, ptr,
              b.create<LLVM::GEPOp>(loc, ptr, ptr, args[1],
                                    ArrayRef<LLVM::GEPArg>{(int32_t)k}));
          copy(dst, pointerOf(v), plan.outputs[k].bytes());
        }
        b.create<LLVM::ReturnOp>(loc, constant(i32, 0));
      }
      // Views, constants, conditions and yields need no code of their own.
    }
    return success();
  }
};

LogicalResult lowerHost(const HostPlan &plan, ModuleOp host) {
  return HostLowering(plan, host).run();
}

/// A sanitized C identifier from the output file name.
std::string modelName(StringRef base) {
  std::string name = llvm::sys::path::filename(base).str();
  for (char &c : name)
    if (!llvm::isAlnum(c) && c != '_')
      c = '_';
  if (name.empty() || llvm::isDigit(name.front()))
    name = "m_" + name;
  return name;
}

FailureOr<OwningOpRef<ModuleOp>> buildHostModule(const HostPlan &plan,
                                                 MLIRContext *ctx) {
  OwningOpRef<ModuleOp> host = ModuleOp::create(plan.entry.getLoc());
  if (failed(lowerHost(plan, *host)))
    return failure();
  return host;
}

void registerTranslations(MLIRContext *ctx) {
  DialectRegistry registry;
  registerBuiltinDialectTranslation(registry);
  registerLLVMDialectTranslation(registry);
  ctx->appendDialectRegistry(registry);
}

/// Adds `<model>_desc`, the descriptor the runtime reads, and the embedded
/// weights (`weights` may be empty).
void addDescriptor(const HostPlan &plan, llvm::Module &m, StringRef weights) {
  llvm::LLVMContext &c = m.getContext();
  auto *ptr = llvm::PointerType::get(c, 0);
  auto *i32 = llvm::Type::getInt32Ty(c);
  auto *i64 = llvm::Type::getInt64Ty(c);
  auto *shapeTy = llvm::ArrayType::get(i64, 8);
  auto *specTy = llvm::StructType::get(c, {ptr, i32, i32, shapeTy});
  auto *f64 = llvm::Type::getDoubleTy(c);
  auto *kernelTy =
      llvm::StructType::get(c, {ptr, ptr, i32, ptr, i32, i32, ptr, f64});
  auto *descTy = llvm::StructType::get(
      c, {i32, ptr, i32, ptr, i32, ptr, i32, ptr, i32, ptr, i64, ptr, i32, ptr,
          i32, ptr, i64, i32, ptr, i32, ptr, i32, i32, i32, ptr, i32, i32, ptr,
          ptr});
  auto *routeTy = llvm::StructType::get(c, {ptr, i32, i32, i32});
  auto *skipTy = llvm::StructType::get(c, {ptr, i32, i32, i32});
  auto *paramTy = llvm::StructType::get(c, {ptr, i32, ptr});

  auto str = [&](StringRef s) -> llvm::Constant * {
    auto *data = llvm::ConstantDataArray::getString(c, s);
    return new llvm::GlobalVariable(m, data->getType(), true,
                                    llvm::GlobalValue::PrivateLinkage, data,
                                    ".str");
  };
  auto specs = [&](ArrayRef<TensorSpec> list, StringRef what) -> llvm::Constant * {
    if (list.empty())
      return llvm::ConstantPointerNull::get(ptr);
    std::vector<llvm::Constant *> elems;
    for (const TensorSpec &s : list) {
      std::vector<llvm::Constant *> dims;
      for (int d = 0; d < 8; ++d)
        dims.push_back(llvm::ConstantInt::get(
            i64, d < (int)s.shape.size() ? s.shape[d] : 0));
      elems.push_back(llvm::ConstantStruct::get(
          specTy, {str(s.name), llvm::ConstantInt::get(i32, dynrtDtype(s.type)),
                   llvm::ConstantInt::get(i32, s.shape.size()),
                   llvm::ConstantArray::get(shapeTy, dims)}));
    }
    auto *arrTy = llvm::ArrayType::get(specTy, elems.size());
    return new llvm::GlobalVariable(m, arrTy, true,
                                    llvm::GlobalValue::PrivateLinkage,
                                    llvm::ConstantArray::get(arrTy, elems),
                                    plan.model + "_" + what.str());
  };

  std::vector<llvm::Constant *> kernels, routes, skips;
  for (func::FuncOp k : plan.kernels) {
    std::vector<TensorSpec> args;
    SmallVector<Type> types(k.getArgumentTypes());
    llvm::append_range(types, k.getResultTypes());
    for (Type t : types) {
      auto rt = cast<RankedTensorType>(t);
      TensorSpec s{"", *elemType(rt.getElementType(), k.getLoc()),
                   SmallVector<int64_t>(rt.getShape())};
      if (plan.inputBf16(plan.kernelIndex.lookup(k), args.size()))
        s.type = kir::ElemType::BF16;
      // A weight kept in panels: the kernel reads each matrix as one flat
      // run of N x K elements (codegen::panelView).
      if (plan.inputPanels(plan.kernelIndex.lookup(k), args.size())) {
        std::vector<int64_t> view = codegen::panelView(
            std::vector<int64_t>(s.shape.begin(), s.shape.end()));
        s.shape.assign(view.begin(), view.end());
      }
      args.push_back(s);
    }
    std::string symbol = plan.model + "_" + k.getSymName().str();
    const size_t index = plan.kernelIndex.lookup(k);
    const double flops =
        index < plan.kernelFlops.size() ? plan.kernelFlops[index] : 0.0;
    llvm::Constant *fnPtr = llvm::ConstantPointerNull::get(ptr);
    llvm::Constant *config = llvm::ConstantPointerNull::get(ptr);
    int builtin = 0;
    size_t numConfig = 0;
    if (auto id = k->getAttrOfType<IntegerAttr>(kBuiltinAttr)) {
      // Work the runtime does itself (docs/moe.md): no Halide function.
      builtin = id.getInt();
      auto values = k->getAttrOfType<DenseF64ArrayAttr>(kConfigAttr);
      std::vector<llvm::Constant *> elems;
      for (double v : values.asArrayRef())
        elems.push_back(llvm::ConstantFP::get(f64, v));
      numConfig = elems.size();
      auto *arrTy = llvm::ArrayType::get(f64, elems.size());
      config = new llvm::GlobalVariable(m, arrTy, true,
                                        llvm::GlobalValue::PrivateLinkage,
                                        llvm::ConstantArray::get(arrTy, elems),
                                        symbol + "_config");
      if (builtin == kBuiltinSkipStep) {
        // dynrt_skip_desc_t from (skip, budget, length, actions).
        int skip = (int)values[0];
        if ((int)skips.size() <= skip)
          skips.resize(skip + 1, nullptr);
        skips[skip] = llvm::ConstantStruct::get(
            skipTy, {str("skip" + std::to_string(skip)),
                     llvm::ConstantInt::get(i32, (int64_t)values[2]),
                     llvm::ConstantInt::get(i32, (int64_t)values[1]),
                     llvm::ConstantInt::get(i32, (int64_t)values[3])});
      }
      int route = (int)values[0];
      if (builtin == kBuiltinRouteAssign && (int)routes.size() <= route)
        routes.resize(route + 1, nullptr);
      if (builtin == kBuiltinRouteAssign)
        routes[route] = llvm::ConstantStruct::get(
          routeTy, {str("route" + std::to_string(route)),
                    llvm::ConstantInt::get(i32, (int64_t)values[2]),
                    llvm::ConstantInt::get(i32, (int64_t)values[3]),
                    llvm::ConstantInt::get(i32, (int64_t)values[4])});
    } else {
      auto *fnTy = llvm::FunctionType::get(i32, {ptr}, false);
      fnPtr = llvm::cast<llvm::Constant>(
          m.getOrInsertFunction(symbol + "_argv", fnTy).getCallee());
    }
    kernels.push_back(llvm::ConstantStruct::get(
        kernelTy, {fnPtr, str(symbol), llvm::ConstantInt::get(i32, args.size()),
                   specs(args, symbol + "_args"),
                   llvm::ConstantInt::get(i32, builtin),
                   llvm::ConstantInt::get(i32, numConfig), config,
                   llvm::ConstantFP::get(f64, flops)}));
  }
  // A constant array of `elems` (NULL when empty); `fill` stands in for
  // entries no builtin described (never read: indices come from builtins).
  auto table = [&](llvm::StructType *ty, std::vector<llvm::Constant *> elems,
                   llvm::Constant *fill, StringRef what) -> llvm::Constant * {
    if (elems.empty())
      return llvm::ConstantPointerNull::get(ptr);
    for (llvm::Constant *&e : elems)
      if (!e)
        e = fill;
    auto *arrTy = llvm::ArrayType::get(ty, elems.size());
    return new llvm::GlobalVariable(m, arrTy, true,
                                    llvm::GlobalValue::PrivateLinkage,
                                    llvm::ConstantArray::get(arrTy, elems),
                                    plan.model + "_" + what.str());
  };
  auto descOf = [&](llvm::StructType *ty, int64_t value) {
    return llvm::ConstantStruct::get(
        ty, {str(""), llvm::ConstantInt::get(i32, value),
             llvm::ConstantInt::get(i32, value),
             llvm::ConstantInt::get(i32, value)});
  };
  llvm::Constant *skipTable = table(skipTy, skips, descOf(skipTy, 1), "skips");
  llvm::Constant *routeTable =
      table(routeTy, routes, descOf(routeTy, 0), "routes");
  llvm::Constant *kernelTable = table(kernelTy, kernels, nullptr, "kernels");
  llvm::Function *entry = m.getFunction(plan.model + "_entry");
  int exitOutput = -1;
  for (auto [k, o] : llvm::enumerate(plan.outputs))
    if (o.name == "exit_layer" && o.type == kir::ElemType::I32)
      exitOutput = (int)k;
  llvm::Constant *paramTable = llvm::ConstantPointerNull::get(ptr);
  if (!plan.params.empty()) {
    std::vector<llvm::Constant *> entries;
    auto *f32 = llvm::Type::getFloatTy(c);
    for (auto [p, defaults] : llvm::zip(plan.params, plan.paramDefaults)) {
      std::vector<llvm::Constant *> values;
      for (double v : defaults)
        values.push_back(llvm::ConstantFP::get(f32, v));
      auto *arrTy = llvm::ArrayType::get(f32, values.size());
      auto *g = new llvm::GlobalVariable(m, arrTy, true,
                                         llvm::GlobalValue::PrivateLinkage,
                                         llvm::ConstantArray::get(arrTy, values),
                                         plan.model + "_param_defaults");
      entries.push_back(llvm::ConstantStruct::get(
          paramTy, {str(p.name), llvm::ConstantInt::get(i32, values.size()), g}));
    }
    auto *arrTy = llvm::ArrayType::get(paramTy, entries.size());
    paramTable = new llvm::GlobalVariable(m, arrTy, true,
                                          llvm::GlobalValue::PrivateLinkage,
                                          llvm::ConstantArray::get(arrTy, entries),
                                          plan.model + "_params");
  }
  llvm::Constant *blob = llvm::ConstantPointerNull::get(ptr);
  if (!weights.empty()) {
    auto *data = llvm::ConstantDataArray::getRaw(
        weights, weights.size(), llvm::Type::getInt8Ty(c));
    auto *g = new llvm::GlobalVariable(m, data->getType(), true,
                                       llvm::GlobalValue::PrivateLinkage, data,
                                       plan.model + "_weights");
    g->setAlignment(llvm::Align(64));
    blob = g;
  }
  llvm::Constant *bucketTable = llvm::ConstantPointerNull::get(ptr);
  if (!plan.buckets.empty()) {
    std::vector<llvm::Constant *> values;
    for (int32_t v : plan.buckets)
      values.push_back(llvm::ConstantInt::get(i32, v));
    auto *arrTy = llvm::ArrayType::get(i32, values.size());
    bucketTable = new llvm::GlobalVariable(m, arrTy, true,
                                           llvm::GlobalValue::PrivateLinkage,
                                           llvm::ConstantArray::get(arrTy, values),
                                           plan.model + "_buckets");
  }
  llvm::Constant *shardTable = llvm::ConstantPointerNull::get(ptr);
  if (plan.ranks > 0 && !plan.weightSharded.empty()) {
    auto *i8 = llvm::Type::getInt8Ty(c);
    std::vector<llvm::Constant *> values;
    for (uint8_t v : plan.weightSharded)
      values.push_back(llvm::ConstantInt::get(i8, v));
    auto *arrTy = llvm::ArrayType::get(i8, values.size());
    shardTable = new llvm::GlobalVariable(m, arrTy, true,
                                          llvm::GlobalValue::PrivateLinkage,
                                          llvm::ConstantArray::get(arrTy, values),
                                          plan.model + "_weight_sharded");
  }
  llvm::Constant *storageTable = llvm::ConstantPointerNull::get(ptr);
  if (llvm::any_of(plan.weightStorage, [](uint8_t v) { return v != 0; })) {
    auto *i8 = llvm::Type::getInt8Ty(c);
    std::vector<llvm::Constant *> values;
    for (uint8_t v : plan.weightStorage)
      values.push_back(llvm::ConstantInt::get(i8, v));
    auto *arrTy = llvm::ArrayType::get(i8, values.size());
    storageTable = new llvm::GlobalVariable(
        m, arrTy, true, llvm::GlobalValue::PrivateLinkage,
        llvm::ConstantArray::get(arrTy, values), plan.model + "_weight_storage");
  }
  auto *desc = llvm::ConstantStruct::get(
      descTy,
      {llvm::ConstantInt::get(i32, kModelAbiVersion), str(plan.model),
       llvm::ConstantInt::get(i32, plan.inputs.size()), specs(plan.inputs, "inputs"),
       llvm::ConstantInt::get(i32, plan.outputs.size()), specs(plan.outputs, "outputs"),
       llvm::ConstantInt::get(i32, plan.weights.size()), specs(plan.weights, "weights"),
       llvm::ConstantInt::get(i32, kernels.size()), kernelTable,
       llvm::ConstantInt::get(i64, plan.arenaBytes), entry,
       llvm::ConstantInt::get(i32, plan.params.size()), paramTable,
       llvm::ConstantInt::get(i32, exitOutput), blob,
       llvm::ConstantInt::get(i64, weights.size()),
       llvm::ConstantInt::get(i32, routes.size()), routeTable,
       llvm::ConstantInt::get(i32, skips.size()), skipTable,
       llvm::ConstantInt::get(i32, plan.device),
       llvm::ConstantInt::get(i32, plan.buckets.empty() ? 0 : plan.buckets.back()),
       llvm::ConstantInt::get(i32, plan.buckets.size()), bucketTable,
       llvm::ConstantInt::get(i32, plan.numStages),
       llvm::ConstantInt::get(i32, plan.ranks), shardTable, storageTable});
  new llvm::GlobalVariable(m, descTy, true, llvm::GlobalValue::ExternalLinkage,
                           desc, plan.model + "_desc");
}

FailureOr<std::unique_ptr<llvm::Module>>
translateHost(const HostPlan &plan, llvm::LLVMContext &llvmCtx,
              StringRef weights = {}) {
  MLIRContext *ctx = plan.entry.getContext();
  registerTranslations(ctx);
  ctx->getOrLoadDialect<LLVM::LLVMDialect>();
  FailureOr<OwningOpRef<ModuleOp>> host = buildHostModule(plan, ctx);
  if (failed(host))
    return failure();
  std::unique_ptr<llvm::Module> m =
      translateModuleToLLVMIR(**host, llvmCtx, plan.model);
  if (!m)
    return plan.entry.emitError("cannot translate the host code to LLVM IR");
  addDescriptor(plan, *m, weights);
  return m;
}

FailureOr<std::string> emitObject(llvm::Module &m, Location loc) {
  llvm::InitializeNativeTarget();
  llvm::InitializeNativeTargetAsmPrinter();
  std::string triple = llvm::sys::getDefaultTargetTriple();
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target)
    return emitError(loc, "no LLVM target for ") << triple << ": " << error;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, "x86-64", "", llvm::TargetOptions(), llvm::Reloc::PIC_));
  m.setTargetTriple(triple);
  m.setDataLayout(tm->createDataLayout());
  llvm::SmallVector<char, 0> buffer;
  llvm::raw_svector_ostream os(buffer);
  llvm::legacy::PassManager pm;
  if (tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::ObjectFile))
    return emitError(loc, "LLVM cannot emit objects for ") << triple;
  pm.run(m);
  return std::string(buffer.begin(), buffer.end());
}

const char *cTypeName(kir::ElemType t) {
  switch (t) {
  case kir::ElemType::F32:
    return "float";
  case kir::ElemType::F64:
    return "double";
  case kir::ElemType::I1:
    return "uint8_t";
  case kir::ElemType::I8:
    return "int8_t";
  case kir::ElemType::I16:
    return "int16_t";
  case kir::ElemType::I32:
    return "int32_t";
  case kir::ElemType::I64:
    return "int64_t";
  case kir::ElemType::BF16:
    return "uint16_t";
  }
  return "void";
}

std::string describe(const TensorSpec &s) {
  return fmt::format("{}[{}]", kir::elemTypeName(s.type), fmt::join(s.shape, ", "));
}

std::string cIdent(StringRef name) {
  std::string out = name.str();
  for (char &c : out)
    if (!llvm::isAlnum(c) && c != '_')
      c = '_';
  if (out.empty() || llvm::isDigit(out.front()))
    out = "v_" + out;
  return out;
}

/// `text` made safe inside a comment of the generated header: printable
/// ASCII only.
std::string commentText(StringRef text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    out += llvm::isPrint(c) ? c : '?';
    // Neither "*/" (ends the comment) nor "/*" (-Wcomment).
    if ((c == '*' || c == '/') && i + 1 < text.size() &&
        text[i + 1] == (c == '*' ? '/' : '*'))
      out += ' ';
  }
  return out;
}

std::string headerText(const HostPlan &plan, StringRef source,
                       const std::string &kernelTarget) {
  std::string m = plan.model;
  std::string guard = "DYNCC_MODEL_" + llvm::StringRef(m).upper() + "_H";
  std::string out = fmt::format(
      "/* {m}.h - generated by dyncc from {src}; do not edit.\n"
      " *\n"
      " * Link lib{m}.a (it contains the runtime, libdynrt, and the Halide\n"
      " * runtime) and -lstdc++ -lpthread -ldl -lm. The API is the one of\n"
      " * dynrt.h, with typed wrappers below.\n"
      " *\n",
      fmt::arg("m", m), fmt::arg("src", commentText(source)));
  for (const TensorSpec &s : plan.inputs)
    out += fmt::format(" * input   {:<24} {}\n", commentText(s.name), describe(s));
  for (const TensorSpec &s : plan.outputs)
    out += fmt::format(" * output  {:<24} {}\n", commentText(s.name), describe(s));
  for (size_t w = 0; w < plan.weights.size(); ++w) {
    const TensorSpec &s = plan.weights[w];
    bool sharded = w < plan.weightSharded.size() && plan.weightSharded[w];
    uint8_t storage = w < plan.weightStorage.size() ? plan.weightStorage[w] : 0;
    out += fmt::format(" * weight  {:<24} {}{}{}\n", commentText(s.name), describe(s),
                       sharded ? fmt::format(" (one rank's shard of {} experts)",
                                             s.shape[0] * plan.ranks)
                               : "",
                       storage == DYNRT_BF16 ? " (kept as bf16)"
                       : storage == DYNRT_STORAGE_BF16_PANELS
                           ? " (kept as bf16, in panels)"
                       : storage != 0 ? " (kept in panels)"
                                      : "");
  }
  if (plan.ranks > 0)
    out += fmt::format(
        " * expert-parallel over {} ranks: create and run the model on every\n"
        " * rank with options.comm a communicator of {} ranks (libdynrt_mpi:\n"
        " * dynrt_mpi_comm_create); the weights file holds each expert tensor\n"
        " * whole or only the rank's shard.\n",
        plan.ranks, plan.ranks);
  for (auto [p, d] : llvm::zip(plan.params, plan.paramDefaults))
    out += fmt::format(" * param   {:<24} f32[{}] = {} (dynrt_model_set_param)\n",
                       commentText(p.name), d.size(), fmt::join(d, ", "));
  out += fmt::format(" * scratch memory per run: {} bytes\n", plan.arenaBytes);
  if (!codegen::isCudaTarget(kernelTarget)) {
    codegen::ScheduleMachine machine = codegen::scheduleMachine(kernelTarget);
    out += fmt::format(" * kernels scheduled for {} cores, {} KiB L2 per core (dyncc\n"
                       " * compile --cores, --l2-kib)\n",
                       machine.cores, machine.l2Bytes / 1024);
  }
  out += " */\n";
  out += fmt::format("#ifndef {g}\n#define {g}\n\n#include \"dynrt.h\"\n\n"
                     "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n"
                     "extern const dynrt_model_desc_t {m}_desc;\n\n",
                     fmt::arg("g", guard), fmt::arg("m", m));
  out += fmt::format(
      "/* Loads the model with weights from a safetensors file. */\n"
      "static inline dynrt_status_t {m}_create(const dynrt_model_options_t "
      "*options,\n    const char *weights_path, dynrt_model_t **out_model) {{\n"
      "  return dynrt_model_create_from_file(&{m}_desc, options, weights_path, "
      "out_model);\n}}\n\n",
      fmt::arg("m", m));
  std::vector<std::string> params, ins, outs;
  for (const TensorSpec &s : plan.inputs) {
    params.push_back(fmt::format("const {} *{}", cTypeName(s.type), cIdent(s.name)));
    ins.push_back(cIdent(s.name));
  }
  for (const TensorSpec &s : plan.outputs) {
    params.push_back(fmt::format("{} *{}", cTypeName(s.type), cIdent(s.name)));
    outs.push_back(cIdent(s.name));
  }
  out += fmt::format(
      "/* Runs the model on dense row-major buffers of the shapes above. */\n"
      "static inline dynrt_status_t {m}_run(dynrt_model_t *model{sep}{params}) "
      "{{\n  const void *inputs[] = {{{ins}}};\n  void *outputs[] = {{{outs}}};\n"
      "  return dynrt_model_run(model, inputs, outputs);\n}}\n\n",
      fmt::arg("m", m), fmt::arg("sep", params.empty() ? "" : ", "),
      fmt::arg("params", fmt::join(params, ", ")),
      fmt::arg("ins", ins.empty() ? "0" : fmt::format("{}", fmt::join(ins, ", "))),
      fmt::arg("outs", outs.empty() ? "0" : fmt::format("{}", fmt::join(outs, ", "))));
  if (!plan.buckets.empty())
    out += fmt::format(
        "/* Runs `batch` samples (1 .. {max}): every buffer holds `batch`\n"
        " * samples along its leading dimension; the stages run at the buckets\n"
        " * {buckets}. report may be NULL. */\n"
        "static inline dynrt_status_t {m}_run_batch(dynrt_model_t *model, "
        "int64_t batch{sep}{params},\n    dynrt_run_report_t *report) "
        "{{\n  const void *inputs[] = {{{ins}}};\n  void *outputs[] = {{{outs}}};\n"
        "  return dynrt_model_run_batch(model, batch, inputs, outputs, report);\n}}\n\n",
        fmt::arg("m", m), fmt::arg("max", plan.buckets.back()),
        fmt::arg("buckets", fmt::join(plan.buckets, ", ")),
        fmt::arg("sep", params.empty() ? "" : ", "),
        fmt::arg("params", fmt::join(params, ", ")),
        fmt::arg("ins", ins.empty() ? "0" : fmt::format("{}", fmt::join(ins, ", "))),
        fmt::arg("outs", outs.empty() ? "0" : fmt::format("{}", fmt::join(outs, ", "))));
  out += fmt::format("#ifdef __cplusplus\n}} /* extern \"C\" */\n#endif\n\n#endif /* {} */\n",
                     guard);
  return out;
}

LogicalResult writeFile(StringRef path, StringRef contents, Location loc) {
  llvm::Error err = llvm::writeToOutput(path, [&](llvm::raw_ostream &os) {
    os << contents;
    return llvm::Error::success();
  });
  if (err)
    return emitError(loc, "cannot write '")
           << path << "': " << llvm::toString(std::move(err));
  return success();
}

} // namespace

LogicalResult emitHostMLIR(ModuleOp module, StringRef name, llvm::raw_ostream &os) {
  FailureOr<HostPlan> plan = planHost(module, modelName(name));
  if (failed(plan))
    return failure();
  MLIRContext *ctx = module.getContext();
  ctx->getOrLoadDialect<LLVM::LLVMDialect>();
  FailureOr<OwningOpRef<ModuleOp>> host = buildHostModule(*plan, ctx);
  if (failed(host))
    return failure();
  os << fmt::format("// arena: {} bytes\n", plan->arenaBytes);
  (*host)->print(os);
  return success();
}

/// Plans and translates the host code of `module`, then hands the LLVM
/// module to `use`.
static LogicalResult
withHostLLVM(ModuleOp module, StringRef name,
             function_ref<LogicalResult(llvm::Module &)> use) {
  FailureOr<HostPlan> plan = planHost(module, modelName(name));
  if (failed(plan))
    return failure();
  llvm::LLVMContext llvmCtx;
  FailureOr<std::unique_ptr<llvm::Module>> m = translateHost(*plan, llvmCtx);
  if (failed(m))
    return failure();
  return use(**m);
}

LogicalResult emitHostLLVMIR(ModuleOp module, StringRef name, llvm::raw_ostream &os) {
  return withHostLLVM(module, name, [&](llvm::Module &m) {
    m.print(os, nullptr);
    return success();
  });
}

LogicalResult emitHostObject(ModuleOp module, StringRef name, llvm::raw_ostream &os) {
  return withHostLLVM(module, name, [&](llvm::Module &m) -> LogicalResult {
    FailureOr<std::string> object = emitObject(m, module.getLoc());
    if (failed(object))
      return failure();
    os << *object;
    return success();
  });
}

/// The most weight bytes --embed-weights takes (an object file section).
static constexpr uint64_t kMaxEmbeddedBytes = uint64_t(16) << 30;

/// Checks that the safetensors `bytes` hold every weight of `plan` with its
/// dtype and shape, the way the runtime will bind them; tensors the model
/// does not use are a warning.
static LogicalResult checkWeights(const HostPlan &plan, StringRef bytes,
                                  StringRef path, Location loc) {
  dynrt_weights_t *weights = nullptr;
  dynrt_status_t status =
      dynrt_weights_open_memory(bytes.data(), bytes.size(), &weights);
  auto release = llvm::make_scope_exit([&] {
    dynrt_status_free(status);
    dynrt_weights_release(weights);
  });
  if (status)
    return emitError(loc, "the weights to embed ('")
           << path << "') are not a valid safetensors file: "
           << dynrt_status_message(status);
  std::vector<dynrt_param_spec_t> specs;
  for (const TensorSpec &w : plan.weights) {
    dynrt_param_spec_t spec{};
    spec.name = w.name.c_str();
    spec.dtype = dynrtDtype(w.type);
    spec.rank = (int32_t)w.shape.size();
    for (auto [i, d] : llvm::enumerate(w.shape))
      spec.shape[i] = d;
    specs.push_back(spec);
  }
  std::vector<const void *> data(specs.size());
  status = dynrt_weights_bind(weights, specs.data(), specs.size(), data.data());
  if (status)
    return emitError(loc, "the weights to embed ('")
           << path << "') do not match the model: "
           << dynrt_status_message(status);
  llvm::StringSet<> used;
  for (const TensorSpec &w : plan.weights)
    used.insert(w.name);
  std::vector<std::string> unused = dynrt::unusedTensors(
      weights, [&](const char *name) { return used.contains(name); });
  if (!unused.empty())
    emitWarning(loc) << "the weights to embed ('" << path << "') hold "
                     << unused.size() << " tensor(s) the model does not use, "
                     << "e.g. '" << dynrt::clipped(unused.front()) << "'";
  return success();
}

LogicalResult emitLibrary(ModuleOp module, const LibraryOptions &options,
                          LibraryStats &stats) {
  Location loc = module.getLoc();
  std::string name = modelName(options.outputBase);
  FailureOr<HostPlan> plan = planHost(module, name);
  if (failed(plan))
    return failure();
  stats.arenaBytes = plan->arenaBytes;
  stats.numKernels = plan->kernels.size();
  for (const TensorSpec &w : plan->weights)
    stats.weightBytes += w.bytes();

  std::string target = options.kernelTarget == "host"
                           ? codegen::hostKernelTarget()
                           : options.kernelTarget;
  std::string targetError;
  if (!codegen::isValidKernelTarget(target, targetError))
    return emitError(loc, targetError);
  plan->device = codegen::isCudaTarget(target) ? 1 : 0;
  if (options.bf16Gemms && options.bf16WeightStorage && !plan->device) {
    if (failed(planBf16Weights(*plan, target, options.packWeights)))
      return failure();
    for (auto [w, storage] : llvm::zip(plan->weights, plan->weightStorage)) {
      if (storage == DYNRT_BF16 || storage == DYNRT_STORAGE_BF16_PANELS) {
        ++stats.bf16Weights;
        stats.bf16WeightBytes += w.bytes() / 2;
      }
      if (storage == DYNRT_STORAGE_BF16_PANELS) {
        ++stats.panelWeights;
        stats.panelWeightBytes += w.bytes() / 2;
      }
    }
  } else if (options.packWeights && !options.bf16Gemms && !plan->device) {
    if (failed(planPanelWeights(*plan, target, {})))
      return failure();
    for (auto [w, storage] : llvm::zip(plan->weights, plan->weightStorage))
      if (storage == DYNRT_STORAGE_PANELS ||
          storage == DYNRT_STORAGE_PANELS_COLS) {
        ++stats.panelWeights;
        stats.panelWeightBytes += w.bytes();
      }
  }

  std::unique_ptr<llvm::MemoryBuffer> embedded;
  if (!options.embedWeights.empty()) {
    auto file = readBounded(options.embedWeights, kMaxEmbeddedBytes,
                            /*regularOnly=*/true);
    if (!file)
      return emitError(loc, "cannot read the weights to embed: ")
             << llvm::toString(file.takeError());
    embedded = std::move(*file);
    // Checked now, not at load time on the target.
    if (failed(checkWeights(*plan, embedded->getBuffer(),
                            options.embedWeights, plan->entry.getLoc())))
      return failure();
  }

  // Objects, in memory: host code, kernels, the Halide runtime. The
  // kernels first: the host code's descriptor holds what they report.
  std::vector<std::pair<std::string, std::string>> objects;
  TempDir temp("dyncc");
  if (temp.path().empty())
    return emitError(loc, "cannot create a temporary directory");
  StringRef tmpDir = temp.path();
  auto readObject = [&](const std::string &path, const std::string &member) -> LogicalResult {
    auto buffer = llvm::MemoryBuffer::getFile(path);
    if (!buffer)
      return emitError(loc, "cannot read '") << path << "'";
    objects.push_back({member, (*buffer)->getBuffer().str()});
    return success();
  };
  plan->kernelFlops.assign(plan->kernels.size(), 0.0);
  for (func::FuncOp k : plan->kernels) {
    if (k->hasAttr(kBuiltinAttr))
      continue;
    FailureOr<const kir::Kernel *> extracted =
        kernelIR(*plan, plan->kernelIndex.lookup(k));
    if (failed(extracted))
      return failure();
    std::optional<kir::Kernel> kernel = **extracted; // named and typed below
    kernel->name = name + "_" + k.getSymName().str();
    // Inputs that receive weights kept as bf16 (planBf16Weights).
    size_t position = 0;
    for (kir::Tensor &t : kernel->tensors)
      if (t.role == kir::Tensor::Role::Input &&
          plan->inputBf16(plan->kernelIndex.lookup(k), position++))
        t.type = kir::ElemType::BF16;
    std::string path = (tmpDir + "/" + kernel->name + ".o").str();
    std::string error;
    codegen::KernelOptions kernelOptions;
    kernelOptions.bf16Gemms = options.bf16Gemms;
    kernelOptions.amxEntry = options.amxEntry;
    // Inputs that receive weights kept in panels (planPanelWeights).
    size_t index = plan->kernelIndex.lookup(k);
    if (index < plan->kernelInputsPanels.size())
      kernelOptions.panelInputs = plan->kernelInputsPanels[index];
    codegen::KernelReport report;
    if (!codegen::compileKernel(*kernel, target, path, error, &report,
                                kernelOptions))
      return k.emitError("cannot compile kernel: ") << error;
    llvm::append_range(stats.gemms, report.gemms);
    if (report.flops > 0)
      stats.kernelFlops.emplace_back(kernel->name, report.flops);
    plan->kernelFlops[index] = report.flops;
    if (failed(readObject(path, kernel->name + ".o")))
      return failure();
  }
  {
    llvm::LLVMContext llvmCtx;
    FailureOr<std::unique_ptr<llvm::Module>> host = translateHost(
        *plan, llvmCtx, embedded ? embedded->getBuffer() : StringRef());
    if (failed(host))
      return failure();
    FailureOr<std::string> hostObject = emitObject(**host, loc);
    if (failed(hostObject))
      return failure();
    objects.insert(objects.begin(), {name + "_host.o", *hostObject});
  }
  {
    std::string path = (tmpDir + "/halide_runtime.o").str();
    std::string error;
    if (!codegen::compileRuntime(target, path, error))
      return emitError(loc, "cannot compile the Halide runtime: ") << error;
    if (failed(readObject(path, name + "_halide_runtime.o")))
      return failure();
  }

  // The archive: our objects, then libdynrt's.
  std::vector<llvm::NewArchiveMember> members;
  for (auto &[member, bytes] : objects)
    members.emplace_back(llvm::MemoryBufferRef(bytes, member));
  std::unique_ptr<llvm::MemoryBuffer> runtimeBuffer;
  std::unique_ptr<llvm::object::Archive> runtime;
  if (!options.runtimeArchive.empty()) {
    auto buffer = llvm::MemoryBuffer::getFile(options.runtimeArchive);
    if (!buffer)
      return emitError(loc, "cannot read the runtime '")
             << options.runtimeArchive << "'";
    runtimeBuffer = std::move(*buffer);
    auto archive = llvm::object::Archive::create(runtimeBuffer->getMemBufferRef());
    if (!archive)
      return emitError(loc, "'") << options.runtimeArchive << "' is not an archive: "
                                 << llvm::toString(archive.takeError());
    runtime = std::move(*archive);
    llvm::Error err = llvm::Error::success();
    for (const llvm::object::Archive::Child &child : runtime->children(err)) {
      auto member = llvm::NewArchiveMember::getOldMember(child, true);
      if (!member)
        return emitError(loc, "bad runtime archive member: ")
               << llvm::toString(member.takeError());
      members.push_back(std::move(*member));
    }
    if (err)
      return emitError(loc, "bad runtime archive: ") << llvm::toString(std::move(err));
  }
  auto archive = llvm::writeArchiveToBuffer(
      members, llvm::SymtabWritingMode::NormalSymtab,
      llvm::object::Archive::K_GNU, /*Deterministic=*/true, /*Thin=*/false);
  if (!archive)
    return emitError(loc, "cannot build the archive: ")
           << llvm::toString(archive.takeError());

  // A shared object: the system linker joins the objects and the runtime.
  std::string sharedObject;
  if (options.shared) {
    llvm::SmallString<128> archivePath(tmpDir);
    llvm::sys::path::append(archivePath, "lib" + name + ".a");
    llvm::SmallString<128> soPath(tmpDir);
    llvm::sys::path::append(soPath, "lib" + name + ".so");
    if (failed(writeFile(archivePath, (*archive)->getBuffer(), loc)))
      return failure();
    auto cc = llvm::sys::findProgramByName("cc");
    if (!cc)
      return emitError(loc, "--shared needs a C compiler driver ('cc') to "
                            "link the shared object");
    llvm::SmallVector<llvm::StringRef> args{
        *cc, "-shared", "-o", soPath, "-Wl,--whole-archive", archivePath,
        "-Wl,--no-whole-archive", "-lstdc++", "-lpthread", "-ldl",
        "-lm"};
    std::string linkError;
    int rc = llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, {}, 0, 0,
                                       &linkError);
    if (rc != 0)
      return emitError(loc, "linking the shared object failed (")
             << rc << "): " << linkError;
    auto so = llvm::MemoryBuffer::getFile(soPath);
    if (!so)
      return emitError(loc, "cannot read the linked shared object");
    sharedObject = (*so)->getBuffer().str();
  }

  // Everything is ready: write the files, all or nothing (the library
  // last, so that a header never describes a library that is not there).
  llvm::StringRef dir = llvm::sys::path::parent_path(options.outputBase);
  auto inDir = [&](const std::string &file) {
    llvm::SmallString<128> p(dir);
    llvm::sys::path::append(p, file);
    return std::string(p);
  };
  if (!dir.empty() && llvm::sys::fs::create_directories(dir))
    return emitError(loc, "cannot create directory '") << dir << "'";
  OutputFiles outputs;
  if (!options.runtimeHeader.empty()) {
    auto header = llvm::MemoryBuffer::getFile(options.runtimeHeader);
    if (!header)
      return emitError(loc, "cannot read '") << options.runtimeHeader << "'";
    outputs.add(inDir("dynrt.h"), (*header)->getBuffer().str());
  }
  outputs.add(inDir(name + ".h"),
              headerText(*plan, llvm::sys::path::filename(options.source),
                         options.kernelTarget));
  if (options.shared)
    outputs.add(inDir("lib" + name + ".so"), std::move(sharedObject),
                /*executable=*/true);
  else
    outputs.add(inDir("lib" + name + ".a"), (*archive)->getBuffer().str());
  if (llvm::Error err = outputs.commit())
    return emitError(loc, "cannot write the library: ")
           << llvm::toString(std::move(err));
  return success();
}

} // namespace dyncc
