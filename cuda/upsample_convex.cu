// cuda/upsample_convex.cu — RAFT convex upsampling (definitions in ops/upsample_convex.h).
//   Forward: one thread per output sub-pixel (b, Y = f*y+i, X = f*x+j), X fastest so the output rows are written
//   coalesced; the 9 logits are read once, softmaxed in fp32 and applied to every channel.
//   Backward, two gathers (no atomics):
//     1. per sub-pixel: recompute w, dw_k = sum_c f flow[c, nbr_k] g[c,Y,X], write dmask = w (dw - <w, dw>) and the
//        probabilities w into an fp32 scratch tensor (B,9ff,h,w);
//     2. per low-res flow element (b, c, y', x'): dflow = f sum_k sum_(i,j) w_k(y'-ky+1, x'-kx+1, i, j) g[...].
#include "cuda/common.cuh"
#include "ops/upsample_convex.h"

namespace stereort {
namespace cuda {
namespace {

struct Geom {
  int64_t B, C, h, w;
  int f;
};

// Softmax of the 9 logits of sub-pixel s at (b, y, x).
template <typename M>
__device__ __forceinline__ void tap_weights(float (&wt)[9], const M* mask, const Geom& g, int64_t b, int s, int64_t y,
                                            int64_t x) {
  const int64_t ff = int64_t(g.f) * g.f, plane = g.h * g.w;
  const M* p = mask + (b * 9 * ff + s) * plane + y * g.w + x;
  float m = -INFINITY;
#pragma unroll
  for (int k = 0; k < 9; ++k) {
    wt[k] = to_op(p[k * ff * plane]);
    m = fmaxf(m, wt[k]);
  }
  float z = 0.f;
#pragma unroll
  for (int k = 0; k < 9; ++k) z += (wt[k] = expf(wt[k] - m));
  const float inv = 1.f / z;
#pragma unroll
  for (int k = 0; k < 9; ++k) wt[k] *= inv;
}

template <typename M>
__global__ void convex_forward_kernel(float* up, const float* flow, const M* mask, Geom g) {
  const int64_t FW = g.f * g.w, FH = g.f * g.h, n = g.B * FH * FW;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t X = t % FW, Y = (t / FW) % FH, b = t / (FW * FH);
    const int64_t x = X / g.f, y = Y / g.f;
    const int s = int(Y % g.f) * g.f + int(X % g.f);
    float wt[9];
    tap_weights(wt, mask, g, b, s, y, x);
    for (int64_t c = 0; c < g.C; ++c) {
      const float* fl = flow + (b * g.C + c) * g.h * g.w;
      float v = 0.f;
#pragma unroll
      for (int k = 0; k < 9; ++k) {
        const int64_t yy = y + k / 3 - 1, xx = x + k % 3 - 1;
        if (yy >= 0 && yy < g.h && xx >= 0 && xx < g.w) v += wt[k] * fl[yy * g.w + xx];
      }
      up[((b * g.C + c) * FH + Y) * FW + X] = float(g.f) * v;
    }
  }
}

template <typename M>
__global__ void convex_dmask_kernel(M* dmask, float* prob, const float* dup, const float* flow, const M* mask,
                                    Geom g) {
  const int64_t FW = g.f * g.w, FH = g.f * g.h, n = g.B * FH * FW, ff = int64_t(g.f) * g.f, plane = g.h * g.w;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t X = t % FW, Y = (t / FW) % FH, b = t / (FW * FH);
    const int64_t x = X / g.f, y = Y / g.f;
    const int s = int(Y % g.f) * g.f + int(X % g.f);
    float wt[9], dw[9];
    tap_weights(wt, mask, g, b, s, y, x);
#pragma unroll
    for (int k = 0; k < 9; ++k) dw[k] = 0.f;
    for (int64_t c = 0; c < g.C; ++c) {
      const float gv = float(g.f) * dup[((b * g.C + c) * FH + Y) * FW + X];
      const float* fl = flow + (b * g.C + c) * plane;
#pragma unroll
      for (int k = 0; k < 9; ++k) {
        const int64_t yy = y + k / 3 - 1, xx = x + k % 3 - 1;
        if (yy >= 0 && yy < g.h && xx >= 0 && xx < g.w) dw[k] += fl[yy * g.w + xx] * gv;
      }
    }
    float wdw = 0.f;
#pragma unroll
    for (int k = 0; k < 9; ++k) wdw += wt[k] * dw[k];
    const int64_t base = (b * 9 * ff + s) * plane + y * g.w + x;
#pragma unroll
    for (int k = 0; k < 9; ++k) {
      dmask[base + k * ff * plane] = from_op<M>(wt[k] * (dw[k] - wdw));
      prob[base + k * ff * plane] = wt[k];
    }
  }
}

__global__ void convex_dflow_kernel(float* dflow, const float* prob, const float* dup, Geom g) {
  const int64_t FW = g.f * g.w, FH = g.f * g.h, n = g.B * g.C * g.h * g.w, ff = int64_t(g.f) * g.f,
                plane = g.h * g.w;
  for (int64_t t = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; t < n; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t xp = t % g.w, yp = (t / g.w) % g.h, bc = t / plane, b = bc / g.C;
    const float* gd = dup + bc * FH * FW;
    float acc = 0.f;
    for (int k = 0; k < 9; ++k) {
      const int64_t y = yp - (k / 3 - 1), x = xp - (k % 3 - 1);  // the low-res pixel whose neighbour k is (yp, xp)
      if (y < 0 || y >= g.h || x < 0 || x >= g.w) continue;
      const float* pk = prob + (b * 9 * ff + k * ff) * plane + y * g.w + x;
      for (int i = 0; i < g.f; ++i)
        for (int j = 0; j < g.f; ++j)
          acc += pk[(int64_t(i) * g.f + j) * plane] * gd[(y * g.f + i) * FW + x * g.f + j];
    }
    dflow[t] = float(g.f) * acc;
  }
}

Geom geom_of(const Tensor& flow, int64_t factor) {
  return {flow.size(0), flow.size(1), flow.size(2), flow.size(3), int(factor)};
}

}  // namespace

