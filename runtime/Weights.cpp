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
#include "runtime/Weights.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <optional>
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

namespace {
// dynrt_weights_s::magic while a reference is held, and after the last one.
constexpr uint64_t kWeightsAlive = 0x737468676965776e; // "nweights"
constexpr uint64_t kWeightsReleased = 0x7374686769657700;
} // namespace

struct dynrt_weights_s {
  std::atomic<int32_t> refCount{1};
  // Prefix of every message: "weights file 'path'" or "weights in memory".
  std::string source;
  // kWeightsAlive until the last release overwrites it before freeing:
  // entry points refuse a handle without it, so released weights passed
  // back in are usually caught (see dynrt.h). Not among the first 32 bytes,
  // where allocators keep their free-list links.
  uint64_t magic = kWeightsAlive;
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

// The deepest nesting of JSON containers the format needs: the header
// object, a tensor's object, its 'shape' and 'data_offsets' arrays.
constexpr int maxDepth = 3;
// Arrays longer than this are not kept element by element (a shape has at
// most DYNRT_MAX_RANK dimensions, data_offsets two entries); their length is.
constexpr size_t maxKeptItems = DYNRT_MAX_RANK + 1;

} // namespace

std::string clipped(std::string_view text, size_t limit) {
  bool cut = text.size() > limit;
  if (cut) {
    size_t end = limit;
    while (end > 0 && (static_cast<uint8_t>(text[end]) & 0xc0) == 0x80)
      --end;
    text = text.substr(0, end);
  }
  std::string out;
  for (char c : text) {
    auto byte = static_cast<uint8_t>(c);
    if (byte < 0x20 || byte == 0x7f || c == '\'' || c == '\\')
      out += fmt::format("\\x{:02x}", byte);
    else
      out += c;
  }
  return cut ? out + "..." : out;
}

namespace {

// One JSON value of a tensor entry as the header reader saw it: its type
// and, for the values the format wants, what validation needs. Never the
// value's text beyond a string (the dtype).
struct FieldValue {
  struct Item {
    const char *type = "null";
    std::optional<uint64_t> value;   // a non-negative integer
    std::optional<int64_t> negative; // a negative integer
  };
  bool present = false;
  const char *type = "null"; // nlohmann's type name
  std::string text;          // a string's value
  size_t count = 0;          // an array's length
  std::vector<Item> items;   // its first maxKeptItems elements
};

// The fields of one tensor entry, validated when the entry's object ends.
struct Entry {
  FieldValue dtype, shape, offsets;
  std::set<std::string> keys; // to reject a key given twice
};

// Validates a safetensors image and fills `weights` with its tensors.
class SafetensorsParser {
public:
  SafetensorsParser(const uint8_t *bytes, size_t size, dynrt_weights_s &weights)
      : bytes(bytes), size(size), weights(weights) {}

  dynrt_status_t parse();

  template <typename... Args>
  dynrt_status_t error(fmt::format_string<Args...> format, Args &&...args) {
    return makeStatus(DYNRT_DATA_LOSS, "{}: {}", weights.source,
                      fmt::format(format, std::forward<Args>(args)...));
  }
  template <typename... Args>
  dynrt_status_t tensorError(std::string_view name,
                             fmt::format_string<Args...> format,
                             Args &&...args) {
    return makeStatus(DYNRT_DATA_LOSS, "{}: tensor '{}': {}", weights.source,
                      clipped(name),
                      fmt::format(format, std::forward<Args>(args)...));
  }

  dynrt_status_t parseTensor(const std::string &name, const Entry &entry,
                             Tensor &tensor);
  dynrt_weights_s &output() { return weights; }

private:
  dynrt_status_t parseHeader(const char *text, size_t length);
  dynrt_status_t checkDuplicates();
  dynrt_status_t checkOverlaps();

  const uint8_t *bytes;
  size_t size;
  dynrt_weights_s &weights;
  uint64_t dataSize = 0;
};

// Reads the header JSON as a stream of SAX events, never as a DOM: nesting
// beyond maxDepth stops the parse at the container that goes too deep (a
// 200,000-deep 'shape' costs nothing), each tensor entry is validated when
// its object ends, and the work is linear in the header's size (nlohmann's
// callback parser rescans the parent object whenever an object ends, which
// made 40,000 tensors take seconds).
class HeaderReader final : public json::json_sax_t {
public:
  explicit HeaderReader(SafetensorsParser &parser) : parser(parser) {}

