//===- GemmKernel.h - dyncc's GEMM kernel as a Halide pipeline -*- C++ -*-===//
//
// Builds the Halide Func of a (batched) fp32 matrix multiply with a fused
// elementwise epilogue, scheduled for one Halide target. Internal to codegen/:
// this header includes Halide.h, so no file that includes MLIR headers may
// include it.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_GEMMKERNEL_H
#define DYNCC_CODEGEN_GEMMKERNEL_H

#include "runtime/dynrt.h"

#include <Halide.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace dyncc::codegen {

/// The static shape of one GEMM: out[b][m][n] = sum_k A[b][m][k] * B[b][k][n]
/// (row-major names). Every extent is a compile-time constant: dyncc compiles
/// static-shaped kernels, and the schedule is chosen for exactly this shape.
struct GemmShape {
  /// 0: no batch dimension, every Func is 2-D. >= 1: the output (and every
  /// operand that has one) carries a third, outermost dimension b of this
  /// extent. A batch of 1 is still 3-D, so that a bucket of size 1 keeps the
  /// arity of the others.
  int batch = 0;
  int M = 1; ///< rows of the output (and of A)
  int N = 1; ///< columns of the output (and of B)
  int K = 1; ///< the reduced dimension
  /// false: B is indexed B(n, k[, b]) (row-major [K, N]).
  /// true:  B is indexed B(k, n[, b]) (row-major [N, K]: the [out, in]
  ///        weights of a linear layer).
  bool transposeB = false;
  /// dyncc compile --precision=bf16: the Tiled path rounds A and B to
  /// bfloat16 (round to nearest even) and accumulates their products in
  /// fp32, with AVX512-BF16's vdpbf16ps where the target has it
  /// (avx512_sapphirerapids) and exact fp32 arithmetic on the rounded
  /// values elsewhere. The few-row paths (Dot, Stream), bound by reading B,
  /// round only B, and only where B outgrows the target's L2 (per core), and
  /// multiply in fp32: B kept as bfloat16 in memory (the weights,
  /// --bf16-weights) is then read at half the bytes and widened exactly,
  /// with no BF16 instruction needed.
  bool bf16 = false;
  /// B is a weight the runtime keeps in panels of kPanelColumns columns
  /// (dyncc compile --pack-weights; DYNRT_STORAGE_PANELS): B(n, k) reads
  /// contiguously along n within a panel, so the Tiled path reads it in
  /// place instead of copying a panel per task (transposeB is false).
  ///
  /// With bf16 (--precision=bf16, DYNRT_STORAGE_BF16_PANELS), the panels
  /// hold bfloat16 pairs of k: (n, k) at ((n / 64) * K / 2 + k / 2) * 128 +
  /// (n % 64) * 2 + k % 2, which vdpbf16ps multiplies as they lie. B is then
  /// a Func over (kk, n % 64, k2, n / 64[, b]): B's value at (n, 2 * k2 +
  /// kk) (bPairs); K is even, every row is computed (no rowUsed) and the
  /// micro-tile's width divides 64 (as chooseGemmTiling picks it for
  /// bPanels).
  bool bPanels = false;
};

/// Whether buildGemm reads B as bf16 pairs in panels (bPanels with bf16).
inline bool bPairs(const GemmShape &shape) {
  return shape.bPanels && shape.bf16;
}

/// The columns of a panel of a weight kept in panels (GemmShape::bPanels):
/// a multiple of every target's micro-tile panel width it is read with,
/// and the width the runtime arranges.
constexpr int kPanelColumns = DYNRT_STORAGE_PANEL_WIDTH;

/// Receives the accumulated dot product at one output point and the output
/// coordinates (n, m[, b]) and returns the value to store there. It may read
/// other Funcs at those coordinates: a bias bias(n), a residual r(n, m), ...
using GemmEpilogue = std::function<Halide::Expr(
    const Halide::Expr &acc, const std::vector<Halide::Var> &outVars)>;

