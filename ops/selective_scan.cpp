// ops/selective_scan.cpp — argument checks, the CPU reference (forward recurrence and its adjoint), the CUDA
// dispatch and the autograd node of selective_scan. Formulas: ops/selective_scan.h and kernels.md §1.1/§1.3.
//   CPU: every (b, d) row runs the recurrence over l with the N states in a small array; the backward reruns it,
//   keeping h and the decays of the row (L x N), then walks l backwards with the adjoint g.
//   CUDA: inputs made contiguous; constant (D,N) B/C are materialised as per-channel groups (B, D, N, L) so the kernels
//   only know grouped B/C (nothing in our models uses constant B/C; this path exists for completeness and tests).
#include "ops/selective_scan.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/reduce.h"

namespace stereort {

SelectiveScanDims selective_scan_check(const SelectiveScanArgs& a, const char* op) {
  STEREORT_CHECK(a.u.defined() && a.delta.defined() && a.A.defined() && a.Bm.defined() && a.Cm.defined(),
                 "{}: u, delta, A, Bm and Cm are required", op);
  const Tensor& u = a.u;
  STEREORT_CHECK(u.dim() == 3, "{}: u {} must be (B,D,L)", op, u.desc());
  STEREORT_CHECK(dtype_is_floating(u.dtype()), "{}: u {} must be floating", op, u.desc());
  SelectiveScanDims s{};
  s.batch = u.size(0);
  s.dim = u.size(1);
  s.seqlen = u.size(2);
  STEREORT_CHECK(a.delta.shape() == u.shape() && a.delta.dtype() == u.dtype(),
                 "{}: delta {} must match u {} in shape and dtype", op, a.delta.desc(), u.desc());
  STEREORT_CHECK(a.A.dim() == 2 && a.A.size(0) == s.dim && dtype_is_floating(a.A.dtype()),
                 "{}: A {} must be (D,N) = ({},N) floating for u {}", op, a.A.desc(), s.dim, u.desc());
  s.dstate = a.A.size(1);
  s.groups = 0;
  auto check_bc = [&](const Tensor& t, const char* name, bool* var) {
    if (t.dim() == 4) {
      *var = true;
      STEREORT_CHECK(t.size(0) == s.batch && t.size(2) == s.dstate && t.size(3) == s.seqlen && t.size(1) >= 1 &&
                         s.dim % t.size(1) == 0,
                     "{}: {} {} must be (B,G,N,L) = ({},G,{},{}) with G dividing D = {}", op, name, t.desc(), s.batch,
                     s.dstate, s.seqlen, s.dim);
      STEREORT_CHECK(t.dtype() == u.dtype(), "{}: variable {} {} must have u's dtype ({})", op, name, t.desc(),
                     dtype_name(u.dtype()));
      STEREORT_CHECK(s.groups == 0 || s.groups == t.size(1),
                     "{}: Bm and Cm have different group counts ({} vs {}); use the same G for both", op, s.groups,
                     t.size(1));
      s.groups = t.size(1);
    } else {
      *var = false;
      STEREORT_CHECK(t.dim() == 2 && t.size(0) == s.dim && t.size(1) == s.dstate && dtype_is_floating(t.dtype()),
                     "{}: {} {} must be (B,G,N,L) (variable) or (D,N) = ({},{}) (constant)", op, name, t.desc(), s.dim,
                     s.dstate);
    }
  };
  check_bc(a.Bm, "Bm", &s.var_B);
  check_bc(a.Cm, "Cm", &s.var_C);
  if (s.groups == 0) s.groups = 1;
  auto check_vec = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    STEREORT_CHECK(t.dim() == 1 && t.size(0) == s.dim && dtype_is_floating(t.dtype()),
                   "{}: {} {} must be (D) = ({}) floating", op, name, t.desc(), s.dim);
  };
  check_vec(a.Dskip, "Dskip");
  check_vec(a.delta_bias, "delta_bias");
  if (a.z.defined())
    STEREORT_CHECK(a.z.shape() == u.shape() && a.z.dtype() == u.dtype(), "{}: z {} must match u {} in shape and dtype",
                   op, a.z.desc(), u.desc());
  for (const Tensor* t : {&a.delta, &a.A, &a.Bm, &a.Cm, &a.Dskip, &a.z, &a.delta_bias})
    if (t->defined())
      STEREORT_CHECK(t->device() == u.device(), "{}: all inputs must be on u's device ({}); got {}", op, u.desc(),
                     t->desc());
  return s;
}

