// ops/norm_util.h — small helpers shared by ops/norm.cpp and ops/norm_channel.cpp: parameter checks and the
// dtype conventions (statistics in f32, or f64 for f64 inputs; parameters of the input's dtype or f32).
#pragma once
#include "core/check.h"
#include "core/tensor.h"

namespace stereort {

// An optional per-channel parameter: undefined, or (C) on x's device with x's dtype or f32.
inline void norm_check_param(const char* op, const Tensor& p, const char* name, int64_t C, const Tensor& x,
                             const char* what) {
  if (!p.defined()) return;
  STEREORT_CHECK(p.dim() == 1 && p.size(0) == C, "{}: {} {} must be ({}) to match {} (input {})", op, name,
                 shape_str(p.shape()), C, what, shape_str(x.shape()));
  STEREORT_CHECK(p.device() == x.device(), "{}: {} {} is not on the input's device ({})", op, name, p.desc(),
                 x.desc());
  STEREORT_CHECK(p.dtype() == x.dtype() || p.dtype() == DType::F32,
                 "{}: {} {} must have the input's dtype or f32 (input {}); cast it with .to()", op, name, p.desc(),
                 x.desc());
}

inline DType norm_stat_dtype(DType x) { return x == DType::F64 ? DType::F64 : DType::F32; }

// Detached contiguous copy in dtype t (no copy when already so); undefined stays undefined.
inline Tensor norm_param_as(const Tensor& p, DType t) {
  return p.defined() ? p.detach().to(t).contiguous() : Tensor();
}
inline Tensor norm_param_f32(const Tensor& p) { return norm_param_as(p, DType::F32); }

}  // namespace stereort
