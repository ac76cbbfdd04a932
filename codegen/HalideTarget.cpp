//===- HalideTarget.cpp - the Halide targets dyncc compiles for -----------===//

#include "codegen/HalideTarget.h"
#include "runtime/AmxPermission.h"
#include "runtime/HostCpus.h"

#include <Halide.h>

#include <cpuid.h>

#include <cstdlib>
#include <fstream>

namespace dyncc::codegen {

namespace {

ScheduleMachine requestedMachine;

// The L2 per core of this machine (sysfs), 1 MiB when unknown.
int64_t hostL2Bytes() {
  std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index2/size");
  std::string text;
  double value = 0;
  if (in >> text && !text.empty()) {
    value = std::atof(text.c_str());
    if (text.back() == 'K')
      value *= 1024;
    else if (text.back() == 'M')
      value *= 1024 * 1024;
  }
  return value >= 64 * 1024 ? (int64_t)value : int64_t(1) << 20;
}

} // namespace

void setScheduleMachine(const ScheduleMachine &machine) {
  requestedMachine = machine;
}

ScheduleMachine scheduleMachine(const std::string &target) {
  return scheduleMachine(Halide::Target(target));
}

ScheduleMachine scheduleMachine(const Halide::Target &target) {
  static const Halide::Target host(hostKernelTarget());
  static const ScheduleMachine hostMachine{dynrt::affinityCpus(), hostL2Bytes()};
  const bool onHost =
      target.without_feature(Halide::Target::AVX512_SapphireRapids) == host;
  ScheduleMachine m = requestedMachine;
  if (m.cores <= 0)
    m.cores = onHost ? hostMachine.cores : 2;
  if (m.l2Bytes <= 0)
    m.l2Bytes = onHost ? hostMachine.l2Bytes : int64_t(1) << 20;
  return m;
}

std::string hostKernelTarget() {
  // Halide 14 reports avx512_sapphirerapids on AMD Zen 4, which lacks the
  // VEX-encoded AVX-VNNI that feature lets Halide use: kernels with integer
  // or boolean reductions died with SIGILL there. The Cannon Lake level
  // (AVX-512 F/CD/BW/DQ/VL/IFMA/VBMI) is what both vendors have.
  Halide::Target host = Halide::get_host_target();
  return host.without_feature(Halide::Target::AVX512_SapphireRapids)
      .to_string();
}

bool hostHasAvx512Bf16() {
  // CPUID leaf 7, sub-leaf 1: EAX bit 5 is AVX512_BF16.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx))
    return false;
  return (eax >> 5) & 1;
}

bool hostHasAmxBf16() {
  // CPUID leaf 7, sub-leaf 0: EDX bit 22 is AMX-BF16, bit 24 AMX-TILE.
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) ||
      !((edx >> 22) & 1) || !((edx >> 24) & 1))
    return false;
  return dynrt_request_amx_tile_data() == 1;
}

std::string bf16KernelTarget(const std::string &target) {
  // This machine's target gets the feature where its CPU has the
  // instructions, and only for the kernels with a bf16 GEMM:
  // hostKernelTarget says why the others must not (on Zen 4 it also lets
  // LLVM pick the VEX-encoded AVX-VNNI); a bf16 GEMM kernel is float
  // arithmetic. A cross target is taken as given (name
  // avx512_sapphirerapids in it for vdpbf16ps).
  Halide::Target t(target);
  if (t == Halide::Target(hostKernelTarget()) && hostHasAvx512Bf16())
    return t.with_feature(Halide::Target::AVX512_SapphireRapids).to_string();
  return target;
}

std::string cudaKernelTarget() {
  // Host code of the pipelines as for the CPU, kernels as PTX for compute
  // capability 8.0 (A100 and newer JIT it).
  Halide::Target host(hostKernelTarget());
  return host.with_feature(Halide::Target::CUDA)
      .with_feature(Halide::Target::CUDACapability80)
      .to_string();
}

bool isCudaTarget(const std::string &target) {
  return Halide::Target::validate_target_string(target) &&
         Halide::Target(target).has_feature(Halide::Target::CUDA);
}

std::string genericKernelTarget() {
  Halide::Target target(Halide::Target::Linux, Halide::Target::X86, 64);
  return target.to_string();
}

bool isValidKernelTarget(const std::string &target, std::string &error) {
  if (Halide::Target::validate_target_string(target))
    return true;
  error = "'" + target + "' is not a Halide target string (e.g. " +
          genericKernelTarget() + ")";
  return false;
}

bool compileSmokeKernel(const std::string &target,
                        const std::string &objectPath, std::string &error) {
  try {
    Halide::ImageParam a(Halide::Float(32), 1, "a"), b(Halide::Float(32), 1, "b");
    Halide::Var i("i");
    Halide::Func sum("dyncc_smoke_add");
    sum(i) = a(i) + b(i);
    sum.vectorize(i, 8);
    sum.compile_to_object(objectPath, {a, b}, "dyncc_smoke_add",
                          Halide::Target(target));
    return true;
  } catch (const Halide::Error &e) {
    error = e.what();
    return false;
  }
}

std::string halideVersion() {
  return DYNCC_HALIDE_VERSION;
}

} // namespace dyncc::codegen
