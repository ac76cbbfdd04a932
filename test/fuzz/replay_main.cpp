// replay_main.cpp - a main() for the fuzz targets in builds without
// libFuzzer (GCC, the normal build): runs every file given, and every file
// of every directory given (sorted by name), through LLVMFuzzerTestOneInput,
// then the target's synthesized large inputs (dynrtFuzzLargeInput, if the
// target defines it). A crash or sanitizer report fails the ctest; a clean
// pass prints how many inputs ran.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern "C" __attribute__((weak)) bool
dynrtFuzzLargeInput(size_t index, std::vector<uint8_t> *out);

namespace {
void runOne(const std::vector<uint8_t> &bytes) {
  // A copy of exactly `size` bytes, so that reading past the end is caught
  // by the sanitizers as it would be under libFuzzer.
  std::vector<uint8_t> exact(bytes);
  LLVMFuzzerTestOneInput(exact.empty() ? nullptr : exact.data(), exact.size());
}
} // namespace

int main(int argc, char **argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    fs::path arg(argv[i]);
    if (fs::is_directory(arg)) {
      for (const fs::directory_entry &entry : fs::directory_iterator(arg))
        if (entry.is_regular_file())
          files.push_back(entry.path());
    } else if (fs::is_regular_file(arg)) {
      files.push_back(arg);
    } else {
      std::fprintf(stderr, "replay: no such file or directory: %s\n", argv[i]);
      return 2;
    }
  }
  std::sort(files.begin(), files.end());
  size_t count = 0;
  for (const fs::path &file : files) {
    std::ifstream in(file, std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                               std::istreambuf_iterator<char>());
    std::fprintf(stderr, "replay: %s (%zu bytes)\n", file.c_str(),
                 bytes.size());
    runOne(bytes);
    ++count;
  }
  if (dynrtFuzzLargeInput) {
    std::vector<uint8_t> bytes;
    for (size_t i = 0; dynrtFuzzLargeInput(i, &bytes); ++i) {
      std::fprintf(stderr, "replay: synthesized input %zu (%zu bytes)\n", i,
                   bytes.size());
      runOne(bytes);
      ++count;
    }
  }
  std::printf("replay: %zu inputs ran\n", count);
  return count == 0 ? 1 : 0;
}
