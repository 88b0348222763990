// tests/test_losses_train.cpp — train/loss.h: the StereoMamba multi-scale smooth-L1 and the sequence L1 against
// values computed by hand (plain loops in double over the mask rules), their gradients, the empty-mask case, errors,
// and GPU == CPU.
#include <fmt/format.h>
#include <cmath>

#include "ops/elementwise.h"
#include "test_util.h"
#include "train/loss.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// A (2,3,5) ground truth with every mask case: 0 (no GT), negative, exactly max_disp, above it, NaN, valid values.
Tensor make_gt(double max_disp) {
  std::vector<double> g(30);
  for (size_t i = 0; i < g.size(); ++i) g[i] = 0.37 + 1.4 * double(i % 11);  // in (0, 15)
  g[0] = 0;
  g[3] = -2.5;
  g[7] = max_disp;
  g[12] = max_disp + 3;
  g[18] = NAN;
  return Tensor::from_vector(g, {2, 3, 5});
}

double smooth_l1(double d) { return std::fabs(d) < 1 ? 0.5 * d * d : std::fabs(d) - 0.5; }
double smooth_l1_grad(double d) { return std::fabs(d) < 1 ? d : (d > 0 ? 1 : -1); }

// Independent reference: loops over the mask rules; returns the total and fills per-term values and gradients.
double reference(const std::vector<Tensor>& preds, const Tensor& gt, const Tensor& valid, double max_disp,
                 const std::vector<double>& w, bool l1, std::vector<double>* terms, std::vector<std::vector<double>>* grads) {
  std::vector<double> g = gt.to_vector(), v = valid.defined() ? valid.to_vector() : std::vector<double>(g.size(), 1);
  double total = 0;
  terms->clear();
  grads->clear();
  for (size_t k = 0; k < preds.size(); ++k) {
    std::vector<double> p = preds[k].to_vector(), dp(p.size(), 0.0);
    double s = 0;
    int n = 0;
    for (size_t i = 0; i < g.size(); ++i)
      if (v[i] != 0 && g[i] > 0 && g[i] < max_disp) {
        s += l1 ? std::fabs(p[i] - g[i]) : smooth_l1(p[i] - g[i]);
        n++;
      }
    for (size_t i = 0; i < g.size(); ++i)
      if (v[i] != 0 && g[i] > 0 && g[i] < max_disp) {
        double d = p[i] - g[i];
        dp[i] = w[k] * (l1 ? (d > 0 ? 1.0 : (d < 0 ? -1.0 : 0.0)) : smooth_l1_grad(d)) / n;
      }
    terms->push_back(n ? s / n : 0.0);
    grads->push_back(dp);
    total += w[k] * terms->back();
  }
  return total;
}

std::vector<Tensor> make_preds(const Tensor& gt, size_t n) {
  std::vector<Tensor> preds;
  for (size_t k = 0; k < n; ++k) {
    // gt plus offsets spanning both smooth-L1 branches (|d| < 1 and > 1), finite where gt is NaN
    Tensor off = rand_t({2, 3, 5}, DType::F32, -3.0, 3.0);
    std::vector<double> g = gt.to_vector(), o = off.to_vector(), p(g.size());
    for (size_t i = 0; i < g.size(); ++i) p[i] = (std::isfinite(g[i]) ? g[i] : 5.0) + o[i] * (0.2 + 0.3 * double(k));
    preds.push_back(Tensor::from_vector(p, {2, 3, 5}).set_requires_grad());
  }
  return preds;
}

}  // namespace

TEST_CASE("stereomamba_loss: 0.5/0.5/0.7/1.0 smooth-L1 over 0 < gt < max_disp and the valid mask (hand-computed)") {
  const double max_disp = 16;
  Tensor gt = make_gt(max_disp);
  std::vector<double> vm(30, 1.0);
  vm[4] = vm[9] = vm[25] = 0;  // no ground truth there even though gt is in range
  Tensor valid = Tensor::from_vector(vm, {2, 3, 5}, DType::U8);
  std::vector<Tensor> preds = make_preds(gt, 4);
  MultiLoss L = stereomamba_loss(preds, gt, valid, max_disp);
  std::vector<double> terms;
  std::vector<std::vector<double>> grads;
  double ref = reference(preds, gt, valid, max_disp, {0.5, 0.5, 0.7, 1.0}, false, &terms, &grads);
  REQUIRE(L.terms.size() == 4);
  CHECK(L.total.item() == doctest::Approx(ref).epsilon(1e-6));
  for (size_t k = 0; k < 4; ++k) CHECK(L.terms[k].item() == doctest::Approx(terms[k]).epsilon(1e-6));
  // The mask really excludes something of each kind: count = 30 - {0, -2.5, max, >max, NaN, three invalid} = 22.
  Tensor mask = disparity_loss_mask(gt, valid, max_disp);
  CHECK(mask.to_vector() == std::vector<double>{0, 1, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1,
                                                1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1});
  L.total.backward();
  for (size_t k = 0; k < 4; ++k)
    expect_close(preds[k].grad(), Tensor::from_vector(grads[k], {2, 3, 5}), kTolF32, fmt::format("dpred{}", k));
  // No mask from the batch: only the range rule applies (bool masks work too).
  MultiLoss L2 = stereomamba_loss(preds, gt, Tensor(), max_disp);
  double ref2 = reference(preds, gt, Tensor(), max_disp, {0.5, 0.5, 0.7, 1.0}, false, &terms, &grads);
  CHECK(L2.total.item() == doctest::Approx(ref2).epsilon(1e-6));
  MultiLoss L3 = stereomamba_loss(preds, gt, valid.to(DType::Bool), max_disp);
  CHECK(L3.total.item() == doctest::Approx(ref).epsilon(1e-6));
}

