//===- CudaModelTest.cpp - CUDA models through the model C API ------------===//
//
// Hand-built descriptors of a two-kernel model, y = 2 x + 1 through a
// temporary in the arena, whose kernels are hand-written stand-ins for
// Halide pipelines: on a CUDA model they work on the fake GPU of
// HalideStubs.cpp as a Halide CUDA pipeline would on a real one. Covers the
// device checks of dynrt_model_create and the host-device copies of
// dynrt_invoke_kernel: inputs uploaded, outputs brought back, device memory
// freed after every call, also when something fails. On a machine without
// a GPU the CUDA models are created with the probe overridden; the real
// probe has its own tests (and the GPU one is skipped without a GPU).
//
//===----------------------------------------------------------------------===//

#include "HalideStubs.h"
#include "TestUtil.h"

#include "runtime/Device.h"
#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

namespace {

using dynrt::test::failsWith;
using dynrt::test::fakeCopyToDevice;
using dynrt::test::fakeDeviceData;
using dynrt::test::fakeGpu;
using dynrt::test::fakeGpuLiveAllocations;
using dynrt::test::fakeGpuReset;
using dynrt::test::reportHalideError;
using dynrt::test::succeeds;

constexpr int N = 4;

// What the kernels saw when they were called.
struct KernelLog {
  std::vector<uint64_t> flags;   // of every argument, in call order
  std::vector<uint64_t> devices; // the same for `device`
  int calls = 0;
};
KernelLog kernelLog;

void logArgs(void **args, int count) {
  ++kernelLog.calls;
  for (int a = 0; a < count; ++a) {
    auto *b = static_cast<halide_buffer_t *>(args[a]);
    kernelLog.flags.push_back(b->flags);
    kernelLog.devices.push_back(b->device);
  }
}

// What the CUDA kernels do to their buffers: what a Halide CUDA pipeline
// does, with the computation `op` run "on the GPU". `failAfterUpload`
// makes it fail like a kernel launch would, leaving device memory behind.
template <typename Op>
int cudaKernel(void **args, Op op, bool failAfterUpload = false) {
  logArgs(args, 2);
  auto *in = static_cast<halide_buffer_t *>(args[0]);
  auto *out = static_cast<halide_buffer_t *>(args[1]);
  if (int error = fakeCopyToDevice(in))
    return error;
  if (int error = fakeCopyToDevice(out))
    return error;
  if (failAfterUpload) {
    reportHalideError("CUDA error: CUDA_ERROR_LAUNCH_FAILED cuLaunchKernel "
                      "failed");
    return halide_error_code_device_run_failed;
  }
  const auto *x = static_cast<const float *>(fakeDeviceData(in));
  auto *y = static_cast<float *>(fakeDeviceData(out));
  for (int i = 0; i < N; ++i)
    y[i] = op(x[i]);
  out->set_device_dirty(true);
  return 0;
}

int cudaDouble(void **args) {
  return cudaKernel(args, [](float v) { return 2 * v; });
}
int cudaAddOne(void **args) {
  return cudaKernel(args, [](float v) { return v + 1; });
}
int cudaAddOneFails(void **args) {
  return cudaKernel(args, [](float v) { return v + 1; }, true);
}

// The CPU versions work on the host memory.
template <typename Op> int cpuKernel(void **args, Op op) {
  logArgs(args, 2);
  auto *in = static_cast<halide_buffer_t *>(args[0]);
  auto *out = static_cast<halide_buffer_t *>(args[1]);
  const auto *x = reinterpret_cast<const float *>(in->host);
  auto *y = reinterpret_cast<float *>(out->host);
  for (int i = 0; i < N; ++i)
    y[i] = op(x[i]);
  return 0;
}
int cpuDouble(void **args) {
  return cpuKernel(args, [](float v) { return 2 * v; });
}
int cpuAddOne(void **args) {
  return cpuKernel(args, [](float v) { return v + 1; });
}

// Host code: t = kernel0(x) in the arena, y = kernel1(t).
int32_t entry(void *const *inputs, void *const *outputs, void *const *,
              void *const *, uint8_t *arena, void *ctx) {
  void *first[] = {inputs[0], arena};
  if (int32_t r = dynrt_invoke_kernel(ctx, 0, first))
    return r;
  void *second[] = {arena, outputs[0]};
  return dynrt_invoke_kernel(ctx, 1, second);
}

dynrt_param_spec_t vec(const char *name) {
  return dynrt::test::spec(name, DYNRT_F32, {N});
}

struct TwoKernelModel {
  TwoKernelModel(int32_t device, dynrt_kernel_fn_t k0, dynrt_kernel_fn_t k1) {
    input = vec("x");
    output = vec("y");
    args = {vec("a"), vec("b")};
    kernels[0] = {};
    kernels[0].fn = k0;
    kernels[0].name = "double";
    kernels[0].num_args = 2;
    kernels[0].args = args.data();
    kernels[1] = kernels[0];
    kernels[1].fn = k1;
    kernels[1].name = "add_one";
    desc = {};
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "two_kernels";
    desc.num_inputs = 1;
    desc.inputs = &input;
    desc.num_outputs = 1;
    desc.outputs = &output;
    desc.num_kernels = 2;
    desc.kernels = kernels.data();
    desc.arena_bytes = N * sizeof(float);
    desc.entry = entry;
    desc.exit_layer_output = -1;
    desc.device = device;
  }

