// tests/test_ss2d.cpp — SS2D cross-scan / cross-merge index maps and adjoints on non-square maps, the composed and the
// fused 2D selective scan against an independent float64 loop, gradients, direction symmetries, the golden SS2D scan
// intermediates of the official code, and the CUDA paths against the CPU.
#include <cmath>
#include <fstream>

#include "core/check.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/selective_scan.h"
#include "ops/ss2d.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

const std::pair<int64_t, int64_t> kSizes[] = {{4, 4}, {3, 5}, {5, 3}, {7, 11}};

// The four scan orders written out explicitly (independent of ops/ss2d.h): order[k][l] = pixel index.
std::vector<std::vector<int64_t>> scan_orders(int64_t H, int64_t W) {
  std::vector<std::vector<int64_t>> o(4);
  for (int64_t h = 0; h < H; ++h)
    for (int64_t w = 0; w < W; ++w) o[0].push_back(h * W + w);
  for (int64_t w = 0; w < W; ++w)
    for (int64_t h = 0; h < H; ++h) o[1].push_back(h * W + w);
  o[2].assign(o[0].rbegin(), o[0].rend());
  o[3].assign(o[1].rbegin(), o[1].rend());
  return o;
}

double dot(const Tensor& a, const Tensor& b) {
  std::vector<double> x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

struct Ss2dInputs {
  Tensor x, delta, A, Bs, Cs, Dskip, bias;
  std::vector<Tensor> list() const { return {x, delta, A, Bs, Cs, Dskip, bias}; }
};

Ss2dInputs make_ss2d(int64_t B, int64_t Di, int64_t H, int64_t W, int64_t N) {
  const int64_t L = H * W;
  Ss2dInputs s;
  s.x = randn_t({B, Di, H, W});
  s.delta = mul(randn_t({B, 4, Di, L}), 0.5);
  s.A = rand_t({4 * Di, N}, DType::F64, -3.0, -0.2);
  s.Bs = randn_t({B, 4, N, L});
  s.Cs = randn_t({B, 4, N, L});
  s.Dskip = rand_t({4 * Di}, DType::F64, 0.5, 1.5);
  s.bias = rand_t({4 * Di}, DType::F64, -3.0, -1.0);
  return s;
}

// Independent float64 loop: per direction the recurrence over that direction's pixel order, summed into pixels.
Tensor ss2d_loop(const Ss2dInputs& s) {
  const int64_t B = s.x.size(0), Di = s.x.size(1), H = s.x.size(2), W = s.x.size(3), L = H * W, N = s.A.size(1);
  auto ord = scan_orders(H, W);
  std::vector<double> x = s.x.to_vector(), dl = s.delta.to_vector(), A = s.A.to_vector(), Bv = s.Bs.to_vector(),
                      Cv = s.Cs.to_vector(), D = s.Dskip.to_vector(), bias = s.bias.to_vector();
  std::vector<double> y(size_t(B * Di * L), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int k = 0; k < 4; ++k)
      for (int64_t d = 0; d < Di; ++d) {
        const int64_t ch = k * Di + d;
        std::vector<double> h(size_t(N), 0.0);
        for (int64_t l = 0; l < L; ++l) {
          const int64_t p = ord[size_t(k)][size_t(l)];
          double u = x[size_t((b * Di + d) * L + p)];
          double v = dl[size_t(((b * 4 + k) * Di + d) * L + p)] + bias[size_t(ch)];
          double dt = v > 20 ? v : std::log1p(std::exp(v));
          double out = D[size_t(ch)] * u;
          for (int64_t n = 0; n < N; ++n) {
            double bb = Bv[size_t(((b * 4 + k) * N + n) * L + p)], cc = Cv[size_t(((b * 4 + k) * N + n) * L + p)];
            h[size_t(n)] = std::exp(dt * A[size_t(ch * N + n)]) * h[size_t(n)] + dt * bb * u;
            out += cc * h[size_t(n)];
          }
          y[size_t((b * Di + d) * L + p)] += out;
        }
      }
  return Tensor::from_vector(y, {B, Di, L}, DType::F64);
}

}  // namespace

