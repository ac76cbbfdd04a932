//===- EmitHalide.cpp - KernelIR to Halide pipelines ----------------------===//
//
// Every stage (linalg.generic) becomes a Halide Func over its parallel loops,
// with an RDom over its reduction loops; loads follow the affine accesses.
// Schedules by kernel kind: results that are stored (kernel outputs,
// reductions) are computed at root, vectorized along the innermost
// dimension and parallel along the outermost; elementwise producers are
// inlined into their consumers.
//
//===----------------------------------------------------------------------===//

#include "codegen/EmitHalide.h"

#include <Halide.h>

#include <cstdlib>
#include <functional>
#include <map>

namespace dyncc::codegen {
namespace {

using namespace Halide;
using Halide::Internal::const_false;
using Halide::Internal::const_true;
using Halide::Internal::make_const;
using Halide::Internal::make_zero;

Type halideType(kir::ElemType type) {
  switch (type) {
  case kir::ElemType::F32:
    return Float(32);
  case kir::ElemType::F64:
    return Float(64);
  case kir::ElemType::I1:
    return Bool();
  case kir::ElemType::I8:
    return Int(8);
  case kir::ElemType::I16:
    return Int(16);
  case kir::ElemType::I32:
    return Int(32);
  case kir::ElemType::I64:
    return Int(64);
  }
  return Float(32);
}

/// Halide's integer division rounds toward -inf; arith.divsi toward zero.
Expr truncDiv(Expr a, Expr b) {
  Expr q = a / b;
  return select((a % b != 0) && ((a < 0) != (b < 0)), q + 1, q);
}

Expr isNan(Expr x) { return x != x; }

Expr compareF(int pred, Expr a, Expr b) {
  // arith::CmpFPredicate, in declaration order.
  switch (pred) {
  case 0:
    return const_false();
  case 1:
    return a == b;
  case 2:
    return a > b;
  case 3:
    return a >= b;
  case 4:
    return a < b;
  case 5:
    return a <= b;
  case 6:
    return a < b || a > b;
  case 7:
    return !isNan(a) && !isNan(b);
  case 8:
    return !(a < b || a > b);
  case 9:
    return !(a <= b);
  case 10:
    return !(a < b);
  case 11:
    return !(a >= b);
  case 12:
    return !(a > b);
  case 13:
    return a != b;
  case 14:
    return isNan(a) || isNan(b);
  default:
    return const_true();
  }
}

Expr compareI(int pred, Expr a, Expr b) {
  // arith::CmpIPredicate, in declaration order.
  auto u = [](Expr x) { return cast(UInt(x.type().bits()), x); };
  switch (pred) {
  case 0:
    return a == b;
  case 1:
    return a != b;
  case 2:
    return a < b;
  case 3:
    return a <= b;
  case 4:
    return a > b;
  case 5:
    return a >= b;
  case 6:
    return u(a) < u(b);
  case 7:
    return u(a) <= u(b);
  case 8:
    return u(a) > u(b);
  default:
    return u(a) >= u(b);
  }
}

class Builder {
public:
  Builder(const kir::Kernel &kernel, const Target &target)
      : kernel(kernel), target(target) {}

  /// Builds the pipeline; `error` is set on failure.
  bool build(std::string &error) {
    try {
      for (size_t t = 0; t < kernel.tensors.size(); ++t) {
        const kir::Tensor &tensor = kernel.tensors[t];
        if (tensor.role == kir::Tensor::Role::Input) {
          ImageParam p(halideType(tensor.type), (int)tensor.shape.size(),
                       kernel.name + "_in" + std::to_string(params.size()));
          constrainDense(p.parameter(), tensor.shape);
          paramOf[t] = params.size();
          params.push_back(p);
        }
      }
      stageFuncs.resize(kernel.stages.size());
      for (size_t s = 0; s < kernel.stages.size(); ++s)
        if (!buildStage(s, error))
          return false;
      for (int t : kernel.outputs) {
        Func out = tensorFunc(t);
        outputs.push_back(out);
      }
      schedule();
      for (size_t i = 0; i < outputs.size(); ++i)
        constrainDense(outputs[i].output_buffer().parameter(),
                       kernel.tensors[kernel.outputs[i]].shape);
      return true;
    } catch (const Halide::Error &e) {
      error = std::string("Halide: ") + e.what();
      return false;
    }
  }

