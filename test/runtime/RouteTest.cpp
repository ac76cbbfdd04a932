//===- RouteTest.cpp - the dyn.route assignment builtin -------------------===//
//
// dynrt::routeAssign on small hand-checked cases for every strategy
// (docs/moe.md): choices and weights, capacity with both priorities and
// groups, the no-capacity, dropless and BASE slot layouts, renormalization,
// SplitMix64, hash tables, errors. Every call checks that nothing is written
// past the output buffers.
//
//===----------------------------------------------------------------------===//

#include "runtime/Route.h"

#include <HalideRuntime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <random>
#include <vector>

namespace {

using dynrt::RouteStrategy;

constexpr int32_t kCanary = 0x5A5A5A5A;
constexpr size_t kCanaryCount = 16;

// SplitMix64 of docs/moe.md, written out again for the tests.
uint64_t splitMix(uint64_t seed, uint64_t t) {
  uint64_t z = seed + (t + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double uniform(uint64_t seed, uint64_t t) {
  return static_cast<double>(splitMix(seed, t) >> 40) / 16777216.0;
}

// softmax in float32, the sum in ascending order.
std::vector<float> softmaxOf(const std::vector<float> &l) {
  float m = *std::max_element(l.begin(), l.end()), sum = 0;
  std::vector<float> p(l.size());
  for (size_t i = 0; i < l.size(); ++i)
    sum += p[i] = std::exp(l[i] - m);
  for (float &x : p)
    x /= sum;
  return p;
}

// A route config as the compiler would write it (slots from the mode).
struct Config {
  RouteStrategy strategy;
  int64_t T, E, K, k = 1;
  int64_t capacity = 0, groups = 1, block = 0;
  bool score = false, renormalize = false, table = false;
  uint64_t seed = 0;
  double temperature = 1.0, threshold = 0.0;

  Config(RouteStrategy s, int64_t T, int64_t E, int64_t K)
      : strategy(s), T(T), E(E), K(K), k(K) {}
  int64_t blocks() const {
    return block ? (T * K + E * (block - 1) + block - 1) / block : 0;
  }
  int64_t slots() const {
    if (strategy == RouteStrategy::Base)
      return T;
    if (capacity)
      return E * groups * capacity;
    if (block)
      return blocks() * block;
    return E * T;
  }
  std::vector<double> values() const {
    std::vector<double> c(DYNRT_ROUTE_CFG_COUNT, 0.0);
    c[DYNRT_ROUTE_CFG_ROUTE] = 0;
    c[DYNRT_ROUTE_CFG_STRATEGY] = static_cast<double>(strategy);
    c[DYNRT_ROUTE_CFG_TOKENS] = T;
    c[DYNRT_ROUTE_CFG_EXPERTS] = E;
    c[DYNRT_ROUTE_CFG_PER_TOKEN] = K;
    c[DYNRT_ROUTE_CFG_K] = k;
    c[DYNRT_ROUTE_CFG_CAPACITY] = capacity;
    c[DYNRT_ROUTE_CFG_GROUPS] = groups;
    c[DYNRT_ROUTE_CFG_PRIORITY] = score;
    c[DYNRT_ROUTE_CFG_BLOCK] = block;
    c[DYNRT_ROUTE_CFG_SEED_LO] = static_cast<double>(seed & 0xFFFFFFFFu);
    c[DYNRT_ROUTE_CFG_SEED_HI] = static_cast<double>(seed >> 32);
    c[DYNRT_ROUTE_CFG_TEMPERATURE] = temperature;
    c[DYNRT_ROUTE_CFG_THRESHOLD] = threshold;
    c[DYNRT_ROUTE_CFG_RENORMALIZE] = renormalize;
    c[DYNRT_ROUTE_CFG_HAS_TABLE] = table;
    c[DYNRT_ROUTE_CFG_SLOTS] = static_cast<double>(slots());
    c[DYNRT_ROUTE_CFG_BLOCKS] = static_cast<double>(blocks());
    return c;
  }
};

// A dense row-major buffer with canaries after its end.
class Buffer {
public:
  Buffer(halide_type_t type, std::vector<int64_t> shape)
      : shape_(std::move(shape)) {
    size_t n = 1;
    for (int64_t d : shape_)
      n *= static_cast<size_t>(d);
    count_ = n;
    words_.assign(n * (type.bits / 32) + kCanaryCount, kCanary);
    std::memset(&buf_, 0, sizeof(buf_));
    buf_.host = reinterpret_cast<uint8_t *>(words_.data());
    buf_.type = type;
    buf_.dimensions = static_cast<int32_t>(shape_.size());
    buf_.dim = dims_;
    int32_t stride = 1;
    for (size_t d = 0; d < shape_.size(); ++d) {
      int32_t extent = static_cast<int32_t>(shape_[shape_.size() - 1 - d]);
      dims_[d] = halide_dimension_t(0, extent, stride);
      stride *= extent;
    }
  }
  Buffer(const Buffer &) = delete;
  halide_buffer_t *get() { return &buf_; }
  template <typename T> T *data() { return reinterpret_cast<T *>(words_.data()); }
  template <typename T> std::vector<T> values() {
    return std::vector<T>(data<T>(), data<T>() + count_);
  }
  bool canariesIntact() const {
    return std::all_of(words_.end() - kCanaryCount, words_.end(),
                       [](int32_t w) { return w == kCanary; });
  }

private:
  std::vector<int64_t> shape_;
  size_t count_ = 0;
  std::vector<int32_t> words_;
  halide_buffer_t buf_;
  halide_dimension_t dims_[DYNRT_MAX_RANK];
};

const halide_type_t kF32(halide_type_float, 32);
const halide_type_t kI32(halide_type_int, 32);

struct Result {
  bool ok = false;
  std::string error;
  std::vector<int32_t> slotToken, tokSlot, blockExpert;
  std::vector<float> tokWeight;
  dynrt::RouteStats stats;
};

// Runs the builtin on `gate` (logits [T, E] or ids [T]) and `table`.
Result route(const Config &config, const std::vector<float> &logits,
             const std::vector<int32_t> &ids = {},
             const std::vector<int32_t> &table = {}) {
  std::vector<std::unique_ptr<Buffer>> bufs;
  if (config.strategy == RouteStrategy::Hash) {
    bufs.push_back(std::make_unique<Buffer>(kI32, std::vector<int64_t>{config.T}));
    std::copy(ids.begin(), ids.end(), bufs.back()->data<int32_t>());
  } else {
    bufs.push_back(std::make_unique<Buffer>(kF32, std::vector<int64_t>{config.T, config.E}));
    std::copy(logits.begin(), logits.end(), bufs.back()->data<float>());
  }
  if (config.table) {
    bufs.push_back(std::make_unique<Buffer>(
        kI32, std::vector<int64_t>{static_cast<int64_t>(table.size())}));
    std::copy(table.begin(), table.end(), bufs.back()->data<int32_t>());
  }
  size_t firstOut = bufs.size();
  bufs.push_back(std::make_unique<Buffer>(kI32, std::vector<int64_t>{config.slots()}));
  bufs.push_back(std::make_unique<Buffer>(kI32, std::vector<int64_t>{config.T, config.K}));
  bufs.push_back(std::make_unique<Buffer>(kF32, std::vector<int64_t>{config.T, config.K}));
  if (config.block)
    bufs.push_back(std::make_unique<Buffer>(kI32, std::vector<int64_t>{config.blocks()}));
  std::vector<halide_buffer_t *> args;
  for (auto &b : bufs)
    args.push_back(b->get());
  std::vector<double> values = config.values();
  Result r;
  dynrt::RouteWorkspace ws;
  r.ok = dynrt::routeAssign(values.data(), static_cast<int32_t>(values.size()),
                            args.data(), static_cast<int32_t>(args.size()),
                            &r.stats, &ws, r.error);
  for (auto &b : bufs)
    EXPECT_TRUE(b->canariesIntact()) << "written past an output buffer";
  r.slotToken = bufs[firstOut]->values<int32_t>();
  r.tokSlot = bufs[firstOut + 1]->values<int32_t>();
  r.tokWeight = bufs[firstOut + 2]->values<float>();
  if (config.block)
    r.blockExpert = bufs[firstOut + 3]->values<int32_t>();
  return r;
}

std::vector<float> randomLogits(int64_t n, uint32_t seed, float scale = 2.0f) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> l(static_cast<size_t>(n));
  for (float &x : l)
    x = dist(gen);
  return l;
}

// The invariants every successful result has: slot tables consistent with
// each other, weights 0 exactly where there is no slot, stats matching.
void checkConsistent(const Config &c, const Result &r) {
  ASSERT_TRUE(r.ok) << r.error;
  std::vector<uint64_t> perExpert(c.E, 0);
  uint64_t dropped = 0;
  for (int64_t t = 0; t < c.T; ++t)
    for (int64_t j = 0; j < c.K; ++j) {
      int64_t pair = t * c.K + j;
      int32_t a = r.stats.assignment[pair], slot = r.tokSlot[pair];
      if (a >= 0) {
        ASSERT_GE(slot, 0);
        ASSERT_LT(slot, c.slots());
        EXPECT_EQ(r.slotToken[slot], t);
        ++perExpert[a];
      } else {
        EXPECT_EQ(slot, -1);
        EXPECT_EQ(r.tokWeight[pair], 0.0f);
        if (a <= -2)
          ++dropped;
      }
    }
  for (int64_t s = 0; s < c.slots(); ++s) {
    int32_t t = r.slotToken[s];
    if (t < 0)
      continue;
    bool found = false;
    for (int64_t j = 0; j < c.K; ++j)
      found |= r.tokSlot[t * c.K + j] == s;
    EXPECT_TRUE(found) << "slot " << s;
  }
  EXPECT_EQ(r.stats.tokensPerExpert, perExpert);
  EXPECT_EQ(r.stats.dropped, dropped);
}

//===----------------------------------------------------------------------===//
// SplitMix64
//===----------------------------------------------------------------------===//

TEST(RouteRandom, SplitMix64KnownValues) {
  // The first outputs of the reference SplitMix64 with state 0.
  EXPECT_EQ(dynrt::routeRandomBits(0, 0), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(dynrt::routeRandomBits(0, 1), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(dynrt::routeRandomBits(0, 2), 0x06C45D188009454Full);
  // A negative seed is its two's complement.
  EXPECT_EQ(dynrt::routeRandomBits(~uint64_t(0), 0), 0xE4D971771B652C20ull);
  for (uint64_t t = 0; t < 100; ++t)
    EXPECT_EQ(dynrt::routeRandomBits(12345, t), splitMix(12345, t));
}

//===----------------------------------------------------------------------===//
// top_k, switch
//===----------------------------------------------------------------------===//

TEST(RouteTopK, TwoChoicesOrderWeightsAndSlots) {
  Config c(RouteStrategy::TopK, 3, 4, 2);
  std::vector<float> l = {1, 3, 2, 0,   //
                          2, 2, 1, 2,   // ties: lower index first
                          -1, 0, 5, 4};
  Result r = route(c, l);
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{1, 2, 0, 1, 2, 3}));
  for (int t = 0; t < 3; ++t) {
    std::vector<float> p =
        softmaxOf(std::vector<float>(l.begin() + 4 * t, l.begin() + 4 * t + 4));
    for (int j = 0; j < 2; ++j)
      EXPECT_EQ(r.tokWeight[t * 2 + j], p[r.stats.assignment[t * 2 + j]]);
  }
  // No capacity: expert e owns rows [3e, 3e + 3), handed out choice 0 of
  // every token first, then choice 1.
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{3, 7, 0, 4, 6, 9}));
  EXPECT_EQ(r.slotToken,
            (std::vector<int32_t>{1, -1, -1, 0, 1, -1, 2, 0, -1, 2, -1, -1}));
  EXPECT_EQ(r.stats.dropped, 0u);
  EXPECT_EQ(r.stats.tokensPerExpert, (std::vector<uint64_t>{1, 2, 2, 1}));
}