TEST_CASE("cross_scan / cross_merge / cross_route follow the index maps on non-square maps") {
  for (auto [H, W] : kSizes) {
    INFO("H " << H << " W " << W);
    const int64_t B = 2, C = 3, L = H * W;
    auto ord = scan_orders(H, W);
    for (int k = 0; k < 4; ++k)
      for (int64_t l = 0; l < L; ++l) {
        CHECK(ss2d_pix(k, l, H, W) == ord[size_t(k)][size_t(l)]);
        CHECK(ss2d_seq(k, ord[size_t(k)][size_t(l)], H, W) == l);
      }
    Tensor x = randn_t({B, C, H, W});
    Tensor xs = cross_scan(x);
    REQUIRE(xs.shape() == Shape({B, 4, C, L}));
    std::vector<double> xv = x.to_vector(), sv = xs.to_vector();
    bool ok = true;
    for (int64_t b = 0; b < B; ++b)
      for (int k = 0; k < 4; ++k)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t l = 0; l < L; ++l)
            ok = ok && sv[size_t(((b * 4 + k) * C + c) * L + l)] == xv[size_t((b * C + c) * L + ord[size_t(k)][size_t(l)])];
    CHECK(ok);
    // merge(scan(x)) = 4x; <scan(x), y> = <x, merge(y)>.
    expect_close(cross_merge(xs, H, W), mul(x.reshape({B, C, L}), 4.0), kTolF64, "merge(scan(x)) = 4x");
    Tensor ys = randn_t({B, 4, C, L});
    CHECK(std::fabs(dot(xs, ys) - dot(x, cross_merge(ys, H, W))) <= 1e-12 * std::fabs(dot(xs, ys)) + 1e-12);
    // route / unroute: inverse and adjoint; route of four copies of x is cross_scan(x).
    Tensor t = randn_t({B, 4, C, L});
    expect_close(cross_unroute(cross_route(t, H, W), H, W), t, kTolF64, "unroute(route(t)) = t");
    CHECK(std::fabs(dot(cross_route(t, H, W), ys) - dot(t, cross_unroute(ys, H, W))) <= 1e-12 * (1 + std::fabs(dot(t, t))));
    Tensor x4 = x.reshape({B, 1, C, L}).expand({B, 4, C, L});
    expect_close(cross_route(x4, H, W), xs, kTolF64, "route(x,x,x,x) = cross_scan(x)");
  }
}

TEST_CASE("cross ops gradients match finite differences") {
  const int64_t H = 3, W = 5;
  check_grad([&](const std::vector<Tensor>& v) { return cross_scan(v[0]); }, {randn_t({2, 3, H, W})}, "cross_scan");
  check_grad([&](const std::vector<Tensor>& v) { return cross_merge(v[0], H, W); }, {randn_t({2, 4, 3, H * W})},
             "cross_merge");
  check_grad([&](const std::vector<Tensor>& v) { return cross_route(v[0], H, W); }, {randn_t({2, 4, 3, H * W})},
             "cross_route");
  check_grad([&](const std::vector<Tensor>& v) { return cross_unroute(v[0], W, H); }, {randn_t({1, 4, 2, H * W})},
             "cross_unroute");
}

TEST_CASE("ss2d_scan (composed) matches an independent float64 four-direction loop") {
  for (auto [H, W] : kSizes) {
    Ss2dInputs s = make_ss2d(2, 3, H, W, 4);
    INFO("H " << H << " W " << W);
    expect_close(ss2d_scan(s.x, s.delta, s.A, s.Bs, s.Cs, s.Dskip, s.bias), ss2d_loop(s), kTolF64, "ss2d_scan");
  }
}

TEST_CASE("ss2d_scan gradients match finite differences (float64)") {
  Ss2dInputs s = make_ss2d(2, 2, 3, 2, 2);
  check_grad([](const std::vector<Tensor>& v) { return ss2d_scan(v[0], v[1], v[2], v[3], v[4], v[5], v[6]); },
             s.list(), "ss2d_scan");
}

