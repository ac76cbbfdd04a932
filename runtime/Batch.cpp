// Batch.cpp - the batch compaction builtin (DYNRT_BUILTIN_BATCH_COMPACT) of
// bucketed early-exit models: config, argument and descriptor checks, and
// the init and step logic on the state tensor (and the checks of mode 2,
// sample begins, whose work is in Model.cpp). Model.cpp calls them from
// dynrt_invoke_kernel and records the stages in the run's report.
#include "runtime/Batch.h"

#include "runtime/Config.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace {
constexpr int64_t kMaxInt32 = std::numeric_limits<int32_t>::max();

bool readInt(const double *config, int index, const char *name, int64_t lo,
             int64_t hi, int32_t &out, std::string &error) {
  return dynrt::readConfigInt(config, index, "batch compaction", name, lo, hi, out, error);
}

bool readCost(const double *config, int index, const char *name, double &out,
              std::string &error) {
  double v = config[index];
  if (!std::isfinite(v) || v < 0.0) {
    error = fmt::format("batch compaction config entry {} ({}) = {} is not "
                        "a finite value >= 0",
                        index, name, v);
    return false;
  }
  out = v;
  return true;
}

std::string shapeString(const dynrt_param_spec_t &spec) {
  if (spec.rank < 0 || spec.rank > DYNRT_MAX_RANK)
    return fmt::format("rank {}", spec.rank);
  std::string shape = "[";
  for (int32_t d = 0; d < spec.rank; ++d)
    shape += (d ? ", " : "") + std::to_string(spec.shape[d]);
  return shape + "]";
}

// Checks that `spec` is a [extent] tensor of `dtype`.
bool checkVector(const dynrt_param_spec_t &spec, const char *role,
                 dynrt_dtype_t dtype, int64_t extent, std::string &error) {
  if (spec.dtype == dtype && spec.rank == 1 && spec.shape[0] == extent)
    return true;
  error = fmt::format("the {} argument '{}' must be [{}] {}, got {} {}", role,
                      spec.name ? spec.name : "?", extent,
                      dynrt_dtype_name(dtype), shapeString(spec),
                      dynrt_dtype_name(spec.dtype));
  return false;
}
} // namespace

bool dynrt::parseBatchConfig(const double *config, int32_t count,
                             BatchConfig &out, std::string &error) {
  if (!config || count != DYNRT_COMPACT_CFG_COUNT) {
    error = fmt::format("batch compaction config has {} entries, expected {}",
                        config ? count : 0, int(DYNRT_COMPACT_CFG_COUNT));
    return false;
  }
  BatchConfig c;
  int32_t mode = 0, policy = 0;
  if (!readInt(config, DYNRT_COMPACT_CFG_MODE, "mode", 0, 2, mode, error) ||
      !readInt(config, DYNRT_COMPACT_CFG_STAGE, "stage", 0,
               kMaxBatchStages - 1, c.stage, error) ||
      !readInt(config, DYNRT_COMPACT_CFG_MAX_BATCH, "max batch", 1, kMaxInt32,
               c.maxBatch, error) ||
      !readInt(config, DYNRT_COMPACT_CFG_POLICY, "policy", 0, 2, policy,
               error) ||
      !readCost(config, DYNRT_COMPACT_CFG_GATHER_COST, "gather cost",
                c.gatherCost, error) ||
      !readCost(config, DYNRT_COMPACT_CFG_REMAINING, "remaining cost",
                c.remaining, error))
    return false;
  c.mode = static_cast<CompactMode>(mode);
  c.policy = static_cast<CompactPolicy>(policy);
  if (c.mode == CompactMode::SampleBegins) {
    // The other settings are meaningless for it: zeros, so that a config
    // meant for another mode is not taken for this one.
    const struct {
      int index;
      const char *name;
    } zeros[] = {{DYNRT_COMPACT_CFG_STAGE, "stage"},
                 {DYNRT_COMPACT_CFG_POLICY, "policy"},
                 {DYNRT_COMPACT_CFG_GATHER_COST, "gather cost"},
                 {DYNRT_COMPACT_CFG_REMAINING, "remaining cost"}};
    for (const auto &z : zeros)
      if (config[z.index] != 0.0) {
        error = fmt::format("batch compaction config entry {} ({}) = {} must "
                            "be 0 in mode 2 (sample begins)",
                            z.index, z.name, config[z.index]);
        return false;
      }
  }
  out = c;
  return true;
}