  // Creates the model with options->device = `device`.
  dynrt_status_t create(dynrt_model_t **model,
                        int32_t device = DYNRT_DEVICE_AUTO) {
    dynrt_model_options_t options;
    dynrt_model_options_initialize(&options);
    options.device = device;
    return dynrt_model_create(&desc, &options, nullptr, model);
  }

  dynrt_param_spec_t input, output;
  std::array<dynrt_param_spec_t, 2> args;
  std::array<dynrt_kernel_desc_t, 2> kernels;
  dynrt_model_desc_t desc;
};

struct CudaModelTest : ::testing::Test {
  void SetUp() override {
    fakeGpuReset();
    kernelLog = KernelLog();
  }
  void TearDown() override {
    dynrt::overrideCudaAvailableForTesting(-1);
    fakeGpuReset();
  }
};

alignas(64) const float kInput[N] = {1.0f, -2.0f, 0.5f, 3.0f};

// Runs `model` on kInput; y receives the output.
dynrt_status_t run(dynrt_model_t *model, std::array<float, N> &y) {
  alignas(64) float out[N] = {-7, -7, -7, -7};
  const void *inputs[] = {kInput};
  void *outputs[] = {out};
  dynrt_status_t st = dynrt_model_run(model, inputs, outputs);
  std::copy(out, out + N, y.begin());
  return st;
}

TEST_F(CudaModelTest, BadDeviceValues) {
  TwoKernelModel m(DYNRT_DEVICE_CPU, cpuDouble, cpuAddOne);
  dynrt_model_t *model = nullptr;
  for (int32_t device : {2, -2, 99})
    EXPECT_TRUE(failsWith(m.create(&model, device), DYNRT_INVALID_ARGUMENT,
                          {"options->device", std::to_string(device)}));
  EXPECT_EQ(model, nullptr);
  for (int32_t device : {int32_t{DYNRT_DEVICE_AUTO}, 2, 5}) {
    m.desc.device = device;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"model 'two_kernels' has device " +
                           std::to_string(device)}));
  }
}

TEST_F(CudaModelTest, CpuModelRejectsCuda) {
  TwoKernelModel m(DYNRT_DEVICE_CPU, cpuDouble, cpuAddOne);
  dynrt_model_t *model = nullptr;
  EXPECT_TRUE(failsWith(m.create(&model, DYNRT_DEVICE_CUDA),
                        DYNRT_FAILED_PRECONDITION,
                        {"model 'two_kernels' was compiled for cpu; it cannot "
                         "run on cuda (recompile with --target=cuda)"}));
  EXPECT_EQ(model, nullptr);
}

