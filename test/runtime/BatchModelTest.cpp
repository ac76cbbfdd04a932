//===- BatchModelTest.cpp - bucketed early exit through the model C API ---===//
//
// A hand-built bucketed model (desc->max_batch = 32, buckets 1, 4, 8, 16,
// 32) whose host code (a C++ entry function) runs three stages the way a
// model compiled with --batch-buckets does: the batch compaction builtin's
// init, then per stage the stage's work on the rows of the current bucket,
// the exit decisions, a step and the gather of the carried state by src.
// Checked: dynrt_model_run_batch (staging, guard bytes, the batch count in
// the params), the report's active/bucket, the exit histogram, run errors
// and the descriptor checks of dynrt_model_create.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using dynrt::test::failsWith;
using dynrt::test::spec;
using dynrt::test::succeeds;

constexpr int32_t B = 32;
constexpr int32_t kStages = 3; // two exit points and the final layer
const int32_t kBuckets[] = {1, 4, 8, 16, 32};
constexpr float kTheta = 100.0f; // the runtime parameter's default

std::vector<double> compactConfig(int32_t mode, int32_t stage, int32_t policy,
                                  int32_t maxBatch = B) {
  std::vector<double> c(DYNRT_COMPACT_CFG_COUNT, 0.0);
  c[DYNRT_COMPACT_CFG_MODE] = mode;
  c[DYNRT_COMPACT_CFG_STAGE] = stage;
  c[DYNRT_COMPACT_CFG_MAX_BATCH] = maxBatch;
  c[DYNRT_COMPACT_CFG_POLICY] = policy;
  c[DYNRT_COMPACT_CFG_GATHER_COST] = 1.0;
  c[DYNRT_COMPACT_CFG_REMAINING] = 4.0;
  return c;
}

// The arena of the host code: count, two states, flags, two carried states.
constexpr size_t kCount = 0, kStateA = 64, kStateB = 448, kFlags = 832,
                 kCarryA = 896, kCarryB = 1024, kArenaBytes = 1152;

// The host code. Input x [B, 2] i32: per sample (value, exit stage); the
// runtime's zero-filled samples beyond n are checked. Outputs y [B, 1] i32:
// 10 * value + the stages it ran + theta, and exit_layer [B] i32. The carried
// state of a slot starts at 10 * value and every stage adds 1 to each row of
// its bucket; y shows whether the gathers moved it with its sample.
int32_t stagedEntry(void *const *inputs, void *const *outputs, void *const *,
                    void *const *params, uint8_t *arena, void *ctx) {
  const float theta = *static_cast<const float *>(params[0]);
  const auto *countParam = static_cast<const int32_t *>(params[1]);
  if (reinterpret_cast<uintptr_t>(countParam) % 64 != 0)
    return 90;
  const int32_t n = *countParam;
  if (n < 1 || n > B)
    return 91;
  const auto *x = static_cast<const int32_t *>(inputs[0]);
  auto *y = static_cast<int32_t *>(outputs[0]);
  auto *exitLayer = static_cast<int32_t *>(outputs[1]);
  for (int32_t j = n; j < B; ++j)
    if (x[2 * j] != 0 || x[2 * j + 1] != 0)
      return 92;
  auto *count = reinterpret_cast<int32_t *>(arena + kCount);
  auto *st = reinterpret_cast<int32_t *>(arena + kStateA);
  auto *st2 = reinterpret_cast<int32_t *>(arena + kStateB);
  auto *flags = arena + kFlags;
  auto *h = reinterpret_cast<int32_t *>(arena + kCarryA);
  auto *h2 = reinterpret_cast<int32_t *>(arena + kCarryB);
  *count = n;
  void *initArgs[] = {count, st};
  if (int32_t r = dynrt_invoke_kernel(ctx, 0, initArgs))
    return r;
  for (int32_t i = 0; i < B; ++i)
    h[i] = i < n ? 10 * x[2 * i] : 0;
  for (int32_t s = 0; s < kStages; ++s) {
    if (st[1] < 0)
      break; // every sample exited
    const int32_t rows = kBuckets[st[1]];
    for (int32_t i = 0; i < rows; ++i) // the stage, at its bucket
      h[i] += 1;
    std::fill_n(flags, B, 0);
    for (int32_t j = 0; j < n; ++j) {
      int32_t slot = st[4 + j];
      if (slot < 0)
        continue;
      if (slot >= rows)
        return 93;
      if (s == kStages - 1 || x[2 * j + 1] == s) {
        flags[slot] = 1;
        y[j] = h[slot] + static_cast<int32_t>(theta);
        exitLayer[j] = s;
      }
    }
    void *stepArgs[] = {flags, st, st2};
    if (int32_t r = dynrt_invoke_kernel(ctx, 1 + s, stepArgs))
      return r;
    for (int32_t i = 0; i < B; ++i)
      h2[i] = h[st2[4 + B + i]];
    std::swap(h, h2);
    std::swap(st, st2);
  }
  // Rows beyond the request: the runtime must not copy them to the caller.
  for (int32_t j = n; j < B; ++j) {
    y[j] = -5;
    exitLayer[j] = 0;
  }
  return 0;
}