TEST(RouteTopK, NegativeInfinityLogitsAreAllowed) {
  float inf = std::numeric_limits<float>::infinity();
  Config c(RouteStrategy::TopK, 1, 3, 2);
  Result r = route(c, {-inf, 0, -inf});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(r.tokWeight, (std::vector<float>{1.0f, 0.0f}));
}

TEST(RouteTopK, RenormalizeMakesWeightsSumToOne) {
  Config c(RouteStrategy::TopK, 2, 4, 2);
  c.renormalize = true;
  std::vector<float> l = {0.5f, 1.5f, -1, 0, 3, 0, 0, 2.5f};
  Result r = route(c, l);
  checkConsistent(c, r);
  for (int t = 0; t < 2; ++t) {
    std::vector<float> p =
        softmaxOf(std::vector<float>(l.begin() + 4 * t, l.begin() + 4 * t + 4));
    float p0 = p[r.stats.assignment[2 * t]], p1 = p[r.stats.assignment[2 * t + 1]];
    EXPECT_EQ(r.tokWeight[2 * t], p0 / (p0 + p1));
    EXPECT_EQ(r.tokWeight[2 * t + 1], p1 / (p0 + p1));
  }
}

// Four tokens that all want expert 0, capacity 2 of it.
std::vector<float> crowdedLogits() {
  return {1.0f, 0.0f,  // p0 = 0.73
          3.0f, 0.0f,  // p0 = 0.95
          0.5f, 0.0f,  // p0 = 0.62
          2.0f, 0.0f}; // p0 = 0.88
}

