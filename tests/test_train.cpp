// tests/test_train.cpp — the trainer (train/trainer.h) on a micro StereoMamba (depths [1,1,1,1], dims [8,16,32,64],
// max_disp 32) and 64x96 synthetic pairs, CPU:
//   (1) it overfits a fixed batch (loss down >= 90 %);
//   (2) N steps straight == N/2 steps + checkpoint + resume + N/2 steps, bit for bit (losses, gradient norms,
//       parameters), with drop_path on (process RNG), random crops and 2 loader workers;
//   (3) the lr / beta1 the trainer feeds AdamW follow OneCycle (hand-computed), and each update is AdamW's formula
//       with exactly those values;
//   (4) a batch with a NaN is skipped with a message and leaves parameters, BatchNorm statistics and the optimizer
//       untouched;
//   (5) run(): CSV logs, validation PNGs, checkpoint rotation, final weights, resume from the run folder.
// GPU: a few fp32 steps match the CPU loosely; bf16 and fp16 (loss scaling) steps run and stay finite.
#include <fmt/format.h>
#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/rng.h"
#include "models/infer.h"
#include "test_util.h"
#include "train/trainer.h"

using namespace stereort;
using namespace stereort::test;
namespace fs = std::filesystem;

namespace {

StereoMambaConfig micro(double drop_path = 0.0) {
  StereoMambaConfig c = stereomamba_preset("stereomamba-tiny");
  c.name = "stereomamba-micro";
  c.depths = {1, 1, 1, 1};
  c.dims = {8, 16, 32, 64};
  c.cross_d_model = 16;
  c.cross_d_state = 8;
  c.head_channels = 8;
  c.max_disp = 32;
  c.drop_path_rate = drop_path;
  return c;
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / fmt::format("stereort_{}_{}", name, ::getpid());
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TrainOptions base(const fs::path& out) {
  TrainOptions o;
  o.data = "synthetic:count=2,seed=3,size=64x96,max_disp=24";
  o.batch = 2;
  o.crop_h = 64;
  o.crop_w = 96;
  o.workers = 0;
  o.verbose = false;
  o.out = out.string();
  return o;
}

std::vector<std::pair<std::string, Tensor>> snapshot(Trainer& t) {
  std::vector<std::pair<std::string, Tensor>> s;
  for (auto& kv : t.model().state_dict()) s.push_back({kv.first, kv.second.clone()});
  for (auto& kv : t.optimizer().state_dict()) s.push_back({"opt." + kv.first, kv.second.clone()});
  return s;
}

void expect_same_state(const std::vector<std::pair<std::string, Tensor>>& a,
                       const std::vector<std::pair<std::string, Tensor>>& b, const std::string& what) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i)
    expect_close(b[i].second.cpu().to(DType::F64), a[i].second.cpu().to(DType::F64), 0, 0, what + " " + a[i].first);
}

}  // namespace

TEST_CASE("train (1): a micro StereoMamba overfits a fixed synthetic batch (loss down >= 90 %)") {
  fs::path dir = temp_dir("overfit");
  TrainOptions o = base(dir);
  o.steps = 60;
  o.schedule = "constant";
  o.lr = 2e-3;
  StereoMamba* model = nullptr;
  StereoMambaConfig cfg = micro();
  Trainer t(o, &cfg);
  model = &t.model();
  CHECK(model->cfg.max_disp == 32);
  double first = 0, last = 0;
  int64_t used = 0;
  for (int64_t i = 0; i < o.steps; ++i) {
    StepStats st = t.step();
    REQUIRE(!st.skipped);
    REQUIRE(std::isfinite(st.loss));
    if (i == 0) first = st.loss;
    last = st.loss;
    used = i + 1;
    if (last <= 0.1 * first) break;
  }
  MESSAGE("overfit: loss " << first << " -> " << last << " in " << used << " steps");
  CHECK(first > 5.0);  // an untrained 32-bin soft-argmin is far off disparities in [1, 24]
  CHECK(last <= 0.1 * first);
  fs::remove_all(dir);
}

