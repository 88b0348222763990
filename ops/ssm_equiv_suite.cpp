// ops/ssm_equiv_suite.cpp — the case lists, error rows and table of the SSM equivalence suite (ops/ssm_equiv.h).
//   CPU (fp64): forms (2) attn, (3) chunk at every Q and (4) m1 against (1) rec — outputs, final states and all
//   gradients — plus float64 central differences on tiny cases. CUDA: the fp32 kernels (and bf16 x) against the fp64
//   recurrence and its adjoint evaluated on the rounded inputs.
#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/reduce.h"
#include "ops/ssm_equiv.h"

namespace stereort {
namespace equiv {

namespace {

constexpr double kBoundF64 = 1e-12;  // fp64 forms against each other
constexpr double kBoundFd = 1e-6;    // fp64 central differences
constexpr double kBoundF32 = 1e-5;   // fp32 kernel vs fp64 reference on the fp32-rounded inputs
constexpr double kBoundBF16 = 1e-2;  // bf16 x/B/C, fp32 math
constexpr int64_t kGraphMaxT = 128;  // the materialised-attention graph is O(T^3) through its triangular matmul

struct Bound {
  double rel = 0;              // norm-wise relative bound (when rtol < 0)
  double rtol = -1, atol = 0;  // element-wise |got - ref| <= atol + rtol |ref| (mamba's gradient bounds)
  std::string str() const {
    return rtol < 0 ? fmt::format("{:.0e}", rel) : fmt::format("({:.1e},{:.0e})", rtol, atol);
  }
};
Bound rel_bound(double r) { return Bound{r, -1, 0}; }
Bound allclose(double rtol, double atol) { return Bound{0, rtol, atol}; }

// The case columns of a row.
struct Meta {
  std::string dtype;
  const Case* c;
  std::string init;
  std::vector<int64_t> reset_steps;
};

class Sink {
 public:
  explicit Sink(const SuiteOptions& o) : opt_(o) {}
  // Compare got with ref over the elements where keep(i) (all when keep is empty).
  void add(const std::string& pair, const std::string& what, const Meta& m, int64_t Q, const Tensor& got,
           const Tensor& ref, const Bound& b, const std::function<bool(int64_t)>& keep = {}) {
    Row r;
    r.pair = pair;
    r.what = what;
    r.dtype = m.dtype;
    r.T = m.c->T, r.Q = Q, r.G = m.c->G, r.N = m.c->N, r.P = m.c->P;
    r.regime = regime_name(m.c->regime);
    r.init = m.init;
    r.bound = b.str();
    if (!got.defined() || !ref.defined() || got.shape() != ref.shape()) {
      r.pass = false;
      r.rel = r.max_abs = INFINITY;
      push(r);
      return;
    }
    std::vector<double> g = got.to_vector(), f = ref.to_vector();
    double e2 = 0, r2 = 0, g2 = 0;
    bool ok = true;
    for (size_t i = 0; i < g.size(); ++i) {
      if (keep && !keep(int64_t(i))) continue;
      double d = std::fabs(g[i] - f[i]);
      if (!std::isfinite(g[i]) && std::isfinite(f[i])) ok = false;
      if (b.rtol >= 0 && !(d <= b.atol + b.rtol * std::fabs(f[i]))) ok = false;
      if (!(d <= r.max_abs)) {  // also catches NaN
        r.max_abs = std::isfinite(d) ? d : INFINITY;
        r.worst = int64_t(i);
      }
      e2 += d * d;
      r2 += f[i] * f[i];
      g2 += g[i] * g[i];
    }
    r.rel = r2 > 0 ? std::sqrt(e2 / r2) : std::sqrt(g2);
    if (!std::isfinite(r.rel)) ok = false;
    if (b.rtol < 0 && !(r.rel <= b.rel)) ok = false;
    r.pass = ok;
    push(r);
  }
  void add_value(const std::string& pair, const std::string& what, const Meta& m, int64_t Q, double rel,
                 double max_abs, double bound, bool extra_ok) {
    Row r;
    r.pair = pair, r.what = what, r.dtype = m.dtype;
    r.T = m.c->T, r.Q = Q, r.G = m.c->G, r.N = m.c->N, r.P = m.c->P;
    r.regime = regime_name(m.c->regime), r.init = m.init;
    r.rel = rel, r.max_abs = max_abs, r.bound = rel_bound(bound).str();
    r.pass = extra_ok && rel <= bound;
    push(r);
  }
  // All gradients of a form against the reference's. dS0 only where both have it; dx split at reset steps.
  void grads(const std::string& pair, const Meta& m, int64_t Q, const SsdGrads& got, const SsdGrads& ref,
             const std::function<Bound(const std::string&)>& bound) {
    const Case& c = *m.c;
    if (!m.reset_steps.empty()) {
      std::set<int64_t> r(m.reset_steps.begin(), m.reset_steps.end());
      auto at_reset = [&, r](int64_t i) { return r.count((i / (c.H * c.P)) % c.T) > 0; };
      add(pair, "dx", m, Q, got.dx, ref.dx, bound("dx"), [&](int64_t i) { return !at_reset(i); });
      add(pair, "dx@reset", m, Q, got.dx, ref.dx, bound("dx"), at_reset);
    } else {
      add(pair, "dx", m, Q, got.dx, ref.dx, bound("dx"));
    }
    add(pair, "ddt", m, Q, got.ddt, ref.ddt, bound("ddt"));
    add(pair, "dA", m, Q, got.dA, ref.dA, bound("dA"));
    add(pair, "dB", m, Q, got.dBm, ref.dBm, bound("dB"));
    add(pair, "dC", m, Q, got.dCm, ref.dCm, bound("dC"));
    if (ref.dDskip.defined()) add(pair, "dD", m, Q, got.dDskip, ref.dDskip, bound("dD"));
    if (ref.dinitial_state.defined() && got.dinitial_state.defined())
      add(pair, "dS0", m, Q, got.dinitial_state, ref.dinitial_state, bound("dS0"));
  }
  std::vector<Row> rows;

