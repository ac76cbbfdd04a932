//===- SkipModelTest.cpp - dyn.skip steps through the model C API ---------===//
//
// Hand-built model descriptors whose host code (a C++ entry function) runs a
// skimming loop the way -dyn-lower-skip compiles it (docs/skim.md), calling
// the DYNRT_BUILTIN_SKIP_STEP builtin through dynrt_invoke_kernel once per
// step: the trace and step counts of dynrt_model_run_ex's report,
// dynrt_model_skip_stats, run errors and the descriptor checks of
// dynrt_model_create. The Halide runtime stubs live in HalideStubs.cpp.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <thread>
#include <vector>

namespace {

using dynrt::test::failsWith;
using dynrt::test::succeeds;

// skip0: S = 8 positions, budget 6, three actions: 0 read (state +=
// pos + 1, next pos + 1), 1 jump (next pos + max(amount, 1)), 2 stop.
constexpr int32_t S = 8, B = 6, A = 3;
constexpr int32_t kRead = 0, kJump = 1, kStop = 2;

using dynrt::test::spec;

std::vector<double> skipConfig(int32_t skip, int32_t budget, int32_t length,
                               int32_t actions) {
  std::vector<double> c(DYNRT_SKIP_CFG_COUNT, 0.0);
  c[DYNRT_SKIP_CFG_SKIP] = skip;
  c[DYNRT_SKIP_CFG_BUDGET] = budget;
  c[DYNRT_SKIP_CFG_LENGTH] = length;
  c[DYNRT_SKIP_CFG_ACTIONS] = actions;
  return c;
}

// The host code of skip0 as compiled: input 0 holds the decision of each
// position, (action, amount) [S, 2] i32, standing in for the decide region;
// output 0 the final state [1] i32. The step buffer lives in the arena.
int32_t loopEntry(void *const *inputs, void *const *outputs, void *const *,
                  void *const *, uint8_t *arena, void *ctx) {
  const auto *decisions = static_cast<const int32_t *>(inputs[0]);
  auto *state = static_cast<int32_t *>(outputs[0]);
  auto *step = reinterpret_cast<int32_t *>(arena);
  void *buffers[] = {step};
  int32_t pos = 0, n = 0, acc = 0;
  while (pos >= 0 && pos < S && n < B) {
    int32_t action = decisions[2 * pos], amount = decisions[2 * pos + 1];
    step[0] = pos;
    step[1] = action;
    step[2] = amount;
    if (int32_t r = dynrt_invoke_kernel(ctx, 0, buffers))
      return r;
    ++n;
    if (action == kStop)
      break;
    if (action == kRead) {
      acc += pos + 1;
      pos += 1;
    } else if (action == kJump) {
      pos += std::max(amount, 1);
    } else {
      return 99; // the runtime refuses out-of-range actions first
    }
  }
  *state = acc;
  return 0;
}

// Replays a script instead of running a loop, to break what the compiled
// loop guarantees: input 0 is [16, 4] i32 rows (kernel, pos, action, amount),
// ending at the first row with kernel < 0.
constexpr int32_t kScriptRows = 16;
int32_t replayEntry(void *const *inputs, void *const *outputs, void *const *,
                    void *const *, uint8_t *arena, void *ctx) {
  const auto *script = static_cast<const int32_t *>(inputs[0]);
  auto *step = reinterpret_cast<int32_t *>(arena);
  void *buffers[] = {step};
  for (int32_t i = 0; i < kScriptRows && script[4 * i] >= 0; ++i) {
    std::copy(script + 4 * i + 1, script + 4 * i + 4, step);
    if (int32_t r = dynrt_invoke_kernel(ctx, script[4 * i], buffers))
      return r;
  }
  static_cast<int32_t *>(outputs[0])[0] = 0;
  return 0;
}

// skip0 as a model (and, with `replay`, a second op skip1: S = 4, budget 2,
// two actions, run by kernel 1).
struct SkipModel {
  explicit SkipModel(bool replay = false) {
    config0 = skipConfig(0, B, S, A);
    config1 = skipConfig(1, 2, 4, 2);
    inputs = {replay ? spec("script", DYNRT_I32, {kScriptRows, 4})
                     : spec("decisions", DYNRT_I32, {S, 2})};
    outputs = {spec("state", DYNRT_I32, {1})};
    args0 = {spec("step", DYNRT_I32, {3})};
    args1 = args0;
    kernels[0] = {};
    kernels[0].name = "skip0_step";
    kernels[0].num_args = 1;
    kernels[0].args = args0.data();
    kernels[0].builtin = DYNRT_BUILTIN_SKIP_STEP;
    kernels[0].num_config = DYNRT_SKIP_CFG_COUNT;
    kernels[0].config = config0.data();
    kernels[1] = kernels[0];
    kernels[1].name = "skip1_step";
    kernels[1].args = args1.data();
    kernels[1].config = config1.data();
    skips[0] = {"skip0", S, B, A};
    skips[1] = {"skip1", 4, 2, 2};
    desc = {};
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "skip_model";
    desc.num_inputs = 1;
    desc.inputs = inputs.data();
    desc.num_outputs = 1;
    desc.outputs = outputs.data();
    desc.num_kernels = replay ? 2 : 1;
    desc.kernels = kernels;
    desc.arena_bytes = 64;
    desc.entry = replay ? replayEntry : loopEntry;
    desc.exit_layer_output = -1;
    desc.num_skips = replay ? 2 : 1;
    desc.skips = skips;
  }

