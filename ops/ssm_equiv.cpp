// ops/ssm_equiv.cpp — the four SSM forms and the input regimes (see ops/ssm_equiv.h); rows and table in
// ops/ssm_equiv_suite.cpp. Form (4) is ops/selective_scan.h under the kernels.md §3 mapping, differentiated through
// ordinary view ops on the tape.
#include "ops/ssm_equiv.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <set>

#include "core/autograd.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "ops/selective_scan.h"
#include "ops/view.h"

namespace stereort {
namespace equiv {

namespace {
inline size_t sz(int64_t n) { return static_cast<size_t>(n); }  // sizes for std::vector constructors

}  // namespace

const char* regime_name(Regime r) {
  switch (r) {
    case Regime::Fast: return "fast";
    case Regime::MambaInit: return "mamba";
    case Regime::NoDecay: return "none";
    case Regime::Reset: return "reset";
    case Regime::ZeroDt: return "zerodt";
  }
  return "?";
}

Inputs make_inputs(const Case& c) {
  const Device cpu = Device::cpu();
  const DType f = DType::F64;
  const uint64_t s = c.seed * 16;
  Inputs in;
  SsdArgs& a = in.args;
  a.x = randn({c.B, c.T, c.H, c.P}, f, cpu, s + 1);
  a.Bm = randn({c.B, c.T, c.G, c.N}, f, cpu, s + 2, 0.0, 1.0 / std::sqrt(double(c.N)));
  a.Cm = randn({c.B, c.T, c.G, c.N}, f, cpu, s + 3, 0.0, 1.0 / std::sqrt(double(c.N)));
  a.Dskip = randn({c.H}, f, cpu, s + 4);
  std::vector<double> A = rand_uniform({c.H}, f, cpu, s + 5, 1.0, 16.0).to_vector();
  for (double& v : A) v = c.regime == Regime::NoDecay ? 0.0 : -v;
  a.A = Tensor::from_vector(A, {c.H}, f);
  std::vector<double> dt;
  if (c.regime == Regime::MambaInit) {
    dt = rand_uniform({c.B, c.T, c.H}, f, cpu, s + 6, std::log(1e-3), std::log(1e-1)).to_vector();
    for (double& v : dt) v = std::exp(v);
  } else {
    dt = randn({c.B, c.T, c.H}, f, cpu, s + 6).to_vector();
    for (double& v : dt) v = std::log1p(std::exp(v - 1.0));  // softplus(z - 1)
  }
  std::vector<double> x = a.x.to_vector();
  auto dti = [&](int64_t b, int64_t t, int64_t h) { return size_t((b * c.T + t) * c.H + h); };
  if (c.regime == Regime::Reset) {
    in.reset_steps = c.T >= 3 ? std::vector<int64_t>{c.T / 3, (2 * c.T) / 3} : std::vector<int64_t>{c.T / 2};
    for (int64_t t0 : in.reset_steps)
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t h = 0; h < c.H; ++h) {
          dt[dti(b, t0, h)] = 1e30 / -A[size_t(h)];  // log a = dt A = -1e30
          for (int64_t p = 0; p < c.P; ++p) x[dti(b, t0, h) * size_t(c.P) + size_t(p)] = 0.0;
        }
    a.x = Tensor::from_vector(x, a.x.shape(), f);
  }
  if (c.regime == Regime::ZeroDt)
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t t = 0; t < c.T; ++t)
        for (int64_t h = 0; h < c.H; ++h)
          if (t % 5 == 2 || (t >= c.T / 2 && t < c.T / 2 + 3)) dt[dti(b, t, h)] = 0.0;
  a.dt = Tensor::from_vector(dt, {c.B, c.T, c.H}, f);
  if (c.random_init) a.initial_state = randn({c.B, c.H, c.P, c.N}, f, cpu, s + 7);
  a.return_final_state = true;
  return in;
}

namespace {

Tensor leaf(const Tensor& t, bool grad) {
  if (!t.defined()) return t;
  Tensor c = t.detach().clone();
  if (grad) c.set_requires_grad(true);
  return c;
}
SsdArgs leaves(const SsdArgs& a, bool grad) {
  SsdArgs l = a;
  l.x = leaf(a.x, grad);
  l.dt = leaf(a.dt, grad);
  l.A = leaf(a.A, grad);
  l.Bm = leaf(a.Bm, grad);
  l.Cm = leaf(a.Cm, grad);
  l.Dskip = leaf(a.Dskip, grad);
  l.initial_state = leaf(a.initial_state, grad);
  return l;
}
Tensor grad_of(const Tensor& t) {
  if (!t.defined()) return t;
  Tensor g = t.grad();
  if (!g.defined()) g = Tensor::zeros(t.shape(), t.dtype(), t.device());
  return g.to(Device::cpu()).to(DType::F64);
}
SsdGrads grads_of(const SsdArgs& l) {
  return {grad_of(l.x), grad_of(l.dt), grad_of(l.A), grad_of(l.Bm), grad_of(l.Cm), grad_of(l.Dskip),
          grad_of(l.initial_state)};
}
// Backward from y (and the final state when it and gS exist).
void backward_from(const Tensor& y, const Tensor& gy, const Tensor& fin, const Tensor& gS) {
  std::vector<Tensor> roots = {y}, gs = {gy.to(y.device()).to(y.dtype())};
  if (fin.defined() && gS.defined()) {
    roots.push_back(fin);
    gs.push_back(gS.to(fin.device()).to(fin.dtype()));
  }
  run_backward(roots, gs);
}

}  // namespace

