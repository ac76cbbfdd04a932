// Experts.cpp - expert parallelism: the exchange builtin, the model
// fingerprint and the ranks' agreement at create (docs/moe.md, "Expert
// parallelism").
#include "runtime/Experts.h"

#include "runtime/Config.h"
#include "runtime/Status.h"
#include "runtime/Types.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace {

// The communicator of a process of its own: rank 0 of 1, exchanges are
// copies.
dynrt_status_t selfAlltoallv(dynrt_comm_t *, const void *send,
                             const uint64_t *sendBytes, void *recv,
                             const uint64_t *recvBytes) {
  if (sendBytes[0] != recvBytes[0])
    return dynrt::makeStatus(DYNRT_INTERNAL,
                             "alltoallv on one rank sends {} bytes but "
                             "receives {}",
                             sendBytes[0], recvBytes[0]);
  if (sendBytes[0])
    std::memcpy(recv, send, sendBytes[0]);
  return nullptr;
}

dynrt_status_t selfAllgather(dynrt_comm_t *, const void *send, uint64_t bytes,
                             void *recv) {
  if (bytes)
    std::memcpy(recv, send, bytes);
  return nullptr;
}

dynrt_comm_t *selfComm() {
  static dynrt_comm_t self = {0, 1, selfAlltoallv, selfAllgather, nullptr};
  return &self;
}

bool readInt(const double *config, int index, const char *name, int64_t lo,
             int64_t hi, int64_t &out, std::string &error) {
  return dynrt::readConfigInt(config, index, "exchange", name, lo, hi, out,
                              error);
}

std::string shapeText(const dynrt_param_spec_t &spec) {
  return dynrt::formatShape(
      spec.shape, static_cast<size_t>(std::clamp(spec.rank, 0, DYNRT_MAX_RANK)));
}

// Row counts laid out rank by rank ([R][EL]: this rank's counts per expert,
// or what every rank sent for each local expert) as bytes per rank in
// `bytes` (rows of `rowBytes`); returns the rows in all.
int64_t bytesByRank(const std::vector<int64_t> &rows, int64_t EL,
                    uint64_t rowBytes, std::vector<uint64_t> &bytes) {
  int64_t total = 0;
  std::fill(bytes.begin(), bytes.end(), 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    bytes[i / EL] += rows[i] * rowBytes;
    total += rows[i];
  }
  return total;
}

// FNV-1a, 64 bits.
struct Hash {
  uint64_t h = 0xcbf29ce484222325ull;
  void bytes(const void *p, size_t n) {
    auto *c = static_cast<const unsigned char *>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= c[i];
      h *= 0x100000001b3ull;
    }
  }
  template <typename T> void value(T v) { bytes(&v, sizeof(v)); }
  void text(const char *s) {
    s = s ? s : "";
    bytes(s, std::strlen(s) + 1);
  }
  void spec(const dynrt_param_spec_t &s) {
    text(s.name);
    value<int32_t>(s.dtype);
    value<int32_t>(s.rank);
    for (int d = 0; d < DYNRT_MAX_RANK; ++d)
      value<int64_t>(s.shape[d]);
  }
  void specs(const dynrt_param_spec_t *list, int32_t n) {
    value(n);
    for (int32_t i = 0; list && i < n; ++i)
      spec(list[i]);
  }
};

} // namespace

bool dynrt::parseExchangeConfig(const double *config, int32_t count,
                                ExchangeConfig &out, std::string &error) {
  if (!config || count != DYNRT_EXCHANGE_CFG_COUNT) {
    error = config ? fmt::format("exchange config has {} entries, expected {}",
                                 count, int(DYNRT_EXCHANGE_CFG_COUNT))
                   : std::string("exchange config is missing");
    return false;
  }
  constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();
  ExchangeConfig c;
  int64_t route = 0, direction = 0;
  if (!readInt(config, DYNRT_EXCHANGE_CFG_ROUTE, "route", 0, kMaxInt32, route,
               error) ||
      !readInt(config, DYNRT_EXCHANGE_CFG_DIRECTION, "direction", 0, 1,
               direction, error) ||
      !readInt(config, DYNRT_EXCHANGE_CFG_EXPERTS, "experts", 1, kMaxInt32,
               c.experts, error) ||
      !readInt(config, DYNRT_EXCHANGE_CFG_RANKS, "ranks", 1, 4096, c.ranks,
               error) ||
      !readInt(config, DYNRT_EXCHANGE_CFG_ROWS, "rows", 1, kMaxInt32, c.rows,
               error) ||
      !readInt(config, DYNRT_EXCHANGE_CFG_FEATURES, "features", 1, kMaxInt32,
               c.features, error))
    return false;
  c.route = static_cast<int32_t>(route);
  c.back = direction == 1;
  if (c.experts % c.ranks != 0) {
    error = fmt::format("exchange config splits {} experts over {} ranks",
                        c.experts, c.ranks);
    return false;
  }
  // E * rows * D elements of 4 bytes, in int64 with room to spare.
  if (c.experts * c.rows > (int64_t(1) << 40) / c.features) {
    error = fmt::format("exchange config of {} experts x {} rows x {} "
                        "features is too large",
                        c.experts, c.rows, c.features);
    return false;
  }
  out = c;
  return true;
}

