// cuda/cost_volume.cu — GwcNet volumes on the GPU (definitions in ops/cost_volume.h).
//
// Group-wise forward, Cg <= 8: gwc_forward_stream_kernel (see there; every thread streams its outputs four
// disparities at a time). Cg > 8 (or STEREORT_GWC_TILED=1): the tiled kernel (kernels.md §6 design note): a block
// owns one row y and a 64-wide x tile of GC groups. It stages
// L[c, y, x0 : x0+64) and R[c, y, x0-RO : x0+64) — RO = ceil16(D)-1 >= D-1, zero-filled outside [0, W) — in shared
// memory once per channel chunk (fp32), not once per disparity. Each thread owns 4 consecutive x (one float4 of L)
// and 16 disparities of one group: per channel it reads 1 float4 of L and 5 float4 of R (the 19 R values its
// 4 x 16 outputs touch) and does 64 FMAs into registers. 16 threads span the tile, so every shared-memory read of a
// quarter-warp is 8 consecutive float4 (no bank conflicts) and every store is a 16-lane run along x (float4 stores
// for f32, 8-byte stores for f16/bf16 when W % 4 == 0). x < d needs no branch: R is zero left of the image.
//   RO is a multiple of 16 minus 1 so that each thread's R window starts on a float4 boundary; its last value is
//   R[x0 + 63], so a row of sR is ceil16(D) + 64 floats.
// Group-wise backward (gather per (c, y, x), no atomics):
//   dL[c,x] = (1/Cg) sum_d dV[g,d,x] R[c,x-d]  and  dR[c,x] = (1/Cg) sum_d dV[g,d,x+d] L[c,x+d].
//   A thread owns 4 consecutive x and up to 4 channels of one group; R[c, x0-D+1 : x0+64) and L[c, x0 : x0+64+D-1)
//   sit in shared memory, and as d advances each thread slides its 4-wide R and L windows by one (one new shared
//   load per channel per d). dV is read straight from global memory (each value by the threads of its group's
//   channel chunks, from L1/L2).
// Concatenation volume: pure copies (forward) and sums over d (backward), one thread per element, coalesced in x.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "cuda/common.cuh"
#include "ops/cost_volume.h"

