// ops/norm.cpp — row norms over the last dim: layer_norm and rms_norm_gated (CPU reference, dispatch, autograd).
//   Both fold x to (R,C) rows (contiguous). The forward saves per-row statistics (mean, rstd; f32, or f64 for f64
//   inputs) only when a gradient will be needed; the backward recomputes x̂ from them.
//   layer_norm backward, per row (x̂ = (x-mean)·rstd, ĝ = dout·w):
//     dx = rstd · (ĝ - mean(ĝ) - x̂ · mean(ĝ·x̂));   dw = Σ_rows dout·x̂;   db = Σ_rows dout.
//   rms_norm_gated backward (g = y·silu(z), ĝ = g·rstd, d = dout·w):
//     dg = rstd · (d - ĝ · mean(d·ĝ));  dy = dg·silu(z);  dz = dg·y·σ(z)·(1 + z·(1-σ(z)));  dw = Σ_rows dout·ĝ.
// CPU loops accumulate in double; f16/bf16 inputs are widened to f32 first and rounded once at the end.
#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/norm.h"
#include "ops/norm_util.h"

namespace stereort {

namespace {

template <typename T>
void cpu_layer_norm_forward(T* out, T* mean, T* rstd, const T* x, const T* w, const T* b, int64_t R, int64_t C,
                            double eps) {
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + r * C;
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += double(xr[c]);
    double mu = s / double(C), v = 0;
    for (int64_t c = 0; c < C; ++c) v += (double(xr[c]) - mu) * (double(xr[c]) - mu);
    double rs = 1.0 / std::sqrt(v / double(C) + eps);
    T* orow = out + r * C;
    for (int64_t c = 0; c < C; ++c) {
      double y = (double(xr[c]) - mu) * rs;
      if (w) y *= double(w[c]);
      if (b) y += double(b[c]);
      orow[c] = T(y);
    }
    if (mean) mean[r] = T(mu);
    if (rstd) rstd[r] = T(rs);
  }
}

template <typename T>
void cpu_layer_norm_backward(T* dx, double* dw, double* db, const T* dy, const T* x, const T* mean, const T* rstd,
                             const T* w, int64_t R, int64_t C) {
  for (int64_t r = 0; r < R; ++r) {
    const T* xr = x + r * C;
    const T* gr = dy + r * C;
    double mu = double(mean[r]), rs = double(rstd[r]), s1 = 0, s2 = 0;
    for (int64_t c = 0; c < C; ++c) {
      double xh = (double(xr[c]) - mu) * rs, gh = double(gr[c]) * (w ? double(w[c]) : 1.0);
      s1 += gh;
      s2 += gh * xh;
      if (dw) dw[c] += double(gr[c]) * xh;
      if (db) db[c] += double(gr[c]);
    }
    if (!dx) continue;
    s1 /= double(C);
    s2 /= double(C);
    for (int64_t c = 0; c < C; ++c) {
      double xh = (double(xr[c]) - mu) * rs, gh = double(gr[c]) * (w ? double(w[c]) : 1.0);
      dx[r * C + c] = T(rs * (gh - s1 - xh * s2));
    }
  }
}

template <typename T>
void cpu_rms_norm_gated_forward(T* out, T* rstd, const T* y, const T* z, const T* w, int64_t R, int64_t C,
                                double eps) {
  std::vector<double> g(static_cast<size_t>(C), 0.0);
  for (int64_t r = 0; r < R; ++r) {
    double ss = 0;
    for (int64_t c = 0; c < C; ++c) {
      double zv = double(z[r * C + c]);
      g[size_t(c)] = double(y[r * C + c]) * zv / (1.0 + std::exp(-zv));
      ss += g[size_t(c)] * g[size_t(c)];
    }
    double rs = 1.0 / std::sqrt(ss / double(C) + eps);
    for (int64_t c = 0; c < C; ++c) out[r * C + c] = T(g[size_t(c)] * rs * double(w[c]));
    if (rstd) rstd[r] = T(rs);
  }
}

template <typename T>
void cpu_rms_norm_gated_backward(T* dy, T* dz, double* dw, const T* dout, const T* y, const T* z, const T* rstd,
                                 const T* w, int64_t R, int64_t C) {
  std::vector<double> gh(static_cast<size_t>(C)), d(static_cast<size_t>(C)), sg(static_cast<size_t>(C));
  for (int64_t r = 0; r < R; ++r) {
    double rs = double(rstd[r]), s = 0;
    for (int64_t c = 0; c < C; ++c) {
      size_t k = size_t(c);
      double zv = double(z[r * C + c]);
      sg[k] = 1.0 / (1.0 + std::exp(-zv));
      gh[k] = double(y[r * C + c]) * zv * sg[k] * rs;
      d[k] = double(dout[r * C + c]) * double(w[c]);
      s += d[k] * gh[k];
      if (dw) dw[c] += double(dout[r * C + c]) * gh[k];
    }
    s /= double(C);
    for (int64_t c = 0; c < C; ++c) {
      size_t k = size_t(c);
      double zv = double(z[r * C + c]), dg = rs * (d[k] - gh[k] * s);
      if (dy) dy[r * C + c] = T(dg * zv * sg[k]);
      if (dz) dz[r * C + c] = T(dg * double(y[r * C + c]) * sg[k] * (1.0 + zv * (1.0 - sg[k])));
    }
  }
}

}  // namespace

