//===- EmitHalide.h - KernelIR to Halide pipelines --------------*- C++ -*-===//
//
// Neutral interface (no Halide, no MLIR types) to the Halide side of
// codegen: compile a kernel ahead of time, or run it right away (tests).
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_EMITHALIDE_H
#define DYNCC_CODEGEN_EMITHALIDE_H

#include "codegen/KernelIR.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dyncc::codegen {

/// A dense row-major tensor in host memory.
struct HostTensor {
  void *data = nullptr;
  std::vector<int64_t> shape;
  kir::ElemType type = kir::ElemType::F32;
};

/// How kernels are compiled beyond their target.
struct KernelOptions {
  /// --precision=bf16: every GEMM with 32 output columns or more rounds
  /// its operands to bfloat16 (on the few-row Dot and Stream paths only B)
  /// and accumulates in fp32 (codegen::GemmShape::bf16; the narrower ones,
  /// a router's or an exit head's logits, stay fp32); a kernel with a
  /// Tiled bf16 GEMM gets AVX512-BF16 where this CPU has it
  /// (bf16KernelTarget).
  bool bf16Gemms = false;
  /// Per input of the kernel (in order, as panelInputs lists them): how
  /// the runtime keeps the weight passed there (PanelStorage); the GEMMs
  /// read it so. Empty: every input as it is.
  std::vector<uint8_t> panelInputs;
  /// dyncc compile --amx: the extern (codegen::kAmxEntry, or its emulated
  /// twin kAmxEmulatedEntry) on whose AMX tiles the bf16 GEMMs that read a
  /// weight's bf16 pairs in panels multiply (codegen::GemmPanels); empty:
  /// none do.
  std::string amxEntry;
};

/// A weight kept in panels of codegen::kPanelColumns along a GEMM's n, each
/// matrix of its last two dimensions holding (n, k) at ((n / 64) * K + k) *
/// 64 + n % 64. The values are the runtime's storage codes (dynrt.h,
/// DYNRT_STORAGE_PANELS and _COLS; EmitLibrary.cpp asserts they agree).
enum class PanelStorage : uint8_t {
  None = 0,
  Rows = 64, ///< the matrices are [N, K] (a linear layer's [out, in])
  Cols = 65, ///< the matrices are [K, N] (MoE experts' [E, in, out])
  /// --precision=bf16: the matrices are [N, K] (K a multiple of 128) of
  /// bfloat16 pairs of k, (n, k) at ((n / 64) * K / 2 + k / 2) * 128 +
  /// (n % 64) * 2 + k % 2 (GemmShape::bPanels with bf16).
  Bf16Rows = 66,
};

/// Per input of `kernel` (in order): whether it may be kept in panels
/// (dyncc compile --pack-weights), and how: read only as the whole B
/// operand, batched or not, of fp32 GEMMs on the Tiled path of a CPU
/// target (row tiles skipped or not), directly (no gather, no copy) and by
/// nothing else, with N (and for Rows K) a multiple of the panel. Such a
/// GEMM reads its panel of B in place, the same products summed in the
/// same order: the same results, without a copy of the panel per task.
/// With options.bf16Gemms: Bf16Rows for the B of bf16 Tiled GEMMs read so
/// as [N, K] (K a multiple of 128) that compute every row, else None.
/// None for attention and on a GPU target.
std::vector<PanelStorage> panelInputs(const kir::Kernel &kernel,
                                      const std::string &target,
                                      const KernelOptions &options);

/// The shape a kernel reads an input kept in panels as: its matrices'
/// last two dimensions flattened into one ([..., N, K] or [..., K, N] ->
/// [..., N * K]), so that a panel's address is linear in k (the [N, K]
/// view needs k / (K / 64) and k % (K / 64), which Halide 14 does not fold
/// back into k: an integer division per k step of the micro-kernel where
/// K / 64 is not a power of two). The kernel's descriptor gives the runtime
/// this shape (EmitLibrary.cpp); the bytes are the weight's.
std::vector<int64_t> panelView(const std::vector<int64_t> &shape);

/// Per input of `kernel` (in order): whether only GEMMs that round it to
/// bfloat16 (options.bf16Gemms on a CPU target: both operands on the Tiled
/// path, B on the few-row Dot and Stream paths) read it, and only as such
/// an operand (directly, through a gather of its rows, or through copies
/// that only permute it). Such an input may be
/// stored as bfloat16 rounded to nearest even (kir::ElemType::BF16): the
/// kernel's results are the same bits, since those GEMMs round it so
/// anyway. All false without bf16, on a GPU target and for attention.
/// With options.panelInputs (the panels the kernel will read): a GEMM on
/// a B in panels counts with the panels' tiling, as it is built (never
/// timed by --tune: the plain shape would be timed for nothing).
std::vector<bool> bf16OnlyInputs(const kir::Kernel &kernel,
                                 const std::string &target,
                                 const KernelOptions &options);

/// What compileKernel tells about a kernel it compiled.
struct KernelReport {
  /// A line per GEMM (and fused attention) of the kernel, "<kernel>: <shape>:
  /// <schedule chosen>" (dyncc compile --stats).
  std::vector<std::string> gemms;
  /// The FLOPs of one call: 2 per multiply-add of its GEMMs and attention
  /// products, every row counted (a GEMM that skips empty row tiles, as
  /// dyn.route's experts do, may run fewer); 0 for a kernel without any.
  /// The runtime's profile divides its time by them (dynrt.h, flops).
  double flops = 0;
};

/// Compiles `kernel` for the Halide `target` into the object file
/// `objectPath`, as `int <kernel.name>(halide_buffer_t *inputs...,
/// halide_buffer_t *outputs...)` (and `<name>_argv`), without the Halide
/// runtime (see compileRuntime). `report`, when given, is filled in.
bool compileKernel(const kir::Kernel &kernel, const std::string &target,
                   const std::string &objectPath, std::string &error,
                   KernelReport *report = nullptr,
                   const KernelOptions &options = {});

/// Compiles the Halide runtime for `target` into `objectPath`: the one copy
/// that every kernel object of a library shares.
bool compileRuntime(const std::string &target, const std::string &objectPath,
                    std::string &error);

/// JIT-compiles and runs `kernel` on `inputs`, writing `outputs` (which must
/// have the kernel's shapes and types).
bool runKernel(const kir::Kernel &kernel, const std::vector<HostTensor> &inputs,
               const std::vector<HostTensor> &outputs,
               const std::string &target, std::string &error,
               const KernelOptions &options = {});

} // namespace dyncc::codegen

#endif // DYNCC_CODEGEN_EMITHALIDE_H
