// cuda/ssd_fwd.cu — Mamba-2 SSD forward (kernels.md §3), fp32 math, x/B/C in f32/f16/bf16.
//   Three launches:
//   1. ssd_tile_walk_kernel<kMode = 0>: per (segment, head group, batch) the segment's local state from zero,
//      S_loc = sum_j exp(sum_{r>j} log a_r) B_j (dt_j x_j)^T walked chunk by chunk, and its total log-decay.
//   2. ssd_pass_states_kernel: sequential over segments, S~_{k+1} = exp(lsum_k) S~_k + S_loc_k from the initial state;
//      seg_states[k] <- S~_k (kept for the backward), final state = S~_nseg.
//   3. ssd_tile_walk_kernel<kMode = 1>: per segment from S~_k, per chunk (a 32-token tile, zero past Q and L):
//        Y = diag(exp(cs)) C S + (CB o Lmask) (dt x) + D x       (off-diagonal from the state entering the chunk,
//                                                                  intra-chunk quadratic form, CB shared by the heads)
//      then S <- exp(cs_last) S + B^T diag(w) X, w_j = exp(sum_{r>j} log a_r) dt_j.
//   Register tiles (every product is a small GEMM on CUDA cores, fp32 FFMA; kernels.md §4 rules out TF32):
//     lane = (row group, column group of 4 of the head dim P): the state S (N x P) is kSR rows x 4 columns per lane,
//     Y (32 x P) is P/4 rows x 4 columns; B, C and CB sit transposed in shared memory ([n][token], [j][i]) so each
//     lane reads its rows with vector loads. A lane's state rows are interleaved (rg + 8 r) so the 8 row groups read
//     8 bank groups; the next chunk's tiles are prefetched into registers as 16-byte vectors (TilePrefetch).
//   Measured (H100, StereoMamba cross-attention, both directions): f32 1.14 ms, bf16 0.98 ms (5.5x / 4.7x the fp32
//   FMA floor); the output walk is then bound by shared-memory wavefronts and FFMA issue about equally. At that shape
//   (P 16, 4 heads per block) the walks now run on tensor cores instead (cuda/ssd_walk_mma.cu, launch_walk's first
//   test): 0.69 / 0.50 ms. These CUDA-core walks serve every other shape. The intra-chunk mask is built once per
//   (head, chunk) into shared memory
//     as M^T[j][i] = CB[i][j] exp(seg[i,j]) dt_j, seg grown one log a at a time along the row (lane i): nothing
//     subtracts two cumulative sums (a reset log a = -1e30 leaves every other exponent exact).
//   Exponentials are ex2.approx of log2-scaled sums (relative error ~1e-7 where the weight matters).
#include <algorithm>

#include "cuda/ssd_tile.cuh"

