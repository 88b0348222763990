// cuda/warp.cu — horizontal warp (definitions in ops/warp.h).
//   Forward and ddisp: one thread per (b, y, x), looping over channels — the disparity is read once, reads and writes
//   are coalesced along x, and ddisp is a per-pixel gather (no atomics). dimg is a scatter (a source pixel can feed
//   any number of outputs), done with fp32 atomicAdd into a zeroed fp32 buffer (dimg itself for f32, a scratch buffer
//   cast afterwards for f16/bf16); the summation order, and so the last bits, vary run to run.
#include "cuda/common.cuh"
#include "ops/warp.h"

namespace stereort {
namespace cuda {
namespace {

struct Tap {
  int x0;
  float a;
  bool valid;
};
// Taps of p = x + d. The integer and fractional parts of d are split first: d - floor(d) is exact in float, whereas
// rounding x + d to float would cost up to 2^-10 px of weight at x ~ 1e4.
__device__ __forceinline__ Tap tap_at(int x, float d, int W) {
  const float f = floorf(d);
  if (!(f >= float(-1 - x) && f <= float(W - 1 - x))) return {0, 0.f, false};  // both taps outside (or NaN / inf)
  return {x + int(f), d - f, true};
}

template <typename T>
__global__ void warp_forward_kernel(T* out, const T* img, const T* disp, int64_t B, int64_t C, int64_t H, int W) {
  const int64_t n = B * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int x = int(i % W);
    const int64_t by = i / W, b = by / H, y = by % H;
    const Tap t = tap_at(x, to_op(disp[i]), W);
    for (int64_t c = 0; c < C; ++c) {
      const int64_t row = ((b * C + c) * H + y) * W;
      float v = 0.f;
      if (t.valid && t.x0 >= 0) v += (1.f - t.a) * to_op(img[row + t.x0]);
      if (t.valid && t.x0 + 1 < W) v += t.a * to_op(img[row + t.x0 + 1]);
      out[row + x] = from_op<T>(v);
    }
  }
}

template <typename T>
__global__ void warp_backward_kernel(float* dimg, T* ddisp, const T* dout, const T* img, const T* disp, int64_t B,
                                     int64_t C, int64_t H, int W) {
  const int64_t n = B * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int x = int(i % W);
    const int64_t by = i / W, b = by / H, y = by % H;
    const Tap t = tap_at(x, to_op(disp[i]), W);
    float dd = 0.f;
    for (int64_t c = 0; c < C && t.valid; ++c) {
      const int64_t row = ((b * C + c) * H + y) * W;
      const float g = to_op(dout[row + x]);
      const float i0 = t.x0 >= 0 ? to_op(img[row + t.x0]) : 0.f;
      const float i1 = t.x0 + 1 < W ? to_op(img[row + t.x0 + 1]) : 0.f;
      if (t.x0 >= 0) atomicAdd(dimg + row + t.x0, (1.f - t.a) * g);
      if (t.x0 + 1 < W) atomicAdd(dimg + row + t.x0 + 1, t.a * g);
      dd += g * (i1 - i0);
    }
    ddisp[i] = from_op<T>(dd);
  }
}

template <typename T>
__global__ void cast_from_f32_kernel(T* out, const float* in, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = from_op<T>(in[i]);
}

}  // namespace

void warp_horizontal_forward(const Tensor& out, const Tensor& img, const Tensor& disp, const Context& ctx) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  if (out.numel() == 0) return;
  dispatch_cuda_float(img.dtype(), "warp_horizontal", [&](auto tag) {
    using T = typename decltype(tag)::type;
    warp_forward_kernel<T><<<grid_1d(B * H * W), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(img.data_ptr()), static_cast<const T*>(disp.data_ptr()),
        B, C, H, int(W));
    STEREORT_LAUNCH_CHECK("warp_forward_kernel");
  });
}

void warp_horizontal_backward(const Tensor& dimg, const Tensor& ddisp, const Tensor& dout, const Tensor& img,
                              const Tensor& disp, const Context& ctx) {
  const int64_t B = img.size(0), C = img.size(1), H = img.size(2), W = img.size(3);
  if (dimg.numel() == 0) return;
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float(img.dtype(), "warp_horizontal backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const bool f32 = img.dtype() == DType::F32;
    const size_t bytes = size_t(dimg.numel()) * sizeof(float);
    float* acc = f32 ? static_cast<float*>(dimg.data_ptr())
                     : static_cast<float*>(cuda_caching_alloc(bytes, ctx.device.index, ctx.stream));
    STEREORT_CUDA_CHECK(cudaMemsetAsync(acc, 0, bytes, st));
    warp_backward_kernel<T><<<grid_1d(B * H * W), kThreads, 0, st>>>(
        acc, static_cast<T*>(ddisp.data_ptr()), static_cast<const T*>(dout.data_ptr()),
        static_cast<const T*>(img.data_ptr()), static_cast<const T*>(disp.data_ptr()), B, C, H, int(W));
    STEREORT_LAUNCH_CHECK("warp_backward_kernel");
    if (!f32) {
      cast_from_f32_kernel<T><<<grid_1d(dimg.numel()), kThreads, 0, st>>>(static_cast<T*>(dimg.data_ptr()), acc,
                                                                          dimg.numel());
      STEREORT_LAUNCH_CHECK("cast_from_f32_kernel");
      cuda_caching_free(acc, ctx.device.index);  // stream-ordered reuse keeps this safe
    }
  });
}

}  // namespace cuda
}  // namespace stereort
