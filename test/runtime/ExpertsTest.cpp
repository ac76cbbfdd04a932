//===- ExpertsTest.cpp - expert parallelism: the exchange builtin ---------===//
//
// The parts of DYNRT_BUILTIN_EXPERT_EXCHANGE in runtime/Experts.cpp: config
// parsing, argument checks, exchangeRows on one process (comm NULL) and on
// 2 and 4 ranks through a fake in-process communicator (one std::thread per
// rank, rendezvous on a shared mutex and condition variable), the model
// fingerprint and the ranks' agreement at create.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/Experts.h"
#include "runtime/Status.h"
#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using dynrt::ExchangeConfig;
using dynrt::ExchangeRunState;
using dynrt::ExchangeScratch;
using dynrt::test::failsWith;
using dynrt::test::spec;
using dynrt::test::succeeds;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

// A config as the compiler writes it.
std::vector<double> exchangeConfig(double route, double direction,
                                   double experts, double ranks, double rows,
                                   double features) {
  std::vector<double> c(DYNRT_EXCHANGE_CFG_COUNT);
  c[DYNRT_EXCHANGE_CFG_ROUTE] = route;
  c[DYNRT_EXCHANGE_CFG_DIRECTION] = direction;
  c[DYNRT_EXCHANGE_CFG_EXPERTS] = experts;
  c[DYNRT_EXCHANGE_CFG_RANKS] = ranks;
  c[DYNRT_EXCHANGE_CFG_ROWS] = rows;
  c[DYNRT_EXCHANGE_CFG_FEATURES] = features;
  return c;
}

ExchangeConfig makeConfig(int64_t E, int64_t R, int64_t rows, int64_t D,
                          bool back, int32_t route = 0) {
  ExchangeConfig c;
  c.route = route;
  c.back = back;
  c.experts = E;
  c.ranks = R;
  c.rows = rows;
  c.features = D;
  return c;
}

// Parses `config`, expecting failure with every needle in the message and
// `out` untouched.
::testing::AssertionResult parseFails(const std::vector<double> &config,
                                      std::initializer_list<std::string> needles,
                                      int32_t count = -1) {
  ExchangeConfig out = makeConfig(7, 7, 7, 7, true, 7);
  std::string error;
  if (dynrt::parseExchangeConfig(config.data(),
                                 count < 0 ? int32_t(config.size()) : count,
                                 out, error))
    return ::testing::AssertionFailure() << "parsed";
  if (out.experts != 7 || out.ranks != 7 || out.rows != 7 ||
      out.features != 7 || out.route != 7 || !out.back)
    return ::testing::AssertionFailure() << "failed but changed the output";
  for (const std::string &needle : needles)
    if (error.find(needle) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message does not mention \"" << needle << "\": " << error;
  return ::testing::AssertionSuccess() << error;
}

//===--------------------------------------------------------------------===//
// parseExchangeConfig
//===--------------------------------------------------------------------===//

TEST(ExpertsConfig, ParsesGoodConfig) {
  for (int direction : {0, 1}) {
    std::vector<double> config = exchangeConfig(3, direction, 8, 4, 16, 32);
    ExchangeConfig c;
    std::string error;
    ASSERT_TRUE(dynrt::parseExchangeConfig(config.data(), int32_t(config.size()),
                                           c, error))
        << error;
    EXPECT_EQ(c.route, 3);
    EXPECT_EQ(c.back, direction == 1);
    EXPECT_EQ(c.experts, 8);
    EXPECT_EQ(c.ranks, 4);
    EXPECT_EQ(c.rows, 16);
    EXPECT_EQ(c.features, 32);
    EXPECT_EQ(c.local(), 2);
  }
  // One rank, E/R = E.
  std::vector<double> config = exchangeConfig(0, 0, 5, 1, 1, 1);
  ExchangeConfig c;
  std::string error;
  ASSERT_TRUE(dynrt::parseExchangeConfig(config.data(), 6, c, error)) << error;
  EXPECT_EQ(c.local(), 5);
}

TEST(ExpertsConfig, WrongCount) {
  std::vector<double> config = exchangeConfig(0, 0, 8, 2, 4, 4);
  EXPECT_TRUE(parseFails(config, {"5 entries", "expected 6"}, 5));
  config.push_back(0);
  EXPECT_TRUE(parseFails(config, {"7 entries", "expected 6"}));
  EXPECT_TRUE(parseFails(config, {"0 entries", "expected 6"}, 0));
  ExchangeConfig out;
  std::string error;
  EXPECT_FALSE(dynrt::parseExchangeConfig(nullptr, 6, out, error));
  EXPECT_NE(error.find("missing"), std::string::npos) << error;
}

TEST(ExpertsConfig, NonIntegerEntries) {
  EXPECT_TRUE(parseFails(exchangeConfig(0.5, 0, 8, 2, 4, 4),
                         {"entry 0", "(route)", "0.5", "not an integer"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 2.5, 2, 4, 4),
                         {"entry 2", "(experts)", "2.5", "not an integer"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 8, 2, 4.25, 4),
                         {"(rows)", "not an integer"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 8, 2, 4, std::nan("")),
                         {"(features)", "not an integer"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 8, 1e300, 4, 4),
                         {"(ranks)", "not an integer"}));
  EXPECT_TRUE(parseFails(exchangeConfig(-1, 0, 8, 2, 4, 4), {"(route)"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 0, 1, 4, 4), {"(experts)"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 8, 0, 4, 4), {"(ranks)"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 8, 2, 0, 4), {"(rows)"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 8, 2, 4, 0), {"(features)"}));
}

TEST(ExpertsConfig, DirectionOutsideZeroOne) {
  for (double direction : {2.0, -1.0, 0.5})
    EXPECT_TRUE(parseFails(exchangeConfig(0, direction, 8, 2, 4, 4),
                           {"entry 1", "(direction)", "[0, 1]"}))
        << direction;
}

TEST(ExpertsConfig, ExpertsNotMultipleOfRanks) {
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 6, 4, 4, 4),
                         {"splits 6 experts over 4 ranks"}));
  EXPECT_TRUE(parseFails(exchangeConfig(0, 1, 3, 4, 4, 4),
                         {"splits 3 experts over 4 ranks"}));
}