TEST(RouteSwitch, CapacityTokenOrder) {
  Config c(RouteStrategy::Switch, 4, 2, 1);
  c.capacity = 2;
  Result r = route(c, crowdedLogits());
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{0, 0, -2, -2}));
  EXPECT_EQ(r.stats.dropped, 2u);
  EXPECT_EQ(r.stats.tokensPerExpert, (std::vector<uint64_t>{2, 0}));
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{0, 1, -1, -1}));
  EXPECT_EQ(r.slotToken, (std::vector<int32_t>{0, 1, -1, -1}));
  EXPECT_EQ(r.tokWeight[2], 0.0f);
}

TEST(RouteSwitch, CapacityScorePriority) {
  Config c(RouteStrategy::Switch, 4, 2, 1);
  c.capacity = 2;
  c.score = true;
  Result r = route(c, crowdedLogits());
  checkConsistent(c, r);
  // Highest weight first: token 1, then token 3.
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{-2, 0, -2, 0}));
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{-1, 0, -1, 1}));
  EXPECT_EQ(r.slotToken, (std::vector<int32_t>{1, 3, -1, -1}));
}

TEST(RouteSwitch, ScorePriorityTiesGoByTokenIndex) {
  Config c(RouteStrategy::Switch, 3, 2, 1);
  c.capacity = 1;
  c.score = true;
  Result r = route(c, {1, 0, 2, 0, 2, 0});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{-2, 0, -2}));
}

TEST(RouteSwitch, GroupsHaveTheirOwnCapacity) {
  Config c(RouteStrategy::Switch, 4, 2, 1);
  c.capacity = 1;
  c.groups = 2;
  Result r = route(c, crowdedLogits());
  checkConsistent(c, r);
  // Group 0 = tokens 0, 1; group 1 = tokens 2, 3; expert 0 keeps the first
  // of each.
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{0, -2, 0, -2}));
  // Row of (e, g, c) = e * G * C + g * C + c.
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{0, -1, 1, -1}));
  c.score = true;
  r = route(c, crowdedLogits());
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{-2, 0, -2, 0}));
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{-1, 0, -1, 1}));
}

