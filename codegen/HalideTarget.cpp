//===- HalideTarget.cpp - the Halide targets dyncc compiles for -----------===//

#include "codegen/HalideTarget.h"

#include <Halide.h>

namespace dyncc::codegen {

std::string hostKernelTarget() {
  return Halide::get_host_target().to_string();
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
