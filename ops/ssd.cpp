// ops/ssd.cpp — Mamba-2 SSD: argument checks, the autograd node, device dispatch, and the CPU references
// (recurrence, chunked algorithm, materialised attention, recurrent and chunked adjoints), all in double.
//   Index conventions inside the references (contiguous double copies):
//     x[((b*L + t)*H + h)*P + p], dt[(b*L + t)*H + h], Bm/Cm[((b*L + t)*G + g)*N + n], S0[((b*H + h)*P + p)*N + n];
//   states are held as S[n*P + p] (N x P, the math's layout) and transposed at the (B,H,P,N) API boundary.
//   Upstream: mamba `modules/ssd_minimal.py` (segsum, ssd_minimal_discrete), `ops/triton/ssd_combined.py` (backward).
#include "ops/ssd.h"

#include <cmath>
#include <memory>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"

namespace stereort {

SsdDims ssd_check_args(const SsdArgs& a, const char* op) {
  STEREORT_CHECK(a.x.defined() && a.dt.defined() && a.A.defined() && a.Bm.defined() && a.Cm.defined(),
                 "{}: x, dt, A, Bm and Cm are required (Dskip and initial_state are optional)", op);
  STEREORT_CHECK(a.x.dim() == 4, "{}: x {} must be 4-D (B,L,H,P)", op, a.x.desc());
  SsdDims d{a.x.size(0), a.x.size(1), a.x.size(2), a.x.size(3), 0, 0};
  STEREORT_CHECK(a.Bm.dim() == 4 && a.Bm.size(0) == d.B && a.Bm.size(1) == d.L,
                 "{}: Bm {} must be (B,L,G,N) = ({},{},G,N) to match x {}", op, a.Bm.desc(), d.B, d.L,
                 shape_str(a.x.shape()));
  d.G = a.Bm.size(2);
  d.N = a.Bm.size(3);
  STEREORT_CHECK(a.Cm.shape() == a.Bm.shape(), "{}: Cm {} must have Bm's shape {} (B,L,G,N)", op, a.Cm.desc(),
                 shape_str(a.Bm.shape()));
  STEREORT_CHECK(d.G >= 1 && d.H % d.G == 0,
                 "{}: the number of groups G={} (Bm {}) must divide the number of heads H={} (x {})", op, d.G,
                 shape_str(a.Bm.shape()), d.H, shape_str(a.x.shape()));
  STEREORT_CHECK(a.dt.shape() == Shape({d.B, d.L, d.H}), "{}: dt {} must be (B,L,H) = ({},{},{}) for x {}", op,
                 a.dt.desc(), d.B, d.L, d.H, shape_str(a.x.shape()));
  STEREORT_CHECK(a.A.shape() == Shape({d.H}), "{}: A {} must be (H) = ({}) for x {}", op, a.A.desc(), d.H,
                 shape_str(a.x.shape()));
  if (a.Dskip.defined())
    STEREORT_CHECK(a.Dskip.shape() == Shape({d.H}), "{}: Dskip {} must be (H) = ({}) or undefined", op,
                   a.Dskip.desc(), d.H);
  if (a.initial_state.defined())
    STEREORT_CHECK(a.initial_state.shape() == Shape({d.B, d.H, d.P, d.N}),
                   "{}: initial_state {} must be (B,H,P,N) = ({},{},{},{}) or undefined", op, a.initial_state.desc(),
                   d.B, d.H, d.P, d.N);
  DType xt = a.x.dtype();
  STEREORT_CHECK(dtype_is_floating(xt), "{}: x {} must be floating", op, a.x.desc());
  STEREORT_CHECK(a.Bm.dtype() == xt && a.Cm.dtype() == xt,
                 "{}: Bm {} and Cm {} must have x's dtype {}; cast them with .to()", op, a.Bm.desc(), a.Cm.desc(),
                 dtype_name(xt));
  DType pd = xt == DType::F64 ? DType::F64 : DType::F32;
  auto param = [&](const Tensor& t, const char* name) {
    if (!t.defined()) return;
    STEREORT_CHECK(t.dtype() == pd, "{}: {} {} must be {} (fp32 parameters; f64 only with f64 x {})", op, name,
                   t.desc(), dtype_name(pd), a.x.desc());
    STEREORT_CHECK(t.device() == a.x.device(), "{}: {} {} is on another device than x {}", op, name, t.desc(),
                   a.x.desc());
  };
  param(a.dt, "dt");
  param(a.A, "A");
  param(a.Dskip, "Dskip");
  param(a.initial_state, "initial_state");
  STEREORT_CHECK(a.Bm.device() == a.x.device() && a.Cm.device() == a.x.device(),
                 "{}: Bm {} and Cm {} must be on x's device ({})", op, a.Bm.desc(), a.Cm.desc(), a.x.desc());
  STEREORT_CHECK(a.chunk_size >= 1, "{}: chunk_size must be >= 1, got {}", op, a.chunk_size);
  return d;
}

namespace {

inline size_t sz(int64_t n) { return static_cast<size_t>(n); }  // sizes for std::vector constructors

// Inputs widened to double, contiguous, plus index helpers.
struct Host {
  SsdDims d;
  int64_t hg;  // heads per group
  std::vector<double> x, dt, A, Bm, Cm, D, S0;
  size_t xi(int64_t b, int64_t t, int64_t h) const { return size_t(((b * d.L + t) * d.H + h) * d.P); }
  size_t ti(int64_t b, int64_t t, int64_t h) const { return size_t((b * d.L + t) * d.H + h); }
  size_t bi(int64_t b, int64_t t, int64_t h) const { return size_t(((b * d.L + t) * d.G + h / hg) * d.N); }
  size_t si(int64_t b, int64_t h) const { return size_t((b * d.H + h) * d.P * d.N); }
  double Dh(int64_t h) const { return D.empty() ? 0.0 : D[size_t(h)]; }
};

Host load(const SsdArgs& a, const SsdDims& d) {
  Host in;
  in.d = d;
  in.hg = d.H / d.G;
  in.x = a.x.to_vector();
  in.dt = a.dt.to_vector();
  in.A = a.A.to_vector();
  in.Bm = a.Bm.to_vector();
  in.Cm = a.Cm.to_vector();
  if (a.Dskip.defined()) in.D = a.Dskip.to_vector();
  if (a.initial_state.defined()) in.S0 = a.initial_state.to_vector();
  return in;
}

double dot(const double* u, const double* v, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += u[i] * v[i];
  return s;
}

// (P,N) slice of a (B,H,P,N) buffer <-> N x P state.
void load_state(const Host& in, int64_t b, int64_t h, std::vector<double>& S) {
  std::fill(S.begin(), S.end(), 0.0);
  if (in.S0.empty()) return;
  const double* s0 = in.S0.data() + in.si(b, h);
  for (int64_t p = 0; p < in.d.P; ++p)
    for (int64_t n = 0; n < in.d.N; ++n) S[size_t(n * in.d.P + p)] = s0[p * in.d.N + n];
}
void store_state(const Host& in, int64_t b, int64_t h, const double* S, std::vector<double>& out) {
  double* o = out.data() + in.si(b, h);
  for (int64_t p = 0; p < in.d.P; ++p)
    for (int64_t n = 0; n < in.d.N; ++n) o[p * in.d.N + n] = S[n * in.d.P + p];
}

Tensor make(const std::vector<double>& v, const Shape& s, const Tensor& like) {
  return Tensor::from_vector(v, s, like.dtype(), like.device());
}

// One (b,h) sequence, padded to a whole number of chunks with identity steps (log a = 0, no input, dy = 0).
struct Padded {
  int64_t Q, nc, Lp;
  std::vector<double> la, dt, x, B, C, dy;  // la/dt (Lp), x/dy (Lp*P), B/C (Lp*N)
};
Padded pad(const Host& in, int64_t b, int64_t h, int64_t Q, const std::vector<double>* dy) {
  const SsdDims& d = in.d;
  Padded s;
  s.Q = Q;
  s.nc = (d.L + Q - 1) / Q;
  s.Lp = s.nc * Q;
  s.la.assign(size_t(s.Lp), 0.0);
  s.dt.assign(size_t(s.Lp), 0.0);
  s.x.assign(size_t(s.Lp * d.P), 0.0);
  s.dy.assign(size_t(s.Lp * d.P), 0.0);
  s.B.assign(size_t(s.Lp * d.N), 0.0);
  s.C.assign(size_t(s.Lp * d.N), 0.0);
  for (int64_t t = 0; t < d.L; ++t) {
    double dt = in.dt[in.ti(b, t, h)];
    s.dt[size_t(t)] = dt;
    s.la[size_t(t)] = dt * in.A[size_t(h)];
    for (int64_t p = 0; p < d.P; ++p) {
      s.x[size_t(t * d.P + p)] = in.x[in.xi(b, t, h) + size_t(p)];
      if (dy) s.dy[size_t(t * d.P + p)] = (*dy)[in.xi(b, t, h) + size_t(p)];
    }
    for (int64_t n = 0; n < d.N; ++n) {
      s.B[size_t(t * d.N + n)] = in.Bm[in.bi(b, t, h) + size_t(n)];
      s.C[size_t(t * d.N + n)] = in.Cm[in.bi(b, t, h) + size_t(n)];
    }
  }
  return s;
}

// Chunked forward for one padded sequence: chunk-local cumulative log-decays cs, chunk states, the states entering
// each chunk Sin[c] (c = 0..nc; Sin[nc] = final state) and, when y != nullptr, the outputs y (Lp*P, no D term).
void chunked_states(const Padded& s, int64_t N, int64_t P, const std::vector<double>& S0, std::vector<double>& cs,
                    std::vector<double>& Sin, std::vector<double>* y) {
  const int64_t Q = s.Q, NP = N * P;
  cs.assign(size_t(s.Lp), 0.0);
  Sin.assign(size_t((s.nc + 1) * NP), 0.0);
  std::vector<double> Sc(sz(NP));
  std::copy(S0.begin(), S0.end(), Sin.begin());
  for (int64_t c = 0; c < s.nc; ++c) {
    const int64_t c0 = c * Q;
    // 1. cumulative log-decay within the chunk (a running sum of non-positive terms).
    double run = 0;
    for (int64_t i = 0; i < Q; ++i) cs[size_t(c0 + i)] = run += s.la[size_t(c0 + i)];
    // 3. chunk state: sum_j exp(sum_{r=j+1..Q-1} la_r) B_j (dt_j x_j)^T, suffix sums built right to left.
    std::fill(Sc.begin(), Sc.end(), 0.0);
    double suf = 0;
    for (int64_t j = Q - 1; j >= 0; --j) {
      double w = std::exp(suf) * s.dt[size_t(c0 + j)];
      for (int64_t n = 0; n < N; ++n) {
        double bn = w * s.B[size_t((c0 + j) * N + n)];
        for (int64_t p = 0; p < P; ++p) Sc[size_t(n * P + p)] += bn * s.x[size_t((c0 + j) * P + p)];
      }
      suf += s.la[size_t(c0 + j)];
    }
    // 4. state passing: S~_{c+1} = exp(cs_last) S~_c + S_c.
    double decay = std::exp(cs[size_t(c0 + Q - 1)]);
    for (int64_t e = 0; e < NP; ++e) Sin[size_t((c + 1) * NP + e)] = decay * Sin[size_t(c * NP + e)] + Sc[size_t(e)];
  }
  if (!y) return;
  y->assign(size_t(s.Lp * P), 0.0);
  std::vector<double> acc(sz(P));
  for (int64_t c = 0; c < s.nc; ++c) {
    const int64_t c0 = c * Q;
    const double* S = Sin.data() + c * NP;
    for (int64_t i = 0; i < Q; ++i) {
      const double* Ci = s.C.data() + (c0 + i) * N;
      std::fill(acc.begin(), acc.end(), 0.0);
      // 2. diagonal block: sum_{j<=i} exp(seg[i,j]) (C_i . B_j) dt_j x_j, seg grown one term at a time.
      double seg = 0;
      for (int64_t j = i; j >= 0; --j) {
        if (j < i) seg += s.la[size_t(c0 + j + 1)];
        double w = std::exp(seg) * dot(Ci, s.B.data() + (c0 + j) * N, N) * s.dt[size_t(c0 + j)];
        for (int64_t p = 0; p < P; ++p) acc[size_t(p)] += w * s.x[size_t((c0 + j) * P + p)];
      }
      // 5. off-diagonal: exp(cs_i) S~_c^T C_i.
      double eo = std::exp(cs[size_t(c0 + i)]);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t p = 0; p < P; ++p) acc[size_t(p)] += eo * Ci[n] * S[n * P + p];
      for (int64_t p = 0; p < P; ++p) (*y)[size_t((c0 + i) * P + p)] = acc[size_t(p)];
    }
  }
}

}  // namespace

