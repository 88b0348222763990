// cuda/shape_ops.cu — kernels behind ops/shape_ops.h that are not a plain strided copy:
//   pad_forward            one thread per output element; each dim maps o -> o - left (Zero: outside -> value,
//                          Replicate: clamped into [0, n)).
//   pad_replicate_backward one thread per input element summing g over the box of outputs that copied it (a gather:
//                          no atomics, deterministic; the box is 1 element except at the edges).
//   index_gather           out[i] = x[x_off(i) + index[idx_off(i)] * stride_dim] (index_select and gather).
//   index_scatter_add      its adjoint with atomicAdd into an f32/f64 accumulator (repeated indices accumulate).
//   where                  broadcast select over a 3-operand StridedIndexer.
//   clamp_forward/backward element-wise, comparisons in double so the CPU and GPU agree exactly at the bounds.
// Out-of-range indices never touch memory: the output gets NaN (0 for integer types) and, when the caller passes a
// flag (STEREORT_SYNC_CHECK mode), the flag is set for the host to raise the error.
#include <cmath>

#include "cuda/common.cuh"
#include "ops/shape_ops.h"

namespace stereort {
namespace cuda {
namespace {

template <typename F>
void dispatch_values(DType t, const char* op, F&& f) {
  if (t == DType::I64) {
    f(TypeTag<int64_t>{});
    return;
  }
  dispatch_cuda_float64(t, op, f);
}
template <typename F>
void dispatch_index(DType t, const char* op, F&& f) {
  if (t == DType::I64) {
    f(TypeTag<int64_t>{});
    return;
  }
  if (t == DType::I32) {
    f(TypeTag<int32_t>{});
    return;
  }
  throw_error(__FILE__, __LINE__, op, std::string(op) + ": index must be I64 or I32, got " + dtype_name(t));
}

template <typename T>
__device__ __forceinline__ T invalid_value() {
  return from_op<T>(NAN);
}
template <>
__device__ __forceinline__ int64_t invalid_value<int64_t>() {
  return 0;
}

template <typename T>
__device__ __forceinline__ double to_double(T v) {
  return double(to_op(v));
}
template <typename T>
__device__ __forceinline__ T from_double(double v) {
  return from_op<T>(v);
}

// ---- pad -----------------------------------------------------------------------------------------------------------
struct PadParams {
  int ndim;
  int64_t out_sizes[kMaxDims];
  int64_t in_sizes[kMaxDims];
  int64_t in_strides[kMaxDims];
  int64_t left[kMaxDims];
};

template <typename T>
__global__ void pad_forward_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t n, PadParams p, bool replicate,
                                   T fill) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t rest = i, off = 0;
    bool inside = true;
    for (int d = p.ndim - 1; d >= 0; --d) {
      int64_t c = rest % p.out_sizes[d] - p.left[d];
      rest /= p.out_sizes[d];
      if (replicate)
        c = c < 0 ? 0 : (c >= p.in_sizes[d] ? p.in_sizes[d] - 1 : c);
      else
        inside = inside && c >= 0 && c < p.in_sizes[d];
      off += c * p.in_strides[d];
    }
    out[i] = inside ? x[off] : fill;
  }
}

// in_sizes / out_sizes as in PadParams; g contiguous over out_sizes, dx contiguous over in_sizes.
template <typename T>
__global__ void pad_replicate_backward_kernel(T* __restrict__ dx, const T* __restrict__ g, int64_t n, PadParams p) {
  using A = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t lo[kMaxDims], hi[kMaxDims], o[kMaxDims], gst[kMaxDims];
    int64_t rest = i, stride = 1;
    bool empty = false;
    for (int d = p.ndim - 1; d >= 0; --d) {
      int64_t c = rest % p.in_sizes[d], m = p.out_sizes[d];
      rest /= p.in_sizes[d];
      int64_t l = c == 0 ? 0 : c + p.left[d];
      int64_t h = c == p.in_sizes[d] - 1 ? m - 1 : c + p.left[d];
      lo[d] = l < 0 ? 0 : l;
      hi[d] = h > m - 1 ? m - 1 : h;
      empty = empty || lo[d] > hi[d];
      gst[d] = stride;
      stride *= m;
    }
    A acc = 0;
    if (!empty) {
      for (int d = 0; d < p.ndim; ++d) o[d] = lo[d];
      for (;;) {
        int64_t off = 0;
        for (int d = 0; d < p.ndim; ++d) off += o[d] * gst[d];
        acc += A(to_op(g[off]));
        int d = p.ndim - 1;
        for (; d >= 0; --d) {
          if (++o[d] <= hi[d]) break;
          o[d] = lo[d];
        }
        if (d < 0) break;
      }
    }
    dx[i] = from_op<T>(acc);
  }
}

