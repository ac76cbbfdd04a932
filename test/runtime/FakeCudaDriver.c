/* FakeCudaDriver.c - stand-ins for the CUDA driver (libcuda.so.1) that
 * dynrt's probe (dynrt::probeCudaDriver) loads in DeviceTest.cpp: built
 * several times, with FAKE_INIT_RESULT (cuInit's result), FAKE_DEVICE_COUNT
 * and FAKE_NO_DEVICE_COUNT (leave cuDeviceGetCount out). */
#ifndef FAKE_INIT_RESULT
#define FAKE_INIT_RESULT 0
#endif
#ifndef FAKE_DEVICE_COUNT
#define FAKE_DEVICE_COUNT 1
#endif

int cuInit(unsigned int flags) {
  (void)flags;
  return FAKE_INIT_RESULT;
}

#ifndef FAKE_NO_DEVICE_COUNT
int cuDeviceGetCount(int *count) {
  *count = FAKE_DEVICE_COUNT;
  return 0;
}
#endif

int cuGetErrorName(int error, const char **name) {
  if (error != 100)
    return 1; /* CUDA_ERROR_INVALID_VALUE */
  *name = "CUDA_ERROR_NO_DEVICE";
  return 0;
}
