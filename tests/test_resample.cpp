// tests/test_resample.cpp — interpolate_{nearest,bilinear,bicubic,trilinear} (+ scale-factor forms) against an
// independent float64 reference, hand-computed values, the PyTorch golden regression file, finite differences, the
// CUDA path (forward and backward vs CPU) and the error messages.
//   Reference: each axis as a dense (out x in) matrix built from the PyTorch formulas (ATen UpSample.h), applied one
//   axis at a time; the backward applies the transposes. Different code, different summation order from ops/.
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/check.h"
#include "core/context.h"
#include "ops/resample.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

enum class M { Nearest, Linear, Cubic };

// Dense 1-D interpolation matrix (out x in), row-major. sf > 0: PyTorch scale_factor semantics.
std::vector<double> axis_matrix(M m, int64_t in, int64_t out, bool align, double sf = 0) {
  std::vector<double> A(size_t(out * in), 0.0);
  auto at = [&](int64_t o, int64_t i) -> double& { return A[size_t(o * in + i)]; };
  double scale = align ? (out > 1 ? double(in - 1) / double(out - 1) : 0.0) : (sf > 0 ? 1.0 / sf : double(in) / out);
  for (int64_t o = 0; o < out; ++o) {
    if (m == M::Nearest) {
      float s = sf > 0 ? float(1.0 / sf) : float(in) / float(out);
      int64_t i = out == in ? o : std::min<int64_t>(int64_t(std::floor(float(o) * s)), in - 1);
      at(o, i) = 1.0;
      continue;
    }
    double src = align ? scale * o : scale * (o + 0.5) - 0.5;
    if (m == M::Linear) {
      src = std::max(src, 0.0);
      int64_t i0 = int64_t(std::floor(src));
      int64_t i1 = std::min(i0 + 1, in - 1);
      double l = src - double(i0);
      at(o, i0) += 1 - l;
      at(o, i1) += l;
    } else {
      const double a = -0.75;
      auto keys = [a](double x) {  // Keys (1981) cubic convolution kernel
        x = std::fabs(x);
        if (x <= 1) return (a + 2) * x * x * x - (a + 3) * x * x + 1;
        if (x < 2) return a * x * x * x - 5 * a * x * x + 8 * a * x - 4 * a;
        return 0.0;
      };
      double fl = std::floor(src), t = src - fl;
      for (int k = -1; k <= 2; ++k) {
        int64_t i = std::min(std::max<int64_t>(int64_t(fl) + k, 0), in - 1);
        at(o, i) += keys(t - k);
      }
    }
  }
  return A;
}

std::vector<double> transpose(const std::vector<double>& A, int64_t rows, int64_t cols) {
  std::vector<double> T(A.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) T[size_t(c * rows + r)] = A[size_t(r * cols + c)];
  return T;
}

// data (n, s[0], s[1], s[2]); replace dim `ax` (0..2) of size s[ax] by `rows` using matrix (rows x s[ax]).
std::vector<double> apply_axis(const std::vector<double>& x, int64_t n, int64_t s[3], int ax,
                               const std::vector<double>& A, int64_t rows) {
  int64_t ns[3] = {s[0], s[1], s[2]};
  ns[ax] = rows;
  std::vector<double> y(size_t(n * ns[0] * ns[1] * ns[2]), 0.0);
  for (int64_t b = 0; b < n; ++b)
    for (int64_t i = 0; i < ns[0]; ++i)
      for (int64_t j = 0; j < ns[1]; ++j)
        for (int64_t k = 0; k < ns[2]; ++k) {
          int64_t o[3] = {i, j, k};
          double acc = 0;
          for (int64_t c = 0; c < s[ax]; ++c) {
            int64_t src[3] = {i, j, k};
            src[ax] = c;
            acc += A[size_t(o[ax] * s[ax] + c)] * x[size_t(((b * s[0] + src[0]) * s[1] + src[1]) * s[2] + src[2])];
          }
          y[size_t(((b * ns[0] + i) * ns[1] + j) * ns[2] + k)] = acc;
        }
  s[ax] = rows;
  return y;
}

