// cuda/regression.cu — fused soft-argmin with trilinear upsampling (inference; definitions in ops/regression.h).
//   One thread per output pixel (b, y, x), x fastest. The thread computes its bilinear (y, x) taps once, then walks
//   the out_d bins in order: bin d interpolates two low-resolution levels k0(d) <= k1(d), each the bilinear value of
//   the 2x2 stencil at that level. Levels are met in non-decreasing order, so a two-entry cache loads every level at
//   most once (4 gathers through L1/L2; neighbouring pixels share their stencils). The softmax is online in fp32:
//   running max m, s = sum e^(v-m), sd = sum d e^(v-m), each e^u as exp2f(u log2 e) — one exp2 per bin (a new
//   maximum rescales with the exp2 of that bin). The (B, out_d, H, W) volume is never written.
//   The per-bin taps (k0, k1, w1) are the same for every pixel: a block computes them once into shared memory.
//   Taps follow PyTorch's align_corners=False map in float: src = max((dst + 0.5) * (in/out) - 0.5, 0).
//   regression_x4_kernel is the fast path for exact x4 upsampling in d and x (one exp2 per level instead of per bin);
//   STEREORT_REGRESSION_GENERIC=1 forces the general kernel.
#include <cstdlib>
#include <string>

#include "cuda/common.cuh"
#include "ops/regression.h"

