// Status.cpp - the status part of the dynrt C API and its C++ helper.
#include "runtime/Status.h"

namespace {
// Returned when allocating a status fails, so an out-of-memory error is still
// reported instead of being mistaken for success (NULL).
dynrt_status_s outOfMemoryStatus{DYNRT_RESOURCE_EXHAUSTED,
                                 "out of memory while reporting an error"};
} // namespace

dynrt_status_t dynrt::makeStatus(dynrt_status_code_t code,
                                 std::string message) {
  if (code == DYNRT_OK)
    code = DYNRT_INTERNAL;
  try {
    return new dynrt_status_s{code, std::move(message)};
  } catch (...) {
    return &outOfMemoryStatus;
  }
}

extern "C" {

dynrt_status_code_t dynrt_status_code(dynrt_status_t status) {
  return status ? status->code : DYNRT_OK;
}

const char *dynrt_status_message(dynrt_status_t status) {
  return status ? status->message.c_str() : "";
}

const char *dynrt_status_code_name(dynrt_status_code_t code) {
  switch (code) {
  case DYNRT_OK:
    return "OK";
  case DYNRT_INVALID_ARGUMENT:
    return "INVALID_ARGUMENT";
  case DYNRT_NOT_FOUND:
    return "NOT_FOUND";
  case DYNRT_DATA_LOSS:
    return "DATA_LOSS";
  case DYNRT_OUT_OF_RANGE:
    return "OUT_OF_RANGE";
  case DYNRT_FAILED_PRECONDITION:
    return "FAILED_PRECONDITION";
  case DYNRT_UNAVAILABLE:
    return "UNAVAILABLE";
  case DYNRT_RESOURCE_EXHAUSTED:
    return "RESOURCE_EXHAUSTED";
  case DYNRT_INTERNAL:
    return "INTERNAL";
  }
  return "UNKNOWN";
}

void dynrt_status_free(dynrt_status_t status) {
  if (status != &outOfMemoryStatus)
    delete status;
}

} // extern "C"