TEST_CASE("ss2d errors name the op and the shapes") {
  Ss2dInputs s = make_ss2d(1, 2, 3, 5, 2);
  expect_error([&] { cross_scan(randn_t({2, 3, 4})); }, {"cross_scan", "(2,3,4)", "(B,C,H,W)"});
  expect_error([&] { cross_merge(randn_t({2, 4, 3, 14}), 3, 5); }, {"cross_merge", "(2,4,3,14)", "3*5"});
  expect_error([&] { ss2d_scan(s.x, randn_t({1, 4, 2, 14}), s.A, s.Bs, s.Cs, s.Dskip, s.bias); },
               {"ss2d_scan", "delta", "(1,4,2,14)", "(1,4,2,15)"});
  expect_error([&] { ss2d_scan(s.x, s.delta, randn_t({6, 2}), s.Bs, s.Cs, s.Dskip, s.bias); },
               {"ss2d_scan", "A", "(6,2)", "(8,N)"});
}

namespace {

// Direction k alone: zero C and D of the other directions, so the merged output is direction k's output.
Ss2dInputs only_direction(Ss2dInputs s, int k) {
  const int64_t Di = s.x.size(1);
  std::vector<double> c = s.Cs.to_vector(), d = s.Dskip.to_vector();
  const int64_t B = s.Cs.size(0), NL = s.Cs.size(2) * s.Cs.size(3);
  for (int64_t b = 0; b < B; ++b)
    for (int kk = 0; kk < 4; ++kk)
      if (kk != k)
        for (int64_t i = 0; i < NL; ++i) c[size_t((b * 4 + kk) * NL + i)] = 0;
  for (int kk = 0; kk < 4; ++kk)
    if (kk != k)
      for (int64_t i = 0; i < Di; ++i) d[size_t(kk * Di + i)] = 0;
  s.Cs = Tensor::from_vector(c, s.Cs.shape(), DType::F64);
  s.Dskip = Tensor::from_vector(d, s.Dskip.shape(), DType::F64);
  return s;
}

// Pixel maps of the last dim (H*W): rot180 reverses it; transpose maps (H,W) -> (W,H).
Tensor map_pixels(const Tensor& t, int64_t H, int64_t W, bool rot, bool transpose) {
  std::vector<double> v = t.to_vector(), o(v.size());
  const int64_t L = H * W, rows = int64_t(v.size()) / L;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t p = 0; p < L; ++p) {
      int64_t q = rot ? L - 1 - p : p;
      if (transpose) q = (q % W) * H + q / W;
      o[size_t(r * L + q)] = v[size_t(r * L + p)];
    }
  return Tensor::from_vector(o, t.shape(), DType::F64);
}

// Same parameters in every direction (A, D, bias, and the per-direction maps).
Ss2dInputs symmetric(int64_t B, int64_t Di, int64_t H, int64_t W, int64_t N) {
  Ss2dInputs s = make_ss2d(B, Di, H, W, N);
  const int64_t L = H * W;
  s.delta = s.delta.slice(1, 0, 1).expand({B, 4, Di, L}).contiguous();
  s.Bs = s.Bs.slice(1, 0, 1).expand({B, 4, N, L}).contiguous();
  s.Cs = s.Cs.slice(1, 0, 1).expand({B, 4, N, L}).contiguous();
  s.A = s.A.slice(0, 0, Di).reshape({1, Di, N}).expand({4, Di, N}).reshape({4 * Di, N});
  s.Dskip = s.Dskip.slice(0, 0, Di).reshape({1, Di}).expand({4, Di}).reshape({4 * Di});
  s.bias = s.bias.slice(0, 0, Di).reshape({1, Di}).expand({4, Di}).reshape({4 * Di});
  return s;
}