bool dynrt::checkExchangeArgs(const ExchangeConfig &c,
                              const dynrt_param_spec_t *args, int32_t numArgs,
                              std::string &error) {
  if (numArgs != 3 || !args) {
    error = fmt::format("the exchange takes 3 arguments (in, slot_token, "
                        "out), got {}",
                        numArgs);
    return false;
  }
  int64_t dispatch[3] = {c.experts, c.rows, c.features};
  int64_t local[3] = {c.local(), c.ranks * c.rows, c.features};
  const int64_t *in = c.back ? local : dispatch;
  const int64_t *out = c.back ? dispatch : local;
  auto is = [](const dynrt_param_spec_t &s, dynrt_dtype_t dtype,
               std::initializer_list<int64_t> shape) {
    if (s.dtype != dtype || s.rank != (int32_t)shape.size())
      return false;
    int d = 0;
    for (int64_t v : shape)
      if (s.shape[d++] != v)
        return false;
    return true;
  };
  const char *names[3] = {"in", "slot_token", "out"};
  bool ok[3] = {is(args[0], DYNRT_F32, {in[0], in[1], in[2]}),
                is(args[1], DYNRT_I32, {c.experts * c.rows}),
                is(args[2], DYNRT_F32, {out[0], out[1], out[2]})};
  std::string expected[3] = {
      fmt::format("[{}, {}, {}] F32", in[0], in[1], in[2]),
      fmt::format("[{}] I32", c.experts * c.rows),
      fmt::format("[{}, {}, {}] F32", out[0], out[1], out[2])};
  for (int a = 0; a < 3; ++a)
    if (!ok[a]) {
      error = fmt::format("exchange argument {} ({}) must be {}, got {} {}", a,
                          names[a], expected[a], shapeText(args[a]),
                          dynrt_dtype_name(args[a].dtype));
      return false;
    }
  return true;
}

int32_t dynrt::commRank(const dynrt_comm_t *comm) {
  return comm ? comm->rank : 0;
}

int32_t dynrt::commSize(const dynrt_comm_t *comm) {
  return comm ? comm->size : 1;
}