namespace stereort {
namespace cuda {
namespace {

constexpr int kTileX = 64;                // x positions per block
constexpr int kVecX = 4;                  // consecutive x per thread
constexpr int kLanesX = kTileX / kVecX;   // threads spanning one tile
constexpr int kChunkD = 16;               // disparities per forward thread
constexpr int kBwdChannels = 4;           // channels per backward thread

struct GwcParams {
  int64_t B, C, H, W;
  int G, Cg, D;
  int GC;      // groups per block
  int nDC;     // disparity chunks per block (forward) or channel slots per group (backward)
  int dblocks; // blocks along the disparity chunks (forward: D > 256 splits over the grid)
  int CK;      // channels per group staged per pass
  int RO;      // sR origin: sR[u] holds x = x0 - RO + u
  int RW, LW;  // shared row widths
  float inv_cg;
  bool vec_store;
};

template <typename V>
using V2 = typename std::conditional<std::is_same<V, __half>::value, __half2, __nv_bfloat162>::type;
template <typename V>
__device__ __forceinline__ V2<V> pack2(float a, float b) {
  if constexpr (std::is_same<V, __half>::value) return __floats2half2_rn(a, b);
  else return __floats2bfloat162_rn(a, b);
}

template <typename V>
__device__ __forceinline__ void store4(V* p, float a, float b, float c, float d) {
  if constexpr (std::is_same<V, float>::value) {
    *reinterpret_cast<float4*>(p) = make_float4(a, b, c, d);
  } else {  // one 8-byte store: 16 lanes write a full 128-byte line per instruction (no partial sectors)
    union {
      V2<V> h[2];
      uint2 u;
    } pk;
    pk.h[0] = pack2<V>(a, b);
    pk.h[1] = pack2<V>(c, d);
    *reinterpret_cast<uint2*>(p) = pk.u;
  }
}

// Stage rows [row = gl*CK + cc] of `src` (B,C,H,W) for x = x0 - origin + u, u in [0, width), channels
// g0*Cg + gl*Cg + c0 + cc; zero outside the image, past the last group or past the chunk's nc channels.
template <typename T>
__device__ __forceinline__ void stage_rows(float* dst, const T* src, const GwcParams& p, int64_t b, int64_t y,
                                           int g0, int c0, int nc, int x0, int origin, int width) {
  const int rows = p.GC * p.CK;
  for (int i = threadIdx.x; i < rows * width; i += blockDim.x) {
    const int row = i / width, u = i - row * width;
    const int gl = row / p.CK, cc = row - gl * p.CK;
    const int g = g0 + gl;
    const int64_t x = int64_t(x0) - origin + u;
    float v = 0.f;
    if (g < p.G && cc < nc && x >= 0 && x < p.W)
      v = to_op(src[((b * p.C + int64_t(g) * p.Cg + c0 + cc) * p.H + y) * p.W + x]);
    dst[i] = v;
  }
}

// grid (ceil(W/64), H, B * ceil(G/GC) * dblocks), block GC * nDC * 16 <= 256 threads, dynamic smem
// GC*CK*(64 + RW) floats.
template <typename T, typename V>
__global__ void __launch_bounds__(256) gwc_forward_kernel(V* vol, const T* left, const T* right, GwcParams p) {
  extern __shared__ float4 smem4[];
  float* sL = reinterpret_cast<float*>(smem4);  // [GC*CK][64]
  float* sR = sL + p.GC * p.CK * kTileX;        // [GC*CK][RW]
  const int gchunks = (p.G + p.GC - 1) / p.GC;
  const int x0 = blockIdx.x * kTileX;
  const int zb = blockIdx.z / p.dblocks, dblock = blockIdx.z % p.dblocks;
  const int64_t y = blockIdx.y, b = zb / gchunks;
  const int g0 = (zb % gchunks) * p.GC;
  const int tx = threadIdx.x % kLanesX, item = threadIdx.x / kLanesX;
  const int dc = item % p.nDC, gl = item / p.nDC;
  const int g = g0 + gl, d0 = (dblock * p.nDC + dc) * kChunkD;
  const bool active = g < p.G && d0 < p.D;

  float acc[kChunkD][kVecX];
#pragma unroll
  for (int j = 0; j < kChunkD; ++j)
#pragma unroll
    for (int i = 0; i < kVecX; ++i) acc[j][i] = 0.f;

  for (int c0 = 0; c0 < p.Cg; c0 += p.CK) {
    const int nc = min(p.CK, p.Cg - c0);
    stage_rows(sL, left, p, b, y, g0, c0, nc, x0, 0, kTileX);
    stage_rows(sR, right, p, b, y, g0, c0, nc, x0, p.RO, p.RW);
    __syncthreads();
    if (active) {
      const int u0 = kVecX * tx - d0 + p.RO - (kChunkD - 1);  // multiple of 4, >= 0
      for (int cc = 0; cc < nc; ++cc) {
        const float4 l4 = *reinterpret_cast<const float4*>(sL + (gl * p.CK + cc) * kTileX + kVecX * tx);
        const float l[kVecX] = {l4.x, l4.y, l4.z, l4.w};
        const float* rrow = sR + (gl * p.CK + cc) * p.RW + u0;
        float r[kChunkD + kVecX];  // r[m] = R[x0 + 4tx - d0 - 15 + m]
#pragma unroll
        for (int q = 0; q < (kChunkD + kVecX) / 4; ++q) {
          const float4 v = *reinterpret_cast<const float4*>(rrow + 4 * q);
          r[4 * q] = v.x;
          r[4 * q + 1] = v.y;
          r[4 * q + 2] = v.z;
          r[4 * q + 3] = v.w;
        }
        // out(x = x0+4tx+i, d = d0+j) += L[x] R[x-d] = l[i] * r[15 + i - j]
#pragma unroll
        for (int j = 0; j < kChunkD; ++j)
#pragma unroll
          for (int i = 0; i < kVecX; ++i) acc[j][i] = fmaf(l[i], r[kChunkD - 1 + i - j], acc[j][i]);
      }
    }
    __syncthreads();
  }
  if (!active) return;
  const int64_t xs = int64_t(x0) + kVecX * tx;
  if (xs >= p.W) return;
  for (int j = 0; j < kChunkD; ++j) {
    const int d = d0 + j;
    if (d >= p.D) break;
    V* o = vol + ((((b * p.G + g) * p.D + d) * p.H + y) * p.W) + xs;
    if (p.vec_store && xs + kVecX <= p.W) {
      store4(o, acc[j][0] * p.inv_cg, acc[j][1] * p.inv_cg, acc[j][2] * p.inv_cg, acc[j][3] * p.inv_cg);
    } else {
#pragma unroll
      for (int i = 0; i < kVecX; ++i)
        if (xs + i < p.W) o[i] = from_op<V>(acc[j][i] * p.inv_cg);
    }
  }
}

// Streaming forward for Cg <= 8 (StereoMamba and GwcNet both have Cg = 8). grid (ceil(W/64), H, B * ceil(G/GC)),
// block GC * 16 threads, dynamic smem GC*Cg*RW floats with sR[u] holding x = x0 - RO + u, RO = ceil4(D).
// A thread keeps L[c, y, x : x+4) of its group's channels in registers and walks the disparities four at a time:
// per channel two aligned float4 of R (R[x-d0-4 : x-d0+4)) form an 8-wide window, giving 16 FMAs; the 4 x 4 outputs are stored right away, so stores stream out while the block
// computes (no 64-register accumulator, higher occupancy than gwc_forward_kernel).
constexpr int kStreamMaxCg = 8;

template <typename T, typename V>
__global__ void __launch_bounds__(256) gwc_forward_stream_kernel(V* vol, const T* left, const T* right, GwcParams p) {
  extern __shared__ float4 smem4[];
  float* sR = reinterpret_cast<float*>(smem4);  // [GC*Cg][RW]
  const int gchunks = (p.G + p.GC - 1) / p.GC;
  const int x0 = blockIdx.x * kTileX;
  const int64_t y = blockIdx.y, b = blockIdx.z / gchunks;
  const int g0 = (blockIdx.z % gchunks) * p.GC;
  const int tx = threadIdx.x % kLanesX, gl = threadIdx.x / kLanesX;
  const int g = g0 + gl;
  // stage R rows: element e = row * RW + u, consecutive threads on consecutive u (coalesced); kBatch independent
  // loads per thread are in flight before their shared-memory stores
  constexpr int kBatch = 8;
  const int total = p.GC * p.Cg * p.RW;
  for (int e0 = 0; e0 < total; e0 += kBatch * int(blockDim.x)) {
    float v[kBatch];
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int e = e0 + k * int(blockDim.x) + int(threadIdx.x);
      const int row = e / p.RW, u = e - row * p.RW;
      const int gg = g0 + row / p.Cg, c = row - (row / p.Cg) * p.Cg;
      const int x = x0 - p.RO + u;
      v[k] = 0.f;
      if (e < total && gg < p.G && x >= 0 && x < p.W)
        v[k] = to_op(right[((b * p.C + int64_t(gg) * p.Cg + c) * p.H + y) * p.W + x]);
    }
#pragma unroll
    for (int k = 0; k < kBatch; ++k) {
      const int e = e0 + k * int(blockDim.x) + int(threadIdx.x);
      if (e < total) sR[e] = v[k];
    }
  }
  // this thread's L values
  const int64_t xs = int64_t(x0) + kVecX * tx;
  float l[kStreamMaxCg][kVecX];
#pragma unroll
  for (int c = 0; c < kStreamMaxCg; ++c)
#pragma unroll
    for (int i = 0; i < kVecX; ++i) {
      float v = 0.f;
      if (c < p.Cg && g < p.G && xs + i < p.W)
        v = to_op(left[((b * p.C + int64_t(g) * p.Cg + c) * p.H + y) * p.W + xs + i]);
      l[c][i] = v;
    }
  __syncthreads();
  if (g >= p.G || xs >= p.W) return;
  const bool vec = p.vec_store && xs + kVecX <= p.W;
  const float* rbase = sR + gl * p.Cg * p.RW + p.RO + kVecX * tx;  // rbase[k] = R[xs + k]
  V* obase = vol + (((b * p.G + g) * p.D) * p.H + y) * p.W + xs;  // + d*H*W
  const int64_t dstride = p.H * p.W;
  for (int d0 = 0; d0 < p.D; d0 += 4) {
    float acc[4][kVecX];
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int i = 0; i < kVecX; ++i) acc[j][i] = 0.f;
#pragma unroll
    for (int c = 0; c < kStreamMaxCg; ++c) {
      if (c < p.Cg) {
        const float* rr = rbase + c * p.RW - d0;
        const float4 a = *reinterpret_cast<const float4*>(rr - 4), q = *reinterpret_cast<const float4*>(rr);
        const float w[8] = {a.x, a.y, a.z, a.w, q.x, q.y, q.z, q.w};  // w[k] = R[xs - d0 - 4 + k]
        // out(xs + i, d0 + j) += L[xs + i] R[xs + i - d0 - j] = l[c][i] w[4 + i - j]
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int i = 0; i < kVecX; ++i) acc[j][i] = fmaf(l[c][i], w[4 + i - j], acc[j][i]);
      }
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      if (d0 + j >= p.D) break;
      V* o = obase + int64_t(d0 + j) * dstride;
      if (vec) {
        store4(o, acc[j][0] * p.inv_cg, acc[j][1] * p.inv_cg, acc[j][2] * p.inv_cg, acc[j][3] * p.inv_cg);
      } else {
#pragma unroll
        for (int i = 0; i < kVecX; ++i)
          if (xs + i < p.W) o[i] = from_op<V>(acc[j][i] * p.inv_cg);
      }
    }
  }
}