void upsample_convex_forward(const Tensor& up, const Tensor& flow, const Tensor& mask, int64_t factor,
                             const Context& ctx) {
  if (up.numel() == 0) return;
  Geom g = geom_of(flow, factor);
  dispatch_cuda_float(mask.dtype(), "upsample_convex", [&](auto tag) {
    using M = typename decltype(tag)::type;
    convex_forward_kernel<M><<<grid_1d(g.B * g.h * g.w * factor * factor), kThreads, 0, stream_of(ctx)>>>(
        static_cast<float*>(up.data_ptr()), static_cast<const float*>(flow.data_ptr()),
        static_cast<const M*>(mask.data_ptr()), g);
    STEREORT_LAUNCH_CHECK("convex_forward_kernel");
  });
}

void upsample_convex_backward(const Tensor& dflow, const Tensor& dmask, const Tensor& dup, const Tensor& flow,
                              const Tensor& mask, int64_t factor, const Context& ctx) {
  if (dmask.numel() == 0) return;
  Geom g = geom_of(flow, factor);
  cudaStream_t st = stream_of(ctx);
  float* prob = static_cast<float*>(cuda_caching_alloc(size_t(mask.numel()) * sizeof(float), ctx.device.index,
                                                       ctx.stream));
  dispatch_cuda_float(mask.dtype(), "upsample_convex backward", [&](auto tag) {
    using M = typename decltype(tag)::type;
    convex_dmask_kernel<M><<<grid_1d(g.B * g.h * g.w * factor * factor), kThreads, 0, st>>>(
        static_cast<M*>(dmask.data_ptr()), prob, static_cast<const float*>(dup.data_ptr()),
        static_cast<const float*>(flow.data_ptr()), static_cast<const M*>(mask.data_ptr()), g);
    STEREORT_LAUNCH_CHECK("convex_dmask_kernel");
  });
  if (dflow.numel() > 0) {
    convex_dflow_kernel<<<grid_1d(dflow.numel()), kThreads, 0, st>>>(static_cast<float*>(dflow.data_ptr()), prob,
                                                                      static_cast<const float*>(dup.data_ptr()), g);
    STEREORT_LAUNCH_CHECK("convex_dflow_kernel");
  }
  cuda_caching_free(prob, ctx.device.index);  // stream-ordered reuse keeps this safe
}

}  // namespace cuda
}  // namespace stereort