TEST(ExpertsConfig, TooLarge) {
  // E * rows * D = 2^41 elements.
  EXPECT_TRUE(parseFails(exchangeConfig(0, 0, 1 << 20, 1, 1 << 20, 2),
                         {"1048576 experts", "1048576 rows", "2 features",
                          "too large"}));
  EXPECT_TRUE(parseFails(
      exchangeConfig(0, 0, 2147483646.0, 2, 2147483647.0, 2147483647.0),
      {"too large"}));
  // 2^40 elements exactly is still accepted.
  std::vector<double> config = exchangeConfig(0, 0, 1 << 20, 1, 1 << 10, 1 << 10);
  ExchangeConfig c;
  std::string error;
  EXPECT_TRUE(dynrt::parseExchangeConfig(config.data(), 6, c, error)) << error;
}

//===--------------------------------------------------------------------===//
// checkExchangeArgs
//===--------------------------------------------------------------------===//

// E = 4, R = 2, rows = 3, D = 5.
std::vector<dynrt_param_spec_t> forwardArgs() {
  return {spec("in", DYNRT_F32, {4, 3, 5}), spec("slot_token", DYNRT_I32, {12}),
          spec("out", DYNRT_F32, {2, 6, 5})};
}
std::vector<dynrt_param_spec_t> backArgs() {
  return {spec("in", DYNRT_F32, {2, 6, 5}), spec("slot_token", DYNRT_I32, {12}),
          spec("out", DYNRT_F32, {4, 3, 5})};
}

::testing::AssertionResult argsFail(const ExchangeConfig &c,
                                    const std::vector<dynrt_param_spec_t> &args,
                                    std::initializer_list<std::string> needles) {
  std::string error;
  if (dynrt::checkExchangeArgs(c, args.data(), int32_t(args.size()), error))
    return ::testing::AssertionFailure() << "accepted";
  for (const std::string &needle : needles)
    if (error.find(needle) == std::string::npos)
      return ::testing::AssertionFailure()
             << "message does not mention \"" << needle << "\": " << error;
  return ::testing::AssertionSuccess() << error;
}

TEST(ExpertsArgs, GoodSpecsPass) {
  std::string error;
  auto fwd = forwardArgs(), back = backArgs();
  EXPECT_TRUE(dynrt::checkExchangeArgs(makeConfig(4, 2, 3, 5, false),
                                       fwd.data(), 3, error))
      << error;
  EXPECT_TRUE(dynrt::checkExchangeArgs(makeConfig(4, 2, 3, 5, true),
                                       back.data(), 3, error))
      << error;
  // One rank: in and out have the same shape in both directions.
  std::vector<dynrt_param_spec_t> one = {spec("in", DYNRT_F32, {4, 3, 5}),
                                         spec("slot_token", DYNRT_I32, {12}),
                                         spec("out", DYNRT_F32, {4, 3, 5})};
  for (bool b : {false, true})
    EXPECT_TRUE(dynrt::checkExchangeArgs(makeConfig(4, 1, 3, 5, b), one.data(),
                                         3, error))
        << error;
}

TEST(ExpertsArgs, DirectionsAreNotInterchangeable) {
  EXPECT_TRUE(argsFail(makeConfig(4, 2, 3, 5, true), forwardArgs(),
                       {"argument 0 (in)", "[2, 6, 5] F32", "got [4, 3, 5]"}));
  EXPECT_TRUE(argsFail(makeConfig(4, 2, 3, 5, false), backArgs(),
                       {"argument 0 (in)", "[4, 3, 5] F32", "got [2, 6, 5]"}));
}

TEST(ExpertsArgs, WrongDtype) {
  for (bool back : {false, true}) {
    ExchangeConfig c = makeConfig(4, 2, 3, 5, back);
    auto args = back ? backArgs() : forwardArgs();
    args[0].dtype = DYNRT_F64;
    EXPECT_TRUE(argsFail(c, args, {"argument 0 (in)", "F64"}));
    args = back ? backArgs() : forwardArgs();
    args[1].dtype = DYNRT_I64;
    EXPECT_TRUE(argsFail(c, args,
                         {"argument 1 (slot_token)", "[12] I32", "I64"}));
    args = back ? backArgs() : forwardArgs();
    args[2].dtype = DYNRT_I32;
    EXPECT_TRUE(argsFail(c, args, {"argument 2 (out)", "I32"}));
  }
}