TEST(RouteSwitch, RenormalizeGivesOne) {
  Config c(RouteStrategy::Switch, 4, 2, 1);
  c.renormalize = true;
  Result r = route(c, crowdedLogits());
  checkConsistent(c, r);
  EXPECT_EQ(r.tokWeight, (std::vector<float>{1, 1, 1, 1}));
}

TEST(RouteTopK, CapacityIsHandedOutChoiceRankMajor) {
  // Both tokens want experts 0 then 1; capacity 1: token 0's first choice,
  // then token 1's first choice (dropped), then token 0's second choice and
  // token 1's second choice (dropped).
  Config c(RouteStrategy::TopK, 2, 3, 2);
  c.capacity = 1;
  Result r = route(c, {2, 1, 0, 2, 1, 0});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{0, 1, -2, -3}));
  // A token's second choice is placed after every token's first choice: with
  // token 1 preferring expert 1, it takes expert 1's slot before token 0's
  // second choice does.
  r = route(c, {2, 1, 0, 1, 2, 0});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{0, -3, 1, -2}));
}

//===----------------------------------------------------------------------===//
// gshard
//===----------------------------------------------------------------------===//

TEST(RouteGShard, SecondExpertKeptIffUniformBelowTwiceItsWeight) {
  Config c(RouteStrategy::GShard, 64, 4, 2);
  c.seed = 42;
  std::vector<float> l = randomLogits(64 * 4, 7, 1.0f);
  Result r = route(c, l);
  checkConsistent(c, r);
  int kept = 0, skipped = 0;
  for (int t = 0; t < 64; ++t) {
    std::vector<float> row(l.begin() + 4 * t, l.begin() + 4 * t + 4);
    std::vector<float> p = softmaxOf(row);
    int e1 = static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
    int e2 = -1;
    for (int e = 0; e < 4; ++e)
      if (e != e1 && (e2 < 0 || row[e] > row[e2]))
        e2 = e;
    float g1 = p[e1] / (p[e1] + p[e2]), g2 = p[e2] / (p[e1] + p[e2]);
    EXPECT_EQ(r.stats.assignment[2 * t], e1);
    EXPECT_EQ(r.tokWeight[2 * t], g1);
    bool keep = uniform(42, t) < 2.0 * static_cast<double>(g2);
    EXPECT_EQ(r.stats.assignment[2 * t + 1], keep ? e2 : -1) << "token " << t;
    EXPECT_EQ(r.tokWeight[2 * t + 1], keep ? g2 : 0.0f);
    (keep ? kept : skipped)++;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(skipped, 0);
}

TEST(RouteGShard, HandComputedDecisions) {
  // Seed 42: u(0) = 0.7415648..., u(1) = 0.1599103... (SplitMix64 by hand,
  // in Python). Token 0: g2 = 1/(1+e) = 0.2689, 2 g2 = 0.538 < u: dropped
  // choice. Token 1: the same g2 > u / 2: kept.
  Config c(RouteStrategy::GShard, 2, 3, 2);
  c.seed = 42;
  EXPECT_NEAR(uniform(42, 0), 0.7415648698806763, 1e-15);
  EXPECT_NEAR(uniform(42, 1), 0.1599103808403015, 1e-15);
  Result r = route(c, {1, 0, -5, -5, 0, 1});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{0, -1, 2, 1}));
  // Renormalize changes nothing.
  c.renormalize = true;
  Result again = route(c, {1, 0, -5, -5, 0, 1});
  EXPECT_EQ(again.tokWeight, r.tokWeight);
}

//===----------------------------------------------------------------------===//
// base
//===----------------------------------------------------------------------===//

// The auction of docs/moe.md, written as plainly as possible.
std::vector<int> plainAuction(const std::vector<float> &l, int T, int E) {
  int cap = T / E;
  std::vector<double> price(E, 0.0);
  std::vector<std::vector<std::pair<int, double>>> holders(E);
  std::deque<int> queue;
  for (int t = 0; t < T; ++t)
    queue.push_back(t);
  while (!queue.empty()) {
    int t = queue.front();
    queue.pop_front();
    std::vector<double> v(E);
    for (int e = 0; e < E; ++e)
      v[e] = static_cast<double>(l[t * E + e]) - price[e];
    int e1 = 0;
    for (int e = 1; e < E; ++e)
      if (v[e] > v[e1])
        e1 = e;
    double v2 = v[e1];
    bool any = false;
    for (int e = 0; e < E; ++e)
      if (e != e1 && (!any || v[e] > v2)) {
        v2 = v[e];
        any = true;
      }
    double bid = price[e1] + (v[e1] - v2) + 1e-3;
    holders[e1].push_back({t, bid});
    if (static_cast<int>(holders[e1].size()) > cap) {
      size_t worst = 0;
      for (size_t i = 1; i < holders[e1].size(); ++i) {
        auto [ti, bi] = holders[e1][i];
        auto [tw, bw] = holders[e1][worst];
        if (bi < bw || (bi == bw && ti > tw))
          worst = i;
      }
      queue.push_back(holders[e1][worst].first);
      holders[e1].erase(holders[e1].begin() + worst);
    }
    if (static_cast<int>(holders[e1].size()) == cap) {
      double low = holders[e1][0].second;
      for (auto &h : holders[e1])
        low = std::min(low, h.second);
      price[e1] = low;
    }
  }
  std::vector<int> expert(T, -1);
  for (int e = 0; e < E; ++e)
    for (auto &h : holders[e])
      expert[h.first] = e;
  return expert;
}

