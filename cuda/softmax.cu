// cuda/softmax.cu — softmax / log_softmax forward and backward, max (values + indices) and topk along one dim.
//   Layout: contiguous (outer, n, inner); the reduced dim is n. Three schedules (chosen by the launcher):
//     rows_warp   inner == 1, 8 < n <= 1024: one warp per row, lanes stride the row (coalesced).
//     rows_block  inner == 1, n > 1024: one 256-thread block per row, warp results merged through shared memory.
//     columns     inner > 1 (or n <= 8): one thread per (outer, inner) column walking n with stride `inner`;
//                 neighbouring threads take neighbouring inner positions, so every step is a coalesced load and the
//                 dim never needs a transpose (the (B,D,H,W) disparity softmax is this case).
//   Forward uses the online (max, sum) recurrence (Milakov & Gimelshein 2018): one read for the statistics, one to
//   write, instead of three passes. Statistics accumulate in float (double for f64 inputs). An empty partial state
//   is (m = -inf, s = 0) and merges as a no-op, so all -inf rows give NaN like PyTorch.
#include <cfloat>

#include "cuda/common.cuh"
#include "ops/softmax.h"

namespace stereort {
namespace cuda {
namespace {

template <typename A>
struct Online {
  A m, s;  // running max and sum of exp(x - m)
};

template <typename A>
__device__ __forceinline__ A exp_a(A v) {
  return exp(v);
}
template <>
__device__ __forceinline__ float exp_a<float>(float v) {
  return expf(v);
}
template <typename A>
__device__ __forceinline__ A log_a(A v) {
  return log(v);
}
template <>
__device__ __forceinline__ float log_a<float>(float v) {
  return logf(v);
}

template <typename A>
__device__ __forceinline__ void online_add(Online<A>& st, A v) {
  if (v > st.m) {
    // exp(v - v) = 1, written as 1 + (v - v) so that v = +inf gives NaN, as exp(inf - inf) does on the CPU/PyTorch.
    st.s = (st.m == A(-INFINITY) ? A(0) : st.s * exp_a(st.m - v)) + (A(1) + (v - v));
    st.m = v;
  } else if (v != A(-INFINITY)) {
    st.s += exp_a(v - st.m);  // NaN v (or NaN m) makes s NaN: the row becomes NaN
  }
}

template <typename A>
__device__ __forceinline__ Online<A> online_merge(Online<A> a, Online<A> b) {
  A m = a.m > b.m ? a.m : b.m;
  if (m == A(-INFINITY)) return {m, a.s + b.s};
  A sa = a.m == A(-INFINITY) ? A(0) : a.s * exp_a(a.m - m);
  A sb = b.m == A(-INFINITY) ? A(0) : b.s * exp_a(b.m - m);
  return {m, sa + sb};
}

template <typename A>
__device__ __forceinline__ Online<A> warp_online(Online<A> st) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    Online<A> other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o)};
    st = online_merge(st, other);
  }
  return st;
}

template <typename T, typename A>
__device__ __forceinline__ T softmax_value(A v, Online<A> st, A log_s, bool log) {
  return log ? from_op<T>(v - st.m - log_s) : from_op<T>(exp_a(v - st.m) / st.s);
}

// ---- forward -------------------------------------------------------------------------------------------------------
template <typename T>
__global__ void softmax_columns_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t outer, int64_t n,
                                       int64_t inner, bool log) {
  using A = opmath_t<T>;
  int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (c / inner) * n * inner + c % inner;
    Online<A> st{A(-INFINITY), A(0)};
    for (int64_t k = 0; k < n; ++k) online_add(st, to_op(x[base + k * inner]));
    A log_s = log_a(st.s);
    for (int64_t k = 0; k < n; ++k)
      y[base + k * inner] = softmax_value<T>(A(to_op(x[base + k * inner])), st, log_s, log);
  }
}

