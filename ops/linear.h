// ops/linear.h — fully connected layer (torch.nn.functional.linear).
//   linear(x, weight, bias)   x (...,In), weight (Out,In), bias (Out) or undefined  ->  (...,Out)
//     out[t,o] = bias[o] + sum_i x[t,i] * weight[o,i]          (t runs over all leading dims, T = their product)
//   All operands share dtype and device. x may be any strided view; a layout that does not fold to (T,In) rows is
//   copied first. A zero-size T or Out gives an empty result; In == 0 gives the bias (or zeros).
//   Backward: dx = dout · W (T,Out)@(Out,In); dW = doutᵀ · x (Out,T)@(T,In); db = sum_t dout. Only the gradients of
//   inputs that require grad are computed.
//   CPU: plain loops with double accumulation (f16/bf16 are widened to f32 first). CUDA: cuBLASLt matmul with the
//   bias fused as an epilogue (CUBLASLT_EPILOGUE_BIAS), fp32 accumulation for every dtype; f32 runs in strict fp32
//   unless set_allow_tf32(true) (ops/matmul.h). The backward GEMMs go through gemm_raw (cuBLAS).
// Reference: PyTorch aten/src/ATen/native/Linear.cpp (linear), torch.nn.Linear (weight (out_features, in_features)).
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

namespace cuda {
// out (T,Out) contiguous = x (T,In) row-major (stride(1) == 1) @ weight (Out,In) contiguousᵀ + bias (Out, contiguous,
// or undefined). Same dtype, CUDA.
void linear_forward(const Tensor& out, const Tensor& x, const Tensor& weight, const Tensor& bias, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