/// The loop structures buildGemm can schedule (each correct for every shape;
/// Auto picks by shape, the others are there for tests and tuning).
enum class GemmPath {
  Auto,
  /// Register micro-tiles of `rows` x (`vectors` * vw) outputs, k innermost,
  /// optionally over a packed copy of B. The general case.
  Tiled,
  /// Few rows, B not transposed: a wide block of outputs accumulated in L1
  /// while B streams through row by row.
  Stream,
  /// Few rows, B transposed: dot products vectorized along k (both operands
  /// are contiguous in k), several rows of B and all of A's rows at once.
  Dot,
};

/// The schedule's parameters. Zero / Auto / -1 fields are chosen by
/// chooseGemmTiling from the shape and the target.
struct GemmTiling {
  GemmPath path = GemmPath::Auto;
  int vectorWidth = 0; ///< floats per vector along n (along k for Dot)
  int vectors = 0;     ///< Tiled: vectors per micro-tile row
  int rows = 0;        ///< Tiled: rows of the register micro-tile
  int blockRows = 0;   ///< Tiled: rows per parallel task (shares one packed B)
  int packB = -1;      ///< Tiled: -1 auto, 0 read B in place, 1 pack per task
  /// Tiled with rowUsed, as chosen (buildGemm's `chosen`): the rows are
  /// computed in tiles of this many and a tile without a needed row is
  /// skipped; 0 when every row is computed.
  int skipRows = 0;
  /// As chosen: this schedule multiplies bf16 operands (GemmShape::bf16 on
  /// the Tiled path of a CPU target); chooseGemmTiling decides it.
  bool bf16 = false;
  /// As chosen: this schedule rounds B alone to bf16 and multiplies in fp32
  /// (GemmShape::bf16 on the Dot or Stream path of a CPU target, B larger
  /// than its L2).
  bool bf16B = false;
  /// As chosen: the products are made on AMX tiles by an extern call per
  /// task (GemmPanels::amxEntry; a task is one panel of B's columns x
  /// blockRows rows).
  bool amx = false;
};

/// A B kept in panels (GemmShape::bPanels) as its buffer, which buildGemm
/// reads beside the Func B: the Tiled path marks the rows of each task's
/// next panel for prefetching (the pipeline then needs
/// lowerPanelPrefetches), and with dyncc compile --amx a GEMM whose B is
/// bf16 pairs in panels (bPairs) multiplies on AMX tiles instead, each
/// parallel task calling `amxEntry` (runtime/AmxGemm.c) on its block of the
/// output; the epilogue stays Halide's. Default: neither.
struct GemmPanels {
  /// B as the runtime keeps it: the input buffer holding the panels, fp32
  /// or bfloat16 pairs, [N, K] (batched: [E, N, K]); the Func B passed to
  /// buildGemm reads the same buffer, and the AMX extern reads it in place.
  /// Default: undefined.
  Halide::Internal::Parameter weights;
  /// "dynrt_amx_bf16_gemm", or "dynrt_amx_bf16_gemm_emulated", its twin
  /// through LLVM's scalar lowering of the tile instructions (any x86-64;
  /// for tests); empty: no AMX.
  std::string amxEntry;
};


/// A register micro-tile of the Tiled path: rows x vectors accumulators.
struct MicroTile {
  int rows, vectors;
};

/// The rows of the tallest register micro-tile: chooseGemmTiling's for a
/// narrow N (few vectors), and one of the tiles dyncc compile --tune times.
constexpr int kMaxTileRows = 12;

/// The micro-tiles that fit `target`'s register file, in order of
/// preference (the automatic choice weighs them by the work their tails
/// waste; dyncc compile --tune times them and a few more).
std::vector<MicroTile> microTiles(const Halide::Target &target);

/// The L2 per core of the machine kernels for `target` are scheduled for
/// (codegen::scheduleMachine).
double targetL2Bytes(const Halide::Target &target);

/// The parallel tasks a kernel for `target` is cut into where its shape
/// allows: 2 per core of the machine it is scheduled for, and at least 8.
int targetTasks(const Halide::Target &target);

/// One line describing a chosen schedule, e.g. "tiled 8 x 2 vectors of 16,
/// B packed, empty row tiles of 8 skipped" (dyncc compile --stats).
std::string describeGemmTiling(const GemmTiling &tiling);

