// ops/corr1d.h — RAFT-Stereo 1-D correlation pyramid and its lookup (SMoEStereo's RAFT head), forward + backward.
//   corr1d_pyramid(f1, f2, levels)   f1 (B,C,H,W1), f2 (B,C,H,W2)  ->  levels tensors, level i (B,H,W1,W2>>i), fp32
//     C0[b,y,x1,x2] = sum_c f1[b,c,y,x1] f2[b,c,y,x2] / sqrt(C)      — one (W1 x C)(C x W2) GEMM per row (gemm_raw)
//     C(i+1)[...,j] = (C(i)[...,2j] + C(i)[...,2j+1]) / 2             — avg_pool over x2 only, odd widths floored
//   corr1d_lookup(pyramid, coords, r)   coords (B,H,W1) fp32 x-positions  ->  (B, levels*(2r+1), H, W1), fp32
//     at level i, tap k = 0..2r: p = X / 2^i + (k - r), x0 = floor(p), a = p - x0,
//     out[b, i*(2r+1) + k, y, x1] = (1-a) Ci[b,y,x1,x0] + a Ci[b,y,x1,x0+1], each index outside [0, W2>>i) reads 0
//     (RAFT-Stereo bilinear_sampler: grid_sample align_corners=True, zero padding). No half-pixel shift between
//     levels (reproduced as is).
//   Precision: correlation, pooling and lookup are fp32 even for f16/bf16 features (RAFT-Stereo notes fp16 rounding
//   errors in the lookup); f64 features give an f64 pyramid on the CPU (for gradient checks).
//   Backward: coordinates are treated as detached (RAFT detaches them every iteration): the lookup's gradient flows
//   into the pyramid only, and every query writes only its own row of each level (no atomics). The pyramid's
//   gradient goes back through the pooling (1/2 to both parents) and the GEMMs: dF1 = dC0 F2 / sqrt(C),
//   dF2 = dC0^T F1 / sqrt(C) per row.
// Reference: princeton-vl/RAFT-Stereo core/corr.py (CorrBlock1D: corr, the avg_pool2d pyramid, __call__);
// spec kernels.md §7.  CPU: ref:: loops (double).  CUDA: cuda/corr1d.cu (pooling, lookup) + cuBLAS (volume).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace stereort {

std::vector<Tensor> corr1d_pyramid(const Tensor& f1, const Tensor& f2, int64_t levels = 4);
Tensor corr1d_lookup(const std::vector<Tensor>& pyramid, const Tensor& coords, int64_t radius = 4);

namespace ref {
// Raw CPU kernels on contiguous F32/F64 tensors. Every output element is written.
void corr1d_pool_forward(const Tensor& out, const Tensor& in);   // (...,W) -> (...,W/2)
void corr1d_pool_backward(const Tensor& din, const Tensor& dout);
// out (B,L*(2r+1),H,W1); level tensors (B,H,W1,Wi); coords (B,H,W1) of the level dtype.
void corr1d_lookup_forward(const Tensor& out, const std::vector<Tensor>& pyramid, const Tensor& coords,
                           int64_t radius);
void corr1d_lookup_backward(const std::vector<Tensor>& dpyramid, const Tensor& dout, const Tensor& coords,
                            int64_t radius);
}  // namespace ref

namespace cuda {
// F32 contiguous device tensors, shapes as in ref::. Every output element is written.
void corr1d_pool_forward(const Tensor& out, const Tensor& in, const Context& ctx);
void corr1d_pool_backward(const Tensor& din, const Tensor& dout, const Context& ctx);
void corr1d_lookup_forward(const Tensor& out, const std::vector<Tensor>& pyramid, const Tensor& coords,
                           int64_t radius, const Context& ctx);
void corr1d_lookup_backward(const std::vector<Tensor>& dpyramid, const Tensor& dout, const Tensor& coords,
                            int64_t radius, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
