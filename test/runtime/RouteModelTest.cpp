//===- RouteModelTest.cpp - routes through the model C API ----------------===//
//
// Hand-built model descriptors whose host code (a C++ entry function) calls
// the dyn.route builtin through dynrt_invoke_kernel: dynrt_model_run_ex's
// report, dynrt_model_route_stats, run errors and the descriptor checks of
// dynrt_model_create. No compiled kernel is involved: the Halide runtime
// functions Model.cpp calls are stubbed in HalideStubs.cpp.
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "runtime/dynrt.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace {

using dynrt::test::failsWith;
using dynrt::test::succeeds;

constexpr int32_t T = 4, E = 2;

std::vector<double> switchConfig(int64_t capacity) {
  std::vector<double> c(DYNRT_ROUTE_CFG_COUNT, 0.0);
  c[DYNRT_ROUTE_CFG_ROUTE] = 0;
  c[DYNRT_ROUTE_CFG_STRATEGY] = 1; // switch
  c[DYNRT_ROUTE_CFG_TOKENS] = T;
  c[DYNRT_ROUTE_CFG_EXPERTS] = E;
  c[DYNRT_ROUTE_CFG_PER_TOKEN] = 1;
  c[DYNRT_ROUTE_CFG_K] = 1;
  c[DYNRT_ROUTE_CFG_CAPACITY] = static_cast<double>(capacity);
  c[DYNRT_ROUTE_CFG_GROUPS] = 1;
  c[DYNRT_ROUTE_CFG_TEMPERATURE] = 1;
  c[DYNRT_ROUTE_CFG_SLOTS] = static_cast<double>(capacity ? E * capacity : E * T);
  return c;
}

using dynrt::test::spec;

// Host code: route 0 on input 0 (and, for `twice`, again on input 1).
int32_t entryOnce(void *const *inputs, void *const *outputs, void *const *,
                  void *const *, uint8_t *, void *ctx) {
  void *buffers[] = {inputs[0], outputs[0], outputs[1], outputs[2]};
  return dynrt_invoke_kernel(ctx, 0, buffers);
}

int32_t entryTwice(void *const *inputs, void *const *outputs, void *const *w,
                   void *const *p, uint8_t *arena, void *ctx) {
  if (int32_t r = entryOnce(inputs, outputs, w, p, arena, ctx))
    return r;
  void *buffers[] = {inputs[1], outputs[0], outputs[1], outputs[2]};
  return dynrt_invoke_kernel(ctx, 0, buffers);
}

// A switch route over T = 4 tokens and E = 2 experts as a model: input the
// gate logits (and a second gate for `twice`), outputs the slot tables.
struct RouteModel {
  explicit RouteModel(int64_t capacity, bool twice = false) {
    config = switchConfig(capacity);
    int64_t slots = static_cast<int64_t>(config[DYNRT_ROUTE_CFG_SLOTS]);
    inputs = {spec("gate", DYNRT_F32, {T, E}), spec("gate2", DYNRT_F32, {T, E})};
    outputs = {spec("slot_token", DYNRT_I32, {slots}),
               spec("tok_slot", DYNRT_I32, {T, 1}),
               spec("tok_weight", DYNRT_F32, {T, 1})};
    args = {inputs[0], outputs[0], outputs[1], outputs[2]};
    kernel = {};
    kernel.name = "route0_assign";
    kernel.num_args = static_cast<int32_t>(args.size());
    kernel.args = args.data();
    kernel.builtin = DYNRT_BUILTIN_ROUTE_ASSIGN;
    kernel.num_config = static_cast<int32_t>(config.size());
    kernel.config = config.data();
    route = {"moe0", T, E, 1};
    desc = {};
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "route_model";
    desc.num_inputs = twice ? 2 : 1;
    desc.inputs = inputs.data();
    desc.num_outputs = 3;
    desc.outputs = outputs.data();
    desc.num_kernels = 1;
    desc.kernels = &kernel;
    desc.entry = twice ? entryTwice : entryOnce;
    desc.exit_layer_output = -1;
    desc.num_routes = 1;
    desc.routes = &route;
  }

