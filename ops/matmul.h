// ops/matmul.h — matrix products. CPU: plain loops with double accumulation. CUDA: cuBLAS (cublasGemmStridedBatchedEx).
//   matmul(a, b): a (...,M,K) @ b (...,K,N) -> (...,M,N), batch dims broadcast. Both >= 2-D, same dtype/device.
//   Transposed views (e.g. w.transpose(0,1)) are passed to cuBLAS as transposed operands, without a copy.
//   f32 runs in strict fp32 unless set_allow_tf32(true); f16/bf16 inputs accumulate in fp32.
//   Backward: dA = dC·Bᵀ, dB = Aᵀ·dC, each summed over the batch dims its operand broadcast.
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor matmul(const Tensor& a, const Tensor& b);

void set_allow_tf32(bool on);  // process-wide, default off (exact fp32, like torch.backends.cuda.matmul)
bool allow_tf32();

// Raw batched GEMM: out (Bt,M,N) contiguous = alpha * a (Bt,M,K) @ b (Bt,K,N) + beta * out. a and b may be
// row- or column-major in their last two dims (one of the two strides is 1) with any batch stride (0 broadcasts).
void gemm_raw(const Tensor& out, const Tensor& a, const Tensor& b, double alpha = 1.0, double beta = 0.0);

// Layout of a (Bt,R,C) operand for GEMM: 1 row-major (stride(2) == 1 and rows don't overlap), 2 column-major,
// 0 neither (copy it). A single row or column counts as either.
int gemm_layout(const Shape& shape3, const Shape& strides3);

namespace cuda {
void gemm(const Tensor& out, const Tensor& a, const Tensor& b, double alpha, double beta, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