// Direction 1 = direction 0 on x^T, 2 = direction 0 on rot180(x), 3 = direction 0 on rot180(x^T), each mapped back.
void check_symmetries(Device dev, DType dt, double tol) {
  const int64_t B = 2, Di = 3, H = 5, W = 7, N = 4;
  Ss2dInputs s = symmetric(B, Di, H, W, N);
  auto run = [&](const Ss2dInputs& in, int64_t h, int64_t w) {
    auto g = [&](const Tensor& t, bool param) { return t.to(param ? DType::F32 : dt).to(dev); };
    return ss2d_scan(g(in.x.reshape({B, Di, h, w}), false), g(in.delta, false), g(in.A, true), g(in.Bs, false),
                     g(in.Cs, false), g(in.Dskip, true), g(in.bias, true))
        .cpu()
        .to(DType::F64);
  };
  for (int k = 1; k < 4; ++k) {
    INFO("direction " << k << " on " << dev.str() << " " << dtype_name(dt));
    bool rot = k >= 2, tr = k & 1;
    Ss2dInputs sk = only_direction(s, k), s0 = only_direction(s, 0);
    // Map every pixel-order input: x (B,Di,H*W), delta/Bs/Cs (B,4,*,H*W).
    Ss2dInputs m = s0;
    m.x = map_pixels(s.x.reshape({B, Di, H * W}), H, W, rot, tr);
    m.delta = map_pixels(s.delta, H, W, rot, tr);
    m.Bs = map_pixels(s.Bs, H, W, rot, tr);
    m.Cs = map_pixels(s0.Cs, H, W, rot, tr);
    Tensor want = run(sk, H, W);
    Tensor got0 = run(m, tr ? W : H, tr ? H : W);  // direction 0 on the mapped map
    // Map the result back: inverse of (rot then transpose) = (transpose back, then rot).
    Tensor back = map_pixels(got0, tr ? W : H, tr ? H : W, false, tr);
    back = map_pixels(back, H, W, rot, false);
    expect_close(back, want, tol, tol, "symmetry");
  }
}

}  // namespace

TEST_CASE("ss2d_scan direction symmetries (CPU)") { check_symmetries(Device::cpu(), DType::F64, 1e-12); }

// ---- golden: the official SS2D scan intermediates ---------------------------------------------------------------------
namespace {
struct GoldenFile {  // tiny safetensors reader (F32/I64) until io/safetensors.h lands; see test_selective_scan.cpp
  std::string header, data;
  explicit GoldenFile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    uint64_t n = 0;
    f.read(reinterpret_cast<char*>(&n), 8);
    header.resize(size_t(n));
    f.read(&header[0], std::streamsize(n));
    data.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  Tensor get(const std::string& name) const {
    size_t k = header.find("\"" + name + "\"");
    STEREORT_CHECK(k != std::string::npos, "golden: tensor {} not in the file", name);
    size_t end = header.find('}', k);
    auto field = [&](const char* f) {
      size_t p = header.find(std::string("\"") + f + "\"", k);
      STEREORT_CHECK(p < end, "golden: {} has no {}", name, f);
      std::string s = header.substr(p, end - p);
      return s;
    };
    STEREORT_CHECK(field("dtype").find("\"F32\"") != std::string::npos, "golden: {} is not F32", name);
    auto ints = [](const std::string& s) {
      std::vector<int64_t> v;
      size_t a = s.find('['), b = s.find(']');
      std::string in = s.substr(a + 1, b - a - 1);
      for (size_t i = 0; i < in.size();) {
        size_t j = in.find(',', i);
        if (j == std::string::npos) j = in.size();
        if (j > i) v.push_back(std::stoll(in.substr(i, j - i)));
        i = j + 1;
      }
      return v;
    };
    std::vector<int64_t> off = ints(field("data_offsets"));
    return Tensor::from_blob(data.data() + off[0], ints(field("shape")), DType::F32);
  }
};
double golden_err(const Tensor& a, const Tensor& g) {
  std::vector<double> av = a.to_vector(), gv = g.to_vector();
  REQUIRE(av.size() == gv.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    num = std::max(num, std::fabs(av[i] - gv[i]));
    den = std::max(den, std::fabs(gv[i]));
  }
  return den > 0 ? num / den : num;
}
}  // namespace

