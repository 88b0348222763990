// ops/resample_taps.h — the per-axis taps of ops/resample.h (host + device inline), shared by the CPU reference and
// cuda/resample.cu so both pick identical indices and weights.
//   resample_taps<M, O>(axis, dst, idx, w): fills kResampleTaps<M> (index, weight) pairs for output position dst.
//   O is the op type (float, or double for f64). Products and sums use round-to-nearest intrinsics on the device and
//   plain operators on the host (the library is built with -ffp-contract=off), so no FMA contraction changes a floor.
//   For each tap k, idx[k] is non-decreasing in dst (the gather backward relies on this).
#pragma once
#include <cmath>
#include <cstdint>

#include "ops/resample.h"

#if defined(__CUDACC__)
#define STEREORT_RS_HDI __host__ __device__ __forceinline__
#else
#define STEREORT_RS_HDI inline
#endif

namespace stereort {

template <ResampleMode M>
constexpr int kResampleTaps = M == ResampleMode::Nearest ? 1 : (M == ResampleMode::Linear ? 2 : 4);

namespace resample_detail {

STEREORT_RS_HDI float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
STEREORT_RS_HDI double mul_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
STEREORT_RS_HDI float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
STEREORT_RS_HDI double add_rn(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

template <typename O> STEREORT_RS_HDI O axis_scale(const ResampleAxis& a);
template <> STEREORT_RS_HDI float axis_scale<float>(const ResampleAxis& a) { return a.scale_f; }
template <> STEREORT_RS_HDI double axis_scale<double>(const ResampleAxis& a) { return a.scale; }

// ATen area_pixel_compute_source_index (without the clamp at 0, which only the linear modes apply).
template <typename O>
STEREORT_RS_HDI O source_coord(const ResampleAxis& a, int64_t dst) {
  O s = axis_scale<O>(a);
  if (a.align_corners) return mul_rn(s, O(dst));
  return add_rn(mul_rn(s, add_rn(O(dst), O(0.5))), O(-0.5));
}

// Keys cubic convolution kernel, A = -0.75 (ATen cubic_convolution1 for |x| <= 1, cubic_convolution2 for 1 < |x| < 2).
template <typename O>
STEREORT_RS_HDI O cubic_near(O x) {  // ((A + 2) x - (A + 3)) x^2 + 1
  const O A = O(-0.75);
  return add_rn(mul_rn(mul_rn(add_rn(mul_rn(add_rn(A, O(2)), x), -add_rn(A, O(3))), x), x), O(1));
}
template <typename O>
STEREORT_RS_HDI O cubic_far(O x) {  // ((A x - 5A) x + 8A) x - 4A
  const O A = O(-0.75);
  O r = add_rn(mul_rn(A, x), -mul_rn(O(5), A));
  r = add_rn(mul_rn(r, x), mul_rn(O(8), A));
  return add_rn(mul_rn(r, x), -mul_rn(O(4), A));
}

}  // namespace resample_detail

template <ResampleMode M, typename O>
STEREORT_RS_HDI void resample_taps(const ResampleAxis& a, int64_t dst, int64_t* idx, O* w) {
  using namespace resample_detail;
  if constexpr (M == ResampleMode::Nearest) {
    // ATen nearest_idx: float scale for every dtype; exact shortcuts for same size and exact 2x.
    int64_t i;
    if (a.out == a.in) i = dst;
    else if (a.out == 2 * a.in) i = dst >> 1;
    else {
      i = int64_t(floorf(mul_rn(float(dst), a.scale_f)));
      if (i > a.in - 1) i = a.in - 1;
    }
    idx[0] = i;
    w[0] = O(1);
  } else if constexpr (M == ResampleMode::Linear) {
    O src = source_coord<O>(a, dst);
    if (src < O(0)) src = O(0);
    int64_t i0 = int64_t(src);  // src >= 0: truncation is floor
    O l1 = add_rn(src, -O(i0));
    idx[0] = i0;
    idx[1] = i0 < a.in - 1 ? i0 + 1 : i0;
    w[0] = add_rn(O(1), -l1);
    w[1] = l1;
  } else {
    O src = source_coord<O>(a, dst);
    O fl = floor(src);
    int64_t i = int64_t(fl);
    O t = add_rn(src, -fl);
    O t2 = add_rn(O(1), -t);
    w[0] = cubic_far<O>(add_rn(t, O(1)));
    w[1] = cubic_near<O>(t);
    w[2] = cubic_near<O>(t2);
    w[3] = cubic_far<O>(add_rn(t2, O(1)));
    for (int k = 0; k < 4; ++k) {  // constant trip count: unrolled by the compiler
      int64_t j = i - 1 + k;
      idx[k] = j < 0 ? 0 : (j > a.in - 1 ? a.in - 1 : j);
    }
  }
}

}  // namespace stereort
