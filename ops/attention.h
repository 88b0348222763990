// ops/attention.h — scaled dot-product attention, forward and backward.
//   scaled_dot_product_attention(q, k, v, scale)   q (B,Hd,Nq,d), k and v (B,Hd,Nk,d) -> (B,Hd,Nq,d)
//     S = q kᵀ · scale;  P = softmax over keys (rows of S);  out = P v.   (Nq = Nk = N in the ViT; no mask, no dropout)
//     Upstream: DINOv2 dinov2_layers/attention.py (softmax(q·kᵀ/√64)·v); xformers memory_efficient_attention.
//   attention_reference(q, k, v, scale): the same maths composed of existing differentiable ops (matmul, exp, sum,
//     div) with the N x N matrix materialised; a detached row max keeps exp in range. Tests use it as ground truth.
//
// Algorithm (all paths): online softmax per query row; the forward saves L = rowwise logsumexp(S) (fp32; fp64 on
// the CPU for f64) and the backward recomputes P = exp(S - L) blockwise (FlashAttention-2, Dao 2023):
//   Drow_i = Σ_c dO_ic O_ic;  dP = dO vᵀ;  dS = P ∘ (dP − Drow);  dq = scale dS k;  dk = scale dSᵀ q;  dv = Pᵀ dO.
// CPU: ref:: loops, one row of S at a time, double accumulation (f16/bf16 through f32).
// CUDA (cuda/attention_fwd.cu, cuda/attention_bwd.cu): fused kernels that never materialise N x N, head dim d in
//   {32, 64, 128}:
//   - f16/bf16: tensor cores (mma.sync m16n8k16, fp32 accumulate); P is rounded to the input type for the P·v and
//     dS·k products (as FlashAttention does); softmax statistics fp32.
//   - f32 (and f16/bf16 on request): SIMT fp32 kernels (no TF32), one warp per 4 rows.
//   Backward: two deterministic kernels (dk/dv: key-block-major; dq: query-block-major), no atomics.
//   q, k, v may have any strides (b, h, n) with unit stride along d and 16-byte aligned rows; others are copied.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale);
Tensor attention_reference(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

// ---- launcher interface ----------------------------------------------------------------------------------------------
enum class AttentionKernel : int {
  Auto = 0,        // tensor cores for f16/bf16, SIMT for f32
  TensorCore = 1,  // f16/bf16 only
  Simt = 2,        // any of f32/f16/bf16
};

namespace ref {
// out (B,H,Nq,d) and lse (B,H,Nq) contiguous, written; q/k/v any strides; all F32 or all F64 (lse same dtype).
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                       double scale);
// dq/dk/dv contiguous, written; out, lse from the forward; dout (B,H,Nq,d).
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout, double scale);
}  // namespace ref

namespace cuda {
// q/k/v: same dtype (f32/f16/bf16), unit stride along d, (b,h,n) strides and base 16-byte aligned; d in {32,64,128}.
// out contiguous (B,H,Nq,d) of the input dtype; lse contiguous (B,H,Nq) f32.
void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                       double scale, AttentionKernel kind, const Context& ctx);
// dq/dk/dv contiguous (input dtype); out, dout contiguous; lse f32 from the forward.
void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout, double scale,
                        AttentionKernel kind, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