  dynrt_status_t create(dynrt_model_t **model) {
    return dynrt_model_create(&desc, nullptr, nullptr, model);
  }

  std::vector<double> config0, config1;
  std::vector<dynrt_param_spec_t> inputs, outputs, args0, args1;
  dynrt_kernel_desc_t kernels[2];
  dynrt_skip_desc_t skips[2];
  dynrt_model_desc_t desc;
};

using Decisions = std::vector<int32_t>; // [S, 2]

// read, jump 3, read, jump 0 (one), read, stop: six steps, the budget.
const Decisions kMixed = {kRead, 0, kJump, 3, 7, 7, 7, 7,
                          kRead, 0, kJump, 0, kRead, 0, kStop, 0};
// Reads everything: the budget ends the loop at position 6.
const Decisions kReadAll = {kRead, 0, kRead, 0, kRead, 0, kRead, 0,
                            kRead, 0, kRead, 0, kRead, 0, kRead, 0};
// Jumps 2, then stops at position 2: two steps.
const Decisions kShort = {kJump, 2, 0, 0, kStop, 0, 0, 0,
                          0,     0, 0, 0, 0,     0, 0, 0};

using Trace = std::vector<int32_t>; // rows of (pos, action, amount)
const Trace kMixedTrace = {0, kRead, 0, 1, kJump, 3, 4, kRead, 0,
                           5, kJump, 0, 6, kRead, 0, 7, kStop, 0};

// A report for skip0 with a trace of `capacity` rows (and a guard row after
// it that the run must not touch), filled with 77 beforehand.
struct Report {
  explicit Report(int32_t capacity) : trace(3 * (capacity + 1), 77) {
    skip.capacity = capacity;
    skip.trace = trace.data();
    report.num_skips = 1;
    report.skips = &skip;
  }
  Trace rows(int32_t n) const { return Trace(trace.begin(), trace.begin() + 3 * n); }