template <typename T>
__global__ void softmax_rows_warp_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t rows, int64_t n,
                                         bool log) {
  using A = opmath_t<T>;
  int lane = threadIdx.x & 31;
  int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    Online<A> st{A(-INFINITY), A(0)};
    for (int64_t k = lane; k < n; k += 32) online_add(st, A(to_op(xr[k])));
    st = warp_online(st);
    A log_s = log_a(st.s);
    for (int64_t k = lane; k < n; k += 32) yr[k] = softmax_value<T>(A(to_op(xr[k])), st, log_s, log);
  }
}

template <typename T>
__global__ void softmax_rows_block_kernel(T* __restrict__ y, const T* __restrict__ x, int64_t rows, int64_t n,
                                          bool log) {
  using A = opmath_t<T>;
  __shared__ A sm[32], ss[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* xr = x + r * n;
    T* yr = y + r * n;
    Online<A> st{A(-INFINITY), A(0)};
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) online_add(st, A(to_op(xr[k])));
    st = warp_online(st);
    __syncthreads();  // the previous row's readers of sm/ss are done
    if (lane == 0) {
      sm[warp] = st.m;
      ss[warp] = st.s;
    }
    __syncthreads();
    st = lane < nwarps ? Online<A>{sm[lane], ss[lane]} : Online<A>{A(-INFINITY), A(0)};
    st = warp_online(st);  // every warp reduces the same partials: all threads hold the row statistics
    A log_s = log_a(st.s);
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) yr[k] = softmax_value<T>(A(to_op(xr[k])), st, log_s, log);
  }
}

// ---- backward: softmax dx = y (g - sum g y);  log_softmax dx = g - exp(y) sum g ------------------------------------
template <typename T, typename A>
__device__ __forceinline__ A backward_term(T y, T g, bool log) {
  return log ? A(to_op(g)) : A(to_op(g)) * A(to_op(y));
}
template <typename T, typename A>
__device__ __forceinline__ T backward_value(T y, T g, A acc, bool log) {
  A yv = to_op(y), gv = to_op(g);
  return from_op<T>(log ? gv - exp_a(yv) * acc : yv * (gv - acc));
}

template <typename T>
__global__ void softmax_bwd_columns_kernel(T* __restrict__ dx, const T* __restrict__ y, const T* __restrict__ g,
                                           int64_t outer, int64_t n, int64_t inner, bool log) {
  using A = opmath_t<T>;
  int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (c / inner) * n * inner + c % inner;
    A acc = 0;
    for (int64_t k = 0; k < n; ++k) acc += backward_term<T, A>(y[base + k * inner], g[base + k * inner], log);
    for (int64_t k = 0; k < n; ++k) {
      int64_t j = base + k * inner;
      dx[j] = backward_value<T, A>(y[j], g[j], acc, log);
    }
  }
}

template <typename T>
__global__ void softmax_bwd_rows_warp_kernel(T* __restrict__ dx, const T* __restrict__ y, const T* __restrict__ g,
                                             int64_t rows, int64_t n, bool log) {
  using A = opmath_t<T>;
  int lane = threadIdx.x & 31;
  int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    int64_t base = r * n;
    A acc = 0;
    for (int64_t k = lane; k < n; k += 32) acc += backward_term<T, A>(y[base + k], g[base + k], log);
    acc = warp_sum(acc);
    for (int64_t k = lane; k < n; k += 32) dx[base + k] = backward_value<T, A>(y[base + k], g[base + k], acc, log);
  }
}

template <typename T>
__global__ void softmax_bwd_rows_block_kernel(T* __restrict__ dx, const T* __restrict__ y, const T* __restrict__ g,
                                              int64_t rows, int64_t n, bool log) {
  using A = opmath_t<T>;
  __shared__ A smem[32];
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    int64_t base = r * n;
    A acc = 0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) acc += backward_term<T, A>(y[base + k], g[base + k], log);
    acc = block_sum(acc, smem);  // starts with a __syncthreads, so smem reuse across rows is safe
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x)
      dx[base + k] = backward_value<T, A>(y[base + k], g[base + k], acc, log);
  }
}

