//===- GemmKernel.cpp - dyncc's GEMM kernel as a Halide pipeline ---------===//
//
// One algorithm (acc = 0; acc += A * B over an RDom; out = epilogue(acc)) and
// a schedule chosen for the static shape and the target. Three loop
// structures (GemmPath):
//
// - Tiled: register micro-tile of `rows` x `vectors` vectors. The
//   accumulator Func is computed per micro-tile and fully unrolled, so LLVM
//   keeps it in registers across the k loop: each k step loads `vectors`
//   vectors of B and broadcasts `rows` scalars of A (6 x 4 zmm = 24 of the 32
//   AVX-512 registers, the BLIS/OpenBLAS shape). One parallel task per
//   (column panel, block of rows); the task may first copy its panel of B
//   into a contiguous buffer (packing), which a transposed B needs and which
//   pays off for large M. Tails: ShiftInwards on every split (the last tile
//   overlaps its neighbour and recomputes a few outputs: legal because the
//   output is pure, and the same bits wherever an output sits in a tile: one
//   chain of FMAs each), with the tile chosen to waste the least.
// - Stream (small M, B [K, N]): every element of B is used only M times, so
//   the kernel is a stream over B. Each task accumulates a wide block of
//   outputs in L1 and reads B row by row (dense, prefetcher-friendly).
// - Dot (small M, B [N, K]): both operands are contiguous in k, so vectorize
//   k (rfactor into vector lanes, reduce the lanes at the end) and compute a
//   few rows of B against all rows of A at once.
//
//===----------------------------------------------------------------------===//

#include "codegen/GemmKernel.h"
#include "codegen/HalideTarget.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <stdexcept>

using namespace Halide;

