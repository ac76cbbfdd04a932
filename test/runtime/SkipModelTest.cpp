//===- SkipModelTest.cpp - dyn.skip steps through the model C API ---------===//
//
// Hand-built model descriptors whose host code (a C++ entry function) runs a
// skimming loop the way -dyn-lower-skip compiles it (docs/skim.md), calling
// the DYNRT_BUILTIN_SKIP_STEP builtin through dynrt_invoke_kernel once per
// step: the trace and step counts of dynrt_model_run_ex's report,
// dynrt_model_skip_stats, run errors and the descriptor checks of
// dynrt_model_create. Then the same loop in a bucketed model whose host
// code runs the request's samples one after another (dyncc compile
// --batch-buckets on a model with dyn.skip), calling the batch builtin's
// "sample begins" (DYNRT_BUILTIN_BATCH_COMPACT mode 2) before each: per-sample
// budgets, sample_steps, the concatenated trace and per-sample statistics.
// The Halide runtime stubs live in HalideStubs.cpp.
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
  EXPECT_LE(rows.size(), static_cast<size_t>(kScriptRows));
  Script s(4 * kScriptRows, -1);
  if (rows.size() > static_cast<size_t>(kScriptRows))
    return s;
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
    // A budget of 2^63 - 1 (dyn.skip's i64 "unbounded"), truncated to -1 in
    // the int32 skip table: the real value is named, not the truncated one.
    SkipModel m;
    m.config0[DYNRT_SKIP_CFG_BUDGET] = 9223372036854775807.0;
    m.skips[0].budget = -1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "skip budget 9223372036854775808",
                           "larger than the 2147483647 steps"}));
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

//===----------------------------------------------------------------------===//
// Samples one after another: a bucketed model with skip0 (max_batch kSamples,
// one bucket, no stages) whose host code calls "sample begins" (kernel 1)
// and then runs skip0's loop for each of the request's samples.
//===----------------------------------------------------------------------===//

constexpr int32_t kSamples = 4;
const int32_t kOneBucket[] = {kSamples};
// The arena: the step buffer, then the sample index.
constexpr size_t kStepAt = 0, kSampleAt = 64;

std::vector<double> sampleBeginsConfig(int32_t maxBatch = kSamples) {
  std::vector<double> c(DYNRT_COMPACT_CFG_COUNT, 0.0);
  c[DYNRT_COMPACT_CFG_MODE] = 2;
  c[DYNRT_COMPACT_CFG_MAX_BATCH] = maxBatch;
  return c;
}

// The generated host code: for i in [0, n): sample begins (i), then skip0's
// loop on decisions[i] ([kSamples, S, 2] i32), writing state[i]
// ([kSamples, 1] i32).
int32_t perSampleEntry(void *const *inputs, void *const *outputs,
                       void *const *, void *const *params, uint8_t *arena,
                       void *ctx) {
  const int32_t n = *static_cast<const int32_t *>(params[0]);
  const auto *decisions = static_cast<const int32_t *>(inputs[0]);
  auto *states = static_cast<int32_t *>(outputs[0]);
  auto *sample = reinterpret_cast<int32_t *>(arena + kSampleAt);
  void *beginArgs[] = {sample};
  for (int32_t i = 0; i < n; ++i) {
    *sample = i;
    if (int32_t r = dynrt_invoke_kernel(ctx, 1, beginArgs))
      return r;
    // skip0's loop, as loopEntry, on this sample's rows.
    void *in[] = {const_cast<int32_t *>(decisions) + static_cast<size_t>(i) * S * 2};
    void *out[] = {states + i};
    if (int32_t r = loopEntry(in, out, nullptr, nullptr, arena + kStepAt, ctx))
      return r;
  }
  return 0;
}

// Replays sample 0's script ([kScriptRows, 4] i32 rows (kernel, a, b, c),
// ending at the first row with kernel < 0): kernel 0 steps skip0 at (pos,
// action, amount) = (a, b, c), kernel 1 begins sample a.
int32_t perSampleReplayEntry(void *const *inputs, void *const *outputs,
                             void *const *, void *const *, uint8_t *arena,
                             void *ctx) {
  const auto *script = static_cast<const int32_t *>(inputs[0]);
  auto *buf = reinterpret_cast<int32_t *>(arena + kStepAt);
  void *buffers[] = {buf};
  for (int32_t i = 0; i < kScriptRows && script[4 * i] >= 0; ++i) {
    std::copy(script + 4 * i + 1, script + 4 * i + 4, buf);
    if (int32_t r = dynrt_invoke_kernel(ctx, script[4 * i], buffers))
      return r;
  }
  std::fill_n(static_cast<int32_t *>(outputs[0]), kSamples, 0);
  return 0;
}

