// tests/test_shape_ops.cpp — cat, split, chunk, pad, flip, index_select, gather, where, clamp, masked_mean.
//   CPU forward vs references written here with plain multi-index loops (the definitions of ops/shape_ops.h);
//   gradients by float64 finite differences on small odd shapes; errors; GPU forward + backward vs CPU.
//   Kink rule: clamp has kinks at lo and hi; gradcheck inputs stay >= 0.05 away from them and the edge values are
//   tested separately (gradient 1 at x == lo and x == hi, as PyTorch).
#include <cmath>
#include <functional>

#include "core/check.h"
#include "core/context.h"
#include "core/error.h"
#include "ops/elementwise.h"
#include "ops/shape_ops.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> c(s.size());
  for (int d = int(s.size()) - 1; d >= 0; --d) {
    c[size_t(d)] = i % s[size_t(d)];
    i /= s[size_t(d)];
  }
  return c;
}
int64_t ravel(const std::vector<int64_t>& c, const Shape& s) {
  int64_t i = 0;
  for (size_t d = 0; d < s.size(); ++d) i = i * s[d] + c[d];
  return i;
}

// out[o] = x[src(o)] (or `fill` where src returns false).
Tensor ref_map(const Tensor& x, const Shape& os,
               const std::function<bool(const std::vector<int64_t>&, std::vector<int64_t>*)>& src, double fill = 0) {
  std::vector<double> v = x.to_vector(), out(size_t(shape_numel(os)));
  for (int64_t i = 0; i < int64_t(out.size()); ++i) {
    std::vector<int64_t> c;
    out[size_t(i)] = src(unravel(i, os), &c) ? v[size_t(ravel(c, x.shape()))] : fill;
  }
  return Tensor::from_vector(out, os, DType::F64);
}

Tensor ref_pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  int nd = x.dim();
  std::vector<int64_t> l(size_t(nd), 0), r(size_t(nd), 0);
  for (size_t p = 0; p < pads.size() / 2; ++p) {
    l[size_t(nd) - 1 - p] = pads[2 * p];
    r[size_t(nd) - 1 - p] = pads[2 * p + 1];
  }
  Shape os = x.shape();
  for (int d = 0; d < nd; ++d) os[size_t(d)] += l[size_t(d)] + r[size_t(d)];
  return ref_map(
      x, os,
      [&](const std::vector<int64_t>& o, std::vector<int64_t>* c) {
        c->resize(o.size());
        for (int d = 0; d < nd; ++d) {
          int64_t k = o[size_t(d)] - l[size_t(d)], n = x.size(d);
          if (mode == PadMode::Replicate) k = std::min(std::max<int64_t>(k, 0), n - 1);
          else if (k < 0 || k >= n) return false;
          (*c)[size_t(d)] = k;
        }
        return true;
      },
      value);
}

std::pair<Tensor, Tensor> fwd_bwd(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& gout) {
  Tensor xi = x.detach().clone();
  xi.set_requires_grad(true);
  Tensor y = f(xi);
  y.backward(gout);
  return {y.detach(), xi.grad()};
}

Tensor idx(const std::vector<double>& v, const Shape& s, DType dt = DType::I64) {
  return Tensor::from_vector(v, s, dt);
}

}  // namespace

