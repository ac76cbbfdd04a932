//===- ThreadPoolTest.cpp - the runtime's pool for the kernels' loops -----===//
//
// Every task runs once, a block of tasks on one thread (block 0 on the
// caller's), errors and their messages come back, and a loop inside a task,
// from several callers at once or in the child of a fork neither deadlocks
// nor loses tasks.
//
//===----------------------------------------------------------------------===//

#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <sys/wait.h>
#include <unistd.h>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Record {
  std::vector<std::atomic<int>> runs;
  std::vector<std::thread::id> who;
  explicit Record(int n) : runs(n), who(n) {}
};

int recordTask(void *uc, int i, uint8_t *closure) {
  auto *r = reinterpret_cast<Record *>(closure);
  r->runs[i].fetch_add(1);
  r->who[i] = std::this_thread::get_id();
  (void)uc;
  return 0;
}

class ThreadPoolTest : public ::testing::Test {
protected:
  void TearDown() override { dynrt::poolSetThreads(0); }
};

TEST_F(ThreadPoolTest, EveryTaskRunsOnce) {
  for (int threads : {1, 2, 3, 4})
    for (int extent : {0, 1, 2, 3, 7, 100, 1001}) {
      dynrt::poolSetThreads(threads);
      ASSERT_EQ(dynrt::poolThreads(), threads);
      Record r(extent + 5);
      ASSERT_EQ(0, dynrt::poolDoParFor(nullptr, recordTask, 5, extent,
                                       reinterpret_cast<uint8_t *>(&r)));
      for (int i = 0; i < extent + 5; ++i)
        ASSERT_EQ(r.runs[i].load(), i >= 5 ? 1 : 0) << "task " << i;
    }
}

int stallFirstOfBlock1(void *, int i, uint8_t *closure) {
  auto *r = reinterpret_cast<Record *>(closure);
  r->who[i] = std::this_thread::get_id();
  r->runs[i].fetch_add(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(i == 10 ? 200 : 1));
  return 0;
}

TEST_F(ThreadPoolTest, AStalledThreadsTasksAreTakenOver) {
  // Blocks [0, 10) and [10, 20); task 10 stalls its thread for 200 ms (a
  // worker descheduled or slow to wake): the other thread, through its own
  // block in ~10 ms, takes 11..19 instead of waiting for it.
  dynrt::poolSetThreads(2);
  Record r(20);
  ASSERT_EQ(0, dynrt::poolDoParFor(nullptr, stallFirstOfBlock1, 0, 20,
                                   reinterpret_cast<uint8_t *>(&r)));
  for (int i = 0; i < 20; ++i)
    ASSERT_EQ(r.runs[i].load(), 1) << "task " << i;
  for (int i = 11; i < 20; ++i)
    EXPECT_NE(r.who[i], r.who[10]) << "task " << i << " waited for task 10";
}

int failAt(void *, int i, uint8_t *closure) {
  auto *r = reinterpret_cast<Record *>(closure);
  r->runs[i].fetch_add(1);
  return i == 3 || i == 12 ? -(i + 1) : 0;
}

TEST_F(ThreadPoolTest, ReturnsAnErrorAndStopsItsBlock) {
  dynrt::poolSetThreads(2);
  Record r(16);
  int result = dynrt::poolDoParFor(nullptr, failAt, 0, 16,
                                   reinterpret_cast<uint8_t *>(&r));
  // Blocks [0, 8) and [8, 16): an error comes back, and no task is
  // started after the first failure (a task taken after it is skipped).
  EXPECT_TRUE(result == -4 || result == -13) << result;
  EXPECT_EQ(r.runs[4].load(), 0);
  EXPECT_EQ(r.runs[13].load(), 0);
  // The failure that came back was the first: the tasks of its block
  // before it ran.
  EXPECT_EQ(r.runs[result == -4 ? 2 : 11].load(), 1);
  for (int i = 0; i < 16; ++i)
    EXPECT_LE(r.runs[i].load(), 1) << "task " << i;
}

std::thread::id sinkThread;
std::string sunk;
void sink(const char *message) {
  sinkThread = std::this_thread::get_id();
  sunk = message;
}

struct FailJob {
  std::atomic<bool> started{false};
  std::atomic<bool> onWorker{false};
};

int failOnWorker(void *, int i, uint8_t *closure) {
  auto *job = reinterpret_cast<FailJob *>(closure);
  if (i == 0) {
    // Hold the caller until task 1 has started elsewhere (a worker), or
    // give up after 5 s: then the caller runs task 1 itself.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!job->started.load() && std::chrono::steady_clock::now() < until)
      std::this_thread::yield();
    return 0;
  }
  job->started.store(true);
  // What the runtime's Halide error handler does.
  const char *message = "task 1 failed";
  if (dynrt::poolKeepWorkerError(message))
    job->onWorker.store(true);
  else
    sink(message);
  return -2;
}

