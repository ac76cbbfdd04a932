//===- ModelHandleTest.cpp - handles used after destroy or release --------===//
//
// A model or weights handle passed back after dynrt_model_destroy or its
// last dynrt_weights_release is undefined behaviour (dynrt.h), detected best
// effort: the entry points refuse it with INVALID_ARGUMENT and a second
// destroy or release is ignored instead of aborting in free(). The memory
// is freed, so these tests read freed memory on purpose: under
// AddressSanitizer they are skipped (it reports exactly that read).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include <HalideRuntime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define DYNRT_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DYNRT_TEST_ASAN 1
#endif
#endif

#ifdef DYNRT_TEST_ASAN
#define SKIP_UNDER_ASAN()                                                      \
  GTEST_SKIP() << "reads freed memory on purpose (undefined behaviour "        \
                  "detected best effort)"
#else
#define SKIP_UNDER_ASAN()                                                      \
  do {                                                                         \
  } while (0)
#endif

namespace {

using dynrt::test::failsWith;
using dynrt::test::safetensors;
using dynrt::test::spec;
using dynrt::test::succeeds;

// out[0] = 2 * in[0]; no kernels.
int32_t doubleEntry(void *const *inputs, void *const *outputs, void *const *,
                    void *const *, uint8_t *, void *) {
  *static_cast<float *>(outputs[0]) = 2 * *static_cast<const float *>(inputs[0]);
  return 0;
}

struct TinyModel {
  TinyModel() {
    desc.abi_version = DYNRT_MODEL_ABI_VERSION;
    desc.name = "tiny";
    desc.num_inputs = 1;
    desc.inputs = &input;
    desc.num_outputs = 1;
    desc.outputs = &output;
    desc.entry = doubleEntry;
    desc.exit_layer_output = -1;
  }
  dynrt_param_spec_t input = spec("x", DYNRT_F32, {1});
  dynrt_param_spec_t output = spec("y", DYNRT_F32, {1});
  dynrt_model_desc_t desc{};
};

dynrt_status_t runOnce(dynrt_model_t *model, float x, float *y) {
  const void *inputs[] = {&x};
  void *outputs[] = {y};
  return dynrt_model_run(model, inputs, outputs);
}

TEST(ModelHandle, DestroyNullIsANoOp) {
  dynrt_model_destroy(nullptr);
  EXPECT_TRUE(failsWith(runOnce(nullptr, 1, nullptr), DYNRT_INVALID_ARGUMENT,
                        {"model is NULL"}));
}

TEST(ModelHandle, RunAfterDestroyIsAnError) {
  SKIP_UNDER_ASAN();
  TinyModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(dynrt_model_create(&m.desc, nullptr, nullptr, &model)));
  float y = 0;
  ASSERT_TRUE(succeeds(runOnce(model, 3, &y)));
  EXPECT_EQ(y, 6.0f);
  dynrt_model_destroy(model);
  EXPECT_TRUE(failsWith(runOnce(model, 3, &y), DYNRT_INVALID_ARGUMENT,
                        {"not a live model", "dynrt_model_destroy"}));
  dynrt_model_stats_t stats;
  EXPECT_TRUE(failsWith(dynrt_model_stats(model, &stats),
                        DYNRT_INVALID_ARGUMENT, {"not a live model"}));
  float value = 0;
  EXPECT_TRUE(failsWith(dynrt_model_set_param(model, "t", &value, 1),
                        DYNRT_INVALID_ARGUMENT, {"not a live model"}));
  EXPECT_EQ(dynrt_model_desc(model), nullptr);
}

TEST(ModelHandle, DoubleDestroyDoesNotAbort) {
  SKIP_UNDER_ASAN();
  TinyModel m;
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(dynrt_model_create(&m.desc, nullptr, nullptr, &model)));
  dynrt_model_destroy(model);
  dynrt_model_destroy(model); // ignored, not a double free
}

TEST(ModelHandle, DestroyReleasesTheWeightsOnce) {
  // The model holds its own reference: destroying it twice must not drop
  // the caller's.
  SKIP_UNDER_ASAN();
  TinyModel m;
  dynrt_param_spec_t weight = spec("w", DYNRT_F32, {1});
  m.desc.num_weights = 1;
  m.desc.weights = &weight;
  std::string bytes = safetensors(
      R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
      std::string(4, '\0'));
  dynrt_weights_t *weights = nullptr;
  ASSERT_TRUE(succeeds(
      dynrt_weights_open_memory(bytes.data(), bytes.size(), &weights)));
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(succeeds(dynrt_model_create(&m.desc, nullptr, weights, &model)));
  dynrt_model_destroy(model);
  dynrt_model_destroy(model);
  EXPECT_EQ(dynrt_weights_count(weights), 1u);
  dynrt_weights_release(weights);
}

