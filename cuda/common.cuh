// cuda/common.cuh — shared helpers for every kernel file: context casts, launch geometry, fast exp2, opmath
// conversions, dtype dispatch, strided indexing and warp/block reductions.
//   opmath: __half and __nv_bfloat16 compute in float; float in float; double in double.
//   dispatch_cuda_float(dt, op, f): calls f(TypeTag<T>{}) for T in {float, __half, __nv_bfloat16} (+ double with
//   dispatch_cuda_float64). Kernels are launched on ctx.stream and followed by STEREORT_LAUNCH_CHECK.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/context.h"
#include "core/dtype.h"
#include "core/error.h"
#include "ops/iter.h"

namespace stereort {
namespace cuda {

template <typename T>
struct TypeTag {
  using type = T;
};

inline cudaStream_t stream_of(const Context& ctx) { return static_cast<cudaStream_t>(ctx.stream); }

constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int kThreads = 256;
// Grid for a grid-stride loop over n items: enough blocks to fill the GPU, never more than needed.
inline unsigned grid_1d(int64_t n, int threads = kThreads) {
  int64_t g = ceil_div(n, threads);
  if (g > 65535LL * 32) g = 65535LL * 32;
  return unsigned(g < 1 ? 1 : g);
}

// ---- fast exponentials -----------------------------------------------------------------------------------------------
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
// Streaming multiprocessors of the current device (launch planning).
inline int sm_count() {
  int dev = 0, n = 0;
  STEREORT_CUDA_CHECK(cudaGetDevice(&dev));
  STEREORT_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n > 0 ? n : 132;
}

// 2^x by the MUFU unit (ex2.approx.ftz: ~2 ulp, denormal results flushed to 0); exp(x) = exp2_approx(x * kLog2e).
__device__ __forceinline__ float exp2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// 16-byte asynchronous global -> shared copy (cp.async.cg, sm_80+); valid == false writes 16 zero bytes and reads
// nothing (gmem must still be a mapped address). Ordered like memory accesses for the compiler ("memory" clobbers);
// other threads see the data after cp_async_wait and a barrier.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
               :
               : "r"(static_cast<unsigned>(__cvta_generic_to_shared(smem))), "l"(gmem), "r"(valid ? 16 : 0)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Wait until at most N of this thread's committed groups are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// ---- opmath ----------------------------------------------------------------------------------------------------------
template <typename T> struct OpMath { using type = float; };
template <> struct OpMath<double> { using type = double; };
template <typename T> using opmath_t = typename OpMath<T>::type;

__device__ __forceinline__ float to_op(float x) { return x; }
__device__ __forceinline__ double to_op(double x) { return x; }
__device__ __forceinline__ float to_op(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_op(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename T> __device__ __forceinline__ T from_op(float x);
template <> __device__ __forceinline__ float from_op<float>(float x) { return x; }
template <> __device__ __forceinline__ double from_op<double>(float x) { return x; }
template <> __device__ __forceinline__ __half from_op<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_op<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <typename T> __device__ __forceinline__ T from_op(double x) { return from_op<T>(float(x)); }
template <> __device__ __forceinline__ double from_op<double>(double x) { return x; }

template <typename F>
void dispatch_cuda_float(DType t, const char* op, F&& f) {
  switch (t) {
    case DType::F32: f(TypeTag<float>{}); return;
    case DType::F16: f(TypeTag<__half>{}); return;
    case DType::BF16: f(TypeTag<__nv_bfloat16>{}); return;
    default:
      throw_error(__FILE__, __LINE__, op, std::string(op) + ": CUDA kernel supports f32, f16, bf16; got " +
                                              dtype_name(t));
  }
}
template <typename F>
void dispatch_cuda_float64(DType t, const char* op, F&& f) {
  if (t == DType::F64) { f(TypeTag<double>{}); return; }
  dispatch_cuda_float(t, op, f);
}

// ---- strided N-d indexing ------------------------------------------------------------------------------------------
constexpr int kMaxDims = 8;
template <int NT>  // number of tensors sharing the index space
struct StridedIndexer {
  int ndim;
  int64_t sizes[kMaxDims];
  int64_t strides[NT][kMaxDims];
  __device__ __forceinline__ void offsets(int64_t linear, int64_t* out) const {
#pragma unroll
    for (int t = 0; t < NT; ++t) out[t] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      int64_t i = linear % sizes[d];
      linear /= sizes[d];
#pragma unroll
      for (int t = 0; t < NT; ++t) out[t] += i * strides[t][d];
    }
  }
  // Same with 32-bit division (several times cheaper on the GPU); valid when numel < 2^32.
  __device__ __forceinline__ void offsets32(uint32_t linear, int64_t* out) const {
#pragma unroll
    for (int t = 0; t < NT; ++t) out[t] = 0;
    for (int d = ndim - 1; d >= 0; --d) {
      uint32_t sz = uint32_t(sizes[d]);
      uint32_t q = linear / sz, i = linear - q * sz;
      linear = q;
#pragma unroll
      for (int t = 0; t < NT; ++t) out[t] += int64_t(i) * strides[t][d];
    }
  }
  __device__ __forceinline__ void offsets_any(int64_t linear, int64_t n, int64_t* out) const {
    if (n < (int64_t(1) << 32)) offsets32(uint32_t(linear), out);
    else offsets(linear, out);
  }
};

template <int NT>
inline StridedIndexer<NT> make_indexer(const IterDims& it) {
  if (it.sizes.size() > size_t(kMaxDims))
    throw_error(__FILE__, __LINE__, "make_indexer", "strided kernel: more than 8 non-mergeable dims");
  StridedIndexer<NT> ix{};
  ix.ndim = int(it.sizes.size());
  for (int d = 0; d < ix.ndim; ++d) {
    ix.sizes[d] = it.sizes[d];
    for (int t = 0; t < NT; ++t) ix.strides[t][d] = it.strides[t][d];
  }
  return ix;
}

// ---- reductions ----------------------------------------------------------------------------------------------------
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = ::max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
// v[0..kV) summed over the kLanes lanes (aligned group) of a lane: reduce-scatter by halves. Afterwards lane r of the
// group holds in v[0..kV/kLanes) the sums of positions (r % kLanes) * kV / kLanes + j.
template <int kLanes, int kV>
__device__ __forceinline__ void reduce_scatter(float (&v)[kV], int lane) {
  if constexpr (kLanes > 1) {
    constexpr int kHalf = kV / 2, kM = kLanes / 2;
    const bool up = lane & kM;
#pragma unroll
    for (int i = 0; i < kHalf; ++i) {
      const float lo = v[i], hi = v[i + kHalf];
      const float send = up ? lo : hi, keep = up ? hi : lo;
      v[i] = keep + __shfl_xor_sync(0xffffffffu, send, kM);
    }
    float w[kHalf];
#pragma unroll
    for (int i = 0; i < kHalf; ++i) w[i] = v[i];
    reduce_scatter<kM, kHalf>(w, lane);
#pragma unroll
    for (int i = 0; i < kHalf; ++i) v[i] = w[i];
  }
}

// Sum over the whole block; every thread gets the result. `smem` holds >= 32 values. blockDim.x % 32 == 0.
template <typename T>
__device__ __forceinline__ T block_sum(T v, T* smem) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < nwarps ? smem[lane] : T(0);
  v = warp_sum(v);
  return v;
}
template <typename T>
__device__ __forceinline__ T block_max(T v, T* smem) {
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) smem[warp] = v;
  __syncthreads();
  v = lane < nwarps ? smem[lane] : T(-INFINITY);
  v = warp_max(v);
  return v;
}

}  // namespace cuda
}  // namespace stereort
