//===- AttentionKernel.h - attention as one Halide pipeline -----*- C++ -*-===//
//
// Builds scaled dot-product attention, softmax(epilogue(Q K^T)) V, as one
// Halide Func whose parallel tasks each own a block of queries: the block's
// scores, their softmax and its product with V are computed in the task's
// scratch, so the M x N score matrix is never written to memory. Internal to
// codegen/ (includes Halide.h, like GemmKernel.h).
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_ATTENTIONKERNEL_H
#define DYNCC_CODEGEN_ATTENTIONKERNEL_H

#include "GemmKernel.h"

#include <Halide.h>

#include <functional>
#include <string>
#include <vector>

namespace dyncc::codegen {

/// The static shape of one attention: out[b][m][d] = sum_n P[b][m][n] V[b][n][d]
/// with P = softmax over n of S[b][m][n] = epilogue(sum_k Q[b][m][k] K[b][n][k]).
struct AttentionShape {
  int batch = 0; ///< 0: no batch dimension (2-D Funcs); else its extent
  int M = 1;     ///< queries
  int N = 1;     ///< keys (and values)
  int K = 1;     ///< features of a query and a key
  int D = 1;     ///< features of a value
};

/// The Funcs between the scores and the value product, made by the caller
/// from the scores Func (a softmax as max, exp, sum and divide, in whatever
/// decomposition the model has): `probs` over (n, m[, b]) is what multiplies
/// V; `perKey` (over (n, m[, b]), probs among them) and `perQuery` (row
/// statistics over (m[, b])) are stored per block of queries and vectorized
/// along the queries; every other Func the caller made is inlined. Each must
/// read only its own block's rows of the scores (the caller checks).
struct AttentionSoftmax {
  Halide::Func probs;
  std::vector<Halide::Func> perKey, perQuery;
};

/// The tiles of keys that buildAttention computes the scores in, handed to
/// the caller's softmax: with keys skipped (keyLive), a per-key Func that
/// is `fill` at a skipped key (exp(-inf - max) = 0) may be defined as that
/// constant, then an update over `domain(b)` at `key(r)`, which computes
/// only the tiles before the batch element's last kept key.
struct AttentionKeyTiles {
  bool skip = false;  ///< keys are skipped (else domain covers every key)
  int N = 1, keys = 1; ///< keys in all and per tile
  Halide::Func end;   ///< over ([b]): one past the last kept key
  /// end at `batch` (undefined without a batch).
  Halide::Expr endAt(const Halide::Expr &batch) const;
  /// The tiles (x: the key in its tile, y: the tile; the last one shifted
  /// inwards), predicated on starting before end(batch) where skipping.
  /// `batch`: the defining Func's batch Var, undefined without a batch.
  Halide::RDom domain(const Halide::Expr &batch, const std::string &name) const;
  /// The key of a point of a domain.
  Halide::Expr key(const Halide::RDom &r) const;
};

/// The schedule's parameters (buildAttention's `requested`: zero fields are
/// chosen from the shape and the target).
struct AttentionTiling {
  int queries = 0;     ///< queries per task (a vector of them)
  int keys = 0;        ///< keys per register tile of the scores
  int valueRows = 0;   ///< query rows per register tile of the value product
  int valueVectors = 0; ///< vectors of value features per register tile
  int valueWidth = 0;   ///< floats per vector of value features
  int vectorWidth = 0;  ///< queries per vector
  /// Set by buildAttention when it skips the keys that every query of a
  /// batch element masks (see keyLive).
  bool skipKeys = false;
};

/// One line for dyncc compile --stats, e.g. "attention: blocks of 16
/// queries, scores 16 keys x 16 queries, values 4 x 4 vectors of 16".
std::string describeAttentionTiling(const AttentionTiling &tiling);

/// Builds out(d, m[, b]) = outEpilogue(sum_n P(n, m[, b]) * V(d, n[, b]))
/// where P = softmax(S) is made by `softmax` from the scores
/// S(n, m[, b]) = scoreEpilogue(sum_k Q(k, m[, b]) * Kf(k, n[, b]), ...).
/// Q, Kf and V are Funcs of those arities (with b iff shape.batch > 0), each
/// one fp32 value, scheduled by the caller (inlined reads of inputs,
/// typically). The result is bounded to [0, D) x [0, M) (x [0, batch)) and
/// scheduled for a CPU target: tasks of `queries` rows (x batch) in
/// parallel, each computing its rows' scores, softmax and value product.
/// The last block of queries shifts inwards onto its neighbour's rows, and
/// every task runs the same loops (the scores as an update over tiles of
/// keys), so a row that two tasks compute comes out the same in both and
/// the result does not depend on the order of the tasks. Throws
/// std::invalid_argument on a bad shape, operand arity, tiling or a GPU
/// target.
///
/// `keyLive`, when defined (over (n, m[, b]), one boolean value), is false
/// where the scores' epilogue makes the score -inf whatever Q K^T is (a
/// mask of -inf); the caller guarantees that such a key's probability is
/// then 0 (a softmax over the row). Per batch element, the keys past the
/// last one any query keeps (padding) are then skipped: their scores are
/// -inf without Q K^T being computed, and the value product stops there.
/// A batch element that masks every key is computed whole. For finite
/// Q K^T the skipped terms are exact zeros: the result equals the one
/// without keyLive up to where LLVM contracts multiplies and adds
/// differently in the two pipelines (bit for bit on all-MiniLM).
Halide::Func
buildAttention(const AttentionShape &shape, const Halide::Func &Q,
               const Halide::Func &Kf, const Halide::Func &V,
               const GemmEpilogue &scoreEpilogue,
               const std::function<AttentionSoftmax(
                   const Halide::Func &scores, const AttentionKeyTiles &tiles)>
                   &softmax,
               const GemmEpilogue &outEpilogue, const Halide::Target &target,
               const std::string &name, const AttentionTiling &requested = {},
               AttentionTiling *chosen = nullptr,
               const Halide::Func &keyLive = Halide::Func());

} // namespace dyncc::codegen

#endif // DYNCC_CODEGEN_ATTENTIONKERNEL_H
