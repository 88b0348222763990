// cuda/attention_bwd.cu — fused attention backward (FlashAttention-2 maths, deterministic schedule), ops/attention.h.
//   With P = exp(S - L) recomputed from the saved row logsumexp L and Drow_i = Σ_c dO_ic O_ic:
//     dP = dO vᵀ,  dS = P ∘ (dP − Drow),  dv = Pᵀ dO,  dk = scale · dSᵀ q,  dq = scale · dS k.
//   Three kernels, no atomics, results independent of scheduling:
//   1. drow: one warp per query row.
//   2. dk/dv, key-block-major: a CTA owns 64 keys (16 per warp) and walks all queries in tiles; Sᵀ = k qᵀ and
//      dPᵀ = v dOᵀ come out with keys as rows, so Pᵀ and dSᵀ are A fragments straight from registers for
//      dv += Pᵀ dO and dk += dSᵀ q (q and dO read through ldmatrix.trans for these two).
//   3. dq, query-block-major: a CTA owns 64 queries (q and dO fragments in registers) and walks the keys; dS stays
//      in registers for dq += dS k (k read through ldmatrix.trans).
//   Tensor-core kernels double-buffer the streamed tiles with cp.async, as the forward does.
//   S and dP are recomputed in both 2 and 3 (7 matmuls instead of FlashAttention-2's 5 with atomic dq): the price of
//   determinism. Tensor-core kernels for f16/bf16 (P and dS rounded to the input type for their matmuls, fp32
//   accumulation); SIMT fp32 kernels (same structure as the forward) for f32.
#include <string>
#include <type_traits>

#include "cuda/attention.cuh"
#include "ops/attention.h"

namespace stereort {
namespace cuda {
namespace {

template <typename T, int D>
__global__ void attention_bwd_drow_kernel(float* __restrict__ drow, const T* __restrict__ o,
                                          const T* __restrict__ dout, int64_t rows) {
  const int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // whole warps leave together
  float acc = 0.0f;
#pragma unroll
  for (int c = 0; c < D / 32; ++c) acc += to_op(o[row * D + lane + 32 * c]) * to_op(dout[row * D + lane + 32 * c]);
  acc = warp_sum(acc);
  if (lane == 0) drow[row] = acc;
}

// ---- tensor cores: dk/dv -------------------------------------------------------------------------------------------
constexpr int kBwdThreads = 128;
constexpr int kBwdRows = 64;  // keys per CTA (dk/dv) and queries per CTA (dq): 16 per warp
template <int D> constexpr int bwd_inner_tile() { return D == 128 ? 32 : 64; }  // register budget at d = 128

template <int D>
constexpr size_t bwd_dkdv_mma_smem_bytes() {
  constexpr int BQ = bwd_inner_tile<D>();
  return size_t(2 * kBwdRows + 4 * BQ) * (D + kAttnPad) * 2 + size_t(4 * BQ) * 4;
}

template <typename T, int D>
__global__ void __launch_bounds__(kBwdThreads) attention_bwd_dkdv_mma_kernel(AttnParams p) {
  constexpr int BQ = bwd_inner_tile<D>();
  constexpr int LD = D + kAttnPad;
  constexpr int KS = D / 16, NQT = BQ / 8, DT = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);  // (64, D)  this CTA's keys
  T* sV = sK + kBwdRows * LD;              // (64, D)
  T* sQdO = sV + kBwdRows * LD;            // 2 x [(BQ, D) q, (BQ, D) dO], double-buffered
  float* sStat = reinterpret_cast<float*>(sQdO + 4 * BQ * LD);  // 2 x [(BQ) L log2e (+inf past Nq), (BQ) Drow]

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int bh = blockIdx.y, k0 = blockIdx.x * kBwdRows;
  const T* gq = head_of<T>(p.q, p.q_sb, p.q_sh, bh, p.heads);
  const T* gk = head_of<T>(p.k, p.k_sb, p.k_sh, bh, p.heads);
  const T* gv = head_of<T>(p.v, p.v_sb, p.v_sh, bh, p.heads);
  const T* gdo = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * D;
  const float* glse = p.lse + int64_t(bh) * p.nq;
  const float* gdrow = p.drow + int64_t(bh) * p.nq;
  const int ntiles = (p.nq + BQ - 1) / BQ;
  // Query tile j -> buffer j & 1: q, dO by cp.async, the row statistics by plain loads.
  auto load_query_tile = [&](int j) {
    T* bq = sQdO + (j & 1) * 2 * BQ * LD;
    cp_async_tile<T, BQ, D, LD>(bq, gq, p.q_sn, j * BQ, p.nq, tid, kBwdThreads);
    cp_async_tile<T, BQ, D, LD>(bq + BQ * LD, gdo, D, j * BQ, p.nq, tid, kBwdThreads);
    float* st = sStat + (j & 1) * 2 * BQ;
    for (int i = tid; i < BQ; i += kBwdThreads) {
      const int qi = j * BQ + i;
      st[i] = qi < p.nq ? glse[qi] * kLog2e : INFINITY;
      st[BQ + i] = qi < p.nq ? gdrow[qi] : 0.0f;
    }
  };
  cp_async_tile<T, kBwdRows, D, LD>(sK, gk, p.k_sn, k0, p.nk, tid, kBwdThreads);
  cp_async_tile<T, kBwdRows, D, LD>(sV, gv, p.v_sn, k0, p.nk, tid, kBwdThreads);
  load_query_tile(0);
  cp_async_commit();
  const int key0 = k0 + warp * 16 + g, key1 = key0 + 8;

