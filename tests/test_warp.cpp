// tests/test_warp.cpp — horizontal warp: hand-computed values, a tent-function (grid_sample style) float64
// reference, finite-difference gradients in img and disp, errors, and GPU vs CPU forward and backward.
#include <cmath>

#include "core/check.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/warp.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// out[b,c,y,x] = sum_k max(0, 1 - |x + d - k|) img[b,c,y,k] over k in [0, W): bilinear with zero padding.
Tensor warp_tent(const Tensor& img, const Tensor& disp) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  std::vector<double> I = img.to_vector(), Dv = disp.contiguous().to_vector(), o(I.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          double p = double(x) + Dv[size_t((b * H + y) * W + x)], v = 0;
          for (int64_t k = 0; k < W; ++k) v += std::max(0.0, 1.0 - std::fabs(p - double(k))) * I[size_t(((b * C + c) * H + y) * W + k)];
          o[size_t(((b * C + c) * H + y) * W + x)] = v;
        }
  return Tensor::from_vector(o, img.shape(), DType::F64);
}

}  // namespace

TEST_CASE("warp_horizontal: hand-computed values, zeros outside") {
  Tensor img = Tensor::from_vector({1, 2, 3, 4}, {1, 1, 1, 4}, DType::F64);
  // x=0: p=0.5 -> 1.5;  x=1: p=2 -> 3;  x=2: p=1.75 -> 2.75;  x=3: p=4 -> right of the image -> 0
  expect_close(warp_horizontal(img, Tensor::from_vector({0.5, 1, -0.25, 1}, {1, 1, 4}, DType::F64)),
               Tensor::from_vector({1.5, 3, 2.75, 0}, {1, 1, 1, 4}, DType::F64), kTolF64, "hand values");
  // x=0: p=-0.5 -> half of img[0];  x=3: p=3.5 -> half of img[3];  NaN -> 0;  far left -> 0
  expect_close(warp_horizontal(img, Tensor::from_vector({-0.5, NAN, -9, 0.5}, {1, 1, 1, 4}, DType::F64)),
               Tensor::from_vector({0.5, 0, 0, 2}, {1, 1, 1, 4}, DType::F64), kTolF64, "borders");
}

TEST_CASE("warp_horizontal matches the tent-function reference (float64, f32, bf16)") {
  Tensor img = randn_t({2, 3, 4, 9}), disp = rand_t({2, 4, 9}, DType::F64, -11, 11);
  Tensor ref = warp_tent(img, disp);
  expect_close(warp_horizontal(img, disp), ref, kTolF64, "f64");
  expect_close(warp_horizontal(img, disp.unsqueeze(1)), ref, kTolF64, "(B,1,H,W) disparity");
  Tensor raw = Tensor::empty(img.shape(), DType::F64);
  poison(raw);
  ref::warp_horizontal_forward(raw, img, disp);
  expect_close(raw, ref, kTolF64, "ref::warp_horizontal_forward");
  expect_close(warp_horizontal(img.to(DType::F32), disp.to(DType::F32)),
               warp_tent(img.to(DType::F32).to(DType::F64), disp.to(DType::F32).to(DType::F64)).to(DType::F32),
               kTolF32, "f32");
  expect_close(warp_horizontal(img.to(DType::BF16), disp.to(DType::BF16)).to(DType::F64),
               warp_tent(img.to(DType::BF16).to(DType::F64), disp.to(DType::BF16).to(DType::F64)), kTolBF16, "bf16");
}

TEST_CASE("warp_horizontal backward matches finite differences in img and disp") {
  // disparities up to +-6 on W = 7 push samples off both sides; random values never hit a kink (integer p)
  Tensor img = randn_t({2, 3, 2, 7}), disp = rand_t({2, 2, 7}, DType::F64, -6, 6);
  check_grad([](const std::vector<Tensor>& in) { return warp_horizontal(in[0], in[1]); }, {img, disp},
             "warp_horizontal");
  check_grad([](const std::vector<Tensor>& in) { return warp_horizontal(in[0], in[1]); },
             {randn_t({1, 2, 3, 5}), rand_t({1, 1, 3, 5}, DType::F64, -2, 2)}, "warp_horizontal (B,1,H,W)");
}