dynrt_status_t dynrt::exchangeRows(dynrt_comm_t *comm,
                                   const ExchangeConfig &c, const float *in,
                                   const int32_t *slotToken, float *out,
                                   ExchangeRunState &state,
                                   ExchangeScratch &x, uint64_t &bytesSent) {
  if (!comm)
    comm = selfComm();
  const int64_t E = c.experts, R = c.ranks, EL = c.local(), RE = c.rows,
                D = c.features;
  const int32_t self = comm->rank;
  if (comm->size != R || self < 0 || self >= R)
    return makeStatus(DYNRT_FAILED_PRECONDITION,
                      "the exchange is compiled for {} ranks; the "
                      "communicator is rank {} of {}",
                      R, self, comm->size);
  // This rank's filled rows per expert (in expert order, so rank o's
  // experts are counts[o * EL, (o+1) * EL)).
  x.counts.assign(E, 0);
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = 0; r < RE; ++r)
      x.counts[e] += slotToken[e * RE + r] >= 0;
  x.sendBytes.assign(R, 0);
  x.recvBytes.assign(R, 0);
  const uint64_t rowBytes = static_cast<uint64_t>(D) * sizeof(float);
  auto sent = [&] {
    for (int64_t o = 0; o < R; ++o)
      if (o != self)
        bytesSent += x.sendBytes[o];
  };

  if (!c.back) {
    state.forwarded = false;
    // The counts first: rank s learns how many rows each of its experts
    // gets from every rank.
    x.recvCounts.assign(R * EL, 0);
    for (int64_t o = 0; o < R; ++o)
      x.sendBytes[o] = x.recvBytes[o] = EL * sizeof(int64_t);
    if (dynrt_status_t st = comm->alltoallv(comm, x.counts.data(),
                                            x.sendBytes.data(),
                                            x.recvCounts.data(),
                                            x.recvBytes.data()))
      return st;
    sent();
    for (int64_t s = 0; s < R; ++s)
      for (int64_t e = 0; e < EL; ++e) {
        int64_t n = x.recvCounts[s * EL + e];
        if (n < 0 || n > RE)
          return makeStatus(DYNRT_FAILED_PRECONDITION,
                            "route {}: rank {} sends {} rows for expert {}, "
                            "outside [0, {}] (do all ranks run the same "
                            "model?)",
                            c.route, s, n, self * EL + e, RE);
      }
    // The rows, packed by destination rank (experts in order).
    int64_t total = bytesByRank(x.counts, EL, rowBytes, x.sendBytes);
    x.send.resize(static_cast<size_t>(total * D));
    float *p = x.send.data();
    for (int64_t e = 0; e < E; ++e)
      for (int64_t r = 0; r < RE; ++r)
        if (slotToken[e * RE + r] >= 0) {
          std::memcpy(p, in + (e * RE + r) * D, rowBytes);
          p += D;
        }
    int64_t received = bytesByRank(x.recvCounts, EL, rowBytes, x.recvBytes);
    x.recv.resize(static_cast<size_t>(received * D));
    if (dynrt_status_t st = comm->alltoallv(comm, x.send.data(),
                                            x.sendBytes.data(), x.recv.data(),
                                            x.recvBytes.data()))
      return st;
    sent();
    // out[e, s * RE + i] = row i rank s sent for local expert e.
    std::memset(out, 0, static_cast<size_t>(EL * R * RE) * rowBytes);
    const float *q = x.recv.data();
    for (int64_t s = 0; s < R; ++s)
      for (int64_t e = 0; e < EL; ++e) {
        int64_t n = x.recvCounts[s * EL + e];
        if (n > 0) // (q is NULL when nothing came)
          std::memcpy(out + (e * R * RE + s * RE) * D, q, n * rowBytes);
        q += n * D;
      }
    state.recvRows = x.recvCounts;
    state.sentRows = x.counts;
    state.forwarded = true;
    return nullptr;
  }

  // Back: the results of the rows each rank sent, to that rank, in the
  // order they came.
  if (!state.forwarded || (int64_t)state.recvRows.size() != R * EL)
    return makeStatus(DYNRT_INTERNAL,
                      "route {}: results sent back before the rows came",
                      c.route);
  if (state.sentRows != x.counts)
    return makeStatus(DYNRT_INTERNAL,
                      "route {}: the dispatch rows changed between the "
                      "exchanges",
                      c.route);
  int64_t total = bytesByRank(state.recvRows, EL, rowBytes, x.sendBytes);
  x.send.resize(static_cast<size_t>(total * D));
  float *p = x.send.data();
  for (int64_t s = 0; s < R; ++s)
    for (int64_t e = 0; e < EL; ++e) {
      int64_t n = state.recvRows[s * EL + e];
      if (n > 0) // (p is NULL when nothing goes)
        std::memcpy(p, in + (e * R * RE + s * RE) * D, n * rowBytes);
      p += n * D;
    }
  int64_t received = bytesByRank(x.counts, EL, rowBytes, x.recvBytes);
  x.recv.resize(static_cast<size_t>(received * D));
  if (dynrt_status_t st = comm->alltoallv(comm, x.send.data(),
                                          x.sendBytes.data(), x.recv.data(),
                                          x.recvBytes.data()))
    return st;
  sent();
  std::memset(out, 0, static_cast<size_t>(E * RE) * rowBytes);
  const float *q = x.recv.data();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t r = 0; r < RE; ++r)
      if (slotToken[e * RE + r] >= 0) {
        std::memcpy(out + (e * RE + r) * D, q, rowBytes);
        q += D;
      }
  state.forwarded = false;
  return nullptr;
}

