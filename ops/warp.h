// ops/warp.h — horizontal (epipolar) warping of an image by a per-pixel disparity, forward + backward, CPU and CUDA.
//   warp_horizontal(img, disp)   img (B,C,H,W), disp (B,H,W) or (B,1,H,W)  ->  out (B,C,H,W)
//     p = x + disp[b,y,x],  x0 = floor(p),  a = p - x0
//     out[b,c,y,x] = (1 - a) img[b,c,y,x0] + a img[b,c,y,x0+1],   each tap outside [0, W-1] contributes 0
//     (bilinear with zero padding; y stays on the row). A non-finite disparity gives 0.
//   Use (StereoMamba evaluation_scripts/reprojection_error.py, spec formats-and-metrics.md §13 step 3): synthesise
//   the right view from the LEFT image and the LEFT disparity, R^(x,y) = Left(x + d(x,y), y) — no occlusion mask.
//   Equivalent to grid_sample(align_corners=True, padding zeros) at (x + d, y) and to cv2.remap with
//   BORDER_CONSTANT 0 and INTER_LINEAR.
//   Backward (differentiable in img and disp):
//     dimg[b,c,y,x0] += (1-a) g,  dimg[b,c,y,x0+1] += a g          (scatter: fp32 atomics on CUDA, order varies)
//     ddisp[b,y,x]    = sum_c g[b,c,y,x] (img[x0+1] - img[x0])       (outside taps read 0; at integer p this is
//                                                                    the right-sided derivative, like PyTorch)
//   Dtypes: img and disp share a dtype: f64/f32 on the CPU (f16/bf16 through f32); f32/f16/bf16 on CUDA (fp32 math).
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor warp_horizontal(const Tensor& img, const Tensor& disp);

namespace ref {
// Raw CPU kernels on contiguous F32/F64 tensors; disp (B,H,W). Every output element is written.
void warp_horizontal_forward(const Tensor& out, const Tensor& img, const Tensor& disp);
void warp_horizontal_backward(const Tensor& dimg, const Tensor& ddisp, const Tensor& dout, const Tensor& img,
                              const Tensor& disp);
}  // namespace ref

namespace cuda {
// Contiguous device tensors, img/out (B,C,H,W), disp (B,H,W), one dtype (f32/f16/bf16). Every output is written.
void warp_horizontal_forward(const Tensor& out, const Tensor& img, const Tensor& disp, const Context& ctx);
void warp_horizontal_backward(const Tensor& dimg, const Tensor& ddisp, const Tensor& dout, const Tensor& img,
                              const Tensor& disp, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
