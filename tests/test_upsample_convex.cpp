// tests/test_upsample_convex.cpp — RAFT convex upsampling: a float64 reference that follows RAFT-Stereo's
// upsample_flow step by step (view -> softmax(dim 2) -> unfold(f*flow, 3x3, pad 1) -> sum -> permute), hand cases
// (uniform weights, a one-hot mask), finite-difference gradients in flow and mask, errors, and GPU vs CPU.
#include <cmath>

#include "core/check.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/upsample_convex.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

Tensor ref_convex(const Tensor& flow, const Tensor& mask, int64_t f) {
  const int64_t N = flow.size(0), D = flow.size(1), H = flow.size(2), W = flow.size(3);
  std::vector<double> fl = flow.to_vector(), mk = mask.to(DType::F64).to_vector();
  // mask.view(N,1,9,f,f,H,W).softmax(dim=2)
  auto midx = [&](int64_t n, int64_t k, int64_t i, int64_t j, int64_t y, int64_t x) {
    return size_t(((((n * 9 + k) * f + i) * f + j) * H + y) * W + x);
  };
  std::vector<double> p(mk.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < f; ++i)
      for (int64_t j = 0; j < f; ++j)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            double m = -INFINITY, z = 0;
            for (int64_t k = 0; k < 9; ++k) m = std::max(m, mk[midx(n, k, i, j, y, x)]);
            for (int64_t k = 0; k < 9; ++k) z += std::exp(mk[midx(n, k, i, j, y, x)] - m);
            for (int64_t k = 0; k < 9; ++k) p[midx(n, k, i, j, y, x)] = std::exp(mk[midx(n, k, i, j, y, x)] - m) / z;
          }
  // F.unfold(f * flow, [3,3], padding=1).view(N, D, 9, H, W): channel d*9 + 3*ky + kx
  std::vector<double> u(size_t(N * D * 9 * H * W));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t k = 0; k < 9; ++k)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            int64_t yy = y + k / 3 - 1, xx = x + k % 3 - 1;
            double v = (yy >= 0 && yy < H && xx >= 0 && xx < W) ? double(f) * fl[size_t(((n * D + d) * H + yy) * W + xx)] : 0;
            u[size_t((((n * D + d) * 9 + k) * H + y) * W + x)] = v;
          }
  // sum over k, then permute (N,D,f,f,H,W) -> (N,D,H,f,W,f) and reshape
  std::vector<double> o(size_t(N * D * f * H * f * W));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t d = 0; d < D; ++d)
      for (int64_t i = 0; i < f; ++i)
        for (int64_t j = 0; j < f; ++j)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
              double s = 0;
              for (int64_t k = 0; k < 9; ++k)
                s += p[midx(n, k, i, j, y, x)] * u[size_t((((n * D + d) * 9 + k) * H + y) * W + x)];
              o[size_t((((n * D + d) * H + y) * f + i) * W * f + x * f + j)] = s;
            }
  return Tensor::from_vector(o, {N, D, f * H, f * W}, DType::F64);
}

}  // namespace

TEST_CASE("upsample_convex matches RAFT-Stereo's upsample_flow step by step (float64)") {
  for (int64_t f : {1, 2, 4, 3}) {
    Tensor flow = randn_t({2, 2, 3, 5}), mask = mul(randn_t({2, 9 * f * f, 3, 5}), 2.0);
    Tensor ref = ref_convex(flow, mask, f);
    expect_close(upsample_convex(flow, mask, f), ref, kTolF64, "f=" + std::to_string(f));
    Tensor raw = Tensor::empty(ref.shape(), DType::F64);
    poison(raw);
    ref::upsample_convex_forward(raw, flow, mask, f);
    expect_close(raw, ref, kTolF64, "ref::upsample_convex_forward f=" + std::to_string(f));
  }
  // f32 flow with a bf16 mask (AMP): the softmax runs in fp32 or better
  Tensor flow = randn_t({1, 1, 4, 6}, DType::F32), mask = randn_t({1, 144, 4, 6}, DType::F32).to(DType::BF16);
  expect_close(upsample_convex(flow, mask, 4), ref_convex(flow.to(DType::F64), mask, 4).to(DType::F32), kTolF32,
               "f32 flow, bf16 mask");
}

TEST_CASE("upsample_convex hand cases: uniform weights average the 3x3 neighbourhood, one-hot copies") {
  // all-zero logits: weights 1/9; flow 1 on a 3x3 map, f = 2: centre -> 2 * 9/9, corner -> 2 * 4/9, edge -> 2 * 6/9
  Tensor up = upsample_convex(Tensor::ones({1, 1, 3, 3}, DType::F64), Tensor::zeros({1, 36, 3, 3}, DType::F64), 2);
  std::vector<double> v = up.to_vector();
  CHECK(v[size_t(2 * 6 + 2)] == doctest::Approx(2.0));          // (Y=2, X=2) in low-res pixel (1,1)
  CHECK(v[0] == doctest::Approx(2.0 * 4 / 9));                   // corner
  CHECK(v[size_t(0 * 6 + 2)] == doctest::Approx(2.0 * 6 / 9));   // top edge
  // a large logit on the centre tap (k = 4) copies f * flow into each f x f block
  Tensor flow = randn_t({1, 2, 2, 3});
  std::vector<double> m(size_t(9 * 16 * 2 * 3), 0.0);
  for (size_t s = 0; s < 16; ++s)
    for (size_t px = 0; px < 6; ++px) m[(4 * 16 + s) * 6 + px] = 60.0;
  Tensor copy = upsample_convex(flow, Tensor::from_vector(m, {1, 144, 2, 3}, DType::F64), 4);
  std::vector<double> fv = flow.to_vector(), cv = copy.to_vector();
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t Y = 0; Y < 8; ++Y)
      for (int64_t X = 0; X < 12; ++X)
        CHECK(cv[size_t((c * 8 + Y) * 12 + X)] == doctest::Approx(4 * fv[size_t((c * 2 + Y / 4) * 3 + X / 4)]).epsilon(1e-9));
}

