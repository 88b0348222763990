// ops/attention.cpp — checks, the CPU path (ref::, one score row at a time, double accumulation), the CUDA dispatch
// and the autograd node of scaled_dot_product_attention; attention_reference composed of existing ops.
#include "ops/attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/reduce.h"

namespace stereort {

namespace {

const char* kOp = "scaled_dot_product_attention";

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  STEREORT_CHECK(q.defined() && k.defined() && v.defined(), "{}: q, k and v must be defined", op);
  STEREORT_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4,
                 "{}: q {}, k {}, v {} must be 4-D (B,Hd,N,d); reshape (B,N,Hd,d) with permute(0,2,1,3)", op,
                 q.desc(), k.desc(), v.desc());
  STEREORT_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype() && dtype_is_floating(q.dtype()),
                 "{}: q {}, k {}, v {} must share one floating dtype; cast with .to()", op, q.desc(), k.desc(),
                 v.desc());
  STEREORT_CHECK(q.device() == k.device() && q.device() == v.device(),
                 "{}: q {}, k {}, v {} are on different devices; move them with .to()", op, q.desc(), k.desc(),
                 v.desc());
  STEREORT_CHECK(k.shape() == v.shape() && q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
                 "{}: shapes q {}, k {}, v {} do not match: need q (B,Hd,Nq,d) and k, v (B,Hd,Nk,d)", op, q.desc(),
                 k.desc(), v.desc());
  STEREORT_CHECK(k.size(2) >= 1, "{}: k {} has no keys; softmax over an empty row is undefined", op, k.desc());
  STEREORT_CHECK(std::isfinite(scale), "{}: scale {} must be finite (usually 1/sqrt(d))", op, scale);
  if (q.is_cuda()) {
    const int64_t d = q.size(3);
    STEREORT_CHECK(d == 32 || d == 64 || d == 128,
                   "{}: head dim d = {} (q {}) is not supported on CUDA; supported: 32, 64, 128 (pad d with zeros)", op,
                   d, q.desc());
    STEREORT_CHECK(q.size(0) * q.size(1) <= 65535, "{}: batch x heads = {} exceeds 65535 (q {}); split the batch", op,
                   q.size(0) * q.size(1), q.desc());
    STEREORT_CHECK(q.size(2) < (int64_t(1) << 31) && k.size(2) < (int64_t(1) << 31),
                   "{}: sequence lengths of q {} / k {} exceed 2^31", op, q.desc(), k.desc());
  }
}

// Kernel-ready CUDA operand: unit stride along d, 16-byte aligned base and (b, h, n) strides; else a copy.
Tensor cuda_operand(const Tensor& t) {
  const int64_t es = int64_t(dtype_size(t.dtype()));
  bool ok = t.stride(3) == 1 && (reinterpret_cast<uintptr_t>(t.data_ptr()) & 15) == 0;
  for (int d = 0; d < 3; ++d) ok = ok && (t.size(d) == 1 || (t.stride(d) * es) % 16 == 0);
  if (ok) return t;
  Tensor c = t.contiguous();
  return (reinterpret_cast<uintptr_t>(c.data_ptr()) & 15) == 0 ? c : t.clone();
}

template <typename T>
void cpu_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                 double scale) {
  const int64_t B = q.size(0), H = q.size(1), Nq = q.size(2), Nk = k.size(2), D = q.size(3);
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  T* op = out.data<T>();
  T* lp = lse.data<T>();
  std::vector<double> s(static_cast<size_t>(Nk)), acc(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const T* kb = kp + b * k.stride(0) + h * k.stride(1);
      const T* vb = vp + b * v.stride(0) + h * v.stride(1);
      for (int64_t i = 0; i < Nq; ++i) {
        const T* qi = qp + b * q.stride(0) + h * q.stride(1) + i * q.stride(2);
        double m = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < Nk; ++j) {
          const T* kj = kb + j * k.stride(2);
          double dot = 0;
          for (int64_t c = 0; c < D; ++c) dot += double(qi[c * q.stride(3)]) * double(kj[c * k.stride(3)]);
          s[size_t(j)] = dot * scale;
          m = std::max(m, s[size_t(j)]);
        }
        double sum = 0;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < Nk; ++j) {
          double e = std::exp(s[size_t(j)] - m);
          sum += e;
          const T* vj = vb + j * v.stride(2);
          for (int64_t c = 0; c < D; ++c) acc[size_t(c)] += e * double(vj[c * v.stride(3)]);
        }
        const int64_t row = (b * H + h) * Nq + i;
        for (int64_t c = 0; c < D; ++c) op[row * D + c] = T(acc[size_t(c)] / sum);
        lp[row] = T(m + std::log(sum));
      }
    }
}

