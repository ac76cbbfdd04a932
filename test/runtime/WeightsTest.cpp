// WeightsTest.cpp - tests of the safetensors weights API: a valid file with
// every lookup path, one test per malformed-file rule, and binding errors.
#include "TestUtil.h"

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

using namespace dynrt;
using namespace dynrt::test;

namespace {

// Owns opened weights.
struct WeightsDeleter {
  void operator()(dynrt_weights_t *weights) const {
    dynrt_weights_release(weights);
  }
};
using WeightsPtr = std::unique_ptr<dynrt_weights_t, WeightsDeleter>;

template <typename T> std::string bytesOf(std::initializer_list<T> values) {
  std::string out;
  for (T value : values)
    out.append(reinterpret_cast<const char *>(&value), sizeof(T));
  return out;
}

// A valid file: several dtypes, a scalar, an empty tensor and metadata. The
// data section holds the tensors out of name order to make sure lookups do
// not depend on layout.
struct ValidImage {
  std::string w = bytesOf<float>({1, 2, 3, 4, 5, 6});      // F32 [2, 3]
  std::string b = bytesOf<double>({0.5, -1.5, 2.25});      // F64 [3]
  std::string ids = bytesOf<int64_t>({-7, 1LL << 40});     // I64 [2]
  std::string mask = bytesOf<uint8_t>({1, 0, 0, 1});       // BOOL [4]
  std::string scale = bytesOf<uint16_t>({0x3c00});         // F16 [] (1.0)
  std::string small = bytesOf<int8_t>({-1, 2, -3, 4, -5}); // I8 [5]
  std::string data = w + b + ids + mask + scale + small;
  std::string header = R"({
    "layer1.w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
    "layer1.b": {"dtype": "F64", "shape": [3], "data_offsets": [24, 48]},
    "embed.ids": {"dtype": "I64", "shape": [2], "data_offsets": [48, 64]},
    "mask": {"dtype": "BOOL", "shape": [4], "data_offsets": [64, 68]},
    "scale": {"dtype": "F16", "shape": [], "data_offsets": [68, 70]},
    "small": {"dtype": "I8", "shape": [5], "data_offsets": [70, 75]},
    "empty": {"dtype": "I32", "shape": [0, 4], "data_offsets": [75, 75]},
    "__metadata__": {"format": "pt", "model": "tiny"}
  })";
  std::string bytes = safetensors(header, data);
  // Where the data section starts in `bytes`.
  size_t dataStart = 8 + header.size();
};

using dynrt::test::spec;

class WeightsTest : public TempDirTest {
protected:
  WeightsPtr openFile(const std::string &path) {
    dynrt_weights_t *weights = nullptr;
    EXPECT_TRUE(succeeds(dynrt_weights_open_file(path.c_str(), &weights)));
    return WeightsPtr(weights);
  }

  WeightsPtr openValidFile() {
    writeFile(path("model.safetensors"), image.bytes);
    return openFile(path("model.safetensors"));
  }

  // Writes `bytes` to a file and checks that opening it, from the file and
  // from memory, fails with `code` naming `needles` (and the file).
  void expectOpenFails(const std::string &bytes, dynrt_status_code_t code,
                       std::initializer_list<std::string> needles) {
    std::string file = path("bad.safetensors");
    writeFile(file, bytes);
    dynrt_weights_t *weights = nullptr;
    std::vector<std::string> withFile(needles);
    withFile.push_back(file);
    dynrt_status_t status = dynrt_weights_open_file(file.c_str(), &weights);
    StatusPtr owned(status);
    ASSERT_NE(status, nullptr);
    EXPECT_EQ(weights, nullptr);
    EXPECT_EQ(dynrt_status_code(status), code) << dynrt_status_message(status);
    std::string message = dynrt_status_message(status);
    for (const std::string &needle : withFile)
      EXPECT_NE(message.find(needle), std::string::npos)
          << "missing \"" << needle << "\" in: " << message;

    EXPECT_TRUE(failsWith(
        dynrt_weights_open_memory(bytes.data(), bytes.size(), &weights), code,
        needles));
    EXPECT_EQ(weights, nullptr);
  }