namespace dyncc::codegen {

namespace {

// Thresholds of the automatic choice, measured on the K1 machine (AMD Zen 4,
// 2 cores, 1 MiB L2 per core, 32 MiB shared L3; docs/performance.md).
constexpr int kDotMaxM = 8;    // transposed B: Dot beats packing + Tiled
// Parallel tasks (targetTasks): at least 8, which on 2 cores kept both busy
// when one was slowed by its neighbours and gave the runtime's pool a
// contiguous run of tasks per thread, the same every call (a GEMV's rows of
// B stay in that core's L2); on more cores 2 per core, since every task that
// splits M packs its panel of B again. Not measured beyond 2 cores yet
// (docs/codegen.md, "The machine a compile schedules for").
constexpr int kMinTasks = 8;
constexpr int kTasksPerCore = 2;
// Dot: rows of B per group (independent sums; 4 beat 8, 16 and 2 on W3's
// 1024 x 256 step GEMV on the Intel Xeon).
constexpr int kDotGroup = 4;
constexpr int64_t kDotParallelMacs = 1 << 16; // smaller Dot GEMMs run serially
// Tiled: a micro-tile with fewer accumulators than this waits on its FMAs'
// latency (two FMA pipes of 4 cycles keep 8 vector FMAs in flight; 12 leave
// room for the loads, as the Haswell/BLIS AVX2 kernel's 6 x 16 does). In
// W2's 128-row GEMMs compiled for AVX2 on the AMD EPYC, 6 x 2 (12) ran 1.15x
// faster than 4 x 2 (8), 1.27x than 2 x 4 (8) and 1.36x than 3 x 2 (6).
constexpr int kMinAccumulators = 12;
constexpr int kStreamMaxM = 8; // B [K, N]: Stream can beat Tiled up to here:
constexpr double kStreamMinBBytes = 12.0 * (1 << 20); // once B leaves L3
constexpr int kPackMinM = 512;     // below, reading B in place is as fast...
constexpr int kPackPageMinM = 32;  // ...unless B's rows are a page apart
// x86-64's base page (the data TLB's unit).
constexpr double kPageBytes = 4096;

int largestPowerOfTwoAtMost(int x) {
  int p = 1;
  while (p * 2 <= x)
    p *= 2;
  return p;
}

int ceilDiv(int x, int y) { return (x + y - 1) / y; }

int roundUp(int x, int multiple) { return ceilDiv(x, multiple) * multiple; }

void checkOperand(const Func &f, const char *what, const GemmShape &shape) {
  if (!f.defined())
    throw std::invalid_argument(std::string("buildGemm: ") + what +
                                " is not defined");
  int dims = f.dimensions();
  // B in panels of bf16 pairs is a Func over (kk, n % 64, k2, n / 64[, b]).
  const int base = std::string(what) == "B" && bPairs(shape) ? 4 : 2;
  if (dims != base && !(shape.batch > 0 && dims == base + 1))
    throw std::invalid_argument(
        std::string("buildGemm: ") + what + " has " + std::to_string(dims) +
        " dimensions; expected " + std::to_string(base) +
        (shape.batch > 0 ? " or " + std::to_string(base + 1) : ""));
  if (f.outputs() != 1 || f.output_types()[0] != Float(32))
    throw std::invalid_argument(std::string("buildGemm: ") + what +
                                " must produce one float32 value");
}

/// The micro-tile (rows, vectors) that wastes the least work on tails among
/// shapes that fit the register file, in order of preference; a tile with
/// fewer than kMinAccumulators accumulators counts as that much slower.
void chooseMicroTile(const GemmShape &shape, const Target &target,
                     GemmTiling &t) {
  const int vw = t.vectorWidth;
  double best = 1e30;
  int bestRows = 1, bestVectors = 1;
  for (MicroTile c : microTiles(target)) {
    int vectors = t.vectors > 0 ? t.vectors : c.vectors;
    vectors = std::max(1, std::min(vectors, shape.N / vw));
    // A B in panels takes tiles as wide as a divisor of its panel: a wider
    // one chosen here would be narrowed afterwards into a worse tile than
    // the other candidates (8 x 3 into 8 x 2: 10 loads per 16 FMAs, where
    // 4 x 4 takes 8; all-MiniLM's 128-row GEMMs ran 5-6% slower in all).
    if (shape.bPanels && t.vectors <= 0 &&
        kPanelColumns % (vectors * vw) != 0)
      continue;
    // A narrow N (a MoE router's 8 experts) leaves fewer vectors than the
    // tile has: taller rows keep its accumulators, which hide the FMA
    // latency (512 x 8 x 512: 6 x 1 ran at 56 GFLOP/s, 12 x 1 at 163 on
    // the AMD EPYC; 12 is the tallest tile --tune times). The tile's own
    // rows stay an option, on the waste alone where they keep
    // kMinAccumulators (6 x 2 of 6 x 4 at N = 2 vectors); 6 x 1 counts as
    // 2x slower (below: at 18 rows, 2 tiles of 12 win over 3 of 6).
    std::vector<int> options{c.rows};
    if (vectors < c.vectors)
      options.insert(options.begin(),
                     std::min(kMaxTileRows, c.rows * c.vectors / vectors));
    for (int option : options) {
      int rows = std::min(t.rows > 0 ? t.rows : option, shape.M);
      // Outputs computed (ShiftInwards recomputes the overlap) per output
      // needed, over the tile's share of the FMA rate; 1% slack so that the
      // order of preference wins near-ties. (Without the share, AVX2's
      // 128-row GEMMs took 2 x 4, exact in rows, over 6 x 2.)
      double waste = double(ceilDiv(shape.M, rows) * rows) / shape.M *
                     double(ceilDiv(shape.N, vectors * vw) * vectors * vw) /
                     shape.N *
                     std::max(1.0, double(kMinAccumulators) / (rows * vectors));
      if (waste < best * 0.99) {
        best = waste;
        bestRows = rows;
        bestVectors = vectors;
      }
    }
  }
  t.rows = bestRows;
  t.vectors = bestVectors;
}

} // namespace

double targetL2Bytes(const Target &target) {
  return (double)scheduleMachine(target).l2Bytes;
}

int targetTasks(const Target &target) {
  return std::max(kMinTasks,
                  kTasksPerCore * scheduleMachine(target).cores);
}

std::vector<MicroTile> microTiles(const Target &target) {
  std::vector<MicroTile> tiles;
  if (target.has_feature(Target::AVX512))
    // 32 zmm: up to 24 accumulators + the B vectors + one broadcast.
    tiles = {{6, 4}, {8, 3}, {4, 4}, {5, 4}, {7, 3}, {3, 4}, {2, 4}};
  else if (target.has_feature(Target::FMA))
    // 16 ymm: 12 accumulators (the Haswell 6 x 16 kernel).
    tiles = {{6, 2}, {4, 3}, {5, 2}, {3, 3}, {2, 4}};
  else
    // 16 xmm and no FMA: the product needs a temporary register too.
    tiles = {{4, 2}, {3, 3}, {5, 2}, {2, 4}};
  tiles.push_back({1, 4});
  return tiles;
}

std::string describeGemmTiling(const GemmTiling &t) {
  if (t.amx) // rows and vectors are the Halide micro-tile's, unused here
    return "AMX tiles of 32 x 32, " + std::to_string(t.blockRows) +
           " rows x " + std::to_string(kPanelColumns) +
           " columns per task, B in place, bf16 operands";
  std::string s;
  switch (t.path) {
  case GemmPath::Tiled:
    s = "tiled " + std::to_string(t.rows) + " x " + std::to_string(t.vectors) +
        " vectors of " + std::to_string(t.vectorWidth) + ", " +
        std::to_string(t.blockRows) + " rows per task, B " +
        (t.packB > 0 ? "packed" : "in place");
    break;
  case GemmPath::Stream:
    s = "stream, vectors of " + std::to_string(t.vectorWidth);
    break;
  case GemmPath::Dot:
    s = "dot, vectors of " + std::to_string(t.vectorWidth);
    break;
  case GemmPath::Auto:
    s = "auto";
    break;
  }
  if (t.skipRows > 0)
    s += ", empty row tiles of " + std::to_string(t.skipRows) + " skipped";
  if (t.bf16)
    s += ", bf16 operands";
  if (t.bf16B)
    s += ", bf16 B";
  return s;
}

GemmTiling chooseGemmTiling(const GemmShape &shape, const Target &target,
                            const GemmTiling &requested) {
  GemmTiling t = requested;
  const int natural = target.natural_vector_size<float>();
  const double bBytes = 4.0 * shape.N * shape.K;
  if (t.path == GemmPath::Auto) {
    if (shape.bPanels)
      t.path = GemmPath::Tiled; // its B's rows are a panel, not K, apart
    else if (shape.transposeB)
      t.path = shape.M <= kDotMaxM ? GemmPath::Dot : GemmPath::Tiled;
    else if (shape.M == 1 ||
             (shape.M <= kStreamMaxM && bBytes > kStreamMinBBytes))
      // One row: the micro-tile has too few accumulators, Stream is as fast
      // in cache and up to 3x faster from DRAM. A few rows: Tiled computes
      // faster, but Stream reads B faster once it comes from DRAM.
      t.path = GemmPath::Stream;
    else
      t.path = GemmPath::Tiled;
  }

  // Vector width: the target's, but never wider than the vectorized extent
  // (a ShiftInwards tile must fit inside it): k for Dot, n otherwise.
  const int vectorized = t.path == GemmPath::Dot ? shape.K : shape.N;
  if (t.vectorWidth <= 0)
    t.vectorWidth = natural;
  t.vectorWidth = std::min(largestPowerOfTwoAtMost(t.vectorWidth),
                           largestPowerOfTwoAtMost(vectorized));
  t.bf16 = shape.bf16 && t.path == GemmPath::Tiled && !target.has_gpu_feature();
  // A few-row GEMM is bound by reading B: its bf16 pays where B comes from
  // beyond the L2 (a 4096 x 4096 GEMV 1.78x faster); from L2 widening the
  // values costs what the halved bytes save (W3's GEMVs on Zen 4: 0.90-1.0x),
  // so B stays fp32 there, exact.
  t.bf16B = shape.bf16 && t.path != GemmPath::Tiled &&
            !target.has_gpu_feature() && bBytes > targetL2Bytes(target);
  if (t.path != GemmPath::Tiled)
    return t;

  chooseMicroTile(shape, target, t);
  // A task's panel inside one of B's panels: one contiguous stream.
  if (shape.bPanels)
    while (t.vectors > 1 && kPanelColumns % (t.vectors * t.vectorWidth) != 0)
      --t.vectors;

  // Rows per task: all of M when there are enough column panels to keep the
  // threads busy (every extra block of rows packs the B panel again).
  const int panels =
      ceilDiv(shape.N, t.vectors * t.vectorWidth) * std::max(1, shape.batch);
  if (t.blockRows <= 0) {
    int blocks = std::min(ceilDiv(targetTasks(target), panels),
                          ceilDiv(shape.M, t.rows));
    t.blockRows = roundUp(ceilDiv(shape.M, blocks), t.rows);
  }
  t.blockRows = std::max(t.rows, std::min(t.blockRows, shape.M));

  // Packing copies each panel once per task. A transposed B must be packed
  // (else every vector load along n is a gather). Otherwise it pays off when
  // many rows share the panel, or when B's rows are a page or more apart
  // (N >= 1024 floats): read in place, every k step of a micro-tile then
  // touches a new page, and a panel's K pages overflow the data TLB. On an
  // Intel Xeon (2 MiB L2) packing took one core from 71-75 to 109-149
  // GFLOP/s at M = 32..160, K = 512, N = 2048, and from 142 to 181 at
  // N = 1000 (no cache-set aliasing there), while at N = 256 reading in
  // place stayed ahead (186 against 157); on the AMD Zen 4 of the first
  // measurements the two were even for 128 x 768 x N (docs/performance.md,
  // K1). Elsewhere the copy loses: its cache misses are exposed, while the
  // micro-kernel's own loads of B overlap its FMAs.
  // The same once B outgrows the L2: a panel then streams from L3 with K
  // rows spread over K * N * 4 bytes (packing took 128 x 2048 x 512 from 83
  // to 329 GFLOP/s on the 2 MiB-L2 Xeon, and 128 x 1024 x 256, 1 MiB, is
  // faster in place).
  const bool pageApart = 4.0 * shape.N >= kPageBytes;
  const bool beyondL2 = bBytes > targetL2Bytes(target);
  if (shape.bPanels)
    t.packB = 0; // already in panels (of bf16 pairs with bf16)
  else if (t.bf16)
    t.packB = 1; // the pairs of k that vdpbf16ps multiplies are packed
  if (t.packB < 0)
    t.packB = shape.transposeB || shape.M >= kPackMinM ||
                      ((pageApart || beyondL2) && shape.M >= kPackPageMinM)
                  ? 1
                  : 0;
  return t;
}

GemmTiling gemmTilingFor(const GemmShape &shape, const Target &target,
                         const GemmTiling &requested) {
  std::optional<GemmTiling> tuned =
      tunedGemmTiling(shape, target, requested, /*report=*/false);
  return chooseGemmTiling(shape, target, tuned ? *tuned : requested);
}

namespace {

// The names buildGemm gives the loop over a task's micro-tiles, which
// PrefetchNextPanel looks for: the Tiled path's split of m, and the
// tile-skipping path's RDom over row tiles (a suffix of the GEMM's name;
// Halide names its loop <rdom>$y).
constexpr const char *kMicroTileVar = "mt";
constexpr const char *kRowTilesRDom = "_tile";

/// Lowers the prefetches buildGemm marks on a weight kept in panels: at
/// each step k of a micro-tile, the row at k of the task's next panel
/// (buildGemm, "Prefetch"). Of a task's first P micro-tiles (P a power of
/// two), the t-th prefetches the rows k = t, t + P, ...: the next panel
/// arrives over the whole task instead of at once. A weight streams from
/// DRAM or L3 in a model larger than the L3; read on demand, a task's first
/// micro-tile waited for its whole panel (W2's GEMMs ran 10-13% slower than
/// in a model whose weights stay in the L3). With empty row tiles skipped,
/// the filled ones prefetch (a MoE dispatch buffer fills its rows from the
/// first).
///
/// Halide 14's lowering of the marks prefetches every fourth cache line (it
/// steps the split of a prefetch by 64 elements, not 64 bytes): the lines
/// are stepped by 64 bytes here. Every micro-tile prefetching the whole row
/// (the next panel in the first micro-tile, at once) was slower than none,
/// as was a call per micro-tile (the call spills the accumulators). A mark
/// outside a loop over k is dropped.
class PrefetchNextPanel : public Halide::Internal::IRMutator {
  using IRMutator::visit;
  /// Cache lines asked for at once: 4 (a 64-column fp32 panel's row) were
  /// measured faster than 16, and 32 stalled on the miss buffers.
  static constexpr int kChunkLines = 4;
  /// The loops around the statement being visited, innermost last.
  std::vector<const Halide::Internal::For *> loops;

