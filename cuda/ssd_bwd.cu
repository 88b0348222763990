// cuda/ssd_bwd.cu — Mamba-2 SSD backward (kernels.md §3, the chunked adjoint of ref::ssd_chunked_backward), fp32.
//   1. ssd::adjoint_walk (the forward's walk, cuda/ssd_fwd.cu; on tensor cores at P 16 with 4 heads per block,
//      cuda/ssd_walk_mma.cu): per segment, the adjoint it sends left from zero,
//      E_k = sum_s exp(sum_{r=start..s} log a_r) C_s dy_s^T (chunks walked right to left), and its total log-decay.
//   2. pass_states(reverse): G~_k (the adjoint entering segment k from the right; dfinal at the end) and dS_{-1}.
//   3. ssd::chunk_state_walk (the forward's walk again): from the forward's saved S~_k, the state entering every
//      chunk (fp32 scratch sbuf, one (N,P) per chunk and head; re-read once by step 4, mostly from L2).
//   4. ssd_bwd_kernel: per (segment, head group, batch), one token per lane.
//      It walks the chunks right to left with the adjoint G (G_in of the chunk, in the head's shared rows), per chunk:
//        column walk (lane = column j, s >= j):  dX̄_j += exp(seg) CB[s,j] dy_s;  W[s,j] += exp(seg) dt_j (dy_s.x_j)
//          summed over the block's heads (shared-memory atomics);  G[s,j] = W_h CB row/column sums for d log a;
//          dA += G[s,j] * (sum of dt over (j,s]) pair by pair (exact across a reset, see ops/ssd.h)
//        rows (lane = token i):  dX̄_i += exp(suf_i) G_in^T B_i;  dla_i = reverse-cumsum(row - col + Goff) +
//          prefix(Gst) + Gcross;  dx, ddt written;  dA, dD accumulated per lane
//        state rows:  dC_off = exp(cs_i) S_in dy_i and dB_off = exp(suf_i) dt_i G_in x_i summed over heads;
//          Goff_i = C_i . dC_off of the head; Gcross = exp(cs_last) <G_in, S_in>
//        block: dB_i = sdB_i + sum_{s>=i} W[s,i] C_s;  dC_i = sdC_i + sum_{j<=i} W[i,j] B_j   (one write per element
//          when the block covers the group's heads, else one fp32 atomic per block and element)
//        G <- exp(cs_last) G + sum_s exp(cs_s) C_s dy_s^T.
//      On tensor cores (3xTF32, cuda/mma_tf32.cuh) when N is a multiple of 8: dB/dC (dbdc_mma); with P 16 also the
//      rows' G_in^T B, the state rows (state_rows_mma: block GEMMs over heads x P instead of per-head shared-memory
//      atomics, which are CAS loops on sm_90) and the adjoint update (adjoint_update_mma). The column walk stays on
//      CUDA cores (its pairwise dt sums must stay exact across resets).
//   dA and dD leave as per-(batch, segment, head) partials summed by the caller (deterministic).
//   Measured (H100, StereoMamba cross-attention, both directions): f32 3.57 ms, bf16 3.41 ms in all (4.59 / 4.39 ms
//   with every product on CUDA cores). Ablation of this kernel's sections then (each skipped in turn, before the
//   staging): synchronous tile loads 1.8 ms (now staged), state rows 1.3, column walk 0.7, dB/dC 0.4, state update
//   0.4, rows 0.3. Interleaving the per-pair dot products into 4 partial sums measured slower (5.03 ms); the state rows
//   without atomics but still on CUDA cores gained 3 % (f32) and lost 7 % at Q 16.
#include <algorithm>

#include "cuda/mma_tf32.cuh"
#include "cuda/ssd_common.cuh"
#include "ops/reduce.h"

