// ops/dispatch.h — dtype -> C++ type dispatch for CPU code, and scalar conversions.
//   dispatch_all(dt, f)    calls f(TypeTag<T>{}) for every DType (Half/BFloat16 are the host storage types).
//   dispatch_float(dt, op, f)  F64 and F32 only; CPU references compute F16/BF16 by upcasting to F32 first
//                              (see cpu_float_dtype), so kernels need only these two.
//   to_d(x) / from_d<T>(v): widen any element type to double and back (round-to-nearest for 16-bit floats).
#pragma once
#include <cstdint>

#include "core/check.h"
#include "core/dtype.h"

namespace stereort {

template <typename T>
struct TypeTag {
  using type = T;
};

template <typename F>
decltype(auto) dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::F64: return f(TypeTag<double>{});
    case DType::F32: return f(TypeTag<float>{});
    case DType::F16: return f(TypeTag<Half>{});
    case DType::BF16: return f(TypeTag<BFloat16>{});
    case DType::I64: return f(TypeTag<int64_t>{});
    case DType::I32: return f(TypeTag<int32_t>{});
    case DType::U8: return f(TypeTag<uint8_t>{});
    case DType::Bool: return f(TypeTag<bool>{});
  }
  STEREORT_FAIL("dispatch_all: bad dtype {}", int(t));
}

template <typename F>
decltype(auto) dispatch_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F64: return f(TypeTag<double>{});
    case DType::F32: return f(TypeTag<float>{});
    default: STEREORT_FAIL("{}: CPU kernel needs f32 or f64, got {}", op, dtype_name(t));
  }
}

inline double to_d(double x) { return x; }
inline double to_d(float x) { return x; }
inline double to_d(Half x) { return double(float(x)); }
inline double to_d(BFloat16 x) { return double(float(x)); }
inline double to_d(int64_t x) { return double(x); }
inline double to_d(int32_t x) { return x; }
inline double to_d(uint8_t x) { return x; }
inline double to_d(bool x) { return x ? 1.0 : 0.0; }

template <typename T>
inline T from_d(double v) { return T(v); }
template <>
inline Half from_d<Half>(double v) { return Half(float(v)); }
template <>
inline BFloat16 from_d<BFloat16>(double v) { return BFloat16(float(v)); }
template <>
inline bool from_d<bool>(double v) { return v != 0; }

// The dtype a CPU reference computes in for an input of dtype t (16-bit floats widen to F32).
inline DType cpu_float_dtype(DType t) { return dtype_is_half(t) ? DType::F32 : t; }

}  // namespace stereort