TEST_CASE("train (2): resume is bit-exact (N straight == N/2 + checkpoint + resume + N/2)") {
  fs::path dir = temp_dir("resume");
  TrainOptions o = base(dir);
  o.data = "synthetic:count=5,seed=4,size=64x96,max_disp=24";
  o.crop_h = 64;
  o.crop_w = 64;  // random crop offsets depend on the loader position
  o.workers = 2;
  o.steps = 6;
  o.lr = 2e-3;
  o.weight_decay = 1e-2;
  o.clip = 50;  // exercise the clip path too
  StereoMambaConfig cfg = micro(0.2);  // drop_path draws from the process RNG
  std::vector<StepStats> straight, first_half, second_half;
  std::vector<std::pair<std::string, Tensor>> end_straight, end_resumed;
  {
    Trainer t(o, &cfg);
    for (int i = 0; i < 6; ++i) straight.push_back(t.step());
    end_straight = snapshot(t);
  }
  std::string ck = (dir / "half.safetensors").string();
  uint64_t offset_at_half = 0;
  {
    Trainer t(o, &cfg);
    for (int i = 0; i < 3; ++i) first_half.push_back(t.step());
    t.save_checkpoint(ck);
    offset_at_half = rng_state().offset;
    CHECK(offset_at_half > 0);  // drop_path really drew
  }
  rng_set_state(RngState{77, 999});  // whatever happened in between must not matter
  {
    TrainOptions r = o;
    r.resume = ck;
    Trainer t(r, &cfg);
    CHECK(t.steps_done() == 3);
    CHECK(t.loader().position() == 3);
    CHECK(rng_state().offset == offset_at_half);
    for (int i = 0; i < 3; ++i) second_half.push_back(t.step());
    end_resumed = snapshot(t);
  }
  for (int i = 0; i < 6; ++i) {
    const StepStats& a = straight[size_t(i)];
    const StepStats& b = i < 3 ? first_half[size_t(i)] : second_half[size_t(i - 3)];
    CAPTURE(i);
    CHECK(a.step == b.step);
    CHECK(a.loss == b.loss);  // exact equality of the floats
    CHECK(a.terms == b.terms);
    CHECK(a.grad_norm == b.grad_norm);
    CHECK(a.lr == b.lr);
    CHECK(a.beta1 == b.beta1);
  }
  CHECK(straight[0].loss != straight[1].loss);
  expect_same_state(end_straight, end_resumed, "end of run");
  fs::remove_all(dir);
}

TEST_CASE("train (3): the lr/beta1 sequence is OneCycle's and AdamW applies exactly those values") {
  fs::path dir = temp_dir("sched");
  TrainOptions o = base(dir);
  o.steps = 8;
  o.lr = 1e-3;
  StereoMambaConfig cfg = micro();
  Trainer t(o, &cfg);
  // OneCycleLR (pct 0.3, div 25, final 1e4, cosine): phase 1 ends at 0.3*8-1 = 1.4, phase 2 at 7.
  auto anneal = [](double a, double b, double pct) { return b + (a - b) / 2 * (std::cos(M_PI * pct) + 1); };
  const double init = 1e-3 / 25, fin = init / 1e4;
  Tensor p = t.model().parameters()[0];  // check one parameter's update by hand
  for (int64_t s = 0; s < 8; ++s) {
    double lr, b1;
    if (double(s) <= 1.4) {
      lr = anneal(init, 1e-3, double(s) / 1.4);
      b1 = anneal(0.95, 0.85, double(s) / 1.4);
    } else {
      lr = anneal(1e-3, fin, (double(s) - 1.4) / 5.6);
      b1 = anneal(0.85, 0.95, (double(s) - 1.4) / 5.6);
    }
    std::vector<double> before = p.to_vector();
    StepStats st = t.step();
    REQUIRE(!st.skipped);
    CAPTURE(s);
    CHECK(st.lr == doctest::Approx(lr).epsilon(1e-12));
    CHECK(st.beta1 == doctest::Approx(b1).epsilon(1e-12));
    const ParamGroup& g = t.optimizer().groups()[0];
    CHECK(g.lr == st.lr);
    CHECK(g.beta1 == st.beta1);
    CHECK(g.beta2 == 0.999);
    CHECK(g.weight_decay == 1e-4);
    // p_t = p_{t-1} (1 - lr wd) - lr / (1 - b1^t) * m_t / (sqrt(v_t) / sqrt(1 - b2^t) + 1e-8)
    auto sd = t.optimizer().state_dict();
    std::vector<double> m = sd[1].second.to_vector(), v = sd[2].second.to_vector(), want(before.size());
    double k = double(s + 1);
    for (size_t i = 0; i < want.size(); ++i)
      want[i] = before[i] * (1 - lr * 1e-4) -
                lr / (1 - std::pow(b1, k)) * m[i] / (std::sqrt(v[i]) / std::sqrt(1 - std::pow(0.999, k)) + 1e-8);
    expect_close(p, Tensor::from_vector(want, p.shape()), 1e-6, 1e-9, "AdamW update");
  }
  CHECK(t.optimizer().steps() == 8);
  fs::remove_all(dir);
}