TEST(RouteBase, HandCase) {
  // Everyone prefers expert 0; the two with the largest margin get it.
  Config c(RouteStrategy::Base, 4, 2, 1);
  std::vector<float> l = {1, 0, 3, 0, 0, 0, 2, 0};
  Result r = route(c, l);
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{1, 0, 1, 0}));
  // Rows: e * T/E + position among e's tokens in ascending token order.
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{2, 0, 3, 1}));
  EXPECT_EQ(r.slotToken, (std::vector<int32_t>{1, 3, 0, 2}));
  for (int t = 0; t < 4; ++t) {
    float x = l[2 * t + r.stats.assignment[t]];
    EXPECT_EQ(r.tokWeight[t], 1.0f / (1.0f + std::exp(-x)));
  }
}

TEST(RouteBase, BalancedAndEqualToPlainAuction) {
  for (auto [T, E, seed] : std::vector<std::tuple<int, int, uint32_t>>{
           {8, 2, 1}, {64, 8, 2}, {512, 8, 3}, {96, 3, 4}, {16, 16, 5}, {5, 1, 6}}) {
    Config c(RouteStrategy::Base, T, E, 1);
    std::vector<float> l = randomLogits(int64_t(T) * E, seed);
    Result r = route(c, l);
    checkConsistent(c, r);
    std::vector<uint64_t> balanced(E, static_cast<uint64_t>(T / E));
    EXPECT_EQ(r.stats.tokensPerExpert, balanced);
    std::vector<int> plain = plainAuction(l, T, E);
    EXPECT_EQ(std::vector<int>(r.stats.assignment.begin(), r.stats.assignment.end()),
              plain)
        << "T=" << T << " E=" << E;
    // Positions follow ascending token order within each expert.
    std::vector<int> next(E, 0);
    for (int t = 0; t < T; ++t) {
      int e = r.stats.assignment[t];
      EXPECT_EQ(r.tokSlot[t], e * (T / E) + next[e]++);
    }
  }
}

TEST(RouteBase, NearOptimal) {
  // The auction's assignment is within T * eps of the best total score.
  Config c(RouteStrategy::Base, 6, 2, 1);
  std::vector<float> l = randomLogits(12, 9);
  Result r = route(c, l);
  checkConsistent(c, r);
  double got = 0;
  for (int t = 0; t < 6; ++t)
    got += l[2 * t + r.stats.assignment[t]];
  double best = -1e30;
  for (int mask = 0; mask < 64; ++mask) {
    if (__builtin_popcount(mask) != 3)
      continue;
    double total = 0;
    for (int t = 0; t < 6; ++t)
      total += l[2 * t + ((mask >> t) & 1)];
    best = std::max(best, total);
  }
  EXPECT_GE(got, best - 6 * 1e-3);
}

TEST(RouteBase, NonFiniteLogitFails) {
  Config c(RouteStrategy::Base, 4, 2, 1);
  Result r = route(c, {0, 0, 0, -std::numeric_limits<float>::infinity(), 0, 0, 0, 0});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("token 1, expert 1"), std::string::npos) << r.error;
  EXPECT_EQ(r.slotToken, std::vector<int32_t>(4, -1));
}

//===----------------------------------------------------------------------===//
// k_top1, dense_to_sparse
//===----------------------------------------------------------------------===//

TEST(RouteKTop1, OneExpertPerPrototype) {
  Config c(RouteStrategy::KTop1, 2, 6, 2); // prototypes {0, 1, 2}, {3, 4, 5}
  std::vector<float> l = {5, 1, 0, 0, 2, 2,   //
                          -1, 0, 4, 9, 9, 1};
  Result r = route(c, l);
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{0, 4, 2, 3}));
  std::vector<float> p = softmaxOf({0, 2, 2});
  EXPECT_EQ(r.tokWeight[1], p[1]);
  p = softmaxOf({-1, 0, 4});
  EXPECT_EQ(r.tokWeight[2], p[2]);
}