template <typename T>
void cpu_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& q, const Tensor& k,
                  const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout, double scale) {
  const int64_t B = q.size(0), H = q.size(1), Nq = q.size(2), Nk = k.size(2), D = q.size(3);
  const T* qp = q.data<T>();
  const T* kp = k.data<T>();
  const T* vp = v.data<T>();
  const T* op = out.data<T>();
  const T* lp = lse.data<T>();
  const T* gp = dout.data<T>();
  T *dqp = dq.data<T>(), *dkp = dk.data<T>(), *dvp = dv.data<T>();
  std::vector<double> dk_acc(static_cast<size_t>(Nk * D)), dv_acc(static_cast<size_t>(Nk * D)),
      dq_acc(static_cast<size_t>(D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h) {
      const T* kb = kp + b * k.stride(0) + h * k.stride(1);
      const T* vb = vp + b * v.stride(0) + h * v.stride(1);
      std::fill(dk_acc.begin(), dk_acc.end(), 0.0);
      std::fill(dv_acc.begin(), dv_acc.end(), 0.0);
      for (int64_t i = 0; i < Nq; ++i) {
        const T* qi = qp + b * q.stride(0) + h * q.stride(1) + i * q.stride(2);
        const int64_t row = (b * H + h) * Nq + i;
        const T* gi = gp + row * D;
        double drow = 0;
        for (int64_t c = 0; c < D; ++c) drow += double(gi[c]) * double(op[row * D + c]);
        std::fill(dq_acc.begin(), dq_acc.end(), 0.0);
        for (int64_t j = 0; j < Nk; ++j) {
          const T* kj = kb + j * k.stride(2);
          const T* vj = vb + j * v.stride(2);
          double dot = 0, dp = 0;
          for (int64_t c = 0; c < D; ++c) {
            dot += double(qi[c * q.stride(3)]) * double(kj[c * k.stride(3)]);
            dp += double(gi[c]) * double(vj[c * v.stride(3)]);
          }
          const double p = std::exp(dot * scale - double(lp[row]));
          const double ds = p * (dp - drow);
          for (int64_t c = 0; c < D; ++c) {
            dq_acc[size_t(c)] += ds * double(kj[c * k.stride(3)]);
            dk_acc[size_t(j * D + c)] += ds * double(qi[c * q.stride(3)]);
            dv_acc[size_t(j * D + c)] += p * double(gi[c]);
          }
        }
        for (int64_t c = 0; c < D; ++c) dqp[row * D + c] = T(scale * dq_acc[size_t(c)]);
      }
      const int64_t base = (b * H + h) * Nk * D;
      for (int64_t e = 0; e < Nk * D; ++e) {
        dkp[base + e] = T(scale * dk_acc[size_t(e)]);
        dvp[base + e] = T(dv_acc[size_t(e)]);
      }
    }
}

// CPU path of the op for any floating dtype (16-bit types through f32).
void cpu_op_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                    double scale) {
  DType ct = cpu_float_dtype(q.dtype());
  if (ct == q.dtype()) {
    ref::attention_forward(out, lse, q, k, v, scale);
    return;
  }
  Tensor o32 = Tensor::empty(out.shape(), ct);
  ref::attention_forward(o32, lse, q.to(ct), k.to(ct), v.to(ct), scale);
  out.copy_(o32);
}

}  // namespace

