// ops/regression.cpp — soft-argmin regression: argument checks, the fused CPU loop (double accumulation, online
// softmax, one pixel at a time), device dispatch, the unfused autograd graph (interpolate_trilinear + softmax +
// weighted sum, ops/resample.h and ops/softmax.h), and the choice between the two.
#include "ops/regression.h"

#include <cmath>
#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/resample.h"
#include "ops/softmax.h"

namespace stereort {

LinearTap linear_tap_align_false(int64_t dst, int64_t in, int64_t out) {
  // PyTorch area_pixel_compute_source_index (align_corners = False, no explicit scale): scale = in / out.
  double src = (double(dst) + 0.5) * (double(in) / double(out)) - 0.5;
  if (src < 0) src = 0;
  LinearTap t;
  t.i0 = int64_t(src);
  t.i1 = t.i0 < in - 1 ? t.i0 + 1 : t.i0;
  t.w1 = src - double(t.i0);
  t.w0 = 1.0 - t.w1;
  return t;
}

namespace ref {

void disparity_regression_fused_forward(const Tensor& disp, const Tensor& cost, int64_t out_d) {
  const int64_t B = cost.size(0), D = cost.size(1), h = cost.size(2), w = cost.size(3);
  const int64_t H = disp.size(1), W = disp.size(2);
  std::vector<LinearTap> td(static_cast<size_t>(out_d)), ty(static_cast<size_t>(H)), tx(static_cast<size_t>(W));
  for (int64_t i = 0; i < out_d; ++i) td[size_t(i)] = linear_tap_align_false(i, D, out_d);
  for (int64_t i = 0; i < H; ++i) ty[size_t(i)] = linear_tap_align_false(i, h, H);
  for (int64_t i = 0; i < W; ++i) tx[size_t(i)] = linear_tap_align_false(i, w, W);
  dispatch_float(cost.dtype(), "disparity_regression_fused", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* c = cost.data<T>();  // (B,D,h,w)
    T* out = disp.data<T>();      // (B,H,W)
    std::vector<double> level(static_cast<size_t>(D));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          const LinearTap &a = ty[size_t(y)], &e = tx[size_t(x)];
          // bilinear value of every low-resolution disparity level at this pixel
          for (int64_t k = 0; k < D; ++k) {
            const T* p = c + (b * D + k) * h * w;
            level[size_t(k)] = a.w0 * (e.w0 * double(p[a.i0 * w + e.i0]) + e.w1 * double(p[a.i0 * w + e.i1])) +
                               a.w1 * (e.w0 * double(p[a.i1 * w + e.i0]) + e.w1 * double(p[a.i1 * w + e.i1]));
          }
          // online softmax over the out_d interpolated values: running max m, sum e^(v-m), sum d e^(v-m)
          double m = -INFINITY, s = 0, sd = 0;
          for (int64_t d = 0; d < out_d; ++d) {
            const LinearTap& t = td[size_t(d)];
            double v = t.w0 * level[size_t(t.i0)] + t.w1 * level[size_t(t.i1)];
            if (v > m) {
              double r = std::exp(m - v);  // 0 on the first value
              s = s * r + 1.0;
              sd = sd * r + double(d);
              m = v;
            } else {
              double ev = std::exp(v - m);
              s += ev;
              sd += double(d) * ev;
            }
          }
          out[(b * H + y) * W + x] = T(sd / s);
        }
  });
}

}  // namespace ref

namespace {

// (B,1,D,h,w) or (B,D,h,w) -> a (B,D,h,w) view; checks sizes.
Tensor regression_input(const char* op, const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w) {
  STEREORT_CHECK(cost.defined(), "{}: cost must be defined", op);
  STEREORT_CHECK((cost.dim() == 5 && cost.size(1) == 1) || cost.dim() == 4,
                 "{}: cost must be (B,1,D,h,w) or (B,D,h,w), got {}", op, cost.desc());
  STEREORT_CHECK(dtype_is_floating(cost.dtype()), "{}: cost must be floating, got {}", op, cost.desc());
  STEREORT_CHECK(out_d >= 1 && out_h >= 1 && out_w >= 1,
                 "{}: output size (out_d {}, out_h {}, out_w {}) must be positive (cost {})", op, out_d, out_h,
                 out_w, shape_str(cost.shape()));
  Tensor c = cost.dim() == 5 ? cost.squeeze(1) : cost;
  STEREORT_CHECK(c.numel() > 0, "{}: cost {} is empty", op, shape_str(cost.shape()));
  return c;
}

}  // namespace

Tensor disparity_regression_fused(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w) {
  Tensor c = regression_input("disparity_regression_fused", cost, out_d, out_h, out_w).detach().contiguous();
  const int64_t B = c.size(0);
  DType odt = c.dtype() == DType::F64 ? DType::F64 : DType::F32;
  Tensor disp = Tensor::empty({B, out_h, out_w}, odt, c.device());
  if (c.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::disparity_regression_fused_forward(disp, c, out_d, Context::get(c.device())));
  } else {
    ref::disparity_regression_fused_forward(disp, c.to(odt), out_d);
  }
  return disp;
}

// The bin values 0..D-1 on the cost's device. Tensor::arange uploads from the host with a stream synchronisation;
// the training graph runs this regression four times per step, so device copies are cached (never freed: like the
// default contexts they live until exit).
static Tensor regression_bins(int64_t d, DType dt, Device dev) {
  if (!dev.is_cuda()) return Tensor::arange(d, dt, dev);
  static std::mutex mu;
  static auto* cache = new std::map<std::tuple<int64_t, int, int>, Tensor>();
  std::lock_guard<std::mutex> lk(mu);
  Tensor& t = (*cache)[std::make_tuple(d, int(dt), dev.index)];
  if (!t.defined()) t = Tensor::arange(d, dt, dev);
  return t;
}

Tensor disparity_regression_unfused(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w) {
  Tensor c = regression_input("disparity_regression_unfused", cost, out_d, out_h, out_w);  // (B,D,h,w) view
  const DType odt = c.dtype() == DType::F64 ? DType::F64 : DType::F32;  // half costs: fp32 math, fp32 disparity
  c = c.to(odt).unsqueeze(1);                                                                // (B,1,D,h,w)
  Tensor up = interpolate_trilinear(c, out_d, out_h, out_w, /*align_corners=*/false).squeeze(1);  // (B,out_d,H,W)
  Tensor prob = softmax(up, 1);
  Tensor bins = regression_bins(out_d, odt, c.device()).reshape({1, out_d, 1, 1});
  return sum(mul(prob, bins), {1});                                                          // (B,H,W)
}

Tensor disparity_regression(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w) {
  if (needs_grad({cost})) return disparity_regression_unfused(cost, out_d, out_h, out_w);
  return disparity_regression_fused(cost, out_d, out_h, out_w);
}

}  // namespace stereort
