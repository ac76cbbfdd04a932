//===- ThreadPool.cpp - the kernels' parallel loops on the runtime's threads ===//
//
// See ThreadPool.h. One job at a time: the caller fills each block's slot
// (the job's sequence number and the block's task count), publishes a new
// generation word (sequence << 16 | number of blocks) under the sleep mutex,
// wakes the sleepers, runs the tasks of block 0, then takes whatever tasks
// of the other blocks nobody has taken yet (a worker still asleep,
// descheduled, or absent: after a fork the child has none), and waits for
// the tasks being run. Workers do the same from their own block. A task is
// taken by decrementing its block's count with a compare-and-swap that
// also checks the sequence number, so a worker that wakes up late for a
// finished job takes nothing and never reads the job; the caller publishes
// the next job only once every task has run, so whoever takes a task reads
// a whole, current job.
//
//===----------------------------------------------------------------------===//

#include "runtime/ThreadPool.h"
#include "runtime/HostCpus.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DYNRT_PAUSE() _mm_pause()
#else
#define DYNRT_PAUSE() std::this_thread::yield()
#endif

namespace dynrt {
namespace {

// How long an idle worker polls for the next job before it sleeps: long
// enough for the gaps between the kernels of one run, short enough not to
// take a core from whatever else runs in the process.
constexpr auto kSpin = std::chrono::microseconds(50);

// True on a thread while it runs pool tasks: a parallel loop inside a task
// runs serially.
thread_local bool inTask = false;
// True on the pool's workers.
thread_local bool onWorker = false;

std::atomic<void (*)(const char *)> errorSink{nullptr};

int defaultThreads() {
  if (const char *s = std::getenv("HL_NUM_THREADS"))
    if (int n = std::atoi(s); n > 0)
      return n;
  return affinityCpus();
}

class Pool;
Pool &pool();

class Pool {
public:
  Pool() { pthread_atfork(nullptr, nullptr, [] { pool().afterFork(); }); }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(sleepMutex);
      stop = true;
      stopping.store(true, std::memory_order_relaxed);
    }
    wake.notify_all();
    for (std::thread &t : workers)
      t.join();
  }

  void setThreads(int n) {
    threads.store(n > 0 ? n : defaultThreads(), std::memory_order_relaxed);
  }
  int numThreads() const { return threads.load(std::memory_order_relaxed); }

  /// A model run begins (endRun: ends): until the last one ends, idle
  /// workers poll instead of sleeping, and sleeping ones wake up now, so
  /// that the run's next parallel loop finds them awake however long the
  /// serial stretch before it (the skip steps of a recurrent model).
  void beginRun() {
    if (activeRuns.fetch_add(1, std::memory_order_acq_rel) == 0) {
      { std::lock_guard<std::mutex> lock(sleepMutex); }
      wake.notify_all();
    }
  }
  void endRun() { activeRuns.fetch_sub(1, std::memory_order_acq_rel); }

  int run(void *uc, PoolTask task, int min, int extent, uint8_t *closure) {
    if (extent <= 0)
      return 0;
    const int blocks = std::min({numThreads(), extent, kMaxBlocks});
    if (blocks <= 1 || inTask || !jobMutex.try_lock())
      return serial(uc, task, min, extent, closure);
    std::lock_guard<std::mutex> job(jobMutex, std::adopt_lock);
    try {
      while ((int)workers.size() < blocks - 1)
        // It waits for the generation after the current one, even if it
        // starts only after the job below is published.
        workers.emplace_back(
            [this, i = (int)workers.size() + 1,
             g = generation.load(std::memory_order_relaxed)] { work(i, g); });
    } catch (...) { // no thread to be had: run on this one
      if (workers.size() < (size_t)blocks - 1)
        return serial(uc, task, min, extent, closure);
    }
    cur = {uc, task, min, extent, closure, blocks};
    workerError.clear();
    workerErrorKept = false;
    result.store(0, std::memory_order_relaxed);
    remaining.store(extent, std::memory_order_relaxed);
    const uint64_t sequence = (seq + 1) & 0xffffffffu;
    for (int t = 0; t < blocks; ++t)
      slots[t].word.store(sequence << 32 | (uint64_t)(blockEnd(cur, t) -
                                                      blockEnd(cur, t - 1)),
                          std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(sleepMutex);
      seq = sequence;
      generation.store(seq << 16 | (uint64_t)blocks, std::memory_order_release);
    }
    wake.notify_all();
    for (int t = 0; t < blocks; ++t)
      drain(t, sequence);
    for (int spins = 0; remaining.load(std::memory_order_acquire) > 0; ++spins) {
      if (spins < 4096)
        DYNRT_PAUSE();
      else
        std::this_thread::yield();
    }
    int r = result.load(std::memory_order_relaxed);
    if (r != 0) {
      std::lock_guard<std::mutex> lock(errorMutex);
      if (workerErrorKept)
        if (auto sink = errorSink.load(std::memory_order_relaxed))
          sink(workerError.c_str());
    }
    return r;
  }

  bool keepWorkerError(const char *message) {
    if (!onWorker || !inTask)
      return false;
    std::lock_guard<std::mutex> lock(errorMutex);
    if (!workerErrorKept) {
      try {
        workerError = message ? message : "";
      } catch (...) { // out of memory: the code alone
        workerError.clear();
      }
      workerErrorKept = true;
    }
    return true;
  }

