// tests/test_metrics.cpp — metrics against hand-computed values: strict bad-N thresholds, KITTI D1, masks, invalid
// GT (0, inf, >= max_disp), NaN predictions, depth MAE, PSNR, the windowed SSIM and StereoMamba's global SSIM
// (unbiased std, C3 = (C2/2)^2); GPU vs CPU for each.
#include <cmath>

#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/metrics.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

const double kInf = INFINITY;

// gt: 1, 10, 0 (invalid), inf (invalid), 100, 50, 200 (>= 192: invalid), 4
// e on valid pixels: 0.5, 2.5, 4.0, 6.0, 2.0 (exactly 2: not a bad-2 outlier)
Tensor gt_ex() { return Tensor::from_vector({1, 10, 0, kInf, 100, 50, 200, 4}, {2, 4}); }
Tensor pred_ex() { return Tensor::from_vector({1.5, 12.5, 3, 5, 104, 56, 10, 6}, {2, 4}); }

void check_metrics(const DisparityMetrics& m, double epe, double b1, double b2, double b3, double b5, double d1,
                   int64_t valid, double frac) {
  CHECK(m.epe == doctest::Approx(epe).epsilon(1e-12));
  CHECK(m.bad1 == doctest::Approx(b1).epsilon(1e-12));
  CHECK(m.bad2 == doctest::Approx(b2).epsilon(1e-12));
  CHECK(m.bad3 == doctest::Approx(b3).epsilon(1e-12));
  CHECK(m.bad5 == doctest::Approx(b5).epsilon(1e-12));
  CHECK(m.d1 == doctest::Approx(d1).epsilon(1e-12));
  CHECK(m.valid == valid);
  CHECK(m.valid_fraction == doctest::Approx(frac).epsilon(1e-12));
}

void disparity_cases(Device dev) {
  Tensor p = pred_ex().to(dev), g = gt_ex().to(dev);
  // valid 1, 10, 100, 50, 4: epe 15/5; >1: 4; >2: 3; >3: 2; >5: 1; D1: only e=6 at gt=50 (e=4 at gt=100 is < 5)
  check_metrics(disparity_metrics(p, g), 3.0, 0.8, 0.6, 0.4, 0.2, 0.2, 5, 5.0 / 8);
  // mask drops 100 and 4: e = 0.5, 2.5, 6
  Tensor mask = Tensor::from_vector({1, 1, 1, 1, 0, 1, 1, 0}, {2, 4}, DType::U8).to(dev);
  check_metrics(disparity_metrics(p, g, mask), 3.0, 2.0 / 3, 2.0 / 3, 1.0 / 3, 1.0 / 3, 1.0 / 3, 3, 3.0 / 8);
  // a float mask and a (2,1,4) prediction shape
  check_metrics(disparity_metrics(p.reshape({2, 1, 4}), g, mask.to(DType::F32)), 3.0, 2.0 / 3, 2.0 / 3, 1.0 / 3,
                1.0 / 3, 1.0 / 3, 3, 3.0 / 8);
  // no cap: gt 200 counts with e = 190 (an outlier for all, D1 too)
  check_metrics(disparity_metrics(p, g, Tensor(), kInf), 205.0 / 6, 5.0 / 6, 4.0 / 6, 3.0 / 6, 2.0 / 6, 2.0 / 6, 6,
                6.0 / 8);
  // a NaN prediction on a valid pixel: an outlier everywhere, EPE non-finite
  Tensor pn = Tensor::from_vector({NAN, 12.5, 3, 5, 104, 56, 10, 6}, {2, 4}).to(dev);
  DisparityMetrics mn = disparity_metrics(pn, g);
  CHECK(!std::isfinite(mn.epe));
  CHECK(mn.bad1 == doctest::Approx(1.0));
  CHECK(mn.bad5 == doctest::Approx(0.4));
  CHECK(mn.d1 == doctest::Approx(0.4));
  // nothing valid: NaN rates, 0 valid
  DisparityMetrics m0 = disparity_metrics(p, Tensor::zeros({2, 4}).to(dev));
  CHECK(std::isnan(m0.epe));
  CHECK(std::isnan(m0.bad3));
  CHECK(m0.valid == 0);
  CHECK(m0.valid_fraction == 0.0);
}

}  // namespace

