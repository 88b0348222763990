// tests/bench/stereo_bench.cpp — stereo matching kernels at 1280x1024 (1/4-resolution features 256x320), batch 1:
//   GWC volume (StereoMamba V1: 384 channels, 48 groups, 48 disparities; f32, bf16, bf16 -> f32) forward and backward,
//   the concatenation volume, the fused soft-argmin ((1,1,48,256,320) -> (1,1024,1280), 192 bins) against the
//   unfused graph, RAFT-Stereo correlation (256-channel features: GEMM volume + 4-level pyramid) and lookup.
// Timer: CUDA events around the raw launchers (or the op under NoGradGuard), 5 warm-up calls, median of 50.
// Floors: bytes that must cross HBM once (inputs read + outputs written) at the measured D2D copy bandwidth; for the
// fused regression also the exp2 floors (one exp per output bin at 16/clk/SM, kernels.md §10, and one per level for
// the x4 kernel) and for the correlation the fp32 FMA floor (67 TFLOP/s non-tensor).
#include <fmt/format.h>

#include <cmath>

#include "bench/bench_util.h"
#include "core/autograd.h"
#include "core/context.h"
#include "ops/corr1d.h"
#include "ops/cost_volume.h"
#include "ops/init.h"
#include "ops/regression.h"

using namespace stereort;
using namespace stereort::bench;

namespace {

double floor_ms_for(double bytes, double bw_gbs) { return bytes / (bw_gbs * 1e9) * 1e3; }
std::string rate(double bytes, const Timing& t, double bw) {
  const double gbs = bytes / (t.median_ms * 1e-3) / 1e9;
  return fmt::format("{:.0f} GB/s ({:.0f}%)", gbs, 100 * gbs / bw);
}

}  // namespace