  ValidImage image;
};

// Element i of tensor data: the data section is not aligned for T (the
// writer pads nothing here), so read it as bytes.
template <typename T> T element(const void *data, size_t i) {
  T value;
  std::memcpy(&value, static_cast<const char *>(data) + i * sizeof(T),
              sizeof(T));
  return value;
}

std::string tensorBytes(const dynrt_tensor_info_t &info) {
  return std::string(static_cast<const char *>(info.data), info.byte_size);
}

TEST_F(WeightsTest, ValidFileFindReturnsEveryTensor) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  EXPECT_EQ(dynrt_weights_count(weights.get()), 7u);

  dynrt_tensor_info_t info;
  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "layer1.w", &info)));
  EXPECT_STREQ(info.name, "layer1.w");
  EXPECT_EQ(info.dtype, DYNRT_F32);
  EXPECT_EQ(info.rank, 2);
  EXPECT_EQ(info.shape[0], 2);
  EXPECT_EQ(info.shape[1], 3);
  EXPECT_EQ(info.shape[2], 0);
  EXPECT_EQ(info.byte_size, 24u);
  EXPECT_EQ(tensorBytes(info), image.w);
  EXPECT_EQ(element<float>(info.data, 5), 6.0f);

  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "layer1.b", &info)));
  EXPECT_EQ(info.dtype, DYNRT_F64);
  EXPECT_EQ(tensorBytes(info), image.b);
  EXPECT_EQ(element<double>(info.data, 2), 2.25);

  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "embed.ids", &info)));
  EXPECT_EQ(info.dtype, DYNRT_I64);
  EXPECT_EQ(tensorBytes(info), image.ids);

  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "mask", &info)));
  EXPECT_EQ(info.dtype, DYNRT_BOOL);
  EXPECT_EQ(tensorBytes(info), image.mask);

  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "scale", &info)));
  EXPECT_EQ(info.dtype, DYNRT_F16);
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(tensorBytes(info), image.scale);

  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "small", &info)));
  EXPECT_EQ(info.dtype, DYNRT_I8);
  EXPECT_EQ(tensorBytes(info), image.small);

  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "empty", &info)));
  EXPECT_EQ(info.dtype, DYNRT_I32);
  EXPECT_EQ(info.byte_size, 0u);
  EXPECT_EQ(info.shape[1], 4);
}

TEST_F(WeightsTest, GetOrdersTensorsByName) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  std::vector<std::string> names;
  for (size_t i = 0; i < dynrt_weights_count(weights.get()); ++i) {
    dynrt_tensor_info_t info;
    ASSERT_TRUE(succeeds(dynrt_weights_get(weights.get(), i, &info)));
    names.push_back(info.name);
    // get and find agree.
    dynrt_tensor_info_t found;
    ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), info.name, &found)));
    EXPECT_EQ(found.data, info.data);
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"embed.ids", "empty", "layer1.b",
                                      "layer1.w", "mask", "scale", "small"}));
  dynrt_tensor_info_t info;
  EXPECT_TRUE(failsWith(dynrt_weights_get(weights.get(), 7, &info),
                        DYNRT_OUT_OF_RANGE, {"7", "model.safetensors"}));
}

TEST_F(WeightsTest, FindMissingTensorIsNotFound) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_tensor_info_t info;
  EXPECT_TRUE(failsWith(dynrt_weights_find(weights.get(), "layer2.w", &info),
                        DYNRT_NOT_FOUND, {"'layer2.w'", "model.safetensors"}));
  // The metadata entry is not a tensor.
  EXPECT_TRUE(
      failsWith(dynrt_weights_find(weights.get(), "__metadata__", &info),
                DYNRT_NOT_FOUND, {"__metadata__"}));
}

TEST_F(WeightsTest, Metadata) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  const char *value = nullptr;
  ASSERT_TRUE(
      succeeds(dynrt_weights_metadata_find(weights.get(), "model", &value)));
  EXPECT_STREQ(value, "tiny");
  ASSERT_TRUE(
      succeeds(dynrt_weights_metadata_find(weights.get(), "format", &value)));
  EXPECT_STREQ(value, "pt");
  EXPECT_TRUE(
      failsWith(dynrt_weights_metadata_find(weights.get(), "author", &value),
                DYNRT_NOT_FOUND, {"'author'"}));
}

