// tests/test_golden_bn_noise.cpp — why ~23 train-mode gradients of the golden gwc_head (mostly BatchNorm biases and
// weights in the hourglasses) miss the README's 1e-3 (err 1e-3 ... 9.9e-3) while our float64 port matches the rest of
// the file to ~1e-5: the golden's fp32 forward put ONE ReLU pre-activation (after dres4.conv2's train-mode BN) on
// the other side of zero. The golden is our gradient evaluated on the other side of that kink; it is not cancellation-
// amplified rounding noise (the hypothesis this file was written to test, and which it refutes), nor a bug.
//
// Passes (golden inputs/parameters, GwcHead(48,192), train mode, loss = sum_k <disp_k, gout_k>), err(a, g) =
// max|a-g| / max|g| as in ../shared/golden/README.md, per gradient the golden has (sliced by gidx.*):
//   (a) float64 CPU = "ours";                                           e_gold = err(ours, golden)
//   (b) float32 CPU;                                                    e_f32  = err(f32, ours)
//   (c) float64, every input, parameter and cotangent x (1 + 2^-24 u), u ~ U[-1,1], fresh seeds;
//                                                                       e_pert = err(pert, ours), amp = e_pert / 2^-24
//   (d) [gpu] fp32 GPU (cuDNN);                                         e_gpu  = err(gpu, ours)
//   (e) float64 with 4 * 2^-24 noise for a fixed seed that crosses the kink;  flip/gold = err(flip, golden)
//   plus central/one-sided finite differences of the float64 loss along v = (golden - ours) / ||golden - ours||.
//
// Measured on the CPU (x86-64, one core, 27 s for the whole case):
//   - Hypothesis "cancellation-amplified fp32 noise" REFUTED: amp = 2..26 for every gradient (flagged or not; the
//     flagged are not more sensitive), max e_f32 1.6e-6, max e_pert 1.6e-6 (2.5e-6 over 6 seeds), so e_gold of the 23
//     flagged is 860x..12200x above the noise of fp32-sized rounding.
//   - Locality: the worst, dres4.conv2.0.1.bias (e_gold 9.9e-3, norm 3.0e-3), has top1 = 1.000: one channel of 64
//     carries the whole deviation (dres4.conv2.0.1.weight, 0.998, same). A ReLU flip at one element changes one term of
//     one channel's dbeta_c = sum_i dy_i; the other flagged gradients are upstream of it in the backward (dres4.conv1,
//     dres3, dres2, dres1, dres0), and dres4.conv3..6, redir*, classif* (downstream of it in the
//     forward) are 2e-6..2e-5.
//   - Finite differences along v (20 unsliced flagged parameters): <ours,v> 220.905, <golden,v> 235.135, gap 14.229.
//     Smooth side (-v, h 1e-5): D - <ours,v> = -9.3e-4 (6.5e-5 of the gap). Kink side: 12.367 (h 1e-6), 14.037 (h 1e-5)
//     -> jump 14.2225 = gap to 5e-4, kink at t0 = 1.30e-7 along v. (dres4.conv2.0.1.bias alone: gap 3.9305, jump
//     3.9304, t0 4.7e-7.) Our gradient is the true one-sided derivative; the golden is the other side's.
//   - Crossing the kink reproduces the golden: with 4 * 2^-24 leaf noise, 2 of 16 seeds cross it (seed 10 here), and
//     then every gradient matches the golden to <= 2.1e-5 (flagged) / 1.1e-4 (all; grad.in.* 1.4e-5, down from 1.3e-4).
//     So the README's 1.3e-4 input-gradient gap of golden_gwc_head is the same kink.
// Conclusion: golden_gwc_head's train-mode bound of 1e-2 for parameter gradients is a kink, which the README's own
// caveat (ReLU pre-activations within ~1e-7 of zero) describes; the fp32 cuDNN run (d) lands on one of the branches.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "golden_util.h"
#include "models/gwcnet.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

using namespace stereort;
using namespace stereort::test;

