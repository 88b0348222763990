// tests/test_ops_basic.cpp — the first ops (element-wise, reductions, matmul, fills) against float64 references,
// and GPU vs CPU for each, forward and backward.
#include <cmath>

#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/matmul.h"
#include "ops/reduce.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

static Tensor ref_binary(const Tensor& a, const Tensor& b, double (*f)(double, double)) {
  Shape s = broadcast_shapes(a.shape(), b.shape(), "ref");
  Tensor ae = a.expand(s).contiguous(), be = b.expand(s).contiguous();
  std::vector<double> av = ae.to_vector(), bv = be.to_vector(), o(av.size());
  for (size_t i = 0; i < o.size(); ++i) o[i] = f(av[i], bv[i]);
  return Tensor::from_vector(o, s, DType::F64);
}

TEST_CASE("binary ops broadcast like NumPy and match float64 references") {
  Tensor a = rand_t({3, 1, 5}), b = rand_t({4, 1}, DType::F64, 0.5, 1.5);
  expect_close(add(a, b), ref_binary(a, b, [](double x, double y) { return x + y; }), kTolF64, "add");
  expect_close(sub(a, b), ref_binary(a, b, [](double x, double y) { return x - y; }), kTolF64, "sub");
  expect_close(mul(a, b), ref_binary(a, b, [](double x, double y) { return x * y; }), kTolF64, "mul");
  expect_close(div(a, b), ref_binary(a, b, [](double x, double y) { return x / y; }), kTolF64, "div");
  CHECK(add(a, b).shape() == Shape{3, 4, 5});
  // strided operands
  Tensor at = rand_t({5, 4}).transpose(0, 1);
  expect_close(mul(at, b), ref_binary(at, b, [](double x, double y) { return x * y; }), kTolF64, "strided mul");
  // f32 path agrees with f64 to f32 rounding
  expect_close(exp(a.to(DType::F32)), exp(a), 1e-6, 1e-7, "exp f32");
}

TEST_CASE("broadcasting and dtype errors name the op and the shapes") {
  expect_error([] { add(Tensor::zeros({2, 3}), Tensor::zeros({4, 3})); }, {"add", "(2,3)", "(4,3)", "broadcast"});
  expect_error([] { mul(Tensor::zeros({2}), Tensor::zeros({2}, DType::F64)); }, {"mul", "f32", "f64", ".to()"});
  expect_error([] { matmul(Tensor::zeros({2, 3}), Tensor::zeros({4, 5})); }, {"matmul", "(2,3)", "(4,5)"});
  expect_error([] { sum(Tensor::zeros({2, 3}), {2}); }, {"sum", "out of range"});
  expect_error([] { broadcast_shapes({2, 3}, {3, 2}, "myop"); }, {"myop", "(2,3)", "(3,2)"});
}

TEST_CASE("reductions use double accumulation and handle any dims") {
  Tensor x = rand_t({3, 4, 5, 2});
  std::vector<double> v = x.to_vector();
  double total = 0;
  for (double e : v) total += e;
  CHECK(sum(x).item() == doctest::Approx(total).epsilon(1e-14));
  CHECK(sum(x).dim() == 0);
  Tensor s = sum(x, {1, 3});
  CHECK(s.shape() == Shape{3, 5});
  double s00 = 0;
  for (int j = 0; j < 4; ++j)
    for (int l = 0; l < 2; ++l) s00 += v[size_t(((0 * 4 + j) * 5 + 0) * 2 + l)];
  CHECK(s.to_vector()[0] == doctest::Approx(s00).epsilon(1e-14));
  CHECK(mean(x, {0}, true).shape() == Shape{1, 4, 5, 2});
  CHECK(sum_to_shape(x, {4, 1, 2}).shape() == Shape{4, 1, 2});
  // a long f32 sum stays accurate (double accumulation on the CPU)
  Tensor ones = Tensor::ones({1 << 22}, DType::F32);
  CHECK(sum(ones).item() == double(1 << 22));
}

