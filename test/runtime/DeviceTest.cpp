//===- DeviceTest.cpp - devices: options and the CUDA driver probe --------===//
//
// dynrt_model_options_initialize, dynrt_cuda_available on this machine, and
// dynrt::probeCudaDriver on stand-ins for libcuda.so.1 (FakeCudaDriver.c):
// each way the probe can fail, and success.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/Device.h"
#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

using dynrt::test::failsWith;
using dynrt::test::succeeds;

TEST(Device, OptionsDefaultToAuto) {
  dynrt_model_options_t options;
  options.num_threads = 7;
  options.device = DYNRT_DEVICE_CUDA;
  dynrt_model_options_initialize(&options);
  EXPECT_EQ(options.num_threads, 0);
  EXPECT_EQ(options.device, DYNRT_DEVICE_AUTO);
  dynrt_model_options_initialize(nullptr); // ignored
}

TEST(Device, Names) {
  EXPECT_STREQ(dynrt::deviceName(DYNRT_DEVICE_AUTO), "auto");
  EXPECT_STREQ(dynrt::deviceName(DYNRT_DEVICE_CPU), "cpu");
  EXPECT_STREQ(dynrt::deviceName(DYNRT_DEVICE_CUDA), "cuda");
  EXPECT_STREQ(dynrt::deviceName(7), "unknown");
}

// Whatever this machine has, the answer is stable and, when negative, an
// UNAVAILABLE status with one of the probe's messages.
TEST(Device, CudaAvailableOnThisMachine) {
  dynrt::StatusPtr first(dynrt_cuda_available());
  dynrt::StatusPtr second(dynrt_cuda_available());
  ASSERT_EQ(first == nullptr, second == nullptr);
  if (!first) {
    std::printf("this machine has a usable CUDA GPU\n");
    return;
  }
  EXPECT_EQ(dynrt_status_code(first.get()), DYNRT_UNAVAILABLE);
  std::string message = dynrt_status_message(first.get());
  EXPECT_EQ(message, dynrt_status_message(second.get())); // cached
  bool known = message.rfind("no CUDA driver: libcuda.so.1", 0) == 0 ||
               message.rfind("cuInit failed with error ", 0) == 0 ||
               message.rfind("cuDeviceGetCount failed with error ", 0) == 0 ||
               message.rfind("no CUDA GPU found", 0) == 0;
  EXPECT_TRUE(known) << message;
  std::printf("no CUDA here: %s\n", message.c_str());
}

TEST(Device, OverrideForTesting) {
  dynrt::overrideCudaAvailableForTesting(1);
  EXPECT_TRUE(succeeds(dynrt_cuda_available()));
  dynrt::overrideCudaAvailableForTesting(0);
  EXPECT_TRUE(failsWith(dynrt_cuda_available(), DYNRT_UNAVAILABLE,
                        {"no CUDA GPU found"}));
  dynrt::overrideCudaAvailableForTesting(-1);
  dynrt::StatusPtr real(dynrt_cuda_available());
  if (real) {
    EXPECT_EQ(dynrt_status_code(real.get()), DYNRT_UNAVAILABLE);
  }
}

TEST(CudaProbe, NoDriverLibrary) {
  EXPECT_TRUE(failsWith(
      dynrt::probeCudaDriver("/nonexistent/dynrt/libcuda.so.1"),
      DYNRT_UNAVAILABLE,
      {"no CUDA driver: /nonexistent/dynrt/libcuda.so.1 cannot be loaded"}));
}

TEST(CudaProbe, DriverWithOneGpu) {
  EXPECT_TRUE(succeeds(dynrt::probeCudaDriver(DYNRT_FAKE_CUDA_OK)));
}

TEST(CudaProbe, CuInitFails) {
  EXPECT_TRUE(failsWith(dynrt::probeCudaDriver(DYNRT_FAKE_CUDA_INIT_FAILS),
                        DYNRT_UNAVAILABLE,
                        {"cuInit failed with error 100 (CUDA_ERROR_NO_DEVICE)"}));
}

TEST(CudaProbe, NoGpu) {
  EXPECT_TRUE(failsWith(dynrt::probeCudaDriver(DYNRT_FAKE_CUDA_NO_GPU),
                        DYNRT_UNAVAILABLE, {"no CUDA GPU found"}));
}

TEST(CudaProbe, MissingEntryPoint) {
  EXPECT_TRUE(failsWith(dynrt::probeCudaDriver(DYNRT_FAKE_CUDA_NO_COUNT),
                        DYNRT_UNAVAILABLE,
                        {"no CUDA driver", "lacks cuDeviceGetCount"}));
}

} // namespace
