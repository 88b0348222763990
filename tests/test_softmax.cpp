// tests/test_softmax.cpp — softmax, log_softmax, max, argmax, topk.
//   CPU forward vs float64 loops written here (naive exp / sum, sorting); gradients by finite differences in
//   float64 on small odd shapes along every dim; special values (huge logits, -inf rows, NaN); tie rules; errors;
//   GPU vs CPU on shapes that reach every CUDA schedule (column walk, warp per row, block per row).
//   Kink rule: max / topk are piecewise linear; gradcheck inputs are random reals (no ties, gaps >> eps), ties are
//   tested separately by their index rule.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/context.h"
#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/softmax.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// x as (outer, n, inner) around dim d.
struct Around {
  int64_t outer = 1, n = 1, inner = 1;
};
Around around(const Shape& s, int d) {
  Around a;
  a.n = s[size_t(d)];
  for (int i = 0; i < d; ++i) a.outer *= s[size_t(i)];
  for (size_t i = size_t(d) + 1; i < s.size(); ++i) a.inner *= s[i];
  return a;
}

Tensor ref_softmax(const Tensor& x, int d, bool log) {
  std::vector<double> v = x.to_vector(), out(v.size());
  Around a = around(x.shape(), d);
  for (int64_t o = 0; o < a.outer; ++o)
    for (int64_t i = 0; i < a.inner; ++i) {
      double s = 0;
      for (int64_t k = 0; k < a.n; ++k) s += std::exp(v[size_t((o * a.n + k) * a.inner + i)]);
      for (int64_t k = 0; k < a.n; ++k) {
        size_t j = size_t((o * a.n + k) * a.inner + i);
        out[j] = log ? v[j] - std::log(s) : std::exp(v[j]) / s;
      }
    }
  return Tensor::from_vector(out, x.shape(), DType::F64);
}

// Sorted (value, index) per row: descending for largest (stable on index), ascending otherwise.
void ref_topk(const Tensor& x, int d, int64_t k, bool largest, Tensor* values, Tensor* indices) {
  std::vector<double> v = x.to_vector();
  Around a = around(x.shape(), d);
  Shape os = x.shape();
  os[size_t(d)] = k;
  std::vector<double> ov(size_t(shape_numel(os))), oi(ov.size());
  for (int64_t o = 0; o < a.outer; ++o)
    for (int64_t i = 0; i < a.inner; ++i) {
      std::vector<int64_t> idx(size_t(a.n));
      std::iota(idx.begin(), idx.end(), 0);
      auto val = [&](int64_t kk) { return v[size_t((o * a.n + kk) * a.inner + i)]; };
      std::stable_sort(idx.begin(), idx.end(),
                       [&](int64_t p, int64_t q) { return largest ? val(p) > val(q) : val(p) < val(q); });
      for (int64_t j = 0; j < k; ++j) {
        size_t out = size_t((o * k + j) * a.inner + i);
        ov[out] = val(idx[size_t(j)]);
        oi[out] = double(idx[size_t(j)]);
      }
    }
  *values = Tensor::from_vector(ov, os, DType::F64);
  *indices = Tensor::from_vector(oi, os, DType::F64);
}

std::pair<Tensor, Tensor> fwd_bwd(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& gout) {
  Tensor xi = x.detach().clone();
  xi.set_requires_grad(true);
  Tensor y = f(xi);
  y.backward(gout);
  return {y.detach(), xi.grad()};
}

}  // namespace

TEST_CASE("softmax / log_softmax: CPU forward vs float64 reference along every dim") {
  Tensor x = rand_t({3, 5, 7}, DType::F64, -3.0, 3.0);
  for (int d = 0; d < 3; ++d) {
    for (bool log : {false, true}) {
      std::string name = std::string(log ? "log_softmax" : "softmax") + " dim " + std::to_string(d);
      Tensor ref = ref_softmax(x, d, log);
      expect_close(log ? log_softmax(x, d) : softmax(x, d), ref, kTolF64, name + " f64");
      expect_close(log ? log_softmax(x, d - 3) : softmax(x, d - 3), ref, kTolF64, name + " (negative dim)");
      Tensor x32 = x.to(DType::F32);
      expect_close(log ? log_softmax(x32, d) : softmax(x32, d), ref_softmax(x32, d, log), kTolF32, name + " f32");
      Tensor x16 = x.to(DType::BF16);
      Tensor y16 = log ? log_softmax(x16, d) : softmax(x16, d);
      CHECK(y16.dtype() == DType::BF16);
      expect_close(y16, ref_softmax(x16, d, log), kTolBF16, name + " bf16");
    }
  }
  // A non-contiguous input (transposed view).
  Tensor xt = rand_t({6, 4}, DType::F64).transpose(0, 1);
  expect_close(softmax(xt, 1), ref_softmax(xt.contiguous(), 1, false), kTolF64, "softmax of a transposed view");
}

