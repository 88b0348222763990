// cuda/conv1d_causal.cu — causal depthwise conv1d on channel-last (B,L,C) tokens, forward and backward.
//   Block (32, 8): threadIdx.x picks the channel (a warp reads one 32-channel row segment per step: coalesced),
//   threadIdx.y one of 8 runs of kSteps consecutive steps. Each thread keeps its weights and a (K-1)-step halo of
//   inputs in registers and walks its run, so x is read once plus a K-1 halo per run.
//   Backward: the same walk recomputes pre = conv(x) (for silu'), forms e = dout * silu'(pre), and emits
//   dx[t'] = sum_j w[j] e[t'+K-1-j] once the K e-values it needs are in its register window (the walk runs K-1 steps
//   past its run; e = 0 past the end of the sequence). dw and dbias are summed over the block's 8 runs in shared
//   memory and written as one partial per (block, channel); the caller sums the partials (deterministic).
#include <type_traits>

#include "cuda/common.cuh"
#include "ops/conv1d_causal.h"

namespace stereort {
namespace cuda {

namespace {

constexpr int kChannels = 32;  // blockDim.x
constexpr int kRuns = 8;       // blockDim.y
constexpr int kSteps = 32;     // steps per thread

struct ConvParams {
  int64_t B, L, C;
  int64_t sxb, sxl;  // x strides (elements) over batch and steps; unit over channels
  bool has_bias;
};

__device__ __forceinline__ float silu_f(float v) { return v / (1.f + expf(-v)); }
__device__ __forceinline__ float silu_grad_f(float v) {
  float s = 1.f / (1.f + expf(-v));
  return s * (1.f + v * (1.f - s));
}

template <typename T, int K, bool kSilu>
__global__ void causal_conv1d_forward_kernel(T* __restrict__ out, const T* __restrict__ x,
                                             const float* __restrict__ w, const float* __restrict__ bias,
                                             ConvParams p) {
  const int64_t c = int64_t(blockIdx.x) * kChannels + threadIdx.x;
  const int64_t t0 = (int64_t(blockIdx.y) * kRuns + threadIdx.y) * kSteps;
  const int64_t b = blockIdx.z;
  if (c >= p.C || t0 >= p.L) return;
  float wr[K];
#pragma unroll
  for (int j = 0; j < K; ++j) wr[j] = w[c * K + j];
  const float b0 = p.has_bias ? bias[c] : 0.f;
  const T* xb = x + b * p.sxb + c;
  float win[K > 1 ? K - 1 : 1];  // x[t-K+1 .. t-1]
#pragma unroll
  for (int j = 0; j < K - 1; ++j) {
    int64_t s = t0 - (K - 1) + j;
    win[j] = s >= 0 ? to_op(xb[s * p.sxl]) : 0.f;
  }
  const int64_t t_end = min(t0 + kSteps, p.L);
  for (int64_t t = t0; t < t_end; ++t) {
    float xv = to_op(xb[t * p.sxl]);
    float acc = b0 + wr[K - 1] * xv;
#pragma unroll
    for (int j = 0; j < K - 1; ++j) acc += wr[j] * win[j];
#pragma unroll
    for (int j = 0; j + 1 < K - 1; ++j) win[j] = win[j + 1];
    if constexpr (K > 1) win[K - 2] = xv;
    out[(b * p.L + t) * p.C + c] = from_op<T>(kSilu ? silu_f(acc) : acc);
  }
}

template <typename T, int K, bool kSilu>
__global__ void causal_conv1d_backward_kernel(T* __restrict__ dx, float* __restrict__ dw_part,
                                              float* __restrict__ db_part, const T* __restrict__ dout,
                                              const T* __restrict__ x, const float* __restrict__ w,
                                              const float* __restrict__ bias, ConvParams p) {
  __shared__ float s_dw[kRuns][kChannels][K + 1];  // [.][.][K] holds dbias
  const int64_t c = int64_t(blockIdx.x) * kChannels + threadIdx.x;
  const int64_t t0 = (int64_t(blockIdx.y) * kRuns + threadIdx.y) * kSteps;
  const int64_t b = blockIdx.z;
  float acc_dw[K], acc_db = 0.f;
#pragma unroll
  for (int j = 0; j < K; ++j) acc_dw[j] = 0.f;
  if (c < p.C && t0 < p.L) {
    float wr[K];
#pragma unroll
    for (int j = 0; j < K; ++j) wr[j] = w[c * K + j];
    const float b0 = p.has_bias ? bias[c] : 0.f;
    const T* xb = x + b * p.sxb + c;
    const T* gb = dout + b * p.L * p.C + c;
    T* dxb = dx + b * p.L * p.C + c;
    float xwin[K > 1 ? K - 1 : 1], ewin[K > 1 ? K - 1 : 1];  // x and e at t-K+1 .. t-1
#pragma unroll
    for (int j = 0; j < K - 1; ++j) {
      int64_t s = t0 - (K - 1) + j;
      xwin[j] = s >= 0 ? to_op(xb[s * p.sxl]) : 0.f;
      ewin[j] = 0.f;  // e before t0 is not needed: dx is emitted only for t' >= t0
    }
    const int64_t t_run_end = min(t0 + kSteps, p.L);
    const int64_t t_walk_end = t_run_end + K - 1;  // e up to t'+K-1 for the run's last output
    for (int64_t t = t0; t < t_walk_end; ++t) {
      float e = 0.f, xv = 0.f;
      if (t < p.L) {
        xv = to_op(xb[t * p.sxl]);
        e = to_op(gb[t * p.C]);
        if (kSilu) {
          float pre = b0 + wr[K - 1] * xv;
#pragma unroll
          for (int j = 0; j < K - 1; ++j) pre += wr[j] * xwin[j];
          e *= silu_grad_f(pre);
        }
      }
      if (t < t_run_end) {
        acc_db += e;
#pragma unroll
        for (int j = 0; j < K - 1; ++j) acc_dw[j] += e * xwin[j];
        acc_dw[K - 1] += e * xv;
      }
      // dx[t'] with t' = t-K+1: sum_j w[j] e[t-j]; e[t] is current, e[t-j] = ewin[K-1-j] for j >= 1.
      const int64_t tp = t - (K - 1);
      if (tp >= t0 && tp < t_run_end) {
        float g = wr[0] * e;
#pragma unroll
        for (int j = 1; j < K; ++j) g += wr[j] * ewin[K - 1 - j];
        dxb[tp * p.C] = from_op<T>(g);
      }
#pragma unroll
      for (int j = 0; j + 1 < K - 1; ++j) {
        xwin[j] = xwin[j + 1];
        ewin[j] = ewin[j + 1];
      }
      if constexpr (K > 1) {
        xwin[K - 2] = xv;
        ewin[K - 2] = e;
      }
    }
  }
  // Sum the 8 runs of the block, one partial per (block, channel).
#pragma unroll
  for (int j = 0; j < K; ++j) s_dw[threadIdx.y][threadIdx.x][j] = acc_dw[j];
  s_dw[threadIdx.y][threadIdx.x][K] = acc_db;
  __syncthreads();
  if (threadIdx.y == 0 && c < p.C) {
    const int64_t blk = int64_t(blockIdx.z) * gridDim.y + blockIdx.y;
#pragma unroll
    for (int j = 0; j <= K; ++j) {
      float s = 0.f;
      for (int r = 0; r < kRuns; ++r) s += s_dw[r][threadIdx.x][j];
      if (j < K)
        dw_part[(blk * p.C + c) * K + j] = s;
      else
        db_part[blk * p.C + c] = s;
    }
  }
}

ConvParams params_of(const Tensor& x, bool has_bias) {
  return ConvParams{x.size(0), x.size(1), x.size(2), x.stride(0), x.stride(1), has_bias};
}
dim3 grid_of(const ConvParams& p) {
  return dim3(unsigned(ceil_div(p.C, kChannels)), unsigned(ceil_div(p.L, int64_t(kRuns) * kSteps)), unsigned(p.B));
}

// Calls f(std::integral_constant<int, K>) for K in 1..4.
template <typename F>
void dispatch_k(int64_t K, F&& f) {
  switch (K) {
    case 1: f(std::integral_constant<int, 1>{}); return;
    case 2: f(std::integral_constant<int, 2>{}); return;
    case 3: f(std::integral_constant<int, 3>{}); return;
    case 4: f(std::integral_constant<int, 4>{}); return;
    default: STEREORT_THROW("causal_conv1d: CUDA kernel sizes are 1..4, got " + std::to_string(K));
  }
}

}  // namespace

int64_t causal_conv1d_partials(int64_t B, int64_t L) { return B * ceil_div(L, int64_t(kRuns) * kSteps); }

void causal_conv1d_forward(const Tensor& out, const Tensor& x, const Tensor& w2, const Tensor& bias, bool silu,
                           const Context& ctx) {
  ConvParams p = params_of(x, bias.defined());
  if (p.B * p.L * p.C == 0) return;
  const float* bptr = bias.defined() ? bias.data<float>() : nullptr;
  dispatch_cuda_float(x.dtype(), "causal_conv1d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_k(w2.size(1), [&](auto kc) {
      constexpr int K = decltype(kc)::value;
      auto kernel = silu ? causal_conv1d_forward_kernel<T, K, true> : causal_conv1d_forward_kernel<T, K, false>;
      kernel<<<grid_of(p), dim3(kChannels, kRuns), 0, stream_of(ctx)>>>(out.data<T>(), x.data<T>(), w2.data<float>(),
                                                                       bptr, p);
      STEREORT_LAUNCH_CHECK("causal_conv1d_forward_kernel");
    });
  });
}

