// tests/test_loss.cpp — smooth L1 (beta), L1 and MSE with masks: values vs float64 loops over the valid elements
// (the PyTorch F.<loss>(pred[mask], target[mask]) form), empty masks (0, not NaN), mask dtypes and broadcasting,
// gradients w.r.t. pred and target by finite differences, errors, GPU vs CPU.
//   Kink rule: smooth L1 switches branch at |d| == beta and L1 has a kink at d == 0; random inputs keep |d| at least
//   0.02 away from those points, and the values at the points are tested separately.
#include <cmath>
#include <functional>

#include "core/context.h"
#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

double ref_term(const std::string& kind, double d, double beta) {
  if (kind == "l1") return std::fabs(d);
  if (kind == "mse") return d * d;
  if (beta == 0.0) return std::fabs(d);
  return std::fabs(d) < beta ? 0.5 * d * d / beta : std::fabs(d) - 0.5 * beta;
}

double ref_loss(const std::string& kind, const Tensor& p, const Tensor& t, const std::vector<double>& mask,
                double beta) {
  std::vector<double> pv = p.to_vector(), tv = t.to_vector();
  double s = 0;
  int64_t n = 0;
  for (size_t i = 0; i < pv.size(); ++i) {
    if (!mask.empty() && mask[i] == 0.0) continue;
    s += ref_term(kind, pv[i] - tv[i], beta);
    ++n;
  }
  return n ? s / double(n) : 0.0;
}

Tensor call(const std::string& kind, const Tensor& p, const Tensor& t, const Tensor& m, double beta) {
  if (kind == "l1") return l1_loss(p, t, m);
  if (kind == "mse") return mse_loss(p, t, m);
  return smooth_l1_loss(p, t, m, beta);
}

// target = pred - d with |d| in [0.02, 2] and |d| at least 0.02 away from beta.
Tensor target_for(const Tensor& pred, double beta) {
  std::vector<double> d = rand_t(pred.shape(), DType::F64, -2.0, 2.0).to_vector(), pv = pred.to_vector();
  for (size_t i = 0; i < d.size(); ++i) {
    if (std::fabs(d[i]) < 0.02) d[i] = d[i] < 0 ? -0.02 - d[i] : 0.02 + d[i];
    if (std::fabs(std::fabs(d[i]) - beta) < 0.02) d[i] += d[i] < 0 ? -0.05 : 0.05;
    d[i] = pv[i] - d[i];
  }
  return Tensor::from_vector(d, pred.shape(), pred.dtype());
}

const std::vector<std::string> kKinds = {"smooth_l1", "l1", "mse"};

}  // namespace

TEST_CASE("losses: values vs float64 reference, masks of every dtype, broadcast masks") {
  Tensor p = rand_t({2, 3, 4, 5}, DType::F64, -3.0, 3.0);
  Tensor t = target_for(p, 1.0);
  std::vector<double> mv = rand_t({2, 3, 4, 5}, DType::F64, -1.0, 1.0).to_vector();
  for (double& e : mv) e = e > 0 ? 1.0 : 0.0;
  for (const std::string& k : kKinds) {
    for (double beta : {1.0, 0.5, 0.0}) {
      if (k != "smooth_l1" && beta != 1.0) continue;
      double ref_all = ref_loss(k, p, t, {}, beta), ref_m = ref_loss(k, p, t, mv, beta);
      std::string name = k + " beta " + std::to_string(beta);
      CHECK_MESSAGE(call(k, p, t, Tensor(), beta).item() == doctest::Approx(ref_all).epsilon(1e-13), name);
      for (DType mdt : {DType::Bool, DType::U8, DType::F32, DType::F64, DType::I64, DType::BF16}) {
        Tensor m = Tensor::from_vector(mv, p.shape(), mdt);
        Tensor l = call(k, p, t, m, beta);
        CHECK(l.dim() == 0);
        CHECK(l.dtype() == DType::F64);
        CHECK_MESSAGE(l.item() == doctest::Approx(ref_m).epsilon(1e-13), name << " mask " << dtype_name(mdt));
      }
      Tensor p32 = p.to(DType::F32), t32 = t.to(DType::F32);
      CHECK_MESSAGE(call(k, p32, t32, Tensor(), beta).item() ==
                        doctest::Approx(ref_loss(k, p32, t32, {}, beta)).epsilon(1e-6),
                    name << " f32");
    }
  }
  // Broadcast mask (W,) over (B,C,H,W); a floating mask counts != 0 (0.3 is valid).
  std::vector<double> wm = {0.3, 0, 1, 0, -2};
  std::vector<double> full;
  for (int64_t i = 0; i < p.numel(); ++i) full.push_back(wm[size_t(i % 5)]);
  CHECK(l1_loss(p, t, Tensor::from_vector(wm, {5}, DType::F32)).item() ==
        doctest::Approx(ref_loss("l1", p, t, full, 1.0)).epsilon(1e-13));
}