  std::vector<ImageParam> params;
  std::vector<Func> outputs;

private:
  const kir::Kernel &kernel;
  Target target;
  std::map<size_t, size_t> paramOf;
  std::vector<Func> stageFuncs;
  std::vector<std::vector<Var>> stageVars; // pure vars, innermost first
  std::map<int, Func> outputWrappers;

  /// Dense row-major with static shape, and no alignment assumed beyond
  /// the element: callers' buffers and weights inside a safetensors file may
  /// sit anywhere (Halide would otherwise emit aligned vector loads).
  static void constrainDense(Internal::Parameter p,
                             const std::vector<int64_t> &shape) {
    p.set_host_alignment(p.type().bytes());
    int rank = (int)shape.size();
    int64_t stride = 1;
    for (int d = 0; d < rank; ++d) {
      int64_t extent = shape[rank - 1 - d];
      p.set_min_constraint(d, 0);
      p.set_extent_constraint(d, (int)extent);
      p.set_stride_constraint(d, (int)stride);
      stride *= extent;
    }
  }

  /// Value of tensor `t` at `coords` (outermost first).
  Expr read(int t, const std::vector<Expr> &coords) {
    std::vector<Expr> args(coords.rbegin(), coords.rend());
    const kir::Tensor &tensor = kernel.tensors[t];
    if (tensor.role == kir::Tensor::Role::Input)
      return params[paramOf.at(t)](args);
    Func f = stageFuncs[tensor.stage];
    if (f.outputs() > 1)
      return f(args)[tensor.result];
    return f(args);
  }

  /// A Func holding tensor `t` (a wrapper for one element of a tuple stage).
  Func tensorFunc(int t) {
    const kir::Tensor &tensor = kernel.tensors[t];
    Func f = stageFuncs[tensor.stage];
    if (f.outputs() == 1)
      return f;
    auto it = outputWrappers.find(t);
    if (it != outputWrappers.end())
      return it->second;
    Func w(kernel.name + "_out" + std::to_string(t));
    std::vector<Var> vars = stageVars[tensor.stage];
    std::vector<Expr> args(vars.begin(), vars.end());
    w(vars) = f(args)[tensor.result];
    outputWrappers[t] = w;
    return w;
  }