namespace ref {

SsdResult ssd_recurrent(const SsdArgs& a) {
  SsdDims d = ssd_check_args(a, "ssd_recurrent");
  Host in = load(a, d);
  const int64_t N = d.N, P = d.P;
  std::vector<double> y(in.x.size()), fin(sz(d.B * d.H * P * N)), S(sz(N * P));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      load_state(in, b, h, S);
      for (int64_t t = 0; t < d.L; ++t) {
        double dt = in.dt[in.ti(b, t, h)], at = std::exp(dt * in.A[size_t(h)]);
        const double* x = in.x.data() + in.xi(b, t, h);
        const double* Bt = in.Bm.data() + in.bi(b, t, h);
        const double* Ct = in.Cm.data() + in.bi(b, t, h);
        double* yt = y.data() + in.xi(b, t, h);
        for (int64_t p = 0; p < P; ++p) yt[p] = in.Dh(h) * x[p];
        for (int64_t n = 0; n < N; ++n)
          for (int64_t p = 0; p < P; ++p) {
            double& s = S[size_t(n * P + p)];
            s = at * s + dt * Bt[n] * x[p];
            yt[p] += Ct[n] * s;
          }
      }
      store_state(in, b, h, S.data(), fin);
    }
  SsdResult r;
  r.y = make(y, a.x.shape(), a.x);
  if (a.return_final_state) r.final_state = make(fin, {d.B, d.H, P, N}, a.A);
  return r;
}