TEST_CASE("warp_horizontal errors name the op and the shapes") {
  expect_error([] { warp_horizontal(Tensor::zeros({1, 3, 4, 5}), Tensor::zeros({1, 4, 6})); },
               {"warp_horizontal", "(1,4,6)", "(1,3,4,5)"});
  expect_error([] { warp_horizontal(Tensor::zeros({1, 3, 4, 5}), Tensor::zeros({1, 4, 5}, DType::F64)); },
               {"warp_horizontal", "f32", "f64", ".to()"});
  expect_error([] { warp_horizontal(Tensor::zeros({3, 4, 5}), Tensor::zeros({1, 4, 5})); },
               {"warp_horizontal", "(B,C,H,W)", "(3,4,5)"});
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("warp_horizontal: GPU vs CPU, forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  Tensor img = rand_t({2, 3, 37, 301}, DType::F32, 0, 1), disp = rand_t({2, 37, 301}, DType::F32, -40, 120);
  Tensor ref = Tensor::empty(img.shape(), DType::F64);
  ref::warp_horizontal_forward(ref, img.to(DType::F64), disp.to(DType::F64));
  Tensor out = Tensor::empty(img.shape(), DType::F32, gpu());
  poison(out);
  STEREORT_CUDA_PATH(cuda::warp_horizontal_forward(out, img.cuda(), disp.cuda(), ctx));
  expect_close(out.cpu(), ref.to(DType::F32), kTolF32, "forward f32");
  Tensor g = randn_t(img.shape(), DType::F32);
  Tensor di = Tensor::empty(img.shape(), DType::F64), dd = Tensor::empty(disp.shape(), DType::F64);
  ref::warp_horizontal_backward(di, dd, g.to(DType::F64), img.to(DType::F64), disp.to(DType::F64));
  Tensor dig = Tensor::empty(img.shape(), DType::F32, gpu()), ddg = Tensor::empty(disp.shape(), DType::F32, gpu());
  poison(dig);
  poison(ddg);
  STEREORT_CUDA_PATH(cuda::warp_horizontal_backward(dig, ddg, g.cuda(), img.cuda(), disp.cuda(), ctx));
  // dimg sums a few atomically added fp32 terms; ddisp sums 3 channels: 1e-5 relative + 1e-6 absolute
  expect_close(dig.cpu(), di.to(DType::F32), 1e-5, 1e-6, "dimg f32");
  expect_close(ddg.cpu(), dd.to(DType::F32), 1e-5, 1e-6, "ddisp f32");
  // through autograd, and bf16
  Tensor ig = img.cuda().set_requires_grad(), dgd = disp.cuda().set_requires_grad();
  warp_horizontal(ig, dgd).backward(g.cuda());
  expect_close(ig.grad().cpu(), di.to(DType::F32), 1e-5, 1e-6, "dimg (autograd)");
  expect_close(dgd.grad().cpu(), dd.to(DType::F32), 1e-5, 1e-6, "ddisp (autograd)");
  Tensor ib = img.to(DType::BF16), db = disp.to(DType::BF16);
  Tensor refb = Tensor::empty(img.shape(), DType::F64);
  ref::warp_horizontal_forward(refb, ib.to(DType::F64), db.to(DType::F64));
  expect_close(warp_horizontal(ib.cuda(), db.cuda()).cpu().to(DType::F64), refb, kTolBF16, "forward bf16");
  Tensor ibg = ib.cuda().set_requires_grad();
  warp_horizontal(ibg, db.cuda()).backward(g.to(DType::BF16).cuda());
  Tensor dib = Tensor::empty(img.shape(), DType::F64), ddb = Tensor::empty(disp.shape(), DType::F64);
  ref::warp_horizontal_backward(dib, ddb, g.to(DType::BF16).to(DType::F64), ib.to(DType::F64), db.to(DType::F64));
  expect_close(ibg.grad().cpu().to(DType::F64), dib, kTolBF16, "dimg bf16");
}
