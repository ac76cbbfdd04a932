//===- EmitLibrary.h - a model as a library and a C header ------*- C++ -*-===//

#ifndef DYNCC_CODEGEN_EMITLIBRARY_H
#define DYNCC_CODEGEN_EMITLIBRARY_H

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/raw_ostream.h"

#include <string>
#include <utility>
#include <vector>

namespace dyncc {

struct LibraryOptions {
  /// `dir/name`: writes dir/libname.a (or .so), dir/name.h, dir/dynrt.h.
  std::string outputBase;
  /// The Halide target of the kernels ("host" resolves to this machine).
  std::string kernelTarget = "host";
  bool shared = false;
  /// libdynrt.a, whose objects go into the library.
  std::string runtimeArchive;
  /// dynrt.h, copied next to the generated header.
  std::string runtimeHeader;
  /// The model file, named in the generated header.
  std::string source;
  /// A safetensors file to compile into the library ("" for none).
  std::string embedWeights;
  /// --precision=bf16 (codegen::KernelOptions::bf16Gemms).
  bool bf16Gemms = false;
  /// With bf16Gemms: keep the weights that only bf16 GEMMs read as bfloat16
  /// (dyncc compile --bf16-weights; EmitLibrary.cpp, planBf16Weights).
  bool bf16WeightStorage = true;
  /// Keep the weights that only GEMMs read whole as their B in panels
  /// (dyncc compile --pack-weights; EmitLibrary.cpp, planPanelWeights; with
  /// bf16Gemms and bf16WeightStorage as bf16 pairs, planBf16Weights).
  bool packWeights = true;
  /// dyncc compile --amx (codegen::KernelOptions::amxEntry).
  std::string amxEntry;
};

/// What the library needs besides its code, computed by planHost.
struct LibraryStats {
  int64_t arenaBytes = 0;
  int64_t weightBytes = 0;
  int numKernels = 0;
  /// --precision=bf16: the weights kept as bfloat16 and their bytes so.
  int bf16Weights = 0;
  int64_t bf16WeightBytes = 0;
  /// --pack-weights: the weights kept in panels (with bf16: as bfloat16
  /// pairs, DYNRT_STORAGE_BF16_PANELS) and their bytes so.
  int panelWeights = 0;
  int64_t panelWeightBytes = 0;
  /// "<kernel>: <shape>: <schedule>" for every GEMM (codegen::compileKernel).
  std::vector<std::string> gemms;
  /// (kernel, FLOPs of one call) for every kernel with GEMMs or attention
  /// (codegen::KernelReport::flops; the descriptor's, which the runtime's
  /// profile divides by its time).
  std::vector<std::pair<std::string, double>> kernelFlops;
};

/// Compiles a module that went through the kernel pipeline into a library:
/// plans memory, lowers the host code to LLVM, compiles the kernels with
/// Halide, and writes the archive (or shared object) and the C header.
/// Errors are located diagnostics; nothing is written unless everything
/// succeeded.
mlir::LogicalResult emitLibrary(mlir::ModuleOp module,
                                const LibraryOptions &options,
                                LibraryStats &stats);

/// The lowered host module (LLVM dialect) and the LLVM IR of the host code,
/// for --emit=host and --emit=llvm.
mlir::LogicalResult emitHostMLIR(mlir::ModuleOp module, llvm::StringRef name,
                                 llvm::raw_ostream &os);
mlir::LogicalResult emitHostLLVMIR(mlir::ModuleOp module, llvm::StringRef name,
                                   llvm::raw_ostream &os);
/// The host code as an object file.
mlir::LogicalResult emitHostObject(mlir::ModuleOp module, llvm::StringRef name,
                                   llvm::raw_ostream &os);

} // namespace dyncc

#endif // DYNCC_CODEGEN_EMITLIBRARY_H
