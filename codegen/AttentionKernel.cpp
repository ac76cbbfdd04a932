//===- AttentionKernel.cpp - attention as one Halide pipeline -------------===//
//
// One parallel task per block of queries (one vector of them) and batch
// element. In the task:
//
//   qt      the block's queries, transposed (queries innermost), so that a
//           vector of queries is one load;
//   scores  S = epilogue(Q K^T) for the block, stored queries-innermost: a
//           register tile of one vector of queries x `keys` keys, k
//           outermost, each FMA broadcasting one key element;
//   softmax the caller's Funcs (max, exp, sum, divide) over the block,
//           vectorized along the queries, whose rows are contiguous there;
//   out     P V: register tiles of `valueRows` queries x `valueVectors`
//           vectors of value features, keys outermost, each FMA
//           broadcasting one probability.
//
// The block's scratch is queries x N floats per stored Func (8 KB for 16
// queries of 128 keys): the scores of a block stay in L1/L2 and the M x N
// matrix is never written. Keys are not blocked (no online softmax), so the
// scratch grows with N; see docs/codegen.md.
//
// With keyLive (padding): per batch element, the key tiles past the last
// key that some query keeps are not computed (scores -inf, the caller's
// per-key softmax Funcs their constant there: AttentionKeyTiles), and the
// value product stops at that key.
//
//===----------------------------------------------------------------------===//

#include "AttentionKernel.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

using namespace Halide;

