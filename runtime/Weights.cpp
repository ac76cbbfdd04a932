// Weights.cpp - the weights part of the dynrt C API: opens safetensors files
// (mapped from disk or already in memory), validates every header field,
// looks tensors up and binds them to a model's parameters.
//
// Safetensors layout: an 8-byte little-endian header length N, N bytes of
// UTF-8 JSON mapping tensor names to {"dtype", "shape", "data_offsets"} (plus
// an optional "__metadata__" string->string object), then the data section
// that the offsets are relative to.
#include "runtime/Status.h"
#include "runtime/Types.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <set>
#include <string_view>
#include <sys/mman.h>
#include <sys/stat.h>
#include <system_error>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <vector>

using json = nlohmann::json;

namespace dynrt {
namespace {

// Real headers are kilobytes; a larger length is corruption or an attack and
// must not make us parse (or allocate for) gigabytes. Same bound as the
// reference implementation's 100 MB.
constexpr uint64_t maxHeaderSize = uint64_t(100) << 20;
constexpr std::string_view metadataKey = "__metadata__";

struct Tensor {
  std::string name;
  dynrt_dtype_t dtype = DYNRT_F32;
  int32_t rank = 0;
  int64_t shape[DYNRT_MAX_RANK] = {};
  // Byte range relative to the start of the data section.
  uint64_t begin = 0;
  uint64_t end = 0;
  const uint8_t *data = nullptr;
};

} // namespace
} // namespace dynrt

struct dynrt_weights_s {
  std::atomic<int32_t> refCount{1};
  // Prefix of every message: "weights file 'path'" or "weights in memory".
  std::string source;
  // The mapped file, when opened with dynrt_weights_open_file.
  void *mapping = nullptr;
  size_t mappingSize = 0;
  std::vector<dynrt::Tensor> tensors;                        // sorted by name
  std::vector<std::pair<std::string, std::string>> metadata; // sorted by key

  ~dynrt_weights_s() {
    if (mapping)
      munmap(mapping, mappingSize);
  }
};