TEST(RouteDenseToSparse, VariableCounts) {
  Config c(RouteStrategy::DenseToSparse, 3, 4, 4);
  c.temperature = 0.5;
  c.threshold = 0.2;
  std::vector<float> l = {1, 1, 1, 1,     // all 0.25: four experts
                          3, 0, 0, 2.5f,  // two
                          5, 0, 0, 0};    // one
  Result r = route(c, l);
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment,
            (std::vector<int32_t>{0, 1, 2, 3, 0, 3, -1, -1, 0, -1, -1, -1}));
  std::vector<float> scaled = {3 / 0.5f, 0 / 0.5f, 0 / 0.5f, 2.5f / 0.5f};
  std::vector<float> q = softmaxOf(scaled);
  EXPECT_EQ(r.tokWeight[4], q[0]);
  EXPECT_EQ(r.tokWeight[5], q[3]);
  EXPECT_EQ(r.tokWeight[6], 0.0f);
  EXPECT_EQ(r.stats.tokensPerExpert, (std::vector<uint64_t>{3, 1, 1, 2}));
  // No expert above the threshold: no choice at all.
  c.threshold = 0.9;
  r = route(c, l);
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment[0], -1);
  EXPECT_EQ(r.stats.assignment[8], 0);
  // Renormalized: the kept weights sum to 1.
  c.threshold = 0.2;
  c.renormalize = true;
  r = route(c, l);
  EXPECT_EQ(r.tokWeight[4], q[0] / (q[0] + q[3]));
  EXPECT_EQ(r.tokWeight[8], 1.0f);
}

//===----------------------------------------------------------------------===//
// hash, random
//===----------------------------------------------------------------------===//

TEST(RouteHash, IdModExperts) {
  Config c(RouteStrategy::Hash, 5, 4, 1);
  Result r = route(c, {}, {5, -1, -7, 8, std::numeric_limits<int32_t>::min()});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{1, 3, 1, 0, 0}));
  EXPECT_EQ(r.tokWeight, std::vector<float>(5, 1.0f));
}

TEST(RouteHash, Table) {
  Config c(RouteStrategy::Hash, 3, 4, 1);
  c.table = true;
  Result r = route(c, {}, {4, 0, 3}, {2, 0, 1, 3, 2});
  checkConsistent(c, r);
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{2, 2, 3}));
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{6, 7, 9}));
}

TEST(RouteHash, IdOutsideTableFails) {
  Config c(RouteStrategy::Hash, 3, 4, 1);
  c.table = true;
  Result r = route(c, {}, {1, 9, 0}, {2, 0, 1, 3, 2});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("token id 9 at position 1"), std::string::npos) << r.error;
  EXPECT_EQ(r.tokSlot, std::vector<int32_t>(3, -1));
  r = route(c, {}, {1, 0, -3}, {2, 0, 1, 3, 2});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("token id -3 at position 2"), std::string::npos) << r.error;
  r = route(c, {}, {1, 0, 2}, {2, 0, 7, 3, 2});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("table[2] = 7"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("position 2"), std::string::npos) << r.error;
}

TEST(RouteRandom, FormulaAndReproducibility) {
  Config c(RouteStrategy::Random, 8, 5, 1);
  c.seed = 7;
  std::vector<float> l(40, 0.0f);
  Result r = route(c, l);
  checkConsistent(c, r);
  // ((z >> 40) * 5) >> 24 for seed 7, computed in Python.
  EXPECT_EQ(r.stats.assignment, (std::vector<int32_t>{1, 0, 4, 2, 2, 1, 2, 1}));
  EXPECT_EQ(route(c, randomLogits(40, 3)).stats.assignment, r.stats.assignment);
  c.seed = 8;
  EXPECT_NE(route(c, l).stats.assignment, r.stats.assignment);
}

TEST(RouteRandom, UniformEnough) {
  Config c(RouteStrategy::Random, 8000, 8, 1);
  c.seed = ~uint64_t(0) - 5; // a negative i64 seed
  Result r = route(c, std::vector<float>(64000, 0.0f));
  checkConsistent(c, r);
  for (uint64_t n : r.stats.tokensPerExpert) {
    EXPECT_GT(n, 900u);
    EXPECT_LT(n, 1100u);
  }
  for (int t = 0; t < 8000; ++t)
    ASSERT_EQ(r.stats.assignment[t],
              static_cast<int32_t>(((splitMix(c.seed, t) >> 40) * 8) >> 24));
}

//===----------------------------------------------------------------------===//
// dropless
//===----------------------------------------------------------------------===//

TEST(RouteDropless, BlockLayout) {
  Config c(RouteStrategy::TopK, 4, 3, 2);
  c.block = 2; // NB = ceil((8 + 3) / 2) = 6, S = 12
  ASSERT_EQ(c.blocks(), 6);
  std::vector<float> l = {3, 2, 0,  // 0, 1
                          3, 0, 2,  // 0, 2
                          2, 3, 0,  // 1, 0
                          3, 2, 1}; // 0, 1
  Result r = route(c, l);
  checkConsistent(c, r);
  // Expert 0: 4 pairs (2 blocks), expert 1: 3 (2 blocks), expert 2: 1 (1).
  EXPECT_EQ(r.blockExpert, (std::vector<int32_t>{0, 0, 1, 1, 2, -1}));
  // Within an expert: choice 0 of every token, then choice 1.
  EXPECT_EQ(r.slotToken,
            (std::vector<int32_t>{0, 1, 3, 2, 2, 0, 3, -1, 1, -1, -1, -1}));
  EXPECT_EQ(r.tokSlot, (std::vector<int32_t>{0, 5, 1, 8, 4, 3, 2, 6}));
  EXPECT_EQ(r.stats.dropped, 0u);
}