TEST(ExpertsArgs, WrongShape) {
  ExchangeConfig c = makeConfig(4, 2, 3, 5, false);
  auto args = forwardArgs();
  args[0] = spec("in", DYNRT_F32, {4, 3, 6});
  EXPECT_TRUE(argsFail(c, args, {"argument 0 (in)", "got [4, 3, 6]"}));
  args = forwardArgs();
  args[0] = spec("in", DYNRT_F32, {12, 5});
  EXPECT_TRUE(argsFail(c, args, {"argument 0 (in)", "got [12, 5]"}));
  args = forwardArgs();
  args[1] = spec("slot_token", DYNRT_I32, {4, 3});
  EXPECT_TRUE(argsFail(c, args, {"argument 1 (slot_token)", "got [4, 3]"}));
  args = forwardArgs();
  args[1] = spec("slot_token", DYNRT_I32, {11});
  EXPECT_TRUE(argsFail(c, args, {"argument 1 (slot_token)", "got [11]"}));
  args = forwardArgs();
  args[2] = spec("out", DYNRT_F32, {2, 3, 5});
  EXPECT_TRUE(argsFail(c, args, {"argument 2 (out)", "[2, 6, 5] F32"}));
  c.back = true;
  args = backArgs();
  args[2] = spec("out", DYNRT_F32, {4, 3, 5, 1});
  EXPECT_TRUE(argsFail(c, args, {"argument 2 (out)", "got [4, 3, 5, 1]"}));
}

TEST(ExpertsArgs, WrongCount) {
  ExchangeConfig c = makeConfig(4, 2, 3, 5, false);
  auto args = forwardArgs();
  std::string error;
  EXPECT_FALSE(dynrt::checkExchangeArgs(c, args.data(), 2, error));
  EXPECT_NE(error.find("3 arguments"), std::string::npos) << error;
  EXPECT_NE(error.find("got 2"), std::string::npos) << error;
  args.push_back(spec("extra", DYNRT_F32, {1}));
  EXPECT_FALSE(dynrt::checkExchangeArgs(c, args.data(), 4, error));
  EXPECT_NE(error.find("got 4"), std::string::npos) << error;
  EXPECT_FALSE(dynrt::checkExchangeArgs(c, nullptr, 3, error));
  EXPECT_NE(error.find("3 arguments"), std::string::npos) << error;
}

//===--------------------------------------------------------------------===//
// Dispatch data: random rows and slot_token patterns.
//===--------------------------------------------------------------------===//

// One rank's dispatch of an E-expert route.
struct Dispatch {
  std::vector<float> in;       // [E, rows, D]
  std::vector<int32_t> slot;   // [E * rows], -1 empty
  // The positions of the filled rows of expert e, in order.
  std::vector<int64_t> filled(int64_t e, int64_t rows) const {
    std::vector<int64_t> f;
    for (int64_t r = 0; r < rows; ++r)
      if (slot[e * rows + r] >= 0)
        f.push_back(r);
    return f;
  }
};

// Each (rank, expert) gets its own fill probability, so counts differ
// between experts and ranks; `emptyExpert` (if >= 0) gets no rows from any
// rank; rank 0 fills every row of expert 0 (the count reaching `rows`).
std::vector<Dispatch> makeDispatch(std::mt19937 &rng, int64_t R, int64_t E,
                                   int64_t rows, int64_t D,
                                   int64_t emptyExpert) {
  std::uniform_real_distribution<float> value(-4.0f, 4.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int32_t> token(0, 1000);
  std::vector<Dispatch> all(R);
  for (int64_t s = 0; s < R; ++s) {
    Dispatch &d = all[s];
    d.in.resize(E * rows * D);
    for (float &v : d.in)
      v = value(rng);
    d.slot.resize(E * rows);
    for (int64_t e = 0; e < E; ++e) {
      double p = unit(rng);
      if (e == emptyExpert)
        p = 0;
      else if (s == 0 && e == 0)
        p = 1.1;
      for (int64_t r = 0; r < rows; ++r)
        d.slot[e * rows + r] = unit(rng) < p ? token(rng) : -1;
    }
  }
  return all;
}

//===--------------------------------------------------------------------===//
// exchangeRows on one process (comm NULL)
//===--------------------------------------------------------------------===//

TEST(ExpertsExchangeSelf, ForwardPacksFilledRowsAndBackRestoresThem) {
  constexpr int64_t E = 3, rows = 4, D = 5;
  std::mt19937 rng(11);
  for (int round = 0; round < 4; ++round) {
    Dispatch d = makeDispatch(rng, 1, E, rows, D, /*emptyExpert=*/1)[0];
    if (round == 3)
      std::fill(d.slot.begin(), d.slot.end(), -1); // nothing at all
    ExchangeRunState state;
    ExchangeScratch scratch;
    uint64_t bytesSent = 0;

    std::vector<float> out(E * rows * D, kNaN);
    ASSERT_TRUE(succeeds(dynrt::exchangeRows(nullptr,
                                             makeConfig(E, 1, rows, D, false),
                                             d.in.data(), d.slot.data(),
                                             out.data(), state, scratch,
                                             bytesSent)));
    EXPECT_EQ(bytesSent, 0u);
    EXPECT_TRUE(state.forwarded);
    // out[e, i] = the i-th filled row of expert e; zeros after.
    for (int64_t e = 0; e < E; ++e) {
      std::vector<int64_t> f = d.filled(e, rows);
      ASSERT_EQ(state.recvRows.size(), size_t(E));
      EXPECT_EQ(state.recvRows[e], int64_t(f.size())) << "expert " << e;
      for (int64_t i = 0; i < rows; ++i)
        for (int64_t k = 0; k < D; ++k) {
          float want = i < int64_t(f.size()) ? d.in[(e * rows + f[i]) * D + k]
                                              : 0.0f;
          ASSERT_EQ(out[(e * rows + i) * D + k], want)
              << "round " << round << " expert " << e << " row " << i
              << " feature " << k;
        }
    }

    // Back: y = 2x + e from every row of out (the padding too).
    std::vector<float> y(out.size());
    for (int64_t e = 0; e < E; ++e)
      for (int64_t i = 0; i < rows * D; ++i)
        y[e * rows * D + i] = 2.0f * out[e * rows * D + i] + float(e);
    std::vector<float> back(E * rows * D, kNaN);
    ASSERT_TRUE(succeeds(dynrt::exchangeRows(nullptr,
                                             makeConfig(E, 1, rows, D, true),
                                             y.data(), d.slot.data(),
                                             back.data(), state, scratch,
                                             bytesSent)));
    EXPECT_EQ(bytesSent, 0u);
    EXPECT_FALSE(state.forwarded);
    for (int64_t e = 0; e < E; ++e)
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < D; ++k) {
          int64_t at = (e * rows + r) * D + k;
          float want = d.slot[e * rows + r] >= 0
                           ? 2.0f * d.in[at] + float(e)
                           : 0.0f;
          ASSERT_EQ(back[at], want) << "round " << round << " expert " << e
                                    << " row " << r << " feature " << k;
        }
  }
}

