// tests/test_pool.cpp — avg_pool2d / max_pool2d against an independent float64 reference (window positions counted
// against the padded and the real input), hand-checked ties and NaN, finite differences (max pooling on inputs
// whose values are at least 1e-2 apart, so the FD step never crosses a kink), CUDA vs CPU, and the error messages.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/pool.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

struct PoolCase {
  Shape in;
  Pool2dParams p;
};

std::string pname(const PoolCase& c) {
  return fmt::format("{} k({},{}) s({},{}) p({},{}) include_pad={}", shape_str(c.in), c.p.kernel_h, c.p.kernel_w,
                     c.p.stride_h, c.p.stride_w, c.p.pad_h, c.p.pad_w, c.p.count_include_pad);
}

// Forward (max = false: average; true: max) and the adjoint of the average/max for cotangent g (F64).
struct RefPool {
  Tensor out, gx;
};
RefPool ref_pool(const Tensor& x_, const Pool2dParams& p, bool is_max, const Tensor& g_) {
  Tensor x = x_.to(DType::F64).contiguous();
  int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  int64_t OH = (H + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1, OW = (W + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1;
  std::vector<double> xv = x.to_vector(), gv = g_.defined() ? g_.to_vector() : std::vector<double>();
  std::vector<double> ov(size_t(B * C * OH * OW)), gx(xv.size(), 0.0);
  for (int64_t n = 0; n < B * C; ++n)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double sum = 0, best = -INFINITY;
        int64_t real = 0, padded = 0, arg = -1;
        for (int64_t ky = 0; ky < p.kernel_h; ++ky)
          for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
            int64_t y = oy * p.stride_h - p.pad_h + ky, xx = ox * p.stride_w - p.pad_w + kx;
            if (y >= -p.pad_h && y < H + p.pad_h && xx >= -p.pad_w && xx < W + p.pad_w) ++padded;
            if (y < 0 || y >= H || xx < 0 || xx >= W) continue;
            ++real;
            double v = xv[size_t((n * H + y) * W + xx)];
            sum += v;
            if (arg < 0 || v > best || std::isnan(v)) {
              best = v;
              arg = (n * H + y) * W + xx;
            }
          }
        size_t o = size_t((n * OH + oy) * OW + ox);
        double div = double(p.count_include_pad ? padded : real);
        ov[o] = is_max ? best : sum / div;
        if (gv.empty()) continue;
        if (is_max) {
          gx[size_t(arg)] += gv[o];
        } else {
          for (int64_t ky = 0; ky < p.kernel_h; ++ky)
            for (int64_t kx = 0; kx < p.kernel_w; ++kx) {
              int64_t y = oy * p.stride_h - p.pad_h + ky, xx = ox * p.stride_w - p.pad_w + kx;
              if (y >= 0 && y < H && xx >= 0 && xx < W) gx[size_t((n * H + y) * W + xx)] += gv[o] / div;
            }
        }
      }
  return {Tensor::from_vector(ov, {B, C, OH, OW}, DType::F64), Tensor::from_vector(gx, x.shape(), DType::F64)};
}

// Values a random permutation of {0, 1, ..., n-1} * 0.01 - offset: distinct by 1e-2, so max pooling has no ties.
Tensor distinct_values(const Shape& shape, uint64_t seed) {
  int64_t n = shape_numel(shape);
  std::vector<double> key = rand_t({n}, DType::F64, 0, 1, seed).to_vector();
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key[size_t(a)] < key[size_t(b)]; });
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(order[size_t(i)])] = 0.01 * double(i) - 0.005 * double(n);
  return Tensor::from_vector(v, shape, DType::F64);
}

const std::vector<PoolCase>& cases() {
  static const std::vector<PoolCase> c = {
      {{2, 3, 7, 9}, {3, 3, 2, 2, 1, 1, true}},   // SMoEStereo pool2x
      {{2, 3, 7, 9}, {3, 3, 2, 2, 1, 1, false}},
      {{2, 3, 8, 8}, {2, 2, 2, 2, 0, 0, true}},
      {{1, 5, 6, 11}, {3, 3, 1, 1, 1, 1, false}},
      {{2, 2, 9, 7}, {3, 3, 3, 3, 1, 1, true}},
      {{3, 1, 1, 9}, {1, 2, 1, 2, 0, 0, true}},   // CorrBlock1D pyramid (W odd: the last column is dropped)
      {{1, 2, 5, 8}, {4, 2, 3, 1, 2, 1, false}},  // rectangular everything
  };
  return c;
}

}  // namespace

