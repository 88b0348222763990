// ops/pool.cpp — argument checks, CPU reference loops (ref::) and autograd nodes for ops/pool.h.
//   Upstream: ATen AvgPoolKernel / MaxPoolKernel (avg_pool2d divisor rule, max "first max, NaN wins").
#include "ops/pool.h"

#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"

namespace stereort {

Pool2dGeom make_pool2d_geom(const char* op, const Tensor& x, const Pool2dParams& p) {
  STEREORT_CHECK(x.defined(), "{}: input is undefined", op);
  STEREORT_CHECK(x.dim() == 4, "{}: input {} must be 4-D (B,C,H,W); unsqueeze a batch dim", op, x.desc());
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating (f32, f64, f16, bf16)", op, x.desc());
  STEREORT_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1,
                 "{}: kernel ({},{}) and stride ({},{}) must be >= 1 (input {})", op, p.kernel_h, p.kernel_w,
                 p.stride_h, p.stride_w, x.desc());
  STEREORT_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w,
                 "{}: padding ({},{}) must be between 0 and half the kernel ({},{}) (input {})", op, p.pad_h, p.pad_w,
                 p.kernel_h, p.kernel_w, x.desc());
  Pool2dGeom g;
  g.nc = x.size(0) * x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.kh = p.kernel_h;
  g.kw = p.kernel_w;
  g.sh = p.stride_h;
  g.sw = p.stride_w;
  g.ph = p.pad_h;
  g.pw = p.pad_w;
  g.count_include_pad = p.count_include_pad;
  int64_t nh = g.h + 2 * g.ph - g.kh, nw = g.w + 2 * g.pw - g.kw;
  g.oh = nh >= 0 ? nh / g.sh + 1 : 0;
  g.ow = nw >= 0 ? nw / g.sw + 1 : 0;
  STEREORT_CHECK(g.oh >= 1 && g.ow >= 1,
                 "{}: input {} is smaller than the kernel ({},{}) with padding ({},{}); the output would be empty", op,
                 x.desc(), g.kh, g.kw, g.ph, g.pw);
  STEREORT_CHECK(g.h * g.w <= std::numeric_limits<int32_t>::max(), "{}: planes of {} exceed 2^31 elements", op,
                 x.desc());
  return g;
}

namespace {

// Window of output (oy, ox): clipped bounds and the avg divisor (ATen avg_pool2d).
struct Window {
  int64_t h0, h1, w0, w1;
  int64_t divisor;
};
Window window_of(const Pool2dGeom& g, int64_t oy, int64_t ox) {
  Window r;
  int64_t hs = oy * g.sh - g.ph, ws = ox * g.sw - g.pw;
  int64_t he = std::min(hs + g.kh, g.h + g.ph), we = std::min(ws + g.kw, g.w + g.pw);
  int64_t pool_size = (he - hs) * (we - ws);
  r.h0 = std::max<int64_t>(hs, 0);
  r.w0 = std::max<int64_t>(ws, 0);
  r.h1 = std::min(he, g.h);
  r.w1 = std::min(we, g.w);
  r.divisor = g.count_include_pad ? pool_size : (r.h1 - r.h0) * (r.w1 - r.w0);
  return r;
}

// Runs `f` on F32/F64 CPU tensors; 16-bit inputs go through f32 and the outputs in `outs` are cast back.
template <typename F>
void cpu_float_call(const std::vector<Tensor>& outs, const std::vector<Tensor>& ins, F&& f) {
  bool half = !ins.empty() && dtype_is_half(ins[0].dtype());
  if (!half) {
    f(outs, ins);
    return;
  }
  std::vector<Tensor> o32, i32;
  for (const Tensor& t : ins) i32.push_back(dtype_is_half(t.dtype()) ? t.to(DType::F32) : t);
  for (const Tensor& t : outs)
    o32.push_back(t.defined() && dtype_is_half(t.dtype()) ? Tensor::empty(t.shape(), DType::F32) : t);
  f(o32, i32);
  for (size_t i = 0; i < outs.size(); ++i)
    if (outs[i].defined() && !o32[i].same(outs[i])) outs[i].copy_(o32[i]);
}

}  // namespace

namespace ref {

void avg_pool2d_forward(const Tensor& out, const Tensor& x, const Pool2dGeom& g) {
  dispatch_float(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    for (int64_t n = 0; n < g.nc; ++n)
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          Window r = window_of(g, oy, ox);
          double acc = 0;
          for (int64_t y = r.h0; y < r.h1; ++y)
            for (int64_t xx = r.w0; xx < r.w1; ++xx) acc += double(xp[(n * g.h + y) * g.w + xx]);
          op[(n * g.oh + oy) * g.ow + ox] = T(acc / double(r.divisor));
        }
  });
}

void avg_pool2d_backward(const Tensor& gx, const Tensor& gout, const Pool2dGeom& g) {
  dispatch_float(gout.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = gout.data<T>();
    std::vector<double> acc(static_cast<size_t>(g.nc * g.h * g.w), 0.0);
    for (int64_t n = 0; n < g.nc; ++n)
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          Window r = window_of(g, oy, ox);
          double v = double(gp[(n * g.oh + oy) * g.ow + ox]) / double(r.divisor);
          for (int64_t y = r.h0; y < r.h1; ++y)
            for (int64_t xx = r.w0; xx < r.w1; ++xx) acc[size_t((n * g.h + y) * g.w + xx)] += v;
        }
    T* o = gx.data<T>();
    for (size_t i = 0; i < acc.size(); ++i) o[i] = T(acc[i]);
  });
}