struct PerSampleModel {
  explicit PerSampleModel(bool replay = false) {
    stepConfig = skipConfig(0, B, S, A);
    beginConfig = sampleBeginsConfig();
    inputs = {replay ? spec("script", DYNRT_I32, {kSamples, kScriptRows, 4})
                     : spec("decisions", DYNRT_I32, {kSamples, S, 2})};
    outputs = {spec("state", DYNRT_I32, {kSamples, 1})};
    stepArgs = {spec("step", DYNRT_I32, {3})};
    beginArgs = {spec("sample", DYNRT_I32, {1})};
    kernels[0] = {};
    kernels[0].name = "skip0_step";
    kernels[0].num_args = 1;
    kernels[0].args = stepArgs.data();
    kernels[0].builtin = DYNRT_BUILTIN_SKIP_STEP;
    kernels[0].num_config = DYNRT_SKIP_CFG_COUNT;
    kernels[0].config = stepConfig.data();
    kernels[1] = {};
    kernels[1].name = "sample_begins";
    kernels[1].num_args = 1;
    kernels[1].args = beginArgs.data();
    kernels[1].builtin = DYNRT_BUILTIN_BATCH_COMPACT;
    kernels[1].num_config = DYNRT_COMPACT_CFG_COUNT;
    kernels[1].config = beginConfig.data();
    skip = {"skip0", S, B, A};
    desc = {};
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "per_sample_model";
    desc.num_inputs = 1;
    desc.inputs = inputs.data();
    desc.num_outputs = 1;
    desc.outputs = outputs.data();
    desc.num_kernels = 2;
    desc.kernels = kernels;
    desc.arena_bytes = 128;
    desc.entry = replay ? perSampleReplayEntry : perSampleEntry;
    desc.exit_layer_output = -1;
    desc.num_skips = 1;
    desc.skips = &skip;
    desc.max_batch = kSamples;
    desc.num_buckets = 1;
    desc.buckets = kOneBucket;
    desc.num_stages = 0;
  }

  dynrt_status_t create(dynrt_model_t **model) {
    return dynrt_model_create(&desc, nullptr, nullptr, model);
  }

  std::vector<double> stepConfig, beginConfig;
  std::vector<dynrt_param_spec_t> inputs, outputs, stepArgs, beginArgs;
  dynrt_kernel_desc_t kernels[2];
  dynrt_skip_desc_t skip;
  dynrt_model_desc_t desc;
};

// A report for skip0 with a trace of `capacity` rows and sample_steps, all
// filled with 77 beforehand (one guard entry after each).
struct SampleReport {
  explicit SampleReport(int32_t capacity = kSamples * B)
      : trace(3 * (capacity + 1), 77), perSample(kSamples + 1, 77) {
    skip.capacity = capacity;
    skip.trace = trace.data();
    skip.sample_steps = perSample.data();
    report.num_skips = 1;
    report.skips = &skip;
  }
  Trace rows(int32_t from, int32_t n) const {
    return Trace(trace.begin() + 3 * from, trace.begin() + 3 * (from + n));
  }
  std::vector<int32_t> sampleSteps() const {
    return {perSample.begin(), perSample.begin() + kSamples};
  }

  Trace trace;
  std::vector<int32_t> perSample;
  dynrt_skip_report_t skip{};
  dynrt_run_report_t report{};
};

// Runs the samples' decisions (1 .. kSamples of them) as one batch.
dynrt_status_t runSamples(dynrt_model_t *model,
                          const std::vector<Decisions> &samples,
                          dynrt_run_report_t *report,
                          std::vector<int32_t> *states = nullptr) {
  Decisions x;
  for (const Decisions &d : samples)
    x.insert(x.end(), d.begin(), d.end());
  std::vector<int32_t> out(samples.size(), -1);
  const void *inputs[] = {x.data()};
  void *outputs[] = {out.data()};
  dynrt_status_t st = dynrt_model_run_batch(
      model, static_cast<int64_t>(samples.size()), inputs, outputs, report);
  if (states)
    *states = out;
  return st;
}