// Calls a step on a state whose alive count is wrong: the run fails.
int32_t corruptEntry(void *const *, void *const *, void *const *,
                     void *const *params, uint8_t *arena, void *ctx) {
  auto *count = reinterpret_cast<int32_t *>(arena + kCount);
  auto *st = reinterpret_cast<int32_t *>(arena + kStateA);
  auto *st2 = reinterpret_cast<int32_t *>(arena + kStateB);
  *count = *static_cast<const int32_t *>(params[1]);
  void *initArgs[] = {count, st};
  if (int32_t r = dynrt_invoke_kernel(ctx, 0, initArgs))
    return r;
  st[0] += 1;
  std::fill_n(arena + kFlags, B, 0);
  void *stepArgs[] = {arena + kFlags, st, st2};
  return dynrt_invoke_kernel(ctx, 1, stepArgs);
}

// Calls init with a count outside [1, B].
int32_t badCountEntry(void *const *, void *const *, void *const *,
                      void *const *, uint8_t *arena, void *ctx) {
  auto *count = reinterpret_cast<int32_t *>(arena + kCount);
  *count = B + 1;
  void *initArgs[] = {count, arena + kStateA};
  return dynrt_invoke_kernel(ctx, 0, initArgs);
}

struct BatchModel {
  explicit BatchModel(int32_t policy = 1) {
    configs[0] = compactConfig(0, 0, policy);
    for (int32_t s = 0; s < kStages; ++s)
      configs[1 + s] = compactConfig(1, s, policy);
    inputs = {spec("x", DYNRT_I32, {B, 2})};
    outputs = {spec("y", DYNRT_I32, {B, 1}),
               spec("exit_layer", DYNRT_I32, {B})};
    initArgs = {spec("count", DYNRT_I32, {1}),
                spec("state", DYNRT_I32, {4 + 2 * B})};
    stepArgs = {spec("flags", DYNRT_BOOL, {B}),
                spec("state_in", DYNRT_I32, {4 + 2 * B}),
                spec("state_out", DYNRT_I32, {4 + 2 * B})};
    static const char *names[] = {"compact_init", "stage0_compact",
                                  "stage1_compact", "stage2_compact"};
    for (int32_t k = 0; k < 1 + kStages; ++k) {
      kernels[k] = {};
      kernels[k].name = names[k];
      kernels[k].num_args = k == 0 ? 2 : 3;
      kernels[k].args = k == 0 ? initArgs.data() : stepArgs.data();
      kernels[k].builtin = DYNRT_BUILTIN_BATCH_COMPACT;
      kernels[k].num_config = DYNRT_COMPACT_CFG_COUNT;
      kernels[k].config = configs[k].data();
    }
    param = {"theta", 1, &kTheta};
    desc = {};
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "batch_model";
    desc.num_inputs = 1;
    desc.inputs = inputs.data();
    desc.num_outputs = 2;
    desc.outputs = outputs.data();
    desc.num_kernels = 1 + kStages;
    desc.kernels = kernels;
    desc.arena_bytes = kArenaBytes;
    desc.entry = stagedEntry;
    desc.num_params = 1;
    desc.params = &param;
    desc.exit_layer_output = 1;
    desc.max_batch = B;
    desc.num_buckets = 5;
    desc.buckets = kBuckets;
    desc.num_stages = kStages;
  }