namespace {

DType scan_out_dtype(const SelectiveScanArgs& a) {
  DType t = a.u.dtype();
  if (dtype_is_half(t)) return a.out_fp32 ? DType::F32 : t;
  return t;
}

// ---- CPU reference -------------------------------------------------------------------------------------------------
// All operands converted to contiguous tensors of the compute type S (double for f64 inputs, float otherwise).
template <typename S>
struct CpuScan {
  SelectiveScanDims s;
  bool softplus;
  Tensor u, dt, A, B, C, D, z, bias;  // contiguous, dtype S

  CpuScan(const SelectiveScanArgs& a, const SelectiveScanDims& dims) : s(dims), softplus(a.delta_softplus) {
    DType st = std::is_same<S, double>::value ? DType::F64 : DType::F32;
    auto cv = [&](const Tensor& t) { return t.defined() ? t.detach().to(st).contiguous() : Tensor(); };
    u = cv(a.u); dt = cv(a.delta); A = cv(a.A); B = cv(a.Bm); C = cv(a.Cm);
    D = cv(a.Dskip); z = cv(a.z); bias = cv(a.delta_bias);
  }
  int64_t group_of(int64_t d) const { return d / (s.dim / s.groups); }
  // Index of B/C for (b, d, n, l): variable (B,G,N,L) or constant (D,N).
  int64_t bc_index(bool var, int64_t b, int64_t d, int64_t n, int64_t l) const {
    return var ? ((b * s.groups + group_of(d)) * s.dstate + n) * s.seqlen + l : d * s.dstate + n;
  }
  S dt_raw(int64_t row, int64_t l) const {  // delta + bias (before softplus)
    return dt.data<S>()[row * s.seqlen + l] + (bias.defined() ? bias.data<S>()[row % s.dim] : S(0));
  }
  S dt_eff(S x) const { return softplus ? (x <= S(20) ? std::log1p(std::exp(x)) : x) : x; }

  // Runs row (b, d); fills h_all/a_all (L x N) and y_all (L, pre-gate) when given.
  void run_row(int64_t b, int64_t d, S* out, S* h_all, S* a_all, S* y_all) const {
    const int64_t L = s.seqlen, N = s.dstate, row = b * s.dim + d;
    std::vector<S> h(size_t(N), S(0));
    const S* up = u.data<S>() + row * L;
    const S* Ap = A.data<S>() + d * N;
    for (int64_t l = 0; l < L; ++l) {
      S dtv = dt_eff(dt_raw(row, l)), uv = up[l], y = 0;
      for (int64_t n = 0; n < N; ++n) {
        S a = std::exp(dtv * Ap[n]);
        h[size_t(n)] = a * h[size_t(n)] + dtv * B.data<S>()[bc_index(s.var_B, b, d, n, l)] * uv;
        y += C.data<S>()[bc_index(s.var_C, b, d, n, l)] * h[size_t(n)];
        if (h_all) { h_all[l * N + n] = h[size_t(n)]; a_all[l * N + n] = a; }
      }
      if (D.defined()) y += D.data<S>()[d] * uv;
      if (y_all) y_all[l] = y;
      if (z.defined()) {
        S zv = z.data<S>()[row * L + l];
        y *= zv / (S(1) + std::exp(-zv));
      }
      if (out) out[row * L + l] = y;
    }
  }

  Tensor forward(DType st) const {
    Tensor out = Tensor::empty({s.batch, s.dim, s.seqlen}, st);
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t d = 0; d < s.dim; ++d) run_row(b, d, out.data<S>(), nullptr, nullptr, nullptr);
    return out;
  }

