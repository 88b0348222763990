// ops/upsample_convex.cpp — RAFT convex upsampling: argument checks, CPU loops (double), dispatch and autograd.
#include "ops/upsample_convex.h"

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"

namespace stereort {
namespace ref {
namespace {

// Softmax over the 9 logits of sub-pixel s = i*f + j at low-res pixel (y, x): w[k], k = 3*ky + kx.
template <typename T>
void tap_weights(double* w, const T* mask, int64_t b, int64_t s, int64_t y, int64_t x, int64_t ff, int64_t h,
                 int64_t wd) {
  double m = -INFINITY, z = 0;
  for (int64_t k = 0; k < 9; ++k) {
    w[k] = double(mask[((b * 9 * ff + k * ff + s) * h + y) * wd + x]);
    m = std::max(m, w[k]);
  }
  for (int64_t k = 0; k < 9; ++k) z += (w[k] = std::exp(w[k] - m));
  for (int64_t k = 0; k < 9; ++k) w[k] /= z;
}

}  // namespace

void upsample_convex_forward(const Tensor& up, const Tensor& flow, const Tensor& mask, int64_t f) {
  const int64_t B = flow.size(0), C = flow.size(1), h = flow.size(2), wd = flow.size(3), ff = f * f;
  dispatch_float(flow.dtype(), "upsample_convex", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* fl = flow.data<T>();  // (B,C,h,w)
    const T* mk = mask.data<T>();  // (B,9ff,h,w)
    T* o = up.data<T>();           // (B,C,fh,fw)
    double w[9];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < wd; ++x)
          for (int64_t i = 0; i < f; ++i)
            for (int64_t j = 0; j < f; ++j) {
              tap_weights(w, mk, b, i * f + j, y, x, ff, h, wd);
              for (int64_t c = 0; c < C; ++c) {
                double v = 0;
                for (int64_t k = 0; k < 9; ++k) {
                  const int64_t yy = y + k / 3 - 1, xx = x + k % 3 - 1;
                  if (yy >= 0 && yy < h && xx >= 0 && xx < wd) v += w[k] * double(f) * double(fl[((b * C + c) * h + yy) * wd + xx]);
                }
                o[((b * C + c) * f * h + f * y + i) * f * wd + f * x + j] = T(v);
              }
            }
  });
}

void upsample_convex_backward(const Tensor& dflow, const Tensor& dmask, const Tensor& dup, const Tensor& flow,
                              const Tensor& mask, int64_t f) {
  const int64_t B = flow.size(0), C = flow.size(1), h = flow.size(2), wd = flow.size(3), ff = f * f;
  dispatch_float(flow.dtype(), "upsample_convex backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* fl = flow.data<T>();
    const T* mk = mask.data<T>();
    const T* g = dup.data<T>();
    T* dm = dmask.data<T>();
    std::vector<double> df(static_cast<size_t>(flow.numel()), 0.0);
    double w[9], dw[9];
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < wd; ++x)
          for (int64_t i = 0; i < f; ++i)
            for (int64_t j = 0; j < f; ++j) {
              tap_weights(w, mk, b, i * f + j, y, x, ff, h, wd);
              double wdw = 0;
              for (int64_t k = 0; k < 9; ++k) {
                const int64_t yy = y + k / 3 - 1, xx = x + k % 3 - 1;
                dw[k] = 0;
                if (yy < 0 || yy >= h || xx < 0 || xx >= wd) continue;
                for (int64_t c = 0; c < C; ++c) {
                  const double gv = double(g[((b * C + c) * f * h + f * y + i) * f * wd + f * x + j]);
                  const int64_t fi = ((b * C + c) * h + yy) * wd + xx;
                  dw[k] += double(f) * double(fl[fi]) * gv;
                  df[size_t(fi)] += double(f) * w[k] * gv;
                }
                wdw += w[k] * dw[k];
              }
              for (int64_t k = 0; k < 9; ++k)
                dm[((b * 9 * ff + k * ff + i * f + j) * h + y) * wd + x] = T(w[k] * (dw[k] - wdw));
            }
    T* d = dflow.data<T>();
    for (size_t n = 0; n < df.size(); ++n) d[n] = T(df[n]);
  });
}

}  // namespace ref

Tensor upsample_convex(const Tensor& flow, const Tensor& mask, int64_t factor) {
  STEREORT_CHECK(flow.defined() && mask.defined(), "upsample_convex: flow and mask must be defined");
  STEREORT_CHECK(factor >= 1, "upsample_convex: factor must be >= 1, got {}", factor);
  STEREORT_CHECK(flow.dim() == 4, "upsample_convex: flow must be (B,C,h,w), got {}", flow.desc());
  const int64_t B = flow.size(0), C = flow.size(1), h = flow.size(2), w = flow.size(3);
  STEREORT_CHECK(mask.shape() == (Shape{B, 9 * factor * factor, h, w}),
                 "upsample_convex: mask {} must be (B, 9*f*f, h, w) = ({},{},{},{}) for flow {} and factor {}",
                 shape_str(mask.shape()), B, 9 * factor * factor, h, w, shape_str(flow.shape()), factor);
  STEREORT_CHECK(flow.device() == mask.device(), "upsample_convex: flow {} and mask {} are on different devices",
                 flow.desc(), mask.desc());
  STEREORT_CHECK(flow.dtype() == DType::F32 || (flow.dtype() == DType::F64 && !flow.is_cuda()),
                 "upsample_convex: flow must be f32 (f64 on the CPU), got {}; RAFT keeps the flow in fp32",
                 flow.desc());
  STEREORT_CHECK(dtype_is_floating(mask.dtype()), "upsample_convex: mask must be floating, got {}", mask.desc());
  Tensor F = flow.detach().contiguous(), M = mask.detach().contiguous();
  Tensor up = Tensor::empty({B, C, factor * h, factor * w}, flow.dtype(), flow.device());
  if (flow.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::upsample_convex_forward(up, F, M, factor, Context::get(flow.device())));
  } else {
    ref::upsample_convex_forward(up, F, M.to(F.dtype()), factor);
  }
  record("upsample_convex", {flow, mask}, {up}, [F, M, factor](const std::vector<Tensor>& g) {
    Tensor gu = g[0].contiguous();
    Tensor df = Tensor::empty(F.shape(), F.dtype(), F.device()), dm = Tensor::empty(M.shape(), M.dtype(), M.device());
    if (F.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::upsample_convex_backward(df, dm, gu, F, M, factor, Context::get(F.device())));
    } else {
      Tensor dmc = Tensor::empty(M.shape(), F.dtype());
      ref::upsample_convex_backward(df, dmc, gu.to(F.dtype()), F, M.to(F.dtype()), factor);
      dm.copy_(dmc);
    }
    return std::vector<Tensor>{df, dm};
  });
  return up;
}

}  // namespace stereort
