// fuzz_safetensors.cpp - libFuzzer target: bytes as a safetensors image
// through the public C API (dynrt_weights_open_memory), then every read of
// what opened: get, find, metadata and a bind. Any input must give a status
// or valid weights, never a crash, a leak or a sanitizer report.
#include "runtime/dynrt.h"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

// Large inputs for the replay driver (replay_main.cpp), synthesized rather
// than checked in: a 200,000-deep shape, a header of 40,000 tensors.
extern "C" bool dynrtFuzzLargeInput(size_t index, std::vector<uint8_t> *out);

namespace {
void appendHeader(std::vector<uint8_t> &out, const std::string &header,
                  size_t dataBytes) {
  uint64_t length = header.size();
  for (int i = 0; i < 8; ++i)
    out.push_back(static_cast<uint8_t>(length >> (8 * i)));
  out.insert(out.end(), header.begin(), header.end());
  out.resize(out.size() + dataBytes, 0);
}
} // namespace

extern "C" bool dynrtFuzzLargeInput(size_t index, std::vector<uint8_t> *out) {
  out->clear();
  if (index == 0) {
    std::string header = R"({"w": {"dtype": "F32", "shape": )" +
                         std::string(200000, '[') + "1" +
                         std::string(200000, ']') +
                         R"(, "data_offsets": [0, 4]}})";
    appendHeader(*out, header, 4);
    return true;
  }
  if (index == 1) {
    std::string header = "{";
    for (int i = 0; i < 40000; ++i)
      header += (i ? ",\"t" : "\"t") + std::to_string(i) +
                R"(": {"dtype": "U8", "shape": [1], "data_offsets": [)" +
                std::to_string(i) + ", " + std::to_string(i + 1) + "]}";
    header += "}";
    appendHeader(*out, header, 40000);
    return true;
  }
  return false;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dynrt_weights_t *weights = nullptr;
  dynrt_status_t status = dynrt_weights_open_memory(data, size, &weights);
  if (status) {
    // Every failure carries a code and a message.
    if (dynrt_status_code(status) == DYNRT_OK ||
        dynrt_status_message(status)[0] == '\0' || weights)
      __builtin_trap();
    dynrt_status_free(status);
    return 0;
  }
  size_t count = dynrt_weights_count(weights);
  std::vector<dynrt_param_spec_t> specs;
  for (size_t i = 0; i < count; ++i) {
    dynrt_tensor_info_t info;
    if (dynrt_status_t st = dynrt_weights_get(weights, i, &info)) {
      dynrt_status_free(st);
      __builtin_trap();
    }
    // The view lies inside the image and its size matches dtype and shape.
    const auto *bytes = static_cast<const uint8_t *>(info.data);
    if (bytes < data || bytes + info.byte_size > data + size)
      __builtin_trap();
    volatile uint8_t sink = 0;
    for (size_t b = 0; b < info.byte_size; b += 4096)
      sink = sink + bytes[b];
    dynrt_tensor_info_t found;
    if (dynrt_status_t st = dynrt_weights_find(weights, info.name, &found)) {
      dynrt_status_free(st);
      __builtin_trap();
    }
    dynrt_param_spec_t spec{};
    spec.name = info.name;
    spec.dtype = info.dtype;
    spec.rank = info.rank;
    std::memcpy(spec.shape, info.shape, sizeof(spec.shape));
    specs.push_back(spec);
  }
  std::vector<const void *> bound(specs.size());
  if (dynrt_status_t st = dynrt_weights_bind(weights, specs.data(),
                                             specs.size(), bound.data())) {
    dynrt_status_free(st);
    __builtin_trap();
  }
  const char *value = nullptr;
  dynrt_status_free(dynrt_weights_metadata_find(weights, "format", &value));
  dynrt_status_free(dynrt_weights_find(weights, "", nullptr));
  dynrt_weights_release(weights);
  return 0;
}