namespace ref {

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                       double scale) {
  dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    cpu_forward<typename decltype(tag)::type>(out, lse, q, k, v, scale);
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout, double scale) {
  dispatch_float(q.dtype(), "attention_backward", [&](auto tag) {
    cpu_backward<typename decltype(tag)::type>(dq, dk, dv, q, k, v, out.contiguous(), lse, dout.contiguous(), scale);
  });
}

}  // namespace ref

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, double scale) {
  check_qkv(kOp, q_in, k_in, v_in, scale);
  const bool cuda = q_in.is_cuda();
  Tensor q = cuda ? cuda_operand(q_in) : q_in, k = cuda ? cuda_operand(k_in) : k_in,
         v = cuda ? cuda_operand(v_in) : v_in;
  const Shape qs = q.shape(), ks = k.shape();
  Tensor out = Tensor::empty(qs, q.dtype(), q.device());
  Tensor lse = Tensor::empty({qs[0], qs[1], qs[2]}, cuda ? DType::F32 : cpu_float_dtype(q.dtype()), q.device());
  if (out.numel() > 0) {
    if (cuda) {
      STEREORT_CUDA_PATH(
          cuda::attention_forward(out, lse, q, k, v, scale, AttentionKernel::Auto, Context::get(q.device())));
    } else {
      cpu_op_forward(out, lse, q, k, v, scale);
    }
  }
  if (!needs_grad({q_in, k_in, v_in})) return out;
  Tensor qd = q.detach(), kd = k.detach(), vd = v.detach(), od = out.detach();
  record(kOp, {q_in, k_in, v_in}, {out},
         [qd, kd, vd, od, lse, scale, qs, ks](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor go = g[0].contiguous();
           if (go.is_cuda() && (reinterpret_cast<uintptr_t>(go.data_ptr()) & 15) != 0) go = go.clone();  // 16-B loads
           Tensor dq = Tensor::empty(qs, qd.dtype(), qd.device());
           Tensor dk = Tensor::empty(ks, qd.dtype(), qd.device());
           Tensor dv = Tensor::empty(ks, qd.dtype(), qd.device());
           if (qd.is_cuda()) {
             STEREORT_CUDA_PATH(cuda::attention_backward(dq, dk, dv, qd, kd, vd, od, lse, go, scale,
                                                         AttentionKernel::Auto, Context::get(qd.device())));
             return {dq, dk, dv};
           }
           DType ct = cpu_float_dtype(qd.dtype());
           if (ct == qd.dtype()) {
             ref::attention_backward(dq, dk, dv, qd, kd, vd, od, lse, go, scale);
             return {dq, dk, dv};
           }
           Tensor dq32 = Tensor::empty(qs, ct), dk32 = Tensor::empty(ks, ct), dv32 = Tensor::empty(ks, ct);
           ref::attention_backward(dq32, dk32, dv32, qd.to(ct), kd.to(ct), vd.to(ct), od.to(ct), lse, go.to(ct),
                                   scale);
           return {dq32.to(qd.dtype()), dk32.to(qd.dtype()), dv32.to(qd.dtype())};
         });
  return out;
}

Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  check_qkv("attention_reference", q, k, v, scale);
  Tensor s = mul(matmul(q, k.transpose(2, 3)), scale);  // (B,H,Nq,Nk), materialised
  // Row max as a constant (softmax is shift-invariant, so no gradient is lost), computed with a plain loop.
  Tensor m;
  {
    NoGradGuard ng;
    std::vector<double> sv = s.detach().to_vector(), mv;
    const int64_t nk = s.size(3);
    for (size_t r = 0; r * size_t(nk) < sv.size(); ++r) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j < nk; ++j) mx = std::max(mx, sv[r * size_t(nk) + size_t(j)]);
      mv.push_back(mx);
    }
    m = Tensor::from_vector(mv, {s.size(0), s.size(1), s.size(2), 1}, s.dtype(), s.device());
  }
  Tensor e = exp(sub(s, m));
  Tensor p = div(e, sum(e, {3}, true));
  return matmul(p, v);
}

}  // namespace stereort
