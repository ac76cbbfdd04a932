//===- Resources.h - files the dyncc driver reads at run time -*- C++ -*-===//
//
// dyncc puts libdynrt.a into every library it writes and copies dynrt.h next
// to every generated header; `dyncc import` runs a Python. Where these live
// depends on whether this dyncc runs from its build tree or from an install
// prefix (`cmake --install`); an installed dyncc never reads the build or
// source tree, and the prefix may be moved as a whole.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_TOOLS_DYNCC_RESOURCES_H
#define DYNCC_TOOLS_DYNCC_RESOURCES_H

#include <string>

namespace dyncc {

/// The runtime archive that goes into every generated library.
std::string runtimeArchivePath();

/// The runtime's public header, copied next to every generated header.
std::string runtimeHeaderPath();

/// The Python that `dyncc import` runs when $DYNCC_PYTHON is unset: the
/// project's .venv from the build tree, `python3` on PATH when installed.
std::string defaultPythonPath();

} // namespace dyncc

#endif // DYNCC_TOOLS_DYNCC_RESOURCES_H