  dynrt_status_t create(dynrt_model_t **model) {
    return dynrt_model_create(&desc, nullptr, nullptr, model);
  }

  std::vector<double> config;
  std::vector<dynrt_param_spec_t> inputs, outputs, args;
  dynrt_kernel_desc_t kernel;
  dynrt_route_desc_t route;
  dynrt_model_desc_t desc;
};

// Every token prefers expert 0.
const float kCrowded[T * E] = {1, 0, 3, 0, 0.5f, 0, 2, 0};
// Tokens 1 and 2 prefer expert 1.
const float kSplit[T * E] = {1, 0, 0, 3, 0, 2, 2, 0};

struct Outputs {
  int32_t slotToken[2 * T];
  int32_t tokSlot[T];
  float tokWeight[T];
  void *ptrs[3] = {slotToken, tokSlot, tokWeight};
};

struct Report {
  uint64_t tokensPerExpert[E] = {7, 7};
  int32_t assignment[T] = {7, 7, 7, 7};
  dynrt_route_report_t route{};
  dynrt_run_report_t report{};
  Report() {
    route.tokens_per_expert = tokensPerExpert;
    route.assignment = assignment;
    report.num_routes = 1;
    report.routes = &route;
  }
};

TEST(RouteModel, RunExReportsAndStatsAccumulate) {
  RouteModel m(/*capacity=*/1);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  const void *inputs[] = {kCrowded};
  Outputs out;
  Report rep;
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, &rep.report)));
  EXPECT_EQ(rep.route.num_tokens, T);
  EXPECT_EQ(rep.route.num_experts, E);
  EXPECT_EQ(rep.route.experts_per_token, 1);
  EXPECT_EQ(rep.route.dropped, 3u);
  EXPECT_EQ(rep.tokensPerExpert[0], 1u);
  EXPECT_EQ(rep.tokensPerExpert[1], 0u);
  EXPECT_EQ(std::vector<int32_t>(rep.assignment, rep.assignment + T),
            (std::vector<int32_t>{0, -2, -2, -2}));
  EXPECT_EQ(out.tokSlot[0], 0);
  EXPECT_EQ(out.slotToken[0], 0);
  EXPECT_EQ(out.slotToken[1], -1);

  // A second run refills the report; the model sums.
  inputs[0] = kSplit;
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, &rep.report)));
  EXPECT_EQ(rep.route.dropped, 2u);
  EXPECT_EQ(rep.tokensPerExpert[0], 1u);
  EXPECT_EQ(rep.tokensPerExpert[1], 1u);
  EXPECT_EQ(std::vector<int32_t>(rep.assignment, rep.assignment + T),
            (std::vector<int32_t>{0, 1, -3, -2}));
  ASSERT_TRUE(succeeds(dynrt_model_run(model, inputs, out.ptrs)));

  uint64_t tokens[3] = {9, 9, 9}, dropped = 0;
  ASSERT_TRUE(succeeds(dynrt_model_route_stats(model, 0, tokens, 3, &dropped)));
  EXPECT_EQ(tokens[0], 3u);
  EXPECT_EQ(tokens[1], 2u);
  EXPECT_EQ(tokens[2], 9u); // only num_experts entries are written
  EXPECT_EQ(dropped, 7u);
  tokens[1] = 9;
  ASSERT_TRUE(succeeds(dynrt_model_route_stats(model, 0, tokens, 1, nullptr)));
  EXPECT_EQ(tokens[1], 9u);

  EXPECT_TRUE(failsWith(dynrt_model_route_stats(model, 1, tokens, 2, nullptr),
                        DYNRT_OUT_OF_RANGE, {"route 1", "1 route"}));
  EXPECT_TRUE(failsWith(dynrt_model_route_stats(model, -1, tokens, 2, nullptr),
                        DYNRT_OUT_OF_RANGE, {}));
  EXPECT_TRUE(failsWith(dynrt_model_route_stats(nullptr, 0, tokens, 2, nullptr),
                        DYNRT_INVALID_ARGUMENT, {}));
  EXPECT_TRUE(failsWith(dynrt_model_route_stats(model, 0, nullptr, 2, nullptr),
                        DYNRT_INVALID_ARGUMENT, {}));

  dynrt_model_stats_t stats;
  ASSERT_TRUE(succeeds(dynrt_model_stats(model, &stats)));
  EXPECT_EQ(stats.runs, 3u);
  EXPECT_EQ(stats.kernel_calls, 3u);
  dynrt_model_destroy(model);
}