// Forward (transpose_ = false) or adjoint of the separable operator on a (B,C,[D,]H,W) F64 tensor.
Tensor ref_resample(M m, const Tensor& x, const std::vector<int64_t>& in_sizes, const std::vector<int64_t>& out_sizes,
                    bool align, bool adjoint, const std::vector<double>& sf = {}) {
  int nsp = int(in_sizes.size());
  int64_t n = x.size(0) * x.size(1);
  int64_t s[3] = {1, 1, 1};
  std::vector<int64_t> from = adjoint ? out_sizes : in_sizes, to = adjoint ? in_sizes : out_sizes;
  for (int i = 0; i < nsp; ++i) s[3 - nsp + i] = from[size_t(i)];
  std::vector<double> v = x.contiguous().to_vector();
  for (int i = nsp - 1; i >= 0; --i) {  // W first (any order is exact)
    std::vector<double> A = axis_matrix(m, in_sizes[size_t(i)], out_sizes[size_t(i)], align, sf.empty() ? 0 : sf[size_t(i)]);
    if (adjoint) A = transpose(A, out_sizes[size_t(i)], in_sizes[size_t(i)]);
    v = apply_axis(v, n, s, 3 - nsp + i, A, to[size_t(i)]);
  }
  Shape shape = {x.size(0), x.size(1)};
  for (int64_t t : to) shape.push_back(t);
  return Tensor::from_vector(v, shape, DType::F64);
}

Tensor run_op(M m, const Tensor& x, const std::vector<int64_t>& o, bool align) {
  if (o.size() == 3) return interpolate_trilinear(x, o[0], o[1], o[2], align);
  if (m == M::Linear) return interpolate_bilinear(x, o[0], o[1], align);
  if (m == M::Cubic) return interpolate_bicubic(x, o[0], o[1], align);
  return interpolate_nearest(x, o[0], o[1]);
}

struct Case {
  M m;
  Shape in;  // (B,C,[D,]H,W)
  std::vector<int64_t> out;
  bool align;
};

std::vector<int64_t> spatial(const Shape& s) { return std::vector<int64_t>(s.begin() + 2, s.end()); }

std::string case_name(const Case& c) {
  const char* mn = c.m == M::Nearest ? "nearest" : (c.m == M::Linear ? (c.out.size() == 3 ? "trilinear" : "bilinear")
                                                                      : "bicubic");
  return fmt::format("{} {} -> ({}) align_corners={}", mn, shape_str(c.in), fmt::join(c.out, ","), c.align);
}

// ---- a minimal safetensors reader for the golden file (F32 tensors only) -----------------------------------------
Tensor st_load(const std::string& path, const std::string& key) {
  std::ifstream f(path, std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  REQUIRE(all.size() > 8);
  uint64_t n = 0;
  std::memcpy(&n, all.data(), 8);
  std::string hdr = all.substr(8, size_t(n));
  size_t at = hdr.find("\"" + key + "\":");
  REQUIRE_MESSAGE(at != std::string::npos, "golden key " << key);
  size_t end = hdr.find('}', at);
  auto field = [&](const std::string& name) {
    size_t p = hdr.find("\"" + name + "\":", at);
    REQUIRE((p != std::string::npos && p < end));
    return p + name.size() + 3;
  };
  REQUIRE(hdr.compare(field("dtype"), 5, "\"F32\"") == 0);
  auto ints = [&](size_t p) {
    std::vector<int64_t> v;
    size_t close = hdr.find(']', p);
    std::stringstream ss(hdr.substr(p + 1, close - p - 1));
    std::string tok;
    while (std::getline(ss, tok, ',')) v.push_back(std::stoll(tok));
    return v;
  };
  std::vector<int64_t> shape = ints(field("shape")), off = ints(field("data_offsets"));
  Tensor t = Tensor::empty(Shape(shape.begin(), shape.end()), DType::F32);
  REQUIRE(size_t(off[1] - off[0]) == t.nbytes());
  std::memcpy(t.data_ptr(), all.data() + 8 + n + off[0], t.nbytes());
  return t;
}

// max|a - g| / max|g| (the golden README's metric).
double golden_err(const Tensor& a, const Tensor& g) {
  std::vector<double> av = a.to_vector(), gv = g.to_vector();
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    num = std::max(num, std::fabs(av[i] - gv[i]));
    den = std::max(den, std::fabs(gv[i]));
  }
  return den > 0 ? num / den : num;
}

ResampleMode to_mode(M m) {
  return m == M::Nearest ? ResampleMode::Nearest : (m == M::Linear ? ResampleMode::Linear : ResampleMode::Cubic);
}