TEST_F(CudaModelTest, CudaModelRejectsCpu) {
  // Even where CUDA works: the device check comes first.
  dynrt::overrideCudaAvailableForTesting(1);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  dynrt_model_t *model = nullptr;
  EXPECT_TRUE(failsWith(m.create(&model, DYNRT_DEVICE_CPU),
                        DYNRT_FAILED_PRECONDITION,
                        {"model 'two_kernels' was compiled for cuda; it cannot "
                         "run on cpu (recompile with --target=host)"}));
  EXPECT_EQ(model, nullptr);
}

// The descriptor is checked before CUDA is probed.
TEST_F(CudaModelTest, DescriptorCheckedBeforeTheProbe) {
  dynrt::overrideCudaAvailableForTesting(0);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, nullptr, cudaAddOne);
  dynrt_model_t *model = nullptr;
  EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                        {"kernel 'double' has no entry point"}));
}

// With the real probe: where CUDA cannot be used, a CUDA model fails to
// load with the probe's message.
TEST_F(CudaModelTest, CudaModelWithoutGpuIsUnavailable) {
  dynrt::StatusPtr cuda(dynrt_cuda_available());
  if (!cuda)
    GTEST_SKIP() << "skipped: this machine has a GPU";
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  for (int32_t device : {DYNRT_DEVICE_AUTO, DYNRT_DEVICE_CUDA}) {
    dynrt_model_t *model = nullptr;
    EXPECT_TRUE(failsWith(m.create(&model, device), DYNRT_UNAVAILABLE,
                          {"model 'two_kernels' needs CUDA: ",
                           dynrt_status_message(cuda.get())}));
    EXPECT_EQ(model, nullptr);
  }
  // dynrt_model_create_from_file too (no weights needed).
  dynrt_model_t *model = nullptr;
  EXPECT_TRUE(failsWith(
      dynrt_model_create_from_file(&m.desc, nullptr, nullptr, &model),
      DYNRT_UNAVAILABLE, {"needs CUDA"}));
  EXPECT_EQ(kernelLog.calls, 0);
}

TEST_F(CudaModelTest, CudaModelWhenTheProbeFails) {
  dynrt::overrideCudaAvailableForTesting(0);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  dynrt_model_t *model = nullptr;
  EXPECT_TRUE(failsWith(m.create(&model), DYNRT_UNAVAILABLE,
                        {"model 'two_kernels' needs CUDA: no CUDA GPU found"}));
  EXPECT_EQ(model, nullptr);
}

// CPU models are untouched: no dirty bits, no device calls.
TEST_F(CudaModelTest, CpuModelRunsOnTheHost) {
  TwoKernelModel m(DYNRT_DEVICE_CPU, cpuDouble, cpuAddOne);
  for (int32_t device : {DYNRT_DEVICE_AUTO, DYNRT_DEVICE_CPU}) {
    dynrt_model_t *model = nullptr;
    ASSERT_TRUE(succeeds(m.create(&model, device)));
    std::array<float, N> y;
    EXPECT_TRUE(succeeds(run(model, y)));
    for (int i = 0; i < N; ++i)
      EXPECT_EQ(y[i], 2 * kInput[i] + 1);
    dynrt_model_destroy(model);
  }
  for (uint64_t flags : kernelLog.flags)
    EXPECT_EQ(flags, 0u);
  EXPECT_EQ(fakeGpu().copyToHostCalls, 0);
  EXPECT_EQ(fakeGpu().deviceFreeCalls, 0);
}

// Every buffer reaches the kernel host-dirty and without device memory; the
// first kernel's output comes back to the host before the second reads it;
// nothing stays on the device.
TEST_F(CudaModelTest, RunsThroughTheHost) {
  dynrt::overrideCudaAvailableForTesting(1);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  for (int r = 0; r < 3; ++r) {
    std::array<float, N> y;
    ASSERT_TRUE(succeeds(run(model, y)));
    for (int i = 0; i < N; ++i)
      EXPECT_EQ(y[i], 2 * kInput[i] + 1) << "run " << r << ", element " << i;
    EXPECT_EQ(fakeGpuLiveAllocations(), 0u);
  }
  EXPECT_EQ(kernelLog.calls, 6);
  for (size_t i = 0; i < kernelLog.flags.size(); ++i) {
    EXPECT_EQ(kernelLog.flags[i], uint64_t{halide_buffer_flag_host_dirty});
    EXPECT_EQ(kernelLog.devices[i], 0u);
  }
  // One copy back (the output) and two frees per call.
  EXPECT_EQ(fakeGpu().copyToHostCalls, 6);
  EXPECT_EQ(fakeGpu().deviceFreeCalls, 12);
  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(model, &stats)));
  EXPECT_EQ(stats.kernel_calls, 6u);
  dynrt_model_destroy(model);
}

