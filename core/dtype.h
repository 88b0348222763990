// core/dtype.h — element types, their sizes and names, and host-side half/bfloat16 conversions.
//   DType: F64 (CPU references), F32, F16, BF16, I64, I32, U8, Bool.
//   Half and BFloat16 are 16-bit storage types; on the host they convert through float with round-to-nearest-even,
//   bit-compatible with CUDA's __half / __nv_bfloat16 (so a tensor copied between devices keeps its bits).
//   "opmath": half types compute in float (PyTorch's convention; kernels accumulate in fp32 or better).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace stereort {

enum class DType : uint8_t { F64, F32, F16, BF16, I64, I32, U8, Bool };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64: case DType::I64: return 8;
    case DType::F32: case DType::I32: return 4;
    case DType::F16: case DType::BF16: return 2;
    case DType::U8: case DType::Bool: return 1;
  }
  return 0;
}
constexpr bool dtype_is_floating(DType t) {
  return t == DType::F64 || t == DType::F32 || t == DType::F16 || t == DType::BF16;
}
constexpr bool dtype_is_half(DType t) { return t == DType::F16 || t == DType::BF16; }
const char* dtype_name(DType t);            // "f32", "bf16", ...
DType dtype_from_name(const std::string& s);  // inverse of dtype_name; throws on unknown names

// ---- 16-bit float storage types (host) ---------------------------------------------------------------------------
inline uint32_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline uint16_t float_to_half_bits(float f) {
  // IEEE binary16, round to nearest even; overflow -> inf, NaN stays NaN (quiet).
  uint32_t x = float_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | (absx > 0x7f800000u ? 0x7e00u : 0x7c00u));
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to >= 65520 -> inf
  if (absx < 0x38800000u) {                                  // subnormal half (or zero)
    // value = absx as float; half subnormal unit = 2^-24. Add 0.5 (=2^-1 in float) trick for RNE.
    float v = bits_float(absx) + 0.5f;                       // exponent forced so mantissa holds result
    return uint16_t(sign | (float_bits(v) - 0x3f000000u));
  }
  uint32_t mant_odd = (absx >> 13) & 1u;
  absx += 0xc8000fffu + mant_odd;                            // rebias exponent (-112<<23) and round
  return uint16_t(sign | (absx >> 13));
}
inline float half_bits_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0) {  // zero / subnormal: mant * 2^-24
    float v = float(mant) * 5.9604644775390625e-08f;
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7f800000u | (mant << 13));
  return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
}
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);
  return uint16_t(x >> 16);
}
inline float bf16_bits_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

struct Half {
  uint16_t bits = 0;
  Half() = default;
  explicit Half(float f) : bits(float_to_half_bits(f)) {}
  explicit operator float() const { return half_bits_to_float(bits); }
  static Half from_bits(uint16_t b) { Half h; h.bits = b; return h; }
};
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float f) : bits(float_to_bf16_bits(f)) {}
  explicit operator float() const { return bf16_bits_to_float(bits); }
  static BFloat16 from_bits(uint16_t b) { BFloat16 h; h.bits = b; return h; }
};

// Scalar value of element i of a raw buffer of dtype t, widened to double (CPU only; used by printing, item(),
// and the generic CPU paths).
double load_as_double(const void* base, DType t, int64_t i);
void store_from_double(void* base, DType t, int64_t i, double v);

}  // namespace stereort
