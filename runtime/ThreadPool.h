//===- ThreadPool.h - the kernels' parallel loops on the runtime's threads -===//
//
// Halide's own pool hands a parallel loop's tasks to whichever thread asks
// first, so the same rows of a weight matrix land on another core from one
// call to the next. The runtime installs this pool instead
// (halide_set_custom_do_par_for): a loop of E tasks on T threads gives
// thread t the contiguous block [t E / T, (t + 1) E / T), the caller being
// thread 0, every call (while t is there to run it: see below). A recurrent GEMV split in halves then reads each
// half from the L2 of the core that read it last step (docs/codegen.md), and
// any kernel's tasks meet the data the same thread touched before.
//
// Workers wait for a job spinning for a short while (kSpin, far below the
// 2 ms spin that took the CPU of a PyTorch or ONNX Runtime sharing the
// process), then sleep; while a model run is in progress (poolBeginRun)
// they keep spinning. Tasks are taken one at a time, and a thread through
// its own block takes the tasks of the other blocks that nobody has taken
// yet (a worker still waking up, or descheduled in the middle of its block;
// none at all in the child of a fork), so a loop never waits on a thread
// that is not there for more than the task it is running. A parallel loop
// reached from inside a task, or while another caller's job holds the
// pool, runs on its caller's thread.
//
//===----------------------------------------------------------------------===//

#ifndef DYNRT_THREADPOOL_H
#define DYNRT_THREADPOOL_H

#include <cstdint>

namespace dynrt {

using PoolTask = int (*)(void *userContext, int taskNumber, uint8_t *closure);

/// halide_do_par_for's contract: runs task(uc, i, closure) for i in
/// [min, min + extent), returns 0 or the first non-zero result (no task is
/// started after one has failed).
int poolDoParFor(void *userContext, PoolTask task, int min, int extent,
                 uint8_t *closure);

/// For an error handler (Halide's reports a failing kernel's message on the
/// thread that failed): on a worker running a loop's tasks, keeps `message`
/// (the loop's first) and returns true; elsewhere returns false. The kept
/// message goes to the error sink on the loop's calling thread before
/// poolDoParFor returns, so the caller sees it as if its own thread failed.
bool poolKeepWorkerError(const char *message);
void poolSetErrorSink(void (*sink)(const char *message));

/// Brackets a model run: while any run is in progress the workers poll for
/// the next loop instead of sleeping after kSpin (and sleeping ones wake at
/// the first begin), so a loop after a long serial stretch of the run (the
/// steps of a recurrent model between its parallel GEMVs) does not wait
/// for a worker to wake up. Between runs they sleep as before. PoolRun is
/// the scoped form.
void poolBeginRun();
void poolEndRun();
struct PoolRun {
  PoolRun() { poolBeginRun(); }
  ~PoolRun() { poolEndRun(); }
  PoolRun(const PoolRun &) = delete;
  PoolRun &operator=(const PoolRun &) = delete;
};

/// Threads the pool uses, the caller included (>= 1). 0 restores the
/// default: HL_NUM_THREADS, else the CPUs this process may run on.
void poolSetThreads(int threads);
int poolThreads();

} // namespace dynrt

#endif // DYNRT_THREADPOOL_H