bool dynrt::checkBatchArgs(const BatchConfig &config,
                           const dynrt_param_spec_t *args, int32_t numArgs,
                           std::string &error) {
  const int64_t B = config.maxBatch, stateSize = batchStateSize(B);
  if (config.mode == CompactMode::Init) {
    if (numArgs != 2 || !args) {
      error = fmt::format("batch compaction init takes 2 arguments (count [1] "
                          "I32, state [{}] I32), got {}",
                          stateSize, numArgs);
      return false;
    }
    return checkVector(args[0], "count", DYNRT_I32, 1, error) &&
           checkVector(args[1], "state", DYNRT_I32, stateSize, error);
  }
  if (config.mode == CompactMode::SampleBegins) {
    if (numArgs != 1 || !args) {
      error = fmt::format("batch compaction sample begins takes 1 argument "
                          "(sample [1] I32), got {}",
                          numArgs);
      return false;
    }
    return checkVector(args[0], "sample", DYNRT_I32, 1, error);
  }
  if (numArgs != 3 || !args) {
    error = fmt::format("batch compaction step takes 3 arguments (flags [{}] "
                        "BOOL, state_in and state_out [{}] I32), got {}",
                        B, stateSize, numArgs);
    return false;
  }
  return checkVector(args[0], "flags", DYNRT_BOOL, B, error) &&
         checkVector(args[1], "state_in", DYNRT_I32, stateSize, error) &&
         checkVector(args[2], "state_out", DYNRT_I32, stateSize, error);
}

bool dynrt::checkBatchDesc(const BatchConfig &config,
                           const dynrt_model_desc_t &desc, std::string &error) {
  if (desc.max_batch <= 0) {
    error = "batch compaction in a model that is not bucketed (max_batch 0)";
    return false;
  }
  if (config.maxBatch != desc.max_batch) {
    error = fmt::format("max batch {}, but the model's max_batch is {}",
                        config.maxBatch, desc.max_batch);
    return false;
  }
  if (config.mode == CompactMode::Step && config.stage >= desc.num_stages) {
    error = fmt::format("it is stage {}, but the model has {} stage(s)",
                        config.stage, desc.num_stages);
    return false;
  }
  return true;
}

bool dynrt::checkBucketedModel(const dynrt_model_desc_t &desc,
                               std::string &error) {
  if (desc.max_batch < 0) {
    error = fmt::format("max_batch is {}; expected 0 (not bucketed) or > 0",
                        desc.max_batch);
    return false;
  }
  if (desc.max_batch == 0)
    return true;
  if (desc.num_stages < 0 || desc.num_stages > kMaxBatchStages) {
    error = fmt::format("num_stages is {}, outside [0, {}]", desc.num_stages,
                        kMaxBatchStages);
    return false;
  }
  if (desc.num_buckets < 1 || !desc.buckets) {
    error = fmt::format("max_batch is {} but the bucket table is empty ({} "
                        "buckets)",
                        desc.max_batch, desc.num_buckets);
    return false;
  }
  for (int32_t b = 0; b < desc.num_buckets; ++b)
    if (desc.buckets[b] < 1 || (b > 0 && desc.buckets[b] <= desc.buckets[b - 1])) {
      error = fmt::format("bucket {} is {}; buckets must be positive and "
                          "ascending",
                          b, desc.buckets[b]);
      return false;
    }
  if (desc.buckets[desc.num_buckets - 1] != desc.max_batch) {
    error = fmt::format("the last bucket is {}, expected max_batch {}",
                        desc.buckets[desc.num_buckets - 1], desc.max_batch);
    return false;
  }
  auto checkLeading = [&](const dynrt_param_spec_t *specs, int32_t count,
                          const char *what) {
    for (int32_t i = 0; i < count && specs; ++i) {
      const dynrt_param_spec_t &s = specs[i];
      if (s.rank < 1 || s.rank > DYNRT_MAX_RANK ||
          s.shape[0] != desc.max_batch) {
        error = fmt::format("{} {} ('{}') has shape {}; a bucketed model's "
                            "leading dimension must be max_batch {}",
                            what, i, s.name ? s.name : "?", shapeString(s),
                            desc.max_batch);
        return false;
      }
    }
    return true;
  };
  return checkLeading(desc.inputs, desc.num_inputs, "input") &&
         checkLeading(desc.outputs, desc.num_outputs, "output");
}

int32_t dynrt::bucketIndex(const int32_t *buckets, int32_t numBuckets,
                           int64_t n) {
  for (int32_t b = 0; b < numBuckets; ++b)
    if (buckets[b] >= n)
      return b;
  return -1;
}

bool dynrt::batchInit(int64_t n, int32_t maxBatch, const int32_t *buckets,
                      int32_t numBuckets, int32_t *state, std::string &error) {
  if (n < 1 || n > maxBatch) {
    error = fmt::format("the batch size {} is outside [1, {}]", n, maxBatch);
    return false;
  }
  int32_t k = bucketIndex(buckets, numBuckets, n);
  if (k < 0) {
    error = fmt::format("no bucket holds a batch of {}", n);
    return false;
  }
  const size_t B = static_cast<size_t>(maxBatch);
  state[0] = static_cast<int32_t>(n); // alive
  state[1] = k;
  state[2] = static_cast<int32_t>(n);
  state[3] = static_cast<int32_t>(n); // used
  int32_t *slotOf = state + 4, *src = state + 4 + B;
  for (size_t j = 0; j < B; ++j) {
    slotOf[j] = static_cast<int64_t>(j) < n ? static_cast<int32_t>(j) : -1;
    src[j] = static_cast<int32_t>(j);
  }
  return true;
}

