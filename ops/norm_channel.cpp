// ops/norm_channel.cpp — per-channel and per-group norms over (B,C,...) maps: batch_norm, group_norm, instance_norm
// (CPU reference, dispatch to cuda/norm_channel.cu, running-stat updates, autograd).
//   x is viewed as (B, C, S) with S the product of the spatial dims. Statistics per channel over n = B·S values
//   (batch_norm) or per (batch, group) over L = (C/G)·S values (group_norm); biased variance to normalise.
//   batch_norm running stats (training, when defined): rm ← (1-m)·rm + m·mean, rv ← (1-m)·rv + m·var·n/(n-1),
//   computed in the statistics' precision and written back in the buffers' dtype (in place, no autograd).
//   Backward, x̂ = (x-mean)·rstd, per channel or group of n values:
//     dx = rstd·(w·dy - mean(w·dy) - x̂·mean(w·dy·x̂))   (training / group_norm: statistics depend on x)
//     dx = rstd·w·dy                                   (batch_norm eval: running statistics are constants)
//     dw = Σ dy·x̂,  db = Σ dy   (per channel, over batch and space).
// CPU: double accumulation, two passes (mean, then Σ(x-mean)²); statistics saved as f64. CUDA: f32 statistics.
#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/norm_util.h"

namespace stereort {

namespace {

// Typed access for the CPU loops (any floating dtype, computed in double).
template <typename F>
void cpu_float_call(DType t, const char* op, F&& f) {
  dispatch_all(t, [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same<T, double>::value || std::is_same<T, float>::value || std::is_same<T, Half>::value ||
                  std::is_same<T, BFloat16>::value) {
      f(tag);
    } else {
      STEREORT_FAIL("{}: floating input required, got {}", op, dtype_name(t));
    }
  });
}

std::vector<double> values_or(const Tensor& t, int64_t n, double fill) {
  return t.defined() ? t.to_vector() : std::vector<double>(static_cast<size_t>(n), fill);
}

// mean[c], var[c] (biased) over { x[(b·C + c)·S + s] : b < B, s < S } — a channel for batch_norm; group_norm calls
// it with B = 1, C = B·G, S = L, where each "channel" is one contiguous group run.
void cpu_stats(const Tensor& x, int64_t B, int64_t C, int64_t S, std::vector<double>& mean, std::vector<double>& var) {
  mean.assign(size_t(C), 0.0);
  var.assign(size_t(C), 0.0);
  double n = double(B) * double(S);
  cpu_float_call(x.dtype(), "norm statistics", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = x.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      double s = 0, v = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < S; ++i) s += to_d(p[(b * C + c) * S + i]);
      double m = s / n;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t i = 0; i < S; ++i) v += (to_d(p[(b * C + c) * S + i]) - m) * (to_d(p[(b * C + c) * S + i]) - m);
      mean[size_t(c)] = m;
      var[size_t(c)] = v / n;
    }
  });
}

// out[r,s] = k1[p]·u[r,s] + k2[p]·v[r,s] + k3[p], p = r mod P (v may be undefined).
void cpu_affine(const Tensor& out, const Tensor& u, const std::vector<double>& k1, const Tensor& v,
                const std::vector<double>& k2, const std::vector<double>& k3, int64_t P, int64_t S) {
  int64_t R = out.numel() / S;
  cpu_float_call(out.dtype(), "norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = out.data<T>();
    const T* up = u.data<T>();
    const T* vp = v.defined() ? v.data<T>() : nullptr;
    for (int64_t r = 0; r < R; ++r) {
      size_t p = size_t(r % P);
      for (int64_t s = 0; s < S; ++s) {
        double y = k1[p] * to_d(up[r * S + s]) + k3[p];
        if (vp) y += k2[p] * to_d(vp[r * S + s]);
        o[r * S + s] = from_d<T>(y);
      }
    }
  });
}

// Σdy and Σdy·(x - mean[c]) per "channel" c of the (B, C, S) view.
void cpu_grad_sums(const Tensor& dy, const Tensor& x, const std::vector<double>& mean, int64_t B, int64_t C,
                   int64_t S, std::vector<double>& sdy, std::vector<double>& sdyx) {
  sdy.assign(size_t(C), 0.0);
  sdyx.assign(size_t(C), 0.0);
  cpu_float_call(dy.dtype(), "norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = dy.data<T>();
    const T* xp = x.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < S; ++i) {
          int64_t k = (b * C + c) * S + i;
          sdy[size_t(c)] += to_d(g[k]);
          sdyx[size_t(c)] += to_d(g[k]) * (to_d(xp[k]) - mean[size_t(c)]);
        }
  });
}

