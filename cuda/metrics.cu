// cuda/metrics.cu — metric sums on the GPU (definitions in ops/metrics.h).
//   Every metric is a handful of sums over pixels. One kernel shape serves them all: a grid-stride loop that
//   accumulates K doubles per thread, a block reduction per value, and one row of K partials per block; the host adds
//   the partials (at most kMaxBlocks rows), so results are deterministic and need no atomics. Inputs are contiguous
//   F32 (the ops layer casts); sums are double. The SSIM kernel evaluates the 11x11 Gaussian window in double too:
//   E[x^2] - mu^2 cancels badly in float on smooth images.
#include <vector>

#include "cuda/common.cuh"
#include "ops/metrics.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kMaxBlocks = 1024;

// Reduce K per-thread values over the block and write them to partials[blockIdx.x * K + k].
template <int K>
__device__ void write_block_sums(double (&v)[K], double* partials) {
  __shared__ double smem[32];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    double s = block_sum(v[k], smem);
    if (threadIdx.x == 0) partials[blockIdx.x * K + k] = s;
    __syncthreads();  // smem is reused by the next value
  }
}

__global__ void disparity_sums_kernel(double* partials, const float* pred, const float* gt, const float* mask,
                                      int64_t n, double max_disp) {
  double v[7] = {0, 0, 0, 0, 0, 0, 0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double g = gt[i];
    if (mask && mask[i] == 0.f) continue;
    if (!isfinite(g) || !(g > 0) || !(g < max_disp)) continue;
    double e = fabs(double(pred[i]) - g);
    v[0] += 1;
    v[1] += e;
    v[2] += !(e <= 1.0);  // strict e > N; a NaN prediction counts as an outlier
    v[3] += !(e <= 2.0);
    v[4] += !(e <= 3.0);
    v[5] += !(e <= 5.0);
    v[6] += (!(e <= 3.0) && !(e <= 0.05 * fabs(g)));
  }
  write_block_sums<7>(v, partials);
}

__global__ void depth_mae_kernel(double* partials, const float* pred, const float* gt, int64_t n, double bf) {
  double v[2] = {0, 0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double g = gt[i];
    if (!isfinite(g) || !(g > 0)) continue;
    v[0] += 1;
    v[1] += fabs(bf / (double(pred[i]) + 1e-6) - bf / (g + 1e-6));
  }
  write_block_sums<2>(v, partials);
}

__global__ void moments_kernel(double* partials, const float* a, const float* b, int64_t n, double ca, double cb) {
  double v[6] = {0, 0, 0, 0, 0, 0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    double x = a[i], y = b[i];
    v[0] += x;
    v[1] += y;
    v[2] += (x - ca) * (x - ca);
    v[3] += (y - cb) * (y - cb);
    v[4] += (x - ca) * (y - cb);
    v[5] += (x - y) * (x - y);
  }
  write_block_sums<6>(v, partials);
}

// One thread per valid window position (plane p, top-left r, c) of (planes,H,W) images; window weights g[i]*g[j].
__global__ void ssim_kernel(double* partials, const float* a, const float* b, int64_t planes, int64_t H, int64_t W,
                            double c1, double c2) {
  __shared__ double g[11];
  if (threadIdx.x < 11) {
    double t = 0;
    for (int i = 0; i < 11; ++i) t += exp(-double((i - 5) * (i - 5)) / 4.5);  // 2 sigma^2 = 4.5
    g[threadIdx.x] = exp(-double((int(threadIdx.x) - 5) * (int(threadIdx.x) - 5)) / 4.5) / t;
  }
  __syncthreads();
  const int64_t oh = H - 10, ow = W - 10, n = planes * oh * ow;
  double v[1] = {0};
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = i % ow, r = (i / ow) % oh, p = i / (ow * oh);
    const float* pa = a + (p * H + r) * W + c;
    const float* pb = b + (p * H + r) * W + c;
    double mx = 0, my = 0, sxx = 0, syy = 0, sxy = 0;
    for (int u = 0; u < 11; ++u) {
      double rx = 0, ry = 0, rxx = 0, ryy = 0, rxy = 0;
      for (int q = 0; q < 11; ++q) {
        double x = pa[u * W + q], y = pb[u * W + q], w = g[q];
        rx += w * x;
        ry += w * y;
        rxx += w * x * x;
        ryy += w * y * y;
        rxy += w * x * y;
      }
      mx += g[u] * rx;
      my += g[u] * ry;
      sxx += g[u] * rxx;
      syy += g[u] * ryy;
      sxy += g[u] * rxy;
    }
    double vx = sxx - mx * mx, vy = syy - my * my, cxy = sxy - mx * my;
    v[0] += ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
  }
  write_block_sums<1>(v, partials);
}