int main() {
  if (!cuda_available()) {
    fmt::print("stereo_bench: skipped: no CUDA device\n");
    return 0;
  }
  NoGradGuard no_grad;
  print_header("stereo matching kernels, 1280x1024 input (features 256x320)");
  const double bw = copy_bandwidth_gbs();
  const Device g = Device::cuda(0);
  const Context& ctx = Context::get(g);
  const int64_t B = 1, C = 384, G = 48, D = 48, H = 256, W = 320;

  // ---- GWC volume ---------------------------------------------------------------------------------------------------
  struct VolCase { DType feat, vol; };
  for (VolCase vc : {VolCase{DType::F32, DType::F32}, VolCase{DType::BF16, DType::BF16}, VolCase{DType::BF16, DType::F32}}) {
    Tensor l = randn({B, C, H, W}, vc.feat, g, 1), r = randn({B, C, H, W}, vc.feat, g, 2);
    Tensor vol = Tensor::empty({B, G, D, H, W}, vc.vol, g);
    const double bytes = 2.0 * double(l.nbytes()) + double(vol.nbytes());
    Timing t = time_cuda_ms([&] { cuda::cost_volume_gwc_forward(vol, l, r, G, ctx); });
    print_row(fmt::format("cost_volume_gwc {}->{}", dtype_name(vc.feat), dtype_name(vc.vol)), "(1,384,256,320) G48 D48",
              t, rate(bytes, t, bw), floor_ms_for(bytes, bw), "HBM: 2 features + volume");
    if (vc.feat == vc.vol) {
      Tensor dl = Tensor::empty(l.shape(), vc.feat, g), dr = Tensor::empty(l.shape(), vc.feat, g);
      const double bb = double(vol.nbytes()) + 4.0 * double(l.nbytes());
      Timing tb = time_cuda_ms([&] { cuda::cost_volume_gwc_backward(dl, dr, vol, l, r, G, ctx); });
      print_row(fmt::format("cost_volume_gwc backward {}", dtype_name(vc.feat)), "(1,384,256,320) G48 D48", tb,
                rate(bb, tb, bw), floor_ms_for(bb, bw), "HBM: dV + 2 features + 2 grads");
    }
  }
  {
    Tensor l = randn({B, 12, H, W}, DType::F32, g, 3), r = randn({B, 12, H, W}, DType::F32, g, 4);
    Tensor vol = Tensor::empty({B, 24, D, H, W}, DType::F32, g);
    const double bytes = 2.0 * double(l.nbytes()) + double(vol.nbytes());
    Timing t = time_cuda_ms([&] { cuda::cost_volume_concat_forward(vol, l, r, ctx); });
    print_row("cost_volume_concat f32", "(1,12,256,320) D48", t, rate(bytes, t, bw), floor_ms_for(bytes, bw),
              "HBM: 2 features + volume");
  }

  // ---- fused soft-argmin ------------------------------------------------------------------------------------------
  for (DType dt : {DType::F32, DType::BF16}) {
    Tensor cost = randn({B, D, H, W}, dt, g, 5, 0.0, 4.0);
    Tensor disp = Tensor::empty({B, 4 * H, 4 * W}, DType::F32, g);
    const double bytes = double(cost.nbytes()) + double(disp.nbytes());
    Timing t = time_cuda_ms([&] { cuda::disparity_regression_fused_forward(disp, cost, 4 * D, ctx); });
    const std::string shape = "(1,1,48,256,320)->(1,1024,1280)";
    print_row(fmt::format("regression fused {}", dtype_name(dt)), shape, t, rate(bytes, t, bw),
              floor_ms_for(bytes, bw), "HBM: cost + disparity");
    // exp2 floors: one per output bin (the general kernel, and any per-bin formulation) and one per level (the x4
    // kernel: 48 per pixel)
    for (int per_bin = 1; per_bin >= 0; --per_bin) {
      const double exps = double(per_bin ? 4 * D : D) * double(16 * H * W);
      print_row(fmt::format("regression fused {}", dtype_name(dt)), shape, t,
                fmt::format("{:.2f} Texp/s", exps / (t.median_ms * 1e-3) / 1e12), exps / 4.18e12 * 1e3,
                per_bin ? "MUFU: 1 exp2 per bin (16/clk/SM, 1.98 GHz)" : "MUFU: 1 exp2 per level (x4 kernel)");
    }
    if (dt == DType::F32) {
      Tensor c5 = cost.unsqueeze(1);
      Timing tu = time_cuda_ms([&] { disparity_regression_unfused(c5, 4 * D, 4 * H, 4 * W); }, 2, 10);
      const double ub = bytes + 4.0 * 192.0 * 1024 * 1280 * 4;  // up written + read, prob written + read (fp32)
      print_row("regression unfused f32 (reference)", shape, tu, rate(ub, tu, bw), floor_ms_for(ub, bw),
                "HBM: + 2 materialised 192-bin volumes");
    }
  }

  // ---- RAFT-Stereo correlation ------------------------------------------------------------------------------------
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t Cr = 256;
    Tensor f1 = randn({B, Cr, H, W}, dt, g, 6), f2 = randn({B, Cr, H, W}, dt, g, 7);
    std::vector<Tensor> pyr;
    Timing t = time_cuda_ms([&] { pyr = corr1d_pyramid(f1, f2, 4); });
    double vbytes = 0;
    for (int i = 0; i < 4; ++i) vbytes += double(B * H * W * (W >> i)) * 4.0;
    const double bytes = 2.0 * double(f1.nbytes()) + vbytes + double(B * H * W * W) * 4.0 * 0.875;  // + pool reads
    print_row(fmt::format("corr1d_pyramid {} (fp32 volume)", dtype_name(dt)), "(1,256,256,320) x2, 4 levels", t,
              rate(bytes, t, bw), floor_ms_for(bytes, bw), "HBM: features + pyramid written + pool reads");
    const double flops = 2.0 * double(B * H * W * W * Cr);
    print_row(fmt::format("corr1d_pyramid {} (fp32 volume)", dtype_name(dt)), "(1,256,256,320) x2, 4 levels", t,
              fmt::format("{:.1f} TFLOP/s", flops / (t.median_ms * 1e-3) / 1e12), flops / 67e12 * 1e3,
              "fp32 FMA 67 TFLOP/s (strict fp32 GEMM)");
    if (dt == DType::F32) {
      Tensor coords = rand_uniform({B, H, W}, DType::F32, g, 8, -10.0, 330.0);
      Tensor out = Tensor::empty({B, 36, H, W}, DType::F32, g);
      Timing tl = time_cuda_ms([&] { cuda::corr1d_lookup_forward(out, pyr, coords, 4, ctx); });
      const double lb = double(out.nbytes()) + double(coords.nbytes()) + double(B * H * W) * 4 * 10 * 4.0;
      print_row("corr1d_lookup r=4", "(1,256,320) -> (1,36,256,320)", tl, rate(lb, tl, bw), floor_ms_for(lb, bw),
                "HBM: out + coords + 4x10 taps/query");
    }
  }
  return 0;
}