  bool buildStage(size_t s, std::string &error) {
    const kir::Stage &stage = kernel.stages[s];
    size_t numLoops = stage.loopExtents.size();
    std::vector<Expr> loops(numLoops);
    std::vector<Var> pureVars(numLoops);
    Region reductionRegion;
    std::vector<size_t> reductionLoops;
    for (size_t l = 0; l < numLoops; ++l) {
      if (stage.isReduction[l]) {
        reductionRegion.push_back(Range(0, (int)stage.loopExtents[l]));
        reductionLoops.push_back(l);
      } else {
        pureVars[l] = Var("l" + std::to_string(l));
        loops[l] = pureVars[l];
      }
    }
    RDom r;
    if (!reductionLoops.empty()) {
      r = RDom(reductionRegion);
      for (size_t i = 0; i < reductionLoops.size(); ++i)
        loops[reductionLoops[i]] = r[(int)i];
    }

    // Output coordinates: each output dim is one parallel loop.
    const kir::Access &out0 = stage.outputs.front();
    std::vector<Var> outVars; // outermost first
    for (const kir::AffineDim &d : out0.dims) {
      size_t loop = 0;
      while (loop < numLoops && d.coeffs[loop] == 0)
        ++loop;
      if (loop == numLoops || stage.isReduction[loop]) {
        error = "kernel " + kernel.name + ": an output dimension follows a "
                "reduction loop";
        return false;
      }
      outVars.push_back(pureVars[loop]);
    }
    std::vector<Var> args(outVars.rbegin(), outVars.rend());
    std::vector<Expr> outCoords(outVars.begin(), outVars.end());
    stageVars.push_back(args);

    Func f(kernel.name + "_s" + std::to_string(s));
    stageFuncs[s] = f;
    size_t numOutputs = stage.outputs.size();
    std::vector<Expr> inits(numOutputs);
    for (size_t o = 0; o < numOutputs; ++o) {
      Type type = halideType(kernel.tensors[stage.outputs[o].tensor].type);
      inits[o] = stage.inits[o] >= 0 ? read(stage.inits[o], outCoords)
                                     : Expr(make_zero(type));
      inits[o] = cast(type, inits[o]);
    }
    auto define = [&](const std::vector<Expr> &values) {
      if (numOutputs == 1)
        f(args) = values[0];
      else
        f(args) = Tuple(values);
    };

    if (reductionLoops.empty()) {
      define(evaluate(stage, loops, inits));
      return true;
    }
    define(inits);
    std::vector<Expr> accs(numOutputs);
    std::vector<Expr> argExprs(args.begin(), args.end());
    for (size_t o = 0; o < numOutputs; ++o)
      accs[o] = numOutputs == 1 ? Expr(f(argExprs)) : f(argExprs)[(int)o];
    define(evaluate(stage, loops, accs));
    return true;
  }

