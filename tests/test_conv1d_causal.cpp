// tests/test_conv1d_causal.cpp — causal depthwise conv1d (channel-last): CPU against PyTorch's padded-conv
// formulation, gradients against central differences, errors; CUDA forward/backward against the CPU in f64 on odd
// shapes (C not a multiple of 32, L not a multiple of the 256-step block, L < K), strided x, f16/bf16.
#include <cmath>

#include "core/context.h"
#include "ops/conv1d_causal.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {
// F.conv1d(x^T, w, b, padding=K-1, groups=C)[..., :L] written out: left-pad K-1 zeros, correlate, keep the first L.
Tensor conv_padded(const Tensor& x, const Tensor& w, const Tensor& bias, bool silu) {
  int64_t B = x.size(0), L = x.size(1), C = x.size(2), K = w.size(-1);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), out(size_t(B * L * C));
  std::vector<double> bv = bias.defined() ? bias.to_vector() : std::vector<double>(size_t(C), 0.0);
  std::vector<double> xpad(size_t(B * (L + K - 1) * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < C; ++c) xpad[size_t((b * (L + K - 1) + t + K - 1) * C + c)] = xv[size_t((b * L + t) * C + c)];
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < L; ++t)
      for (int64_t c = 0; c < C; ++c) {
        double s = bv[size_t(c)];
        for (int64_t k = 0; k < K; ++k) s += wv[size_t(c * K + k)] * xpad[size_t((b * (L + K - 1) + t + k) * C + c)];
        out[size_t((b * L + t) * C + c)] = silu ? s / (1.0 + std::exp(-s)) : s;
      }
  return Tensor::from_vector(out, x.shape(), DType::F64);
}
}  // namespace

TEST_CASE("causal_conv1d: CPU matches the padded-convolution formulation") {
  for (auto [L, C, K, silu, bias] : {std::tuple{9, 5, 4, true, true}, std::tuple{2, 3, 4, false, true},
                                     std::tuple{13, 7, 3, true, false}, std::tuple{6, 4, 1, false, true}}) {
    Tensor x = randn_t({2, L, C}), w = randn_t({C, 1, K}), b = bias ? randn_t({C}) : Tensor();
    CAPTURE(L);
    CAPTURE(K);
    expect_close(causal_conv1d(x, w, b, silu), conv_padded(x, w, b, silu), kTolF64, "conv (C,1,K) weight");
    expect_close(causal_conv1d(x, w.reshape({C, K}), b, silu), conv_padded(x, w, b, silu), kTolF64, "(C,K) weight");
  }
  // bf16 x with f32 weights: double math, one rounding.
  Tensor x = randn_t({1, 20, 6}), w = randn_t({6, 1, 4}), b = randn_t({6});
  Tensor got = causal_conv1d(x.to(DType::BF16), w.to(DType::F32), b.to(DType::F32), true);
  CHECK(got.dtype() == DType::BF16);
  expect_close(got, conv_padded(x.to(DType::BF16), w.to(DType::F32), b.to(DType::F32), true), 8e-3, 8e-3, "bf16");
}

TEST_CASE("causal_conv1d: gradients match central differences") {
  for (auto [L, K, silu, bias] : {std::tuple{7, 4, true, true}, std::tuple{3, 4, false, true},
                                  std::tuple{8, 2, true, false}}) {
    Tensor x = randn_t({2, L, 5}), w = randn_t({5, 1, K}), b = randn_t({5});
    CAPTURE(L);
    CAPTURE(K);
    if (bias)
      check_grad([&](const std::vector<Tensor>& v) { return causal_conv1d(v[0], v[1], v[2], silu); }, {x, w, b},
                 "causal_conv1d");
    else
      check_grad([&](const std::vector<Tensor>& v) { return causal_conv1d(v[0], v[1], Tensor(), silu); }, {x, w},
                 "causal_conv1d (no bias)");
  }
}

TEST_CASE("causal_conv1d: errors name the op, the shapes and the fix") {
  Tensor x = randn_t({2, 9, 5});
  expect_error([&] { causal_conv1d(x, randn_t({4, 1, 4}), Tensor(), false); }, {"causal_conv1d", "(4,1,4)", "C = 5"});
  expect_error([&] { causal_conv1d(x, randn_t({5, 2, 4}), Tensor(), false); }, {"causal_conv1d", "(C,1,K)"});
  expect_error([&] { causal_conv1d(randn_t({9, 5}), randn_t({5, 4}), Tensor(), false); }, {"causal_conv1d", "(B,L,C)"});
  expect_error([&] { causal_conv1d(x, randn_t({5, 4}), randn_t({4}), false); }, {"causal_conv1d", "bias", "(4)"});
  expect_error([&] { causal_conv1d(x.to(DType::F32), randn_t({5, 4}), Tensor(), false); },
               {"causal_conv1d", "weight", "f32"});
}