TEST(ExpertsExchangeSelf, BackBeforeForwardFails) {
  constexpr int64_t E = 2, rows = 2, D = 1;
  std::vector<float> in(E * rows * D, 1.0f), out(E * rows * D, kNaN);
  std::vector<int32_t> slot(E * rows, 0);
  ExchangeRunState state;
  ExchangeScratch scratch;
  uint64_t bytesSent = 0;
  EXPECT_TRUE(failsWith(dynrt::exchangeRows(nullptr,
                                            makeConfig(E, 1, rows, D, true, 5),
                                            in.data(), slot.data(), out.data(),
                                            state, scratch, bytesSent),
                        DYNRT_INTERNAL, {"route 5", "before the rows came"}));
  // And a second back after one forward.
  ASSERT_TRUE(succeeds(dynrt::exchangeRows(
      nullptr, makeConfig(E, 1, rows, D, false), in.data(), slot.data(),
      out.data(), state, scratch, bytesSent)));
  ASSERT_TRUE(succeeds(dynrt::exchangeRows(
      nullptr, makeConfig(E, 1, rows, D, true), in.data(), slot.data(),
      out.data(), state, scratch, bytesSent)));
  EXPECT_TRUE(failsWith(dynrt::exchangeRows(nullptr,
                                            makeConfig(E, 1, rows, D, true),
                                            in.data(), slot.data(), out.data(),
                                            state, scratch, bytesSent),
                        DYNRT_INTERNAL, {"before the rows came"}));
}

TEST(ExpertsExchangeSelf, RankCountMismatch) {
  // Compiled for 2 ranks, run in a process of its own.
  constexpr int64_t E = 2, rows = 2, D = 1;
  std::vector<float> in(E * rows * D, 1.0f), out(E * rows * D, kNaN);
  std::vector<int32_t> slot(E * rows, 0);
  ExchangeRunState state;
  ExchangeScratch scratch;
  uint64_t bytesSent = 0;
  EXPECT_TRUE(failsWith(dynrt::exchangeRows(nullptr,
                                            makeConfig(E, 2, rows, D, false),
                                            in.data(), slot.data(), out.data(),
                                            state, scratch, bytesSent),
                        DYNRT_FAILED_PRECONDITION,
                        {"compiled for 2 ranks", "rank 0 of 1"}));
}

//===--------------------------------------------------------------------===//
// A fake communicator: R ranks as threads of this process.
//===--------------------------------------------------------------------===//

// What the ranks share. Every collective is: deposit this rank's send
// buffer and counts, wait for all R, copy this rank's pieces out of the
// others' send buffers, wait again (so that no send buffer goes away while
// read) and return.
struct FakeWorld {
  explicit FakeWorld(int R) : R(R), send(R), sendBytes(R), gatherBytes(R) {}

  // Waits until all R ranks arrived. False when a rank left (it returned
  // from its work, e.g. after an error) or nobody came for 10 s.
  bool barrier() {
    std::unique_lock<std::mutex> lock(mutex);
    if (departed)
      return false;
    uint64_t gen = generation;
    if (++arrived == R) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return true;
    }
    cv.wait_for(lock, std::chrono::seconds(10),
                [&] { return generation != gen || departed > 0; });
    if (generation != gen)
      return true;
    --arrived;
    return false;
  }
  void depart() {
    std::lock_guard<std::mutex> lock(mutex);
    ++departed;
    cv.notify_all();
  }
  void recordError(const std::string &error) {
    std::lock_guard<std::mutex> lock(mutex);
    errors.push_back(error);
  }

  const int R;
  std::mutex mutex;
  std::condition_variable cv;
  uint64_t generation = 0;
  int arrived = 0, departed = 0;
  std::vector<const void *> send;
  std::vector<std::vector<uint64_t>> sendBytes; // [rank][destination]
  std::vector<uint64_t> gatherBytes;
  std::vector<std::string> errors; // recv_bytes that did not match
  // After its alltoallv number corruptCall, rank corruptRank finds
  // corruptValue in the first int64 of its receive buffer.
  int corruptRank = -1, corruptCall = 0;
  int64_t corruptValue = 0;
};

