// tests/test_optimizer.cpp — SGD/Adam/AdamW replay PyTorch's update formulas by hand for several steps; OneCycle
// matches OneCycleLR's values; gradient clipping; state round trip; GPU fused kernels == CPU.
#include <cmath>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "test_util.h"
#include "train/optimizer.h"
#include "train/schedule.h"

using namespace stereort;
using namespace stereort::test;

namespace {
// A fixed gradient per step: g_t = c * (t + 1) * w_0-independent values.
void set_grad(Tensor& p, const std::vector<double>& g) { p.set_grad(Tensor::from_vector(g, p.shape(), p.dtype())); }
}  // namespace

TEST_CASE("AdamW and Adam match hand-computed PyTorch updates over several steps") {
  for (bool decoupled : {true, false}) {
    std::vector<double> w = {0.5, -1.25, 2.0};
    Tensor p = Tensor::from_vector(w, {3}, DType::F64).set_requires_grad();
    ParamGroup g;
    g.params = {p};
    g.lr = 0.01;
    g.weight_decay = 0.1;
    g.beta1 = 0.9;
    g.beta2 = 0.999;
    Adam opt(std::vector<ParamGroup>{g}, 1e-8, decoupled);
    std::vector<double> m(3, 0), v(3, 0);
    for (int t = 1; t <= 5; ++t) {
      std::vector<double> gr = {0.3 * t, -0.2, 0.05 * t * t};
      set_grad(p, gr);
      opt.step();
      for (int i = 0; i < 3; ++i) {
        double gi = gr[size_t(i)];
        if (decoupled) w[size_t(i)] *= 1 - 0.01 * 0.1;
        else gi += 0.1 * w[size_t(i)];
        m[size_t(i)] = 0.9 * m[size_t(i)] + 0.1 * gi;
        v[size_t(i)] = 0.999 * v[size_t(i)] + 0.001 * gi * gi;
        double b1 = 1 - std::pow(0.9, t), b2 = 1 - std::pow(0.999, t);
        w[size_t(i)] -= 0.01 / b1 * m[size_t(i)] / (std::sqrt(v[size_t(i)]) / std::sqrt(b2) + 1e-8);
      }
      std::vector<double> got = p.to_vector();
      for (int i = 0; i < 3; ++i) CHECK(got[size_t(i)] == doctest::Approx(w[size_t(i)]).epsilon(1e-6));
    }
  }
}

TEST_CASE("SGD with momentum and nesterov matches torch.optim.SGD") {
  for (bool nesterov : {false, true}) {
    std::vector<double> w = {1.0, -2.0};
    Tensor p = Tensor::from_vector(w, {2}, DType::F64).set_requires_grad();
    ParamGroup g;
    g.params = {p};
    g.lr = 0.1;
    g.weight_decay = 0.01;
    SGD opt({g}, 0.9, 0.0, nesterov);
    std::vector<double> b(2, 0);
    for (int t = 0; t < 4; ++t) {
      std::vector<double> gr = {0.5 - t, 0.25 * t};
      set_grad(p, gr);
      opt.step();
      for (int i = 0; i < 2; ++i) {
        double gi = gr[size_t(i)] + 0.01 * w[size_t(i)];
        b[size_t(i)] = t == 0 ? gi : 0.9 * b[size_t(i)] + gi;
        w[size_t(i)] -= 0.1 * (nesterov ? gi + 0.9 * b[size_t(i)] : b[size_t(i)]);
      }
      for (int i = 0; i < 2; ++i) CHECK(p.to_vector()[size_t(i)] == doctest::Approx(w[size_t(i)]).epsilon(1e-6));
    }
  }
}