namespace stereort {
namespace cuda {

using ssd::Layout;
using ssd::Params;
using ssd::StateRows;

namespace {

enum BwdVec { kVdt = 0, kVla = 1, kVexp = 2, kVrow = 3, kVw = 4 };

// Number of chunks of segment k that hold any step < L.
__device__ __forceinline__ int chunks_in_segment(const Params& p, int64_t k) {
  int64_t first = k * p.seg_chunks * int64_t(p.Q);
  int64_t left = p.L - first;
  int64_t n = (left + p.Q - 1) / p.Q;
  return int(n < p.seg_chunks ? n : p.seg_chunks);
}

// (row i, columns col, col + 1) of a Q-row shared array, zero past Q.
__device__ __forceinline__ float2 ssd_row2(const float* base, int i, int ld, int col, int Q) {
  return i < Q ? *reinterpret_cast<const float2*>(base + i * ld + col) : make_float2(0.f, 0.f);
}

// acc = U St for P 16 on tensor cores (3xTF32): U rows i < Q of a [Q][NS] array (C or B of the chunk; rows past Q
// read 0; kIn: exact in TF32), St an (N, 16) state with row stride ld (S_in in global memory or G_in in shared).
// acc[mi][np] is the m16n8 tile of rows 16 mi .. and columns 8 np ..; k = n, the lane's k = 2t, 2t + 1.
template <bool kIn>
__device__ __forceinline__ void rows_times_state(float (&acc)[2][2][4], const float* U, const float* St, int ld,
                                                 const Params& p, int lane) {
  const int g = lane >> 2, t = lane & 3, Q = p.Q, NS = p.NS;
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int np = 0; np < 2; ++np)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[mi][np][e] = 0.f;
  for (int ks = 0; ks < int(p.N) / 8; ++ks) {
    Frag<2> sb[2];
#pragma unroll
    for (int np = 0; np < 2; ++np) {
      const float* q = St + (8 * ks + 2 * t) * ld + 8 * np + g;
      const float v[2] = {q[0], q[ld]};
      sb[np] = split<false>(v);
    }
#pragma unroll
    for (int mi = 0; mi < 2; ++mi) {
      const float2 c0 = ssd_row2(U, 16 * mi + g, NS, 8 * ks + 2 * t, Q);
      const float2 c1 = ssd_row2(U, 16 * mi + g + 8, NS, 8 * ks + 2 * t, Q);
      const float av[4] = {c0.x, c1.x, c0.y, c1.y};
      const Frag<4> ua = split<kIn>(av);
#pragma unroll
      for (int np = 0; np < 2; ++np) mma3<kIn, false>(acc[mi][np], ua, sb[np]);
    }
  }
}

// The state rows of one chunk on tensor cores (3xTF32, cuda/mma_tf32.cuh), for P 16 and N a multiple of 8:
//   Goff_i = exp(cs_i) dy_i . (C S_in)_i for this warp's head (Y_off = C S_in, 32 x 16, on MMAs), returned for
//   token lane; and for the block's heads summed, dC_off[i][n] = sum_h exp(cs_h,i) (S_in,h dy_h,i)[n] and
//   dB_off[i][n] = sum_h exp(suf_h,i) dt_h,i (G_in,h x_h,i)[n] stored to sdC / sdB (rows i < Q): two GEMMs with
//   K = heads x P, their 16 x 8 output tiles shared out over the warps, so no shared-memory float atomics (CAS loops
//   on sm_90). S_in of head h0 + w at s0 + w s_stride (global, (N, P) rows); kIn: C exact in TF32 (16-bit inputs).
//   K order inside a k-step: the lane with t = lane % 4 supplies k = 2t, 2t + 1 to both operands (float2 reads).
template <bool kIn>
__device__ float state_rows_mma(const Params& p, const Layout& lay, float* sm, const float* s0, int64_t s_stride,
                                int warp, int lane) {
  constexpr int kP = 16, PS = kP + 4;
  const int g = lane >> 2, t = lane & 3, Q = p.Q, NS = p.NS, nnt = int(p.N) / 8;
  const float* heads = sm + lay.head;
  const float* sC = sm + lay.C;
  auto row2 = [&](const float* base, int i, int ld, int col) { return ssd_row2(base, i, ld, col, Q); };
  // Y_off = C S_in for this warp's head.
  const float* hw = heads + warp * lay.per_head;
  float yo[2][2][4];
  rows_times_state<kIn>(yo, sC, s0 + warp * s_stride, kP, p, lane);
  // Goff: row dots with dy over the lane's 4 columns, summed over the quad; lane x then fetches token x's sum from
  // lane 4 (x % 8), slot x / 8 (= 2 mi + row half).
  float part[4];
#pragma unroll
  for (int mi = 0; mi < 2; ++mi)
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int i = 16 * mi + 8 * hr + g;
      float v = 0.f;
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        const float2 d = row2(hw + lay.DY, i, PS, 8 * np + 2 * t);
        v += d.x * yo[mi][np][2 * hr] + d.y * yo[mi][np][2 * hr + 1];
      }
      v += __shfl_xor_sync(0xffffffffu, v, 1);
      part[2 * mi + hr] = v + __shfl_xor_sync(0xffffffffu, v, 2);
    }
  float goff = 0.f;
#pragma unroll
  for (int s = 0; s < 4; ++s) {
    const float v = __shfl_sync(0xffffffffu, part[s], (lane & 7) * 4);
    if ((lane >> 3) == s) goff = v;
  }
  goff *= hw[lay.V + kVexp * 32 + lane];  // exp(cs_i), 0 past Q