  float dk[DT][4], dv[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[dt][e] = dv[dt][e] = 0.0f;

  for (int j = 0; j < ntiles; ++j) {
    if (j + 1 < ntiles) {  // the other buffer was released by the barrier ending iteration j-1
      load_query_tile(j + 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const T* sQ = sQdO + (j & 1) * 2 * BQ * LD;
    const T* sdO = sQ + BQ * LD;
    const float* sLse2 = sStat + (j & 1) * 2 * BQ;
    const float* sDrow = sLse2 + BQ;
    // Sᵀ = k qᵀ and dPᵀ = v dOᵀ: 16 keys x BQ queries per warp (q, dO are n-major B operands).
    float st[NQT][4], dpt[NQT][4];
#pragma unroll
    for (int nt = 0; nt < NQT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) st[nt][e] = dpt[nt][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks) {
      uint32_t ka[4], va[4];
      load_frag_a(ka, sK + warp * 16 * LD + ks * 16, LD, lane);
      load_frag_a(va, sV + warp * 16 * LD + ks * 16, LD, lane);
#pragma unroll
      for (int np = 0; np < NQT / 2; ++np) {
        uint32_t b0[2], b1[2];
        load_frag_b_nmajor(b0, b1, sQ + np * 16 * LD + ks * 16, LD, lane);
        mma_16816<T>(st[2 * np], ka, b0);
        mma_16816<T>(st[2 * np + 1], ka, b1);
        load_frag_b_nmajor(b0, b1, sdO + np * 16 * LD + ks * 16, LD, lane);
        mma_16816<T>(dpt[2 * np], va, b0);
        mma_16816<T>(dpt[2 * np + 1], va, b1);
      }
    }
    // Pᵀ = 2^(Sᵀ scale log2e - L log2e) (0 for keys past Nk; queries past Nq have L = +inf), dSᵀ = Pᵀ (dPᵀ - Drow).
#pragma unroll
    for (int nt = 0; nt < NQT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int qi = nt * 8 + 2 * t + (e & 1);
        const bool key_ok = (e < 2 ? key0 : key1) < p.nk;
        const float pv = key_ok ? exp2f(st[nt][e] * p.scale_log2 - sLse2[qi]) : 0.0f;
        st[nt][e] = pv;
        dpt[nt][e] = pv * (dpt[nt][e] - sDrow[qi]);
      }
    // dv += Pᵀ dO, dk += dSᵀ q (k = query; dO and q are k-major B operands here).
#pragma unroll
    for (int kk = 0; kk < BQ / 16; ++kk) {
      uint32_t pa[4], dsa[4];
      frag_a_from_c<T>(pa, st[2 * kk], st[2 * kk + 1]);
      frag_a_from_c<T>(dsa, dpt[2 * kk], dpt[2 * kk + 1]);
#pragma unroll
      for (int dp = 0; dp < DT / 2; ++dp) {
        uint32_t b0[2], b1[2];
        load_frag_b_kmajor(b0, b1, sdO + kk * 16 * LD + dp * 16, LD, lane);
        mma_16816<T>(dv[2 * dp], pa, b0);
        mma_16816<T>(dv[2 * dp + 1], pa, b1);
        load_frag_b_kmajor(b0, b1, sQ + kk * 16 * LD + dp * 16, LD, lane);
        mma_16816<T>(dk[2 * dp], dsa, b0);
        mma_16816<T>(dk[2 * dp + 1], dsa, b1);
      }
    }
    __syncthreads();  // buffer j & 1 is refilled at iteration j+1
  }
  T* gdk = static_cast<T*>(p.dk) + int64_t(bh) * p.nk * D;
  T* gdv = static_cast<T*>(p.dv) + int64_t(bh) * p.nk * D;
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) {
    const int c = dt * 8 + 2 * t;
    if (key0 < p.nk) {
      *reinterpret_cast<uint32_t*>(gdk + int64_t(key0) * D + c) = pack2<T>(dk[dt][0] * p.scale, dk[dt][1] * p.scale);
      *reinterpret_cast<uint32_t*>(gdv + int64_t(key0) * D + c) = pack2<T>(dv[dt][0], dv[dt][1]);
    }
    if (key1 < p.nk) {
      *reinterpret_cast<uint32_t*>(gdk + int64_t(key1) * D + c) = pack2<T>(dk[dt][2] * p.scale, dk[dt][3] * p.scale);
      *reinterpret_cast<uint32_t*>(gdv + int64_t(key1) * D + c) = pack2<T>(dv[dt][2], dv[dt][3]);
    }
  }
}

// ---- tensor cores: dq ----------------------------------------------------------------------------------------------
template <int D>
constexpr size_t bwd_dq_mma_smem_bytes() {
  constexpr int BK = bwd_inner_tile<D>();
  return size_t(2 * kBwdRows + 4 * BK) * (D + kAttnPad) * 2;
}

template <typename T, int D>
__global__ void __launch_bounds__(kBwdThreads) attention_bwd_dq_mma_kernel(AttnParams p) {
  constexpr int BK = bwd_inner_tile<D>();
  constexpr int LD = D + kAttnPad;
  constexpr int KS = D / 16, NKT = BK / 8, DT = D / 8;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // (64, D)  this CTA's queries (fragments are read once)
  T* sdO = sQ + kBwdRows * LD;             // (64, D)
  T* sKV = sdO + kBwdRows * LD;            // 2 x [(BK, D) keys, (BK, D) values], double-buffered

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t = lane & 3;
  const int bh = blockIdx.y, q0 = blockIdx.x * kBwdRows;
  const T* gq = head_of<T>(p.q, p.q_sb, p.q_sh, bh, p.heads);
  const T* gk = head_of<T>(p.k, p.k_sb, p.k_sh, bh, p.heads);
  const T* gv = head_of<T>(p.v, p.v_sb, p.v_sh, bh, p.heads);
  const T* gdo = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * D;
  const int ntiles = (p.nk + BK - 1) / BK;
  cp_async_tile<T, kBwdRows, D, LD>(sQ, gq, p.q_sn, q0, p.nq, tid, kBwdThreads);
  cp_async_tile<T, kBwdRows, D, LD>(sdO, gdo, D, q0, p.nq, tid, kBwdThreads);
  cp_async_tile<T, BK, D, LD>(sKV, gk, p.k_sn, 0, p.nk, tid, kBwdThreads);
  cp_async_tile<T, BK, D, LD>(sKV + BK * LD, gv, p.v_sn, 0, p.nk, tid, kBwdThreads);
  cp_async_commit();
  const int r0 = q0 + warp * 16 + g, r1 = r0 + 8;
  const float lse0 = r0 < p.nq ? p.lse[int64_t(bh) * p.nq + r0] * kLog2e : 0.0f;
  const float lse1 = r1 < p.nq ? p.lse[int64_t(bh) * p.nq + r1] * kLog2e : 0.0f;
  const float drow0 = r0 < p.nq ? p.drow[int64_t(bh) * p.nq + r0] : 0.0f;
  const float drow1 = r1 < p.nq ? p.drow[int64_t(bh) * p.nq + r1] : 0.0f;

  uint32_t qf[KS][4], dof[KS][4];
  float dq[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) dq[dt][0] = dq[dt][1] = dq[dt][2] = dq[dt][3] = 0.0f;

  for (int j = 0; j < ntiles; ++j) {
    const int k0 = j * BK;
    if (j + 1 < ntiles) {
      T* nK = sKV + ((j + 1) & 1) * 2 * BK * LD;
      cp_async_tile<T, BK, D, LD>(nK, gk, p.k_sn, k0 + BK, p.nk, tid, kBwdThreads);
      cp_async_tile<T, BK, D, LD>(nK + BK * LD, gv, p.v_sn, k0 + BK, p.nk, tid, kBwdThreads);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) {
        load_frag_a(qf[ks], sQ + warp * 16 * LD + ks * 16, LD, lane);
        load_frag_a(dof[ks], sdO + warp * 16 * LD + ks * 16, LD, lane);
      }
    }
    const T* sK = sKV + (j & 1) * 2 * BK * LD;
    const T* sV = sK + BK * LD;
    float s[NKT][4], dp[NKT][4];
#pragma unroll
    for (int nt = 0; nt < NKT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[nt][e] = dp[nt][e] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
#pragma unroll
      for (int np = 0; np < NKT / 2; ++np) {
        uint32_t b0[2], b1[2];
        load_frag_b_nmajor(b0, b1, sK + np * 16 * LD + ks * 16, LD, lane);
        mma_16816<T>(s[2 * np], qf[ks], b0);
        mma_16816<T>(s[2 * np + 1], qf[ks], b1);
        load_frag_b_nmajor(b0, b1, sV + np * 16 * LD + ks * 16, LD, lane);
        mma_16816<T>(dp[2 * np], dof[ks], b0);
        mma_16816<T>(dp[2 * np + 1], dof[ks], b1);
      }
    // dS = P (dP - Drow), P = 2^(S scale log2e - L log2e); keys past Nk contribute 0.
#pragma unroll
    for (int nt = 0; nt < NKT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + nt * 8 + 2 * t + (e & 1);
        const float pv = key < p.nk ? exp2f(s[nt][e] * p.scale_log2 - (e < 2 ? lse0 : lse1)) : 0.0f;
        s[nt][e] = pv * (dp[nt][e] - (e < 2 ? drow0 : drow1));
      }
    // dq += dS k (k = key; k is a k-major B operand here).
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t a[4];
      frag_a_from_c<T>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int dq2 = 0; dq2 < DT / 2; ++dq2) {
        uint32_t b0[2], b1[2];
        load_frag_b_kmajor(b0, b1, sK + kk * 16 * LD + dq2 * 16, LD, lane);
        mma_16816<T>(dq[2 * dq2], a, b0);
        mma_16816<T>(dq[2 * dq2 + 1], a, b1);
      }
    }
    __syncthreads();
  }
  T* gdq = static_cast<T*>(p.dq) + int64_t(bh) * p.nq * D;
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) {
    const int c = dt * 8 + 2 * t;
    if (r0 < p.nq)
      *reinterpret_cast<uint32_t*>(gdq + int64_t(r0) * D + c) = pack2<T>(dq[dt][0] * p.scale, dq[dt][1] * p.scale);
    if (r1 < p.nq)
      *reinterpret_cast<uint32_t*>(gdq + int64_t(r1) * D + c) = pack2<T>(dq[dt][2] * p.scale, dq[dt][3] * p.scale);
  }
}

// ---- SIMT (fp32) ---------------------------------------------------------------------------------------------------
constexpr int kSimtWarps = 8;
constexpr int kSimtR = 4;                      // rows per warp
constexpr int kSimtRows = kSimtWarps * kSimtR; // 32 rows per CTA
constexpr int kSimtTile = 32;                  // one column row per lane

template <int D>
constexpr size_t bwd_simt_smem_bytes() {
  return size_t(2 * kSimtRows * D + 2 * kSimtTile * (D + 1) + 2 * kSimtTile) * 4;
}

// dq: warp rows = queries, lane j = key j of the tile.
template <typename T, int D>
__global__ void __launch_bounds__(kSimtWarps * 32) attention_bwd_dq_simt_kernel(AttnParams p) {
  constexpr int R = kSimtR, C = D / 32;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* sQ = reinterpret_cast<float*>(smem_raw);  // (32, D)
  float* sdO = sQ + kSimtRows * D;                  // (32, D)
  float* sK = sdO + kSimtRows * D;                  // (32, D+1)
  float* sV = sK + kSimtTile * (D + 1);             // (32, D+1)
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int bh = blockIdx.y, q0 = blockIdx.x * kSimtRows;
  const T* gk = head_of<T>(p.k, p.k_sb, p.k_sh, bh, p.heads);
  const T* gv = head_of<T>(p.v, p.v_sb, p.v_sh, bh, p.heads);
  load_tile_f32<T, kSimtRows, D, D>(sQ, head_of<T>(p.q, p.q_sb, p.q_sh, bh, p.heads), p.q_sn, q0, p.nq, tid,
                                    blockDim.x);
  load_tile_f32<T, kSimtRows, D, D>(sdO, static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * D, D, q0, p.nq, tid,
                                    blockDim.x);
  const float* myq = sQ + warp * R * D;
  const float* mydo = sdO + warp * R * D;
  float lse2[R], drow[R], dq[R][C];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = q0 + warp * R + r;
    lse2[r] = row < p.nq ? p.lse[int64_t(bh) * p.nq + row] * kLog2e : 0.0f;
    drow[r] = row < p.nq ? p.drow[int64_t(bh) * p.nq + row] : 0.0f;
#pragma unroll
    for (int c = 0; c < C; ++c) dq[r][c] = 0.0f;
  }
  for (int k0 = 0; k0 < p.nk; k0 += kSimtTile) {
    __syncthreads();
    load_tile_f32<T, kSimtTile, D, D + 1>(sK, gk, p.k_sn, k0, p.nk, tid, blockDim.x);
    load_tile_f32<T, kSimtTile, D, D + 1>(sV, gv, p.v_sn, k0, p.nk, tid, blockDim.x);
    __syncthreads();
    float s[R], dp[R];
#pragma unroll
    for (int r = 0; r < R; ++r) s[r] = dp[r] = 0.0f;
    const float* kr = sK + lane * (D + 1);
    const float* vr = sV + lane * (D + 1);
    for (int c = 0; c < D; c += 4) {
      float kc[4] = {kr[c], kr[c + 1], kr[c + 2], kr[c + 3]};
      float vc[4] = {vr[c], vr[c + 1], vr[c + 2], vr[c + 3]};
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(myq + r * D + c);
        const float4 dov = *reinterpret_cast<const float4*>(mydo + r * D + c);
        s[r] += qv.x * kc[0] + qv.y * kc[1] + qv.z * kc[2] + qv.w * kc[3];
        dp[r] += dov.x * vc[0] + dov.y * vc[1] + dov.z * vc[2] + dov.w * vc[3];
      }
    }
    const bool valid = k0 + lane < p.nk;
#pragma unroll
    for (int r = 0; r < R; ++r) s[r] = valid ? exp2f(s[r] * p.scale_log2 - lse2[r]) * (dp[r] - drow[r]) : 0.0f;
    const int nkeys = min(kSimtTile, p.nk - k0);
    for (int j = 0; j < nkeys; ++j) {
      float kj[C];
#pragma unroll
      for (int c = 0; c < C; ++c) kj[c] = sK[j * (D + 1) + lane + 32 * c];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float dsj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
        for (int c = 0; c < C; ++c) dq[r][c] += dsj * kj[c];
      }
    }
  }
  T* gdq = static_cast<T*>(p.dq) + int64_t(bh) * p.nq * D;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int row = q0 + warp * R + r;
    if (row >= p.nq) continue;