SsdResult ssd_chunked(const SsdArgs& a) {
  SsdDims d = ssd_check_args(a, "ssd_chunked");
  Host in = load(a, d);
  const int64_t N = d.N, P = d.P;
  std::vector<double> y(in.x.size()), fin(sz(d.B * d.H * P * N)), S0(sz(N * P)), cs, Sin, yc;
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      Padded s = pad(in, b, h, a.chunk_size, nullptr);
      load_state(in, b, h, S0);
      chunked_states(s, N, P, S0, cs, Sin, &yc);
      for (int64_t t = 0; t < d.L; ++t)  // crop the padding; add the D skip
        for (int64_t p = 0; p < P; ++p)
          y[in.xi(b, t, h) + size_t(p)] = yc[size_t(t * P + p)] + in.Dh(h) * s.x[size_t(t * P + p)];
      store_state(in, b, h, Sin.data() + s.nc * N * P, fin);
    }
  SsdResult r;
  r.y = make(y, a.x.shape(), a.x);
  if (a.return_final_state) r.final_state = make(fin, {d.B, d.H, P, N}, a.A);
  return r;
}

Tensor ssd_attention(const SsdArgs& a) {
  SsdDims d = ssd_check_args(a, "ssd_attention");
  Host in = load(a, d);
  const int64_t N = d.N, P = d.P;
  std::vector<double> y(in.x.size()), S0(sz(N * P)), acc(sz(P));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      load_state(in, b, h, S0);
      double A = in.A[size_t(h)], cs = 0;
      for (int64_t t = 0; t < d.L; ++t) {
        const double* Ct = in.Cm.data() + in.bi(b, t, h);
        std::fill(acc.begin(), acc.end(), 0.0);
        // Row t of L o C B^T: L[t,s] = exp(A sum_{r=s+1..t} dt_r) dt_s, the exponent grown one term at a time.
        double seg = 0;
        for (int64_t s = t; s >= 0; --s) {
          if (s < t) seg += in.dt[in.ti(b, s + 1, h)] * A;
          double L = std::exp(seg) * in.dt[in.ti(b, s, h)];
          double w = L * dot(Ct, in.Bm.data() + in.bi(b, s, h), N);
          const double* xs = in.x.data() + in.xi(b, s, h);
          for (int64_t p = 0; p < P; ++p) acc[size_t(p)] += w * xs[p];
        }
        cs += in.dt[in.ti(b, t, h)] * A;  // the initial state decays by exp(sum_{r<=t} log a_r)
        double e0 = std::exp(cs);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t p = 0; p < P; ++p) acc[size_t(p)] += e0 * Ct[n] * S0[size_t(n * P + p)];
        const double* xt = in.x.data() + in.xi(b, t, h);
        for (int64_t p = 0; p < P; ++p) y[in.xi(b, t, h) + size_t(p)] = acc[size_t(p)] + in.Dh(h) * xt[p];
      }
    }
  return make(y, a.x.shape(), a.x);
}