PadParams make_pad_params(const Shape& out_sizes, const Shape& in_sizes, const Shape& in_strides,
                          const std::vector<int64_t>& left) {
  if (out_sizes.size() > size_t(kMaxDims)) throw_error(__FILE__, __LINE__, "pad", "pad: more than 8 dims");
  PadParams p{};
  p.ndim = int(out_sizes.size());
  for (int d = 0; d < p.ndim; ++d) {
    p.out_sizes[d] = out_sizes[size_t(d)];
    p.in_sizes[d] = in_sizes[size_t(d)];
    p.in_strides[d] = in_strides[size_t(d)];
    p.left[d] = left[size_t(d)];
  }
  return p;
}

// ---- gather / scatter ----------------------------------------------------------------------------------------------
template <typename T, typename I>
__global__ void index_gather_kernel(T* __restrict__ out, const T* __restrict__ x, const I* __restrict__ index,
                                    int64_t n, StridedIndexer<2> ix, int64_t x_dim_stride, int64_t dim_size,
                                    int* error_flag) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    int64_t k = int64_t(index[off[1]]);
    if (k >= 0 && k < dim_size) {
      out[i] = x[off[0] + k * x_dim_stride];
    } else {
      out[i] = invalid_value<T>();
      if (error_flag) atomicExch(error_flag, 1);
    }
  }
}

template <typename T, typename A, typename I>
__global__ void index_scatter_add_kernel(A* __restrict__ acc, const T* __restrict__ g, const I* __restrict__ index,
                                         int64_t n, StridedIndexer<2> ix, int64_t acc_dim_stride, int64_t dim_size,
                                         int* error_flag) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    int64_t k = int64_t(index[off[1]]);
    if (k >= 0 && k < dim_size)
      atomicAdd(acc + off[0] + k * acc_dim_stride, A(to_op(g[i])));
    else if (error_flag)
      atomicExch(error_flag, 1);
  }
}

// ---- where / clamp -------------------------------------------------------------------------------------------------
template <typename T, typename C>
__global__ void where_kernel(T* __restrict__ out, const C* __restrict__ cond, const T* __restrict__ a,
                             const T* __restrict__ b, int64_t n, StridedIndexer<3> ix) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[i] = cond[off[0]] != C(0) ? a[off[1]] : b[off[2]];
  }
}

template <typename T>
__global__ void clamp_forward_kernel(T* __restrict__ out, const T* __restrict__ x, int64_t n, double lo, double hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double v = to_double(x[i]);
    double r = v < lo ? lo : v;  // false for NaN: NaN passes through
    r = r > hi ? hi : r;
    out[i] = r == v ? x[i] : from_double<T>(r);
  }
}

template <typename T>
__global__ void clamp_backward_kernel(T* __restrict__ dx, const T* __restrict__ g, const T* __restrict__ x, int64_t n,
                                      double lo, double hi) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double v = to_double(x[i]);
    dx[i] = (v >= lo && v <= hi) ? g[i] : from_double<T>(0.0);
  }
}

}  // namespace

void pad_forward(const Tensor& out, const Tensor& x, const std::vector<int64_t>& left, int mode, double value,
                 const Context& ctx) {
  int64_t n = out.numel();
  PadParams p = make_pad_params(out.shape(), x.shape(), x.strides(), left);
  dispatch_values(x.dtype(), "pad", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T fill;
    if constexpr (std::is_same<T, __half>::value)
      fill = __float2half_rn(float(value));
    else if constexpr (std::is_same<T, __nv_bfloat16>::value)
      fill = __float2bfloat16_rn(float(value));
    else
      fill = T(value);
    pad_forward_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), n, p, mode == 1, fill);
  });
  STEREORT_LAUNCH_CHECK("pad_forward_kernel");
}

void pad_replicate_backward(const Tensor& dx, const Tensor& g, const std::vector<int64_t>& left, const Context& ctx) {
  int64_t n = dx.numel();
  PadParams p = make_pad_params(g.shape(), dx.shape(), contiguous_strides(dx.shape()), left);
  dispatch_cuda_float64(dx.dtype(), "pad_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    pad_replicate_backward_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(dx.data_ptr()), static_cast<const T*>(g.data_ptr()), n, p);
  });
  STEREORT_LAUNCH_CHECK("pad_replicate_backward_kernel");
}