  // The first error, which stopped the parse.
  dynrt_status_t status = nullptr;
  bool metadataSeen = false;

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("boolean"); }
  bool number_integer(number_integer_t value) override {
    FieldValue::Item item{"number", std::nullopt, std::nullopt};
    if (value >= 0)
      item.value = static_cast<uint64_t>(value);
    else
      item.negative = value;
    return scalar(item);
  }
  bool number_unsigned(number_unsigned_t value) override {
    return scalar(FieldValue::Item{"number", value, std::nullopt});
  }
  bool number_float(number_float_t, const string_t &) override {
    return scalar("number");
  }
  bool string(string_t &value) override {
    if (depth == 2 && inMetadata) {
      parser.output().metadata.emplace_back(std::move(metaKey),
                                            std::move(value));
      return true;
    }
    if (depth == 2 && field) {
      field->text = std::move(value);
      field->present = true;
      field->type = "string";
      return true;
    }
    return scalar("string");
  }
  bool binary(binary_t &) override { return scalar("binary"); }

  bool start_object(std::size_t) override { return container("object"); }
  bool start_array(std::size_t) override { return container("array"); }

  bool key(string_t &value) override {
    if (depth == 1) {
      name = std::move(value);
      return true;
    }
    if (depth == 2 && inMetadata) {
      metaKey = std::move(value);
      return true;
    }
    if (depth == 2) {
      fieldKey = value;
      if (!entry.keys.insert(value).second)
        return fail(parser.tensorError(name, "entry has the key '{}' twice",
                                       clipped(value)));
      field = value == "dtype"          ? &entry.dtype
              : value == "shape"        ? &entry.shape
              : value == "data_offsets" ? &entry.offsets
                                        : nullptr;
    }
    return true; // keys of a field's object: the field is wrong anyway
  }

  bool end_object() override {
    if (depth == 2 && !inMetadata) {
      Tensor tensor;
      if (dynrt_status_t error = parser.parseTensor(name, entry, tensor))
        return fail(error);
      parser.output().tensors.push_back(std::move(tensor));
    }
    if (depth == 2)
      inMetadata = false;
    return close();
  }
  bool end_array() override { return close(); }

  bool parse_error(std::size_t position, const std::string &,
                   const nlohmann::detail::exception &e) override {
    // nlohmann's message ends with "; last read: '<token>'", which may be
    // most of the header: keep what went wrong, not the text.
    std::string_view what = e.what();
    if (size_t prefix = what.find("] "); prefix != std::string_view::npos)
      what.remove_prefix(prefix + 2);
    if (size_t token = what.find("; last read"); token != std::string::npos)
      what = what.substr(0, token);
    return fail(parser.error("header is not valid JSON (byte {} of the "
                             "header): {}",
                             position, clipped(what, 200)));
  }

private:
  bool fail(dynrt_status_t error) {
    if (!status)
      status = error;
    else
      dynrt_status_free(error);
    return false;
  }

  // A value at the current depth; `item` describes it.
  bool value(const FieldValue::Item &item, bool isContainer) {
    // Depths 0, 1 and 2 hold the header, the entries and their fields; a
    // container deeper than a field's is one level too many.
    static_assert(maxDepth == 3, "the cases below follow the format's depth");
    switch (depth) {
    case 0:
      if (isContainer && std::string_view(item.type) == "object")
        return true;
      return fail(
          parser.error("header is a JSON {}, not an object", item.type));
    case 1:
      if (name == metadataKey) {
        if (metadataSeen)
          return fail(
              parser.error("header has the key '{}' twice", metadataKey));
        metadataSeen = true;
        if (std::string_view(item.type) != "object")
          return fail(parser.error("'{}' is a JSON {}, not an object of "
                                   "strings",
                                   metadataKey, item.type));
        inMetadata = true;
        return true;
      }
      if (std::string_view(item.type) != "object")
        return fail(parser.tensorError(name,
                                       "entry is a JSON {}, not an "
                                       "object",
                                       item.type));
      entry = Entry();
      field = nullptr;
      return true;
    case 2:
      if (inMetadata)
        return fail(parser.error("'{}' entry '{}' is a JSON {}, not a string",
                                 metadataKey, clipped(metaKey), item.type));
      if (field) {
        field->present = true;
        field->type = item.type;
      }
      return true;
    default:
      if (isContainer)
        return fail(parser.tensorError(
            name, "'{}' nests deeper than the safetensors format allows",
            clipped(fieldKey)));
      if (field && field->count++ < maxKeptItems)
        field->items.push_back(item);
      return true;
    }
  }

