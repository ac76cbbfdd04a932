// Weights.h - C++ helpers over the runtime's weights files for the tools
// built on it (dyncc run, dyncc compile --embed-weights).
#ifndef DYNRT_WEIGHTS_H
#define DYNRT_WEIGHTS_H

#include "runtime/dynrt.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace dynrt {

// A name or string that a file chose, for a message: cut to `limit` bytes
// (on a UTF-8 boundary, "..." appended), control characters and quotes
// escaped, so that a message never carries a crafted megabyte.
std::string clipped(std::string_view text, size_t limit = 64);

// The names of the file's tensors for which `used` is false, in file order.
std::vector<std::string> unusedTensors(const dynrt_weights_t *weights,
                                       const std::function<bool(const char *)> &used);

} // namespace dynrt

#endif // DYNRT_WEIGHTS_H