TEST_CASE("losses: empty mask gives 0 and zero gradients; kink values") {
  Tensor p = rand_t({2, 3}), t = rand_t({2, 3});
  Tensor none = Tensor::zeros({2, 3}, DType::Bool);
  for (const std::string& k : kKinds) {
    Tensor pi = p.clone();
    pi.set_requires_grad(true);
    Tensor l = call(k, pi, t, none, 1.0);
    CHECK(l.item() == 0.0);
    l.backward();
    for (double g : pi.grad().to_vector()) CHECK(g == 0.0);
  }
  // smooth L1 at |d| == beta: both branches give 0.5 beta, derivative sign(d); L1'(0) = 0 (PyTorch sign).
  Tensor a = Tensor::from_vector({1.0, -1.0, 0.0}, {3}, DType::F64);
  Tensor ai = a.clone();
  ai.set_requires_grad(true);
  Tensor z = Tensor::zeros({3}, DType::F64);
  Tensor l = smooth_l1_loss(ai, z);
  CHECK(l.item() == doctest::Approx((0.5 + 0.5 + 0.0) / 3));
  l.backward();
  CHECK(ai.grad().to_vector() == std::vector<double>{1.0 / 3, -1.0 / 3, 0.0});
  Tensor bi = a.clone();
  bi.set_requires_grad(true);
  l1_loss(bi, z).backward();
  CHECK(bi.grad().to_vector()[2] == 0.0);
}

TEST_CASE("losses: gradcheck w.r.t. pred and target (masked, batch > 1)") {
  Tensor p = rand_t({2, 3, 5}, DType::F64, -3.0, 3.0);
  for (const std::string& k : kKinds)
    for (double beta : {1.0, 0.3}) {
      if (k != "smooth_l1" && beta != 1.0) continue;
      Tensor t = target_for(p, beta);
      Tensor m = Tensor::from_vector({1, 1, 0, 1, 0}, {5}, DType::U8);
      check_grad([k, m, beta](const std::vector<Tensor>& in) { return call(k, in[0], in[1], m, beta); }, {p, t},
                 k + " masked");
      check_grad([k, beta](const std::vector<Tensor>& in) { return call(k, in[0], in[1], Tensor(), beta); }, {p, t},
                 k + " unmasked");
    }
}

TEST_CASE("losses: errors name the op and the shapes") {
  Tensor p = Tensor::zeros({2, 3}), t = Tensor::zeros({2, 4});
  expect_error([&] { smooth_l1_loss(p, t); }, {"smooth_l1_loss", "(2,4)", "(2,3)"});
  expect_error([&] { l1_loss(p, Tensor::zeros({2, 3}, DType::F64)); }, {"l1_loss", "dtype"});
  expect_error([&] { mse_loss(p, p, Tensor::ones({3, 3})); }, {"mse_loss", "(3,3)", "(2,3)"});
  expect_error([&] { smooth_l1_loss(p, p, Tensor(), -1.0); }, {"smooth_l1_loss", "beta"});
  expect_error([&] { l1_loss(Tensor::zeros({2}, DType::I32), Tensor::zeros({2}, DType::I32)); }, {"l1_loss",
                                                                                                  "floating"});
}