namespace {

constexpr double kUnitRoundoff = 5.9604644775390625e-08;  // 2^-24, fp32 unit roundoff
constexpr double kGradTol = 1e-3;                          // README bar for grad.*

using GradMap = std::map<std::string, Tensor>;  // "grad.param.<k>" / "grad.in.<n>" -> CPU F64, sliced like the golden

// x -> x * (1 + rel u), u ~ U[-1, 1], independently per element and tensor; identity when rel == 0. seed 0 draws
// fresh seeds (test_util's counter); a fixed seed makes the whole pass reproducible (tensor k uses seed * 4096 + k).
struct Noise {
  double rel = 0;
  uint64_t seed = 0;
  uint64_t k = 0;
  Tensor operator()(const Tensor& x) {
    if (rel == 0 || !dtype_is_floating(x.dtype())) return x;
    Tensor u = rand_t(x.shape(), DType::F64, -1.0, 1.0, seed ? seed * 4096 + k++ : 0);
    return mul(x, add(mul(u, rel), 1.0));
  }
};

// GwcHead(48,192) on `dev` in `dt` holding the golden parameters, each multiplied by (1 + rel u); train mode.
std::unique_ptr<GwcHead> make_head(const Golden& g, Device dev, DType dt, Noise& noise) {
  auto m = std::make_unique<GwcHead>(48, 192);
  m->to(dt);
  m->to(dev);
  std::map<std::string, Tensor> sd = g.params();
  std::set<std::string> pnames;
  for (auto& kv : m->named_parameters()) pnames.insert(kv.first);
  for (auto& kv : sd)
    if (pnames.count(kv.first)) kv.second = noise(kv.second);
  Module::LoadReport rep = m->load_state_dict(sd, false);
  REQUIRE(rep.unexpected.empty());
  REQUIRE(rep.mismatched.empty());
  for (const std::string& k : rep.missing) REQUIRE(k.find("num_batches_tracked") != std::string::npos);
  m->train();
  return m;
}

// loss = sum_k <disp_k, gout_k> of one train-mode forward; the leaves (inputs, cotangents) multiplied by (1 + rel u).
struct Leaves {
  Tensor left, right;
  std::vector<Tensor> gout;
};
Leaves make_leaves(const Golden& g, Device dev, DType dt, Noise& noise) {
  auto leaf = [&](const std::string& k) { return noise(g.get(k)).to(dt).to(dev); };
  Leaves lv{leaf("in.left"), leaf("in.right"), {}};
  for (int i = 0; i < 4; ++i) lv.gout.push_back(leaf("gout.train_disp" + std::to_string(i)));
  return lv;
}
Tensor head_loss(const GwcHead& m, const Leaves& lv, const Tensor& l, const Tensor& r) {
  std::vector<Tensor> d = m.forward(l, r);
  REQUIRE(d.size() == 4);
  std::vector<std::pair<Tensor, Tensor>> og;
  for (size_t i = 0; i < 4; ++i) og.push_back({d[i], lv.gout[i]});
  return dot_loss(og);
}

// One train-mode forward + dot_loss backward of GwcHead on the golden data, on `dev` in `dt`, leaves and parameters
// perturbed by `rel`. Returns every gradient the golden has (parameters sliced by gidx.*, plus the input gradients).
GradMap run_pass(const Golden& g, Device dev, DType dt, Noise noise = {}) {
  std::unique_ptr<GwcHead> m = make_head(g, dev, dt, noise);
  Leaves lv = make_leaves(g, dev, dt, noise);
  Tensor l = lv.left.set_requires_grad(), r = lv.right.set_requires_grad();
  head_loss(*m, lv, l, r).backward();
  GradMap out;
  out["grad.in.left"] = l.grad().cpu().to(DType::F64);
  out["grad.in.right"] = r.grad().cpu().to(DType::F64);
  for (auto& kv : m->named_parameters()) {
    std::string key = "grad.param." + kv.first;
    if (!g.has(key)) continue;
    Tensor gr = kv.second->grad();
    INFO("parameter " << kv.first);
    REQUIRE(gr.defined());
    gr = gr.cpu();
    if (g.has("gidx.param." + kv.first)) gr = index_select(gr, 0, g.st.get("gidx.param." + kv.first));
    out[key] = gr.to(DType::F64);
  }
  return out;
}

// Share of ||a - b||^2 carried by the largest element.
double top_share(const Tensor& a, const Tensor& b) {
  std::vector<double> av = a.to_vector(), bv = b.to_vector();
  double mx = 0, tot = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    double d = (av[i] - bv[i]) * (av[i] - bv[i]);
    mx = std::max(mx, d);
    tot += d;
  }
  return tot > 0 ? mx / tot : 0;
}

