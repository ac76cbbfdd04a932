// Npy.cpp - NumPy .npy reader and writer (format:
// numpy/lib/format.py): a 6-byte magic "\x93NUMPY", a major and minor
// version byte, a little-endian header length (u16 in 1.0, u32 in 2.0 and
// 3.0), a Python dict literal {'descr': ..., 'fortran_order': ...,
// 'shape': (...)} padded with spaces and ended by '\n', then the raw data.
#include "runtime/Npy.h"

#include "runtime/Status.h"
#include "runtime/Types.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

using namespace dynrt;

namespace {

constexpr char magic[] = "\x93NUMPY";
constexpr size_t magicSize = 6;
// numpy aligns the data start to 64 bytes (ARRAY_ALIGN) so that memory
// mapped arrays are aligned for any element type.
constexpr size_t headerAlign = 64;

struct NpyType {
  std::string_view descr;
  dynrt_dtype_t dtype;
};

// Little-endian (or byte-order free) descrs, spelled as numpy writes them.
constexpr NpyType npyTypes[] = {
    {"<f2", DYNRT_F16}, {"<f4", DYNRT_F32}, {"<f8", DYNRT_F64},
    {"|i1", DYNRT_I8},  {"<i2", DYNRT_I16}, {"<i4", DYNRT_I32},
    {"<i8", DYNRT_I64}, {"|u1", DYNRT_U8},  {"|b1", DYNRT_BOOL},
};

std::string errnoMessage(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// Text of the file for a message: cut to `limit` bytes, control characters
// and quotes escaped.
std::string clipped(std::string_view text, size_t limit = 32) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    auto byte = static_cast<uint8_t>(c);
    if (byte < 0x20 || byte >= 0x7f || c == '\'' || c == '\\')
      out += fmt::format("\\x{:02x}", byte);
    else
      out += c;
  }
  return text.size() > limit ? out + "..." : out;
}

std::string supportedDescrs() {
  std::string list;
  for (const NpyType &type : npyTypes)
    list += fmt::format("{}'{}'", list.empty() ? "" : ", ", type.descr);
  return list;
}

// "()", "(3,)", "(2, 3)": the Python tuple spelling numpy writes.
std::string pythonTuple(const std::vector<int64_t> &shape) {
  if (shape.size() == 1)
    return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

// The header dict as numpy writes it; parsing accepts the Python literal
// subset that numpy's writers produce (any key order, either quote, optional
// trailing commas, Python 2 'L' suffixes).
struct NpyHeader {
  std::string descr;
  bool fortranOrder = false;
  std::vector<int64_t> shape;
};

class HeaderParser {
public:
  explicit HeaderParser(std::string_view text) : text(text) {}

  // Returns an empty string on success, else what is wrong.
  std::string parse(NpyHeader &header) {
    bool sawDescr = false, sawOrder = false, sawShape = false;
    skipSpace();
    if (!consume('{'))
      return "header is not a Python dict";
    skipSpace();
    while (!consume('}')) {
      std::optional<std::string> key = parseString();
      if (!key)
        return "header dict key is not a string";
      skipSpace();
      if (!consume(':'))
        return fmt::format("expected ':' after '{}'", clipped(*key));
      skipSpace();
      bool *seen;
      if (*key == "descr") {
        std::optional<std::string> descr = parseString();
        if (!descr)
          return "'descr' is not a string (structured dtypes are not "
                 "supported)";
        header.descr = *descr;
        seen = &sawDescr;
      } else if (*key == "fortran_order") {
        if (consumeWord("True"))
          header.fortranOrder = true;
        else if (consumeWord("False"))
          header.fortranOrder = false;
        else
          return "'fortran_order' is not True or False";
        seen = &sawOrder;
      } else if (*key == "shape") {
        if (std::string error = parseShape(header.shape); !error.empty())
          return error;
        seen = &sawShape;
      } else {
        return fmt::format("unexpected header key '{}'", clipped(*key));
      }
      if (*seen)
        return fmt::format("header has the key '{}' twice", clipped(*key));
      *seen = true;
      skipSpace();
      if (!consume(',')) {
        skipSpace();
        if (!consume('}'))
          return fmt::format("expected ',' or '}}' after '{}'", clipped(*key));
        break;
      }
      skipSpace();
    }
    skipSpace();
    if (pos != text.size())
      return "unexpected text after the header dict";
    if (!sawDescr || !sawOrder || !sawShape)
      return fmt::format("header lacks {}", !sawDescr   ? "'descr'"
                                            : !sawOrder ? "'fortran_order'"
                                                        : "'shape'");
    return "";
  }

private:
  void skipSpace() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' ||
                                 text[pos] == '\n' || text[pos] == '\r'))
      ++pos;
  }

  bool consume(char c) {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }

  bool consumeWord(std::string_view word) {
    if (text.substr(pos, word.size()) != word)
      return false;
    pos += word.size();
    return true;
  }

  // A quoted string without escapes (numpy's keys and descrs have none).
  std::optional<std::string> parseString() {
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"'))
      return std::nullopt;
    char quote = text[pos];
    size_t end = text.find(quote, pos + 1);
    if (end == std::string_view::npos)
      return std::nullopt;
    std::string value(text.substr(pos + 1, end - pos - 1));
    if (value.find('\\') != std::string::npos)
      return std::nullopt;
    pos = end + 1;
    return value;
  }

  std::string parseShape(std::vector<int64_t> &shape) {
    shape.clear();
    if (!consume('('))
      return "'shape' is not a tuple";
    skipSpace();
    bool trailingComma = false;
    while (!consume(')')) {
      size_t start = pos;
      int64_t dim = 0;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (__builtin_mul_overflow(dim, int64_t(10), &dim) ||
            __builtin_add_overflow(dim, int64_t(text[pos] - '0'), &dim))
          return "'shape' has a dimension that does not fit in 64 bits";
        ++pos;
      }
      if (pos == start)
        return "'shape' is not a tuple of non-negative integers";
      consume('L');
      if (shape.size() == maxNpyRank)
        return fmt::format("'shape' has more than {} dimensions", maxNpyRank);
      shape.push_back(dim);
      skipSpace();
      trailingComma = consume(',');
      skipSpace();
      if (!trailingComma && !consume(')'))
        return "'shape' is not a tuple of non-negative integers";
      if (!trailingComma)
        break;
    }
    // "(3)" is the integer 3 in Python, not a 1-tuple.
    if (shape.size() == 1 && !trailingComma)
      return "'shape' (n) is not a tuple; a 1-tuple is written (n,)";
    return "";
  }

  std::string_view text;
  size_t pos = 0;
};