namespace stereort {
namespace cuda {

using ssd::Params;

namespace {

// kMode: 0 = forward state walk, 1 = forward output walk, 2 = the backward's adjoint walk (operands C and dy in the
// B and x slots, chunks right to left, weights exp(cs) instead of exp(suf) dt: E_k = sum_s exp(cs_s) C_s dy_s^T),
// 3 = the backward's chunk states (from S~_k like mode 1, the state entering every chunk stored to cstates).
template <typename T, int kP, int kSR, int kMode>
__global__ void __launch_bounds__(TilePrefetch<T, kP, Tile<kP, kSR>::kNr>::kUsable ? 128 : 256,
                                  TilePrefetch<T, kP, Tile<kP, kSR>::kNr>::min_blocks(kMode)) ssd_tile_walk_kernel(Params p, int hb, const T* __restrict__ x,
                                                           const float* __restrict__ dt, const float* __restrict__ A,
                                                           const T* __restrict__ Bm, const T* __restrict__ Cm,
                                                           const float* __restrict__ Dskip,
                                                           float* __restrict__ seg_states, float* __restrict__ lsum,
                                                           T* __restrict__ y, float* __restrict__ cstates) {
  using G = Tile<kP, kSR>;
  constexpr int kXS = G::kXS, kNr = G::kNr, kYR = G::kYR;
  constexpr bool kOutput = kMode == 1, kAdj = kMode == 2, kFromSeg = kMode == 1 || kMode == 3;
  extern __shared__ float4 smem_f4[];
  float* sm = reinterpret_cast<float*>(smem_f4);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, nthr = blockDim.x;
  const int64_t k = blockIdx.x, b = blockIdx.z;
  const int h0 = blockIdx.y * hb, h = h0 + warp, grp = h0 / p.hg, N = int(p.N), Q = p.Q;
  float* sBt = sm + G::kBt;
  float* sCt = sm + G::kCt;
  float* sCBt = sm + 2 * kNr * kTS;
  float* hs = sm + G::shared(kOutput) + warp * G::per_head(kOutput);
  float* sX = hs;
  float* sMt = hs + kT * kXS;
  float* sS = sMt + kT * kTS;
  float* sV = hs + kT * kXS + (kOutput ? kT * kTS + kNr * kXS : 0);  // dt, la2, cs2, w
  const float A2 = A[h] * kLog2e;
  const float Dh = Dskip ? Dskip[h] : 0.f;
  float* gstate = seg_states + ((b * p.H + h) * p.nseg + k) * p.N * kP;  // (N, kP) of this head and segment

  // This lane's state tile: rows n_r = rg + kRG r (r < kSR), columns c0 .. c0 + 3; its Y tile: rows i0 .. i0 + kYR - 1.
  // Interleaved rows: the state update's B^T reads (row n_r of 8 row groups at once) fall in 8 different bank groups;
  // contiguous rows (rg kSR + r, a multiple of 8 rows of 36 floats apart) were an 8-way bank conflict that kept
  // shared memory 80-96 % busy (Nsight Compute, H100).
  const int cg = lane % G::kCG, rg = lane / G::kCG, c0 = 4 * cg, i0 = rg * kYR;
  auto nr = [&](int r) { return rg + G::kRG * r; };
  float st[kSR][4];
#pragma unroll
  for (int r = 0; r < kSR; ++r)
#pragma unroll
    for (int q = 0; q < 4; ++q) st[r][q] = (kFromSeg && nr(r) < N) ? gstate[int64_t(nr(r)) * kP + c0 + q] : 0.f;
  if (kOutput) {
#pragma unroll
    for (int r = 0; r < kSR; ++r)  // nr(r) < kRG * kSR <= kNr
      *reinterpret_cast<float4*>(sS + nr(r) * kXS + c0) = make_float4(st[r][0], st[r][1], st[r][2], st[r][3]);
  }
  float lsum_acc = 0.f;

  // Chunks of this segment holding any step < L, left to right (right to left for the adjoint).
  const int nc = int(std::min<int64_t>(p.seg_chunks, (p.L - k * p.seg_chunks * Q + Q - 1) / Q));
  auto chunk_t0 = [&](int cc) { return (k * p.seg_chunks + (kAdj ? nc - 1 - cc : cc)) * Q; };
  using Pf = TilePrefetch<T, kP, kNr>;
  Pf pf;
  const bool prefetch = Pf::enabled(kMode) && Pf::ok(p, hb, x, Bm, Cm, b, grp, h0, kOutput);
  const bool y_vec = kOutput && ssd::aligned16(y);
  if (prefetch) {
    for (int idx = threadIdx.x; idx < (kNr - N) * kTS; idx += nthr) {  // rows n >= N stay zero (never stored)
      sBt[N * kTS + idx] = 0.f;
      if (kOutput) sCt[N * kTS + idx] = 0.f;
    }
    if (nc > 0) pf.fetch(p, chunk_t0(0), b, grp, h0, h, x, dt, Bm, Cm, kOutput);
  }
  for (int cc = 0; cc < nc; ++cc) {
    const int c = kAdj ? nc - 1 - cc : cc;
    const int64_t t0 = chunk_t0(cc);
    if constexpr (kMode == 3) {  // (B,H,nseg*seg_chunks,N,P): chunk c of segment k
      float* cs_out = cstates + ((b * p.H + h) * p.nseg + k) * p.seg_chunks * p.N * kP + int64_t(c) * p.N * kP;
#pragma unroll
      for (int r = 0; r < kSR; ++r)
        if (nr(r) < N)
          *reinterpret_cast<float4*>(cs_out + nr(r) * kP + c0) = make_float4(st[r][0], st[r][1], st[r][2], st[r][3]);
    }
    __syncthreads();  // the previous chunk's readers of the shared tiles are done
    // Tiles: B^T (and C^T) [n][i], X [i][p] per head, dt per head; zero past Q, past L and past N.
    if (prefetch) pf.store(p, sBt, sCt, sm + G::shared(kOutput), G::per_head(kOutput), kOutput);
    for (int idx = threadIdx.x; !prefetch && idx < kT * kNr; idx += nthr) {
      const int i = idx / kNr, n = idx - i * kNr;
      const int64_t t = t0 + i;
      const bool ok = i < Q && t < p.L && n < N;
      sBt[n * kTS + i] = ok ? to_op(Bm[b * p.sbb + t * p.sbl + int64_t(grp) * N + n]) : 0.f;
      if (kOutput) sCt[n * kTS + i] = ok ? to_op(Cm[b * p.scb + t * p.scl + int64_t(grp) * N + n]) : 0.f;
    }
    for (int idx = threadIdx.x; !prefetch && idx < kT * hb * kP; idx += nthr) {
      const int i = idx / (hb * kP), r = idx - i * (hb * kP), w = r / kP, q = r - w * kP;
      const int64_t t = t0 + i;
      sm[G::shared(kOutput) + w * G::per_head(kOutput) + i * kXS + q] =
          (i < Q && t < p.L) ? to_op(x[b * p.sxb + t * p.sxl + int64_t(h0 + w) * kP + q]) : 0.f;
    }
    {  // per head, lane = token: dt, log2 decays, inclusive prefix cs2, the state-update weight w
      const int64_t t = t0 + lane;
      const float dti = prefetch ? pf.dti : (lane < Q && t < p.L) ? dt[b * p.stb + t * p.stl + h] : 0.f;
      lsum_acc += chunk_vectors<kAdj>(sV, dti, A2, lane, lane < Q && t < p.L);
    }
    __syncthreads();
    if (prefetch && cc + 1 < nc) pf.fetch(p, chunk_t0(cc + 1), b, grp, h0, h, x, dt, Bm, Cm, kOutput);

    if constexpr (kOutput) {
      // CB^T[j][i] = C_i . B_j for j <= i: 2 x 4 tiles (rows i, i+1; columns j .. j+3), block-cooperative.
      for (int tile = threadIdx.x; tile < (kT / 2) * (kT / 4); tile += nthr) {
        const int ti = tile % (kT / 2), tj = tile / (kT / 2), i = 2 * ti, j = 4 * tj;
        if (j > i + 1) continue;
        float a[2][4] = {};
        for (int n = 0; n < N; ++n) {
          const float2 cv = *reinterpret_cast<const float2*>(sCt + n * kTS + i);
          const float4 bv = *reinterpret_cast<const float4*>(sBt + n * kTS + j);
          const float cc[2] = {cv.x, cv.y}, bb[4] = {bv.x, bv.y, bv.z, bv.w};
#pragma unroll
          for (int u = 0; u < 2; ++u)
#pragma unroll
            for (int v = 0; v < 4; ++v) a[u][v] = fmaf(cc[u], bb[v], a[u][v]);
        }
#pragma unroll
        for (int v = 0; v < 4; ++v) *reinterpret_cast<float2*>(sCBt + (j + v) * kTS + i) = make_float2(a[0][v], a[1][v]);
      }
      __syncthreads();
      // M^T[j][i] = CB[i][j] exp2(seg2[i,j]) dt_j for j <= i, else 0 (lane = row i; seg2 grown down the row).
      {
        float seg = 0.f;
        for (int j = kT - 1; j >= 0; --j) {
          const float m = j <= lane ? sCBt[j * kTS + lane] * exp2_approx(seg) * sV[j] : 0.f;
          sMt[j * kTS + lane] = m;
          if (j <= lane) seg += sV[kT + j];
        }
      }
      __syncwarp();
      // Y tile: off-diagonal C S (state entering the chunk), scaled by exp2(cs2_i), then the intra-chunk M X.
      float acc[kYR][4];
#pragma unroll
      for (int r = 0; r < kYR; ++r)
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[r][q] = 0.f;
      tile_fma<kYR>(acc, sCt + i0, kTS, sS + c0, kXS, N);  // sum_n C^T[n][i] S[n][p]
#pragma unroll
      for (int r = 0; r < kYR; ++r) {
        const float e = exp2_approx(sV[2 * kT + i0 + r]);
#pragma unroll
        for (int q = 0; q < 4; ++q) acc[r][q] *= e;
      }
      tile_fma<kYR>(acc, sMt + i0, kTS, sX + c0, kXS, Q);  // sum_j M^T[j][i] X[j][p]
#pragma unroll
      for (int r = 0; r < kYR; ++r) {
        const int i = i0 + r;
        const int64_t t = t0 + i;
        if (i < Q && t < p.L) {
          float xv[4];
          lds<4>(xv, sX + i * kXS + c0);
          T* yo = y + ((b * p.L + t) * p.H + h) * kP + c0;
          if (sizeof(T) == 4 && y_vec) {  // one 16-byte store (c0 is a multiple of 4)
            *reinterpret_cast<float4*>(yo) = make_float4(fmaf(Dh, xv[0], acc[r][0]), fmaf(Dh, xv[1], acc[r][1]),
                                                         fmaf(Dh, xv[2], acc[r][2]), fmaf(Dh, xv[3], acc[r][3]));
          } else {
#pragma unroll
            for (int q = 0; q < 4; ++q) yo[q] = from_op<T>(fmaf(Dh, xv[q], acc[r][q]));
          }
        }
      }
    }
    // State: S <- exp2(cs2_last) S + sum_j B_j (w_j x_j)^T, 4 tokens per step (the tile is zero past Q).
    {
      const float decay = exp2_approx(sV[2 * kT + kT - 1]);
#pragma unroll
      for (int r = 0; r < kSR; ++r)
#pragma unroll
        for (int q = 0; q < 4; ++q) st[r][q] *= decay;
      for (int j = 0; j < Q; j += 4) {
        float wv[4], xw[4][4];
        lds<4>(wv, sV + 3 * kT + j);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
          lds<4>(xw[u], sX + (j + u) * kXS + c0);
#pragma unroll
          for (int q = 0; q < 4; ++q) xw[u][q] *= wv[u];
        }
#pragma unroll
        for (int r = 0; r < kSR; ++r) {
          float bv[4];
          lds<4>(bv, sBt + nr(r) * kTS + j);
#pragma unroll
          for (int u = 0; u < 4; ++u)
#pragma unroll
            for (int q = 0; q < 4; ++q) st[r][q] = fmaf(bv[u], xw[u][q], st[r][q]);
        }
      }
      if (kOutput) {
        __syncwarp();  // every lane's Y has read S
#pragma unroll
        for (int r = 0; r < kSR; ++r)
          *reinterpret_cast<float4*>(sS + nr(r) * kXS + c0) = make_float4(st[r][0], st[r][1], st[r][2], st[r][3]);
      }
    }
  }
  if constexpr (kMode == 0 || kMode == 2) {
#pragma unroll
    for (int r = 0; r < kSR; ++r)
      if (nr(r) < N)
#pragma unroll
        for (int q = 0; q < 4; ++q) gstate[int64_t(nr(r)) * kP + c0 + q] = st[r][q];
    if (lane == 0) lsum[(b * p.H + h) * p.nseg + k] = lsum_acc * kLn2;
  }
}

}  // namespace

// ---- state passing between segments (shared with the backward) -----------------------------------------------------
// Forward (reverse = false): s = init; for k: loc = states[k]; states[k] = s; s = exp(lsum[k]) s + loc; out = s.
// Reverse: s = init (the incoming adjoint); for k from the end: loc = states[k]; states[k] = s;
//          s = exp(lsum[k]) s + loc; out = s (the adjoint of the initial state).
// init/out are (B,H,P,N) (the API layout) or null; states (B,H,nseg,N,P).
static __global__ void ssd_pass_states_kernel(float* __restrict__ states, const float* __restrict__ lsum,
                                       const float* __restrict__ init, float* __restrict__ out, int64_t nseg, int N,
                                       int P, bool reverse) {
  const int NP = N * P;
  const int e = blockIdx.x * blockDim.x + threadIdx.x;
  const int64_t bh = blockIdx.y;
  if (e >= NP) return;
  const int n = e / P, pp = e - n * P;
  float s = init ? init[bh * NP + int64_t(pp) * N + n] : 0.f;
  float* st = states + bh * nseg * NP + e;
  const float* ls = lsum + bh * nseg;
  constexpr int kBatch = 16;  // independent loads in flight per thread; the recurrence itself is in registers
  for (int64_t k0 = 0; k0 < nseg; k0 += kBatch) {
    float loc[kBatch], dec[kBatch];
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      int64_t k = k0 + u, kk = reverse ? nseg - 1 - k : k;
      loc[u] = k < nseg ? st[kk * NP] : 0.f;
      dec[u] = k < nseg ? ls[kk] : 0.f;
    }
#pragma unroll
    for (int u = 0; u < kBatch; ++u) {
      int64_t k = k0 + u, kk = reverse ? nseg - 1 - k : k;
      if (k < nseg) {
        st[kk * NP] = s;
        s = expf(dec[u]) * s + loc[u];
      }
    }
  }
  if (out) out[bh * NP + int64_t(pp) * N + n] = s;
}

