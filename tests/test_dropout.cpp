// tests/test_dropout.cpp — dropout and drop_path: masks against philox::uniform computed here, scaling, identity
// cases, the kept fraction, gradients (finite differences with a fixed seed), errors, and CPU == GPU bit for bit.
#include <cmath>

#include "core/context.h"
#include "core/error.h"
#include "core/rng.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// Reference: element i kept when u_i < 1 - p, value x * (1/(1-p)) rounded like the op (float for f32/16-bit).
Tensor ref_dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset) {
  std::vector<double> v = x.to_vector();
  double scale = 1.0 / (1.0 - p);
  for (size_t i = 0; i < v.size(); ++i) {
    bool keep = philox::uniform(seed, offset, i) < float(1.0 - p);
    double kept = x.dtype() == DType::F64 ? v[i] * scale : double(float(v[i]) * float(scale));
    v[i] = keep ? kept : 0.0;
  }
  return Tensor::from_vector(v, x.shape(), x.dtype());
}

std::pair<Tensor, Tensor> fwd_bwd(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& gout) {
  Tensor xi = x.detach().clone();
  xi.set_requires_grad(true);
  Tensor y = f(xi);
  y.backward(gout);
  return {y.detach(), xi.grad()};
}

}  // namespace

TEST_CASE("dropout: Philox mask, inverted scaling, identity cases") {
  for (DType dt : {DType::F64, DType::F32, DType::F16, DType::BF16}) {
    Tensor x = rand_t({3, 5, 7}, dt, 0.5, 2.0);  // non-zero inputs: a dropped element is visible
    for (double p : {0.1, 0.5, 0.9}) {
      Tensor y = dropout(x, p, true, 1234, 17);
      expect_close(y, ref_dropout(x, p, 1234, 17), 0, 0, std::string("dropout ") + dtype_name(dt));
    }
  }
  Tensor x = rand_t({4, 9});
  CHECK(dropout(x, 0.5, false, 1).same(x));
  CHECK(dropout(x, 0.0, true, 1).same(x));
  for (double v : dropout(x, 1.0, true, 1).to_vector()) CHECK(v == 0.0);
  // Same (seed, offset) -> same mask; another offset or seed -> another mask.
  Tensor ones = Tensor::ones({1000}, DType::F32);
  CHECK(dropout(ones, 0.5, true, 9, 3).to_vector() == dropout(ones, 0.5, true, 9, 3).to_vector());
  CHECK(dropout(ones, 0.5, true, 9, 4).to_vector() != dropout(ones, 0.5, true, 9, 3).to_vector());
  CHECK(dropout(ones, 0.5, true, 10, 3).to_vector() != dropout(ones, 0.5, true, 9, 3).to_vector());
}

TEST_CASE("dropout: kept fraction is 1 - p") {
  const int64_t n = 200000;
  for (double p : {0.1, 0.3, 0.75}) {
    std::vector<double> v = dropout(Tensor::ones({n}, DType::F32), p, true, 42).to_vector();
    double kept = 0;
    for (double e : v) kept += e != 0.0;
    double sigma = std::sqrt(n * p * (1 - p));
    CHECK(std::fabs(kept - n * (1 - p)) < 5 * sigma);
  }
}

TEST_CASE("dropout / drop_path: gradients") {
  Tensor x = rand_t({2, 3, 5});
  check_grad([](const std::vector<Tensor>& in) { return dropout(in[0], 0.4, true, 5, 2); }, {x}, "dropout");
  check_grad([](const std::vector<Tensor>& in) { return drop_path(in[0], 0.5, true, 6, 1); }, {x}, "drop_path");
  // The backward reuses the mask: dx = g * mask * scale.
  Tensor g = rand_t({2, 3, 5});
  auto [y, dx] = fwd_bwd([](const Tensor& t) { return dropout(t, 0.4, true, 5, 2); }, x, g);
  expect_close(dx, ref_dropout(g, 0.4, 5, 2), 0, 0, "dropout backward mask");
}

