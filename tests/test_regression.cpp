// tests/test_regression.cpp — soft-argmin regression: the fused path against a float64 reference that materialises
// the trilinear volume with explicit 8-corner weights, then softmax and the weighted sum; both against the official
// StereoMamba tensors (regression: 12 -> 48 bins; gwc_head: 48 -> 192 bins at 32x80); the unfused autograd path
// against the fused one and against finite differences; GPU vs CPU.
#include <cstdlib>
#include <cmath>

#include "core/check.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/regression.h"
#include "golden_util.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

struct Axis {
  std::vector<int64_t> i0, i1;
  std::vector<double> w1;
};
// PyTorch align_corners=False: src = (dst + 0.5) * in / out - 0.5, clamped below at 0; upper neighbour clamped.
Axis axis_weights(int64_t in, int64_t out) {
  Axis a;
  for (int64_t o = 0; o < out; ++o) {
    double src = std::max(0.0, (o + 0.5) * double(in) / double(out) - 0.5);
    int64_t lo = int64_t(std::floor(src));
    a.i0.push_back(lo);
    a.i1.push_back(std::min(lo + 1, in - 1));
    a.w1.push_back(src - double(lo));
  }
  return a;
}

// cost (B,D,h,w) float64 -> upsampled (B,OD,H,W) by explicit trilinear weights.
Tensor ref_upsample(const Tensor& cost, int64_t OD, int64_t H, int64_t W) {
  const int64_t B = cost.size(0), D = cost.size(1), h = cost.size(2), w = cost.size(3);
  Axis ad = axis_weights(D, OD), ay = axis_weights(h, H), ax = axis_weights(w, W);
  std::vector<double> c = cost.contiguous().to_vector(), up(size_t(B * OD * H * W));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t d = 0; d < OD; ++d)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x) {
          double v = 0;
          for (int cd = 0; cd < 2; ++cd)
            for (int cy = 0; cy < 2; ++cy)
              for (int cx = 0; cx < 2; ++cx) {
                int64_t id = cd ? ad.i1[size_t(d)] : ad.i0[size_t(d)];
                int64_t iy = cy ? ay.i1[size_t(y)] : ay.i0[size_t(y)];
                int64_t ix = cx ? ax.i1[size_t(x)] : ax.i0[size_t(x)];
                double wt = (cd ? ad.w1[size_t(d)] : 1 - ad.w1[size_t(d)]) *
                            (cy ? ay.w1[size_t(y)] : 1 - ay.w1[size_t(y)]) *
                            (cx ? ax.w1[size_t(x)] : 1 - ax.w1[size_t(x)]);
                v += wt * c[size_t(((b * D + id) * h + iy) * w + ix)];
              }
          up[size_t(((b * OD + d) * H + y) * W + x)] = v;
        }
  return Tensor::from_vector(up, {B, OD, H, W}, DType::F64);
}

// softmax over dim 1 of (B,OD,H,W) with max subtraction, and sum_d d * p_d.
void ref_softargmin(const Tensor& up, Tensor* prob, Tensor* disp) {
  const int64_t B = up.size(0), OD = up.size(1), H = up.size(2), W = up.size(3);
  std::vector<double> u = up.to_vector(), p(u.size()), o(size_t(B * H * W));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t px = 0; px < H * W; ++px) {
      double m = -INFINITY, s = 0, sd = 0;
      for (int64_t d = 0; d < OD; ++d) m = std::max(m, u[size_t((b * OD + d) * H * W + px)]);
      for (int64_t d = 0; d < OD; ++d) s += std::exp(u[size_t((b * OD + d) * H * W + px)] - m);
      for (int64_t d = 0; d < OD; ++d) {
        size_t i = size_t((b * OD + d) * H * W + px);
        p[i] = std::exp(u[i] - m) / s;
        sd += double(d) * p[i];
      }
      o[size_t(b * H * W + px)] = sd;
    }
  *prob = Tensor::from_vector(p, up.shape(), DType::F64);
  *disp = Tensor::from_vector(o, {B, H, W}, DType::F64);
}

Tensor ref_regression(const Tensor& cost4, int64_t OD, int64_t H, int64_t W) {
  Tensor p, d;
  ref_softargmin(ref_upsample(cost4.to(DType::F64), OD, H, W), &p, &d);
  return d;
}

}  // namespace

