// ops/conv1d_causal.h — causal depthwise conv1d on channel-last tokens (Mamba-2 block, kernels.md §5).
//   causal_conv1d(x, weight, bias, silu): x (B,L,C); weight (C,1,K) as PyTorch's Conv1d(C, C, K, groups=C,
//   padding=K-1) state dict stores it, or (C,K); bias (C) or undefined.
//     pre[b,t,c] = bias_c + sum_{j=0..K-1} w[c,j] * x[b, t-K+1+j, c]   (x = 0 before t = 0),
//     out = silu(pre) if silu else pre.       (= F.conv1d(x^T, w, b, padding=K-1, groups=C)[..., :L], then SiLU)
//   Backward, with e = dout * silu'(pre) (dout without SiLU):
//     dx[b,t,c] = sum_j w[c,j] e[b, t+K-1-j, c] (t+K-1-j < L);  dw[c,j] = sum_{b,t} e[b,t,c] x[b,t-K+1+j,c];
//     dbias_c = sum_{b,t} e[b,t,c].
//   Dtypes: x f32/f16/bf16 (f64 on the CPU); weight and bias x's dtype or f32; math in fp32 (CUDA) or double (CPU);
//   out has x's dtype. x needs unit stride over C (any L and batch strides: a slice of the in_proj output works).
//   Upstream: mamba `modules/mamba2_simple.py` (self.conv1d), Dao-AILab/causal-conv1d (`causal_conv1d_ref`).
//   CUDA (cuda/conv1d_causal.cu): threads over C (coalesced rows), each thread walks a run of steps keeping a
//   (K-1)-step halo in registers; K in 1..4. dw/dbias are reduced over the block's threads in shared memory, then
//   over blocks by a deterministic second pass.
#pragma once
#include "core/tensor.h"

namespace stereort {

class Context;

Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu);

namespace ref {
// Plain loops in double; out has x's dtype.
Tensor causal_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, bool silu);
}  // namespace ref

namespace cuda {
// w2 (C,K) and bias (C) contiguous f32 (bias may be undefined), x (B,L,C) with unit channel stride; out (B,L,C) contiguous, x's dtype.
void causal_conv1d_forward(const Tensor& out, const Tensor& x, const Tensor& w2, const Tensor& bias, bool silu,
                           const Context& ctx);
// dout (B,L,C) contiguous x dtype; dx (B,L,C) contiguous x dtype; dw_partial (nblk,C,K) f32 and dbias_partial
// (nblk,C) f32 with nblk = causal_conv1d_partials(B, L): per-block sums the caller reduces over dim 0.
void causal_conv1d_backward(const Tensor& dx, const Tensor& dw_partial, const Tensor& dbias_partial,
                            const Tensor& dout, const Tensor& x, const Tensor& w2, const Tensor& bias, bool silu,
                            const Context& ctx);
int64_t causal_conv1d_partials(int64_t B, int64_t L);
}  // namespace cuda

}  // namespace stereort
