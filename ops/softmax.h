// ops/softmax.h — softmax family along one dim: softmax, log_softmax, max (values + indices), argmax, topk.
//   x is any shape; dim may be negative. Internally x is viewed as (outer, n, inner) with n = x.size(dim).
//   softmax(x)_k     = exp(x_k - m) / sum_j exp(x_j - m),  m = max_j x_j           (torch.softmax)
//   log_softmax(x)_k = x_k - m - log(sum_j exp(x_j - m))                            (torch.log_softmax)
//     A row of all -inf gives NaN (as PyTorch); NaN anywhere in a row makes the row NaN.
//     Backward: softmax dx = y * (g - sum_j g_j y_j);  log_softmax dx = g - exp(y) * sum_j g_j.
//   max(x, dim, keepdim)    values and I64 indices of the maximum; ties -> the first (lowest) index; NaN counts as
//                           the maximum (first NaN wins), as torch.max. Gradient flows to that one index.
//   argmax(x, dim, keepdim) the indices of max (no gradient).
//   topk(x, k, dim, largest) the k largest (smallest) values along dim, sorted (descending for largest, ascending
//                           otherwise), with their I64 indices; ties keep the lower index first; NaN counts as larger
//                           than every number. Output shape: x with size k at dim. Gradient scatters to the indices.
// Precision: f64 computes in double; f32/f16/bf16 accumulate in fp32 (CPU: double accumulation; 16-bit inputs are
// widened to f32 on the CPU). Outputs are contiguous, dtype of x.
// CUDA (cuda/softmax.cu): a reduced dim that is innermost (inner == 1) runs one warp per row (one block per row when
// n > 1024; one thread per row when n <= 8); any other dim runs one thread per (outer, inner) column walking the dim
// with stride `inner`, so neighbouring threads read neighbouring addresses and nothing is transposed.
// topk on CUDA keeps a sorted insertion list per row in one thread: O(n*k) per row, meant for small k (routing,
// k <= ~64) and many rows.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

struct MaxResult {
  Tensor values, indices;  // indices I64
};
MaxResult max(const Tensor& x, int64_t dim, bool keepdim = false);  // gradient to the (first) max
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
MaxResult topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);  // sorted

namespace cuda {
// All tensors contiguous, viewed as (outer, n, inner); y/x/g/dx share a dtype (f64/f32/f16/bf16).
struct SoftmaxDims {
  int64_t outer, n, inner;
};
void softmax_forward(const Tensor& y, const Tensor& x, SoftmaxDims d, bool log, const Context& ctx);
void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& g, SoftmaxDims d, bool log, const Context& ctx);
// values (outer, inner) dtype of x; indices (outer, inner) I64.
void max_forward(const Tensor& values, const Tensor& indices, const Tensor& x, SoftmaxDims d, const Context& ctx);
// values/indices (outer, k, inner).
void topk_forward(const Tensor& values, const Tensor& indices, const Tensor& x, SoftmaxDims d, int64_t k, bool largest,
                  const Context& ctx);
}  // namespace cuda

}  // namespace stereort