  // dC_off and dB_off: output tile pairs (columns n 8 nn .. + 7, both row halves) round-robin over the warps, k = (head,
  // p). A = exp(cs) dy (dC) or exp(suf) dt x (dB) rows, B = S_in / G_in rows (n, p).
  float* sdC = sm + lay.dC;
  float* sdB = sm + lay.dB;
  for (int nn = warp; nn < nnt; nn += p.hb) {
    float dc[2][4] = {}, db[2][4] = {};
    for (int hh = 0; hh < p.hb; ++hh) {
      const float* hx = heads + hh * lay.per_head;
      const float* Sh = s0 + hh * s_stride;
      float ev[4], wv[4];  // rows g + 8 s
#pragma unroll
      for (int r = 0; r < 4; ++r) ev[r] = hx[lay.V + kVexp * 32 + 8 * r + g], wv[r] = hx[lay.V + kVw * 32 + 8 * r + g];
#pragma unroll
      for (int ks = 0; ks < 2; ++ks) {
        const float2 sv = *reinterpret_cast<const float2*>(Sh + (8 * nn + g) * kP + 8 * ks + 2 * t);
        const float2 gv = *reinterpret_cast<const float2*>(hx + lay.S + (8 * nn + g) * PS + 8 * ks + 2 * t);
        const float s2[2] = {sv.x, sv.y}, g2[2] = {gv.x, gv.y};
        const Frag<2> sf = split<false>(s2), gf = split<false>(g2);
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          const int i0 = 16 * mi + g, i1 = i0 + 8;
          const float e0 = ev[2 * mi], e1 = ev[2 * mi + 1], w0 = wv[2 * mi], w1 = wv[2 * mi + 1];
          const float2 d0 = row2(hx + lay.DY, i0, PS, 8 * ks + 2 * t), d1 = row2(hx + lay.DY, i1, PS, 8 * ks + 2 * t);
          const float2 x0 = row2(hx + lay.X, i0, PS, 8 * ks + 2 * t), x1 = row2(hx + lay.X, i1, PS, 8 * ks + 2 * t);
          const float ac[4] = {e0 * d0.x, e1 * d1.x, e0 * d0.y, e1 * d1.y};
          const float ab[4] = {w0 * x0.x, w1 * x1.x, w0 * x0.y, w1 * x1.y};
          mma3<false, false>(dc[mi], split<false>(ac), sf);
          mma3<false, false>(db[mi], split<false>(ab), gf);
        }
      }
    }
#pragma unroll
    for (int mi = 0; mi < 2; ++mi)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int i = 16 * mi + 8 * hr + g;
        if (i >= Q) continue;
        *reinterpret_cast<float2*>(sdC + i * NS + 8 * nn + 2 * t) = make_float2(dc[mi][2 * hr], dc[mi][2 * hr + 1]);
        *reinterpret_cast<float2*>(sdB + i * NS + 8 * nn + 2 * t) = make_float2(db[mi][2 * hr], db[mi][2 * hr + 1]);
      }
  }
  return goff;
}

// The adjoint leaving a chunk on tensor cores (P 16, N a multiple of 8), this warp's head:
//   G[n][p] <- decay G[n][p] + sum_s w_s C[s][n] dy[s][p]   (sG rows (N, P + 4); w 0 past Q)
//   m16 tiles of rows n, columns p (2 halves), k = s with the lane's k = 2t, 2t + 1; rows s past Q and n past N read 0.
template <bool kIn>
__device__ void adjoint_update_mma(float* sG, float decay, const float* w, const float* sC, const float* sDY,
                                   const Params& p, int lane) {
  constexpr int kP = 16, PS = kP + 4;
  const int g = lane >> 2, t = lane & 3, Q = p.Q, N = int(p.N), NS = p.NS;
  for (int mt = 0; mt < (N + 15) / 16; ++mt) {
    const int n0 = 16 * mt + g, n1 = n0 + 8;
    float acc[2][4];
#pragma unroll
    for (int np = 0; np < 2; ++np)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int n = hr ? n1 : n0;
        const float2 v = n < N ? *reinterpret_cast<const float2*>(sG + n * PS + 8 * np + 2 * t) : make_float2(0.f, 0.f);
        acc[np][2 * hr] = decay * v.x, acc[np][2 * hr + 1] = decay * v.y;
      }
#pragma unroll
    for (int ks = 0; ks < ssd::kMaxChunk / 8; ++ks) {
      const int s0 = 8 * ks + 2 * t, s1 = s0 + 1;
      auto c = [&](int sr, int n) { return sr < Q && n < N ? sC[sr * NS + n] : 0.f; };
      const float av[4] = {c(s0, n0), c(s0, n1), c(s1, n0), c(s1, n1)};
      const Frag<4> ca = split<kIn>(av);
      const float w0 = s0 < Q ? w[s0] : 0.f, w1 = s1 < Q ? w[s1] : 0.f;
#pragma unroll
      for (int np = 0; np < 2; ++np) {
        const float b2[2] = {s0 < Q ? w0 * sDY[s0 * PS + 8 * np + g] : 0.f, s1 < Q ? w1 * sDY[s1 * PS + 8 * np + g] : 0.f};
        mma3<kIn, false>(acc[np], ca, split<false>(b2));
      }
    }
#pragma unroll
    for (int np = 0; np < 2; ++np)
#pragma unroll
      for (int hr = 0; hr < 2; ++hr) {
        const int n = hr ? n1 : n0;
        if (n < N)
          *reinterpret_cast<float2*>(sG + n * PS + 8 * np + 2 * t) = make_float2(acc[np][2 * hr], acc[np][2 * hr + 1]);
      }
  }
}