struct FakeRank {
  FakeWorld *world;
  int calls = 0;
  dynrt_comm_t comm;
};

dynrt_status_t fakeAlltoallv(dynrt_comm_t *comm, const void *send,
                             const uint64_t *sendBytes, void *recv,
                             const uint64_t *recvBytes) {
  auto &me = *static_cast<FakeRank *>(comm->impl);
  FakeWorld &w = *me.world;
  const int self = comm->rank, R = w.R, call = me.calls++;
  w.send[self] = send;
  w.sendBytes[self].assign(sendBytes, sendBytes + R);
  if (!w.barrier())
    return dynrt::makeStatus(DYNRT_UNAVAILABLE,
                             "fake alltoallv {} on rank {}: a rank left", call,
                             self);
  std::string error;
  auto *to = static_cast<unsigned char *>(recv);
  for (int s = 0; s < R && error.empty(); ++s) {
    uint64_t n = w.sendBytes[s][self], offset = 0;
    if (n != recvBytes[s]) {
      error = fmt::format("alltoallv {}: rank {} receives {} bytes from rank "
                          "{}, which sends {}",
                          call, self, recvBytes[s], s, n);
      break;
    }
    for (int j = 0; j < self; ++j)
      offset += w.sendBytes[s][j];
    if (n)
      std::memcpy(to, static_cast<const unsigned char *>(w.send[s]) + offset,
                  n);
    to += n;
  }
  if (!error.empty())
    w.recordError(error);
  else if (self == w.corruptRank && call == w.corruptCall)
    std::memcpy(recv, &w.corruptValue, sizeof(int64_t));
  bool ok = w.barrier();
  if (!error.empty())
    return dynrt::makeStatus(DYNRT_INTERNAL, "fake {}", error);
  if (!ok)
    return dynrt::makeStatus(DYNRT_UNAVAILABLE,
                             "fake alltoallv {} on rank {}: a rank left", call,
                             self);
  return nullptr;
}

dynrt_status_t fakeAllgather(dynrt_comm_t *comm, const void *send,
                             uint64_t bytes, void *recv) {
  auto &me = *static_cast<FakeRank *>(comm->impl);
  FakeWorld &w = *me.world;
  const int self = comm->rank, R = w.R;
  w.send[self] = send;
  w.gatherBytes[self] = bytes;
  if (!w.barrier())
    return dynrt::makeStatus(DYNRT_UNAVAILABLE, "fake allgather: a rank left");
  std::string error;
  for (int s = 0; s < R; ++s) {
    if (w.gatherBytes[s] != bytes) {
      error = fmt::format("allgather: rank {} sends {} bytes, rank {} {}", s,
                          w.gatherBytes[s], self, bytes);
      break;
    }
    if (bytes)
      std::memcpy(static_cast<unsigned char *>(recv) + s * bytes, w.send[s],
                  bytes);
  }
  if (!error.empty())
    w.recordError(error);
  bool ok = w.barrier();
  if (!error.empty())
    return dynrt::makeStatus(DYNRT_INTERNAL, "fake {}", error);
  if (!ok)
    return dynrt::makeStatus(DYNRT_UNAVAILABLE, "fake allgather: a rank left");
  return nullptr;
}

// Runs body(comm, rank) on R threads, one per rank, and joins them.
void runRanks(FakeWorld &world,
              const std::function<void(dynrt_comm_t *, int)> &body) {
  std::vector<std::unique_ptr<FakeRank>> ranks;
  for (int r = 0; r < world.R; ++r) {
    auto rank = std::make_unique<FakeRank>();
    rank->world = &world;
    rank->comm = {r, world.R, fakeAlltoallv, fakeAllgather, rank.get()};
    ranks.push_back(std::move(rank));
  }
  std::vector<std::thread> threads;
  for (int r = 0; r < world.R; ++r)
    threads.emplace_back([&, r] {
      body(&ranks[r]->comm, r);
      world.depart();
    });
  for (std::thread &t : threads)
    t.join();
}

TEST(ExpertsFakeComm, MovesExactBytes) {
  // The fake itself: uneven and zero sizes, packed in rank order.
  constexpr int R = 3;
  FakeWorld world(R);
  std::vector<std::vector<unsigned char>> got(R);
  std::vector<dynrt::StatusPtr> statuses(R);
  runRanks(world, [&](dynrt_comm_t *comm, int r) {
    // Rank r sends (r + 1) * j bytes of value 16 * r + j to rank j.
    std::vector<uint64_t> sendBytes(R), recvBytes(R);
    std::vector<unsigned char> send;
    for (int j = 0; j < R; ++j) {
      sendBytes[j] = (r + 1) * j;
      send.insert(send.end(), sendBytes[j], (unsigned char)(16 * r + j));
      recvBytes[j] = (j + 1) * r;
    }
    got[r].assign((R * (R + 1) / 2) * r, 0xee);
    statuses[r].reset(comm->alltoallv(comm, send.data(), sendBytes.data(),
                                      got[r].data(), recvBytes.data()));
  });
  for (int r = 0; r < R; ++r) {
    ASSERT_FALSE(statuses[r]) << dynrt_status_message(statuses[r].get());
    std::vector<unsigned char> want;
    for (int s = 0; s < R; ++s)
      want.insert(want.end(), (s + 1) * r, (unsigned char)(16 * s + r));
    EXPECT_EQ(got[r], want) << "rank " << r;
  }
  EXPECT_TRUE(world.errors.empty()) << world.errors[0];
}