namespace ssd {
void pass_states(const Tensor& states, const Tensor& lsum, const float* init, float* out, int64_t BH, int64_t nseg,
                 int N, int P, bool reverse, const Context& ctx) {
  dim3 grid(unsigned(ceil_div(int64_t(N) * P, 256)), unsigned(BH));
  ssd_pass_states_kernel<<<grid, 256, 0, stream_of(ctx)>>>(states.data<float>(), lsum.data<float>(), init, out, nseg,
                                                           N, P, reverse);
  STEREORT_LAUNCH_CHECK("ssd_pass_states_kernel");
}

// One launch of the tiled walk (any kMode): dispatch on x's dtype, P and the state rows per lane (8 covers
// N <= 8 * 128 / P, StereoMamba's P 16 / N 64; 16 covers N * P <= 2048). Operands: v in x's slot, u in B's, Cm/y only
// for the output walk.
template <int kMode>
static void launch_walk(const Params& p, int hb, DType xt, int64_t P, const void* v, const float* dt, const float* A,
                        const void* u, const void* Cm, const float* D, float* seg, float* lsum, void* y,
                        float* cstates, const Context& ctx) {
  if (mma_walk_ok(p, hb, P, dtype_size(xt), v, u, Cm, kMode == 1))
    return launch_mma_walk<kMode>(p, xt, v, dt, A, u, Cm, D, seg, lsum, y, cstates, ctx);
  const dim3 grid(unsigned(p.nseg), unsigned(p.H / hb), unsigned(p.B)), block(unsigned(32 * hb));
  dispatch_cuda_float(xt, "ssd_chunk_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_p(P, [&](auto pc) {
      constexpr int kP = decltype(pc)::value;
      auto run = [&](auto src) {
        constexpr int kSR = decltype(src)::value;
        const size_t sz = size_t(Tile<kP, kSR>::total(kMode == 1, hb)) * 4;
        set_smem(ssd_tile_walk_kernel<T, kP, kSR, kMode>, sz);
        ssd_tile_walk_kernel<T, kP, kSR, kMode><<<grid, block, sz, stream_of(ctx)>>>(
            p, hb, static_cast<const T*>(v), dt, A, static_cast<const T*>(u), static_cast<const T*>(Cm), D, seg, lsum,
            static_cast<T*>(y), cstates);
        STEREORT_LAUNCH_CHECK(kMode == 0   ? "ssd_tile_walk_kernel<state>"
                              : kMode == 1 ? "ssd_tile_walk_kernel<output>"
                              : kMode == 2 ? "ssd_tile_walk_kernel<adjoint>"
                                           : "ssd_tile_walk_kernel<chunk states>");
      };
      if (p.N <= 8 * Tile<kP, 8>::kRG) run(std::integral_constant<int, 8>{});
      else run(std::integral_constant<int, 16>{});
    });
  });
}
// Heads per block: 4 (3 blocks of 128 threads per SM at StereoMamba's P 16, N 64), fewer when a group has fewer.
static int walk_heads(const Params& p) { return p.hg % 4 == 0 ? 4 : p.hg % 2 == 0 ? 2 : 1; }