  // Adjoint of sum(out * dout): kernels.md §1.3, computed with the stored h (a_l h_{l-1} taken directly).
  std::vector<Tensor> backward(const Tensor& dout_in, DType st) const {
    const int64_t Bn = s.batch, Dn = s.dim, L = s.seqlen, N = s.dstate;
    Tensor dout = dout_in.detach().to(st).contiguous();
    Tensor du = Tensor::zeros(u.shape(), st), ddelta = Tensor::zeros(u.shape(), st);
    Tensor dA = Tensor::zeros(A.shape(), st), dB = Tensor::zeros(B.shape(), st), dC = Tensor::zeros(C.shape(), st);
    Tensor dD = D.defined() ? Tensor::zeros(D.shape(), st) : Tensor();
    Tensor dz = z.defined() ? Tensor::zeros(z.shape(), st) : Tensor();
    Tensor dbias = bias.defined() ? Tensor::zeros(bias.shape(), st) : Tensor();
    std::vector<S> h_all(static_cast<size_t>(L * N)), a_all(static_cast<size_t>(L * N)), y_all(static_cast<size_t>(L)),
        g(static_cast<size_t>(N));
    for (int64_t b = 0; b < Bn; ++b)
      for (int64_t d = 0; d < Dn; ++d) {
        const int64_t row = b * Dn + d;
        run_row(b, d, nullptr, h_all.data(), a_all.data(), y_all.data());
        std::fill(g.begin(), g.end(), S(0));
        const S* Ap = A.data<S>() + d * N;
        for (int64_t l = L - 1; l >= 0; --l) {
          S go = dout.data<S>()[row * L + l], dy = go;
          if (z.defined()) {
            S zv = z.data<S>()[row * L + l], sg = S(1) / (S(1) + std::exp(-zv));
            dy = go * zv * sg;
            dz.data<S>()[row * L + l] = go * y_all[size_t(l)] * sg * (S(1) + zv * (S(1) - sg));
          }
          S x = dt_raw(row, l), dtv = dt_eff(x), uv = u.data<S>()[row * L + l];
          S du_l = D.defined() ? D.data<S>()[d] * dy : S(0), ddt = 0;
          if (D.defined()) dD.data<S>()[d] += dy * uv;
          for (int64_t n = 0; n < N; ++n) {
            S a_next = l + 1 < L ? a_all[size_t((l + 1) * N + n)] : S(0);
            int64_t ib = bc_index(s.var_B, b, d, n, l), ic = bc_index(s.var_C, b, d, n, l);
            S& gn = g[size_t(n)];
            gn = a_next * gn + C.data<S>()[ic] * dy;
            S Bv = B.data<S>()[ib];
            S ah_prev = l > 0 ? a_all[size_t(l * N + n)] * h_all[size_t((l - 1) * N + n)] : S(0);  // a_l h_{l-1}
            du_l += gn * Bv * dtv;
            ddt += gn * (Bv * uv + Ap[n] * ah_prev);
            dA.data<S>()[d * N + n] += gn * dtv * ah_prev;
            dB.data<S>()[ib] += gn * dtv * uv;
            dC.data<S>()[ic] += dy * h_all[size_t(l * N + n)];
          }
          if (softplus && x <= S(20)) ddt *= S(1) / (S(1) + std::exp(-x));
          du.data<S>()[row * L + l] = du_l;
          ddelta.data<S>()[row * L + l] = ddt;
          if (bias.defined()) dbias.data<S>()[d] += ddt;
        }
      }
    return {du, ddelta, dA, dB, dC, dD, dz, dbias};
  }
};

template <typename F>
decltype(auto) with_cpu_scan(const SelectiveScanArgs& a, F&& f) {
  SelectiveScanDims dims = selective_scan_check(a, "selective_scan");
  STEREORT_CHECK(a.u.device().is_cpu(), "selective_scan (CPU reference): u {} must be on the CPU", a.u.desc());
  if (a.u.dtype() == DType::F64) return f(CpuScan<double>(a, dims), DType::F64);
  return f(CpuScan<float>(a, dims), DType::F32);
}

// ---- CUDA path -------------------------------------------------------------------------------------------------------
// Contiguous operands in the kernel's layout; constant B/C materialised per channel (groups = D).
struct CudaScanInputs {
  Tensor u, delta, A, B, C, D, z, bias;
  SelectiveScanDims dims;
  int64_t kgroups = 1;   // groups the kernel sees
  bool materialised = false;
};

CudaScanInputs cuda_prepare(const SelectiveScanArgs& a) {
  CudaScanInputs c;
  c.dims = selective_scan_check(a, "selective_scan");
  const SelectiveScanDims& s = c.dims;
  STEREORT_CHECK(a.u.dtype() == DType::F32 || dtype_is_half(a.u.dtype()),
                 "selective_scan (CUDA): inputs must be f32, f16 or bf16; got u {} (use the CPU reference for f64)",
                 a.u.desc());
  auto f32 = [](const Tensor& t) { return t.defined() ? t.detach().to(DType::F32).contiguous() : Tensor(); };
  c.u = a.u.detach().contiguous();
  c.delta = a.delta.detach().contiguous();
  c.z = a.z.defined() ? a.z.detach().contiguous() : Tensor();
  c.A = f32(a.A);
  c.D = f32(a.Dskip);
  c.bias = f32(a.delta_bias);
  if (s.var_B && s.var_C) {
    c.B = a.Bm.detach().contiguous();
    c.C = a.Cm.detach().contiguous();
    c.kgroups = s.groups;
  } else {
    // Per-channel groups: (D,N) -> (B,D,N,L); (B,G,N,L) -> repeat each group over its D/G channels.
    auto per_channel = [&](const Tensor& t, bool var) {
      Tensor x = t.detach();
      Shape full{s.batch, s.dim, s.dstate, s.seqlen};
      if (!var) return x.to(a.u.dtype()).reshape({1, s.dim, s.dstate, 1}).expand(full).contiguous();
      int64_t G = x.size(1);
      return x.reshape({s.batch, G, 1, s.dstate, s.seqlen})
          .expand({s.batch, G, s.dim / G, s.dstate, s.seqlen})
          .contiguous()
          .reshape(full);
    };
    c.B = per_channel(a.Bm, s.var_B);
    c.C = per_channel(a.Cm, s.var_C);
    c.kgroups = s.dim;
    c.materialised = true;
  }
  return c;
}