// ---- layer_norm --------------------------------------------------------------------------------------------------
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  STEREORT_CHECK(x.defined() && x.dim() >= 1, "layer_norm: input must have at least 1 dim (...,C)");
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "layer_norm: input {} must be floating", x.desc());
  int64_t C = x.size(-1);
  norm_check_param("layer_norm", weight, "weight", C, x, "the last dim of the input (channel-last layout)");
  norm_check_param("layer_norm", bias, "bias", C, x, "the last dim of the input (channel-last layout)");
  int64_t R = C > 0 ? x.numel() / C : 0;
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  Tensor xd = x.detach().contiguous();
  bool grad = needs_grad({x, weight, bias});
  DType sdt = norm_stat_dtype(x.dtype());
  Tensor mean = grad ? Tensor::empty({R}, sdt, x.device()) : Tensor();
  Tensor rstd = grad ? Tensor::empty({R}, sdt, x.device()) : Tensor();
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::layer_norm_forward(out, mean, rstd, xd, norm_param_f32(weight), norm_param_f32(bias),
                                                eps, Context::get(x.device())));
  } else {
    DType ct = cpu_float_dtype(x.dtype());
    Tensor oc = ct == x.dtype() ? out : Tensor::empty(x.shape(), ct);
    Tensor xc = xd.to(ct), wc = norm_param_as(weight, ct), bc = norm_param_as(bias, ct);
    dispatch_float(ct, "layer_norm", [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu_layer_norm_forward<T>(oc.data<T>(), grad ? mean.data<T>() : nullptr, grad ? rstd.data<T>() : nullptr,
                                xc.data<T>(), wc.defined() ? wc.data<T>() : nullptr,
                                bc.defined() ? bc.data<T>() : nullptr, R, C, eps);
    });
    if (!oc.same(out)) out.copy_(oc);
  }
  if (!grad) return out;
  bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
       gb = bias.defined() && bias.requires_grad();
  Tensor wd = weight.defined() ? weight.detach() : Tensor();
  record("layer_norm", {x, weight, bias}, {out},
         [xd, wd, mean, rstd, R, C, gx, gw, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor dy = g[0].contiguous();
           Tensor dx = gx ? Tensor::empty(xd.shape(), xd.dtype(), xd.device()) : Tensor();
           Tensor dw, db;
           if (xd.is_cuda()) {
             dw = gw ? Tensor::empty({C}, DType::F32, xd.device()) : Tensor();
             db = gb ? Tensor::empty({C}, DType::F32, xd.device()) : Tensor();
             STEREORT_CUDA_PATH(cuda::layer_norm_backward(dx, dw, db, dy, xd, mean, rstd, norm_param_f32(wd),
                                                          Context::get(xd.device())));
             return {dx, dw, db};
           }
           DType ct = cpu_float_dtype(xd.dtype());
           Tensor dyc = dy.to(ct), xc = xd.to(ct), wc = norm_param_as(wd, ct);
           Tensor dxc = gx ? Tensor::empty(xd.shape(), ct) : Tensor();
           std::vector<double> dwv(gw ? size_t(C) : 0, 0.0), dbv(gb ? size_t(C) : 0, 0.0);
           dispatch_float(ct, "layer_norm backward", [&](auto tag) {
             using T = typename decltype(tag)::type;
             cpu_layer_norm_backward<T>(gx ? dxc.data<T>() : nullptr, gw ? dwv.data() : nullptr,
                                        gb ? dbv.data() : nullptr, dyc.data<T>(), xc.data<T>(), mean.data<T>(),
                                        rstd.data<T>(), wc.defined() ? wc.data<T>() : nullptr, R, C);
           });
           if (gx) dx.copy_(dxc);
           if (gw) dw = Tensor::from_vector(dwv, {C}, ct);
           if (gb) db = Tensor::from_vector(dbv, {C}, ct);
           return {dx, dw, db};
         });
  return out;
}

