// tests/test_checkpoint.cpp — train/checkpoint.h: a round trip of every piece of training state (parameters,
// BatchNorm running statistics and num_batches_tracked, AdamW moments and step, loss scaler, RNG, loader position,
// best EPE, metadata) with exact equality; model-only weights loaded by StereoPredictor; rotation and resolution of
// checkpoint folders; errors; option adoption on resume.
#include <fmt/format.h>
#include <unistd.h>
#include <filesystem>
#include <fstream>

#include "core/autograd.h"
#include "io/safetensors.h"
#include "models/infer.h"
#include "models/layers.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace stereort;
using namespace stereort::test;
namespace fs = std::filesystem;

namespace {

struct Small : Module {
  Small() : fc(5, 4), bn(4) {
    register_module("fc", &fc);
    register_module("bn", &bn);
  }
  Tensor forward(const Tensor& x) const { return bn.forward(fc.forward(x).permute({0, 2, 1})); }  // (B,L,5)->(B,4,L)
  Linear fc;
  BatchNorm bn;
};

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("stereort_{}_{}", name, ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

ParamGroup group(const Module& m) {
  ParamGroup g;
  g.params = m.parameters();
  g.lr = 3e-3;
  g.weight_decay = 1e-2;
  return g;
}

// One training step with a fixed input: forward (BN batch statistics update), backward, AdamW.
void train_step(Small& m, Optimizer& opt, const Tensor& x) {
  opt.zero_grad();
  Tensor y = m.forward(x);
  sum(mul(y, y)).backward();
  opt.step();
}

}  // namespace

TEST_CASE("checkpoint round trip restores every piece of training state exactly") {
  fs::path dir = temp_dir("ckpt_rt");
  Small a;
  a.initialize(3);
  Adam oa({group(a)}, 1e-8, true);
  Tensor x = rand_t({3, 7, 5}, DType::F32);
  for (int i = 0; i < 3; ++i) train_step(a, oa, x);
  LossScaler sa(true, 1024.0);
  sa.update(true);  // 512
  for (int i = 0; i < 3; ++i) sa.update(false);
  CheckpointInfo info;
  info.step = 3;
  info.loader_position = 7;
  info.rng = RngState{0xFFFFFFFFFFFFFFF1ULL, 123456789012345ULL};
  info.has_best = true;
  info.best_epe = 0.12345678901234567;
  info.elapsed_s = 12.5;
  info.meta = {{"arch", "stereomamba"}, {"custom", "x, y"}};
  std::string path = (dir / "c.safetensors").string();
  save_checkpoint(path, a, oa, sa, info);

  Small b;
  b.initialize(99);  // different values everywhere until loaded
  Adam ob({group(b)}, 1e-8, true);
  LossScaler sb(true);
  CheckpointInfo got = load_checkpoint(path, b, ob, sb);
  CHECK(got.step == 3);
  CHECK(got.loader_position == 7);
  CHECK(got.rng.seed == 0xFFFFFFFFFFFFFFF1ULL);
  CHECK(got.rng.offset == 123456789012345ULL);
  CHECK(got.has_best);
  CHECK(got.best_epe == info.best_epe);
  CHECK(got.elapsed_s == 12.5);
  CHECK(got.meta.at("custom") == "x, y");
  CHECK(got.meta.at("arch") == "stereomamba");
  CHECK(!got.meta.count("step"));  // reserved keys are fields, not metadata
  auto sd_a = a.state_dict(), sd_b = b.state_dict();
  REQUIRE(sd_a.size() == sd_b.size());
  for (size_t i = 0; i < sd_a.size(); ++i) {
    CHECK(sd_a[i].first == sd_b[i].first);
    expect_close(sd_b[i].second.to(DType::F64), sd_a[i].second.to(DType::F64), 0, 0, sd_a[i].first);
  }
  CHECK(b.bn.num_batches_tracked.item() == 3);
  CHECK(ob.steps() == 3);
  auto st_a = oa.state_dict(), st_b = ob.state_dict();
  REQUIRE(st_a.size() == st_b.size());
  for (size_t i = 0; i < st_a.size(); ++i) expect_close(st_b[i].second.to(DType::F64), st_a[i].second.to(DType::F64), 0, 0, st_a[i].first);
  CHECK(sb.scale() == 512.0);
  CHECK(sb.state_dict()[1].second.item() == 3);
  // Nothing else is hidden: one more identical step from both gives identical parameters and statistics.
  train_step(a, oa, x);
  train_step(b, ob, x);
  sd_a = a.state_dict();
  sd_b = b.state_dict();
  for (size_t i = 0; i < sd_a.size(); ++i)
    expect_close(sd_b[i].second.to(DType::F64), sd_a[i].second.to(DType::F64), 0, 0, "after a step: " + sd_a[i].first);
  // Metadata only.
  CheckpointInfo head = read_checkpoint_info(path);
  CHECK(head.step == 3);
  CHECK(head.rng.offset == 123456789012345ULL);
  fs::remove_all(dir);
}

TEST_CASE("checkpoint errors: model-only weights, another model, damaged metadata") {
  fs::path dir = temp_dir("ckpt_err");
  Small a;
  a.initialize(1);
  Adam oa({group(a)}, 1e-8, true);
  LossScaler s(false);
  std::string w = (dir / "w.safetensors").string();
  save_safetensors(w, a.state_dict(), {{"arch", "stereomamba"}});
  expect_error([&] { read_checkpoint_info(w); }, {"not a stereort training checkpoint", "w.safetensors"});
  std::string c = (dir / "c.safetensors").string();
  save_checkpoint(c, a, oa, s, CheckpointInfo());
  struct Other : Module {
    Other() : fc(5, 3) { register_module("fc", &fc); }
    Linear fc;
  } other;
  Adam oo({group(other)}, 1e-8, true);
  expect_error([&] { load_checkpoint(c, other, oo, s); }, {"does not fit the model", "fc.weight"});
  // A checkpoint whose step metadata is not a number.
  std::vector<std::pair<std::string, Tensor>> t{{"model.fc.weight", a.fc.weight}};
  save_safetensors((dir / "bad.safetensors").string(), t,
                   {{"format", "stereort-checkpoint"}, {"format_version", "1"}, {"step", "12x"}});
  expect_error([&] { read_checkpoint_info((dir / "bad.safetensors").string()); }, {"step", "12x", "not a number"});
  save_safetensors((dir / "v9.safetensors").string(), t, {{"format", "stereort-checkpoint"}, {"format_version", "9"}});
  expect_error([&] { read_checkpoint_info((dir / "v9.safetensors").string()); }, {"format version 9"});
  fs::remove_all(dir);
}

TEST_CASE("model-only weights carry arch/preset/mean/std and load into StereoPredictor (stereort infer --weights)") {
  fs::path dir = temp_dir("ckpt_weights");
  StereoMambaConfig cfg = stereomamba_preset("stereomamba-tiny");
  cfg.mean = {0.5f, 0.25f, 0.125f};
  cfg.std = {0.2f, 0.3f, 0.4f};
  StereoMamba m(cfg);
  m.initialize(5);
  std::string w = (dir / "model.safetensors").string();
  save_model_weights(w, m, cfg);
  SafeTensors st = SafeTensors::open(w);
  CHECK(st.metadata().at("arch") == "stereomamba");
  CHECK(st.metadata().at("preset") == "stereomamba-tiny");
  CHECK(st.metadata().at("mean") == "0.5,0.25,0.125");
  PredictorOptions po;
  po.model = "stereomamba-tiny";
  po.weights = w;
  StereoPredictor p(po);
  CHECK(p.config().mean[1] == 0.25f);
  CHECK(p.config().std[2] == 0.4f);
  auto sa = m.state_dict(), sb = p.model().state_dict();
  REQUIRE(sa.size() == sb.size());
  for (size_t i = 0; i < sa.size(); ++i) expect_close(sb[i].second.to(DType::F64), sa[i].second.to(DType::F64), 0, 0, sa[i].first);
  Tensor d = p.predict(rand_t({3, 40, 70}, DType::F32, 0, 1), rand_t({3, 40, 70}, DType::F32, 0, 1));
  CHECK(d.shape() == Shape{40, 70});
  fs::remove_all(dir);
}

TEST_CASE("checkpoint rotation keeps the newest N; folders resolve to their newest checkpoint") {
  fs::path dir = temp_dir("ckpt_rot");
  fs::path ck = dir / "checkpoints";
  fs::create_directories(ck);
  std::vector<std::pair<std::string, Tensor>> t{{"x", Tensor::ones({2})}};
  for (int64_t s : {10, 20, 30, 40, 50}) save_safetensors(checkpoint_path(ck.string(), s), t);
  std::ofstream((ck / "step_00000060.safetensors.tmp.123").string()) << "partial";
  save_safetensors((ck / "best.safetensors").string(), t);
  CHECK(fs::path(checkpoint_path(ck.string(), 7)).filename() == "step_00000007.safetensors");
  CHECK(list_checkpoints(ck.string()).size() == 5);
  std::vector<std::string> removed = prune_checkpoints(ck.string(), 2);
  CHECK(removed.size() == 3);
  std::vector<std::string> left = list_checkpoints(ck.string());
  REQUIRE(left.size() == 2);
  CHECK(fs::path(left[1]).filename() == "step_00000050.safetensors");
  CHECK(fs::exists(ck / "best.safetensors"));
  CHECK(fs::exists(ck / "step_00000060.safetensors.tmp.123"));
  CHECK(resolve_checkpoint(dir.string()) == left[1]);     // run folder -> checkpoints/
  CHECK(resolve_checkpoint(ck.string()) == left[1]);
  CHECK(resolve_checkpoint(left[0]) == left[0]);
  CHECK(prune_checkpoints(ck.string(), 0).empty());      // 0 = keep everything
  expect_error([&] { resolve_checkpoint((dir / "nope").string()); }, {"does not exist"});
  fs::create_directories(dir / "empty");
  expect_error([&] { resolve_checkpoint((dir / "empty").string()); }, {"no step_*.safetensors"});
  fs::remove_all(dir);
}

TEST_CASE("resume options: flags not given come from the checkpoint; differing explicit flags are reported") {
  TrainOptions written;
  written.data = "synthetic:count=9";
  written.batch = 8;
  written.crop_h = 128;
  written.crop_w = 256;
  written.lr = 1e-3;
  written.seed = 1234567890123ULL;
  written.precision = "bf16";
  std::map<std::string, std::string> meta = train_options_meta(written);
  CHECK(meta.at("train.crop") == "128x256");
  TrainOptions now;
  now.lr = 5e-4;
  std::vector<std::string> diffs = adopt_checkpoint_options(now, meta, {"lr"});
  CHECK(now.batch == 8);
  CHECK(now.crop_h == 128);
  CHECK(now.crop_w == 256);
  CHECK(now.data == "synthetic:count=9");
  CHECK(now.seed == 1234567890123ULL);
  CHECK(now.precision == "bf16");
  CHECK(now.lr == 5e-4);
  REQUIRE(diffs.size() == 1);
  CHECK(diffs[0].find("--lr") != std::string::npos);
  TrainOptions same;
  same.lr = 1e-3;
  CHECK(adopt_checkpoint_options(same, meta, {"lr"}).empty());  // equal explicit values are fine
}