TEST_CASE("softmax: huge logits, -inf and NaN") {
  Tensor x = Tensor::from_vector({1000.0, 1001.0, -1000.0, 0.0}, {1, 4}, DType::F32);
  std::vector<double> y = softmax(x, 1).to_vector();
  CHECK(y[0] == doctest::Approx(1.0 / (1.0 + std::exp(1.0))).epsilon(1e-6));
  CHECK(y[1] == doctest::Approx(std::exp(1.0) / (1.0 + std::exp(1.0))).epsilon(1e-6));
  CHECK(y[2] == 0.0);
  std::vector<double> ly = log_softmax(x, 1).to_vector();
  CHECK(ly[1] == doctest::Approx(-std::log1p(std::exp(-1.0))).epsilon(1e-6));
  CHECK(std::isfinite(ly[2]));
  const double inf = std::numeric_limits<double>::infinity();
  // A row with some -inf: those get probability 0; a row of all -inf is NaN (as PyTorch).
  Tensor m = Tensor::from_vector({-inf, 0.0, -inf, -inf, -inf, -inf}, {2, 3}, DType::F64);
  std::vector<double> my = softmax(m, 1).to_vector();
  CHECK(my[0] == 0.0);
  CHECK(my[1] == 1.0);
  CHECK(std::isnan(my[3]));
  Tensor n = Tensor::from_vector({1.0, std::nan(""), 2.0}, {3}, DType::F64);
  for (double v : softmax(n, 0).to_vector()) CHECK(std::isnan(v));
  // A scalar: softmax is 1, log_softmax 0.
  CHECK(softmax(Tensor::scalar(3.0, DType::F64), -1).item() == 1.0);
  CHECK(log_softmax(Tensor::scalar(3.0, DType::F64), 0).item() == 0.0);
  Tensor sc = Tensor::scalar(-2.5, DType::F64);
  CHECK(max(sc, 0).values.item() == -2.5);
  CHECK(max(sc, -1, true).indices.dim() == 0);
  CHECK(topk(sc, 1).values.item() == -2.5);
  check_grad([](const std::vector<Tensor>& in) { return max(in[0], 0).values; }, {sc}, "max of a scalar");
}

TEST_CASE("softmax / log_softmax: gradcheck along every dim") {
  Tensor x = rand_t({2, 3, 5}, DType::F64, -2.0, 2.0);
  for (int d = 0; d < 3; ++d) {
    check_grad([d](const std::vector<Tensor>& in) { return softmax(in[0], d); }, {x},
               "softmax dim " + std::to_string(d));
    check_grad([d](const std::vector<Tensor>& in) { return log_softmax(in[0], d); }, {x},
               "log_softmax dim " + std::to_string(d));
  }
}

TEST_CASE("max / argmax: values, indices, keepdim, ties, NaN, gradient") {
  Tensor x = rand_t({3, 5, 4}, DType::F64);
  for (int d = 0; d < 3; ++d) {
    Tensor rv, ri;
    ref_topk(x, d, 1, true, &rv, &ri);
    MaxResult r = max(x, d, true);
    CHECK(r.indices.dtype() == DType::I64);
    expect_close(r.values, rv, 0, 0, "max values dim " + std::to_string(d));
    expect_close(r.indices.to(DType::F64), ri, 0, 0, "max indices dim " + std::to_string(d));
    MaxResult r2 = max(x, d - 3, false);
    Shape squeezed = x.shape();
    squeezed.erase(squeezed.begin() + d);
    CHECK(r2.values.shape() == squeezed);
    CHECK(argmax(x, d).to_vector() == r2.indices.to_vector());
    check_grad([d](const std::vector<Tensor>& in) { return max(in[0], d).values; }, {x},
               "max dim " + std::to_string(d));
  }
  // Ties: the first index wins, and it alone receives the gradient.
  Tensor t = Tensor::from_vector({1.0, 3.0, 3.0, 2.0, 5.0, 5.0, 5.0, -1.0}, {2, 4}, DType::F64);
  MaxResult tr = max(t, 1);
  CHECK(tr.indices.to_vector() == std::vector<double>{1, 0});
  auto [tv, tg] = fwd_bwd([](const Tensor& a) { return max(a, 1).values; }, t, Tensor::ones({2}, DType::F64));
  CHECK(tg.to_vector() == std::vector<double>{0, 1, 0, 0, 1, 0, 0, 0});
  // NaN is the maximum (first NaN).
  Tensor n = Tensor::from_vector({1.0, std::nan(""), 7.0, std::nan("")}, {4}, DType::F32);
  MaxResult nr = max(n, 0);
  CHECK(nr.indices.item() == 1);
  CHECK(std::isnan(nr.values.item()));
}