TEST(ExpertsFakeComm, DetectsMismatchedCounts) {
  FakeWorld world(2);
  std::vector<dynrt::StatusPtr> statuses(2);
  runRanks(world, [&](dynrt_comm_t *comm, int r) {
    uint64_t sendBytes[2] = {4, 4}, recvBytes[2] = {4, r == 1 ? 8u : 4u};
    unsigned char send[8] = {}, recv[16];
    statuses[r].reset(
        comm->alltoallv(comm, send, sendBytes, recv, recvBytes));
  });
  EXPECT_FALSE(statuses[0]);
  ASSERT_TRUE(statuses[1]);
  EXPECT_EQ(dynrt_status_code(statuses[1].get()), DYNRT_INTERNAL);
  ASSERT_EQ(world.errors.size(), 1u);
}

//===--------------------------------------------------------------------===//
// exchangeRows on R ranks
//===--------------------------------------------------------------------===//

// The transform the experts apply: on rank r, local expert e is global
// expert r * E/R + e, and turns x into 2x + that index.
float expertFn(float x, int64_t globalExpert) {
  return 2.0f * x + float(globalExpert);
}

void exchangeOnRanks(int R, int64_t EL, int64_t rows, int64_t D,
                     uint32_t seed) {
  const int64_t E = R * EL, emptyExpert = E > 1 ? 1 : -1;
  SCOPED_TRACE(::testing::Message() << "R=" << R << " E=" << E << " rows="
                                    << rows << " D=" << D << " seed=" << seed);
  std::mt19937 rng(seed);
  constexpr int kRounds = 3;
  // Every round with new dispatch data, on the same state and scratch.
  std::vector<std::vector<Dispatch>> data;
  for (int round = 0; round < kRounds; ++round)
    data.push_back(makeDispatch(rng, R, E, rows, D, emptyExpert));

  FakeWorld world(R);
  struct Result {
    std::vector<std::vector<float>> forward, back;
    std::vector<uint64_t> sentForward, sentBack;
    std::string error;
  };
  std::vector<Result> results(R);
  runRanks(world, [&](dynrt_comm_t *comm, int r) {
    Result &res = results[r];
    ExchangeRunState state;
    ExchangeScratch scratch;
    for (int round = 0; round < kRounds; ++round) {
      const Dispatch &d = data[round][r];
      std::vector<float> out(EL * R * rows * D, kNaN);
      uint64_t sent = 0;
      dynrt::StatusPtr st(dynrt::exchangeRows(
          comm, makeConfig(E, R, rows, D, false), d.in.data(), d.slot.data(),
          out.data(), state, scratch, sent));
      if (st) {
        res.error = fmt::format("round {} forward: {}", round,
                                dynrt_status_message(st.get()));
        return;
      }
      res.sentForward.push_back(sent);
      res.forward.push_back(out);
      for (int64_t e = 0; e < EL; ++e)
        for (int64_t i = 0; i < R * rows * D; ++i) {
          float &v = out[e * R * rows * D + i];
          v = expertFn(v, r * EL + e);
        }
      std::vector<float> back(E * rows * D, kNaN);
      sent = 0;
      st.reset(dynrt::exchangeRows(comm, makeConfig(E, R, rows, D, true),
                                   out.data(), d.slot.data(), back.data(),
                                   state, scratch, sent));
      if (st) {
        res.error = fmt::format("round {} back: {}", round,
                                dynrt_status_message(st.get()));
        return;
      }
      res.sentBack.push_back(sent);
      res.back.push_back(back);
    }
  });
  for (const std::string &e : world.errors)
    ADD_FAILURE() << "fake communicator: " << e;
  for (int r = 0; r < R; ++r)
    ASSERT_EQ(results[r].error, "") << "rank " << r;

  const uint64_t rowBytes = D * sizeof(float);
  for (int round = 0; round < kRounds; ++round) {
    const std::vector<Dispatch> &d = data[round];
    for (int r = 0; r < R; ++r) {
      SCOPED_TRACE(::testing::Message() << "round " << round << " rank " << r);
      // Forward: out[e, s * rows + i] = the i-th filled row rank s
      // dispatched to global expert r * EL + e; zeros after.
      const std::vector<float> &fwd = results[r].forward[round];
      uint64_t wantSentForward = (R - 1) * EL * sizeof(int64_t);
      uint64_t wantSentBack = 0;
      for (int64_t g = 0; g < E; ++g)
        if (g / EL != r)
          wantSentForward += d[r].filled(g, rows).size() * rowBytes;
      for (int64_t e = 0; e < EL; ++e)
        for (int s = 0; s < R; ++s) {
          int64_t g = r * EL + e;
          std::vector<int64_t> f = d[s].filled(g, rows);
          if (s != r)
            wantSentBack += f.size() * rowBytes;
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t k = 0; k < D; ++k) {
              float want = i < int64_t(f.size())
                               ? d[s].in[(g * rows + f[i]) * D + k]
                               : 0.0f;
              ASSERT_EQ(fwd[((e * R + s) * rows + i) * D + k], want)
                  << "local expert " << e << " from rank " << s << " row "
                  << i << " feature " << k;
            }
        }
      // Back: every filled dispatch row transformed by its global expert.
      const std::vector<float> &back = results[r].back[round];
      for (int64_t g = 0; g < E; ++g)
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t k = 0; k < D; ++k) {
            int64_t at = (g * rows + i) * D + k;
            float want =
                d[r].slot[g * rows + i] >= 0 ? expertFn(d[r].in[at], g) : 0.0f;
            ASSERT_EQ(back[at], want)
                << "expert " << g << " row " << i << " feature " << k;
          }
      EXPECT_EQ(results[r].sentForward[round], wantSentForward);
      EXPECT_EQ(results[r].sentBack[round], wantSentBack);
    }
  }
}

