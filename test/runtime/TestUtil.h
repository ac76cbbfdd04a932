// TestUtil.h - helpers shared by the dynrt tests: a per-test temporary
// directory, file writing, safetensors images and status assertions.
#ifndef DYNRT_TEST_TESTUTIL_H
#define DYNRT_TEST_TESTUTIL_H

#include "runtime/Status.h"
#include "runtime/dynrt.h"
#include "test/runtime/Spec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <string>

namespace dynrt::test {

// Gives each test a fresh directory, removed afterwards.
class TempDirTest : public ::testing::Test {
protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "dynrt-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  std::string path(const std::string &name) const { return (dir / name); }

  std::filesystem::path dir;
};

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline std::string readFileBytes(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Appends `value` as `bytes` little-endian bytes.
inline void appendLittleEndian(std::string &out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((value >> (8 * i)) & 0xff);
}

// A safetensors image: header length, header, data. `headerLength` overrides
// the length field for the malformed-length cases.
inline std::string safetensors(const std::string &header,
                               const std::string &data,
                               uint64_t headerLength = UINT64_MAX) {
  std::string out;
  appendLittleEndian(
      out, headerLength == UINT64_MAX ? header.size() : headerLength, 8);
  return out + header + data;
}

// Checks that `status` failed with `code` and that its message mentions
// every one of `needles`; frees the status.
inline ::testing::AssertionResult
failsWith(dynrt_status_t status, dynrt_status_code_t code,
          std::initializer_list<std::string> needles) {
  StatusPtr owned(status);
  if (!status)
    return ::testing::AssertionFailure()
           << "succeeded, expected " << dynrt_status_code_name(code);
  std::string message = dynrt_status_message(status);
  if (dynrt_status_code(status) != code)
    return ::testing::AssertionFailure()
           << "code " << dynrt_status_code_name(dynrt_status_code(status))
           << ", expected " << dynrt_status_code_name(code) << ": " << message;
  for (const std::string &needle : needles)
    if (message.find(needle) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message does not mention \"" << needle << "\": " << message;
  return ::testing::AssertionSuccess() << message;
}

inline ::testing::AssertionResult succeeds(dynrt_status_t status) {
  StatusPtr owned(status);
  if (status)
    return ::testing::AssertionFailure()
           << dynrt_status_code_name(dynrt_status_code(status)) << ": "
           << dynrt_status_message(status);
  return ::testing::AssertionSuccess();
}


} // namespace dynrt::test

#endif // DYNRT_TEST_TESTUTIL_H