void fill_plain(ScanOperand& o, const Tensor& t, int64_t batch, int64_t row, int64_t group = 0) {
  o.ptr[0] = t.defined() ? t.data_ptr() : nullptr;
  o.batch[0] = batch;
  o.row[0] = row;
  o.group[0] = group;
}

SelectiveScanParams cuda_params(const CudaScanInputs& c, bool softplus) {
  const SelectiveScanDims& s = c.dims;
  SelectiveScanParams p;
  p.batch = s.batch; p.dim = s.dim; p.dstate = s.dstate; p.seqlen = s.seqlen;
  p.groups = c.kgroups; p.dirs = 1; p.in_dtype = c.u.dtype(); p.softplus = softplus;
  const int64_t DL = s.dim * s.seqlen, L = s.seqlen, NL = s.dstate * s.seqlen;
  fill_plain(p.u, c.u, DL, L);
  fill_plain(p.delta, c.delta, DL, L);
  fill_plain(p.z, c.z, DL, L);
  fill_plain(p.B, c.B, c.kgroups * NL, L, NL);
  fill_plain(p.C, c.C, c.kgroups * NL, L, NL);
  p.A = c.A.data<float>();
  p.Dskip = c.D.defined() ? c.D.data<float>() : nullptr;
  p.delta_bias = c.bias.defined() ? c.bias.data<float>() : nullptr;
  return p;
}

// dB/dC accumulated per kernel group (B, kG, N, L) f32 -> the input's shape and dtype.
Tensor cuda_bc_grad(const Tensor& acc, const CudaScanInputs& c, const Tensor& orig, bool var) {
  const SelectiveScanDims& s = c.dims;
  Tensor g = acc;
  if (c.materialised) {
    if (!var) {
      g = sum(g, {0, 3});  // (D,N)
    } else {
      int64_t G = orig.size(1);
      g = sum(g.reshape({s.batch, G, s.dim / G, s.dstate, s.seqlen}), {2});
    }
  }
  return g.to(orig.dtype());
}

SelectiveScanArgs detached(const SelectiveScanArgs& a) {
  SelectiveScanArgs d = a;
  for (Tensor* t : {&d.u, &d.delta, &d.A, &d.Bm, &d.Cm, &d.Dskip, &d.z, &d.delta_bias})
    if (t->defined()) *t = t->detach();
  return d;
}

}  // namespace

namespace ref {
Tensor selective_scan(const SelectiveScanArgs& a) {
  return with_cpu_scan(a, [&](const auto& scan, DType st) {
    Tensor out = scan.forward(st);
    DType want = scan_out_dtype(a);
    return want == st ? out : out.to(want);
  });
}
std::vector<Tensor> selective_scan_backward(const SelectiveScanArgs& a, const Tensor& dout) {
  return with_cpu_scan(a, [&](const auto& scan, DType st) { return scan.backward(dout, st); });
}
}  // namespace ref

