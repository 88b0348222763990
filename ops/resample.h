// ops/resample.h — resampling with PyTorch F.interpolate semantics (no antialias), forward and backward.
//   interpolate_bilinear (B,C,H,W) -> (B,C,out_h,out_w)      2 taps per axis
//   interpolate_trilinear (B,C,D,H,W) -> (B,C,out_d,out_h,out_w)  2 taps per axis
//   interpolate_bicubic (B,C,H,W) -> (B,C,out_h,out_w)       4 taps per axis, A = -0.75, taps clamped to the border
//   interpolate_nearest (B,C,H,W) -> (B,C,out_h,out_w)       1 tap: src = min(floor(dst * in/out), in-1) in float
//   *_scale variants take PyTorch's scale_factor (recompute_scale_factor=None): out = floor(in * s) and the coordinate
//   map uses 1/s instead of in/out. DINOv2 resizes its position table this way (smoestereo.md §2: a bit-exact port
//   must pass the scale factor, not the size).
//
// Coordinate map per axis (ATen UpSample.h: area_pixel_compute_scale / area_pixel_compute_source_index):
//   align_corners false:  src = (dst + 0.5) * scale - 0.5, scale = in/out (or 1/s);  linear modes clamp src at 0
//   align_corners true:   src = dst * (in-1)/(out-1)   (scale 0 when out == 1)
//   linear: i0 = floor(src), i1 = min(i0+1, in-1), l1 = src - i0, l0 = 1 - l1   (both taps land on in-1 at the end)
//   cubic:  i = floor(src), t = src - i, taps i-1..i+2 clamped to [0, in-1], weights
//           (W(t+1), W(t), W(1-t), W(2-t)) with W the Keys kernel, A = -0.75 (ATen get_cubic_upsample_coefficients)
//   The scale and src are computed in the op type (float for f32/f16/bf16, double for f64), as ATen does, with no
//   fused multiply-add, so the CPU and CUDA paths pick the same taps and weights bit for bit.
//   Separable: out[b,c,z,y,x] = sum_kd wd * (sum_kh wh * (sum_kw ww * x[...])) (W first, as ATen's bicubic does).
//
// Backward: the exact adjoint. CPU (ref::): scatter every output's weights into the input gradient, accumulated in
// double. CUDA: one deterministic gather pass per non-identity axis (W, then H, then D; each input position sums
// the contiguous range of outputs whose taps hit it), no atomics; intermediates in fp32 (fp64 for f64).
// Dtypes: f32, f64, f16/bf16 (CPU upcasts to f32; CUDA computes in fp32). Any input strides (made contiguous).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace stereort {

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners);  // (B,C,H,W)
Tensor interpolate_trilinear(const Tensor& x, int64_t out_d, int64_t out_h, int64_t out_w,
                             bool align_corners);                                                // (B,C,D,H,W)
Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners);   // (B,C,H,W)
Tensor interpolate_nearest(const Tensor& x, int64_t out_h, int64_t out_w);                       // (B,C,H,W)

// scale_factor forms (out = floor(in * scale), coordinate scale 1/scale unless align_corners).
Tensor interpolate_bilinear_scale(const Tensor& x, double scale_h, double scale_w, bool align_corners);
Tensor interpolate_bicubic_scale(const Tensor& x, double scale_h, double scale_w, bool align_corners);

// ---- launcher interface (shared by the CPU reference and cuda/resample.cu) ------------------------------------------
enum class ResampleMode : int { Nearest = 0, Linear = 1, Cubic = 2 };

struct ResampleAxis {
  int64_t in = 1, out = 1;
  double scale = 1.0;   // coordinate scale as ATen computes it in double (f64 inputs)
  float scale_f = 1.0f; // ... and in float (f32/f16/bf16 inputs; always used by Nearest)
  bool align_corners = false;
};

struct ResampleParams {
  ResampleMode mode = ResampleMode::Linear;
  int64_t nc = 1;        // B*C planes
  ResampleAxis d, h, w;  // d is in = out = 1 (identity) for the 2-D ops
};

// True when the axis maps every output to the input at the same index with weight 1.
bool resample_axis_identity(ResampleMode mode, const ResampleAxis& a);
// Parameters for an input of shape (B,C,H,W) or (B,C,D,H,W) and the output sizes of its spatial dims; scales (one per
// spatial dim, or empty) are PyTorch scale factors used for the coordinate map. No argument checks (the ops do them).
ResampleParams make_resample_params(ResampleMode mode, const Shape& in_shape, const std::vector<int64_t>& out_sizes,
                                    bool align_corners, const std::vector<double>& scales = {});

namespace ref {
// x contiguous (nc, d.in, h.in, w.in) -> out contiguous (nc, d.out, h.out, w.out); F32 or F64.
void resample_forward(const Tensor& out, const Tensor& x, const ResampleParams& p);
// gout contiguous (nc, d.out, h.out, w.out) -> gx contiguous (nc, d.in, h.in, w.in) (overwritten).
void resample_backward(const Tensor& gx, const Tensor& gout, const ResampleParams& p);
}  // namespace ref

namespace cuda {
// Same contracts as ref::, on one CUDA device; f32, f64, f16, bf16.
void resample_forward(const Tensor& out, const Tensor& x, const ResampleParams& p, const Context& ctx);
void resample_backward(const Tensor& gx, const Tensor& gout, const ResampleParams& p, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