// dB, dC of one chunk for the group on tensor cores (N a multiple of 8, 8-byte aligned outputs):
//   dB[i][n] = sdB[i][n] + sum_s W[s][i] C[s][n],  dC[i][n] = sdC[i][n] + sum_j W[i][j] B[j][n]
//   (W zero outside s >= j), output tiles (16 rows i x 8 columns n) shared out over the warps, k = token with the lane's
//   k = 2t, 2t + 1; each element leaves as part of one 8-byte store (or add, when blocks share the group's elements).
//   o0 = dB/dC offset of (token t0, group, n 0); rows i with t0 + i >= L are skipped.
template <bool kIn>
__device__ void dbdc_mma(float* dBf, float* dCf, int64_t o0, int64_t orow, int nvalid, const float* sm,
                         const Layout& lay, const Params& p, int warp, int lane, bool atomic) {
  const int g = lane >> 2, t = lane & 3, Q = p.Q, NS = p.NS, ldq = Q + 1, nnt = int(p.N) / 8;
  const float *sB = sm + lay.B, *sC = sm + lay.C, *sW = sm + lay.W, *sdB = sm + lay.dB, *sdC = sm + lay.dC;
  for (int tile = warp; tile < 2 * nnt; tile += p.hb) {
    const int mi = tile / nnt, nn = tile - mi * nnt, i0 = 16 * mi + g, i1 = i0 + 8, n = 8 * nn + g;
    float ab[4] = {0.f, 0.f, 0.f, 0.f}, ac[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int ks = 0; ks < ssd::kMaxChunk / 8; ++ks) {
      const int s0 = 8 * ks + 2 * t, s1 = s0 + 1;
      auto w = [&](int r, int c) { return r < Q && c < Q ? sW[r * ldq + c] : 0.f; };
      const float wb[4] = {w(s0, i0), w(s0, i1), w(s1, i0), w(s1, i1)};  // A = W^T (i, s)
      const float wc[4] = {w(i0, s0), w(i1, s0), w(i0, s1), w(i1, s1)};  // A = W (i, j)
      const float cb[2] = {s0 < Q ? sC[s0 * NS + n] : 0.f, s1 < Q ? sC[s1 * NS + n] : 0.f};
      const float bb[2] = {s0 < Q ? sB[s0 * NS + n] : 0.f, s1 < Q ? sB[s1 * NS + n] : 0.f};
      mma3<false, kIn>(ab, split<false>(wb), split<kIn>(cb));
      mma3<false, kIn>(ac, split<false>(wc), split<kIn>(bb));
    }
#pragma unroll
    for (int hr = 0; hr < 2; ++hr) {
      const int i = hr ? i1 : i0, col = 8 * nn + 2 * t;
      if (i >= nvalid) continue;
      const float2 xb = *reinterpret_cast<const float2*>(sdB + i * NS + col);
      const float2 xc = *reinterpret_cast<const float2*>(sdC + i * NS + col);
      const float2 vb = make_float2(ab[2 * hr] + xb.x, ab[2 * hr + 1] + xb.y);
      const float2 vc = make_float2(ac[2 * hr] + xc.x, ac[2 * hr + 1] + xc.y);
      float2* db = reinterpret_cast<float2*>(dBf + o0 + i * orow + col);
      float2* dc = reinterpret_cast<float2*>(dCf + o0 + i * orow + col);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      if (atomic) {
        atomicAdd(db, vb);  // float2 atomicAdd: sm_90
        atomicAdd(dc, vc);
        continue;
      }
#endif
      if (atomic) {
        atomicAdd(&db->x, vb.x), atomicAdd(&db->y, vb.y), atomicAdd(&dc->x, vc.x), atomicAdd(&dc->y, vc.y);
      } else {
        *db = vb, *dc = vc;
      }
    }
  }
}