// A kernel that fails after uploading: the run fails with its message, its
// device memory is freed and nothing is copied back.
TEST_F(CudaModelTest, FailedKernelFreesItsDeviceMemory) {
  dynrt::overrideCudaAvailableForTesting(1);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOneFails);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  std::array<float, N> y;
  EXPECT_TRUE(failsWith(run(model, y), DYNRT_INTERNAL,
                        {"kernel 'add_one' failed", "CUDA_ERROR_LAUNCH_FAILED"}));
  EXPECT_EQ(fakeGpuLiveAllocations(), 0u);
  EXPECT_EQ(fakeGpu().copyToHostCalls, 1); // the first kernel's output
  EXPECT_EQ(fakeGpu().deviceFreeCalls, 4);
  // The model still works.
  m.kernels[1].fn = cudaAddOne;
  EXPECT_TRUE(succeeds(run(model, y)));
  EXPECT_EQ(y[3], 7.0f);
  dynrt_model_destroy(model);
}

// The copy back fails: the run fails, naming the kernel, the argument and
// the runtime's message, and all device memory is still freed.
TEST_F(CudaModelTest, FailedCopyBackFailsTheRun) {
  dynrt::overrideCudaAvailableForTesting(1);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  fakeGpu().failCopyToHost = halide_error_code_copy_to_host_failed;
  fakeGpu().failureMessage = "CUDA error: CUDA_ERROR_ILLEGAL_ADDRESS cuMemcpyDtoH";
  std::array<float, N> y;
  EXPECT_TRUE(failsWith(run(model, y), DYNRT_INTERNAL,
                        {"kernel 'double' failed (-14)",
                         "copying to the host of argument 1 failed with Halide "
                         "error -14: CUDA error: CUDA_ERROR_ILLEGAL_ADDRESS"}));
  EXPECT_EQ(kernelLog.calls, 1); // the run stopped there
  EXPECT_EQ(fakeGpu().deviceFreeCalls, 2);
  EXPECT_EQ(fakeGpuLiveAllocations(), 0u);
  dynrt_model_destroy(model);
}

// Freeing fails for the first buffer: the run fails, and the other buffer
// is still freed.
TEST_F(CudaModelTest, FailedFreeFailsTheRun) {
  dynrt::overrideCudaAvailableForTesting(1);
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  fakeGpu().failDeviceFree = halide_error_code_device_free_failed;
  fakeGpu().failureMessage = "CUDA error: cuMemFree failed";
  std::array<float, N> y;
  EXPECT_TRUE(failsWith(run(model, y), DYNRT_INTERNAL,
                        {"kernel 'double' failed",
                         "freeing the device memory of argument 0 failed",
                         "cuMemFree failed"}));
  EXPECT_EQ(fakeGpu().deviceFreeCalls, 2);
  EXPECT_EQ(fakeGpuLiveAllocations(), 1u); // the one the fake refused
  dynrt_model_destroy(model);
}

// On a machine with a GPU the real probe lets the CUDA model load (its
// kernels still run on the fake GPU of the stubs).
TEST_F(CudaModelTest, LoadsWithTheRealProbe) {
  if (dynrt::StatusPtr st{dynrt_cuda_available()})
    GTEST_SKIP() << "skipped: no GPU (" << dynrt_status_message(st.get())
                 << ")";
  TwoKernelModel m(DYNRT_DEVICE_CUDA, cudaDouble, cudaAddOne);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model, DYNRT_DEVICE_CUDA)));
  std::array<float, N> y;
  EXPECT_TRUE(succeeds(run(model, y)));
  EXPECT_EQ(y[0], 3.0f);
  EXPECT_EQ(fakeGpuLiveAllocations(), 0u);
  dynrt_model_destroy(model);
}

} // namespace
