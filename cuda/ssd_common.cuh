// cuda/ssd_common.cuh — pieces shared by the SSD forward (cuda/ssd_fwd.cu) and backward (cuda/ssd_bwd.cu) kernels.
//   Work split: the sequence is cut into chunks of Q <= 32 tokens and segments of seg_chunks chunks. A block owns
//   (segment, group of heads of one B/C group, batch); warp w is head h0 + w. Within a block the state walks the
//   segment's chunks in order; segments are linked by a light state-passing kernel (pass_states, same plan and
//   seg_states for the forward and the backward).
//   The backward kernels (this file's layout) put one token per lane and hb = plan.heads_per_block heads per block;
//   the forward has its own register-tiled layout (Tile in cuda/ssd_fwd.cu, 4 heads per block).
//   Backward shared memory per block (floats; padded rows keep float4 accesses conflict-free):
//     block-shared  sB, sC [Q][NS] (NS = round_up(N,8) + 4), sCB, sW [Q][Q+1], sdB, sdC [Q][NS]
//     per head      sX, sDY [Q][kP+4], sS [N][kP+4] (state / adjoint), vectors [kVecs][32],
//                   (P 16) scratch rows R [32][kP+4]
//   Every kernel is followed by STEREORT_LAUNCH_CHECK in the launchers; nothing here launches.
#pragma once
#include <string>
#include <type_traits>

#include "cuda/common.cuh"
#include "ops/ssd.h"

