// tests/test_stereomamba.cpp — the assembled network: parameter counts (V1 = 62,506,448 as the official code counts),
// state-dict keys, presets, input checks, and a CPU forward + backward of stereomamba-tiny.
#include <cmath>

#include "core/autograd.h"
#include "models/stereomamba.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/reduce.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("parameter counts: V1 = 62,506,448 (official), V2 ~ 30.62 M") {
  StereoMamba v1(stereomamba_preset("stereomamba-v1"));
  CHECK(v1.num_parameters() == 62506448);
  StereoMamba v2(stereomamba_preset("stereomamba-v2"));
  MESSAGE("stereomamba-v2 parameters: " << v2.num_parameters());
  CHECK(std::fabs(double(v2.num_parameters()) / 30.62e6 - 1.0) < 0.005);
  // Spot-check key names and shapes against the spec's state-dict table (stereomamba.md §12).
  std::map<std::string, Shape> shapes;
  for (auto& kv : v1.state_dict()) shapes[kv.first] = kv.second.shape();
  CHECK(shapes.at("feature_extractor.patch_embed.0.weight") == Shape{96, 3, 4, 4});
  CHECK(shapes.at("feature_extractor.layers.3.blocks.1.op.x_proj.weight") == Shape{320, 1536});
  CHECK(shapes.at("feature_extractor.layers.2.downsample.1.weight") == Shape{768, 384, 2, 2});
  CHECK(shapes.at("feature_fusion.upsample_level3.0.weight") == Shape{768, 384, 4, 4});
  CHECK(shapes.at("CrossAttn.cross_attn.in_proj.weight") == Shape{656, 128});
  CHECK(shapes.at("CrossAttn.conv_concat.0.weight") == Shape{384, 512, 3, 3});
  CHECK(shapes.at("disparity_head.dres2.conv5.0.weight") == Shape{128, 64, 3, 3, 3});
  CHECK(shapes.at("disparity_head.classif3.2.weight") == Shape{1, 32, 3, 3, 3});
  CHECK(shapes.count("disparity_head.dres0.0.1.num_batches_tracked") == 1);
  CHECK(shapes.count("feature_extractor.layers.3.downsample.1.weight") == 0);
  shapes.clear();
  for (auto& kv : v2.state_dict()) shapes[kv.first] = kv.second.shape();
  CHECK(shapes.at("feature_fusion.upsample_384.0.weight") == Shape{384, 128, 4, 4});
  CHECK(shapes.at("CrossAttn.cross_attn.in_proj.weight") == Shape{1184, 256});
  CHECK(shapes.at("CrossAttn.cross_attn.downsample.weight") == Shape{256, 64, 4, 4});
  CHECK(shapes.at("CrossAttn.conv_concat.2.running_var") == Shape{256});
}

TEST_CASE("presets and input errors") {
  expect_error([] { stereomamba_preset("stereomamba-v9"); }, {"unknown model preset", "stereomamba-v1"});
  StereoMamba m(stereomamba_preset("stereomamba-tiny"));
  m.eval();
  NoGradGuard ng;
  expect_error([&] { m.forward(Tensor::zeros({1, 3, 64, 96}), Tensor::zeros({1, 3, 64, 64})); }, {"differ"});
  expect_error([&] { m.forward(Tensor::zeros({1, 3, 60, 96}), Tensor::zeros({1, 3, 60, 96})); }, {"multiple of 32", "pad"});
}

TEST_CASE("stereomamba-tiny: CPU forward (eval) and forward + backward (train)") {
  StereoMamba m(stereomamba_preset("stereomamba-tiny"));
  m.initialize(7);
  Tensor l = rand_t({2, 3, 64, 96}, DType::F32, -1, 1), r = rand_t({2, 3, 64, 96}, DType::F32, -1, 1);
  {
    m.eval();
    NoGradGuard ng;
    std::vector<Tensor> d = m.forward(l, r);
    REQUIRE(d.size() == 1);
    CHECK(d[0].shape() == Shape{2, 64, 96});
    for (double v : d[0].to_vector()) REQUIRE((std::isfinite(v) && v >= 0 && v <= 191));
  }
  m.train();
  std::vector<Tensor> d = m.forward(l, r);
  REQUIRE(d.size() == 4);
  Tensor loss = mean(d[0]);
  for (size_t i = 1; i < 4; ++i) loss = add(loss, mean(d[i]));
  loss.backward();
  int64_t with_grad = 0, total = 0;
  for (auto& kv : m.named_parameters()) {
    total++;
    Tensor g = kv.second->grad();
    if (!g.defined()) continue;
    with_grad++;
    for (double v : g.to_vector()) REQUIRE(std::isfinite(v));
  }
  // Every parameter takes part in training except the V1 tokeniser's nothing — all of them must get a gradient.
  CHECK(with_grad == total);
}
