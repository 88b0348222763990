// tests/test_cost_volume.cpp — GwcNet group-wise and concatenation volumes: CPU vs a float64 reference written the
// way GwcNet's build_gwc_volume is (one slice per disparity), finite-difference gradients, the golden volume from
// the official code, error messages, and GPU vs CPU (forward, backward, f32/f16/bf16, f32 volumes from half features).
#include <cmath>

#include "core/check.h"
#include "core/context.h"
#include "io/safetensors.h"
#include "ops/cost_volume.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "golden_util.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;


namespace {

// GwcNet's formulation: for each d, volume[:, :, d, :, d:] = mean over groups of L[..., d:] * R[..., :W-d].
Tensor gwc_upstream(const Tensor& l, const Tensor& r, int64_t D, int64_t G) {
  const int64_t B = l.size(0), C = l.size(1), H = l.size(2), W = l.size(3);
  Tensor vol = Tensor::zeros({B, G, D, H, W}, DType::F64);
  for (int64_t d = 0; d < std::min(D, W); ++d) {
    Tensor prod = mul(l.slice(3, d, W), r.slice(3, 0, W - d)).reshape({B, G, C / G, H, W - d});
    vol.select(2, d).slice(3, d, W).copy_(mean(prod, {2}));
  }
  return vol;
}

Tensor concat_upstream(const Tensor& l, const Tensor& r, int64_t D) {
  const int64_t B = l.size(0), C = l.size(1), H = l.size(2), W = l.size(3);
  Tensor vol = Tensor::zeros({B, 2 * C, D, H, W}, DType::F64);
  for (int64_t d = 0; d < std::min(D, W); ++d) {
    vol.slice(1, 0, C).select(2, d).slice(3, d, W).copy_(l.slice(3, d, W));
    vol.slice(1, C, 2 * C).select(2, d).slice(3, d, W).copy_(r.slice(3, 0, W - d));
  }
  return vol;
}

}  // namespace

TEST_CASE("cost_volume_gwc matches GwcNet's per-disparity formulation (float64)") {
  struct Case { int64_t B, C, G, H, W, D; };
  for (Case c : {Case{2, 6, 3, 3, 5, 7} /* W < D: planes 5, 6 all zero */, Case{1, 8, 1, 4, 9, 4},
                 Case{2, 5, 5, 2, 11, 6}, Case{1, 12, 4, 3, 13, 13}}) {
    Tensor l = randn_t({c.B, c.C, c.H, c.W}), r = randn_t({c.B, c.C, c.H, c.W});
    Tensor vol = Tensor::empty({c.B, c.G, c.D, c.H, c.W}, DType::F64);
    poison(vol);
    ref::cost_volume_gwc_forward(vol, l, r, c.G);
    Tensor ref = gwc_upstream(l, r, c.D, c.G);
    expect_close(vol, ref, kTolF64, "ref::cost_volume_gwc_forward " + shape_str(vol.shape()));
    expect_close(cost_volume_gwc(l, r, c.D, c.G), ref, kTolF64, "cost_volume_gwc " + shape_str(vol.shape()));
    if (c.W < c.D)
      for (int64_t d = c.W; d < c.D; ++d) CHECK(sum(abs(vol.select(2, d))).item() == 0.0);
    // f32 inputs: double accumulation, rounded once
    expect_close(cost_volume_gwc(l.to(DType::F32), r.to(DType::F32), c.D, c.G), ref.to(DType::F32), kTolF32,
                 "cost_volume_gwc f32");
  }
}

TEST_CASE("cost_volume_gwc: half features on the CPU, and f32 volumes") {
  Tensor l = randn_t({1, 16, 3, 10}, DType::F32), r = randn_t({1, 16, 3, 10}, DType::F32);
  Tensor lb = l.to(DType::BF16), rb = r.to(DType::BF16);
  Tensor ref = gwc_upstream(lb.to(DType::F64), rb.to(DType::F64), 6, 2);
  Tensor vb = cost_volume_gwc(lb, rb, 6, 2);
  CHECK(vb.dtype() == DType::BF16);
  expect_close(vb.to(DType::F64), ref, kTolBF16, "bf16 volume");
  Tensor vf = cost_volume_gwc(lb, rb, 6, 2, DType::F32);
  CHECK(vf.dtype() == DType::F32);
  expect_close(vf, ref.to(DType::F32), kTolF32, "f32 volume from bf16 features");
}