TEST(RouteDropless, NeverExceedsTheBound) {
  // Worst cases for padding: many experts with one pair each, or all pairs
  // on one expert; every kept row is in a block of its expert.
  for (int64_t b : {1, 3, 8, 64}) {
    for (uint32_t seed : {1u, 2u, 3u}) {
      Config c(RouteStrategy::TopK, 37, 9, 3);
      c.block = b;
      std::vector<float> l = randomLogits(37 * 9, seed, seed == 3 ? 0.0f : 3.0f);
      Result r = route(c, l);
      checkConsistent(c, r);
      for (int64_t pair = 0; pair < 37 * 3; ++pair)
        EXPECT_EQ(r.blockExpert[r.tokSlot[pair] / b], r.stats.assignment[pair]);
    }
    Config c(RouteStrategy::Hash, 37, 9, 1);
    c.block = b;
    Result r = route(c, {}, std::vector<int32_t>(37, 4));
    checkConsistent(c, r);
    EXPECT_EQ(r.blockExpert[0], 4);
  }
}

//===----------------------------------------------------------------------===//
// Config and buffer checks
//===----------------------------------------------------------------------===//

TEST(RouteChecks, InconsistentConfigFails) {
  Config c(RouteStrategy::TopK, 4, 2, 2);
  std::vector<double> v = c.values();
  dynrt::RouteConfig parsed;
  std::string error;
  EXPECT_TRUE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error))
      << error;
  v[DYNRT_ROUTE_CFG_SLOTS] = 7;
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error));
  EXPECT_NE(error.find("slots = 7"), std::string::npos) << error;
  v = c.values();
  v[DYNRT_ROUTE_CFG_PER_TOKEN] = 3;
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error));
  v = c.values();
  v[DYNRT_ROUTE_CFG_STRATEGY] = 8;
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error));
  v = c.values();
  v[DYNRT_ROUTE_CFG_TOKENS] = 4.5;
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error));
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), 17, parsed, error));
  Config g(RouteStrategy::Switch, 6, 2, 1);
  g.groups = 4; // does not divide 6
  v = g.values();
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error));
  Config cap(RouteStrategy::Switch, 6, 2, 1);
  cap.capacity = 7; // more than T / G
  v = cap.values();
  EXPECT_FALSE(dynrt::parseRouteConfig(v.data(), int32_t(v.size()), parsed, error));
}

TEST(RouteChecks, BufferShapeMismatchFails) {
  Config c(RouteStrategy::Switch, 4, 2, 1);
  std::vector<double> v = c.values();
  Buffer gate(kF32, {4, 3}), slots(kI32, {8}), tokSlot(kI32, {4, 1}),
      tokWeight(kF32, {4, 1});
  halide_buffer_t *args[] = {gate.get(), slots.get(), tokSlot.get(), tokWeight.get()};
  std::string error;
  EXPECT_FALSE(dynrt::routeAssign(v.data(), int32_t(v.size()), args, 4, nullptr,
                                  nullptr, error));
  EXPECT_NE(error.find("gate"), std::string::npos) << error;
  EXPECT_NE(error.find("[4, 3]"), std::string::npos) << error;
  // Untouched: the shapes are checked before anything is written.
  EXPECT_EQ(slots.data<int32_t>()[0], kCanary);
  EXPECT_FALSE(dynrt::routeAssign(v.data(), int32_t(v.size()), args, 3, nullptr,
                                  nullptr, error));
  EXPECT_NE(error.find("takes 4 arguments"), std::string::npos) << error;
  Buffer wrongType(kF32, {4, 1});
  Buffer goodGate(kF32, {4, 2});
  halide_buffer_t *args2[] = {goodGate.get(), slots.get(), wrongType.get(),
                              tokWeight.get()};
  EXPECT_FALSE(dynrt::routeAssign(v.data(), int32_t(v.size()), args2, 4,
                                  nullptr, nullptr, error));
  EXPECT_NE(error.find("tok_slot"), std::string::npos) << error;
}

TEST(RouteChecks, NaNLogitFailsAfterFillingOutputs) {
  Config c(RouteStrategy::TopK, 2, 3, 1);
  Result r = route(c, {0, 1, 2, 0, std::nanf(""), 2});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("token 1, expert 1"), std::string::npos) << r.error;
  EXPECT_EQ(r.slotToken, std::vector<int32_t>(6, -1));
  EXPECT_EQ(r.tokSlot, std::vector<int32_t>(2, -1));
  EXPECT_EQ(r.tokWeight, std::vector<float>(2, 0.0f));
}

TEST(RouteChecks, AllNegativeInfinityFails) {
  float inf = std::numeric_limits<float>::infinity();
  Config c(RouteStrategy::KTop1, 1, 4, 2);
  Result r = route(c, {0, 1, -inf, -inf});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("token 0 is -inf for every expert in [2, 3]"),
            std::string::npos)
      << r.error;
}