namespace dynrt {
namespace {

std::string errnoMessage(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// A non-negative JSON integer; floats, negatives and non-numbers are not.
std::optional<uint64_t> asUnsigned(const json &value) {
  if (value.is_number_unsigned())
    return value.get<uint64_t>();
  if (value.is_number_integer() && value.get<int64_t>() >= 0)
    return static_cast<uint64_t>(value.get<int64_t>());
  return std::nullopt;
}

// Validates a safetensors image and fills `weights` with its tensors.
class SafetensorsParser {
public:
  SafetensorsParser(const uint8_t *bytes, size_t size, dynrt_weights_s &weights)
      : bytes(bytes), size(size), weights(weights) {}

  dynrt_status_t parse();

private:
  template <typename... Args>
  dynrt_status_t error(fmt::format_string<Args...> format, Args &&...args) {
    return makeStatus(DYNRT_DATA_LOSS, "{}: {}", weights.source,
                      fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  dynrt_status_t tensorError(const std::string &name,
                             fmt::format_string<Args...> format,
                             Args &&...args) {
    return makeStatus(DYNRT_DATA_LOSS, "{}: tensor '{}': {}", weights.source,
                      name, fmt::format(format, std::forward<Args>(args)...));
  }

  dynrt_status_t parseHeader(const char *text, size_t length, json &header);
  dynrt_status_t parseMetadata(const json &value);
  dynrt_status_t parseTensor(const std::string &name, const json &entry,
                             uint64_t dataSize, Tensor &tensor);
  dynrt_status_t checkOverlaps();

  const uint8_t *bytes;
  size_t size;
  dynrt_weights_s &weights;
};

dynrt_status_t SafetensorsParser::parse() {
  if (size < 8)
    return error("file is {} bytes, shorter than the 8-byte header length",
                 size);
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | bytes[i];
  if (headerSize > maxHeaderSize)
    return error("header length {} is larger than the {} MiB limit", headerSize,
                 maxHeaderSize >> 20);
  if (headerSize > size - 8)
    return error("header length {} is larger than the {} bytes after it",
                 headerSize, size - 8);

  json header;
  if (dynrt_status_t status = parseHeader(
          reinterpret_cast<const char *>(bytes + 8), headerSize, header))
    return status;

  const uint8_t *data = bytes + 8 + headerSize;
  uint64_t dataSize = size - 8 - headerSize;
  for (const auto &[name, entry] : header.items()) {
    if (name == metadataKey) {
      if (dynrt_status_t status = parseMetadata(entry))
        return status;
      continue;
    }
    Tensor tensor;
    if (dynrt_status_t status = parseTensor(name, entry, dataSize, tensor))
      return status;
    tensor.data = data + tensor.begin;
    weights.tensors.push_back(std::move(tensor));
  }
  // nlohmann's object is a std::map, so both lists are already sorted by
  // name; sort anyway so lookups never depend on that detail.
  auto byName = [](const Tensor &a, const Tensor &b) {
    return a.name < b.name;
  };
  std::sort(weights.tensors.begin(), weights.tensors.end(), byName);
  std::sort(weights.metadata.begin(), weights.metadata.end());
  return checkOverlaps();
}

dynrt_status_t SafetensorsParser::parseHeader(const char *text, size_t length,
                                              json &header) {
  // nlohmann keeps the last of duplicate keys silently; a file naming one
  // tensor twice is ambiguous, so track the keys of every open object.
  std::vector<std::set<std::string>> openObjects;
  std::string duplicate;
  auto callback = [&](int, json::parse_event_t event, json &parsed) {
    if (event == json::parse_event_t::object_start) {
      openObjects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      openObjects.pop_back();
    } else if (event == json::parse_event_t::key && !openObjects.empty() &&
               parsed.is_string()) {
      const std::string &key = parsed.get_ref<const std::string &>();
      if (!openObjects.back().insert(key).second && duplicate.empty())
        duplicate = key;
    }
    return true;
  };
  try {
    header = json::parse(text, text + length, callback);
  } catch (const json::exception &e) {
    return error("header is not valid JSON: {}", e.what());
  }
  if (!header.is_object())
    return error("header is a JSON {}, not an object", header.type_name());
  if (!duplicate.empty())
    return error("header has the key '{}' twice", duplicate);
  return nullptr;
}

dynrt_status_t SafetensorsParser::parseMetadata(const json &value) {
  if (!value.is_object())
    return error("'{}' is a JSON {}, not an object of strings", metadataKey,
                 value.type_name());
  for (const auto &[key, item] : value.items()) {
    if (!item.is_string())
      return error("'{}' entry '{}' is a JSON {}, not a string", metadataKey,
                   key, item.type_name());
    weights.metadata.emplace_back(key, item.get<std::string>());
  }
  return nullptr;
}

dynrt_status_t SafetensorsParser::parseTensor(const std::string &name,
                                              const json &entry,
                                              uint64_t dataSize,
                                              Tensor &tensor) {
  // The C API hands names out as C strings: an embedded NUL would make the
  // tensor unreachable by name.
  if (name.find('\0') != std::string::npos)
    return error("a tensor name contains a NUL character");
  tensor.name = name;
  if (!entry.is_object())
    return tensorError(name, "entry is a JSON {}, not an object",
                       entry.type_name());

  auto dtypeIt = entry.find("dtype");
  if (dtypeIt == entry.end())
    return tensorError(name, "entry has no 'dtype'");
  if (!dtypeIt->is_string())
    return tensorError(name, "'dtype' is a JSON {}, not a string",
                       dtypeIt->type_name());
  const std::string &dtypeName = dtypeIt->get_ref<const std::string &>();
  std::optional<dynrt_dtype_t> dtype = parseDtypeName(dtypeName);
  if (!dtype)
    return tensorError(name, "unknown dtype '{}' (expected one of {})",
                       dtypeName, allDtypeNames());
  tensor.dtype = *dtype;

  auto shapeIt = entry.find("shape");
  if (shapeIt == entry.end())
    return tensorError(name, "entry has no 'shape'");
  if (!shapeIt->is_array())
    return tensorError(name, "'shape' is a JSON {}, not an array",
                       shapeIt->type_name());
  if (shapeIt->size() > DYNRT_MAX_RANK)
    return tensorError(name, "rank {} is larger than the maximum {}",
                       shapeIt->size(), DYNRT_MAX_RANK);
  tensor.rank = static_cast<int32_t>(shapeIt->size());
  for (size_t i = 0; i < shapeIt->size(); ++i) {
    const json &dim = (*shapeIt)[i];
    std::optional<uint64_t> value = asUnsigned(dim);
    if (!value || *value > uint64_t(INT64_MAX))
      return tensorError(name,
                         "shape dimension {} is {}, not a non-negative "
                         "integer",
                         i, dim.dump());
    tensor.shape[i] = static_cast<int64_t>(*value);
  }
  std::string shapeText = formatShape(tensor.shape, tensor.rank);

  auto offsetsIt = entry.find("data_offsets");
  if (offsetsIt == entry.end())
    return tensorError(name, "entry has no 'data_offsets'");
  std::optional<uint64_t> begin, end;
  if (offsetsIt->is_array() && offsetsIt->size() == 2) {
    begin = asUnsigned((*offsetsIt)[0]);
    end = asUnsigned((*offsetsIt)[1]);
  }
  if (!begin || !end)
    return tensorError(name,
                       "'data_offsets' is {}, not two non-negative integers",
                       offsetsIt->dump());
  if (*begin > *end)
    return tensorError(name, "data_offsets [{}, {}]: begin is after end",
                       *begin, *end);
  if (*end > dataSize)
    return tensorError(name,
                       "data_offsets [{}, {}] end beyond the {}-byte data "
                       "section (file truncated?)",
                       *begin, *end, dataSize);
  tensor.begin = *begin;
  tensor.end = *end;

  std::optional<uint64_t> expected =
      byteSizeOf(tensor.dtype, tensor.shape, tensor.rank);
  if (!expected)
    return tensorError(name, "the byte size of shape {} overflows", shapeText);
  if (*expected != tensor.end - tensor.begin)
    return tensorError(name,
                       "data_offsets [{}, {}] hold {} bytes but {} {} needs {}",
                       tensor.begin, tensor.end, tensor.end - tensor.begin,
                       dynrt_dtype_name(tensor.dtype), shapeText, *expected);
  return nullptr;
}

dynrt_status_t SafetensorsParser::checkOverlaps() {
  // Empty tensors hold no bytes and so cannot overlap anything.
  std::vector<const Tensor *> ranges;
  for (const Tensor &tensor : weights.tensors)
    if (tensor.begin != tensor.end)
      ranges.push_back(&tensor);
  std::sort(ranges.begin(), ranges.end(), [](const Tensor *a, const Tensor *b) {
    return std::tie(a->begin, a->end) < std::tie(b->begin, b->end);
  });
  for (size_t i = 1; i < ranges.size(); ++i) {
    const Tensor &prev = *ranges[i - 1], &cur = *ranges[i];
    if (prev.end > cur.begin)
      return error("tensors '{}' (bytes [{}, {})) and '{}' (bytes [{}, {})) "
                   "overlap",
                   prev.name, prev.begin, prev.end, cur.name, cur.begin,
                   cur.end);
  }
  return nullptr;
}

void fillInfo(const Tensor &tensor, dynrt_tensor_info_t &info) {
  info.name = tensor.name.c_str();
  info.dtype = tensor.dtype;
  info.rank = tensor.rank;
  std::copy(std::begin(tensor.shape), std::end(tensor.shape), info.shape);
  info.data = tensor.data;
  info.byte_size = static_cast<size_t>(tensor.end - tensor.begin);
}

const Tensor *findTensor(const dynrt_weights_s &weights,
                         std::string_view name) {
  auto it =
      std::lower_bound(weights.tensors.begin(), weights.tensors.end(), name,
                       [](const Tensor &tensor, std::string_view key) {
                         return tensor.name < key;
                       });
  if (it == weights.tensors.end() || it->name != name)
    return nullptr;
  return &*it;
}

// Validates the image and hands `weights` to *out, or frees it.
dynrt_status_t finishOpen(std::unique_ptr<dynrt_weights_s> weights,
                          const uint8_t *bytes, size_t size,
                          dynrt_weights_t **out) {
  if (dynrt_status_t status = SafetensorsParser(bytes, size, *weights).parse())
    return status;
  *out = weights.release();
  return nullptr;
}

} // namespace
} // namespace dynrt

using namespace dynrt;

extern "C" {

dynrt_status_t dynrt_weights_open_file(const char *path,
                                       dynrt_weights_t **out_weights) {
  if (!out_weights)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "out_weights is NULL");
  *out_weights = nullptr;
  if (!path)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "weights file path is NULL");
  return guardExceptions([&]() -> dynrt_status_t {
    auto weights = std::make_unique<dynrt_weights_s>();
    weights->source = fmt::format("weights file '{}'", path);

    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      return makeStatus(
          err == ENOENT || err == ENOTDIR ? DYNRT_NOT_FOUND : DYNRT_UNAVAILABLE,
          "{}: cannot open: {}", weights->source, errnoMessage(err));
    }
    // The mapping keeps the file contents reachable after close.
    struct stat st;
    dynrt_status_t status = nullptr;
    if (fstat(fd, &st) != 0) {
      status = makeStatus(DYNRT_UNAVAILABLE, "{}: cannot stat: {}",
                          weights->source, errnoMessage(errno));
    } else if (!S_ISREG(st.st_mode)) {
      status = makeStatus(DYNRT_INVALID_ARGUMENT, "{}: not a regular file",
                          weights->source);
    } else if (st.st_size > 0) {
      // An empty file cannot be mapped; the parser reports it as truncated.
      size_t size = static_cast<size_t>(st.st_size);
      void *mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapping == MAP_FAILED) {
        status = makeStatus(DYNRT_UNAVAILABLE, "{}: cannot map: {}",
                            weights->source, errnoMessage(errno));
      } else {
        weights->mapping = mapping;
        weights->mappingSize = size;
      }
    }
    ::close(fd);
    if (status)
      return status;
    const uint8_t *bytes = static_cast<const uint8_t *>(weights->mapping);
    size_t size = weights->mappingSize;
    return finishOpen(std::move(weights), bytes, size, out_weights);
  });
}