namespace {
// Gradient buffers in double, converted to each input's dtype at the end.
struct GradBufs {
  std::vector<double> dx, ddt, dA, dB, dC, dD, dS0;
  GradBufs(const Host& in)
      : dx(in.x.size()), ddt(in.dt.size()), dA(in.A.size()), dB(in.Bm.size()), dC(in.Cm.size()),
        dD(sz(in.d.H)), dS0(sz(in.d.B * in.d.H * in.d.P * in.d.N)) {}
  SsdGrads finish(const SsdArgs& a) const {
    SsdGrads g;
    g.dx = make(dx, a.x.shape(), a.x);
    g.ddt = make(ddt, a.dt.shape(), a.dt);
    g.dA = make(dA, a.A.shape(), a.A);
    g.dBm = make(dB, a.Bm.shape(), a.Bm);
    g.dCm = make(dC, a.Cm.shape(), a.Cm);
    if (a.Dskip.defined()) g.dDskip = make(dD, a.Dskip.shape(), a.Dskip);
    if (a.initial_state.defined()) g.dinitial_state = make(dS0, a.initial_state.shape(), a.initial_state);
    return g;
  }
};
std::vector<double> dfinal_vec(const Tensor& dfinal, const SsdDims& d) {
  if (!dfinal.defined()) return {};
  STEREORT_CHECK(dfinal.shape() == Shape({d.B, d.H, d.P, d.N}), "ssd backward: dfinal_state {} must be (B,H,P,N)",
                 dfinal.desc());
  return dfinal.to_vector();
}
void check_dy(const Tensor& dy, const SsdArgs& a) {
  STEREORT_CHECK(dy.defined() && dy.shape() == a.x.shape(), "ssd backward: dy {} must have x's shape {}",
                 dy.defined() ? dy.desc() : std::string("undefined"), shape_str(a.x.shape()));
}
}  // namespace