TEST_CASE("cat: values along every dim, non-contiguous inputs, gradient, errors") {
  for (int d = 0; d < 3; ++d) {
    Shape s0{2, 3, 4}, s1{2, 3, 4}, s2{2, 3, 4};
    s0[size_t(d)] = 1;
    s1[size_t(d)] = 3;
    s2[size_t(d)] = 2;
    Tensor a = rand_t(s0), b = rand_t(s1), c = rand_t(s2);
    Tensor out = cat({a, b, c}, d - 3);
    Shape os{2, 3, 4};
    os[size_t(d)] = 6;
    CHECK(out.shape() == os);
    // Reference by pieces: out sliced at dim gives back each input.
    expect_close(out.slice(d, 0, 1), a, 0, 0, "cat piece 0");
    expect_close(out.slice(d, 1, 4), b, 0, 0, "cat piece 1");
    expect_close(out.slice(d, 4, 6), c, 0, 0, "cat piece 2");
    check_grad([d](const std::vector<Tensor>& in) { return cat(in, d); }, {a, b, c}, "cat dim " + std::to_string(d));
  }
  Tensor t = rand_t({4, 3}).transpose(0, 1);  // (3,4), non-contiguous
  Tensor u = rand_t({3, 2});
  Tensor tu = cat({t, u}, 1);
  expect_close(tu.slice(1, 0, 4), t, 0, 0, "cat non-contiguous");
  CHECK(cat({Tensor::zeros({3, 0}, DType::F64), u}, 1).shape() == Shape{3, 2});  // empty pieces are fine
  expect_error([&] { cat({rand_t({2, 3, 4}), rand_t({2, 5, 6})}, 1); }, {"cat", "(2,5,6)", "(2,3,4)", "dim 1"});
  expect_error([&] { cat({rand_t({2, 3}), rand_t({2, 3}, DType::F32)}, 0); }, {"cat", "f32", "f64"});
  expect_error([&] { cat({}, 0); }, {"cat", "at least one"});
  expect_error([&] { cat({rand_t({2, 3}), rand_t({2, 3, 1})}, 0); }, {"cat", "(2,3,1)", "(2,3)"});
}

TEST_CASE("split / chunk: views, sizes, gradient") {
  Tensor x = rand_t({2, 7, 3});
  std::vector<Tensor> parts = split(x, {3, 0, 4}, 1);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].shape() == Shape{2, 3, 3});
  CHECK(parts[1].shape() == Shape{2, 0, 3});
  CHECK((parts[2].storage() == x.storage()));  // a view
  expect_close(parts[2], x.slice(1, 3, 7), 0, 0, "split piece");
  std::vector<Tensor> ch = chunk(x, 4, 1);
  REQUIRE(ch.size() == 4);
  CHECK(ch[3].size(1) == 1);
  CHECK(chunk(x, 4, -1).size() == 3);          // size 3, n 4 -> 1,1,1
  CHECK(chunk(rand_t({6}), 4, 0).size() == 3);  // size 6, n 4 -> 2,2,2
  CHECK(chunk(rand_t({0, 2}), 3, 0).size() == 3);
  check_grad(
      [](const std::vector<Tensor>& in) {
        std::vector<Tensor> p = chunk(in[0], 3, 1);
        return cat({mul(p[2], 2.0), p[0]}, 1);
      },
      {x}, "chunk -> cat");
  expect_error([&] { split(x, {3, 3}, 1); }, {"split", "sum to 6", "size 7", "(2,7,3)"});
  expect_error([&] { chunk(x, 0, 1); }, {"chunk", "positive"});
}

TEST_CASE("pad: zero and replicate, F.pad order, negative pads, gradient, errors") {
  Tensor x = rand_t({2, 3, 4, 5});
  struct P {
    std::vector<int64_t> pads;
  };
  std::vector<P> ps = {{{1, 2}}, {{0, 3, 2, 1}}, {{2, 1, 1, 0, 1, 1}}, {{-1, 2, 1, -2}}, {{-2, -1}}, {{}}};
  for (const P& p : ps)
    for (PadMode mode : {PadMode::Zero, PadMode::Replicate}) {
      std::string name = std::string(mode == PadMode::Zero ? "zero" : "replicate") + " pad (" +
                         fmt::format("{}", fmt::join(p.pads, ",")) + ")";
      expect_close(pad(x, p.pads, mode, 0.5), ref_pad(x, p.pads, mode, 0.5), 0, 0, name);
      Tensor xs = rand_t({2, 3, 3, 4});
      check_grad([p, mode](const std::vector<Tensor>& in) { return pad(in[0], p.pads, mode, -1.0); }, {xs}, name);
    }
  // Replicate with pads larger than the dim, and a strided input.
  Tensor xt = rand_t({3, 2}).transpose(0, 1);
  expect_close(pad(xt, {4, 3, 2, 5}, PadMode::Replicate), ref_pad(xt.contiguous(), {4, 3, 2, 5}, PadMode::Replicate, 0),
               0, 0, "replicate wide pads, strided input");
  check_grad([](const std::vector<Tensor>& in) { return pad(in[0], {4, 3, 2, 5}, PadMode::Replicate); },
             {xt.contiguous()}, "replicate wide pads");
  Tensor h = pad(x.to(DType::BF16), {1, 1}, PadMode::Zero, 2.0);
  CHECK(h.dtype() == DType::BF16);
  expect_close(h.to(DType::F64), ref_pad(x.to(DType::BF16), {1, 1}, PadMode::Zero, 2.0), 0, 0, "pad bf16");
  expect_error([&] { pad(x, {1, 1, 1}); }, {"pad", "3 pads", "(2,3,4,5)", "pairs"});
  expect_error([&] { pad(x, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}); },
               {"pad", "too many pads (10)", "(2,3,4,5)", "at most 8"});
  expect_error([&] { pad(x, {-3, -3}); }, {"pad", "negative size", "(2,3,4,5)"});
  expect_error([&] { pad(rand_t({2, 0}), {1, 1}, PadMode::Replicate); }, {"pad", "replicate", "empty"});
}