TEST(RouteModel, ReportShapes) {
  RouteModel m(/*capacity=*/0);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  const void *inputs[] = {kCrowded};
  Outputs out;
  // A report without arrays, one with more entries than routes, none at all.
  dynrt_route_report_t routes[2] = {};
  routes[1].num_tokens = 77;
  dynrt_run_report_t report{2, routes};
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, &report)));
  EXPECT_EQ(routes[0].num_tokens, T);
  EXPECT_EQ(routes[0].dropped, 0u);
  EXPECT_EQ(routes[1].num_tokens, 77);
  report.num_routes = 0;
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, &report)));
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, nullptr)));
  report = {1, nullptr};
  EXPECT_TRUE(failsWith(dynrt_model_run_ex(model, inputs, out.ptrs, &report),
                        DYNRT_INVALID_ARGUMENT, {"report"}));
  uint64_t tokens[E];
  ASSERT_TRUE(succeeds(dynrt_model_route_stats(model, 0, tokens, E, nullptr)));
  EXPECT_EQ(tokens[0], 12u); // three runs of four tokens, no capacity
  dynrt_model_destroy(model);
}

TEST(RouteModel, RouteRunTwiceInOneRun) {
  RouteModel m(/*capacity=*/1, /*twice=*/true);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  const void *inputs[] = {kCrowded, kSplit};
  Outputs out;
  Report rep;
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, &rep.report)));
  // Counts of both executions, the assignment of the last.
  EXPECT_EQ(rep.route.dropped, 5u);
  EXPECT_EQ(rep.tokensPerExpert[0], 2u);
  EXPECT_EQ(rep.tokensPerExpert[1], 1u);
  EXPECT_EQ(std::vector<int32_t>(rep.assignment, rep.assignment + T),
            (std::vector<int32_t>{0, 1, -3, -2}));
  uint64_t dropped = 0;
  uint64_t tokens[E];
  ASSERT_TRUE(succeeds(dynrt_model_route_stats(model, 0, tokens, E, &dropped)));
  EXPECT_EQ(dropped, 5u);
  dynrt_model_destroy(model);
}

TEST(RouteModel, ConcurrentRuns) {
  RouteModel m(/*capacity=*/1);
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  std::vector<std::thread> threads;
  std::vector<int> failures(4, 0);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      for (int run = 0; run < 50; ++run) {
        const void *inputs[] = {run % 2 ? kSplit : kCrowded};
        Outputs out;
        Report rep;
        dynrt::StatusPtr st(dynrt_model_run_ex(model, inputs, out.ptrs, &rep.report));
        if (st || rep.route.dropped != (run % 2 ? 2u : 3u))
          ++failures[i];
      }
    });
  for (auto &t : threads)
    t.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
  uint64_t tokens[E], dropped = 0;
  ASSERT_TRUE(succeeds(dynrt_model_route_stats(model, 0, tokens, E, &dropped)));
  EXPECT_EQ(dropped, 100u * 3 + 100u * 2);
  EXPECT_EQ(tokens[0], 200u);
  EXPECT_EQ(tokens[1], 100u);
  dynrt_model_destroy(model);
}

