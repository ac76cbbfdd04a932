// Npy.h - reads and writes NumPy .npy files (C++ only; the `dyncc run` tool
// uses it for model inputs and outputs).
#ifndef DYNRT_NPY_H
#define DYNRT_NPY_H

#include "runtime/dynrt.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dynrt {

// A dense, C-ordered, little-endian array. An empty shape is a scalar.
struct NpyArray {
  dynrt_dtype_t dtype = DYNRT_F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Reads a .npy file of format version 1.0, 2.0 or 3.0. Supported descr:
// '<f2', '<f4', '<f8', '|i1', '<i2', '<i4', '<i8', '|u1', '|b1'; C order only.
// Errors (the message names the file): NOT_FOUND when the file does not
// exist, DATA_LOSS for a malformed file (bad magic, truncated header, data
// size not matching the shape), INVALID_ARGUMENT for well-formed but
// unsupported content (other descr, big-endian data, Fortran order),
// UNAVAILABLE when the file cannot be read.
// Thread safety: safe to call from any thread.
// Header lengths above maxNpyHeaderSize (numpy writes under 100 bytes for
// any real array) and shapes of more than maxNpyRank dimensions (numpy 2's
// limit) are DATA_LOSS; so is a shape whose byte size overflows 64 bits.
// Messages name the offending key, never more than a few dozen bytes of the
// file's text.
dynrt_status_t readNpy(const std::string &path, NpyArray &out);

// readNpy for a .npy image already in memory (the fuzz target's entry
// point); `source` names it in messages ("'<source>': ...").
// Thread safety: safe to call from any thread.
dynrt_status_t parseNpy(const uint8_t *data, size_t size,
                        const std::string &source, NpyArray &out);

constexpr uint64_t maxNpyHeaderSize = uint64_t(1) << 20;
constexpr size_t maxNpyRank = 64;

// Writes `array` as a version 1.0 .npy file (version 2.0 only if the header
// does not fit 1.0), header padded to a multiple of 64 bytes as numpy does.
// Atomic: writes a temporary file in the same directory, then renames it, so
// `path` is either untouched or complete. INVALID_ARGUMENT when bytes.size()
// does not match the shape or the dtype has no numpy equivalent (BF16).
// Thread safety: safe to call from any thread; concurrent writers of one
// path leave one of the arrays, whole.
dynrt_status_t writeNpy(const std::string &path, const NpyArray &array);

} // namespace dynrt

#endif // DYNRT_NPY_H