TEST_F(ThreadPoolTest, AWorkersErrorMessageReachesTheCaller) {
  dynrt::poolSetThreads(2);
  dynrt::poolSetErrorSink(sink);
  FailJob job;
  sunk.clear();
  EXPECT_EQ(-2, dynrt::poolDoParFor(nullptr, failOnWorker, 0, 2,
                                    reinterpret_cast<uint8_t *>(&job)));
  EXPECT_TRUE(job.onWorker.load()) << "task 1 did not run on a worker";
  EXPECT_EQ(sunk, "task 1 failed");
  EXPECT_EQ(sinkThread, std::this_thread::get_id());
  EXPECT_FALSE(dynrt::poolKeepWorkerError("not in a loop"));
  dynrt::poolSetErrorSink(nullptr);
}

TEST_F(ThreadPoolTest, AForkedChildRunsItsLoops) {
  // The parent's workers do not exist in the child: its loops must still
  // run every task (on the caller, or on new workers), not wait for them.
  dynrt::poolSetThreads(2);
  Record warm(64);
  ASSERT_EQ(0, dynrt::poolDoParFor(nullptr, recordTask, 0, 64,
                                   reinterpret_cast<uint8_t *>(&warm)));
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    alarm(20); // a hang ends as SIGALRM
    bool ok = true;
    for (int k = 0; k < 50 && ok; ++k) {
      Record r(64);
      ok = dynrt::poolDoParFor(nullptr, recordTask, 0, 64,
                               reinterpret_cast<uint8_t *>(&r)) == 0;
      for (int i = 0; i < 64; ++i)
        ok = ok && r.runs[i].load() == 1;
    }
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT_TRUE(WIFEXITED(status)) << "the child was killed by signal "
                                 << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

struct Nest {
  std::atomic<int> inner{0};
};

int innerTask(void *, int, uint8_t *closure) {
  reinterpret_cast<Nest *>(closure)->inner.fetch_add(1);
  return 0;
}

int outerTask(void *uc, int, uint8_t *closure) {
  // Runs on the calling thread: the pool is busy with the outer loop.
  return dynrt::poolDoParFor(uc, innerTask, 0, 10, closure);
}

TEST_F(ThreadPoolTest, NestedLoopsAndConcurrentCallers) {
  dynrt::poolSetThreads(3);
  Nest nest;
  ASSERT_EQ(0, dynrt::poolDoParFor(nullptr, outerTask, 0, 6,
                                   reinterpret_cast<uint8_t *>(&nest)));
  EXPECT_EQ(nest.inner.load(), 60);

  // Callers that find the pool busy run their loop themselves.
  std::vector<std::thread> callers;
  std::atomic<int> bad{0};
  for (int c = 0; c < 4; ++c)
    callers.emplace_back([&] {
      for (int k = 0; k < 200; ++k) {
        Record r(37);
        if (dynrt::poolDoParFor(nullptr, recordTask, 0, 37,
                                reinterpret_cast<uint8_t *>(&r)) != 0)
          bad.fetch_add(1);
        for (int i = 0; i < 37; ++i)
          if (r.runs[i].load() != 1)
            bad.fetch_add(1);
      }
    });
  for (std::thread &t : callers)
    t.join();
  EXPECT_EQ(bad.load(), 0);
}

// Each of the two tasks waits (up to a second) until both have started:
// they finish together only when another thread runs the second.
int meetTask(void *, int i, uint8_t *closure) {
  auto *r = reinterpret_cast<Record *>(closure);
  r->who[i] = std::this_thread::get_id();
  r->runs[i].fetch_add(1);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (r->runs[1 - i].load() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::yield();
  return 0;
}

TEST_F(ThreadPoolTest, RunsKeepTheWorkersAwakeAndNest) {
  // Inside runs (nested, and from two threads at once) and after them,
  // after pauses far longer than a worker's idle spin: every task runs
  // once, the second block on the worker.
  dynrt::poolSetThreads(2);
  auto loop = [](int expectOtherThread) {
    Record r(2);
    EXPECT_EQ(0, dynrt::poolDoParFor(nullptr, meetTask, 0, 2,
                                     reinterpret_cast<uint8_t *>(&r)));
    EXPECT_EQ(r.runs[0].load(), 1);
    EXPECT_EQ(r.runs[1].load(), 1);
    if (expectOtherThread)
      EXPECT_NE(r.who[0], r.who[1]);
  };
  {
    dynrt::PoolRun outer;
    loop(1);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    {
      dynrt::PoolRun inner;
      loop(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    loop(1);
    std::thread other([] {
      dynrt::PoolRun run;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    });
    other.join();
    loop(1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  loop(1); // asleep by now: woken by the loop
}

} // namespace