TEST_CASE("ss2d scan pieces reproduce the golden SS2D intermediates (mid.us, mid.ys, mid.y)") {
  std::string path = golden_file("ss2d");
  if (path.empty()) return;
  GoldenFile gf(path);
  const int64_t B = 1, Di = 192, H = 6, W = 10, L = H * W;
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(gpu());
  for (Device dev : devices) {
    INFO("device " << dev.str());
    DType dt = dev.is_cpu() ? DType::F64 : DType::F32;
    auto get = [&](const char* n) { return gf.get(n).to(dt).to(dev); };
    Tensor us = get("mid.us").reshape({B, 4, Di, L});
    Tensor x = us.select(1, 0).reshape({B, Di, H, W}).contiguous();  // direction 0 = pixel order
    double e_us = golden_err(cross_scan(x).reshape({B, 4 * Di, L}).cpu(), gf.get("mid.us"));
    CHECK(e_us == 0.0);
    Tensor dts = get("mid.dts").reshape({B, 4, Di, L}), Bs = get("mid.Bs"), Cs = get("mid.Cs");
    Tensor A = neg(exp(get("param.A_logs"))), Ds = get("param.Ds"), bias = get("param.dt_projs_bias").reshape({4 * Di});
    // Pieces: selective scan per direction (scan order) and the merge.
    SelectiveScanArgs a;
    a.u = us.reshape({B, 4 * Di, L});
    a.delta = dts.reshape({B, 4 * Di, L});
    a.A = A; a.Bm = Bs; a.Cm = Cs; a.Dskip = Ds; a.delta_bias = bias; a.delta_softplus = true;
    Tensor ys = selective_scan(a).reshape({B, 4, Di, L});
    double e_ys = golden_err(ys.cpu(), gf.get("mid.ys").reshape({B, 4, Di, L}));
    INFO("mid.ys err " << e_ys);
    CHECK(e_ys <= 1e-4);
    double e_y = golden_err(cross_merge(ys, H, W).cpu(), gf.get("mid.y"));
    INFO("mid.y err (pieces) " << e_y);
    CHECK(e_y <= 1e-4);
    // The fused entry point takes the per-direction maps in pixel order.
    Tensor y = ss2d_scan(x, cross_unroute(dts, H, W), A, cross_unroute(Bs, H, W), cross_unroute(Cs, H, W), Ds, bias);
    double e_f = golden_err(y.cpu(), gf.get("mid.y"));
    INFO("mid.y err (ss2d_scan) " << e_f);
    CHECK(e_f <= 1e-4);
  }
}

// ---- GPU -------------------------------------------------------------------------------------------------------------
TEST_CASE("cross ops on CUDA match the CPU") {
  STEREORT_REQUIRE_GPU();
  const std::vector<std::pair<int64_t, int64_t>> sizes{{3, 5}, {5, 3}, {7, 11}, {64, 80}, {33, 47}};
  for (auto [H, W] : sizes) {
    for (DType dt : {DType::F32, DType::BF16}) {
      INFO("H " << H << " W " << W << " " << dtype_name(dt));
      Tensor x = randn_t({2, 5, H, W}).to(dt), t = randn_t({2, 4, 5, H * W}).to(dt);
      Tensor xg = x.to(gpu()), tg = t.to(gpu());
      const std::vector<std::tuple<const char*, Tensor, Tensor>> cases{
          {"scan", cross_scan(xg), cross_scan(x)},
          {"merge", cross_merge(tg, H, W), cross_merge(t, H, W)},
          {"route", cross_route(tg, H, W), cross_route(t, H, W)},
          {"unroute", cross_unroute(tg, H, W), cross_unroute(t, H, W)}};
      for (const auto& [name, got, want] : cases) {
        // Gathers are exact; the merge sums four values in float on both sides.
        expect_close(got.cpu().to(DType::F64), want.to(DType::F64), dt == DType::F32 ? kTolF32 : kTolBF16, name);
      }
    }
  }
}

