// core/shape.cpp — shape helpers and the dtype name table.
#include "core/shape.h"

#include "core/check.h"
#include "core/dtype.h"

namespace stereort {

std::string shape_str(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + ")";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int i = int(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(s[i], 1);
  }
  return st;
}

int normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  STEREORT_CHECK(d >= 0 && d < std::max<int64_t>(ndim, 1), "{}: dim {} is out of range for a {}-D tensor", op, dim,
                 ndim);
  return int(d);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    STEREORT_CHECK(da == db || da == 1 || db == 1,
                   "{}: shapes {} and {} do not broadcast (dim {}: {} vs {}); sizes must match or be 1", op,
                   shape_str(a), shape_str(b), i, da, db);
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::string Device::str() const { return kind == CPU ? "cpu" : "cuda:" + std::to_string(index); }

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda" || s == "gpu") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    try {
      return cuda(std::stoi(s.substr(5)));
    } catch (const std::exception&) {
    }
  }
  STEREORT_FAIL("unknown device '{}'; use cpu, cuda or cuda:N", s);
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F64: return "f64";
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I64: return "i64";
    case DType::I32: return "i32";
    case DType::U8: return "u8";
    case DType::Bool: return "bool";
  }
  return "?";
}

DType dtype_from_name(const std::string& s) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::U8, DType::Bool})
    if (s == dtype_name(t)) return t;
  if (s == "fp32" || s == "float32" || s == "float") return DType::F32;
  if (s == "fp16" || s == "float16" || s == "half") return DType::F16;
  if (s == "float64" || s == "double") return DType::F64;
  if (s == "bfloat16") return DType::BF16;
  STEREORT_FAIL("unknown dtype '{}'; use f64, f32, f16, bf16, i64, i32, u8 or bool", s);
}

double load_as_double(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::F64: return static_cast<const double*>(base)[i];
    case DType::F32: return static_cast<const float*>(base)[i];
    case DType::F16: return half_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case DType::BF16: return bf16_bits_to_float(static_cast<const uint16_t*>(base)[i]);
    case DType::I64: return double(static_cast<const int64_t*>(base)[i]);
    case DType::I32: return static_cast<const int32_t*>(base)[i];
    case DType::U8: return static_cast<const uint8_t*>(base)[i];
    case DType::Bool: return static_cast<const uint8_t*>(base)[i] ? 1.0 : 0.0;
  }
  return 0;
}

void store_from_double(void* base, DType t, int64_t i, double v) {
  switch (t) {
    case DType::F64: static_cast<double*>(base)[i] = v; break;
    case DType::F32: static_cast<float*>(base)[i] = float(v); break;
    case DType::F16: static_cast<uint16_t*>(base)[i] = float_to_half_bits(float(v)); break;
    case DType::BF16: static_cast<uint16_t*>(base)[i] = float_to_bf16_bits(float(v)); break;
    case DType::I64: static_cast<int64_t*>(base)[i] = int64_t(v); break;
    case DType::I32: static_cast<int32_t*>(base)[i] = int32_t(v); break;
    case DType::U8: static_cast<uint8_t*>(base)[i] = uint8_t(v); break;
    case DType::Bool: static_cast<uint8_t*>(base)[i] = v != 0 ? 1 : 0; break;
  }
}

}  // namespace stereort