// grid (ceil(W/64), H, B * ceil(G/GC)), block GC * nDC * 16 <= 128 threads (nDC = channel slots of 4 per group),
// dynamic smem GC*CK*(RW + LW) floats; sR[u] holds x = x0 - (D-1) + u, sL[u] holds x = x0 + u.
template <typename T, typename V>
__global__ void __launch_bounds__(128) gwc_backward_kernel(T* dleft, T* dright, const V* dvol, const T* left, const T* right, GwcParams p) {
  extern __shared__ float4 smem4[];
  float* sR = reinterpret_cast<float*>(smem4);  // [GC*CK][RW]
  float* sL = sR + p.GC * p.CK * p.RW;          // [GC*CK][LW]
  const int gchunks = (p.G + p.GC - 1) / p.GC;
  const int x0 = blockIdx.x * kTileX;
  const int64_t y = blockIdx.y, b = blockIdx.z / gchunks;
  const int g0 = (blockIdx.z % gchunks) * p.GC;
  const int tx = threadIdx.x % kLanesX, item = threadIdx.x / kLanesX;
  const int slot = item % p.nDC, gl = item / p.nDC;
  const int g = g0 + gl;
  const int64_t xb = int64_t(x0) + kVecX * tx;
  const V* dv = dvol + ((b * p.G + g) * p.D * p.H + y) * p.W;  // + d*H*W + x

  for (int c0 = 0; c0 < p.Cg; c0 += p.CK) {
    const int nc = min(p.CK, p.Cg - c0);
    stage_rows(sR, right, p, b, y, g0, c0, nc, x0, p.D - 1, p.RW);
    stage_rows(sL, left, p, b, y, g0, c0, nc, x0, 0, p.LW);
    __syncthreads();
    const int cbeg = slot * kBwdChannels;  // this thread's channels within the chunk: cbeg .. cbeg+3
    if (g < p.G && cbeg < nc && xb < p.W) {
      float al[kBwdChannels][kVecX], ar[kBwdChannels][kVecX], r[kBwdChannels][kVecX], l[kBwdChannels][kVecX];
#pragma unroll
      for (int k = 0; k < kBwdChannels; ++k) {
        const float* rr = sR + (gl * p.CK + min(cbeg + k, p.CK - 1)) * p.RW + (p.D - 1) + kVecX * tx;
        const float* lr = sL + (gl * p.CK + min(cbeg + k, p.CK - 1)) * p.LW + kVecX * tx;
#pragma unroll
        for (int i = 0; i < kVecX; ++i) {
          al[k][i] = ar[k][i] = 0.f;
          r[k][i] = rr[i];  // R[xb + i - 0]
          l[k][i] = lr[i];  // L[xb + i + 0]
        }
      }
      for (int d = 0; d < p.D; ++d) {
        float va[kVecX], vb[kVecX];
        const V* row = dv + int64_t(d) * p.H * p.W;
#pragma unroll
        for (int i = 0; i < kVecX; ++i) {
          va[i] = xb + i < p.W ? to_op(row[xb + i]) : 0.f;
          vb[i] = xb + i + d < p.W ? to_op(row[xb + i + d]) : 0.f;
        }
#pragma unroll
        for (int k = 0; k < kBwdChannels; ++k) {
#pragma unroll
          for (int i = 0; i < kVecX; ++i) {
            al[k][i] = fmaf(va[i], r[k][i], al[k][i]);  // dV[d, x] R[x - d]
            ar[k][i] = fmaf(vb[i], l[k][i], ar[k][i]);  // dV[d, x + d] L[x + d]
          }
        }
        if (d + 1 < p.D) {  // slide: r -> R[xb - d - 1 ...], l -> L[xb + d + 1 ...]
#pragma unroll
          for (int k = 0; k < kBwdChannels; ++k) {
            const int row_k = gl * p.CK + min(cbeg + k, p.CK - 1);
            const float rn = sR[row_k * p.RW + (p.D - 1) + kVecX * tx - d - 1];
            const float ln = sL[row_k * p.LW + kVecX * tx + d + kVecX];
#pragma unroll
            for (int i = kVecX - 1; i > 0; --i) r[k][i] = r[k][i - 1];
            r[k][0] = rn;
#pragma unroll
            for (int i = 0; i < kVecX - 1; ++i) l[k][i] = l[k][i + 1];
            l[k][kVecX - 1] = ln;
          }
        }
      }
#pragma unroll
      for (int k = 0; k < kBwdChannels; ++k) {
        if (cbeg + k >= nc) break;
        const int64_t off = ((b * p.C + int64_t(g) * p.Cg + c0 + cbeg + k) * p.H + y) * p.W;
#pragma unroll
        for (int i = 0; i < kVecX; ++i)
          if (xb + i < p.W) {
            dleft[off + xb + i] = from_op<T>(al[k][i] * p.inv_cg);
            dright[off + xb + i] = from_op<T>(ar[k][i] * p.inv_cg);
          }
      }
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void concat_forward_kernel(T* vol, const T* left, const T* right, int64_t B, int64_t C, int64_t D,
                                      int64_t H, int64_t W) {
  const int64_t n = B * 2 * C * D * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % W, y = (i / W) % H, d = (i / (W * H)) % D, c = (i / (W * H * D)) % (2 * C),
                  b = i / (W * H * D * 2 * C);
    T v = from_op<T>(0.f);
    if (x >= d) v = c < C ? left[((b * C + c) * H + y) * W + x] : right[((b * C + c - C) * H + y) * W + x - d];
    vol[i] = v;
  }
}

template <typename T>
__global__ void concat_backward_kernel(T* dleft, T* dright, const T* dvol, int64_t B, int64_t C, int64_t D,
                                       int64_t H, int64_t W) {
  const int64_t n = B * C * H * W;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % W, y = (i / W) % H, c = (i / (W * H)) % C, b = i / (W * H * C);
    const T* vl = dvol + ((b * 2 * C + c) * D * H + y) * W;       // + d*H*W + x
    const T* vr = dvol + ((b * 2 * C + C + c) * D * H + y) * W;
    float al = 0.f, ar = 0.f;
    for (int64_t d = 0; d < D; ++d) {
      if (x >= d) al += to_op(vl[d * H * W + x]);
      if (x + d < W) ar += to_op(vr[d * H * W + x + d]);
    }
    dleft[i] = from_op<T>(al);
    dright[i] = from_op<T>(ar);
  }
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// Largest divisor of G that is <= limit (at least 1): blocks never straddle a partial group chunk when avoidable.
int groups_per_block(int G, int limit) {
  for (int gc = std::max(1, std::min(G, limit)); gc > 1; --gc)
    if (G % gc == 0) return gc;
  return 1;
}

GwcParams base_params(const Tensor& left, int64_t groups, int64_t D) {
  GwcParams p{};
  p.B = left.size(0);
  p.C = left.size(1);
  p.H = left.size(2);
  p.W = left.size(3);
  p.G = int(groups);
  p.Cg = int(p.C / groups);
  p.D = int(D);
  p.inv_cg = 1.f / float(p.Cg);
  return p;
}

void set_smem(const void* kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

void check_grid(const GwcParams& p, int64_t zblocks, const char* op) {
  if (p.H > 65535 || p.B * zblocks > 65535 || p.D > 4096)
    STEREORT_THROW(std::string(op) + ": CUDA grid limits: H <= 65535, B * group/disparity blocks <= 65535, D <= 4096 "
                   "(H=" + std::to_string(p.H) + ", B=" + std::to_string(p.B) + ", D=" + std::to_string(p.D) + ")");
}

}  // namespace

void cost_volume_gwc_forward(const Tensor& vol, const Tensor& left, const Tensor& right, int64_t groups,
                             const Context& ctx) {
  if (vol.numel() == 0) return;
  GwcParams p = base_params(left, groups, vol.size(2));
  const size_t align = vol.dtype() == DType::F32 ? 16 : 8;
  if (p.Cg <= kStreamMaxCg && std::getenv("STEREORT_GWC_TILED") == nullptr) {
    p.GC = groups_per_block(p.G, 256 / kLanesX);
    p.RO = int(round_up(p.D, 4));
    p.RW = p.RO + kTileX;
    auto smem_bytes = [&] { return size_t(p.GC) * p.Cg * p.RW * sizeof(float); };
    while (smem_bytes() > 96 * 1024 && p.GC > 1) p.GC = groups_per_block(p.G, p.GC - 1);
    if (smem_bytes() > 200 * 1024)
      STEREORT_THROW("cost_volume_gwc: D = " + std::to_string(p.D) +
                     " needs more shared memory than the GPU has per block; use D <= 3000");
    const int64_t gchunks = ceil_div(p.G, p.GC);
    check_grid(p, gchunks, "cost_volume_gwc");
    p.vec_store = p.W % kVecX == 0 && reinterpret_cast<uintptr_t>(vol.data_ptr()) % align == 0;
    const dim3 grid(unsigned(ceil_div(p.W, kTileX)), unsigned(p.H), unsigned(p.B * gchunks));
    const unsigned threads = unsigned(p.GC * kLanesX);
    dispatch_cuda_float(left.dtype(), "cost_volume_gwc", [&](auto tag) {
      using T = typename decltype(tag)::type;
      auto launch = [&](auto vtag) {
        using V = typename decltype(vtag)::type;
        set_smem(reinterpret_cast<const void*>(&gwc_forward_stream_kernel<T, V>), smem_bytes());
        gwc_forward_stream_kernel<T, V><<<grid, threads, smem_bytes(), stream_of(ctx)>>>(
            static_cast<V*>(vol.data_ptr()), static_cast<const T*>(left.data_ptr()),
            static_cast<const T*>(right.data_ptr()), p);
        STEREORT_LAUNCH_CHECK("gwc_forward_stream_kernel");
      };
      if (vol.dtype() == DType::F32) launch(TypeTag<float>{});
      else launch(TypeTag<T>{});
    });
    return;
  }
  const int chunks = int(ceil_div(p.D, kChunkD));
  p.nDC = std::min(chunks, 256 / kLanesX);
  p.dblocks = int(ceil_div(chunks, p.nDC));
  p.GC = groups_per_block(p.G, std::max(1, 256 / (p.nDC * kLanesX)));
  p.RO = int(round_up(p.D, kChunkD)) - 1;
  p.RW = p.RO + 1 + kTileX;
  p.CK = std::min(p.Cg, 16);
  auto smem_bytes = [&] { return size_t(p.GC) * p.CK * (kTileX + p.RW) * sizeof(float); };
  while (smem_bytes() > 96 * 1024 && p.CK > 1) p.CK = (p.CK + 1) / 2;
  const int64_t gchunks = ceil_div(p.G, p.GC);
  check_grid(p, gchunks * p.dblocks, "cost_volume_gwc");
  p.vec_store = p.W % kVecX == 0 && reinterpret_cast<uintptr_t>(vol.data_ptr()) % align == 0;
  const dim3 grid(unsigned(ceil_div(p.W, kTileX)), unsigned(p.H), unsigned(p.B * gchunks * p.dblocks));
  const unsigned threads = unsigned(p.GC * p.nDC * kLanesX);
  dispatch_cuda_float(left.dtype(), "cost_volume_gwc", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto launch = [&](auto vtag) {
      using V = typename decltype(vtag)::type;
      set_smem(reinterpret_cast<const void*>(&gwc_forward_kernel<T, V>), smem_bytes());
      gwc_forward_kernel<T, V><<<grid, threads, smem_bytes(), stream_of(ctx)>>>(
          static_cast<V*>(vol.data_ptr()), static_cast<const T*>(left.data_ptr()),
          static_cast<const T*>(right.data_ptr()), p);
      STEREORT_LAUNCH_CHECK("gwc_forward_kernel");
    };
    if (vol.dtype() == DType::F32) launch(TypeTag<float>{});
    else launch(TypeTag<T>{});
  });
}

void cost_volume_gwc_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol, const Tensor& left,
                              const Tensor& right, int64_t groups, const Context& ctx) {
  if (dleft.numel() == 0) return;
  GwcParams p = base_params(left, groups, dvol.size(2));
  if (p.D == 0) {
    STEREORT_CUDA_CHECK(cudaMemsetAsync(dleft.data_ptr(), 0, dleft.nbytes(), stream_of(ctx)));
    STEREORT_CUDA_CHECK(cudaMemsetAsync(dright.data_ptr(), 0, dright.nbytes(), stream_of(ctx)));
    return;
  }
  p.CK = std::min(p.Cg, 2 * kBwdChannels);
  p.nDC = int(ceil_div(p.CK, kBwdChannels));
  p.dblocks = 1;
  p.GC = groups_per_block(p.G, std::max(1, 128 / (p.nDC * kLanesX)));
  p.RW = kTileX + p.D - 1;
  p.LW = kTileX + p.D - 1;
  auto smem_bytes = [&] { return size_t(p.GC) * p.CK * (p.RW + p.LW) * sizeof(float); };
  while (smem_bytes() > 96 * 1024 && p.GC > 1) p.GC = groups_per_block(p.G, p.GC - 1);
  if (smem_bytes() > 200 * 1024)
    STEREORT_THROW("cost_volume_gwc backward: D = " + std::to_string(p.D) +
                   " needs more shared memory than the GPU has per block; use D <= 3000");
  const int64_t gchunks = ceil_div(p.G, p.GC);
  check_grid(p, gchunks, "cost_volume_gwc backward");
  const dim3 grid(unsigned(ceil_div(p.W, kTileX)), unsigned(p.H), unsigned(p.B * gchunks));
  const unsigned threads = unsigned(p.GC * p.nDC * kLanesX);
  dispatch_cuda_float(left.dtype(), "cost_volume_gwc backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    auto launch = [&](auto vtag) {
      using V = typename decltype(vtag)::type;
      set_smem(reinterpret_cast<const void*>(&gwc_backward_kernel<T, V>), smem_bytes());
      gwc_backward_kernel<T, V><<<grid, threads, smem_bytes(), stream_of(ctx)>>>(
          static_cast<T*>(dleft.data_ptr()), static_cast<T*>(dright.data_ptr()),
          static_cast<const V*>(dvol.data_ptr()), static_cast<const T*>(left.data_ptr()),
          static_cast<const T*>(right.data_ptr()), p);
      STEREORT_LAUNCH_CHECK("gwc_backward_kernel");
    };
    if (dvol.dtype() == DType::F32) launch(TypeTag<float>{});
    else launch(TypeTag<T>{});
  });
}

