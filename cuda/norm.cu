// cuda/norm.cu — layer_norm and rms_norm_gated over the last dim of contiguous (R,C) rows.
//   Forward and dx: one warp per row (8 rows per 256-thread block, grid-stride over rows). Lanes stride over C, so
//   every pass is a coalesced read; the row is re-read from L1/L2 for each pass instead of being held in registers,
//   which keeps one kernel for every C (C is 96..1024 in our models). Statistics in fp32: two passes (mean, then
//   Σ(x-mean)²) for layer_norm, Σg² for the RMS norm; rsqrtf like PyTorch's kernels.
//   dweight/dbias: column sums over rows, split across blocks — block (32 columns × 8 row lanes) sums a slice of rows
//   into fp32 partials, then one thread per column adds the partials in a fixed order (deterministic).
//   Formulas: ops/norm.cpp header.
#include "cuda/common.cuh"
#include "ops/norm.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kWarpsPerBlock = kThreads / 32;

__device__ __forceinline__ float sigmoidf_(float z) { return 1.f / (1.f + expf(-z)); }

template <typename T>
__global__ void layer_norm_forward_kernel(T* __restrict__ out, float* __restrict__ mean, float* __restrict__ rstd,
                                          const T* __restrict__ x, const float* __restrict__ w,
                                          const float* __restrict__ b, int64_t R, int C, float eps) {
  int lane = threadIdx.x & 31;
  int64_t nwarps = int64_t(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < R; r += nwarps) {
    const T* xr = x + r * C;
    float s = 0.f;
    for (int c = lane; c < C; c += 32) s += to_op(xr[c]);
    float mu = warp_sum(s) / float(C);
    float v = 0.f;
    for (int c = lane; c < C; c += 32) {
      float d = to_op(xr[c]) - mu;
      v += d * d;
    }
    float rs = rsqrtf(warp_sum(v) / float(C) + eps);
    T* orow = out + r * C;
    for (int c = lane; c < C; c += 32) {
      float y = (to_op(xr[c]) - mu) * rs;
      if (w) y *= w[c];
      if (b) y += b[c];
      orow[c] = from_op<T>(y);
    }
    if (lane == 0 && mean) mean[r] = mu;
    if (lane == 0 && rstd) rstd[r] = rs;
  }
}

template <typename T>
__global__ void layer_norm_dx_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x,
                                     const float* __restrict__ mean, const float* __restrict__ rstd,
                                     const float* __restrict__ w, int64_t R, int C) {
  int lane = threadIdx.x & 31;
  int64_t nwarps = int64_t(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < R; r += nwarps) {
    const T* xr = x + r * C;
    const T* gr = dy + r * C;
    float mu = mean[r], rs = rstd[r], s1 = 0.f, s2 = 0.f;
    for (int c = lane; c < C; c += 32) {
      float gh = to_op(gr[c]) * (w ? w[c] : 1.f);
      s1 += gh;
      s2 += gh * (to_op(xr[c]) - mu) * rs;
    }
    s1 = warp_sum(s1) / float(C);
    s2 = warp_sum(s2) / float(C);
    for (int c = lane; c < C; c += 32) {
      float gh = to_op(gr[c]) * (w ? w[c] : 1.f), xh = (to_op(xr[c]) - mu) * rs;
      dx[r * C + c] = from_op<T>(rs * (gh - s1 - xh * s2));
    }
  }
}

template <typename T>
__global__ void rms_norm_gated_forward_kernel(T* __restrict__ out, float* __restrict__ rstd, const T* __restrict__ y,
                                              const T* __restrict__ z, const float* __restrict__ w, int64_t R, int C,
                                              float eps) {
  int lane = threadIdx.x & 31;
  int64_t nwarps = int64_t(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < R; r += nwarps) {
    const T* yr = y + r * C;
    const T* zr = z + r * C;
    float ss = 0.f;
    for (int c = lane; c < C; c += 32) {
      float zv = to_op(zr[c]), g = to_op(yr[c]) * zv * sigmoidf_(zv);
      ss += g * g;
    }
    float rs = rsqrtf(warp_sum(ss) / float(C) + eps);
    for (int c = lane; c < C; c += 32) {
      float zv = to_op(zr[c]), g = to_op(yr[c]) * zv * sigmoidf_(zv);
      out[r * C + c] = from_op<T>(g * rs * w[c]);
    }
    if (lane == 0 && rstd) rstd[r] = rs;
  }
}