  Trace trace;
  dynrt_skip_report_t skip{};
  dynrt_run_report_t report{};
};

struct Run {
  int32_t state = -1;
  void *outputs[1] = {&state};
};

dynrt_status_t run(dynrt_model_t *model, const Decisions &decisions,
                   dynrt_run_report_t *report, int32_t *state = nullptr) {
  const void *inputs[] = {decisions.data()};
  Run out;
  dynrt_status_t st = dynrt_model_run_ex(model, inputs, out.outputs, report);
  if (state)
    *state = out.state;
  return st;
}

TEST(SkipModel, RecordsTheTrace) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Report rep(/*capacity=*/8);
  int32_t state = -1;
  ASSERT_TRUE(succeeds(run(model, kMixed, &rep.report, &state)));
  EXPECT_EQ(state, 1 + 5 + 7);
  EXPECT_EQ(rep.skip.steps, 6);
  EXPECT_EQ(rep.rows(6), kMixedTrace);
  // Unused rows are cleared to -1; the guard row after the capacity is not
  // touched.
  EXPECT_EQ(Trace(rep.trace.begin() + 18, rep.trace.begin() + 24), Trace(6, -1));
  EXPECT_EQ(Trace(rep.trace.begin() + 24, rep.trace.end()), Trace(3, 77));

  // A second run refills the report.
  ASSERT_TRUE(succeeds(run(model, kShort, &rep.report, &state)));
  EXPECT_EQ(state, 0);
  EXPECT_EQ(rep.skip.steps, 2);
  EXPECT_EQ(rep.rows(2), (Trace{0, kJump, 2, 2, kStop, 0}));
  EXPECT_EQ(Trace(rep.trace.begin() + 6, rep.trace.begin() + 24), Trace(18, -1));

  // The budget ends the loop.
  ASSERT_TRUE(succeeds(run(model, kReadAll, &rep.report, &state)));
  EXPECT_EQ(state, 1 + 2 + 3 + 4 + 5 + 6);
  EXPECT_EQ(rep.skip.steps, B);
  EXPECT_EQ(rep.rows(B), (Trace{0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0, 4, 0, 0,
                                5, 0, 0}));

  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(model, &stats)));
  EXPECT_EQ(stats.runs, 3u);
  EXPECT_EQ(stats.kernel_calls, 6u + 2u + 6u); // one call per step
  dynrt_model_destroy(model);
}

TEST(SkipModel, CapacitySmallerThanTheSteps) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Report rep(/*capacity=*/2);
  ASSERT_TRUE(succeeds(run(model, kMixed, &rep.report)));
  EXPECT_EQ(rep.skip.steps, 6); // counted, not recorded beyond the capacity
  EXPECT_EQ(rep.rows(2), Trace(kMixedTrace.begin(), kMixedTrace.begin() + 6));
  EXPECT_EQ(Trace(rep.trace.begin() + 6, rep.trace.end()), Trace(3, 77));

  // Capacity 0 writes nothing; no trace at all counts the steps.
  Report empty(/*capacity=*/0);
  ASSERT_TRUE(succeeds(run(model, kMixed, &empty.report)));
  EXPECT_EQ(empty.skip.steps, 6);
  EXPECT_EQ(empty.trace, Trace(3, 77));
  dynrt_skip_report_t countOnly{};
  countOnly.steps = 99;
  countOnly.capacity = 5;
  dynrt_run_report_t report{0, nullptr, 1, &countOnly};
  ASSERT_TRUE(succeeds(run(model, kShort, &report)));
  EXPECT_EQ(countOnly.steps, 2);
  // More report entries than skips: the extra ones are left alone.
  dynrt_skip_report_t two[2] = {};
  two[1].steps = 42;
  report = {0, nullptr, 2, two};
  ASSERT_TRUE(succeeds(run(model, kShort, &report)));
  EXPECT_EQ(two[0].steps, 2);
  EXPECT_EQ(two[1].steps, 42);
  // No report, a report without skips.
  ASSERT_TRUE(succeeds(run(model, kShort, nullptr)));
  report = {};
  ASSERT_TRUE(succeeds(run(model, kShort, &report)));
  dynrt_model_destroy(model);
}