  dynrt_status_t create(dynrt_model_t **model) {
    return dynrt_model_create(&desc, nullptr, nullptr, model);
  }

  std::vector<double> configs[1 + kStages];
  std::vector<dynrt_param_spec_t> inputs, outputs, initArgs, stepArgs;
  dynrt_kernel_desc_t kernels[1 + kStages];
  dynrt_runtime_param_t param;
  dynrt_model_desc_t desc;
};

// A request of n samples: sample j has value j + 1 and exits at stage
// exits[j] (kStages - 1: at the final layer).
struct Request {
  explicit Request(const std::vector<int32_t> &exits)
      : n(static_cast<int32_t>(exits.size())) {
    for (int32_t j = 0; j < n; ++j) {
      x.push_back(j + 1);
      x.push_back(exits[j]);
    }
  }
  int32_t expectedY(int32_t j) const { return 10 * (j + 1) + x[2 * j + 1] + 1 + int32_t(kTheta); }

  int32_t n;
  std::vector<int32_t> x;
};

// Caller outputs of n samples with `guard` poisoned int32s after each,
// placed at `offset` bytes into their allocation (4: unaligned).
constexpr int32_t kPoison = 0x5a5a5a5a;
struct Outputs {
  Outputs(int32_t samples, int32_t guardInts = 16, size_t offsetBytes = 0)
      : n(samples), guard(guardInts), ybuf(n + guard + 16, kPoison),
        ebuf(n + guard + 16, kPoison), offset(offsetBytes / 4) {
    ptrs[0] = y();
    ptrs[1] = exitLayer();
  }
  int32_t *y() { return ybuf.data() + offset; }
  int32_t *exitLayer() { return ebuf.data() + offset; }
  bool guardsIntact() {
    for (int32_t i = 0; i < guard; ++i)
      if (y()[n + i] != kPoison || exitLayer()[n + i] != kPoison)
        return false;
    return true;
  }

  int32_t n, guard;
  std::vector<int32_t> ybuf, ebuf;
  size_t offset;
  void *ptrs[2];
};

struct StageReport {
  explicit StageReport(int32_t stages = kStages)
      : active(stages + 1, 77), bucket(stages + 1, 77) {
    report.num_stages = stages;
    report.active = active.data();
    report.bucket = bucket.data();
  }
  std::vector<int32_t> activeOf() const {
    return {active.begin(), active.begin() + report.num_stages};
  }
  std::vector<int32_t> bucketOf() const {
    return {bucket.begin(), bucket.begin() + report.num_stages};
  }
  std::vector<int32_t> active, bucket;
  dynrt_run_report_t report{};
};

// dynrt_model_run_batch on the request, with `batch` samples (default: the
// request's).
constexpr int64_t kRequestSize = INT64_MIN;
dynrt_status_t runBatch(dynrt_model_t *model, const Request &req, Outputs &out,
                        dynrt_run_report_t *report,
                        int64_t batch = kRequestSize) {
  const void *in[] = {req.x.data()};
  return dynrt_model_run_batch(model, batch == kRequestSize ? req.n : batch,
                               in, out.ptrs, report);
}

