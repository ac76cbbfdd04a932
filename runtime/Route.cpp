// Route.cpp - the token-to-expert assignment of dyn.route, exactly as
// docs/moe.md specifies it: the eight strategies, renormalization, capacity
// with groups and priorities, the no-capacity, dropless and BASE slot
// layouts, and the per-call statistics. Scalar code, O(T * E) per call (plus
// the auction of `base`); it checks its config and buffers and never writes
// outside them.
#include "runtime/Route.h"

#include "runtime/Types.h"

#include <HalideRuntime.h>
#include "runtime/Config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

using namespace dynrt;

namespace {

constexpr double kAuctionEps = 1e-3;
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

// One argument as the checks see it: dtype (or -1 for a type libdynrt does
// not know) and the shape, outermost dimension first.
struct ArgView {
  int32_t dtype = -1;
  int32_t rank = 0;
  int64_t shape[DYNRT_MAX_RANK] = {};
};

std::string describe(const ArgView &arg) {
  const char *type = arg.dtype < 0
                         ? "an unsupported type"
                         : dynrt_dtype_name(static_cast<dynrt_dtype_t>(arg.dtype));
  return fmt::format("{} {}", type,
                     formatShape(arg.shape, static_cast<size_t>(arg.rank)));
}

std::string routeName(const RouteConfig &config) {
  return fmt::format("route {} ({})", config.route,
                     routeStrategyName(config.strategy));
}

bool readInt(const double *config, int index, const char *name, int64_t lo,
             int64_t hi, int64_t &out, std::string &error) {
  return dynrt::readConfigInt(config, index, "route", name, lo, hi, out, error);
}

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Checks the argument list of a parsed config (see DYNRT_BUILTIN_ROUTE_ASSIGN).
bool checkArgs(const RouteConfig &config, const ArgView *args, int32_t numArgs,
               std::string &error) {
  if (numArgs != config.numArgs()) {
    error = fmt::format("{} takes {} arguments (gate{}, slot_token, tok_slot, "
                        "tok_weight{}), got {}",
                        routeName(config), config.numArgs(),
                        config.hasTable ? ", table" : "",
                        config.dropless() ? ", block_expert" : "", numArgs);
    return false;
  }
  int32_t index = 0;
  auto expect = [&](const char *name, std::initializer_list<dynrt_dtype_t> dtypes,
                    std::initializer_list<int64_t> shape) {
    const ArgView &arg = args[index];
    bool ok = arg.rank == static_cast<int32_t>(shape.size()) &&
              std::equal(shape.begin(), shape.end(), arg.shape) &&
              std::find(dtypes.begin(), dtypes.end(), arg.dtype) != dtypes.end();
    if (!ok) {
      std::string want;
      for (dynrt_dtype_t d : dtypes)
        want += (want.empty() ? "" : " or ") + std::string(dynrt_dtype_name(d));
      std::vector<int64_t> dims(shape);
      error = fmt::format("{}: argument {} ({}) must be {} {}, got {}",
                          routeName(config), index, name, want,
                          formatShape(dims), describe(arg));
    }
    ++index;
    return ok;
  };
  int64_t t = config.tokens, k = config.perToken;
  if (config.strategy == RouteStrategy::Hash) {
    if (!expect("gate: token ids", {DYNRT_I32, DYNRT_I64}, {t}))
      return false;
  } else if (!expect("gate: logits", {DYNRT_F32}, {t, config.experts})) {
    return false;
  }
  if (config.hasTable) {
    const ArgView &table = args[index];
    if (table.rank != 1 || table.shape[0] < 0 ||
        (table.dtype != DYNRT_I32 && table.dtype != DYNRT_I64)) {
      error = fmt::format("{}: argument {} (table) must be I32 or I64 [V], "
                          "got {}",
                          routeName(config), index, describe(table));
      return false;
    }
    ++index;
  }
  if (!expect("slot_token", {DYNRT_I32}, {config.slots}) ||
      !expect("tok_slot", {DYNRT_I32}, {t, k}) ||
      !expect("tok_weight", {DYNRT_F32}, {t, k}))
    return false;
  if (config.dropless() && !expect("block_expert", {DYNRT_I32}, {config.blocks}))
    return false;
  return true;
}

// The view of a buffer built by dynrt_invoke_kernel; false for a buffer the
// builtin cannot address (missing, not dense row-major).
bool viewOf(const halide_buffer_t *buffer, int32_t index, ArgView &view,
            std::string &error) {
  if (!buffer || !buffer->host ||
      (buffer->dimensions > 0 && !buffer->dim) || buffer->dimensions < 0 ||
      buffer->dimensions > DYNRT_MAX_RANK) {
    error = fmt::format("route argument {} is missing or has no data", index);
    return false;
  }
  halide_type_t type = buffer->type;
  view.dtype = -1;
  if (type.lanes == 1) {
    if (type.code == halide_type_float && type.bits == 32)
      view.dtype = DYNRT_F32;
    else if (type.code == halide_type_int && type.bits == 32)
      view.dtype = DYNRT_I32;
    else if (type.code == halide_type_int && type.bits == 64)
      view.dtype = DYNRT_I64;
  }
  view.rank = buffer->dimensions;
  int64_t stride = 1;
  for (int32_t d = 0; d < view.rank; ++d) {
    const halide_dimension_t &dim = buffer->dim[d];
    if (dim.min != 0 || dim.extent < 0 || (dim.extent > 1 && dim.stride != stride)) {
      error = fmt::format("route argument {} is not a dense row-major buffer",
                          index);
      return false;
    }
    view.shape[view.rank - 1 - d] = dim.extent;
    stride *= dim.extent;
  }
  return true;
}

// Logits of one token (or one prototype) that softmax can take: no NaN or
// +inf, not all -inf.
bool checkScores(const float *scores, int64_t count, int64_t token,
                 int64_t firstExpert, const char *what, std::string &error) {
  bool anyFinite = false;
  for (int64_t e = 0; e < count; ++e) {
    float v = scores[e];
    if (std::isnan(v) || v == std::numeric_limits<float>::infinity()) {
      error = fmt::format("{} of token {}, expert {} is {}", what, token,
                          firstExpert + e, v);
      return false;
    }
    anyFinite |= v != -std::numeric_limits<float>::infinity();
  }
  if (!anyFinite) {
    error = fmt::format("{} of token {} is -inf for every expert in [{}, {}]",
                        what, token, firstExpert, firstExpert + count - 1);
    return false;
  }
  return true;
}

// softmax(l)[e] = exp(l[e] - max l) / sum, the sum accumulated in float32 in
// ascending e. `l` has a finite maximum (checkScores).
void softmax(const float *l, int64_t count, float *p) {
  float max = l[0];
  for (int64_t e = 1; e < count; ++e)
    max = std::max(max, l[e]);
  float sum = 0.0f;
  for (int64_t e = 0; e < count; ++e) {
    p[e] = std::exp(l[e] - max);
    sum += p[e];
  }
  for (int64_t e = 0; e < count; ++e)
    p[e] = p[e] / sum;
}

// The expert with the largest score, the lowest index on ties.
int64_t argmax(const float *l, int64_t count) {
  int64_t best = 0;
  for (int64_t e = 1; e < count; ++e)
    if (l[e] > l[best])
      best = e;
  return best;
}

// Puts the `k` experts with the largest logits, descending (ties: lower
// index first), at the front of `order`.
void topExperts(const float *l, int64_t count, int64_t k,
                std::vector<int32_t> &order) {
  order.resize(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [l](int32_t a, int32_t b) {
                      return l[a] > l[b] || (l[a] == l[b] && a < b);
                    });
}

class Assigner {
public:
  Assigner(const RouteConfig &config, RouteWorkspace &workspace,
           std::string &message)
      : c(config), ws(workspace), error(message), T(config.tokens),
        E(config.experts), K(config.perToken) {}

