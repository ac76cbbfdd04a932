// Status.h - C++-only helpers for making and owning dynrt_status_t values
// inside the runtime and in C++ tools built on it.
#ifndef DYNRT_STATUS_H
#define DYNRT_STATUS_H

#include "runtime/dynrt.h"

#include <fmt/format.h>

#include <exception>
#include <memory>
#include <new>
#include <string>
#include <utility>

// The object behind dynrt_status_t. Defined here, not in dynrt.h, so that C
// callers only ever see the opaque handle.
struct dynrt_status_s {
  dynrt_status_code_t code;
  std::string message;
};

namespace dynrt {

// Makes an error status; never throws. A DYNRT_OK code is turned into
// DYNRT_INTERNAL because an OK status must be NULL. If memory runs out the
// result is a static RESOURCE_EXHAUSTED status that dynrt_status_free ignores.
dynrt_status_t makeStatus(dynrt_status_code_t code, std::string message);

// makeStatus with an fmt-formatted message.
template <typename... Args>
dynrt_status_t makeStatus(dynrt_status_code_t code,
                          fmt::format_string<Args...> format, Args &&...args) {
  try {
    return makeStatus(code, fmt::format(format, std::forward<Args>(args)...));
  } catch (...) {
    return makeStatus(code, std::string());
  }
}

// Runs `body` (returning a dynrt_status_t), turning any exception into a
// status: C API entry points wrap their bodies in it because nothing may
// unwind through C callers.
template <typename Body> dynrt_status_t guardExceptions(Body &&body) {
  try {
    return body();
  } catch (const std::bad_alloc &) {
    return makeStatus(DYNRT_RESOURCE_EXHAUSTED, std::string("out of memory"));
  } catch (const std::exception &e) {
    return makeStatus(DYNRT_INTERNAL, "unexpected error: {}", e.what());
  } catch (...) {
    return makeStatus(DYNRT_INTERNAL, std::string("unexpected error"));
  }
}

// Owns a status in C++ code: `StatusPtr s(call()); if (s) ...`.
struct StatusDeleter {
  void operator()(dynrt_status_t status) const { dynrt_status_free(status); }
};
using StatusPtr = std::unique_ptr<dynrt_status_s, StatusDeleter>;

} // namespace dynrt

#endif // DYNRT_STATUS_H
