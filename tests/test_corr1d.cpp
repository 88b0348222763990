// tests/test_corr1d.cpp — RAFT-Stereo correlation: the pyramid against a float64 triple loop with explicit pooling
// and against the "pool f2 first" identity; the lookup against a tent-function (grid_sample align_corners=True,
// zero padding) reference; gradients by finite differences through pyramid + lookup; errors; GPU vs CPU.
#include <cmath>

#include "core/check.h"
#include "core/context.h"
#include "ops/corr1d.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// level-0 volume, then repeated pair averages over x2 (floor of odd widths), all in double
std::vector<Tensor> ref_pyramid(const Tensor& f1, const Tensor& f2, int64_t levels) {
  const int64_t B = f1.size(0), C = f1.size(1), H = f1.size(2), W1 = f1.size(3), W2 = f2.size(3);
  std::vector<double> a = f1.to_vector(), b = f2.to_vector(), c(size_t(B * H * W1 * W2));
  for (int64_t n = 0; n < B; ++n)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t i = 0; i < W1; ++i)
        for (int64_t j = 0; j < W2; ++j) {
          double s = 0;
          for (int64_t k = 0; k < C; ++k) s += a[size_t(((n * C + k) * H + y) * W1 + i)] * b[size_t(((n * C + k) * H + y) * W2 + j)];
          c[size_t(((n * H + y) * W1 + i) * W2 + j)] = s / std::sqrt(double(C));
        }
  std::vector<Tensor> out{Tensor::from_vector(c, {B, H, W1, W2}, DType::F64)};
  int64_t w = W2;
  for (int64_t l = 1; l < levels; ++l) {
    int64_t wo = w / 2;
    std::vector<double> p(size_t(B * H * W1 * wo));
    for (int64_t r = 0; r < B * H * W1; ++r)
      for (int64_t j = 0; j < wo; ++j) p[size_t(r * wo + j)] = 0.5 * (c[size_t(r * w + 2 * j)] + c[size_t(r * w + 2 * j + 1)]);
    out.push_back(Tensor::from_vector(p, {B, H, W1, wo}, DType::F64));
    c = p;
    w = wo;
  }
  return out;
}

// out[b, l*K + k, y, x] = sum_j max(0, 1 - |X/2^l + k - r - j|) C_l[b,y,x,j]
Tensor ref_lookup(const std::vector<Tensor>& pyr, const Tensor& coords, int64_t r) {
  const int64_t B = coords.size(0), H = coords.size(1), W1 = coords.size(2), K = 2 * r + 1, L = int64_t(pyr.size());
  std::vector<double> X = coords.to_vector(), o(size_t(B * L * K * H * W1));
  for (int64_t l = 0; l < L; ++l) {
    std::vector<double> c = pyr[size_t(l)].to_vector();
    const int64_t Wl = pyr[size_t(l)].size(3);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W1; ++x)
          for (int64_t k = 0; k < K; ++k) {
            double p = X[size_t((b * H + y) * W1 + x)] / std::pow(2.0, double(l)) + double(k - r), v = 0;
            for (int64_t j = 0; j < Wl; ++j)
              v += std::max(0.0, 1 - std::fabs(p - double(j))) * c[size_t(((b * H + y) * W1 + x) * Wl + j)];
            o[size_t(((b * L * K + l * K + k) * H + y) * W1 + x)] = v;
          }
  }
  return Tensor::from_vector(o, {B, L * K, H, W1}, DType::F64);
}

}  // namespace