void expectOutputs(const Request &req, Outputs &out) {
  for (int32_t j = 0; j < req.n; ++j) {
    EXPECT_EQ(out.y()[j], req.expectedY(j)) << "sample " << j;
    EXPECT_EQ(out.exitLayer()[j], req.x[2 * j + 1]) << "sample " << j;
  }
  EXPECT_TRUE(out.guardsIntact());
}

TEST(BatchModel, RunsStagesAtTheBucketsOfTheActiveSamples) {
  BatchModel m(/*policy=*/1); // always compact
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  // Samples 0 and 1 exit at stage 0, sample 2 at stage 1, 3 and 4 at the end.
  Request req({0, 0, 1, 2, 2});
  Outputs out(req.n);
  StageReport rep;
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &rep.report)));
  expectOutputs(req, out);
  EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{5, 3, 2}));
  EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{8, 4, 4}));
  EXPECT_EQ(rep.active[kStages], 77); // beyond num_stages: untouched
  EXPECT_EQ(rep.bucket[kStages], 77);

  // The histogram counts the five samples only (the host code wrote layer 0
  // into the other 27 rows).
  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(model, &stats)));
  EXPECT_EQ(stats.runs, 1u);
  EXPECT_EQ(stats.kernel_calls, 1u + kStages);
  EXPECT_EQ(stats.exit_histogram[0], 2u);
  EXPECT_EQ(stats.exit_histogram[1], 1u);
  EXPECT_EQ(stats.exit_histogram[2], 2u);
  dynrt_model_destroy(model);
}

TEST(BatchModel, NeverKeepsTheStartingBucket) {
  BatchModel m(/*policy=*/0);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Request req({0, 0, 1, 2, 2});
  Outputs out(req.n);
  StageReport rep;
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &rep.report)));
  expectOutputs(req, out);
  EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{5, 3, 2}));
  EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{8, 8, 8}));

  // The last samples exit first: used shrinks without compaction.
  Request tail({2, 1, 0, 0, 0});
  Outputs out2(tail.n);
  ASSERT_TRUE(succeeds(runBatch(model, tail, out2, &rep.report)));
  expectOutputs(tail, out2);
  EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{5, 2, 1}));
  EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{8, 4, 1}));
  dynrt_model_destroy(model);
}

TEST(BatchModel, AutoPolicy) {
  // gather 1, remaining 4: 20 samples, 15 exit at stage 0 from the low
  // slots: (32 - 8) * 4 > 1 * 5, compact to bucket 8.
  BatchModel m(/*policy=*/2);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  std::vector<int32_t> exits(20, 2);
  std::fill_n(exits.begin(), 15, 0);
  Request req(exits);
  Outputs out(req.n);
  StageReport rep;
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &rep.report)));
  expectOutputs(req, out);
  EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{20, 5, 5}));
  EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{32, 8, 8}));
  dynrt_model_destroy(model);
}

TEST(BatchModel, AllExitAtTheFirstStage) {
  BatchModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Request req({0, 0, 0});
  Outputs out(req.n);
  StageReport rep;
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &rep.report)));
  expectOutputs(req, out);
  // The later stages did not run: 0 and 0 (the report was cleared).
  EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{3, 0, 0}));
  EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{4, 0, 0}));
  dynrt_model_destroy(model);
}

