//===- Files.cpp - bounded reads and all-or-nothing writes ----------------===//

#include "codegen/Files.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/Errc.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>
#include <unistd.h>

namespace dyncc {

namespace fs = llvm::sys::fs;

namespace {

llvm::Error fileError(llvm::StringRef path, const std::string &what) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), "'%s': %s",
                                 path.str().c_str(), what.c_str());
}

std::string sizeText(uint64_t bytes) {
  if (bytes >= (uint64_t(1) << 30) && bytes % (uint64_t(1) << 30) == 0)
    return fmt::format("{} GiB", bytes >> 30);
  if (bytes >= (uint64_t(1) << 20) && bytes % (uint64_t(1) << 20) == 0)
    return fmt::format("{} MiB", bytes >> 20);
  return fmt::format("{} bytes", bytes);
}

const char *typeName(fs::file_type type) {
  switch (type) {
  case fs::file_type::directory_file:
    return "a directory";
  case fs::file_type::block_file:
  case fs::file_type::character_file:
    return "a device";
  case fs::file_type::fifo_file:
    return "a FIFO";
  case fs::file_type::socket_file:
    return "a socket";
  default:
    return "a special file";
  }
}

/// Writes all of `bytes` to `fd`, then flushes it to disk.
std::error_code writeAndSync(int fd, llvm::StringRef bytes) {
  const char *p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return std::error_code(errno, std::generic_category());
    }
    p += n;
    left -= size_t(n);
  }
  if (::fsync(fd) != 0 && errno != EINVAL)
    return std::error_code(errno, std::generic_category());
  return {};
}

} // namespace

namespace {
std::mutex tempDirsMutex;
std::vector<std::string> &tempDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}
} // namespace

TempDir::TempDir(llvm::StringRef prefix) {
  llvm::SmallString<128> created;
  if (fs::createUniqueDirectory(prefix, created))
    return;
  dir = std::string(created);
  std::lock_guard<std::mutex> lock(tempDirsMutex);
  tempDirs().push_back(dir);
}

TempDir::~TempDir() {
  if (dir.empty())
    return;
  fs::remove_directories(dir);
  std::lock_guard<std::mutex> lock(tempDirsMutex);
  llvm::erase(tempDirs(), dir);
}

void removeTempDirs() {
  // The crash path: the lock may be held by the crashed thread.
  if (!tempDirsMutex.try_lock())
    return;
  for (const std::string &d : tempDirs())
    fs::remove_directories(d);
  tempDirs().clear();
  tempDirsMutex.unlock();
}

llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>>
readBounded(llvm::StringRef path, uint64_t maxBytes, bool regularOnly) {
  llvm::Expected<fs::file_t> opened =
      path == "-" ? llvm::Expected<fs::file_t>(fs::getStdinHandle())
                  : fs::openNativeFileForRead(path);
  if (!opened)
    return fileError(path, llvm::toString(opened.takeError()));
  fs::file_t fd = *opened;
  auto close = llvm::make_scope_exit([&] {
    if (path != "-")
      fs::closeFile(fd);
  });
  fs::file_status status;
  if (std::error_code ec = fs::status(fd, status))
    return fileError(path, ec.message());
  if (status.type() == fs::file_type::directory_file)
    return fileError(path, "is a directory");
  if (regularOnly && status.type() != fs::file_type::regular_file)
    return fileError(path, fmt::format("is {}, not a regular file",
                                       typeName(status.type())));
  std::string tooBig = fmt::format("is larger than the input limit of {}",
                                   sizeText(maxBytes));
  if (status.type() == fs::file_type::regular_file) {
    if (status.getSize() > maxBytes)
      return fileError(path, tooBig);
    auto buffer = llvm::MemoryBuffer::getOpenFile(fd, path, status.getSize(),
                                                  /*RequiresNullTerminator=*/true);
    if (!buffer)
      return fileError(path, buffer.getError().message());
    return std::move(*buffer);
  }
  // A pipe, a device or stdin: read at most maxBytes + 1 bytes.
  llvm::SmallString<0> data;
  constexpr size_t kChunk = 1 << 16;
  while (true) {
    if (data.size() > maxBytes)
      return fileError(path, tooBig);
    size_t at = data.size();
    data.resize_for_overwrite(at + kChunk);
    llvm::Expected<size_t> n = fs::readNativeFile(
        fd, llvm::MutableArrayRef<char>(data.data() + at, kChunk));
    if (!n)
      return fileError(path, llvm::toString(n.takeError()));
    data.truncate(at + *n);
    if (*n == 0)
      break;
  }
  return llvm::MemoryBuffer::getMemBufferCopy(data, path);
}

