//===- HostCpus.h - the CPUs this process may run on ------------*- C++ -*-===//
//
// The CPUs in this process's affinity mask (taskset, cpusets), else the
// machine's: the runtime's pool starts that many threads by default
// (runtime/ThreadPool.cpp), and the compiler plans that many tasks for
// --target=host (codegen/HalideTarget.cpp). One count for both.
//
//===----------------------------------------------------------------------===//

#ifndef DYNRT_HOST_CPUS_H
#define DYNRT_HOST_CPUS_H

#include <sched.h>

#include <algorithm>
#include <thread>

namespace dynrt {

inline int affinityCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0)
    if (int n = CPU_COUNT(&set); n > 0)
      return n;
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

} // namespace dynrt

#endif // DYNRT_HOST_CPUS_H