Tol tol_for(DType dt) {
  return dt == DType::F32 ? kTolF32 : dt == DType::F64 ? kTolF64 : dt == DType::F16 ? kTolF16 : kTolBF16;
}

// CUDA launchers (outputs poisoned first) and the CUDA autograd path vs the CPU op, forward and backward.
void gpu_check(const Case& c, DType dt) {
  std::string name = fmt::format("{} {}", case_name(c), dtype_name(dt));
  Tol tol = tol_for(dt);
  Tensor x = randn_t(c.in, dt);
  Tensor xc = x.clone().set_requires_grad(true);
  Tensor yc = run_op(c.m, xc, c.out, c.align);
  Tensor g = randn_t(yc.shape(), dt);
  yc.backward(g);
  [[maybe_unused]] ResampleParams p = make_resample_params(to_mode(c.m), c.in, c.out, c.align);
  [[maybe_unused]] Context& ctx = Context::get(gpu());
  Tensor y = Tensor::empty(yc.shape(), dt, gpu());
  poison(y);
  STEREORT_CUDA_PATH(cuda::resample_forward(y, x.cuda(), p, ctx));
  expect_close(y.cpu(), yc, tol, name + " fwd");
  Tensor gx = Tensor::empty(c.in, dt, gpu());
  poison(gx);
  STEREORT_CUDA_PATH(cuda::resample_backward(gx, g.cuda(), p, ctx));
  // f32: the GPU gathers per axis in fp32, the CPU scatters in double: ~1e-7 relative apart.
  expect_close(gx.cpu(), xc.grad(), tol, name + " bwd");
  // The op and its autograd node on the GPU.
  Tensor xg = x.cuda().set_requires_grad(true);
  Tensor yg = run_op(c.m, xg, c.out, c.align);
  CHECK(yg.is_cuda());
  yg.backward(g.cuda());
  expect_close(yg.cpu(), yc, tol, name + " op fwd");
  expect_close(xg.grad().cpu(), xc.grad(), tol, name + " op bwd");
}

}  // namespace

TEST_CASE("resample: hand-computed 1-D values (PyTorch F.interpolate)") {
  Tensor x = Tensor::from_vector({0, 1, 2, 3}, {1, 1, 1, 4}, DType::F64);
  expect_close(interpolate_bilinear(x, 1, 8, false),
               Tensor::from_vector({0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3}, {1, 1, 1, 8}, DType::F64), kTolF64,
               "bilinear x2 align_corners=False");
  std::vector<double> at;
  for (int o = 0; o < 8; ++o) at.push_back(o * 3.0 / 7.0);
  expect_close(interpolate_bilinear(x, 1, 8, true), Tensor::from_vector(at, {1, 1, 1, 8}, DType::F64), kTolF64,
               "bilinear x2 align_corners=True");
  expect_close(interpolate_nearest(x, 1, 6), Tensor::from_vector({0, 0, 1, 2, 2, 3}, {1, 1, 1, 6}, DType::F64),
               kTolF64, "nearest 4 -> 6");
  // Bicubic: out[0] reads taps (0,0,0,1) at t = 0.75: only W(2 - t) = W(1.25) = -0.10546875 weights the 1;
  // out[3] (src 1.25, t = 0.25, no clamping): W(0.25) + 2 W(0.75) + 3 W(1.75) = 0.87890625 + 0.5234375 - 0.10546875
  // (A = -0.75 does not reproduce a ramp; only A = -0.5 would give 1.25).
  Tensor c = interpolate_bicubic(x, 1, 8, false);
  CHECK(c.to_vector()[0] == doctest::Approx(-0.10546875).epsilon(1e-15));
  CHECK(c.to_vector()[3] == doctest::Approx(1.296875).epsilon(1e-15));
  // Trilinear x4 along D only: offsets cycle through -3/8, -1/8, 1/8, 3/8 (kernels.md §8).
  Tensor z = Tensor::from_vector({0, 8}, {1, 1, 2, 1, 1}, DType::F64);
  expect_close(interpolate_trilinear(z, 8, 1, 1, false),
               Tensor::from_vector({0, 0, 1, 3, 5, 7, 8, 8}, {1, 1, 8, 1, 1}, DType::F64), kTolF64,
               "trilinear x4 on D");
}

