// fuzz_npy.cpp - libFuzzer target: bytes as a .npy image through the
// runtime's reader (dynrt::parseNpy, what readNpy runs on a file's bytes).
// Any input must give a status or an array whose bytes match its shape.
#include "runtime/Npy.h"
#include "runtime/Status.h"
#include "runtime/Types.h"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

// Large inputs for the replay driver (replay_main.cpp): a version 2.0 header
// just under the 1 MiB limit whose shape is a long run of dimensions.
extern "C" bool dynrtFuzzLargeInput(size_t index, std::vector<uint8_t> *out) {
  if (index != 0)
    return false;
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  while (dict.size() < (1u << 20) - 64)
    dict += "1, ";
  dict += "), }";
  std::string image("\x93NUMPY\x02\x00", 8);
  uint32_t length = static_cast<uint32_t>(dict.size() + 1);
  for (int i = 0; i < 4; ++i)
    image += static_cast<char>(length >> (8 * i));
  image += dict + "\n";
  out->assign(image.begin(), image.end());
  return true;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  dynrt::NpyArray array;
  dynrt::StatusPtr status(dynrt::parseNpy(data, size, "fuzz", array));
  if (status) {
    if (dynrt_status_message(status.get())[0] == '\0')
      __builtin_trap();
    return 0;
  }
  std::optional<uint64_t> bytes = dynrt::byteSizeOf(array.dtype, array.shape);
  if (!bytes || *bytes != array.bytes.size())
    __builtin_trap();
  return 0;
}