TEST_CASE("avg_pool2d / max_pool2d: float64 forward and backward vs the reference") {
  for (bool is_max : {false, true})
    for (const PoolCase& c : cases()) {
      std::string name = fmt::format("{} {}", is_max ? "max_pool2d" : "avg_pool2d", pname(c));
      Tensor x = randn_t(c.in).set_requires_grad(true);
      Tensor y = is_max ? max_pool2d(x, c.p) : avg_pool2d(x, c.p);
      Tensor g = randn_t(y.shape());
      RefPool r = ref_pool(x.detach(), c.p, is_max, g);
      expect_close(y, r.out, kTolF64, name + " fwd");
      y.backward(g);
      expect_close(x.grad(), r.gx, kTolF64, name + " bwd");
      // f32 and bf16 CPU paths.
      expect_close(is_max ? max_pool2d(x.detach().to(DType::F32), c.p) : avg_pool2d(x.detach().to(DType::F32), c.p),
                   r.out, kTolF32, name + " f32 fwd");
      Tensor xb = x.detach().to(DType::BF16);
      expect_close(is_max ? max_pool2d(xb, c.p) : avg_pool2d(xb, c.p), ref_pool(xb, c.p, is_max, Tensor()).out,
                   kTolBF16, name + " bf16 fwd");
    }
  // The square-kernel overloads are the Pool2dParams forms.
  Tensor x = randn_t({2, 3, 7, 9});
  expect_close(avg_pool2d(x, 3, 2, 1, false), avg_pool2d(x, Pool2dParams{3, 3, 2, 2, 1, 1, false}), 0, 0, "avg sq");
  expect_close(max_pool2d(x, 3, 2, 1), max_pool2d(x, Pool2dParams{3, 3, 2, 2, 1, 1, true}), 0, 0, "max sq");
}

TEST_CASE("max_pool2d: ties go to the first element, NaN wins, padding never wins") {
  // 2x3 input, kernel 2 stride 1: windows [[1,3],[3,2]] and [[3,3],[2,3]].
  Tensor x = Tensor::from_vector({1, 3, 3, 3, 2, 3}, {1, 1, 2, 3}, DType::F64).set_requires_grad(true);
  Tensor y = max_pool2d(x, 2, 1);
  CHECK(y.to_vector() == std::vector<double>{3, 3});
  y.backward(Tensor::from_vector({10, 100}, {1, 1, 1, 2}, DType::F64));
  CHECK(x.grad().to_vector() == std::vector<double>{0, 110, 0, 0, 0, 0});  // both windows pick (0,1)
  Tensor xn = Tensor::from_vector({1, NAN, 5, 2}, {1, 1, 2, 2}, DType::F32);
  CHECK(std::isnan(max_pool2d(xn, 2, 2).item()));
  // All-negative input with padding 1: the max is a real element, never the -inf padding.
  Tensor xneg = Tensor::from_vector({-5, -4, -3, -2}, {1, 1, 2, 2}, DType::F64);
  CHECK(max_pool2d(xneg, 3, 2, 1).item() == -2);
}

TEST_CASE("avg_pool2d / max_pool2d: finite differences (float64)") {
  check_grad([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], 3, 2, 1, true); }, {randn_t({2, 3, 5, 7})},
             "avg_pool2d k3 s2 p1 include_pad");
  check_grad([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], 3, 2, 1, false); }, {randn_t({2, 3, 5, 7})},
             "avg_pool2d k3 s2 p1 exclude_pad");
  check_grad([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], Pool2dParams{1, 2, 1, 2, 0, 0, true}); },
             {randn_t({2, 1, 3, 9})}, "avg_pool2d (1,2)");
  // Kink rule: values at least 1e-2 apart and an FD step of 1e-6, so no window changes its argmax.
  check_grad([](const std::vector<Tensor>& in) { return max_pool2d(in[0], 3, 2, 1); },
             {distinct_values({2, 3, 5, 7}, 77)}, "max_pool2d k3 s2 p1");
  check_grad([](const std::vector<Tensor>& in) { return max_pool2d(in[0], 2, 1); }, {distinct_values({1, 2, 4, 5}, 78)},
             "max_pool2d k2 s1 (overlapping)");
}