namespace dyncc::codegen {
namespace {

int largestPowerOfTwoAtMost(int x) {
  int p = 1;
  while (p * 2 <= x)
    p *= 2;
  return p;
}

AttentionTiling chooseAttentionTiling(const AttentionShape &shape,
                                      const Target &target,
                                      const AttentionTiling &requested) {
  AttentionTiling t = requested;
  const int natural = std::max(1, target.natural_vector_size(Float(32)));
  // Accumulators a register tile may hold: the register file less a few for
  // the operands (32 vector registers with AVX-512, 16 below).
  const int budget = target.has_feature(Target::AVX512) ? 24 : 12;
  auto pick = [](int &field, int value) {
    if (field <= 0)
      field = value;
  };
  pick(t.vectorWidth, std::min(natural, largestPowerOfTwoAtMost(shape.M)));
  t.vectorWidth = std::min(t.vectorWidth, shape.M);
  pick(t.queries, t.vectorWidth);
  t.queries = std::min(std::max(t.queries, t.vectorWidth), shape.M);
  // The scores' tile: the vectors of a block's queries x keys; the keys a
  // divisor of N where one is near the budget (no recomputed tail).
  const int queryVectors = (t.queries + t.vectorWidth - 1) / t.vectorWidth;
  int keys = std::min(shape.N, std::max(1, budget / queryVectors));
  for (int k = keys; k > keys / 2; --k)
    if (shape.N % k == 0) {
      keys = k;
      break;
    }
  pick(t.keys, keys);
  t.keys = std::min(t.keys, shape.N);
  pick(t.valueWidth, std::min(natural, largestPowerOfTwoAtMost(shape.D)));
  t.valueWidth = std::min(t.valueWidth, shape.D);
  pick(t.valueVectors, std::clamp(shape.D / t.valueWidth, 1, 4));
  t.valueVectors = std::min(t.valueVectors, shape.D / t.valueWidth);
  pick(t.valueRows,
       largestPowerOfTwoAtMost(std::max(1, budget / t.valueVectors)));
  t.valueRows = std::min(t.valueRows, t.queries);
  return t;
}

/// Whether `f`'s value does float arithmetic (through the Funcs it calls),
/// not only loads: a scaled key (k * c from the model's graph, inlined)
/// would be multiplied again in every block of queries' inner loop.
bool computesArithmetic(const Func &f) {
  struct Finder : Internal::IRVisitor {
    bool found = false;
    using Internal::IRVisitor::visit;
    void arithmetic(const Type &type) {
      if (type.is_float())
        found = true;
    }
    void visit(const Internal::Add *op) override {
      arithmetic(op->type);
      Internal::IRVisitor::visit(op);
    }
    void visit(const Internal::Sub *op) override {
      arithmetic(op->type);
      Internal::IRVisitor::visit(op);
    }
    void visit(const Internal::Mul *op) override {
      arithmetic(op->type);
      Internal::IRVisitor::visit(op);
    }
    void visit(const Internal::Div *op) override {
      arithmetic(op->type);
      Internal::IRVisitor::visit(op);
    }
    void visit(const Internal::Call *op) override {
      if (op->call_type == Internal::Call::Halide && op->func.defined()) {
        Internal::Function callee(op->func);
        if (callee.has_pure_definition() && !callee.has_update_definition())
          for (const Expr &v : callee.values())
            v.accept(this);
      }
      Internal::IRVisitor::visit(op);
    }
  } finder;
  for (const Expr &v : f.function().values())
    v.accept(&finder);
  return finder.found;
}

} // namespace

RDom AttentionKeyTiles::domain(const Expr &batch,
                                const std::string &name) const {
  RDom r(0, keys, 0, (N + keys - 1) / keys, name);
  if (skip)
    r.where(min(r.y * keys, N - keys) < endAt(batch));
  return r;
}

Expr AttentionKeyTiles::endAt(const Expr &batch) const {
  return batch.defined() ? end(batch) : end();
}

Expr AttentionKeyTiles::key(const RDom &r) const {
  return min(r.y * keys, N - keys) + r.x;
}

std::string describeAttentionTiling(const AttentionTiling &t) {
  return "attention: blocks of " + std::to_string(t.queries) +
         " queries, scores " + std::to_string(t.keys) + " keys x " +
         std::to_string(t.queries) + " queries, values " +
         std::to_string(t.valueRows) + " x " +
         std::to_string(t.valueVectors) + " vectors of " +
         std::to_string(t.valueWidth) +
         (t.skipKeys ? ", keys past the last unmasked one skipped" : "");
}

Func buildAttention(const AttentionShape &shape, const Func &Q, const Func &Kf,
                    const Func &V, const GemmEpilogue &scoreEpilogue,
                    const std::function<AttentionSoftmax(
                        const Func &, const AttentionKeyTiles &)> &softmax,
                    const GemmEpilogue &outEpilogue, const Target &target,
                    const std::string &name, const AttentionTiling &requested,
                    AttentionTiling *chosen, const Func &keyLive) {
  if (shape.batch < 0 || shape.M < 1 || shape.N < 1 || shape.K < 1 ||
      shape.D < 1)
    throw std::invalid_argument("buildAttention: bad shape");
  const bool batched = shape.batch > 0;
  const int rank = batched ? 3 : 2;
  if (Q.dimensions() != rank || Kf.dimensions() != rank ||
      V.dimensions() != rank)
    throw std::invalid_argument("buildAttention: operand arity");
  if (target.has_gpu_feature())
    throw std::invalid_argument("buildAttention: CPU targets only");
  if (requested.queries < 0 || requested.keys < 0 ||
      requested.valueRows < 0 || requested.valueVectors < 0 ||
      requested.valueWidth < 0 || requested.vectorWidth < 0)
    throw std::invalid_argument("buildAttention: bad tiling");
  if (keyLive.defined() &&
      (keyLive.outputs() != 1 || keyLive.dimensions() != rank))
    throw std::invalid_argument("buildAttention: keyLive's arity");
  AttentionTiling t = chooseAttentionTiling(shape, target, requested);
  t.skipKeys = keyLive.defined();
  if (chosen)
    *chosen = t;

  Var n("n"), m("m"), b("b"), d("d"), k("k");
  auto withBatch = [&](std::vector<Expr> args) {
    if (batched)
      args.push_back(b);
    return args;
  };
  auto vars = [&](Var inner, Var outer) {
    std::vector<Var> v{inner, outer};
    if (batched)
      v.push_back(b);
    return v;
  };

  // The definitions.
  Func qt(name + "_q"), sacc(name + "_sacc"), scores(name + "_scores"),
      vacc(name + "_vacc"), out(name);
  qt(vars(k, m)) = Q(withBatch({k, m}));
  // The keys as the scores read them: the caller's Func, or where that
  // computes (a scaled K), a per-task copy of its values.
  const bool stageKeys = computesArithmetic(Kf);
  Func kt(name + "_k");
  kt(vars(k, n)) = Kf(withBatch({k, n}));
  RDom rk(0, shape.K, name + "_rk");
  sacc(vars(n, m)) = 0.0f;
  sacc(vars(n, m)) +=
      qt(withBatch({rk, m})) * (stageKeys ? kt : Kf)(withBatch({rk, n}));
  std::vector<Var> sv = vars(n, m);
  Expr s = sacc(withBatch({n, m}));
  // The scores in tiles of `keys` keys (the last one shifted inwards), as
  // an update over the tiles: the same loops whether keys are skipped or
  // not. (A pure definition split with ShiftInwards gets its tile loop
  // partitioned by Halide in some tasks' code and not in others', where
  // LLVM then contracts the dot products' multiplies and adds into FMAs
  // differently: a row computed by two tasks, the last block's, differed in
  // its last bits with the order of the tasks.)
  //
  // Skipping masked keys (keyLive): per batch element, keyEnd = one past
  // the last key that some query keeps (N where none is kept). The scores
  // are -inf, and only the tiles that start before keyEnd are computed (the
  // predicate around the tile's whole computation, as the GEMM's tile
  // skipping); the value product stops at keyEnd.
  Func keysKept(name + "_kept");
  AttentionKeyTiles tiles;
  tiles.skip = t.skipKeys;
  tiles.N = shape.N;
  tiles.keys = t.keys;
  tiles.end = Func(name + "_key_end");
  Expr batchVar = batched ? Expr(b) : Expr();
  if (t.skipKeys) {
    // Whether some query keeps key n, vectorized along the keys.
    RDom rq(0, shape.M, name + "_rq");
    std::vector<Var> kv{n};
    if (batched)
      kv.push_back(b);
    keysKept(kv) = cast<uint8_t>(0);
    keysKept(kv) = keysKept(withBatch({n})) |
                   cast<uint8_t>(keyLive(withBatch({n, rq})));
    RDom rk2(0, shape.N, name + "_rkept");
    Expr last = maximum(select(keysKept(withBatch({rk2})) != 0, rk2 + 1, 0));
    std::vector<Var> bv;
    if (batched)
      bv.push_back(b);
    tiles.end(bv) = select(last == 0, shape.N, last);
    scores(sv) = Expr(-std::numeric_limits<float>::infinity());
  } else {
    scores(sv) = undef<float>();
  }
  RDom rs = tiles.domain(batchVar, name + "_tile");
  Expr key = tiles.key(rs);
  Func value(name + "_value");
  value(sv) = scoreEpilogue ? scoreEpilogue(s, sv) : s;
  scores(withBatch({key, m})) = value(withBatch({key, m}));
  AttentionSoftmax sm = softmax(scores, tiles);
  RDom rn(0, shape.N, name + "_rn");
  if (t.skipKeys)
    rn.where(rn < tiles.endAt(batchVar));
  vacc(vars(d, m)) = 0.0f;
  vacc(vars(d, m)) += sm.probs(withBatch({rn, m})) * V(withBatch({d, rn}));
  std::vector<Var> ov = vars(d, m);
  Expr v = vacc(withBatch({d, m}));
  out(ov) = outEpilogue ? outEpilogue(v, ov) : v;
  out.bound(d, 0, shape.D).bound(m, 0, shape.M);
  if (batched)
    out.bound(b, 0, shape.batch);

  // The value product's register tiles, in tasks of `queries` rows (the
  // block's query vectors unrolled in the scores' and the softmax's loops).
  const int panel = t.valueVectors * t.valueWidth;
  Var mo("mo"), mi("mi"), mt("mt"), mr("mr"), dO("dO"), di("di"),
      task("task");
  out.split(m, mo, mi, t.queries, TailStrategy::ShiftInwards)
      .split(mi, mt, mr, t.valueRows, TailStrategy::ShiftInwards)
      .split(d, dO, di, panel, TailStrategy::ShiftInwards)
      .reorder(di, mr, dO, mt, mo);
  if (batched)
    out.fuse(mo, b, task).parallel(task);
  else
    out.parallel(task = mo);
  if (t.valueWidth > 1)
    out.vectorize(di, t.valueWidth);
  out.unroll(di).unroll(mr);
  vacc.compute_at(out, dO);
  if (t.valueWidth > 1)
    vacc.vectorize(d, t.valueWidth);
  vacc.unroll(d).unroll(m);
  Stage vupdate = vacc.update();
  vupdate.reorder(d, m, rn);
  if (t.valueWidth > 1)
    vupdate.vectorize(d, t.valueWidth);
  vupdate.unroll(d).unroll(m);

  // Per task: the block's queries transposed, its scores and softmax, all
  // stored queries-innermost and vectorized along the queries.
  qt.compute_at(out, task).reorder_storage(m, k);
  if (stageKeys) {
    // Each key once per task, a tile of them before the tile's scores
    // (keys x K floats: 2 KB at 16 x 32), along their features as K stores
    // them; the scores then broadcast each value straight into an FMA.
    // (Per tile, not all N per task: skipped tiles copy nothing.)
    kt.compute_at(scores, rs.y);
    const int width = std::min(target.natural_vector_size(Float(32)),
                               largestPowerOfTwoAtMost(shape.K));
    if (width > 1)
      kt.vectorize(k, width, TailStrategy::ShiftInwards);
  }
  scores.compute_at(out, task).reorder_storage(m, n);
  // The -inf fill along the queries (skipping keys); the update per tile.
  if (t.skipKeys && t.vectorWidth > 1)
    scores.vectorize(m, t.vectorWidth, TailStrategy::ShiftInwards);
  Stage tileStage = scores.update();
  tileStage.reorder(m, rs.x, rs.y);
  if (t.vectorWidth > 1)
    tileStage.vectorize(m, t.vectorWidth, TailStrategy::GuardWithIf);
  tileStage.unroll(m).unroll(rs.x);
  sacc.compute_at(scores, rs.y).reorder_storage(m, n);
  if (t.skipKeys) {
    // Per batch element, before the tasks: N x M booleans.
    keysKept.compute_root();
    Stage kept = keysKept.update();
    const int width = std::min(target.natural_vector_size(UInt(8)),
                               largestPowerOfTwoAtMost(shape.N));
    if (width > 1) {
      keysKept.vectorize(n, width, TailStrategy::ShiftInwards);
      kept.vectorize(n, width, TailStrategy::GuardWithIf);
    }
    if (batched)
      kept.parallel(b);
    tiles.end.compute_root();
  }
  if (t.vectorWidth > 1)
    sacc.vectorize(m, t.vectorWidth, TailStrategy::ShiftInwards);
  sacc.unroll(m).unroll(n);
  Stage supdate = sacc.update();
  supdate.reorder(m, n, rk);
  if (t.vectorWidth > 1)
    supdate.vectorize(m, t.vectorWidth, TailStrategy::GuardWithIf);
  supdate.unroll(m).unroll(n);

  auto alongQueries = [&](Func f, Var query) {
    f.compute_at(out, task);
    if (t.vectorWidth > 1)
      f.vectorize(query, t.vectorWidth, TailStrategy::ShiftInwards);
    f.unroll(query);
    for (int u = 0; u < f.num_update_definitions(); ++u) {
      Stage st = f.update(u);
      std::vector<VarOrRVar> order{query};
      for (const Internal::ReductionVariable &rv : st.get_schedule().rvars())
        order.push_back(RVar(rv.var));
      st.reorder(order);
      if (t.vectorWidth > 1)
        st.vectorize(query, t.vectorWidth, TailStrategy::GuardWithIf);
      st.unroll(query);
    }
  };
  for (Func f : sm.perKey) {
    std::vector<Var> a = f.args(); // (n, m[, b])
    if (a.size() < 2)
      throw std::invalid_argument("buildAttention: a per-key Func's arity");
    f.reorder_storage(a[1], a[0]);
    f.reorder(a[1], a[0]);
    alongQueries(f, a[1]);
  }
  for (Func f : sm.perQuery) {
    std::vector<Var> a = f.args(); // (m[, b])
    if (a.empty())
      throw std::invalid_argument("buildAttention: a per-query Func's arity");
    alongQueries(f, a[0]);
  }
  return out;
}

} // namespace dyncc::codegen
