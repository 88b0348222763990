// cuda/copy.cu — strided copy with dtype conversion, fill, and host<->device transfers.
//   copy_strided: one thread per destination element (grid-stride), offsets from a coalesced StridedIndexer<2>;
//   contiguous same-dtype copies become cudaMemcpyAsync. Conversions go through float (double for F64) with
//   round-to-nearest, matching the CPU path bit for bit.
#include "cuda/common.cuh"
#include "ops/copy.h"
#include "ops/iter.h"

namespace stereort {
namespace cuda {
namespace {

template <typename T> __device__ __forceinline__ double load_d(const T* p) { return double(*p); }
template <> __device__ __forceinline__ double load_d(const __half* p) { return double(__half2float(*p)); }
template <> __device__ __forceinline__ double load_d(const __nv_bfloat16* p) { return double(__bfloat162float(*p)); }
template <> __device__ __forceinline__ double load_d(const bool* p) { return *p ? 1.0 : 0.0; }

template <typename T> __device__ __forceinline__ T store_d(double v) { return T(v); }
template <> __device__ __forceinline__ __half store_d(double v) { return __float2half_rn(float(v)); }
template <> __device__ __forceinline__ __nv_bfloat16 store_d(double v) { return __float2bfloat16_rn(float(v)); }
template <> __device__ __forceinline__ bool store_d(double v) { return v != 0; }

template <typename D, typename S>
__global__ void copy_kernel(D* dst, const S* src, int64_t n, StridedIndexer<2> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets_any(i, n, off);
    if constexpr (std::is_same<D, S>::value) dst[off[0]] = src[off[1]];
    else dst[off[0]] = store_d<D>(load_d<S>(src + off[1]));
  }
}

template <typename T>
__global__ void fill_kernel(T* dst, T v, int64_t n, StridedIndexer<1> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1];
    ix.offsets_any(i, n, off);
    dst[off[0]] = v;
  }
}

template <typename F>
void dispatch_dev_all(DType t, F&& f) {
  switch (t) {
    case DType::F64: f(TypeTag<double>{}); return;
    case DType::F32: f(TypeTag<float>{}); return;
    case DType::F16: f(TypeTag<__half>{}); return;
    case DType::BF16: f(TypeTag<__nv_bfloat16>{}); return;
    case DType::I64: f(TypeTag<int64_t>{}); return;
    case DType::I32: f(TypeTag<int32_t>{}); return;
    case DType::U8: f(TypeTag<uint8_t>{}); return;
    case DType::Bool: f(TypeTag<bool>{}); return;
  }
}

}  // namespace

void copy_strided(const Tensor& dst, const Tensor& src, const Context& ctx) {
  int64_t n = dst.numel();
  if (n == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    STEREORT_CUDA_CHECK(cudaMemcpyAsync(dst.data_ptr(), src.data_ptr(), dst.nbytes(), cudaMemcpyDeviceToDevice,
                                        stream_of(ctx)));
    return;
  }
  IterDims it = coalesce_dims(dst.shape(), {dst.strides(), src.strides()});
  StridedIndexer<2> ix = make_indexer<2>(it);
  dispatch_dev_all(dst.dtype(), [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    dispatch_dev_all(src.dtype(), [&](auto stag) {
      using S = typename decltype(stag)::type;
      copy_kernel<D, S><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(static_cast<D*>(dst.data_ptr()),
                                                                      static_cast<const S*>(src.data_ptr()), n, ix);
    });
  });
  STEREORT_LAUNCH_CHECK("copy_kernel");
}

void fill(const Tensor& dst, double value, const Context& ctx) {
  int64_t n = dst.numel();
  if (n == 0) return;
  IterDims it = coalesce_dims(dst.shape(), {dst.strides()});
  StridedIndexer<1> ix = make_indexer<1>(it);
  dispatch_dev_all(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T v;
    if constexpr (std::is_same<T, __half>::value) v = __float2half_rn(float(value));
    else if constexpr (std::is_same<T, __nv_bfloat16>::value) v = __float2bfloat16_rn(float(value));
    else if constexpr (std::is_same<T, bool>::value) v = value != 0;
    else v = T(value);
    fill_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(static_cast<T*>(dst.data_ptr()), v, n, ix);
  });
  STEREORT_LAUNCH_CHECK("fill_kernel");
}

void memcpy_d2h(void* dst, const void* src, size_t nbytes, const Context& ctx) {
  STEREORT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream_of(ctx)));
  STEREORT_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
}

void memcpy_h2d(void* dst, const void* src, size_t nbytes, const Context& ctx) {
  STEREORT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream_of(ctx)));
  // The host buffer may be pageable and freed right after; wait so the caller may reuse it.
  STEREORT_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
}

}  // namespace cuda
}  // namespace stereort
