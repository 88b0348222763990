// ops/view.h — view ops: no data copied; autograd records how to route the gradient back.
//   view(x, shape)                 needs a stride-compatible layout (PyTorch's rule); one -1 is inferred
//   reshape(x, shape)              view when possible, else contiguous copy then view
//   permute(x, dims), transpose(x, a, b)
//   slice(x, dim, start, end, step)  python bounds: negatives wrap, out-of-range clamps; step >= 1
//   select(x, dim, i)              removes dim
//   expand(x, shape)               size-1 dims (and new leading dims) broadcast with stride 0; -1 keeps a size
//   unsqueeze / squeeze (a no-op when the dim is not 1) / flatten(start, end)
// Backward: reshape back; inverse permutation; scatter into zeros (slice/select); sum over expanded dims.
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor view(const Tensor& x, const Shape& shape);
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor permute(const Tensor& x, const std::vector<int>& dims);
Tensor transpose(const Tensor& x, int64_t a, int64_t b);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor flatten(const Tensor& x, int64_t start = 0, int64_t end = -1);

// Strides that let `shape` view memory laid out as (old_shape, old_strides); false when impossible.
bool view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& shape, Shape* out);
// Replace one -1 in `shape` given the element count; throws naming `op` on a mismatch.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from);

}  // namespace stereort