// Runs sample 0's script through the replay model, as a batch of `batch`.
dynrt_status_t runScript(dynrt_model_t *model, const Script &rows,
                         dynrt_run_report_t *report,
                         int64_t batch = kSamples) {
  std::vector<int32_t> x(static_cast<size_t>(kSamples) * kScriptRows * 4, -1);
  std::copy(rows.begin(), rows.end(), x.begin());
  std::vector<int32_t> out(kSamples, -1);
  const void *inputs[] = {x.data()};
  void *outputs[] = {out.data()};
  return dynrt_model_run_batch(model, batch, inputs, outputs, report);
}

const Trace kReadAllTrace = {0, 0, 0, 1, 0, 0, 2, 0, 0,
                             3, 0, 0, 4, 0, 0, 5, 0, 0};
const Trace kShortTrace = {0, kJump, 2, 2, kStop, 0};

TEST(SkipPerSample, EverySampleHasTheWholeBudget) {
  PerSampleModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  // Four samples of `budget` steps each: 24 steps in the run, 6 per sample.
  SampleReport rep;
  std::vector<int32_t> states;
  ASSERT_TRUE(succeeds(runSamples(model, {kReadAll, kReadAll, kReadAll, kReadAll},
                                  &rep.report, &states)));
  EXPECT_EQ(states, std::vector<int32_t>(kSamples, 21));
  EXPECT_EQ(rep.skip.steps, kSamples * B);
  EXPECT_EQ(rep.sampleSteps(), std::vector<int32_t>(kSamples, B));
  EXPECT_EQ(rep.perSample[kSamples], 77); // beyond max_batch: untouched
  for (int32_t i = 0; i < kSamples; ++i)
    EXPECT_EQ(rep.rows(i * B, B), kReadAllTrace) << "sample " << i;
  EXPECT_EQ(rep.rows(kSamples * B, 1), Trace(3, 77)); // the guard row

  // Each sample as alone: its results and steps, its trace rows after the
  // previous sample's. The fourth sample does not run: 0 steps.
  ASSERT_TRUE(succeeds(runSamples(model, {kMixed, kShort, kReadAll},
                                  &rep.report, &states)));
  EXPECT_EQ(states, (std::vector<int32_t>{13, 0, 21}));
  EXPECT_EQ(rep.skip.steps, 6 + 2 + 6);
  EXPECT_EQ(rep.sampleSteps(), (std::vector<int32_t>{6, 2, 6, 0}));
  EXPECT_EQ(rep.rows(0, 6), kMixedTrace);
  EXPECT_EQ(rep.rows(6, 2), kShortTrace);
  EXPECT_EQ(rep.rows(8, 6), kReadAllTrace);
  EXPECT_EQ(rep.rows(14, kSamples * B - 14), Trace(3 * (kSamples * B - 14), -1));

  // A trace shorter than the run's steps: rows beyond it are counted, and
  // sample_steps still has every sample.
  SampleReport small(/*capacity=*/7);
  ASSERT_TRUE(succeeds(runSamples(model, {kShort, kMixed}, &small.report)));
  EXPECT_EQ(small.skip.steps, 8);
  EXPECT_EQ(small.sampleSteps(), (std::vector<int32_t>{2, 6, 0, 0}));
  EXPECT_EQ(small.rows(0, 2), kShortTrace);
  EXPECT_EQ(small.rows(2, 5), Trace(kMixedTrace.begin(), kMixedTrace.begin() + 15));
  EXPECT_EQ(small.rows(7, 1), Trace(3, 77));

  // sample_steps and trace are optional; a zero-initialized report entry
  // counts the steps only.
  dynrt_skip_report_t countOnly{};
  dynrt_run_report_t report{0, nullptr, 1, &countOnly};
  ASSERT_TRUE(succeeds(runSamples(model, {kShort, kShort}, &report)));
  EXPECT_EQ(countOnly.steps, 4);
  ASSERT_TRUE(succeeds(runSamples(model, {kShort}, nullptr)));

  // dynrt_model_run: a full batch.
  Decisions x;
  for (int32_t i = 0; i < kSamples; ++i)
    x.insert(x.end(), kShort.begin(), kShort.end());
  int32_t out[kSamples];
  const void *inputs[] = {x.data()};
  void *outputs[] = {out};
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, outputs, &rep.report)));
  EXPECT_EQ(rep.skip.steps, 2 * kSamples);
  EXPECT_EQ(rep.sampleSteps(), std::vector<int32_t>(kSamples, 2));
  dynrt_model_destroy(model);
}

