//===- ModelTest.cpp - the C API of a generated library -------------------===//
//
// examples/embed/mlp.mlir compiled by dyncc at build time, linked through
// its generated header: concurrent runs, weights that do not fit the model,
// argument checks and statistics.
//
//===----------------------------------------------------------------------===//

#include "mlp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Status {
  dynrt_status_t s;
  explicit Status(dynrt_status_t s) : s(s) {}
  ~Status() { dynrt_status_free(s); }
  bool ok() const { return s == nullptr; }
  std::string message() const { return dynrt_status_message(s); }
  dynrt_status_code_t code() const { return dynrt_status_code(s); }
};

/// A safetensors file from named float tensors (data 64-byte aligned unless
/// `misalign`).
std::string writeSafetensors(const std::string &path,
                             const std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> &tensors,
                             const std::string &dtype = "F32", bool misalign = false) {
  std::string header = "{", data;
  for (auto &[name, t] : tensors) {
    if (misalign)
      data.append(4, '\0');
    while (!misalign && data.size() % 64)
      data.push_back('\0');
    size_t begin = data.size();
    data.append(reinterpret_cast<const char *>(t.second.data()), t.second.size() * 4);
    if (header.size() > 1)
      header += ",";
    header += "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.first.size(); ++i)
      header += (i ? "," : "") + std::to_string(t.first[i]);
    header += "],\"data_offsets\":[" + std::to_string(begin) + "," +
              std::to_string(data.size()) + "]}";
  }
  header += "}";
  while ((8 + header.size()) % 64)
    header += " ";
  std::ofstream f(path, std::ios::binary);
  uint64_t n = header.size();
  f.write(reinterpret_cast<const char *>(&n), 8);
  f << header << data;
  return path;
}

std::string tempPath(const std::string &name) {
  return ::testing::TempDir() + "/dyncc_model_" + name;
}

std::map<std::string, std::pair<std::vector<int64_t>, std::vector<float>>> goodTensors() {
  std::vector<float> w1(8 * 16), b1(16), w2(16 * 3);
  for (size_t i = 0; i < w1.size(); ++i)
    w1[i] = std::sin(0.3f * i);
  for (size_t i = 0; i < b1.size(); ++i)
    b1[i] = 0.1f * i - 0.5f;
  for (size_t i = 0; i < w2.size(); ++i)
    w2[i] = std::cos(0.7f * i);
  return {{"fc1.weight", {{8, 16}, w1}}, {"fc1.bias", {{16}, b1}}, {"fc2.weight", {{16, 3}, w2}}};
}

std::vector<float> input(int seed) {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i)
    x[i] = std::sin(0.37f * (i + 1) * (seed + 1));
  return x;
}

TEST(ModelApi, ConcurrentRunsAreIdentical) {
  std::string path = writeSafetensors(tempPath("good.safetensors"), goodTensors());
  dynrt_model_options_t options;
  dynrt_model_options_initialize(&options);
  options.num_threads = 2;
  dynrt_model_t *model = nullptr;
  Status created(mlp_create(&options, path.c_str(), &model));
  ASSERT_TRUE(created.ok()) << created.message();

  // Single-threaded results first.
  std::vector<std::vector<float>> want(8, std::vector<float>(12));
  for (int s = 0; s < 8; ++s) {
    std::vector<float> x = input(s);
    ASSERT_TRUE(Status(mlp_run(model, x.data(), want[s].data())).ok());
    for (int r = 0; r < 4; ++r) {
      float sum = want[s][r * 3] + want[s][r * 3 + 1] + want[s][r * 3 + 2];
      EXPECT_NEAR(sum, 1.0f, 1e-5) << "softmax rows sum to 1";
    }
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int it = 0; it < 200; ++it) {
        int s = (t + it) % 8;
        std::vector<float> x = input(s), y(12, NAN);
        Status st(mlp_run(model, x.data(), y.data()));
        if (!st.ok() || std::memcmp(y.data(), want[s].data(), 48) != 0)
          ++mismatches[t];
      }
    });
  for (std::thread &t : threads)
    t.join();
  for (int t = 0; t < 4; ++t)
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;

  dynrt_model_stats_t stats;
  ASSERT_TRUE(Status(dynrt_model_stats(model, &stats)).ok());
  EXPECT_EQ(stats.runs, 8u + 4 * 200);
  EXPECT_EQ(stats.kernel_calls, stats.runs * 3);
  EXPECT_GT(stats.total_seconds, 0.0);
  dynrt_model_destroy(model);
}