// Reads the whole file.
dynrt_status_t readFile(const std::string &path, std::vector<uint8_t> &out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return makeStatus(err == ENOENT || err == ENOTDIR ? DYNRT_NOT_FOUND
                                                      : DYNRT_UNAVAILABLE,
                      "'{}': cannot open: {}", path, errnoMessage(err));
  }
  dynrt_status_t status = nullptr;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    status = makeStatus(DYNRT_UNAVAILABLE, "'{}': cannot stat: {}", path,
                        errnoMessage(errno));
  } else if (!S_ISREG(st.st_mode)) {
    status =
        makeStatus(DYNRT_INVALID_ARGUMENT, "'{}': not a regular file", path);
  } else {
    out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::read(fd, out.data() + done, out.size() - done);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0) {
        status = makeStatus(DYNRT_UNAVAILABLE, "'{}': cannot read: {}", path,
                            errnoMessage(errno));
        break;
      }
      if (n == 0) {
        // The file shrank since fstat; what we have is what there is.
        out.resize(done);
        break;
      }
      done += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  return status;
}

// Writes all of `bytes` to `fd`, retrying partial writes.
bool writeAll(int fd, const void *bytes, size_t size) {
  const char *p = static_cast<const char *>(bytes);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n == 0)
      errno = EIO; // a regular file never takes 0 bytes; do not report stale
    if (n <= 0)
      return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

} // namespace

dynrt_status_t dynrt::readNpy(const std::string &path, NpyArray &out) {
  return guardExceptions([&]() -> dynrt_status_t {
    std::vector<uint8_t> file;
    if (dynrt_status_t status = readFile(path, file))
      return status;
    return parseNpy(file.data(), file.size(), path, out);
  });
}

dynrt_status_t dynrt::parseNpy(const uint8_t *data, size_t size,
                               const std::string &path, NpyArray &out) {
  return guardExceptions([&]() -> dynrt_status_t {
    if (!data && size != 0)
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': data is NULL but its size is {}", path, size);
    auto dataLoss = [&](std::string message) {
      return makeStatus(DYNRT_DATA_LOSS, "'{}': {}", path, message);
    };

    if (size < magicSize + 2 || std::memcmp(data, magic, magicSize) != 0)
      return dataLoss(size < magicSize + 2
                          ? fmt::format("not a .npy file (bad magic: {} "
                                        "bytes, shorter than the 8-byte "
                                        "preamble)",
                                        size)
                          : "not a .npy file (bad magic)");
    uint8_t major = data[6], minor = data[7];
    size_t lengthSize;
    if (major == 1 && minor == 0)
      lengthSize = 2;
    else if ((major == 2 || major == 3) && minor == 0)
      lengthSize = 4;
    else
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': unsupported .npy format version {}.{}", path,
                        major, minor);
    size_t headerStart = magicSize + 2 + lengthSize;
    if (size < headerStart)
      return dataLoss("truncated header (the file ends inside the header "
                      "length)");
    uint64_t headerSize = 0;
    for (size_t i = lengthSize; i-- > 0;)
      headerSize = (headerSize << 8) | data[magicSize + 2 + i];
    if (headerSize > maxNpyHeaderSize)
      return dataLoss(fmt::format("header length {} is larger than the {} "
                                  "MiB limit",
                                  headerSize, maxNpyHeaderSize >> 20));
    if (headerSize > size - headerStart)
      return dataLoss(fmt::format("truncated header (header length {} but "
                                  "only {} bytes follow)",
                                  headerSize, size - headerStart));

    std::string_view headerText(
        reinterpret_cast<const char *>(data + headerStart), headerSize);
    NpyHeader header;
    if (std::string error = HeaderParser(headerText).parse(header);
        !error.empty())
      return dataLoss(fmt::format("malformed header: {}", error));

    const NpyType *type = nullptr;
    for (const NpyType &candidate : npyTypes)
      if (candidate.descr == header.descr)
        type = &candidate;
    if (!type) {
      if (!header.descr.empty() && header.descr[0] == '>')
        return makeStatus(DYNRT_INVALID_ARGUMENT,
                          "'{}': descr '{}' is big-endian; only little-endian "
                          "data is supported",
                          path, clipped(header.descr));
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': unsupported descr '{}' (supported: {})", path,
                        clipped(header.descr), supportedDescrs());
    }
    if (header.fortranOrder)
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': fortran_order is True; only C-ordered arrays "
                        "are supported",
                        path);

    std::optional<uint64_t> expected = byteSizeOf(type->dtype, header.shape);
    if (!expected)
      return dataLoss(fmt::format("the byte size of shape {} overflows",
                                  formatShape(header.shape)));
    size_t dataStart = headerStart + headerSize;
    uint64_t actual = size - dataStart;
    if (actual != *expected)
      return dataLoss(fmt::format("data is {} bytes but '{}' {} needs {}",
                                  actual, type->descr,
                                  formatShape(header.shape), *expected));

    out.dtype = type->dtype;
    out.shape = std::move(header.shape);
    out.bytes.assign(data + dataStart, data + size);
    return nullptr;
  });
}