std::optional<size_t> findDeepNesting(llvm::StringRef text, unsigned maxDepth) {
  // The open brackets; a '>' closes only a '<' (so that '->' and '>=' in
  // a type or an expression do not count), other closers pop to their
  // opener if there is one.
  std::string open;
  size_t i = 0, n = text.size();
  while (i < n) {
    char c = text[i];
    if (c == '"') {
      for (++i; i < n && text[i] != '"'; ++i)
        if (text[i] == '\\')
          ++i;
      ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && text[i + 1] == '/') {
      size_t eol = text.find('\n', i);
      i = eol == llvm::StringRef::npos ? n : eol + 1;
      continue;
    }
    if (c == '{' || c == '(' || c == '[' || c == '<') {
      open.push_back(c);
      if (open.size() > maxDepth)
        return i;
    } else if (c == '>') {
      if (!open.empty() && open.back() == '<')
        open.pop_back();
    } else if (c == '}' || c == ')' || c == ']') {
      char opener = c == '}' ? '{' : c == ')' ? '(' : '[';
      size_t at = open.rfind(opener);
      if (at != std::string::npos)
        open.resize(at);
    }
    ++i;
  }
  return std::nullopt;
}

llvm::Error checkOutputPath(llvm::StringRef path) {
  fs::file_status status;
  if (fs::status(path, status))
    return llvm::Error::success(); // does not exist (or unreadable: the write says)
  if (status.type() == fs::file_type::regular_file)
    return llvm::Error::success();
  return fileError(path, fmt::format("is {}; dyncc only replaces regular files",
                                     typeName(status.type())));
}

OutputFiles::~OutputFiles() {
  for (File &f : files)
    if (!f.temp.empty()) {
      fs::remove(f.temp);
      llvm::sys::DontRemoveFileOnSignal(f.temp);
    }
}

void OutputFiles::add(std::string path, std::string contents, bool executable) {
  files.push_back({std::move(path), std::move(contents), "", executable});
}

llvm::Error OutputFiles::commit() {
  for (File &f : files) {
    if (llvm::sys::path::filename(f.path).empty())
      return fileError(f.path, "is not a file name");
    if (llvm::Error e = checkOutputPath(f.path))
      return e;
  }
  for (File &f : files) {
    // The temporary sits beside its destination, so that the rename stays
    // on one file system and is atomic.
    llvm::SmallString<256> model(llvm::sys::path::parent_path(f.path));
    llvm::sys::path::append(model, "." + llvm::sys::path::filename(f.path) +
                                       ".dyncc-%%%%%%");
    int fd;
    llvm::SmallString<256> temp;
    unsigned mode = f.executable ? 0755 : 0644;
    if (std::error_code ec = fs::createUniqueFile(model, fd, temp, fs::OF_None, mode))
      return fileError(f.path, "cannot create a temporary file beside it: " +
                                   ec.message());
    f.temp = std::string(temp);
    llvm::sys::RemoveFileOnSignal(f.temp);
    std::error_code ec = writeAndSync(fd, f.contents);
    if (::close(fd) != 0 && !ec)
      ec = std::error_code(errno, std::generic_category());
    if (ec)
      return fileError(f.path, "cannot write: " + ec.message() +
                                   " (nothing was replaced)");
  }
  for (size_t k = 0; k < files.size(); ++k) {
    File &f = files[k];
    if (std::error_code ec = fs::rename(f.temp, f.path)) {
      std::string done;
      for (size_t j = 0; j < k; ++j)
        done += (j ? ", '" : "'") + files[j].path + "'";
      return fileError(f.path, "cannot rename into place: " + ec.message() +
                                   (done.empty() ? " (nothing was replaced)"
                                                 : " (already replaced: " + done + ")"));
    }
    llvm::sys::DontRemoveFileOnSignal(f.temp);
    f.temp.clear();
  }
  return llvm::Error::success();
}

} // namespace dyncc
