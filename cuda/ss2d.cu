// cuda/ss2d.cu — SS2D data movement: the cross-scan gathers (index maps of ops/ss2d.h), a batched (R,C) -> (C,R)
// transpose through 32x32 shared-memory tiles (33-wide rows: both the read and the write are coalesced), and the
// four-direction merge used by the fused scan. The fused scan itself is the selective-scan kernels addressed per
// direction (ops/ss2d.cpp builds the SelectiveScanParams).
#include "cuda/common.cuh"
#include "ops/ss2d.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kTile = 32, kTileRows = 8;

// One thread per destination element (B, Kd, C, L). Directions 1/3 read with stride W (uncoalesced but sector
// complete); these gathers serve the unfused path and the tests, the fused path never materialises them.
template <typename T>
__global__ void cross_gather_kernel(T* dst, const T* src, int mode, int64_t B, int Kd, int Ks, int64_t C, int64_t H,
                                    int64_t W) {
  const int64_t L = H * W, total = B * Kd * C * L;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < total; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t i = e % L, bc = e / L, c = bc % C, bk = bc / C;
    const int k = int(bk % Kd);
    const int64_t b = bk / Kd;
    if (mode == int(CrossMode::Merge)) {
      opmath_t<T> acc = 0;
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) acc += to_op(src[((b * 4 + kk) * C + c) * L + ss2d_seq(kk, i, H, W)]);
      dst[e] = from_op<T>(acc);
    } else {
      const T* row = src + ((b * Ks + (Ks == 1 ? 0 : k)) * C + c) * L;
      dst[e] = row[mode == int(CrossMode::Unroute) ? ss2d_seq(k, i, H, W) : ss2d_pix(k, i, H, W)];
    }
  }
}
// grid (ceil(C/32), ceil(R/32), batches); block (32, 8). Batch z -> (i, j) = (z / n_inner, z % n_inner).
template <typename T>
__global__ void transpose_rc_kernel(T* dst, const T* src, int64_t n_outer, int64_t n_inner, int64_t R, int64_t C,
                                    int64_t src_outer, int64_t src_inner, int64_t dst_outer, int64_t dst_inner,
                                    bool accumulate) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t r0 = int64_t(blockIdx.y) * kTile, c0 = int64_t(blockIdx.x) * kTile;
  for (int64_t z = blockIdx.z; z < n_outer * n_inner; z += gridDim.z) {
    const int64_t i = z / n_inner, j = z % n_inner;
    const T* s = src + i * src_outer + j * src_inner;
    T* d = dst + i * dst_outer + j * dst_inner;
    for (int q = threadIdx.y; q < kTile; q += kTileRows) {
      const int64_t r = r0 + q, c = c0 + threadIdx.x;
      if (r < R && c < C) tile[q][threadIdx.x] = to_op(s[r * C + c]);
    }
    __syncthreads();
    for (int q = threadIdx.y; q < kTile; q += kTileRows) {
      const int64_t c = c0 + q, r = r0 + threadIdx.x;  // dst is (C, R)
      if (r < R && c < C) {
        float v = tile[threadIdx.x][q];
        if (accumulate) v += to_op(d[c * R + r]);
        d[c * R + r] = from_op<T>(v);
      }
    }
    __syncthreads();
  }
}