// The backward's walks (cuda/ssd_bwd.cu). dy is contiguous (B, L, H, P).
//   adjoint_walk (kMode 2): per segment the adjoint it sends left from zero (ebuf) and its log-decay (lsum).
//   chunk_state_walk (kMode 3): from the forward's S~_k, the state entering every chunk (cstates).
void adjoint_walk(const Params& p0, DType xt, int64_t P, const void* dy, const float* dt, const float* A,
                  const void* Cm, float* ebuf, float* lsum, const Context& ctx) {
  Params p = p0;
  p.sbb = p0.scb, p.sbl = p0.scl;             // C in B's slot
  p.sxb = p0.L * p0.H * P, p.sxl = p0.H * P;  // dy in x's slot
  launch_walk<2>(p, walk_heads(p), xt, P, dy, dt, A, Cm, nullptr, nullptr, ebuf, lsum, nullptr, nullptr, ctx);
}
void chunk_state_walk(const Params& p, DType xt, int64_t P, const void* x, const float* dt, const float* A,
                      const void* Bm, const float* seg_states, float* cstates, const Context& ctx) {
  launch_walk<3>(p, walk_heads(p), xt, P, x, dt, A, Bm, nullptr, nullptr, const_cast<float*>(seg_states), nullptr,
                 nullptr, cstates, ctx);
}
}  // namespace ssd

