//===- ThreadPoolTest.cpp - the runtime's pool for the kernels' loops -----===//
//
// Every task runs once, the same block of tasks runs on the same thread
// every call (block 0 on the caller's), errors come back, and a loop inside
// a task or from several callers at once neither deadlocks nor loses tasks.
//
//===----------------------------------------------------------------------===//

#include "runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <atomic>
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

TEST_F(ThreadPoolTest, EveryTaskRunsOnceInFixedBlocks) {
  for (int threads : {1, 2, 3, 4})
    for (int extent : {0, 1, 2, 3, 7, 100, 1001}) {
      dynrt::poolSetThreads(threads);
      ASSERT_EQ(dynrt::poolThreads(), threads);
      Record first(extent + 5), second(extent + 5);
      ASSERT_EQ(0, dynrt::poolDoParFor(nullptr, recordTask, 5, extent,
                                       reinterpret_cast<uint8_t *>(&first)));
      ASSERT_EQ(0, dynrt::poolDoParFor(nullptr, recordTask, 5, extent,
                                       reinterpret_cast<uint8_t *>(&second)));
      int blocks = std::min(threads, extent);
      for (int i = 0; i < extent + 5; ++i) {
        ASSERT_EQ(first.runs[i].load(), i >= 5 ? 1 : 0) << "task " << i;
        if (i < 5)
          continue;
        // The same thread both times; the first block on the caller.
        EXPECT_EQ(first.who[i], second.who[i]) << "task " << i;
        int block = 0;
        while ((int64_t)extent * (block + 1) / blocks <= i - 5)
          ++block;
        if (block == 0)
          EXPECT_EQ(first.who[i], std::this_thread::get_id()) << "task " << i;
        else
          EXPECT_NE(first.who[i], std::this_thread::get_id()) << "task " << i;
      }
    }
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
  // Blocks [0, 8) and [8, 16): both fail, one error comes back.
  EXPECT_TRUE(result == -4 || result == -13) << result;
  EXPECT_EQ(r.runs[4].load(), 0); // after the failure in block 0
  EXPECT_EQ(r.runs[13].load(), 0);
  EXPECT_EQ(r.runs[2].load(), 1);
  EXPECT_EQ(r.runs[11].load(), 1);
}

std::thread::id sinkThread;
std::string sunk;
void sink(const char *message) {
  sinkThread = std::this_thread::get_id();
  sunk = message;
}

int failOnWorker(void *, int i, uint8_t *closure) {
  auto *kept = reinterpret_cast<std::atomic<int> *>(closure);
  // Task 0 runs on the caller: an error handler keeps its own message.
  if (dynrt::poolKeepWorkerError(i == 0 ? "caller" : "worker failed"))
    kept->fetch_add(1);
  return i == 0 ? 0 : -2;
}

TEST_F(ThreadPoolTest, AWorkersErrorMessageReachesTheCaller) {
  dynrt::poolSetThreads(2);
  dynrt::poolSetErrorSink(sink);
  std::atomic<int> kept{0};
  sunk.clear();
  EXPECT_EQ(-2, dynrt::poolDoParFor(nullptr, failOnWorker, 0, 2,
                                    reinterpret_cast<uint8_t *>(&kept)));
  EXPECT_EQ(kept.load(), 1); // the worker's, not the caller's
  EXPECT_EQ(sunk, "worker failed");
  EXPECT_EQ(sinkThread, std::this_thread::get_id());
  EXPECT_FALSE(dynrt::poolKeepWorkerError("not in a loop"));
  dynrt::poolSetErrorSink(nullptr);
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

} // namespace