void max_pool2d_forward(const Tensor& out, const Tensor& idx, const Tensor& x, const Pool2dGeom& g) {
  dispatch_float(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    int32_t* ip = idx.defined() ? idx.data<int32_t>() : nullptr;
    for (int64_t n = 0; n < g.nc; ++n)
      for (int64_t oy = 0; oy < g.oh; ++oy)
        for (int64_t ox = 0; ox < g.ow; ++ox) {
          Window r = window_of(g, oy, ox);
          T best = -std::numeric_limits<T>::infinity();
          int64_t arg = r.h0 * g.w + r.w0;
          for (int64_t y = r.h0; y < r.h1; ++y)
            for (int64_t xx = r.w0; xx < r.w1; ++xx) {
              T v = xp[(n * g.h + y) * g.w + xx];
              if (v > best || std::isnan(v)) {
                best = v;
                arg = y * g.w + xx;
              }
            }
          op[(n * g.oh + oy) * g.ow + ox] = best;
          if (ip) ip[(n * g.oh + oy) * g.ow + ox] = int32_t(arg);
        }
  });
}

void max_pool2d_backward(const Tensor& gx, const Tensor& gout, const Tensor& idx, const Pool2dGeom& g) {
  dispatch_float(gout.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = gout.data<T>();
    const int32_t* ip = idx.data<int32_t>();
    std::vector<double> acc(static_cast<size_t>(g.nc * g.h * g.w), 0.0);
    for (int64_t n = 0; n < g.nc; ++n)
      for (int64_t o = 0; o < g.oh * g.ow; ++o)
        acc[size_t(n * g.h * g.w + ip[n * g.oh * g.ow + o])] += double(gp[n * g.oh * g.ow + o]);
    T* op = gx.data<T>();
    for (size_t i = 0; i < acc.size(); ++i) op[i] = T(acc[i]);
  });
}

}  // namespace ref

Tensor avg_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  Pool2dGeom g = make_pool2d_geom("avg_pool2d", x_in, p);
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({x.size(0), x.size(1), g.oh, g.ow}, x.dtype(), x.device());
  if (out.numel() > 0) {
    if (x.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::avg_pool2d_forward(out, x, g, Context::get(x.device())));
    } else {
      cpu_float_call({out}, {x}, [&](const std::vector<Tensor>& o, const std::vector<Tensor>& i) {
        ref::avg_pool2d_forward(o[0], i[0], g);
      });
    }
  }
  Shape in_shape = x.shape();
  record("avg_pool2d", {x_in}, {out}, [g, in_shape](const std::vector<Tensor>& gr) -> std::vector<Tensor> {
    Tensor go = gr[0].contiguous();
    Tensor gx = Tensor::empty(in_shape, go.dtype(), go.device());
    if (gx.numel() == 0) return {gx};
    if (go.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::avg_pool2d_backward(gx, go, g, Context::get(go.device())));
    } else {
      cpu_float_call({gx}, {go}, [&](const std::vector<Tensor>& o, const std::vector<Tensor>& i) {
        ref::avg_pool2d_backward(o[0], i[0], g);
      });
    }
    return {gx};
  });
  return out;
}

Tensor max_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  Pool2dGeom g = make_pool2d_geom("max_pool2d", x_in, p);
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty({x.size(0), x.size(1), g.oh, g.ow}, x.dtype(), x.device());
  Tensor idx = needs_grad({x_in}) ? Tensor::empty(out.shape(), DType::I32, x.device()) : Tensor();
  if (out.numel() > 0) {
    if (x.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::max_pool2d_forward(out, idx, x, g, Context::get(x.device())));
    } else {
      cpu_float_call({out}, {x}, [&](const std::vector<Tensor>& o, const std::vector<Tensor>& i) {
        ref::max_pool2d_forward(o[0], idx, i[0], g);
      });
    }
  }
  Shape in_shape = x.shape();
  record("max_pool2d", {x_in}, {out}, [g, in_shape, idx](const std::vector<Tensor>& gr) -> std::vector<Tensor> {
    Tensor go = gr[0].contiguous();
    Tensor gx = Tensor::empty(in_shape, go.dtype(), go.device());
    if (gx.numel() == 0) return {gx};
    if (go.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::max_pool2d_backward(gx, go, idx, g, Context::get(go.device())));
    } else {
      cpu_float_call({gx}, {go}, [&](const std::vector<Tensor>& o, const std::vector<Tensor>& i) {
        ref::max_pool2d_backward(o[0], i[0], idx, g);
      });
    }
    return {gx};
  });
  return out;
}

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding, bool count_include_pad) {
  return avg_pool2d(x, Pool2dParams{kernel, kernel, stride, stride, padding, padding, count_include_pad});
}

Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding) {
  return max_pool2d(x, Pool2dParams{kernel, kernel, stride, stride, padding, padding, true});
}

}  // namespace stereort