template <typename T, int kP>
__global__ void __launch_bounds__(256) ssd_bwd_kernel(
    Params p, const T* __restrict__ x, const T* __restrict__ dy, const float* __restrict__ dt,
    const float* __restrict__ A, const T* __restrict__ Bm, const T* __restrict__ Cm, const float* __restrict__ Dskip,
    const float* __restrict__ ebuf, const float* __restrict__ sbuf,
    T* __restrict__ dx, float* __restrict__ ddt, float* __restrict__ dBf, float* __restrict__ dCf,
    float* __restrict__ dA_part, float* __restrict__ dD_part, bool atomic_bc) {
  extern __shared__ float4 smem_f4[];
  float* sm = reinterpret_cast<float*>(smem_f4);
  constexpr int PS = kP + 4, R = StateRows<kP>::kRows;
  const Layout lay = ssd::make_layout(p, kP, int(sizeof(T)));
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t k = blockIdx.x, b = blockIdx.z;
  const int h0 = blockIdx.y * p.hb, h = h0 + warp, grp = h0 / p.hg;
  const int Q = p.Q, ldq = Q + 1;
  const int64_t G = p.H / p.hg, NP = p.N * kP, bh = b * p.H + h;
  float* sB = sm + lay.B;
  float* sC = sm + lay.C;
  float* sCB = sm + lay.CB;
  float* sW = sm + lay.W;
  float* sdB = sm + lay.dB;
  float* sdC = sm + lay.dC;
  float* heads = sm + lay.head;
  float* hs = heads + warp * lay.per_head;
  float* sX = hs + lay.X;
  float* sDY = hs + lay.DY;
  float* sG = hs + lay.S;
  float* sV = hs + lay.V;
  const float Ah = A[h], Dh = Dskip ? Dskip[h] : 0.f;
  const int64_t dyb = p.L * p.H * kP, dyl = p.H * kP;
  const int nch = chunks_in_segment(p, k);
  const float* sbuf_h = sbuf + (bh * p.nseg + k) * p.seg_chunks * NP;  // chunk c of this segment at + c * NP
  auto chunk_t0 = [&](int c) { return (k * p.seg_chunks + c) * Q; };

  // Operand rows at token 0 of this block's batch, group and heads.
  const int N = int(p.N), hk = p.hb * kP;
  const T* Bb = Bm + b * p.sbb + int64_t(grp) * N;
  const T* Cb = Cm + b * p.scb + int64_t(grp) * N;
  const T* xb = x + b * p.sxb + int64_t(h0) * kP;
  const T* dyh = dy + b * dyb + int64_t(h0) * kP;
  // The next chunk's B, C, x, dy rows are copied (cp.async, 16 bytes) into the raw staging buffer while this chunk
  // computes, when every row is whole 16-byte granules; then each chunk converts them from shared memory. Ablation
  // (H100, StereoMamba cross-attention, f32): the synchronous element-wise loads were 1.8 of the 6.3 ms backward.
  constexpr int es = int(sizeof(T)), kV = 16 / es;
  const bool stage = (N * es) % 16 == 0 && (hk * es) % 16 == 0 && (p.sbl * es) % 16 == 0 && (p.scl * es) % 16 == 0 &&
                     (p.sxl * es) % 16 == 0 && (dyl * es) % 16 == 0 && ssd::aligned16(Bb) && ssd::aligned16(Cb) &&
                     ssd::aligned16(xb) && ssd::aligned16(dyh);
  const bool bc4 = N % 4 == 0 && ssd::aligned16(dBf) && ssd::aligned16(dCf);  // dB/dC rows as float4
  const bool rows_mma = kP == 16 && N % 8 == 0;  // the state rows on tensor cores (state_rows_mma)
  const bool bc_mma = N % 8 == 0 && (reinterpret_cast<uintptr_t>(dBf) & 7) == 0 &&
                      (reinterpret_cast<uintptr_t>(dCf) & 7) == 0;  // dB, dC on tensor cores (dbdc_mma)
  T* gB = reinterpret_cast<T*>(sm + lay.stage);  // [Q][N] B, C, then [Q][hk] x, dy
  T* gC = gB + Q * N;
  T* gX = gC + Q * N;
  T* gDY = gX + Q * hk;
  auto issue = [&](int c) {  // chunk c into the staging buffer (zero-filled past L), one commit group
    const int64_t t0 = chunk_t0(c);
    const int nb = Q * (N / kV), nx = Q * (hk / kV);
    for (int g = threadIdx.x; g < 2 * (nb + nx); g += blockDim.x) {
      const bool hx = g >= 2 * nb;
      const int per = hx ? nx : nb, r = hx ? g - 2 * nb : g, second = r >= per, e = r - second * per;
      const int len = hx ? hk : N, i = e / (len / kV), j = e - i * (len / kV);
      const T* src = hx ? (second ? dyh : xb) : (second ? Cb : Bb);
      const int64_t sl = hx ? (second ? dyl : p.sxl) : (second ? p.scl : p.sbl);
      T* dst = hx ? (second ? gDY : gX) : (second ? gC : gB);
      const bool valid = t0 + i < p.L;
      cp_async16(dst + i * len + j * kV, valid ? src + (t0 + i) * sl + j * kV : src, valid);
    }
    cp_async_commit();
  };

  // ---- chunks right to left with the adjoint entering each from the right (kept in the head's sG rows) -----
  {
    const float* ge = ebuf + (bh * p.nseg + k) * NP;
    for (int e = lane; e < NP; e += 32) sG[(e / kP) * PS + e % kP] = ge[e];
  }
  float dA_acc = 0.f, dD_acc = 0.f;
  float dt_next = 0.f;  // this thread's dt of the next chunk (fetch_dt), loaded a chunk ahead like the staged rows
  if (nch > 0) {
    if (stage) issue(nch - 1);
    dt_next = ssd::fetch_dt(dt, b, chunk_t0(nch - 1), h0, p);
  }
  for (int c = nch - 1; c >= 0; --c) {
    const int64_t t0 = chunk_t0(c);
    if (stage) cp_async_wait<0>();
    __syncthreads();  // the previous chunk's readers are done; the staged rows have landed
    if (stage) {
      ssd::load_rows(sB, gB, N, Q, p);
      ssd::load_rows(sC, gC, N, Q, p);
      ssd::load_heads<T, kP>(heads, lay.per_head, lay.X, gX, hk, Q, p);
      ssd::load_heads<T, kP>(heads, lay.per_head, lay.DY, gDY, hk, Q, p);
    } else {
      const int nv = int(std::min<int64_t>(Q, p.L - t0));
      ssd::load_rows(sB, Bb + t0 * p.sbl, p.sbl, nv, p);
      ssd::load_rows(sC, Cb + t0 * p.scl, p.scl, nv, p);
      ssd::load_heads<T, kP>(heads, lay.per_head, lay.X, xb + t0 * p.sxl, p.sxl, nv, p);
      ssd::load_heads<T, kP>(heads, lay.per_head, lay.DY, dyh + t0 * dyl, dyl, nv, p);
    }
    ssd::store_dt(heads, lay.per_head, lay.V + kVdt * 32, dt_next, p);
    for (int idx = threadIdx.x; idx < Q * ldq; idx += blockDim.x) sW[idx] = 0.f;
    for (int idx = threadIdx.x; !rows_mma && idx < Q * p.NS; idx += blockDim.x) sdB[idx] = sdC[idx] = 0.f;
    sV[kVrow * 32 + lane] = 0.f;
    __syncthreads();
    if (c > 0) {  // the staging buffer is free again
      if (stage) issue(c - 1);
      dt_next = ssd::fetch_dt(dt, b, chunk_t0(c - 1), h0, p);
    }
    // Per-head scalars, token i = lane.
    const float dti = sV[kVdt * 32 + lane], la = dti * Ah;
    const float cs = ssd::warp_prefix_incl(la, lane), suf = ssd::warp_suffix_excl(la, lane);
    const float cdt = ssd::warp_prefix_incl(dti, lane), sdtx = ssd::warp_suffix_excl(dti, lane);
    const float cs_last = __shfl_sync(0xffffffffu, cs, Q - 1), dtot = __shfl_sync(0xffffffffu, cdt, Q - 1);
    const float decay = expf(cs_last), esuf = expf(suf);
    sV[kVla * 32 + lane] = la;
    sV[kVexp * 32 + lane] = lane < Q ? expf(cs) : 0.f;
    sV[kVw * 32 + lane] = esuf * dti;
    ssd::compute_cb(sCB, sC, sB, p);
    __syncthreads();

    // Column walk, lane = column j: pairs (s, j), s >= j.
    float dxb[kP], xj[kP];
#pragma unroll
    for (int q = 0; q < kP; ++q) dxb[q] = xj[q] = 0.f;
    float colsum = 0.f;
    if (lane < Q) {
      const int j = lane;
      ssd::load_row<kP>(xj, sX + j * PS);
      float seg = 0.f, dsum = 0.f;
      for (int s = j; s < Q; ++s) {
        if (s > j) {
          seg += sV[kVla * 32 + s];
          dsum += sV[kVdt * 32 + s];
        }
        const float e = exp2_approx(seg * kLog2e), cb = sCB[s * ldq + j];  // MUFU: ~2 ulp, 1/4 of expf's instructions
        float dyv[kP];
        ssd::load_row<kP>(dyv, sDY + s * PS);
        float dm = 0.f;
#pragma unroll
        for (int q = 0; q < kP; ++q) dm += dyv[q] * xj[q];
        const float w = e * dti * dm;  // W_h[s,j] = exp(seg) dt_j (dy_s . x_j)
        atomicAdd(sW + s * ldq + j, w);
        if (s > j) {
          const float gm = w * cb;  // the pair's share of the loss
          colsum += gm;
          atomicAdd(sV + kVrow * 32 + s, gm);
          dA_acc += gm * dsum;
        }
        const float ec = e * cb;
#pragma unroll
        for (int q = 0; q < kP; ++q) dxb[q] += ec * dyv[q];
      }
    }
    __syncthreads();

    // Rows, lane = token i: dX̄_i += exp(suf_i) G_in^T B_i; Gst_i = dt_i x_i . (that term).
    float Gst = 0.f;
    if constexpr (kP == 16) {
      if (rows_mma) {  // (B G_in) on tensor cores into the head's scratch rows, then lane i takes row i
        float bg[2][2][4];
        rows_times_state<sizeof(T) == 2>(bg, sB, sG, PS, p, lane);
        float* sR = hs + lay.R;
        const int g = lane >> 2, t = lane & 3;
#pragma unroll
        for (int mi = 0; mi < 2; ++mi)
#pragma unroll
          for (int np = 0; np < 2; ++np)
#pragma unroll
            for (int hr = 0; hr < 2; ++hr)
              *reinterpret_cast<float2*>(sR + (16 * mi + 8 * hr + g) * PS + 8 * np + 2 * t) =
                  make_float2(bg[mi][np][2 * hr], bg[mi][np][2 * hr + 1]);
        __syncwarp();
        if (lane < Q) {
          float off[kP];
          ssd::load_row<kP>(off, sR + lane * PS);
          float xo = 0.f;
#pragma unroll
          for (int q = 0; q < kP; ++q) {
            dxb[q] += esuf * off[q];
            xo += xj[q] * off[q];
          }
          Gst = esuf * dti * xo;
        }
      }
    }
    if (!rows_mma && lane < Q) {
      const int i = lane;
      float off[kP];
#pragma unroll
      for (int q = 0; q < kP; ++q) off[q] = 0.f;
      for (int n = 0; n < p.N; n += 4) {
        float4 b4 = *reinterpret_cast<const float4*>(sB + i * p.NS + n);
        const float bv[4] = {b4.x, b4.y, b4.z, b4.w};
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          if (n + u >= p.N) break;
          float gv[kP];
          ssd::load_row<kP>(gv, sG + (n + u) * PS);
#pragma unroll
          for (int q = 0; q < kP; ++q) off[q] += bv[u] * gv[q];
        }
      }
      float xo = 0.f;
#pragma unroll
      for (int q = 0; q < kP; ++q) {
        dxb[q] += esuf * off[q];
        xo += xj[q] * off[q];
      }
      Gst = esuf * dti * xo;
    }

    // State rows, lane = n: terms through S_in (dC_off, Goff, Gcross) and G_in (dB_off), summed over heads in smem.
    float Goff = 0.f, gcross = 0.f;
    if (rows_mma) {
#pragma unroll
      for (int r = 0; r < R; ++r) {  // Gcross's <G_in, S_in>, lane = n
        const int n = lane + 32 * r;
        if (n >= p.N) break;
        float sin[kP], gn[kP];
        ssd::load_row<kP>(sin, sbuf_h + c * NP + int64_t(n) * kP);
        ssd::load_row<kP>(gn, sG + n * PS);
#pragma unroll
        for (int q = 0; q < kP; ++q) gcross += gn[q] * sin[q];
      }
      if constexpr (kP == 16)
        Goff = state_rows_mma<sizeof(T) == 2>(p, lay, sm, sbuf + ((b * p.H + h0) * p.nseg + k) * p.seg_chunks * NP + c * NP,
                                              p.nseg * p.seg_chunks * NP, warp, lane);
    } else {
      // One state row at a time keeps registers low; part[i] collects the lane's share of Goff_i.
      float part[ssd::kMaxChunk];
#pragma unroll
      for (int i = 0; i < ssd::kMaxChunk; ++i) part[i] = 0.f;
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const int n = lane + 32 * r;
        if (n >= p.N) break;
        float sin[kP], gn[kP];
        ssd::load_row<kP>(sin, sbuf_h + c * NP + int64_t(n) * kP);  // global, 16-byte aligned rows (kP % 4 == 0)
        ssd::load_row<kP>(gn, sG + n * PS);
#pragma unroll
        for (int q = 0; q < kP; ++q) gcross += gn[q] * sin[q];
#pragma unroll
        for (int i = 0; i < ssd::kMaxChunk; ++i) {
          if (i >= Q) break;
          float dyv[kP], xv[kP];
          ssd::load_row<kP>(dyv, sDY + i * PS);
          ssd::load_row<kP>(xv, sX + i * PS);
          float sdy = 0.f, gx = 0.f;
#pragma unroll
          for (int q = 0; q < kP; ++q) {
            sdy += sin[q] * dyv[q];
            gx += gn[q] * xv[q];
          }
          const float vC = sV[kVexp * 32 + i] * sdy;  // exp(cs_i) (S_in dy_i)[n]
          atomicAdd(sdC + i * p.NS + n, vC);
          atomicAdd(sdB + i * p.NS + n, sV[kVw * 32 + i] * gx);  // exp(suf_i) dt_i (G_in x_i)[n]
          part[i] += sC[i * p.NS + n] * vC;
        }
      }
      // Lane i ends with the warp's sum of part[i] (31 shuffles for the 32 sums instead of 5 each; zero for i >= Q).
      reduce_scatter<32, ssd::kMaxChunk>(part, lane);
      Goff = part[0];  // dy_i . Y_off_i
    }
    const float Gcross = decay * warp_sum(gcross);  // exp(cs_last) <G_in, S_in>

    // d log a, then dx, ddt, dA, dD for token i = lane.
    const float rr = lane < Q ? sV[kVrow * 32 + lane] - colsum + Goff : 0.f;
    const float dla = ssd::warp_suffix_incl(rr, lane) + ssd::warp_prefix_excl(lane < Q ? Gst : 0.f, lane) + Gcross;
    if (lane < Q) {
      dA_acc += Goff * cdt + Gst * sdtx + (lane == 0 ? Gcross * dtot : 0.f);
      const int64_t t = t0 + lane;
      if (t < p.L) {
        float dyv[kP];
        ssd::load_row<kP>(dyv, sDY + lane * PS);
        float xdX = 0.f, dyx = 0.f;
        T* dxo = dx + ((b * p.L + t) * p.H + h) * kP;
#pragma unroll
        for (int q = 0; q < kP; ++q) {
          dxo[q] = from_op<T>(dti * dxb[q] + Dh * dyv[q]);
          xdX += xj[q] * dxb[q];
          dyx += dyv[q] * xj[q];
        }
        ddt[(b * p.L + t) * p.H + h] = xdX + Ah * dla;
        dD_acc += dyx;
      }
    }
    __syncthreads();

    // dB, dC of the chunk for the group (block-wide; n fastest for coalesced writes): kV consecutive n per thread, 4
    // when rows allow (float4 shared reads, one 16-byte global add per operand: 2 loads per 4 FMA instead of per 1).
    auto dbdc = [&](auto width) {
      constexpr int kV = decltype(width)::value;
      auto ld = [](const float* q, float (&v)[kV]) {
        if constexpr (kV == 4) ssd::load_row<4>(v, q);
        else v[0] = q[0];
      };
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      constexpr bool kAdd4 = kV == 4;  // float4 atomicAdd: sm_90
#else
      constexpr bool kAdd4 = false;
#endif
      auto add = [&](float* dst, const float (&v)[kV]) {
        if constexpr (kAdd4) {
          if (atomic_bc) atomicAdd(reinterpret_cast<float4*>(dst), make_float4(v[0], v[1], v[2], v[3]));
          else *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
        } else {
#pragma unroll
          for (int e = 0; e < kV; ++e) {
            if (atomic_bc) atomicAdd(dst + e, v[e]);
            else dst[e] = v[e];
          }
        }
      };
      const int units = N / kV;
      for (int idx = threadIdx.x; idx < Q * units; idx += blockDim.x) {
        const int i = idx / units, n = kV * (idx - i * units);
        const int64_t t = t0 + i;
        if (t >= p.L) continue;
        float vb[kV], vc[kV], r[kV];
        ld(sdB + i * p.NS + n, vb);
        ld(sdC + i * p.NS + n, vc);
        for (int s = i; s < Q; ++s) {
          const float w = sW[s * ldq + i];
          ld(sC + s * p.NS + n, r);
#pragma unroll
          for (int e = 0; e < kV; ++e) vb[e] = fmaf(w, r[e], vb[e]);
        }
        for (int j = 0; j <= i; ++j) {
          const float w = sW[i * ldq + j];
          ld(sB + j * p.NS + n, r);
#pragma unroll
          for (int e = 0; e < kV; ++e) vc[e] = fmaf(w, r[e], vc[e]);
        }
        const int64_t o = ((b * p.L + t) * G + grp) * p.N + n;
        add(dBf + o, vb);
        add(dCf + o, vc);
      }
    };
    if (bc_mma)
      dbdc_mma<sizeof(T) == 2>(dBf, dCf, ((b * p.L + t0) * G + grp) * p.N, G * p.N,
                               int(std::min<int64_t>(Q, p.L - t0)), sm, lay, p, warp, lane, atomic_bc);
    else if (bc4) dbdc(std::integral_constant<int, 4>{});
    else dbdc(std::integral_constant<int, 1>{});
    // The adjoint leaving the chunk to the left: G <- exp(cs_last) G + sum_s exp(cs_s) C_s dy_s^T (every lane's reads
    // of sG in this chunk precede the __syncthreads above).
    if constexpr (kP == 16) {
      if (rows_mma) adjoint_update_mma<sizeof(T) == 2>(sG, decay, sV + kVexp * 32, sC, sDY, p, lane);
      else ssd::state_update_smem<kP>(sG, decay, sV + kVexp * 32, sC, sDY, lane, p);
    } else {
      ssd::state_update_smem<kP>(sG, decay, sV + kVexp * 32, sC, sDY, lane, p);
    }
  }
  dA_acc = warp_sum(dA_acc);
  dD_acc = warp_sum(dD_acc);
  if (lane == 0) {
    dA_part[(b * p.nseg + k) * p.H + h] = dA_acc;
    dD_part[(b * p.nseg + k) * p.H + h] = dD_acc;
  }
}

}  // namespace