TEST(RouteChecks, WorkspaceReuse) {
  // One workspace over calls of different sizes gives the same results as
  // fresh ones.
  dynrt::RouteWorkspace ws;
  for (auto [T, E, K] : std::vector<std::tuple<int, int, int>>{
           {16, 4, 2}, {4, 8, 1}, {32, 2, 2}, {8, 4, 1}}) {
    Config c(T == 8 ? RouteStrategy::Base : RouteStrategy::TopK, T, E, K);
    std::vector<float> l = randomLogits(T * E, T);
    Result fresh = route(c, l);
    Buffer gate(kF32, {T, E}), slots(kI32, {c.slots()}), tokSlot(kI32, {T, K}),
        tokWeight(kF32, {T, K});
    std::copy(l.begin(), l.end(), gate.data<float>());
    halide_buffer_t *args[] = {gate.get(), slots.get(), tokSlot.get(), tokWeight.get()};
    std::vector<double> v = c.values();
    std::string error;
    ASSERT_TRUE(dynrt::routeAssign(v.data(), int32_t(v.size()), args, 4, nullptr,
                                   &ws, error))
        << error;
    EXPECT_EQ(tokSlot.values<int32_t>(), fresh.tokSlot);
    EXPECT_EQ(tokWeight.values<float>(), fresh.tokWeight);
  }
}

//===----------------------------------------------------------------------===//
// Properties over random configs
//===----------------------------------------------------------------------===//

TEST(RouteProperties, EveryStrategyAndMode) {
  std::mt19937 gen(123);
  auto pick = [&](int64_t n) { return static_cast<int64_t>(gen() % n); };
  for (int iter = 0; iter < 800; ++iter) {
    auto strategy = static_cast<RouteStrategy>(iter % 8);
    int64_t E = 1 + pick(8), T = 1 + pick(24), K = 1, k = 1;
    switch (strategy) {
    case RouteStrategy::TopK:
      K = k = 1 + pick(E);
      break;
    case RouteStrategy::KTop1:
      do
        k = 1 + pick(E);
      while (E % k);
      K = k;
      break;
    case RouteStrategy::GShard:
      E = std::max<int64_t>(E, 2);
      K = 2;
      break;
    case RouteStrategy::DenseToSparse:
      K = E;
      break;
    case RouteStrategy::Base:
      T = E * (1 + pick(4));
      break;
    default:
      break;
    }
    Config c(strategy, T, E, K);
    c.k = k;
    int64_t mode = strategy == RouteStrategy::Base ? 0 : pick(3);
    do
      c.groups = 1 + pick(T);
    while (T % c.groups);
    if (mode == 1)
      c.capacity = 1 + pick(T / c.groups);
    if (mode == 2)
      c.block = 1 + pick(5);
    c.score = mode == 1 && pick(2);
    c.renormalize = pick(2);
    c.seed = (uint64_t(gen()) << 32) | gen();
    c.temperature = 0.5 + 0.25 * pick(6);
    c.threshold = 0.05 * pick(10);
    std::vector<float> l(T * E);
    bool ties = pick(2);
    for (float &x : l)
      x = ties ? static_cast<float>(pick(5)) - 2.0f
               : std::normal_distribution<float>(0.0f, 3.0f)(gen);
    std::vector<int32_t> ids(T), table;
    if (strategy == RouteStrategy::Hash) {
      c.table = pick(2);
      for (int32_t &id : ids)
        id = c.table ? static_cast<int32_t>(pick(10))
                     : static_cast<int32_t>(pick(101)) - 50;
      if (c.table)
        for (int i = 0; i < 10; ++i)
          table.push_back(static_cast<int32_t>(pick(E)));
    }
    SCOPED_TRACE(::testing::Message()
                 << "iteration " << iter << ": strategy " << int(strategy)
                 << " T=" << T << " E=" << E << " K=" << K << " C="
                 << c.capacity << " G=" << c.groups << " b=" << c.block);
    Result r = route(c, l, ids, table);
    checkConsistent(c, r);
    if (!r.ok)
      continue;
    std::vector<int64_t> perGroup(E * c.groups, 0);
    for (int64_t t = 0; t < T; ++t) {
      float sum = 0;
      for (int64_t j = 0; j < K; ++j) {
        int32_t a = r.stats.assignment[t * K + j];
        int32_t e = a >= 0 ? a : a <= -2 ? -2 - a : -1;
        for (int64_t j2 = 0; j2 < j; ++j2) {
          int32_t a2 = r.stats.assignment[t * K + j2];
          if (e >= 0)
            EXPECT_NE(e, a2 >= 0 ? a2 : -2 - a2) << "expert chosen twice";
        }
        float w = r.tokWeight[t * K + j];
        EXPECT_TRUE(w >= 0.0f && w <= 1.0f) << w;
        sum += w;
        if (a >= 0) {
          ++perGroup[a * c.groups + t / (T / c.groups)];
          if (c.block) // the row's block belongs to the expert
            EXPECT_EQ(r.blockExpert[r.tokSlot[t * K + j] / c.block], a);
        }
      }
      if (c.renormalize && !c.capacity && strategy != RouteStrategy::GShard &&
          r.stats.assignment[t * K] != -1)
        EXPECT_NEAR(sum, 1.0f, 1e-5f);
    }
    if (!c.capacity)
      EXPECT_EQ(r.stats.dropped, 0u);
    else
      for (int64_t n : perGroup)
        EXPECT_LE(n, c.capacity);
    if (strategy == RouteStrategy::Base)
      EXPECT_EQ(r.stats.tokensPerExpert,
                std::vector<uint64_t>(E, static_cast<uint64_t>(T / E)));
  }
}

} // namespace