TEST_CASE("interpolate_trilinear: float64 forward and adjoint vs the dense reference") {
  std::vector<Case> cases = {
      {M::Linear, {2, 3, 5, 6, 7}, {20, 24, 28}, false},  // exact x4 (the StereoMamba head)
      {M::Linear, {2, 3, 5, 6, 7}, {20, 24, 28}, true},
      {M::Linear, {1, 2, 7, 4, 9}, {3, 11, 4}, false},    // down on D and W, up on H
      {M::Linear, {1, 2, 7, 4, 9}, {3, 11, 4}, true},
      {M::Linear, {3, 1, 1, 5, 3}, {4, 5, 1}, false},     // size-1 input and output axes
  };
  for (const Case& c : cases) {
    Tensor x = randn_t(c.in);
    Tensor out = run_op(c.m, x, c.out, c.align);
    expect_close(out, ref_resample(c.m, x, spatial(c.in), c.out, c.align, false), kTolF64, case_name(c) + " fwd");
    Tensor xg = x.clone().set_requires_grad(true);
    Tensor y = run_op(c.m, xg, c.out, c.align);
    Tensor g = randn_t(y.shape());
    y.backward(g);
    expect_close(xg.grad(), ref_resample(c.m, g, spatial(c.in), c.out, c.align, true), kTolF64,
                 case_name(c) + " bwd");
  }
}

TEST_CASE("interpolate_trilinear: float32 CPU vs float64 reference, strided input") {
  Tensor x = randn_t({2, 3, 6, 5, 7}, DType::F32);
  Tensor xp = x.permute({0, 1, 4, 2, 3}).contiguous().permute({0, 1, 3, 4, 2});  // same values, non-contiguous
  CHECK_FALSE(xp.is_contiguous());
  Tensor out = interpolate_trilinear(xp, 24, 20, 28, false);
  expect_close(out, ref_resample(M::Linear, x.to(DType::F64), {6, 5, 7}, {24, 20, 28}, false, false), kTolF32,
               "trilinear f32 x4");
}

TEST_CASE("interpolate_trilinear: matches the PyTorch golden regression intermediates") {
  std::string path = golden_file("regression");
  if (path.empty()) return;
  Tensor cost = st_load(path, "in.cost");  // (1,1,12,5,7)
  Tensor up = st_load(path, "mid.up");     // (1,48,20,28)
  Tensor mine = interpolate_trilinear(cost, 48, 20, 28, false);
  double e = golden_err(mine.reshape({1, 48, 20, 28}), up);
  INFO("forward err vs golden mid.up: " << e);
  CHECK(e <= 1e-4);
  // Backward through the golden softmax/regression: d up[d] = p[d] (d - disp) gout, then our adjoint.
  Tensor prob = st_load(path, "mid.prob"), disp = st_load(path, "out.disp"), gout = st_load(path, "gout.disp");
  std::vector<double> p = prob.to_vector(), dv = disp.to_vector(), gv = gout.to_vector(), dup(p.size());
  for (int64_t d = 0; d < 48; ++d)
    for (int64_t i = 0; i < 20 * 28; ++i)
      dup[size_t(d * 560 + i)] = p[size_t(d * 560 + i)] * (double(d) - dv[size_t(i)]) * gv[size_t(i)];
  Tensor cg = cost.to(DType::F64).set_requires_grad(true);
  interpolate_trilinear(cg, 48, 20, 28, false).backward(Tensor::from_vector(dup, {1, 1, 48, 20, 28}, DType::F64));
  double eg = golden_err(cg.grad(), st_load(path, "grad.in.cost"));
  INFO("adjoint err vs golden grad.in.cost: " << eg);
  CHECK(eg <= 1e-3);
}

TEST_CASE("interpolate_trilinear: finite differences (float64)") {
  for (bool align : {false, true}) {
    check_grad([&](const std::vector<Tensor>& in) { return interpolate_trilinear(in[0], 5, 3, 7, align); },
               {randn_t({2, 3, 3, 4, 2})}, fmt::format("trilinear align_corners={}", align));
  }
}

TEST_CASE("interpolate_trilinear: errors name the op, the shapes and the fix") {
  Tensor x4 = Tensor::zeros({2, 3, 4, 5});
  expect_error([&] { interpolate_trilinear(x4, 4, 4, 4, false); }, {"interpolate_trilinear", "(2,3,4,5)", "5-D"});
  Tensor x5 = Tensor::zeros({1, 1, 2, 3, 4});
  expect_error([&] { interpolate_trilinear(x5, 4, 0, 4, false); }, {"interpolate_trilinear", "4x0x4", "positive"});
  expect_error([&] { interpolate_trilinear(Tensor::zeros({1, 1, 2, 3, 4}, DType::I32), 4, 4, 4, false); },
               {"interpolate_trilinear", "floating"});
}