// Launch `launch(blocks, partials)` and add the per-block partials on the host.
template <int K, typename F>
void run_sums(double* out, int64_t work, const Context& ctx, F&& launch) {
  const int blocks = int(std::min<int64_t>(std::max<int64_t>(ceil_div(work, kThreads), 1), kMaxBlocks));
  double* d_partials = static_cast<double*>(cuda_caching_alloc(size_t(blocks) * K * sizeof(double), ctx.device.index,
                                                               ctx.stream));
  launch(blocks, d_partials);
  STEREORT_LAUNCH_CHECK("metric sums");
  std::vector<double> h(size_t(blocks) * K);
  STEREORT_CUDA_CHECK(cudaMemcpyAsync(h.data(), d_partials, h.size() * sizeof(double), cudaMemcpyDeviceToHost,
                                      stream_of(ctx)));
  STEREORT_CUDA_CHECK(cudaStreamSynchronize(stream_of(ctx)));
  cuda_caching_free(d_partials, ctx.device.index);
  for (int k = 0; k < K; ++k) out[k] = 0;
  for (int blk = 0; blk < blocks; ++blk)
    for (int k = 0; k < K; ++k) out[k] += h[size_t(blk) * K + k];
}

}  // namespace

void disparity_metric_sums(double* sums, const Tensor& pred, const Tensor& gt, const Tensor& mask, double max_disp,
                           const Context& ctx) {
  const int64_t n = pred.numel();
  const float* m = mask.defined() ? static_cast<const float*>(mask.data_ptr()) : nullptr;
  run_sums<7>(sums, n, ctx, [&](int blocks, double* partials) {
    disparity_sums_kernel<<<blocks, kThreads, 0, stream_of(ctx)>>>(
        partials, static_cast<const float*>(pred.data_ptr()), static_cast<const float*>(gt.data_ptr()), m, n, max_disp);
  });
}

void depth_mae_sums(double* sums, const Tensor& pred, const Tensor& gt, double bf, const Context& ctx) {
  const int64_t n = pred.numel();
  run_sums<2>(sums, n, ctx, [&](int blocks, double* partials) {
    depth_mae_kernel<<<blocks, kThreads, 0, stream_of(ctx)>>>(partials, static_cast<const float*>(pred.data_ptr()),
                                                             static_cast<const float*>(gt.data_ptr()), n, bf);
  });
}

void image_moment_sums(double* sums, const Tensor& a, const Tensor& b, double ca, double cb, const Context& ctx) {
  const int64_t n = a.numel();
  run_sums<6>(sums, n, ctx, [&](int blocks, double* partials) {
    moments_kernel<<<blocks, kThreads, 0, stream_of(ctx)>>>(partials, static_cast<const float*>(a.data_ptr()),
                                                           static_cast<const float*>(b.data_ptr()), n, ca, cb);
  });
}

void ssim_window_sum(double* sum, const Tensor& a, const Tensor& b, double c1, double c2, const Context& ctx) {
  const int64_t planes = a.size(0), H = a.size(1), W = a.size(2);
  run_sums<1>(sum, planes * (H - 10) * (W - 10), ctx, [&](int blocks, double* partials) {
    ssim_kernel<<<blocks, kThreads, 0, stream_of(ctx)>>>(partials, static_cast<const float*>(a.data_ptr()),
                                                        static_cast<const float*>(b.data_ptr()), planes, H, W, c1, c2);
  });
}

}  // namespace cuda
}  // namespace stereort