  bool scalar(const FieldValue::Item &item) { return value(item, false); }
  bool scalar(const char *type) {
    return value(FieldValue::Item{type, std::nullopt, std::nullopt}, false);
  }

  bool container(const char *type) {
    if (!value(FieldValue::Item{type, std::nullopt, std::nullopt}, true))
      return false;
    // Only an array value of a known field collects elements.
    if (depth == 2 && field && std::string_view(type) != "array")
      field = nullptr;
    ++depth;
    return true;
  }

  bool close() {
    --depth;
    if (depth == 2)
      field = nullptr;
    return true;
  }

  SafetensorsParser &parser;
  int depth = 0; // containers open
  bool inMetadata = false;
  std::string name;     // the key of the entry being read
  std::string metaKey;  // the key of the metadata value being read
  std::string fieldKey; // the key of the entry's field being read
  Entry entry;
  FieldValue *field = nullptr; // the known field being read, if any
};

dynrt_status_t SafetensorsParser::parse() {
  if (size < 8)
    return error("file is {} bytes, shorter than the 8-byte header length",
                 size);
  uint64_t headerSize = 0;
  for (int i = 7; i >= 0; --i)
    headerSize = (headerSize << 8) | bytes[i];
  // Any other file (a PyTorch .pt zip, text) fails one of these first.
  if (headerSize > size - 8)
    return error("not a safetensors file (header length {} is larger than "
                 "the {} bytes after it)",
                 headerSize, size - 8);
  if (headerSize > maxHeaderSize)
    return error("header length {} is larger than the {} MiB limit", headerSize,
                 maxHeaderSize >> 20);
  if (headerSize == 0 || bytes[8] != '{')
    return error("not a safetensors file (the header does not start with "
                 "'{{')");

  dataSize = size - 8 - headerSize;
  if (dynrt_status_t status =
          parseHeader(reinterpret_cast<const char *>(bytes + 8), headerSize))
    return status;
  const uint8_t *data = bytes + 8 + headerSize;
  for (Tensor &tensor : weights.tensors)
    tensor.data = data + tensor.begin;
  auto byName = [](const Tensor &a, const Tensor &b) {
    return a.name < b.name;
  };
  std::sort(weights.tensors.begin(), weights.tensors.end(), byName);
  std::sort(weights.metadata.begin(), weights.metadata.end());
  if (dynrt_status_t status = checkDuplicates())
    return status;
  return checkOverlaps();
}

dynrt_status_t SafetensorsParser::parseHeader(const char *text, size_t length) {
  HeaderReader reader(*this);
  bool parsed = json::sax_parse(text, text + length, &reader);
  if (reader.status)
    return reader.status;
  if (!parsed)
    return error("header is not valid JSON");
  return nullptr;
}

dynrt_status_t SafetensorsParser::checkDuplicates() {
  // A file naming one tensor (or metadata key) twice is ambiguous. Both
  // lists are sorted: duplicates are neighbours.
  for (size_t i = 1; i < weights.tensors.size(); ++i)
    if (weights.tensors[i - 1].name == weights.tensors[i].name)
      return error("header has the key '{}' twice",
                   clipped(weights.tensors[i].name));
  for (size_t i = 1; i < weights.metadata.size(); ++i)
    if (weights.metadata[i - 1].first == weights.metadata[i].first)
      return error("'{}' has the key '{}' twice", metadataKey,
                   clipped(weights.metadata[i].first));
  return nullptr;
}