TEST(RouteModel, HashIdOutsideTableFailsTheRun) {
  RouteModel m(/*capacity=*/0);
  std::vector<double> config = m.config;
  config[DYNRT_ROUTE_CFG_STRATEGY] = 6; // hash
  config[DYNRT_ROUTE_CFG_HAS_TABLE] = 1;
  m.kernel.config = config.data();
  m.inputs[0] = spec("ids", DYNRT_I32, {T});
  m.inputs[1] = spec("table", DYNRT_I32, {3});
  m.args = {m.inputs[0], m.inputs[1], m.outputs[0], m.outputs[1], m.outputs[2]};
  m.kernel.args = m.args.data();
  m.kernel.num_args = 5;
  m.desc.num_inputs = 2;
  m.desc.entry = [](void *const *inputs, void *const *outputs, void *const *,
                    void *const *, uint8_t *, void *ctx) -> int32_t {
    void *buffers[] = {inputs[0], inputs[1], outputs[0], outputs[1], outputs[2]};
    return dynrt_invoke_kernel(ctx, 0, buffers);
  };
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(m.create(&model)));
  const int32_t ids[T] = {0, 2, 1, 0}, badIds[T] = {0, 2, 5, 0};
  const int32_t table[3] = {1, 0, 1};
  const void *inputs[] = {ids, table};
  Outputs out;
  Report rep;
  ASSERT_TRUE(succeeds(dynrt_model_run_ex(model, inputs, out.ptrs, &rep.report)));
  EXPECT_EQ(std::vector<int32_t>(rep.assignment, rep.assignment + T),
            (std::vector<int32_t>{1, 1, 0, 1}));
  inputs[0] = badIds;
  EXPECT_TRUE(failsWith(dynrt_model_run_ex(model, inputs, out.ptrs, &rep.report),
                        DYNRT_INVALID_ARGUMENT,
                        {"route0_assign", "token id 5 at position 2"}));
  // A failed run adds nothing to the model's sums.
  uint64_t tokens[E];
  ASSERT_TRUE(succeeds(dynrt_model_route_stats(model, 0, tokens, E, nullptr)));
  EXPECT_EQ(tokens[0] + tokens[1], 4u);
  dynrt_model_destroy(model);
}

TEST(RouteModel, CreateChecksTheDescriptor) {
  dynrt_model_t *model = nullptr;
  {
    RouteModel m(1);
    m.kernel.builtin = 42;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"route0_assign", "builtin 42"}));
  }
  {
    RouteModel m(1);
    m.kernel.num_config = 17;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"route0_assign", "17 entries"}));
  }
  {
    RouteModel m(1);
    m.kernel.config = nullptr;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT, {"config"}));
  }
  {
    RouteModel m(1);
    m.config[DYNRT_ROUTE_CFG_ROUTE] = 1;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"route 1", "1 route(s)"}));
  }
  {
    RouteModel m(1);
    m.desc.num_routes = 0;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT, {"route 0"}));
  }
  {
    RouteModel m(1);
    m.route.num_tokens = 8;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"moe0", "declares 8"}));
  }
  {
    RouteModel m(1);
    m.args[1] = spec("slot_token", DYNRT_I32, {5}); // S = E * C = 2
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"slot_token", "[2]", "[5]"}));
  }
  {
    RouteModel m(1);
    m.config[DYNRT_ROUTE_CFG_SLOTS] = 8; // inconsistent with E * C
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"slots = 8"}));
  }
  {
    RouteModel m(1);
    m.kernel.builtin = DYNRT_BUILTIN_NONE; // an ordinary kernel needs fn
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"no entry point"}));
  }
  {
    RouteModel m(1);
    m.desc.routes = nullptr;
    EXPECT_TRUE(failsWith(m.create(&model), DYNRT_INVALID_ARGUMENT,
                          {"route table"}));
  }
  EXPECT_EQ(model, nullptr);
}

} // namespace
