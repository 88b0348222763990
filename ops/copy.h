// ops/copy.h — copies between layouts, dtypes and devices; the machinery behind contiguous(), to(), clone(),
// copy_() and fill_().
//   copy_into(dst, src)   raw (no autograd): dst[...] = cast(src broadcast to dst.shape); any devices and dtypes.
//   fill_into(dst, v)     raw: every element of the (possibly strided) dst = v.
//   copy_to(src, dtype, device)  differentiable: a new contiguous tensor; its gradient is cast/moved back.
#pragma once
#include "core/tensor.h"

namespace stereort {

void copy_into(const Tensor& dst, const Tensor& src);
void fill_into(const Tensor& dst, double value);
Tensor copy_to(const Tensor& src, DType dtype, Device device);

namespace cuda {
// Same-device CUDA copy with cast and broadcast (src already viewed at dst's shape).
void copy_strided(const Tensor& dst, const Tensor& src, const Context& ctx);
void fill(const Tensor& dst, double value, const Context& ctx);
void memcpy_d2h(void* dst, const void* src, size_t nbytes, const Context& ctx);  // synchronises
void memcpy_h2d(void* dst, const void* src, size_t nbytes, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