namespace {
// Fused (CUDA) vs composed (CUDA and CPU float64): forward and the gradients of all seven inputs.
void fused_vs_composed(int64_t B, int64_t Di, int64_t H, int64_t W, int64_t N, DType dt) {
  INFO("B " << B << " Di " << Di << " H " << H << " W " << W << " " << dtype_name(dt));
  Ss2dInputs s = make_ss2d(B, Di, H, W, N);
  const bool param[] = {false, false, true, false, false, true, true};
  std::vector<Tensor> in = s.list();
  for (size_t i = 0; i < in.size(); ++i) in[i] = in[i].to(param[i] ? DType::F32 : dt).to(DType::F64);  // rounded
  auto run = [&](bool fused, Device dev, DType t) {
    std::vector<Tensor> v;
    for (size_t i = 0; i < in.size(); ++i) {
      Tensor x = in[i].to(param[i] && t != DType::F64 ? DType::F32 : t).to(dev);
      x.set_requires_grad(true);
      v.push_back(x);
    }
    Tensor y = fused ? ss2d_scan(v[0], v[1], v[2], v[3], v[4], v[5], v[6])
                     : ss2d_scan_composed(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    Tensor gy = randn_t(y.shape(), DType::F64, 777).to(y.dtype()).to(dev);
    y.backward(gy);
    std::vector<Tensor> r{y.cpu().to(DType::F64)};
    for (Tensor& x : v) r.push_back(x.grad().cpu().to(DType::F64));
    return r;
  };
  std::vector<Tensor> fused = run(true, gpu(), dt), composed = run(false, gpu(), dt);
  std::vector<Tensor> ref = run(false, Device::cpu(), DType::F64);
  const char* names[] = {"y", "dx", "ddelta", "dA", "dBs", "dCs", "dDskip", "dbias"};
  for (size_t i = 0; i < fused.size(); ++i) {
    double m = 1;
    for (double v : ref[i].to_vector()) m = std::max(m, std::fabs(v));
    Tol t = dt == DType::F32 ? Tol{2e-3, 2e-3 * m} : Tol{3e-2, 5e-2 * m};
    expect_close(fused[i], ref[i], t, std::string("fused vs f64 ") + names[i]);
    expect_close(fused[i], composed[i], t, std::string("fused vs composed ") + names[i]);
  }
}
}  // namespace

TEST_CASE("ss2d_scan fused CUDA path equals the composed path, gradients included") {
  STEREORT_REQUIRE_GPU();
  for (auto [H, W] : kSizes) fused_vs_composed(2, 3, H, W, 4, DType::F32);
  fused_vs_composed(2, 8, 33, 47, 16, DType::F32);   // odd sizes, L not a multiple of 4
  fused_vs_composed(2, 192, 64, 80, 16, DType::F32); // stage-2-like map, Di 192
  fused_vs_composed(1, 16, 64, 80, 16, DType::BF16);
  check_symmetries(gpu(), DType::F32, 2e-4);
}

TEST_CASE("ss2d_scan fused CUDA path matches the float64 four-direction loop on a 256x320 map") {
  STEREORT_REQUIRE_GPU();
  // L = 81,920: 40 forward chunks and 80 backward chunks per direction, both reversed directions included.
  Ss2dInputs s = make_ss2d(1, 4, 256, 320, 4);
  std::vector<Tensor*> all{&s.x, &s.delta, &s.A, &s.Bs, &s.Cs, &s.Dskip, &s.bias};
  for (Tensor* t : all) *t = t->to(DType::F32).to(DType::F64);  // what the GPU sees
  Tensor want = ss2d_loop(s);
  auto g = [](const Tensor& t) { return t.to(DType::F32).to(gpu()); };
  Tensor got = ss2d_scan(g(s.x), g(s.delta), g(s.A), g(s.Bs), g(s.Cs), g(s.Dskip), g(s.bias)).cpu().to(DType::F64);
  const double e = rel_error(got, want);
  INFO("normwise rel err " << e);
  CHECK(e <= 1e-5);
  double m = 1;
  for (double v : want.to_vector()) m = std::max(m, std::fabs(v));
  expect_close(got, want, 1e-3, 1e-4 * m, "fused 256x320 vs loop");
}