// y[b,c,h,w] = o0[h,w] + o2[h,w] + o1[w,h] + o3[w,h]; grid (ceil(W/32), ceil(H/32), B*C).
template <typename T>
__global__ void ss2d_merge_kernel(T* y, const T* o, int64_t BC, int64_t C, int64_t H, int64_t W) {
  __shared__ float tile[kTile][kTile + 1];
  const int64_t L = H * W, h0 = int64_t(blockIdx.y) * kTile, w0 = int64_t(blockIdx.x) * kTile;
  for (int64_t z = blockIdx.z; z < BC; z += gridDim.z) {
    const int64_t b = z / C, c = z % C;
    const T* o0 = o + ((b * 4 + 0) * C + c) * L;
    const T* o1 = o + ((b * 4 + 1) * C + c) * L;
    const T* o2 = o + ((b * 4 + 2) * C + c) * L;
    const T* o3 = o + ((b * 4 + 3) * C + c) * L;
    // Directions 1/3 are (W,H) row-major: read along h (coalesced), keep tile[w - w0][h - h0].
    for (int q = threadIdx.y; q < kTile; q += kTileRows) {
      const int64_t w = w0 + q, h = h0 + threadIdx.x;
      if (w < W && h < H) tile[q][threadIdx.x] = to_op(o1[w * H + h]) + to_op(o3[w * H + h]);
    }
    __syncthreads();
    for (int q = threadIdx.y; q < kTile; q += kTileRows) {
      const int64_t h = h0 + q, w = w0 + threadIdx.x;
      if (w < W && h < H) {
        const int64_t p = h * W + w;
        y[z * L + p] = from_op<T>(to_op(o0[p]) + to_op(o2[p]) + tile[threadIdx.x][q]);
      }
    }
    __syncthreads();
  }
}

}  // namespace

void cross_gather(CrossMode mode, const Tensor& dst, const Tensor& src, int64_t H, int64_t W, const Context& ctx) {
  const int64_t B = dst.size(0), C = dst.size(2), n = dst.numel();
  if (n == 0) return;
  dispatch_cuda_float64(src.dtype(), "cross_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cross_gather_kernel<T><<<grid_1d(n), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(dst.data_ptr()), static_cast<const T*>(src.data_ptr()), int(mode), B, int(dst.size(1)),
        int(src.size(1)), C, H, W);
  });
  STEREORT_LAUNCH_CHECK("cross_gather_kernel");
}

void transpose_rc(void* dst, const void* src, DType dtype, int64_t n_outer, int64_t n_inner, int64_t R, int64_t C,
                  int64_t src_outer, int64_t src_inner, int64_t dst_outer, int64_t dst_inner, bool accumulate,
                  const Context& ctx) {
  if (n_outer * n_inner * R * C == 0) return;
  dim3 grid(unsigned(ceil_div(C, kTile)), unsigned(ceil_div(R, kTile)),
            unsigned(std::min<int64_t>(n_outer * n_inner, 65535)));
  if (grid.y > 65535) throw_error(__FILE__, __LINE__, "transpose_rc", "transpose_rc: more than 2M rows");
  dispatch_cuda_float(dtype, "transpose_rc", [&](auto tag) {
    using T = typename decltype(tag)::type;
    transpose_rc_kernel<T><<<grid, dim3(kTile, kTileRows), 0, stream_of(ctx)>>>(
        static_cast<T*>(dst), static_cast<const T*>(src), n_outer, n_inner, R, C, src_outer, src_inner, dst_outer,
        dst_inner, accumulate);
  });
  STEREORT_LAUNCH_CHECK("transpose_rc_kernel");
}

void ss2d_merge(const Tensor& y, const Tensor& o, int64_t H, int64_t W, const Context& ctx) {
  const int64_t B = o.size(0), C = o.size(2);
  if (B * C * H * W == 0) return;
  dim3 grid(unsigned(ceil_div(W, kTile)), unsigned(ceil_div(H, kTile)), unsigned(std::min<int64_t>(B * C, 65535)));
  if (grid.y > 65535) throw_error(__FILE__, __LINE__, "ss2d_merge", "ss2d_merge: H too large");
  dispatch_cuda_float(o.dtype(), "ss2d_merge", [&](auto tag) {
    using T = typename decltype(tag)::type;
    ss2d_merge_kernel<T><<<grid, dim3(kTile, kTileRows), 0, stream_of(ctx)>>>(
        static_cast<T*>(y.data_ptr()), static_cast<const T*>(o.data_ptr()), B * C, C, H, W);
  });
  STEREORT_LAUNCH_CHECK("ss2d_merge_kernel");
}

}  // namespace cuda
}  // namespace stereort