namespace stereort {
namespace cuda {
namespace {

struct Tap {
  int i0, i1;
  float w1;
};

// PyTorch area_pixel_compute_scale / area_pixel_compute_source_index (linear, align_corners false) in float.
__device__ __forceinline__ Tap linear_tap(int dst, int in, int out) {
  const float scale = float(in) / float(out);
  float src = __fmul_rn(scale, float(dst) + 0.5f) - 0.5f;
  src = src < 0.f ? 0.f : src;
  Tap t;
  t.i0 = int(src);
  t.i1 = t.i0 < in - 1 ? t.i0 + 1 : t.i0;
  t.w1 = src - float(t.i0);
  return t;
}

template <typename T>
__global__ void regression_fused_kernel(float* disp, const T* cost, int64_t B, int D, int h, int w, int OD, int H,
                                        int W) {
  extern __shared__ float4 taps4[];
  int2* sk = reinterpret_cast<int2*>(taps4);      // [OD] (k0, k1)
  float* sw = reinterpret_cast<float*>(sk + OD);  // [OD] w1
  for (int d = threadIdx.x; d < OD; d += blockDim.x) {
    const Tap t = linear_tap(d, D, OD);
    sk[d] = make_int2(t.i0, t.i1);
    sw[d] = t.w1;
  }
  __syncthreads();
  const int64_t n = B * int64_t(H) * W;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int x = int(p % W), y = int((p / W) % H);
    const int64_t b = p / (int64_t(W) * H);
    const Tap ty = linear_tap(y, h, H), tx = linear_tap(x, w, W);
    const float wy0 = 1.f - ty.w1, wx0 = 1.f - tx.w1;
    const T* base = cost + b * D * int64_t(h) * w;
    const int64_t o00 = int64_t(ty.i0) * w + tx.i0, o01 = int64_t(ty.i0) * w + tx.i1;
    const int64_t o10 = int64_t(ty.i1) * w + tx.i0, o11 = int64_t(ty.i1) * w + tx.i1;
    const int64_t plane = int64_t(h) * w;
    // bilinear value of level k at this pixel (PyTorch's order: h outer, w inner)
    auto level = [&](int k) {
      const T* c = base + k * plane;
      return wy0 * (wx0 * to_op(__ldg(c + o00)) + tx.w1 * to_op(__ldg(c + o01))) +
             ty.w1 * (wx0 * to_op(__ldg(c + o10)) + tx.w1 * to_op(__ldg(c + o11)));
    };
    int ka = -1, kb = -1;  // two-entry cache, kb the most recent
    float va = 0.f, vb = 0.f;
    auto get = [&](int k) {
      if (k == kb) return vb;
      if (k == ka) return va;
      const float v = level(k);
      ka = kb;
      va = vb;
      kb = k;
      vb = v;
      return v;
    };
    float m = -INFINITY, s = 0.f, sd = 0.f;
    for (int d = 0; d < OD; ++d) {
      const int2 k = sk[d];
      const float w1 = sw[d];
      const float v0 = get(k.x), v1 = get(k.y);
      const float v = (1.f - w1) * v0 + w1 * v1;
      if (v > m) {
        const float r = exp2f((m - v) * kLog2e);  // 0 for the first bin (m = -inf)
        s = s * r + 1.f;
        sd = sd * r + float(d);
        m = v;
      } else {
        const float e = exp2f((v - m) * kLog2e);
        s += e;
        sd = fmaf(float(d), e, sd);
      }
    }
    disp[p] = sd / s;
  }
}

// Exact x4 fast path (out_d == 4 D and W == 4 w, any H): StereoMamba's 48 -> 192 bins at 1/4 -> full width.
//   With scale 1/4 and align_corners false, bin d' = 4k - 2 + j (j = 0..3) lies between levels k-1 and k at the
//   fraction f_j = (2j + 1) / 8; bins 0, 1 are level 0 and bins 4D-2, 4D-1 are level D-1 (clamped). So, with the
//   running maximum m and r_k = e^{(s_k - m)/8},  e^{(1-f) s_{k-1} + f s_k - m} = r_{k-1}^{8-(2j+1)} r_k^{2j+1}:
//   one exp2 per level (48 per pixel instead of 192) and a few multiplies (r, r^3, r^5, r^7). The maximum over the
//   levels is the maximum over the bins (interpolation never overshoots); a first pass finds it exactly per pixel
//   (loads + max only), so the second pass has no branch and every r <= 1. Results differ from the per-bin formula by fp32 rounding only (the interpolated value is
//   not rounded before the exp).
//   Along x the same holds: output x' = 4i - 2 + j interpolates source columns i-1 and i at f_j, so one thread
//   owns the four outputs of "quad" i (i = 0..w, clamped at both ends) and loads 4 values per level for all four.
//   Thread layout: (b, y, i), i fastest; w + 1 quads per row.
template <typename T>
__global__ void regression_x4_kernel(float* disp, const T* cost, int64_t B, int D, int h, int w, int H) {
  constexpr float kC8 = 1.4426950408889634f / 8.f;  // log2(e) / 8
  const int W = 4 * w, nq = w + 1;
  const int64_t n = B * int64_t(H) * nq;
  const int64_t plane = int64_t(h) * w;
  for (int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; p < n; p += int64_t(gridDim.x) * blockDim.x) {
    const int i = int(p % nq), y = int((p / nq) % H);
    const int64_t b = p / (int64_t(nq) * H);
    const Tap ty = linear_tap(y, h, H);
    const int xa = i > 0 ? i - 1 : 0, xb = i < w ? i : w - 1;
    const float wy1 = ty.w1, wy0 = 1.f - ty.w1;
    const T* base = cost + b * D * plane;
    const int64_t oa0 = int64_t(ty.i0) * w + xa, ob0 = int64_t(ty.i0) * w + xb;
    const int64_t oa1 = int64_t(ty.i1) * w + xa, ob1 = int64_t(ty.i1) * w + xb;
    // level k at this quad: column values a (source x = xa) and b (x = xb); pixel j sees a + f_j (b - a)
    auto level = [&](int k, float& a, float& dab) {
      const T* c = base + k * plane;
      a = wy0 * to_op(__ldg(c + oa0)) + wy1 * to_op(__ldg(c + oa1));
      dab = wy0 * to_op(__ldg(c + ob0)) + wy1 * to_op(__ldg(c + ob1)) - a;
    };
    // pass 1: the exact maximum over the levels of each pixel (= its maximum over the bins)
    float m[4];
    {
      float ca, dc;
      level(0, ca, dc);
#pragma unroll
      for (int j = 0; j < 4; ++j) m[j] = fmaf(0.125f + 0.25f * j, dc, ca);
#pragma unroll 4
      for (int k = 1; k < D; ++k) {
        level(k, ca, dc);
#pragma unroll
        for (int j = 0; j < 4; ++j) m[j] = fmaxf(m[j], fmaf(0.125f + 0.25f * j, dc, ca));
      }
    }
    // pass 2: r_k = e^{(s_k - m)/8} <= 1, bins from r_{k-1} and r_k; bins 0, 1 are level 0 (e = r_0^8)
    float S[4], SD[4], q1[4], q3[4], q5[4], q7[4];
    {
      float ca, dc;
      level(0, ca, dc);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float r = exp2f((fmaf(0.125f + 0.25f * j, dc, ca) - m[j]) * kC8), r2 = r * r;
        q1[j] = r;
        q3[j] = r2 * r;
        q5[j] = q3[j] * r2;
        q7[j] = q5[j] * r2;
        const float e = q7[j] * r;
        S[j] = 2.f * e;
        SD[j] = e;
      }
    }
#pragma unroll 2
    for (int k = 1; k < D; ++k) {
      float ca, dc;
      level(k, ca, dc);
      const float dk = float(4 * k - 2);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float r = exp2f((fmaf(0.125f + 0.25f * j, dc, ca) - m[j]) * kC8);
        const float r2 = r * r, r3 = r2 * r, r5 = r3 * r2, r7 = r5 * r2;
        const float e0 = q7[j] * r, e1 = q5[j] * r3, e2 = q3[j] * r5, e3 = q1[j] * r7;
        const float es = (e0 + e1) + (e2 + e3);
        S[j] += es;
        SD[j] = fmaf(dk, es, SD[j]) + (e1 + fmaf(2.f, e2, 3.f * e3));
        q1[j] = r;
        q3[j] = r3;
        q5[j] = r5;
        q7[j] = r7;
      }
    }
    float* o = disp + (b * H + y) * int64_t(W) + 4 * int64_t(i) - 2;
    const float dl = float(4 * D - 2);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int x = 4 * i - 2 + j;
      if (x < 0 || x >= W) continue;
      const float r8 = q7[j] * q1[j];  // bins 4D-2 and 4D-1: level D-1
      const float s = S[j] + 2.f * r8, sd = fmaf(2.f * dl + 1.f, r8, SD[j]);
      o[j] = sd / s;
    }
  }
}

}  // namespace