TEST(WeightsHandle, UseAfterTheLastReleaseIsAnError) {
  SKIP_UNDER_ASAN();
  std::string bytes = safetensors(
      R"({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}})", "a");
  dynrt_weights_t *weights = nullptr;
  ASSERT_TRUE(succeeds(
      dynrt_weights_open_memory(bytes.data(), bytes.size(), &weights)));
  dynrt_weights_release(weights);
  dynrt_tensor_info_t info;
  EXPECT_TRUE(failsWith(dynrt_weights_find(weights, "w", &info),
                        DYNRT_INVALID_ARGUMENT,
                        {"not live weights", "dynrt_weights_release"}));
  EXPECT_EQ(dynrt_weights_count(weights), 0u);
  dynrt_weights_retain(weights);  // ignored
  dynrt_weights_release(weights); // ignored, not a double free
}

} // namespace

namespace {

// The bytes the entry of keptAs' model copies from its weight.
size_t keptBytes = 0;

int32_t copyWeightEntry(void *const *, void *const *outputs,
                        void *const *weights, void *const *, uint8_t *, void *) {
  std::memcpy(outputs[0], weights[0], keptBytes);
  return 0;
}

// A model's one F32 weight `values` of `shape`, marked `storage` in
// weight_storage, as the model keeps it: the first `bytes` bytes its entry
// sees (out). An empty `out` and a failure where creating or running fails.
void keptAs(uint8_t storage, const std::vector<int64_t> &shape,
            const std::vector<float> &values, size_t bytes,
            std::vector<unsigned char> &out) {
  out.clear();
  TinyModel m;
  dynrt_param_spec_t weight{};
  weight.name = "w";
  weight.dtype = DYNRT_F32;
  weight.rank = static_cast<int32_t>(shape.size());
  std::string dims;
  for (size_t d = 0; d < shape.size(); ++d) {
    weight.shape[d] = shape[d];
    dims += (d ? ", " : "") + std::to_string(shape[d]);
  }
  dynrt_param_spec_t output =
      spec("y", DYNRT_U8, {static_cast<int64_t>(bytes)});
  m.desc.num_weights = 1;
  m.desc.weights = &weight;
  m.desc.weight_storage = &storage;
  m.desc.outputs = &output;
  m.desc.entry = copyWeightEntry;
  keptBytes = bytes;
  const size_t size = values.size() * sizeof(float);
  std::string file = safetensors(
      R"({"w": {"dtype": "F32", "shape": [)" + dims +
          R"(], "data_offsets": [0, )" + std::to_string(size) + "]}}",
      std::string(reinterpret_cast<const char *>(values.data()), size));
  dynrt_weights_t *weights = nullptr;
  ASSERT_TRUE(
      succeeds(dynrt_weights_open_memory(file.data(), file.size(), &weights)));
  dynrt_model_t *model = nullptr;
  dynrt_status_t created = dynrt_model_create(&m.desc, nullptr, weights, &model);
  dynrt_weights_release(weights); // the model holds its own reference
  ASSERT_TRUE(succeeds(created));
  std::vector<unsigned char> y(bytes, 0xee);
  float x = 0;
  const void *inputs[] = {&x};
  void *outputs[] = {y.data()};
  dynrt_status_t ran = dynrt_model_run(model, inputs, outputs);
  dynrt_model_destroy(model);
  ASSERT_TRUE(succeeds(ran));
  out = std::move(y);
}

// The `i`-th value of type T in `bytes`.
template <typename T> T at(const std::vector<unsigned char> &bytes, size_t i) {
  T v;
  std::memcpy(&v, bytes.data() + i * sizeof v, sizeof v);
  return v;
}

float fromBits(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

float widened(uint16_t bf16) { return fromBits(uint32_t(bf16) << 16); }

// A descriptor with one F32 weight of `shape` marked `storage`: creating it
// fails with "bad storage" and `what` (no weights needed: the descriptor is
// checked first).
void refusesStorage(uint8_t storage, std::initializer_list<int64_t> shape,
                    const char *what) {
  TinyModel m;
  dynrt_param_spec_t weight = spec("w", DYNRT_F32, shape);
  m.desc.num_weights = 1;
  m.desc.weights = &weight;
  m.desc.weight_storage = &storage;
  dynrt_model_t *model = nullptr;
  EXPECT_TRUE(failsWith(dynrt_model_create(&m.desc, nullptr, nullptr, &model),
                        DYNRT_INVALID_ARGUMENT, {"bad storage", what}));
}

TEST(ModelHandle, KeepsBf16WeightsRoundedToNearestEven) {
  // A weight marked DYNRT_BF16 in weight_storage (dyncc --precision=bf16)
  // reaches the entry as bfloat16, rounded to nearest even from the file's
  // F32, NaN kept a NaN.
  const std::vector<float> values{
      1.0f,
      fromBits(0x3f808000u), // 1 + 2^-8: a tie, to even (1.0)
      fromBits(0x3f818000u), // 1 + 3 * 2^-8: a tie, to even (up)
      fromBits(0x3f808001u), // just above the tie: up
      -2.5f,
      std::nanf("")};
  const float expected[6] = {1.0f, 1.0f, fromBits(0x3f820000u),
                             fromBits(0x3f810000u), -2.5f, std::nanf("")};
  std::vector<unsigned char> kept;
  keptAs(DYNRT_BF16, {6}, values, 6 * sizeof(uint16_t), kept);
  ASSERT_FALSE(kept.empty());
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(widened(at<uint16_t>(kept, i)), expected[i]) << "element " << i;
  EXPECT_TRUE(std::isnan(widened(at<uint16_t>(kept, 5))));
  // Only an F32 weight can be kept as BF16.
  refusesStorage(DYNRT_F64, {6}, "F32");
}

TEST(ModelHandle, KeepsPanelWeightsInPanelsOf64Rows) {
  // A weight marked DYNRT_STORAGE_PANELS (dyncc --pack-weights) reaches the
  // entry with element (n, k) of its [N, K] at ((n / 64) * K + k) * 64 +
  // n % 64; a weight whose N or K is no multiple of 64 is refused.
  const int N = 128, K = 64;
  std::vector<float> values(N * K);
  for (int i = 0; i < N * K; ++i)
    values[i] = (float)i;
  std::vector<unsigned char> kept;
  keptAs(DYNRT_STORAGE_PANELS, {N, K}, values, N * K * sizeof(float), kept);
  ASSERT_FALSE(kept.empty());
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k)
      ASSERT_EQ(at<float>(kept, ((n / 64) * K + k) * 64 + n % 64),
                values[n * K + k])
          << "n " << n << " k " << k;

  // The same values as [2, 32, 128] matrices [K, N] in panels of columns
  // (MoE experts' [E, in, out]): per matrix, (k, n) at ((n / 64) * K + k) *
  // 64 + n % 64.
  keptAs(DYNRT_STORAGE_PANELS_COLS, {2, 32, 128}, values,
         N * K * sizeof(float), kept);
  ASSERT_FALSE(kept.empty());
  for (int e = 0; e < 2; ++e)
    for (int k = 0; k < 32; ++k)
      for (int n = 0; n < 128; ++n)
        ASSERT_EQ(at<float>(kept, e * 4096 + ((n / 64) * 32 + k) * 64 + n % 64),
                  values[e * 4096 + k * 128 + n])
            << "e " << e << " k " << k << " n " << n;

  // [96, 64]: 96 rows are no whole number of panels; as columns, 96 is not
  // either.
  refusesStorage(DYNRT_STORAGE_PANELS, {96, 64}, "panels");
  refusesStorage(DYNRT_STORAGE_PANELS_COLS, {64, 96}, "panels");
}

TEST(ModelHandle, KeepsBf16PairsInPanelsOf64Rows) {
  // A weight marked DYNRT_STORAGE_BF16_PANELS (dyncc --precision=bf16 with
  // --pack-weights) reaches the entry as bfloat16, each matrix [N, K] with
  // element (n, k) at ((n / 64) * (K / 2) + k / 2) * 128 + (n % 64) * 2 +
  // k % 2; N must be a multiple of 64 and K of 128.
  const int E = 2, N = 64, K = 128;
  std::vector<float> values(E * N * K);
  for (int i = 0; i < E * N * K; ++i)
    values[i] = (float)(i % 251) - 125.0f; // exact in bfloat16
  std::vector<unsigned char> kept;
  keptAs(DYNRT_STORAGE_BF16_PANELS, {E, N, K}, values,
         E * N * K * sizeof(uint16_t), kept);
  ASSERT_FALSE(kept.empty());
  for (int e = 0; e < E; ++e)
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k)
        ASSERT_EQ(widened(at<uint16_t>(
                      kept, e * N * K + ((n / 64) * (K / 2) + k / 2) * 128 +
                                (n % 64) * 2 + k % 2)),
                  values[(e * N + n) * K + k])
            << "e " << e << " n " << n << " k " << k;
  // K = 64 is no whole number of pairs' panels (128), N = 96 no whole number
  // of panels.
  refusesStorage(DYNRT_STORAGE_BF16_PANELS, {64, 64}, "bf16 pairs");
  refusesStorage(DYNRT_STORAGE_BF16_PANELS, {96, 128}, "bf16 pairs");
}