TEST_CASE("disparity_regression_fused matches the materialised float64 reference") {
  struct Case { int64_t B, D, h, w, OD, H, W; };
  for (Case c : {Case{2, 12, 5, 7, 48, 20, 28} /* exact x4 */, Case{1, 6, 3, 4, 13, 7, 9} /* odd scales */,
                 Case{2, 5, 4, 3, 5, 4, 3} /* identity */, Case{1, 8, 6, 5, 3, 2, 11} /* downsampling in d, h */}) {
    Tensor cost = randn_t({c.B, 1, c.D, c.h, c.w});
    cost = mul(cost, 3.0);  // peaky distributions exercise the running-max rescaling
    Tensor ref = ref_regression(cost.squeeze(1), c.OD, c.H, c.W);
    std::string sh = shape_str(cost.shape()) + " -> " + std::to_string(c.OD);
    expect_close(disparity_regression_fused(cost, c.OD, c.H, c.W), ref, kTolF64, "fused f64 " + sh);
    Tensor raw = Tensor::empty({c.B, c.H, c.W}, DType::F64);
    poison(raw);
    ref::disparity_regression_fused_forward(raw, cost.squeeze(1).contiguous(), c.OD);
    expect_close(raw, ref, kTolF64, "ref::disparity_regression_fused_forward " + sh);
    // 4-D input and f32 (computed in double, rounded once)
    expect_close(disparity_regression_fused(cost.squeeze(1).to(DType::F32), c.OD, c.H, c.W), ref.to(DType::F32),
                 kTolF32, "fused f32 " + sh);
  }
  // large costs: the online softmax must not overflow (exp of 1e3 would)
  Tensor big = mul(randn_t({1, 1, 6, 3, 4}), 1000.0);
  expect_close(disparity_regression_fused(big, 24, 12, 16), ref_regression(big.squeeze(1), 24, 12, 16), 1e-9, 1e-9,
               "fused, costs ~1e3");
}

TEST_CASE("disparity_regression reproduces the official StereoMamba regression (golden)") {
  std::string path = golden_file("regression");
  if (path.empty()) return;
  Tensor cost = stereo_golden_tensor(path, "in.cost");  // (1,1,12,5,7)
  // the test's own reference is checked against PyTorch's intermediates first
  Tensor up = ref_upsample(cost.squeeze(1).to(DType::F64), 48, 20, 28), prob, disp;
  ref_softargmin(up, &prob, &disp);
  CHECK(golden_err(up, stereo_golden_tensor(path, "mid.up")) <= 1e-6);
  CHECK(golden_err(prob, stereo_golden_tensor(path, "mid.prob")) <= 1e-5);
  Tensor disp_g = stereo_golden_tensor(path, "out.disp");
  CHECK(golden_err(disp, disp_g) <= 1e-5);
  double e = golden_err(disparity_regression_fused(cost, 48, 20, 28), disp_g);
  INFO("golden out.disp err (fused) " << e);
  CHECK(e <= 1e-4);
}

TEST_CASE("disparity_regression at StereoMamba's scale: 48 -> 192 bins, 8x20 -> 32x80 (golden gwc_head)") {
  std::string path = golden_file("gwc_head");
  if (path.empty()) return;
  Tensor cost = stereo_golden_tensor(path, "mid.eval_cost3");  // (1,1,48,8,20) classif3 output
  Tensor disp_g = stereo_golden_tensor(path, "out.eval_disp3");  // (1,32,80)
  double e = golden_err(disparity_regression_fused(cost, 192, 32, 80), disp_g);
  INFO("golden eval_disp3 err (fused) " << e);
  CHECK(e <= 1e-4);
}