namespace stereort {
namespace cuda {
namespace ssd {

constexpr int kMaxChunk = 32;  // tokens per chunk: one per lane
constexpr int kVecs = 12;      // per-head vectors of length 32 in shared memory

struct Params {
  int64_t B, L, H, N;
  int hg;          // heads per group
  int Q;           // chunk length
  int seg_chunks;  // chunks per segment
  int64_t nseg;
  int hb;          // heads per block (warps)
  int NS;          // row stride of sB/sC/sdB/sdC
  int64_t sxb, sxl, sbb, sbl, scb, scl, stb, stl;  // batch and step strides of x, Bm, Cm, dt
};

// Offsets (in floats) into dynamic shared memory; the same function runs on host (sizes) and device.
struct Layout {
  int B, C, CB, W, dB, dC;  // block-shared
  int stage;                // block-shared: the next chunk's raw B, C [Q][N] and x, dy [Q][hb*kP] in T (es bytes)
  int head, per_head;       // per-head areas start at `head`, `per_head` floats apart
  int X, DY, S, V, R;       // offsets inside a head's area (R: [32][kP+4] scratch rows, P 16 only)
  int total;                // floats
};
__host__ __device__ inline int round4(int v) { return (v + 3) & ~3; }
// The backward kernel's layout (every array above) for inputs of es bytes per element (4 covers every dtype).
__host__ __device__ inline Layout make_layout(const Params& p, int kP, int es = 4) {
  const int Q = p.Q, QQ = round4(Q * (Q + 1)), rowQ = round4(Q * p.NS), PS = kP + 4;
  Layout l{};
  int o = 0;
  l.B = o, o += rowQ;
  l.C = o, o += rowQ;
  l.CB = o, o += QQ;
  l.W = o, o += QQ;
  l.dB = o, o += rowQ;
  l.dC = o, o += rowQ;
  l.stage = o, o += round4(((2 * Q * int(p.N) + 2 * Q * p.hb * kP) * es + 3) / 4);
  l.head = o;
  int h = 0;
  l.X = h, h += Q * PS;
  l.DY = h, h += Q * PS;
  l.S = h, h += int(p.N) * PS;
  l.V = h, h += kVecs * 32;
  l.R = h, h += kP == 16 ? kMaxChunk * PS : 0;  // only the P 16 tensor-core rows use it
  l.per_head = round4(h);
  l.total = o + p.hb * l.per_head;
  return l;
}

// ---- warp scans over one value per lane (lanes >= Q hold 0) ----------------------------------------------------
__device__ __forceinline__ float warp_prefix_incl(float v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    float u = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += u;
  }
  return v;
}
__device__ __forceinline__ float warp_suffix_incl(float v, int lane) {
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    float u = __shfl_down_sync(0xffffffffu, v, o);
    if (lane + o < 32) v += u;
  }
  return v;
}
// sum_{r > lane} v_r, formed without subtracting anything (a sum of non-positive terms stays exact in the limit).
__device__ __forceinline__ float warp_suffix_excl(float v, int lane) {
  float incl = warp_suffix_incl(v, lane);
  float next = __shfl_down_sync(0xffffffffu, incl, 1);
  return lane < 31 ? next : 0.f;
}
__device__ __forceinline__ float warp_prefix_excl(float v, int lane) {
  float incl = warp_prefix_incl(v, lane);
  float prev = __shfl_up_sync(0xffffffffu, incl, 1);
  return lane > 0 ? prev : 0.f;
}

__host__ __device__ __forceinline__ bool aligned16(const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; }

// ---- tile loads (block-cooperative; zeros past the valid rows and in the padded columns) ---------------------------
// Q rows of N values into s[i][NS]: row i at g + i * sl (global memory, or the staging buffer), rows >= nvalid zero.
template <typename T>
__device__ __forceinline__ void load_rows(float* s, const T* g, int64_t sl, int nvalid, const Params& p) {
  const int Np = (int(p.N) + 7) & ~7;
  for (int idx = threadIdx.x; idx < p.Q * Np; idx += blockDim.x) {
    int i = idx / Np, n = idx - i * Np;
    s[i * p.NS + n] = (i < nvalid && n < p.N) ? to_op(g[i * sl + n]) : 0.f;
  }
}
// Per-head (Q, kP) rows for the block's heads h0..h0+hb-1 into each head's area at `off`: head w of row i at
// g + i * sl + w * kP (a (B,L,H,P) tensor at token t0 and head h0, or the staging buffer), rows >= nvalid zero.
template <typename T, int kP>
__device__ __forceinline__ void load_heads(float* heads, int per_head, int off, const T* g, int64_t sl, int nvalid,
                                           const Params& p) {
  const int n = p.Q * p.hb * kP;
  for (int idx = threadIdx.x; idx < n; idx += blockDim.x) {
    int i = idx / (p.hb * kP), r = idx - i * (p.hb * kP), w = r / kP, q = r - w * kP;
    heads[w * per_head + off + i * (kP + 4) + q] = i < nvalid ? to_op(g[i * sl + w * kP + q]) : 0.f;
  }
}
// dt of this thread's (token i = tid / hb, head h0 + tid % hb) of the chunk at t0 (blocks of 32 hb threads; zero past
// Q and L), fetched a chunk ahead, and its store into vector `off` of the head's area.
__device__ __forceinline__ float fetch_dt(const float* dt, int64_t b, int64_t t0, int h0, const Params& p) {
  const int i = threadIdx.x / p.hb, w = threadIdx.x - i * p.hb;
  const int64_t t = t0 + i;
  return (i < p.Q && t < p.L) ? dt[b * p.stb + t * p.stl + h0 + w] : 0.f;
}
__device__ __forceinline__ void store_dt(float* heads, int per_head, int off, float v, const Params& p) {
  const int i = threadIdx.x / p.hb, w = threadIdx.x - i * p.hb;
  heads[w * per_head + off + i] = v;
}

// CB[i][j] = C_i . B_j for j <= i (block-cooperative, 2x2 register tiles, float4 over n).
__device__ __forceinline__ void compute_cb(float* sCB, const float* sC, const float* sB, const Params& p) {
  const int Q = p.Q, nt = (Q + 1) / 2, Np = (int(p.N) + 7) & ~7;
  for (int tile = threadIdx.x; tile < nt * nt; tile += blockDim.x) {
    int ti = tile / nt, tj = tile - ti * nt;
    if (tj > ti) continue;
    int i0 = 2 * ti, j0 = 2 * tj;
    int i1 = min(i0 + 1, Q - 1), j1 = min(j0 + 1, Q - 1);
    float a00 = 0, a01 = 0, a10 = 0, a11 = 0;
    for (int n = 0; n < Np; n += 4) {
      float4 c0 = *reinterpret_cast<const float4*>(sC + i0 * p.NS + n);
      float4 c1 = *reinterpret_cast<const float4*>(sC + i1 * p.NS + n);
      float4 b0 = *reinterpret_cast<const float4*>(sB + j0 * p.NS + n);
      float4 b1 = *reinterpret_cast<const float4*>(sB + j1 * p.NS + n);
      a00 += c0.x * b0.x + c0.y * b0.y + c0.z * b0.z + c0.w * b0.w;
      a01 += c0.x * b1.x + c0.y * b1.y + c0.z * b1.z + c0.w * b1.w;
      a10 += c1.x * b0.x + c1.y * b0.y + c1.z * b0.z + c1.w * b0.w;
      a11 += c1.x * b1.x + c1.y * b1.y + c1.z * b1.z + c1.w * b1.w;
    }
    const int ld = Q + 1;
    sCB[i0 * ld + j0] = a00;
    if (j0 + 1 < Q && j0 + 1 <= i0) sCB[i0 * ld + j0 + 1] = a01;
    if (i0 + 1 < Q) {
      sCB[(i0 + 1) * ld + j0] = a10;
      if (j0 + 1 < Q) sCB[(i0 + 1) * ld + j0 + 1] = a11;
    }
  }
}

// Load kP floats of a 16-byte aligned row (shared or global memory; float4s) into registers.
template <int kP>
__device__ __forceinline__ void load_row(float (&r)[kP], const float* s) {
#pragma unroll
  for (int q = 0; q < kP; q += 4) {
    float4 v = *reinterpret_cast<const float4*>(s + q);
    r[q] = v.x, r[q + 1] = v.y, r[q + 2] = v.z, r[q + 3] = v.w;
  }
}
template <int kP>
__device__ __forceinline__ void store_row(float* s, const float (&r)[kP]) {
#pragma unroll
  for (int q = 0; q < kP; q += 4) *reinterpret_cast<float4*>(s + q) = make_float4(r[q], r[q + 1], r[q + 2], r[q + 3]);
}

// Rows of a head's (N, kP) state owned by a lane: n = lane + 32 r, r < kRows(kP) (N * kP <= 2048).
template <int kP>
struct StateRows {
  static constexpr int kRows = 64 / kP > 0 ? 64 / kP : 1;
};

// St[n][:] = decay * St[n][:] + sum_j w[j] U[j][n] V[j][:] for the lane's rows (St in registers).
//   U rows in a block-shared [Q][NS] array, V rows in the head's [Q][kP+4] array, w in a per-head vector.
template <int kP>
__device__ __forceinline__ void state_update(float (&st)[StateRows<kP>::kRows][kP], float decay, const float* w,
                                             const float* sU, const float* sV, int lane, const Params& p) {
  constexpr int R = StateRows<kP>::kRows;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int q = 0; q < kP; ++q) st[r][q] *= decay;
  for (int j = 0; j < p.Q; ++j) {
    float v[kP];
    load_row<kP>(v, sV + j * (kP + 4));
    const float wj = w[j];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      int n = lane + 32 * r;
      if (n < p.N) {
        float u = wj * sU[j * p.NS + n];
#pragma unroll
        for (int q = 0; q < kP; ++q) st[r][q] += u * v[q];
      }
    }
  }
}