TEST_CASE("topk: sorted values and indices, largest and smallest, ties, gradient") {
  Tensor x = rand_t({2, 7, 3}, DType::F64);
  for (int d = 0; d < 3; ++d)
    for (bool largest : {true, false}) {
      int64_t k = std::min<int64_t>(3, x.size(d));
      Tensor rv, ri;
      ref_topk(x, d, k, largest, &rv, &ri);
      MaxResult r = topk(x, k, d, largest);
      std::string name = "topk dim " + std::to_string(d) + (largest ? " largest" : " smallest");
      expect_close(r.values, rv, 0, 0, name);
      expect_close(r.indices.to(DType::F64), ri, 0, 0, name + " indices");
      check_grad([d, k, largest](const std::vector<Tensor>& in) { return topk(in[0], k, d, largest).values; }, {x},
                 name);
    }
  // Half inputs on the CPU, k = n (a full sort), k = 0.
  Tensor xh = x.to(DType::F16);
  Tensor rv, ri;
  ref_topk(xh, 1, 7, true, &rv, &ri);
  MaxResult rh = topk(xh, 7, 1);
  expect_close(rh.values.to(DType::F64), rv, 0, 0, "topk f16 full sort");
  CHECK(topk(x, 0, 1).values.shape() == Shape{2, 0, 3});
  // Ties keep the lower index first; NaN ranks above every number.
  Tensor t = Tensor::from_vector({2.0, 5.0, 2.0, 5.0, std::nan(""), 1.0}, {6}, DType::F64);
  CHECK(topk(t, 4, 0).indices.to_vector() == std::vector<double>{4, 1, 3, 0});
  CHECK(topk(t, 3, 0, false).indices.to_vector() == std::vector<double>{5, 0, 2});
}

TEST_CASE("softmax family: errors name the op, the shape and the fix") {
  Tensor x = Tensor::zeros({2, 3});
  expect_error([&] { softmax(x, 2); }, {"softmax", "dim 2", "2-D"});
  expect_error([&] { log_softmax(Tensor::zeros({2}, DType::I64), 0); }, {"log_softmax", "floating"});
  expect_error([&] { topk(x, 4, 1); }, {"topk", "k = 4", "(2,3)", "size 3"});
  expect_error([&] { max(Tensor::zeros({2, 0}), 1); }, {"max", "size 0", "(2,0)"});
}

