// ops/conv1d_causal.cpp — causal depthwise conv1d: checks, CPU reference (double), autograd, device dispatch.
#include "ops/conv1d_causal.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/reduce.h"

namespace stereort {

namespace {

struct ConvDims {
  int64_t B, L, C, K;
};

ConvDims check_args(const Tensor& x, const Tensor& w, const Tensor& bias, const char* op) {
  STEREORT_CHECK(x.defined() && x.dim() == 3, "{}: x {} must be (B,L,C) channel-last", op,
                 x.defined() ? x.desc() : std::string("undefined"));
  ConvDims d{x.size(0), x.size(1), x.size(2), 0};
  STEREORT_CHECK(w.defined() && ((w.dim() == 3 && w.size(1) == 1) || w.dim() == 2) && w.size(0) == d.C,
                 "{}: weight {} must be (C,1,K) or (C,K) with C = {} (x {}); a depthwise Conv1d(C, C, K, groups=C) "
                 "weight", op, w.defined() ? w.desc() : std::string("undefined"), d.C, shape_str(x.shape()));
  d.K = w.size(-1);
  STEREORT_CHECK(d.K >= 1, "{}: kernel size must be >= 1, weight {}", op, w.desc());
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: x {} must be floating", op, x.desc());
  auto ok_dtype = [&](const Tensor& t) { return t.dtype() == x.dtype() || t.dtype() == DType::F32; };
  STEREORT_CHECK(ok_dtype(w), "{}: weight {} must have x's dtype ({}) or f32", op, w.desc(), dtype_name(x.dtype()));
  STEREORT_CHECK(w.device() == x.device(), "{}: weight {} and x {} are on different devices", op, w.desc(), x.desc());
  if (bias.defined()) {
    STEREORT_CHECK(bias.shape() == Shape({d.C}), "{}: bias {} must be (C) = ({})", op, bias.desc(), d.C);
    STEREORT_CHECK(ok_dtype(bias), "{}: bias {} must have x's dtype ({}) or f32", op, bias.desc(),
                   dtype_name(x.dtype()));
    STEREORT_CHECK(bias.device() == x.device(), "{}: bias {} and x {} are on different devices", op, bias.desc(),
                   x.desc());
  }
  return d;
}

double silu(double v) { return v / (1.0 + std::exp(-v)); }
double silu_grad(double v) {
  double s = 1.0 / (1.0 + std::exp(-v));
  return s * (1.0 + v * (1.0 - s));
}

// pre[b,t,c] in double (x, w as row-major double vectors: x[(b*L+t)*C+c], w[c*K+j]).
std::vector<double> pre_activation(const ConvDims& d, const std::vector<double>& x, const std::vector<double>& w,
                                   const std::vector<double>& bias) {
  std::vector<double> pre(x.size());
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.L; ++t)
      for (int64_t c = 0; c < d.C; ++c) {
        double acc = bias.empty() ? 0.0 : bias[size_t(c)];
        for (int64_t j = 0; j < d.K; ++j) {
          int64_t s = t - d.K + 1 + j;
          if (s >= 0) acc += w[size_t(c * d.K + j)] * x[size_t((b * d.L + s) * d.C + c)];
        }
        pre[size_t((b * d.L + t) * d.C + c)] = acc;
      }
  return pre;
}

struct ConvGrads {
  Tensor dx, dw, dbias;
};

ConvGrads cpu_backward(const ConvDims& d, const Tensor& x, const Tensor& w, const Tensor& bias, bool silu_on,
                       const Tensor& dout) {
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), bv = bias.defined() ? bias.to_vector() : std::vector<double>();
  std::vector<double> e = dout.to_vector();
  if (silu_on) {
    std::vector<double> pre = pre_activation(d, xv, wv, bv);
    for (size_t i = 0; i < e.size(); ++i) e[i] *= silu_grad(pre[i]);
  }
  std::vector<double> dx(xv.size(), 0.0), dw(wv.size(), 0.0), db(size_t(d.C), 0.0);
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.L; ++t)
      for (int64_t c = 0; c < d.C; ++c) {
        double et = e[size_t((b * d.L + t) * d.C + c)];
        db[size_t(c)] += et;
        for (int64_t j = 0; j < d.K; ++j) {
          int64_t s = t - d.K + 1 + j;  // the input step weight j reads for output t
          if (s < 0) continue;
          dw[size_t(c * d.K + j)] += et * xv[size_t((b * d.L + s) * d.C + c)];
          dx[size_t((b * d.L + s) * d.C + c)] += wv[size_t(c * d.K + j)] * et;
        }
      }
  ConvGrads g;
  g.dx = Tensor::from_vector(dx, x.shape(), x.dtype(), x.device());
  g.dw = Tensor::from_vector(dw, w.shape(), w.dtype(), w.device());
  if (bias.defined()) g.dbias = Tensor::from_vector(db, bias.shape(), bias.dtype(), bias.device());
  return g;
}

}  // namespace