TEST(SkipPerSample, StatsCountEverySampleAsARun) {
  PerSampleModel m;
  dynrt_model_t *batched = nullptr;
  ASSERT_TRUE(succeeds(m.create(&batched)));
  SkipModel single;
  dynrt_model_t *alone = nullptr;
  ASSERT_TRUE(succeeds(single.create(&alone)));
  const std::vector<Decisions> samples = {kMixed, kShort, kReadAll, kMixed};
  ASSERT_TRUE(succeeds(runSamples(batched, samples, nullptr)));
  ASSERT_TRUE(succeeds(runSamples(batched, {kShort, kReadAll}, nullptr)));
  for (const Decisions &d : samples)
    ASSERT_TRUE(succeeds(run(alone, d, nullptr)));
  for (const Decisions &d : {kShort, kReadAll})
    ASSERT_TRUE(succeeds(run(alone, d, nullptr)));
  // A failed batch adds nothing.
  Decisions bad = kReadAll;
  bad[2 * 2] = 7;
  EXPECT_TRUE(failsWith(runSamples(batched, {kShort, bad}, nullptr),
                        DYNRT_INVALID_ARGUMENT, {"action 7"}));

  uint64_t runs[2], steps[2], counts[2][A];
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(batched, 0, &runs[0], &steps[0],
                                              counts[0], A)));
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(alone, 0, &runs[1], &steps[1],
                                              counts[1], A)));
  EXPECT_EQ(runs[0], 6u);
  EXPECT_EQ(steps[0], 6u + 2 + 6 + 6 + 2 + 6);
  EXPECT_EQ(runs[0], runs[1]);
  EXPECT_EQ(steps[0], steps[1]);
  EXPECT_EQ(std::vector<uint64_t>(counts[0], counts[0] + A),
            std::vector<uint64_t>(counts[1], counts[1] + A));
  EXPECT_EQ(std::vector<uint64_t>(counts[0], counts[0] + A),
            (std::vector<uint64_t>{3 + 6 + 3 + 6, 2 + 1 + 2 + 1, 1 + 1 + 1 + 1}));

  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(batched, &stats)));
  EXPECT_EQ(stats.runs, 3u); // model runs, not samples
  dynrt_model_destroy(batched);
  dynrt_model_destroy(alone);
}