TEST_CASE("softmax family: GPU vs CPU on every schedule [gpu]") {
  STEREORT_REQUIRE_GPU();
  struct Shp {
    Shape s;
    int d;
  };
  // (3,5): n = 5 column walk on the last dim; (7,37) warp per row; (3,3001) block per row; (2,48,13,17) dim 1 strided
  // (the disparity softmax layout); (4,9,6) dim 0.
  std::vector<Shp> shapes = {{{3, 5}, 1}, {{7, 37}, 1}, {{3, 3001}, -1}, {{2, 48, 13, 17}, 1}, {{4, 9, 6}, 0}};
  for (const Shp& sh : shapes) {
    for (bool log : {false, true}) {
      std::string name = std::string(log ? "log_softmax " : "softmax ") + shape_str(sh.s) + " dim " +
                         std::to_string(sh.d);
      int d = sh.d;
      auto f = [d, log](const Tensor& t) { return log ? log_softmax(t, d) : softmax(t, d); };
      Tensor x = rand_t(sh.s, DType::F32, -5.0, 5.0), g = rand_t(sh.s, DType::F32);
      auto [y, dx] = fwd_bwd(f, x, g);
      auto [yg, dxg] = fwd_bwd(f, x.cuda(), g.cuda());
      // fp32 accumulation over up to 3001 terms in a different order than the CPU's double: 1e-5 relative.
      expect_close(yg.cpu(), y, kTolF32, name + " fwd f32");
      expect_close(dxg.cpu(), dx, 1e-5, 1e-6, name + " bwd f32");
      auto [y64, dx64] = fwd_bwd(f, x.to(DType::F64).cuda(), g.to(DType::F64).cuda());
      expect_close(y64.cpu(), ref_softmax(x.to(DType::F64), d < 0 ? d + int(sh.s.size()) : d, log), kTolF64,
                   name + " fwd f64");
      for (DType dt : {DType::F16, DType::BF16}) {
        Tensor xh = x.to(dt), gh = g.to(dt);
        auto [yh, dxh] = fwd_bwd(f, xh, gh);
        auto [yhg, dxhg] = fwd_bwd(f, xh.cuda(), gh.cuda());
        Tol tol = dt == DType::F16 ? kTolF16 : kTolBF16;
        expect_close(yhg.cpu().to(DType::F32), yh.to(DType::F32), tol, name + " fwd 16-bit");
        expect_close(dxhg.cpu().to(DType::F32), dxh.to(DType::F32), tol, name + " bwd 16-bit");
      }
    }
    // max and topk select, they do not round: GPU == CPU exactly.
    Tensor x = rand_t(sh.s, DType::F32);
    MaxResult c = max(x, sh.d), gm = max(x.cuda(), sh.d);
    expect_close(gm.values.cpu(), c.values, 0, 0, "max values " + shape_str(sh.s));
    CHECK(gm.indices.cpu().to_vector() == c.indices.to_vector());
    int64_t n = sh.s[size_t(sh.d < 0 ? sh.d + int(sh.s.size()) : sh.d)];
    int64_t k = std::min<int64_t>(n, 5);
    for (bool largest : {true, false}) {
      MaxResult ct = topk(x, k, sh.d, largest), gt = topk(x.cuda(), k, sh.d, largest);
      expect_close(gt.values.cpu(), ct.values, 0, 0, "topk values " + shape_str(sh.s));
      CHECK(gt.indices.cpu().to_vector() == ct.indices.to_vector());
    }
    auto mf = [&sh](const Tensor& t) { return max(t, sh.d).values; };
    Tensor gout = rand_t(c.values.shape(), DType::F32);
    auto [mv, mdx] = fwd_bwd(mf, x, gout);
    auto [mvg, mdxg] = fwd_bwd(mf, x.cuda(), gout.cuda());
    expect_close(mdxg.cpu(), mdx, 0, 0, "max backward " + shape_str(sh.s));
    auto tf = [&sh, k](const Tensor& t) { return topk(t, k, sh.d).values; };
    Tensor tout = rand_t(topk(x, k, sh.d).values.shape(), DType::F32);
    auto [tv, tdx] = fwd_bwd(tf, x, tout);
    auto [tvg, tdxg] = fwd_bwd(tf, x.cuda(), tout.cuda());
    expect_close(tdxg.cpu(), tdx, 0, 0, "topk backward " + shape_str(sh.s));
  }
  // Ties and NaN on the warp path (n = 40): the first index wins on both devices.
  std::vector<double> v(80, 1.0);
  v[45] = std::nan("");
  v[70] = std::nan("");
  Tensor t = Tensor::from_vector(v, {2, 40}, DType::F32).cuda();
  CHECK(max(t, 1).indices.cpu().to_vector() == std::vector<double>{0, 5});
}

