// ops/reduce.h — sum and mean over dims, and sum_to_shape (the adjoint of broadcasting).
//   sum(x, dims, keepdim): dims may be negative; an empty list reduces everything to a scalar ().
//   Accumulation: double on the CPU; on CUDA float (double for F64 inputs) with tree-ordered block reductions.
//   Output dtype = input dtype. Backward: the output gradient expanded back over the reduced dims (mean: / count).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace stereort {

Tensor sum(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int>& dims = {}, bool keepdim = false);
// Sum g over the dims that broadcasting added or expanded so the result has `shape` (differentiable).
Tensor sum_to_shape(const Tensor& g, const Shape& shape);

// Raw: x viewed as (rows, cols) contiguous -> (rows) = scale * sum over cols. Used by the ops above.
Tensor reduce_rows_raw(const Tensor& x2d, double scale);

namespace cuda {
// out[r] = scale * sum_c x[r, c]; x contiguous (rows, cols); out contiguous (rows); same dtype.
void sum_rows(const Tensor& out, const Tensor& x, double scale, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