void index_gather(const Tensor& out, const Tensor& x_at_s, const Tensor& index_at_s, int64_t x_dim_stride,
                  int64_t dim_size, int* error_flag, const Context& ctx) {
  int64_t n = out.numel();
  StridedIndexer<2> ix = make_indexer<2>(coalesce_dims(out.shape(), {x_at_s.strides(), index_at_s.strides()}));
  dispatch_values(x_at_s.dtype(), "gather", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_index(index_at_s.dtype(), "gather", [&](auto itag) {
      using I = typename decltype(itag)::type;
      index_gather_kernel<T, I><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
          static_cast<T*>(out.data_ptr()), static_cast<const T*>(x_at_s.data_ptr()),
          static_cast<const I*>(index_at_s.data_ptr()), n, ix, x_dim_stride, dim_size, error_flag);
    });
  });
  STEREORT_LAUNCH_CHECK("index_gather_kernel");
}

void index_scatter_add(const Tensor& acc, const Tensor& g, const Tensor& acc_at_s, const Tensor& index_at_s,
                       int64_t acc_dim_stride, int64_t dim_size, int* error_flag, const Context& ctx) {
  int64_t n = g.numel();
  StridedIndexer<2> ix = make_indexer<2>(coalesce_dims(g.shape(), {acc_at_s.strides(), index_at_s.strides()}));
  dispatch_cuda_float64(g.dtype(), "gather_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    using A = opmath_t<T>;
    dispatch_index(index_at_s.dtype(), "gather_backward", [&](auto itag) {
      using I = typename decltype(itag)::type;
      index_scatter_add_kernel<T, A, I><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
          static_cast<A*>(acc.data_ptr()), static_cast<const T*>(g.data_ptr()),
          static_cast<const I*>(index_at_s.data_ptr()), n, ix, acc_dim_stride, dim_size, error_flag);
    });
  });
  STEREORT_LAUNCH_CHECK("index_scatter_add_kernel");
}

void where(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b, const Context& ctx) {
  int64_t n = out.numel();
  StridedIndexer<3> ix = make_indexer<3>(coalesce_dims(out.shape(), {cond.strides(), a.strides(), b.strides()}));
  dispatch_values(a.dtype(), "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto launch = [&](auto ctag) {
      using C = typename decltype(ctag)::type;
      where_kernel<T, C><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
          static_cast<T*>(out.data_ptr()), static_cast<const C*>(cond.data_ptr()), static_cast<const T*>(a.data_ptr()),
          static_cast<const T*>(b.data_ptr()), n, ix);
    };
    switch (cond.dtype()) {
      case DType::U8:
      case DType::Bool:
        launch(TypeTag<uint8_t>{});
        break;
      case DType::F32:
        launch(TypeTag<float>{});
        break;
      case DType::F64:
        launch(TypeTag<double>{});
        break;
      default:
        throw_error(__FILE__, __LINE__, "where",
                    std::string("where: unexpected cond dtype ") + dtype_name(cond.dtype()));
    }
  });
  STEREORT_LAUNCH_CHECK("where_kernel");
}

void clamp_forward(const Tensor& out, const Tensor& x, double lo, double hi, const Context& ctx) {
  int64_t n = x.numel();
  dispatch_cuda_float64(x.dtype(), "clamp", [&](auto tag) {
    using T = typename decltype(tag)::type;
    clamp_forward_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), n, lo, hi);
  });
  STEREORT_LAUNCH_CHECK("clamp_forward_kernel");
}

void clamp_backward(const Tensor& dx, const Tensor& g, const Tensor& x, double lo, double hi, const Context& ctx) {
  int64_t n = x.numel();
  dispatch_cuda_float64(x.dtype(), "clamp_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    clamp_backward_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(dx.data_ptr()), static_cast<const T*>(g.data_ptr()), static_cast<const T*>(x.data_ptr()), n, lo,
        hi);
  });
  STEREORT_LAUNCH_CHECK("clamp_backward_kernel");
}

int* alloc_error_flag(const Context& ctx) {
  int* flag = static_cast<int*>(cuda_caching_alloc(sizeof(int), ctx.device.index, ctx.stream));
  STEREORT_CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), stream_of(ctx)));
  return flag;
}

int read_and_free_error_flag(int* flag, const Context& ctx) {
  int host = 0;
  STEREORT_CUDA_CHECK(cudaMemcpyAsync(&host, flag, sizeof(int), cudaMemcpyDeviceToHost, stream_of(ctx)));
  STEREORT_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
  cuda_caching_free(flag, ctx.device.index);
  return host;
}

}  // namespace cuda
}  // namespace stereort