namespace ref {
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_on) {
  ConvDims d = check_args(x, weight, bias, "causal_conv1d");
  std::vector<double> pre = pre_activation(d, x.to_vector(), weight.to_vector(),
                                           bias.defined() ? bias.to_vector() : std::vector<double>());
  if (silu_on)
    for (double& v : pre) v = silu(v);
  return Tensor::from_vector(pre, x.shape(), x.dtype(), x.device());
}
}  // namespace ref

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu_on) {
  const ConvDims d = check_args(x, weight, bias, "causal_conv1d");
  Tensor out;
  if (x.is_cuda()) {
    STEREORT_CHECK(x.dtype() != DType::F64 && d.K <= 4,
                   "causal_conv1d: the CUDA kernel takes f32/f16/bf16 x and kernel sizes 1..4 (Mamba's d_conv); got "
                   "x {} and weight {}", x.desc(), weight.desc());
    STEREORT_CHECK(x.stride(2) == 1, "causal_conv1d: x {} needs unit stride over channels (strides {}); call "
                   ".contiguous()", x.desc(), shape_str(x.strides()));
    out = Tensor::empty(x.shape(), x.dtype(), x.device());
    Tensor w2 = weight.detach().reshape({d.C, d.K}).to(DType::F32).contiguous();
    Tensor b32 = bias.defined() ? bias.detach().to(DType::F32).contiguous() : Tensor();
    STEREORT_CUDA_PATH(cuda::causal_conv1d_forward(out, x.detach(), w2, b32, silu_on, Context::get(x.device())));
  } else {
    out = ref::causal_conv1d(x, weight, bias, silu_on);
  }
  Tensor xs = x.detach(), ws = weight.detach(), bs = bias.defined() ? bias.detach() : Tensor();
  record("causal_conv1d", {x, weight, bias}, {out},
         [xs, ws, bs, silu_on, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           if (!xs.is_cuda()) {
             ConvGrads r = cpu_backward(d, xs, ws, bs, silu_on, g[0]);
             return {r.dx, r.dw, r.dbias};
           }
           ConvGrads r;
           STEREORT_CUDA_PATH(
               int64_t nblk = cuda::causal_conv1d_partials(d.B, d.L);
               r.dx = Tensor::empty(xs.shape(), xs.dtype(), xs.device());
               Tensor dwp = Tensor::empty({nblk, d.C, d.K}, DType::F32, xs.device());
               Tensor dbp = Tensor::empty({nblk, d.C}, DType::F32, xs.device());
               cuda::causal_conv1d_backward(r.dx, dwp, dbp, g[0].to(xs.dtype()).contiguous(), xs,
                                            ws.reshape({d.C, d.K}).to(DType::F32).contiguous(),
                                            bs.defined() ? bs.to(DType::F32).contiguous() : bs, silu_on,
                                            Context::get(xs.device()));
               r.dw = sum(dwp, {0}).reshape(ws.shape()).to(ws.dtype());
               if (bs.defined()) r.dbias = sum(dbp, {0}).to(bs.dtype()));
           return {r.dx, r.dw, r.dbias};
         });
  return out;
}

}  // namespace stereort