dynrt_status_t SafetensorsParser::parseTensor(const std::string &name,
                                              const Entry &entry,
                                              Tensor &tensor) {
  // The C API hands names out as C strings: an embedded NUL would make the
  // tensor unreachable by name.
  if (name.find('\0') != std::string::npos)
    return error("a tensor name contains a NUL character");
  tensor.name = name;

  const FieldValue &dtypeField = entry.dtype;
  if (!dtypeField.present)
    return tensorError(name, "entry has no 'dtype'");
  if (std::string_view(dtypeField.type) != "string")
    return tensorError(name, "'dtype' is a JSON {}, not a string",
                       dtypeField.type);
  std::optional<dynrt_dtype_t> dtype = parseDtypeName(dtypeField.text);
  if (!dtype)
    return tensorError(name, "unknown dtype '{}' (expected one of {})",
                       clipped(dtypeField.text, 16), allDtypeNames());
  tensor.dtype = *dtype;

  const FieldValue &shape = entry.shape;
  if (!shape.present)
    return tensorError(name, "entry has no 'shape'");
  if (std::string_view(shape.type) != "array")
    return tensorError(name, "'shape' is a JSON {}, not an array", shape.type);
  if (shape.count > DYNRT_MAX_RANK)
    return tensorError(name, "rank {} is larger than the maximum {}",
                       shape.count, DYNRT_MAX_RANK);
  tensor.rank = static_cast<int32_t>(shape.count);
  for (size_t i = 0; i < shape.count; ++i) {
    const FieldValue::Item &dim = shape.items[i];
    if (dim.negative)
      return tensorError(name,
                         "shape dimension {} is {}, not a non-negative "
                         "integer",
                         i, *dim.negative);
    if (!dim.value)
      return tensorError(name,
                         "shape dimension {} is a JSON {}, not a "
                         "non-negative integer",
                         i, dim.type);
    if (*dim.value > uint64_t(INT64_MAX))
      return tensorError(name,
                         "shape dimension {} is {}, larger than the largest "
                         "int64",
                         i, *dim.value);
    tensor.shape[i] = static_cast<int64_t>(*dim.value);
  }
  std::string shapeText = formatShape(tensor.shape, tensor.rank);

  const FieldValue &offsets = entry.offsets;
  if (!offsets.present)
    return tensorError(name, "entry has no 'data_offsets'");
  std::optional<uint64_t> begin, end;
  if (std::string_view(offsets.type) == "array" && offsets.count == 2) {
    begin = offsets.items[0].value;
    end = offsets.items[1].value;
  }
  if (!begin || !end)
    return tensorError(name,
                       "'data_offsets' is not two non-negative integers (a "
                       "JSON {}{})",
                       offsets.type,
                       std::string_view(offsets.type) == "array"
                           ? fmt::format(" of {} elements", offsets.count)
                           : std::string());
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
                   clipped(prev.name), prev.begin, prev.end, clipped(cur.name),
                   cur.begin, cur.end);
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

bool isLive(const dynrt_weights_s *weights) {
  return weights && weights->magic == kWeightsAlive;
}

dynrt_status_t releasedError() {
  return makeStatus(DYNRT_INVALID_ARGUMENT,
                    std::string("weights handle is not live weights (used "
                                "after its last dynrt_weights_release?)"));
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
  if (isLive(weights))
    weights->refCount.fetch_add(1, std::memory_order_relaxed);
}

void dynrt_weights_release(dynrt_weights_t *weights) {
  // Released weights are ignored (best effort: see dynrt.h).
  if (isLive(weights) &&
      weights->refCount.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    weights->magic = kWeightsReleased;
    delete weights;
  }
}

size_t dynrt_weights_count(const dynrt_weights_t *weights) {
  return isLive(weights) ? weights->tensors.size() : 0;
}

dynrt_status_t dynrt_weights_get(const dynrt_weights_t *weights, size_t index,
                                 dynrt_tensor_info_t *out_info) {
  if (!weights || !out_info)
    return makeStatus(DYNRT_INVALID_ARGUMENT, "weights or out_info is NULL");
  if (!isLive(weights))
    return releasedError();
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
  if (!isLive(weights))
    return releasedError();
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
  if (!isLive(weights))
    return releasedError();
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
  if (!isLive(weights))
    return releasedError();
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

std::vector<std::string>
dynrt::unusedTensors(const dynrt_weights_t *weights,
                     const std::function<bool(const char *)> &used) {
  std::vector<std::string> unused;
  for (size_t i = 0, n = dynrt_weights_count(weights); i < n; ++i) {
    dynrt_tensor_info_t info;
    StatusPtr st(dynrt_weights_get(weights, i, &info));
    if (!st && !used(info.name))
      unused.push_back(info.name);
  }
  return unused;
}