TEST_CASE("interpolate_trilinear: CUDA forward and backward vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  std::vector<Case> cases = {{M::Linear, {2, 3, 12, 17, 23}, {48, 68, 92}, false},  // x4, odd sizes
                             {M::Linear, {1, 1, 12, 5, 7}, {48, 20, 28}, false},
                             {M::Linear, {2, 5, 9, 31, 20}, {4, 13, 41}, true},
                             {M::Linear, {2, 5, 9, 31, 20}, {4, 13, 41}, false}};
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F64}) gpu_check(c, dt);
}

TEST_CASE("interpolate_bilinear / bicubic / nearest: float64 forward and adjoint vs the dense reference") {
  std::vector<Case> cases = {
      {M::Linear, {2, 3, 7, 5}, {11, 13}, false}, {M::Linear, {2, 3, 7, 5}, {11, 13}, true},
      {M::Linear, {2, 3, 9, 12}, {4, 5}, false},  {M::Linear, {2, 3, 9, 12}, {4, 5}, true},
      {M::Linear, {1, 2, 1, 6}, {3, 1}, true},    // size-1 axes with align_corners (scale 0)
      {M::Cubic, {1, 3, 37, 37}, {20, 56}, false}, {M::Cubic, {1, 3, 37, 37}, {20, 56}, true},
      {M::Cubic, {2, 2, 5, 7}, {9, 3}, false},     {M::Cubic, {2, 2, 5, 7}, {9, 3}, true},
      {M::Nearest, {2, 3, 5, 7}, {11, 13}, false}, {M::Nearest, {2, 3, 9, 12}, {4, 5}, false},
      {M::Nearest, {1, 1, 4, 5}, {8, 10}, false},  // exact 2x (ATen's shift shortcut)
      {M::Nearest, {1, 2, 6, 6}, {6, 6}, false},   // identity
  };
  for (const Case& c : cases) {
    Tensor x = randn_t(c.in);
    Tensor out = run_op(c.m, x, c.out, c.align);
    expect_close(out, ref_resample(c.m, x, spatial(c.in), c.out, c.align, false), kTolF64, case_name(c) + " fwd");
    Tensor xg = x.clone().set_requires_grad(true);
    Tensor y = run_op(c.m, xg, c.out, c.align);
    Tensor g = randn_t(y.shape());
    y.backward(g);
    expect_close(xg.grad(), ref_resample(c.m, g, spatial(c.in), c.out, c.align, true), kTolF64,
                 case_name(c) + " bwd");
    // f32 CPU path vs the double reference. ATen computes src in float: at src ~ 37 its rounding (ulp 4e-6) moves
    // the cubic weights by |W'| * 4e-6 ~ 1e-5, so this bound is looser than kTolF32 (GPU-vs-CPU checks use kTolF32).
    constexpr Tol kTolF32Coords{1e-4, 1e-4};
    expect_close(run_op(c.m, x.to(DType::F32), c.out, c.align).to(DType::F64),
                 ref_resample(c.m, x, spatial(c.in), c.out, c.align, false), kTolF32Coords,
                 case_name(c) + " f32 fwd");
  }
}

TEST_CASE("interpolate_*_scale: PyTorch scale_factor semantics (DINOv2 position table, 7/8 resize)") {
  // DINOv2: scale_factor = ((h + 0.1) / 37, (w + 0.1) / 37) gives exactly h x w; the map uses 1/scale, not 37/h.
  const double sh = 20.1 / 37, sw = 56.1 / 37;
  Tensor pos = randn_t({1, 5, 37, 37});
  Tensor out = interpolate_bicubic_scale(pos, sh, sw, false);
  CHECK(out.shape() == Shape{1, 5, 20, 56});
  expect_close(out, ref_resample(M::Cubic, pos, {37, 37}, {20, 56}, false, false, {sh, sw}), kTolF64,
               "bicubic scale_factor fwd");
  // ... and it differs from the size-based map (the difference a bit-exact port must keep).
  CHECK(rel_error(out, interpolate_bicubic(pos, 20, 56, false)) > 1e-3);
  Tensor img = randn_t({2, 3, 32, 64});
  Tensor r = interpolate_bilinear_scale(img, 0.875, 0.875, false);
  CHECK(r.shape() == Shape{2, 3, 28, 56});
  expect_close(r, ref_resample(M::Linear, img, {32, 64}, {28, 56}, false, false, {0.875, 0.875}), kTolF64,
               "bilinear x7/8 fwd");
  check_grad([&](const std::vector<Tensor>& in) { return interpolate_bicubic_scale(in[0], 7.3 / 5, 3.1 / 5, false); },
             {randn_t({2, 1, 5, 5})}, "bicubic_scale");
  check_grad([&](const std::vector<Tensor>& in) { return interpolate_bilinear_scale(in[0], 0.7, 1.9, false); },
             {randn_t({1, 3, 6, 4})}, "bilinear_scale");
}

