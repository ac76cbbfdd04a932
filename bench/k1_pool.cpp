//===- k1_pool.cpp - the K1 kernels on the runtime's thread pool ----------===//
//
// A library dyncc compiles runs its kernels' parallel loops on libdynrt's
// pool (runtime/ThreadPool.h), not Halide's; K1 times them the same way
// unless bench/k1_torch.py is given --halide-pool.
//
//===----------------------------------------------------------------------===//

#include "runtime/ThreadPool.h"

#include <HalideRuntime.h>

extern "C" int dyncc_k1_use_runtime_pool(int threads) {
  halide_set_custom_do_par_for(dynrt::poolDoParFor);
  dynrt::poolSetThreads(threads);
  return 0;
}
