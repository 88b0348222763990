// ops/regression.cpp — soft-argmin regression: argument checks, the fused CPU loop (double accumulation, online
// softmax, one pixel at a time), device dispatch, and the choice between the fused and the unfused path.
#include "ops/regression.h"

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"

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

// Materialising pieces of the unfused path (CPU): the trilinear volume, its adjoint, and the soft-argmin.
static void upsample_trilinear_forward(const Tensor& up, const Tensor& cost) {
  const int64_t B = cost.size(0), D = cost.size(1), h = cost.size(2), w = cost.size(3);
  const int64_t OD = up.size(1), H = up.size(2), W = up.size(3);
  dispatch_float(cost.dtype(), "disparity_regression_unfused", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* c = cost.data<T>();  // (B,D,h,w)
    T* u = up.data<T>();          // (B,OD,H,W)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < OD; ++d) {
        LinearTap td = linear_tap_align_false(d, D, OD);
        for (int64_t y = 0; y < H; ++y) {
          LinearTap ty = linear_tap_align_false(y, h, H);
          for (int64_t x = 0; x < W; ++x) {
            LinearTap tx = linear_tap_align_false(x, w, W);
            auto at = [&](int64_t k, int64_t i, int64_t j) { return double(c[((b * D + k) * h + i) * w + j]); };
            auto plane = [&](int64_t k) {
              return ty.w0 * (tx.w0 * at(k, ty.i0, tx.i0) + tx.w1 * at(k, ty.i0, tx.i1)) +
                     ty.w1 * (tx.w0 * at(k, ty.i1, tx.i0) + tx.w1 * at(k, ty.i1, tx.i1));
            };
            u[((b * OD + d) * H + y) * W + x] = T(td.w0 * plane(td.i0) + td.w1 * plane(td.i1));
          }
        }
      }
  });
}

// dcost = adjoint of upsample_trilinear_forward applied to dup (scatter form; the CPU runs serially).
static void upsample_trilinear_backward(const Tensor& dcost, const Tensor& dup) {
  const int64_t B = dcost.size(0), D = dcost.size(1), h = dcost.size(2), w = dcost.size(3);
  const int64_t OD = dup.size(1), H = dup.size(2), W = dup.size(3);
  dispatch_float(dcost.dtype(), "disparity_regression_unfused backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = dup.data<T>();
    std::vector<double> acc(static_cast<size_t>(B * D * h * w), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t d = 0; d < OD; ++d) {
        LinearTap td = linear_tap_align_false(d, D, OD);
        for (int64_t y = 0; y < H; ++y) {
          LinearTap ty = linear_tap_align_false(y, h, H);
          for (int64_t x = 0; x < W; ++x) {
            LinearTap tx = linear_tap_align_false(x, w, W);
            double v = double(g[((b * OD + d) * H + y) * W + x]);
            const int64_t ks[2] = {td.i0, td.i1}, is[2] = {ty.i0, ty.i1}, js[2] = {tx.i0, tx.i1};
            const double wk[2] = {td.w0, td.w1}, wi[2] = {ty.w0, ty.w1}, wj[2] = {tx.w0, tx.w1};
            for (int a = 0; a < 2; ++a)
              for (int e = 0; e < 2; ++e)
                for (int f = 0; f < 2; ++f)
                  acc[size_t(((b * D + ks[a]) * h + is[e]) * w + js[f])] += wk[a] * wi[e] * wj[f] * v;
          }
        }
      }
    T* o = dcost.data<T>();
    for (size_t i = 0; i < acc.size(); ++i) o[i] = T(acc[i]);
  });
}

}  // namespace ref

namespace {

// (B,1,D,h,w) or (B,D,h,w) -> contiguous (B,D,h,w); checks sizes.
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

Tensor disparity_regression_unfused(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w) {
  Tensor c5 = regression_input("disparity_regression_unfused", cost, out_d, out_h, out_w);
  Shape cshape = cost.shape();
  DType cdt = cost.dtype();
  DType odt = cdt == DType::F64 ? DType::F64 : DType::F32;
  Tensor c = c5.detach().contiguous().to(odt);
  const int64_t B = c.size(0);
  STEREORT_CHECK(!c.is_cuda(), "disparity_regression_unfused: CUDA path not built yet");
  Tensor up = Tensor::empty({B, out_d, out_h, out_w}, odt);
  ref::upsample_trilinear_forward(up, c);
  // softmax over d and the weighted sum, in double
  Tensor prob = Tensor::empty(up.shape(), odt), disp = Tensor::empty({B, out_h, out_w}, odt);
  dispatch_float(odt, "disparity_regression_unfused", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* u = up.data<T>();
    T* p = prob.data<T>();
    T* o = disp.data<T>();
    const int64_t HW = out_h * out_w;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t px = 0; px < HW; ++px) {
        const T* ub = u + b * out_d * HW + px;
        T* pb = p + b * out_d * HW + px;
        double m = -INFINITY, s = 0, sd = 0;
        for (int64_t d = 0; d < out_d; ++d) m = std::max(m, double(ub[d * HW]));
        for (int64_t d = 0; d < out_d; ++d) s += std::exp(double(ub[d * HW]) - m);
        for (int64_t d = 0; d < out_d; ++d) {
          double pd = std::exp(double(ub[d * HW]) - m) / s;
          pb[d * HW] = T(pd);
          sd += double(d) * pd;
        }
        o[b * HW + px] = T(sd);
      }
  });
  Tensor dd = disp.detach();
  record("disparity_regression_unfused", {cost}, {disp}, [prob, dd, cshape, cdt](const std::vector<Tensor>& g) {
    const int64_t B = prob.size(0), OD = prob.size(1), HW = prob.size(2) * prob.size(3);
    Tensor gd = g[0].contiguous().to(prob.dtype());
    Tensor dup = Tensor::empty(prob.shape(), prob.dtype());
    dispatch_float(prob.dtype(), "disparity_regression_unfused backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T *p = prob.data<T>(), *o = dd.data<T>(), *gg = gd.data<T>();
      T* du = dup.data<T>();
      // d disp / d c~_d = p_d (d - disp)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t px = 0; px < HW; ++px)
          for (int64_t d = 0; d < OD; ++d) {
            int64_t i = (b * OD + d) * HW + px;
            du[i] = T(double(p[i]) * (double(d) - double(o[b * HW + px])) * double(gg[b * HW + px]));
          }
    });
    Shape c4 = cshape.size() == 5 ? Shape{cshape[0], cshape[2], cshape[3], cshape[4]} : cshape;
    Tensor dc = Tensor::empty(c4, prob.dtype());
    ref::upsample_trilinear_backward(dc, dup);
    return std::vector<Tensor>{dc.reshape(cshape).to(cdt)};
  });
  return disp;
}

Tensor disparity_regression(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w) {
  if (needs_grad({cost})) return disparity_regression_unfused(cost, out_d, out_h, out_w);
  return disparity_regression_fused(cost, out_d, out_h, out_w);
}

}  // namespace stereort