TEST(ExpertsExchangeRanks, TwoRanks) {
  for (uint32_t seed : {1u, 2u, 3u})
    exchangeOnRanks(2, 2, 5, 3, seed);
  exchangeOnRanks(2, 1, 1, 1, 4);
  exchangeOnRanks(2, 3, 7, 8, 5);
}

TEST(ExpertsExchangeRanks, FourRanks) {
  for (uint32_t seed : {1u, 2u, 3u})
    exchangeOnRanks(4, 2, 5, 3, seed);
  exchangeOnRanks(4, 1, 3, 2, 6);
  exchangeOnRanks(4, 3, 6, 4, 7);
}

TEST(ExpertsExchangeRanks, OneRankThroughAComm) {
  // A communicator of size 1 behaves like comm NULL.
  exchangeOnRanks(1, 3, 4, 5, 8);
}

TEST(ExpertsExchangeRanks, CountsAboveRowsFail) {
  for (int64_t bad : {int64_t(6), int64_t(-1)}) {
    constexpr int R = 2;
    constexpr int64_t EL = 2, E = R * EL, rows = 5, D = 3;
    std::mt19937 rng(21);
    std::vector<Dispatch> d = makeDispatch(rng, R, E, rows, D, -1);
    FakeWorld world(R);
    // Rank 1 receives `bad` as rank 0's count of rows for expert 2 (its
    // local expert 0), in the counts exchange.
    world.corruptRank = 1;
    world.corruptCall = 0;
    world.corruptValue = bad;
    std::vector<dynrt::StatusPtr> statuses(R);
    std::vector<std::vector<float>> outs(R);
    runRanks(world, [&](dynrt_comm_t *comm, int r) {
      ExchangeRunState state;
      ExchangeScratch scratch;
      uint64_t sent = 0;
      outs[r].assign(EL * R * rows * D, kNaN);
      statuses[r].reset(dynrt::exchangeRows(
          comm, makeConfig(E, R, rows, D, false, 2), d[r].in.data(),
          d[r].slot.data(), outs[r].data(), state, scratch, sent));
    });
    EXPECT_TRUE(failsWith(statuses[1].release(), DYNRT_FAILED_PRECONDITION,
                          {"route 2", "rank 0 sends " + std::to_string(bad) +
                                          " rows for expert 2",
                           "[0, 5]"}));
    // Rank 0 goes on to the rows and finds rank 1 gone.
    EXPECT_TRUE(failsWith(statuses[0].release(), DYNRT_UNAVAILABLE,
                          {"a rank left"}));
    EXPECT_TRUE(world.errors.empty());
  }
}

TEST(ExpertsExchangeRanks, CommSizeMismatch) {
  FakeWorld world(2);
  std::vector<dynrt::StatusPtr> statuses(2);
  runRanks(world, [&](dynrt_comm_t *comm, int r) {
    std::vector<float> in(4 * 2 * 1, 1.0f), out(4 * 2 * 1, kNaN);
    std::vector<int32_t> slot(4 * 2, 0);
    ExchangeRunState state;
    ExchangeScratch scratch;
    uint64_t sent = 0;
    statuses[r].reset(dynrt::exchangeRows(comm, makeConfig(4, 4, 2, 1, false),
                                          in.data(), slot.data(), out.data(),
                                          state, scratch, sent));
  });
  EXPECT_TRUE(failsWith(statuses[0].release(), DYNRT_FAILED_PRECONDITION,
                        {"compiled for 4 ranks", "rank 0 of 2"}));
  EXPECT_TRUE(failsWith(statuses[1].release(), DYNRT_FAILED_PRECONDITION,
                        {"compiled for 4 ranks", "rank 1 of 2"}));
}

//===--------------------------------------------------------------------===//
// modelFingerprint and agreeOnModel
//===--------------------------------------------------------------------===//

// A small hand-made expert-parallel descriptor; each instance owns its
// arrays, so two instances share no pointers.
struct ModelDesc {
  ModelDesc() {
    inputs = {spec("x", DYNRT_F32, {4, 8})};
    outputs = {spec("y", DYNRT_F32, {4, 8})};
    weights = {spec("w", DYNRT_F32, {2, 8, 8}), spec("b", DYNRT_F32, {8})};
    sharded = {1, 0};
    exchangeArgs = {spec("in", DYNRT_F32, {4, 3, 8}),
                    spec("slot_token", DYNRT_I32, {12}),
                    spec("out", DYNRT_F32, {2, 6, 8})};
    config = exchangeConfig(0, 0, 4, 2, 3, 8);
    routes.push_back({"route0", 4, 4, 1});
    dynrt_kernel_desc_t k{};
    k.name = "exchange0";
    k.num_args = 3;
    k.args = exchangeArgs.data();
    k.builtin = DYNRT_BUILTIN_EXPERT_EXCHANGE;
    k.num_config = int32_t(config.size());
    k.config = config.data();
    kernels.push_back(k);
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "moe";
    desc.num_inputs = 1;
    desc.inputs = inputs.data();
    desc.num_outputs = 1;
    desc.outputs = outputs.data();
    desc.num_weights = 2;
    desc.weights = weights.data();
    desc.num_kernels = 1;
    desc.kernels = kernels.data();
    desc.arena_bytes = 4096;
    desc.exit_layer_output = -1;
    desc.num_routes = 1;
    desc.routes = routes.data();
    desc.num_ranks = 2;
    desc.weight_sharded = sharded.data();
  }
  ModelDesc(const ModelDesc &) = delete;