TEST_CASE("flip: values, gradient, errors") {
  Tensor x = rand_t({2, 3, 5});
  for (std::vector<int64_t> dims : {std::vector<int64_t>{0}, {2}, {-1, 0}, {0, 1, 2}, {}}) {
    Tensor ref = ref_map(x, x.shape(), [&](const std::vector<int64_t>& o, std::vector<int64_t>* c) {
      *c = o;
      for (int64_t d : dims) {
        size_t u = size_t(d < 0 ? d + 3 : d);
        (*c)[u] = x.size(int64_t(u)) - 1 - o[u];
      }
      return true;
    });
    expect_close(flip(x, dims), ref, 0, 0, "flip");
    check_grad([dims](const std::vector<Tensor>& in) { return flip(in[0], dims); }, {x}, "flip");
  }
  expect_close(flip(x.transpose(0, 2), {1}), flip(x.transpose(0, 2).contiguous(), {1}), 0, 0, "flip strided");
  expect_error([&] { flip(x, {1, -2}); }, {"flip", "twice", "(2,3,5)"});
  expect_error([&] { flip(x, {3}); }, {"flip", "out of range"});
}

TEST_CASE("index_select / gather: values, repeats, gradient, errors") {
  Tensor x = rand_t({3, 4, 5});
  Tensor index = idx({2, 0, 2, 1, 2}, {5});
  for (int d = 0; d < 3; ++d) {
    Tensor ix = d == 0 ? idx({2, 0, 2, 1}, {4}) : index;
    std::vector<double> iv = ix.to_vector();
    Shape os = x.shape();
    os[size_t(d)] = ix.numel();
    Tensor ref = ref_map(x, os, [&](const std::vector<int64_t>& o, std::vector<int64_t>* c) {
      *c = o;
      (*c)[size_t(d)] = int64_t(iv[size_t(o[size_t(d)])]);
      return true;
    });
    expect_close(index_select(x, d, ix), ref, 0, 0, "index_select dim " + std::to_string(d));
    expect_close(index_select(x, d, ix.to(DType::I32)), ref, 0, 0, "index_select I32 index");
    check_grad([d, ix](const std::vector<Tensor>& in) { return index_select(in[0], d, ix); }, {x},
               "index_select (repeats accumulate) dim " + std::to_string(d));
  }
  // gather: index smaller than x on the other dims.
  Tensor gi = Tensor::from_vector({3, 0, 1, 1, 3, 2, 0, 0, 1, 2, 2, 3}, {2, 3, 2}, DType::I64);
  for (int d = 0; d < 3; ++d) {
    std::vector<double> v = gi.to_vector();
    for (double& e : v) e = std::fmod(e, double(x.size(d)));
    Tensor ix = Tensor::from_vector(v, gi.shape(), DType::I64);
    Tensor ref = ref_map(x, ix.shape(), [&](const std::vector<int64_t>& o, std::vector<int64_t>* c) {
      *c = o;
      (*c)[size_t(d)] = int64_t(v[size_t(ravel(o, ix.shape()))]);
      return true;
    });
    expect_close(gather(x, d, ix), ref, 0, 0, "gather dim " + std::to_string(d));
    check_grad([d, ix](const std::vector<Tensor>& in) { return gather(in[0], d, ix); }, {x},
               "gather dim " + std::to_string(d));
  }
  Tensor sc = Tensor::scalar(4.0, DType::F64);
  CHECK(gather(sc, 0, idx({0}, {})).item() == 4.0);
  check_grad([](const std::vector<Tensor>& in) { return gather(in[0], -1, idx({0}, {})); }, {sc}, "gather of a scalar");
  expect_error([&] { index_select(x, 1, idx({0, 4}, {2})); }, {"index_select", "index 4 out of range", "size 4",
                                                               "(3,4,5)"});
  expect_error([&] { index_select(x, 1, idx({0, 1}, {1, 2})); }, {"index_select", "1-D", "(1,2)"});
  expect_error([&] { index_select(x, 1, Tensor::zeros({2})); }, {"index_select", "I64 or I32"});
  expect_error([&] { gather(x, 2, idx({0, -1}, {1, 1, 2})); }, {"gather", "index -1 out of range", "dim 2"});
  expect_error([&] { gather(x, 0, idx({0, 0, 0, 0, 0}, {1, 5, 1})); }, {"gather", "(1,5,1)", "(3,4,5)", "dim 1"});
  expect_error([&] { gather(x, 0, idx({0}, {1, 1})); }, {"gather", "same number of dims"});
}