TEST_CASE("corr1d_pyramid matches a float64 triple loop with explicit pooling (odd widths floor)") {
  Tensor f1 = randn_t({2, 5, 3, 7}), f2 = randn_t({2, 5, 3, 13});  // W2 13 -> 6 -> 3 -> 1
  std::vector<Tensor> pyr = corr1d_pyramid(f1, f2, 4), ref = ref_pyramid(f1, f2, 4);
  REQUIRE(pyr.size() == 4);
  for (size_t i = 0; i < 4; ++i) expect_close(pyr[i], ref[i], kTolF64, "level " + std::to_string(i));
  CHECK(pyr[3].shape() == Shape{2, 3, 7, 1});
  // linearity in f2: level i equals the level-0 correlation with f2 averaged over aligned blocks of 2^i columns
  Tensor f2p = mul(add(f2.slice(3, 0, 12, 2), f2.slice(3, 1, 13, 2)), 0.5).contiguous();  // (2,5,3,6)
  expect_close(pyr[1], corr1d_pyramid(f1, f2p, 1)[0], kTolF64, "pool(C) == corr(f1, pool(f2))");
  // f32 and bf16 features: fp32 volume
  std::vector<Tensor> p32 = corr1d_pyramid(f1.to(DType::F32), f2.to(DType::BF16).to(DType::F32), 2);
  std::vector<Tensor> pbf = corr1d_pyramid(f1.to(DType::BF16), f2.to(DType::BF16), 2);
  CHECK(pbf[0].dtype() == DType::F32);
  CHECK(p32[0].dtype() == DType::F32);
  expect_close(p32[0], ref_pyramid(f1.to(DType::F32).to(DType::F64), f2.to(DType::BF16).to(DType::F64), 1)[0]
                           .to(DType::F32), 1e-5, 1e-6, "f32 level 0");
}

TEST_CASE("corr1d_lookup matches the tent-function reference, zero outside, at every level") {
  Tensor f1 = randn_t({2, 4, 3, 6}), f2 = randn_t({2, 4, 3, 17});
  std::vector<Tensor> pyr = corr1d_pyramid(f1, f2, 4);
  // coordinates beyond both borders, fractional, and one exact integer
  Tensor coords = rand_t({2, 3, 6}, DType::F64, -6, 24);
  std::vector<double> cv = coords.to_vector();
  cv[0] = 5.0;
  coords = Tensor::from_vector(cv, coords.shape(), DType::F64);
  for (int64_t r : {0, 1, 4}) {
    Tensor out = corr1d_lookup(pyr, coords, r);
    CHECK(out.shape() == Shape{2, 4 * (2 * r + 1), 3, 6});
    expect_close(out, ref_lookup(pyr, coords, r), kTolF64, "lookup r=" + std::to_string(r));
    Tensor raw = Tensor::empty(out.shape(), DType::F64);
    poison(raw);
    ref::corr1d_lookup_forward(raw, pyr, coords, r);
    expect_close(raw, out, kTolF64, "ref::corr1d_lookup_forward");
  }
  // hand value: one row [1, 2, 4], X = 0.25, r = 1 -> taps at -0.75, 0.25, 1.25 -> 0.25*1, 1.25, 2.5
  Tensor c = Tensor::from_vector({1, 2, 4}, {1, 1, 1, 3}, DType::F64);
  expect_close(corr1d_lookup({c}, Tensor::from_vector({0.25}, {1, 1, 1}, DType::F64), 1),
               Tensor::from_vector({0.25, 1.25, 2.5}, {1, 3, 1, 1}, DType::F64), kTolF64, "hand lookup");
}

TEST_CASE("corr1d pyramid + lookup: gradients match finite differences (coords detached)") {
  Tensor f1 = randn_t({2, 3, 2, 5}), f2 = randn_t({2, 3, 2, 9});
  Tensor coords = rand_t({2, 2, 5}, DType::F64, -3, 12);
  check_grad([coords](const std::vector<Tensor>& in) { return corr1d_lookup(corr1d_pyramid(in[0], in[1], 3), coords, 2); },
             {f1, f2}, "corr1d_pyramid + corr1d_lookup");
  // the lookup alone, into two given levels
  Tensor c0 = randn_t({1, 2, 3, 8}), c1 = randn_t({1, 2, 3, 4});
  Tensor x = rand_t({1, 2, 3}, DType::F64, -2, 9);
  check_grad([x](const std::vector<Tensor>& in) { return corr1d_lookup({in[0], in[1]}, x, 3); }, {c0, c1},
             "corr1d_lookup into the levels");
  // coordinates get no gradient
  Tensor xg = x.clone().set_requires_grad(), cg = c0.clone().set_requires_grad();
  sum(corr1d_lookup({cg}, xg, 1)).backward();
  CHECK(cg.grad().defined());
  CHECK(!xg.grad().defined());
}