template <typename T>
__global__ void rms_norm_gated_dx_kernel(T* __restrict__ dyp, T* __restrict__ dzp, const T* __restrict__ dout,
                                         const T* __restrict__ y, const T* __restrict__ z,
                                         const float* __restrict__ rstd, const float* __restrict__ w, int64_t R,
                                         int C) {
  int lane = threadIdx.x & 31;
  int64_t nwarps = int64_t(gridDim.x) * kWarpsPerBlock;
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5; r < R; r += nwarps) {
    int64_t base = r * C;
    float rs = rstd[r], s = 0.f;
    for (int c = lane; c < C; c += 32) {
      float zv = to_op(z[base + c]), gh = to_op(y[base + c]) * zv * sigmoidf_(zv) * rs;
      s += to_op(dout[base + c]) * w[c] * gh;
    }
    s = warp_sum(s) / float(C);
    for (int c = lane; c < C; c += 32) {
      float zv = to_op(z[base + c]), yv = to_op(y[base + c]), sg = sigmoidf_(zv);
      float gh = yv * zv * sg * rs, dg = rs * (to_op(dout[base + c]) * w[c] - gh * s);
      if (dyp) dyp[base + c] = from_op<T>(dg * zv * sg);
      if (dzp) dzp[base + c] = from_op<T>(dg * yv * sg * (1.f + zv * (1.f - sg)));
    }
  }
}

// Partial column sums over rows [blockIdx.y·rows_per_split, +rows_per_split):
//   kGated false (layer_norm): pw += dout·(x-mean)·rstd, pb += dout.   true (rms): pw += dout·x·silu(z)·rstd.
// a = x (layer_norm) or y (rms); z only for rms. Block (32, 8).
template <typename T, bool kGated>
__global__ void norm_dweight_partial_kernel(float* __restrict__ pw, float* __restrict__ pb, const T* __restrict__ dout,
                                            const T* __restrict__ a, const T* __restrict__ z,
                                            const float* __restrict__ mean, const float* __restrict__ rstd,
                                            int64_t R, int C, int64_t rows_per_split) {
  __shared__ float sw[8][33], sb[8][33];
  int c = blockIdx.x * 32 + threadIdx.x;
  int64_t r0 = blockIdx.y * rows_per_split, r1 = min(R, r0 + rows_per_split);
  float aw = 0.f, ab = 0.f;
  if (c < C) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += 8) {
      float g = to_op(dout[r * C + c]), av = to_op(a[r * C + c]);
      if constexpr (kGated) {
        float zv = to_op(z[r * C + c]);
        aw += g * av * zv * sigmoidf_(zv) * rstd[r];
      } else {
        aw += g * (av - mean[r]) * rstd[r];
        ab += g;
      }
    }
  }
  sw[threadIdx.y][threadIdx.x] = aw;
  sb[threadIdx.y][threadIdx.x] = ab;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    float tw = 0.f, tb = 0.f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      tw += sw[i][threadIdx.x];
      tb += sb[i][threadIdx.x];
    }
    if (pw) pw[blockIdx.y * int64_t(C) + c] = tw;
    if (pb) pb[blockIdx.y * int64_t(C) + c] = tb;
  }
}

// out[c] = Σ_s part[s·C + c] (fixed order).
__global__ void sum_partials_kernel(float* __restrict__ out, const float* __restrict__ part, int64_t splits, int C) {
  int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  float t = 0.f;
  for (int64_t s = 0; s < splits; ++s) t += part[s * C + c];
  out[c] = t;
}

const float* fptr(const Tensor& t) { return t.defined() ? static_cast<const float*>(t.data_ptr()) : nullptr; }
float* fptr_mut(const Tensor& t) { return t.defined() ? static_cast<float*>(t.data_ptr()) : nullptr; }

// dweight (and dbias for layer_norm) through the split column reduction.
template <typename T, bool kGated>
void norm_dweight(const Tensor& dw, const Tensor& db, const T* dout, const T* a, const T* z, const float* mean,
                  const float* rstd, int64_t R, int C, const Context& ctx) {
  if (!dw.defined() && !db.defined()) return;
  cudaStream_t st = stream_of(ctx);
  int64_t col_blocks = ceil_div(C, 32);
  int64_t splits = std::max<int64_t>(1, std::min<int64_t>(ceil_div(R, 64), std::max<int64_t>(1, 2048 / col_blocks)));
  splits = std::min<int64_t>(splits, 65535);
  int64_t rows_per_split = ceil_div(R, splits);
  size_t bytes = size_t(2 * splits * C) * sizeof(float);
  float* part = static_cast<float*>(cuda_caching_alloc(bytes, ctx.device.index, ctx.stream));
  float* pw = part;
  float* pb = part + splits * C;
  norm_dweight_partial_kernel<T, kGated><<<dim3(unsigned(col_blocks), unsigned(splits)), dim3(32, 8), 0, st>>>(
      dw.defined() ? pw : nullptr, db.defined() ? pb : nullptr, dout, a, z, mean, rstd, R, C, rows_per_split);
  STEREORT_LAUNCH_CHECK("norm_dweight_partial_kernel");
  unsigned g = unsigned(ceil_div(C, kThreads));
  if (dw.defined()) {
    sum_partials_kernel<<<g, kThreads, 0, st>>>(fptr_mut(dw), pw, splits, C);
    STEREORT_LAUNCH_CHECK("sum_partials_kernel");
  }
  if (db.defined()) {
    sum_partials_kernel<<<g, kThreads, 0, st>>>(fptr_mut(db), pb, splits, C);
    STEREORT_LAUNCH_CHECK("sum_partials_kernel");
  }
  cuda_caching_free(part, ctx.device.index);  // stream-ordered reuse keeps this safe
}