// A model of one kernel, y = 3 * x, that claims 40 FLOPs a call: what
// dynrt_model_kernel_profile reports (DYNRT_PROFILE=1 at create).
int tripleKernel(void **args) {
  // Halide's argv convention: one halide_buffer_t per argument.
  auto *in = static_cast<halide_buffer_t *>(args[0]);
  auto *out = static_cast<halide_buffer_t *>(args[1]);
  *reinterpret_cast<float *>(out->host) =
      3 * *reinterpret_cast<const float *>(in->host);
  return 0;
}

int32_t tripleEntry(void *const *inputs, void *const *outputs, void *const *,
                    void *const *, uint8_t *, void *ctx) {
  void *buffers[] = {const_cast<void *>(inputs[0]), outputs[0]};
  return dynrt_invoke_kernel(ctx, 0, buffers);
}

struct ProfiledModel : TinyModel {
  ProfiledModel() {
    desc.entry = tripleEntry;
    desc.num_kernels = 1;
    desc.kernels = &kernel;
    kernel.fn = tripleKernel;
    kernel.name = "tiny_triple";
    kernel.num_args = 2;
    kernel.args = args;
    kernel.flops = 40;
  }
  dynrt_param_spec_t args[2] = {spec("x", DYNRT_F32, {1}),
                                spec("y", DYNRT_F32, {1})};
  dynrt_kernel_desc_t kernel{};
};