// ---- plan and launch -------------------------------------------------------------------------------------------------
bool ssd_cuda_supported(const SsdDims& d) {
  return (d.P == 8 || d.P == 16 || d.P == 32 || d.P == 64) && d.N >= 1 && d.N * d.P <= 2048;
}

ssd::Params ssd::make_params(const SsdArgs& a, const SsdPlan& plan) {
  ssd::Params p{};
  p.B = a.x.size(0), p.L = a.x.size(1), p.H = a.x.size(2), p.N = a.Bm.size(3);
  p.hg = int(p.H / a.Bm.size(2));
  p.Q = int(plan.chunk), p.seg_chunks = int(plan.seg_chunks), p.nseg = plan.nseg, p.hb = plan.heads_per_block;
  p.NS = ((int(p.N) + 7) & ~7) + 4;
  p.sxb = a.x.stride(0), p.sxl = a.x.stride(1);
  p.sbb = a.Bm.stride(0), p.sbl = a.Bm.stride(1);
  p.scb = a.Cm.stride(0), p.scl = a.Cm.stride(1);
  p.stb = a.dt.stride(0), p.stl = a.dt.stride(1);
  return p;
}

SsdPlan ssd_cuda_plan(const SsdDims& d, int64_t chunk_size) {
  SsdPlan plan;
  plan.chunk = std::min<int64_t>(std::max<int64_t>(chunk_size, 1), ssd::kMaxChunk);
  int hg = int(d.H / d.G), hb = 1;
  while (hb * 2 <= 8 && hg % (hb * 2) == 0) hb *= 2;
  // Shared memory must fit (the backward's layout is the largest; shrink the head group until it does).
  int optin = 0, dev = 0;
  STEREORT_CUDA_CHECK(cudaGetDevice(&dev));
  STEREORT_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
  for (;; hb /= 2) {
    ssd::Params p{};
    p.N = d.N, p.Q = int(plan.chunk), p.hb = hb, p.NS = ((int(d.N) + 7) & ~7) + 4;
    if (hb == 1 || int64_t(ssd::make_layout(p, int(d.P)).total) * 4 <= optin) break;
  }
  plan.heads_per_block = hb;
  // Segments: enough blocks for ~3 waves of the output kernel, never shorter than one chunk.
  const int64_t nchunks = (d.L + plan.chunk - 1) / plan.chunk;
  const int64_t per_seg_row = d.B * (d.H / hb);  // blocks per segment index
  const int64_t target = 3 * int64_t(sm_count());
  int64_t nseg_want = std::max<int64_t>(1, std::min<int64_t>(nchunks, (target + per_seg_row - 1) / per_seg_row));
  plan.seg_chunks = std::max<int64_t>(1, (nchunks + nseg_want - 1) / nseg_want);  // >= 1 (L = 0 gives nseg = 0)
  plan.nseg = (nchunks + plan.seg_chunks - 1) / plan.seg_chunks;
  return plan;
}