  std::vector<dynrt_param_spec_t> inputs, outputs, weights, exchangeArgs;
  std::vector<uint8_t> sharded;
  std::vector<double> config;
  std::vector<dynrt_route_desc_t> routes;
  std::vector<dynrt_kernel_desc_t> kernels;
  dynrt_model_desc_t desc{};
};

TEST(ExpertsFingerprint, SameModelSameValue) {
  ModelDesc a, b;
  EXPECT_EQ(dynrt::modelFingerprint(a.desc), dynrt::modelFingerprint(b.desc));
  EXPECT_EQ(dynrt::modelFingerprint(a.desc), dynrt::modelFingerprint(a.desc));
}

TEST(ExpertsFingerprint, ChangesWithTheModel) {
  ModelDesc base;
  const uint64_t h = dynrt::modelFingerprint(base.desc);
  {
    ModelDesc m;
    m.config[DYNRT_EXCHANGE_CFG_ROWS] = 4;
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "kernel config";
  }
  {
    ModelDesc m;
    m.config[DYNRT_EXCHANGE_CFG_DIRECTION] = 1;
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "kernel config";
  }
  {
    ModelDesc m;
    m.weights[0].shape[2] = 9;
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "weight shape";
  }
  {
    ModelDesc m;
    m.weights[1].dtype = DYNRT_F64;
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "weight dtype";
  }
  {
    ModelDesc m;
    m.desc.num_ranks = 4;
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "num_ranks";
  }
  {
    ModelDesc m;
    m.desc.name = "moe2";
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "name";
  }
  {
    ModelDesc m;
    m.routes[0].num_experts = 8;
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "route";
  }
  {
    ModelDesc m;
    m.kernels[0].name = "exchange1";
    EXPECT_NE(dynrt::modelFingerprint(m.desc), h) << "kernel name";
  }
}

TEST(ExpertsAgree, NullCommNoErrorIsOk) {
  ModelDesc m;
  EXPECT_EQ(dynrt::agreeOnModel(nullptr, m.desc, nullptr), nullptr);
}

TEST(ExpertsAgree, NullCommReturnsTheLocalError) {
  ModelDesc m;
  dynrt_status_t local =
      dynrt::makeStatus(DYNRT_NOT_FOUND, std::string("weights missing"));
  dynrt_status_t got = dynrt::agreeOnModel(nullptr, m.desc, local);
  EXPECT_EQ(got, local);
  EXPECT_TRUE(failsWith(got, DYNRT_NOT_FOUND, {"weights missing"}));
}

TEST(ExpertsAgree, RanksAgree) {
  FakeWorld world(2);
  std::vector<dynrt::StatusPtr> statuses(2);
  runRanks(world, [&](dynrt_comm_t *comm, int r) {
    ModelDesc m;
    statuses[r].reset(dynrt::agreeOnModel(comm, m.desc, nullptr));
  });
  EXPECT_FALSE(statuses[0]) << dynrt_status_message(statuses[0].get());
  EXPECT_FALSE(statuses[1]) << dynrt_status_message(statuses[1].get());
  EXPECT_TRUE(world.errors.empty());
}

TEST(ExpertsAgree, RankFailedOrDiffers) {
  {
    // Rank 1 could not load: it gets its own error, rank 0 is told.
    FakeWorld world(2);
    std::vector<dynrt_status_t> locals(2, nullptr), statuses(2, nullptr);
    locals[1] = dynrt::makeStatus(DYNRT_NOT_FOUND, std::string("no weights"));
    runRanks(world, [&](dynrt_comm_t *comm, int r) {
      ModelDesc m;
      statuses[r] = dynrt::agreeOnModel(comm, m.desc, locals[r]);
    });
    EXPECT_EQ(statuses[1], locals[1]);
    EXPECT_TRUE(failsWith(statuses[1], DYNRT_NOT_FOUND, {"no weights"}));
    EXPECT_TRUE(failsWith(statuses[0], DYNRT_FAILED_PRECONDITION,
                          {"model 'moe'", "rank 1 could not load"}));
  }
  {
    // Rank 1 loaded another model.
    FakeWorld world(2);
    std::vector<dynrt_status_t> statuses(2, nullptr);
    runRanks(world, [&](dynrt_comm_t *comm, int r) {
      ModelDesc m;
      if (r == 1)
        m.config[DYNRT_EXCHANGE_CFG_ROWS] = 4;
      statuses[r] = dynrt::agreeOnModel(comm, m.desc, nullptr);
    });
    EXPECT_TRUE(failsWith(statuses[0], DYNRT_FAILED_PRECONDITION,
                          {"rank 1 loaded a different model than rank 0"}));
    EXPECT_TRUE(failsWith(statuses[1], DYNRT_FAILED_PRECONDITION,
                          {"rank 0 loaded a different model than rank 1"}));
  }
}

} // namespace