TEST_CASE("where: broadcasting, condition dtypes, gradient") {
  Tensor a = rand_t({2, 3, 4}), b = rand_t({3, 1});
  std::vector<double> cv = {1, 0, 0, 1};
  for (DType cdt : {DType::Bool, DType::U8, DType::F64, DType::I32}) {
    Tensor cond = Tensor::from_vector(cv, {4}, cdt);
    std::vector<double> av = a.to_vector(), bv = b.to_vector(), out(av.size());
    for (size_t i = 0; i < out.size(); ++i) {
      std::vector<int64_t> c = unravel(int64_t(i), a.shape());
      out[i] = cv[size_t(c[2])] != 0 ? av[i] : bv[size_t(c[1])];
    }
    expect_close(where(cond, a, b), Tensor::from_vector(out, a.shape(), DType::F64), 0, 0,
                 std::string("where cond ") + dtype_name(cdt));
  }
  Tensor cond = Tensor::from_vector({0.5, 0.0, -2.0, 0.0}, {4}, DType::F64);  // floating: != 0
  check_grad([cond](const std::vector<Tensor>& in) { return where(cond, in[0], in[1]); }, {a, b}, "where");
  expect_error([&] { where(cond, a, b.to(DType::F32)); }, {"where", "dtype"});
  expect_error([&] { where(Tensor::zeros({5}), a, b); }, {"where", "(5)"});
}

TEST_CASE("clamp: values, NaN, edges, gradient") {
  Tensor x = rand_t({3, 4, 5}, DType::F64, -2.0, 2.0);
  std::vector<double> v = x.to_vector();
  for (double& e : v)
    for (double edge : {-0.5, 1.0})
      if (std::fabs(e - edge) < 0.05) e = edge + 0.1;
  x = Tensor::from_vector(v, x.shape(), DType::F64);
  std::vector<double> r = v;
  for (double& e : r) e = std::min(std::max(e, -0.5), 1.0);
  expect_close(clamp(x, -0.5, 1.0), Tensor::from_vector(r, x.shape(), DType::F64), 0, 0, "clamp");
  expect_close(clamp(x.to(DType::F16), -0.5, 1.0), Tensor::from_vector(r, x.shape(), DType::F64), kTolF16,
               "clamp f16");
  check_grad([](const std::vector<Tensor>& in) { return clamp(in[0], -0.5, 1.0); }, {x}, "clamp");
  Tensor e = Tensor::from_vector({-0.5, 1.0, -0.6, 1.1, std::nan("")}, {5}, DType::F64);
  auto [y, dx] = fwd_bwd([](const Tensor& t) { return clamp(t, -0.5, 1.0); }, e, Tensor::ones({5}, DType::F64));
  std::vector<double> dv = dx.to_vector();
  CHECK(dv[0] == 1.0);  // edges are inside
  CHECK(dv[1] == 1.0);
  CHECK(dv[2] == 0.0);
  CHECK(dv[3] == 0.0);
  CHECK(std::isnan(y.to_vector()[4]));
  CHECK(clamp(Tensor::from_vector({0.0, 5.0}, {2}, DType::F64), 2.0, 1.0).to_vector() == std::vector<double>{1, 1});
  expect_error([&] { clamp(Tensor::zeros({2}, DType::I64), 0, 1); }, {"clamp", "floating"});
}