void disparity_regression_fused_forward(const Tensor& disp, const Tensor& cost, int64_t out_d, const Context& ctx) {
  const int64_t B = cost.size(0), D = cost.size(1), h = cost.size(2), w = cost.size(3);
  const int64_t H = disp.size(1), W = disp.size(2);
  if (disp.numel() == 0) return;
  if (out_d > 16384 || H > INT32_MAX || W > INT32_MAX || D > INT32_MAX || h > INT32_MAX || w > INT32_MAX)
    STEREORT_THROW("disparity_regression_fused: CUDA kernel sizes out of range (out_d <= 16384 bins, the taps table "
                   "lives in shared memory; sizes < 2^31), got out_d " + std::to_string(out_d));
  const size_t smem = size_t(out_d) * (sizeof(int2) + sizeof(float));
  const bool x4 = out_d == 4 * D && W == 4 * w && std::getenv("STEREORT_REGRESSION_GENERIC") == nullptr;
  dispatch_cuda_float(cost.dtype(), "disparity_regression_fused", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if (x4) {
      const int64_t threads = B * H * (w + 1);
      regression_x4_kernel<T><<<grid_1d(threads), kThreads, 0, stream_of(ctx)>>>(
          static_cast<float*>(disp.data_ptr()), static_cast<const T*>(cost.data_ptr()), B, int(D), int(h), int(w),
          int(H));
      STEREORT_LAUNCH_CHECK("regression_x4_kernel");
      return;
    }
    if (smem > 48 * 1024)
      STEREORT_CUDA_CHECK(cudaFuncSetAttribute(reinterpret_cast<const void*>(&regression_fused_kernel<T>),
                                               cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    regression_fused_kernel<T><<<grid_1d(disp.numel()), kThreads, smem, stream_of(ctx)>>>(
        static_cast<float*>(disp.data_ptr()), static_cast<const T*>(cost.data_ptr()), B, int(D), int(h), int(w),
        int(out_d), int(H), int(W));
    STEREORT_LAUNCH_CHECK("regression_fused_kernel");
  });
}

}  // namespace cuda
}  // namespace stereort
