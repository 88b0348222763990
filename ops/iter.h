// ops/iter.h — dimension coalescing for strided element-wise loops (CPU and CUDA share it).
//   coalesce_dims drops size-1 dims and merges neighbours that are contiguous in every operand, so a contiguous or
//   simply-broadcast loop becomes 1-D or 2-D before any index arithmetic happens.
#pragma once
#include <vector>

#include "core/shape.h"

namespace stereort {

struct IterDims {
  Shape sizes;                 // coalesced sizes (at least one dim)
  std::vector<Shape> strides;  // per operand, same rank as sizes
};

inline IterDims coalesce_dims(const Shape& shape, const std::vector<Shape>& strides) {
  IterDims out;
  out.strides.resize(strides.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = !out.sizes.empty();
    for (size_t t = 0; merge && t < strides.size(); ++t)
      merge = out.strides[t].back() == strides[t][d] * shape[d];
    if (merge) {
      out.sizes.back() *= shape[d];
      for (size_t t = 0; t < strides.size(); ++t) out.strides[t].back() = strides[t][d];
    } else {
      out.sizes.push_back(shape[d]);
      for (size_t t = 0; t < strides.size(); ++t) out.strides[t].push_back(strides[t][d]);
    }
  }
  if (out.sizes.empty()) {
    out.sizes.push_back(1);
    for (auto& s : out.strides) s.push_back(0);
  }
  return out;
}

// Strides of `src` when broadcast to `shape` (0 on broadcast dims). Assumes broadcast compatibility.
inline Shape broadcast_strides(const Shape& src_shape, const Shape& src_strides, const Shape& shape) {
  Shape st(shape.size(), 0);
  size_t off = shape.size() - src_shape.size();
  for (size_t i = 0; i < src_shape.size(); ++i) st[off + i] = src_shape[i] == 1 ? 0 : src_strides[i];
  return st;
}

}  // namespace stereort