struct Dims {
  int64_t B, C, S;
};
Dims dims_of(const Tensor& x) {
  int64_t B = x.size(0), C = x.size(1);
  return {B, C, B * C > 0 ? x.numel() / (B * C) : 0};
}

}  // namespace

// ---- batch_norm --------------------------------------------------------------------------------------------------
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps) {
  STEREORT_CHECK(x.defined() && x.dim() >= 2, "batch_norm: input must be (B,C,...) with at least 2 dims");
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "batch_norm: input {} must be floating", x.desc());
  Dims d = dims_of(x);
  const char* what = "the channel dim (dim 1)";
  norm_check_param("batch_norm", weight, "weight", d.C, x, what);
  norm_check_param("batch_norm", bias, "bias", d.C, x, what);
  norm_check_param("batch_norm", running_mean, "running_mean", d.C, x, what);
  norm_check_param("batch_norm", running_var, "running_var", d.C, x, what);
  STEREORT_CHECK(running_mean.defined() == running_var.defined(),
                 "batch_norm: give both running_mean and running_var or neither");
  STEREORT_CHECK(training || running_mean.defined(),
                 "batch_norm: eval mode (training=false) needs running_mean and running_var; input {}",
                 shape_str(x.shape()));
  STEREORT_CHECK(!(running_mean.defined() && (running_mean.requires_grad() || running_var.requires_grad())),
                 "batch_norm: running stats are buffers and must not require grad");
  double n = double(d.B) * double(d.S);
  STEREORT_CHECK(!training || n > 1,
                 "batch_norm: expected more than 1 value per channel when training, got input {}; use eval mode or "
                 "a larger batch",
                 shape_str(x.shape()));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  Tensor xd = x.detach().contiguous();
  Tensor mean, rstd;  // saved statistics (f64 CPU, f32 CUDA)
  if (x.is_cuda()) {
    Device dev = x.device();
    Tensor var;
    if (training) {
      mean = Tensor::empty({d.C}, DType::F32, dev);
      var = Tensor::empty({d.C}, DType::F32, dev);
    } else {
      mean = norm_param_f32(running_mean);
      var = norm_param_f32(running_var);
    }
    rstd = Tensor::empty({d.C}, DType::F32, dev);
    STEREORT_CUDA_PATH(cuda::batch_norm_forward(out, mean, var, rstd, xd, norm_param_f32(weight),
                                                norm_param_f32(bias), training, eps, d.B, d.C, d.S,
                                                Context::get(dev)));
    if (training && running_mean.defined()) {
      running_mean.copy_(add(mul(running_mean.detach().to(DType::F32), 1.0 - momentum), mul(mean, momentum)));
      running_var.copy_(add(mul(running_var.detach().to(DType::F32), 1.0 - momentum), mul(var, momentum * n / (n - 1))));
    }
  } else {
    std::vector<double> mv, vv;
    if (training) {
      cpu_stats(xd, d.B, d.C, d.S, mv, vv);
    } else {
      mv = running_mean.to_vector();
      vv = running_var.to_vector();
    }
    std::vector<double> w = values_or(weight, d.C, 1.0), b = values_or(bias, d.C, 0.0), rs(size_t(d.C)),
                        scale(size_t(d.C)), shift(size_t(d.C));
    for (size_t c = 0; c < size_t(d.C); ++c) {
      rs[c] = 1.0 / std::sqrt(vv[c] + eps);
      scale[c] = w[c] * rs[c];
      shift[c] = b[c] - mv[c] * scale[c];
    }
    cpu_affine(out, xd, scale, Tensor(), {}, shift, d.C, d.S);
    if (training && running_mean.defined()) {
      std::vector<double> rm = running_mean.to_vector(), rv = running_var.to_vector();
      for (size_t c = 0; c < size_t(d.C); ++c) {
        rm[c] = (1 - momentum) * rm[c] + momentum * mv[c];
        rv[c] = (1 - momentum) * rv[c] + momentum * vv[c] * n / (n - 1);
      }
      running_mean.copy_(Tensor::from_vector(rm, {d.C}, DType::F64));
      running_var.copy_(Tensor::from_vector(rv, {d.C}, DType::F64));
    }
    mean = Tensor::from_vector(mv, {d.C}, DType::F64);
    rstd = Tensor::from_vector(rs, {d.C}, DType::F64);
  }
  if (!needs_grad({x, weight, bias})) return out;
  bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
       gb = bias.defined() && bias.requires_grad();
  Tensor wd = weight.defined() ? weight.detach() : Tensor();
  record("batch_norm", {x, weight, bias}, {out},
         [xd, wd, mean, rstd, d, training, gx, gw, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor dy = g[0].contiguous();
           Tensor dx = gx ? Tensor::empty(xd.shape(), xd.dtype(), xd.device()) : Tensor();
           if (xd.is_cuda()) {
             Tensor dw = gw ? Tensor::empty({d.C}, DType::F32, xd.device()) : Tensor();
             Tensor db = gb ? Tensor::empty({d.C}, DType::F32, xd.device()) : Tensor();
             STEREORT_CUDA_PATH(cuda::batch_norm_backward(dx, dw, db, dy, xd, mean, rstd, norm_param_f32(wd),
                                                          training, d.B, d.C, d.S, Context::get(xd.device())));
             return {dx, dw, db};
           }
           std::vector<double> mv = mean.to_vector(), rs = rstd.to_vector(), w = values_or(wd, d.C, 1.0), sdy, sdyx;
           cpu_grad_sums(dy, xd, mv, d.B, d.C, d.S, sdy, sdyx);
           double n = double(d.B) * double(d.S);
           std::vector<double> k1(size_t(d.C)), k2(size_t(d.C), 0.0), k3(size_t(d.C), 0.0), dwv(size_t(d.C));
           for (size_t c = 0; c < size_t(d.C); ++c) {
             k1[c] = rs[c] * w[c];
             if (training) {
               double m1 = w[c] * sdy[c] / n, m2 = w[c] * rs[c] * sdyx[c] / n;
               k2[c] = -rs[c] * rs[c] * m2;
               k3[c] = -rs[c] * m1 + rs[c] * rs[c] * m2 * mv[c];
             }
             dwv[c] = rs[c] * sdyx[c];
           }
           if (gx) cpu_affine(dx, dy, k1, training ? xd : Tensor(), k2, k3, d.C, d.S);
           Tensor dw = gw ? Tensor::from_vector(dwv, {d.C}, DType::F64) : Tensor();
           Tensor db = gb ? Tensor::from_vector(sdy, {d.C}, DType::F64) : Tensor();
           return {dx, dw, db};
         });
  return out;
}

