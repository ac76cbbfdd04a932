// Experts.h - expert parallelism (docs/moe.md, "Expert parallelism"): the
// exchange builtin DYNRT_BUILTIN_EXPERT_EXCHANGE, which moves dispatched rows
// to their expert's rank and the results back through a dynrt_comm_t, the
// binding of sharded expert weights and the check that every rank loaded
// the same model. For Model.cpp and the tests.
#ifndef DYNRT_EXPERTS_H
#define DYNRT_EXPERTS_H

#include "runtime/dynrt.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dynrt {

// The DYNRT_EXCHANGE_CFG_* entries, checked and converted.
struct ExchangeConfig {
  int32_t route = 0;
  bool back = false; // direction 1: results back to the rows' ranks
  int64_t experts = 0;  // E
  int64_t ranks = 0;    // R
  int64_t rows = 0;     // dispatch rows per expert
  int64_t features = 0; // D
  int64_t local() const { return experts / ranks; } // E/R
};

// Parses and checks `config` on its own (integers, E a multiple of R, sizes
// whose products fit in int64). On failure false with a message in `error`.
bool parseExchangeConfig(const double *config, int32_t count,
                         ExchangeConfig &out, std::string &error);

// Checks the builtin's argument specs (in, slot_token, out) against a
// parsed config.
bool checkExchangeArgs(const ExchangeConfig &config,
                       const dynrt_param_spec_t *args, int32_t numArgs,
                       std::string &error);

// What the forward exchange of one route received in a run, for the back
// exchange: recvRows[s * E/R + e] rows from rank s for local expert e.
struct ExchangeRunState {
  bool forwarded = false;
  std::vector<int64_t> recvRows;
  std::vector<int64_t> sentRows; // [E]: this rank's filled rows per expert
};

// Reusable scratch (one per run).
struct ExchangeScratch {
  std::vector<int64_t> counts; // [E]: filled rows per expert, this rank
  std::vector<int64_t> sendCounts, recvCounts;
  std::vector<uint64_t> sendBytes, recvBytes;
  std::vector<float> send, recv;
};

// One exchange on `comm` (NULL: a process of its own, rank 0 of 1), with
// the buffers of the builtin (dense, row-major; see dynrt.h). Writes every
// element of `out`. Adds the bytes sent to other ranks to `bytesSent`.
// Returns NULL or the status to fail the run with.
dynrt_status_t exchangeRows(dynrt_comm_t *comm, const ExchangeConfig &config,
                            const float *in, const int32_t *slotToken,
                            float *out, ExchangeRunState &state,
                            ExchangeScratch &scratch, uint64_t &bytesSent);

// A hash of what every rank must agree on: the descriptor's name, tensor
// specs, kernels (names, arguments, builtins and their configs), routes and
// rank count.
uint64_t modelFingerprint(const dynrt_model_desc_t &desc);

// The rank and size of `comm`, NULL being a process of its own.
int32_t commRank(const dynrt_comm_t *comm);
int32_t commSize(const dynrt_comm_t *comm);

// Every rank's (ok, fingerprint): after each rank tried to load the model,
// tells every rank whether all did and loaded the same one. `localError`
// is this rank's failure (NULL: it loaded); the result is NULL when all
// ranks agree, else the status this rank's create returns (its own error,
// or which rank failed or differs).
dynrt_status_t agreeOnModel(dynrt_comm_t *comm, const dynrt_model_desc_t &desc,
                            dynrt_status_t localError);

// The weight specs to bind for this rank (`specs`, one per desc.weights)
// and the byte offset of the rank's rows in each bound tensor (`offsets`).
// A sharded weight (desc.weight_sharded) whose tensor in `weights` holds
// every expert ([E, ...]) is bound whole and offset to rank `rank`'s rows;
// one that holds only the shard binds as it is. INVALID_ARGUMENT, naming the
// tensor and both shapes it may have, for any other shape.
dynrt_status_t shardWeightSpecs(const dynrt_model_desc_t &desc,
                                const dynrt_weights_t *weights, int32_t rank,
                                std::vector<dynrt_param_spec_t> &specs,
                                std::vector<size_t> &offsets);

} // namespace dynrt

#endif // DYNRT_EXPERTS_H
