// cuda/corr1d.cu — RAFT-Stereo pyramid pooling and lookup (definitions in ops/corr1d.h); the level-0 volume is a
// cuBLAS GEMM issued from ops/corr1d.cpp.
//   Pooling: one thread per output (forward) / per input element (backward, a gather: x -> x/2), fp32.
//   Lookup: one thread per (query, level); consecutive threads are consecutive x1, so the (B, L*K, H, W1) output is
//   written coalesced; each query reads 2r+2 consecutive values of its own row. Backward: the level gradients are
//   zeroed with cudaMemsetAsync, then each (query, level) thread writes the 2r+2 entries of its own row — position
//   x0-r+j receives (1-a) g[j] + a g[j-1] — so there are no atomics and no races.
#include "cuda/common.cuh"
#include "ops/corr1d.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kMaxLevels = 8;
struct Levels {
  float* ptr[kMaxLevels];  // (B,H,W1,Wi) contiguous
  int width[kMaxLevels];
  int count;
};

__global__ void pool_forward_kernel(float* out, const float* in, int64_t rows, int W, int Wo) {
  const int64_t n = rows * Wo;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / Wo;
    const int j = int(i % Wo);
    out[i] = 0.5f * (in[r * W + 2 * j] + in[r * W + 2 * j + 1]);
  }
}

__global__ void pool_backward_kernel(float* din, const float* dout, int64_t rows, int W, int Wo) {
  const int64_t n = rows * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / W;
    const int x = int(i % W);
    din[i] = x / 2 < Wo ? 0.5f * dout[r * Wo + x / 2] : 0.f;
  }
}

// Left tap and weight at level i: p = X 2^-i (exact scaling), x0 = floor(p). valid = false for non-finite or absurd
// coordinates (their taps all read zero).
struct Tap {
  int x0;
  float a;
  bool valid;
};
__device__ __forceinline__ Tap level_tap(float X, int level) {
  const float p = ldexpf(X, -level);
  if (!(fabsf(p) < 1e9f)) return {0, 0.f, false};
  const float f = floorf(p);
  return {int(f), p - f, true};
}

// Thread (q, level) for q = (b*H + y)*W1 + x1 in the fastest position.
__global__ void lookup_forward_kernel(float* out, Levels lv, const float* coords, int64_t B, int64_t H, int64_t W1,
                                      int radius) {
  const int64_t nq = B * H * W1, n = nq * lv.count;
  const int K = 2 * radius + 1;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int level = int(t / nq);
    const int64_t q = t % nq, x = q % W1, b = q / (H * W1), y = (q / W1) % H;
    const int Wi = lv.width[level];
    const float* row = lv.ptr[level] + q * Wi;
    const Tap tp = level_tap(coords[q], level);
    float* o = out + ((b * lv.count + level) * K * H + y) * W1 + x;  // channel level*K + k, stride H*W1
    for (int k = 0; k < K; ++k) {
      float v = 0.f;
      if (tp.valid) {
        const int x0 = tp.x0 + k - radius;
        if (x0 >= 0 && x0 < Wi) v += (1.f - tp.a) * row[x0];
        if (x0 + 1 >= 0 && x0 + 1 < Wi) v += tp.a * row[x0 + 1];
      }
      o[int64_t(k) * H * W1] = v;
    }
  }
}

__global__ void lookup_backward_kernel(Levels dlv, const float* dout, const float* coords, int64_t B, int64_t H,
                                       int64_t W1, int radius) {
  const int64_t nq = B * H * W1, n = nq * dlv.count;
  const int K = 2 * radius + 1;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int level = int(t / nq);
    const int64_t q = t % nq, x = q % W1, b = q / (H * W1), y = (q / W1) % H;
    const Tap tp = level_tap(coords[q], level);
    if (!tp.valid) continue;
    const int Wi = dlv.width[level];
    float* row = dlv.ptr[level] + q * Wi;
    const float* g = dout + ((b * dlv.count + level) * K * H + y) * W1 + x;
    // position x0 - r + j (j = 0..2r+1) collects (1-a) from tap j and a from tap j-1
    for (int j = 0; j <= K; ++j) {
      const int pos = tp.x0 - radius + j;
      if (pos < 0 || pos >= Wi) continue;
      float v = 0.f;
      if (j < K) v += (1.f - tp.a) * g[int64_t(j) * H * W1];
      if (j > 0) v += tp.a * g[int64_t(j - 1) * H * W1];
      row[pos] = v;
    }
  }
}

Levels make_levels(const std::vector<Tensor>& ts) {
  Levels lv{};
  lv.count = int(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) {
    lv.ptr[i] = static_cast<float*>(ts[i].data_ptr());
    lv.width[i] = int(ts[i].size(3));
  }
  return lv;
}

}  // namespace

void corr1d_pool_forward(const Tensor& out, const Tensor& in, const Context& ctx) {
  const int W = int(in.size(-1)), Wo = int(out.size(-1));
  const int64_t rows = in.numel() / W;
  pool_forward_kernel<<<grid_1d(rows * Wo), kThreads, 0, stream_of(ctx)>>>(
      static_cast<float*>(out.data_ptr()), static_cast<const float*>(in.data_ptr()), rows, W, Wo);
  STEREORT_LAUNCH_CHECK("pool_forward_kernel");
}

void corr1d_pool_backward(const Tensor& din, const Tensor& dout, const Context& ctx) {
  const int W = int(din.size(-1)), Wo = int(dout.size(-1));
  if (din.numel() == 0) return;
  const int64_t rows = din.numel() / W;
  pool_backward_kernel<<<grid_1d(rows * W), kThreads, 0, stream_of(ctx)>>>(
      static_cast<float*>(din.data_ptr()), static_cast<const float*>(dout.data_ptr()), rows, W, Wo);
  STEREORT_LAUNCH_CHECK("pool_backward_kernel");
}

void corr1d_lookup_forward(const Tensor& out, const std::vector<Tensor>& pyramid, const Tensor& coords,
                           int64_t radius, const Context& ctx) {
  const int64_t B = coords.size(0), H = coords.size(1), W1 = coords.size(2);
  if (out.numel() == 0) return;
  Levels lv = make_levels(pyramid);
  lookup_forward_kernel<<<grid_1d(B * H * W1 * lv.count), kThreads, 0, stream_of(ctx)>>>(
      static_cast<float*>(out.data_ptr()), lv, static_cast<const float*>(coords.data_ptr()), B, H, W1, int(radius));
  STEREORT_LAUNCH_CHECK("lookup_forward_kernel");
}

void corr1d_lookup_backward(const std::vector<Tensor>& dpyramid, const Tensor& dout, const Tensor& coords,
                            int64_t radius, const Context& ctx) {
  const int64_t B = coords.size(0), H = coords.size(1), W1 = coords.size(2);
  for (const Tensor& d : dpyramid)
    STEREORT_CUDA_CHECK(cudaMemsetAsync(d.data_ptr(), 0, d.nbytes(), stream_of(ctx)));
  if (B * H * W1 == 0) return;
  Levels lv = make_levels(dpyramid);
  lookup_backward_kernel<<<grid_1d(B * H * W1 * lv.count), kThreads, 0, stream_of(ctx)>>>(
      lv, static_cast<const float*>(dout.data_ptr()), static_cast<const float*>(coords.data_ptr()), B, H, W1,
      int(radius));
  STEREORT_LAUNCH_CHECK("lookup_backward_kernel");
}

}  // namespace cuda
}  // namespace stereort
