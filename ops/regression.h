// ops/regression.h — soft-argmin disparity regression with trilinear upsampling (StereoMamba / GwcNet head).
//   cost (B,1,D,h,w) or (B,D,h,w)  ->  disp (B,H,W),  H = out_h, W = out_w, out_d disparity bins:
//     c~ = trilinear(cost, (out_d, out_h, out_w)), align_corners = False on all three axes (PyTorch F.interpolate):
//          per axis src = max((dst + 0.5) * in/out - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, in - 1),
//          weights (1 - (src - i0), src - i0)
//     p    = softmax over d of c~[b,:,y,x]
//     disp = sum_{d=0}^{out_d-1} d * p_d          (GwcNet disparity_regression: arange(maxdisp) weights)
//   StereoMamba: D = 48 at 1/4 resolution -> out_d = 192 at full resolution (scale 4 on every axis).
//   Dtypes: f64 (CPU) and f32; f16/bf16 costs are computed in fp32 and give an F32 disparity (a bf16 disparity
//   would quantise 150 px to 0.5 px). All exponentials and sums are fp32 or better.
//
//   disparity_regression           the fused kernel when no gradient is needed, the unfused graph otherwise.
//   disparity_regression_fused     inference: one pass per output pixel with an online softmax (running max, sum e,
//                                  sum d*e); never materialises the (B,out_d,H,W) volume, on the CPU either.
//   disparity_regression_unfused   autograd path: interpolate_trilinear + softmax + weighted sum.
// Reference: surgical-vision/StereoMamba models (F.interpolate(cost, [maxdisp, H, W], mode='trilinear') ->
// squeeze(1) -> F.softmax(dim=1) -> disparity_regression), from xy-guo/GwcNet models/gwcnet.py + submodule.py.
// CPU: ref:: loops with double accumulation.  CUDA: cuda/regression.cu.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor disparity_regression(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w);
Tensor disparity_regression_unfused(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w);
Tensor disparity_regression_fused(const Tensor& cost, int64_t out_d, int64_t out_h, int64_t out_w);

// One axis of PyTorch's linear resampling with align_corners = False (shared by the CPU loops and the kernels'
// host set-up): output index `dst` of `out` samples input indices i0, i1 with weights w0, w1.
struct LinearTap {
  int64_t i0, i1;
  double w0, w1;
};
LinearTap linear_tap_align_false(int64_t dst, int64_t in, int64_t out);

namespace ref {
// Raw fused CPU kernel: cost (B,D,h,w) contiguous F32/F64, disp (B,H,W) of the same dtype; double accumulation.
void disparity_regression_fused_forward(const Tensor& disp, const Tensor& cost, int64_t out_d);
}  // namespace ref

namespace cuda {
// cost (B,D,h,w) contiguous f32/f16/bf16, disp (B,H,W) F32 contiguous; every element written.
void disparity_regression_fused_forward(const Tensor& disp, const Tensor& cost, int64_t out_d, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