TEST_CASE("disparity_metrics: hand-computed EPE, bad-N (strict), KITTI D1, masks, invalid and NaN pixels") {
  disparity_cases(Device::cpu());
}

TEST_CASE("depth_mae_mm, psnr and psnr_stereomamba against hand-computed values") {
  // b f = 500; valid gt 2 and 4 (0 and inf skipped): |500/4 - 500/2| and 0 (with the +1e-6 of the reference)
  Tensor gt = Tensor::from_vector({2, 0, 4, kInf}, {4}), pred = Tensor::from_vector({4, 1, 4, 3}, {4});
  double want = (std::fabs(500 / (4 + 1e-6) - 500 / (2 + 1e-6)) + 0.0) / 2;
  CHECK(depth_mae_mm(pred, gt, 100, 5) == doctest::Approx(want).epsilon(1e-12));
  CHECK(std::isnan(depth_mae_mm(pred, Tensor::zeros({4}), 100, 5)));
  // MSE = 0.25^2 * ... : one element differs by 0.5 out of 4 -> MSE 0.0625 -> 10 log10(1/0.0625) = 12.0412 dB
  Tensor a = Tensor::from_vector({0, 0.5, 1, 0.25}, {2, 2}), b = Tensor::from_vector({0, 0.5, 0.5, 0.25}, {2, 2});
  CHECK(psnr(a, b, 1.0) == doctest::Approx(10 * std::log10(16.0)).epsilon(1e-12));
  CHECK(psnr(mul(a, 255.0), mul(b, 255.0), 255.0) == doctest::Approx(10 * std::log10(16.0)).epsilon(1e-12));
  CHECK(psnr_stereomamba(a, b) == doctest::Approx(20 * std::log10(4.0)).epsilon(1e-12));
  CHECK(std::isinf(psnr(a, a, 1.0)));
}

TEST_CASE("ssim (11x11 Gaussian, valid windows) and StereoMamba's global SSIM against closed forms") {
  Tensor x = rand_t({3, 14, 17}, DType::F64, 0, 1);
  CHECK(ssim(x, x, 1.0) == doctest::Approx(1.0).epsilon(1e-12));
  // constant images: sigma terms are C2/C2, so SSIM = (2 m1 m2 + C1) / (m1^2 + m2^2 + C1)
  double c1 = 1e-4;
  CHECK(ssim(Tensor::full({11, 12}, 0.5, DType::F64), Tensor::full({11, 12}, 0.25, DType::F64), 1.0) ==
        doctest::Approx((2 * 0.125 + c1) / (0.25 + 0.0625 + c1)).epsilon(1e-12));
  // one 11x11 window, y = 2x + 0.1: SSIM = l * (4 vx + C2) / (5 vx + C2), with the window's weighted moments
  Tensor w11 = rand_t({11, 11}, DType::F64, 0, 0.4);
  std::vector<double> g(11), xv = w11.to_vector();
  double gs = 0;
  for (int i = 0; i < 11; ++i) gs += (g[size_t(i)] = std::exp(-(i - 5.0) * (i - 5.0) / 4.5));
  double mx = 0, sxx = 0;
  for (int i = 0; i < 11; ++i)
    for (int j = 0; j < 11; ++j) {
      double w = g[size_t(i)] * g[size_t(j)] / (gs * gs), v = xv[size_t(i * 11 + j)];
      mx += w * v;
      sxx += w * v * v;
    }
  double vx = sxx - mx * mx, my = 2 * mx + 0.1, c2 = 9e-4;
  double want = (2 * mx * my + c1) / (mx * mx + my * my + c1) * (4 * vx + c2) / (5 * vx + c2);
  CHECK(ssim(w11, add(mul(w11, 2.0), 0.1), 1.0) == doctest::Approx(want).epsilon(1e-10));
  // StereoMamba global form: a = (-1, 1), b = (1, -1): mu 0, unbiased std sqrt(2), sigma_ab = -1 (biased mean)
  // -> l = 1, c = 1, s = (-1 + C3) / (2 + C3), C3 = (C2/2)^2
  double c3 = (c2 / 2) * (c2 / 2);
  CHECK(ssim_global_stereomamba(Tensor::from_vector({-1, 1}, {2}), Tensor::from_vector({1, -1}, {2})) ==
        doctest::Approx((-1 + c3) / (2 + c3)).epsilon(1e-12));
  // identical images do not score 1: sigma_xy is a biased mean but sigma an unbiased std, so s = ((n-1)/n v + C3) /
  // (v + C3) with v the unbiased variance
  Tensor y = rand_t({3, 14, 17}, DType::F64, -1, 1);
  std::vector<double> yv = y.to_vector();
  double n = double(yv.size()), ym = 0, ss = 0;
  for (double v : yv) ym += v / n;
  for (double v : yv) ss += (v - ym) * (v - ym);
  double var = ss / (n - 1);
  CHECK(ssim_global_stereomamba(y, y) == doctest::Approx((var * (n - 1) / n + c3) / (var + c3)).epsilon(1e-12));
  CHECK(ssim_global_stereomamba(y, y) < 0.999);
}