#pragma unroll
    for (int c = 0; c < C; ++c) gdq[int64_t(row) * D + lane + 32 * c] = from_op<T>(dq[r][c] * p.scale);
  }
}

// dk/dv: warp rows = keys, lane i = query i of the tile.
template <typename T, int D>
__global__ void __launch_bounds__(kSimtWarps * 32) attention_bwd_dkdv_simt_kernel(AttnParams p) {
  constexpr int R = kSimtR, C = D / 32;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* sKr = reinterpret_cast<float*>(smem_raw);  // (32, D)  this CTA's keys
  float* sVr = sKr + kSimtRows * D;                  // (32, D)
  float* sQ = sVr + kSimtRows * D;                   // (32, D+1) query tile
  float* sdO = sQ + kSimtTile * (D + 1);             // (32, D+1)
  float* sLse2 = sdO + kSimtTile * (D + 1);          // (32)
  float* sDrow = sLse2 + kSimtTile;                  // (32)
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int bh = blockIdx.y, k0 = blockIdx.x * kSimtRows;
  const T* gq = head_of<T>(p.q, p.q_sb, p.q_sh, bh, p.heads);
  const T* gdo = static_cast<const T*>(p.dout) + int64_t(bh) * p.nq * D;
  load_tile_f32<T, kSimtRows, D, D>(sKr, head_of<T>(p.k, p.k_sb, p.k_sh, bh, p.heads), p.k_sn, k0, p.nk, tid,
                                    blockDim.x);
  load_tile_f32<T, kSimtRows, D, D>(sVr, head_of<T>(p.v, p.v_sb, p.v_sh, bh, p.heads), p.v_sn, k0, p.nk, tid,
                                    blockDim.x);
  const float* myk = sKr + warp * R * D;
  const float* myv = sVr + warp * R * D;
  float dk[R][C], dv[R][C];
  bool key_ok[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    key_ok[r] = k0 + warp * R + r < p.nk;
#pragma unroll
    for (int c = 0; c < C; ++c) dk[r][c] = dv[r][c] = 0.0f;
  }
  for (int q0 = 0; q0 < p.nq; q0 += kSimtTile) {
    __syncthreads();
    load_tile_f32<T, kSimtTile, D, D + 1>(sQ, gq, p.q_sn, q0, p.nq, tid, blockDim.x);
    load_tile_f32<T, kSimtTile, D, D + 1>(sdO, gdo, D, q0, p.nq, tid, blockDim.x);
    for (int i = tid; i < kSimtTile; i += blockDim.x) {
      const bool ok = q0 + i < p.nq;
      sLse2[i] = ok ? p.lse[int64_t(bh) * p.nq + q0 + i] * kLog2e : 0.0f;
      sDrow[i] = ok ? p.drow[int64_t(bh) * p.nq + q0 + i] : 0.0f;
    }
    __syncthreads();
    float s[R], dp[R];
#pragma unroll
    for (int r = 0; r < R; ++r) s[r] = dp[r] = 0.0f;
    const float* qr = sQ + lane * (D + 1);
    const float* dor = sdO + lane * (D + 1);
    for (int c = 0; c < D; c += 4) {
      float qc[4] = {qr[c], qr[c + 1], qr[c + 2], qr[c + 3]};
      float dc[4] = {dor[c], dor[c + 1], dor[c + 2], dor[c + 3]};
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float4 kv = *reinterpret_cast<const float4*>(myk + r * D + c);
        const float4 vv = *reinterpret_cast<const float4*>(myv + r * D + c);
        s[r] += qc[0] * kv.x + qc[1] * kv.y + qc[2] * kv.z + qc[3] * kv.w;
        dp[r] += dc[0] * vv.x + dc[1] * vv.y + dc[2] * vv.z + dc[3] * vv.w;
      }
    }
    const bool q_ok = q0 + lane < p.nq;
    float pr[R];
#pragma unroll
    for (int r = 0; r < R; ++r) {
      pr[r] = q_ok && key_ok[r] ? exp2f(s[r] * p.scale_log2 - sLse2[lane]) : 0.0f;
      s[r] = pr[r] * (dp[r] - sDrow[lane]);  // dSᵀ
    }
    const int nqs = min(kSimtTile, p.nq - q0);
    for (int i = 0; i < nqs; ++i) {
      float qi[C], doi[C];
#pragma unroll
      for (int c = 0; c < C; ++c) {
        qi[c] = sQ[i * (D + 1) + lane + 32 * c];
        doi[c] = sdO[i * (D + 1) + lane + 32 * c];
      }
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float pi = __shfl_sync(0xffffffffu, pr[r], i);
        const float dsi = __shfl_sync(0xffffffffu, s[r], i);
#pragma unroll
        for (int c = 0; c < C; ++c) {
          dv[r][c] += pi * doi[c];
          dk[r][c] += dsi * qi[c];
        }
      }
    }
  }
  T* gdk = static_cast<T*>(p.dk) + int64_t(bh) * p.nk * D;
  T* gdv = static_cast<T*>(p.dv) + int64_t(bh) * p.nk * D;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const int key = k0 + warp * R + r;
    if (key >= p.nk) continue;