TEST_CASE("OneCycle matches OneCycleLR (max_lr 2e-4, 100 steps, cosine) and cycles beta1") {
  Schedule s;
  s.max_lr = 2e-4;
  s.total_steps = 100;
  // Values computed with torch.optim.lr_scheduler.OneCycleLR's formulas (phase ends at 29 and 99).
  CHECK(s.lr(0) == doctest::Approx(8e-6).epsilon(1e-12));
  CHECK(s.lr(29) == doctest::Approx(2e-4).epsilon(1e-12));
  CHECK(s.lr(99) == doctest::Approx(8e-10).epsilon(1e-9));
  double pct = 14.0 / 29.0;
  CHECK(s.lr(14) == doctest::Approx(2e-4 + (8e-6 - 2e-4) / 2 * (std::cos(M_PI * pct) + 1)).epsilon(1e-12));
  double pct2 = (64.0 - 29.0) / 70.0;
  CHECK(s.lr(64) == doctest::Approx(8e-10 + (2e-4 - 8e-10) / 2 * (std::cos(M_PI * pct2) + 1)).epsilon(1e-12));
  CHECK(s.momentum(0) == doctest::Approx(0.95));
  CHECK(s.momentum(29) == doctest::Approx(0.85));
  CHECK(s.momentum(99) == doctest::Approx(0.95));
  Schedule lin = Schedule::parse("onecycle-linear");
  lin.max_lr = 1.0;
  lin.total_steps = 10;
  CHECK(lin.lr(1) == doctest::Approx(0.04 + (1.0 - 0.04) * (1.0 / 2.0)));  // phase 1 ends at step 2
  Schedule cw = Schedule::parse("cosine");
  cw.max_lr = 1.0;
  cw.total_steps = 110;
  cw.warmup_steps = 10;
  CHECK(cw.lr(4) == doctest::Approx(0.5));
  CHECK(cw.lr(60) == doctest::Approx(0.5));
  expect_error([] { Schedule::parse("bogus"); }, {"unknown schedule", "bogus"});
}

TEST_CASE("clip_grad_norm scales to the max norm and reports the original") {
  Tensor a = Tensor::zeros({2}, DType::F64).set_requires_grad(), b = Tensor::zeros({1}, DType::F64).set_requires_grad();
  set_grad(a, {3, 0});
  set_grad(b, {4});
  CHECK(clip_grad_norm({a, b}, 1.0) == doctest::Approx(5.0));
  CHECK(grad_norm({a, b}) == doctest::Approx(1.0).epsilon(1e-6));
  set_grad(b, {NAN});
  CHECK(std::isnan(grad_norm({a, b})));
}

TEST_CASE("optimizer state round trip") {
  Tensor p = rand_t({4}).set_requires_grad();
  ParamGroup g;
  g.params = {p};
  Adam a({g}, 1e-8, true);
  set_grad(p, {1, 2, 3, 4});
  a.step();
  std::map<std::string, Tensor> sd;
  for (auto& kv : a.state_dict()) sd[kv.first] = kv.second.clone();
  Adam b({g}, 1e-8, true);
  b.load_state_dict(sd);
  CHECK(b.steps() == 1);
  expect_close(b.state_dict()[1].second, sd["state.0.0.exp_avg"], 0, 0, "exp_avg");
}

TEST_CASE("fused CUDA Adam/SGD == CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  std::vector<Tensor> cpu_p, gpu_p;
  for (Shape s : {Shape{1000}, Shape{33, 17}, Shape{1}, Shape{70000}}) {
    Tensor w = rand_t(s, DType::F32);
    cpu_p.push_back(w.clone().set_requires_grad());
    gpu_p.push_back(w.cuda().set_requires_grad());
  }
  for (int kind = 0; kind < 2; ++kind) {
    ParamGroup gc, gg;
    gc.params = cpu_p;
    gg.params = gpu_p;
    gc.weight_decay = gg.weight_decay = 0.05;
    std::unique_ptr<Optimizer> oc, og;
    if (kind == 0) { oc.reset(new Adam({gc}, 1e-8, true)); og.reset(new Adam({gg}, 1e-8, true)); }
    else { oc.reset(new SGD({gc}, 0.9)); og.reset(new SGD({gg}, 0.9)); }
    for (int t = 0; t < 3; ++t) {
      for (size_t i = 0; i < cpu_p.size(); ++i) {
        Tensor gr = rand_t(cpu_p[i].shape(), DType::F32);
        cpu_p[i].set_grad(gr);
        gpu_p[i].set_grad(gr.cuda());
      }
      oc->step();
      og->step();
    }
    for (size_t i = 0; i < cpu_p.size(); ++i) expect_close(gpu_p[i].cpu(), cpu_p[i], 1e-5, 1e-6, "fused update");
  }
}