TEST_CASE("corr1d errors name the op and the shapes") {
  expect_error([] { corr1d_pyramid(Tensor::zeros({1, 4, 3, 8}), Tensor::zeros({1, 5, 3, 8})); },
               {"corr1d_pyramid", "(1,4,3,8)", "(1,5,3,8)"});
  expect_error([] { corr1d_pyramid(Tensor::zeros({1, 4, 3, 8}), Tensor::zeros({1, 4, 3, 4}), 4); },
               {"corr1d_pyramid", "4 levels", "W2 = 4", "(1,4,3,4)"});
  expect_error([] { corr1d_lookup({Tensor::zeros({1, 3, 8, 8})}, Tensor::zeros({1, 3, 7})); },
               {"corr1d_lookup", "(1,3,8,8)", "(1,3,7)"});
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("corr1d: GPU vs CPU, forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  Tensor f1 = randn_t({2, 64, 5, 45}, DType::F32), f2 = randn_t({2, 64, 5, 51}, DType::F32);
  Tensor coords = rand_t({2, 5, 45}, DType::F32, -8, 60);
  std::vector<Tensor> ref = ref_pyramid(f1.to(DType::F64), f2.to(DType::F64), 4);
  Tensor f1g = f1.cuda().set_requires_grad(), f2g = f2.cuda().set_requires_grad();
  std::vector<Tensor> pyr = corr1d_pyramid(f1g, f2g, 4);
  // strict-fp32 cuBLAS sums of 64 products: 1e-5 relative plus 1e-5 absolute for cancellation
  for (size_t i = 0; i < 4; ++i)
    expect_close(pyr[i].cpu(), ref[i].to(DType::F32), 1e-5, 1e-5, "GPU level " + std::to_string(i));
  Tensor out = corr1d_lookup(pyr, coords.cuda(), 4);
  expect_close(out.cpu(), ref_lookup(ref, coords.to(DType::F64), 4).to(DType::F32), 1e-5, 1e-5, "GPU lookup");
  // raw lookup launcher on a poisoned output, from the same (GPU-made) pyramid
  std::vector<Tensor> lv;
  for (const Tensor& p : pyr) lv.push_back(p.detach());
  Tensor raw = Tensor::empty(out.shape(), DType::F32, gpu());
  poison(raw);
  STEREORT_CUDA_PATH(cuda::corr1d_lookup_forward(raw, lv, coords.cuda(), 4, Context::get(gpu())));
  std::vector<Tensor> lvc;
  for (const Tensor& p : lv) lvc.push_back(p.cpu());
  Tensor cpu_out = Tensor::empty(out.shape(), DType::F32);
  ref::corr1d_lookup_forward(cpu_out, lvc, coords, 4);
  expect_close(raw.cpu(), cpu_out, kTolF32, "raw lookup launcher");
  // backward through everything vs the CPU graph in float64
  Tensor g = randn_t(out.shape(), DType::F32);
  out.backward(g.cuda());
  Tensor f1c = f1.to(DType::F64).set_requires_grad(), f2c = f2.to(DType::F64).set_requires_grad();
  corr1d_lookup(corr1d_pyramid(f1c, f2c, 4), coords.to(DType::F64), 4).backward(g.to(DType::F64));
  expect_close(f1g.grad().cpu(), f1c.grad().to(DType::F32), 1e-5, 1e-5, "GPU df1");
  expect_close(f2g.grad().cpu(), f2c.grad().to(DType::F32), 1e-5, 1e-5, "GPU df2");
  // bf16 features: the volume is still fp32
  std::vector<Tensor> pb = corr1d_pyramid(f1.to(DType::BF16).cuda(), f2.to(DType::BF16).cuda(), 2);
  CHECK(pb[0].dtype() == DType::F32);
  expect_close(pb[0].cpu(), ref_pyramid(f1.to(DType::BF16).to(DType::F64), f2.to(DType::BF16).to(DType::F64), 1)[0]
                                .to(DType::F32), 1e-5, 1e-5, "GPU level 0 from bf16 features");
}