TEST_CASE("metric errors name the op and the shapes") {
  expect_error([] { disparity_metrics(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})); },
               {"disparity_metrics", "(2,3)", "(3,2)"});
  expect_error([] { disparity_metrics(Tensor::zeros({2, 3}), Tensor::zeros({2, 3}), Tensor::zeros({2, 2})); },
               {"disparity_metrics", "mask", "(2,2)"});
  expect_error([] { ssim(Tensor::zeros({3, 8, 20}), Tensor::zeros({3, 8, 20}), 1.0); }, {"ssim", "(3,8,20)", "11"});
  expect_error([] { psnr(Tensor::zeros({4}), Tensor::zeros({4}), 0.0); }, {"psnr", "data_range"});
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("metrics: GPU vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  disparity_cases(gpu());
  // realistic sizes: random disparities with invalid pixels sprinkled in
  Tensor gt = rand_t({2, 123, 301}, DType::F32, -20, 220), pred = add(gt, rand_t({2, 123, 301}, DType::F32, -8, 8));
  std::vector<double> mv = rand_t({2, 123, 301}, DType::F32, -1, 1).to_vector();  // nonzero, any sign
  for (size_t i = 0; i < mv.size(); i += 7) mv[i] = 0;
  Tensor mask = Tensor::from_vector(mv, {2, 123, 301});
  DisparityMetrics c = disparity_metrics(pred, gt, mask), g = disparity_metrics(pred.cuda(), gt.cuda(), mask.cuda());
  CHECK(g.valid == c.valid);
  CHECK(g.epe == doctest::Approx(c.epe).epsilon(1e-12));
  CHECK(g.bad1 == c.bad1);
  CHECK(g.bad3 == c.bad3);
  CHECK(g.d1 == c.d1);
  CHECK(depth_mae_mm(pred.cuda(), gt.cuda(), 1035.0, 4.2) ==
        doctest::Approx(depth_mae_mm(pred, gt, 1035.0, 4.2)).epsilon(1e-10));
  Tensor a = rand_t({3, 131, 173}, DType::F32, 0, 1), b = rand_t({3, 131, 173}, DType::F32, 0, 1);
  b = add(mul(a, 0.7), mul(b, 0.3));
  CHECK(psnr(a.cuda(), b.cuda(), 1.0) == doctest::Approx(psnr(a, b, 1.0)).epsilon(1e-12));
  CHECK(psnr_stereomamba(a.cuda(), b.cuda()) == doctest::Approx(psnr_stereomamba(a, b)).epsilon(1e-12));
  CHECK(ssim(a.cuda(), b.cuda(), 1.0) == doctest::Approx(ssim(a, b, 1.0)).epsilon(1e-10));
  Tensor a1 = add(mul(a, 2.0), -1.0), b1 = add(mul(b, 2.0), -1.0);
  CHECK(ssim_global_stereomamba(a1.cuda(), b1.cuda()) ==
        doctest::Approx(ssim_global_stereomamba(a1, b1)).epsilon(1e-10));
}