TEST_CASE("drop_path: whole samples kept or dropped, timm scaling") {
  Tensor x = rand_t({16, 3, 4, 5}, DType::F32, 0.5, 1.5);
  double p = 0.3;
  Tensor y = drop_path(x, p, true, 77, 5);
  std::vector<double> xv = x.to_vector(), yv = y.to_vector();
  int kept = 0;
  for (int64_t b = 0; b < 16; ++b) {
    bool keep = philox::uniform(77, 5, uint64_t(b)) < float(1.0 - p);
    kept += keep;
    float scale = float(1.0 / (1.0 - p));
    for (int64_t j = 0; j < 60; ++j) {
      size_t i = size_t(b * 60 + j);
      CHECK(yv[i] == (keep ? double(float(xv[i]) * scale) : 0.0));
    }
  }
  CHECK(kept > 0);
  CHECK(kept < 16);
  CHECK(drop_path(x, p, false, 77).same(x));
  CHECK(drop_path(x, 0.0, true, 77).same(x));
}

TEST_CASE("dropout / drop_path: errors") {
  expect_error([&] { dropout(Tensor::zeros({2, 3}), 1.5, true, 1); }, {"dropout", "[0, 1]", "1.5", "(2,3)"});
  expect_error([&] { dropout(Tensor::zeros({2}, DType::I64), 0.5, true, 1); }, {"dropout", "floating"});
  expect_error([&] { drop_path(Tensor::scalar(1.0), 0.5, true, 1); }, {"drop_path", "batch"});
  expect_error([&] { drop_path(Tensor::zeros({2}), -0.1, true, 1); }, {"drop_path", "[0, 1]"});
}

TEST_CASE("dropout / drop_path: CPU and GPU masks are bit-identical [gpu]") {
  STEREORT_REQUIRE_GPU();
  for (DType dt : {DType::F64, DType::F32, DType::F16, DType::BF16}) {
    // 3*37*129 = 14319 elements: not a multiple of 4, so the last Philox group is partial.
    Tensor x = rand_t({3, 37, 129}, dt, -2.0, 2.0), g = rand_t({3, 37, 129}, dt);
    for (double p : {0.1, 0.5}) {
      auto f = [p](const Tensor& t) { return dropout(t, p, true, 0x1234567890abcdefULL, 99); };
      auto [y, dx] = fwd_bwd(f, x, g);
      auto [yg, dxg] = fwd_bwd(f, x.cuda(), g.cuda());
      expect_close(yg.cpu(), y, 0, 0, std::string("dropout GPU == CPU ") + dtype_name(dt));
      expect_close(dxg.cpu(), dx, 0, 0, std::string("dropout backward GPU == CPU ") + dtype_name(dt));
      auto fp = [p](const Tensor& t) { return drop_path(t, p, true, 31337, 7); };
      auto [yp, dxp] = fwd_bwd(fp, x, g);
      auto [ypg, dxpg] = fwd_bwd(fp, x.cuda(), g.cuda());
      expect_close(ypg.cpu(), yp, 0, 0, std::string("drop_path GPU == CPU ") + dtype_name(dt));
      expect_close(dxpg.cpu(), dxp, 0, 0, std::string("drop_path backward GPU == CPU ") + dtype_name(dt));
    }
  }
  Tensor big = Tensor::ones({1 << 20}, DType::F32);
  expect_close(dropout(big.cuda(), 0.25, true, 5, 1ULL << 40).cpu(), dropout(big, 0.25, true, 5, 1ULL << 40), 0, 0,
               "dropout mask, 1M elements, large offset");
}

TEST_CASE("dropout: CUDA launchers write every output element (poisoned outputs) [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  Tensor x = rand_t({7, 131}, DType::F32, 0.5, 1.5);  // 917 elements: a partial last Philox group
  Tensor out = Tensor::empty(x.shape(), DType::F32, gpu());
  poison(out);
  STEREORT_CUDA_PATH(cuda::dropout_apply(out, x.cuda(), 11, 3, float(1.0 - 0.3), 1.0 / 0.7, ctx));
  expect_close(out.cpu(), dropout(x, 0.3, true, 11, 3), 0, 0, "dropout_apply launcher");
  Tensor scale = Tensor::empty({37}, DType::F32, gpu());
  poison(scale);
  STEREORT_CUDA_PATH(cuda::drop_path_scale(scale, 11, 3, float(1.0 - 0.3), double(float(1.0 / 0.7)), ctx));
  std::vector<double> sv = scale.cpu().to_vector();
  for (size_t b = 0; b < sv.size(); ++b)
    CHECK(sv[b] == (philox::uniform(11, 3, b) < float(0.7) ? double(float(1.0 / 0.7)) : 0.0));
}