dynrt_model_t *createWithProfile(const dynrt_model_desc_t &desc, bool on) {
  if (on)
    setenv("DYNRT_PROFILE", "1", 1);
  else
    unsetenv("DYNRT_PROFILE");
  dynrt_model_t *model = nullptr;
  dynrt_status_t st = dynrt_model_create(&desc, nullptr, nullptr, &model);
  unsetenv("DYNRT_PROFILE");
  EXPECT_TRUE(succeeds(st));
  return model;
}

TEST(ModelProfile, CountsEveryKernelCallAndItsFlops) {
  ProfiledModel m;
  dynrt_model_t *model = createWithProfile(m.desc, true);
  ASSERT_NE(model, nullptr);
  dynrt_kernel_profile_t p;
  ASSERT_TRUE(succeeds(dynrt_model_kernel_profile(model, 0, &p)));
  EXPECT_EQ(p.calls, 0u);
  EXPECT_EQ(p.seconds, 0.0);
  float y = 0;
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(succeeds(runOnce(model, 2, &y)));
  EXPECT_EQ(y, 6.0f);
  std::memset(&p, 0xff, sizeof p);
  ASSERT_TRUE(succeeds(dynrt_model_kernel_profile(model, 0, &p)));
  EXPECT_STREQ(p.name, "tiny_triple");
  EXPECT_EQ(p.builtin, 0);
  EXPECT_EQ(p.calls, 3u);
  EXPECT_GE(p.seconds, 0.0);
  EXPECT_LT(p.seconds, 10.0);
  EXPECT_EQ(p.flops, 40.0);
  // Another kernel index, or nowhere to write: errors, nothing written.
  EXPECT_TRUE(failsWith(dynrt_model_kernel_profile(model, 1, &p),
                        DYNRT_OUT_OF_RANGE, {"kernel 1", "'tiny'", "1 kernels"}));
  EXPECT_TRUE(failsWith(dynrt_model_kernel_profile(model, -1, &p),
                        DYNRT_OUT_OF_RANGE, {"kernel -1"}));
  EXPECT_TRUE(failsWith(dynrt_model_kernel_profile(model, 0, nullptr),
                        DYNRT_INVALID_ARGUMENT, {"out_profile"}));
  EXPECT_TRUE(failsWith(dynrt_model_kernel_profile(nullptr, 0, &p),
                        DYNRT_INVALID_ARGUMENT, {"model is NULL"}));
  EXPECT_EQ(p.calls, 3u);
  dynrt_model_destroy(model);
}

TEST(ModelProfile, RefusesWithoutProfilingAndIgnoresBadFlops) {
  ProfiledModel m;
  dynrt_model_t *model = createWithProfile(m.desc, false);
  ASSERT_NE(model, nullptr);
  dynrt_kernel_profile_t p{};
  EXPECT_TRUE(failsWith(dynrt_model_kernel_profile(model, 0, &p),
                        DYNRT_FAILED_PRECONDITION, {"DYNRT_PROFILE=1"}));
  dynrt_model_destroy(model);
  // A count no compiler writes (negative, NaN) reads as none.
  for (double bad : {-1.0, std::nan("")}) {
    m.kernel.flops = bad;
    model = createWithProfile(m.desc, true);
    ASSERT_NE(model, nullptr);
    ASSERT_TRUE(succeeds(dynrt_model_kernel_profile(model, 0, &p)));
    EXPECT_EQ(p.flops, 0.0);
    dynrt_model_destroy(model);
  }
}

} // namespace