 private:
  void push(const Row& r) {
    rows.push_back(r);
    if (opt_.on_row) opt_.on_row(r);
  }
  const SuiteOptions& opt_;
};

std::vector<int64_t> chunk_sizes(int64_t T) {
  std::vector<int64_t> q = {1, 16, 64, 256, std::max<int64_t>(T, 1)};  // the last one: Q >= T (one chunk)
  std::sort(q.begin(), q.end());
  q.erase(std::unique(q.begin(), q.end()), q.end());
  return q;
}

// ---- fp64 on the CPU -------------------------------------------------------------------------------------------------
void run_cpu_case(Sink& sink, const Case& c, bool grads, const std::vector<int64_t>& Qs) {
  Inputs in = make_inputs(c);
  const SsdArgs& a = in.args;
  Meta m{"f64", &c, c.random_init ? "random" : "zero", in.reset_steps};
  Tensor gy = randn(a.x.shape(), DType::F64, Device::cpu(), c.seed * 16 + 8);
  Tensor gS = randn({c.B, c.H, c.P, c.N}, DType::F64, Device::cpu(), c.seed * 16 + 9);
  auto fb = [](const std::string&) { return rel_bound(kBoundF64); };
  FormResult rec = form_recurrent(a, gy, gS, grads);
  // (2) materialised attention: loops for y; the differentiable graph for its final state and gradients.
  bool graph = grads && c.T <= kGraphMaxT;
  FormResult att = form_attention(a, gy, gS, graph);
  sink.add("attn vs rec", "y", m, 0, att.y, rec.y, rel_bound(kBoundF64));
  if (graph) {
    sink.add("attn vs rec", "final", m, 0, att.final_state, rec.final_state, rel_bound(kBoundF64));
    sink.grads("attn vs rec", m, 0, att.grads, rec.grads, fb);
  }
  // (3) chunked at every Q.
  for (int64_t Q : Qs) {
    SsdArgs aq = a;
    aq.chunk_size = Q;
    FormResult ch = form_chunked(aq, gy, gS, grads);
    sink.add("chunk vs rec", "y", m, Q, ch.y, rec.y, rel_bound(kBoundF64));
    sink.add("chunk vs rec", "final", m, Q, ch.final_state, rec.final_state, rel_bound(kBoundF64));
    if (grads) sink.grads("chunk vs rec", m, Q, ch.grads, rec.grads, fb);
  }
  // (4) Mamba-1 with A and dt broadcast over the state: no initial or final state, so compare without them.
  if (!c.random_init) {
    FormResult rec0 = grads ? form_recurrent(a, gy, Tensor(), true) : rec;
    FormResult m1 = form_mamba1(a, gy, grads);
    sink.add("m1 vs rec", "y", m, 0, m1.y, rec.y, rel_bound(kBoundF64));
    if (grads) sink.grads("m1 vs rec", m, 0, m1.grads, rec0.grads, fb);
  }
}

// Central differences (float64, core/autograd gradcheck) on tiny cases for forms (1), (2), (3) and (4).
void run_fd_case(Sink& sink, const Case& c) {
  Inputs in = make_inputs(c);
  const SsdArgs& a = in.args;
  Meta m{"f64", &c, c.random_init ? "random" : "zero", {}};
  Tensor gy = randn(a.x.shape(), DType::F64, Device::cpu(), c.seed * 16 + 8);
  Tensor gS = randn({c.B, c.H, c.P, c.N}, DType::F64, Device::cpu(), c.seed * 16 + 9);
  std::vector<Tensor> xs = {a.x, a.dt, a.A, a.Bm, a.Cm, a.Dskip, a.initial_state};
  auto args_of = [&](const std::vector<Tensor>& v, int64_t Q) {
    SsdArgs s{v[0], v[1], v[2], v[3], v[4], v[5], v[6], Q, true};
    return s;
  };
  auto loss = [&](const SsdResult& r) {
    Tensor l = sum(mul(r.y, gy));
    return r.final_state.defined() && gS.defined() ? add(l, sum(mul(r.final_state, gS))) : l;
  };
  struct Fd {
    const char* pair;
    std::function<Tensor(const std::vector<Tensor>&)> f;
  };
  std::vector<Fd> fds = {
      {"fd vs chunk", [&](const std::vector<Tensor>& v) { return loss(ssd_chunk_scan(args_of(v, 3))); }},
      {"fd vs attn", [&](const std::vector<Tensor>& v) { return loss(attention_graph(args_of(v, 3))); }},
      {"fd vs rec", [&](const std::vector<Tensor>& v) { return loss(recurrent_op(args_of(v, 3))); }},
  };
  for (const Fd& fd : fds) {
    GradcheckResult g = gradcheck(fd.f, xs);
    sink.add_value(fd.pair, "grad", m, std::string(fd.pair) == "fd vs chunk" ? 3 : 0, g.norm_rel_err, g.max_abs_err,
                   kBoundFd, std::isfinite(g.norm_rel_err));
  }
  if (!c.random_init) {
    std::vector<Tensor> xs6(xs.begin(), xs.begin() + 6);
    GradcheckResult g = gradcheck(
        [&](const std::vector<Tensor>& v) {
          SsdArgs s{v[0], v[1], v[2], v[3], v[4], v[5], Tensor(), 1, false};
          return sum(mul(mamba1_mapped(s), gy));
        },
        xs6);
    sink.add_value("fd vs m1", "grad", m, 0, g.norm_rel_err, g.max_abs_err, kBoundFd, std::isfinite(g.norm_rel_err));
  }
}

// ---- CUDA kernels against fp64 references ------------------------------------------------------------------------
SsdArgs cast_args(const SsdArgs& a, DType xt, DType pt, Device dev) {
  auto cv = [&](const Tensor& t, DType d) { return t.defined() ? t.to(d).to(dev) : t; };
  SsdArgs r = a;
  r.x = cv(a.x, xt), r.Bm = cv(a.Bm, xt), r.Cm = cv(a.Cm, xt);
  r.dt = cv(a.dt, pt), r.A = cv(a.A, pt), r.Dskip = cv(a.Dskip, pt), r.initial_state = cv(a.initial_state, pt);
  return r;
}

// Leave 0xFF-filled (NaN) blocks of these sizes in the CUDA caching allocator, so that the outputs and gradients the
// kernels allocate next start as NaN: an element a kernel forgets to write shows up as a non-finite error.
void poison_pool(const std::vector<Tensor>& like, Device dev) {
  std::vector<Tensor> held;
  for (const Tensor& t : like) {
    if (!t.defined()) continue;
    Tensor p = Tensor::empty({int64_t(t.numel()) * 4}, DType::U8, dev);  // the f32 size of t
    p.fill_(255.0);
    held.push_back(p);
  }
}

void run_cuda_case(Sink& sink, const Case& c, const std::vector<int64_t>& Qs, bool bf16) {
  Inputs in = make_inputs(c);
  const Device dev = Device::cuda(0);
  SsdArgs a32 = cast_args(in.args, DType::F32, DType::F32, dev);
  SsdArgs a64 = cast_args(a32, DType::F64, DType::F64, Device::cpu());  // the fp32-rounded inputs, in fp64
  Tensor gy = randn(a64.x.shape(), DType::F32, Device::cpu(), c.seed * 16 + 8).to(DType::F64);
  Tensor gS = randn({c.B, c.H, c.P, c.N}, DType::F32, Device::cpu(), c.seed * 16 + 9).to(DType::F64);
  FormResult rec = form_recurrent(a64, gy, gS, true);
  Meta m{"f32", &c, c.random_init ? "random" : "zero", in.reset_steps};
  // mamba's fp32 gradient bounds (kernels.md §4), element-wise.
  auto gb = [](const std::string& w) {
    if (w == "dx" || w == "dS0") return allclose(1.2e-3, 4e-3);
    if (w == "ddt") return allclose(3e-3, 2e-2);
    if (w == "dA") return allclose(1e-3, 5e-3);
    if (w == "dD") return allclose(1e-3, 1e-3);
    return allclose(6e-4, 2e-3);  // dB, dC
  };
  for (int64_t Q : Qs) {
    SsdArgs aq = a32;
    aq.chunk_size = Q;
    poison_pool({a32.x, a32.x, a32.dt, a32.Bm, a32.Cm, rec.final_state}, dev);
    FormResult ch = form_chunked(aq, gy, gS, true);
    sink.add("cuda chunk vs rec", "y", m, Q, ch.y, rec.y, rel_bound(kBoundF32));
    sink.add("cuda chunk vs rec", "final", m, Q, ch.final_state, rec.final_state, rel_bound(kBoundF32));
    sink.grads("cuda chunk vs rec", m, Q, ch.grads, rec.grads, gb);
  }
  if (bf16) {
    SsdArgs ab = cast_args(in.args, DType::BF16, DType::F32, dev);
    ab.chunk_size = 32;
    SsdArgs ab64 = cast_args(ab, DType::F64, DType::F64, Device::cpu());
    FormResult rb = form_recurrent(ab64, gy, gS, false);
    FormResult cb = form_chunked(ab, gy, gS, false);
    Meta mb = m;
    mb.dtype = "bf16";
    sink.add("cuda chunk vs rec", "y", mb, 32, cb.y, rb.y, rel_bound(kBoundBF16));
  }
}

std::vector<Case> cases_for(const std::vector<int64_t>& Ts, const std::vector<std::array<int64_t, 3>>& shapes,
                            uint64_t seed0) {
  const Regime regimes[] = {Regime::Fast, Regime::MambaInit, Regime::NoDecay, Regime::Reset, Regime::ZeroDt};
  std::vector<Case> out;
  int k = 0;
  for (int64_t T : Ts)
    for (Regime r : regimes) {
      const auto& s = shapes[size_t(k) % shapes.size()];  // (P, N, G)
      Case c;
      c.T = T, c.P = s[0], c.N = s[1], c.G = s[2], c.regime = r;
      c.random_init = k % 2 == 1;
      c.seed = seed0 + uint64_t(k);
      out.push_back(c);
      ++k;
    }
  return out;
}

}  // namespace

std::vector<Row> run_suite(const SuiteOptions& opt) {
  Sink sink(opt);
  if (opt.device.is_cpu()) {
    // Small T: every shape, all Q, gradients through every form.
    for (const Case& c : cases_for({1, 2, 63, 64, 65}, {{8, 1, 1}, {16, 16, 2}, {8, 16, 4}, {16, 64, 1}, {8, 64, 2}},
                                   100))
      run_cpu_case(sink, c, true, chunk_sizes(c.T));
    // T = 1000: all regimes; gradients (forms 1, 3, 4) in the full run, one case in the quick one.
    for (const Case& c : cases_for({1000}, {{8, 16, 2}, {16, 16, 4}}, 200))
      run_cpu_case(sink, c, !opt.quick || c.regime == Regime::Fast,
                   opt.quick ? std::vector<int64_t>{1, 64, 1000} : chunk_sizes(c.T));
    // T = 4097: forward; the full run adds N = 64 and every regime.
    std::vector<Case> longc = cases_for({4097}, {{8, 16, 2}, {16, 64, 1}}, 300);
    if (opt.quick) longc.resize(1);
    for (const Case& c : longc) run_cpu_case(sink, c, false, opt.quick ? std::vector<int64_t>{64, 256} : chunk_sizes(c.T));
    // Central differences on tiny cases: T 8, N 2, P 2, two heads, G 1 and 2, random initial state and not.
    for (const Case& c0 : cases_for({8}, {{2, 2, 1}, {2, 2, 2}}, 400)) {
      if (c0.regime == Regime::Reset) continue;  // finite differences across dt = 1e30 are meaningless
      Case c = c0;
      c.H = 2;
      run_fd_case(sink, c);
    }
  } else {
    std::vector<int64_t> Ts = opt.quick ? std::vector<int64_t>{1, 63, 65, 1000, 4097}
                                        : std::vector<int64_t>{1, 2, 63, 64, 65, 1000, 4097};
    std::vector<Case> cases = cases_for(Ts, {{16, 16, 1}, {16, 64, 2}, {16, 64, 4}, {16, 16, 2}, {16, 64, 1}}, 500);
    for (const Case& c : cases) {
      // The CUDA kernels cap the chunk at 32 tokens (one per lane): run each distinct effective Q once.
      std::vector<int64_t> Qs;
      for (int64_t q : chunk_sizes(c.T)) Qs.push_back(std::min<int64_t>(q, 32));
      Qs.erase(std::unique(Qs.begin(), Qs.end()), Qs.end());
      run_cuda_case(sink, c, Qs, c.regime == Regime::Fast || c.regime == Regime::MambaInit);
    }
  }
  return sink.rows;
}

// ---- the table -------------------------------------------------------------------------------------------------------
std::string table_header() {
  return fmt::format("{:<18} {:<8} {:<5} {:>5} {:>5} {:>2} {:>3} {:>3} {:<7} {:<6} {:>10} {:>10} {:>15} {}",
                     "pair", "what", "dtype", "T", "Q", "G", "N", "P", "regime", "init", "rel err", "max abs",
                     "bound", "result");
}
std::string format_row(const Row& r) {
  return fmt::format("{:<18} {:<8} {:<5} {:>5} {:>5} {:>2} {:>3} {:>3} {:<7} {:<6} {:>10.3e} {:>10.3e} {:>15} {}",
                     r.pair, r.what, r.dtype, r.T, r.Q > 0 ? std::to_string(r.Q) : std::string("-"), r.G, r.N, r.P,
                     r.regime, r.init, r.rel, r.max_abs, r.bound, r.pass ? "PASS" : "FAIL");
}
std::string format_table(const std::vector<Row>& rows, bool only_failures) {
  std::string s = table_header() + "\n";
  int64_t fails = 0;
  for (const Row& r : rows) {
    fails += !r.pass;
    if (!only_failures || !r.pass) s += format_row(r) + "\n";
  }
  s += fmt::format("{} rows, {} failed\n", rows.size(), fails);
  return s;
}

}  // namespace equiv
}  // namespace stereort