TEST_F(WeightsTest, OpenMemoryPointsIntoTheCallersBytes) {
  dynrt_weights_t *raw = nullptr;
  ASSERT_TRUE(succeeds(
      dynrt_weights_open_memory(image.bytes.data(), image.bytes.size(), &raw)));
  WeightsPtr weights(raw);
  dynrt_tensor_info_t info;
  ASSERT_TRUE(succeeds(dynrt_weights_find(weights.get(), "layer1.b", &info)));
  // No copy: the pointer is into the caller's buffer, at data_offsets begin.
  EXPECT_EQ(info.data, image.bytes.data() + image.dataStart + 24);
}

TEST_F(WeightsTest, OpenMemoryMatchesOpenFile) {
  WeightsPtr fromFile = openValidFile();
  ASSERT_TRUE(fromFile);
  dynrt_weights_t *raw = nullptr;
  ASSERT_TRUE(succeeds(
      dynrt_weights_open_memory(image.bytes.data(), image.bytes.size(), &raw)));
  WeightsPtr fromMemory(raw);
  ASSERT_EQ(dynrt_weights_count(fromFile.get()),
            dynrt_weights_count(fromMemory.get()));
  dynrt_tensor_info_t first;
  ASSERT_TRUE(succeeds(dynrt_weights_find(fromFile.get(), "layer1.w", &first)));
  const char *fileBase = static_cast<const char *>(first.data);
  const char *memoryBase = image.bytes.data() + image.dataStart;
  for (size_t i = 0; i < dynrt_weights_count(fromFile.get()); ++i) {
    dynrt_tensor_info_t a, b;
    ASSERT_TRUE(succeeds(dynrt_weights_get(fromFile.get(), i, &a)));
    ASSERT_TRUE(succeeds(dynrt_weights_get(fromMemory.get(), i, &b)));
    EXPECT_STREQ(a.name, b.name);
    EXPECT_EQ(a.dtype, b.dtype);
    EXPECT_EQ(a.rank, b.rank);
    EXPECT_TRUE(std::equal(a.shape, a.shape + DYNRT_MAX_RANK, b.shape));
    EXPECT_EQ(tensorBytes(a), tensorBytes(b)) << a.name;
    // Same place relative to the data section (layer1.w is at offset 0).
    EXPECT_EQ(static_cast<const char *>(a.data) - fileBase,
              static_cast<const char *>(b.data) - memoryBase)
        << a.name;
  }
}

TEST_F(WeightsTest, BindFillsDataPointers) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_param_spec_t specs[] = {
      spec("layer1.w", DYNRT_F32, {2, 3}),
      spec("layer1.b", DYNRT_F64, {3}),
      spec("scale", DYNRT_F16, {}),
  };
  const void *data[3] = {};
  ASSERT_TRUE(succeeds(dynrt_weights_bind(weights.get(), specs, 3, data)));
  for (int i = 0; i < 3; ++i) {
    dynrt_tensor_info_t info;
    ASSERT_TRUE(
        succeeds(dynrt_weights_find(weights.get(), specs[i].name, &info)));
    EXPECT_EQ(data[i], info.data) << specs[i].name;
  }
  EXPECT_EQ(element<float>(data[0], 0), 1.0f);
  EXPECT_EQ(element<double>(data[1], 1), -1.5);
  // Binding nothing is fine.
  EXPECT_TRUE(succeeds(dynrt_weights_bind(weights.get(), nullptr, 0, nullptr)));
}

TEST_F(WeightsTest, BindMissingTensor) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_param_spec_t specs[] = {spec("layer1.w", DYNRT_F32, {2, 3}),
                                spec("layer2.w", DYNRT_F32, {3, 3})};
  const void *data[2] = {nullptr, nullptr};
  EXPECT_TRUE(failsWith(dynrt_weights_bind(weights.get(), specs, 2, data),
                        DYNRT_NOT_FOUND,
                        {"'layer2.w'", "F32 [3, 3]", "model.safetensors"}));
  // All or nothing: the tensor that did bind was not written either.
  EXPECT_EQ(data[0], nullptr);
}