void causal_conv1d_backward(const Tensor& dx, const Tensor& dw_part, const Tensor& db_part, const Tensor& dout,
                            const Tensor& x, const Tensor& w2, const Tensor& bias, bool silu, const Context& ctx) {
  ConvParams p = params_of(x, bias.defined());
  if (p.B * p.L * p.C == 0) {
    STEREORT_CUDA_CHECK(cudaMemsetAsync(dw_part.data_ptr(), 0, dw_part.nbytes(), stream_of(ctx)));
    STEREORT_CUDA_CHECK(cudaMemsetAsync(db_part.data_ptr(), 0, db_part.nbytes(), stream_of(ctx)));
    return;
  }
  const float* bptr = bias.defined() ? bias.data<float>() : nullptr;
  dispatch_cuda_float(x.dtype(), "causal_conv1d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_k(w2.size(1), [&](auto kc) {
      constexpr int K = decltype(kc)::value;
      auto kernel = silu ? causal_conv1d_backward_kernel<T, K, true> : causal_conv1d_backward_kernel<T, K, false>;
      kernel<<<grid_of(p), dim3(kChannels, kRuns), 0, stream_of(ctx)>>>(
          dx.data<T>(), dw_part.data<float>(), db_part.data<float>(), dout.data<T>(), x.data<T>(), w2.data<float>(),
          bptr, p);
      STEREORT_LAUNCH_CHECK("causal_conv1d_backward_kernel");
    });
  });
}

}  // namespace cuda
}  // namespace stereort