// Finite differences of the float64 loss along v = (golden - ours) / ||golden - ours||, v restricted to the
// parameters `keys` (the unsliced ones; sliced weight gradients are skipped). If the golden is our gradient taken on
// the other side of one ReLU kink at distance t0 along +v or -v, the one-sided differences D(h) = (L(h v) - L(0)) / h
// (and the mirror one) behave as: smooth side D(h) = <ours, v> + O(h); kink side, for h > t0,
// D(h) - <ours, v> = J (1 - t0 / h) with jump J = <golden - ours, v> = ||golden - ours||. Two h on the kink side give
// J and t0 without knowing where the kink is.
struct DirCheck {
  double d_ours = 0, d_gold = 0;  // <ours, v>, <golden, v>; gap = d_gold - d_ours = ||golden - ours||
  double smooth_dev = 0;          // D_smooth(h2) - <ours, v>
  double kink_dev1 = 0, kink_dev2 = 0;  // D_kink(h1), D_kink(h2) minus <ours, v>
  double jump = 0, t0 = 0;        // extrapolated jump and kink distance
  int kink_sign = 0;              // +1: kink along +v
  std::vector<std::string> used;
  double gap() const { return d_gold - d_ours; }
};
constexpr double kH1 = 1e-6, kH2 = 1e-5;  // both above the measured t0 (1.3e-7), below the next kink (> 1e-5)
DirCheck directional_check(const Golden& g, const GradMap& ref, const std::vector<std::string>& keys) {
  DirCheck dc;
  Noise none;
  std::unique_ptr<GwcHead> m = make_head(g, Device::cpu(), DType::F64, none);
  Leaves lv = make_leaves(g, Device::cpu(), DType::F64, none);
  std::map<std::string, Tensor*> params;
  for (auto& kv : m->named_parameters()) params["grad.param." + kv.first] = kv.second;
  struct Dir {
    Tensor* p;
    Tensor orig, v;
  };
  std::vector<Dir> dirs;
  double n2 = 0;
  for (const std::string& k : keys) {
    if (g.has("gidx." + k.substr(5)) || !params.count(k)) continue;
    Tensor d = sub(g.get(k), ref.at(k));
    for (double x : d.to_vector()) n2 += x * x;
    dirs.push_back({params.at(k), params.at(k)->clone(), d});
    dc.used.push_back(k);
  }
  REQUIRE(n2 > 0);
  for (size_t i = 0; i < dirs.size(); ++i) {
    dirs[i].v = mul(dirs[i].v, 1 / std::sqrt(n2));
    std::vector<double> v = dirs[i].v.to_vector(), o = ref.at(dc.used[i]).to_vector();
    std::vector<double> gg = g.get(dc.used[i]).to_vector();
    for (size_t j = 0; j < v.size(); ++j) {
      dc.d_ours += o[j] * v[j];
      dc.d_gold += gg[j] * v[j];
    }
  }
  NoGradGuard ng;
  auto loss_at = [&](double t) {
    for (const Dir& d : dirs) d.p->copy_(add(d.orig, mul(d.v, t)));
    return head_loss(*m, lv, lv.left, lv.right).item();
  };
  double l0 = loss_at(0);
  double dp = (loss_at(kH2) - l0) / kH2 - dc.d_ours, dm = (l0 - loss_at(-kH2)) / kH2 - dc.d_ours;
  dc.kink_sign = std::fabs(dp) >= std::fabs(dm) ? 1 : -1;
  dc.smooth_dev = dc.kink_sign > 0 ? dm : dp;
  dc.kink_dev2 = dc.kink_sign > 0 ? dp : dm;
  dc.kink_dev1 = dc.kink_sign * (loss_at(dc.kink_sign * kH1) - l0) / kH1 - dc.d_ours;
  dc.jump = (kH2 * dc.kink_dev2 - kH1 * dc.kink_dev1) / (kH2 - kH1);
  dc.t0 = dc.jump != 0 ? kH1 * (1 - dc.kink_dev1 / dc.jump) : 0;
  loss_at(0);
  return dc;
}