void ssd_forward(const SsdArgs& a, const SsdPlan& plan, const Tensor& y, const Tensor& seg_states,
                 const Tensor& final_state, const Context& ctx) {
  ssd::Params p = ssd::make_params(a, plan);
  const int64_t P = a.x.size(3);
  if (p.B * p.L * p.H == 0) {
    if (final_state.defined()) {
      if (a.initial_state.defined()) final_state.copy_(a.initial_state);
      else final_state.zero_();
    }
    return;
  }
  Tensor lsum = Tensor::empty({p.B, p.H, p.nseg}, DType::F32, a.x.device());
  const float* D = a.Dskip.defined() ? a.Dskip.data<float>() : nullptr;
  const int hb = ssd::walk_heads(p);
  float* seg = seg_states.data<float>();
  ssd::launch_walk<0>(p, hb, a.x.dtype(), P, a.x.data_ptr(), a.dt.data<float>(), a.A.data<float>(), a.Bm.data_ptr(), nullptr,
                      nullptr, seg, lsum.data<float>(), nullptr, nullptr, ctx);
  ssd::pass_states(seg_states, lsum, a.initial_state.defined() ? a.initial_state.data<float>() : nullptr,
                   final_state.defined() ? final_state.data<float>() : nullptr, p.B * p.H, p.nseg, int(p.N), int(P),
                   false, ctx);
  ssd::launch_walk<1>(p, hb, a.x.dtype(), P, a.x.data_ptr(), a.dt.data<float>(), a.A.data<float>(), a.Bm.data_ptr(),
                      a.Cm.data_ptr(), D, seg, lsum.data<float>(), y.data_ptr(), nullptr, ctx);
}

}  // namespace cuda
}  // namespace stereort
