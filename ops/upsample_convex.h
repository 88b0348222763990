// ops/upsample_convex.h — RAFT convex upsampling of a flow/disparity field, forward + backward, CPU and CUDA.
//   upsample_convex(flow, mask, f)   flow (B,C,h,w), mask (B,9*f*f,h,w)  ->  up (B,C,f*h,f*w)
//     mask channel (k*f*f + i*f + j) is the logit of neighbour k = 3*ky + kx (ky, kx in 0..2, F.unfold order) for
//     sub-pixel (i, j) of low-res pixel (y, x); w_k = softmax over the 9 k of those logits;
//     up[b,c,f*y+i,f*x+j] = sum_k w_k * f * flow[b,c,y+ky-1,x+kx-1]   (neighbours outside the map read 0: unfold's
//     zero padding; the factor f rescales the flow to the new resolution, as RAFT does).
//   SMoEStereo's training divides the mask by T = 1 + exp(-(itr-1)) before this call; pass mask / T.
//   Backward: dmask = w * (dw - sum_k w_k dw_k), dw_k = sum_c f flow[c, nbr_k] g[c, fy+i, fx+j] (per sub-pixel);
//             dflow[b,c,y',x'] = f sum_k sum_(i,j) w_k(y'-ky+1, x'-kx+1, i, j) g[c, f(y'-ky+1)+i, f(x'-kx+1)+j]
//             (a gather: no atomics).
//   Dtypes: flow f32 (f64 on the CPU), output in the flow dtype; mask f32/f16/bf16 (its softmax runs in fp32 or
//   better), dmask in the mask dtype.
// Reference: princeton-vl/RAFT-Stereo core/raft_stereo.py (upsample_flow); spec kernels.md §7.
// CPU: ref:: loops (double).  CUDA: cuda/upsample_convex.cu.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor upsample_convex(const Tensor& flow, const Tensor& mask, int64_t factor = 4);

namespace ref {
// Raw CPU kernels: flow/up/dflow F32 or F64, mask/dmask of the same dtype, contiguous; every output written.
void upsample_convex_forward(const Tensor& up, const Tensor& flow, const Tensor& mask, int64_t factor);
void upsample_convex_backward(const Tensor& dflow, const Tensor& dmask, const Tensor& dup, const Tensor& flow,
                              const Tensor& mask, int64_t factor);
}  // namespace ref

namespace cuda {
// flow/up/dup/dflow F32, mask/dmask f32/f16/bf16, contiguous device tensors; every output written.
void upsample_convex_forward(const Tensor& up, const Tensor& flow, const Tensor& mask, int64_t factor,
                             const Context& ctx);
void upsample_convex_backward(const Tensor& dflow, const Tensor& dmask, const Tensor& dup, const Tensor& flow,
                              const Tensor& mask, int64_t factor, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