bool dynrt::batchStep(const BatchConfig &config, const int32_t *buckets,
                      int32_t numBuckets, const uint8_t *flags,
                      const int32_t *stateIn, int32_t *stateOut,
                      BatchStepResult *result, std::string &error) {
  const int32_t B = config.maxBatch;
  const size_t size = static_cast<size_t>(batchStateSize(B));
  int32_t alive = stateIn[0], k = stateIn[1], n = stateIn[2],
          used = stateIn[3];
  auto bad = [&](std::string what) {
    error = fmt::format("stage {}: inconsistent batch state (alive {}, "
                        "bucket index {}, n {}, used {}): {}",
                        config.stage, alive, k, n, used, what);
    return false;
  };
  if (n < 1 || n > B)
    return bad(fmt::format("n is outside [1, {}]", B));
  if (alive < 0 || alive > n)
    return bad("alive is outside [0, n]");
  if (k < -1 || k >= numBuckets)
    return bad(fmt::format("the bucket index is outside [-1, {})", numBuckets));
  if ((k == -1) != (alive == 0))
    return bad("the bucket index must be -1 exactly when no sample is "
               "alive");
  if (used < 0 || used > B || (k >= 0 && buckets[k] < used))
    return bad("used is outside [0, the bucket]");
  const int32_t *slotOfIn = stateIn + 4;
  BatchStepResult r;
  if (k == -1) {
    // Every sample exited at an earlier stage: this stage did not run.
    for (int32_t j = 0; j < B; ++j)
      if (slotOfIn[j] != -1)
        return bad(fmt::format("sample {} is in slot {}", j, slotOfIn[j]));
    if (stateOut != stateIn)
      std::memcpy(stateOut, stateIn, size * sizeof(int32_t));
    if (result)
      *result = r;
    return true;
  }
  r.active = alive;
  r.bucket = buckets[k];
  int32_t *slotOf = stateOut + 4, *src = stateOut + 4 + B;
  if (stateOut != stateIn)
    std::memcpy(slotOf, slotOfIn, static_cast<size_t>(B) * sizeof(int32_t));
  // src holds the occupant of each old slot (-1: none) until it is rewritten
  // below; the old src is not needed.
  std::fill_n(src, B, -1);
  int32_t count = 0;
  for (int32_t j = 0; j < B; ++j) {
    int32_t s = slotOf[j];
    if (s == -1)
      continue;
    if (j >= n || s < 0 || s >= used)
      return bad(fmt::format("sample {} is in slot {}", j, s));
    if (src[s] != -1)
      return bad(fmt::format("samples {} and {} are both in slot {}", src[s],
                             j, s));
    src[s] = j;
    ++count;
  }
  if (count != alive)
    return bad(fmt::format("{} sample(s) hold a slot", count));
  // The exits; flags of slots without an alive sample are ignored.
  int32_t maxSlot = -1;
  for (int32_t i = 0; i < used; ++i) {
    int32_t j = src[i];
    if (j < 0)
      continue;
    if (flags[i]) {
      slotOf[j] = -1;
      src[i] = -1;
      ++r.exited;
    } else {
      maxSlot = i;
    }
  }
  alive -= r.exited;
  if (alive == 0) {
    k = -1;
    used = 0;
    for (int32_t i = 0; i < B; ++i)
      src[i] = i;
  } else {
    const int32_t usedNow = maxSlot + 1;
    // Both exist: usedNow and alive are at most B, the last bucket.
    const int32_t kNow = bucketIndex(buckets, numBuckets, usedNow);
    const int32_t kAlive = bucketIndex(buckets, numBuckets, alive);
    bool compact = false;
    switch (config.policy) {
    case CompactPolicy::Never:
      break;
    case CompactPolicy::Always:
      compact = r.exited > 0 || usedNow > alive;
      break;
    case CompactPolicy::Auto:
      // The cost model: compacting moves the carried state of every alive
      // sample (gatherCost units each) and in exchange lets every later
      // stage run at bucket(alive) instead of the bucket of the slots in use
      // with their holes, saving (bucket_now - bucket(alive)) sample rows of
      // `remaining` units (the per-row cost of all the stages after this
      // one, summed). Compact when the saving is larger than the gather.
      compact = buckets[kAlive] < buckets[kNow] &&
                static_cast<double>(buckets[kNow] - buckets[kAlive]) *
                        config.remaining >
                    config.gatherCost * static_cast<double>(alive);
      break;
    }
    if (compact) {
      // Stable: the alive sample of the i-th smallest old slot goes to new
      // slot i. src[next] is written only after the occupant of old slot
      // next (<= i) was read.
      int32_t next = 0;
      for (int32_t i = 0; i < usedNow; ++i) {
        int32_t j = src[i];
        if (j < 0)
          continue;
        slotOf[j] = next;
        src[next++] = i;
      }
      for (int32_t i = next; i < B; ++i)
        src[i] = i;
      used = alive;
      k = kAlive;
      r.compacted = true;
    } else {
      for (int32_t i = 0; i < B; ++i)
        src[i] = i;
      used = usedNow;
      k = kNow;
    }
  }
  stateOut[0] = alive;
  stateOut[1] = k;
  stateOut[2] = n;
  stateOut[3] = used;
  if (result)
    *result = r;
  return true;
}