  std::vector<Expr> evaluate(const kir::Stage &stage,
                             const std::vector<Expr> &loops,
                             const std::vector<Expr> &accs) {
    std::vector<Expr> v(stage.exprs.size());
    auto affine = [&](const kir::AffineDim &d) {
      Expr e = (int)d.offset;
      for (size_t l = 0; l < d.coeffs.size(); ++l)
        if (d.coeffs[l] != 0)
          e = e + loops[l] * (int)d.coeffs[l];
      return simplify(e);
    };
    for (size_t i = 0; i < stage.exprs.size(); ++i) {
      const kir::Expr &e = stage.exprs[i];
      Type type = halideType(e.type);
      auto a = [&](int k) { return v[e.args[k]]; };
      using kir::OpCode;
      switch (e.op) {
      case OpCode::Load: {
        const kir::Access &acc = stage.inputs[e.index];
        std::vector<Expr> coords;
        for (const kir::AffineDim &d : acc.dims)
          coords.push_back(affine(d));
        v[i] = read(acc.tensor, coords);
        break;
      }
      case OpCode::Acc:
        v[i] = accs[e.index];
        break;
      case OpCode::LoopIndex:
        v[i] = cast(type, loops[e.index]);
        break;
      case OpCode::Const:
        v[i] = type.is_float() ? make_const(type, e.fval)
                               : make_const(type, e.ival);
        break;
      case OpCode::Extract: {
        const kir::Tensor &table = kernel.tensors[e.index];
        std::vector<Expr> coords;
        for (size_t d = 0; d < e.args.size(); ++d)
          coords.push_back(clamp(cast<int>(a((int)d)), 0,
                                 (int)table.shape[d] - 1));
        v[i] = read((int)e.index, coords);
        break;
      }
      case OpCode::AddF:
      case OpCode::AddI:
        v[i] = a(0) + a(1);
        break;
      case OpCode::SubF:
      case OpCode::SubI:
        v[i] = a(0) - a(1);
        break;
      case OpCode::MulF:
      case OpCode::MulI:
        v[i] = a(0) * a(1);
        break;
      case OpCode::DivF:
        v[i] = a(0) / a(1);
        break;
      case OpCode::PowF:
        v[i] = pow(a(0), a(1));
        break;
      case OpCode::MaximumF:
        v[i] = select(isNan(a(0)), a(0),
                      select(isNan(a(1)), a(1), max(a(0), a(1))));
        break;
      case OpCode::MinimumF:
        v[i] = select(isNan(a(0)), a(0),
                      select(isNan(a(1)), a(1), min(a(0), a(1))));
        break;
      case OpCode::MaxNumF:
        v[i] = select(isNan(a(0)), a(1),
                      select(isNan(a(1)), a(0), max(a(0), a(1))));
        break;
      case OpCode::MinNumF:
        v[i] = select(isNan(a(0)), a(1),
                      select(isNan(a(1)), a(0), min(a(0), a(1))));
        break;
      case OpCode::NegF:
        v[i] = -a(0);
        break;
      case OpCode::Exp:
        v[i] = exp(a(0));
        break;
      case OpCode::Log:
        v[i] = log(a(0));
        break;
      case OpCode::Tanh:
        v[i] = tanh(a(0));
        break;
      case OpCode::Erf:
        v[i] = erf(a(0));
        break;
      case OpCode::Sqrt:
        v[i] = sqrt(a(0));
        break;
      case OpCode::Rsqrt:
        v[i] = make_const(type, 1.0) / sqrt(a(0));
        break;
      case OpCode::AbsF:
        v[i] = abs(a(0));
        break;
      case OpCode::CmpF:
        v[i] = compareF(e.pred, a(0), a(1));
        break;
      case OpCode::CmpI:
        v[i] = compareI(e.pred, a(0), a(1));
        break;
      case OpCode::DivSI:
        v[i] = truncDiv(a(0), a(1));
        break;
      case OpCode::RemSI:
        v[i] = a(0) - a(1) * truncDiv(a(0), a(1));
        break;
      case OpCode::AndI:
        v[i] = a(0).type().is_bool() ? (a(0) && a(1)) : (a(0) & a(1));
        break;
      case OpCode::OrI:
        v[i] = a(0).type().is_bool() ? (a(0) || a(1)) : (a(0) | a(1));
        break;
      case OpCode::XOrI:
        v[i] = a(0).type().is_bool() ? (a(0) != a(1)) : (a(0) ^ a(1));
        break;
      case OpCode::Select:
        v[i] = select(a(0), a(1), a(2));
        break;
      case OpCode::Cast: {
        Expr src = a(0);
        if (e.unsignedSource && src.type().is_int())
          src = cast(UInt(src.type().bits()), src);
        v[i] = cast(type, src);
        break;
      }
      }
    }
    std::vector<Expr> results;
    for (int y : stage.yields)
      results.push_back(v[y]);
    return results;
  }

  /// Computes `f` at root, vectorized along the innermost dimension and
  /// parallel along the outermost, for its pure and update definitions.
  /// Tails: a pure definition shifts its last vector inwards (recomputing a
  /// few points is harmless); an update may not run twice on a point, so it
  /// takes the widest vector that divides the extent, or none. (Predicated
  /// tails are avoided: Halide 14 on AVX-512 was seen to read past buffers.)
  void scheduleRoot(Func f, const std::vector<Var> &vars,
                    const std::vector<int64_t> &shapeOuterFirst, Type type) {
    f.compute_root();
    size_t rank = vars.size();
    if (rank == 0)
      return;
    int natural = target.natural_vector_size(type);
    int64_t inner = shapeOuterFirst.back();
    auto parallelize = [&](Stage st) {
      if (rank >= 2 && shapeOuterFirst.front() >= 2)
        st.parallel(vars[rank - 1]);
    };
    int pureWidth = natural;
    while (pureWidth > 1 && pureWidth > inner)
      pureWidth /= 2;
    if (pureWidth > 1)
      f.vectorize(vars[0], pureWidth, TailStrategy::ShiftInwards);
    parallelize(f);
    for (int u = 0; u < f.num_update_definitions(); ++u) {
      int width = natural;
      while (width > 1 && inner % width != 0)
        width /= 2;
      bool scheduled = width > 1 || (rank >= 2 && shapeOuterFirst.front() >= 2);
      if (width > 1)
        f.update(u).vectorize(vars[0], width);
      parallelize(f.update(u));
      if (!scheduled)
        f.update(u).unscheduled(); // serial on purpose: tiny or odd extents
    }
  }