TEST(SkipModel, BadReports) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  dynrt_run_report_t report{0, nullptr, 1, nullptr};
  EXPECT_TRUE(failsWith(run(model, kShort, &report), DYNRT_INVALID_ARGUMENT,
                        {"report", "1 skips"}));
  report.num_skips = -1;
  EXPECT_TRUE(failsWith(run(model, kShort, &report), DYNRT_INVALID_ARGUMENT,
                        {"report"}));
  Report rep(2);
  rep.skip.capacity = -1;
  EXPECT_TRUE(failsWith(run(model, kShort, &rep.report), DYNRT_INVALID_ARGUMENT,
                        {"report", "capacity -1"}));
  uint64_t runs = 9;
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, nullptr, nullptr, 0)));
  EXPECT_EQ(runs, 0u);
  dynrt_model_destroy(model);
}

TEST(SkipModel, OutOfRangeActionFailsTheRun) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  ASSERT_TRUE(succeeds(run(model, kMixed, nullptr)));

  // Position 4 (the third step) chooses action 5.
  Decisions bad = kMixed;
  bad[2 * 4] = 5;
  Report rep(8);
  EXPECT_TRUE(failsWith(run(model, bad, &rep.report), DYNRT_INVALID_ARGUMENT,
                        {"kernel 'skip0_step' failed",
                         "dyn.skip 'skip0': step 2 (position 4) chose action "
                         "5, outside [0, 3)"}));
  // The trace ends with the bad step.
  EXPECT_EQ(rep.skip.steps, 3);
  EXPECT_EQ(rep.rows(3), (Trace{0, kRead, 0, 1, kJump, 3, 4, 5, 0}));
  bad[0] = -1;
  EXPECT_TRUE(failsWith(run(model, bad, &rep.report), DYNRT_INVALID_ARGUMENT,
                        {"step 0 (position 0) chose action -1"}));
  EXPECT_EQ(rep.skip.steps, 1);

  // Failed runs add nothing to the sums.
  uint64_t runs = 0, steps = 0, counts[A] = {};
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, &steps, counts, A)));
  EXPECT_EQ(runs, 1u);
  EXPECT_EQ(steps, 6u);
  EXPECT_EQ(std::vector<uint64_t>(counts, counts + A),
            (std::vector<uint64_t>{3, 2, 1}));
  dynrt_model_destroy(model);
}

// A script row: kernel, pos, action, amount.
using Script = std::vector<int32_t>;
Script script(std::initializer_list<std::array<int32_t, 4>> rows) {
  Script s(4 * kScriptRows, -1);
  size_t i = 0;
  for (const auto &row : rows) {
    std::copy(row.begin(), row.end(), s.begin() + 4 * i);
    ++i;
  }
  return s;
}