TEST_CASE("interpolate_bilinear / bicubic / nearest: finite differences (float64)") {
  for (bool align : {false, true}) {
    check_grad([&](const std::vector<Tensor>& in) { return interpolate_bilinear(in[0], 7, 3, align); },
               {randn_t({2, 3, 4, 5})}, fmt::format("bilinear align_corners={}", align));
    check_grad([&](const std::vector<Tensor>& in) { return interpolate_bicubic(in[0], 3, 8, align); },
               {randn_t({2, 1, 5, 3})}, fmt::format("bicubic align_corners={}", align));
  }
  check_grad([&](const std::vector<Tensor>& in) { return interpolate_nearest(in[0], 7, 2); }, {randn_t({2, 3, 3, 5})},
             "nearest");
}

TEST_CASE("interpolate_bilinear / bicubic / nearest: errors name the op, the shapes and the fix") {
  Tensor x5 = Tensor::zeros({1, 2, 3, 4, 5});
  expect_error([&] { interpolate_bilinear(x5, 4, 4, false); }, {"interpolate_bilinear", "(1,2,3,4,5)", "4-D"});
  expect_error([&] { interpolate_bicubic(Tensor::zeros({2, 3}), 4, 4, false); }, {"interpolate_bicubic", "(2,3)"});
  expect_error([&] { interpolate_nearest(Tensor::zeros({1, 1, 3, 3}), -1, 4); }, {"interpolate_nearest", "positive"});
  expect_error([&] { interpolate_bilinear(Tensor::zeros({1, 1, 0, 3}), 2, 2, false); },
               {"interpolate_bilinear", "(1,1,0,3)", "empty"});
  expect_error([&] { interpolate_bicubic_scale(Tensor::zeros({1, 1, 3, 3}), 0.0, 1.0, false); },
               {"interpolate_bicubic_scale", "scale factor", "positive"});
  expect_error([&] { interpolate_bilinear_scale(Tensor::zeros({1, 1, 3, 3}), 0.2, 1.0, false); },
               {"interpolate_bilinear_scale", "empty output", "(1,1,3,3)"});
}

TEST_CASE("interpolate_bilinear / bicubic / nearest: CUDA forward and backward vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  std::vector<Case> cases = {
      {M::Linear, {2, 3, 320, 896}, {280, 784}, false},  // the SMoEStereo 7/8 resize
      {M::Linear, {2, 5, 37, 53}, {61, 29}, false},      {M::Linear, {2, 5, 37, 53}, {61, 29}, true},
      {M::Linear, {1, 128, 34, 60}, {68, 120}, true},    // RAFT interp (align_corners True), x2
      {M::Cubic, {1, 7, 37, 37}, {20, 56}, false},       {M::Cubic, {1, 7, 37, 37}, {20, 56}, true},
      {M::Cubic, {2, 3, 19, 23}, {7, 41}, false},        {M::Nearest, {2, 3, 17, 23}, {40, 9}, false},
      {M::Nearest, {2, 3, 17, 23}, {34, 46}, false},
  };
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) gpu_check(c, dt);
  gpu_check(cases[1], DType::F64);
  gpu_check(cases[4], DType::F64);
  // scale_factor forms on the GPU.
  Tensor pos = randn_t({1, 16, 37, 37}, DType::F32);
  expect_close(interpolate_bicubic_scale(pos.cuda(), 20.1 / 37, 56.1 / 37, false).cpu(),
               interpolate_bicubic_scale(pos, 20.1 / 37, 56.1 / 37, false), kTolF32, "bicubic_scale GPU");
}