void check_row_dims(int64_t C, const char* op) {
  if (C > int64_t(1) << 30) STEREORT_THROW(std::string(op) + ": last dim too large for the CUDA kernel");
}

}  // namespace

void layer_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, const Context& ctx) {
  int64_t C = x.size(-1), R = x.numel() / C;
  check_row_dims(C, "layer_norm");
  dispatch_cuda_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    layer_norm_forward_kernel<T><<<grid_1d(R * 32), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), fptr_mut(mean), fptr_mut(rstd), static_cast<const T*>(x.data_ptr()),
        fptr(weight), fptr(bias), R, int(C), float(eps));
    STEREORT_LAUNCH_CHECK("layer_norm_forward_kernel");
  });
}

void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                         const Context& ctx) {
  int64_t C = x.size(-1), R = x.numel() / C;
  check_row_dims(C, "layer_norm");
  dispatch_cuda_float(x.dtype(), "layer_norm backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dy = static_cast<const T*>(dout.data_ptr());
    const T* xp = static_cast<const T*>(x.data_ptr());
    if (dx.defined()) {
      layer_norm_dx_kernel<T><<<grid_1d(R * 32), kThreads, 0, stream_of(ctx)>>>(
          static_cast<T*>(dx.data_ptr()), dy, xp, fptr(mean), fptr(rstd), fptr(weight), R, int(C));
      STEREORT_LAUNCH_CHECK("layer_norm_dx_kernel");
    }
    norm_dweight<T, false>(dweight, dbias, dy, xp, nullptr, fptr(mean), fptr(rstd), R, int(C), ctx);
  });
}

void rms_norm_gated_forward(const Tensor& out, const Tensor& rstd, const Tensor& y, const Tensor& z,
                            const Tensor& weight, double eps, const Context& ctx) {
  int64_t C = y.size(-1), R = y.numel() / C;
  check_row_dims(C, "rms_norm_gated");
  dispatch_cuda_float(y.dtype(), "rms_norm_gated", [&](auto tag) {
    using T = typename decltype(tag)::type;
    rms_norm_gated_forward_kernel<T><<<grid_1d(R * 32), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(out.data_ptr()), fptr_mut(rstd), static_cast<const T*>(y.data_ptr()),
        static_cast<const T*>(z.data_ptr()), fptr(weight), R, int(C), float(eps));
    STEREORT_LAUNCH_CHECK("rms_norm_gated_forward_kernel");
  });
}

void rms_norm_gated_backward(const Tensor& dy, const Tensor& dz, const Tensor& dweight, const Tensor& dout,
                             const Tensor& y, const Tensor& z, const Tensor& rstd, const Tensor& weight,
                             const Context& ctx) {
  int64_t C = y.size(-1), R = y.numel() / C;
  check_row_dims(C, "rms_norm_gated");
  dispatch_cuda_float(y.dtype(), "rms_norm_gated backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = static_cast<const T*>(dout.data_ptr());
    const T* yp = static_cast<const T*>(y.data_ptr());
    const T* zp = static_cast<const T*>(z.data_ptr());
    if (dy.defined() || dz.defined()) {
      rms_norm_gated_dx_kernel<T><<<grid_1d(R * 32), kThreads, 0, stream_of(ctx)>>>(
          dy.defined() ? static_cast<T*>(dy.data_ptr()) : nullptr, dz.defined() ? static_cast<T*>(dz.data_ptr()) : nullptr,
          g, yp, zp, fptr(rstd), fptr(weight), R, int(C));
      STEREORT_LAUNCH_CHECK("rms_norm_gated_dx_kernel");
    }
    norm_dweight<T, true>(dweight, Tensor(), g, yp, zp, nullptr, fptr(rstd), R, int(C), ctx);
  });
}

}  // namespace cuda
}  // namespace stereort
