// Batch.h - the active set of a bucketed early-exit model (dyncc compile
// --batch-buckets; docs/early-exit.md), the runtime builtin
// DYNRT_BUILTIN_BATCH_COMPACT: config parsing, argument and descriptor
// checks, and the pure init and step logic on the state tensor, for
// Model.cpp (which records the stages in the run's report) and the tests.
#ifndef DYNRT_BATCH_H
#define DYNRT_BATCH_H

#include "runtime/dynrt.h"

#include <cstdint>
#include <string>

namespace dynrt {

// Exit stages a bucketed model may report per run (desc->num_stages).
constexpr int32_t kMaxBatchStages = 64;

enum class CompactMode : int32_t { Init = 0, Step = 1, SampleBegins = 2 };
enum class CompactPolicy : int32_t { Never = 0, Always = 1, Auto = 2 };

// The DYNRT_COMPACT_CFG_* entries, checked and converted.
struct BatchConfig {
  CompactMode mode = CompactMode::Init;
  int32_t stage = 0;    // step: the exit stage, in [0, kMaxBatchStages)
  int32_t maxBatch = 0; // B >= 1
  CompactPolicy policy = CompactPolicy::Never;
  double gatherCost = 0.0; // >= 0: moving one alive sample's carried state
  double remaining = 0.0;  // >= 0: per sample row, all the later stages
};

// int32 entries of the state tensor: 4 + 2B (see dynrt.h).
inline int64_t batchStateSize(int64_t maxBatch) { return 4 + 2 * maxBatch; }

// Parses `config` (DYNRT_COMPACT_CFG_COUNT doubles): mode 0, 1 or 2, stage
// an integer in [0, kMaxBatchStages), max batch an integer >= 1, policy 0,
// 1 or 2, both costs finite and >= 0; in mode 2 (sample begins) stage,
// policy and both costs must be 0. On failure returns false with a message
// in `error`.
bool parseBatchConfig(const double *config, int32_t count, BatchConfig &out,
                      std::string &error);

// Checks the builtin's argument specs against a parsed config: init takes
// count [1] i32 and state [4 + 2B] i32; step takes flags [B] bool, state_in
// and state_out [4 + 2B] i32; sample begins takes sample [1] i32.
bool checkBatchArgs(const BatchConfig &config, const dynrt_param_spec_t *args,
                    int32_t numArgs, std::string &error);

// Checks a parsed config against the descriptor: the model is bucketed, B
// is desc.max_batch and a step's stage is below desc.num_stages.
bool checkBatchDesc(const BatchConfig &config, const dynrt_model_desc_t &desc,
                    std::string &error);

// Checks the batch fields of a descriptor: max_batch >= 0; when it is > 0,
// buckets ascending and positive with the last max_batch, every input's and
// output's leading dimension max_batch and num_stages in [0,
// kMaxBatchStages].
bool checkBucketedModel(const dynrt_model_desc_t &desc, std::string &error);

// The index of the smallest of the ascending `buckets` >= n, -1 if none.
int32_t bucketIndex(const int32_t *buckets, int32_t numBuckets, int64_t n);

// Init mode: writes the state (4 + 2 * maxBatch int32) of a request of n
// samples: all alive in slots 0 .. n - 1, k the smallest bucket >= n.
// Returns false with a message in `error` (state untouched) when n is
// outside [1, maxBatch] or no bucket holds n.
bool batchInit(int64_t n, int32_t maxBatch, const int32_t *buckets,
               int32_t numBuckets, int32_t *state, std::string &error);

// The number of buffers the builtin takes in `mode`: 2, 3 or 1.
inline int32_t batchNumArgs(CompactMode mode) {
  return mode == CompactMode::Init ? 2 : mode == CompactMode::Step ? 3 : 1;
}

// What one step saw and did.
struct BatchStepResult {
  int32_t active = 0;  // alive samples before the step's exits
  int32_t bucket = 0;  // the bucket the stage ran at, 0 if it did not run
  int32_t exited = 0;  // samples that exited at this step
  bool compacted = false;
};

// Step mode (see DYNRT_BUILTIN_BATCH_COMPACT in dynrt.h): removes the
// samples whose slot is flagged, decides by config.policy whether to
// compact and writes the new state to `stateOut`, which may be `stateIn`
// (but must not overlap it otherwise). `flags` has config.maxBatch bytes.
// Returns false with a message in `error` when stateIn is inconsistent
// (counts out of range, a sample in a slot outside [0, used), two samples
// in one slot, alive not matching the slots, a bucket smaller than used);
// stateOut is then unspecified. `result` may be NULL.
bool batchStep(const BatchConfig &config, const int32_t *buckets,
               int32_t numBuckets, const uint8_t *flags,
               const int32_t *stateIn, int32_t *stateOut,
               BatchStepResult *result, std::string &error);

} // namespace dynrt

#endif // DYNRT_BATCH_H