TEST_F(WeightsTest, BindWrongDtype) {
  // The file holds layer1.b as F64; the model wants F32.
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_param_spec_t specs[] = {spec("layer1.b", DYNRT_F32, {3})};
  const void *data[1] = {nullptr};
  EXPECT_TRUE(failsWith(
      dynrt_weights_bind(weights.get(), specs, 1, data), DYNRT_INVALID_ARGUMENT,
      {"tensor 'layer1.b' has dtype F64 but the model expects F32"}));
  EXPECT_EQ(data[0], nullptr);
}

TEST_F(WeightsTest, BindWrongShape) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_param_spec_t specs[] = {spec("layer1.w", DYNRT_F32, {3, 2})};
  const void *data[1] = {nullptr};
  EXPECT_TRUE(failsWith(
      dynrt_weights_bind(weights.get(), specs, 1, data), DYNRT_INVALID_ARGUMENT,
      {"tensor 'layer1.w' has shape [2, 3] but the model expects [3, 2]"}));
}

TEST_F(WeightsTest, BindWrongRank) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_param_spec_t specs[] = {spec("layer1.w", DYNRT_F32, {6})};
  const void *data[1] = {nullptr};
  EXPECT_TRUE(failsWith(
      dynrt_weights_bind(weights.get(), specs, 1, data), DYNRT_INVALID_ARGUMENT,
      {"tensor 'layer1.w' has shape [2, 3] but the model expects [6]"}));
}

TEST_F(WeightsTest, BindInvalidSpec) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_param_spec_t specs[] = {spec("layer1.w", DYNRT_F32, {2, 3})};
  specs[0].rank = DYNRT_MAX_RANK + 1;
  const void *data[1] = {nullptr};
  EXPECT_TRUE(failsWith(dynrt_weights_bind(weights.get(), specs, 1, data),
                        DYNRT_INVALID_ARGUMENT, {"'layer1.w'"}));
}

TEST_F(WeightsTest, NullArguments) {
  dynrt_weights_t *weights = nullptr;
  EXPECT_TRUE(failsWith(dynrt_weights_open_file(nullptr, &weights),
                        DYNRT_INVALID_ARGUMENT, {}));
  EXPECT_TRUE(failsWith(dynrt_weights_open_file("x", nullptr),
                        DYNRT_INVALID_ARGUMENT, {}));
  EXPECT_TRUE(failsWith(dynrt_weights_open_memory(nullptr, 16, &weights),
                        DYNRT_INVALID_ARGUMENT, {}));
  dynrt_tensor_info_t info;
  EXPECT_TRUE(failsWith(dynrt_weights_find(nullptr, "w", &info),
                        DYNRT_INVALID_ARGUMENT, {}));
  EXPECT_EQ(dynrt_weights_count(nullptr), 0u);
  dynrt_weights_release(nullptr);
  dynrt_weights_retain(nullptr);
}

TEST_F(WeightsTest, RetainKeepsTheWeightsAlive) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  dynrt_weights_t *extra = weights.get();
  dynrt_weights_retain(extra);
  weights.reset();
  dynrt_tensor_info_t info;
  ASSERT_TRUE(succeeds(dynrt_weights_find(extra, "layer1.w", &info)));
  EXPECT_EQ(tensorBytes(info), image.w);
  dynrt_weights_release(extra);
}

TEST_F(WeightsTest, ConcurrentReads) {
  WeightsPtr weights = openValidFile();
  ASSERT_TRUE(weights);
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      dynrt_param_spec_t specs[] = {spec("layer1.w", DYNRT_F32, {2, 3})};
      for (int i = 0; i < 1000; ++i) {
        const void *data[1];
        dynrt_tensor_info_t info;
        StatusPtr a(dynrt_weights_bind(weights.get(), specs, 1, data));
        StatusPtr b(dynrt_weights_find(weights.get(), "mask", &info));
        if (a || b)
          ++failures[t];
      }
    });
  for (std::thread &thread : threads)
    thread.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