// ---- host helpers shared by the launchers (defined in cuda/ssd_fwd.cu) ------------------------------------------------
Params make_params(const SsdArgs& a, const SsdPlan& plan);
// Sequential pass over segments (kernels.md §3 step 4), see cuda/ssd_fwd.cu.
void pass_states(const Tensor& states, const Tensor& lsum, const float* init, float* out, int64_t BH, int64_t nseg,
                 int N, int P, bool reverse, const Context& ctx);
// The backward's adjoint walk (see cuda/ssd_fwd.cu): ebuf (B,H,nseg,N,P) and lsum (B,H,nseg) per segment.
void adjoint_walk(const Params& p, DType xt, int64_t P, const void* dy, const float* dt, const float* A,
                  const void* Cm, float* ebuf, float* lsum, const Context& ctx);
// The state entering every chunk, from the forward's seg_states: cstates (B,H,nseg*seg_chunks,N,P).
void chunk_state_walk(const Params& p, DType xt, int64_t P, const void* x, const float* dt, const float* A,
                      const void* Bm, const float* seg_states, float* cstates, const Context& ctx);

// The tensor-core walk (cuda/ssd_walk_mma.cu): whether it takes this launch (P 16, 4 heads per block, N <= 64 in
// 16-byte tile rows, aligned operands; false when STEREORT_SSD_CUDA_CORES is set), and the launch (kMode and operands as
// launch_walk in cuda/ssd_fwd.cu).
bool mma_walk_ok(const Params& p, int hb, int64_t P, size_t es, const void* v, const void* u, const void* Cm,
                 bool with_c);
template <int kMode>
void launch_mma_walk(const Params& p, DType xt, const void* v, const float* dt, const float* A, const void* u,
                     const void* Cm, const float* D, float* seg, float* lsum, void* y, float* cstates,
                     const Context& ctx);

template <typename K>
void set_smem(K kernel, size_t bytes) {
  STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

// Calls f(std::integral_constant<int, P>) for the supported head dims.
template <typename F>
void dispatch_p(int64_t P, F&& f) {
  switch (P) {
    case 8: f(std::integral_constant<int, 8>{}); return;
    case 16: f(std::integral_constant<int, 16>{}); return;
    case 32: f(std::integral_constant<int, 32>{}); return;
    case 64: f(std::integral_constant<int, 64>{}); return;
    default: STEREORT_THROW("ssd_chunk_scan: CUDA head dim must be 8, 16, 32 or 64, got " + std::to_string(P));
  }
}

// The same update for a state kept in the head's shared [N][kP+4] rows (registers live only during the update).
//   The caller separates other lanes' reads of sSt from this call with __syncwarp.
template <int kP>
__device__ __forceinline__ void state_update_smem(float* sSt, float decay, const float* w, const float* sU,
                                                  const float* sV, int lane, const Params& p) {
  constexpr int R = StateRows<kP>::kRows;
  float st[R][kP];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    if (lane + 32 * r < p.N) load_row<kP>(st[r], sSt + (lane + 32 * r) * (kP + 4));
    else
#pragma unroll
      for (int q = 0; q < kP; ++q) st[r][q] = 0.f;
  }
  state_update<kP>(st, decay, w, sU, sV, lane, p);
#pragma unroll
  for (int r = 0; r < R; ++r)
    if (lane + 32 * r < p.N) store_row<kP>(sSt + (lane + 32 * r) * (kP + 4), st[r]);
}

}  // namespace ssd
}  // namespace cuda
}  // namespace stereort
