//===- BatchTest.cpp - the batch compaction builtin's logic ---------------===//
//
// The pure parts of DYNRT_BUILTIN_BATCH_COMPACT (runtime/Batch.cpp): config
// parsing, argument and descriptor checks, init and the step with the three
// compaction policies, on state tensors built here. BatchModelTest.cpp runs
// the builtin through the model C API.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/Batch.h"
#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <vector>

namespace {

using dynrt::BatchConfig;
using dynrt::BatchStepResult;
using dynrt::CompactMode;
using dynrt::CompactPolicy;
using dynrt::test::spec;

constexpr int32_t B = 32;
const std::vector<int32_t> kBuckets = {1, 4, 8, 16, 32};

using State = std::vector<int32_t>; // 4 + 2B

State init(int64_t n) {
  State st(dynrt::batchStateSize(B), 12345);
  std::string error;
  EXPECT_TRUE(dynrt::batchInit(n, B, kBuckets.data(),
                               static_cast<int32_t>(kBuckets.size()),
                               st.data(), error))
      << error;
  return st;
}

std::vector<int32_t> slotOf(const State &st) {
  return std::vector<int32_t>(st.begin() + 4, st.begin() + 4 + B);
}
std::vector<int32_t> src(const State &st) {
  return std::vector<int32_t>(st.begin() + 4 + B, st.end());
}
std::vector<int32_t> identity() {
  std::vector<int32_t> v(B);
  std::iota(v.begin(), v.end(), 0);
  return v;
}
// slot_of of n samples: `prefix` for the first ones, -1 after.
std::vector<int32_t> slots(std::initializer_list<int32_t> prefix) {
  std::vector<int32_t> v(prefix);
  v.resize(B, -1);
  return v;
}
// src: `prefix`, the identity after.
std::vector<int32_t> sources(std::initializer_list<int32_t> prefix) {
  std::vector<int32_t> v = identity();
  std::copy(prefix.begin(), prefix.end(), v.begin());
  return v;
}

BatchConfig stepConfig(CompactPolicy policy, int32_t stage = 0,
                       double gather = 0.0, double remaining = 0.0) {
  BatchConfig c;
  c.mode = CompactMode::Step;
  c.stage = stage;
  c.maxBatch = B;
  c.policy = policy;
  c.gatherCost = gather;
  c.remaining = remaining;
  return c;
}

// One step on a copy of `in` with the slots in `exits` flagged.
State step(const BatchConfig &config, const State &in,
           std::initializer_list<int32_t> exits,
           BatchStepResult *result = nullptr) {
  std::vector<uint8_t> flags(B, 0);
  for (int32_t slot : exits)
    flags[slot] = 1;
  State out(in.size(), 777);
  std::string error;
  EXPECT_TRUE(dynrt::batchStep(config, kBuckets.data(),
                               static_cast<int32_t>(kBuckets.size()),
                               flags.data(), in.data(), out.data(), result,
                               error))
      << error;
  // In place gives the same state.
  State inPlace = in;
  std::string error2;
  EXPECT_TRUE(dynrt::batchStep(config, kBuckets.data(),
                               static_cast<int32_t>(kBuckets.size()),
                               flags.data(), inPlace.data(), inPlace.data(),
                               nullptr, error2))
      << error2;
  EXPECT_EQ(inPlace, out);
  return out;
}

// The header (alive, k, n, used).
std::vector<int32_t> header(const State &st) {
  return std::vector<int32_t>(st.begin(), st.begin() + 4);
}

TEST(BatchInit, OneSample) {
  State st = init(1);
  EXPECT_EQ(header(st), (std::vector<int32_t>{1, 0, 1, 1}));
  EXPECT_EQ(slotOf(st), slots({0}));
  EXPECT_EQ(src(st), identity());
}

TEST(BatchInit, FiveSamples) {
  State st = init(5);
  EXPECT_EQ(header(st), (std::vector<int32_t>{5, 2, 5, 5})); // bucket 8
  EXPECT_EQ(slotOf(st), slots({0, 1, 2, 3, 4}));
  EXPECT_EQ(src(st), identity());
  EXPECT_EQ(header(init(4)), (std::vector<int32_t>{4, 1, 4, 4}));
  EXPECT_EQ(header(init(17)), (std::vector<int32_t>{17, 4, 17, 17}));
  EXPECT_EQ(slotOf(init(32)), identity());
}

TEST(BatchInit, RejectsBatchSizesOutsideTheRange) {
  State st(dynrt::batchStateSize(B), 9);
  std::string error;
  EXPECT_FALSE(dynrt::batchInit(0, B, kBuckets.data(), 5, st.data(), error));
  EXPECT_NE(error.find("batch size 0 is outside [1, 32]"), std::string::npos)
      << error;
  EXPECT_FALSE(dynrt::batchInit(33, B, kBuckets.data(), 5, st.data(), error));
  EXPECT_NE(error.find("33"), std::string::npos) << error;
  EXPECT_EQ(st, State(dynrt::batchStateSize(B), 9)); // untouched
}

TEST(BatchStep, NeverKeepsTheHoles) {
  BatchConfig c = stepConfig(CompactPolicy::Never);
  BatchStepResult r;
  State st = step(c, init(5), {1, 3}, &r);
  EXPECT_EQ(r.active, 5);
  EXPECT_EQ(r.bucket, 8);
  EXPECT_EQ(r.exited, 2);
  EXPECT_FALSE(r.compacted);
  EXPECT_EQ(header(st), (std::vector<int32_t>{3, 2, 5, 5})); // still bucket 8
  EXPECT_EQ(slotOf(st), slots({0, -1, 2, -1, 4}));
  EXPECT_EQ(src(st), identity());

  // The highest slot exits: used shrinks to 3, bucket 4.
  c.stage = 1;
  st = step(c, st, {4}, &r);
  EXPECT_EQ(r.active, 3);
  EXPECT_EQ(r.bucket, 8);
  EXPECT_EQ(header(st), (std::vector<int32_t>{2, 1, 5, 3}));
  EXPECT_EQ(slotOf(st), slots({0, -1, 2, -1, -1}));
  EXPECT_EQ(src(st), identity());
}

TEST(BatchStep, AlwaysCompactsStably) {
  BatchConfig c = stepConfig(CompactPolicy::Always);
  BatchStepResult r;
  State st = step(c, init(5), {1, 3}, &r);
  EXPECT_TRUE(r.compacted);
  EXPECT_EQ(r.active, 5);
  EXPECT_EQ(r.bucket, 8);
  // Samples 0, 2, 4 move to slots 0, 1, 2: bucket 4.
  EXPECT_EQ(header(st), (std::vector<int32_t>{3, 1, 5, 3}));
  EXPECT_EQ(slotOf(st), slots({0, -1, 1, -1, 2}));
  EXPECT_EQ(src(st), sources({0, 2, 4}));

  // Sample 2 (slot 1) exits: sample 4 moves from slot 2 to slot 1.
  c.stage = 1;
  st = step(c, st, {1}, &r);
  EXPECT_EQ(r.active, 3);
  EXPECT_EQ(r.bucket, 4);
  EXPECT_EQ(header(st), (std::vector<int32_t>{2, 1, 5, 2}));
  EXPECT_EQ(slotOf(st), slots({0, -1, -1, -1, 1}));
  EXPECT_EQ(src(st), sources({0, 2}));

  // Sample 4 exits: sample 0 stays, bucket 1.
  st = step(c, st, {1}, &r);
  EXPECT_EQ(header(st), (std::vector<int32_t>{1, 0, 5, 1}));
  EXPECT_EQ(slotOf(st), slots({0}));
  EXPECT_EQ(src(st), identity());
}

TEST(BatchStep, AlwaysOnHolesLeftByNever) {
  // A state with holes (as Never leaves it) is compacted by Always even
  // without exits.
  State st = step(stepConfig(CompactPolicy::Never), init(6), {0, 2});
  EXPECT_EQ(slotOf(st), slots({-1, 1, -1, 3, 4, 5}));
  BatchStepResult r;
  st = step(stepConfig(CompactPolicy::Always, 1), st, {}, &r);
  EXPECT_TRUE(r.compacted);
  EXPECT_EQ(r.exited, 0);
  EXPECT_EQ(header(st), (std::vector<int32_t>{4, 1, 6, 4}));
  EXPECT_EQ(slotOf(st), slots({-1, 0, -1, 1, 2, 3}));
  EXPECT_EQ(src(st), sources({1, 3, 4, 5}));
}

TEST(BatchStep, AutoWeighsTheGatherAgainstTheSaving) {
  // 20 samples at bucket 32; the first 15 exit, 5 stay in slots 15 .. 19:
  // compacting saves (32 - 8) rows of `remaining` on every later stage and
  // costs 5 gathers.
  State start = init(20);
  EXPECT_EQ(header(start)[1], 4);
  const std::initializer_list<int32_t> exits = {0, 1, 2,  3,  4,  5,  6, 7,
                                                8, 9, 10, 11, 12, 13, 14};
  BatchStepResult r;
  // 24 * 1 > 5 * 4: compact.
  State st = step(stepConfig(CompactPolicy::Auto, 0, 4.0, 1.0), start, exits, &r);
  EXPECT_TRUE(r.compacted);
  EXPECT_EQ(header(st), (std::vector<int32_t>{5, 2, 20, 5}));
  EXPECT_EQ(slotOf(st), slots({-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                               -1, -1, -1, 0, 1, 2, 3, 4}));
  EXPECT_EQ(src(st), sources({15, 16, 17, 18, 19}));
  // 24 * 1 > 5 * 5 is false: keep the holes at bucket 32.
  st = step(stepConfig(CompactPolicy::Auto, 0, 5.0, 1.0), start, exits, &r);
  EXPECT_FALSE(r.compacted);
  EXPECT_EQ(header(st), (std::vector<int32_t>{5, 4, 20, 20}));
  EXPECT_EQ(src(st), identity());
  // Equality does not compact either: 24 * 5 == 5 * 24.
  st = step(stepConfig(CompactPolicy::Auto, 0, 24.0, 5.0), start, exits, &r);
  EXPECT_FALSE(r.compacted);
  // No later work (remaining 0): never worth it.
  st = step(stepConfig(CompactPolicy::Auto, 0, 0.0, 0.0), start, exits, &r);
  EXPECT_FALSE(r.compacted);
  // A free gather with any later work: compact.
  st = step(stepConfig(CompactPolicy::Auto, 0, 0.0, 0.5), start, exits, &r);
  EXPECT_TRUE(r.compacted);
}

TEST(BatchStep, AutoDoesNotCompactWithinTheSameBucket) {
  // 5 samples at bucket 8; slots 0 and 1 exit: 3 alive in slots 2 .. 4,
  // used 5 -> bucket 8, bucket(3) = 4 < 8: compaction pays with a cheap
  // gather; but 6 samples with slot 0 exiting stay at bucket 8 either way.
  BatchStepResult r;
  State st = step(stepConfig(CompactPolicy::Auto, 0, 1.0, 10.0), init(5),
                  {0, 1}, &r);
  EXPECT_TRUE(r.compacted);
  EXPECT_EQ(header(st), (std::vector<int32_t>{3, 1, 5, 3}));
  st = step(stepConfig(CompactPolicy::Auto, 0, 0.0, 1000.0), init(6), {0}, &r);
  EXPECT_FALSE(r.compacted); // bucket(5) == bucket(6) == 8
  EXPECT_EQ(header(st), (std::vector<int32_t>{5, 2, 6, 6}));
  EXPECT_EQ(slotOf(st), slots({-1, 1, 2, 3, 4, 5}));
  EXPECT_EQ(src(st), identity());
}

TEST(BatchStep, AllExitAtStageZero) {
  for (CompactPolicy policy :
       {CompactPolicy::Never, CompactPolicy::Always, CompactPolicy::Auto}) {
    BatchStepResult r;
    State st = step(stepConfig(policy, 0, 1.0, 1.0), init(5), {0, 1, 2, 3, 4},
                    &r);
    EXPECT_EQ(r.active, 5);
    EXPECT_EQ(r.bucket, 8);
    EXPECT_EQ(r.exited, 5);
    EXPECT_EQ(header(st), (std::vector<int32_t>{0, -1, 5, 0}));
    EXPECT_EQ(slotOf(st), slots({}));
    EXPECT_EQ(src(st), identity());
    // A later stage does not run: it records 0 and 0 and passes the state
    // through.
    State after = step(stepConfig(policy, 1), st, {0, 3}, &r);
    EXPECT_EQ(r.active, 0);
    EXPECT_EQ(r.bucket, 0);
    EXPECT_EQ(r.exited, 0);
    EXPECT_EQ(after, st);
  }
}

TEST(BatchStep, NoneExit) {
  for (CompactPolicy policy :
       {CompactPolicy::Never, CompactPolicy::Always, CompactPolicy::Auto}) {
    BatchStepResult r;
    State start = init(5);
    State st = step(stepConfig(policy, 0, 0.0, 100.0), start, {}, &r);
    EXPECT_EQ(st, start);
    EXPECT_EQ(r.active, 5);
    EXPECT_EQ(r.exited, 0);
    EXPECT_FALSE(r.compacted);
  }
}

TEST(BatchStep, FlagsOfEmptySlotsAreIgnored) {
  State st = step(stepConfig(CompactPolicy::Always), init(5), {1, 5, 6, 31});
  EXPECT_EQ(header(st), (std::vector<int32_t>{4, 1, 5, 4}));
  EXPECT_EQ(slotOf(st), slots({0, -1, 1, 2, 3}));
  // Slot 1 is now empty: its flag is ignored.
  st = step(stepConfig(CompactPolicy::Never, 1), step(stepConfig(CompactPolicy::Never), init(5), {1}), {1});
  EXPECT_EQ(header(st), (std::vector<int32_t>{4, 2, 5, 5}));
}

TEST(BatchStep, TheFinalStepEndsEverySample) {
  // The host code's step after the final stage flags every slot.
  State st = step(stepConfig(CompactPolicy::Always), init(7), {2, 5});
  std::initializer_list<int32_t> all = {0,  1,  2,  3,  4,  5,  6,  7,
                                        8,  9,  10, 11, 12, 13, 14, 15,
                                        16, 17, 18, 19, 20, 21, 22, 23,
                                        24, 25, 26, 27, 28, 29, 30, 31};
  BatchStepResult r;
  st = step(stepConfig(CompactPolicy::Always, 2), st, all, &r);
  EXPECT_EQ(r.active, 5);
  EXPECT_EQ(r.bucket, 8);
  EXPECT_EQ(r.exited, 5);
  EXPECT_EQ(header(st), (std::vector<int32_t>{0, -1, 7, 0}));
}

TEST(BatchStep, RejectsInconsistentStates) {
  BatchConfig c = stepConfig(CompactPolicy::Always);
  std::vector<uint8_t> flags(B, 0);
  auto fails = [&](State in, const char *needle) {
    State out(in.size());
    std::string error;
    bool ok = dynrt::batchStep(c, kBuckets.data(), 5, flags.data(), in.data(),
                               out.data(), nullptr, error);
    if (ok)
      return ::testing::AssertionFailure() << "accepted";
    if (error.find(needle) == std::string::npos)
      return ::testing::AssertionFailure() << error;
    return ::testing::AssertionSuccess();
  };
  State st = init(5);
  st[0] = 4; // alive does not match the slots
  EXPECT_TRUE(fails(st, "5 sample(s) hold a slot"));
  st = init(5);
  st[4 + 1] = 0; // samples 0 and 1 in slot 0
  EXPECT_TRUE(fails(st, "samples 0 and 1 are both in slot 0"));
  st = init(5);
  st[4 + 6] = 2; // sample 6 >= n
  EXPECT_TRUE(fails(st, "sample 6 is in slot 2"));
  st = init(5);
  st[4 + 2] = 7; // slot 7 >= used
  EXPECT_TRUE(fails(st, "sample 2 is in slot 7"));
  st = init(5);
  st[1] = 1; // bucket 4 < used 5
  EXPECT_TRUE(fails(st, "used is outside"));
  st = init(5);
  st[1] = -1;
  EXPECT_TRUE(fails(st, "must be -1 exactly when"));
  st = init(5);
  st[1] = 5;
  EXPECT_TRUE(fails(st, "bucket index is outside"));
  st = init(5);
  st[2] = 33;
  EXPECT_TRUE(fails(st, "n is outside [1, 32]"));
  st = init(5);
  st[0] = 6;
  EXPECT_TRUE(fails(st, "alive is outside"));
  // Everyone exited, but a slot is still held.
  st = step(c, init(2), {0, 1});
  st[4] = 0;
  EXPECT_TRUE(fails(st, "sample 0 is in slot 0"));
}

std::vector<double> config(double mode, double stage, double maxBatch,
                           double policy, double gather, double remaining) {
  return {mode, stage, maxBatch, policy, gather, remaining};
}

::testing::AssertionResult rejects(const std::vector<double> &c,
                                   const char *needle) {
  BatchConfig out;
  std::string error;
  if (dynrt::parseBatchConfig(c.data(), static_cast<int32_t>(c.size()), out,
                              error))
    return ::testing::AssertionFailure() << "accepted";
  if (error.find(needle) == std::string::npos)
    return ::testing::AssertionFailure() << error;
  return ::testing::AssertionSuccess() << error;
}

TEST(BatchConfig, Parses) {
  std::vector<double> c = config(1, 3, 32, 2, 1.5, 0.25);
  BatchConfig out;
  std::string error;
  ASSERT_TRUE(dynrt::parseBatchConfig(c.data(), 6, out, error)) << error;
  EXPECT_EQ(out.mode, CompactMode::Step);
  EXPECT_EQ(out.stage, 3);
  EXPECT_EQ(out.maxBatch, 32);
  EXPECT_EQ(out.policy, CompactPolicy::Auto);
  EXPECT_EQ(out.gatherCost, 1.5);
  EXPECT_EQ(out.remaining, 0.25);
}

TEST(BatchConfig, RejectsBadEntries) {
  EXPECT_TRUE(rejects({0, 0, 32, 0, 0}, "5 entries, expected 6"));
  EXPECT_TRUE(rejects(config(3, 0, 32, 0, 0, 0), "entry 0 (mode) = 3"));
  EXPECT_TRUE(rejects(config(0.5, 0, 32, 0, 0, 0), "(mode)"));
  EXPECT_TRUE(rejects(config(1, 64, 32, 0, 0, 0), "(stage) = 64"));
  EXPECT_TRUE(rejects(config(1, -1, 32, 0, 0, 0), "(stage)"));
  EXPECT_TRUE(rejects(config(1, 0, 0, 0, 0, 0), "(max batch) = 0"));
  EXPECT_TRUE(rejects(config(1, 0, 32, 3, 0, 0), "(policy) = 3"));
  EXPECT_TRUE(rejects(config(1, 0, 32, 2, -1, 0), "(gather cost) = -1"));
  EXPECT_TRUE(rejects(config(1, 0, 32, 2, 0, NAN), "(remaining cost)"));
  EXPECT_TRUE(rejects(config(1, 0, 32, 2, 0, INFINITY), "(remaining cost)"));
  BatchConfig out;
  std::string error;
  EXPECT_FALSE(dynrt::parseBatchConfig(nullptr, 6, out, error));
}

TEST(BatchConfig, SampleBeginsMode) {
  std::vector<double> c = config(2, 0, 8, 0, 0, 0);
  BatchConfig out;
  std::string error;
  ASSERT_TRUE(dynrt::parseBatchConfig(c.data(), 6, out, error)) << error;
  EXPECT_EQ(out.mode, CompactMode::SampleBegins);
  EXPECT_EQ(out.maxBatch, 8);
  EXPECT_EQ(dynrt::batchNumArgs(CompactMode::SampleBegins), 1);
  EXPECT_EQ(dynrt::batchNumArgs(CompactMode::Init), 2);
  EXPECT_EQ(dynrt::batchNumArgs(CompactMode::Step), 3);
  // Everything but the mode and B must be 0.
  EXPECT_TRUE(rejects(config(2, 1, 8, 0, 0, 0),
                      "entry 1 (stage) = 1 must be 0 in mode 2 (sample "
                      "begins)"));
  EXPECT_TRUE(rejects(config(2, 0, 8, 1, 0, 0), "entry 3 (policy) = 1 must be 0"));
  EXPECT_TRUE(rejects(config(2, 0, 8, 0, 1, 0), "entry 4 (gather cost) = 1 must be 0"));
  EXPECT_TRUE(rejects(config(2, 0, 8, 0, 0, 0.5),
                      "entry 5 (remaining cost) = 0.5 must be 0"));
  // The general checks come first.
  EXPECT_TRUE(rejects(config(2, 0, 0, 0, 0, 0), "(max batch) = 0"));
  EXPECT_TRUE(rejects(config(2, 0, 8, 0, -1, 0), "(gather cost) = -1"));

  // One argument: sample [1] i32.
  std::vector<dynrt_param_spec_t> args = {spec("sample", DYNRT_I32, {1})};
  EXPECT_TRUE(dynrt::checkBatchArgs(out, args.data(), 1, error)) << error;
  EXPECT_FALSE(dynrt::checkBatchArgs(out, args.data(), 0, error));
  EXPECT_NE(error.find("sample begins takes 1 argument (sample [1] I32), got 0"),
            std::string::npos)
      << error;
  EXPECT_FALSE(dynrt::checkBatchArgs(out, nullptr, 1, error));
  args[0] = spec("sample", DYNRT_I64, {1});
  EXPECT_FALSE(dynrt::checkBatchArgs(out, args.data(), 1, error));
  EXPECT_NE(error.find("the sample argument 'sample' must be [1] I32, got [1] I64"),
            std::string::npos)
      << error;
  args[0] = spec("sample", DYNRT_I32, {});
  EXPECT_FALSE(dynrt::checkBatchArgs(out, args.data(), 1, error));
  EXPECT_NE(error.find("got [] I32"), std::string::npos) << error;
}

TEST(BatchConfig, ChecksTheArguments) {
  BatchConfig init;
  init.maxBatch = 4;
  std::string error;
  std::vector<dynrt_param_spec_t> initArgs = {spec("count", DYNRT_I32, {1}),
                                              spec("state", DYNRT_I32, {12})};
  EXPECT_TRUE(dynrt::checkBatchArgs(init, initArgs.data(), 2, error)) << error;
  EXPECT_FALSE(dynrt::checkBatchArgs(init, initArgs.data(), 1, error));
  EXPECT_NE(error.find("init takes 2 arguments"), std::string::npos) << error;
  initArgs[1] = spec("state", DYNRT_I32, {11});
  EXPECT_FALSE(dynrt::checkBatchArgs(init, initArgs.data(), 2, error));
  EXPECT_NE(error.find("the state argument 'state' must be [12] I32, got [11] I32"),
            std::string::npos)
      << error;

  BatchConfig step = init;
  step.mode = CompactMode::Step;
  std::vector<dynrt_param_spec_t> stepArgs = {
      spec("flags", DYNRT_BOOL, {4}), spec("in", DYNRT_I32, {12}),
      spec("out", DYNRT_I32, {12})};
  EXPECT_TRUE(dynrt::checkBatchArgs(step, stepArgs.data(), 3, error)) << error;
  EXPECT_FALSE(dynrt::checkBatchArgs(step, stepArgs.data(), 2, error));
  EXPECT_NE(error.find("step takes 3 arguments"), std::string::npos) << error;
  stepArgs[0] = spec("flags", DYNRT_I32, {4});
  EXPECT_FALSE(dynrt::checkBatchArgs(step, stepArgs.data(), 3, error));
  EXPECT_NE(error.find("'flags' must be [4] BOOL, got [4] I32"),
            std::string::npos)
      << error;
  stepArgs[0] = spec("flags", DYNRT_BOOL, {4});
  stepArgs[2] = spec("out", DYNRT_I32, {4, 3});
  EXPECT_FALSE(dynrt::checkBatchArgs(step, stepArgs.data(), 3, error));
  EXPECT_NE(error.find("'out' must be [12] I32, got [4, 3] I32"),
            std::string::npos)
      << error;
}

TEST(BatchConfig, ChecksTheDescriptor) {
  std::vector<dynrt_param_spec_t> io = {spec("x", DYNRT_F32, {8, 3})};
  const int32_t buckets[] = {2, 8};
  dynrt_model_desc_t desc{};
  desc.name = "m";
  desc.num_inputs = 1;
  desc.inputs = io.data();
  desc.num_outputs = 1;
  desc.outputs = io.data();
  std::string error;
  EXPECT_TRUE(dynrt::checkBucketedModel(desc, error)); // not bucketed
  desc.max_batch = 8;
  desc.num_buckets = 2;
  desc.buckets = buckets;
  desc.num_stages = 2;
  EXPECT_TRUE(dynrt::checkBucketedModel(desc, error)) << error;

  BatchConfig c;
  c.mode = CompactMode::Step;
  c.maxBatch = 8;
  c.stage = 1;
  EXPECT_TRUE(dynrt::checkBatchDesc(c, desc, error)) << error;
  c.stage = 2;
  EXPECT_FALSE(dynrt::checkBatchDesc(c, desc, error));
  EXPECT_NE(error.find("stage 2, but the model has 2 stage(s)"),
            std::string::npos)
      << error;
  c.mode = CompactMode::Init; // init has no stage
  EXPECT_TRUE(dynrt::checkBatchDesc(c, desc, error)) << error;
  c.maxBatch = 16;
  EXPECT_FALSE(dynrt::checkBatchDesc(c, desc, error));
  EXPECT_NE(error.find("max batch 16, but the model's max_batch is 8"),
            std::string::npos)
      << error;
  desc.max_batch = 0;
  EXPECT_FALSE(dynrt::checkBatchDesc(c, desc, error));
  EXPECT_NE(error.find("not bucketed"), std::string::npos) << error;
}

TEST(BatchConfig, BucketIndex) {
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 0), 0);
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 1), 0);
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 2), 1);
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 8), 2);
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 9), 3);
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 32), 4);
  EXPECT_EQ(dynrt::bucketIndex(kBuckets.data(), 5, 33), -1);
}

} // namespace
