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
#include "codegen/Files.h"
#include "codegen/HalideTarget.h"
#include "codegen/Tuning.h"
#include "passes/Passes.h"
#include "tools/dyncc/Registration.h"
#include "tools/dyncc/Resources.h"
#include "tools/dyncc/Run.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/CrashRecoveryContext.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/thread.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"
#include "llvm/Support/raw_ostream.h"

#include <fmt/format.h>

#include <csignal>
#include <new>
#include <sys/resource.h>
#include <unistd.h>
#include <cstdlib>
#include <exception>
#include <vector>

namespace cl = llvm::cl;

namespace {

enum class EmitKind { Mlir, Kernels, Host, Llvm, Object, Library };

/// dyncc's own options; --help shows these only (not LLVM's hundreds).
cl::OptionCategory dynccCategory("dyncc options");

cl::opt<bool> verboseDiagnostics(
    "verbose-diagnostics",
    cl::desc("Print the operation (in generic form) with every error"),
    cl::cat(dynccCategory), cl::sub(cl::SubCommand::getAll()));
cl::opt<uint64_t> maxMemoryMiB(
    "max-memory-mib",
    cl::desc("Fail with an error instead of exhausting the machine when "
             "dyncc's address space would grow past this (MiB; default: half "
             "the physical memory, plus the weights to embed)"),
    cl::init(0), cl::cat(dynccCategory), cl::sub(cl::SubCommand::getAll()));
cl::opt<unsigned> maxInputMiB(
    "max-input-mib",
    cl::desc("Refuse model and weight inputs larger than this (MiB; "
             "default 1024, weights to embed 16384)"),
    cl::init(1024), cl::cat(dynccCategory), cl::sub(cl::SubCommand::getAll()));

cl::SubCommand compileCommand("compile",
                              "Compile a model (.mlir) for this machine");

cl::opt<std::string> inputPath(cl::Positional, cl::desc("<model.mlir>"),
                               cl::Required, cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<std::string> outputPath("o", cl::desc("Output path ('-' for stdout)"),
                                cl::value_desc("path"), cl::init("-"),
                                cl::cat(dynccCategory), cl::sub(compileCommand));
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
               clEnumValN(EmitKind::Object, "object",
                          "the host code and model descriptor as an object "
                          "file"),
               clEnumValN(EmitKind::Library, "library",
                          "(default) -o dir/name writes dir/libname.a, "
                          "dir/name.h and dir/dynrt.h")),
    cl::cat(dynccCategory), cl::sub(compileCommand));

