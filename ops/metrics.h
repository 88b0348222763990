// ops/metrics.h — disparity, depth and image-similarity metrics (spec formats-and-metrics.md §13), CPU and CUDA.
//   All sums are in double (CUDA: per-block double partials, summed on the host); results are host doubles.
//   Every function pools over ALL pixels of the tensors it is given: call it once per image and average over images
//   for the per-image protocols of RAFT-Stereo / StereoMamba (pooled-pixel averages differ).
//
//   disparity_metrics(pred, gt, mask, max_disp)   pred and gt of equal size (e.g. (B,H,W) vs (B,1,H,W) is fine)
//     valid pixel: (mask != 0, when a mask is given) AND gt finite AND 0 < gt < max_disp
//                  (pass max_disp = INFINITY for sparse GT "gt > 0" or uncapped Middlebury/ETH3D).
//     e = |pred - gt| on valid pixels;  epe = mean e;  badN = fraction with e > N (strict; N = 1, 2, 3, 5);
//     d1 = fraction with e > 3 AND e > 0.05 |gt| (KITTI devkit D1, not RAFT-Stereo's "D1" = bad-3);
//     valid = number of valid pixels, valid_fraction = valid / numel.
//     A non-finite prediction on a valid pixel counts as an outlier for every bad-N and d1 and makes epe non-finite.
//     With no valid pixel every rate is NaN (never a silent 0).
//   depth_mae_mm(pred, gt, f, b)   StereoMamba SCARED depth MAE: mean over gt > 0 (finite, no 192 cap) of
//     |b f / (pred + 1e-6) - b f / (gt + 1e-6)| in the units of b (mm). NaN with no valid pixel.
//   psnr(a, b, L)       10 log10(L^2 / MSE) over all elements (+inf when a == b).
//   ssim(a, b, L)       Wang et al. 2004: 11x11 Gaussian window (sigma 1.5, normalised), K1 0.01, K2 0.03,
//                       C1 = (K1 L)^2, C2 = (K2 L)^2, weighted (biased) variances; the window slides over the
//                       'valid' positions only (no padding; like MATLAB ssim_index and scikit-image with
//                       gaussian_weights=True, use_sample_covariance=False); mean over those positions and over all
//                       planes. Inputs (...,H,W) with H, W >= 11; leading dims are planes (channels, batch).
//   ssim_global_stereomamba(a, b)   StereoMamba reprojection_error.py: ONE window over all pixels and channels of
//                       [-1,1] images: mu = mean, sigma = unbiased std, sigma_xy = mean((a-mu_a)(b-mu_b)) (biased),
//                       C1 = 0.01^2, C2 = 0.03^2, C3 = (C2/2)^2 (sic; the standard form uses C2/2);
//                       l = (2 mu_a mu_b + C1)/(mu_a^2 + mu_b^2 + C1), c = (2 s_a s_b + C2)/(s_a^2 + s_b^2 + C2),
//                       s = (sigma_xy + C3)/(s_a s_b + C3); SSIM = l c s. (Biased sigma_xy over unbiased stds:
//                       identical images score ((n-1)/n v + C3)/(v + C3) < 1, as in the reference.)
//   psnr_stereomamba(a, b)   20 log10(1 / sqrt(MSE)) on [-1,1] images (about standard [0,1] PSNR - 6.02 dB).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

struct DisparityMetrics {
  double epe, bad1, bad2, bad3, bad5, d1, valid_fraction;
  int64_t valid;
};

DisparityMetrics disparity_metrics(const Tensor& pred, const Tensor& gt, const Tensor& mask = Tensor(),
                                   double max_disp = 192.0);
double depth_mae_mm(const Tensor& pred, const Tensor& gt, double focal_px, double baseline_mm);
double psnr(const Tensor& a, const Tensor& b, double data_range);
double ssim(const Tensor& a, const Tensor& b, double data_range);
double ssim_global_stereomamba(const Tensor& a, const Tensor& b);
double psnr_stereomamba(const Tensor& a, const Tensor& b);

namespace cuda {
// Contiguous F32 device tensors of n elements; `mask` may be undefined. Results are sums over all elements, written
// to host arrays (the launcher synchronises the stream).
// sums[7] = {valid, sum e, #e>1, #e>2, #e>3, #e>5, #d1}
void disparity_metric_sums(double* sums, const Tensor& pred, const Tensor& gt, const Tensor& mask, double max_disp,
                           const Context& ctx);
// sums[2] = {#valid, sum |bf/(pred+1e-6) - bf/(gt+1e-6)|}
void depth_mae_sums(double* sums, const Tensor& pred, const Tensor& gt, double bf, const Context& ctx);
// sums[6] = {sum a, sum b, sum (a-ca)^2, sum (b-cb)^2, sum (a-ca)(b-cb), sum (a-b)^2} for centres ca, cb.
void image_moment_sums(double* sums, const Tensor& a, const Tensor& b, double ca, double cb, const Context& ctx);
// Sum over planes and valid window positions of the Gaussian-window SSIM of (planes,H,W) images; sums[1].
void ssim_window_sum(double* sum, const Tensor& a, const Tensor& b, double c1, double c2, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