TEST(SkipModel, SafetyNets) {
  SkipModel m(/*replay=*/true);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  dynrt_skip_report_t skips[2] = {};
  int32_t trace0[3 * B], trace1[3 * 2];
  skips[0] = {0, B, trace0};
  skips[1] = {0, 2, trace1};
  dynrt_run_report_t report{0, nullptr, 2, skips};

  // Both ops, interleaved: each counts its own steps.
  Script ok = script({{0, 0, 0, 0}, {1, 3, 1, -2}, {0, 1, 2, 0}, {1, 1, 0, 0}});
  ASSERT_TRUE(succeeds(run(model, ok, &report)));
  EXPECT_EQ(skips[0].steps, 2);
  EXPECT_EQ(skips[1].steps, 2);
  EXPECT_EQ(Trace(trace0, trace0 + 6), (Trace{0, 0, 0, 1, 2, 0}));
  EXPECT_EQ(Trace(trace1, trace1 + 6), (Trace{3, 1, -2, 1, 0, 0}));

  // A third step of skip1 (budget 2): the generated loop never does this.
  Script over = script({{1, 0, 0, 0}, {1, 1, 0, 0}, {1, 2, 1, 0}});
  EXPECT_TRUE(failsWith(run(model, over, &report), DYNRT_INTERNAL,
                        {"kernel 'skip1_step' failed",
                         "dyn.skip 'skip1': step 2 (position 2) exceeds the "
                         "budget of 2 step(s)"}));
  EXPECT_EQ(skips[1].steps, 2);
  EXPECT_EQ(skips[0].steps, 0);

  // Positions outside [0, S).
  EXPECT_TRUE(failsWith(run(model, script({{0, 0, 0, 0}, {0, 8, 0, 0}}), &report),
                        DYNRT_INTERNAL,
                        {"dyn.skip 'skip0': step 1 is at position 8, outside "
                         "[0, 8)"}));
  EXPECT_TRUE(failsWith(run(model, script({{1, -1, 0, 0}}), &report),
                        DYNRT_INTERNAL, {"skip1", "position -1"}));

  uint64_t runs[2], steps[2], counts0[A], counts1[2];
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs[0], &steps[0], counts0, A)));
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 1, &runs[1], &steps[1], counts1, 2)));
  EXPECT_EQ(runs[0], 1u);
  EXPECT_EQ(runs[1], 1u);
  EXPECT_EQ(steps[0], 2u);
  EXPECT_EQ(steps[1], 2u);
  EXPECT_EQ(std::vector<uint64_t>(counts0, counts0 + A), (std::vector<uint64_t>{1, 0, 1}));
  EXPECT_EQ(std::vector<uint64_t>(counts1, counts1 + 2), (std::vector<uint64_t>{1, 1}));

  // A run in which skip1 takes no step does not count as one of its runs.
  ASSERT_TRUE(succeeds(run(model, script({{0, 0, 0, 0}}), &report)));
  EXPECT_EQ(skips[1].steps, 0);
  EXPECT_EQ(Trace(trace1, trace1 + 6), Trace(6, -1));
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 1, &runs[1], nullptr, nullptr, 0)));
  EXPECT_EQ(runs[1], 1u);
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs[0], nullptr, nullptr, 0)));
  EXPECT_EQ(runs[0], 2u);
  dynrt_model_destroy(model);
}

TEST(SkipModel, StatsSumSuccessfulRuns) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  ASSERT_TRUE(succeeds(run(model, kMixed, nullptr)));   // 3 read, 2 jump, 1 stop
  ASSERT_TRUE(succeeds(run(model, kReadAll, nullptr))); // 6 read
  Decisions bad = kReadAll;
  bad[2 * 3] = 3;
  EXPECT_TRUE(failsWith(run(model, bad, nullptr), DYNRT_INVALID_ARGUMENT,
                        {"action 3"}));
  ASSERT_TRUE(succeeds(run(model, kShort, nullptr))); // 1 jump, 1 stop

  uint64_t runs = 0, steps = 0, counts[A + 1] = {77, 77, 77, 77};
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, &steps, counts, A + 1)));
  EXPECT_EQ(runs, 3u);
  EXPECT_EQ(steps, 14u);
  // Only num_actions entries are written.
  EXPECT_EQ(std::vector<uint64_t>(counts, counts + A + 1),
            (std::vector<uint64_t>{9, 3, 2, 77}));
  counts[0] = counts[1] = 0;
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, nullptr, nullptr, counts, 1)));
  EXPECT_EQ(counts[0], 9u);
  EXPECT_EQ(counts[1], 0u);

  EXPECT_TRUE(failsWith(dynrt_model_skip_stats(model, 1, &runs, &steps, counts, A),
                        DYNRT_OUT_OF_RANGE, {"skip 1", "1 skip(s)"}));
  EXPECT_TRUE(failsWith(dynrt_model_skip_stats(model, -1, &runs, &steps, counts, A),
                        DYNRT_OUT_OF_RANGE, {}));
  EXPECT_TRUE(failsWith(dynrt_model_skip_stats(nullptr, 0, &runs, &steps, counts, A),
                        DYNRT_INVALID_ARGUMENT, {}));
  EXPECT_TRUE(failsWith(dynrt_model_skip_stats(model, 0, &runs, &steps, nullptr, A),
                        DYNRT_INVALID_ARGUMENT, {}));
  dynrt_model_destroy(model);
}

