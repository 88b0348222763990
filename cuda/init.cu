// cuda/init.cu — Philox fills on the GPU; same counters and roundings as ops/init.cpp (bit-identical results).
#include "core/rng.h"
#include "cuda/common.cuh"
#include "ops/init.h"

namespace stereort {
namespace cuda {
namespace {

template <typename T> __device__ __forceinline__ T store_from_double(double v) { return T(v); }
template <> __device__ __forceinline__ __half store_from_double(double v) { return __float2half_rn(float(v)); }
template <> __device__ __forceinline__ __nv_bfloat16 store_from_double(double v) {
  return __float2bfloat16_rn(float(v));
}

template <typename T>
__global__ void philox_fill_kernel(T* out, int64_t n, int kind, double scale, double shift, uint64_t seed,
                                   uint64_t offset) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    float u = kind == 0 ? philox::uniform(seed, offset, uint64_t(i)) : philox::normal(seed, offset, uint64_t(i));
    out[i] = store_from_double<T>(__dadd_rn(__dmul_rn(double(u), scale), shift));
  }
}

}  // namespace

void philox_fill(const Tensor& t, int kind, double a, double b, uint64_t seed, uint64_t offset, const Context& ctx) {
  int64_t n = t.numel();
  double scale = kind == 0 ? b - a : b, shift = a;
  dispatch_cuda_float64(t.dtype(), "philox_fill", [&](auto tag) {
    using T = typename decltype(tag)::type;
    philox_fill_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(static_cast<T*>(t.data_ptr()), n, kind, scale,
                                                                        shift, seed, offset);
  });
  STEREORT_LAUNCH_CHECK("philox_fill_kernel");
}

}  // namespace cuda
}  // namespace stereort
