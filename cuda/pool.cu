// cuda/pool.cu — avg/max pool 2-D kernels (ops/pool.h).
//   Forward: one thread per output element (grid-stride), fp32 (fp64) accumulation.
//   Backward: gather formulation, deterministic, no atomics: one thread per input element visits the output windows
//   that cover it — oy in [(y+ph-kh)/sh + 1 (or 0), (y+ph)/sh + 1) — and adds g/divisor (avg) or g where the saved
//   argmax equals this element (max). At most ceil(k/s)^2 windows per element.
#include "cuda/common.cuh"
#include "ops/pool.h"

namespace stereort {
namespace cuda {
namespace {

struct WindowD {
  int64_t h0, h1, w0, w1, divisor;
};

// Same rule as ops/pool.cpp window_of (ATen avg_pool2d).
__device__ __forceinline__ WindowD window_of(const Pool2dGeom& g, int64_t oy, int64_t ox) {
  WindowD r;
  int64_t hs = oy * g.sh - g.ph, ws = ox * g.sw - g.pw;
  int64_t he = min(hs + g.kh, g.h + g.ph), we = min(ws + g.kw, g.w + g.pw);
  int64_t pool_size = (he - hs) * (we - ws);
  r.h0 = max(hs, int64_t(0));
  r.w0 = max(ws, int64_t(0));
  r.h1 = min(he, g.h);
  r.w1 = min(we, g.w);
  r.divisor = g.count_include_pad ? pool_size : (r.h1 - r.h0) * (r.w1 - r.w0);
  return r;
}

// Range [first, last) of outputs along one axis whose window (start o*s - p, length k) contains input position i.
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t s, int64_t p, int64_t n_out, int64_t* first,
                                         int64_t* last) {
  *first = (i + p < k) ? 0 : (i + p - k) / s + 1;
  *last = min((i + p) / s + 1, n_out);
}

template <typename T>
__global__ void avg_pool2d_forward_kernel(T* __restrict__ out, const T* __restrict__ x, Pool2dGeom g, int64_t total) {
  using O = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % g.ow, t = i / g.ow, oy = t % g.oh, n = t / g.oh;
    WindowD r = window_of(g, oy, ox);
    const T* xn = x + n * g.h * g.w;
    O acc = 0;
    for (int64_t y = r.h0; y < r.h1; ++y)
      for (int64_t xx = r.w0; xx < r.w1; ++xx) acc += to_op(xn[y * g.w + xx]);
    out[i] = from_op<T>(acc / O(r.divisor));
  }
}

template <typename T>
__global__ void avg_pool2d_backward_kernel(T* __restrict__ gx, const T* __restrict__ gout, Pool2dGeom g,
                                           int64_t total) {
  using O = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t xx = i % g.w, t = i / g.w, y = t % g.h, n = t / g.h;
    int64_t oy0, oy1, ox0, ox1;
    covering(y, g.kh, g.sh, g.ph, g.oh, &oy0, &oy1);
    covering(xx, g.kw, g.sw, g.pw, g.ow, &ox0, &ox1);
    const T* gn = gout + n * g.oh * g.ow;
    O acc = 0;
    for (int64_t oy = oy0; oy < oy1; ++oy)
      for (int64_t ox = ox0; ox < ox1; ++ox) acc += to_op(gn[oy * g.ow + ox]) / O(window_of(g, oy, ox).divisor);
    gx[i] = from_op<T>(acc);
  }
}

template <typename T>
__global__ void max_pool2d_forward_kernel(T* __restrict__ out, int32_t* __restrict__ idx, const T* __restrict__ x,
                                          Pool2dGeom g, int64_t total) {
  using O = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t ox = i % g.ow, t = i / g.ow, oy = t % g.oh, n = t / g.oh;
    WindowD r = window_of(g, oy, ox);
    const T* xn = x + n * g.h * g.w;
    O best = -INFINITY;
    int64_t arg = r.h0 * g.w + r.w0;
    for (int64_t y = r.h0; y < r.h1; ++y)
      for (int64_t xx = r.w0; xx < r.w1; ++xx) {
        O v = to_op(xn[y * g.w + xx]);
        if (v > best || isnan(v)) {
          best = v;
          arg = y * g.w + xx;
        }
      }
    out[i] = from_op<T>(best);
    if (idx) idx[i] = int32_t(arg);
  }
}

template <typename T>
__global__ void max_pool2d_backward_kernel(T* __restrict__ gx, const T* __restrict__ gout,
                                           const int32_t* __restrict__ idx, Pool2dGeom g, int64_t total) {
  using O = opmath_t<T>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t xx = i % g.w, t = i / g.w, y = t % g.h, n = t / g.h;
    int64_t oy0, oy1, ox0, ox1;
    covering(y, g.kh, g.sh, g.ph, g.oh, &oy0, &oy1);
    covering(xx, g.kw, g.sw, g.pw, g.ow, &ox0, &ox1);
    const int32_t me = int32_t(y * g.w + xx);
    const int64_t base = n * g.oh * g.ow;
    O acc = 0;
    for (int64_t oy = oy0; oy < oy1; ++oy)
      for (int64_t ox = ox0; ox < ox1; ++ox)
        if (idx[base + oy * g.ow + ox] == me) acc += to_op(gout[base + oy * g.ow + ox]);
    gx[i] = from_op<T>(acc);
  }
}

}  // namespace

void avg_pool2d_forward(const Tensor& out, const Tensor& x, const Pool2dGeom& g, const Context& ctx) {
  const int64_t total = out.numel();
  dispatch_cuda_float64(x.dtype(), "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool2d_forward_kernel<T><<<grid_1d(total), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), static_cast<const T*>(x.data_ptr()), g, total);
  });
  STEREORT_LAUNCH_CHECK("avg_pool2d_forward_kernel");
}

void avg_pool2d_backward(const Tensor& gx, const Tensor& gout, const Pool2dGeom& g, const Context& ctx) {
  const int64_t total = gx.numel();
  dispatch_cuda_float64(gout.dtype(), "avg_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    avg_pool2d_backward_kernel<T><<<grid_1d(total), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(gx.data_ptr()), static_cast<const T*>(gout.data_ptr()), g, total);
  });
  STEREORT_LAUNCH_CHECK("avg_pool2d_backward_kernel");
}

void max_pool2d_forward(const Tensor& out, const Tensor& idx, const Tensor& x, const Pool2dGeom& g,
                        const Context& ctx) {
  const int64_t total = out.numel();
  dispatch_cuda_float64(x.dtype(), "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool2d_forward_kernel<T><<<grid_1d(total), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), idx.defined() ? static_cast<int32_t*>(idx.data_ptr()) : nullptr,
        static_cast<const T*>(x.data_ptr()), g, total);
  });
  STEREORT_LAUNCH_CHECK("max_pool2d_forward_kernel");
}

void max_pool2d_backward(const Tensor& gx, const Tensor& gout, const Tensor& idx, const Pool2dGeom& g,
                         const Context& ctx) {
  const int64_t total = gx.numel();
  dispatch_cuda_float64(gout.dtype(), "max_pool2d_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    max_pool2d_backward_kernel<T><<<grid_1d(total), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(gx.data_ptr()), static_cast<const T*>(gout.data_ptr()),
        static_cast<const int32_t*>(idx.data_ptr()), g, total);
  });
  STEREORT_LAUNCH_CHECK("max_pool2d_backward_kernel");
}

}  // namespace cuda
}  // namespace stereort
