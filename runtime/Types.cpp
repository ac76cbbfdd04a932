// Types.cpp - the element type part of the dynrt C API and the shape helpers
// shared by the file readers.
#include "runtime/Types.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace {
struct DtypeEntry {
  dynrt_dtype_t dtype;
  const char *name;
  size_t size;
};

// One table serves name, size and parsing, in enum order.
constexpr DtypeEntry dtypeTable[] = {
    {DYNRT_F32, "F32", 4},   {DYNRT_F64, "F64", 8}, {DYNRT_F16, "F16", 2},
    {DYNRT_BF16, "BF16", 2}, {DYNRT_I8, "I8", 1},   {DYNRT_U8, "U8", 1},
    {DYNRT_I16, "I16", 2},   {DYNRT_I32, "I32", 4}, {DYNRT_I64, "I64", 8},
    {DYNRT_BOOL, "BOOL", 1},
};

const DtypeEntry *lookup(dynrt_dtype_t dtype) {
  for (const DtypeEntry &entry : dtypeTable)
    if (entry.dtype == dtype)
      return &entry;
  return nullptr;
}
} // namespace

extern "C" {

size_t dynrt_dtype_size(dynrt_dtype_t dtype) {
  const DtypeEntry *entry = lookup(dtype);
  return entry ? entry->size : 0;
}

const char *dynrt_dtype_name(dynrt_dtype_t dtype) {
  const DtypeEntry *entry = lookup(dtype);
  return entry ? entry->name : "UNKNOWN";
}

} // extern "C"

std::optional<dynrt_dtype_t> dynrt::parseDtypeName(std::string_view name) {
  for (const DtypeEntry &entry : dtypeTable)
    if (name == entry.name)
      return entry.dtype;
  return std::nullopt;
}

std::string dynrt::allDtypeNames() {
  std::vector<std::string_view> names;
  for (const DtypeEntry &entry : dtypeTable)
    names.push_back(entry.name);
  return fmt::format("{}", fmt::join(names, ", "));
}

std::string dynrt::formatShape(const int64_t *shape, size_t rank) {
  return fmt::format("[{}]", fmt::join(shape, shape + rank, ", "));
}

std::optional<uint64_t> dynrt::byteSizeOf(dynrt_dtype_t dtype,
                                          const int64_t *shape, size_t rank) {
  uint64_t size = dynrt_dtype_size(dtype);
  if (size == 0)
    return std::nullopt;
  for (size_t i = 0; i < rank; ++i) {
    if (shape[i] < 0 ||
        __builtin_mul_overflow(size, static_cast<uint64_t>(shape[i]), &size))
      return std::nullopt;
  }
  return size;
}
