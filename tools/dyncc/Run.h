//===- Run.h - dyncc run: compile and run a model on .npy files -*- C++ -*-===//

#ifndef DYNCC_TOOLS_DYNCC_RUN_H
#define DYNCC_TOOLS_DYNCC_RUN_H

#include "llvm/Support/raw_ostream.h"

#include <string>
#include <vector>

namespace dyncc {

struct RunOptions {
  std::string sharedObject; // the compiled model, lib<name>.so
  std::string modelName;    // <name>: the descriptor is <name>_desc
  std::string weights;      // safetensors file ("" if the model has none)
  std::vector<std::string> inputs; // .npy files, in input order
  std::string outputDir;    // write <output name>.npy here ("" = don't)
  int threads = 0;
  /// Runtime parameters to set: "name=v1,v2,...".
  std::vector<std::string> params;
  int repeat = 1;
};

/// Loads the shared object, runs the model on the inputs and prints every
/// output (and writes .npy files). Returns the process exit code; errors are
/// printed to `errs` with the file they concern.
int runModel(const RunOptions &options, llvm::raw_ostream &outs,
             llvm::raw_ostream &errs);

} // namespace dyncc

#endif // DYNCC_TOOLS_DYNCC_RUN_H