//===----------------------------------------------------------------------===//
// Opening errors
//===----------------------------------------------------------------------===//

TEST_F(WeightsTest, MissingFileIsNotFound) {
  std::string file = path("absent.safetensors");
  dynrt_weights_t *weights = nullptr;
  EXPECT_TRUE(failsWith(dynrt_weights_open_file(file.c_str(), &weights),
                        DYNRT_NOT_FOUND, {file}));
  EXPECT_EQ(weights, nullptr);
}

TEST_F(WeightsTest, DirectoryIsNotAWeightsFile) {
  dynrt_weights_t *weights = nullptr;
  EXPECT_TRUE(failsWith(dynrt_weights_open_file(dir.c_str(), &weights),
                        DYNRT_INVALID_ARGUMENT,
                        {dir.string(), "not a regular file"}));
}

TEST_F(WeightsTest, EmptyFile) {
  expectOpenFails("", DYNRT_DATA_LOSS, {"0 bytes"});
}

TEST_F(WeightsTest, TruncatedFile) {
  expectOpenFails(image.bytes.substr(0, 5), DYNRT_DATA_LOSS, {"5 bytes"});
}

TEST_F(WeightsTest, TruncatedDataSection) {
  // The header is intact but the data stops early: the last tensors' ranges
  // leave the file.
  expectOpenFails(image.bytes.substr(0, image.dataStart + 60), DYNRT_DATA_LOSS,
                  {"beyond", "60-byte data section"});
}

TEST_F(WeightsTest, HeaderLengthLargerThanFile) {
  expectOpenFails(safetensors(image.header, image.data,
                              image.header.size() + image.data.size() + 1),
                  DYNRT_DATA_LOSS, {"header length"});
}

TEST_F(WeightsTest, HeaderLengthAbsurd) {
  expectOpenFails(safetensors(image.header, image.data, uint64_t(1) << 40),
                  DYNRT_DATA_LOSS,
                  {"not a safetensors file", "header length 1099511627776"});
}

TEST_F(WeightsTest, HeaderLengthOverTheLimit) {
  // A sparse 101 MiB file whose header length fits it but not the 100 MiB
  // limit: refused before a byte of the header is read.
  std::string file = path("huge.safetensors");
  std::string length;
  appendLittleEndian(length, (uint64_t(100) << 20) + 1, 8);
  writeFile(file, length + "{");
  std::filesystem::resize_file(file, uint64_t(101) << 20);
  dynrt_weights_t *weights = nullptr;
  EXPECT_TRUE(failsWith(dynrt_weights_open_file(file.c_str(), &weights),
                        DYNRT_DATA_LOSS,
                        {"header length 104857601", "100 MiB limit"}));
  EXPECT_EQ(weights, nullptr);
}

TEST_F(WeightsTest, PyTorchZipIsNotASafetensorsFile) {
  // The start of a torch.save .pt file (a zip archive): its first 8 bytes
  // read as a header length of 578,712,552,184,433,488 bytes.
  static const char start[] = "PK\x03\x04\x00\x00\x08\x08\x00\x00archive/data.pkl";
  std::string zip(start, sizeof(start) - 1);
  zip += std::string(200, '\0');
  expectOpenFails(
      zip, DYNRT_DATA_LOSS,
      {"not a safetensors file", "header length 578712552184433488"});
}

TEST_F(WeightsTest, HeaderNotStartingWithABraceIsNotASafetensorsFile) {
  expectOpenFails(safetensors(" {}", ""), DYNRT_DATA_LOSS,
                  {"not a safetensors file", "does not start with '{'"});
  expectOpenFails(safetensors("", "abcd"), DYNRT_DATA_LOSS,
                  {"not a safetensors file"});
}

TEST_F(WeightsTest, InvalidJson) {
  expectOpenFails(safetensors(R"({"w": {"dtype": "F32",)", ""), DYNRT_DATA_LOSS,
                  {"not valid JSON"});
}