TEST(ModelApi, UnalignedBuffersAndWeightsGiveTheSameResults) {
  std::string aligned = writeSafetensors(tempPath("a.safetensors"), goodTensors());
  std::string unaligned = writeSafetensors(tempPath("u.safetensors"), goodTensors(), "F32", true);
  dynrt_model_t *a = nullptr, *u = nullptr;
  ASSERT_TRUE(Status(mlp_create(nullptr, aligned.c_str(), &a)).ok());
  ASSERT_TRUE(Status(mlp_create(nullptr, unaligned.c_str(), &u)).ok());
  std::vector<float> x = input(3), ya(12), buffer(12 + 16 + 1);
  // Input and output at addresses that are not 64-byte aligned.
  std::vector<float> xbuf(32 + 17);
  float *xu = xbuf.data() + 1, *yu = buffer.data() + 1;
  std::memcpy(xu, x.data(), 128);
  ASSERT_TRUE(Status(mlp_run(a, x.data(), ya.data())).ok());
  ASSERT_TRUE(Status(mlp_run(u, xu, yu)).ok());
  EXPECT_EQ(std::memcmp(ya.data(), yu, 48), 0);
  dynrt_model_destroy(a);
  dynrt_model_destroy(u);
}

TEST(ModelApi, WeightsMustMatchTheModel) {
  auto expectError = [](const std::string &file, const std::string &needle) {
    dynrt_model_t *model = nullptr;
    Status st(mlp_create(nullptr, file.c_str(), &model));
    ASSERT_FALSE(st.ok()) << file;
    EXPECT_EQ(model, nullptr);
    EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  };
  auto t = goodTensors();
  t.erase("fc1.bias");
  expectError(writeSafetensors(tempPath("missing.safetensors"), t), "fc1.bias");

  t = goodTensors();
  t["fc2.weight"].first = {3, 16};
  expectError(writeSafetensors(tempPath("shape.safetensors"), t), "fc2.weight");

  t = goodTensors();
  expectError(writeSafetensors(tempPath("dtype.safetensors"), t, "I32"),
              "but the model expects F32");

  {
    std::ofstream f(tempPath("truncated.safetensors"), std::ios::binary);
    f << "\x10\x00\x00";
  }
  expectError(tempPath("truncated.safetensors"), "truncated.safetensors");
  expectError(tempPath("does-not-exist.safetensors"), "does-not-exist");
}

TEST(ModelApi, ArgumentsAreChecked) {
  std::string path = writeSafetensors(tempPath("args.safetensors"), goodTensors());
  dynrt_model_t *model = nullptr;
  ASSERT_TRUE(Status(mlp_create(nullptr, path.c_str(), &model)).ok());
  std::vector<float> x = input(0), y(12);
  Status noInput(mlp_run(model, nullptr, y.data()));
  EXPECT_EQ(noInput.code(), DYNRT_INVALID_ARGUMENT);
  EXPECT_NE(noInput.message().find("input 0 ('x') is NULL"), std::string::npos) << noInput.message();
  Status noOutput(mlp_run(model, x.data(), nullptr));
  EXPECT_EQ(noOutput.code(), DYNRT_INVALID_ARGUMENT);
  Status noModel(mlp_run(nullptr, x.data(), y.data()));
  EXPECT_EQ(noModel.code(), DYNRT_INVALID_ARGUMENT);

  dynrt_model_options_t bad;
  dynrt_model_options_initialize(&bad);
  bad.num_threads = -3;
  dynrt_model_t *other = nullptr;
  Status badThreads(mlp_create(&bad, path.c_str(), &other));
  EXPECT_EQ(badThreads.code(), DYNRT_INVALID_ARGUMENT);
  EXPECT_EQ(other, nullptr);

  // A descriptor from another runtime version is refused.
  dynrt_model_desc_t future = mlp_desc;
  future.abi_version = DYNRT_MODEL_ABI_VERSION + 1;
  Status abi(dynrt_model_create_from_file(&future, nullptr, path.c_str(), &other));
  EXPECT_EQ(abi.code(), DYNRT_FAILED_PRECONDITION);
  dynrt_model_destroy(model);
}

TEST(ModelApi, DescriptorDescribesTheModel) {
  EXPECT_STREQ(mlp_desc.name, "mlp");
  ASSERT_EQ(mlp_desc.num_inputs, 1);
  EXPECT_STREQ(mlp_desc.inputs[0].name, "x");
  EXPECT_EQ(mlp_desc.inputs[0].rank, 2);
  EXPECT_EQ(mlp_desc.inputs[0].shape[1], 8);
  ASSERT_EQ(mlp_desc.num_weights, 3);
  EXPECT_STREQ(mlp_desc.weights[0].name, "fc1.weight");
  EXPECT_EQ(mlp_desc.num_kernels, 3);
  EXPECT_EQ(mlp_desc.arena_bytes, 320u) << "4x16 and 4x3 floats, 64-byte slots";
}

} // namespace