cl::opt<std::string> kernelTarget(
    "target",
    cl::desc("Halide target of the kernels: 'host' (this CPU), 'generic' "
             "(any x86-64), 'cuda' (NVIDIA GPUs; needs no GPU to compile) "
             "or a Halide target string"),
    cl::init("host"), cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<bool> tuneGemms(
    "tune",
    cl::desc("Time candidate schedules of every GEMM shape on this machine "
             "and use the fastest (needs --target=host); the winners are "
             "cached per CPU model, target and shape (--tune-cache) and "
             "reused by later compiles with --tune"),
    cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<std::string> tuneCache(
    "tune-cache",
    cl::desc("The --tune cache file (default: $DYNCC_TUNE_CACHE, else "
             "$XDG_CACHE_HOME/dyncc/gemm-tuning.tsv or "
             "~/.cache/dyncc/gemm-tuning.tsv)"),
    cl::value_desc("file"), cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<std::string> tuneRecord(
    "tune-record",
    cl::desc("With --tune: tilings of the GEMMs on weights in panels timed "
             "in the model by dyncc.tune (\"<shape> panels\", tiling, GFLOP/s, "
             "default GFLOP/s per line, tab-separated): used, and stored in "
             "the cache"),
    cl::value_desc("file"), cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<std::string> panelTiling(
    "panel-tiling",
    cl::desc("Every GEMM on a weight kept in panels asks for this register "
             "micro-tile and rows per task, ROWSxVECTORS[/ROWS_PER_TASK] "
             "(dyncc.tune builds its candidates so; docs/codegen.md)"),
    cl::value_desc("RxV[/B]"), cl::cat(dynccCategory),
    cl::sub(compileCommand));
cl::opt<bool> sharedLib("shared",
                        cl::desc("Write lib<name>.so instead of lib<name>.a "
                                 "(links with the system 'cc')"),
                        cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<std::string> embedWeights(
    "embed-weights",
    cl::desc("Compile this safetensors file into the library (then "
             "<name>_create(options, NULL, &model) needs no weights file)"),
    cl::value_desc("file"), cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<bool> printStats("stats",
                         cl::desc("Print the arena size, weight bytes and "
                                  "kernel count of the library, and each "
                                  "GEMM's shape and schedule"),
                         cl::cat(dynccCategory), cl::sub(compileCommand));

cl::list<int64_t> batchBuckets(
    "batch-buckets",
    cl::desc("Compile the per-sample model for these batch sizes (ascending, "
             "e.g. 1,4,8,16,32): the library takes up to the largest, runs "
             "each stage at the smallest bucket that holds the active "
             "samples and compacts them after each exit point"),
    cl::CommaSeparated, cl::cat(dynccCategory), cl::sub(compileCommand));
cl::opt<std::string> compaction(
    "compaction",
    cl::desc("With --batch-buckets, when to gather the still-active samples "
             "into a dense prefix: 'never', 'always', 'auto' (default: when "
             "the cost model says the smaller bucket pays for the gather)"),
    cl::init("auto"), cl::cat(dynccCategory), cl::sub(compileCommand));

cl::opt<int64_t> expertParallel(
    "expert-parallel",
    cl::desc("Split every dyn.route's experts over this many processes "
             "(ranks): each holds E/R experts' weights and the tokens' rows "
             "travel to their expert's rank and back through the "
             "communicator given at create (libdynrt_mpi; docs/moe.md)"),
    cl::value_desc("ranks"), cl::init(0), cl::cat(dynccCategory),
    cl::sub(compileCommand));

cl::opt<bool> hoistStepInputs(
    "hoist-step-inputs",
    cl::desc("In a dyn.skip whose every action moves to the next position, "
             "compute the step input's projections (an LSTM's W_ih x) for "
             "all positions before the loop, as one GEMM (default on; "
             "=false computes them step by step; docs/skim.md)"),
    cl::init(true), cl::cat(dynccCategory), cl::sub(compileCommand));

cl::SubCommand importCommand(
    "import", "Import an ONNX model: writes <name>.mlir and "
              "<name>.safetensors (runs the dyncc Python package, through "
              "torch-mlir's ONNX importer; $DYNCC_PYTHON picks the Python)");
cl::opt<std::string> importPath(cl::Positional, cl::desc("<model.onnx>"),
                                cl::Required, cl::cat(dynccCategory), cl::sub(importCommand));
cl::opt<std::string> importOutput("o", cl::desc("Output base path: dir/name"),
                                  cl::value_desc("path"), cl::Required,
                                  cl::cat(dynccCategory), cl::sub(importCommand));

cl::SubCommand runCommand("run", "Compile a model in memory and run it on "
                                 ".npy inputs");
cl::opt<std::string> runModelPath(cl::Positional, cl::desc("<model.mlir>"),
                                  cl::Required, cl::cat(dynccCategory), cl::sub(runCommand));
cl::list<std::string> runInputs(cl::Positional,
                                cl::desc("<input.npy>... (in input order)"),
                                cl::cat(dynccCategory), cl::sub(runCommand));
cl::opt<std::string> runWeights("weights",
                                cl::desc("The model's weights (safetensors)"),
                                cl::value_desc("file"), cl::cat(dynccCategory), cl::sub(runCommand));
cl::opt<std::string> runOutputDir("o",
                                  cl::desc("Write each output to <dir>/<name>.npy"),
                                  cl::value_desc("dir"), cl::cat(dynccCategory), cl::sub(runCommand));
cl::list<std::string> runParams(
    "param", cl::desc("Set a runtime parameter: --param=theta=0.5 (vectors: "
                      "--param=t=0.9,0.8)"),
    cl::value_desc("name=values"), cl::cat(dynccCategory), cl::sub(runCommand));
cl::opt<int> runThreads("threads", cl::desc("Kernel threads (0: one per core)"),
                        cl::init(0), cl::cat(dynccCategory), cl::sub(runCommand));
cl::opt<std::string> runTarget("target",
                               cl::desc("Halide target of the kernels"),
                               cl::init("host"), cl::cat(dynccCategory), cl::sub(runCommand));

enum class Precision { Fp32, Bf16 };
cl::opt<Precision> precision(
    "precision",
    cl::desc("Arithmetic of the GEMMs (everything else is fp32)"),
    cl::values(clEnumValN(Precision::Fp32, "fp32", "(default) fp32 throughout"),
               clEnumValN(Precision::Bf16, "bf16",
                          "GEMMs of 32 columns or more round their "
                          "operands to bfloat16 and accumulate in fp32 "
                          "(AVX512-BF16's vdpbf16ps where the CPU has it); "
                          "those of a few rows (GEMVs) round only the "
                          "weights and multiply in fp32 (docs/codegen.md)")),
    cl::init(Precision::Fp32), cl::cat(dynccCategory),
    cl::sub(compileCommand), cl::sub(runCommand));
cl::opt<bool> bf16Weights(
    "bf16-weights",
    cl::desc("With --precision=bf16: keep the weights that only bf16 GEMMs "
             "read as bfloat16, converted when the model is created (the "
             "same results, half their bytes; default on, =false to compare)"),
    cl::init(true), cl::cat(dynccCategory), cl::sub(compileCommand),
    cl::sub(runCommand));

enum class Amx { Auto, On, Off, Emulated };
cl::opt<Amx> amxMode(
    "amx",
    cl::desc("With --precision=bf16: multiply the GEMMs that read a weight's "
             "bf16 pairs in panels on AMX tiles (runtime/AmxGemm.c)"),
    cl::values(clEnumValN(Amx::Auto, "auto",
                          "(default) where this machine has AMX and "
                          "--target=host"),
               clEnumValN(Amx::On, "on",
                          "always (for a CPU with AMX-BF16: a library "
                          "run elsewhere fails with a message)"),
               clEnumValN(Amx::Off, "off", "never: AVX512-BF16 or fp32"),
               clEnumValN(Amx::Emulated, "emulated",
                          "the same kernel through LLVM's scalar lowering "
                          "of the tile instructions: runs on any x86-64, "
                          "slowly; for tests")),
    cl::init(Amx::Auto), cl::cat(dynccCategory), cl::sub(compileCommand),
    cl::sub(runCommand));

cl::opt<bool> packWeights(
    "pack-weights",
    cl::desc("Keep the weights that only GEMMs read whole as their B "
             "operand (linear layers' [out, in] matrices) in panels of 64 "
             "rows (with --precision=bf16: of bf16 pairs of k), arranged "
             "when the model is created, which the GEMMs read in place (the "
             "same results; default on, =false to compare)"),
    cl::init(true), cl::cat(dynccCategory), cl::sub(compileCommand),
    cl::sub(runCommand));
cl::opt<int> scheduleCores(
    "cores",
    cl::desc("Cores the library will run its kernels on: their parallel "
             "loops are cut into tasks for them (default: this machine's "
             "for --target=host, else 2)"),
    cl::value_desc("n"), cl::init(0), cl::cat(dynccCategory),
    cl::sub(compileCommand), cl::sub(runCommand));
cl::opt<int> scheduleL2KiB(
    "l2-kib",
    cl::desc("L2 cache per core (KiB) of the machine the library will run "
             "on: picks the GEMMs' paths and packing (default: this "
             "machine's for --target=host, else 1024)"),
    cl::value_desc("KiB"), cl::init(0), cl::cat(dynccCategory),
    cl::sub(compileCommand), cl::sub(runCommand));

void printVersion(llvm::raw_ostream &os) {
  os << fmt::format("dyncc {}\n  MLIR/LLVM {}\n  Halide {} (host kernel "
                    "target {})\n  bf16 on this CPU: {}\n",
                    DYNCC_VERSION, LLVM_VERSION_STRING,
                    dyncc::codegen::halideVersion(),
                    dyncc::codegen::hostKernelTarget(),
                    DYNCC_HAVE_AMX && dyncc::codegen::hostHasAmxBf16()
                        ? "AMX tiles"
                    : dyncc::codegen::hostHasAvx512Bf16()
                        ? "AVX512-BF16 (no AMX)"
                        : "fp32 arithmetic (no AVX512-BF16, no AMX)");
}

/// Reports an error that has no place in a source file.
int fail(const llvm::Twine &message) {
  llvm::WithColor::error(llvm::errs(), "dyncc") << message << "\n";
  return 1;
}

/// A parsed model and the source manager its diagnostics point into; the
/// handler stays installed while the model is used, so that errors of later
/// stages are located in the file too.
struct LoadedModel {
  llvm::SourceMgr sourceMgr;
  std::unique_ptr<mlir::SourceMgrDiagnosticHandler> handler;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

/// The deepest bracket nesting accepted in a model's text. Models nest a
/// few tens deep (functions, dyn ops, loops, types, dense literals).
constexpr unsigned kMaxNesting = 256;

/// Parses, verifies and runs the dyn-level pipeline (and the kernel pipeline
/// when `kernels`); `model.module` is null on error (diagnostics printed).
void loadModel(const std::string &path, mlir::MLIRContext &context,
               bool kernels, LoadedModel &model,
               const dyncc::KernelPipelineOptions &options = {}) {
  auto buffer = dyncc::readBounded(path, uint64_t(maxInputMiB) << 20);
  if (!buffer) {
    fail(fmt::format("cannot open {}", llvm::toString(buffer.takeError())));
    return;
  }
  std::string contents = (*buffer)->getBuffer().str();
  unsigned id = model.sourceMgr.AddNewSourceBuffer(std::move(*buffer), llvm::SMLoc());
  model.handler = std::make_unique<mlir::SourceMgrDiagnosticHandler>(
      model.sourceMgr, &context);

  // The upstream parser recurses once per nesting level; a file nested
  // thousands deep would overflow the stack before it could say anything.
  if (std::optional<size_t> at = dyncc::findDeepNesting(contents, kMaxNesting)) {
    auto [line, col] = model.sourceMgr.getLineAndColumn(
        llvm::SMLoc::getFromPointer(
            model.sourceMgr.getMemoryBuffer(id)->getBufferStart() + *at),
        id);
    mlir::emitError(mlir::FileLineColLoc::get(&context, path, line, col))
        << "nesting deeper than " << kMaxNesting
        << " levels of brackets; dyncc does not compile such inputs";
    return;
  }

  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::parseSourceFile<mlir::ModuleOp>(model.sourceMgr, &context);
  if (!module)
    return;
  if (module->getBody()->empty()) {
    // An empty (or comment-only) file parses as an empty module; compiling
    // it would silently produce a library with nothing in it.
    mlir::FileLineColLoc loc = mlir::FileLineColLoc::get(&context, path, 1, 1);
    mlir::emitError(loc) << (llvm::StringRef(contents).trim().empty()
                                 ? "input is empty"
                                 : "input defines nothing")
                         << ": expected a module with at least one func.func";
    return;
  }
  mlir::PassManager pm(&context);
  dyncc::buildDynccPipeline(pm);
  if (kernels)
    dyncc::buildKernelPipeline(pm, options);
  if (mlir::failed(pm.run(*module)))
    return;
  model.module = std::move(module);
}

mlir::DialectRegistry makeRegistry() {
  mlir::DialectRegistry registry;
  dyncc::registerDialects(registry);
  return registry;
}

std::string resolveTarget(const std::string &target) {
  if (target == "generic")
    return dyncc::codegen::genericKernelTarget();
  if (target == "cuda")
    return dyncc::codegen::cudaKernelTarget();
  return target;
}

/// --cores and --l2-kib (else `threads`, when > 0, as the cores): the
/// machine the kernels are scheduled for. False (with the message printed)
/// when a value is out of range, or where --tune would time the kernels on
/// another machine than they are scheduled for.
bool applyScheduleMachine(bool tuning, int threads = 0) {
  dyncc::codegen::ScheduleMachine machine;
  if (scheduleCores.getNumOccurrences()) {
    if (scheduleCores < 1 || scheduleCores > 4096) {
      fail(fmt::format("--cores must be in [1, 4096], got {}",
                       scheduleCores.getValue()));
      return false;
    }
    machine.cores = scheduleCores;
  } else if (threads > 0) {
    machine.cores = threads;
  }
  if (scheduleL2KiB.getNumOccurrences()) {
    if (scheduleL2KiB < 64 || scheduleL2KiB > (1 << 20)) {
      fail(fmt::format("--l2-kib must be in [64, 1048576], got {}",
                       scheduleL2KiB.getValue()));
      return false;
    }
    machine.l2Bytes = int64_t(scheduleL2KiB) * 1024;
  }
  if (tuning) {
    dyncc::codegen::ScheduleMachine host =
        dyncc::codegen::scheduleMachine(dyncc::codegen::hostKernelTarget());
    if ((machine.cores && machine.cores != host.cores) ||
        (machine.l2Bytes && machine.l2Bytes != host.l2Bytes)) {
      fail(fmt::format("--tune times the kernels on this machine ({} cores, "
                       "{} KiB L2 per core): --cores and --l2-kib cannot "
                       "name another",
                       host.cores, host.l2Bytes / 1024));
      return false;
    }
  }
  dyncc::codegen::setScheduleMachine(machine);
  return true;
}

/// --amx into `options` (with --precision=bf16 on a CPU target); false with
/// the message printed where it cannot be.
bool applyAmx(dyncc::LibraryOptions &options, bool hostAmx) {
  if (amxMode == Amx::Off || (amxMode == Amx::Auto && !hostAmx))
    return true;
  if (!DYNCC_HAVE_AMX) {
    fail("--amx: this dyncc was built without its AMX kernel (no clang when "
         "libdynrt was built; runtime/CMakeLists.txt)");
    return false;
  }
  if (amxMode == Amx::On && options.kernelTarget == "host" && !hostAmx)
    llvm::errs() << "dyncc: note: --amx=on, but this machine has no AMX "
                    "(or its operating system does not grant it): the "
                    "library will fail to run here\n";
  options.amxEntry = amxMode == Amx::Emulated
                         ? dyncc::codegen::kAmxEmulatedEntry
                         : dyncc::codegen::kAmxEntry;
  return true;
}

/// --precision into `options`; false (with the message printed) where the
/// target cannot take it.
bool applyPrecision(dyncc::LibraryOptions &options) {
  options.packWeights = packWeights;
  if (precision != Precision::Bf16) {
    if (amxMode.getNumOccurrences() && amxMode != Amx::Off) {
      fail("--amx multiplies bf16 operands: it needs --precision=bf16");
      return false;
    }
    return true;
  }
  if (dyncc::codegen::isCudaTarget(options.kernelTarget)) {
    fail("--precision=bf16 is for CPU targets; CUDA kernels are fp32");
    return false;
  }
  options.bf16Gemms = true;
  options.bf16WeightStorage = bf16Weights;
  const bool host = options.kernelTarget == "host";
  const bool hostAmx = host && DYNCC_HAVE_AMX &&
                       dyncc::codegen::hostHasAmxBf16();
  if (host && !hostAmx && !dyncc::codegen::hostHasAvx512Bf16() &&
      amxMode != Amx::Emulated)
    llvm::errs() << "dyncc: note: this CPU has no AVX512-BF16: the bf16 "
                    "GEMMs multiply the rounded operands in fp32 "
                    "arithmetic, slower than --precision=fp32\n";
  return applyAmx(options, hostAmx);
}

int runRun() {
  mlir::MLIRContext context(makeRegistry());
  context.loadAllAvailableDialects();
  // Errors name the op and its location; the op's generic form (for an
  // exit_if, the rest of the network) only with --verbose-diagnostics.
  context.printOpOnDiagnostic(verboseDiagnostics);
  LoadedModel loaded;
  loadModel(runModelPath, context, /*kernels=*/true, loaded);
  if (!loaded.module)
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> &module = loaded.module;
  dyncc::TempDir temp("dyncc-run");
  if (temp.path().empty())
    return fail("cannot create a temporary directory");
  llvm::StringRef dir = temp.path();
  dyncc::LibraryOptions options;
  options.outputBase = (dir + "/model").str();
  options.kernelTarget = resolveTarget(runTarget);
  if (!applyPrecision(options) || !applyScheduleMachine(false, runThreads))
    return 1;
  options.runtimeArchive = dyncc::runtimeArchivePath();
  options.source = runModelPath;
  options.shared = true;
  dyncc::LibraryStats stats;
  if (mlir::failed(dyncc::emitLibrary(*module, options, stats)))
    return 1;
  dyncc::RunOptions run;
  run.sharedObject = (dir + "/libmodel.so").str();
  run.modelName = "model";
  run.weights = runWeights;
  run.inputs.assign(runInputs.begin(), runInputs.end());
  run.outputDir = runOutputDir;
  run.threads = runThreads;
  run.params.assign(runParams.begin(), runParams.end());
  return dyncc::runModel(run, llvm::outs(), llvm::errs());
}

/// `dyncc import`: `python -m dyncc import model.onnx -o base` in the
/// project's Python environment; its diagnostics and exit code are ours.
int runImport() {
  const char *env = std::getenv("DYNCC_PYTHON");
  std::string python = env && *env ? env : dyncc::defaultPythonPath();
  if (!llvm::sys::fs::can_execute(python))
    return fail(fmt::format("dyncc import needs the project's Python "
                            "environment ('{}' is missing: run "
                            "scripts/install-deps.sh, or set DYNCC_PYTHON)",
                            python));
  llvm::SmallVector<llvm::StringRef> argv = {python, "-m", "dyncc", "import",
                                            importPath, "-o", importOutput};
  std::string error;
  int rc = llvm::sys::ExecuteAndWait(python, argv, /*Env=*/std::nullopt, {},
                                     0, 0, &error);
  if (rc < 0)
    return fail(fmt::format("cannot run '{}': {}", python, error));
  return rc == 0 ? 0 : 1;
}

/// `-o dir/name` of a library: the name part must be there and be usable
/// as a C identifier once '-' and '.' become '_' (the model's prefix in the
/// generated header).
std::optional<std::string> outputBaseError(llvm::StringRef base) {
  llvm::StringRef name = llvm::sys::path::filename(base);
  if (base.empty() || base.ends_with("/") || name.empty() || name == "." ||
      name == "..")
    return fmt::format("-o '{}' must end in the model's name (-o dir/name "
                       "writes dir/libname.a and dir/name.h)",
                       base.str());
  if (llvm::isDigit(name.front()))
    return fmt::format("-o '{}': the model's name must not start with a "
                       "digit (it prefixes C identifiers)",
                       base.str());
  for (char c : name)
    if (!llvm::isAlnum(c) && c != '_' && c != '-' && c != '.')
      return fmt::format("-o '{}': the model's name may only hold letters, "
                         "digits, '_', '-' and '.' (it prefixes C "
                         "identifiers)",
                         base.str());
  return std::nullopt;
}

/// The model name of a single stage written to a file or stdout: the input
/// file's stem, as the library of that input would be named by -o dir/stem.
std::string stageName() { return llvm::sys::path::stem(inputPath).str(); }

int runCompile() {
  mlir::MLIRContext context(makeRegistry());
  context.loadAllAvailableDialects();
  // Errors name the op and its location; the op's generic form (for an
  // exit_if, the rest of the network) only with --verbose-diagnostics.
  context.printOpOnDiagnostic(verboseDiagnostics);
  LoadedModel loaded;
  dyncc::KernelPipelineOptions pipeline;
  pipeline.batchBuckets.assign(batchBuckets.begin(), batchBuckets.end());
  pipeline.compaction = compaction;
  pipeline.hoistStepInputs = hoistStepInputs;
  if (pipeline.batchBuckets.empty() && compaction.getNumOccurrences())
    return fail("--compaction needs --batch-buckets");
  for (size_t i = 0; i < pipeline.batchBuckets.size(); ++i)
    if (pipeline.batchBuckets[i] < 1 || pipeline.batchBuckets[i] > 4096 ||
        (i > 0 && pipeline.batchBuckets[i] <= pipeline.batchBuckets[i - 1]))
      return fail(fmt::format("--batch-buckets must be ascending sizes in [1, "
                              "4096], got {}",
                              fmt::join(pipeline.batchBuckets, ",")));
  if (expertParallel.getNumOccurrences()) {
    if (expertParallel < 1 || expertParallel > 4096)
      return fail(fmt::format("--expert-parallel must be a rank count in [1, "
                              "4096], got {}",
                              expertParallel.getValue()));
    pipeline.expertParallel = expertParallel;
  }
  if (compaction != "never" && compaction != "always" && compaction != "auto")
    return fail(fmt::format("--compaction must be 'never', 'always' or "
                            "'auto', got '{}'",
                            compaction.getValue()));
  loadModel(inputPath, context, emitKind >= EmitKind::Kernels, loaded, pipeline);
  if (!loaded.module)
    return 1;
  mlir::OwningOpRef<mlir::ModuleOp> &module = loaded.module;

  if (emitKind == EmitKind::Library) {
    if (outputPath == "-")
      return fail("--emit=library writes files: give -o dir/name");
    if (std::optional<std::string> error = outputBaseError(outputPath))
      return fail(*error);
    dyncc::LibraryOptions options;
    options.outputBase = outputPath;
    options.kernelTarget = resolveTarget(kernelTarget);
    if (!applyPrecision(options))
      return 1;
    options.runtimeArchive = dyncc::runtimeArchivePath();
    options.runtimeHeader = dyncc::runtimeHeaderPath();
    options.source = inputPath;
    options.shared = sharedLib;
    options.embedWeights = embedWeights;
    if (tuneCache.getNumOccurrences() && !tuneGemms)
      return fail("--tune-cache needs --tune");
    if (tuneRecord.getNumOccurrences() && !tuneGemms)
      return fail("--tune-record needs --tune");
    if (panelTiling.getNumOccurrences()) {
      std::string error;
      if (!dyncc::codegen::setPanelTiling(panelTiling, error))
        return fail(error);
    }
    if (!applyScheduleMachine(tuneGemms))
      return 1;
    if (tuneGemms) {
      // Timing is only meaningful for kernels that run here.
      if (kernelTarget != "host")
        return fail(fmt::format("--tune times kernels on this machine: it "
                                "needs --target=host, got '{}'",
                                kernelTarget.getValue()));
      std::string error;
      if (!dyncc::codegen::enableGemmTuning(
              tuneCache.empty() ? dyncc::codegen::defaultTuningCachePath()
                                : tuneCache.getValue(),
              error))
        return fail(error);
      if (tuneRecord.getNumOccurrences() &&
          !dyncc::codegen::recordPanelTunings(tuneRecord, error))
        return fail(error);
    }
    dyncc::LibraryStats stats;
    if (mlir::failed(dyncc::emitLibrary(*module, options, stats)))
      return 1;
    if (tuneGemms) {
      std::vector<std::string> lines;
      std::string error;
      bool saved = dyncc::codegen::finishGemmTuning(lines, error);
      for (const std::string &line : lines)
        llvm::errs() << "dyncc: tune: " << line << "\n";
      if (!saved)
        return fail(error);
    }
    if (printStats) {
      llvm::outs() << fmt::format("kernels: {}\narena bytes: {}\nweight "
                                  "bytes: {}\n",
                                  stats.numKernels, stats.arenaBytes,
                                  stats.weightBytes);
      if (!dyncc::codegen::isCudaTarget(options.kernelTarget)) {
        dyncc::codegen::ScheduleMachine machine =
            dyncc::codegen::scheduleMachine(options.kernelTarget);
        llvm::outs() << fmt::format("scheduled for: {} cores, {} KiB L2 per "
                                    "core\n",
                                    machine.cores, machine.l2Bytes / 1024);
      }
      if (precision == Precision::Bf16)
        llvm::outs() << fmt::format("weights kept as bf16: {} ({} bytes)\n",
                                    stats.bf16Weights, stats.bf16WeightBytes);
      // (with bf16: those of them kept as bf16 pairs in panels)
      llvm::outs() << fmt::format("weights kept in panels: {} ({} bytes)\n",
                                  stats.panelWeights, stats.panelWeightBytes);
      // Skimming loops' input projections computed before the loop
      // (-dyn-lower-skip, docs/skim.md).
      if (auto hoisted = (*module)->getAttrOfType<mlir::ArrayAttr>(
              dyncc::kHoistedProjectionsAttr))
        for (auto line : hoisted.getAsRange<mlir::StringAttr>())
          llvm::outs() << "hoisted " << line.getValue() << "\n";
      for (const std::string &gemm : stats.gemms)
        llvm::outs() << "gemm " << gemm << "\n";
      // What DYNRT_PROFILE=1 divides each kernel's time by.
      for (const auto &[kernel, flops] : stats.kernelFlops)
        llvm::outs() << fmt::format("flops {}: {:.0f} a call\n", kernel, flops);
    }
    return 0;
  }

  std::string text;
  llvm::raw_string_ostream os(text);
  switch (emitKind) {
  case EmitKind::Mlir:
  case EmitKind::Kernels:
    module->print(os);
    break;
  case EmitKind::Host:
    if (mlir::failed(dyncc::emitHostMLIR(*module, stageName(), os)))
      return 1;
    break;
  case EmitKind::Llvm:
    if (mlir::failed(dyncc::emitHostLLVMIR(*module, stageName(), os)))
      return 1;
    break;
  case EmitKind::Object:
    if (mlir::failed(dyncc::emitHostObject(*module, stageName(), os)))
      return 1;
    break;
  case EmitKind::Library:
    break;
  }
  if (outputPath == "-") {
    llvm::outs() << text;
    llvm::outs().flush();
    if (llvm::outs().has_error()) {
      llvm::outs().clear_error();
      return fail("cannot write to stdout");
    }
    return 0;
  }
  dyncc::OutputFiles outputs;
  outputs.add(outputPath, std::move(text));
  if (llvm::Error err = outputs.commit())
    return fail(fmt::format("cannot write {}", llvm::toString(std::move(err))));
  return 0;
}


/// The stack of the thread that compiles: deep enough for any input that
/// passes the nesting check (the upstream parser and Halide's lowering
/// recurse), reserved, not committed.
constexpr unsigned kStackBytes = 512u << 20;

/// Gives the calling thread an alternate signal stack and makes the crash
/// handlers run on it, so that a stack overflow is reported like any other
/// crash instead of killing the process silently.
void useAlternateSignalStack() {
  static thread_local std::vector<char> altStack(1 << 18);
  stack_t ss{};
  ss.ss_sp = altStack.data();
  ss.ss_size = altStack.size();
  sigaltstack(&ss, nullptr);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    struct sigaction action;
    if (sigaction(sig, nullptr, &action) == 0 && action.sa_handler != SIG_DFL &&
        action.sa_handler != SIG_IGN) {
      action.sa_flags |= SA_ONSTACK;
      sigaction(sig, &action, nullptr);
    }
  }
}

/// The input the crash message names.
std::string crashInput() {
  if (compileCommand)
    return inputPath;
  if (runCommand)
    return runModelPath;
  return "";
}

/// Caps the address space (RLIMIT_AS) at --max-memory-mib, by default half
/// the physical memory: an input that makes MLIR allocate without bound (a
/// `tensor.from_elements` of 2^31 elements, say) fails at once with "out of
/// memory" instead of swapping or meeting the OOM killer.
void limitMemory() {
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer reserves terabytes of address space for its shadow
  // memory: under a cap it cannot allocate at all (sanitized builds only).
  return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return;
#endif
#endif
  uint64_t limit = maxMemoryMiB << 20;
  if (limit == 0) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    if (pages <= 0 || page <= 0)
      return;
    // Half the physical memory, plus the weights to embed (read whole).
    limit = (uint64_t)pages * (uint64_t)page / 2;
    uint64_t weights = 0;
    if (compileCommand && !embedWeights.empty() &&
        !llvm::sys::fs::file_size(embedWeights, weights))
      limit += weights;
  }
  struct rlimit current;
  if (getrlimit(RLIMIT_AS, &current) != 0)
    return;
  if (current.rlim_cur != RLIM_INFINITY && current.rlim_cur <= limit)
    return;
  current.rlim_cur = limit;
  setrlimit(RLIMIT_AS, &current);
}

[[noreturn]] void reportOutOfMemory() {
  dyncc::removeTempDirs();
  llvm::sys::RunInterruptHandlers();
  // No allocation here: the heap is exhausted.
  const char message[] = "dyncc: error: out of memory while compiling; the "
                         "input needs more than the address-space limit "
                         "(--max-memory-mib)\n";
  ssize_t ignored = ::write(2, message, sizeof(message) - 1);
  (void)ignored;
  std::_Exit(1);
}

[[noreturn]] void reportCrash(const std::string &what) {
  dyncc::removeTempDirs();
  llvm::sys::RunInterruptHandlers(); // the output temporaries
  llvm::errs() << "dyncc: error: internal error (" << what << ") while "
               << "compiling '" << crashInput()
               << "'; nothing was written. This is a bug in dyncc (or in "
                  "MLIR or Halide, which it contains): please report it "
                  "with the input.\n";
  llvm::errs().flush();
  std::_Exit(1);
}

int dispatch() {
  if (compileCommand)
    return runCompile();
  if (runCommand)
    return runRun();
  if (importCommand)
    return runImport();
  return fail("no command given; try 'dyncc compile model.mlir -o out' or "
              "'dyncc --help'");
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM initLLVM(argc, argv);
  cl::SetVersionPrinter(printVersion);
  for (cl::SubCommand *sub : {&cl::SubCommand::getTopLevel(), &compileCommand,
                              &runCommand, &importCommand})
    cl::HideUnrelatedOptions(dynccCategory, *sub);
  // Exit code 1 (not cl's default) for bad options, like every other error.
  if (!cl::ParseCommandLineOptions(
          argc, argv,
          "dyncc: ahead-of-time compiler for dynamic neural networks\n\n"
          "  dyncc compile model.mlir -o out/model [--emit=...]\n"
          "  dyncc run model.mlir [--weights w.safetensors] in0.npy ...\n"
          "  dyncc import model.onnx -o out/model\n",
          &llvm::errs()))
    return 1;

  // No exception, abort or fault leaves dyncc as a signal: LLVM's fatal
  // errors and uncaught exceptions become an error and exit code 1, and the
  // command runs on a big-stack thread inside a crash-recovery context.
  llvm::install_fatal_error_handler(
      [](void *, const char *reason, bool) {
        dyncc::removeTempDirs();
        llvm::errs() << "dyncc: error: " << reason << "\n";
        llvm::errs().flush();
        std::_Exit(1);
      },
      nullptr);
  limitMemory();
  llvm::install_bad_alloc_error_handler(
      [](void *, const char *, bool) { reportOutOfMemory(); }, nullptr);
  std::set_new_handler([] { reportOutOfMemory(); });
  std::set_terminate([] {
    std::string what = "uncaught exception";
    if (std::exception_ptr e = std::current_exception()) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception &ex) {
        what += std::string(": ") + ex.what();
      } catch (...) {
      }
    }
    reportCrash(what);
  });
  // A reader that goes away (dyncc ... | head): exit at once, without
  // running static destructors under the compiling thread.
  llvm::sys::SetOneShotPipeSignalFunction([] { std::_Exit(1); });
  // A file size limit (ulimit -f) makes writes fail with EFBIG, reported
  // like a full disk, instead of killing dyncc with SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  llvm::CrashRecoveryContext::Enable();
  // The compiling thread ends the process itself (std::_Exit after flushing
  // its streams): neither it nor the process tears down the heap, so a
  // corruption that MLIR's parser leaves behind on some malformed inputs
  // (found by test/fuzz-mlir) cannot abort dyncc after it has reported.
  llvm::thread compiler(std::optional<unsigned>(kStackBytes), [] {
    useAlternateSignalStack();
    llvm::CrashRecoveryContext crc;
    int rc = 1;
    if (!crc.RunSafely([&] { rc = dispatch(); }))
      reportCrash(fmt::format("signal {}", crc.RetCode - 128));
    llvm::outs().flush();
    llvm::errs().flush();
    std::_Exit(rc);
  });
  compiler.join();
  return 1; // not reached
}