TEST(BatchModel, FullRunsAndOneSample) {
  BatchModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  std::vector<int32_t> exits(B);
  for (int32_t j = 0; j < B; ++j)
    exits[j] = j % 3;
  Request req(exits);
  StageReport rep;
  // dynrt_model_run_ex runs max_batch samples; so does run_batch with 32.
  {
    Outputs out(B);
    const void *in[] = {req.x.data()};
    ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, in, out.ptrs, &rep.report)));
    expectOutputs(req, out);
    EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{32, 21, 10}));
    EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{32, 32, 16}));
    Outputs out2(B);
    ASSERT_TRUE(succeeds(dynrt_model_run(model, in, out2.ptrs)));
    expectOutputs(req, out2);
    Outputs out3(B);
    ASSERT_TRUE(succeeds(runBatch(model, req, out3, nullptr, B)));
    expectOutputs(req, out3);
  }
  Request one({1});
  Outputs out(1);
  ASSERT_TRUE(succeeds(runBatch(model, one, out, &rep.report)));
  expectOutputs(one, out);
  EXPECT_EQ(rep.activeOf(), (std::vector<int32_t>{1, 1, 0}));
  EXPECT_EQ(rep.bucketOf(), (std::vector<int32_t>{1, 1, 0}));
  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(model, &stats)));
  EXPECT_EQ(stats.exit_histogram[0] + stats.exit_histogram[1] +
                stats.exit_histogram[2],
            3u * B + 1u);
  dynrt_model_destroy(model);
}

TEST(BatchModel, NeverWritesBeyondTheCallersSamples) {
  BatchModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  // The caller's input holds 3 samples; what follows in memory is garbage
  // the run must not read (the host code fails on non-zero padding).
  Request req({2, 0, 1});
  std::vector<int32_t> x = req.x;
  x.resize(2 * B, -1);
  const void *in[] = {x.data()};
  for (size_t offset : {size_t(0), size_t(4)}) { // aligned and not
    Outputs out(3, /*guard=*/2 * B, offset);
    ASSERT_TRUE(succeeds(dynrt_model_run_batch(model, 3, in, out.ptrs, nullptr)));
    expectOutputs(req, out);
  }
  // An unaligned input of 3 samples, also poisoned after them.
  std::vector<int32_t> shifted(2 * B + 1, -1);
  std::copy(req.x.begin(), req.x.end(), shifted.begin() + 1);
  const void *in2[] = {shifted.data() + 1};
  Outputs out(3, 2 * B, 4);
  ASSERT_TRUE(succeeds(dynrt_model_run_batch(model, 3, in2, out.ptrs, nullptr)));
  expectOutputs(req, out);
  dynrt_model_destroy(model);
}

TEST(BatchModel, BadBatchSizes) {
  BatchModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Request req({0});
  Outputs out(1);
  for (int64_t batch : {int64_t(0), int64_t(33), int64_t(-1), int64_t(1) << 40})
    EXPECT_TRUE(failsWith(runBatch(model, req, out, nullptr, batch),
                          DYNRT_INVALID_ARGUMENT,
                          {"batch " + std::to_string(batch) +
                               " is outside [1, 32]",
                           "batch_model"}));
  EXPECT_TRUE(out.guardsIntact());
  EXPECT_EQ(out.y()[0], kPoison);
  EXPECT_TRUE(failsWith(dynrt_model_run_batch(nullptr, 1, nullptr, nullptr,
                                              nullptr),
                        DYNRT_INVALID_ARGUMENT, {"model is NULL"}));
  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(model, &stats)));
  EXPECT_EQ(stats.runs, 0u);
  dynrt_model_destroy(model);
}

int32_t copyEntry(void *const *inputs, void *const *outputs, void *const *,
                  void *const *, uint8_t *, void *) {
  std::memcpy(outputs[0], inputs[0], 2 * sizeof(int32_t));
  return 0;
}