// ---- max and topk --------------------------------------------------------------------------------------------------
// True when (a, ia) ranks before (b, ib): NaN above every number, larger (smaller) first, lower index on ties.
template <typename A>
__device__ __forceinline__ bool ranks_before(A a, int64_t ia, A b, int64_t ib, bool largest) {
  bool an = isnan(a), bn = isnan(b);
  if (an || bn) return (an && bn) ? ia < ib : (largest ? an : bn);
  if (a != b) return largest ? a > b : a < b;
  return ia < ib;
}

template <typename T>
__global__ void max_columns_kernel(T* __restrict__ values, int64_t* __restrict__ indices, const T* __restrict__ x,
                                   int64_t outer, int64_t n, int64_t inner) {
  using A = opmath_t<T>;
  int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    int64_t base = (c / inner) * n * inner + c % inner;
    A best = to_op(x[base]);
    int64_t bi = 0;
    for (int64_t k = 1; k < n; ++k) {
      A v = to_op(x[base + k * inner]);
      if (ranks_before(v, k, best, bi, true)) {
        best = v;
        bi = k;
      }
    }
    values[c] = x[base + bi * inner];
    indices[c] = bi;
  }
}

template <typename T>
__global__ void max_rows_warp_kernel(T* __restrict__ values, int64_t* __restrict__ indices, const T* __restrict__ x,
                                     int64_t rows, int64_t n) {
  using A = opmath_t<T>;
  int lane = threadIdx.x & 31;
  int64_t warps = int64_t(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < rows; r += warps) {
    const T* xr = x + r * n;
    A best = A(-INFINITY);
    int64_t bi = INT64_MAX;  // "no candidate": loses every comparison below
    for (int64_t k = lane; k < n; k += 32) {
      A v = to_op(xr[k]);
      if (bi == INT64_MAX || ranks_before(v, k, best, bi, true)) {
        best = v;
        bi = k;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      A ob = __shfl_xor_sync(0xffffffffu, best, o);
      int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (oi != INT64_MAX && (bi == INT64_MAX || ranks_before(ob, oi, best, bi, true))) {
        best = ob;
        bi = oi;
      }
    }
    if (lane == 0) {
      values[r] = xr[bi];
      indices[r] = bi;
    }
  }
}

// One thread per (outer, inner) row: a sorted insertion list of the best k kept in the output row itself.
template <typename T>
__global__ void topk_columns_kernel(T* __restrict__ values, int64_t* __restrict__ indices, const T* __restrict__ x,
                                    int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest) {
  using A = opmath_t<T>;
  int64_t cols = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < cols; c += int64_t(gridDim.x) * blockDim.x) {
    int64_t o = c / inner, i = c % inner;
    const T* xr = x + o * n * inner + i;
    T* vr = values + o * k * inner + i;
    int64_t* ir = indices + o * k * inner + i;
    int64_t count = 0;
    for (int64_t j = 0; j < n; ++j) {
      T raw = xr[j * inner];
      A v = to_op(raw);
      if (count == k && !ranks_before(v, j, A(to_op(vr[(k - 1) * inner])), ir[(k - 1) * inner], largest)) continue;
      int64_t pos = count < k ? count++ : k - 1;  // drop the last when full
      while (pos > 0 && ranks_before(v, j, A(to_op(vr[(pos - 1) * inner])), ir[(pos - 1) * inner], largest)) {
        vr[pos * inner] = vr[(pos - 1) * inner];
        ir[pos * inner] = ir[(pos - 1) * inner];
        --pos;
      }
      vr[pos * inner] = raw;
      ir[pos * inner] = j;
    }
  }
}