TEST_CASE("upsample_convex backward matches finite differences in flow and mask") {
  check_grad([](const std::vector<Tensor>& in) { return upsample_convex(in[0], in[1], 2); },
             {randn_t({2, 2, 3, 4}), randn_t({2, 36, 3, 4})}, "upsample_convex f=2");
  check_grad([](const std::vector<Tensor>& in) { return upsample_convex(in[0], in[1], 3); },
             {randn_t({1, 1, 2, 3}), randn_t({1, 81, 2, 3})}, "upsample_convex f=3");
}

TEST_CASE("upsample_convex errors name the op and the shapes") {
  expect_error([] { upsample_convex(Tensor::zeros({1, 1, 4, 5}), Tensor::zeros({1, 144, 4, 6}), 4); },
               {"upsample_convex", "(1,144,4,6)", "(1,144,4,5)", "(1,1,4,5)"});
  expect_error([] { upsample_convex(Tensor::zeros({1, 1, 4, 5}), Tensor::zeros({1, 36, 4, 5}), 4); },
               {"upsample_convex", "(1,36,4,5)", "factor 4"});
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("upsample_convex: GPU vs CPU, forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  for (int64_t C : {1, 2}) {
    Tensor flow = mul(randn_t({2, C, 13, 17}, DType::F32), 5.0), mask = mul(randn_t({2, 144, 13, 17}, DType::F32), 3.0);
    Tensor ref = Tensor::empty({2, C, 52, 68}, DType::F64);
    ref::upsample_convex_forward(ref, flow.to(DType::F64), mask.to(DType::F64), 4);
    Tensor up = Tensor::empty(ref.shape(), DType::F32, gpu());
    poison(up);
    STEREORT_CUDA_PATH(cuda::upsample_convex_forward(up, flow.cuda(), mask.cuda(), 4, ctx));
    expect_close(up.cpu(), ref.to(DType::F32), 1e-5, 1e-5, "forward f32 C=" + std::to_string(C));
    Tensor g = randn_t(ref.shape(), DType::F32);
    Tensor df = Tensor::empty(flow.shape(), DType::F64), dm = Tensor::empty(mask.shape(), DType::F64);
    ref::upsample_convex_backward(df, dm, g.to(DType::F64), flow.to(DType::F64), mask.to(DType::F64), 4);
    Tensor dfg = Tensor::empty(flow.shape(), DType::F32, gpu()), dmg = Tensor::empty(mask.shape(), DType::F32, gpu());
    poison(dfg);
    poison(dmg);
    STEREORT_CUDA_PATH(cuda::upsample_convex_backward(dfg, dmg, g.cuda(), flow.cuda(), mask.cuda(), 4, ctx));
    // dflow sums 9*16 terms, dmask a 9-term softmax Jacobian: 1e-5 relative + 1e-5 absolute for cancellation
    expect_close(dfg.cpu(), df.to(DType::F32), 1e-5, 1e-5, "dflow C=" + std::to_string(C));
    expect_close(dmg.cpu(), dm.to(DType::F32), 1e-5, 1e-5, "dmask C=" + std::to_string(C));
    // autograd with a bf16 mask
    Tensor fg = flow.cuda().set_requires_grad(), mg = mask.to(DType::BF16).cuda().set_requires_grad();
    Tensor upb = upsample_convex(fg, mg, 4);
    Tensor refb = Tensor::empty(ref.shape(), DType::F64);
    ref::upsample_convex_forward(refb, flow.to(DType::F64), mask.to(DType::BF16).to(DType::F64), 4);
    expect_close(upb.cpu(), refb.to(DType::F32), 1e-5, 1e-5, "forward, bf16 mask");
    upb.backward(g.cuda());
    CHECK(mg.grad().dtype() == DType::BF16);
    Tensor dfb = Tensor::empty(flow.shape(), DType::F64), dmb = Tensor::empty(mask.shape(), DType::F64);
    ref::upsample_convex_backward(dfb, dmb, g.to(DType::F64), flow.to(DType::F64), mask.to(DType::BF16).to(DType::F64), 4);
    expect_close(fg.grad().cpu(), dfb.to(DType::F32), 1e-5, 1e-5, "dflow, bf16 mask");
    expect_close(mg.grad().cpu().to(DType::F64), dmb, kTolBF16, "dmask bf16");
  }
}