SsdResult recurrent_op(const SsdArgs& a) {
  SsdArgs fa = a;
  fa.return_final_state = true;
  SsdResult r = ref::ssd_recurrent(fa);
  auto det = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
  SsdArgs saved{det(a.x), det(a.dt), det(a.A), det(a.Bm), det(a.Cm), det(a.Dskip), det(a.initial_state),
                a.chunk_size, false};
  record("ssd_recurrent", {a.x, a.dt, a.A, a.Bm, a.Cm, a.Dskip, a.initial_state}, {r.y, r.final_state},
         [saved](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           SsdGrads gr = ref::ssd_recurrent_backward(saved, g[0], g[1]);
           return {gr.dx, gr.ddt, gr.dA, gr.dBm, gr.dCm, gr.dDskip, gr.dinitial_state};
         });
  return r;
}

namespace {

}  // namespace

FormResult form_recurrent(const SsdArgs& a, const Tensor& gy, const Tensor& gS, bool grads) {
  SsdArgs l = leaves(a, grads);
  SsdResult r = recurrent_op(l);
  FormResult f{r.y, r.final_state, {}};
  if (grads) {
    backward_from(r.y, gy, r.final_state, gS);
    f.grads = grads_of(l);
  }
  f.y = f.y.detach();
  f.final_state = f.final_state.detach();
  return f;
}

SsdResult attention_graph(const SsdArgs& a) {
  SsdDims d = ssd_check_args(a, "attention_graph");
  const int64_t B = d.B, T = d.L, H = d.H, P = d.P, N = d.N, hg = d.H / d.G;
  const DType f = a.x.dtype();
  auto heads = [&](const Tensor& m) {  // (B,T,G,N) -> (B,H,T,N), head h reads group h / hg
    return m.unsqueeze(3).expand({B, T, d.G, hg, N}).reshape({B, T, H, N}).permute({0, 2, 1, 3});
  };
  Tensor Bh = heads(a.Bm), Ch = heads(a.Cm);
  Tensor xh = a.x.permute({0, 2, 1, 3});                  // (B,H,T,P)
  Tensor dth = a.dt.permute({0, 2, 1});                   // (B,H,T)
  Tensor la = dth * a.A.reshape({1, H, 1});               // (B,H,T) log a
  // Constant masks: tri[t,r] = r <= t; strict[r,s] = r > s; neg_inf[t,s] = -inf above the diagonal.
  std::vector<double> tri(sz(T * T)), strict(sz(T * T)), ninf(sz(T * T));
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) {
      tri[size_t(i * T + j)] = j <= i;
      strict[size_t(i * T + j)] = i > j;
      ninf[size_t(i * T + j)] = j > i ? -INFINITY : 0.0;
    }
  Tensor Tri = Tensor::from_vector(tri, {T, T}, f), Strict = Tensor::from_vector(strict, {T, T}, f),
         Ninf = Tensor::from_vector(ninf, {T, T}, f);
  // segsum[t,s] = sum_{s<r<=t} la_r: zero the terms r <= s, then a cumulative sum over r as a triangular matmul
  // (mamba's stable `segsum`); never a difference of two cumulative sums.
  Tensor Xm = la.unsqueeze(3).expand({B, H, T, T}) * Strict;  // [r,s] = la_r for r > s
  Tensor segsum = matmul(Tri, Xm);                            // (B,H,T,T)
  Tensor Lm = exp(segsum + Ninf) * dth.unsqueeze(2);          // L[t,s] = exp(segsum) dt_s, 0 above the diagonal
  Tensor M = Lm * matmul(Ch, Bh.transpose(2, 3));             // L o C B^T
  Tensor Y = matmul(M, xh);                                   // (B,H,T,P)
  Tensor cs = matmul(Tri, la.unsqueeze(3));                   // (B,H,T,1) sum_{r<=t} la_r
  SsdResult r;
  Tensor fin;
  if (a.initial_state.defined()) {
    Y = Y + exp(cs) * matmul(Ch, a.initial_state.transpose(2, 3));  // exp(cs_t) C_t^T S_{-1}
  }
  if (a.Dskip.defined()) Y = Y + xh * a.Dskip.reshape({1, H, 1, 1});
  r.y = Y.permute({0, 2, 1, 3}).contiguous();
  // Final state = last row of L applied to the keys/values: sum_s L[T-1,s] x_s B_s^T (+ exp(cs_{T-1}) S_{-1}).
  Tensor Llast = Lm.slice(2, T - 1, T).transpose(2, 3);        // (B,H,T,1)
  fin = matmul(xh.transpose(2, 3), Llast * Bh);                // (B,H,P,N)
  if (a.initial_state.defined()) fin = fin + exp(cs.slice(2, T - 1, T)) * a.initial_state;
  r.final_state = fin;
  (void)P;
  return r;
}