TEST_CASE("train (4): a batch with a NaN is skipped with a message; parameters and statistics stay unchanged") {
  fs::path dir = temp_dir("nan");
  TrainOptions o = base(dir);
  o.steps = 4;
  StereoMambaConfig cfg = micro();
  Trainer t(o, &cfg);
  StepStats s1 = t.step();
  REQUIRE(!s1.skipped);
  auto before = snapshot(t);
  Batch b = t.loader().next();
  b.left = b.left.clone();
  b.left.data<float>()[5 * 96 + 7] = NAN;  // one pixel of the first left image
  StepStats bad = t.step_on(b);
  CHECK(bad.skipped);
  CHECK((!std::isfinite(bad.loss) || !std::isfinite(bad.grad_norm)));  // ReLUs may hide the NaN from the loss
  CHECK(bad.message == "step 2: non-finite loss/gradient, skipped (loss scale now 1)");
  CHECK(t.steps_done() == 2);
  CHECK(t.optimizer().steps() == 1);
  auto after = snapshot(t);
  // Exact, BatchNorm running statistics included. num_batches_tracked counts training forwards (as PyTorch's, also
  // those of skipped steps); it is bookkeeping only (the momentum is fixed).
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    bool counter = before[i].first.find("num_batches_tracked") != std::string::npos;
    if (counter) CHECK(after[i].second.item() == before[i].second.item() + 1);
    else expect_close(after[i].second.to(DType::F64), before[i].second.to(DType::F64), 0, 0, "after the NaN step " + before[i].first);
  }
  int64_t non_finite = 0;
  for (auto& kv : after)
    for (double v : kv.second.to_vector()) non_finite += !std::isfinite(v);
  CHECK(non_finite == 0);
  for (const Tensor& p : t.model().parameters()) CHECK(!p.grad().defined());
  StepStats s3 = t.step();
  CHECK(!s3.skipped);
  CHECK(std::isfinite(s3.loss));
  CHECK(t.optimizer().steps() == 2);
  CHECK(rel_error(t.model().parameters()[0], before[0].second) > 0);
  fs::remove_all(dir);
}

TEST_CASE("train (5): run() writes logs, validation PNGs, rotated checkpoints and weights; resumes from the folder") {
  fs::path dir = temp_dir("run");
  TrainOptions o = base(dir);
  o.steps = 4;
  o.val = "synthetic:count=2,seed=9,size=40x70,max_disp=20";  // not a multiple of 32: validation pads and crops
  o.val_every = 2;
  o.ckpt_every = 2;
  o.keep = 1;
  o.val_pngs = 1;
  StereoMambaConfig cfg = micro();
  {
    Trainer t(o, &cfg);
    CHECK(t.run() == 0);
  }
  auto lines = [](const fs::path& p) {
    std::ifstream f(p);
    std::vector<std::string> v;
    for (std::string l; std::getline(f, l);) v.push_back(l);
    return v;
  };
  std::vector<std::string> log = lines(dir / "train_log.csv");
  REQUIRE(log.size() == 5);
  CHECK(log[0] == "step,loss,loss0,loss1,loss2,loss3,lr,beta1,grad_norm,loss_scale,pairs_per_s,time_s,skipped");
  CHECK(log[4].rfind("4,", 0) == 0);
  CHECK(lines(dir / "val_log.csv").size() == 3);
  CHECK(fs::exists(dir / "val_2" / "synthetic_seed9_000000_pred.png"));
  CHECK(fs::exists(dir / "val_4" / "synthetic_seed9_000000_gt.png"));
  CHECK(fs::exists(dir / "checkpoints" / "best.safetensors"));
  std::vector<std::string> cks = list_checkpoints((dir / "checkpoints").string());
  REQUIRE(cks.size() == 1);  // keep 1
  CHECK(fs::path(cks[0]).filename() == "step_00000004.safetensors");
  CheckpointInfo info = read_checkpoint_info(cks[0]);
  CHECK(info.step == 4);
  CHECK(info.loader_position == 4);
  CHECK(info.meta.at("train.crop") == "64x96");
  CHECK(info.has_best);
  // The final weights load into the inference path.
  {
    std::string js = (dir / "micro.json").string();
    std::ofstream(js) << R"({"base": "stereomamba-tiny", "depths": [1,1,1,1], "dims": [8,16,32,64], "cross_d_model": 16,
                            "cross_d_state": 8, "head_channels": 8, "max_disp": 32, "drop_path_rate": 0.0})";
    PredictorOptions po;
    po.model = js;
    po.weights = (dir / "model.safetensors").string();
    StereoPredictor p(po);
    CHECK(p.predict(rand_t({3, 32, 64}, DType::F32, 0, 1), rand_t({3, 32, 64}, DType::F32, 0, 1)).shape() == Shape{32, 64});
  }
  // Resume from the run folder with more steps: the CSV continues at step 5.
  o.resume = dir.string();
  o.steps = 6;
  o.val_every = 0;
  {
    Trainer t(o, &cfg);
    CHECK(t.steps_done() == 4);
    CHECK(t.run() == 0);
  }
  log = lines(dir / "train_log.csv");
  REQUIRE(log.size() == 7);
  CHECK(log[5].rfind("5,", 0) == 0);
  fs::remove_all(dir);
}