// ---- rms_norm_gated ----------------------------------------------------------------------------------------------
Tensor rms_norm_gated(const Tensor& y, const Tensor& z, const Tensor& weight, double eps) {
  STEREORT_CHECK(y.defined() && z.defined() && weight.defined(),
                 "rms_norm_gated: y, z and weight must all be defined (norm_before_gate=False, weight-only form)");
  STEREORT_CHECK(y.dim() >= 1 && dtype_is_floating(y.dtype()), "rms_norm_gated: y {} must be floating, >= 1-D",
                 y.desc());
  STEREORT_CHECK(z.shape() == y.shape(), "rms_norm_gated: gate z {} must have the shape of y {}",
                 shape_str(z.shape()), shape_str(y.shape()));
  STEREORT_CHECK(z.dtype() == y.dtype() && z.device() == y.device(), "rms_norm_gated: y {} and z {} differ",
                 y.desc(), z.desc());
  int64_t C = y.size(-1);
  norm_check_param("rms_norm_gated", weight, "weight", C, y, "the last dim of y");
  int64_t R = C > 0 ? y.numel() / C : 0;
  Tensor out = Tensor::empty(y.shape(), y.dtype(), y.device());
  if (y.numel() == 0) return out;
  Tensor yd = y.detach().contiguous(), zd = z.detach().contiguous();
  bool grad = needs_grad({y, z, weight});
  Tensor rstd = grad ? Tensor::empty({R}, norm_stat_dtype(y.dtype()), y.device()) : Tensor();
  if (y.is_cuda()) {
    STEREORT_CUDA_PATH(
        cuda::rms_norm_gated_forward(out, rstd, yd, zd, norm_param_f32(weight), eps, Context::get(y.device())));
  } else {
    DType ct = cpu_float_dtype(y.dtype());
    Tensor oc = ct == y.dtype() ? out : Tensor::empty(y.shape(), ct);
    Tensor yc = yd.to(ct), zc = zd.to(ct), wc = norm_param_as(weight, ct);
    dispatch_float(ct, "rms_norm_gated", [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu_rms_norm_gated_forward<T>(oc.data<T>(), grad ? rstd.data<T>() : nullptr, yc.data<T>(), zc.data<T>(),
                                    wc.data<T>(), R, C, eps);
    });
    if (!oc.same(out)) out.copy_(oc);
  }
  if (!grad) return out;
  bool gy = y.requires_grad(), gz = z.requires_grad(), gw = weight.requires_grad();
  Tensor wd = weight.detach();
  record("rms_norm_gated", {y, z, weight}, {out},
         [yd, zd, wd, rstd, R, C, gy, gz, gw](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor dout = g[0].contiguous();
           Tensor dy = gy ? Tensor::empty(yd.shape(), yd.dtype(), yd.device()) : Tensor();
           Tensor dz = gz ? Tensor::empty(yd.shape(), yd.dtype(), yd.device()) : Tensor();
           Tensor dw;
           if (yd.is_cuda()) {
             dw = gw ? Tensor::empty({C}, DType::F32, yd.device()) : Tensor();
             STEREORT_CUDA_PATH(cuda::rms_norm_gated_backward(dy, dz, dw, dout, yd, zd, rstd, norm_param_f32(wd),
                                                              Context::get(yd.device())));
             return {dy, dz, dw};
           }
           DType ct = cpu_float_dtype(yd.dtype());
           Tensor dc = dout.to(ct), yc = yd.to(ct), zc = zd.to(ct), wc = norm_param_as(wd, ct);
           Tensor dyc = gy ? Tensor::empty(yd.shape(), ct) : Tensor();
           Tensor dzc = gz ? Tensor::empty(yd.shape(), ct) : Tensor();
           std::vector<double> dwv(gw ? size_t(C) : 0, 0.0);
           dispatch_float(ct, "rms_norm_gated backward", [&](auto tag) {
             using T = typename decltype(tag)::type;
             cpu_rms_norm_gated_backward<T>(gy ? dyc.data<T>() : nullptr, gz ? dzc.data<T>() : nullptr,
                                            gw ? dwv.data() : nullptr, dc.data<T>(), yc.data<T>(), zc.data<T>(),
                                            rstd.data<T>(), wc.data<T>(), R, C);
           });
           if (gy) dy.copy_(dyc);
           if (gz) dz.copy_(dzc);
           if (gw) dw = Tensor::from_vector(dwv, {C}, ct);
           return {dy, dz, dw};
         });
  return out;
}

}  // namespace stereort
