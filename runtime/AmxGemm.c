//===- AmxGemm.c - bf16 GEMMs on AMX tiles, a Halide extern stage ---------===//
//
// dyncc compile --precision=bf16 --amx: a bf16 GEMM whose B is a weight kept
// as bfloat16 pairs in panels (DYNRT_STORAGE_BF16_PANELS) multiplies on
// AMX tiles through this function, which Halide calls once per parallel task
// of the GEMM (codegen/GemmKernel.cpp, "AMX"); the epilogue stays Halide's.
// Halide 14 cannot emit these tiles itself: its ExtractTileOperations makes
// one tdpbf16ps per pair of k (16 x 16 x 2), 1/16 of the instruction's work
// (Halide lifted that limit after 14).
//
//   out(n, m[, b]) = sum_k A(k, m[, b]) * W(n, k[, b])
//
//   A    bfloat16 over (k, m[, b]): the task's rows, k dense (Halide's
//        abf Func, A rounded to bfloat16 once per call).
//   W    the weight as the runtime keeps it, bfloat16 [N, K] (or [E, N, K])
//        holding the pairs of k in panels of 64 columns: (n, k) at
//        ((n / 64) * K / 2 + k / 2) * 128 + (n % 64) * 2 + k % 2 of its
//        matrix, which is AMX's B layout as it lies: a tile of 16 columns x
//        16 pairs is 16 rows of 64 bytes, 256 bytes apart. The buffer is
//        the kernel's flat view of it, over (f[, e]) with f < N * K
//        (codegen::panelView).
//   out  fp32 over (n, m[, b]): the task's block, n a multiple of 32 wide
//        and starting at a multiple of 32 (the schedule's panels).
//
// A tile of C is 16 rows x 16 columns; each step of 32 k loads two tiles of
// A and two of W and makes four tdpbf16ps into 2 x 2 tiles of C (32 x 32).
//
// Written against clang's AMX C API (__tile1024i; g++ has only the
// tile-number intrinsics). Built twice (runtime/CMakeLists.txt): as is for
// CPUs with AMX, and with DYNRT_AMX_EMULATED at -O0 with LLVM's scalar
// lowering of the tile intrinsics (-enable-x86-scalar-amx), which computes
// the same tiles with ordinary instructions on any x86-64: dyncc compile
// --amx=emulated links that one, for the tests on machines without AMX.
//
//===----------------------------------------------------------------------===//

#include <HalideRuntime.h>

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#ifdef DYNRT_AMX_EMULATED
#define DYNRT_AMX_ENTRY dynrt_amx_bf16_gemm_emulated
#else
#include "runtime/AmxPermission.h"
#define DYNRT_AMX_ENTRY dynrt_amx_bf16_gemm
#endif

enum { kPanel = 64, kTile = 16, kStepK = 32 };

#ifndef DYNRT_AMX_EMULATED
// AMX's tile data (runtime/AmxPermission.h), asked for once, then for
// every thread. 0: not asked yet, 1: granted, -1: refused.
static int amxPermission(void) {
  static volatile int state = 0;
  int s = __atomic_load_n(&state, __ATOMIC_ACQUIRE);
  if (s == 0) {
    s = dynrt_request_amx_tile_data() ? 1 : -1;
    __atomic_store_n(&state, s, __ATOMIC_RELEASE);
  }
  return s;
}
#endif

// The blocks of C, two tiles (32 columns) wide: C = A * the 32 columns of W
// at `w`, K/32 steps of 32 k. Not inlined: LLVM configures the tiles
// (ldtilecfg) at the top of the function that uses them, which must not run
// before amxPermission (SIGILL without it).
enum { kWStep = kTile * kPanel * 2 * 2, kWStride = kPanel * 2 * 2 }; // bytes

// 16 + rows1 rows (1 <= rows1 <= 16): 2 x 2 tiles.
__attribute__((noinline)) static void block2(const uint16_t *a,
                                             size_t aStride,
                                             const uint16_t *w, int K,
                                             float *c, size_t cStride,
                                             short rows1) {
  __tile1024i c00 = {kTile, 64}, c01 = {kTile, 64};
  __tile1024i c10 = {rows1, 64}, c11 = {rows1, 64};
  __tile_zero(&c00);
  __tile_zero(&c01);
  __tile_zero(&c10);
  __tile_zero(&c11);
  for (int k = 0; k < K; k += kStepK) {
    __tile1024i a0 = {kTile, 64}, a1 = {rows1, 64};
    __tile1024i b0 = {kTile, 64}, b1 = {kTile, 64};
    const char *wk = (const char *)w + (size_t)(k / kStepK) * kWStep;
    __tile_loadd(&b0, wk, kWStride);
    __tile_loadd(&b1, wk + 64, kWStride);
    __tile_loadd(&a0, a + k, aStride * 2);
    __tile_loadd(&a1, a + (size_t)kTile * aStride + k, aStride * 2);
    __tile_dpbf16ps(&c00, a0, b0);
    __tile_dpbf16ps(&c01, a0, b1);
    __tile_dpbf16ps(&c10, a1, b0);
    __tile_dpbf16ps(&c11, a1, b1);
  }
  __tile_stored(c, cStride * 4, c00);
  __tile_stored(c + kTile, cStride * 4, c01);
  __tile_stored(c + (size_t)kTile * cStride, cStride * 4, c10);
  __tile_stored(c + (size_t)kTile * cStride + kTile, cStride * 4, c11);
}