/// Adds to `pipeline` the lowering of the prefetches buildGemm marks for a
/// B in panels handed over as GemmPanels::weights without an AMX entry (each
/// task's next panel, spread over its micro-tiles). A pipeline holding such
/// a GEMM needs it: Halide 14's own lowering of the marks is slower than no
/// prefetch.
void lowerPanelPrefetches(Halide::Pipeline &pipeline);

/// Builds out(n, m[, b]) = epilogue(sum_k A(k, m[, b]) * B'(n, k[, b]), ...)
/// where B' is B or its transpose (see GemmShape::transposeB).
///
/// - A is a Func over (k, m) or (k, m, b); B over (n, k) / (k, n), with or
///   without b. In a batched GEMM an operand without a batch dimension is
///   shared by every batch element (e.g. the weights of a linear layer).
///   Both must produce one fp32 value. Their schedules are the caller's:
///   typically ImageParams (as Funcs) or producers computed at root; an
///   inlined producer is recomputed for every use.
/// - epilogue may be empty (identity). Funcs it reads are scheduled by the
///   caller too (inlined by default, which is what bias/residual want).
/// - The result is bounded to exactly [0, N) x [0, M) (x [0, batch)) and
///   scheduled for `target`: realize it over that region (or pass an output
///   buffer of that size to the compiled pipeline). Its loops are parallel
///   over tasks (>= targetTasks(target) where the shape allows) on the Halide runtime's thread
///   pool (HL_NUM_THREADS / halide_set_num_threads).
/// - `name` names the result; the Funcs buildGemm adds are named
///   `name`_acc, `name`_bnk, ..., so names must be unique per pipeline.
/// - rowUsed, when defined, is a Func over (m) or (m, b) that is true where
///   row m (of batch element b) is needed: the other rows of the result are
///   don't-care, and the Tiled path skips every register micro-tile whose
///   rows are all unneeded (a MoE dispatch buffer's empty capacity and
///   padding, docs/moe.md), leaving those rows unwritten. The Dot and Stream
///   paths (a few rows) compute every row.
/// - chosen, when given, receives the schedule used (skipRows included).
/// - panels: B's buffer when B is kept in panels (its next panel is then
///   prefetched); with an AMX entry, B bf16 pairs in panels (bPairs) and K
///   a multiple of 32, the products are made on AMX tiles (GemmPanels).
///
/// Throws std::invalid_argument on a bad shape or operand arity.
Halide::Func buildGemm(const GemmShape &shape, const Halide::Func &A,
                       const Halide::Func &B, const GemmEpilogue &epilogue,
                       const Halide::Target &target,
                       const std::string &name = "gemm",
                       const GemmTiling &tiling = {},
                       const Halide::Func &rowUsed = {},
                       GemmTiling *chosen = nullptr,
                       const GemmPanels &panels = {});

/// The tiling buildGemm uses for `shape` on `target` when given `requested`
/// (zero fields filled in, everything clamped to the shape).
GemmTiling chooseGemmTiling(const GemmShape &shape,
                            const Halide::Target &target,
                            const GemmTiling &requested = {});

/// The tiling buildGemm gives `shape` on `target` when it is given
/// `requested` (the tuned one with --tune), before buildGemm's adjustments
/// for rowUsed: its path and bf16 are buildGemm's.
GemmTiling gemmTilingFor(const GemmShape &shape, const Halide::Target &target,
                         const GemmTiling &requested = {});

/// With `dyncc compile --tune` (Tuning.h, GemmTune.cpp): the tiling timed
/// fastest for `shape` on this machine (timed now, or from the cache) when
/// `requested` leaves every choice to chooseGemmTiling; nullopt when tuning
/// is off or the caller asked for a tiling. `report`: add the line that
/// dyncc compile --tune prints for the shape (false for a look-up that is
/// not a build, e.g. gemmTilingFor).
std::optional<GemmTiling> tunedGemmTiling(const GemmShape &shape,
                                          const Halide::Target &target,
                                          const GemmTiling &requested,
                                          bool report = true);

} // namespace dyncc::codegen

#endif // DYNCC_CODEGEN_GEMMKERNEL_H