TEST_CASE("matmul against a float64 triple loop") {
  Tensor a = rand_t({2, 3, 7}), b = rand_t({7, 5});
  Tensor c = matmul(a, b);
  std::vector<double> av = a.to_vector(), bv = b.to_vector(), cv = c.to_vector();
  for (int z = 0; z < 2; ++z)
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 5; ++j) {
        double r = 0;
        for (int k = 0; k < 7; ++k) r += av[size_t((z * 3 + i) * 7 + k)] * bv[size_t(k * 5 + j)];
        CHECK(cv[size_t((z * 3 + i) * 5 + j)] == doctest::Approx(r).epsilon(1e-14));
      }
  Tensor bt = rand_t({4, 7, 5}).transpose(1, 2);  // (4,5,7) column-major view
  expect_close(matmul(rand_t({1, 3, 5}, DType::F64, -1, 1, 99), bt),
               matmul(rand_t({1, 3, 5}, DType::F64, -1, 1, 99), bt.contiguous()), kTolF64, "transposed view");
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("element-wise, reductions and matmul: GPU vs CPU, forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  Tensor a = rand_t({5, 1, 33, 7}, DType::F32), b = rand_t({6, 1, 7}, DType::F32, 0.5, 1.5);
  Tensor ag = a.cuda().set_requires_grad(), bg = b.cuda().set_requires_grad();
  Tensor ac = a.clone().set_requires_grad(), bc = b.clone().set_requires_grad();
  auto f = [](const Tensor& x, const Tensor& y) {
    return add(mul(exp(x), y), div(sqrt(add(square(x), 1.0)), y));
  };
  Tensor yg = f(ag, bg), yc = f(ac, bc);
  expect_close(yg.cpu(), yc, kTolF32, "forward f32");
  Tensor g = rand_t(yc.shape(), DType::F32);
  yg.backward(g.cuda());
  yc.backward(g);
  expect_close(ag.grad().cpu(), ac.grad(), kTolF32, "grad a");
  expect_close(bg.grad().cpu(), bc.grad(), 1e-5, 1e-4, "grad b (a sum over 5*33 terms)");
  // half types
  for (DType dt : {DType::F16, DType::BF16}) {
    Tensor ah = a.to(dt), bh = b.to(dt);
    expect_close(mul(ah.cuda(), bh.cuda()).cpu().to(DType::F32), mul(ah.to(DType::F32), bh.to(DType::F32)),
                 dt == DType::F16 ? kTolF16 : kTolBF16, "mul half");
  }
  // reductions of every shape regime: short rows, warp rows, block rows, split rows
  for (Shape s : {Shape{1000, 3}, Shape{300, 1000}, Shape{3, 100000}, Shape{2, 3000000}}) {
    Tensor x = rand_t(s, DType::F32);
    Tensor r = sum(x.cuda(), {1});
    expect_close(r.cpu(), sum(x.to(DType::F64), {1}).to(DType::F32), 1e-5, 1e-3, "sum rows " + shape_str(s));
  }
  Tensor x = rand_t({7, 9, 11}, DType::F32);
  expect_close(mean(x.cuda(), {0, 2}).cpu(), mean(x, {0, 2}), kTolF32, "mean over leading dims");
  // matmul: plain, transposed views, batch broadcast, f32/tf32/bf16
  Tensor m1 = rand_t({3, 65, 129}, DType::F32), m2 = rand_t({129, 33}, DType::F32), m3 = rand_t({3, 33, 129}, DType::F32);
  Tensor ref1 = matmul(m1.to(DType::F64), m2.to(DType::F64));
  expect_close(matmul(m1.cuda(), m2.cuda()).cpu(), ref1.to(DType::F32), 1e-5, 1e-5, "matmul f32");
  expect_close(matmul(m1.cuda(), m3.cuda().transpose(1, 2)).cpu(),
               matmul(m1.to(DType::F64), m3.to(DType::F64).transpose(1, 2)).to(DType::F32), 1e-5, 1e-5,
               "matmul transposed view");
  set_allow_tf32(true);
  CHECK(rel_error(matmul(m1.cuda(), m2.cuda()).cpu().to(DType::F64), ref1) < 2e-3);
  set_allow_tf32(false);
  CHECK(rel_error(matmul(m1.cuda().to(DType::BF16), m2.cuda().to(DType::BF16)).cpu().to(DType::F64), ref1) < 1e-2);
  // matmul backward on the GPU
  Tensor p = m1.cuda().set_requires_grad(), q = m2.cuda().set_requires_grad();
  Tensor pc = m1.clone().set_requires_grad(), qc = m2.clone().set_requires_grad();
  Tensor go = rand_t({3, 65, 33}, DType::F32);
  matmul(p, q).backward(go.cuda());
  matmul(pc, qc).backward(go);
  expect_close(p.grad().cpu(), pc.grad(), 1e-5, 1e-5, "matmul grad a");
  expect_close(q.grad().cpu(), qc.grad(), 1e-5, 1e-4, "matmul grad b");
}

TEST_CASE("outputs are fully written: poisoned buffers never leak NaN [gpu]") {
  STEREORT_REQUIRE_GPU();
  // Fill the allocator's free list with NaN blocks of the sizes the next ops will get.
  for (int64_t n : {1001, 4096, 12345}) {
    { Tensor p = Tensor::empty({n}, DType::F32, gpu()); poison(p); }
    Tensor a = rand_t({n}, DType::F32).cuda(), b = rand_t({n}, DType::F32).cuda();
    { Tensor p = Tensor::empty({n}, DType::F32, gpu()); poison(p); }
    Tensor c = add(a, b).cpu();
    for (double v : c.to_vector()) REQUIRE(std::isfinite(v));
  }
}