TEST_CASE("causal_conv1d: CUDA forward and backward match the CPU (odd shapes, every K, f32/f16/bf16)") {
  STEREORT_REQUIRE_GPU();
  struct C_ {
    int64_t B, L, C, K;
    bool silu, bias;
    DType dt;
  };
  for (C_ c : {C_{2, 1000, 389, 4, true, true, DType::F32}, C_{1, 3, 70, 4, false, true, DType::F32},
               C_{3, 257, 33, 3, true, false, DType::F32}, C_{1, 511, 64, 2, false, true, DType::F32},
               C_{2, 300, 31, 1, true, true, DType::F32}, C_{1, 2000, 384, 4, true, true, DType::BF16},
               C_{1, 777, 96, 4, false, true, DType::F16}}) {
    CAPTURE(c.L);
    CAPTURE(c.C);
    CAPTURE(c.K);
    const double tol = c.dt == DType::F32 ? 1e-5 : 1e-2;
    Tensor x64 = randn_t({c.B, c.L, c.C}), w64 = randn_t({c.C, 1, c.K}) * 0.5, b64 = randn_t({c.C});
    Tensor xg = x64.to(c.dt).to(gpu()), wg = w64.to(DType::F32).to(gpu()), bg = b64.to(DType::F32).to(gpu());
    xg.set_requires_grad(true), wg.set_requires_grad(true), bg.set_requires_grad(true);
    Tensor xr = xg.detach().cpu().to(DType::F64), wr = wg.detach().cpu().to(DType::F64),
           br = bg.detach().cpu().to(DType::F64);
    xr.set_requires_grad(true), wr.set_requires_grad(true), br.set_requires_grad(true);
    Tensor bias_g = c.bias ? bg : Tensor(), bias_r = c.bias ? br : Tensor();
    {  // poisoned blocks of the output's size for the op to pick up
      Tensor p = Tensor::empty({int64_t(xg.nbytes())}, DType::U8, gpu());
      p.fill_(255.0);
    }
    Tensor yg = causal_conv1d(xg, wg, bias_g, c.silu);
    Tensor yr = causal_conv1d(xr, wr, bias_r, c.silu);
    expect_close(yg.cpu().to(DType::F64), yr.detach(), tol, tol * 0.1, "cuda forward");
    Tensor dy = randn_t({c.B, c.L, c.C});
    {
      Tensor p = Tensor::empty({int64_t(xg.nbytes())}, DType::U8, gpu());
      p.fill_(255.0);
    }
    yg.backward(dy.to(c.dt).to(gpu()));
    yr.backward(dy.to(c.dt).to(DType::F64));
    // dx sums K products of O(1) values through silu': elements that cancel to ~1e-2 keep the O(1) terms' fp32
    // rounding (an H100 run saw 1.2e-6 absolute at |dx| = 0.011), so the absolute part is tol / 2 (5e-6 for f32).
    expect_close(xg.grad().cpu().to(DType::F64), xr.grad(), tol, tol * 0.5, "cuda dx");
    // dw, dbias sum over B*L steps in another order than the CPU: normwise bound.
    expect_rel(wg.grad().cpu().to(DType::F64), wr.grad(), tol, "cuda dw");
    if (c.bias) expect_rel(bg.grad().cpu().to(DType::F64), br.grad(), tol, "cuda dbias");
  }
}

TEST_CASE("causal_conv1d: CUDA on x sliced from a wider projection (strided along L)") {
  STEREORT_REQUIRE_GPU();
  Tensor proj = randn_t({2, 300, 656}, DType::F32).to(gpu());
  Tensor x = proj.slice(2, 256, 640);  // (2,300,384), row stride 656
  Tensor w = randn_t({384, 1, 4}, DType::F32).to(gpu()), b = randn_t({384}, DType::F32).to(gpu());
  CHECK(!x.is_contiguous());
  expect_close(causal_conv1d(x, w, b, true).cpu(), causal_conv1d(x.contiguous(), w, b, true).cpu(), 0.0, 0.0,
               "strided == contiguous (bitwise)");
}