TEST(BatchModel, RunBatchNeedsABucketedModel) {
  std::vector<dynrt_param_spec_t> io = {spec("x", DYNRT_I32, {2})};
  dynrt_model_desc_t desc{};
  desc.abi_version = DYNRT_MODEL_ABI_VERSION;
  desc.name = "plain";
  desc.num_inputs = 1;
  desc.inputs = io.data();
  desc.num_outputs = 1;
  desc.outputs = io.data();
  desc.entry = copyEntry;
  desc.exit_layer_output = -1;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(dynrt_model_create(&desc, nullptr, nullptr, &model)));
  int32_t x[2] = {4, 5}, y[2] = {0, 0};
  const void *in[] = {x};
  void *out[] = {y};
  EXPECT_TRUE(failsWith(dynrt_model_run_batch(model, 1, in, out, nullptr),
                        DYNRT_INVALID_ARGUMENT,
                        {"model 'plain' was not compiled with "
                         "--batch-buckets"}));
  EXPECT_EQ(y[0], 0);
  // Its params array has no batch count; plain runs still work, and a
  // report asking for stages gets none.
  int32_t active[2] = {9, 9};
  dynrt_run_report_t report{};
  report.num_stages = 2;
  report.active = active;
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, in, out, &report)));
  EXPECT_EQ(y[1], 5);
  EXPECT_EQ(active[0], 9);
  dynrt_model_destroy(model);
}

TEST(BatchModel, Reports) {
  BatchModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Request req({0, 1, 1, 2, 2, 2});
  // Fewer entries than stages: only those are written.
  StageReport two(2);
  Outputs out(req.n);
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &two.report)));
  EXPECT_EQ(two.activeOf(), (std::vector<int32_t>{6, 5}));
  EXPECT_EQ(two.bucketOf(), (std::vector<int32_t>{8, 8}));
  EXPECT_EQ(two.active[2], 77);
  EXPECT_EQ(two.bucket[2], 77);
  // More entries than stages: the rest are untouched.
  StageReport five(5);
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &five.report)));
  EXPECT_EQ(five.activeOf(), (std::vector<int32_t>{6, 5, 3, 77, 77}));
  EXPECT_EQ(five.bucketOf(), (std::vector<int32_t>{8, 8, 4, 77, 77}));
  // One array only.
  std::vector<int32_t> bucket(kStages, -3);
  dynrt_run_report_t onlyBucket{};
  onlyBucket.num_stages = kStages;
  onlyBucket.bucket = bucket.data();
  ASSERT_TRUE(succeeds(runBatch(model, req, out, &onlyBucket)));
  EXPECT_EQ(bucket, (std::vector<int32_t>{8, 8, 4}));
  // A negative count is refused.
  dynrt_run_report_t bad{};
  bad.num_stages = -1;
  EXPECT_TRUE(failsWith(runBatch(model, req, out, &bad),
                        DYNRT_INVALID_ARGUMENT, {"bad run report (-1 stages)"}));
  dynrt_model_destroy(model);
}

TEST(BatchModel, ConcurrentRunsOfDifferentSizes) {
  BatchModel m(/*policy=*/2);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  std::vector<std::thread> threads;
  std::vector<int> failures(8, 0);
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        int32_t n = 1 + (t * 7 + i * 5) % B;
        std::vector<int32_t> exits(n);
        for (int32_t j = 0; j < n; ++j)
          exits[j] = (j * 13 + i + t) % kStages;
        Request req(exits);
        Outputs out(n);
        StageReport rep;
        dynrt_status_t st = runBatch(model, req, out, &rep.report);
        bool ok = st == nullptr && out.guardsIntact() && rep.active[0] == n;
        dynrt_status_free(st);
        for (int32_t j = 0; ok && j < n; ++j)
          ok = out.y()[j] == req.expectedY(j);
        failures[t] += !ok;
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(failures, std::vector<int>(8, 0));
  dynrt_model_destroy(model);
}

TEST(BatchModel, RunFailures) {
  {
    BatchModel m;
    m.desc.entry = corruptEntry;
    dynrt_model_t *model = nullptr;
    ASSERT_TRUE(succeeds(m.create(&model)));
    Request req({0, 0});
    Outputs out(2);
    EXPECT_TRUE(failsWith(runBatch(model, req, out, nullptr), DYNRT_INTERNAL,
                          {"kernel 'stage0_compact' failed",
                           "inconsistent batch state"}));
    EXPECT_TRUE(out.guardsIntact());
    EXPECT_EQ(out.y()[0], kPoison); // a failed run copies nothing back
    dynrt_model_destroy(model);
  }
  {
    BatchModel m;
    m.desc.entry = badCountEntry;
    dynrt_model_t *model = nullptr;
    ASSERT_TRUE(succeeds(m.create(&model)));
    Request req({0});
    Outputs out(1);
    EXPECT_TRUE(failsWith(runBatch(model, req, out, nullptr),
                          DYNRT_INVALID_ARGUMENT,
                          {"kernel 'compact_init' failed",
                           "batch size 33 is outside [1, 32]"}));
    dynrt_model_destroy(model);
  }
}