TEST_CASE("avg_pool2d / max_pool2d: errors name the op, the shapes and the fix") {
  Tensor x = Tensor::zeros({2, 3, 5, 5});
  expect_error([&] { avg_pool2d(Tensor::zeros({3, 5, 5}), 2, 2); }, {"avg_pool2d", "(3,5,5)", "4-D"});
  expect_error([&] { max_pool2d(x, 3, 1, 2); }, {"max_pool2d", "padding (2,2)", "half the kernel", "(2,3,5,5)"});
  expect_error([&] { avg_pool2d(x, 7, 1); }, {"avg_pool2d", "(2,3,5,5)", "smaller than the kernel"});
  expect_error([&] { max_pool2d(x, 2, 0); }, {"max_pool2d", "stride", ">= 1"});
  expect_error([&] { avg_pool2d(Tensor::zeros({1, 1, 4, 4}, DType::I64), 2, 2); }, {"avg_pool2d", "floating"});
}

TEST_CASE("avg_pool2d / max_pool2d: CUDA forward and backward vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  std::vector<PoolCase> gcases = cases();
  gcases.push_back({{2, 128, 67, 121}, {3, 3, 2, 2, 1, 1, true}});        // RAFT pool2x at a realistic size
  gcases.push_back({{2 * 67 * 121, 1, 1, 241}, {1, 2, 1, 2, 0, 0, true}});  // correlation pyramid level
  for (const PoolCase& c : gcases)
    for (DType dt : {DType::F32, DType::F16, DType::BF16, DType::F64}) {
      Tol tol = dt == DType::F32 ? kTolF32 : dt == DType::F64 ? kTolF64 : dt == DType::F16 ? kTolF16 : kTolBF16;
      Tensor x = randn_t(c.in, dt);
      [[maybe_unused]] Context& ctx = Context::get(gpu());
      for (bool is_max : {false, true}) {
        std::string name = fmt::format("{} {} {}", is_max ? "max_pool2d" : "avg_pool2d", pname(c), dtype_name(dt));
        Tensor xc = x.clone().set_requires_grad(true);
        Tensor yc = is_max ? max_pool2d(xc, c.p) : avg_pool2d(xc, c.p);
        Tensor g = randn_t(yc.shape(), dt);
        yc.backward(g);
        Pool2dGeom geom = make_pool2d_geom("test", x, c.p);
        Tensor y = Tensor::empty(yc.shape(), dt, gpu()), gx = Tensor::empty(c.in, dt, gpu());
        poison(y);
        poison(gx);
        if (is_max) {
          Tensor idx = Tensor::empty(yc.shape(), DType::I32, gpu());
          poison(idx);
          STEREORT_CUDA_PATH(cuda::max_pool2d_forward(y, idx, x.cuda(), geom, ctx));
          Tensor idx_cpu = Tensor::empty(yc.shape(), DType::I32);
          ref::max_pool2d_forward(Tensor::empty(yc.shape(), cpu_float_dtype(dt)), idx_cpu,
                                  x.to(cpu_float_dtype(dt)), geom);
          expect_close(idx.cpu(), idx_cpu, 0, 0, name + " argmax");
          STEREORT_CUDA_PATH(cuda::max_pool2d_backward(gx, g.cuda(), idx, geom, ctx));
        } else {
          STEREORT_CUDA_PATH(cuda::avg_pool2d_forward(y, x.cuda(), geom, ctx));
          STEREORT_CUDA_PATH(cuda::avg_pool2d_backward(gx, g.cuda(), geom, ctx));
        }
        expect_close(y.cpu(), yc, tol, name + " fwd");
        expect_close(gx.cpu(), xc.grad(), tol, name + " bwd");
        // The op and its autograd node on the GPU.
        Tensor xg = x.cuda().set_requires_grad(true);
        Tensor yg = is_max ? max_pool2d(xg, c.p) : avg_pool2d(xg, c.p);
        yg.backward(g.cuda());
        expect_close(yg.cpu(), yc, tol, name + " op fwd");
        expect_close(xg.grad().cpu(), xc.grad(), tol, name + " op bwd");
      }
    }
}
