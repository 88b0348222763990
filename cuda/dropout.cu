// cuda/dropout.cu — dropout mask-and-scale and the drop_path per-sample scales (see ops/dropout.h).
//   One thread per group of 4 consecutive elements: one Philox4x32-10 block gives their 4 uniforms (words x, y, z, w =
//   elements 4g .. 4g+3), the same counters the CPU loop and philox::uniform use. Kept values are one multiply
//   x * scale in opmath with round-to-nearest (__fmul_rn / __dmul_rn, never contracted), so CPU and GPU agree bit for
//   bit.
#include "core/rng.h"
#include "cuda/common.cuh"
#include "ops/dropout.h"

namespace stereort {
namespace cuda {
namespace {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

template <typename T>
__global__ void dropout_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t n, uint64_t seed, uint64_t offset,
                               float keep_prob, opmath_t<T> scale) {
  int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; g < groups; g += int64_t(gridDim.x) * blockDim.x) {
    philox::U4 r = philox::draw(seed, offset, uint64_t(g));
    uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      int64_t i = g * 4 + j;
      if (i < n)
        out[i] = philox::u32_to_uniform(w[j]) < keep_prob ? from_op<T>(mul_rn(to_op(x[i]), scale)) : from_op<T>(0.0f);
    }
  }
}

template <typename T>
__global__ void drop_path_scale_kernel(T* __restrict__ scale, int64_t batch, uint64_t seed, uint64_t offset,
                                       float keep_prob, opmath_t<T> value) {
  for (int64_t b = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; b < batch; b += int64_t(gridDim.x) * blockDim.x)
    scale[b] = from_op<T>(philox::uniform(seed, offset, uint64_t(b)) < keep_prob ? value : opmath_t<T>(0));
}

}  // namespace

void dropout_apply(const Tensor& out, const Tensor& x, uint64_t seed, uint64_t offset, float keep_prob, double scale,
                   const Context& ctx) {
  int64_t n = x.numel();
  dispatch_cuda_float64(x.dtype(), "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dropout_kernel<T><<<grid_1d((n + 3) / 4), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), n, seed, offset, keep_prob,
        opmath_t<T>(scale));
  });
  STEREORT_LAUNCH_CHECK("dropout_kernel");
}

void drop_path_scale(const Tensor& scale, uint64_t seed, uint64_t offset, float keep_prob, double value,
                     const Context& ctx) {
  int64_t batch = scale.numel();
  dispatch_cuda_float64(scale.dtype(), "drop_path", [&](auto tag) {
    using T = typename decltype(tag)::type;
    drop_path_scale_kernel<T><<<grid_1d(batch), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(scale.data_ptr()), batch, seed, offset, keep_prob, opmath_t<T>(value));
  });
  STEREORT_LAUNCH_CHECK("drop_path_scale_kernel");
}

}  // namespace cuda
}  // namespace stereort