TEST(SkipPerSample, BudgetPerSample) {
  PerSampleModel m(/*replay=*/true);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  SampleReport rep;
  auto step = [](int32_t pos) { return std::array<int32_t, 4>{0, pos, kRead, 0}; };
  auto begin = [](int32_t i) { return std::array<int32_t, 4>{1, i, 0, 0}; };
  // Sample 0 takes the budget, sample 1 three steps (more than the budget
  // in the run), sample 3 one; sample 2 takes none: it does not count as a
  // run.
  ASSERT_TRUE(succeeds(runScript(
      model,
      script({begin(0), step(0), step(1), step(2), step(3), step(4), step(5),
              begin(1), step(0), step(1), step(2), begin(2), begin(3),
              step(7)}),
      &rep.report)));
  EXPECT_EQ(rep.skip.steps, 10);
  EXPECT_EQ(rep.sampleSteps(), (std::vector<int32_t>{6, 3, 0, 1}));
  EXPECT_EQ(rep.rows(0, 6), kReadAllTrace);
  EXPECT_EQ(rep.rows(6, 3), Trace(kReadAllTrace.begin(), kReadAllTrace.begin() + 9));
  EXPECT_EQ(rep.rows(9, 1), (Trace{7, kRead, 0}));
  uint64_t runs = 0, steps = 0;
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, &steps, nullptr, 0)));
  EXPECT_EQ(runs, 3u);
  EXPECT_EQ(steps, 10u);

  // A seventh step of sample 1: the budget's safety net, the sample's step
  // in the message (the existing one, then the sample and the trace row).
  EXPECT_TRUE(failsWith(
      runScript(model,
                script({begin(0), step(0), step(1), begin(1), step(0), step(1),
                        step(2), step(3), step(4), step(5), step(6)}),
                &rep.report),
      DYNRT_INTERNAL,
      {"kernel 'skip0_step' failed",
       "dyn.skip 'skip0': step 6 (position 6) exceeds the budget of 6 "
       "step(s) (sample 1, trace row 8)"}));
  EXPECT_EQ(rep.skip.steps, 8);
  EXPECT_EQ(rep.sampleSteps(), (std::vector<int32_t>{2, 6, 0, 0}));
  // An out-of-range action and position name the sample's step too.
  EXPECT_TRUE(failsWith(
      runScript(model, script({begin(0), step(0), begin(2), step(0), {0, 1, 5, 0}}),
                &rep.report),
      DYNRT_INVALID_ARGUMENT,
      {"dyn.skip 'skip0': step 1 (position 1) chose action 5, outside [0, 3) "
       "(sample 2, trace row 2)"}));
  EXPECT_EQ(rep.skip.steps, 3); // the trace ends with the bad step
  EXPECT_EQ(rep.rows(2, 1), (Trace{1, 5, 0}));
  EXPECT_EQ(rep.sampleSteps(), (std::vector<int32_t>{1, 0, 2, 0}));
  EXPECT_TRUE(failsWith(runScript(model, script({begin(1), step(8)}), &rep.report),
                        DYNRT_INTERNAL,
                        {"dyn.skip 'skip0': step 0 is at position 8, outside "
                         "[0, 8) (sample 1, trace row 0)"}));

  // Without "sample begins" a bucketed run keeps the run-wide budget.
  EXPECT_TRUE(failsWith(
      runScript(model,
                script({step(0), step(1), step(2), step(3), step(4), step(5),
                        step(6)}),
                &rep.report),
      DYNRT_INTERNAL,
      {"dyn.skip 'skip0': step 6 (position 6) exceeds the budget of 6 step(s)"}));
  EXPECT_EQ(rep.sampleSteps(), std::vector<int32_t>(kSamples, 0));
  ASSERT_TRUE(succeeds(runScript(model, script({step(0), step(1)}), &rep.report)));
  EXPECT_EQ(rep.skip.steps, 2);
  EXPECT_EQ(rep.sampleSteps(), std::vector<int32_t>(kSamples, 0));
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, &steps, nullptr, 0)));
  EXPECT_EQ(runs, 4u); // one more: the run-wide loop
  EXPECT_EQ(steps, 12u);
  dynrt_model_destroy(model);
}

TEST(SkipPerSample, SamplesBeginInOrderWithinTheRequest) {
  PerSampleModel m(/*replay=*/true);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  auto begin = [](int32_t i) { return std::array<int32_t, 4>{1, i, 0, 0}; };
  EXPECT_TRUE(failsWith(runScript(model, script({begin(2)}), nullptr, /*batch=*/2),
                        DYNRT_INTERNAL,
                        {"kernel 'sample_begins' failed",
                         "sample 2 begins, outside the request's samples "
                         "[0, 2)"}));
  EXPECT_TRUE(failsWith(runScript(model, script({begin(-1)}), nullptr),
                        DYNRT_INTERNAL, {"sample -1 begins, outside"}));
  EXPECT_TRUE(failsWith(runScript(model, script({begin(1), begin(1)}), nullptr),
                        DYNRT_INTERNAL,
                        {"sample 1 begins after sample 1; samples run in "
                         "ascending order"}));
  EXPECT_TRUE(failsWith(runScript(model, script({begin(2), begin(0)}), nullptr),
                        DYNRT_INTERNAL, {"sample 0 begins after sample 2"}));
  ASSERT_TRUE(succeeds(runScript(model, script({begin(1)}), nullptr, 2)));
  // Each run starts before its first sample.
  ASSERT_TRUE(succeeds(runScript(model, script({begin(0)}), nullptr)));
  dynrt_model_destroy(model);
}