TEST_CASE("masked_mean: values, broadcast mask, empty mask, gradient") {
  Tensor x = rand_t({2, 3, 5});
  Tensor m = Tensor::from_vector({1, 0, 1, 1, 0}, {5}, DType::Bool);
  std::vector<double> xv = x.to_vector();
  double s = 0;
  int cnt = 0;
  for (size_t i = 0; i < xv.size(); ++i)
    if (i % 5 != 1 && i % 5 != 4) {
      s += xv[i];
      ++cnt;
    }
  CHECK(masked_mean(x, m).item() == doctest::Approx(s / cnt).epsilon(1e-14));
  CHECK(masked_mean(x, m).dim() == 0);
  check_grad([m](const std::vector<Tensor>& in) { return masked_mean(in[0], m); }, {x}, "masked_mean");
  Tensor none = Tensor::zeros({2, 3, 5}, DType::U8);
  auto [y, dx] = fwd_bwd([none](const Tensor& t) { return masked_mean(t, none); }, x, Tensor::scalar(1.0, DType::F64));
  CHECK(y.item() == 0.0);
  for (double g : dx.to_vector()) CHECK(g == 0.0);
  expect_error([&] { masked_mean(x, Tensor::ones({4})); }, {"masked_mean", "(4)", "(2,3,5)"});
}

TEST_CASE("shape ops: GPU forward and backward vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  auto both = [](const std::string& name, const std::function<Tensor(const Tensor&)>& f, const Tensor& x, Tol tol) {
    Tensor y0 = f(x);
    Tensor g = rand_t(y0.shape(), x.dtype());
    auto [y, dx] = fwd_bwd(f, x, g);
    auto [yg, dxg] = fwd_bwd(f, x.cuda(), g.cuda());
    CHECK(yg.is_cuda());
    expect_close(yg.cpu().to(DType::F64), y.to(DType::F64), tol, name + " GPU fwd");
    expect_close(dxg.cpu().to(DType::F64), dx.to(DType::F64), tol, name + " GPU bwd");
  };
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
    Tensor x = rand_t({2, 5, 33, 47}, dt);
    Tensor ix = Tensor::from_vector({4, 0, 2, 2, 1, 4, 3}, {7}, DType::I64);
    // Data movement is exact; backward sums of repeated indices / replicated edges round (16-bit: one rounding of an
    // fp32 sum).
    Tol exact{0, 0}, sums = dt == DType::F32 ? kTolF32 : (dt == DType::F16 ? kTolF16 : kTolBF16);
    both("cat", [](const Tensor& t) { return cat({t, mul(t.slice(1, 1, 3), 2.0), t}, 1); }, x, sums);
    both("pad zero", [](const Tensor& t) { return pad(t, {3, 1, -2, 4}, PadMode::Zero, 0.25); }, x, exact);
    both("pad replicate", [](const Tensor& t) { return pad(t, {3, 1, 2, 4}, PadMode::Replicate); }, x, sums);
    both("pad replicate crop", [](const Tensor& t) { return pad(t, {-3, 5, 0, -1}, PadMode::Replicate); }, x, sums);
    both("flip", [](const Tensor& t) { return flip(t, {1, 3}); }, x, exact);
    both("index_select", [ix](const Tensor& t) { return index_select(t, 1, ix.to(t.device())); }, x, sums);
    both("gather", [](const Tensor& t) {
      Tensor gi = rand_t({2, 5, 20, 47}, DType::F64, 0.0, 33.0, 77).to(DType::I64);
      return gather(t, 2, gi.to(t.device()));
    }, x, sums);
    both("where", [](const Tensor& t) {
      Tensor c = rand_t({33, 1}, DType::F64, -1.0, 1.0, 78).to(DType::F32);
      return where(c.to(t.device()), t, mul(t, 3.0));
    }, x, sums);
    both("clamp", [](const Tensor& t) { return clamp(t, -0.3, 0.6); }, x, exact);
    both("masked_mean", [](const Tensor& t) {
      Tensor m = rand_t({5, 1, 47}, DType::F64, -1.0, 1.0, 79).to(DType::F32);
      return masked_mean(t, clamp(m, 0.0, 1.0).to(t.device()));
    }, x, sums);
  }
  // Out-of-range gather on the GPU: NaN without a sync; the same error as the CPU with STEREORT_SYNC_CHECK.
  Tensor xg = rand_t({3, 4}, DType::F32).cuda();
  Tensor bad = Tensor::from_vector({1, 7}, {2}, DType::I64).cuda();
  std::vector<double> got = index_select(xg, 1, bad).cpu().to_vector();  // (3,2): column 1 is out of range
  CHECK(std::isnan(got[1]));
  CHECK(std::isnan(got[5]));
  CHECK(got[0] == xg.cpu().to_vector()[1]);
  set_sync_check(true);
  expect_error([&] { index_select(xg, 1, bad); }, {"index_select", "out of range", "(3,4)"});
  set_sync_check(false);
}

