// fuzz_capi.cpp - libFuzzer target: drives the model C API on a tiny
// hand-built model (no compiler needed; the Halide runtime functions come
// from test/runtime/HalideStubs.cpp). The model has one weight, a runtime
// parameter and two dyn.skip ops whose steps its host code replays from the
// input, as SkipModelTest does. Input bytes:
//   [0]        flags: 1 report with a trace, 2 set the parameter, 4 run_batch
//   [1]        trace capacity (mod 40)
//   [2, 258)   the script: 16 rows of (kernel, pos, action, amount) int32,
//              ending at the first row with kernel < 0
//   [258, ...) a safetensors image for the weights (a valid one if it does
//              not open)
// Every call must return a status or succeed, never crash.
#include "runtime/dynrt.h"
#include "test/runtime/Spec.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int32_t kRows = 16;

using dynrt::test::spec;

// Replays the script through dynrt_invoke_kernel, then y = w * t.
int32_t entry(void *const *inputs, void *const *outputs, void *const *weights,
              void *const *params, uint8_t *arena, void *ctx) {
  const auto *script = static_cast<const int32_t *>(inputs[0]);
  auto *step = reinterpret_cast<int32_t *>(arena);
  void *buffers[] = {step};
  for (int32_t i = 0; i < kRows && script[4 * i] >= 0; ++i) {
    std::copy(script + 4 * i + 1, script + 4 * i + 4, step);
    if (int32_t r = dynrt_invoke_kernel(ctx, script[4 * i] % 3, buffers))
      return r;
  }
  const auto *w = static_cast<const float *>(weights[0]);
  const auto *t = static_cast<const float *>(params[0]);
  auto *y = static_cast<float *>(outputs[0]);
  y[0] = w[0] * t[0];
  y[1] = w[1] * t[1];
  return 0;
}

struct Model {
  Model() {
    for (int k = 0; k < 2; ++k) {
      kernels[k] = {};
      kernels[k].name = k ? "skip1_step" : "skip0_step";
      kernels[k].num_args = 1;
      kernels[k].args = &step;
      kernels[k].builtin = DYNRT_BUILTIN_SKIP_STEP;
      kernels[k].num_config = DYNRT_SKIP_CFG_COUNT;
      kernels[k].config = config[k];
    }
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "fuzz";
    desc.num_inputs = 1;
    desc.inputs = &script;
    desc.num_outputs = 1;
    desc.outputs = &y;
    desc.num_weights = 1;
    desc.weights = &w;
    desc.num_kernels = 2;
    desc.kernels = kernels;
    desc.arena_bytes = 64;
    desc.entry = entry;
    desc.num_params = 1;
    desc.params = &param;
    desc.exit_layer_output = -1;
    desc.num_skips = 2;
    desc.skips = skips;
  }
  dynrt_param_spec_t script = spec("script", DYNRT_I32, {kRows, 4});
  dynrt_param_spec_t y = spec("y", DYNRT_F32, {2});
  dynrt_param_spec_t w = spec("w", DYNRT_F32, {2});
  dynrt_param_spec_t step = spec("step", DYNRT_I32, {3});
  float defaults[2] = {1, 1};
  dynrt_runtime_param_t param{"t", 2, defaults};
  double config[2][DYNRT_SKIP_CFG_COUNT] = {{0, 6, 8, 3}, {1, 2, 4, 2}};
  dynrt_skip_desc_t skips[2] = {{"skip0", 8, 6, 3}, {"skip1", 4, 2, 2}};
  dynrt_kernel_desc_t kernels[2];
  dynrt_model_desc_t desc{};
};

std::string validWeights() {
  std::string header =
      R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})";
  std::string out;
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((header.size() >> (8 * i)) & 0xff);
  float w[2] = {2, 3};
  return out + header + std::string(reinterpret_cast<const char *>(w), 8);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  constexpr size_t kScriptBytes = kRows * 4 * sizeof(int32_t);
  if (size < 2)
    return 0;
  const uint8_t flags = data[0];
  const int32_t capacity = data[1] % 40;
  std::vector<int32_t> script(kRows * 4, -1);
  std::memcpy(script.data(), data + 2, std::min(size - 2, kScriptBytes));
  static const Model model;
  static const std::string fallback = validWeights();

  dynrt_weights_t *weights = nullptr;
  if (size > 2 + kScriptBytes)
    dynrt_status_free(dynrt_weights_open_memory(
        data + 2 + kScriptBytes, size - 2 - kScriptBytes, &weights));
  if (!weights &&
      dynrt_weights_open_memory(fallback.data(), fallback.size(), &weights))
    __builtin_trap();
  dynrt_model_t *handle = nullptr;
  dynrt_status_t status =
      dynrt_model_create(&model.desc, nullptr, weights, &handle);
  dynrt_weights_release(weights); // the model keeps its own reference
  if (status) {
    dynrt_status_free(status);
    return 0;
  }
  if (flags & 2) {
    float values[2] = {static_cast<float>(data[1]), -1};
    dynrt_status_free(dynrt_model_set_param(handle, "t", values, 2));
    dynrt_status_free(dynrt_model_set_param(handle, "u", values, 2));
    dynrt_status_free(dynrt_model_set_param(handle, "t", values, 1));
  }
  std::vector<int32_t> trace(static_cast<size_t>(capacity) * 3);
  dynrt_skip_report_t skips[2] = {};
  skips[0].capacity = capacity;
  skips[0].trace = trace.data();
  dynrt_run_report_t report{};
  report.num_skips = 2;
  report.skips = skips;
  float y[2] = {};
  const void *inputs[] = {script.data()};
  void *outputs[] = {y};
  dynrt_status_free(dynrt_model_run_ex(handle, inputs, outputs,
                                       flags & 1 ? &report : nullptr));
  if (flags & 4)
    dynrt_status_free(
        dynrt_model_run_batch(handle, data[1], inputs, outputs, nullptr));
  uint64_t runs = 0, steps = 0, actions[3] = {};
  dynrt_status_free(
      dynrt_model_skip_stats(handle, flags >> 4, &runs, &steps, actions, 3));
  dynrt_model_stats_t stats;
  dynrt_status_free(dynrt_model_stats(handle, &stats));
  dynrt_model_destroy(handle);
  return 0;
}