TEST_CASE("cost_volume_gwc backward matches finite differences (float64)") {
  struct Case { int64_t B, C, G, H, W, D; };
  for (Case c : {Case{2, 4, 2, 2, 5, 3}, Case{2, 6, 3, 3, 4, 6} /* W < D */, Case{1, 3, 1, 2, 7, 5}}) {
    Tensor l = randn_t({c.B, c.C, c.H, c.W}), r = randn_t({c.B, c.C, c.H, c.W});
    check_grad([&](const std::vector<Tensor>& in) { return cost_volume_gwc(in[0], in[1], c.D, c.G); }, {l, r},
               "cost_volume_gwc " + shape_str(l.shape()));
  }
}

TEST_CASE("cost_volume_concat matches GwcNet's formulation and finite differences") {
  Tensor l = randn_t({2, 3, 4, 6}), r = randn_t({2, 3, 4, 6});
  for (int64_t D : {1, 4, 9}) {
    Tensor vol = Tensor::empty({2, 6, D, 4, 6}, DType::F64);
    poison(vol);
    ref::cost_volume_concat_forward(vol, l, r);
    expect_close(vol, concat_upstream(l, r, D), kTolF64, "ref::cost_volume_concat_forward");
    expect_close(cost_volume_concat(l, r, D), concat_upstream(l, r, D), kTolF64, "cost_volume_concat");
  }
  Tensor ls = randn_t({2, 3, 2, 5}), rs = randn_t({2, 3, 2, 5});
  check_grad([](const std::vector<Tensor>& in) { return cost_volume_concat(in[0], in[1], 7); }, {ls, rs},
             "cost_volume_concat");
  expect_close(cost_volume_concat(l.to(DType::BF16), r.to(DType::BF16), 4).to(DType::F64),
               concat_upstream(l.to(DType::BF16).to(DType::F64), r.to(DType::BF16).to(DType::F64), 4), kTolF64,
               "concat bf16 is a copy");
}

TEST_CASE("cost volume errors name the op, the shapes and the fix") {
  Tensor a = Tensor::zeros({1, 6, 4, 5}), b = Tensor::zeros({1, 6, 4, 7});
  expect_error([&] { cost_volume_gwc(a, b, 4, 2); }, {"cost_volume_gwc", "(1,6,4,5)", "(1,6,4,7)"});
  expect_error([&] { cost_volume_gwc(a, a, 4, 4); }, {"cost_volume_gwc", "6 channels", "(1,6,4,5)", "4 groups"});
  expect_error([&] { cost_volume_gwc(a, a, 0, 2); }, {"cost_volume_gwc", "max_disp", "(1,6,4,5)"});
  expect_error([&] { cost_volume_gwc(a, a.to(DType::F64), 4, 2); }, {"cost_volume_gwc", "f32", "f64", ".to()"});
  expect_error([&] { cost_volume_gwc(a, a, 4, 2, DType::F16); }, {"cost_volume_gwc", "f16", "f32"});
  expect_error([&] { cost_volume_concat(a.select(0, 0), a.select(0, 0), 4); },
               {"cost_volume_concat", "4-D", "(6,4,5)"});
}