uint64_t dynrt::modelFingerprint(const dynrt_model_desc_t &desc) {
  Hash h;
  h.value(desc.abi_version);
  h.text(desc.name);
  h.specs(desc.inputs, desc.num_inputs);
  h.specs(desc.outputs, desc.num_outputs);
  h.specs(desc.weights, desc.num_weights);
  h.value(desc.num_kernels);
  for (int32_t k = 0; desc.kernels && k < desc.num_kernels; ++k) {
    const dynrt_kernel_desc_t &kernel = desc.kernels[k];
    h.text(kernel.name);
    h.specs(kernel.args, kernel.num_args);
    h.value(kernel.builtin);
    h.value(kernel.num_config);
    if (kernel.config && kernel.num_config > 0)
      h.bytes(kernel.config, kernel.num_config * sizeof(double));
  }
  h.value(desc.num_routes);
  for (int32_t r = 0; desc.routes && r < desc.num_routes; ++r) {
    h.value(desc.routes[r].num_tokens);
    h.value(desc.routes[r].num_experts);
    h.value(desc.routes[r].experts_per_token);
  }
  h.value(desc.arena_bytes);
  h.value(desc.num_ranks);
  for (int32_t w = 0; desc.weight_sharded && w < desc.num_weights; ++w)
    h.value(desc.weight_sharded[w]);
  h.value(desc.device);
  h.value(desc.max_batch);
  h.value(desc.num_params);
  for (int32_t p = 0; desc.params && p < desc.num_params; ++p) {
    h.text(desc.params[p].name);
    h.value(desc.params[p].count);
  }
  h.value(desc.num_skips);
  h.value(desc.exit_layer_output);
  return h.h;
}

dynrt_status_t dynrt::agreeOnModel(dynrt_comm_t *comm,
                                   const dynrt_model_desc_t &desc,
                                   dynrt_status_t localError) {
  struct Entry {
    int32_t ok;
    int32_t ranks;
    uint64_t fingerprint;
  };
  const char *model = desc.name ? desc.name : "?";
  int32_t size = commSize(comm), self = commRank(comm);
  Entry mine{localError ? 0 : 1, desc.num_ranks, modelFingerprint(desc)};
  std::vector<Entry> all(size);
  dynrt_status_t st =
      comm ? comm->allgather(comm, &mine, sizeof(Entry), all.data())
           : selfAllgather(nullptr, &mine, sizeof(Entry), all.data());
  if (localError) {
    dynrt_status_free(st);
    return localError;
  }
  if (st) {
    dynrt::StatusPtr owned(st);
    return makeStatus(dynrt_status_code(st),
                      "model '{}': the ranks could not compare the model: {}",
                      model, dynrt_status_message(st));
  }
  for (int32_t s = 0; s < size; ++s) {
    if (!all[s].ok)
      return makeStatus(DYNRT_FAILED_PRECONDITION,
                        "model '{}': rank {} could not load it (its own "
                        "status says why); every rank must load the model",
                        model, s);
    if (all[s].fingerprint != mine.fingerprint ||
        all[s].ranks != mine.ranks)
      return makeStatus(DYNRT_FAILED_PRECONDITION,
                        "model '{}': rank {} loaded a different model than "
                        "rank {} (fingerprint {:016x} against {:016x}); "
                        "every rank must load the same library",
                        model, s, self, all[s].fingerprint, mine.fingerprint);
  }
  return nullptr;
}

dynrt_status_t dynrt::shardWeightSpecs(const dynrt_model_desc_t &desc,
                                       const dynrt_weights_t *weights,
                                       int32_t rank,
                                       std::vector<dynrt_param_spec_t> &specs,
                                       std::vector<size_t> &offsets) {
  specs.assign(desc.weights, desc.weights + desc.num_weights);
  offsets.assign(desc.num_weights, 0);
  const char *model = desc.name ? desc.name : "?";
  for (int32_t i = 0; desc.num_ranks > 0 && i < desc.num_weights; ++i) {
    dynrt_param_spec_t &spec = specs[i];
    dynrt_tensor_info_t info;
    if (!desc.weight_sharded[i] || spec.rank < 1)
      continue;
    StatusPtr found(dynrt_weights_find(weights, spec.name, &info));
    if (found || info.rank != spec.rank)
      continue; // dynrt_weights_bind names what is wrong
    dynrt_param_spec_t whole = spec;
    whole.shape[0] = spec.shape[0] * desc.num_ranks;
    auto matches = [&](const dynrt_param_spec_t &s) {
      return std::equal(s.shape, s.shape + s.rank, info.shape);
    };
    if (matches(spec))
      continue; // the rank's shard alone
    if (!matches(whole))
      return makeStatus(DYNRT_INVALID_ARGUMENT,
                        "model '{}': tensor '{}' has shape {} but the model "
                        "expects {} (every expert) or {} (rank {}'s shard)",
                        model, spec.name,
                        formatShape(info.shape, static_cast<size_t>(info.rank)),
                        shapeText(whole), shapeText(spec), rank);
    const std::optional<uint64_t> shardBytes =
        byteSizeOf(spec.dtype, spec.shape, static_cast<size_t>(spec.rank));
    offsets[i] = static_cast<size_t>(rank) * shardBytes.value_or(0);
    spec = whole;
  }
  return nullptr;
}