  // In the child of a fork: the workers and whatever held the locks are
  // gone. The threads' handles are dropped unjoined (leaked), the locks
  // made anew; the next loop starts new workers.
  void afterFork() {
    new std::vector<std::thread>(std::move(workers));
    workers.clear();
    new (&jobMutex) std::mutex;
    new (&sleepMutex) std::mutex;
    new (&errorMutex) std::mutex;
    new (&wake) std::condition_variable;
    // Runs in progress on other threads do not exist in the child.
    activeRuns.store(0, std::memory_order_relaxed);
  }

private:
  static constexpr int kMaxBlocks = 1024;

  struct Job {
    void *uc = nullptr;
    PoolTask task = nullptr;
    int min = 0, extent = 0;
    uint8_t *closure = nullptr;
    int blocks = 1;
  };

  /// One past the last task of block t (-1: the first task of block 0).
  static int blockEnd(const Job &j, int t) {
    return j.min + (int)((int64_t)j.extent * (t + 1) / j.blocks);
  }

  /// Tasks [begin, end) on this thread, up to the first that fails; returns
  /// its result or 0.
  static int runTasks(void *uc, PoolTask task, uint8_t *closure, int begin,
                      int end) {
    bool outer = inTask;
    inTask = true;
    int r = 0;
    for (int i = begin; i < end && r == 0; ++i)
      r = task(uc, i, closure);
    inTask = outer;
    return r;
  }

  int serial(void *uc, PoolTask task, int min, int extent, uint8_t *closure) {
    return runTasks(uc, task, closure, min, min + extent);
  }

  /// Takes and runs the tasks of block t of job `sequence`, first to last,
  /// until none is left. A task taken after a task of the job failed is
  /// counted, not run.
  void drain(int t, uint64_t sequence) {
    std::atomic<uint64_t> &word = slots[t].word;
    uint64_t v = word.load(std::memory_order_acquire);
    for (;;) {
      if (v >> 32 != sequence || (uint32_t)v == 0)
        return;
      if (!word.compare_exchange_weak(v, v - 1, std::memory_order_acq_rel))
        continue;
      // Taken: the job cannot end before this task does, so cur is stable.
      int i = blockEnd(cur, t) - (int)(uint32_t)v;
      if (result.load(std::memory_order_relaxed) == 0)
        if (int r = runTasks(cur.uc, cur.task, cur.closure, i, i + 1)) {
          int zero = 0;
          result.compare_exchange_strong(zero, r, std::memory_order_relaxed);
        }
      remaining.fetch_sub(1, std::memory_order_release);
      v = word.load(std::memory_order_acquire);
    }
  }

  void work(int index, uint64_t seen) {
    onWorker = true;
    for (;;) {
      uint64_t g;
      auto start = std::chrono::steady_clock::now();
      bool inRun = false; // the spin window starts again when runs end
      while ((g = generation.load(std::memory_order_acquire)) == seen) {
        if (activeRuns.load(std::memory_order_relaxed) > 0 &&
            !stopping.load(std::memory_order_relaxed)) {
          inRun = true;
          DYNRT_PAUSE();
          continue;
        }
        if (inRun) {
          inRun = false;
          start = std::chrono::steady_clock::now();
        }
        if (std::chrono::steady_clock::now() - start < kSpin) {
          DYNRT_PAUSE();
          continue;
        }
        std::unique_lock<std::mutex> lock(sleepMutex);
        wake.wait(lock, [&] {
          return stop ||
                 generation.load(std::memory_order_acquire) != seen ||
                 activeRuns.load(std::memory_order_relaxed) > 0;
        });
        if (stop)
          return;
      }
      seen = g;
      // Its own block, then what is left of the others (a late or
      // descheduled thread's tasks).
      const int blocks = (int)(g & 0xffff);
      if (index < blocks)
        for (int k = 0; k < blocks; ++k)
          drain((index + k) % blocks, (g >> 16) & 0xffffffffu);
    }
  }

  std::atomic<int> threads{defaultThreads()};
  std::mutex jobMutex; // one job at a time
  std::vector<std::thread> workers; // under jobMutex
  Job cur;                          // written under jobMutex, before generation
  std::atomic<int> result{0};
  std::atomic<int> remaining{0}; // tasks of the job not finished yet
  // Per block: the sequence number of its job << 32 | tasks not taken yet
  // (a cache line each: the threads take tasks of different blocks).
  struct alignas(64) Slot {
    std::atomic<uint64_t> word{0};
  };
  Slot slots[kMaxBlocks];
  std::mutex errorMutex; // the message of a task failing on a worker
  std::string workerError;
  bool workerErrorKept = false;
  std::mutex sleepMutex;
  std::condition_variable wake;
  uint64_t seq = 0; // under sleepMutex
  std::atomic<uint64_t> generation{0};
  std::atomic<int> activeRuns{0}; // model runs in progress (beginRun)
  bool stop = false; // under sleepMutex
  std::atomic<bool> stopping{false}; // stop, for the workers polling in a run
};

Pool &pool() {
  // Destroyed (its workers joined) at exit or when the library holding this
  // runtime is unloaded, so that no worker runs code that is gone.
  static Pool p;
  return p;
}

} // namespace

int poolDoParFor(void *userContext, PoolTask task, int min, int extent,
                 uint8_t *closure) {
  return pool().run(userContext, task, min, extent, closure);
}

bool poolKeepWorkerError(const char *message) {
  return pool().keepWorkerError(message);
}

void poolSetErrorSink(void (*sink)(const char *message)) {
  errorSink.store(sink, std::memory_order_relaxed);
}

void poolSetThreads(int threads) { pool().setThreads(threads); }

void poolBeginRun() { pool().beginRun(); }

void poolEndRun() { pool().endRun(); }

int poolThreads() { return pool().numThreads(); }

} // namespace dynrt
