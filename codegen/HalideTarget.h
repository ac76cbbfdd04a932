//===- HalideTarget.h - the Halide targets dyncc compiles for ---*- C++ -*-===//
//
// The MLIR side of dyncc includes this header, never Halide.h (Halide brings
// LLVM 14 headers, MLIR brings LLVM 19's).
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_HALIDETARGET_H
#define DYNCC_CODEGEN_HALIDETARGET_H

#include <cstdint>
#include <string>

namespace Halide {
struct Target;
} // namespace Halide

namespace dyncc::codegen {

/// The machine kernels are scheduled for: the cores their parallel loops
/// are cut into tasks for, and the L2 per core by which the GEMMs choose
/// their path, packing and bf16 storage (dyncc compile --cores, --l2-kib).
struct ScheduleMachine {
  int cores = 0;       ///< 0: the target's default (scheduleMachine)
  int64_t l2Bytes = 0; ///< 0: the target's default (scheduleMachine)
};

/// Sets the machine every kernel this process builds from now on is
/// scheduled for (the driver, from its flags); a zero field keeps the
/// target's default.
void setScheduleMachine(const ScheduleMachine &machine);

/// The machine kernels for `target` (a Halide target string) are scheduled
/// for: each field as setScheduleMachine set it, else, for this machine's
/// target (with or without avx512_sapphirerapids, which bf16KernelTarget
/// adds), this machine's: the CPUs this process may run on and the L2 of
/// cpu0 (sysfs); for any other target 2 cores and 1 MiB (the machine the
/// schedules were first measured on; every current x86-64 server core has
/// at least that L2).
ScheduleMachine scheduleMachine(const std::string &target);
/// The same for a parsed target (the kernel builders' own).
ScheduleMachine scheduleMachine(const Halide::Target &target);

/// The Halide target string of this machine's CPU, e.g.
/// "x86-64-linux-avx-avx2-avx512-...".
std::string hostKernelTarget();

/// Whether this machine's CPU has AVX512-BF16 (vdpbf16ps, vcvtne2ps2bf16).
bool hostHasAvx512Bf16();

/// Whether this machine can multiply bf16 on AMX tiles: its CPU has
/// AMX-TILE and AMX-BF16, and the operating system grants this process the
/// tile data (Linux's arch_prctl ARCH_REQ_XCOMP_PERM), as the AMX kernel of
/// a library asks again when it runs (runtime/AmxGemm.c).
bool hostHasAmxBf16();

/// The AMX kernel's entry points in libdynrt (runtime/AmxGemm.c), which
/// the GEMMs of dyncc compile --amx call (codegen::GemmPanels): the kernel,
/// and its twin through LLVM's scalar lowering of the tile instructions,
/// which runs on any x86-64 (--amx=emulated, for tests).
constexpr const char *kAmxEntry = "dynrt_amx_bf16_gemm";
constexpr const char *kAmxEmulatedEntry = "dynrt_amx_bf16_gemm_emulated";

/// The target of the kernels with a bf16 GEMM (--precision=bf16): this
/// machine's target plus avx512_sapphirerapids (the Halide feature that
/// selects AVX512-BF16's instructions) where `target` is this machine's and
/// its CPU has them; any other `target` as given.
std::string bf16KernelTarget(const std::string &target);

/// The portable CPU fallback: plain x86-64 (SSE4.1 at most) on Linux.
std::string genericKernelTarget();

/// This CPU's target plus CUDA: every kernel a CUDA pipeline (dyncc
/// compile --target=cuda). Compiling needs no GPU.
std::string cudaKernelTarget();

/// Whether `target` (a Halide target string) has the CUDA feature.
bool isCudaTarget(const std::string &target);

/// Whether Halide accepts `target` as a target string; on failure `error`
/// says why.
bool isValidKernelTarget(const std::string &target, std::string &error);

/// Compiles a one-line Halide pipeline (c = a + b over float vectors) for
/// `target` into the object file `objectPath`: proves that Halide's LLVM 14
/// code generator works inside this process. On failure `error` says why.
bool compileSmokeKernel(const std::string &target,
                        const std::string &objectPath, std::string &error);

/// The version of the Halide library dyncc was linked with ("14.0.0").
std::string halideVersion();

} // namespace dyncc::codegen

#endif // DYNCC_CODEGEN_HALIDETARGET_H