struct Row {
  std::string name;
  double e_gold, e_gold_norm, e_f32, e_pert;
  double e_pert_gold = 0;  // err(pert, golden): small when the perturbed run took the golden's side of the kink
  double e_flip = 0;       // err(flip, golden), flip = the fixed-seed 4 * 2^-24 run that crosses the kink
  double top1 = 0;  // max_i (ours-gold)_i^2 / sum_i (ours-gold)_i^2: 1 = one element carries the whole deviation
  int64_t numel = 0;
  double e_gpu = -1, e_gpu_gold = -1;  // [gpu] err(gpu, f64 ours), err(gpu, golden)
  double sens() const { return std::max(e_f32, e_pert); }
  bool is_param() const { return name.rfind("grad.param.", 0) == 0; }
};

std::string fmt_table(const std::vector<Row>& rows, bool gpu) {
  std::ostringstream s;
  char buf[320];
  std::snprintf(buf, sizeof buf, "%-36s %9s %9s %9s %9s %7s %9s %6s %6s %9s%s\n", "gradient", "e_gold",
                "norm_gold", "e_f32", "e_pert", "amp", "gold/sens", "top1", "numel", "flip/gold",
                gpu ? "     e_gpu  gpu/gold" : "");
  s << buf;
  for (const Row& r : rows) {
    std::snprintf(buf, sizeof buf, "%-36s %9.2e %9.2e %9.2e %9.2e %7.1f %9.0f %6.3f %6lld %9.2e",
                  r.name.substr(r.is_param() ? 11 : 0).c_str(), r.e_gold, r.e_gold_norm, r.e_f32, r.e_pert,
                  r.e_pert / kUnitRoundoff, r.e_gold / r.sens(), r.top1, static_cast<long long>(r.numel), r.e_flip);
    s << buf;
    if (gpu) {
      std::snprintf(buf, sizeof buf, " %9.2e %9.2e", r.e_gpu, r.e_gpu_gold);
      s << buf;
    }
    s << (r.e_gold > kGradTol ? "  <-- > 1e-3" : "") << "\n";
  }
  return s.str();
}

// Bounds of the assertions (measured values in the header comment).
constexpr double kCondBound = 1e-5;   // every gradient: e_f32, e_pert <= 1e-5 (measured <= 1.6e-6)
constexpr double kTop1 = 0.9;         // the worst golden deviation sits in one element (measured 1.000)
constexpr double kFdRel = 1e-2;       // smooth side == ours, extrapolated kink side == golden, relative to the gap
constexpr uint64_t kFlipSeed = 10;   // first seed whose 4 * 2^-24 perturbation crosses the kink (seeds 1..9 do not)
constexpr double kGpuSanity = 1e-1;   // [gpu] every gradient: err(gpu, f64) <= 1e-1
constexpr double kGpuBranch = 1e-3;   // [gpu] flagged: within the README bar of one branch (ours or the golden's)

