// Types.h - element type and shape helpers shared by the safetensors reader
// (Weights.cpp) and the .npy reader/writer (Npy.cpp).
#ifndef DYNRT_TYPES_H
#define DYNRT_TYPES_H

#include "runtime/dynrt.h"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dynrt {

// The dtype spelled `name` in safetensors ("F32", ...), if there is one.
std::optional<dynrt_dtype_t> parseDtypeName(std::string_view name);

// Every dtype name, for messages listing the accepted ones.
std::string allDtypeNames();

// "[3, 4]"; "[]" for a scalar.
std::string formatShape(const int64_t *shape, size_t rank);
inline std::string formatShape(const std::vector<int64_t> &shape) {
  return formatShape(shape.data(), shape.size());
}

// product(shape) * dtype size, or nullopt when a dimension is negative or the
// product does not fit in 64 bits (a crafted header must not wrap around and
// pass the size check).
std::optional<uint64_t> byteSizeOf(dynrt_dtype_t dtype, const int64_t *shape,
                                   size_t rank);
inline std::optional<uint64_t> byteSizeOf(dynrt_dtype_t dtype,
                                          const std::vector<int64_t> &shape) {
  return byteSizeOf(dtype, shape.data(), shape.size());
}

} // namespace dynrt

#endif // DYNRT_TYPES_H
