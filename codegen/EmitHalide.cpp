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
#include "codegen/AttentionKernel.h"
#include "codegen/GemmKernel.h"
#include "codegen/HalideTarget.h"

#include <Halide.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>

namespace dyncc::codegen {
namespace {

using namespace Halide;
using Halide::Internal::const_false;
using Halide::Internal::const_true;
using Halide::Internal::make_const;
using Halide::Internal::make_zero;

/// Whether a tensor of `type` is read as fp32 values: f32, or a weight kept
/// as bf16 (widened when read).
bool holdsFp32(kir::ElemType type) {
  return type == kir::ElemType::F32 || type == kir::ElemType::BF16;
}

/// Whether the stage has a reduction loop.
bool reduces(const kir::Stage &stage) {
  return std::any_of(stage.isReduction.begin(), stage.isReduction.end(),
                     [](bool r) { return r; });
}

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
  case kir::ElemType::BF16:
    return BFloat(16);
  }
  return Float(32);
}

/// Halide's integer division is Euclidean (a % b >= 0): q = a / b, r = a % b.
/// arith.divsi truncates: q differs from it when r != 0 and a < 0, by one
/// towards zero.
Expr truncDiv(Expr a, Expr b) {
  Expr q = a / b;
  return select((a % b != 0) && (a < 0), q + select(b > 0, 1, -1), q);
}

/// arith.floordivsi: rounds down; the Euclidean q is one too high when
/// r != 0 and b < 0.
Expr floorDiv(Expr a, Expr b) {
  Expr q = a / b;
  return select((a % b != 0) && (b < 0), q - 1, q);
}

/// arith.ceildivsi: rounds up; the Euclidean q is one too low when r != 0
/// and b > 0.
Expr ceilDiv(Expr a, Expr b) {
  Expr q = a / b;
  return select((a % b != 0) && (b > 0), q + 1, q);
}

/// Halide's simplifier assumes floats are never NaN (x != x folds to false):
/// NaN tests and comparisons that must see NaNs are kept strict.
Expr isNan(Expr x) { return Halide::is_nan(x); }

/// A value that is NaN exactly where `x` is: `x` less its outer additions
/// and subtractions of finite constants and multiplications and divisions
/// by finite nonzero ones. A NaN test under strict_float computes its
/// operand strictly, apart from the fast-math copy the result uses: GELU's
/// erf(x / sqrt(2)) tested x / sqrt(2) with a division of its own (a tenth
/// of the FFN's up-projection's time), where testing x takes a compare.
Expr nanAlike(Expr x) {
  using namespace Halide::Internal;
  auto constant = [](const Expr &e, bool nonzero) {
    const FloatImm *c = e.as<FloatImm>();
    return c && std::isfinite(c->value) && (!nonzero || c->value != 0.0);
  };
  for (;;) {
    if (const Div *d = x.as<Div>(); d && constant(d->b, true))
      x = d->a;
    else if (const Mul *m = x.as<Mul>(); m && constant(m->b, true))
      x = m->a;
    else if (m && constant(m->a, true))
      x = m->b;
    else if (const Add *a = x.as<Add>(); a && constant(a->b, false))
      x = a->a;
    else if (a && constant(a->a, false))
      x = a->b;
    else if (const Sub *s = x.as<Sub>(); s && constant(s->b, false))
      x = s->a;
    else if (s && constant(s->a, false))
      x = s->b;
    else
      return x;
  }
}

/// tanh of a float32, vectorizable: Halide 14 lowers tanh to a call of
/// libm's tanhf per lane (an LSTM cell's 2 x 256 tanh took 8 us), while its
/// exp of a vector is its own polynomial. tanh(x) = sign(x) (1 - e) / (1 + e)
/// with e = exp(-2|x|), and the Taylor series below |x| = 1/8, where 1 - e
/// would cancel (error there < 1e-9 relative; a few ulp elsewhere; lit
/// run/tanh.test). NaN and the infinities come out as tanhf's.
Expr tanhF32(Expr x) {
  Expr ax = abs(x);
  Expr e = exp(-2.0f * ax);
  Expr far = (1.0f - e) / (1.0f + e);
  Expr x2 = x * x;
  Expr near =
      x * (1.0f + x2 * (-1.0f / 3 + x2 * (2.0f / 15 + x2 * (-17.0f / 315 +
                                                          x2 * (62.0f / 2835)))));
  // Halide's exp of NaN is finite: the NaN test, under strict_float so that
  // fast-math does not fold it away (the test alone: the rest may contract
  // and reassociate, as every other elementwise op does).
  return select(strict_float(isNan(nanAlike(x))), x,
                select(ax < 0.125f, near, select(x < 0.0f, -far, far)));
}

/// erf of a float32: Halide 14's erf (within 1e-7 of float64's) of x
/// clamped to [-4, 4], NaN for NaN. Unclamped it returned NaN for the
/// infinities (its polynomial of |x| adds terms of both signs); erf(4) is 1
/// in float32, so the clamp changes no finite result (lit run/erf.test).
Expr erfF32(Expr x) {
  return select(strict_float(isNan(nanAlike(x))), x,
                erf(clamp(x, -4.0f, 4.0f)));
}

Expr compareFLoose(int pred, Expr a, Expr b);

/// `x` as the narrower float it was widened from (a Cast of one, or a
/// constant that the narrower type `to` holds exactly, NaN and the
/// infinities included); undefined otherwise.
Expr widenedFrom(const Expr &x, Type to = Type()) {
  if (const auto *c = x.as<Internal::Cast>())
    if (c->value.type().is_float() && c->value.type().bits() < x.type().bits() &&
        (to == Type() || c->value.type() == to))
      return c->value;
  if (const auto *f = x.as<Internal::FloatImm>())
    if (to.is_float() && to.bits() == 32) {
      float narrow = (float)f->value;
      if ((double)narrow == f->value || std::isnan(f->value))
        return make_const(to, f->value);
    }
  return Expr();
}

Expr compareF(int pred, Expr a, Expr b) {
  // A comparison of floats widened from narrower ones (torch-mlir's SDPA
  // tests its float32 scores for -inf in float64): the same result on the
  // narrow values, since widening is exact and keeps the order and NaN,
  // without converting every element twice.
  if (Expr na = widenedFrom(a); na.defined())
    if (Expr nb = widenedFrom(b, na.type()); nb.defined())
      return compareF(pred, na, nb);
  if (Expr nb = widenedFrom(b); nb.defined())
    if (Expr na = widenedFrom(a, nb.type()); na.defined())
      return compareF(pred, na, nb);
  // Ordered comparisons are false on NaN at run time anyway; the predicates
  // that are about NaN must not be folded by fast-math assumptions.
  bool aboutNaN = pred == 6 || pred == 7 || pred >= 8;
  return aboutNaN ? strict_float(compareFLoose(pred, a, b))
                  : compareFLoose(pred, a, b);
}