// ---- group_norm / instance_norm ----------------------------------------------------------------------------------
namespace {

Tensor group_norm_impl(const char* op, const Tensor& x, int64_t G, const Tensor& weight, const Tensor& bias,
                       double eps) {
  STEREORT_CHECK(x.defined() && x.dim() >= 2, "{}: input must be (B,C,...) with at least 2 dims", op);
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating", op, x.desc());
  Dims d = dims_of(x);
  STEREORT_CHECK(G >= 1 && d.C % G == 0, "{}: {} groups must divide the {} channels of input {}", op, G, d.C,
                 shape_str(x.shape()));
  norm_check_param(op, weight, "weight", d.C, x, "the channel dim (dim 1)");
  norm_check_param(op, bias, "bias", d.C, x, "the channel dim (dim 1)");
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  Tensor xd = x.detach().contiguous();
  int64_t cg = d.C / G, L = cg * d.S;
  Tensor mean, rstd;  // (B·G)
  if (x.is_cuda()) {
    mean = Tensor::empty({d.B * G}, DType::F32, x.device());
    rstd = Tensor::empty({d.B * G}, DType::F32, x.device());
    STEREORT_CUDA_PATH(cuda::group_norm_forward(out, mean, rstd, xd, norm_param_f32(weight), norm_param_f32(bias),
                                                d.B, d.C, G, d.S, eps, Context::get(x.device())));
  } else {
    std::vector<double> mv, vv;
    cpu_stats(xd, 1, d.B * G, L, mv, vv);  // a group of a batch row is one contiguous run
    std::vector<double> w = values_or(weight, d.C, 1.0), b = values_or(bias, d.C, 0.0), rs(mv.size()),
                        scale(size_t(d.B * d.C)), shift(size_t(d.B * d.C));
    for (size_t k = 0; k < rs.size(); ++k) rs[k] = 1.0 / std::sqrt(vv[k] + eps);
    for (int64_t i = 0; i < d.B * d.C; ++i) {
      size_t c = size_t(i % d.C), k = size_t((i / d.C) * G + int64_t(c) / cg);
      scale[size_t(i)] = w[c] * rs[k];
      shift[size_t(i)] = b[c] - mv[k] * scale[size_t(i)];
    }
    cpu_affine(out, xd, scale, Tensor(), {}, shift, d.B * d.C, d.S);
    mean = Tensor::from_vector(mv, {d.B * G}, DType::F64);
    rstd = Tensor::from_vector(rs, {d.B * G}, DType::F64);
  }
  if (!needs_grad({x, weight, bias})) return out;
  bool gx = x.requires_grad(), gw = weight.defined() && weight.requires_grad(),
       gb = bias.defined() && bias.requires_grad();
  Tensor wd = weight.defined() ? weight.detach() : Tensor();
  record(op, {x, weight, bias}, {out},
         [xd, wd, mean, rstd, d, G, cg, L, gx, gw, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor dy = g[0].contiguous();
           Tensor dx = gx ? Tensor::empty(xd.shape(), xd.dtype(), xd.device()) : Tensor();
           if (xd.is_cuda()) {
             Tensor dw = gw ? Tensor::empty({d.C}, DType::F32, xd.device()) : Tensor();
             Tensor db = gb ? Tensor::empty({d.C}, DType::F32, xd.device()) : Tensor();
             STEREORT_CUDA_PATH(cuda::group_norm_backward(dx, dw, db, dy, xd, mean, rstd, norm_param_f32(wd), d.B,
                                                          d.C, G, d.S, Context::get(xd.device())));
             return {dx, dw, db};
           }
           std::vector<double> mv = mean.to_vector(), rs = rstd.to_vector(), w = values_or(wd, d.C, 1.0);
           // Per (b,c): dbs = Σ_s dy, ds = Σ_s dy·(x - mean of its group).
           std::vector<double> mean_bc(size_t(d.B * d.C)), dbs, ds;
           for (int64_t i = 0; i < d.B * d.C; ++i) mean_bc[size_t(i)] = mv[size_t((i / d.C) * G + (i % d.C) / cg)];
           cpu_grad_sums(dy, xd, mean_bc, 1, d.B * d.C, d.S, dbs, ds);
           std::vector<double> k1(size_t(d.B * d.C)), k2(k1.size()), k3(k1.size()), dwv(size_t(d.C), 0.0),
               dbv(size_t(d.C), 0.0);
           for (int64_t b = 0; b < d.B; ++b)
             for (int64_t grp = 0; grp < G; ++grp) {
               size_t k = size_t(b * G + grp);
               double m1 = 0, m2 = 0;
               for (int64_t c = grp * cg; c < (grp + 1) * cg; ++c) {
                 m1 += w[size_t(c)] * dbs[size_t(b * d.C + c)];
                 m2 += w[size_t(c)] * ds[size_t(b * d.C + c)];
                 dwv[size_t(c)] += ds[size_t(b * d.C + c)] * rs[k];
                 dbv[size_t(c)] += dbs[size_t(b * d.C + c)];
               }
               m1 /= double(L);
               m2 = m2 * rs[k] / double(L);
               for (int64_t c = grp * cg; c < (grp + 1) * cg; ++c) {
                 size_t i = size_t(b * d.C + c);
                 k1[i] = rs[k] * w[size_t(c)];
                 k2[i] = -rs[k] * rs[k] * m2;
                 k3[i] = -rs[k] * m1 + rs[k] * rs[k] * m2 * mv[k];
               }
             }
           if (gx) cpu_affine(dx, dy, k1, xd, k2, k3, d.B * d.C, d.S);
           Tensor dw = gw ? Tensor::from_vector(dwv, {d.C}, DType::F64) : Tensor();
           Tensor db = gb ? Tensor::from_vector(dbv, {d.C}, DType::F64) : Tensor();
           return {dx, dw, db};
         });
  return out;
}

}  // namespace

Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps) {
  return group_norm_impl("group_norm", x, groups, weight, bias, eps);
}

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  STEREORT_CHECK(x.defined() && x.dim() >= 3, "instance_norm: input must be (B,C,spatial...) with at least 3 dims, "
                 "got {}", x.defined() ? shape_str(x.shape()) : "undefined");
  return group_norm_impl("instance_norm", x, x.size(1), weight, bias, eps);
}

}  // namespace stereort