TEST(SkipPerSample, ConcurrentRuns) {
  PerSampleModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 25; ++r) {
        bool mixedFirst = (r + t) % 2 == 0;
        SampleReport rep;
        std::vector<int32_t> states;
        dynrt::StatusPtr st(runSamples(
            model, {mixedFirst ? kMixed : kShort, mixedFirst ? kShort : kMixed},
            &rep.report, &states));
        Trace expected = mixedFirst ? kMixedTrace : kShortTrace;
        const Trace &second = mixedFirst ? kShortTrace : kMixedTrace;
        expected.insert(expected.end(), second.begin(), second.end());
        bool good = !st && rep.skip.steps == 8 &&
                    rep.sampleSteps() ==
                        (mixedFirst ? std::vector<int32_t>{6, 2, 0, 0}
                                    : std::vector<int32_t>{2, 6, 0, 0}) &&
                    rep.rows(0, 8) == expected &&
                    states == (mixedFirst ? std::vector<int32_t>{13, 0}
                                          : std::vector<int32_t>{0, 13});
        if (!good)
          ++failures[t];
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
  uint64_t runs = 0, steps = 0;
  ASSERT_TRUE(succeeds(dynrt_model_skip_stats(model, 0, &runs, &steps, nullptr, 0)));
  EXPECT_EQ(runs, 200u);
  EXPECT_EQ(steps, 100u * 8);
  dynrt_model_destroy(model);
}

TEST(SkipPerSample, ModelsThatAreNotBucketedIgnoreSampleSteps) {
  SkipModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  Report rep(B);
  std::vector<int32_t> perSample(kSamples, 77);
  rep.skip.sample_steps = perSample.data();
  ASSERT_TRUE(succeeds(run(model, kMixed, &rep.report)));
  EXPECT_EQ(rep.skip.steps, 6);
  EXPECT_EQ(perSample, std::vector<int32_t>(kSamples, 77));
  dynrt_model_destroy(model);
}

TEST(SkipPerSample, CreateChecksSampleBegins) {
  dynrt_model_t *model = nullptr;
  {
    PerSampleModel m;
    m.beginConfig[DYNRT_COMPACT_CFG_STAGE] = 1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"model 'per_sample_model': kernel 'sample_begins'",
                           "entry 1 (stage) = 1 must be 0 in mode 2"}));
  }
  {
    PerSampleModel m;
    m.beginConfig[DYNRT_COMPACT_CFG_POLICY] = 2;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "(policy) = 2 must be 0"}));
  }
  {
    PerSampleModel m;
    m.beginConfig[DYNRT_COMPACT_CFG_GATHER_COST] = 1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "(gather cost) = 1 must be 0"}));
  }
  {
    PerSampleModel m;
    m.beginConfig[DYNRT_COMPACT_CFG_REMAINING] = 3;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "(remaining cost) = 3 must be 0"}));
  }
  {
    PerSampleModel m;
    m.beginConfig[DYNRT_COMPACT_CFG_MODE] = 3;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "(mode) = 3"}));
  }
  {
    PerSampleModel m;
    m.kernels[1].num_config = 2;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "2 entries, expected 6"}));
  }
  {
    PerSampleModel m;
    m.beginConfig[DYNRT_COMPACT_CFG_MAX_BATCH] = 8;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'",
                           "max batch 8, but the model's max_batch is 4"}));
  }
  {
    PerSampleModel m;
    m.beginArgs[0] = spec("sample", DYNRT_I32, {2});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'",
                           "the sample argument 'sample' must be [1] I32, got "
                           "[2] I32"}));
  }
  {
    PerSampleModel m;
    m.beginArgs[0] = spec("sample", DYNRT_BOOL, {1});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "got [1] BOOL"}));
  }
  {
    PerSampleModel m;
    m.beginArgs.push_back(spec("extra", DYNRT_I32, {1}));
    m.kernels[1].args = m.beginArgs.data();
    m.kernels[1].num_args = 2;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'",
                           "sample begins takes 1 argument (sample [1] I32), "
                           "got 2"}));
  }
  {
    // Sample begins in a model that is not bucketed.
    PerSampleModel m;
    m.desc.max_batch = 0;
    m.inputs[0] = spec("decisions", DYNRT_I32, {S, 2});
    m.outputs[0] = spec("state", DYNRT_I32, {1});
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"kernel 'sample_begins'", "not bucketed"}));
  }
  EXPECT_EQ(model, nullptr);
  {
    // The skip step's checks are those of any model.
    PerSampleModel m;
    m.stepConfig[DYNRT_SKIP_CFG_BUDGET] = 7;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"skip0_step", "budget 7", "declares 6"}));
  }
  EXPECT_EQ(model, nullptr);
}

} // namespace