dynrt_status_t dynrt_weights_open_memory(const void *data, size_t size,
                                         dynrt_weights_t **out_weights) {
  if (!out_weights)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "out_weights is NULL");
  *out_weights = nullptr;
  if (!data && size != 0)
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "weights data is NULL but its size is {}", size);
  return guardExceptions([&]() -> dynrt_status_t {
    auto weights = std::make_unique<dynrt_weights_s>();
    weights->source = "weights in memory";
    return finishOpen(std::move(weights), static_cast<const uint8_t *>(data),
                      size, out_weights);
  });
}

void dynrt_weights_retain(dynrt_weights_t *weights) {
  if (weights)
    weights->refCount.fetch_add(1, std::memory_order_relaxed);
}

void dynrt_weights_release(dynrt_weights_t *weights) {
  if (weights && weights->refCount.fetch_sub(1, std::memory_order_acq_rel) == 1)
    delete weights;
}

size_t dynrt_weights_count(const dynrt_weights_t *weights) {
  return weights ? weights->tensors.size() : 0;
}

dynrt_status_t dynrt_weights_get(const dynrt_weights_t *weights, size_t index,
                                 dynrt_tensor_info_t *out_info) {
  if (!weights || !out_info)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "weights or out_info is NULL");
  if (index >= weights->tensors.size())
    return makeStatus(DYNRT_OUT_OF_RANGE,
                      "{}: tensor index {} is out of range "
                      "(the file has {} tensors)",
                      weights->source, index, weights->tensors.size());
  fillInfo(weights->tensors[index], *out_info);
  return nullptr;
}