SsdGrads ssd_recurrent_backward(const SsdArgs& a, const Tensor& dy_t, const Tensor& dfinal) {
  SsdDims d = ssd_check_args(a, "ssd_recurrent_backward");
  check_dy(dy_t, a);
  Host in = load(a, d);
  std::vector<double> dy = dy_t.to_vector(), dF = dfinal_vec(dfinal, d);
  Host gf = in;  // dfinal in the Host layout helpers
  gf.S0 = dF;
  const int64_t N = d.N, P = d.P, NP = N * P;
  GradBufs g(in);
  std::vector<double> hist(sz((d.L + 1) * NP)), S(sz(NP)), G(sz(NP)), dXb(sz(P));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      double A = in.A[size_t(h)], Dh = in.Dh(h);
      // Forward, keeping every state: hist[t+1] = S_t, hist[0] = S_{-1}.
      load_state(in, b, h, S);
      std::copy(S.begin(), S.end(), hist.begin());
      for (int64_t t = 0; t < d.L; ++t) {
        double dt = in.dt[in.ti(b, t, h)], at = std::exp(dt * A);
        const double* x = in.x.data() + in.xi(b, t, h);
        const double* Bt = in.Bm.data() + in.bi(b, t, h);
        for (int64_t n = 0; n < N; ++n)
          for (int64_t p = 0; p < P; ++p) S[size_t(n * P + p)] = at * S[size_t(n * P + p)] + dt * Bt[n] * x[p];
        std::copy(S.begin(), S.end(), hist.begin() + (t + 1) * NP);
      }
      // Adjoint, right to left: G holds a_{t+1} g_{t+1} on entry, g_t after adding C_t dy_t^T.
      load_state(gf, b, h, G);
      double dA = 0, dD = 0;
      for (int64_t t = d.L - 1; t >= 0; --t) {
        double dt = in.dt[in.ti(b, t, h)], at = std::exp(dt * A);
        const double* x = in.x.data() + in.xi(b, t, h);
        const double* dyt = dy.data() + in.xi(b, t, h);
        const double* Bt = in.Bm.data() + in.bi(b, t, h);
        const double* Ct = in.Cm.data() + in.bi(b, t, h);
        double* dBt = g.dB.data() + in.bi(b, t, h);
        double* dCt = g.dC.data() + in.bi(b, t, h);
        const double* St = hist.data() + (t + 1) * NP;
        const double* Sp = hist.data() + t * NP;
        for (int64_t n = 0; n < N; ++n)
          for (int64_t p = 0; p < P; ++p) G[size_t(n * P + p)] += Ct[n] * dyt[p];
        std::fill(dXb.begin(), dXb.end(), 0.0);
        double gS = 0;
        for (int64_t n = 0; n < N; ++n) {
          double db = 0, dc = 0;
          for (int64_t p = 0; p < P; ++p) {
            double gv = G[size_t(n * P + p)];
            dXb[size_t(p)] += gv * Bt[n];   // dX̄_t = g_t^T B_t
            db += gv * dt * x[p];           // dB_t = g_t X̄_t
            dc += St[n * P + p] * dyt[p];   // dC_t = S_t dy_t
            gS += gv * Sp[n * P + p];
          }
          dBt[n] += db;
          dCt[n] += dc;
        }
        double dla = at * gS;  // <g_t, a_t S_{t-1}>
        double* dxt = g.dx.data() + in.xi(b, t, h);
        double xdX = 0, dyx = 0;
        for (int64_t p = 0; p < P; ++p) {
          dxt[p] = dt * dXb[size_t(p)] + Dh * dyt[p];
          xdX += x[p] * dXb[size_t(p)];
          dyx += dyt[p] * x[p];
        }
        g.ddt[in.ti(b, t, h)] = xdX + A * dla;
        dA += dt * dla;
        dD += dyx;
        for (double& v : G) v *= at;
      }
      g.dA[size_t(h)] += dA;
      g.dD[size_t(h)] += dD;
      store_state(in, b, h, G.data(), g.dS0);  // a_0 g_0
    }
  return g.finish(a);
}