TEST(SkipModel, ConcurrentRunsWithSeparateReports) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  const Trace shortTrace = {0, kJump, 2, 2, kStop, 0};
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      for (int r = 0; r < 50; ++r) {
        bool mixed = (r + i) % 2 == 0;
        Report rep(B);
        int32_t state = -1;
        dynrt::StatusPtr st(run(model, mixed ? kMixed : kShort, &rep.report, &state));
        bool good = !st && rep.skip.steps == (mixed ? 6 : 2) &&
                    rep.rows(rep.skip.steps) == (mixed ? kMixedTrace : shortTrace) &&
                    state == (mixed ? 13 : 0);
        if (!good)
          ++failures[i];
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
  uint64_t runs = 0, steps = 0, counts[A];
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, &steps, counts, A)));
  EXPECT_EQ(runs, 200u);
  EXPECT_EQ(steps, 100u * 6 + 100u * 2);
  EXPECT_EQ(std::vector<uint64_t>(counts, counts + A),
            (std::vector<uint64_t>{300, 300, 200}));
  dynrt_model_destroy(model);
}

TEST(SkipModel, CreateChecksTheDescriptor) {
  dynrt_model_t *model = nullptr;
  {
    SkipModel m;
    m.kernels[0].num_config = 3;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "3 entries, expected 4"}));
  }
  {
    SkipModel m;
    m.kernels[0].config = nullptr;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "config"}));
  }
  {
    SkipModel m;
    m.config0[DYNRT_SKIP_CFG_BUDGET] = 2.5;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "budget", "2.5"}));
  }
  {
    SkipModel m;
    m.config0[DYNRT_SKIP_CFG_ACTIONS] = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "actions"}));
  }
  {
    SkipModel m;
    m.config0[DYNRT_SKIP_CFG_SKIP] = -1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "skip"}));
  }
  {
    SkipModel m;
    m.config0[DYNRT_SKIP_CFG_SKIP] = 1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "skip 1", "1 skip(s)"}));
  }
  {
    SkipModel m;
    m.desc.num_skips = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip 0", "0 skip(s)"}));
  }
  {
    SkipModel m;
    m.desc.skips = nullptr;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip table"}));
  }
  {
    SkipModel m;
    m.desc.num_skips = -1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip table"}));
  }
  {
    SkipModel m;
    m.skips[0].budget = 0;
    m.config0[DYNRT_SKIP_CFG_BUDGET] = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip 0 ('skip0')", "budget 0"}));
  }
  {
    SkipModel m;
    m.config0[DYNRT_SKIP_CFG_BUDGET] = 7;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "budget 7", "'skip0'", "declares 6"}));
  }
  {
    SkipModel m;
    m.skips[0].sequence_length = 9;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "sequence length 8", "declares 6, 9 and 3"}));
  }
  {
    SkipModel m;
    m.skips[0].num_actions = 4;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "3 actions", "and 4"}));
  }
  {
    SkipModel m;
    m.args0[0] = spec("step", DYNRT_I32, {4});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "'step'", "[3] I32", "[4] I32"}));
  }
  {
    SkipModel m;
    m.args0[0] = spec("step", DYNRT_I64, {3});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "[3] I64"}));
  }
  {
    SkipModel m;
    m.args0[0] = spec("step", DYNRT_I32, {1, 3});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "[1, 3] I32"}));
  }
  {
    SkipModel m;
    m.args0.push_back(spec("extra", DYNRT_I32, {3}));
    m.kernels[0].args = m.args0.data();
    m.kernels[0].num_args = 2;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "1 argument", "got 2"}));
  }
  {
    SkipModel m;
    m.kernels[0].num_args = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "got 0"}));
  }
  EXPECT_EQ(model, nullptr);
  // Two ops, each kernel matched to its own entry.
  {
    SkipModel m(/*replay=*/true);
    ASSERT_TRUE(succeeds(m.create(&model)));
    dynrt_model_destroy(model);
    model = nullptr;
    m.config1[DYNRT_SKIP_CFG_SKIP] = 0; // skip1's numbers against skip0
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip1_step", "'skip0'"}));
  }
  EXPECT_EQ(model, nullptr);
}

} // namespace