TEST_CASE("train: option errors name the fix") {
  fs::path dir = temp_dir("opterr");
  StereoMambaConfig cfg = micro();
  TrainOptions o = base(dir);
  o.crop_w = 80;
  expect_error([&] { Trainer t(o, &cfg); }, {"crop 64x80", "multiples of 32"});
  o = base(dir);
  o.precision = "bf16";
  expect_error([&] { Trainer t(o, &cfg); }, {"bf16", "--device cuda"});
  o = base(dir);
  o.data = "";
  expect_error([&] { Trainer t(o, &cfg); }, {"--data"});
  o = base(dir);
  o.augment = "rotate";
  expect_error([&] { Trainer t(o, &cfg); }, {"--augment", "rotate"});
  fs::remove_all(dir);
}

TEST_CASE("train on the GPU: fp32 steps match the CPU loosely; bf16 and fp16 steps run [gpu]") {
  STEREORT_REQUIRE_GPU();
  fs::path dir = temp_dir("gpu");
  TrainOptions o = base(dir);
  o.steps = 3;
  o.lr = 2e-3;
  o.workers = 2;
  StereoMambaConfig cfg = micro();
  std::vector<StepStats> cpu, gpu32;
  {
    Trainer t(o, &cfg);
    for (int i = 0; i < 3; ++i) cpu.push_back(t.step());
  }
  o.device = stereort::test::gpu();
  {
    Trainer t(o, &cfg);
    for (int i = 0; i < 3; ++i) gpu32.push_back(t.step());
  }
  // Step 1 sees identical weights and data (fp32 kernels agree to ~1e-5). Later steps drift: AdamW's first update is
  // lr * sign(g), so a near-zero gradient whose sign differs between summation orders moves its weight by 2 lr.
  CHECK(gpu32[0].loss == doctest::Approx(cpu[0].loss).epsilon(1e-4));
  CHECK(gpu32[0].grad_norm == doctest::Approx(cpu[0].grad_norm).epsilon(1e-3));
  for (int i = 1; i < 3; ++i) CHECK(gpu32[size_t(i)].loss == doctest::Approx(cpu[size_t(i)].loss).epsilon(5e-2));
  for (const char* prec : {"bf16", "fp16"}) {
    o.precision = prec;
    Trainer t(o, &cfg);
    CHECK(t.scaler().enabled() == (std::string(prec) == "fp16"));
    // fp16 starts at the GradScaler scale 65536 and halves it on every overflowing step (the V1 throughput run
    // on the H100 skipped its first 5 fp16 steps): give it enough steps to reach a finite one.
    int ok = 0;
    for (int i = 0; i < 10 && ok < 3; ++i) {
      StepStats st = t.step();
      if (st.skipped) {
        CHECK(st.message.find("loss scale now") != std::string::npos);
        continue;
      }
      ok++;
      CHECK(std::isfinite(st.loss));
      // Half-precision convolutions and linears: the first loss (same weights as the CPU run) within 10 %.
      if (i == 0) CHECK(st.loss == doctest::Approx(cpu[0].loss).epsilon(0.1));  // (bf16 never skips)
    }
    CHECK(ok >= 1);
    int64_t non_finite = 0;
    for (const Tensor& p : t.model().parameters())
      for (double v : p.cpu().to_vector()) non_finite += !std::isfinite(v);
    CHECK(non_finite == 0);
  }
  fs::remove_all(dir);
}
