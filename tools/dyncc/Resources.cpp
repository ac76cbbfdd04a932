//===- Resources.cpp - files the dyncc driver reads at run time -----------===//
//
// The build configures two layouts (tools/dyncc/CMakeLists.txt): absolute
// paths into the build and source trees, and paths relative to the
// executable's directory in an install prefix. The executable's own location
// picks one: the build tree's dyncc is the one in DYNCC_BUILD_BINARY_DIR,
// every other copy is an installed one.
//
//===----------------------------------------------------------------------===//

#include "tools/dyncc/Resources.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Program.h"

namespace dyncc {
namespace {

/// The directory of the running executable, symlinks resolved; "" if unknown.
std::string executableDir() {
  static int anchor;
  std::string exe = llvm::sys::fs::getMainExecutable("dyncc", &anchor);
  llvm::SmallString<256> real;
  if (exe.empty() || llvm::sys::fs::real_path(exe, real))
    return "";
  return llvm::sys::path::parent_path(real).str();
}

bool inBuildTree() {
  static const bool result = [] {
    llvm::SmallString<256> buildDir;
    if (llvm::sys::fs::real_path(DYNCC_BUILD_BINARY_DIR, buildDir))
      return false;
    return executableDir() == buildDir.str();
  }();
  return result;
}

/// `relative` (to the executable's directory in the install prefix) as an
/// absolute path.
std::string installed(const char *relative) {
  llvm::SmallString<256> path(executableDir());
  llvm::sys::path::append(path, relative);
  llvm::sys::path::remove_dots(path, /*remove_dot_dot=*/true);
  return path.str().str();
}

} // namespace

std::string runtimeArchivePath() {
  return inBuildTree() ? DYNCC_BUILD_RUNTIME_ARCHIVE
                       : installed(DYNCC_INSTALL_RUNTIME_ARCHIVE);
}

std::string runtimeHeaderPath() {
  return inBuildTree() ? DYNCC_BUILD_RUNTIME_HEADER
                       : installed(DYNCC_INSTALL_RUNTIME_HEADER);
}

std::string defaultPythonPath() {
  if (inBuildTree())
    return DYNCC_BUILD_DEFAULT_PYTHON;
  llvm::ErrorOr<std::string> python = llvm::sys::findProgramByName("python3");
  return python ? *python : "python3";
}

} // namespace dyncc