TEST_F(WeightsTest, InvalidUtf8) {
  expectOpenFails(safetensors("{\"w\xff\": {}}", ""), DYNRT_DATA_LOSS,
                  {"not valid JSON"});
}

TEST_F(WeightsTest, HeaderNotAnObject) {
  expectOpenFails(safetensors("[1, 2]", ""), DYNRT_DATA_LOSS,
                  {"not a safetensors file", "does not start with '{'"});
}

TEST_F(WeightsTest, DuplicateTensorName) {
  expectOpenFails(
      safetensors(
          R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]},
                      "w": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}})",
          "ab"),
      DYNRT_DATA_LOSS, {"'w' twice"});
}

TEST_F(WeightsTest, EntryNotAnObject) {
  expectOpenFails(safetensors(R"({"layer1.w": [0, 4]})", "abcd"),
                  DYNRT_DATA_LOSS, {"'layer1.w'", "not an object"});
}

TEST_F(WeightsTest, MissingDtype) {
  expectOpenFails(
      safetensors(R"({"layer1.w": {"shape": [1], "data_offsets": [0, 4]}})",
                  "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "no 'dtype'"});
}

TEST_F(WeightsTest, UnknownDtype) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}})",
          "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "unknown dtype 'F33'"});
}

TEST_F(WeightsTest, ShapeNotAnArray) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": 4, "data_offsets": [0, 4]}})",
          "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "'shape'"});
}

TEST_F(WeightsTest, ShapeNegativeDimension) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
          "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "-1", "non-negative integer"});
}

TEST_F(WeightsTest, ShapeFractionalDimension) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})",
          "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "non-negative integer"});
}

TEST_F(WeightsTest, RankTooLarge) {
  expectOpenFails(safetensors(R"({"layer1.w": {"dtype": "F32",
                      "shape": [1, 1, 1, 1, 1, 1, 1, 1, 1],
                      "data_offsets": [0, 4]}})",
                              "abcd"),
                  DYNRT_DATA_LOSS, {"'layer1.w'", "rank 9"});
}

TEST_F(WeightsTest, OffsetsNotTwoIntegers) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4, 8]}})",
          "abcdefgh"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "two non-negative integers"});
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}})",
          "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "two non-negative integers"});
}

TEST_F(WeightsTest, OffsetsOutsideFile) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})",
          "abcd"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "beyond the 4-byte data section"});
}

TEST_F(WeightsTest, OffsetsBeginAfterEnd) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})",
          "abcdefgh"),
      DYNRT_DATA_LOSS, {"'layer1.w'", "[8, 4]"});
}

TEST_F(WeightsTest, OverlappingOffsets) {
  expectOpenFails(
      safetensors(
          R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                      "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
          std::string(12, 'x')),
      DYNRT_DATA_LOSS, {"'a'", "'b'", "overlap"});
}

TEST_F(WeightsTest, AdjacentAndEmptyRangesDoNotOverlap) {
  std::string bytes = safetensors(
      R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
          "b": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]},
          "c": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}})",
      std::string(16, 'x'));
  dynrt_weights_t *raw = nullptr;
  EXPECT_TRUE(
      succeeds(dynrt_weights_open_memory(bytes.data(), bytes.size(), &raw)));
  dynrt_weights_release(raw);
}

TEST_F(WeightsTest, ByteSizeMismatch) {
  expectOpenFails(
      safetensors(
          R"({"layer1.w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})",
          std::string(24, 'x')),
      DYNRT_DATA_LOSS, {"'layer1.w'", "20 bytes", "F32 [2, 3] needs 24"});
}

TEST_F(WeightsTest, ByteSizeOverflow) {
  // 2^62 * 2^62 * 4 wraps around 64 bits; it must not pass as 0 bytes.
  expectOpenFails(safetensors(R"({"layer1.w": {"dtype": "F32",
                      "shape": [4611686018427387904, 4611686018427387904],
                      "data_offsets": [0, 0]}})",
                              ""),
                  DYNRT_DATA_LOSS, {"'layer1.w'", "overflows"});
}