TEST_CASE("sequence_loss: sum gamma^(n-1-i) L1_i, masked (hand-computed)") {
  const double max_disp = 12;
  Tensor gt = make_gt(max_disp);
  std::vector<Tensor> preds = make_preds(gt, 3);
  MultiLoss L = sequence_loss(preds, gt, Tensor(), max_disp, 0.9);
  REQUIRE(L.weights.size() == 3);
  CHECK(L.weights[0] == doctest::Approx(0.81));
  CHECK(L.weights[1] == doctest::Approx(0.9));
  CHECK(L.weights[2] == 1.0);
  std::vector<double> terms;
  std::vector<std::vector<double>> grads;
  double ref = reference(preds, gt, Tensor(), max_disp, {0.81, 0.9, 1.0}, true, &terms, &grads);
  CHECK(L.total.item() == doctest::Approx(ref).epsilon(1e-6));
  L.total.backward();
  for (size_t k = 0; k < 3; ++k)
    expect_close(preds[k].grad(), Tensor::from_vector(grads[k], {2, 3, 5}), kTolF32, fmt::format("dpred{}", k));
}

TEST_CASE("training losses: empty mask gives 0 (not NaN); errors name the op and the shapes") {
  Tensor gt = Tensor::zeros({1, 2, 3});
  std::vector<Tensor> preds = make_preds(Tensor::ones({2, 3, 5}), 4);
  std::vector<Tensor> small;
  for (int k = 0; k < 4; ++k) small.push_back(rand_t({1, 2, 3}, DType::F32, 0, 5).set_requires_grad());
  MultiLoss L = stereomamba_loss(small, gt, Tensor(), 192);
  CHECK(L.total.item() == 0.0);
  L.total.backward();
  for (auto& p : small) for (double g : p.grad().to_vector()) CHECK(g == 0.0);
  expect_error([&] { stereomamba_loss({preds[0], preds[1]}, make_gt(16), Tensor(), 16); },
               {"stereomamba_loss", "2 predictions", "4 weights"});
  expect_error([&] { stereomamba_loss(small, make_gt(16), Tensor(), 16); },
               {"stereomamba_loss", "(1,2,3)", "(2,3,5)"});
  expect_error([&] { disparity_loss_mask(make_gt(16), Tensor::ones({2, 3}), 16); }, {"disparity_loss_mask", "(2,3)"});
  expect_error([&] { sequence_loss({}, make_gt(16), Tensor(), 16); }, {"sequence_loss", "no predictions"});
}

TEST_CASE("training losses: GPU == CPU (values and gradients) [gpu]") {
  STEREORT_REQUIRE_GPU();
  const double max_disp = 64;
  Tensor gt = rand_t({3, 37, 53}, DType::F32, -2, 70);  // every mask case on a realistic odd shape
  Tensor valid = rand_t({3, 37, 53}, DType::F32, 0, 1);
  valid = Tensor::from_vector([&] {
    std::vector<double> v = valid.to_vector();
    for (double& x : v) x = x > 0.2;
    return v;
  }(), {3, 37, 53}, DType::U8);
  std::vector<Tensor> pc, pg;
  for (int k = 0; k < 4; ++k) {
    Tensor p = add(gt, rand_t({3, 37, 53}, DType::F32, -4, 4));
    pc.push_back(p.clone().set_requires_grad());
    pg.push_back(p.cuda().set_requires_grad());
  }
  MultiLoss a = stereomamba_loss(pc, gt, valid, max_disp), b = stereomamba_loss(pg, gt.cuda(), valid.cuda(), max_disp);
  CHECK(b.total.item() == doctest::Approx(a.total.item()).epsilon(1e-5));
  a.total.backward();
  b.total.backward();
  for (int k = 0; k < 4; ++k) expect_close(pg[size_t(k)].grad().cpu(), pc[size_t(k)].grad(), kTolF32, "dpred");
  MultiLoss s1 = sequence_loss(pc, gt, valid, max_disp), s2 = sequence_loss(pg, gt.cuda(), valid.cuda(), max_disp);
  CHECK(s2.total.item() == doctest::Approx(s1.total.item()).epsilon(1e-5));
}
