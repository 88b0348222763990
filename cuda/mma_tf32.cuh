// cuda/mma_tf32.cuh — fp32-accurate products on tensor cores: mma.sync m16n8k8 TF32 with fp32 accumulation, each
//   fp32 operand split into a TF32 high part and the rest ("3xTF32"; operands exact in TF32, such as f16/bf16 inputs,
//   skip their low part). Used by the SSD walks (cuda/ssd_walk_mma.cu) and the SSD backward (cuda/ssd_bwd.cu).
//   Fragments of m16n8k8 (g = lane / 4, t = lane % 4): A rows g, g + 8 and k t, t + 4; B k t, t + 4 and column g;
//   C/D rows g, g + 8 and columns 2t, 2t + 1. Callers may permute k inside a k-step as long as A and B agree.
#pragma once
#include <cstdint>

namespace stereort {
namespace cuda {

// The TF32 high part of x: its top 19 bits (sign, exponent, 10 mantissa bits), truncated. One LOP3, where
// cvt.rna.tf32.f32 compiles to five instructions on sm_90; NaN and Inf stay NaN and Inf. With lo = x - hi exact
// (|lo| < 2^-10 |x|) and the MMA reading lo's top 11 significant bits, a 3-product a b (hi hi + hi lo + lo hi)
// misses at most 3 * 2^-20 |a b|.
__device__ __forceinline__ float tf32_hi(float x) { return __uint_as_float(__float_as_uint(x) & 0xffffe000u); }

// A fragment's values as TF32 high parts and (unless exact) low parts.
template <int kE>
struct Frag {
  uint32_t hi[kE], lo[kE];
};
template <bool kExact, int kE>
__device__ __forceinline__ Frag<kE> split(const float (&v)[kE]) {
  Frag<kE> f;
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    if constexpr (kExact) {
      f.hi[e] = __float_as_uint(v[e]), f.lo[e] = 0u;
    } else {
      const float h = tf32_hi(v[e]);
      f.hi[e] = __float_as_uint(h), f.lo[e] = __float_as_uint(v[e] - h);
    }
  }
  return f;
}

__device__ __forceinline__ void mma_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// d += a b at fp32 accuracy: the small cross terms first, then hi x hi.
template <bool kAExact, bool kBExact>
__device__ __forceinline__ void mma3(float (&d)[4], const Frag<4>& a, const Frag<2>& b) {
  if constexpr (!kAExact) mma_tf32(d, a.lo, b.hi);
  if constexpr (!kBExact) mma_tf32(d, a.hi, b.lo);
  mma_tf32(d, a.hi, b.hi);
}

}  // namespace cuda
}  // namespace stereort