void cost_volume_concat_forward(const Tensor& vol, const Tensor& left, const Tensor& right, const Context& ctx) {
  const int64_t B = left.size(0), C = left.size(1), H = left.size(2), W = left.size(3), D = vol.size(2);
  if (vol.numel() == 0) return;
  dispatch_cuda_float(left.dtype(), "cost_volume_concat", [&](auto tag) {
    using T = typename decltype(tag)::type;
    concat_forward_kernel<T><<<grid_1d(vol.numel()), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(vol.data_ptr()), static_cast<const T*>(left.data_ptr()), static_cast<const T*>(right.data_ptr()),
        B, C, D, H, W);
    STEREORT_LAUNCH_CHECK("concat_forward_kernel");
  });
}

void cost_volume_concat_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol, const Context& ctx) {
  const int64_t B = dleft.size(0), C = dleft.size(1), H = dleft.size(2), W = dleft.size(3), D = dvol.size(2);
  if (dleft.numel() == 0) return;
  dispatch_cuda_float(dleft.dtype(), "cost_volume_concat backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    concat_backward_kernel<T><<<grid_1d(dleft.numel()), kThreads, 0, stream_of(ctx)>>>(
        static_cast<T*>(dleft.data_ptr()), static_cast<T*>(dright.data_ptr()), static_cast<const T*>(dvol.data_ptr()),
        B, C, D, H, W);
    STEREORT_LAUNCH_CHECK("concat_backward_kernel");
  });
}

}  // namespace cuda
}  // namespace stereort