TEST_CASE("losses: GPU vs CPU forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  // Realistic: a (B,H,W) disparity map with a validity mask (gt > 0 and gt < maxdisp).
  Tensor p = rand_t({2, 67, 131}, DType::F32, 0.0, 192.0);
  Tensor t = rand_t({2, 67, 131}, DType::F32, -10.0, 200.0);
  Tensor m = rand_t({2, 67, 131}, DType::F32, -1.0, 1.0);
  for (const std::string& k : kKinds)
    for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
      for (bool masked : {true, false}) {
        auto run = [&](Device dev) {
          Tensor pi = p.to(dt).to(dev).detach();
          pi.set_requires_grad(true);
          Tensor ti = t.to(dt).to(dev).detach();
          ti.set_requires_grad(true);
          Tensor mm = masked ? m.to(dev) : Tensor();
          Tensor l = call(k, pi, ti, mm, 1.0);
          l.backward();
          return std::vector<Tensor>{l.detach().cpu().to(DType::F64), pi.grad().cpu().to(DType::F64),
                                     ti.grad().cpu().to(DType::F64)};
        };
        std::vector<Tensor> c = run(Device::cpu()), g = run(gpu());
        std::string name = k + (masked ? " masked " : " ") + dtype_name(dt);
        // fp32 sums of 17554 terms in a different order than the CPU's double: 1e-5 relative.
        Tol tol = dt == DType::F64 ? kTolF64 : (dt == DType::F32 ? kTolF32 : (dt == DType::F16 ? kTolF16 : kTolBF16));
        expect_close(g[0], c[0], tol, name + " value");
        expect_close(g[1], c[1], tol, name + " dpred");
        expect_close(g[2], c[2], tol, name + " dtarget");
      }
    }
  // Empty mask on the GPU: 0.
  Tensor pz = p.cuda();
  CHECK(l1_loss(pz, pz, Tensor::zeros(p.shape(), DType::Bool, gpu())).item() == 0.0);
}

TEST_CASE("losses: CUDA launchers write every output element (poisoned outputs) [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  Tensor p = rand_t({3, 45, 67}, DType::F32, -2.0, 2.0), t = rand_t({3, 45, 67}, DType::F32, -2.0, 2.0);
  Tensor m = Tensor::from_vector(std::vector<double>(size_t(p.numel()), 1.0), p.shape(), DType::U8);
  Tensor pg = p.cuda(), tg = t.cuda(), mg = m.cuda();
  Tensor value = Tensor::empty({}, DType::F32, gpu()), count = Tensor::empty({}, DType::I64, gpu());
  poison(value);
  poison(count);
  STEREORT_CUDA_PATH(cuda::masked_loss_forward(value, count, LossKind::SmoothL1, pg, tg, mg, 1.0, ctx));
  CHECK(count.cpu().item() == double(p.numel()));
  CHECK(value.cpu().item() == doctest::Approx(smooth_l1_loss(p, t).item()).epsilon(1e-5));
  Tensor dp = Tensor::empty(p.shape(), DType::F32, gpu());
  poison(dp);
  Tensor g = Tensor::scalar(2.0, DType::F32, gpu());
  STEREORT_CUDA_PATH(cuda::masked_loss_backward(dp, LossKind::SmoothL1, g, pg, tg, mg, count, 1.0, ctx));
  Tensor pi = p.clone();
  pi.set_requires_grad(true);
  smooth_l1_loss(pi, t).backward(Tensor::scalar(2.0, DType::F32));
  expect_close(dp.cpu(), pi.grad(), kTolF32, "masked_loss_backward launcher");
}