TEST_CASE("softmax: special values agree between GPU and CPU on every schedule [gpu]") {
  STEREORT_REQUIRE_GPU();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (int64_t n : {5, 40, 2000}) {
    // Rows: all -inf; some -inf; one +inf; one NaN; huge logits.
    std::vector<double> v;
    for (int r = 0; r < 5; ++r)
      for (int64_t k = 0; k < n; ++k) {
        double e = double((k * 7 + r) % 11) - 5.0;
        if (r == 0) e = -inf;
        if (r == 1 && k % 2 == 0) e = -inf;
        if (r == 2 && k == n / 2) e = inf;
        if (r == 3 && k == n - 1) e = nan;
        if (r == 4) e += 1000.0;
        v.push_back(e);
      }
    for (bool last : {true, false}) {
      Tensor x = Tensor::from_vector(v, {5, n}, DType::F32);
      if (!last) x = x.transpose(0, 1).contiguous();  // (n, 5): softmax over dim 0, the strided column walk
      int d = last ? 1 : 0;
      for (bool log : {false, true}) {
        std::vector<double> c = (log ? log_softmax(x, d) : softmax(x, d)).to_vector();
        std::vector<double> g = (log ? log_softmax(x.cuda(), d) : softmax(x.cuda(), d)).cpu().to_vector();
        int bad = 0;
        for (size_t i = 0; i < c.size(); ++i) {
          bool same = (std::isnan(c[i]) && std::isnan(g[i])) || c[i] == g[i] ||
                      std::fabs(c[i] - g[i]) <= 1e-6 + 1e-5 * std::fabs(c[i]);
          if (!same && bad++ < 3)
            CHECK_MESSAGE(same, (log ? "log_softmax" : "softmax") << " n " << n << (last ? " last dim" : " dim 0")
                                                                  << " element " << i << ": cpu " << c[i] << " gpu "
                                                                  << g[i]);
        }
        CHECK(bad == 0);
      }
    }
  }
}

TEST_CASE("softmax family: CUDA launchers write every output element (poisoned outputs) [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  struct Case {
    Shape s;
    cuda::SoftmaxDims d;
  };
  // Column walk (inner > 1 and n <= 8), warp per row, block per row.
  std::vector<Case> cases = {{{3, 7, 11}, {3, 7, 11}}, {{5, 6}, {5, 6, 1}}, {{9, 100}, {9, 100, 1}},
                             {{2, 1500}, {2, 1500, 1}}};
  for (const Case& c : cases) {
    const int dim = 1;  // every case reduces dim 1
    Tensor x = rand_t(c.s, DType::F32, -4.0, 4.0), g = rand_t(c.s, DType::F32);
    Tensor xg = x.cuda(), gg = g.cuda();
    for (bool log : {false, true}) {
      Tensor y = Tensor::empty(c.s, DType::F32, gpu()), dx = Tensor::empty(c.s, DType::F32, gpu());
      poison(y);
      poison(dx);
      STEREORT_CUDA_PATH(cuda::softmax_forward(y, xg, c.d, log, ctx));
      STEREORT_CUDA_PATH(cuda::softmax_backward(dx, y, gg, c.d, log, ctx));
      Tensor yc = log ? log_softmax(x, dim) : softmax(x, dim);
      expect_close(y.cpu(), yc, kTolF32, "softmax launcher " + shape_str(c.s));
      Tensor xi = x.clone();
      xi.set_requires_grad(true);
      (log ? log_softmax(xi, dim) : softmax(xi, dim)).backward(g);
      expect_close(dx.cpu(), xi.grad(), kTolF32, "softmax_backward launcher " + shape_str(c.s));
    }
    Shape vs = c.s;
    vs[1] = 1;
    Tensor v = Tensor::empty(vs, DType::F32, gpu()), i = Tensor::empty(vs, DType::I64, gpu());
    poison(v);
    poison(i);
    STEREORT_CUDA_PATH(cuda::max_forward(v, i, xg, c.d, ctx));
    MaxResult m = max(x, 1, true);
    expect_close(v.cpu(), m.values, 0, 0, "max launcher " + shape_str(c.s));
    CHECK(i.cpu().to_vector() == m.indices.to_vector());
    Shape ks = c.s;
    ks[1] = std::min<int64_t>(3, c.s[1]);
    Tensor tv = Tensor::empty(ks, DType::F32, gpu()), ti = Tensor::empty(ks, DType::I64, gpu());
    poison(tv);
    poison(ti);
    STEREORT_CUDA_PATH(cuda::topk_forward(tv, ti, xg, c.d, ks[1], true, ctx));
    MaxResult t = topk(x, ks[1], 1);
    expect_close(tv.cpu(), t.values, 0, 0, "topk launcher " + shape_str(c.s));
    CHECK(ti.cpu().to_vector() == t.indices.to_vector());
  }
}