TEST_F(WeightsTest, MetadataNotObjectOfStrings) {
  expectOpenFails(safetensors(R"({"__metadata__": {"epochs": 3}})", ""),
                  DYNRT_DATA_LOSS, {"__metadata__", "'epochs'"});
  expectOpenFails(safetensors(R"({"__metadata__": "pt"})", ""), DYNRT_DATA_LOSS,
                  {"__metadata__", "not an object"});
}

//===----------------------------------------------------------------------===//
// Hostile headers: deep nesting, size, overflow, messages
//===----------------------------------------------------------------------===//

// `depth` nested arrays around a 1: "[[[1]]]".
std::string nested(size_t depth) {
  return std::string(depth, '[') + "1" + std::string(depth, ']');
}

TEST_F(WeightsTest, DeeplyNestedShapeIsAnError) {
  // Used to overflow the stack (recursive parsing and destruction).
  expectOpenFails(safetensors(R"({"w": {"dtype": "F32", "shape": )" +
                                  nested(200000) +
                                  R"(, "data_offsets": [0, 4]}})",
                              "abcd"),
                  DYNRT_DATA_LOSS, {"'w'", "'shape'", "nests deeper"});
}

TEST_F(WeightsTest, DeeplyNestedOffsetsIsAnError) {
  expectOpenFails(safetensors(R"({"w": {"dtype": "F32", "shape": [1], )"
                              R"("data_offsets": )" +
                                  nested(200000) + "}}",
                              "abcd"),
                  DYNRT_DATA_LOSS, {"'w'", "'data_offsets'", "nests deeper"});
}

TEST_F(WeightsTest, DeeplyNestedUnclosedValueIsAnError) {
  // Stopped at the fourth level, before the missing brackets matter.
  expectOpenFails(
      safetensors(R"({"w": {"dtype": "F32", "x": )" + std::string(200000, '['),
                  ""),
      DYNRT_DATA_LOSS, {"'w'", "'x'", "nests deeper"});
}

TEST_F(WeightsTest, DeeplyNestedEntryOrMetadataIsAnError) {
  expectOpenFails(safetensors(R"({"w": )" + nested(200000) + "}", ""),
                  DYNRT_DATA_LOSS, {"'w'", "array, not an object"});
  expectOpenFails(
      safetensors(R"({"__metadata__": {"k": )" + nested(200000) + "}}", ""),
      DYNRT_DATA_LOSS, {"__metadata__", "'k'", "array, not a string"});
}

TEST_F(WeightsTest, ManyTensorsParseInLinearTime) {
  // 100,000 tensors: a quadratic header parse took 22 s for 40,000.
  constexpr int count = 100000;
  std::string header = "{";
  for (int i = 0; i < count; ++i)
    header += fmt::format(R"({}"t{}": {{"dtype": "U8", "shape": [1], )"
                          R"("data_offsets": [{}, {}]}})",
                          i ? "," : "", i, i, i + 1);
  header += "}";
  std::string bytes = safetensors(header, std::string(count, 'x'));
  auto start = std::chrono::steady_clock::now();
  dynrt_weights_t *raw = nullptr;
  ASSERT_TRUE(
      succeeds(dynrt_weights_open_memory(bytes.data(), bytes.size(), &raw)));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  WeightsPtr weights(raw);
  EXPECT_EQ(dynrt_weights_count(raw), size_t(count));
  dynrt_tensor_info_t info;
  ASSERT_TRUE(succeeds(dynrt_weights_find(raw, "t99999", &info)));
  EXPECT_EQ(info.byte_size, 1u);
  // Milliseconds when linear, even under sanitizers: a generous bound.
  EXPECT_LT(seconds, 10.0);
}

TEST_F(WeightsTest, ShapeProductOverflowIsAnError) {
  // 2^62 * 4 elements of 4 bytes: 2^66 bytes wraps to 0 in 64 bits.
  expectOpenFails(safetensors(R"({"w": {"dtype": "F32",
                      "shape": [4611686018427387904, 4],
                      "data_offsets": [0, 0]}})",
                              ""),
                  DYNRT_DATA_LOSS, {"'w'", "overflows"});
  // 2^62 one-byte elements fit 64 bits but not the file.
  expectOpenFails(safetensors(R"({"w": {"dtype": "U8",
                      "shape": [4611686018427387904],
                      "data_offsets": [0, 4611686018427387904]}})",
                              ""),
                  DYNRT_DATA_LOSS, {"'w'", "beyond the 0-byte data section"});
}