void bn_noise(bool with_gpu) {
  std::string path = golden_file("gwc_head");
  if (path.empty()) return;
  Golden g(path, DType::F64);
  using clk = std::chrono::steady_clock;
  auto secs = [](clk::time_point a, clk::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  auto t0 = clk::now();
  GradMap ref = run_pass(g, Device::cpu(), DType::F64);
  auto t1 = clk::now();
  GradMap f32 = run_pass(g, Device::cpu(), DType::F32);
  auto t2 = clk::now();
  GradMap pert = run_pass(g, Device::cpu(), DType::F64, Noise{kUnitRoundoff});
  auto t3 = clk::now();
  // (e) The kink-crossing run: 4 * 2^-24 relative noise on the leaves crosses the kink for about 1 seed in 10
  // (measured: 2 of 16 seeds). Seed 10 does on this build; the next two seeds are spares in case a change of
  // summation order somewhere moves the kink by a hair. Fixed seeds keep this independent of the test order.
  GradMap flip;
  uint64_t flip_seed = 0;
  for (uint64_t seed = kFlipSeed; seed < kFlipSeed + 3 && flip_seed == 0; ++seed) {
    flip = run_pass(g, Device::cpu(), DType::F64, Noise{4 * kUnitRoundoff, seed});
    for (auto& kv : ref)
      if (golden_err(flip.at(kv.first), kv.second) > kGradTol) flip_seed = seed;
  }
  auto t3b = clk::now();
  GradMap gpu;
  if (with_gpu) gpu = run_pass(g, test::gpu(), DType::F32);

  std::vector<Row> rows;
  for (auto& kv : ref) {
    Tensor gold = g.get(kv.first);
    REQUIRE(gold.shape() == kv.second.shape());
    GoldenErr eg = golden_compare(kv.second, gold);
    Row r{kv.first, eg.max_rel, eg.norm_rel, golden_err(f32.at(kv.first), kv.second),
          golden_err(pert.at(kv.first), kv.second)};
    r.e_pert_gold = golden_err(pert.at(kv.first), gold);
    r.e_flip = golden_err(flip.at(kv.first), gold);
    r.top1 = top_share(kv.second, gold);
    r.numel = gold.numel();
    if (with_gpu) {
      r.e_gpu = golden_err(gpu.at(kv.first), kv.second);
      r.e_gpu_gold = golden_err(gpu.at(kv.first), gold);
    }
    rows.push_back(r);
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.e_gold > b.e_gold; });
  MESSAGE("gwc_head train-mode gradients (grad.param.* unless named), sorted by e_gold. e_gold = err(f64, golden), "
          "e_f32 = err(f32, f64), e_pert = err(f64 with leaves x(1+2^-24 u), f64), amp = e_pert / 2^-24, gold/sens = "
          "e_gold / max(e_f32, e_pert), top1 = share of ||f64 - golden||^2 in its largest element, flip/gold = "
          "err(f64 with leaves x(1+4*2^-24 u) for the kink-crossing seed, golden)"
          << std::string(with_gpu ? ", e_gpu = err(gpu fp32, f64), gpu/gold = err(gpu fp32, golden)" : "") << ":\n"
          << fmt_table(rows, with_gpu));

  std::vector<const Row*> flagged;
  for (const Row& r : rows)
    if (r.is_param() && r.e_gold > kGradTol) flagged.push_back(&r);
  REQUIRE(!flagged.empty());  // if the golden ever passes everywhere, this file has nothing left to explain
  std::vector<std::string> keys;
  for (const Row* r : flagged) keys.push_back(r->name);
  auto t4 = clk::now();
  DirCheck dc = directional_check(g, ref, keys);
  auto t5 = clk::now();
  MESSAGE("finite differences along v = (golden - ours)/||.|| over " << dc.used.size() << " of the " << flagged.size()
          << " flagged parameters (sliced weights skipped): <ours,v> " << dc.d_ours << ", <golden,v> " << dc.d_gold
          << ", gap " << dc.gap() << "\n  smooth side (" << std::string(dc.kink_sign > 0 ? "-v" : "+v") << ", h " << kH2
          << "): D - <ours,v> = " << dc.smooth_dev << "\n  kink side: D - <ours,v> = " << dc.kink_dev1 << " (h " << kH1
          << "), " << dc.kink_dev2 << " (h " << kH2 << ") -> jump " << dc.jump << " (gap " << dc.gap()
          << "), kink at t0 = " << dc.t0 << "\n  " << flagged.size() << " flagged; times (s): f64 pass "
          << secs(t0, t1) << ", f32 pass " << secs(t1, t2) << ", perturbed pass " << secs(t2, t3)
          << ", kink-crossing pass(es) " << secs(t3, t3b)
          << ", finite differences (4 forwards) " << secs(t4, t5));

  // (1) Conditioning: one fp32 evaluation of the whole head, and 2^-24 relative noise on every input, parameter and
  // cotangent, move every gradient by <= ~2e-6 (amp 2..26). So the golden's 1e-3..1e-2 deviations are NOT
  // cancellation-amplified rounding: they are 860x..12000x above what rounding of that size produces. (The brief's
  // proposed assertions, sens >= e_gold / 100 and sens >= 10x the median, fail for all 23 by these factors.)
  // The fresh-seed 2^-24 run can itself cross the kink (not seen in 6 seeds; ~1 in 10 at 4 * 2^-24): then its
  // flagged gradients sit on the golden's branch instead, which (6) below shows is just as good evidence.
  for (const Row& r : rows) {
    INFO(r.name << ": e_f32 " << r.e_f32 << ", e_pert " << r.e_pert << ", err(pert, golden) " << r.e_pert_gold);
    CHECK(r.e_f32 <= kCondBound);
    CHECK((r.e_pert <= kCondBound || (r.e_gold > kGradTol && r.e_pert_gold <= kGradTol)));
  }
  // (2) Locality: the largest deviation (dres4.conv2's BN bias) lives in ONE channel. Diffuse fp32 noise, or a wrong
  // BN backward, would spread over the channels; a ReLU taking the other side at one element changes exactly one
  // term of one channel's sum dbeta_c = sum_i dy_i.
  INFO("worst: " << flagged.front()->name << ", top1 " << flagged.front()->top1);
  CHECK(flagged.front()->top1 >= kTop1);
  // (3) Our gradient is the loss's true one-sided derivative on one side (a bug in our backward fails this), and
  // (4) the golden is exactly the derivative on the OTHER side of one kink (a bug in the golden, or noise, fails
  // this), (5) which lies within fp32-rounding distance of the golden's parameters (t0 < h1 = 1e-6).
  INFO("gap " << dc.gap() << ", smooth side " << dc.smooth_dev << ", jump " << dc.jump << ", t0 " << dc.t0);
  CHECK(dc.used.size() >= flagged.size() / 2);
  CHECK(std::fabs(dc.smooth_dev) <= kFdRel * dc.gap());
  CHECK(std::fabs(dc.jump - dc.gap()) <= kFdRel * dc.gap());
  CHECK(dc.t0 > 0);
  CHECK(dc.t0 < kH1);
  // (6) Crossing the kink with fp32-sized noise reproduces the golden: every gradient of the kink-crossing run, the
  // 23 flagged included, matches the golden within the README's 1e-3 (measured <= 1.1e-4).
  REQUIRE_MESSAGE(flip_seed != 0, "no seed in [" << kFlipSeed << ", " << kFlipSeed + 2 << "] crossed the kink");
  for (const Row& r : rows) {
    INFO(r.name << ": e_gold " << r.e_gold << ", err(kink-crossing run, golden) " << r.e_flip);
    CHECK(r.e_flip <= kGradTol);
  }
  // The existing golden test's bound, restated so this file fails on its own if e_gold grows.
  for (const Row& r : rows)
    if (r.is_param()) CHECK_MESSAGE((r.e_gold <= 1e-2 || r.e_gold_norm <= kGradTol), r.name);

  if (!with_gpu) return;
  // Our fp32 cuDNN run sits within noise of one of the two branches: our f64 one (if its fp32 pre-activation at the
  // kink kept our side) or the golden's (if it took the other). Every gradient is also sane (a kink flip moves a
  // gradient by <= ~1e-2; a bug by O(1)).
  for (const Row& r : rows) {
    INFO(r.name << ": e_gold " << r.e_gold << ", e_gpu " << r.e_gpu << ", err(gpu, golden) " << r.e_gpu_gold);
    CHECK(r.e_gpu <= kGpuSanity);
    if (r.e_gold > kGradTol) CHECK(std::min(r.e_gpu, r.e_gpu_gold) <= kGpuBranch);
  }
}

}  // namespace

TEST_CASE("golden noise: gwc_head train-mode BN gradients — fp32/2^-24 sensitivity, ReLU-kink finite differences") {
  bn_noise(false);
}
TEST_CASE("golden noise: gwc_head train-mode BN gradients, plus our fp32 cuDNN run — GPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  bn_noise(true);
}
