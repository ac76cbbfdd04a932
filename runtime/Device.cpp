// Device.cpp - model options and the CUDA availability check of the dynrt C
// API. Kept apart from Model.cpp, and free of Halide symbols, so that
// programs linking libdynrt statically for its options and device checks
// (dyncc run, the C API test) do not pull in Model.cpp, whose Halide runtime
// functions only a generated library provides.
#include "runtime/Device.h"
#include "runtime/Status.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>
#include <string>

namespace {

// The CUDA driver API functions the probe calls (cuda.h: CUresult is an
// enum, 0 is CUDA_SUCCESS).
using CuInitFn = int (*)(unsigned int flags);
using CuDeviceGetCountFn = int (*)(int *count);
using CuGetErrorNameFn = int (*)(int error, const char **name);

std::string dlerrorText() {
  const char *e = dlerror();
  return e ? e : "unknown error";
}

// " (CUDA_ERROR_NO_DEVICE)" when the driver can name `error`, else "".
std::string cudaErrorName(void *handle, int error) {
  auto name = reinterpret_cast<CuGetErrorNameFn>(dlsym(handle, "cuGetErrorName"));
  const char *text = nullptr;
  if (name && name(error, &text) == 0 && text)
    return std::string(" (") + text + ")";
  return "";
}

// The cached result of the real probe.
struct CudaProbe {
  dynrt_status_code_t code = DYNRT_OK;
  std::string message;
};

const CudaProbe &cachedCudaProbe() {
  static CudaProbe probe;
  static std::once_flag once;
  std::call_once(once, [] {
    dynrt::StatusPtr st(dynrt::probeCudaDriver(dynrt::kCudaDriverLibrary));
    if (st) {
      probe.code = dynrt_status_code(st.get());
      probe.message = dynrt_status_message(st.get());
    }
  });
  return probe;
}

// -1: the real probe; 0 or 1: what the tests asked for.
std::atomic<int> cudaOverride{-1};

} // namespace

const char *dynrt::deviceName(int32_t device) {
  switch (device) {
  case DYNRT_DEVICE_AUTO:
    return "auto";
  case DYNRT_DEVICE_CPU:
    return "cpu";
  case DYNRT_DEVICE_CUDA:
    return "cuda";
  }
  return "unknown";
}

dynrt_status_t dynrt::probeCudaDriver(const char *library) {
  return guardExceptions([&]() -> dynrt_status_t {
    dlerror(); // clear
    void *handle = dlopen(library, RTLD_LAZY | RTLD_LOCAL);
    if (!handle)
      return makeStatus(DYNRT_UNAVAILABLE,
                        "no CUDA driver: {} cannot be loaded ({})", library,
                        dlerrorText());
    // The handle is never closed: the driver stays loaded for the kernels
    // (Halide's CUDA runtime loads it again, getting the same copy).
    auto init = reinterpret_cast<CuInitFn>(dlsym(handle, "cuInit"));
    auto count =
        reinterpret_cast<CuDeviceGetCountFn>(dlsym(handle, "cuDeviceGetCount"));
    if (!init || !count)
      return makeStatus(DYNRT_UNAVAILABLE,
                        "no CUDA driver: {} lacks {}", library,
                        !init ? "cuInit" : "cuDeviceGetCount");
    if (int error = init(0))
      return makeStatus(DYNRT_UNAVAILABLE, "cuInit failed with error {}{}",
                        error, cudaErrorName(handle, error));
    int devices = 0;
    if (int error = count(&devices))
      return makeStatus(DYNRT_UNAVAILABLE,
                        "cuDeviceGetCount failed with error {}{}", error,
                        cudaErrorName(handle, error));
    if (devices < 1)
      return makeStatus(DYNRT_UNAVAILABLE,
                        std::string("no CUDA GPU found (the driver reports "
                                    "0 devices)"));
    return nullptr;
  });
}

void dynrt::overrideCudaAvailableForTesting(int available) {
  cudaOverride.store(available < 0 ? -1 : (available ? 1 : 0));
}

extern "C" {

void dynrt_model_options_initialize(dynrt_model_options_t *options) {
  if (!options)
    return;
  options->num_threads = 0;
  options->device = DYNRT_DEVICE_AUTO;
  options->comm = nullptr;
}

dynrt_status_t dynrt_cuda_available(void) {
  return dynrt::guardExceptions([]() -> dynrt_status_t {
    switch (cudaOverride.load()) {
    case 1:
      return nullptr;
    case 0:
      return dynrt::makeStatus(DYNRT_UNAVAILABLE,
                               std::string("no CUDA GPU found (overridden "
                                           "for testing)"));
    default:
      break;
    }
    const CudaProbe &probe = cachedCudaProbe();
    if (probe.code == DYNRT_OK)
      return nullptr;
    return dynrt::makeStatus(probe.code, probe.message);
  });
}

} // extern "C"