TEST_F(WeightsTest, ShapeDimensionBeyondInt64IsAnError) {
  expectOpenFails(safetensors(R"({"w": {"dtype": "U8",
                      "shape": [18446744073709551615],
                      "data_offsets": [0, 0]}})",
                              ""),
                  DYNRT_DATA_LOSS, {"'w'", "larger than the largest int64"});
  expectOpenFails(safetensors(R"({"w": {"dtype": "U8", "shape": [1e300],
                      "data_offsets": [0, 0]}})",
                              ""),
                  DYNRT_DATA_LOSS, {"'w'", "non-negative integer"});
}

TEST_F(WeightsTest, OffsetsBeyondUint64AreAnError) {
  expectOpenFails(safetensors(R"({"w": {"dtype": "U8", "shape": [1],
                      "data_offsets": [18446744073709551615, 18446744073709551616]}})",
                              "a"),
                  DYNRT_DATA_LOSS, {"'w'", "two non-negative integers"});
}

TEST_F(WeightsTest, DuplicateKeysInsideAnEntryOrMetadata) {
  expectOpenFails(safetensors(R"({"w": {"dtype": "U8", "dtype": "U8",
                      "shape": [1], "data_offsets": [0, 1]}})",
                              "a"),
                  DYNRT_DATA_LOSS, {"'w'", "'dtype' twice"});
  expectOpenFails(safetensors(R"({"__metadata__": {"a": "1", "a": "2"}})", ""),
                  DYNRT_DATA_LOSS, {"__metadata__", "'a' twice"});
  expectOpenFails(
      safetensors(R"({"__metadata__": {}, "__metadata__": {}})", ""),
      DYNRT_DATA_LOSS, {"'__metadata__' twice"});
}

TEST_F(WeightsTest, MessagesNameTheKeyButNeverDumpTheValue) {
  // A megabyte in a shape, as a dtype, in a bad JSON token and as a name:
  // the message names the tensor (cut short) and stays small.
  std::string big(1 << 20, 'A');
  std::vector<std::string> headers = {
      R"({"w": {"dtype": "F32", "shape": [")" + big +
          R"("], "data_offsets": [0, 4]}})",
      R"({"w": {"dtype": ")" + big +
          R"(", "shape": [1], "data_offsets": [0, 4]}})",
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": ")" + big +
          "\x01\"}}",
      R"({")" + big +
          R"(": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})",
  };
  for (const std::string &header : headers) {
    std::string bytes = safetensors(header, "abcd");
    dynrt_weights_t *weights = nullptr;
    dynrt_status_t status =
        dynrt_weights_open_memory(bytes.data(), bytes.size(), &weights);
    StatusPtr owned(status);
    ASSERT_NE(status, nullptr);
    EXPECT_EQ(dynrt_status_code(status), DYNRT_DATA_LOSS);
    std::string message = dynrt_status_message(status);
    EXPECT_LT(message.size(), 400u) << message.substr(0, 400);
    EXPECT_EQ(message.find(std::string(100, 'A')), std::string::npos);
  }
}

TEST_F(WeightsTest, NamesInMessagesAreEscaped) {
  expectOpenFails(
      safetensors(
          R"({"a\nb'": {"dtype": "X", "shape": [1], "data_offsets": [0, 1]}})",
          "a"),
      DYNRT_DATA_LOSS, {"tensor 'a\\x0ab\\x27'", "unknown dtype 'X'"});
}

TEST_F(WeightsTest, EmptyHeaderObjectIsValid) {
  std::string bytes = safetensors("{}", "");
  dynrt_weights_t *raw = nullptr;
  ASSERT_TRUE(
      succeeds(dynrt_weights_open_memory(bytes.data(), bytes.size(), &raw)));
  EXPECT_EQ(dynrt_weights_count(raw), 0u);
  dynrt_weights_release(raw);
}

} // namespace