  void schedule() {
    std::vector<bool> stored(kernel.stages.size(), false);
    for (int t : kernel.outputs)
      stored[kernel.tensors[t].stage] = true;
    for (size_t s = 0; s < kernel.stages.size(); ++s) {
      const kir::Stage &stage = kernel.stages[s];
      bool reduces = false;
      for (bool r : stage.isReduction)
        reduces |= r;
      if (!(stored[s] || reduces || stage.outputs.size() > 1))
        continue; // elementwise producers are inlined into consumers
      const kir::Tensor &out = kernel.tensors[stage.outputs.front().tensor];
      scheduleRoot(stageFuncs[s], stageVars[s], out.shape,
                   halideType(out.type));
    }
    for (auto &[t, w] : outputWrappers)
      w.compute_root();
  }
};

Target parseTarget(const std::string &target) {
  return Target(target);
}

} // namespace

bool compileKernel(const kir::Kernel &kernel, const std::string &target,
                   const std::string &objectPath, std::string &error) {
  Builder b(kernel, parseTarget(target));
  if (!b.build(error))
    return false;
  try {
    std::vector<Argument> args(b.params.begin(), b.params.end());
    Pipeline p(b.outputs);
    // Debugging aid: the lowered Halide statement of every kernel.
    if (const char *dir = std::getenv("DYNCC_HALIDE_STMT_DIR"))
      p.compile_to_lowered_stmt(std::string(dir) + "/" + kernel.name + ".stmt",
                                args, Text, parseTarget(target));
    p.compile_to_object(objectPath, args, kernel.name,
                        parseTarget(target).with_feature(Target::NoRuntime));
    return true;
  } catch (const Halide::Error &e) {
    error = std::string("Halide: ") + e.what();
    return false;
  }
}

bool compileRuntime(const std::string &target, const std::string &objectPath,
                    std::string &error) {
  try {
    compile_standalone_runtime(objectPath, parseTarget(target));
    return true;
  } catch (const Halide::Error &e) {
    error = std::string("Halide: ") + e.what();
    return false;
  }
}

bool runKernel(const kir::Kernel &kernel, const std::vector<HostTensor> &inputs,
               const std::vector<HostTensor> &outputs,
               const std::string &target, std::string &error) {
  Builder b(kernel, parseTarget(target));
  if (!b.build(error))
    return false;
  auto wrap = [](const HostTensor &t) {
    std::vector<halide_dimension_t> dims;
    int rank = (int)t.shape.size();
    int32_t stride = 1;
    for (int d = 0; d < rank; ++d) {
      int32_t extent = (int32_t)t.shape[rank - 1 - d];
      dims.push_back(halide_dimension_t(0, extent, stride));
      stride *= extent;
    }
    return Buffer<>(halideType(t.type), t.data, rank, dims.data());
  };
  try {
    if (inputs.size() != b.params.size() || outputs.size() != b.outputs.size()) {
      error = "wrong number of kernel arguments";
      return false;
    }
    for (size_t i = 0; i < inputs.size(); ++i)
      b.params[i].set(wrap(inputs[i]));
    std::vector<Buffer<>> outs;
    for (const HostTensor &t : outputs)
      outs.push_back(wrap(t));
    Pipeline p(b.outputs);
    p.realize(Realization(outs), parseTarget(target));
    return true;
  } catch (const Halide::Error &e) {
    error = std::string("Halide: ") + e.what();
    return false;
  }
}

} // namespace dyncc::codegen
