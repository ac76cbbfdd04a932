// Device.h - the devices kernels run on (dynrt_device_t): names, the check
// that a CUDA driver and GPU are usable, for Model.cpp and the tests.
//
// Device.cpp uses neither Halide nor CUDA: the CUDA driver is probed with
// dlopen, so that libdynrt (and every library embedding it) loads and runs
// CPU models on machines without CUDA.
#ifndef DYNRT_DEVICE_H
#define DYNRT_DEVICE_H

#include "runtime/dynrt.h"

#include <cstdint>

namespace dynrt {

// "cpu", "cuda", "auto"; "unknown" for other values.
const char *deviceName(int32_t device);

// The shared object dynrt_cuda_available loads.
constexpr const char *kCudaDriverLibrary = "libcuda.so.1";

// Probes the CUDA driver in shared object `library` now, without caching:
// loads it (RTLD_LAZY | RTLD_LOCAL), looks up cuInit and cuDeviceGetCount,
// calls cuInit(0) and counts the GPUs. NULL when at least one GPU is found,
// else an UNAVAILABLE status saying what is missing. The library stays
// loaded. dynrt_cuda_available is this for kCudaDriverLibrary, once per
// process.
dynrt_status_t probeCudaDriver(const char *library);

// Tests only: makes dynrt_cuda_available (and so dynrt_model_create of a
// CUDA model) answer as if a GPU were present (1) or absent (0); -1 goes back
// to the real probe. Not thread-safe with concurrent model creation.
void overrideCudaAvailableForTesting(int available);

} // namespace dynrt

#endif // DYNRT_DEVICE_H