TEST(BatchModel, CreateChecksTheConfigs) {
  dynrt_model_t *model = nullptr;
  {
    BatchModel m;
    m.configs[2][DYNRT_COMPACT_CFG_POLICY] = 3;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'stage1_compact'", "(policy) = 3"}));
  }
  {
    BatchModel m;
    m.configs[1][DYNRT_COMPACT_CFG_GATHER_COST] = -2;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'stage0_compact'", "gather cost"}));
  }
  {
    BatchModel m;
    m.kernels[0].num_config = 5;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'compact_init'", "5 entries, expected 6"}));
  }
  {
    BatchModel m;
    m.configs[0][DYNRT_COMPACT_CFG_MAX_BATCH] = 16;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'compact_init'",
                           "max batch 16, but the model's max_batch is 32"}));
  }
  {
    BatchModel m;
    m.configs[3][DYNRT_COMPACT_CFG_STAGE] = 3;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'stage2_compact'",
                           "stage 3, but the model has 3 stage(s)"}));
  }
  {
    BatchModel m;
    m.configs[0][DYNRT_COMPACT_CFG_MODE] = 1; // a step with init's args
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'compact_init'", "step takes 3 arguments"}));
  }
  {
    BatchModel m;
    m.stepArgs[2] = spec("state_out", DYNRT_I32, {4 + 2 * B - 1});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'stage0_compact'", "'state_out' must be [68] I32"}));
  }
  {
    BatchModel m;
    m.stepArgs[0] = spec("flags", DYNRT_U8, {B});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'stage0_compact'", "[32] BOOL, got [32] U8"}));
  }
  EXPECT_EQ(model, nullptr);
}

TEST(BatchModel, CreateChecksTheBuckets) {
  dynrt_model_t *model = nullptr;
  {
    BatchModel m;
    m.desc.max_batch = -1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"batch_model", "max_batch is -1"}));
  }
  {
    // A batch builtin in a model that is not bucketed.
    BatchModel m;
    m.desc.max_batch = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'compact_init'", "not bucketed"}));
  }
  {
    BatchModel m;
    m.desc.num_buckets = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"bucket table is empty"}));
  }
  {
    BatchModel m;
    m.desc.buckets = nullptr;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"bucket table is empty"}));
  }
  {
    BatchModel m;
    const int32_t unordered[] = {1, 8, 4, 16, 32};
    m.desc.buckets = unordered;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"bucket 2 is 4", "ascending"}));
  }
  {
    BatchModel m;
    const int32_t zero[] = {0, 4, 8, 16, 32};
    m.desc.buckets = zero;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"bucket 0 is 0", "positive"}));
  }
  {
    BatchModel m;
    m.desc.num_buckets = 4; // ends at 16
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"the last bucket is 16, expected max_batch 32"}));
  }
  {
    BatchModel m;
    m.inputs[0] = spec("x", DYNRT_I32, {2, B});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"input 0 ('x') has shape [2, 32]",
                           "leading dimension must be max_batch 32"}));
  }
  {
    BatchModel m;
    m.outputs[1] = spec("exit_layer", DYNRT_I32, {});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"output 1 ('exit_layer') has shape []"}));
  }
  {
    BatchModel m;
    m.desc.num_stages = 65;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"num_stages is 65, outside [0, 64]"}));
  }
  EXPECT_EQ(model, nullptr);
}

} // namespace