// rows0 rows (1 <= rows0 <= 16): 1 x 2 tiles.
__attribute__((noinline)) static void block1(const uint16_t *a,
                                             size_t aStride,
                                             const uint16_t *w, int K,
                                             float *c, size_t cStride,
                                             short rows0) {
  __tile1024i c00 = {rows0, 64}, c01 = {rows0, 64};
  __tile_zero(&c00);
  __tile_zero(&c01);
  for (int k = 0; k < K; k += kStepK) {
    __tile1024i a0 = {rows0, 64};
    __tile1024i b0 = {kTile, 64}, b1 = {kTile, 64};
    const char *wk = (const char *)w + (size_t)(k / kStepK) * kWStep;
    __tile_loadd(&b0, wk, kWStride);
    __tile_loadd(&b1, wk + 64, kWStride);
    __tile_loadd(&a0, a + k, aStride * 2);
    __tile_dpbf16ps(&c00, a0, b0);
    __tile_dpbf16ps(&c01, a0, b1);
  }
  __tile_stored(c, cStride * 4, c00);
  __tile_stored(c + kTile, cStride * 4, c01);
}

// Defined by the Halide runtime of the library this is linked into (weak:
// a test program that JIT-compiles its kernels has none).
extern void halide_error(void *uc, const char *message) __attribute__((weak));

static int fail(const char *message) {
  if (halide_error)
    halide_error(NULL, message);
  return -1;
}

// The Halide extern stage (NameMangling::C): A, W, K, N, out.
int DYNRT_AMX_ENTRY(halide_buffer_t *a, halide_buffer_t *w, int K, int N,
                    halide_buffer_t *out) {
  const int batched = out->dimensions == 3;
  if (a->host == NULL || w->host == NULL) {
    // Bounds query: A's rows of the output block, every k; W whole.
    a->dim[0].min = 0;
    a->dim[0].extent = K;
    a->dim[1].min = out->dim[1].min;
    a->dim[1].extent = out->dim[1].extent;
    if (a->dimensions == 3) {
      a->dim[2].min = batched ? out->dim[2].min : 0;
      a->dim[2].extent = batched ? out->dim[2].extent : 1;
    }
    w->dim[0].min = 0;
    w->dim[0].extent = N * K;
    if (w->dimensions == 2) {
      w->dim[1].min = batched ? out->dim[2].min : 0;
      w->dim[1].extent = batched ? out->dim[2].extent : 1;
    }
    return 0;
  }
#ifndef DYNRT_AMX_EMULATED
  if (amxPermission() < 0)
    return fail("this library multiplies on AMX tiles (dyncc compile "
                "--amx), which this CPU or its operating system does not "
                "provide (arch_prctl ARCH_REQ_XCOMP_PERM refused); compile "
                "it with --amx=off");
#endif
  const int n0 = out->dim[0].min, nExtent = out->dim[0].extent;
  const int m0 = out->dim[1].min, mExtent = out->dim[1].extent;
  // What the schedule promises (codegen/GemmKernel.cpp): whole steps of k,
  // blocks of whole 32-column groups, dense rows, the weight whole.
  if (K % kStepK != 0 || N % kPanel != 0 || n0 % 32 != 0 ||
      nExtent % 32 != 0 || n0 < 0 || n0 + nExtent > N ||
      out->dim[0].stride != 1 || a->dim[0].stride != 1 ||
      a->dim[0].min > 0 || a->dim[0].min + a->dim[0].extent < K ||
      a->dim[1].min > m0 ||
      a->dim[1].min + a->dim[1].extent < m0 + mExtent ||
      w->dim[0].stride != 1 || w->dim[0].min != 0 ||
      w->dim[0].extent != N * K)
    return fail("dynrt_amx_bf16_gemm: a block this kernel cannot take "
                "(dyncc's schedule and the AMX kernel disagree)");
  const int batches = batched ? out->dim[2].extent : 1;
  const size_t aStride = (size_t)a->dim[1].stride;
  const size_t cStride = (size_t)out->dim[1].stride;
  for (int bi = 0; bi < batches; ++bi) {
    const int bb = batched ? out->dim[2].min + bi : 0;
    const uint16_t *aB = (const uint16_t *)a->host +
                         (a->dimensions == 3
                              ? (size_t)(bb - a->dim[2].min) * a->dim[2].stride
                              : 0) +
                         (size_t)(m0 - a->dim[1].min) * aStride -
                         a->dim[0].min;
    const uint16_t *wB = (const uint16_t *)w->host +
                         (w->dimensions == 2
                              ? (size_t)(bb - w->dim[1].min) * w->dim[1].stride
                              : 0);
    float *cB = (float *)out->host +
                (batched ? (size_t)bi * out->dim[2].stride : 0);
    for (int n = 0; n < nExtent; n += 32) {
      const int col = n0 + n;
      // The panel's first pair row, then the column's place in it.
      const uint16_t *wCol = wB + (size_t)(col / kPanel) * (K / 2) * kPanel * 2 +
                             (size_t)(col % kPanel) * 2;
      for (int m = 0; m < mExtent; m += 2 * kTile) {
        const int rows = mExtent - m < 2 * kTile ? mExtent - m : 2 * kTile;
        if (rows > kTile)
          block2(aB + (size_t)m * aStride, aStride, wCol, K,
                 cB + (size_t)m * cStride + n, cStride, (short)(rows - kTile));
        else
          block1(aB + (size_t)m * aStride, aStride, wCol, K,
                 cB + (size_t)m * cStride + n, cStride, (short)rows);
      }
    }
  }
  return 0;
}
