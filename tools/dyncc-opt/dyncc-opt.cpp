//===- dyncc-opt.cpp - mlir-opt for dyncc ---------------------------------===//
//
// Parses, verifies, transforms and prints dyn-level IR: the tool of the lit
// tests. It knows the dyn dialect, the upstream dialects of the pipeline and
// every dyncc pass.
//
//===----------------------------------------------------------------------===//

#include "passes/Passes.h"
#include "tools/dyncc/Registration.h"

#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"

int main(int argc, char **argv) {
  mlir::DialectRegistry registry;
  dyncc::registerDialects(registry);
  dyncc::registerDynccPasses();
  mlir::registerTransformsPasses();
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "dyncc optimizer driver\n", registry));
}