Expr compareFLoose(int pred, Expr a, Expr b) {
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

/// --precision=bf16: GEMMs with fewer output columns stay fp32.
constexpr int kBf16MinColumns = 32;

/// A root stage with fewer points (its loops' extents multiplied: outputs
/// times reduction extents) runs on one thread: handing out parallel tasks
/// costs about 0.6 us (the runtime's pool, 2 cores), more than such a stage
/// takes alone. Matches the Dot GEMMs' serial threshold in MACs (GemmKernel).
constexpr int64_t kParallelMinPoints = 1 << 14;
/// The points a parallel task of an elementwise or reduction stage takes
/// at least (parallelOuter).
constexpr int64_t kTaskMinPoints = 1 << 12;

class Builder {
public:
  Builder(const kir::Kernel &kernel, const Target &target,
          const KernelOptions &options)
      : kernel(kernel), target(target), options(options) {}

  /// Builds the pipeline; `error` is set on failure.
  bool build(std::string &error) {
    try {
      numberInputs();
      for (size_t t = 0; t < kernel.tensors.size(); ++t) {
        const kir::Tensor &tensor = kernel.tensors[t];
        if (tensor.role == kir::Tensor::Role::Input) {
          // A weight kept in panels is read through its flat view.
          std::vector<int64_t> shape =
              panelStorageOf((int)t) != PanelStorage::None
                  ? panelView(tensor.shape)
                  : tensor.shape;
          ImageParam p(halideType(tensor.type), (int)shape.size(),
                       kernel.name + "_in" + std::to_string(params.size()));
          constrainDense(p.parameter(), shape);
          params.push_back(p);
        }
      }
      stageFuncs.resize(kernel.stages.size());
      stageVars.resize(kernel.stages.size());
      stageRDoms.resize(kernel.stages.size());
      built.assign(kernel.stages.size(), false);
      if (!tryAttention(error) && !error.empty())
        return false;
      for (size_t s = 0; s < kernel.stages.size(); ++s)
        if (!ensureStage(s, error))
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
  /// One line per GEMM built: its shape and schedule (--stats).
  std::vector<std::string> gemmNotes;
  /// The FLOPs of one call of the kernel's GEMMs and attention products
  /// (2 per multiply-add, every row: KernelReport::flops).
  double flops = 0;
  /// Whether a GEMM of the kernel multiplies bf16 operands (its target
  /// then needs bf16KernelTarget's feature for vdpbf16ps).
  bool bf16Gemm = false;

private:
  const kir::Kernel &kernel;
  Target target;
  KernelOptions options;
  std::map<size_t, size_t> paramOf;
  std::vector<Func> stageFuncs;
  /// Stages whose Func buildGemm made (and scheduled).
  std::set<size_t> gemmStages;
  /// Stages fused into a GEMM's epilogue: never materialized.
  std::set<size_t> fusedStages;
  /// While evaluating an epilogue: reads of this tensor at the output point
  /// are the accumulator.
  int accTensor = -1;
  Expr accValue;
  std::vector<std::vector<Var>> stageVars; // pure vars, innermost first
  std::vector<RDom> stageRDoms;            // a reduction stage's loops
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
  /// Coordinate `d` of a gather from tensor `t` at `index` (an integer read
  /// from data): checked, so that an index outside the dimension fails the
  /// run with a message (PyTorch raises there too) instead of reading a
  /// neighbour; clamped as well, so that no lane reads out of bounds while
  /// the failure is reported.
  Expr gatherIndex(int t, size_t d, Expr index) {
    const kir::Tensor &table = kernel.tensors[t];
    int extent = (int)table.shape[d];
    Expr wide = cast(Int(64), index);
    Expr ok = wide >= 0 && wide < make_const(Int(64), extent);
    return require(ok, clamp(cast<int>(index), 0, extent - 1), "- gather index",
                   wide, "is out of range [0,", extent, ") in dimension",
                   (int)d);
  }

  Expr read(int t, const std::vector<Expr> &coords) {
    if (t == accTensor)
      return accValue;
    std::vector<Expr> args(coords.rbegin(), coords.rend());
    const kir::Tensor &tensor = kernel.tensors[t];
    if (tensor.role == kir::Tensor::Role::Input) {
      Expr v = params[paramOf.at(t)](args);
      // A weight stored as bfloat16 (bf16OnlyInputs): widened exactly.
      return tensor.type == kir::ElemType::BF16 ? cast(Float(32), v) : v;
    }
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


  std::vector<bool> built;

  /// The stages whose results stage `s` reads.
  std::vector<size_t> producers(const kir::Stage &st) {
    std::vector<size_t> out;
    auto add = [&](int t) {
      if (t >= 0 && kernel.tensors[t].stage >= 0)
        out.push_back(kernel.tensors[t].stage);
    };
    for (const kir::Access &a : st.inputs)
      add(a.tensor);
    for (int t : st.inits)
      add(t);
    for (const kir::Expr &e : st.exprs)
      if (e.op == kir::OpCode::Extract)
        add((int)e.index);
    return out;
  }

  /// Builds stage `s` after everything it reads; a GEMM also after what its
  /// fused epilogue reads. Fused stages are built with their GEMM.
  bool ensureStage(size_t s, std::string &error) {
    if (built[s])
      return true;
    built[s] = true;
    for (size_t p : producers(kernel.stages[s]))
      if (!ensureStage(p, error))
        return false;
    if (fusedStages.count(s))
      return true;
    if (isGemmStage(s)) {
      for (size_t c : epilogueChain(s)) {
        fusedStages.insert(c);
        built[c] = true;
        for (size_t p : producers(kernel.stages[c]))
          if (p != s && !fusedStages.count(p) && !ensureStage(p, error))
            return false;
      }
      return tryGemm(s);
    }
    return buildStage(s, error);
  }

  static bool hasLoop(const std::vector<int> &v, int l) {
    return std::find(v.begin(), v.end(), l) != v.end();
  }

  /// Whether stage `s` is out = init + sum_k A * B, and if so builds it with
  /// buildGemm, fusing the chain of elementwise stages that consume it (and
  /// nothing else) into the GEMM's epilogue.
  bool isGemmStage(size_t s) { return analyzeGemm(s, nullptr); }

  bool tryGemm(size_t s) { return analyzeGemm(s, this); }

  /// One factor of a GEMM's product: tensor `tensor` indexed per dimension
  /// by loop loops[d], either directly (tables[d] < 0) or through the 1-D
  /// table tensor tables[d] read at that loop (the expert of a dropless MoE
  /// block: W[block_expert[b], k, n]).
  struct GemmOperand {
    int tensor = -1;
    std::vector<int> loops, tables;
    bool checked = false; // gathered rows: kir::Expr::checkedIndex
    /// The loops indexing the dimensions of the tensor in memory that the
    /// operand's values come from (through elementwise permuted reads), in
    /// its order; empty: `loops`.
    std::vector<int> memLoops;
    /// The stages of the permuting copies read through (never
    /// materialized) to reach `tensor`.
    std::vector<int> through;
  };

  /// If tensor `t` is made in this kernel by an elementwise stage that reads
  /// one tensor at permuted (dropped or repeated) coordinates, e.g.
  /// attention's head split (q[s, h, d] -> q[h, s, d]) or a scaled copy of
  /// it: that stage, else -1. `copy` tells whether it yields the value read
  /// unchanged, `load` which expression of the stage is the read.
  int permutedRead(int t, bool &copy, int &load) {
    const kir::Tensor &tensor = kernel.tensors[t];
    if (tensor.role != kir::Tensor::Role::Temp || tensor.stage < 0)
      return -1;
    const kir::Stage &p = kernel.stages[tensor.stage];
    if (p.outputs.size() != 1 || p.yields.size() != 1 || !p.checks.empty() ||
        reduces(p))
      return -1;
    int loads = 0;
    load = -1;
    for (size_t e = 0; e < p.exprs.size(); ++e) {
      if (p.exprs[e].op == kir::OpCode::Extract ||
          p.exprs[e].op == kir::OpCode::LoopIndex)
        return -1;
      if (p.exprs[e].op == kir::OpCode::Load) {
        ++loads;
        load = (int)e;
      }
    }
    if (loads != 1)
      return -1;
    for (const kir::AffineDim &d : p.inputs[p.exprs[load].index].dims)
      if (d.loop() < 0)
        return -1;
    for (const kir::AffineDim &d : p.outputs[0].dims)
      if (d.loop() < 0)
        return -1;
    copy = p.yields[0] == load;
    return tensor.stage;
  }

  /// The loops of a GEMM (`loops`, per dimension of tensor `t`) carried
  /// through stage `p` and its read `load` (permutedRead) to the dimensions
  /// of the tensor it reads; false if the GEMM does not index one of them.
  bool throughPermutedRead(int p, int load, std::vector<int> &loops, int &t) {
    const kir::Stage &ps = kernel.stages[p];
    std::vector<int> gemmLoop(ps.loopExtents.size(), -1);
    for (size_t d = 0; d < ps.outputs[0].dims.size(); ++d)
      gemmLoop[ps.outputs[0].dims[d].loop()] = loops[d];
    const kir::Access &src = ps.inputs[ps.exprs[load].index];
    std::vector<int> through;
    for (const kir::AffineDim &d : src.dims) {
      int l = gemmLoop[d.loop()];
      if (l < 0)
        return false;
      through.push_back(l);
    }
    loops = through;
    t = src.tensor;
    return true;
  }

  bool gemmOperand(const kir::Stage &st, int e, GemmOperand &o) {
    const kir::Expr &x = st.exprs[e];
    if (x.op == kir::OpCode::Load) {
      const kir::Access &a = st.inputs[x.index];
      o.tensor = a.tensor;
      for (const kir::AffineDim &d : a.dims) {
        int l = d.loop();
        if (l < 0)
          return false;
        o.loops.push_back(l);
        o.tables.push_back(-1);
      }
      // Read through permuting copies: the copy is never materialized
      // (nothing else reads it). Through elementwise maps of one permuted
      // read (a scaled head split), find the memory order the GEMM really
      // reads in (a transposed B is packed, not gathered); the values come
      // through their inlined Funcs.
      std::vector<int> mem = o.loops;
      bool copies = true;
      for (int t = o.tensor, p, hops = 0; hops < 16; ++hops) {
        bool copy = false;
        int load = -1;
        if ((p = permutedRead(t, copy, load)) < 0 ||
            !throughPermutedRead(p, load, mem, t))
          break;
        copies &= copy;
        if (copies) {
          o.through.push_back(p);
          o.tensor = t;
          o.loops = mem;
          o.tables.assign(mem.size(), -1);
        }
      }
      if (!copies)
        o.memLoops = mem;
      return true;
    }
    if (x.op != kir::OpCode::Extract)
      return false;
    o.tensor = (int)x.index;
    o.checked = x.checkedIndex;
    for (int arg : x.args) {
      const kir::Expr &i = st.exprs[arg];
      if (i.op == kir::OpCode::LoopIndex) {
        o.loops.push_back((int)i.index);
        o.tables.push_back(-1);
        continue;
      }
      int src = i.op == kir::OpCode::Cast ? i.args[0] : arg;
      if (st.exprs[src].op != kir::OpCode::Load)
        return false;
      const kir::Access &t = st.inputs[st.exprs[src].index];
      if (t.dims.size() != 1 || t.dims[0].loop() < 0)
        return false;
      o.loops.push_back(t.dims[0].loop());
      o.tables.push_back(t.tensor);
    }
    return true;
  }

  /// A contraction recognized by matchGemm: its operands, the loops of its
  /// batch (-1: none), rows (-1: a matrix-vector product), columns and
  /// reduction, the output's rank and the GEMM's shape.
  struct GemmMatch {
    GemmOperand a, b;
    int lb = -1, lm = -1, ln = -1, red = -1;
    size_t rank = 0;
    GemmShape shape;
  };

  /// Whether stage `s` is out = init + sum_k A * B (A reading (m, k[, b]),
  /// B (k, n[, b])); fills `g` if so.
  bool matchGemm(size_t s, GemmMatch &g) {
    if (kernel.kind != "gemm" && kernel.kind != "attention")
      return false;
    const kir::Stage &st = kernel.stages[s];
    size_t numLoops = st.loopExtents.size();
    if (st.outputs.size() != 1 || st.yields.size() != 1)
      return false;
    // A zero-sized dimension: the generic schedule handles it (the tiling
    // arithmetic of the GEMM path does not).
    for (int64_t extent : st.loopExtents)
      if (extent == 0)
        return false;
    int red = -1;
    for (size_t l = 0; l < numLoops; ++l)
      if (st.isReduction[l]) {
        if (red >= 0)
          return false;
        red = (int)l;
      }
    if (red < 0)
      return false;
    // Body: Acc + X * Y, in any order, where X and Y are loads or gathers.
    const kir::Expr &y = st.exprs[st.yields[0]];
    if (y.op != kir::OpCode::AddF || y.type != kir::ElemType::F32)
      return false;
    auto is = [&](int e, kir::OpCode op) { return st.exprs[e].op == op; };
    int acc = y.args[0], prod = y.args[1];
    if (!is(acc, kir::OpCode::Acc))
      std::swap(acc, prod);
    if (!is(acc, kir::OpCode::Acc) || !is(prod, kir::OpCode::MulF))
      return false;
    const kir::Expr &mul = st.exprs[prod];
    GemmOperand opA, opB;
    if (!gemmOperand(st, mul.args[0], opA) || !gemmOperand(st, mul.args[1], opB))
      return false;
    if (opA.tensor == opB.tensor && opA.loops == opB.loops)
      return false;

    // Output dims: [b,] m, n (outermost first).
    const kir::Access &out = st.outputs[0];
    size_t rank = out.dims.size();
    if (rank < 1 || rank > 3)
      return false;
    std::vector<int> outLoops;
    for (const kir::AffineDim &d : out.dims)
      outLoops.push_back(d.loop());
    for (int l : outLoops)
      if (l < 0)
        return false;
    // A rank-1 output is a matrix-vector product: one row (M = 1, no m loop).
    int lb = rank == 3 ? outLoops[0] : -1,
        lm = rank >= 2 ? outLoops[rank - 2] : -1, ln = outLoops[rank - 1];
    // Operands: A reads (m, k[, b]), B reads (k, n[, b]).
    auto onlyFrom = [&](const std::vector<int> &v, std::vector<int> allowed) {
      for (int l : v)
        if (!hasLoop(allowed, l))
          return false;
      return true;
    };
    auto isA = [&](const std::vector<int> &v) {
      return (lm < 0 || hasLoop(v, lm)) && hasLoop(v, red) &&
             onlyFrom(v, {lm, red, lb}) && !hasLoop(v, ln);
    };
    if (!isA(opA.loops))
      std::swap(opA, opB);
    const std::vector<int> &la = opA.loops, &lbb = opB.loops;
    if (!isA(la) || !hasLoop(lbb, ln) || !hasLoop(lbb, red) ||
        !onlyFrom(lbb, {ln, red, lb}))
      return false;
    if (!holdsFp32(kernel.tensors[opA.tensor].type) ||
        !holdsFp32(kernel.tensors[opB.tensor].type))
      return false;
    g.a = opA;
    g.b = opB;
    g.lb = lb;
    g.lm = lm;
    g.ln = ln;
    g.red = red;
    g.rank = rank;
    codegen::GemmShape &shape = g.shape;
    shape.batch = lb >= 0 ? (int)st.loopExtents[lb] : 0;
    shape.M = lm >= 0 ? (int)st.loopExtents[lm] : 1;
    shape.N = (int)st.loopExtents[ln];
    shape.K = (int)st.loopExtents[red];
    // B's innermost memory dimension decides its orientation.
    shape.transposeB =
        (opB.memLoops.empty() ? lbb : opB.memLoops).back() == red;
    // A weight kept in panels (panelInputs): read along n.
    // bf16 leaves narrow GEMMs in fp32: a MoE router's or an exit head's
    // logits (N = experts or classes), which make the decisions and whose
    // cost bf16 would not reduce (as Switch Transformer's "selective
    // precision" keeps its router in fp32).
    shape.bf16 = options.bf16Gemms && shape.N >= kBf16MinColumns;
    const PanelStorage panels = panelStorageOf(opB.tensor);
    if (((panels == PanelStorage::Rows || panels == PanelStorage::Bf16Rows) &&
         shape.transposeB) ||
        (panels == PanelStorage::Cols && !shape.transposeB)) {
      // (panelInputs gives Bf16Rows only where shape.bf16 holds, and the
      // fp32 kinds only without bf16 GEMMs.)
      if ((panels == PanelStorage::Bf16Rows) != shape.bf16)
        throw Halide::CompileError("kernel " + kernel.name +
                                   ": a weight's panel storage does not "
                                   "match its GEMM's precision");
      shape.transposeB = false;
      shape.bPanels = true;
    }
    return true;
  }

  /// The Func of matched GEMM `s`'s operand A over (k, m[, b]) (`isA`), or
  /// B over (k, n[, b]) if shape.transposeB, else (n, k[, b]); an operand
  /// without the batch loop has no b.
  Func gemmOperandFunc(size_t s, const GemmMatch &g, bool isA) {
    const kir::Stage &st = kernel.stages[s];
    Var vn("n"), vm("m"), vk("k"), vb("b");
    std::vector<Expr> loops(st.loopExtents.size());
    loops[g.ln] = vn;
    if (g.lm >= 0)
      loops[g.lm] = vm;
    loops[g.red] = vk;
    if (g.lb >= 0)
      loops[g.lb] = vb;
    const GemmOperand &o = isA ? g.a : g.b;
    std::vector<Expr> c;
    for (size_t d = 0; d < o.loops.size(); ++d) {
      if (o.tables[d] < 0) {
        c.push_back(loops[o.loops[d]]);
        continue;
      }
      // A gathered dimension: the table's entry at the loop, checked like
      // every gather.
      Expr at = read(o.tables[d], {loops[o.loops[d]]});
      c.push_back(o.checked ? gatherIndex(o.tensor, d, at)
                            : clamp(cast<int>(at), 0,
                                    (int)kernel.tensors[o.tensor].shape[d] - 1));
    }
    if (!isA && codegen::bPairs(g.shape)) {
      // bf16 pairs in panels of P along n (Bf16Rows: the matrices [N, K] of
      // bfloat16, read through panelView): the pair (kk, n, k2) at f = (t *
      // K / 2 + k2) * 2P + j * 2 + kk with t = n / P and j = n % P. The
      // Func takes (kk, j, k2, t[, b]): buildGemm splits n by its
      // micro-tile, which Halide then simplifies (a vector's n / P taken
      // here was left unsimplified: gathers).
      const int P = codegen::kPanelColumns, G = 2 * P;
      Var vkk("kk"), vk2("k2"), vj("j"), vt("t");
      std::vector<Var> vars{vkk, vj, vk2, vt};
      std::vector<Expr> at;
      if (hasLoop(o.loops, g.lb)) {
        vars.push_back(vb);
        at.push_back(vb);
      }
      at.push_back((vt * (g.shape.K / 2) + vk2) * G + vj * 2 + vkk);
      Func f(kernel.name + "_B" + std::to_string(s));
      f(vars) = read(o.tensor, at);
      return f;
    }
    std::vector<Var> vars = isA                  ? std::vector<Var>{vk, vm}
                            : g.shape.transposeB ? std::vector<Var>{vk, vn}
                                                 : std::vector<Var>{vn, vk};
    if (hasLoop(o.loops, g.lb))
      vars.push_back(vb);
    Func f(kernel.name + (isA ? "_A" : "_B") + std::to_string(s));
    if (!isA && g.shape.bPanels) {
      // B kept in panels of P along n: (n, k) at f = ((n / P) * K + k) * P
      // + n % P of its matrix ([N, K] for Rows, [K, N] for Cols), read
      // through panelView (f itself); a batch dimension stays in front.
      const int P = codegen::kPanelColumns;
      std::vector<Expr> at;
      if (hasLoop(o.loops, g.lb))
        at.push_back(vb);
      at.push_back(((vn / P) * g.shape.K + vk) * P + vn % P);
      f(vars) = read(o.tensor, at);
      return f;
    }
    f(vars) = read(o.tensor, c);
    return f;
  }

  /// The epilogue of contraction `s` (output rank `rank`): its init
  /// (unless a zero fill), then the elementwise stages of `chain`.
  codegen::GemmEpilogue gemmEpilogue(size_t s, size_t rank,
                                     std::vector<size_t> chain) {
    const kir::Stage &st = kernel.stages[s];
    int outTensor = st.outputs[0].tensor;
    int init = st.inits[0];
    const kir::Expr *fill = init >= 0 ? fillConstant(init) : nullptr;
    bool zeroInit = init < 0 || (fill && fill->fval == 0.0);
    return [this, chain, init, zeroInit, outTensor, rank](
               const Expr &accIn, const std::vector<Var> &outVars) {
      int current = outTensor;
      // outVars = (n, m[, b]); tensor coordinates are outermost first.
      std::vector<Expr> point;
      if (outVars.size() == 3)
        point.push_back(outVars[2]);
      if (rank >= 2)
        point.push_back(outVars[1]);
      point.push_back(outVars[0]);
      Expr value = accIn;
      if (!zeroInit)
        value = value + read(init, point);
      for (size_t c : chain) {
        const kir::Stage &cs = kernel.stages[c];
        std::vector<Expr> cl(cs.loopExtents.size());
        for (size_t d = 0; d < cs.outputs[0].dims.size(); ++d)
          cl[cs.outputs[0].dims[d].loop()] = point[d];
        accTensor = current;
        accValue = value;
        std::vector<Expr> inits{Expr(0.0f)};
        value = evaluate(cs, cl, inits)[0];
        accTensor = -1;
        current = cs.outputs[0].tensor;
      }
      return value;
    };
  }

  /// Recognizes the GEMM; builds it too when `self` is set.
  bool analyzeGemm(size_t s, Builder *self) {
    GemmMatch match;
    if (!matchGemm(s, match))
      return false;
    if (!self)
      return true;
    const kir::Stage &st = kernel.stages[s];
    const codegen::GemmShape &shape = match.shape;
    const int lb = match.lb, lm = match.lm;
    const size_t rank = match.rank;
    Var vn("n"), vm("m"), vk("k"), vb("b");
    std::vector<Expr> loops(st.loopExtents.size());
    loops[match.ln] = vn;
    if (lm >= 0)
      loops[lm] = vm;
    loops[match.red] = vk;
    if (lb >= 0)
      loops[lb] = vb;
    Func A = gemmOperandFunc(s, match, true),
         B = gemmOperandFunc(s, match, false);
    std::vector<size_t> chain = epilogueChain(s);
    codegen::GemmEpilogue epilogue = gemmEpilogue(s, rank, chain);
    // Rows nobody reads (kir::Stage::rowMask over the row and batch loops):
    // the GEMM may skip them.
    Func rowUsed;
    if (st.rowMask >= 0 && lm >= 0) {
      const kir::Access &mask = st.inputs[st.rowMask];
      std::vector<Expr> at;
      for (const kir::AffineDim &d : mask.dims) {
        int l = d.loop();
        if (l < 0 || (l != lm && l != lb))
          break;
        at.push_back(loops[l]);
      }
      if (at.size() == mask.dims.size()) {
        rowUsed = Func(kernel.name + "_rows" + std::to_string(s));
        std::vector<Var> v{vm};
        if (shape.batch)
          v.push_back(vb);
        rowUsed(v) = read(mask.tensor, at) >= 0;
      }
    }
    // A weight in panels, read whole and in place (an input read without a
    // gather): by the AMX extern with --amx (its bf16 pairs), else by the
    // Tiled path, which prefetches each task's next panel from it.
    codegen::GemmPanels panels;
    const GemmOperand &ob = match.b;
    if (shape.bPanels && !target.has_gpu_feature() &&
        kernel.tensors[ob.tensor].role == kir::Tensor::Role::Input &&
        std::all_of(ob.tables.begin(), ob.tables.end(),
                    [](int table) { return table < 0; })) {
      panels.weights = params[paramOf.at(ob.tensor)].parameter();
      if (codegen::bPairs(shape))
        panels.amxEntry = options.amxEntry;
    }
    codegen::GemmTiling chosen;
    Func g = codegen::buildGemm(shape, A, B, epilogue, target,
                                kernel.name + "_gemm" + std::to_string(s), {},
                                rowUsed, &chosen, panels);
    bf16Gemm |= chosen.bf16;
    flops += 2.0 * shape.M * shape.N * shape.K * std::max(1, shape.batch);
    gemmNotes.push_back(
        (shape.batch ? "b" + std::to_string(shape.batch) + " " : "") + "m" +
        std::to_string(shape.M) + " n" + std::to_string(shape.N) + " k" +
        std::to_string(shape.K) + (shape.transposeB ? " (B transposed)" : "") +
        (shape.bPanels ? " (B in panels)" : "") +
        ": " + codegen::describeGemmTiling(chosen));
    stageFuncs[s] = g;
    stageVars[s] = shape.batch ? std::vector<Var>{vn, vm, vb}
                               : std::vector<Var>{vn, vm};
    if (rank == 1) {
      // The tensor is 1-D: a view of the single row.
      g.compute_root();
      Func row(kernel.name + "_row" + std::to_string(s));
      row(vn) = g(vn, 0);
      stageFuncs[s] = g = row;
      stageVars[s] = {vn};
      if (target.has_gpu_feature())
        scheduleRootGpu(row, {vn});
    }
    gemmStages.insert(s);
    for (size_t c : chain) {
      fusedStages.insert(c);
      stageFuncs[c] = g;
      stageVars[c] = stageVars[s];
    }
    return true;
  }

  bool isKernelOutput(int t) const {
    return std::find(kernel.outputs.begin(), kernel.outputs.end(), t) !=
           kernel.outputs.end();
  }

  /// The stages that read tensor `t` (as an input, an init or a gather).
  std::vector<size_t> readersOf(int t) {
    std::vector<size_t> readers;
    for (size_t s = 0; s < kernel.stages.size(); ++s) {
      const kir::Stage &st = kernel.stages[s];
      bool reads = std::find(st.inits.begin(), st.inits.end(), t) != st.inits.end();
      for (const kir::Access &a : st.inputs)
        reads |= a.tensor == t;
      for (const kir::Expr &e : st.exprs)
        reads |= e.op == kir::OpCode::Extract && (int)e.index == t;
      if (reads)
        readers.push_back(s);
    }
    return readers;
  }

public:
  /// See codegen::bf16OnlyInputs (EmitHalide.h): per input tensor of the
  /// kernel, whether only bf16 GEMMs read it, as an operand.
  std::vector<bool> bf16OnlyInputs() {
    std::vector<bool> only;
    for (const kir::Tensor &t : kernel.tensors)
      if (t.role == kir::Tensor::Role::Input)
        only.push_back(false);
    // Attention kernels multiply in fp32 (tryAttention).
    if (!options.bf16Gemms || target.has_gpu_feature() ||
        kernel.kind == "attention")
      return only;
    numberInputs(); // matchGemm reads options.panelInputs by position
    // The bf16 GEMMs, the copies they read through, and per GEMM its
    // operands' tensors.
    std::map<size_t, std::set<int>> operandsOf;
    std::set<size_t> copies;
    for (size_t s = 0; s < kernel.stages.size(); ++s) {
      GemmMatch g;
      if (!matchGemm(s, g))
        continue;
      // The Tiled path rounds both operands, the few-row paths only B.
      codegen::GemmTiling tiling = codegen::gemmTilingFor(g.shape, target);
      std::vector<const GemmOperand *> rounded;
      if (tiling.bf16)
        rounded = {&g.a, &g.b};
      else if (tiling.bf16B)
        rounded = {&g.b};
      for (const GemmOperand *o : rounded) {
        operandsOf[s].insert(o->tensor);
        for (int c : o->through) {
          operandsOf[s].insert(kernel.stages[c].outputs[0].tensor);
          copies.insert((size_t)c);
        }
      }
    }
    // Every reader of the tensor (and of the copies made of it) is such a
    // GEMM reading it as an operand, or such a copy.
    std::function<bool(int)> onlyOperand = [&](int t) {
      std::vector<size_t> readers = readersOf(t);
      if (readers.empty())
        return false;
      for (size_t r : readers) {
        const kir::Stage &st = kernel.stages[r];
        if (copies.count(r)) {
          if (!onlyOperand(st.outputs[0].tensor))
            return false;
          continue;
        }
        auto it = operandsOf.find(r);
        if (it == operandsOf.end() || !it->second.count(t) ||
            std::find(st.inits.begin(), st.inits.end(), t) != st.inits.end())
          return false;
      }
      return true;
    };
    size_t position = 0;
    for (size_t t = 0; t < kernel.tensors.size(); ++t) {
      const kir::Tensor &tensor = kernel.tensors[t];
      if (tensor.role != kir::Tensor::Role::Input)
        continue;
      only[position++] = holdsFp32(tensor.type) && onlyOperand((int)t);
    }
    return only;
  }

  /// See codegen::panelInputs (EmitHalide.h).
  std::vector<PanelStorage> panelInputs() {
    std::vector<PanelStorage> panels;
    for (const kir::Tensor &t : kernel.tensors)
      if (t.role == kir::Tensor::Role::Input)
        panels.push_back(PanelStorage::None);
    if (target.has_gpu_feature() || kernel.kind != "gemm")
      return panels;
    const int P = codegen::kPanelColumns;
    // The GEMMs that can read their B in panels: that B and how.
    std::map<size_t, std::pair<int, PanelStorage>> panelB;
    for (size_t s = 0; s < kernel.stages.size(); ++s) {
      GemmMatch g;
      if (!matchGemm(s, g))
        continue;
      const GemmOperand &b = g.b;
      const kir::Tensor &t = kernel.tensors[b.tensor];
      const codegen::GemmShape &shape = g.shape;
      // The whole tensor, [b,] n, k or [b,] k, n, read at the loops directly.
      std::vector<int> loops{g.ln, g.red};
      std::vector<int64_t> dims{shape.N, shape.K};
      if (!shape.transposeB) {
        std::swap(loops[0], loops[1]);
        std::swap(dims[0], dims[1]);
      }
      if (shape.batch > 0) {
        loops.insert(loops.begin(), g.lb);
        dims.insert(dims.begin(), shape.batch);
      }
      bool whole = t.role == kir::Tensor::Role::Input && t.shape == dims &&
                   b.loops == loops && b.memLoops.empty() &&
                   b.through.empty() &&
                   std::all_of(b.tables.begin(), b.tables.end(),
                               [](int x) { return x < 0; });
      for (const kir::Access &a : kernel.stages[s].inputs)
        if (a.tensor == b.tensor)
          for (const kir::AffineDim &d : a.dims)
            whole &= d.loop() >= 0;
      if (!whole || shape.N % P != 0 || (shape.transposeB && shape.K % P != 0) ||
          t.type != kir::ElemType::F32)
        continue;
      // Where B as it is would take the Tiled path: a few rows keep Dot or
      // Stream, which want B's rows contiguous. The automatic choice, not
      // --tune's: a GEMM on a B in panels is not timed (docs/codegen.md),
      // and this shape, B as it is, would be timed for nothing.
      const codegen::GemmTiling tiling =
          codegen::chooseGemmTiling(shape, target);
      if (tiling.path != codegen::GemmPath::Tiled)
        continue;
      if (options.bf16Gemms) {
        // bf16 pairs: [N, K] in whole panels of pairs, a bf16 GEMM that
        // computes every row (analyzeGemm's rowUsed: none) in micro-tiles
        // whose width divides the panel's (as it then reads B: buildGemm's
        // accP).
        codegen::GemmShape inPanels = shape;
        inPanels.transposeB = false;
        inPanels.bPanels = true;
        const codegen::GemmTiling read =
            codegen::gemmTilingFor(inPanels, target);
        if (!shape.bf16 || !read.bf16 || !shape.transposeB ||
            shape.K % (2 * P) != 0 || kernel.stages[s].rowMask >= 0 ||
            P % (read.vectors * read.vectorWidth) != 0)
          continue;
        panelB[s] = {b.tensor, PanelStorage::Bf16Rows};
        continue;
      }
      panelB[s] = {b.tensor,
                   shape.transposeB ? PanelStorage::Rows : PanelStorage::Cols};
    }
    size_t position = 0;
    for (size_t t = 0; t < kernel.tensors.size(); ++t) {
      if (kernel.tensors[t].role != kir::Tensor::Role::Input)
        continue;
      std::vector<size_t> readers = readersOf((int)t);
      PanelStorage how = PanelStorage::None;
      bool only = !readers.empty() && !isKernelOutput((int)t);
      for (size_t r : readers) {
        auto it = panelB.find(r);
        const kir::Stage &st = kernel.stages[r];
        int reads = 0;
        for (const kir::Access &a : st.inputs)
          reads += a.tensor == (int)t;
        only &= it != panelB.end() && it->second.first == (int)t &&
                reads == 1 &&
                std::find(st.inits.begin(), st.inits.end(), (int)t) ==
                    st.inits.end() &&
                (how == PanelStorage::None || how == it->second.second);
        for (const kir::Expr &e : st.exprs)
          only &= !(e.op == kir::OpCode::Extract && (int)e.index == (int)t);
        if (only)
          how = it->second.second;
      }
      panels[position++] = only ? how : PanelStorage::None;
    }
    return panels;
  }

private:
  size_t readerCount(int t) { return readersOf(t).size(); }

  /// Set by tryAttention around buildStage of a per-key softmax stage
  /// whose value at a skipped key is `fill`.
  struct KeyTiled {
    size_t stage;
    const codegen::AttentionKeyTiles *tiles;
    float fill;
  };
  std::optional<KeyTiled> keyTiled;
  /// Set by tryAttention around buildStage of a per-query statistic over
  /// the keys that skipped keys leave as it is (keysLeaveAccumulators).
  std::optional<KeyTiled> keyReduced;

  /// paramOf: each input tensor's position among the inputs (its
  /// ImageParam's, in build).
  void numberInputs() {
    paramOf.clear();
    for (size_t t = 0; t < kernel.tensors.size(); ++t)
      if (kernel.tensors[t].role == kir::Tensor::Role::Input)
        paramOf.emplace(t, paramOf.size());
  }

  /// How input tensor `t` is kept (options.panelInputs, by its position
  /// among the inputs: its ImageParam's, paramOf).
  PanelStorage panelStorageOf(int t) const {
    auto it = paramOf.find(t);
    return it != paramOf.end() && it->second < options.panelInputs.size()
               ? PanelStorage(options.panelInputs[it->second])
               : PanelStorage::None;
  }

  /// The constant that tensor `t` is filled with (by a stage of no inputs
  /// that yields a constant for it), or nullptr.
  const kir::Expr *fillConstant(int t) const {
    const kir::Tensor &tensor = kernel.tensors[t];
    if (tensor.role != kir::Tensor::Role::Temp || tensor.stage < 0)
      return nullptr;
    const kir::Stage &fill = kernel.stages[tensor.stage];
    const kir::Expr &y = fill.exprs[fill.yields[tensor.result]];
    return fill.inputs.empty() && y.op == kir::OpCode::Const ? &y : nullptr;
  }

  /// Whether the scores' epilogue `chain` (after contraction c1) gives -inf
  /// for every finite Q K^T wherever it gives -inf at Q K^T = 0, and reads
  /// a tensor besides the scores (a mask): the contraction's value passes
  /// only through additions of terms that do not depend on it, subtractions
  /// of such terms, products and quotients by positive constants, and
  /// selects on conditions that do not depend on it (a scale, an additive
  /// mask, a masked_fill).
  bool additiveMask(size_t c1, const std::vector<size_t> &chain) {
    enum Kind { Free, Affine, Bad };
    int current = kernel.stages[c1].outputs[0].tensor;
    bool reads = false;
    for (size_t c : chain) {
      const kir::Stage &cs = kernel.stages[c];
      if (cs.yields.size() != 1)
        return false;
      std::vector<Kind> kind(cs.exprs.size(), Free);
      for (size_t i = 0; i < cs.exprs.size(); ++i) {
        const kir::Expr &e = cs.exprs[i];
        auto arg = [&](size_t a) { return kind[e.args[a]]; };
        auto positive = [&](size_t a) { // a constant, maybe truncated
          const kir::Expr *x = &cs.exprs[e.args[a]];
          while (x->op == kir::OpCode::Cast && x->args.size() == 1 &&
                 (x->type == kir::ElemType::F32 ||
                  x->type == kir::ElemType::F64))
            x = &cs.exprs[x->args[0]];
          return x->op == kir::OpCode::Const && x->fval > 0.0 &&
                 x->fval <= std::numeric_limits<float>::max();
        };
        bool free = std::all_of(e.args.begin(), e.args.end(),
                                [&](int a) { return kind[a] == Free; });
        bool bad = std::any_of(e.args.begin(), e.args.end(),
                               [&](int a) { return kind[a] == Bad; });
        Kind k = free ? Free : Bad;
        switch (e.op) {
        case kir::OpCode::Load:
          k = cs.inputs[e.index].tensor == current ? Affine : Free;
          reads |= k == Free;
          break;
        case kir::OpCode::Acc:
          k = Bad;
          break;
        case kir::OpCode::AddF:
          k = bad ? Bad : free ? Free : Affine;
          break;
        case kir::OpCode::SubF:
          k = arg(1) == Free ? arg(0) : Bad;
          break;
        case kir::OpCode::MulF:
          if (!free)
            k = (arg(0) == Affine && positive(1)) ||
                        (arg(1) == Affine && positive(0))
                    ? Affine
                    : Bad;
          break;
        case kir::OpCode::DivF:
          if (!free)
            k = arg(0) == Affine && positive(1) ? Affine : Bad;
          break;
        case kir::OpCode::Select:
          if (!free)
            k = arg(0) == Free && !bad ? Affine : Bad;
          break;
        default:
          break;
        }
        kind[i] = k;
      }
      if (kind[cs.yields[0]] != Affine)
        return false;
      current = cs.outputs[0].tensor;
    }
    return reads;
  }

  /// Whether the probabilities (tensor `probs`, made by the stages `middle`
  /// from the scores `scores`) are 0 at a key whose score is -inf, given
  /// finite row statistics (a softmax's max and sum over a row that keeps a
  /// key): each per-key stage is followed with its value at such a key (a
  /// class: -inf, 0, finite, or unknown), through subtractions, exp,
  /// products, quotients and selects; row statistics are finite, constants
  /// their own class. `fills` receives, per per-key fp32 tensor that is
  /// -inf or 0 at such a key, that value.
  bool probsVanishAtMaskedKeys(int scores, int probs,
                               const std::vector<size_t> &middle,
                               const std::vector<int64_t> &scoresShape,
                               std::map<int, float> &fills) {
    enum Class { NegInf, Zero, Finite, Unknown };
    auto constClass = [](const kir::Expr &c) {
      if (c.type != kir::ElemType::F32 && c.type != kir::ElemType::F64)
        return Unknown;
      double v = c.fval;
      return v == 0.0             ? Zero
             : std::isfinite(v)   ? Finite
             : v < 0 && std::isinf(v) ? NegInf
                                      : Unknown;
    };
    std::map<int, Class> classOf{{scores, NegInf}};
    auto tensorClass = [&](int t) {
      auto it = classOf.find(t);
      if (it != classOf.end())
        return it->second;
      const kir::Expr *fill = fillConstant(t);
      return fill ? constClass(*fill) : Unknown;
    };
    for (size_t s : middle) {
      const kir::Stage &st = kernel.stages[s];
      int out = st.outputs[0].tensor;
      if (kernel.tensors[out].shape != scoresShape) {
        for (const kir::Access &o : st.outputs)
          classOf[o.tensor] = Finite; // a row statistic
        continue;
      }
      if (st.outputs.size() != 1) {
        for (const kir::Access &o : st.outputs)
          classOf[o.tensor] = Unknown;
        continue;
      }
      std::vector<Class> c(st.exprs.size(), Unknown);
      for (size_t i = 0; i < st.exprs.size(); ++i) {
        const kir::Expr &e = st.exprs[i];
        auto arg = [&](size_t a) { return c[e.args[a]]; };
        Class k = Unknown;
        switch (e.op) {
        case kir::OpCode::Load: {
          const kir::Access &a = st.inputs[e.index];
          const std::vector<int64_t> &shape = kernel.tensors[a.tensor].shape;
          bool samePoint = a.dims.size() == st.outputs[0].dims.size();
          for (size_t d = 0; samePoint && d < a.dims.size(); ++d)
            samePoint = a.dims[d].loop() >= 0 &&
                        a.dims[d].loop() == st.outputs[0].dims[d].loop();
          // A per-key tensor counts at its own point only.
          k = shape != scoresShape || samePoint ? tensorClass(a.tensor)
                                                : Unknown;
          break;
        }
        case kir::OpCode::Const:
          k = constClass(e);
          break;
        case kir::OpCode::SubF:
        case kir::OpCode::AddF:
          if (arg(0) == NegInf && (arg(1) == Finite || arg(1) == Zero))
            k = NegInf;
          else if (e.op == kir::OpCode::AddF && arg(1) == NegInf &&
                   (arg(0) == Finite || arg(0) == Zero))
            k = NegInf;
          else if (arg(0) == Zero && arg(1) == Zero)
            k = Zero;
          else if (arg(0) != Unknown && arg(0) != NegInf &&
                   arg(1) != Unknown && arg(1) != NegInf)
            k = Finite;
          break;
        case kir::OpCode::Exp:
          k = arg(0) == NegInf ? Zero : arg(0) == Unknown ? Unknown : Finite;
          break;
        case kir::OpCode::MulF:
        case kir::OpCode::DivF:
          if ((arg(0) == Zero && (arg(1) == Finite || arg(1) == Zero)) ||
              (e.op == kir::OpCode::MulF && arg(1) == Zero &&
               arg(0) == Finite))
            k = Zero;
          else if ((arg(0) == Finite || arg(0) == Zero) &&
                   (arg(1) == Finite || arg(1) == Zero))
            k = Finite;
          break;
        case kir::OpCode::Select:
          k = arg(1) == arg(2) ? arg(1) : Unknown;
          break;
        default:
          break;
        }
        c[i] = k;
      }
      classOf[out] = c[st.yields[0]];
    }
    for (auto [t, c] : classOf)
      if ((c == NegInf || c == Zero) && t != scores &&
          kernel.tensors[t].shape == scoresShape &&
          kernel.tensors[t].type == kir::ElemType::F32)
        fills[t] = c == Zero ? 0.0f : -std::numeric_limits<float>::infinity();
    return tensorClass(probs) == Zero;
  }

  /// Whether reduction stage `s` of an attention's softmax (a statistic per
  /// query: a max, a sum, an all-masked test) leaves each of its
  /// accumulators as it is at a skipped key, so that it may reduce over the
  /// kept tiles of keys only (buildStage, keyReduced) with the same bits:
  /// its one reduction loop runs over the keys, its per-key operands are
  /// read at its own point, and, with those operands at their values there
  /// (`scores` -inf, the tensors of `fills` their fill, a per-key stage
  /// that reads only those evaluated at it), the update of every output
  /// folds to the accumulator: acc + 0 (the sum starting from +0, so never
  /// -0), maximumf(acc, -inf), maxnumf(acc, -inf) (every update a maxnumf
  /// from a start that is not NaN: never NaN), select on a known condition
  /// (-inf > x is false, also for NaN), and true & acc.
  bool keysLeaveAccumulators(size_t s, int scores,
                             const std::map<int, float> &fills,
                             const std::vector<int64_t> &scoresShape) {
    const kir::Stage &st = kernel.stages[s];
    int red = -1;
    for (size_t l = 0; l < st.isReduction.size(); ++l)
      if (st.isReduction[l]) {
        if (red >= 0)
          return false;
        red = (int)l;
      }
    if (red < 0 || st.loopExtents[red] != scoresShape.back())
      return false;
    struct Sym {
      enum Kind { Unknown, Acc, Num, Bool } kind = Unknown;
      int acc = -1;
      double num = 0;
      bool b = false;
    };
    const double negInf = -std::numeric_limits<double>::infinity();
    auto num = [](double v) { Sym x; x.kind = Sym::Num; x.num = v; return x; };
    auto boolean = [](bool v) { Sym x; x.kind = Sym::Bool; x.b = v; return x; };
    // The value at a skipped key of the per-key tensor `t`, read at the
    // reading stage's own point; `depth` bounds the per-key stages followed.
    std::function<Sym(const kir::Stage &, int, int)> evalStage;
    auto valueOf = [&](int t, int depth) -> Sym {
      if (t == scores)
        return num(negInf);
      if (auto it = fills.find(t); it != fills.end())
        return num(it->second);
      const kir::Tensor &tensor = kernel.tensors[t];
      if (depth > 4 || tensor.role != kir::Tensor::Role::Temp ||
          tensor.stage < 0)
        return Sym();
      const kir::Stage &producer = kernel.stages[tensor.stage];
      if (producer.outputs.size() != 1 || reduces(producer))
        return Sym();
      return evalStage(producer, 0, depth + 1);
    };
    evalStage = [&](const kir::Stage &at, int output, int depth) -> Sym {
      // The output dimensions' loops: a per-key operand read at this point.
      std::vector<int> point;
      for (const kir::AffineDim &d : at.outputs[0].dims)
        point.push_back(d.loop());
      if (&at == &st)
        point.push_back(red); // the keys, innermost in the scores
      std::vector<Sym> v(at.exprs.size());
      for (size_t i = 0; i < at.exprs.size(); ++i) {
        const kir::Expr &e = at.exprs[i];
        auto arg = [&](size_t a) { return v[e.args[a]]; };
        Sym r;
        switch (e.op) {
        case kir::OpCode::Load: {
          const kir::Access &a = at.inputs[e.index];
          if (kernel.tensors[a.tensor].shape != scoresShape)
            break; // a per-query value: unknown
          bool own = a.dims.size() == point.size();
          for (size_t d = 0; own && d < a.dims.size(); ++d)
            own = a.dims[d].loop() >= 0 && a.dims[d].loop() == point[d];
          if (!own)
            return Sym(); // another key's value: not followed
          r = valueOf(a.tensor, depth);
          break;
        }
        case kir::OpCode::Acc:
          if (&at == &st) {
            r.kind = Sym::Acc;
            r.acc = (int)e.index;
          }
          break;
        case kir::OpCode::Const:
          if (e.type == kir::ElemType::F32 || e.type == kir::ElemType::F64)
            r = num(e.fval);
          else if (e.type == kir::ElemType::I1)
            r = boolean(e.ival != 0);
          break;
        case kir::OpCode::Cast:
          // Widening or narrowing keeps 0 and -inf.
          if (arg(0).kind == Sym::Num &&
              (arg(0).num == negInf || arg(0).num == 0.0) &&
              (e.type == kir::ElemType::F32 || e.type == kir::ElemType::F64))
            r = arg(0);
          break;
        case kir::OpCode::CmpF: {
          Sym a0 = arg(0), a1 = arg(1);
          if (a0.kind == Sym::Num && a1.kind == Sym::Num &&
              (e.pred == 1 || e.pred == 2 || e.pred == 4))
            r = boolean(e.pred == 1   ? a0.num == a1.num
                        : e.pred == 2 ? a0.num > a1.num
                                      : a0.num < a1.num);
          else if ((e.pred == 2 && a0.kind == Sym::Num && a0.num == negInf) ||
                   (e.pred == 4 && a1.kind == Sym::Num && a1.num == negInf))
            r = boolean(false); // ordered: false for NaN too
          break;
        }
        case kir::OpCode::AddF:
          for (int k = 0; k < 2; ++k) {
            Sym acc = arg(k), other = arg(1 - k);
            if (acc.kind == Sym::Acc && other.kind == Sym::Num &&
                other.num == 0.0 && addsFromPlusZero(at, acc.acc))
              r = acc;
          }
          break;
        case kir::OpCode::MaximumF:
        case kir::OpCode::MaxNumF:
          // maxnumf(acc, -inf) is acc unless acc is NaN, which it never is
          // from a constant start that is not (NaN only from two NaNs).
          for (int k = 0; k < 2; ++k)
            if (arg(k).kind == Sym::Acc && arg(1 - k).kind == Sym::Num &&
                arg(1 - k).num == negInf &&
                (e.op == kir::OpCode::MaximumF ||
                 startsFromNumber(at, arg(k).acc)))
              r = arg(k);
          break;
        case kir::OpCode::Select:
          if (arg(0).kind == Sym::Bool)
            r = arg(0).b ? arg(1) : arg(2);
          break;
        case kir::OpCode::AndI:
          for (int k = 0; k < 2; ++k)
            if (arg(k).kind == Sym::Bool)
              r = arg(k).b ? arg(1 - k) : arg(k);
          break;
        default:
          break;
        }
        v[i] = r;
      }
      return v[at.yields[output]];
    };
    for (size_t o = 0; o < st.outputs.size(); ++o) {
      Sym y = evalStage(st, (int)o, 0);
      if (y.kind != Sym::Acc || y.acc != (int)o)
        return false;
    }
    return true;
  }

  /// Whether every update of output `o` of reduction stage `st` is
  /// maxnumf(acc, x) and its initial value a constant that is not NaN: then
  /// the accumulator is never NaN (maxnumf gives NaN only from two NaNs).
  bool startsFromNumber(const kir::Stage &st, int o) const {
    const kir::Expr *init = initConstant(st, o);
    return init && !std::isnan(init->fval) &&
           updatesAs(st, o, kir::OpCode::MaxNumF);
  }

  /// Whether every update of output `o` of reduction stage `st` is
  /// acc + x and its initial value is the constant +0: then the accumulator
  /// is never -0 (under round to nearest, a sum is -0 only when both terms
  /// are), and adding +0 leaves it as it is.
  bool addsFromPlusZero(const kir::Stage &st, int o) const {
    const kir::Expr *init = initConstant(st, o);
    return init && init->fval == 0.0 && !std::signbit(init->fval) &&
           updatesAs(st, o, kir::OpCode::AddF);
  }

  /// The constant output `o` of reduction stage `st` starts from, or null.
  const kir::Expr *initConstant(const kir::Stage &st, int o) const {
    return st.inits[o] >= 0 ? fillConstant(st.inits[o]) : nullptr;
  }

  /// Whether output `o` of reduction stage `st` yields op(acc, x) or
  /// op(x, acc).
  static bool updatesAs(const kir::Stage &st, int o, kir::OpCode op) {
    const kir::Expr &y = st.exprs[st.yields[o]];
    if (y.op != op)
      return false;
    for (int a : y.args)
      if (st.exprs[a].op == kir::OpCode::Acc && st.exprs[a].index == o)
        return true;
    return false;
  }

  /// An `attention` kernel (FormKernels): contraction c1 (the scores, with
  /// its elementwise epilogue: a scale, a mask), stages over the same rows
  /// that read them (the softmax), and contraction c2 whose row operand is
  /// the softmax's result (the value product). On a CPU target it becomes
  /// one buildAttention pipeline, which stores no scores; returns false
  /// with `error` empty (nothing built) when the kernel has another form,
  /// and its stages are then built one by one like any kernel's.
  bool tryAttention(std::string &error) {
    if (kernel.kind != "attention" || target.has_gpu_feature())
      return false;
    std::vector<size_t> gemms;
    for (size_t s = 0; s < kernel.stages.size(); ++s)
      if (isGemmStage(s))
        gemms.push_back(s);
    if (gemms.size() != 2)
      return false;
    const size_t c1 = gemms[0], c2 = gemms[1];
    GemmMatch g1, g2;
    matchGemm(c1, g1);
    matchGemm(c2, g2);
    const codegen::GemmShape &s1 = g1.shape, &s2 = g2.shape;
    if (g1.rank < 2 || g1.rank != g2.rank || s1.batch != s2.batch ||
        s1.M != s2.M || s1.N != s2.K)
      return false;
    // Per batch element (a head): Q, K, V and the probabilities all batched.
    if (g1.lb >= 0 && !(hasLoop(g1.a.loops, g1.lb) &&
                        hasLoop(g1.b.loops, g1.lb) &&
                        hasLoop(g2.b.loops, g2.lb)))
      return false;
    // The value product reads the probabilities as they are: [b,] m, n.
    std::vector<int> direct{g2.lm, g2.red};
    if (g2.lb >= 0)
      direct.insert(direct.begin(), g2.lb);
    const kir::Tensor &probsTensor = kernel.tensors[g2.a.tensor];
    if (g2.a.loops != direct || !g2.a.memLoops.empty() ||
        std::any_of(g2.a.tables.begin(), g2.a.tables.end(),
                    [](int t) { return t >= 0; }) ||
        probsTensor.role != kir::Tensor::Role::Temp ||
        probsTensor.stage <= (int)c1 || probsTensor.stage >= (int)c2)
      return false;
    // The scores' epilogue, then the stages that depend on them (the
    // softmax): over the scores' shape or its rows, none a kernel output.
    std::vector<size_t> chain1 = epilogueChain(c1, true);
    const int scoresTensor = kernel.stages[chain1.empty() ? c1 : chain1.back()]
                                 .outputs[0]
                                 .tensor;
    const std::vector<int64_t> &scoresShape = kernel.tensors[scoresTensor].shape;
    std::vector<int64_t> rowShape(scoresShape.begin(), scoresShape.end() - 1);
    std::set<size_t> scoreSide(chain1.begin(), chain1.end());
    scoreSide.insert(c1);
    std::vector<size_t> middle;
    for (size_t s = c1 + 1; s < c2; ++s) {
      if (scoreSide.count(s))
        continue;
      std::vector<size_t> from = producers(kernel.stages[s]);
      if (std::none_of(from.begin(), from.end(),
                       [&](size_t p) { return scoreSide.count(p) > 0; }))
        continue;
      for (const kir::Access &o : kernel.stages[s].outputs) {
        const std::vector<int64_t> &shape = kernel.tensors[o.tensor].shape;
        if (isKernelOutput(o.tensor) || (shape != scoresShape && shape != rowShape))
          return false;
      }
      middle.push_back(s);
      scoreSide.insert(s);
    }
    if (std::find(middle.begin(), middle.end(), (size_t)probsTensor.stage) ==
        middle.end())
      return false;
    // A softmax (an exp among the stages), read by nothing after the value
    // product: its Funcs live in the value product's tasks.
    bool exp = false;
    for (size_t s : middle)
      for (const kir::Expr &e : kernel.stages[s].exprs)
        exp |= e.op == kir::OpCode::Exp;
    if (!exp)
      return false;
    for (size_t s = c2 + 1; s < kernel.stages.size(); ++s)
      for (size_t p : producers(kernel.stages[s]))
        if (scoreSide.count(p))
          return false;
    for (size_t s : scoreSide)
      for (const kir::Access &o : kernel.stages[s].outputs)
        if (isKernelOutput(o.tensor))
          return false;

    // Everything else before the value product (the head split's copies,
    // fills): as usual.
    for (size_t s = 0; s < c2; ++s)
      if (!scoreSide.count(s) && !ensureStage(s, error))
        return false;
    Func Q = gemmOperandFunc(c1, g1, true), Kb = gemmOperandFunc(c1, g1, false),
         Vb = gemmOperandFunc(c2, g2, false);
    const bool batched = s1.batch > 0;
    Var vk("k"), vn("n"), vd("d"), vb("b");
    auto withBatch = [&](std::vector<Var> v) {
      if (batched)
        v.push_back(vb);
      return v;
    };
    auto at = [&](const Func &f, std::vector<Var> v) {
      std::vector<Expr> args(v.begin(), v.end());
      if (batched)
        args.push_back(vb);
      return f(args);
    };
    // Kf(k, n[, b]) and V(d, n[, b]), whichever way B was read.
    Func Kf(kernel.name + "_keys"), V(kernel.name + "_values");
    Kf(withBatch({vk, vn})) = s1.transposeB ? at(Kb, {vk, vn}) : at(Kb, {vn, vk});
    V(withBatch({vd, vn})) = s2.transposeB ? at(Vb, {vn, vd}) : at(Vb, {vd, vn});

    codegen::AttentionShape shape;
    shape.batch = s1.batch;
    shape.M = s1.M;
    shape.N = s1.N;
    shape.K = s1.K;
    shape.D = s2.N;
    std::vector<size_t> chain2 = epilogueChain(c2);
    std::string buildError;
    std::map<int, float> fills; // per-key tensors' values at masked keys
    int statistics = 0, keptOnly = 0; // the softmax's reductions over keys
    auto softmax = [&](const Func &scores,
                       const codegen::AttentionKeyTiles &tiles) {
      for (size_t s : {c1}) {
        stageFuncs[s] = scores;
        stageVars[s] = scores.args();
      }
      for (size_t c : chain1) {
        stageFuncs[c] = scores;
        stageVars[c] = scores.args();
      }
      codegen::AttentionSoftmax sm;
      for (size_t s : middle) {
        const kir::Stage &st = kernel.stages[s];
        bool rows = kernel.tensors[st.outputs[0].tensor].shape == rowShape;
        bool stored = s == (size_t)probsTensor.stage || st.outputs.size() > 1 ||
                      reduces(st) || readerCount(st.outputs[0].tensor) > 1;
        // A stored per-key stage whose value at a skipped key is known
        // (exp of -inf: 0): that constant, then the key tiles computed.
        auto fill = fills.find(st.outputs[0].tensor);
        keyTiled = tiles.skip && stored && !rows && fill != fills.end()
                       ? std::optional<KeyTiled>(
                             KeyTiled{s, &tiles, fill->second})
                       : std::nullopt;
        // A statistic over the keys that skipped keys leave as it is: over
        // the kept tiles only (whole tiles, each key once; no fill).
        const bool statistic = rows && reduces(st);
        keyReduced =
            tiles.skip && statistic && tiles.N % tiles.keys == 0 &&
                    keysLeaveAccumulators(s, scoresTensor, fills, scoresShape)
                ? std::optional<KeyTiled>(KeyTiled{s, &tiles, 0.0f})
                : std::nullopt;
        statistics += statistic;
        keptOnly += keyReduced.has_value();
        built[s] = true;
        bool ok = buildStage(s, buildError);
        keyTiled.reset();
        keyReduced.reset();
        if (!ok)
          throw std::invalid_argument(buildError);
        if (rows)
          sm.perQuery.push_back(stageFuncs[s]);
        else if (stored)
          sm.perKey.push_back(stageFuncs[s]);
      }
      sm.probs = stageFuncs[probsTensor.stage];
      return sm;
    };
    // Keys that a mask makes -inf for every query (padding): skipped where
    // the probabilities are then 0 (buildAttention's keyLive).
    codegen::GemmEpilogue scoreEpilogue = gemmEpilogue(c1, g1.rank, chain1);
    Func keyLive;
    if (additiveMask(c1, chain1) &&
        probsVanishAtMaskedKeys(scoresTensor, g2.a.tensor, middle,
                                scoresShape, fills)) {
      keyLive = Func(kernel.name + "_live" + std::to_string(c2));
      std::vector<Var> lv = withBatch({vn, Var("m")});
      keyLive(lv) = scoreEpilogue(Expr(0.0f), lv) !=
                    Expr(-std::numeric_limits<float>::infinity());
    }
    codegen::AttentionTiling chosen;
    Func out;
    try {
      out = codegen::buildAttention(
          shape, Q, Kf, V, scoreEpilogue, softmax,
          gemmEpilogue(c2, g2.rank, chain2), target,
          kernel.name + "_attention" + std::to_string(c2), {}, &chosen,
          keyLive);
    } catch (const std::invalid_argument &e) {
      error = "kernel " + kernel.name + ": " + e.what();
      return false;
    }
    for (size_t s : scoreSide) {
      built[s] = true;
      fusedStages.insert(s);
    }
    built[c2] = true;
    stageFuncs[c2] = out;
    stageVars[c2] = out.args();
    gemmStages.insert(c2);
    for (size_t c : chain2) {
      built[c] = true;
      fusedStages.insert(c);
      stageFuncs[c] = out;
      stageVars[c] = out.args();
    }
    flops += 2.0 * shape.M * shape.N * (shape.K + shape.D) *
             std::max(1, shape.batch); // Q K^T and P V
    gemmNotes.push_back(
        (shape.batch ? "b" + std::to_string(shape.batch) + " " : "") + "m" +
        std::to_string(shape.M) + " n" + std::to_string(shape.N) + " k" +
        std::to_string(shape.K) + " d" + std::to_string(shape.D) + ": " +
        codegen::describeAttentionTiling(chosen) +
        (chosen.skipKeys ? ", " + std::to_string(keptOnly) + " of " +
                               std::to_string(statistics) +
                               " softmax statistics over the kept keys only"
                         : ""));
    return true;
  }

  /// The elementwise stages after `s` that form a chain fusable into its
  /// epilogue: each reads the previous result only at its own output point,
  /// the intermediate results are read by nothing else and are not kernel
  /// outputs, and the last result is. With `partial`, the chain as far as
  /// it goes (its last result need not be an output).
  std::vector<size_t> epilogueChain(size_t s, bool partial = false) {
    std::vector<size_t> chain;
    int current = kernel.stages[s].outputs[0].tensor;
    while (!isKernelOutput(current)) {
      // Every reader, a gather's included: a result that anything else reads
      // is not only the next stage's input, so the chain stops there.
      std::vector<size_t> r = readersOf(current);
      if (r.size() != 1)
        return partial ? chain : std::vector<size_t>{};
      const kir::Stage &next = kernel.stages[r[0]];
      bool elementwise = next.outputs.size() == 1 && !reduces(next);
      if (!elementwise || next.outputs[0].dims.size() !=
                              kernel.stages[s].outputs[0].dims.size())
        return partial ? chain : std::vector<size_t>{};
      // The previous result must be read exactly at the output point.
      for (const kir::Access &a : next.inputs) {
        if (a.tensor != current)
          continue;
        if (a.dims.size() != next.outputs[0].dims.size())
          return partial ? chain : std::vector<size_t>{};
        for (size_t d = 0; d < a.dims.size(); ++d)
          if (a.dims[d].loop() < 0 ||
              a.dims[d].loop() != next.outputs[0].dims[d].loop())
            return partial ? chain : std::vector<size_t>{};
      }
      // No Acc or loop index among what the yield uses (the init of an
      // elementwise stage is tensor.empty; every stage lists an unused Acc).
      std::vector<bool> used(next.exprs.size(), false);
      for (int y : next.yields)
        used[y] = true;
      for (size_t e = next.exprs.size(); e-- > 0;) {
        if (!used[e])
          continue;
        if (next.exprs[e].op == kir::OpCode::Acc ||
            next.exprs[e].op == kir::OpCode::LoopIndex)
          return partial ? chain : std::vector<size_t>{};
        for (int a : next.exprs[e].args)
          used[a] = true;
      }
      chain.push_back(r[0]);
      current = next.outputs[0].tensor;
    }
    return chain;
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
    if (keyReduced && keyReduced->stage == s && reductionLoops.size() == 1) {
      // The kept tiles of keys, in order (tryAttention): over ([b,] m), the
      // batch the outer loop of the output.
      Expr batch;
      const std::vector<kir::AffineDim> &dims = stage.outputs.front().dims;
      if (dims.size() > 1 && dims.front().loop() >= 0)
        batch = loops[dims.front().loop()];
      r = keyReduced->tiles->domain(batch, kernel.name + "_s" +
                                               std::to_string(s) + "_keys");
      loops[reductionLoops[0]] = keyReduced->tiles->key(r);
      stageRDoms[s] = r;
    } else if (!reductionLoops.empty()) {
      r = RDom(reductionRegion);
      for (size_t i = 0; i < reductionLoops.size(); ++i)
        loops[reductionLoops[i]] = r[(int)i];
      stageRDoms[s] = r;
    }

    // Output coordinates: each output dim is one parallel loop.
    const kir::Access &out0 = stage.outputs.front();
    std::vector<Var> outVars; // outermost first
    size_t innerLoop = 0;     // the innermost output dimension's loop
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
      innerLoop = loop;
    }
    std::vector<Var> args(outVars.rbegin(), outVars.rend());
    std::vector<Expr> outCoords(outVars.begin(), outVars.end());
    stageVars[s] = args;

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

    if (reductionLoops.empty() && keyTiled && keyTiled->stage == s &&
        numOutputs == 1 && args.size() >= 2) {
      // An attention's per-key stage over (n, m[, b]) where keys are
      // skipped: the value at a skipped key, then the tiles of keys that
      // start before the batch element's last kept key (tryAttention).
      f(args) = Expr(keyTiled->fill);
      RDom tiles = keyTiled->tiles->domain(
          args.size() > 2 ? Expr(args[2]) : Expr(), f.name() + "_tiles");
      Expr key = keyTiled->tiles->key(tiles);
      std::vector<Expr> at = loops, point(args.begin(), args.end());
      at[innerLoop] = key;
      point[0] = key;
      f(point) = evaluate(stage, at, inits)[0];
      return true;
    }
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
    // Which values depend on data (loads, accumulators, gathers), as
    // opposed to loop indices and constants: a gather at a data-dependent
    // index is checked (an embedding lookup); one at computed coordinates
    // (the lowered concat and insert_slice, whose select evaluates both
    // sides) is only clamped.
    std::vector<bool> fromData(stage.exprs.size(), false);
    for (size_t i = 0; i < stage.exprs.size(); ++i) {
      const kir::Expr &e = stage.exprs[i];
      fromData[i] = e.op == kir::OpCode::Load || e.op == kir::OpCode::Acc ||
                    e.op == kir::OpCode::Extract;
      for (int arg : e.args)
        fromData[i] = fromData[i] || fromData[arg];
    }
    auto affine = [&](const kir::AffineDim &d) {
      Expr e = (int)d.offset;
      for (size_t l = 0; l < d.coeffs.size(); ++l)
        if (d.coeffs[l] != 0)
          e = e + loops[l] * (int)d.coeffs[l];
      // Halide's integer division and modulo round to -infinity, as
      // floordiv and mod do.
      if (d.divisor != 1)
        e = e / (int)d.divisor;
      if (d.modulus != 0)
        e = e % (int)d.modulus;
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
          coords.push_back(e.checkedIndex && fromData[e.args[d]]
                               ? gatherIndex((int)e.index, d, a((int)d))
                               : clamp(cast<int>(a((int)d)), 0,
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
      // The NaN rules of arith's four min/max ops, under strict_float: in
      // a fused GEMM epilogue the fast-math default would fold the NaN test
      // away (a ReLU turned NaN into 0 there).
      case OpCode::MaximumF:
        v[i] = strict_float(select(isNan(a(0)), a(0),
                                   select(isNan(a(1)), a(1), max(a(0), a(1)))));
        break;
      case OpCode::MinimumF:
        v[i] = strict_float(select(isNan(a(0)), a(0),
                                   select(isNan(a(1)), a(1), min(a(0), a(1)))));
        break;
      case OpCode::MaxNumF:
        v[i] = strict_float(select(isNan(a(0)), a(1),
                                   select(isNan(a(1)), a(0), max(a(0), a(1)))));
        break;
      case OpCode::MinNumF:
        v[i] = strict_float(select(isNan(a(0)), a(1),
                                   select(isNan(a(1)), a(0), min(a(0), a(1)))));
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
        v[i] = type == Float(32) ? tanhF32(a(0)) : tanh(a(0));
        break;
      case OpCode::Erf:
        v[i] = type == Float(32) ? erfF32(a(0)) : erf(a(0));
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
      case OpCode::Log1p: {
        // log(1 + x) loses x's low bits for tiny x: use x - x^2/2 there.
        Expr x = a(0);
        v[i] = select(abs(x) < make_const(type, 1e-4),
                      x - x * x * make_const(type, 0.5),
                      log(make_const(type, 1.0) + x));
        break;
      }
      case OpCode::Sin:
        v[i] = sin(a(0));
        break;
      case OpCode::Cos:
        v[i] = cos(a(0));
        break;
      case OpCode::Floor:
        v[i] = floor(a(0));
        break;
      case OpCode::Ceil:
        v[i] = ceil(a(0));
        break;
      case OpCode::Round: {
        // math.round: halves away from zero (Halide's round is to even).
        Expr x = a(0);
        v[i] = select(x < make_const(type, 0.0),
                      -floor(make_const(type, 0.5) - x),
                      floor(x + make_const(type, 0.5)));
        break;
      }
      case OpCode::RoundEven:
        v[i] = round(a(0));
        break;
      case OpCode::AbsI:
        v[i] = cast(type, abs(a(0)));
        break;
      case OpCode::MaxSI:
        v[i] = max(a(0), a(1));
        break;
      case OpCode::MinSI:
        v[i] = min(a(0), a(1));
        break;
      case OpCode::MaxUI:
      case OpCode::MinUI: {
        // Compare as unsigned (i1: true > false).
        Expr x = a(0), y = a(1);
        if (x.type().is_bool()) {
          v[i] = e.op == OpCode::MaxUI ? (x || y) : (x && y);
          break;
        }
        Type u = UInt(x.type().bits());
        Expr ux = cast(u, x), uy = cast(u, y);
        v[i] = cast(type, e.op == OpCode::MaxUI ? max(ux, uy) : min(ux, uy));
        break;
      }
      case OpCode::CmpF:
        v[i] = compareF(e.pred, a(0), a(1));
        break;
      case OpCode::CmpI:
        v[i] = compareI(e.pred, a(0), a(1));
        break;
      case OpCode::DivSI:
        v[i] = truncDiv(a(0), a(1));
        break;
      case OpCode::FloorDivSI:
        v[i] = floorDiv(a(0), a(1));
        break;
      case OpCode::CeilDivSI:
        v[i] = ceilDiv(a(0), a(1));
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
        if (src.type().is_bool()) {
          // A select, not a cast: Halide 14's intrinsic matching tries to
          // narrow a bool cast inside a product (internal error "Attempting
          // to narrow a 1-bit type"). extui gives 1, a signed cast -1.
          v[i] = select(src, make_const(type, e.unsignedSource ? 1 : -1),
                        make_zero(type));
          break;
        }
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
    // cf.assert: every result is computed only where all checks hold; a
    // failing one is a Halide error, which the runtime turns into a status.
    for (size_t c = 0; c < stage.checks.size(); ++c)
      for (Expr &r : results)
        r = require(v[stage.checks[c]], r,
                    "kernel check failed: " + stage.checkMessages[c]);
    return results;
  }

  /// The GPU version of scheduleRoot: one thread per output point (32 x 8
  /// threads per block over the two innermost dimensions, the rest fused
  /// into the third grid dimension); reductions loop inside the thread.
  void scheduleRootGpu(Func f, const std::vector<Var> &vars) {
    f.compute_root();
    auto place = [&](Stage st) {
      size_t rank = vars.size();
      if (rank == 0) {
        st.gpu_single_thread();
        return;
      }
      Var xo("xo"), xi("xi"), yo("yo"), yi("yi");
      if (rank == 1) {
        st.gpu_tile(vars[0], xo, xi, 64, TailStrategy::GuardWithIf);
        return;
      }
      st.gpu_tile(vars[0], vars[1], xo, yo, xi, yi, 32, 8,
                  TailStrategy::GuardWithIf);
      if (rank == 2)
        return;
      Var outer = vars[2];
      for (size_t d = 3; d < rank; ++d) {
        Var fused(outer.name() + "_" + vars[d].name());
        st.fuse(outer, vars[d], fused);
        outer = fused;
      }
      st.gpu_blocks(outer);
    };
    place(f);
    for (int u = 0; u < f.num_update_definitions(); ++u)
      place(f.update(u));
  }

  /// Runs `st`'s outermost loop `outer` (of `extent`; the stage has
  /// `points` in all) in parallel, a task taking enough of it for
  /// kTaskMinPoints: the pool's hand-off per task (about 0.1 us claimed, 0.6
  /// us woken) would otherwise outweigh a small row's work (a layer norm's
  /// 128 rows of 256 floats: 128 tasks of 16 vectors each).
  static void parallelOuter(Stage st, Var outer, int64_t extent,
                            int64_t points) {
    if (extent < 2)
      return;
    int64_t perRow = std::max<int64_t>(1, points / extent);
    int64_t rows = std::min(extent, (kTaskMinPoints + perRow - 1) / perRow);
    if (rows > 1)
      st.parallel(outer, (int)rows, TailStrategy::GuardWithIf);
    else
      st.parallel(outer);
  }

  /// Computes `f` at root, vectorized along the innermost dimension and
  /// parallel along the outermost (when it has `points` >=
  /// kParallelMinPoints), for its pure and update definitions.
  /// Tails: a pure definition shifts its last vector inwards (recomputing a
  /// few points is harmless); an update may not run twice on a point, so it
  /// takes the widest vector that divides the extent, or none. (Predicated
  /// tails are avoided: Halide 14 on AVX-512 was seen to read past buffers.)
  void scheduleRoot(Func f, const std::vector<Var> &vars,
                    const std::vector<int64_t> &shapeOuterFirst, Type type,
                    int64_t points) {
    if (target.has_gpu_feature())
      return scheduleRootGpu(f, vars);
    f.compute_root();
    size_t rank = vars.size();
    if (rank == 0)
      return;
    int natural = target.natural_vector_size(type);
    int64_t inner = shapeOuterFirst.back();
    const bool parallel = points >= kParallelMinPoints;
    auto parallelize = [&](Stage st) {
      if (parallel && rank >= 2)
        parallelOuter(st, vars[rank - 1], shapeOuterFirst.front(), points);
    };
    int pureWidth = natural;
    while (pureWidth > 1 && pureWidth > inner)
      pureWidth /= 2;
    // A per-row result (a layer norm's or a softmax's statistics): vectors
    // of rows, each lane summing its own row in order, in blocks of rows
    // across the threads (about codegen::targetTasks blocks, each a whole
    // number of vectors that divides the rows, so that no update runs twice
    // on a row).
    int64_t block = 0;
    if (parallel && rank == 1) {
      const int64_t tasks = codegen::targetTasks(target);
      int64_t want = std::max<int64_t>(natural, (inner + tasks - 1) / tasks);
      for (int64_t b = want - want % natural; b >= natural; b -= natural)
        if (inner % b == 0 && inner / b >= 2) {
          block = b;
          break;
        }
    }
    Var blocks("blocks"), rows("rows");
    auto byBlocks = [&](Stage st) {
      if (block)
        st.split(vars[0], blocks, rows, (int)block).parallel(blocks);
    };
    const Var lanes = block ? rows : vars[0];
    byBlocks(f);
    if (pureWidth > 1)
      f.vectorize(lanes, pureWidth, TailStrategy::ShiftInwards);
    parallelize(f);
    for (int u = 0; u < f.num_update_definitions(); ++u) {
      int width = natural;
      while (width > 1 && inner % width != 0)
        width /= 2;
      bool scheduled = width > 1 || (parallel && rank >= 2 && shapeOuterFirst.front() >= 2);
      byBlocks(f.update(u));
      if (width > 1)
        f.update(u).vectorize(lanes, width);
      parallelize(f.update(u));
      if (!scheduled)
        f.update(u).unscheduled(); // serial on purpose: tiny or odd extents
    }
  }

  /// The vector width at which stage `s` is summed along its rows, or 0:
  /// a sum (a layer norm's mean or variance, a softmax's denominator) of
  /// one output over one reduction loop that every input it depends on
  /// reads along its innermost dimension, contiguous, in whole vectors.
  int innerSumWidth(size_t s) {
    const kir::Stage &stage = kernel.stages[s];
    if (target.has_gpu_feature() || !stageRDoms[s].defined() ||
        stage.outputs.size() != 1 || stage.yields.size() != 1)
      return 0;
    int red = -1;
    for (size_t l = 0; l < stage.isReduction.size(); ++l)
      if (stage.isReduction[l]) {
        if (red >= 0)
          return 0;
        red = (int)l;
      }
    if (red < 0)
      return 0;
    // acc + value, value free of the accumulator.
    const kir::Expr &sum = stage.exprs[stage.yields[0]];
    if (sum.op != kir::OpCode::AddF || sum.args.size() != 2)
      return 0;
    auto isAcc = [&](int e) { return stage.exprs[e].op == kir::OpCode::Acc; };
    if (isAcc(sum.args[0]) == isAcc(sum.args[1]))
      return 0;
    int value = isAcc(sum.args[0]) ? sum.args[1] : sum.args[0];
    std::vector<bool> used(stage.exprs.size(), false);
    used[value] = true;
    bool alongRows = false;
    for (int e = value; e >= 0; --e) {
      if (!used[e])
        continue;
      const kir::Expr &x = stage.exprs[e];
      if (x.op == kir::OpCode::Acc || x.op == kir::OpCode::LoopIndex ||
          x.op == kir::OpCode::Extract)
        return 0;
      if (x.op == kir::OpCode::Load) {
        const kir::Access &a = stage.inputs[x.index];
        for (size_t d = 0; d < a.dims.size(); ++d) {
          bool reads = a.dims[d].coeffs[red] != 0;
          bool innermost = d + 1 == a.dims.size();
          if (reads && !(innermost && a.dims[d].loop() == red))
            return 0;
          alongRows |= reads;
        }
      }
      for (int arg : x.args)
        used[arg] = true;
    }
    Type type = halideType(kernel.tensors[stage.outputs[0].tensor].type);
    int width = target.natural_vector_size(type);
    int64_t extent = stage.loopExtents[red];
    if (!alongRows || width < 2 || extent % width != 0 || extent < 2 * width)
      return 0;
    return width;
  }

  /// Schedules innerSumWidth's stage `f`: per output point, `width`
  /// partial sums in a vector (lane i adds elements i, i + width, ...:
  /// dense vector loads, where lanes of rows would gather), then added up
  /// in lane order. Rows in parallel blocks as scheduleRoot's.
  void scheduleInnerSum(Func f, RDom r, const std::vector<Var> &vars,
                        const std::vector<int64_t> &shapeOuterFirst,
                        int width, int64_t points) {
    f.compute_root();
    size_t rank = vars.size();
    RVar ro("ro"), ri("ri");
    Var u("u");
    Func part = f.update(0).split(r.x, ro, ri, width).rfactor(ri, u);
    Var row = rank ? vars[0] : Var();
    if (rank && points >= kParallelMinPoints) {
      if (rank == 1) {
        Var blocks("blocks"), rows("rows");
        const int64_t tasks = codegen::targetTasks(target);
        int64_t block =
            std::max<int64_t>(1, (shapeOuterFirst[0] + tasks - 1) / tasks);
        // GuardWithIf: a partial last block (an update's default rounds
        // up, past a kernel output's rows).
        f.update(0)
            .split(vars[0], blocks, rows, (int)block, TailStrategy::GuardWithIf)
            .parallel(blocks);
        row = rows;
      } else {
        parallelOuter(f.update(0), vars[rank - 1], shapeOuterFirst.front(),
                      points);
      }
    }
    if (rank)
      part.compute_at(f, row);
    else
      part.compute_root();
    part.vectorize(u);
    part.update(0).vectorize(u);
    int natural = target.natural_vector_size(f.output_types()[0]);
    if (rank && shapeOuterFirst.back() >= natural)
      f.vectorize(vars[0], natural, TailStrategy::ShiftInwards);
  }

  /// Whether stage `s` itself computes a gather (tensor.extract).
  bool stageGathers(size_t s) const {
    const std::vector<kir::Expr> &exprs = kernel.stages[s].exprs;
    return std::any_of(exprs.begin(), exprs.end(), [](const kir::Expr &e) {
      return e.op == kir::OpCode::Extract;
    });
  }

  /// A gather (the dispatch of a MoE layer) read by a GEMM: inlined, it
  /// would redo the indirect load in the GEMM's inner loop; stored once, the
  /// GEMM streams a dense operand.
  bool gatherFeedingGemm(size_t s) const {
    if (!stageGathers(s))
      return false;
    for (size_t g : gemmStages)
      for (const kir::Access &a : kernel.stages[g].inputs)
        if (kernel.tensors[a.tensor].stage == (int)s)
          return true;
    return false;
  }

  /// Per stage, whether it is an elementwise stage that gathers (an
  /// embedding lookup), itself or through the elementwise producers inlined
  /// into it, and that more than one stage reads (a layer norm's mean,
  /// variance and normalization): inlined, every reader would redo the
  /// indirect loads and their bounds checks; stored once, they read a dense
  /// tensor. One pass in stage order (producers come first).
  std::vector<bool> sharedGathers() {
    size_t n = kernel.stages.size();
    std::vector<bool> inlinesGather(n, false), shared(n, false);
    for (size_t s = 0; s < n; ++s) {
      const kir::Stage &stage = kernel.stages[s];
      bool gathers = stageGathers(s);
      for (const kir::Access &a : stage.inputs) {
        if (gathers)
          break;
        int p = kernel.tensors[a.tensor].stage;
        if (p < 0 || p >= (int)s || gemmStages.count(p) ||
            fusedStages.count(p) || isKernelOutput(a.tensor))
          continue; // not inlined: read from memory
        const kir::Stage &producer = kernel.stages[p];
        gathers = !reduces(producer) && producer.outputs.size() == 1 &&
                  !gatherFeedingGemm(p) && !shared[p] && inlinesGather[p];
      }
      inlinesGather[s] = gathers;
      shared[s] = gathers && stage.outputs.size() == 1 &&
                  readerCount(stage.outputs.front().tensor) > 1;
    }
    return shared;
  }

  void schedule() {
    std::vector<bool> stored(kernel.stages.size(), false);
    for (int t : kernel.outputs)
      stored[kernel.tensors[t].stage] = true;
    std::vector<bool> sharedGather = sharedGathers();
    for (size_t s = 0; s < kernel.stages.size(); ++s) {
      const kir::Stage &stage = kernel.stages[s];
      if (fusedStages.count(s))
        continue;
      if (gemmStages.count(s)) {
        // Consumed inside the kernel: store it (buildGemm scheduled the rest).
        bool output = false;
        for (int t : kernel.outputs)
          output |= kernel.tensors[t].stage == (int)s;
        bool consumed = false;
        for (const kir::Stage &other : kernel.stages)
          for (const kir::Access &a : other.inputs)
            consumed |= kernel.tensors[a.tensor].stage == (int)s;
        if (consumed || !output)
          stageFuncs[s].compute_root();
        continue;
      }
      if (!(stored[s] || reduces(stage) || stage.outputs.size() > 1 ||
            gatherFeedingGemm(s) || sharedGather[s]))
        continue; // elementwise producers are inlined into consumers
      const kir::Tensor &out = kernel.tensors[stage.outputs.front().tensor];
      int64_t points = 1;
      for (int64_t extent : stage.loopExtents)
        points *= extent;
      if (int width = innerSumWidth(s)) {
        scheduleInnerSum(stageFuncs[s], stageRDoms[s], stageVars[s],
                         out.shape, width, points);
        continue;
      }
      scheduleRoot(stageFuncs[s], stageVars[s], out.shape,
                   halideType(out.type), points);
    }
    for (auto &[t, w] : outputWrappers) {
      if (target.has_gpu_feature())
        scheduleRootGpu(w, w.args());
      else
        w.compute_root();
    }
  }
};

Target parseTarget(const std::string &target) {
  return Target(target);
}

/// The target `b`'s pipeline is compiled for: `target`, with AVX512-BF16's
/// instructions where a GEMM of it multiplies bf16 operands (the schedule
/// is the same on both: AVX-512 either way).
Target pipelineTarget(const Builder &b, const std::string &target) {
  return parseTarget(b.bf16Gemm ? bf16KernelTarget(target) : target);
}

} // namespace

std::vector<bool> bf16OnlyInputs(const kir::Kernel &kernel,
                                 const std::string &target,
                                 const KernelOptions &options) {
  Builder b(kernel, parseTarget(target), options);
  return b.bf16OnlyInputs();
}

std::vector<int64_t> panelView(const std::vector<int64_t> &shape) {
  if (shape.size() < 2)
    return shape;
  std::vector<int64_t> view(shape.begin(), shape.end() - 1);
  view.back() *= shape.back();
  return view;
}

std::vector<PanelStorage> panelInputs(const kir::Kernel &kernel,
                                      const std::string &target,
                                      const KernelOptions &options) {
  Builder b(kernel, parseTarget(target), options);
  return b.panelInputs();
}

bool compileKernel(const kir::Kernel &kernel, const std::string &target,
                   const std::string &objectPath, std::string &error,
                   KernelReport *report, const KernelOptions &options) {
  Builder b(kernel, parseTarget(target), options);
  if (!b.build(error))
    return false;
  if (report) {
    for (const std::string &note : b.gemmNotes)
      report->gemms.push_back(kernel.name + ": " + note);
    report->flops = b.flops;
  }
  try {
    std::vector<Argument> args(b.params.begin(), b.params.end());
    Pipeline p(b.outputs);
    Target t = pipelineTarget(b, target);
    // The next panels buildGemm marks for prefetching (none: no change).
    if (!t.has_gpu_feature())
      codegen::lowerPanelPrefetches(p);
    // Debugging aid: the lowered Halide statement of every kernel.
    if (const char *dir = std::getenv("DYNCC_HALIDE_STMT_DIR"))
      p.compile_to_lowered_stmt(std::string(dir) + "/" + kernel.name + ".stmt",
                                args, Text, t);
    p.compile_to_object(objectPath, args, kernel.name,
                        t.with_feature(Target::NoRuntime));
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
               const std::string &target, std::string &error,
               const KernelOptions &options) {
  Builder b(kernel, parseTarget(target), options);
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
    p.realize(Realization(outs), pipelineTarget(b, target));
    return true;
  } catch (const Halide::Error &e) {
    error = std::string("Halide: ") + e.what();
    return false;
  }
}

} // namespace dyncc::codegen
