//===- HalideTargetTest.cpp - Halide 14 and MLIR 19 in one process --------===//
//
// This file includes MLIR headers but not Halide.h; the Halide calls happen
// in codegen/, which includes Halide.h but no MLIR header.
//
//===----------------------------------------------------------------------===//

#include "codegen/HalideTarget.h"
#include "dialect/DynDialect.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"

#include <gtest/gtest.h>

namespace {

TEST(HalideTarget, HostAndGenericTargetsAreValid) {
  std::string error;
  EXPECT_TRUE(dyncc::codegen::isValidKernelTarget(
      dyncc::codegen::hostKernelTarget(), error)) << error;
  EXPECT_TRUE(dyncc::codegen::isValidKernelTarget(
      dyncc::codegen::genericKernelTarget(), error)) << error;
  EXPECT_EQ(dyncc::codegen::genericKernelTarget().rfind("x86-64-linux", 0), 0u);
}

TEST(HalideTarget, RejectsNonsenseTargets) {
  std::string error;
  EXPECT_FALSE(dyncc::codegen::isValidKernelTarget("x86-64-plan9-warp", error));
  EXPECT_NE(error.find("is not a Halide target string"), std::string::npos);
}

TEST(HalideTarget, CompilesAKernelNextToMLIR) {
  // Use MLIR first, so both LLVMs are live in this process.
  mlir::MLIRContext context;
  context.loadDialect<dyncc::dyn::DynDialect>();
  ASSERT_TRUE(mlir::parseAttribute(R"(#dyn.param<"theta" = 0.5>)", &context));

  llvm::SmallString<128> path;
  ASSERT_FALSE(llvm::sys::fs::createTemporaryFile("dyncc-smoke", "o", path));
  std::string error;
  ASSERT_TRUE(dyncc::codegen::compileSmokeKernel(
      dyncc::codegen::hostKernelTarget(), std::string(path), error)) << error;
  auto object = llvm::MemoryBuffer::getFile(path);
  ASSERT_TRUE(object);
  llvm::StringRef bytes = (*object)->getBuffer();
  EXPECT_TRUE(bytes.starts_with("\x7f" "ELF"));
  EXPECT_NE(bytes.find("dyncc_smoke_add"), llvm::StringRef::npos);
  llvm::sys::fs::remove(path);
}

} // namespace
