// Config.h - reading the config entries (doubles) of the runtime's builtins
// (Route.cpp, Skip.cpp, Batch.cpp).
#ifndef DYNRT_CONFIG_H
#define DYNRT_CONFIG_H

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace dynrt {

// Reads config[index] as an integer in [lo, hi] into `out`; otherwise sets
// `error` ("<what> config entry <index> (<name>) = <v> is not an integer in
// [lo, hi]") and returns false.
template <typename T>
bool readConfigInt(const double *config, int index, const char *what,
                   const char *name, int64_t lo, int64_t hi, T &out,
                   std::string &error) {
  double v = config[index];
  if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) ||
      v != std::floor(v)) {
    error = fmt::format("{} config entry {} ({}) = {} is not an integer in "
                        "[{}, {}]",
                        what, index, name, v, lo, hi);
    return false;
  }
  out = static_cast<T>(v);
  return true;
}

} // namespace dynrt

#endif // DYNRT_CONFIG_H
