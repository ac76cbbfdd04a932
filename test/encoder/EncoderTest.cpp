//===- EncoderTest.cpp - the W2-shaped encoder against PyTorch ------------===//
//
// examples/encoder/export_encoder.py exports a 2-layer post-LN encoder
// (torch_eager.Encoder: d=256, 4 heads, d_ff=1024, seq 128, 2 classes) with
// dyncc.export, its weights and the eager module's logits on random inputs;
// dyncc compiled it at build time. The library is used through its
// generated header.
//
//===----------------------------------------------------------------------===//

#include "encoder.h"
#include "runtime/Npy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

std::vector<float> loadFloats(const std::string &path) {
  dynrt::NpyArray a;
  dynrt_status_t st = dynrt::readNpy(path, a);
  EXPECT_EQ(st, nullptr) << dynrt_status_message(st);
  dynrt_status_free(st);
  std::vector<float> out(a.bytes.size() / 4);
  std::memcpy(out.data(), a.bytes.data(), a.bytes.size());
  return out;
}

std::string file(const std::string &name) { return std::string(ENCODER_DIR) + "/" + name; }

class Encoder : public ::testing::Test {
protected:
  void SetUp() override {
    dynrt_model_options_t options;
    dynrt_model_options_initialize(&options);
    options.num_threads = 2;
    dynrt_status_t st = encoder_create(&options, file("encoder.safetensors").c_str(), &model);
    ASSERT_EQ(st, nullptr) << dynrt_status_message(st);
    for (int i = 0; i < 3; ++i) {
      inputs.push_back(loadFloats(file("encoder.x" + std::to_string(i) + ".npy")));
      expected.push_back(loadFloats(file("encoder.expected" + std::to_string(i) + ".npy")));
    }
  }
  void TearDown() override { dynrt_model_destroy(model); }

  std::vector<float> run(int i) {
    std::vector<float> logits(expected[i].size(), NAN); // poisoned
    dynrt_status_t st = encoder_run(model, inputs[i].data(), logits.data());
    EXPECT_EQ(st, nullptr) << dynrt_status_message(st);
    dynrt_status_free(st);
    return logits;
  }

  dynrt_model_t *model = nullptr;
  std::vector<std::vector<float>> inputs, expected;
};

TEST_F(Encoder, ShapesMatchTheWorkload) {
  ASSERT_EQ(encoder_desc.num_inputs, 1);
  EXPECT_EQ(encoder_desc.inputs[0].shape[0], 128);
  EXPECT_EQ(encoder_desc.inputs[0].shape[1], 256);
  EXPECT_EQ(encoder_desc.outputs[0].shape[1], 2);
  EXPECT_EQ(inputs[0].size(), 128u * 256u);
}

TEST_F(Encoder, MatchesPyTorch) {
  for (int i = 0; i < 3; ++i) {
    std::vector<float> got = run(i);
    for (size_t j = 0; j < got.size(); ++j)
      EXPECT_NEAR(got[j], expected[i][j], 1e-4 * std::max(1.0f, std::abs(expected[i][j])))
          << "case " << i << " logit " << j;
  }
}

TEST_F(Encoder, TwoThreadsAtOnceGiveIdenticalResults) {
  std::vector<std::vector<float>> single;
  for (int i = 0; i < 3; ++i)
    single.push_back(run(i));
  int mismatches[2] = {0, 0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int it = 0; it < 6; ++it) {
        int i = (t + it) % 3;
        std::vector<float> logits(single[i].size(), NAN);
        dynrt_status_t st = encoder_run(model, inputs[i].data(), logits.data());
        if (st || std::memcmp(logits.data(), single[i].data(), logits.size() * 4) != 0)
          ++mismatches[t];
        dynrt_status_free(st);
      }
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(mismatches[0], 0);
  EXPECT_EQ(mismatches[1], 0);
}

} // namespace
