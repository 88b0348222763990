// ops/pool.h — 2-D average and max pooling with PyTorch semantics (ceil_mode False, dilation 1), fwd + bwd.
//   avg_pool2d(x, k, s, p, count_include_pad)  (B,C,H,W) -> (B,C,OH,OW), OH = floor((H + 2p - k) / s) + 1
//     window rows hs = oh*s - p .. hs+k-1, clipped to [0,H) for the sum; divisor (ATen avg_pool2d):
//       count_include_pad: (min(hs+k, H+p) - hs) * (min(ws+k, W+p) - ws)   (the window clipped to the padded input)
//       otherwise:         the number of real (unpadded) elements in the window
//   max_pool2d(x, k, s, p)  padding counts as -inf; the output is the first maximum in row-major window order, a NaN
//     wins (ATen: `val > max || isnan(val)`); the gradient goes to that element only.
//   Rectangular forms take a Pool2dParams (RAFT-Stereo's CorrBlock1D pyramid pools with kernel (1,2), stride (1,2)).
//   Checks as ATen: kernel, stride >= 1; 0 <= padding <= kernel/2; output >= 1.
//   Used by: SMoEStereo pool2x = avg_pool2d(3, 2, 1, count_include_pad) and the correlation pyramid.
// CPU (ref::) loops with double accumulation; CUDA (cuda/pool.cu): one thread per output forward, and a deterministic
// gather backward (one thread per input element over the windows covering it; max reads the saved argmax, int32).
// Dtypes: f32, f64, f16/bf16 (CPU upcasts to f32; CUDA computes in fp32).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor avg_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0, bool count_include_pad = true);
Tensor max_pool2d(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding = 0);  // gradient to the first max

struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg only
};
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);

// ---- launcher interface ----------------------------------------------------------------------------------------------
struct Pool2dGeom {
  int64_t nc = 1, h = 1, w = 1, oh = 1, ow = 1;  // planes (B*C), input and output sizes
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  bool count_include_pad = true;
};
// Validates (naming `op` and the input shape) and computes the output size.
Pool2dGeom make_pool2d_geom(const char* op, const Tensor& x, const Pool2dParams& p);

namespace ref {
// x, out, g, gx contiguous; idx (nc, oh, ow) int32 holds h*W + w of the chosen element (may be undefined in forward).
void avg_pool2d_forward(const Tensor& out, const Tensor& x, const Pool2dGeom& g);
void avg_pool2d_backward(const Tensor& gx, const Tensor& gout, const Pool2dGeom& g);
void max_pool2d_forward(const Tensor& out, const Tensor& idx, const Tensor& x, const Pool2dGeom& g);
void max_pool2d_backward(const Tensor& gx, const Tensor& gout, const Tensor& idx, const Pool2dGeom& g);
}  // namespace ref

namespace cuda {
void avg_pool2d_forward(const Tensor& out, const Tensor& x, const Pool2dGeom& g, const Context& ctx);
void avg_pool2d_backward(const Tensor& gx, const Tensor& gout, const Pool2dGeom& g, const Context& ctx);
void max_pool2d_forward(const Tensor& out, const Tensor& idx, const Tensor& x, const Pool2dGeom& g, const Context& ctx);
void max_pool2d_backward(const Tensor& gx, const Tensor& gout, const Tensor& idx, const Pool2dGeom& g,
                         const Context& ctx);
}  // namespace cuda

}  // namespace stereort
