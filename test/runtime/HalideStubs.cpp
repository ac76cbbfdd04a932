// HalideStubs.cpp - see HalideStubs.h.
#include "HalideStubs.h"

#include <cstring>
#include <map>
#include <mutex>
#include <vector>

namespace {
std::mutex gpuMutex;
dynrt::test::FakeGpu gpu;
std::map<uint64_t, std::vector<uint8_t>> memory; // handle -> bytes
uint64_t nextHandle = 1;
halide_error_handler_t errorHandler = nullptr;
} // namespace

namespace dynrt::test {

FakeGpu &fakeGpu() { return gpu; }

void fakeGpuReset() {
  std::lock_guard<std::mutex> lock(gpuMutex);
  gpu = FakeGpu();
  memory.clear();
}

size_t fakeGpuLiveAllocations() {
  std::lock_guard<std::mutex> lock(gpuMutex);
  return memory.size();
}

int fakeCopyToDevice(halide_buffer_t *buf) {
  std::lock_guard<std::mutex> lock(gpuMutex);
  if (buf->host_dirty() && buf->device_dirty())
    return halide_error_code_host_and_device_dirty;
  if (buf->device == 0) {
    buf->device = nextHandle++;
    memory[buf->device].resize(buf->size_in_bytes());
  }
  if (buf->host_dirty()) {
    std::memcpy(memory[buf->device].data(), buf->host, buf->size_in_bytes());
    buf->set_host_dirty(false);
  }
  return 0;
}

void *fakeDeviceData(const halide_buffer_t *buf) {
  std::lock_guard<std::mutex> lock(gpuMutex);
  auto it = memory.find(buf->device);
  return it == memory.end() ? nullptr : it->second.data();
}

void reportHalideError(const char *message) {
  if (errorHandler)
    errorHandler(nullptr, message);
}

} // namespace dynrt::test

// The Halide runtime functions Model.cpp calls.
extern "C" {

halide_error_handler_t halide_set_error_handler(halide_error_handler_t handler) {
  halide_error_handler_t old = errorHandler;
  errorHandler = handler;
  return old;
}

int halide_set_num_threads(int n) { return n; }

halide_do_par_for_t halide_set_custom_do_par_for(halide_do_par_for_t f) {
  return f;
}

int halide_copy_to_host(void *, halide_buffer_t *buf) {
  std::unique_lock<std::mutex> lock(gpuMutex);
  ++gpu.copyToHostCalls;
  if (int error = gpu.failCopyToHost) {
    gpu.failCopyToHost = 0;
    std::string message = gpu.failureMessage;
    lock.unlock();
    dynrt::test::reportHalideError(message.c_str());
    return error;
  }
  if (!buf->device_dirty())
    return 0;
  auto it = memory.find(buf->device);
  if (it == memory.end())
    return halide_error_code_copy_to_host_failed;
  std::memcpy(buf->host, it->second.data(), buf->size_in_bytes());
  buf->set_device_dirty(false);
  return 0;
}

int halide_device_free(void *, halide_buffer_t *buf) {
  std::unique_lock<std::mutex> lock(gpuMutex);
  ++gpu.deviceFreeCalls;
  if (int error = gpu.failDeviceFree) {
    gpu.failDeviceFree = 0;
    std::string message = gpu.failureMessage;
    lock.unlock();
    dynrt::test::reportHalideError(message.c_str());
    return error;
  }
  memory.erase(buf->device);
  buf->device = 0;
  buf->device_interface = nullptr;
  buf->set_device_dirty(false);
  return 0;
}

} // extern "C"
