//===- Files.h - bounded reads and all-or-nothing writes --------*- C++ -*-===//
//
// What dyncc reads and writes on the user's behalf: inputs are read up to a
// size limit (a device such as /dev/zero or a runaway pipe is an error, not
// an out-of-memory), and outputs are written all or nothing (each to a
// temporary beside its destination, flushed to disk, then all renamed into
// place; special files refused; temporaries removed on every failure path).
// See docs/reliability.md.
//
//===----------------------------------------------------------------------===//

#ifndef DYNCC_CODEGEN_FILES_H
#define DYNCC_CODEGEN_FILES_H

#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace dyncc {

/// A temporary directory, removed with everything in it when the object
/// goes away, or by removeTempDirs() after a crash (which skips
/// destructors).
class TempDir {
public:
  /// Creates `$TMPDIR/<prefix>-XXXXXX`; path() is empty on failure.
  explicit TempDir(llvm::StringRef prefix);
  ~TempDir();
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;
  const std::string &path() const { return dir; }

private:
  std::string dir;
};

/// Removes the TempDirs still alive (the crash path).
void removeTempDirs();

/// The default limit of readBounded: 1 GiB.
inline constexpr uint64_t kDefaultMaxInputBytes = uint64_t(1) << 30;

/// Reads `path` ('-' for stdin) whole, failing cleanly when it holds more
/// than `maxBytes`, is a directory, or (with `regularOnly`) is not a
/// regular file. The error names the path.
llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
readBounded(llvm::StringRef path, uint64_t maxBytes = kDefaultMaxInputBytes,
            bool regularOnly = false);

/// Where MLIR text nests deeper than `maxDepth` brackets (`{ ( [ <`, outside
/// strings and comments): the byte offset of the first bracket too deep, or
/// nothing. Run before the upstream parser, which recurses once per level.
std::optional<size_t> findDeepNesting(llvm::StringRef text, unsigned maxDepth);

/// Whether `path` may be written as an output: it does not exist or is a
/// regular file (or a link to one). Directories, devices, sockets and FIFOs
/// are refused with an error that says what the path is.
llvm::Error checkOutputPath(llvm::StringRef path);

/// A set of output files committed together.
class OutputFiles {
public:
  OutputFiles() = default;
  OutputFiles(const OutputFiles &) = delete;
  OutputFiles &operator=(const OutputFiles &) = delete;
  /// Removes the temporaries of an uncommitted (or failed) set.
  ~OutputFiles();

  /// Adds a file; files are renamed into place in the order added.
  void add(std::string path, std::string contents, bool executable = false);

  /// Checks every destination, writes every temporary (fsync'ed), then
  /// renames them into place. On error nothing new is in place, except when
  /// a rename itself fails midway (the error says which files were
  /// replaced).
  llvm::Error commit();

private:
  struct File {
    std::string path, contents, temp;
    bool executable = false;
  };
  llvm::SmallVector<File> files;
};

} // namespace dyncc

#endif // DYNCC_CODEGEN_FILES_H