FormResult form_attention(const SsdArgs& a, const Tensor& gy, const Tensor& gS, bool grads) {
  FormResult f;
  f.y = ref::ssd_attention(a);
  if (grads) {
    SsdArgs l = leaves(a, true);
    SsdResult r = attention_graph(l);
    backward_from(r.y, gy, r.final_state, gS);
    f.grads = grads_of(l);
    f.final_state = r.final_state.detach();
  }
  return f;
}

FormResult form_chunked(const SsdArgs& a, const Tensor& gy, const Tensor& gS, bool grads) {
  SsdArgs l = leaves(a, grads);
  l.return_final_state = true;
  SsdResult r = ssd_chunk_scan(l);
  FormResult f;
  if (grads) {
    backward_from(r.y, gy, r.final_state, gS);
    f.grads = grads_of(l);
  }
  f.y = r.y.detach().to(Device::cpu()).to(DType::F64);
  f.final_state = r.final_state.detach().to(Device::cpu()).to(DType::F64);
  return f;
}

Tensor mamba1_mapped(const SsdArgs& a, const Tensor& softplus_bias) {
  STEREORT_CHECK(!a.initial_state.defined(), "mamba1_mapped: the Mamba-1 scan has no initial state");
  SsdDims d = ssd_check_args(a, "mamba1_mapped");
  const int64_t B = d.B, T = d.L, H = d.H, P = d.P, N = d.N;
  // kernels.md §3 mapping: channel d = h*P + p (h-major); delta = dt repeated over p; A[(h,p),n] = A_h.
  SelectiveScanArgs s;
  s.u = a.x.permute({0, 2, 3, 1}).reshape({B, H * P, T});
  s.delta = a.dt.permute({0, 2, 1}).unsqueeze(2).expand({B, H, P, T}).reshape({B, H * P, T}).to(s.u.dtype());
  s.A = a.A.reshape({H, 1, 1}).expand({H, P, N}).reshape({H * P, N});
  s.Bm = a.Bm.permute({0, 2, 3, 1}).contiguous();  // (B,G,N,T)
  s.Cm = a.Cm.permute({0, 2, 3, 1}).contiguous();
  if (a.Dskip.defined()) s.Dskip = a.Dskip.reshape({H, 1}).expand({H, P}).reshape({H * P});
  if (softplus_bias.defined()) {
    // delta = softplus^{-1}(dt) - bias, so that the scan's own softplus(delta + bias) gives dt back.
    std::vector<double> raw = s.delta.to_vector(), bias = softplus_bias.to_vector();
    for (size_t i = 0; i < raw.size(); ++i) {
      const int64_t h = int64_t(i / size_t(T)) % (H * P) / P;
      raw[i] = std::log(std::expm1(raw[i])) - bias[size_t(h)];
    }
    s.delta = Tensor::from_vector(raw, s.delta.shape(), s.delta.dtype(), s.delta.device());
    s.delta_bias = softplus_bias.to(Device::cpu()).reshape({H, 1}).expand({H, P}).reshape({H * P})
                       .to(a.A.dtype()).to(a.x.device());
    s.delta_softplus = true;
  }
  Tensor out = selective_scan(s);  // (B,H*P,T)
  return out.reshape({B, H, P, T}).permute({0, 3, 1, 2}).contiguous().to(a.x.dtype());
}

FormResult form_mamba1(const SsdArgs& a, const Tensor& gy, bool grads) {
  SsdArgs l = leaves(a, grads);
  Tensor y = mamba1_mapped(l);
  FormResult f;
  if (grads) {
    backward_from(y, gy, Tensor(), Tensor());
    f.grads = grads_of(l);
  }
  f.y = y.detach().to(Device::cpu()).to(DType::F64);
  return f;
}

}  // namespace equiv
}  // namespace stereort