void ssd_backward(const SsdArgs& a, const SsdPlan& plan, const Tensor& dy, const Tensor& dfinal,
                  const Tensor& seg_states, const SsdGrads& g, const Context& ctx) {
  ssd::Params p = ssd::make_params(a, plan);
  const int64_t P = a.x.size(3);
  const Device dev = a.x.device();
  if (p.B * p.L * p.H == 0) {
    for (const Tensor& t : {g.dx, g.ddt, g.dA, g.dBm, g.dCm, g.dDskip})
      if (t.defined()) t.zero_();
    if (g.dinitial_state.defined()) {
      if (dfinal.defined()) g.dinitial_state.copy_(dfinal);
      else g.dinitial_state.zero_();
    }
    return;
  }
  Tensor lsum = Tensor::empty({p.B, p.H, p.nseg}, DType::F32, dev);
  Tensor ebuf = Tensor::empty({p.B, p.H, p.nseg, p.N, P}, DType::F32, dev);
  Tensor sbuf = Tensor::empty({p.B, p.H, p.nseg * p.seg_chunks, p.N, P}, DType::F32, dev);
  Tensor dAp = Tensor::empty({p.B * p.nseg, p.H}, DType::F32, dev);
  Tensor dDp = Tensor::empty({p.B * p.nseg, p.H}, DType::F32, dev);
  const bool atomic_bc = p.hb < p.hg;  // several blocks share a group's dB/dC elements
  if (atomic_bc) {
    g.dBm.zero_();
    g.dCm.zero_();
  }
  const float* D = a.Dskip.defined() ? a.Dskip.data<float>() : nullptr;
  const dim3 grid(unsigned(p.nseg), unsigned(p.H / p.hb), unsigned(p.B)), block(unsigned(32 * p.hb));
  dispatch_cuda_float(a.x.dtype(), "ssd_chunk_scan backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    ssd::dispatch_p(P, [&](auto pc) {
      constexpr int kP = decltype(pc)::value;
      const size_t s3 = size_t(ssd::make_layout(p, kP, int(sizeof(T))).total) * 4;
      ssd::adjoint_walk(p, a.x.dtype(), P, dy.data<T>(), a.dt.data<float>(), a.A.data<float>(), a.Cm.data<T>(),
                        ebuf.data<float>(), lsum.data<float>(), ctx);
      ssd::pass_states(ebuf, lsum, dfinal.defined() ? dfinal.data<float>() : nullptr,
                       g.dinitial_state.defined() ? g.dinitial_state.data<float>() : nullptr, p.B * p.H, p.nseg,
                       int(p.N), kP, true, ctx);
      ssd::chunk_state_walk(p, a.x.dtype(), P, a.x.data<T>(), a.dt.data<float>(), a.A.data<float>(), a.Bm.data<T>(),
                            seg_states.data<float>(), sbuf.data<float>(), ctx);
      ssd::set_smem(ssd_bwd_kernel<T, kP>, s3);
      ssd_bwd_kernel<T, kP><<<grid, block, s3, stream_of(ctx)>>>(
          p, a.x.data<T>(), dy.data<T>(), a.dt.data<float>(), a.A.data<float>(), a.Bm.data<T>(), a.Cm.data<T>(), D,
          ebuf.data<float>(), sbuf.data<float>(), g.dx.data<T>(), g.ddt.data<float>(),
          g.dBm.data<float>(), g.dCm.data<float>(), dAp.data<float>(), dDp.data<float>(), atomic_bc);
      STEREORT_LAUNCH_CHECK("ssd_bwd_kernel");
    });
  });
  g.dA.copy_(sum(dAp, {0}));
  if (g.dDskip.defined()) g.dDskip.copy_(sum(dDp, {0}));
}

}  // namespace cuda
}  // namespace stereort