Tensor selective_scan(const SelectiveScanArgs& a) {
  std::vector<Tensor> inputs{a.u, a.delta, a.A, a.Bm, a.Cm, a.Dskip, a.z, a.delta_bias};
  const bool grad = needs_grad(inputs);
  if (!a.u.is_cuda()) {
    Tensor out;
    {
      NoGradGuard ng;
      out = ref::selective_scan(a);
    }
    if (grad) {
      SelectiveScanArgs saved = detached(a);
      record("selective_scan", inputs, {out}, [saved](const std::vector<Tensor>& g) {
        std::vector<Tensor> r = ref::selective_scan_backward(saved, g[0]);
        const Tensor* in[8] = {&saved.u, &saved.delta, &saved.A, &saved.Bm, &saved.Cm, &saved.Dskip, &saved.z,
                               &saved.delta_bias};
        for (size_t i = 0; i < r.size(); ++i)
          if (r[i].defined()) r[i] = r[i].to(in[i]->dtype());
        return r;
      });
    }
    return out;
  }

  CudaScanInputs c = cuda_prepare(a);
  const SelectiveScanDims& s = c.dims;
  SelectiveScanParams p = cuda_params(c, a.delta_softplus);
  p.out_dtype = scan_out_dtype(a);
  Device dev = a.u.device();
  Tensor out = Tensor::empty({s.batch, s.dim, s.seqlen}, p.out_dtype, dev);
  fill_plain(p.out, out, s.dim * s.seqlen, s.seqlen);
  Tensor y_saved = grad && c.z.defined() ? Tensor::empty({s.batch, s.dim, s.seqlen}, DType::F32, dev) : Tensor();
  fill_plain(p.y, y_saved, s.dim * s.seqlen, s.seqlen);
  Tensor carries;  // the states the backward restarts from (only when a backward will run)
  STEREORT_CUDA_PATH({
    p.carry_stride = cuda::selective_scan_carry_stride(s.seqlen);
    p.n_carries = (s.seqlen + p.carry_stride - 1) / p.carry_stride;
    if (grad) {
      carries = Tensor::empty({s.batch, s.dim, std::max<int64_t>(p.n_carries, 1), s.dstate}, DType::F32, dev);
      p.carries = carries.data<float>();
    }
    cuda::selective_scan_fwd(p, Context::get(dev));
  });
  if (!grad) return out;

  p.out = ScanOperand{};  // the backward reads neither out nor the forward-only pointers
  record("selective_scan", inputs, {out}, [c, p, carries, y_saved, a = detached(a)](const std::vector<Tensor>& g) {
    const SelectiveScanDims& s = c.dims;
    Device dev = c.u.device();
    SelectiveScanParams q = p;
    Tensor dout = g[0].to(p.out_dtype).contiguous();
    Shape bdl{s.batch, s.dim, s.seqlen};
    Tensor du = Tensor::empty(bdl, c.u.dtype(), dev), ddelta = Tensor::empty(bdl, c.u.dtype(), dev);
    Tensor dz = c.z.defined() ? Tensor::empty(bdl, c.u.dtype(), dev) : Tensor();
    Tensor dB = Tensor::zeros(c.B.shape(), DType::F32, dev), dC = Tensor::zeros(c.C.shape(), DType::F32, dev);
    Tensor dA = Tensor::empty({s.batch, s.dim, s.dstate}, DType::F32, dev);
    Tensor dD = Tensor::empty({s.batch, s.dim}, DType::F32, dev), dbias = Tensor::empty({s.batch, s.dim}, DType::F32, dev);
    const int64_t DL = s.dim * s.seqlen, NL = s.dstate * s.seqlen;
    fill_plain(q.dout, dout, DL, s.seqlen);
    fill_plain(q.du, du, DL, s.seqlen);
    fill_plain(q.ddelta, ddelta, DL, s.seqlen);
    fill_plain(q.dz, dz, DL, s.seqlen);
    fill_plain(q.dB, dB, c.kgroups * NL, s.seqlen, NL);
    fill_plain(q.dC, dC, c.kgroups * NL, s.seqlen, NL);
    // The captured params hold the forward's pointers; c (captured) keeps those tensors alive.
    q.carries = carries.data<float>();
    fill_plain(q.y, y_saved, DL, s.seqlen);
    q.dA_part = dA.data<float>();
    q.dD_part = dD.data<float>();
    q.dbias_part = dbias.data<float>();
    STEREORT_CUDA_PATH(cuda::selective_scan_bwd(q, Context::get(dev)));
    std::vector<Tensor> r(8);
    r[0] = du.to(a.u.dtype());
    r[1] = ddelta.to(a.delta.dtype());
    r[2] = sum(dA, {0}).to(a.A.dtype());
    r[3] = cuda_bc_grad(dB, c, a.Bm, c.dims.var_B);
    r[4] = cuda_bc_grad(dC, c, a.Cm, c.dims.var_C);
    if (a.Dskip.defined()) r[5] = sum(dD, {0}).to(a.Dskip.dtype());
    if (a.z.defined()) r[6] = dz.to(a.z.dtype());
    if (a.delta_bias.defined()) r[7] = sum(dbias, {0}).to(a.delta_bias.dtype());
    return r;
  });
  return out;
}

}  // namespace stereort
