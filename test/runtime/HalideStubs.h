// HalideStubs.h - the Halide runtime functions libdynrt calls, stubbed for
// dynrt-tests (a generated library brings the real ones), and a fake GPU
// that hand-written "CUDA kernels" use the way a Halide CUDA pipeline uses
// the real one: the runtime's host-device copies (dynrt_invoke_kernel for
// CUDA models) can be tested on machines without a GPU.
#ifndef DYNRT_TEST_HALIDESTUBS_H
#define DYNRT_TEST_HALIDESTUBS_H

#include <HalideRuntime.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace dynrt::test {

// What the stubs saw and what they are told to do; reset by fakeGpuReset.
struct FakeGpu {
  int copyToHostCalls = 0;
  int deviceFreeCalls = 0;
  // Non-zero: the next halide_copy_to_host (halide_device_free) fails with
  // this code, reporting `failureMessage` through the error handler, and
  // leaves the buffer as it was.
  int failCopyToHost = 0;
  int failDeviceFree = 0;
  std::string failureMessage;
};
FakeGpu &fakeGpu();

// Frees all fake device memory and clears the counters.
void fakeGpuReset();

// Fake device allocations not freed yet.
size_t fakeGpuLiveAllocations();

// What a Halide CUDA pipeline does before touching `buf` on the GPU
// (halide_copy_to_device): fails if both host and device are dirty; gives the
// buffer fake device memory if it has none; copies the host data there when
// host_dirty, clearing it.
int fakeCopyToDevice(halide_buffer_t *buf);

// The fake device memory of `buf` (after fakeCopyToDevice).
void *fakeDeviceData(const halide_buffer_t *buf);

// Reports `message` through the error handler libdynrt installed, as the
// Halide runtime does.
void reportHalideError(const char *message);

} // namespace dynrt::test

#endif // DYNRT_TEST_HALIDESTUBS_H
