// ops/metrics.cpp — metric definitions (see ops/metrics.h): argument checks, CPU loops in double, and the finishing
// arithmetic shared by the CPU and CUDA paths (both produce the same raw sums).
#include "ops/metrics.h"

#include <array>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "core/context.h"

namespace stereort {
namespace {

// Same element count and the same shape once size-1 dims are dropped ((B,H,W) vs (B,1,H,W) is fine).
void check_same(const char* op, const char* na, const Tensor& a, const char* nb, const Tensor& b) {
  STEREORT_CHECK(a.defined() && b.defined(), "{}: {} and {} must be defined", op, na, nb);
  auto squeezed = [](const Shape& s) {
    Shape o;
    for (int64_t v : s)
      if (v != 1) o.push_back(v);
    return o;
  };
  STEREORT_CHECK(squeezed(a.shape()) == squeezed(b.shape()),
                 "{}: {} {} and {} {} must have the same size (size-1 dims aside)", op, na, shape_str(a.shape()), nb,
                 shape_str(b.shape()));
  STEREORT_CHECK(a.device() == b.device(), "{}: {} is on {} but {} on {}; move both to one device", op, na,
                 a.device().str(), nb, b.device().str());
  STEREORT_CHECK(a.numel() > 0, "{}: {} {} is empty", op, na, shape_str(a.shape()));
}

// Flat F32 contiguous copy for the CUDA kernels (metrics read each element once; the cast is cheap). Masks of any
// dtype go through it too: nonzero stays nonzero.
Tensor flat_f32(const Tensor& t) { return t.contiguous().to(DType::F32).reshape({t.numel()}); }

// ---- CPU sums (same layout as the CUDA launchers) --------------------------------------------------------------------
std::array<double, 7> cpu_disparity_sums(const Tensor& pred, const Tensor& gt, const Tensor& mask, double max_disp) {
  std::vector<double> p = pred.contiguous().to_vector(), g = gt.contiguous().to_vector(), m;
  if (mask.defined()) m = mask.contiguous().to_vector();
  std::array<double, 7> s{};
  for (size_t i = 0; i < p.size(); ++i) {
    if (!m.empty() && m[i] == 0) continue;
    if (!std::isfinite(g[i]) || !(g[i] > 0) || !(g[i] < max_disp)) continue;
    double e = std::fabs(p[i] - g[i]);
    s[0] += 1;
    s[1] += e;
    s[2] += !(e <= 1.0);
    s[3] += !(e <= 2.0);
    s[4] += !(e <= 3.0);
    s[5] += !(e <= 5.0);
    s[6] += !(e <= 3.0) && !(e <= 0.05 * std::fabs(g[i]));
  }
  return s;
}

// Gaussian window of ssim(): 11 taps, sigma 1.5, normalised to sum 1.
std::array<double, 11> gaussian_11() {
  std::array<double, 11> w{};
  double t = 0;
  for (int i = 0; i < 11; ++i) t += (w[size_t(i)] = std::exp(-double((i - 5) * (i - 5)) / (2 * 1.5 * 1.5)));
  for (double& v : w) v /= t;
  return w;
}

double cpu_ssim_sum(const Tensor& a, const Tensor& b, int64_t planes, int64_t H, int64_t W, double c1, double c2) {
  std::vector<double> x = a.contiguous().to_vector(), y = b.contiguous().to_vector();
  std::array<double, 11> g = gaussian_11();
  double total = 0;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t r = 0; r + 11 <= H; ++r)
      for (int64_t c = 0; c + 11 <= W; ++c) {
        double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
        for (int i = 0; i < 11; ++i)
          for (int j = 0; j < 11; ++j) {
            double w = g[size_t(i)] * g[size_t(j)];
            size_t k = size_t((p * H + r + i) * W + c + j);
            mx += w * x[k];
            my += w * y[k];
            sxx += w * x[k] * x[k];
            syy += w * y[k] * y[k];
            sxy += w * x[k] * y[k];
          }
        double vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
        total += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
      }
  return total;
}

std::array<double, 6> moment_sums(const Tensor& a, const Tensor& b, double ca, double cb) {
  std::array<double, 6> s{};
  if (a.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::image_moment_sums(s.data(), flat_f32(a), flat_f32(b), ca, cb, Context::get(a.device())));
    return s;
  }
  std::vector<double> x = a.contiguous().to_vector(), y = b.contiguous().to_vector();
  for (size_t i = 0; i < x.size(); ++i) {
    s[0] += x[i];
    s[1] += y[i];
    s[2] += (x[i] - ca) * (x[i] - ca);
    s[3] += (y[i] - cb) * (y[i] - cb);
    s[4] += (x[i] - ca) * (y[i] - cb);
    s[5] += (x[i] - y[i]) * (x[i] - y[i]);
  }
  return s;
}

}  // namespace