TEST_CASE("disparity_regression errors name the op and the shapes") {
  expect_error([] { disparity_regression_fused(Tensor::zeros({1, 2, 4, 5, 6}), 8, 4, 4); },
               {"disparity_regression_fused", "(B,1,D,h,w)", "(1,2,4,5,6)"});
  expect_error([] { disparity_regression_fused(Tensor::zeros({1, 4, 5, 6}), 0, 4, 4); },
               {"disparity_regression_fused", "out_d 0", "(1,4,5,6)"});
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("disparity_regression_fused: GPU vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  struct Case { int64_t B, D, h, w, OD, H, W; double scale; };
  // exact x4 (the fast kernel: one exp per level), x4 in d and x with a non-x4 height, D = 1 and w = 1, peaked costs
  // (scale 40: many new maxima and rescales), odd scales and a non-x4 width (the general kernel)
  for (Case c : {Case{2, 48, 9, 13, 192, 36, 52, 4.0}, Case{1, 12, 5, 7, 48, 20, 28, 4.0},
                 Case{2, 9, 6, 10, 36, 23, 40, 4.0}, Case{1, 1, 2, 1, 4, 5, 4, 4.0}, Case{2, 17, 5, 9, 68, 20, 36, 40.0},
                 Case{2, 7, 5, 6, 23, 17, 19, 4.0}, Case{1, 48, 33, 41, 192, 130, 161, 4.0}}) {
    Tensor cost = mul(randn_t({c.B, c.D, c.h, c.w}, DType::F32), c.scale);
    Tensor ref = Tensor::empty({c.B, c.H, c.W}, DType::F64);
    ref::disparity_regression_fused_forward(ref, cost.to(DType::F64), c.OD);
    std::string sh = shape_str(cost.shape()) + " -> " + std::to_string(c.OD);
    Tensor disp = Tensor::empty({c.B, c.H, c.W}, DType::F32, gpu());
    poison(disp);
    STEREORT_CUDA_PATH(cuda::disparity_regression_fused_forward(disp, cost.cuda(), c.OD, Context::get(gpu())));
    // fp32 exp and sums over <= 192 terms vs float64: normwise 1e-5 (the worst pixels differ by ~1e-5 relative)
    expect_rel(disp.cpu(), ref.to(DType::F32), 1e-5, "fused GPU f32 " + sh);
    expect_rel(disparity_regression_fused(cost.cuda().unsqueeze(1), c.OD, c.H, c.W).cpu(), ref.to(DType::F32), 1e-5,
               "fused GPU via the op " + sh);
    if (c.OD == 4 * c.D && c.W == 4 * c.w) {  // the x4 fast kernel ran: the general kernel agrees
      Tensor gen = Tensor::empty({c.B, c.H, c.W}, DType::F32, gpu());
      poison(gen);
      setenv("STEREORT_REGRESSION_GENERIC", "1", 1);
      STEREORT_CUDA_PATH(cuda::disparity_regression_fused_forward(gen, cost.cuda(), c.OD, Context::get(gpu())));
      unsetenv("STEREORT_REGRESSION_GENERIC");
      expect_rel(disp.cpu(), gen.cpu(), 1e-5, "x4 fast kernel vs the general kernel " + sh);
    }
    // fused == unfused on the GPU (fp32, <= 1e-5 relative), and the autograd path's gradient vs the CPU's
    Tensor cg = cost.cuda().set_requires_grad();
    Tensor unf = disparity_regression(cg, c.OD, c.H, c.W);
    CHECK(rel_error(unf.cpu(), disp.cpu()) <= 1e-5);
    Tensor gd = randn_t(unf.shape(), DType::F32);
    unf.backward(gd.cuda());
    Tensor cc = cost.to(DType::F64).set_requires_grad();
    disparity_regression(cc, c.OD, c.H, c.W).backward(gd.to(DType::F64));
    // fp32 softmax Jacobian p (d - disp) g (a difference of ~100 px values) summed by the trilinear adjoint over
    // up to 8x8x8 bins: 1e-4 relative
    if (c.D == 1) {  // one level: every bin is equal, the disparity is constant and the gradient is 0 (up to rounding)
      CHECK(compare(cg.grad().cpu(), Tensor::zeros(cg.grad().shape()), 0, INFINITY).max_abs <= 1e-5);
    } else {
      expect_rel(cg.grad().cpu(), cc.grad().to(DType::F32), 1e-5, "unfused GPU gradient " + sh);
    }
    for (DType dt : {DType::F16, DType::BF16}) {
      Tensor ch = cost.to(dt);
      Tensor refh = Tensor::empty({c.B, c.H, c.W}, DType::F64);
      ref::disparity_regression_fused_forward(refh, ch.to(DType::F64), c.OD);
      Tensor dh = disparity_regression_fused(ch.cuda(), c.OD, c.H, c.W);
      CHECK(dh.dtype() == DType::F32);
      expect_rel(dh.cpu(), refh.to(DType::F32), 1e-5, std::string("fused GPU from ") + dtype_name(dt));
    }
  }
}

TEST_CASE("disparity_regression_unfused: forward == fused, backward == finite differences and the golden gradient") {
  Tensor cost = mul(randn_t({2, 1, 5, 3, 4}), 2.0);
  Tensor fused = disparity_regression_fused(cost, 11, 7, 9);
  Tensor unf = disparity_regression_unfused(cost, 11, 7, 9);
  expect_close(unf, fused, kTolF64, "unfused == fused (f64)");
  Tensor c32 = cost.to(DType::F32);
  CHECK(rel_error(disparity_regression_unfused(c32, 11, 7, 9), disparity_regression_fused(c32, 11, 7, 9)) <= 1e-5);
  // gradient: small odd shapes, batch 2, up- and down-sampling, 4-D and 5-D inputs
  check_grad([](const std::vector<Tensor>& in) { return disparity_regression_unfused(in[0], 11, 7, 9); }, {cost},
             "disparity_regression_unfused (B,1,D,h,w)");
  check_grad([](const std::vector<Tensor>& in) { return disparity_regression(in[0], 3, 5, 2); },
             {randn_t({2, 6, 4, 3})}, "disparity_regression (B,D,h,w), downsampling");
  std::string path = golden_file("regression");
  if (path.empty()) return;
  Tensor c = stereo_golden_tensor(path, "in.cost").set_requires_grad();
  Tensor d = disparity_regression(c, 48, 20, 28);
  CHECK(golden_err(d, stereo_golden_tensor(path, "out.disp")) <= 1e-4);
  d.backward(stereo_golden_tensor(path, "gout.disp"));
  double e = golden_err(c.grad(), stereo_golden_tensor(path, "grad.in.cost"));
  INFO("golden grad.in.cost err " << e);
  CHECK(e <= 1e-3);
}