dynrt_status_t dynrt_weights_find(const dynrt_weights_t *weights,
                                  const char *name,
                                  dynrt_tensor_info_t *out_info) {
  if (!weights || !name || !out_info)
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "weights, name or out_info is NULL");
  const Tensor *tensor = findTensor(*weights, name);
  if (!tensor)
    return makeStatus(DYNRT_NOT_FOUND, "{}: no tensor named '{}'",
                      weights->source, name);
  fillInfo(*tensor, *out_info);
  return nullptr;
}

dynrt_status_t dynrt_weights_metadata_find(const dynrt_weights_t *weights,
                                           const char *key,
                                           const char **out_value) {
  if (!weights || !key || !out_value)
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "weights, key or out_value is NULL");
  std::string_view wanted(key);
  auto it = std::lower_bound(
      weights->metadata.begin(), weights->metadata.end(), wanted,
      [](const auto &entry, std::string_view k) { return entry.first < k; });
  if (it == weights->metadata.end() || it->first != wanted)
    return makeStatus(DYNRT_NOT_FOUND, "{}: no metadata key '{}'",
                      weights->source, key);
  *out_value = it->second.c_str();
  return nullptr;
}

dynrt_status_t dynrt_weights_bind(const dynrt_weights_t *weights,
                                  const dynrt_param_spec_t *specs, size_t count,
                                  const void **out_data) {
  if (!weights || (count != 0 && (!specs || !out_data)))
    return makeStatus(DYNRT_INVALID_ARGUMENT,
                      "weights, specs or out_data is NULL");
  return guardExceptions([&]() -> dynrt_status_t {
    // Collected first so that a failure leaves out_data untouched.
    std::vector<const void *> bound(count);
    for (size_t i = 0; i < count; ++i) {
      const dynrt_param_spec_t &spec = specs[i];
      if (!spec.name)
        return makeStatus(DYNRT_INVALID_ARGUMENT, "parameter {} has no name",
                          i);
      if (spec.rank < 0 || spec.rank > DYNRT_MAX_RANK ||
          dynrt_dtype_size(spec.dtype) == 0)
        return makeStatus(DYNRT_INVALID_ARGUMENT,
                          "parameter '{}' has an invalid spec (dtype {}, rank "
                          "{})",
                          spec.name, static_cast<int>(spec.dtype), spec.rank);
      std::string expectedShape = formatShape(spec.shape, spec.rank);
      const Tensor *tensor = findTensor(*weights, spec.name);
      if (!tensor)
        return makeStatus(DYNRT_NOT_FOUND,
                          "{}: no tensor named '{}' (the model expects {} {})",
                          weights->source, spec.name,
                          dynrt_dtype_name(spec.dtype), expectedShape);
      if (tensor->dtype != spec.dtype)
        return makeStatus(DYNRT_INVALID_ARGUMENT,
                          "{}: tensor '{}' has dtype {} but the model expects "
                          "{}",
                          weights->source, spec.name,
                          dynrt_dtype_name(tensor->dtype),
                          dynrt_dtype_name(spec.dtype));
      if (tensor->rank != spec.rank ||
          !std::equal(spec.shape, spec.shape + spec.rank, tensor->shape))
        return makeStatus(DYNRT_INVALID_ARGUMENT,
                          "{}: tensor '{}' has shape {} but the model expects "
                          "{}",
                          weights->source, spec.name,
                          formatShape(tensor->shape, tensor->rank),
                          expectedShape);
      bound[i] = tensor->data;
    }
    std::copy(bound.begin(), bound.end(), out_data);
    return nullptr;
  });
}

} // extern "C"