DisparityMetrics disparity_metrics(const Tensor& pred, const Tensor& gt, const Tensor& mask, double max_disp) {
  check_same("disparity_metrics", "pred", pred, "gt", gt);
  if (mask.defined()) check_same("disparity_metrics", "gt", gt, "mask", mask);
  std::array<double, 7> s{};
  if (pred.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::disparity_metric_sums(s.data(), flat_f32(pred), flat_f32(gt),
                                                   mask.defined() ? flat_f32(mask) : Tensor(), max_disp,
                                                   Context::get(pred.device())));
  } else {
    s = cpu_disparity_sums(pred, gt, mask, max_disp);
  }
  DisparityMetrics m;
  double n = s[0];
  double inv = n > 0 ? 1.0 / n : NAN;
  m.epe = s[1] * inv;
  m.bad1 = s[2] * inv;
  m.bad2 = s[3] * inv;
  m.bad3 = s[4] * inv;
  m.bad5 = s[5] * inv;
  m.d1 = s[6] * inv;
  m.valid = int64_t(n);
  m.valid_fraction = n / double(pred.numel());
  return m;
}

double depth_mae_mm(const Tensor& pred, const Tensor& gt, double focal_px, double baseline_mm) {
  check_same("depth_mae_mm", "pred", pred, "gt", gt);
  const double bf = focal_px * baseline_mm;
  std::array<double, 2> s{};
  if (pred.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::depth_mae_sums(s.data(), flat_f32(pred), flat_f32(gt), bf, Context::get(pred.device())));
  } else {
    std::vector<double> p = pred.contiguous().to_vector(), g = gt.contiguous().to_vector();
    for (size_t i = 0; i < p.size(); ++i) {
      if (!std::isfinite(g[i]) || !(g[i] > 0)) continue;
      s[0] += 1;
      s[1] += std::fabs(bf / (p[i] + 1e-6) - bf / (g[i] + 1e-6));
    }
  }
  return s[0] > 0 ? s[1] / s[0] : NAN;
}

double psnr(const Tensor& a, const Tensor& b, double data_range) {
  check_same("psnr", "a", a, "b", b);
  STEREORT_CHECK(data_range > 0, "psnr: data_range must be positive (1 for [0,1] images, 255 for 8-bit), got {}",
                 data_range);
  double mse = moment_sums(a, b, 0, 0)[5] / double(a.numel());
  return 10.0 * std::log10(data_range * data_range / mse);
}

double psnr_stereomamba(const Tensor& a, const Tensor& b) {
  check_same("psnr_stereomamba", "a", a, "b", b);
  double mse = moment_sums(a, b, 0, 0)[5] / double(a.numel());
  return 20.0 * std::log10(1.0 / std::sqrt(mse));
}

double ssim_global_stereomamba(const Tensor& a, const Tensor& b) {
  check_same("ssim_global_stereomamba", "a", a, "b", b);
  const double n = double(a.numel());
  STEREORT_CHECK(n >= 2, "ssim_global_stereomamba: needs at least 2 elements for the unbiased std, got {}",
                 shape_str(a.shape()));
  std::array<double, 6> s0 = moment_sums(a, b, 0, 0);
  const double ma = s0[0] / n, mb = s0[1] / n;
  std::array<double, 6> s = moment_sums(a, b, ma, mb);  // centred second pass: no cancellation
  const double sa = std::sqrt(s[2] / (n - 1)), sb = std::sqrt(s[3] / (n - 1)), sab = s[4] / n;
  const double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03, c3 = (c2 / 2) * (c2 / 2);
  const double l = (2 * ma * mb + c1) / (ma * ma + mb * mb + c1);
  const double c = (2 * sa * sb + c2) / (sa * sa + sb * sb + c2);
  const double st = (sab + c3) / (sa * sb + c3);
  return l * c * st;
}

double ssim(const Tensor& a, const Tensor& b, double data_range) {
  STEREORT_CHECK(a.defined() && b.defined() && a.shape() == b.shape(),
                 "ssim: images must have the same shape, got {} and {}", a.defined() ? shape_str(a.shape()) : "-",
                 b.defined() ? shape_str(b.shape()) : "-");
  STEREORT_CHECK(a.dim() >= 2 && a.size(-1) >= 11 && a.size(-2) >= 11,
                 "ssim: images {} must be (...,H,W) with H, W >= 11 for the 11x11 window", shape_str(a.shape()));
  STEREORT_CHECK(a.device() == b.device(), "ssim: images on {} and {}; move both to one device", a.device().str(),
                 b.device().str());
  STEREORT_CHECK(data_range > 0, "ssim: data_range must be positive (1 for [0,1] images, 255 for 8-bit), got {}",
                 data_range);
  const int64_t H = a.size(-2), W = a.size(-1), planes = a.numel() / (H * W);
  const double c1 = (0.01 * data_range) * (0.01 * data_range), c2 = (0.03 * data_range) * (0.03 * data_range);
  double total = 0;
  if (a.is_cuda()) {
    Tensor a3 = flat_f32(a).reshape({planes, H, W}), b3 = flat_f32(b).reshape({planes, H, W});
    STEREORT_CUDA_PATH(cuda::ssim_window_sum(&total, a3, b3, c1, c2, Context::get(a.device())));
  } else {
    total = cpu_ssim_sum(a, b, planes, H, W, c1, c2);
  }
  return total / double(planes * (H - 10) * (W - 10));
}

}  // namespace stereort
