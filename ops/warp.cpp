// ops/warp.cpp — horizontal warp: argument checks, CPU loops (double arithmetic), device dispatch and autograd.
#include "ops/warp.h"

#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"

namespace stereort {
namespace ref {
namespace {

// Left tap index and weight of the right tap of p = x + d; valid = false when both taps are outside (or d is
// non-finite). The fractional part is taken from d alone, as the CUDA kernel does (exact in any precision).
struct Tap {
  int64_t x0;
  double a;
  bool valid;
};
Tap tap_at(int64_t x, double d, int64_t W) {
  const double f = std::floor(d);
  if (!(f >= double(-1 - x) && f <= double(W - 1 - x))) return {0, 0, false};
  return {x + int64_t(f), d - f, true};
}

}  // namespace

void warp_horizontal_forward(const Tensor& out, const Tensor& img, const Tensor& disp) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  dispatch_float(img.dtype(), "warp_horizontal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* I = img.data<T>();   // (B,C,H,W)
    const T* Dp = disp.data<T>(); // (B,H,W)
    T* O = out.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          Tap t = tap_at(x, double(Dp[(b * H + y) * W + x]), W);
          for (int64_t c = 0; c < C; ++c) {
            const T* row = I + ((b * C + c) * H + y) * W;
            double v = 0;
            if (t.valid && t.x0 >= 0) v += (1 - t.a) * double(row[t.x0]);
            if (t.valid && t.x0 + 1 < W) v += t.a * double(row[t.x0 + 1]);
            O[((b * C + c) * H + y) * W + x] = T(v);
          }
        }
  });
}

void warp_horizontal_backward(const Tensor& dimg, const Tensor& ddisp, const Tensor& dout, const Tensor& img,
                              const Tensor& disp) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  dispatch_float(img.dtype(), "warp_horizontal backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* I = img.data<T>();
    const T* Dp = disp.data<T>();
    const T* G = dout.data<T>();
    std::vector<double> di(static_cast<size_t>(img.numel()), 0.0);
    T* dD = ddisp.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          Tap t = tap_at(x, double(Dp[(b * H + y) * W + x]), W);
          double dd = 0;
          for (int64_t c = 0; c < C && t.valid; ++c) {
            const int64_t row = ((b * C + c) * H + y) * W;
            const double g = double(G[row + x]);
            const double i0 = t.x0 >= 0 ? double(I[row + t.x0]) : 0.0;
            const double i1 = t.x0 + 1 < W ? double(I[row + t.x0 + 1]) : 0.0;
            if (t.x0 >= 0) di[size_t(row + t.x0)] += (1 - t.a) * g;
            if (t.x0 + 1 < W) di[size_t(row + t.x0 + 1)] += t.a * g;
            dd += g * (i1 - i0);
          }
          dD[(b * H + y) * W + x] = T(dd);
        }
    T* dI = dimg.data<T>();
    for (size_t i = 0; i < di.size(); ++i) dI[i] = T(di[i]);
  });
}

}  // namespace ref

Tensor warp_horizontal(const Tensor& img, const Tensor& disp) {
  STEREORT_CHECK(img.defined() && disp.defined(), "warp_horizontal: img and disp must be defined");
  STEREORT_CHECK(img.dim() == 4, "warp_horizontal: img must be (B,C,H,W), got {}", img.desc());
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  const bool d4 = disp.dim() == 4;
  STEREORT_CHECK((disp.dim() == 3 && disp.shape() == Shape{B, H, W}) || (d4 && disp.shape() == Shape{B, 1, H, W}),
                 "warp_horizontal: disp {} must be (B,H,W) = ({},{},{}) or (B,1,H,W) to match img {}",
                 shape_str(disp.shape()), B, H, W, shape_str(img.shape()));
  STEREORT_CHECK(img.dtype() == disp.dtype() && img.device() == disp.device(),
                 "warp_horizontal: img {} and disp {} must share dtype and device; cast with .to()", img.desc(),
                 disp.desc());
  STEREORT_CHECK(dtype_is_floating(img.dtype()), "warp_horizontal: img must be floating, got {}", img.desc());
  Tensor I = img.detach().contiguous(), Dd = (d4 ? disp.detach().squeeze(1) : disp.detach()).contiguous();
  Tensor out = Tensor::empty({B, C, H, W}, img.dtype(), img.device());
  const DType cdt = cpu_float_dtype(img.dtype());
  if (img.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::warp_horizontal_forward(out, I, Dd, Context::get(img.device())));
  } else {
    Tensor o = out.dtype() == cdt ? out : Tensor::empty(out.shape(), cdt);
    ref::warp_horizontal_forward(o, I.to(cdt), Dd.to(cdt));
    if (!o.same(out)) out.copy_(o);
  }
  Shape dshape = disp.shape();
  record("warp_horizontal", {img, disp}, {out}, [I, Dd, dshape, cdt](const std::vector<Tensor>& g) {
    Tensor go = g[0].contiguous();
    Tensor di = Tensor::empty(I.shape(), I.dtype(), I.device()), dd = Tensor::empty(Dd.shape(), I.dtype(), I.device());
    if (I.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::warp_horizontal_backward(di, dd, go, I, Dd, Context::get(I.device())));
    } else {
      Tensor dic = Tensor::empty(I.shape(), cdt), ddc = Tensor::empty(Dd.shape(), cdt);
      ref::warp_horizontal_backward(dic, ddc, go.to(cdt), I.to(cdt), Dd.to(cdt));
      di.copy_(dic);
      dd.copy_(ddc);
    }
    return std::vector<Tensor>{di, dd.reshape(dshape)};
  });
  return out;
}

}  // namespace stereort