unsigned warp_grid(int64_t rows) { return grid_1d(rows * 32); }
unsigned block_grid(int64_t rows) { return unsigned(rows < 65535LL * 32 ? rows : 65535LL * 32); }

}  // namespace

void softmax_forward(const Tensor& y, const Tensor& x, SoftmaxDims d, bool log, const Context& ctx) {
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float64(x.dtype(), "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* yp = static_cast<T*>(y.data_ptr());
    const T* xp = static_cast<const T*>(x.data_ptr());
    int64_t rows = d.outer * d.inner;
    if (d.inner == 1 && d.n > 1024) {
      softmax_rows_block_kernel<T><<<block_grid(rows), kThreads, 0, st>>>(yp, xp, rows, d.n, log);
    } else if (d.inner == 1 && d.n > 8) {
      softmax_rows_warp_kernel<T><<<warp_grid(rows), kThreads, 0, st>>>(yp, xp, rows, d.n, log);
    } else {
      softmax_columns_kernel<T><<<grid_1d(rows), kThreads, 0, st>>>(yp, xp, d.outer, d.n, d.inner, log);
    }
  });
  STEREORT_LAUNCH_CHECK("softmax_forward");
}

void softmax_backward(const Tensor& dx, const Tensor& y, const Tensor& g, SoftmaxDims d, bool log, const Context& ctx) {
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float64(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* dp = static_cast<T*>(dx.data_ptr());
    const T* yp = static_cast<const T*>(y.data_ptr());
    const T* gp = static_cast<const T*>(g.data_ptr());
    int64_t rows = d.outer * d.inner;
    if (d.inner == 1 && d.n > 1024) {
      softmax_bwd_rows_block_kernel<T><<<block_grid(rows), kThreads, 0, st>>>(dp, yp, gp, rows, d.n, log);
    } else if (d.inner == 1 && d.n > 8) {
      softmax_bwd_rows_warp_kernel<T><<<warp_grid(rows), kThreads, 0, st>>>(dp, yp, gp, rows, d.n, log);
    } else {
      softmax_bwd_columns_kernel<T><<<grid_1d(rows), kThreads, 0, st>>>(dp, yp, gp, d.outer, d.n, d.inner, log);
    }
  });
  STEREORT_LAUNCH_CHECK("softmax_backward");
}

void max_forward(const Tensor& values, const Tensor& indices, const Tensor& x, SoftmaxDims d, const Context& ctx) {
  cudaStream_t st = stream_of(ctx);
  dispatch_cuda_float64(x.dtype(), "max", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* vp = static_cast<T*>(values.data_ptr());
    int64_t* ip = static_cast<int64_t*>(indices.data_ptr());
    const T* xp = static_cast<const T*>(x.data_ptr());
    int64_t rows = d.outer * d.inner;
    if (d.inner == 1 && d.n > 8) {
      max_rows_warp_kernel<T><<<warp_grid(rows), kThreads, 0, st>>>(vp, ip, xp, rows, d.n);
    } else {
      max_columns_kernel<T><<<grid_1d(rows), kThreads, 0, st>>>(vp, ip, xp, d.outer, d.n, d.inner);
    }
  });
  STEREORT_LAUNCH_CHECK("max_forward");
}

void topk_forward(const Tensor& values, const Tensor& indices, const Tensor& x, SoftmaxDims d, int64_t k, bool largest,
                  const Context& ctx) {
  dispatch_cuda_float64(x.dtype(), "topk", [&](auto tag) {
    using T = typename decltype(tag)::type;
    int64_t rows = d.outer * d.inner;
    topk_columns_kernel<T><<<grid_1d(rows), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(values.data_ptr()), static_cast<int64_t*>(indices.data_ptr()),
        static_cast<const T*>(x.data_ptr()), d.outer, d.n, d.inner, k, largest);
  });
  STEREORT_LAUNCH_CHECK("topk_forward");
}

}  // namespace cuda
}  // namespace stereort