  const float *logits = nullptr;
  const void *ids = nullptr;
  bool ids64 = false;
  const void *table = nullptr;
  bool table64 = false;
  int64_t tableSize = 0;

  bool choose();
  void renormalize();
  bool place();

private:
  bool chooseHash();
  void chooseRandom();
  bool chooseBase();
  bool chooseFromLogits(int64_t t);
  void setChoice(int64_t t, int64_t j, int64_t e, float w) {
    ws.expert[t * K + j] = static_cast<int32_t>(e);
    ws.weight[t * K + j] = w;
  }
  int64_t id(const void *data, bool is64, int64_t i) const {
    return is64 ? static_cast<const int64_t *>(data)[i]
                : static_cast<const int32_t *>(data)[i];
  }

  const RouteConfig &c;
  RouteWorkspace &ws;
  std::string &error;
  int64_t T, E, K;
};

bool Assigner::choose() {
  switch (c.strategy) {
  case RouteStrategy::Hash:
    return chooseHash();
  case RouteStrategy::Random:
    chooseRandom();
    return true;
  case RouteStrategy::Base:
    return chooseBase();
  default:
    ws.scores.resize(static_cast<size_t>(E));
    ws.probs.resize(static_cast<size_t>(E));
    for (int64_t t = 0; t < T; ++t)
      if (!chooseFromLogits(t))
        return false;
    return true;
  }
}

bool Assigner::chooseHash() {
  for (int64_t t = 0; t < T; ++t) {
    int64_t value = id(ids, ids64, t);
    int64_t e;
    if (table) {
      if (value < 0 || value >= tableSize) {
        error = fmt::format("hash routing: token id {} at position {} is "
                            "outside the table [0, {})",
                            value, t, tableSize);
        return false;
      }
      e = id(table, table64, value);
      if (e < 0 || e >= E) {
        error = fmt::format("hash routing: table[{}] = {} (token id of "
                            "position {}) is not an expert in [0, {})",
                            value, e, t, E);
        return false;
      }
    } else {
      e = value % E;
      if (e < 0)
        e += E;
    }
    setChoice(t, 0, e, 1.0f);
  }
  return true;
}

void Assigner::chooseRandom() {
  for (int64_t t = 0; t < T; ++t) {
    uint64_t z = routeRandomBits(c.seed, t);
    uint64_t e = ((z >> 40) * static_cast<uint64_t>(E)) >> 24;
    setChoice(t, 0, static_cast<int64_t>(e), 1.0f);
  }
}

bool Assigner::chooseFromLogits(int64_t t) {
  const float *l = logits + t * E;
  float *p = ws.probs.data();
  switch (c.strategy) {
  case RouteStrategy::TopK:
  case RouteStrategy::Switch: {
    if (!checkScores(l, E, t, 0, "gate logit", error))
      return false;
    softmax(l, E, p);
    topExperts(l, E, K, ws.order);
    for (int64_t j = 0; j < K; ++j)
      setChoice(t, j, ws.order[j], p[ws.order[j]]);
    return true;
  }
  case RouteStrategy::GShard: {
    if (!checkScores(l, E, t, 0, "gate logit", error))
      return false;
    softmax(l, E, p);
    topExperts(l, E, 2, ws.order);
    int32_t e1 = ws.order[0], e2 = ws.order[1];
    float p1 = p[e1], p2 = p[e2];
    float g1 = p1 / (p1 + p2), g2 = p2 / (p1 + p2);
    setChoice(t, 0, e1, g1);
    double u = static_cast<double>(routeRandomBits(c.seed, t) >> 40) * 0x1p-24;
    if (u < 2.0 * static_cast<double>(g2))
      setChoice(t, 1, e2, g2);
    return true;
  }
  case RouteStrategy::KTop1: {
    int64_t size = E / c.k;
    for (int64_t j = 0; j < c.k; ++j) {
      const float *lj = l + j * size;
      if (!checkScores(lj, size, t, j * size, "gate logit", error))
        return false;
      softmax(lj, size, p);
      int64_t best = argmax(lj, size);
      setChoice(t, j, j * size + best, p[best]);
    }
    return true;
  }
  case RouteStrategy::DenseToSparse: {
    float *q = ws.scores.data();
    float temperature = static_cast<float>(c.temperature);
    for (int64_t e = 0; e < E; ++e)
      q[e] = l[e] / temperature;
    if (!checkScores(q, E, t, 0, "gate logit / temperature", error))
      return false;
    softmax(q, E, p);
    float threshold = static_cast<float>(c.threshold);
    int64_t j = 0;
    for (int64_t e = 0; e < E; ++e)
      if (p[e] > threshold)
        setChoice(t, j++, e, p[e]);
    return true;
  }
  default:
    error = fmt::format("{}: no logit rule", routeName(c));
    return false;
  }
}

// Bertsekas' auction with T/E identical slots per expert (docs/moe.md).
bool Assigner::chooseBase() {
  const int64_t cap = T / E;
  double minS = 0, maxS = 0;
  for (int64_t i = 0; i < T * E; ++i) {
    float v = logits[i];
    if (!std::isfinite(v)) {
      error = fmt::format("gate logit of token {}, expert {} is {} (base "
                          "routing needs finite logits)",
                          i / E, i % E, v);
      return false;
    }
    minS = i ? std::min(minS, static_cast<double>(v)) : v;
    maxS = i ? std::max(maxS, static_cast<double>(v)) : v;
  }
  // Far more bids than the auction needs (each token at most about
  // (range / eps) bids); reached only when eps is lost in the rounding of
  // huge logits.
  double maxBids = std::min(
      1e11, static_cast<double>(T) * (20.0 + 4.0 * (maxS - minS) / kAuctionEps));

  ws.price.assign(static_cast<size_t>(E), 0.0);
  ws.holders.resize(static_cast<size_t>(E));
  for (auto &h : ws.holders) {
    h.clear();
    h.reserve(static_cast<size_t>(cap + 1));
  }
  // FIFO as a ring: a token is either held or queued, so T entries suffice.
  ws.queue.resize(static_cast<size_t>(T));
  std::iota(ws.queue.begin(), ws.queue.end(), 0);
  int64_t head = 0, queued = T;
  // Heap order: the top is the lowest bid, on ties the highest token.
  auto below = [](const std::pair<double, int32_t> &a,
                  const std::pair<double, int32_t> &b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  double bids = 0;
  while (queued > 0) {
    if (++bids > maxBids) {
      error = fmt::format("{}: the auction did not converge after {} bids "
                          "(logits in [{}, {}])",
                          routeName(c), bids - 1, minS, maxS);
      return false;
    }
    int32_t t = ws.queue[head];
    head = (head + 1) % T;
    --queued;
    const float *l = logits + t * E;
    int64_t e1 = 0;
    double v1 = static_cast<double>(l[0]) - ws.price[0];
    for (int64_t e = 1; e < E; ++e) {
      double v = static_cast<double>(l[e]) - ws.price[e];
      if (v > v1) {
        v1 = v;
        e1 = e;
      }
    }
    double v2 = v1;
    bool first = true;
    for (int64_t e = 0; e < E; ++e) {
      if (e == e1)
        continue;
      double v = static_cast<double>(l[e]) - ws.price[e];
      if (first || v > v2)
        v2 = v;
      first = false;
    }
    double bid = ws.price[e1] + (v1 - v2) + kAuctionEps;
    auto &h = ws.holders[e1];
    h.push_back({bid, t});
    std::push_heap(h.begin(), h.end(), below);
    if (static_cast<int64_t>(h.size()) > cap) {
      std::pop_heap(h.begin(), h.end(), below);
      ws.queue[(head + queued) % T] = h.back().second;
      ++queued;
      h.pop_back();
    }
    if (static_cast<int64_t>(h.size()) == cap)
      ws.price[e1] = h.front().first;
  }
  for (int64_t e = 0; e < E; ++e)
    for (const auto &[bid, t] : ws.holders[e]) {
      float l = logits[t * E + e];
      setChoice(t, 0, e, 1.0f / (1.0f + std::exp(-l)));
    }
  return true;
}

void Assigner::renormalize() {
  if (!c.renormalize || c.strategy == RouteStrategy::GShard)
    return;
  for (int64_t t = 0; t < T; ++t) {
    float sum = 0.0f;
    for (int64_t j = 0; j < K; ++j)
      if (ws.expert[t * K + j] >= 0)
        sum += ws.weight[t * K + j];
    if (!(sum > 0.0f))
      continue;
    for (int64_t j = 0; j < K; ++j)
      if (ws.expert[t * K + j] >= 0)
        ws.weight[t * K + j] = ws.weight[t * K + j] / sum;
  }
}

// Gives every (token, choice) pair its dispatch row, or -1 (dropped or no
// choice). Within an expert (and group), rows follow the order in which they
// are handed out: choice-rank-major, then token order (or, with capacity and
// priority = score, descending weight).
bool Assigner::place() {
  if (c.strategy == RouteStrategy::Base) {
    int64_t cap = T / E;
    ws.counts.assign(static_cast<size_t>(E), 0);
    for (int64_t t = 0; t < T; ++t) {
      int32_t e = ws.expert[t];
      if (e < 0 || ws.counts[e] >= cap) {
        error = fmt::format("{}: the auction left token {} unassigned",
                            routeName(c), t);
        return false;
      }
      ws.row[t] = e * cap + ws.counts[e]++;
    }
    return true;
  }
  if (c.capacity > 0) {
    const int64_t G = c.groups, C = c.capacity, groupSize = T / G;
    ws.counts.assign(static_cast<size_t>(E * G), 0);
    ws.order.resize(static_cast<size_t>(std::max(T, E)));
    for (int64_t j = 0; j < K; ++j) {
      for (int64_t g = 0; g < G; ++g) {
        int64_t n = 0;
        for (int64_t t = g * groupSize; t < (g + 1) * groupSize; ++t)
          if (ws.expert[t * K + j] >= 0)
            ws.order[n++] = static_cast<int32_t>(t);
        if (c.scorePriority) {
          const float *w = ws.weight.data();
          std::sort(ws.order.begin(), ws.order.begin() + n,
                    [w, j, K = K](int32_t a, int32_t b) {
                      float wa = w[a * K + j], wb = w[b * K + j];
                      return wa > wb || (wa == wb && a < b);
                    });
        }
        for (int64_t i = 0; i < n; ++i) {
          int64_t pair = ws.order[i] * K + j;
          int64_t e = ws.expert[pair];
          int64_t &count = ws.counts[e * G + g];
          if (count < C)
            ws.row[pair] = e * G * C + g * C + count++;
        }
      }
    }
    return true;
  }
  // No capacity (expert e owns rows [e*T, (e+1)*T)) or dropless (experts in
  // order, each padded to a multiple of the block).
  ws.counts.assign(static_cast<size_t>(2 * E), 0);
  int64_t *start = ws.counts.data(), *used = ws.counts.data() + E;
  if (c.dropless()) {
    for (int64_t i = 0; i < T * K; ++i)
      if (ws.expert[i] >= 0)
        ++used[ws.expert[i]];
    int64_t offset = 0;
    for (int64_t e = 0; e < E; ++e) {
      start[e] = offset;
      offset += ceilDiv(used[e], c.block) * c.block;
      used[e] = 0;
    }
    if (offset > c.slots) {
      error = fmt::format("{}: the experts need {} rows, more than the {} "
                          "slots",
                          routeName(c), offset, c.slots);
      return false;
    }
  } else {
    for (int64_t e = 0; e < E; ++e)
      start[e] = e * T;
  }
  int64_t perExpert = c.dropless() ? c.slots : T;
  for (int64_t j = 0; j < K; ++j)
    for (int64_t t = 0; t < T; ++t) {
      int64_t e = ws.expert[t * K + j];
      if (e < 0)
        continue;
      if (used[e] >= perExpert) {
        error = fmt::format("{}: expert {} chosen twice by one token",
                            routeName(c), e);
        return false;
      }
      ws.row[t * K + j] = start[e] + used[e]++;
    }
  return true;
}

} // namespace

const char *dynrt::routeStrategyName(RouteStrategy strategy) {
  switch (strategy) {
  case RouteStrategy::TopK:
    return "top_k";
  case RouteStrategy::Switch:
    return "switch";
  case RouteStrategy::GShard:
    return "gshard";
  case RouteStrategy::Base:
    return "base";
  case RouteStrategy::KTop1:
    return "k_top1";
  case RouteStrategy::DenseToSparse:
    return "dense_to_sparse";
  case RouteStrategy::Hash:
    return "hash";
  case RouteStrategy::Random:
    return "random";
  }
  return "?";
}

uint64_t dynrt::routeRandomBits(uint64_t seed, int64_t token) {
  uint64_t z = seed + (static_cast<uint64_t>(token) + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

bool dynrt::parseRouteConfig(const double *config, int32_t count,
                             RouteConfig &out, std::string &error) {
  if (!config || count != DYNRT_ROUTE_CFG_COUNT) {
    error = fmt::format("route config has {} entries, expected {}",
                        config ? count : 0, int(DYNRT_ROUTE_CFG_COUNT));
    return false;
  }
  RouteConfig c;
  int64_t route, strategy, priority, seedLo, seedHi, renormalize, hasTable;
  constexpr int64_t kMaxSlots = int64_t(1) << 53;
  if (!readInt(config, DYNRT_ROUTE_CFG_ROUTE, "route", 0, kMaxInt32, route, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_STRATEGY, "strategy", 0, 7, strategy, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_TOKENS, "tokens", 1, kMaxInt32, c.tokens, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_EXPERTS, "experts", 1, kMaxInt32, c.experts, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_PER_TOKEN, "experts per token", 1, kMaxInt32,
               c.perToken, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_K, "k", 0, kMaxInt32, c.k, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_CAPACITY, "capacity", 0, kMaxInt32, c.capacity,
               error) ||
      !readInt(config, DYNRT_ROUTE_CFG_GROUPS, "groups", 1, kMaxInt32, c.groups, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_PRIORITY, "priority", 0, 1, priority, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_BLOCK, "dropless block", 0, kMaxInt32, c.block,
               error) ||
      !readInt(config, DYNRT_ROUTE_CFG_SEED_LO, "seed (low)", 0, 0xFFFFFFFFll, seedLo,
               error) ||
      !readInt(config, DYNRT_ROUTE_CFG_SEED_HI, "seed (high)", 0, 0xFFFFFFFFll, seedHi,
               error) ||
      !readInt(config, DYNRT_ROUTE_CFG_RENORMALIZE, "renormalize", 0, 1, renormalize,
               error) ||
      !readInt(config, DYNRT_ROUTE_CFG_HAS_TABLE, "has table", 0, 1, hasTable, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_SLOTS, "slots", 1, kMaxSlots, c.slots, error) ||
      !readInt(config, DYNRT_ROUTE_CFG_BLOCKS, "blocks", 0, kMaxSlots, c.blocks, error))
    return false;
  c.route = static_cast<int32_t>(route);
  c.strategy = static_cast<RouteStrategy>(strategy);
  c.scorePriority = priority == 1;
  c.seed = static_cast<uint64_t>(seedHi) << 32 | static_cast<uint64_t>(seedLo);
  c.temperature = config[DYNRT_ROUTE_CFG_TEMPERATURE];
  c.threshold = config[DYNRT_ROUTE_CFG_THRESHOLD];
  c.renormalize = renormalize == 1;
  c.hasTable = hasTable == 1;

  const int64_t T = c.tokens, E = c.experts, K = c.perToken;
  std::string name = routeName(c);
  auto fail = [&](std::string message) {
    error = name + ": " + message;
    return false;
  };
  switch (c.strategy) {
  case RouteStrategy::TopK:
  case RouteStrategy::KTop1:
    if (c.k < 1 || c.k > E)
      return fail(fmt::format("k = {} is outside [1, {}]", c.k, E));
    if (c.strategy == RouteStrategy::KTop1 && E % c.k != 0)
      return fail(fmt::format("k = {} does not divide the {} experts", c.k, E));
    if (K != c.k)
      return fail(fmt::format("experts per token = {}, expected k = {}", K, c.k));
    break;
  case RouteStrategy::GShard:
    if (E < 2)
      return fail(fmt::format("needs 2 experts or more, got {}", E));
    if (K != 2)
      return fail(fmt::format("experts per token = {}, expected 2", K));
    break;
  case RouteStrategy::DenseToSparse:
    if (K != E)
      return fail(fmt::format("experts per token = {}, expected E = {}", K, E));
    if (!(c.temperature > 0.0) || std::isinf(c.temperature) ||
        !(static_cast<float>(c.temperature) > 0.0f))
      return fail(fmt::format("temperature = {} must be positive and finite",
                              c.temperature));
    if (std::isnan(c.threshold))
      return fail("threshold is NaN");
    break;
  default:
    if (K != 1)
      return fail(fmt::format("experts per token = {}, expected 1", K));
    break;
  }
  if (c.hasTable && c.strategy != RouteStrategy::Hash)
    return fail("a hash table only applies to hash routing");
  if (T % c.groups != 0)
    return fail(fmt::format("groups = {} does not divide the {} tokens",
                            c.groups, T));
  if (c.capacity > 0 && c.dropless())
    return fail("capacity and dropless exclude each other");
  if (c.strategy == RouteStrategy::Base) {
    if (T % E != 0)
      return fail(fmt::format("the {} tokens do not split evenly over {} experts",
                              T, E));
    if (c.dropless() || (c.capacity != 0 && c.capacity != T / E))
      return fail(fmt::format("capacity = {}, dropless block = {}: base has "
                              "exactly T/E = {} slots per expert",
                              c.capacity, c.block, T / E));
    if (c.slots != T || c.blocks != 0)
      return fail(fmt::format("slots = {}, blocks = {}, expected {} and 0",
                              c.slots, c.blocks, T));
  } else if (c.capacity > 0) {
    int64_t groupSize = T / c.groups;
    if (c.capacity > groupSize)
      return fail(fmt::format("capacity = {} exceeds the {} tokens of a group",
                              c.capacity, groupSize));
    if (c.slots != E * c.groups * c.capacity || c.blocks != 0)
      return fail(fmt::format("slots = {}, blocks = {}, expected E * G * C = "
                              "{} and 0",
                              c.slots, c.blocks, E * c.groups * c.capacity));
  } else if (c.dropless()) {
    int64_t blocks = ceilDiv(T * K + E * (c.block - 1), c.block);
    if (c.blocks != blocks || c.slots != blocks * c.block)
      return fail(fmt::format("slots = {}, blocks = {}, expected NB * b = {} "
                              "and NB = {}",
                              c.slots, c.blocks, blocks * c.block, blocks));
  } else if (c.slots != E * T || c.blocks != 0) {
    return fail(fmt::format("slots = {}, blocks = {}, expected E * T = {} and 0",
                            c.slots, c.blocks, E * T));
  }
  out = c;
  return true;
}

bool dynrt::checkRouteArgs(const RouteConfig &config,
                           const dynrt_param_spec_t *args, int32_t numArgs,
                           std::string &error) {
  if (numArgs < 0 || numArgs > 8 || (numArgs > 0 && !args)) {
    error = fmt::format("{}: bad argument list ({} arguments)",
                        routeName(config), numArgs);
    return false;
  }
  ArgView views[8];
  for (int32_t i = 0; i < numArgs; ++i) {
    const dynrt_param_spec_t &spec = args[i];
    if (spec.rank < 0 || spec.rank > DYNRT_MAX_RANK) {
      error = fmt::format("{}: argument {} has rank {}", routeName(config), i,
                          spec.rank);
      return false;
    }
    views[i].dtype = spec.dtype;
    views[i].rank = spec.rank;
    std::copy(spec.shape, spec.shape + spec.rank, views[i].shape);
  }
  return checkArgs(config, views, numArgs, error);
}

bool dynrt::routeAssign(const double *config, int32_t numConfig,
                        halide_buffer_t *const *args, int32_t numArgs,
                        RouteStats *stats, RouteWorkspace *workspace,
                        std::string &error) {
  RouteConfig c;
  if (!parseRouteConfig(config, numConfig, c, error))
    return false;
  if (numArgs < 0 || numArgs > 8 || (numArgs > 0 && !args)) {
    error = fmt::format("{}: bad argument list ({} arguments)", routeName(c),
                        numArgs);
    return false;
  }
  ArgView views[8];
  for (int32_t i = 0; i < numArgs; ++i)
    if (!viewOf(args[i], i, views[i], error))
      return false;
  if (!checkArgs(c, views, numArgs, error))
    return false;

  const int64_t T = c.tokens, E = c.experts, K = c.perToken;
  int32_t next = 0;
  const halide_buffer_t *gate = args[next++];
  const halide_buffer_t *table = c.hasTable ? args[next++] : nullptr;
  auto *slotToken = reinterpret_cast<int32_t *>(args[next++]->host);
  auto *tokSlot = reinterpret_cast<int32_t *>(args[next++]->host);
  auto *tokWeight = reinterpret_cast<float *>(args[next++]->host);
  auto *blockExpert =
      c.dropless() ? reinterpret_cast<int32_t *>(args[next++]->host) : nullptr;
  // Every output element is written, whatever happens next.
  std::fill(slotToken, slotToken + c.slots, -1);
  std::fill(tokSlot, tokSlot + T * K, -1);
  std::fill(tokWeight, tokWeight + T * K, 0.0f);
  if (blockExpert)
    std::fill(blockExpert, blockExpert + c.blocks, -1);

  RouteWorkspace local;
  RouteWorkspace &ws = workspace ? *workspace : local;
  ws.expert.assign(static_cast<size_t>(T * K), -1);
  ws.weight.assign(static_cast<size_t>(T * K), 0.0f);
  ws.row.assign(static_cast<size_t>(T * K), -1);

  Assigner assigner(c, ws, error);
  if (c.strategy == RouteStrategy::Hash) {
    assigner.ids = gate->host;
    assigner.ids64 = gate->type.bits == 64;
    if (table) {
      assigner.table = table->host;
      assigner.table64 = table->type.bits == 64;
      assigner.tableSize = table->dim[0].extent;
    }
  } else {
    assigner.logits = reinterpret_cast<const float *>(gate->host);
  }
  if (!assigner.choose())
    return false;
  assigner.renormalize();
  if (!assigner.place())
    return false;

  if (stats) {
    stats->tokensPerExpert.assign(static_cast<size_t>(E), 0);
    stats->dropped = 0;
    stats->assignment.assign(static_cast<size_t>(T * K), -1);
  }
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t j = 0; j < K; ++j) {
      int64_t pair = t * K + j;
      int32_t e = ws.expert[pair];
      int64_t row = ws.row[pair];
      if (e < 0)
        continue;
      if (row >= 0) {
        if (row >= c.slots) { // cannot happen: place() stays within S
          error = fmt::format("{}: row {} outside the {} slots", routeName(c),
                              row, c.slots);
          return false;
        }
        tokSlot[pair] = static_cast<int32_t>(row);
        tokWeight[pair] = ws.weight[pair];
        slotToken[row] = static_cast<int32_t>(t);
      }
      if (stats) {
        if (row >= 0) {
          ++stats->tokensPerExpert[e];
          stats->assignment[pair] = e;
        } else {
          ++stats->dropped;
          stats->assignment[pair] = -2 - e;
        }
      }
    }
  }
  if (blockExpert) {
    // Experts own consecutive blocks in order, ceil(n_e / b) each.
    std::vector<int64_t> &n = ws.counts;
    n.assign(static_cast<size_t>(E), 0);
    for (int64_t pair = 0; pair < T * K; ++pair)
      if (ws.expert[pair] >= 0)
        ++n[ws.expert[pair]];
    int64_t block = 0;
    for (int64_t e = 0; e < E; ++e)
      for (int64_t b = 0; b < ceilDiv(n[e], c.block); ++b)
        if (block < c.blocks)
          blockExpert[block++] = static_cast<int32_t>(e);
  }
  return true;
}
