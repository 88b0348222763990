// core/rng.h — counter-based Philox4x32-10 and the uniform/normal transforms, identical on CPU and GPU.
//   Stream for (seed, offset): element i of a fill uses Philox(counter = (i / k, offset), key = seed), k = 4 words
//   for uniform (word i % 4), k = 2 for normal (Box–Muller pair from words 0 and 1, element i takes z_{i%2}).
//   Bit-for-bit equality between host and device needs the same roundings: the transforms use only +, *, / and
//   sqrt written through the helpers below (no contraction into FMA on either side; __fmul_rn & co. on the device),
//   and their own log and sincos polynomials instead of the math libraries (which differ in the last ulp).
//   uniform: (u >> 8) * 2^-24 in [0, 1). normal: sqrt(-2 ln u1) * (cos, sin)(2 pi u2), u1 in (0, 1].
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define STEREORT_HD __host__ __device__ __forceinline__
#else
#define STEREORT_HD inline
#endif

namespace stereort {
namespace philox {

struct U4 { uint32_t x, y, z, w; };

STEREORT_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

STEREORT_HD U4 philox4x32_10(U4 c, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c.x, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c.z, &hi1);
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

STEREORT_HD U4 draw(uint64_t seed, uint64_t offset, uint64_t index) {
  U4 c{uint32_t(index), uint32_t(index >> 32), uint32_t(offset), uint32_t(offset >> 32)};
  return philox4x32_10(c, uint32_t(seed), uint32_t(seed >> 32));
}

// Rounded arithmetic that no compiler fuses.
#if defined(__CUDA_ARCH__)
STEREORT_HD float mul(float a, float b) { return __fmul_rn(a, b); }
STEREORT_HD float add(float a, float b) { return __fadd_rn(a, b); }
STEREORT_HD float dvd(float a, float b) { return __fdiv_rn(a, b); }
STEREORT_HD float sqrt_rn(float a) { return __fsqrt_rn(a); }
#else
STEREORT_HD float mul(float a, float b) { volatile float r = a * b; return r; }
STEREORT_HD float add(float a, float b) { volatile float r = a + b; return r; }
STEREORT_HD float dvd(float a, float b) { volatile float r = a / b; return r; }
float sqrt_rn_host(float a);  // core/rng.cpp: IEEE sqrt
STEREORT_HD float sqrt_rn(float a) { return sqrt_rn_host(a); }
#endif

STEREORT_HD float u32_to_uniform(uint32_t u) { return float(u >> 8) * 5.9604644775390625e-08f; }     // [0,1)
STEREORT_HD float u32_to_uniform_pos(uint32_t u) { return float((u >> 8) + 1) * 5.9604644775390625e-08f; }  // (0,1]

// ln(x) for x in (0, 1]; |error| ~ 1e-7 relative, same bits everywhere.
STEREORT_HD float log_det(float x) {
  union { float f; uint32_t u; } cv;
  cv.f = x;
  uint32_t b = cv.u;
  int e = int((b >> 23) & 0xff) - 127;
  union { float f; uint32_t u; } m;
  m.u = (b & 0x007fffffu) | 0x3f800000u;  // [1, 2)
  if (m.f > 1.41421356f) { m.f = mul(m.f, 0.5f); e += 1; }
  float f = add(m.f, -1.0f);
  float s = dvd(f, add(2.0f, f));
  float s2 = mul(s, s);
  // 2*(s + s^3/3 + s^5/5 + s^7/7 + s^9/9)
  float p = add(mul(s2, 0.11111111f), 0.14285714f);
  p = add(mul(s2, p), 0.2f);
  p = add(mul(s2, p), 0.33333333f);
  p = add(mul(s2, p), 1.0f);
  float lm = mul(mul(2.0f, s), p);
  return add(mul(float(e), 0.69314718f), lm);
}

// (sin, cos)(2*pi*u) for u in [0, 1).
STEREORT_HD void sincos_2pi_det(float u, float* s_out, float* c_out) {
  float u4 = mul(u, 4.0f);
  int q = int(u4);
  if (q > 3) q = 3;
  float t = add(u4, -float(q));                      // [0, 1)
  float a = mul(add(t, -0.5f), 1.57079633f);         // [-pi/4, pi/4)
  float a2 = mul(a, a);
  float sp = add(mul(a2, 2.7557319e-06f), -1.9841270e-04f);
  sp = add(mul(a2, sp), 8.3333333e-03f);
  sp = add(mul(a2, sp), -0.16666667f);
  float sa = add(a, mul(mul(a, a2), sp));
  float cp = add(mul(a2, -2.7557319e-07f), 2.4801587e-05f);
  cp = add(mul(a2, cp), -1.3888889e-03f);
  cp = add(mul(a2, cp), 4.1666667e-02f);
  cp = add(mul(a2, cp), -0.5f);
  float ca = add(1.0f, mul(a2, cp));
  const float r2 = 0.70710678f;
  float s = mul(add(sa, ca), r2), c = mul(add(ca, -sa), r2);  // angle a + pi/4
  switch (q) {
    case 0: *s_out = s; *c_out = c; break;
    case 1: *s_out = c; *c_out = -s; break;
    case 2: *s_out = -s; *c_out = -c; break;
    default: *s_out = -c; *c_out = s; break;
  }
}

STEREORT_HD float uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = draw(seed, offset, i >> 2);
  uint32_t w = (i & 3) == 0 ? r.x : (i & 3) == 1 ? r.y : (i & 3) == 2 ? r.z : r.w;
  return u32_to_uniform(w);
}

STEREORT_HD float normal(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = draw(seed, offset, i >> 1);
  float u1 = u32_to_uniform_pos(r.x), u2 = u32_to_uniform(r.y);
  float rad = sqrt_rn(mul(-2.0f, log_det(u1)));
  float s, c;
  sincos_2pi_det(u2, &s, &c);
  return mul(rad, (i & 1) ? s : c);
}

}  // namespace philox

// The process-wide training RNG (dropout masks, drop_path, augmentation): a seed and a running counter offset.
// Each consumer takes a fresh block of counters with rng_advance(n); checkpoints save and restore (seed, offset).
struct RngState {
  uint64_t seed = 0x5eed;
  uint64_t offset = 0;
};
RngState rng_state();
void rng_set_state(RngState s);
uint64_t rng_advance(uint64_t n);  // returns the offset to use; the state moves on by n

// Host-side fills (CPU tensors use these; CUDA kernels call philox::uniform/normal directly).
void philox_fill_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset);
void philox_fill_normal(float* out, int64_t n, uint64_t seed, uint64_t offset);

}  // namespace stereort
