//===- dyncc.cpp - the dyncc compiler driver ------------------------------===//
//
//   dyncc compile model.mlir -o out/model [--emit=mlir]
//
// Parses and verifies a model, runs the dyncc pipeline and writes the
// requested stage. Errors are located diagnostics and exit code 1; an output
// file is only ever written whole (temporary file, then rename).
//
//===----------------------------------------------------------------------===//

#include "codegen/EmitLibrary.h"
#include "codegen/HalideTarget.h"
#include "passes/Passes.h"
#include "tools/dyncc/Registration.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

namespace cl = llvm::cl;

namespace {

enum class EmitKind { Mlir, Kernels, Host, Llvm, Library };

cl::SubCommand compileCommand("compile",
                              "Compile a model (.mlir) for this machine");

cl::opt<std::string> inputPath(cl::Positional, cl::desc("<model.mlir>"),
                               cl::Required, cl::sub(compileCommand));
cl::opt<std::string> outputPath("o", cl::desc("Output path ('-' for stdout)"),
                                cl::value_desc("path"), cl::init("-"),
                                cl::sub(compileCommand));
cl::opt<EmitKind> emitKind(
    "emit", cl::desc("The stage to write"), cl::init(EmitKind::Library),
    cl::values(clEnumValN(EmitKind::Mlir, "mlir",
                          "the verified dyn-level module, after the dyn "
                          "passes"),
               clEnumValN(EmitKind::Kernels, "kernels",
                          "after kernel formation: each kernel a private "
                          "function marked dyn.kernel"),
               clEnumValN(EmitKind::Host, "host",
                          "the host code lowered to the LLVM dialect, with "
                          "the arena size"),
               clEnumValN(EmitKind::Llvm, "llvm",
                          "the host code and model descriptor as LLVM IR"),
               clEnumValN(EmitKind::Library, "library",
                          "(default) -o dir/name writes dir/libname.a, "
                          "dir/name.h and dir/dynrt.h")),
    cl::sub(compileCommand));

cl::opt<std::string> kernelTarget(
    "target",
    cl::desc("Halide target of the kernels: 'host' (this CPU), 'generic' "
             "(any x86-64) or a Halide target string"),
    cl::init("host"), cl::sub(compileCommand));
cl::opt<bool> printStats("stats",
                         cl::desc("Print the arena size, weight bytes and "
                                  "kernel count of the library"),
                         cl::sub(compileCommand));

void printVersion(llvm::raw_ostream &os) {
  os << fmt::format("dyncc {}\n  MLIR/LLVM {}\n  Halide {} (host kernel "
                    "target {})\n",
                    DYNCC_VERSION, LLVM_VERSION_STRING,
                    dyncc::codegen::halideVersion(),
                    dyncc::codegen::hostKernelTarget());
}

/// Reports an error that has no place in a source file.
int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "dyncc") << message << "\n";
  return 1;
}

int runCompile() {
  std::string openError;
  std::unique_ptr<llvm::MemoryBuffer> buffer =
      mlir::openInputFile(inputPath, &openError);
  if (!buffer)
    return fail(fmt::format("cannot open '{}': {}", inputPath.getValue(),
                            openError));

  mlir::DialectRegistry registry;
  dyncc::registerDialects(registry);
  mlir::MLIRContext context(registry);
  context.loadAllAvailableDialects();

  llvm::SourceMgr sourceMgr;
  llvm::StringRef contents = buffer->getBuffer();
  sourceMgr.AddNewSourceBuffer(std::move(buffer), llvm::SMLoc());
  mlir::SourceMgrDiagnosticHandler diagHandler(sourceMgr, &context);

  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(sourceMgr, &context);
  if (!module)
    return 1;
  if (module->getBody()->empty()) {
    // An empty (or comment-only) file parses as an empty module; compiling
    // it would silently produce a library with nothing in it.
    mlir::FileLineColLoc loc = mlir::FileLineColLoc::get(
        &context, inputPath, 1, 1);
    mlir::emitError(loc) << (llvm::StringRef(contents).trim().empty()
                                 ? "input is empty"
                                 : "input defines nothing")
                         << ": expected a module with at least one func.func";
    return 1;
  }

  mlir::PassManager pm(&context);
  dyncc::buildDynccPipeline(pm);
  if (emitKind >= EmitKind::Kernels)
    dyncc::buildKernelPipeline(pm);
  if (mlir::failed(pm.run(*module)))
    return 1;

  if (emitKind == EmitKind::Library) {
    if (outputPath == "-")
      return fail("--emit=library writes files: give -o dir/name");
    dyncc::LibraryOptions options;
    options.outputBase = outputPath;
    options.kernelTarget = kernelTarget == "generic"
                               ? dyncc::codegen::genericKernelTarget()
                               : kernelTarget.getValue();
    options.runtimeArchive = DYNCC_RUNTIME_ARCHIVE;
    options.runtimeHeader = DYNCC_RUNTIME_HEADER;
    options.source = inputPath;
    dyncc::LibraryStats stats;
    if (mlir::failed(dyncc::emitLibrary(*module, options, stats)))
      return 1;
    if (printStats)
      llvm::outs() << fmt::format("kernels: {}\narena bytes: {}\nweight "
                                  "bytes: {}\n",
                                  stats.numKernels, stats.arenaBytes,
                                  stats.weightBytes);
    return 0;
  }

  llvm::Error written =
      llvm::writeToOutput(outputPath, [&](llvm::raw_ostream &os) -> llvm::Error {
        switch (emitKind) {
        case EmitKind::Mlir:
        case EmitKind::Kernels:
          module->print(os);
          break;
        case EmitKind::Host:
          if (mlir::failed(dyncc::emitHostMLIR(*module, outputPath, os)))
            return llvm::createStringError("host lowering failed");
          break;
        case EmitKind::Llvm:
          if (mlir::failed(dyncc::emitHostLLVMIR(*module, outputPath, os)))
            return llvm::createStringError("host lowering failed");
          break;
        case EmitKind::Library:
          break;
        }
        return llvm::Error::success();
      });
  if (written)
    return fail(fmt::format("cannot write '{}': {}", outputPath.getValue(),
                            llvm::toString(std::move(written))));
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  cl::SetVersionPrinter(printVersion);
  // Exit code 1 (not cl's default) for bad options, like every other error.
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "dyncc: ahead-of-time compiler for dynamic neural networks\n\n"
          "  dyncc compile model.mlir -o out/model [--emit=mlir|kernels]\n",
          &llvm::errs()))
    return 1;
  if (compileCommand)
    return runCompile();
  return fail("no command given; try 'dyncc compile model.mlir -o out' or "
              "'dyncc --help'");
}