SsdGrads ssd_chunked_backward(const SsdArgs& a, const Tensor& dy_t, const Tensor& dfinal) {
  SsdDims d = ssd_check_args(a, "ssd_chunked_backward");
  check_dy(dy_t, a);
  Host in = load(a, d);
  std::vector<double> dy = dy_t.to_vector();
  Host gf = in;
  gf.S0 = dfinal_vec(dfinal, d);
  const int64_t N = d.N, P = d.P, NP = N * P, Q = a.chunk_size;
  GradBufs g(in);
  std::vector<double> S0(sz(NP)), cs, Sin, Gin, E(sz(NP));
  std::vector<double> suf(sz(Q)), dXb(sz(Q * P)), dBc(sz(Q * N)), dCc(sz(Q * N));
  std::vector<double> sdt(sz(Q)), rowsum(sz(Q)), colsum(sz(Q)), Goff(sz(Q)), Gst(sz(Q)), tmpP(sz(P)),
      tmpN(sz(N));
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h) {
      double A = in.A[size_t(h)], Dh = in.Dh(h);
      Padded s = pad(in, b, h, Q, &dy);
      load_state(in, b, h, S0);
      chunked_states(s, N, P, S0, cs, Sin, nullptr);  // Sin[c]: forward state entering chunk c
      // Reverse state passing of the adjoint: Gin[c] enters chunk c from the right (a_{end+1} g_{end+1}; dfinal
      // for the last chunk); E_c = sum_s exp(cs_s) C_s dy_s^T is what chunk c sends left.
      Gin.assign(size_t(s.nc * NP), 0.0);
      load_state(gf, b, h, S0);
      std::copy(S0.begin(), S0.end(), Gin.begin() + (s.nc - 1) * NP);
      for (int64_t c = s.nc - 1; c >= 0; --c) {
        const int64_t c0 = c * Q;
        std::fill(E.begin(), E.end(), 0.0);
        for (int64_t i = 0; i < Q; ++i) {
          double w = std::exp(cs[size_t(c0 + i)]);
          for (int64_t n = 0; n < N; ++n)
            for (int64_t p = 0; p < P; ++p)
              E[size_t(n * P + p)] += w * s.C[size_t((c0 + i) * N + n)] * s.dy[size_t((c0 + i) * P + p)];
        }
        double decay = std::exp(cs[size_t(c0 + Q - 1)]);
        const double* Gc = Gin.data() + c * NP;
        double* Gl = c > 0 ? Gin.data() + (c - 1) * NP : S0.data();  // S0 now receives dS_{-1}
        for (int64_t e = 0; e < NP; ++e) Gl[e] = decay * Gc[e] + E[size_t(e)];
      }
      store_state(in, b, h, S0.data(), g.dS0);

      double dA = 0, dD = 0;
      for (int64_t c = 0; c < s.nc; ++c) {
        const int64_t c0 = c * Q;
        const double* Si = Sin.data() + c * NP;
        const double* Gi = Gin.data() + c * NP;
        auto la = [&](int64_t i) { return s.la[size_t(c0 + i)]; };
        auto Bj = [&](int64_t j) { return s.B.data() + (c0 + j) * N; };
        auto Cj = [&](int64_t j) { return s.C.data() + (c0 + j) * N; };
        auto xj = [&](int64_t j) { return s.x.data() + (c0 + j) * P; };
        auto dyj = [&](int64_t j) { return s.dy.data() + (c0 + j) * P; };
        double run = 0, dtot = 0;
        for (int64_t j = Q - 1; j >= 0; --j) {
          suf[size_t(j)] = run;     // sum_{r=j+1..Q-1} la_r
          sdt[size_t(j)] = dtot;    // sum_{r=j+1..Q-1} dt_r
          run += la(j);
          dtot += s.dt[size_t(c0 + j)];
        }
        std::fill(dBc.begin(), dBc.end(), 0.0);
        std::fill(dCc.begin(), dCc.end(), 0.0);
        std::fill(rowsum.begin(), rowsum.end(), 0.0);
        std::fill(colsum.begin(), colsum.end(), 0.0);
        // Terms through the chunk boundaries: the adjoint Gin from the right, the state Sin from the left.
        for (int64_t j = 0; j < Q; ++j) {
          double es = std::exp(suf[size_t(j)]), ec = std::exp(cs[size_t(c0 + j)]), dtj = s.dt[size_t(c0 + j)];
          for (int64_t p = 0; p < P; ++p) tmpP[size_t(p)] = 0;
          for (int64_t n = 0; n < N; ++n) {
            double gx = 0, sdy = 0;
            for (int64_t p = 0; p < P; ++p) {
              tmpP[size_t(p)] += Gi[n * P + p] * Bj(j)[n];
              gx += Gi[n * P + p] * xj(j)[p];
              sdy += Si[n * P + p] * dyj(j)[p];
            }
            dBc[size_t(j * N + n)] = es * dtj * gx;  // exp(suf_j) Gin X̄_j
            dCc[size_t(j * N + n)] = ec * sdy;       // exp(cs_j) Sin dy_j
            tmpN[size_t(n)] = sdy;
          }
          for (int64_t p = 0; p < P; ++p) dXb[size_t(j * P + p)] = es * tmpP[size_t(p)];  // exp(suf_j) Gin^T B_j
          Gst[size_t(j)] = dtj * dot(xj(j), dXb.data() + j * P, P);                       // X̄_j . dX̄off_j
          Goff[size_t(j)] = ec * dot(Cj(j), tmpN.data(), N);                               // dy_j . Y_off_j
        }
        double Gcross = std::exp(cs[size_t(c0 + Q - 1)]) * dot(Gi, Si, NP);
        // dA = sum_t dt_t dla_t, summed pair by pair: each pair's share times the dt it spans. A telescoped dla_t
        // carries rounding residue that dt_t = 1e30 (a reset) would amplify; a pair spanning a reset is exactly 0.
        double cdt = 0;
        for (int64_t i = 0; i < Q; ++i) {
          cdt += s.dt[size_t(c0 + i)];
          dA += Goff[size_t(i)] * cdt + Gst[size_t(i)] * sdt[size_t(i)];
        }
        dA += Gcross * dtot;
        // Diagonal block, column by column: for s >= j, e = exp(seg[s,j]) grown one term at a time,
        // W = e dt_j (dy_s . x_j), Gm = W (C_s . B_j) (the pair's share of the loss).
        for (int64_t j = 0; j < Q; ++j) {
          double seg = 0, dsum = 0, dtj = s.dt[size_t(c0 + j)];
          for (int64_t sidx = j; sidx < Q; ++sidx) {
            if (sidx > j) {
              seg += la(sidx);
              dsum += s.dt[size_t(c0 + sidx)];
            }
            double e = std::exp(seg), cb = dot(Cj(sidx), Bj(j), N), w = e * dtj * dot(dyj(sidx), xj(j), P);
            for (int64_t p = 0; p < P; ++p) dXb[size_t(j * P + p)] += e * cb * dyj(sidx)[p];
            for (int64_t n = 0; n < N; ++n) {
              dBc[size_t(j * N + n)] += w * Cj(sidx)[n];
              dCc[size_t(sidx * N + n)] += w * Bj(j)[n];
            }
            if (sidx > j) {
              rowsum[size_t(sidx)] += w * cb;
              colsum[size_t(j)] += w * cb;
              dA += w * cb * dsum;
            }
          }
        }
        // d log a_i = sum_{k>=i} (rowsum_k - colsum_k + Goff_k) + sum_{j<i} Gst_j + Gcross.
        run = 0;
        std::vector<double>& R = suf;  // reuse as the reverse cumulative sum
        for (int64_t i = Q - 1; i >= 0; --i) R[size_t(i)] = run += rowsum[size_t(i)] - colsum[size_t(i)] + Goff[size_t(i)];
        double pre = 0;
        for (int64_t i = 0; i < Q; ++i) {
          int64_t t = c0 + i;
          double dla = R[size_t(i)] + pre + Gcross;
          pre += Gst[size_t(i)];
          if (t >= d.L) continue;
          double xdX = 0, dyx = 0, dt = s.dt[size_t(t)];
          double* dxt = g.dx.data() + in.xi(b, t, h);
          for (int64_t p = 0; p < P; ++p) {
            double dXbp = dXb[size_t(i * P + p)];
            dxt[p] = dt * dXbp + Dh * dyj(i)[p];
            xdX += xj(i)[p] * dXbp;
            dyx += dyj(i)[p] * xj(i)[p];
          }
          g.ddt[in.ti(b, t, h)] = xdX + A * dla;
          dD += dyx;
          for (int64_t n = 0; n < N; ++n) {
            g.dB[in.bi(b, t, h) + size_t(n)] += dBc[size_t(i * N + n)];
            g.dC[in.bi(b, t, h) + size_t(n)] += dCc[size_t(i * N + n)];
          }
        }
      }
      g.dA[size_t(h)] += dA;
      g.dD[size_t(h)] += dD;
    }
  return g.finish(a);
}

}  // namespace ref