TEST_CASE("shape ops: CUDA launchers write every output element (poisoned outputs) [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  Tensor x = rand_t({2, 3, 17, 23}, DType::F32);
  Tensor xg = x.cuda();
  for (PadMode mode : {PadMode::Zero, PadMode::Replicate}) {
    std::vector<int64_t> left = {0, 0, 2, -1}, pads = {-1, 3, 2, 1};
    Tensor ref = pad(x, pads, mode, 0.75);
    Tensor out = Tensor::empty(ref.shape(), DType::F32, gpu());
    poison(out);
    STEREORT_CUDA_PATH(cuda::pad_forward(out, xg, left, mode == PadMode::Zero ? 0 : 1, 0.75, ctx));
    expect_close(out.cpu(), ref, 0, 0, "pad_forward launcher");
    if (mode == PadMode::Replicate) {
      Tensor g = rand_t(ref.shape(), DType::F32);
      Tensor xi = x.clone();
      xi.set_requires_grad(true);
      pad(xi, pads, mode).backward(g);
      Tensor dx = Tensor::empty(x.shape(), DType::F32, gpu());
      poison(dx);
      STEREORT_CUDA_PATH(cuda::pad_replicate_backward(dx, g.cuda(), left, ctx));
      expect_close(dx.cpu(), xi.grad(), kTolF32, "pad_replicate_backward launcher");
    }
  }
  // index_gather through index_select's layout: index (5,) viewed at (2,5,17,23) along dim 1.
  Tensor index = Tensor::from_vector({2, 0, 1, 1, 2}, {5}, DType::I64);
  Tensor ref = index_select(x, 1, index);
  Shape s = ref.shape();
  Tensor ig = index.cuda();
  Tensor x_s = make_view(xg, s, {xg.stride(0), 0, xg.stride(2), xg.stride(3)}, 0);
  Tensor i_s = make_view(ig, s, {0, 1, 0, 0}, 0);
  Tensor out = Tensor::empty(s, DType::F32, gpu());
  poison(out);
  STEREORT_CUDA_PATH(cuda::index_gather(out, x_s, i_s, xg.stride(1), 3, nullptr, ctx));
  expect_close(out.cpu(), ref, 0, 0, "index_gather launcher");
  // where with a broadcast Bool condition.
  Tensor cond = Tensor::from_vector({1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0}, {17, 1}, DType::Bool);
  Tensor b = rand_t(x.shape(), DType::F32);
  Tensor wref = where(cond, x, b);
  Tensor wout = Tensor::empty(x.shape(), DType::F32, gpu());
  poison(wout);
  Tensor cg = cond.cuda();
  STEREORT_CUDA_PATH(cuda::where(wout, make_view(cg, x.shape(), {0, 0, 1, 0}, 0), xg, b.cuda(), ctx));
  expect_close(wout.cpu(), wref, 0, 0, "where launcher");
  // clamp forward and backward.
  Tensor cout = Tensor::empty(x.shape(), DType::F32, gpu()), cdx = Tensor::empty(x.shape(), DType::F32, gpu());
  poison(cout);
  poison(cdx);
  STEREORT_CUDA_PATH(cuda::clamp_forward(cout, xg, -0.25, 0.5, ctx));
  STEREORT_CUDA_PATH(cuda::clamp_backward(cdx, b.cuda(), xg, -0.25, 0.5, ctx));
  expect_close(cout.cpu(), clamp(x, -0.25, 0.5), 0, 0, "clamp_forward launcher");
  Tensor xi = x.clone();
  xi.set_requires_grad(true);
  clamp(xi, -0.25, 0.5).backward(b);
  expect_close(cdx.cpu(), xi.grad(), 0, 0, "clamp_backward launcher");
}