  Halide::Internal::Stmt visit(const Halide::Internal::For *op) override {
    using namespace Halide::Internal;
    if (!starts_with(op->name, "prefetch_split_")) {
      loops.push_back(op);
      Stmt s = IRMutator::visit(op);
      loops.pop_back();
      return s;
    }
    // for (prefetch_split_B.0, 0, lines) { prefetch(B, offset, 1, ...) }
    // (offset linear in the split variable), in the loop over k (`step`)
    // of a micro-tile loop (`tile`: the Tiled path's mt, or the tile
    // skipping path's RDom over the row tiles).
    const Evaluate *e = op->body.as<Evaluate>();
    const Call *c = e ? e->value.as<Call>() : nullptr;
    const For *step = loops.empty() ? nullptr : loops.back(), *tile = nullptr;
    for (const For *l : loops)
      if (ends_with(l->name, std::string(".") + kMicroTileVar) ||
          ends_with(l->name, std::string(kRowTilesRDom) + "$y"))
        tile = l;
    if (!c || !c->is_intrinsic(Call::prefetch) || !step || tile == step)
      return Evaluate::make(0);
    // The step's lines in chunks of kChunkLines (a step of k unrolled
    // spans several of B's rows: 16 lines of a 64-column fp32 panel).
    const IntImm *extent = op->extent.as<IntImm>();
    const int total = extent ? (int)extent->value : 0;
    const int chunks =
        total > kChunkLines && total % kChunkLines == 0 ? total / kChunkLines
                                                        : 1;
    // Chunk i: lines i * kChunkLines + [0, lines) from the first line.
    Expr lines = chunks > 1 ? Expr(kChunkLines) : op->extent;
    Expr line = Variable::make(Int(32), op->name);
    Expr first = simplify(substitute(op->name, op->min, c->args[1]));
    auto chunk = [&](int i) {
      std::vector<Expr> args = c->args;
      args[1] = simplify(first + (i * kChunkLines + line) *
                                     (64 / c->type.bytes()));
      return For::make(op->name, 0, lines, op->for_type, op->device_api,
                       Evaluate::make(Call::make(c->type, Call::prefetch, args,
                                                 Call::Intrinsic)));
    };
    // A task of one micro-tile (Halide drops a loop of one iteration): its
    // loop over k spans the task.
    if (!tile) {
      std::vector<Stmt> all;
      for (int i = 0; i < chunks; ++i)
        all.push_back(chunk(i));
      return Block::make(all);
    }
    // Over the first P micro-tiles, P the largest power of two up to their
    // count (a mask, not a division, at every step k): chunk i of step k in
    // micro-tile t where (k * chunks + i) = t mod P; the others repeat rows
    // already asked for.
    const IntImm *count = tile->extent.as<IntImm>();
    if (!count || count->value < 1)
      return Evaluate::make(0);
    int mask = 1;
    while (mask * 2 <= count->value)
      mask *= 2;
    --mask;
    Expr k = Variable::make(Int(32), step->name) - step->min;
    Expr t = Variable::make(Int(32), tile->name) - tile->min;
    std::vector<Stmt> guarded;
    for (int i = 0; i < chunks; ++i)
      guarded.push_back(IfThenElse::make(
          ((chunks > 1 ? k * chunks + i : k) & mask) == (t & mask),
          chunk(i)));
    return Block::make(guarded);
  }
};

} // namespace

void lowerPanelPrefetches(Pipeline &pipeline) {
  pipeline.add_custom_lowering_pass(new PrefetchNextPanel);
}

Func buildGemm(const GemmShape &shape, const Func &A, const Func &B,
               const GemmEpilogue &epilogue, const Target &target,
               const std::string &name, const GemmTiling &requested,
               const Func &rowUsed, GemmTiling *chosen,
               const GemmPanels &panels) {
  if (shape.M < 1 || shape.N < 1 || shape.K < 1 || shape.batch < 0)
    throw std::invalid_argument(
        "buildGemm: M, N, K must be >= 1 and batch >= 0");
  checkOperand(A, "A", shape);
  checkOperand(B, "B", shape);
  // (The tile-skipping path, rowUsed, has no (j, p) accumulator below: B's
  // pairs would be indexed through n / 64 of a vector there, which Halide
  // 14 leaves as gathers.)
  if (bPairs(shape) &&
      (shape.K % 2 != 0 || target.has_gpu_feature() || rowUsed.defined()))
    throw std::invalid_argument(
        "buildGemm: B in panels of bf16 pairs needs an even K, a CPU target "
        "and every row computed");
  const bool batched = shape.batch > 0;
  if (rowUsed.defined() &&
      (rowUsed.outputs() != 1 ||
       rowUsed.dimensions() != (batched ? 2 : 1)))
    throw std::invalid_argument(
        "buildGemm: rowUsed must be one value over (m" +
        std::string(batched ? ", b)" : ")"));
  // AMX (GemmPanels::amxEntry): a task is one panel of B's columns x
  // blockRows rows (set below); B in panels of bf16 pairs, K in whole steps
  // of the kernel.
  const bool useAmx = !panels.amxEntry.empty() && panels.weights.defined() &&
                      bPairs(shape) && shape.K % 32 == 0 &&
                      shape.N % kPanelColumns == 0;
  // dyncc compile --tune: the schedule timed fastest on this machine (not
  // timed for a GEMM on AMX tiles, whose micro-kernel is not Halide's).
  std::optional<GemmTiling> tuned =
      useAmx ? std::nullopt : tunedGemmTiling(shape, target, requested);
  GemmTiling t = chooseGemmTiling(shape, target, tuned ? *tuned : requested);
  const int vw = t.vectorWidth;
  // Skipping unneeded rows' tiles (rowUsed) stores through an update
  // definition, whose column split must be exact (ShiftInwards would
  // recompute, which Halide does not allow in an update). The rows' tail
  // costs nothing there (the filled rows decide which tiles run), so: the
  // micro-tile the caller or the tuner fixed, else the first in order of
  // preference, with as many of its vectors as make the panel divide N; if
  // none divides N, every row is computed.
  bool skipTiles = rowUsed.defined() && t.path == GemmPath::Tiled;
  if (skipTiles) {
    const GemmTiling &fixed = tuned ? *tuned : requested;
    std::vector<MicroTile> order{{t.rows, t.vectors}};
    if (fixed.rows <= 0 && fixed.vectors <= 0)
      order = microTiles(target);
    skipTiles = false;
    for (MicroTile c : order) {
      int v = std::min(c.vectors, shape.N / vw);
      // A B in panels: the tile's columns inside one of its panels.
      while (v > 0 && (shape.N % (v * vw) != 0 ||
                       (shape.bPanels && kPanelColumns % (v * vw) != 0)))
        --v;
      if (v > 0) {
        t.rows = std::min(c.rows, shape.M);
        t.vectors = v;
        skipTiles = true;
        break;
      }
    }
  }
  if (bPairs(shape) && (t.path != GemmPath::Tiled || !t.bf16 ||
                        kPanelColumns % (t.vectors * vw) != 0))
    throw std::invalid_argument(
        "buildGemm: B in panels of bf16 pairs needs the Tiled path's bf16 "
        "micro-tile, as wide as a divisor of the panel (" +
        std::to_string(kPanelColumns) + " columns)");
  t.skipRows = skipTiles ? t.rows : 0;
  if (skipTiles)
    t.blockRows = shape.M; // one task per (panel, batch element)
  // AMX: blockRows a multiple of the kernel's 32 x 32 blocks, as many
  // blocks as make targetTasks tasks where the shape allows.
  if (useAmx) {
    t.amx = true;
    const int panels = shape.N / kPanelColumns * std::max(1, shape.batch);
    int blocks = 1;
    while (panels * blocks < targetTasks(target) &&
           roundUp(ceilDiv(shape.M, blocks), 32) > 32)
      ++blocks;
    t.blockRows = std::min(roundUp(ceilDiv(shape.M, blocks), 32), shape.M);
  }
  if (chosen)
    *chosen = t;

  Var n("n"), m("m"), b("b");
  std::vector<Var> outVars = {n, m};
  if (batched)
    outVars.push_back(b);
  std::vector<Expr> outArgs(outVars.begin(), outVars.end());
  // Operand access; an operand without a batch dimension is shared.
  auto call = [&](const Func &f, std::vector<Expr> args) {
    if (batched && f.dimensions() == 3)
      args.push_back(b);
    return f(args);
  };
  auto withBatch = [&](std::vector<Expr> args) {
    if (batched)
      args.push_back(b);
    return args;
  };
  // bf16B (Dot, Stream): B's values rounded to bf16 where they are read. A
  // B kept as bf16 arrives widened, and the round trip folds away.
  auto roundB = [&](Expr v) {
    return t.bf16B ? cast(Float(32), cast(BFloat(16), v)) : v;
  };
  auto epilogueOf = [&](const Func &acc) {
    return epilogue ? epilogue(acc(outArgs), outVars) : acc(outArgs);
  };
  // Static bounds: constant loop extents everywhere, and the schedule's
  // tile choices hold for exactly this region.
  auto bound = [&](Func &out) {
    out.bound(n, 0, shape.N).bound(m, 0, shape.M);
    if (batched)
      out.bound(b, 0, shape.batch);
  };
  auto finish = [&](Func &out, const Func &acc) {
    out(outArgs) = epilogueOf(acc);
    bound(out);
  };

  Func out(name), acc(name + "_acc");
  Var no("no"), ni("ni"), mo("mo"), mi("mi"), mt(kMicroTileVar), mr("mr"), tile("tile");

  if (target.has_gpu_feature()) {
    // One GPU thread per output: a 16 x 16 block of threads per tile of
    // the output (the batch as a third grid dimension), k serial in
    // registers. Shared-memory staging of A and B is the next step.
    RDom k(0, shape.K, name + "_k");
    acc(outArgs) = 0.0f;
    acc(outArgs) += call(A, {k, m}) *
                    (shape.transposeB ? call(B, {k, n}) : call(B, {n, k}));
    finish(out, acc);
    out.gpu_tile(n, m, no, mo, ni, mi, 16, 16, TailStrategy::GuardWithIf);
    if (batched)
      out.gpu_blocks(b);
    acc.compute_at(out, ni);
    return out;
  }
  // Parallel over v (and the batch) in `stage` of out (its pure definition,
  // or the update of the tile-skipping path); returns the loop of one task.
  auto parallelTasks = [&](const Var &v, Stage stage) {
    if (!batched) {
      stage.parallel(v);
      return v;
    }
    Var task(v.name() + "_b");
    stage.fuse(v, b, task).parallel(task);
    return task;
  };

  // Columns in units of `unit` (the last unit shifted inwards: it recomputes
  // a few columns of its neighbour), `perTask` units per parallel task (the
  // last task guarded): n = (no * perTask + nj) * unit + nk. The shifted
  // last unit runs in the same task as the unit it overlaps, so no output is
  // written by two tasks: the two would race, and Dot and Stream sum a column
  // in another order at another position of a unit, so the result would
  // change from run to run in the last bits.
  auto splitColumns = [&](int unit, int perTask, Var &no, Var &nj, Var &nk) {
    const int units = ceilDiv(shape.N, unit);
    perTask = std::max(1, std::min(perTask, units));
    if (shape.N % unit != 0)
      while (units % perTask == 1 && perTask < units)
        ++perTask;
    Var nu("nu");
    out.split(n, nu, nk, unit, TailStrategy::ShiftInwards)
        .split(nu, no, nj, perTask, TailStrategy::GuardWithIf);
  };

  if (t.path == GemmPath::Dot) {
    // k = ko * vw + lane over the whole vectors, then a scalar tail.
    const int kMain = shape.K / vw * vw;
    RDom rv(0, vw, 0, shape.K / vw, name + "_k");
    Var lane("lane");
    Expr kv = rv.y * vw + rv.x;
    Func bt(name + "_bt");
    Var k("k");
    bt(withBatch({k, n})) =
        roundB(shape.transposeB ? call(B, {k, n}) : call(B, {n, k}));
    acc(outArgs) = 0.0f;
    acc(outArgs) += call(A, {kv, m}) * bt(withBatch({kv, n}));
    if (kMain < shape.K) {
      RDom tail(kMain, shape.K - kMain, name + "_ktail");
      acc(outArgs) += call(A, {tail, m}) * bt(withBatch({tail, n}));
    }
    finish(out, acc);

    // A group of B rows x all of A's rows at a time: every vector of B is
    // loaded once for all M rows, and groups x M independent sums hide the
    // FMA latency.
    const int group = std::max(1, std::min({kDotGroup, 24 / shape.M, shape.N}));
    // Few, large tasks: at batch 1 a GEMV is a few microseconds, and many
    // small tasks spend it waking and handing out work.
    const int groupsPerTask =
        ceilDiv(std::max(16, shape.N / targetTasks(target)), group);
    Var ng("ng"), nk("nk");
    splitColumns(group, groupsPerTask, no, ng, nk);
    out.reorder(nk, m, ng, no);
    // A small product is over before a second thread would have woken up.
    if ((int64_t)shape.M * shape.N * shape.K * std::max(1, shape.batch) >=
        kDotParallelMacs)
      parallelTasks(no, out);
    acc.compute_at(out, ng);
    Func lanes = acc.update(0).rfactor(rv.x, lane);
    // rfactor puts the new lane dimension outermost; it must be innermost
    // in storage for the partial sums to be whole vectors (in registers).
    lanes.compute_at(out, ng).reorder_storage(lane, n, m);
    if (vw > 1)
      lanes.vectorize(lane);
    Stage update = lanes.update();
    update.reorder(lane, n, m, rv.y);
    if (vw > 1)
      update.vectorize(lane);
    update.unroll(n);
    if (shape.M <= kDotMaxM)
      update.unroll(m);
    // Each row's vector of partial sums is added up as a vector reduction
    // (log2(vw) shuffles and adds), not vw dependent scalar adds.
    if (vw > 1)
      acc.update(0).atomic().vectorize(rv.x).unroll(n);
    // The K tail (K not a multiple of the vector width) stays a scalar loop.
    if (kMain < shape.K)
      acc.update(1).unscheduled();
    return out;
  }

  RDom r(0, shape.K, name + "_k");
  Var k("k");
  // B as a Func over (n, k[, b]) whatever its layout; a transposed B goes
  // through a staging Func (bkn) for the blocked transpose below.
  Func bnk(name + "_bnk"), bkn(name + "_bkn");
  const bool pairs = bPairs(shape);
  if (pairs) {
    // B in panels of bf16 pairs: read as the pairs below, never as (n, k).
  } else if (shape.transposeB) {
    bkn(withBatch({k, n})) = roundB(call(B, {k, n}));
    bnk(withBatch({n, k})) = bkn(withBatch({k, n}));
  } else {
    bnk(withBatch({n, k})) = roundB(call(B, {n, k}));
  }
  // bf16 (Tiled only): A and B rounded to bfloat16, k in pairs. abf(k, m)
  // is A's rows converted once per call; bp(kk, n, k2) a task's panel of B
  // with the two k of a pair adjacent (k = 2 * k2 + kk), zero past K, so
  // that one 32-bit broadcast of A's pair and one vector of B's pairs feed
  // vdpbf16ps (16 sums of 2 products each).
  const bool bf16 = t.bf16;
  const int K2 = ceilDiv(shape.K, 2);
  Func abf(name + "_abf");
  // A converted once per call, rows in parallel (k vectorized: 32 floats a
  // vcvtne2ps2bf16).
  auto scheduleAbf = [&] {
    abf.compute_root();
    Var rows = m;
    int rowCount = shape.M;
    if (abf.dimensions() == 3) {
      rows = Var("mb");
      abf.fuse(m, b, rows);
      rowCount *= shape.batch;
    }
    abf.parallel(rows, std::max(1, rowCount / targetTasks(target)));
    if (shape.K >= 32)
      abf.vectorize(k, 32);
  };
  RDom rp(0, 2, 0, K2, name + "_kp");
  Func bp(name + "_bp"), accP(name + "_accp");
  Var kk("kk"), k2("k2"), jp("j"), pp("p");
  if (bf16) {
    const Expr zero = cast(BFloat(16), 0.0f);
    std::vector<Var> aArgs{k, m};
    if (batched && A.dimensions() == 3)
      aArgs.push_back(b);
    abf(aArgs) = select(k < shape.K,
                        cast(BFloat(16), call(A, {min(k, shape.K - 1), m})),
                        zero);
    std::vector<Var> bArgs{kk, n, k2};
    if (batched)
      bArgs.push_back(b); // as bnk's: a task packs its batch element's panel
    if (pairs) {
      // Kept so in memory (bf16 weights in panels): read in place, the
      // pair's two values and the panel's n contiguous; over (kk, j, k2, p)
      // with n = p * W + j, W the micro-tile's width (accP below), whose
      // p-th tile is the (p % (64 / W))-th of panel p / (64 / W).
      const int tilesPerPanel = kPanelColumns / (t.vectors * vw);
      std::vector<Expr> at{kk, (pp % tilesPerPanel) * (t.vectors * vw) + jp,
                           k2, pp / tilesPerPanel};
      bArgs = {kk, jp, k2, pp};
      if (batched) {
        bArgs.push_back(b);
        if (B.dimensions() == 5) // else one weight for the whole batch
          at.push_back(b);
      }
      bp(bArgs) = cast(BFloat(16), B(at));
    } else if (shape.K % 2 == 0)
      bp(bArgs) = cast(BFloat(16), bnk(withBatch({n, 2 * k2 + kk})));
    else
      bp(bArgs) = select(2 * k2 + kk < shape.K,
                         cast(BFloat(16), bnk(withBatch(
                                              {n, min(2 * k2 + kk, shape.K - 1)}))),
                         zero);
    std::vector<Expr> aAt{2 * rp.y + rp.x, m};
    if (batched && A.dimensions() == 3)
      aAt.push_back(b);
    if (useAmx) {
      // The block's products on AMX tiles (runtime/AmxGemm.c), reading
      // abf and the weight's pairs in place.
      Func tiles(name + "_amx");
      tiles.define_extern(panels.amxEntry,
                          {abf, panels.weights, Expr(shape.K), Expr(shape.N)},
                          Float(32), outVars, NameMangling::C);
      acc(outArgs) = tiles(outArgs);
      finish(out, acc);
      // One task per panel of columns and block of rows; the task's
      // extern call fills its block, which the epilogue then reads.
      out.split(n, no, ni, kPanelColumns)
          .split(m, mo, mi, t.blockRows, TailStrategy::ShiftInwards)
          .reorder(ni, mi, no, mo)
          .fuse(no, mo, tile);
      Var task = parallelTasks(tile, out);
      if (vw > 1)
        out.vectorize(ni, vw);
      tiles.compute_at(out, task);
      scheduleAbf();
      return out;
    }
    if (pairs) {
      // Accumulated over (j, p, m[, b]) with n = p * W + j: B's pairs are
      // then read at j and p without dividing a vector of n (Halide 14 left
      // n / 64 and n % 64 of a micro-tile's last vector as gathers). A
      // micro-tile's j are its W columns and p one value.
      const int W = t.vectors * vw;
      accP(withBatch({jp, pp, m})) = 0.0f;
      accP(withBatch({jp, pp, m})) +=
          cast<float>(abf(aAt)) *
          cast<float>(bp(withBatch({rp.x, jp, rp.y, pp})));
      acc(outArgs) = accP(withBatch({n % W, n / W, m}));
    } else {
      acc(outArgs) = 0.0f;
      acc(outArgs) +=
          cast<float>(abf(aAt)) * cast<float>(bp(withBatch({rp.x, n, rp.y})));
    }
  } else {
    acc(outArgs) = 0.0f;
    acc(outArgs) += call(A, {r, m}) * bnk(withBatch({n, r}));
  }
  if (!skipTiles)
    finish(out, acc);

  if (t.path == GemmPath::Stream) {
    // Register block: M rows x `nvec` vectors of accumulators, loaded and
    // stored once per `kUnroll` rows of B (a divisor of K: no guard).
    const int nvec =
        std::max(1, std::min({4, 24 / shape.M, std::max(1, shape.N / vw)}));
    const int step = nvec * vw;
    const int kUnroll = shape.K % 8 == 0   ? 8
                        : shape.K % 4 == 0 ? 4
                        : shape.K % 2 == 0 ? 2
                                           : 1;
    // Output block per task: its accumulators (block x M floats) stay in
    // L1; a multiple of the cores in tasks, so that the threads share them
    // evenly.
    const int maxBlock = std::max(step, 4096 / shape.M / step * step);
    const int cores = scheduleMachine(target).cores;
    int tasks = cores;
    while (roundUp(ceilDiv(shape.N, tasks), step) > maxBlock)
      tasks += cores;
    const int block = std::min(roundUp(ceilDiv(shape.N, tasks), step),
                               std::max(step, shape.N / step * step));
    Var nj("nj");
    splitColumns(step, block / step, no, nj, ni);
    out.reorder(ni, m, nj, no);
    Var task = parallelTasks(no, out);
    if (vw > 1)
      out.vectorize(ni, vw);
    // Per task, so that B is read row by row across the whole block; per
    // unit where N is not a multiple of the unit: the shifted last unit
    // makes the last task's block a partial unit longer, which the update's
    // exact split below cannot cover.
    acc.compute_at(out, shape.N % step == 0 ? task : nj);
    if (vw > 1)
      acc.vectorize(n, vw);
    RVar ko("ko"), ki("ki");
    Var nO("nO"), nI("nI");
    Stage update = acc.update();
    update.split(r, ko, ki, kUnroll)
        .split(n, nO, nI, step)
        .reorder(nI, m, ki, nO, ko);
    if (vw > 1)
      update.vectorize(nI, vw);
    update.unroll(nI).unroll(ki);
    if (shape.M <= kStreamMaxM)
      update.unroll(m);
    return out;
  }

  // Tiled.
  const int panel = t.vectors * vw;
  Var task;
  if (!skipTiles) {
    out.split(n, no, ni, panel, TailStrategy::ShiftInwards)
        .split(m, mo, mi, t.blockRows, TailStrategy::ShiftInwards)
        .split(mi, mt, mr, t.rows, TailStrategy::ShiftInwards)
        .reorder(ni, mr, mt, no, mo)
        .fuse(no, mo, tile);
    task = parallelTasks(tile, out);
    if (vw > 1)
      out.vectorize(ni, vw);
    out.unroll(ni).unroll(mr);
    // The accumulator lives in registers: computed per micro-tile.
    (pairs ? accP : acc).compute_at(out, mt);
  } else {
    // Only the micro-tiles with a needed row: the rows are cut into tiles
    // of `rows` (the last one shifted inwards, as ShiftInwards would), an
    // update stores each needed tile, and the predicate (RDom::where) sits
    // around the tile's whole computation: Halide places acc's realization
    // inside it. One task per (column panel, batch element); blockRows
    // does not apply (a task's tiles share its packed panel of B).
    const int rows = t.rows, tiles = ceilDiv(shape.M, rows);
    Func value(name + "_value"), used(name + "_tiles");
    value(outArgs) = epilogueOf(acc);
    Var tv("tv");
    RDom rr(0, rows, name + "_tile_rows");
    auto usedAt = [&](Expr row) {
      std::vector<Expr> args{row};
      if (batched)
        args.push_back(b);
      return cast<uint8_t>(rowUsed(args) != 0);
    };
    used(withBatch({tv})) = maximum(usedAt(min(tv * rows, shape.M - rows) + rr));
    used.compute_root();
    out(outArgs) = undef<float>();
    RDom rt(0, rows, 0, tiles, name + kRowTilesRDom);
    rt.where(used(withBatch({rt.y})) != 0);
    Expr row = min(rt.y * rows, shape.M - rows) + rt.x;
    out(withBatch({n, row})) = value(withBatch({n, row}));
    bound(out);
    Stage tilesStage = out.update();
    tilesStage.split(n, no, ni, panel, TailStrategy::GuardWithIf)
        .reorder(ni, rt.x, rt.y, no);
    task = parallelTasks(no, tilesStage);
    if (vw > 1)
      tilesStage.vectorize(ni, vw);
    tilesStage.unroll(ni).unroll(rt.x);
    acc.compute_at(out, rt.y);
  }

  // Prefetch: B kept in panels and handed over as panels.weights without
  // an AMX entry (EmitHalide's weights in panels): mark the rows at k of the
  // next task's panel (`steps` steps of k on: the next panel of B's columns,
  // or of the next batch element's B) at each step k of the micro-kernel
  // (a step of k unrolled: its 4 rows, or its pair of rows with bf16);
  // lowerPanelPrefetches spreads the marks over the task's micro-tiles. A
  // task's next one runs on the same thread but at the end of its block
  // (runtime/ThreadPool.h).
  auto markNextPanel = [&](Stage stage, const RVar &k, int steps) {
    if (shape.bPanels && panels.weights.defined() && panels.amxEntry.empty())
      stage.prefetch(panels.weights, k, k, steps,
                     PrefetchBoundStrategy::NonFaulting);
  };

  // The accumulator lives in registers: init and update fully unrolled,
  // k outermost in the update (with B's pairs in panels: accP, over the
  // micro-tile's columns j).
  Func &accR = pairs ? accP : acc;
  const Var &nR = pairs ? jp : n;
  if (vw > 1)
    accR.vectorize(nR, vw);
  accR.unroll(nR).unroll(m);
  Stage update = accR.update();
  if (bf16) {
    // The pair's two products and the n lanes as one vector reduction
    // (atomic: the pair's sum is reassociated into the lanes), which
    // Halide maps to vdpbf16ps on avx512_sapphirerapids.
    update.reorder(rp.x, nR, m, rp.y).atomic().vectorize(rp.x);
    if (vw > 1)
      update.vectorize(nR, vw);
    update.unroll(nR).unroll(m);
    scheduleAbf(); // B's pairs packed per task (below)
    // A pair of B's rows along n, interleaved (two dense loads and a
    // shuffle) and converted, 2 * vw values a vector.
    if (pairs) {
      // bp inlined: the micro-kernel loads B's pairs in place (and
      // prefetches the next panel's: a panel is K2 rows of pairs).
      markNextPanel(update, rp.y, K2);
      return out;
    }
    bp.compute_at(out, task);
    Var kn("kn");
    if (shape.transposeB && vw > 1 && shape.K % 2 == 0 && K2 >= vw / 2) {
      // B is [N, K]: through a vw x vw staging tile as for fp32 (dense
      // vector loads along k from B's rows, stored transposed), never
      // vw rows of B K floats apart at once (power-of-two strides alias
      // in the cache: FFN down, K = 1024, packed in 2.5x its fp32 time).
      Var nI("nI"), k2I("k2I");
      bp.tile(n, k2, nI, k2I, vw, vw / 2, TailStrategy::ShiftInwards)
          .reorder(kk, nI, k2I, n, k2)
          .fuse(kk, nI, kn)
          .vectorize(kn, 2 * vw)
          .unroll(k2I);
      bkn.compute_at(bp, n).reorder_storage(n, k).vectorize(k).unroll(n);
    } else if (vw > 1) {
      bp.fuse(kk, n, kn).vectorize(kn, 2 * vw);
    }
    return out;
  }
  // A micro-tile of fewer than 16 FMAs a step of k (AVX2's, 16 ymm) has
  // k unrolled by 4 (or 2 where that divides K: no guard): the loop's own
  // instructions, and with B in panels a micro-tile narrower than the panel
  // computing its B address per vector (LLVM turns the add of the column
  // into an or, which no load folds), then run once per 4 steps. AVX2's
  // 2 x 4 vectors of 8 spent 16 of 30 instructions of a step on them;
  // unrolled, W2's GEMMs ran 1.2x faster. AVX-512's 4 x 4, 16 FMAs a step
  // and a whole panel wide, ran 2% slower unrolled (A/B, W2).
  const int kUnroll = t.rows * t.vectors >= 16 ? 1
                      : shape.K % 4 == 0       ? 4
                      : shape.K % 2 == 0       ? 2
                                               : 1;
  RVar ko(r.x.name() + "o"), ki(r.x.name() + "i");
  if (kUnroll > 1)
    update.split(r, ko, ki, kUnroll).reorder(n, m, ki, ko).unroll(ki);
  else
    update.reorder(n, m, r);
  if (vw > 1)
    update.vectorize(n, vw);
  update.unroll(n).unroll(m);
  markNextPanel(update, kUnroll > 1 ? ko : r.x, shape.K / kUnroll);

  if (t.packB) {
    // The task's panel of B, contiguous: the micro-kernel then reads one
    // dense stream instead of K rows N floats apart (whose power-of-two
    // strides also alias in the cache's sets).
    bnk.compute_at(out, task);
    if (shape.transposeB && vw > 1 && shape.K >= vw) {
      // Transpose through a vw x vw staging tile: dense vector loads along
      // k from B's rows, stored transposed into the tile, then dense vector
      // loads along n from it. (Vectorizing n directly gathers: 10-20% of
      // the GEMM's time.) ShiftInwards: a rounded-up tile would read B
      // past row K.
      Var nI("nI"), kI("kI");
      bnk.tile(n, k, nI, kI, vw, vw, TailStrategy::ShiftInwards)
          .vectorize(nI)
          .unroll(kI);
      bkn.compute_at(bnk, n).reorder_storage(n, k).vectorize(k).unroll(n);
    } else if (vw > 1) {
      bnk.vectorize(n, vw);
    }
  }
  return out;
}

} // namespace dyncc::codegen