// ---- the op ------------------------------------------------------------------------------------------------------

namespace {
// Detached inputs in the layout the CUDA kernels read: unit stride over the last dim and packed inner dims of x
// (H,P), Bm/Cm (G,N) and dt (H); any batch and step strides (x, B, C sliced from one projection are not copied).
SsdArgs cuda_layout(const SsdArgs& a) {
  auto det = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
  auto inner2 = [](const Tensor& t) {
    return t.stride(3) == 1 && (t.stride(2) == t.size(3) || t.size(2) == 1) ? t : t.contiguous();
  };
  SsdArgs s{inner2(a.x.detach()), det(a.dt), det(a.A).contiguous(), inner2(a.Bm.detach()), inner2(a.Cm.detach()),
            a.Dskip.defined() ? a.Dskip.detach().contiguous() : Tensor(),
            a.initial_state.defined() ? a.initial_state.detach().contiguous() : Tensor(), a.chunk_size, false};
  if (s.dt.stride(2) != 1) s.dt = s.dt.contiguous();
  return s;
}
}  // namespace


SsdResult ssd_chunk_scan(const SsdArgs& a) {
  const SsdDims d = ssd_check_args(a, "ssd_chunk_scan");
  (void)d;  // read by the CUDA path only
  const bool want_final = a.return_final_state;
  SsdResult r;
  Tensor seg_states;
  cuda::SsdPlan plan;
  if (a.x.is_cuda()) {
    STEREORT_CHECK(a.x.dtype() != DType::F64,
                   "ssd_chunk_scan: the CUDA kernel computes in fp32 with f32/f16/bf16 x; got {} (use the CPU "
                   "reference for f64)", a.x.desc());
    STEREORT_CUDA_PATH(
        STEREORT_CHECK(cuda::ssd_cuda_supported(d),
                       "ssd_chunk_scan: CUDA kernel supports head dim P in {{8,16,32,64}} with N*P <= 2048; got "
                       "x {} and Bm {} (P={}, N={}); run it on the CPU or change the head size",
                       a.x.desc(), a.Bm.desc(), d.P, d.N);
        plan = cuda::ssd_cuda_plan(d, a.chunk_size);
        r.y = Tensor::empty(a.x.shape(), a.x.dtype(), a.x.device());
        seg_states = Tensor::empty({d.B, d.H, plan.nseg, d.N, d.P}, DType::F32, a.x.device());
        if (want_final) r.final_state = Tensor::empty({d.B, d.H, d.P, d.N}, DType::F32, a.x.device());
        cuda::ssd_forward(cuda_layout(a), plan, r.y, seg_states, r.final_state, Context::get(a.x.device())));
  } else {
    r = ref::ssd_chunked(a);
  }
  std::vector<Tensor> outs = {r.y};
  if (want_final) outs.push_back(r.final_state);
  auto det = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
  SsdArgs saved = a.x.is_cuda() ? cuda_layout(a)
                                : SsdArgs{det(a.x), det(a.dt), det(a.A), det(a.Bm), det(a.Cm), det(a.Dskip),
                                          det(a.initial_state), a.chunk_size, false};
  record("ssd_chunk_scan", {a.x, a.dt, a.A, a.Bm, a.Cm, a.Dskip, a.initial_state}, outs,
         [saved, plan, seg_states, want_final](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor dfinal = want_final ? g[1] : Tensor();
           SsdGrads gr;
           if (saved.x.is_cuda()) {
             STEREORT_CUDA_PATH(
                 const SsdArgs& s = saved; Device dev = s.x.device();
                 gr.dx = Tensor::empty(s.x.shape(), s.x.dtype(), dev);
                 gr.ddt = Tensor::empty(s.dt.shape(), DType::F32, dev);
                 gr.dA = Tensor::empty(s.A.shape(), DType::F32, dev);
                 gr.dBm = Tensor::empty(s.Bm.shape(), DType::F32, dev);
                 gr.dCm = Tensor::empty(s.Cm.shape(), DType::F32, dev);
                 if (s.Dskip.defined()) gr.dDskip = Tensor::empty(s.Dskip.shape(), DType::F32, dev);
                 if (s.initial_state.defined())
                     gr.dinitial_state = Tensor::empty(s.initial_state.shape(), DType::F32, dev);
                 cuda::ssd_backward(s, plan, g[0].to(s.x.dtype()).contiguous(),
                                    dfinal.defined() ? dfinal.to(DType::F32).contiguous() : Tensor(), seg_states, gr,
                                    Context::get(dev));
                 gr.dBm = gr.dBm.to(s.Bm.dtype()); gr.dCm = gr.dCm.to(s.Cm.dtype()));
           } else {
             gr = ref::ssd_chunked_backward(saved, g[0], dfinal);
           }
           return {gr.dx, gr.ddt, gr.dA, gr.dBm, gr.dCm, gr.dDskip, gr.dinitial_state};
         });
  return r;
}

}  // namespace stereort