dynrt_status_t dynrt::writeNpy(const std::string &path, const NpyArray &array) {
  return guardExceptions([&]() -> dynrt_status_t {
    const NpyType *type = nullptr;
    for (const NpyType &candidate : npyTypes)
      if (candidate.dtype == array.dtype)
        type = &candidate;
    if (!type)
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': dtype {} has no .npy equivalent", path,
                        dynrt_dtype_name(array.dtype));
    std::optional<uint64_t> expected = byteSizeOf(array.dtype, array.shape);
    if (!expected)
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': shape {} has a negative dimension or overflows",
                        path, formatShape(array.shape));
    if (*expected != array.bytes.size())
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "'{}': array has {} bytes but {} {} needs {}", path,
                        array.bytes.size(), dynrt_dtype_name(array.dtype),
                        formatShape(array.shape), *expected);

    std::string dict =
        fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                    type->descr, pythonTuple(array.shape));
    // Same rule as numpy's _wrap_header: pad with spaces so that magic,
    // version, length, dict and the final '\n' end on a 64-byte boundary;
    // fall back to version 2.0 only when the length overflows 16 bits.
    uint8_t major = 1;
    size_t lengthSize = 2;
    size_t padded = 0;
    for (;;) {
      size_t unpadded = magicSize + 2 + lengthSize + dict.size() + 1;
      padded = dict.size() + 1 + (headerAlign - unpadded % headerAlign);
      if (major == 1 && padded > 0xffff) {
        major = 2;
        lengthSize = 4;
        continue;
      }
      break;
    }
    std::string preamble(magic, magicSize);
    preamble += static_cast<char>(major);
    preamble += '\0';
    for (size_t i = 0; i < lengthSize; ++i)
      preamble += static_cast<char>((padded >> (8 * i)) & 0xff);
    std::string header = preamble + dict;
    header.append(padded - dict.size() - 1, ' ');
    header += '\n';

    // A unique name next to the target, so the rename stays within one file
    // system and is atomic; O_EXCL never reuses another writer's file.
    static std::atomic<uint64_t> counter{0};
    std::string tempPath;
    int fd = -1;
    for (int attempt = 0; fd < 0 && attempt < 100; ++attempt) {
      tempPath =
          fmt::format("{}.tmp-{}-{}", path, ::getpid(), counter.fetch_add(1));
      fd = ::open(tempPath.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                  0666);
      if (fd < 0 && errno != EEXIST)
        break;
    }
    if (fd < 0)
      return makeStatus(DYNRT_UNAVAILABLE,
                        "'{}': cannot create temporary file '{}': {}", path,
                        tempPath, errnoMessage(errno));
    bool written = writeAll(fd, header.data(), header.size()) &&
                   writeAll(fd, array.bytes.data(), array.bytes.size());
    int err = errno;
    if (::close(fd) != 0 && written) {
      written = false;
      err = errno;
    }
    if (written && ::rename(tempPath.c_str(), path.c_str()) != 0) {
      err = errno;
      ::unlink(tempPath.c_str());
      return makeStatus(DYNRT_UNAVAILABLE, "'{}': cannot rename '{}' to it: {}",
                        path, tempPath, errnoMessage(err));
    }
    if (!written) {
      ::unlink(tempPath.c_str());
      return makeStatus(DYNRT_UNAVAILABLE, "'{}': cannot write: {}", path,
                        errnoMessage(err));
    }
    return nullptr;
  });
}