TEST_CASE("cost_volume_gwc against the official StereoMamba volume (golden, 48 groups, maxdisp 12, W 20)") {
  std::string path = golden_file("gwc_head");
  if (path.empty()) return;
  Tensor l = stereo_golden_tensor(path, "in.vol_left"), r = stereo_golden_tensor(path, "in.vol_right");
  Tensor vol_g = stereo_golden_tensor(path, "out.vol");
  Tensor lg = l.clone().set_requires_grad(), rg = r.clone().set_requires_grad();
  Tensor vol = cost_volume_gwc(lg, rg, 12, 48);
  double e = golden_err(vol, vol_g);
  INFO("golden out.vol err " << e);
  CHECK(e <= 1e-4);
  vol.backward(stereo_golden_tensor(path, "gout.vol"));
  double el = golden_err(lg.grad(), stereo_golden_tensor(path, "grad.in.vol_left"));
  double er = golden_err(rg.grad(), stereo_golden_tensor(path, "grad.in.vol_right"));
  INFO("golden grad.in.vol_left err " << el << ", grad.in.vol_right err " << er);
  CHECK(el <= 1e-3);
  CHECK(er <= 1e-3);
}

// ---- GPU vs CPU -----------------------------------------------------------------------------------------------------
TEST_CASE("cost_volume_gwc and cost_volume_concat: GPU vs CPU, forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  [[maybe_unused]] const Context& ctx = Context::get(gpu());
  struct Case { int64_t B, C, G, H, W, D; };
  // Cg = 8 (StereoMamba), odd Cg, W not a multiple of the 64-wide tile, D not a multiple of 8, W < D; Cg <= 8 runs
  // the streaming kernel, Cg = 24 the tiled one.
  for (Case c : {Case{2, 40, 5, 7, 133, 21}, Case{1, 384, 48, 3, 20, 48}, Case{2, 9, 3, 5, 70, 13},
                 Case{1, 24, 1, 2, 37, 40}, Case{1, 16, 2, 3, 200, 64}, Case{2, 10, 2, 3, 3, 3} /* Cg 5, D < 4, W < 4 */,
                 Case{1, 64, 8, 2, 320, 48} /* the bench shape's row, W % 64 == 0 */}) {
    Tensor l = randn_t({c.B, c.C, c.H, c.W}, DType::F32), r = randn_t({c.B, c.C, c.H, c.W}, DType::F32);
    std::string sh = shape_str(l.shape()) + " D=" + std::to_string(c.D) + " G=" + std::to_string(c.G);
    Tensor ref = Tensor::empty({c.B, c.G, c.D, c.H, c.W}, DType::F64);
    ref::cost_volume_gwc_forward(ref, l.to(DType::F64), r.to(DType::F64), c.G);
    // raw launcher on a poisoned output
    Tensor vol = Tensor::empty(ref.shape(), DType::F32, gpu());
    poison(vol);
    STEREORT_CUDA_PATH(cuda::cost_volume_gwc_forward(vol, l.cuda(), r.cuda(), c.G, ctx));
    expect_close(vol.cpu(), ref.to(DType::F32), kTolF32, "gwc forward f32 " + sh);
    for (DType dt : {DType::F16, DType::BF16}) {
      Tensor lh = l.to(dt), rh = r.to(dt);
      Tensor refh = Tensor::empty(ref.shape(), DType::F64);
      ref::cost_volume_gwc_forward(refh, lh.to(DType::F64), rh.to(DType::F64), c.G);
      Tensor vh = Tensor::empty(ref.shape(), dt, gpu()), vf = Tensor::empty(ref.shape(), DType::F32, gpu());
      poison(vh);
      poison(vf);
      STEREORT_CUDA_PATH(cuda::cost_volume_gwc_forward(vh, lh.cuda(), rh.cuda(), c.G, ctx));
      STEREORT_CUDA_PATH(cuda::cost_volume_gwc_forward(vf, lh.cuda(), rh.cuda(), c.G, ctx));
      expect_close(vh.cpu().to(DType::F64), refh, dt == DType::F16 ? kTolF16 : kTolBF16,
                   std::string("gwc forward ") + dtype_name(dt) + " " + sh);
      expect_close(vf.cpu(), refh.to(DType::F32), kTolF32, std::string("gwc f32 volume from ") + dtype_name(dt));
    }
    // backward (raw launcher on poisoned outputs, then through autograd): GPU vs CPU float64
    Tensor dv = randn_t(ref.shape(), DType::F32);
    Tensor dl = Tensor::empty(l.shape(), DType::F64), dr = Tensor::empty(l.shape(), DType::F64);
    ref::cost_volume_gwc_backward(dl, dr, dv.to(DType::F64), l.to(DType::F64), r.to(DType::F64), c.G);
    Tensor dlg = Tensor::empty(l.shape(), DType::F32, gpu()), drg = Tensor::empty(l.shape(), DType::F32, gpu());
    poison(dlg);
    poison(drg);
    STEREORT_CUDA_PATH(cuda::cost_volume_gwc_backward(dlg, drg, dv.cuda(), l.cuda(), r.cuda(), c.G, ctx));
    // each gradient sums up to D products with random signs: 1e-5 relative, plus 1e-5 absolute for cancellation
    expect_close(dlg.cpu(), dl.to(DType::F32), 1e-5, 1e-5, "gwc dleft " + sh);
    expect_close(drg.cpu(), dr.to(DType::F32), 1e-5, 1e-5, "gwc dright " + sh);
    Tensor lg = l.cuda().set_requires_grad(), rg = r.cuda().set_requires_grad();
    cost_volume_gwc(lg, rg, c.D, c.G).backward(dv.cuda());
    expect_close(lg.grad().cpu(), dl.to(DType::F32), 1e-5, 1e-5, "gwc dleft (autograd) " + sh);
    // bf16 features with an f32 volume: backward takes the f32 gradient
    Tensor lb = l.to(DType::BF16).cuda().set_requires_grad(), rb = r.to(DType::BF16).cuda().set_requires_grad();
    cost_volume_gwc(lb, rb, c.D, c.G, DType::F32).backward(dv.cuda());
    Tensor dlb = Tensor::empty(l.shape(), DType::F64), drb = Tensor::empty(l.shape(), DType::F64);
    ref::cost_volume_gwc_backward(dlb, drb, dv.to(DType::F64), l.to(DType::BF16).to(DType::F64),
                                  r.to(DType::BF16).to(DType::F64), c.G);
    expect_close(lb.grad().cpu().to(DType::F64), dlb, kTolBF16, "gwc dleft bf16 " + sh);
    expect_close(rb.grad().cpu().to(DType::F64), drb, kTolBF16, "gwc dright bf16 " + sh);

    // concatenation volume (exact copies forward; sums of D terms backward)
    int64_t Cc = std::min<int64_t>(c.C, 12);
    Tensor lc = l.slice(1, 0, Cc).contiguous(), rc = r.slice(1, 0, Cc).contiguous();
    Tensor cref = Tensor::empty({c.B, 2 * Cc, c.D, c.H, c.W}, DType::F32);
    ref::cost_volume_concat_forward(cref, lc, rc);
    Tensor cv = Tensor::empty(cref.shape(), DType::F32, gpu());
    poison(cv);
    STEREORT_CUDA_PATH(cuda::cost_volume_concat_forward(cv, lc.cuda(), rc.cuda(), ctx));
    expect_close(cv.cpu(), cref, kTolF64, "concat forward " + sh);
    Tensor dcv = randn_t(cref.shape(), DType::F32);
    Tensor dlc = Tensor::empty(lc.shape(), DType::F32, gpu()), drc = Tensor::empty(lc.shape(), DType::F32, gpu());
    poison(dlc);
    poison(drc);
    STEREORT_CUDA_PATH(cuda::cost_volume_concat_backward(dlc, drc, dcv.cuda(), ctx));
    Tensor dlr = Tensor::empty(lc.shape(), DType::F64), drr = Tensor::empty(lc.shape(), DType::F64);
    ref::cost_volume_concat_backward(dlr, drr, dcv.to(DType::F64));
    expect_rel(dlc.cpu(), dlr.to(DType::F32), 1e-5, "concat dleft " + sh);
    expect_rel(drc.cpu(), drr.to(DType::F32), 1e-5, "concat dright " + sh);
  }
}