#pragma unroll
    for (int c = 0; c < C; ++c) {
      gdk[int64_t(key) * D + lane + 32 * c] = from_op<T>(dk[r][c] * p.scale);
      gdv[int64_t(key) * D + lane + 32 * c] = from_op<T>(dv[r][c]);
    }
  }
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

template <typename T, int D>
void launch_backward(const AttnParams& p, int bh, AttentionKernel kind, const Context& ctx) {
  const int64_t rows = int64_t(bh) * p.nq;
  attention_bwd_drow_kernel<T, D><<<unsigned(ceil_div(rows * 32, kThreads)), kThreads, 0, stream_of(ctx)>>>(
      const_cast<float*>(p.drow), static_cast<const T*>(p.o), static_cast<const T*>(p.dout), rows);
  STEREORT_LAUNCH_CHECK("attention_bwd_drow_kernel");
  if (kind == AttentionKernel::TensorCore) {
    if constexpr (std::is_same<T, float>::value) {
      STEREORT_THROW("attention_backward: the tensor-core kernels take f16/bf16; use AttentionKernel::Simt for f32");
    } else {
      size_t smem = bwd_dkdv_mma_smem_bytes<D>();
      set_smem(attention_bwd_dkdv_mma_kernel<T, D>, smem);
      attention_bwd_dkdv_mma_kernel<T, D>
          <<<dim3(unsigned(ceil_div(p.nk, kBwdRows)), unsigned(bh)), kBwdThreads, smem, stream_of(ctx)>>>(p);
      STEREORT_LAUNCH_CHECK("attention_bwd_dkdv_mma_kernel");
      smem = bwd_dq_mma_smem_bytes<D>();
      set_smem(attention_bwd_dq_mma_kernel<T, D>, smem);
      attention_bwd_dq_mma_kernel<T, D>
          <<<dim3(unsigned(ceil_div(p.nq, kBwdRows)), unsigned(bh)), kBwdThreads, smem, stream_of(ctx)>>>(p);
      STEREORT_LAUNCH_CHECK("attention_bwd_dq_mma_kernel");
    }
  } else {
    const size_t smem = bwd_simt_smem_bytes<D>();
    set_smem(attention_bwd_dkdv_simt_kernel<T, D>, smem);
    attention_bwd_dkdv_simt_kernel<T, D>
        <<<dim3(unsigned(ceil_div(p.nk, kSimtRows)), unsigned(bh)), kSimtWarps * 32, smem, stream_of(ctx)>>>(p);
    STEREORT_LAUNCH_CHECK("attention_bwd_dkdv_simt_kernel");
    set_smem(attention_bwd_dq_simt_kernel<T, D>, smem);
    attention_bwd_dq_simt_kernel<T, D>
        <<<dim3(unsigned(ceil_div(p.nq, kSimtRows)), unsigned(bh)), kSimtWarps * 32, smem, stream_of(ctx)>>>(p);
    STEREORT_LAUNCH_CHECK("attention_bwd_dq_simt_kernel");
  }
}

}  // namespace

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& q, const Tensor& k,
                        const Tensor& v, const Tensor& out, const Tensor& lse, const Tensor& dout, double scale,
                        AttentionKernel kind, const Context& ctx) {
  if (dk.numel() == 0) return;
  if (q.size(2) == 0) {  // no queries: nothing flows into k and v
    STEREORT_CUDA_CHECK(cudaMemsetAsync(dk.data_ptr(), 0, dk.nbytes(), stream_of(ctx)));
    STEREORT_CUDA_CHECK(cudaMemsetAsync(dv.data_ptr(), 0, dv.nbytes(), stream_of(ctx)));
    return;
  }
  AttnParams p = make_attn_params(q, k, v, scale);
  for (const Tensor* t : {&out, &dout})
    if (!t->is_contiguous() || (reinterpret_cast<uintptr_t>(t->data_ptr()) & 15) != 0)
      STEREORT_THROW("attention_backward: out and dout must be contiguous and 16-byte aligned, got " + t->desc());
  Tensor drow = Tensor::empty({q.size(0), q.size(1), q.size(2)}, DType::F32, q.device());
  p.o = out.data_ptr();
  p.lse = static_cast<float*>(lse.data_ptr());
  p.dout = dout.data_ptr();
  p.drow = static_cast<const float*>(drow.data_ptr());
  p.dq = dq.data_ptr();
  p.dk = dk.data_ptr();
  p.dv = dv.data_ptr();
  const int bh = int(q.size(0) * q.size(1));
  const int d = int(q.size(3));
  if (kind == AttentionKernel::Auto)
    kind = q.dtype() == DType::F32 ? AttentionKernel::Simt : AttentionKernel::TensorCore;
  dispatch_cuda_float(q.dtype(), "attention_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (d) {
      case 32: launch_backward<T, 32>(p, bh, kind, ctx); break;
      case 64: launch_backward<T, 64>(p, bh, kind, ctx); break;
      case 128: launch_backward<T, 128>(p, bh, kind, ctx); break;
      default: STEREORT_THROW("attention_backward: head dim " + std::to_string(d) + " not supported (32, 64, 128)");
    }
  });
}

}  // namespace cuda
}  // namespace stereort
