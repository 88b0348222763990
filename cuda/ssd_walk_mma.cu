// cuda/ssd_walk_mma.cu — the SSD walks of cuda/ssd_fwd.cu (the same four kModes, plan and outputs) with their small
//   GEMMs on tensor cores: mma.sync m16n8k8 TF32 with fp32 accumulation, every fp32 operand split into a high and a
//   low TF32 part ("3xTF32": a_hi b_hi + a_hi b_lo + a_lo b_hi, relative error <= 3 * 2^-20 per product, the fp32
//   level kernels.md §4 asks for; plain TF32 would be ~2^-11). x, B and C in f16/bf16 are exact in TF32, so their
//   products need 2 (1 for C B^T). f32 B and C are split once per block as they are stored (B^T / C^T hold the high
//   parts, BtLo / CtLo the rest).
//   Taken when P = 16, the block is 4 heads, N <= 64 and the prefetch's 16-byte tile loads apply (mma_walk_ok);
//   otherwise the CUDA-core walk runs. STEREORT_SSD_CUDA_CORES=1 forces the CUDA-core walk (for comparisons).
//   Per warp (= head) and chunk of kT = 32 tokens (i, j tokens; n state, zero-padded to 64; p head dim):
//     state   S^T[p][n] (16 x 64) lives in the accumulators of 8 m16n8 tiles (32 floats per lane) across chunks.
//     output  Y[i][p] = exp2(cs2_i) sum_n C[i][n] S[n][p] + sum_j M[i][j] X[j][p] + D x[i][p]   (kMode 1)
//     update  S^T[p][n] <- exp2(cs2_last) S^T[p][n] + sum_j w_j X[j][p] B[j][n]
//   M[i][j] = CB[i][j] exp2(seg2(i, j)) dt_j (j <= i): CB on tensor cores once per block (shared by its 4 heads, kept
//   in fragment order), the mask applied in registers by each head's warp.
//   K order: in every k-step of 8 the lane with t = lane % 4 supplies k = 2t and 2t + 1 to both operands (instead
//   of t and t + 4). The sum is the same, and then (1) the accumulator of S^T (a lane holds n = 2t, 2t + 1 of rows
//   p = g, g + 8) IS the B fragment of S for Y's C S product: the state never goes through shared memory; (2) the
//   accumulator of a CB tile IS the A fragment of M for Y's M X product.
//   Shared memory (floats): B^T [64][40] (stride 8 mod 32: the update's float2 B reads are conflict-free),
//   C^T [64][36], CB [6 tiles][32 lanes][4]; f32: BtLo, CtLo like B^T, C^T; per head X [32][20] and 4 vectors of 32.
//   Every fragment read is conflict-free except CB's B reads (2-way, once per block and chunk).
//   Measured (H100, StereoMamba cross-attention: L 81,920, 16 heads x 16, N 64, both directions): forward f32 0.69 ms,
//   bf16 0.50 ms, against 1.14 / 0.98 ms for the CUDA-core walks (tests/bench/ssd_bench rows tc / cc). Nsight Compute:
//   issue-latency bound (about 3 warps per scheduler, 0.5 eligible), the tensor pipe ~25 % busy.
#include <cstdlib>

#include "cuda/ssd_tile.cuh"

namespace stereort {
namespace cuda {

namespace {

constexpr int kPm = 16, kNm = 64, kHm = 4;  // head dim, state rows (padded), heads per block
constexpr int kBS = kT + 8;                 // row stride of B^T
constexpr int kXSm = kPm + 4;               // row stride of X

// Offsets in floats. kLo (f32 inputs): B^T and C^T hold TF32 high parts and BtLo / CtLo the low parts.
template <bool kLo>
struct MmaLayout {
  static constexpr int kBt = 0, kCt = kNm * kBS, kCBt = kCt + kNm * kTS;
  // C B^T: the 6 m16n8 tiles touching j <= i, in fragment order (a float4 per lane)
  static constexpr int kCBf = 6 * 32 * 4;
  static __host__ __device__ constexpr int bt_lo(bool out) { return out ? kCBt + kCBf : kNm * kBS; }
  static __host__ __device__ constexpr int ct_lo(bool out) { return bt_lo(out) + kNm * kBS; }
  static __host__ __device__ constexpr int shared(bool out) {
    return bt_lo(out) + (kLo ? kNm * kBS + (out ? kNm * kTS : 0) : 0);
  }
  // per head: X [kT][kXSm], vectors [4][kT]
  static __host__ __device__ constexpr int per_head(bool) { return kT * kXSm + 4 * kT; }
  static __host__ __device__ constexpr int total(bool out) { return shared(out) + kHm * per_head(out); }
};

// A fragment (16 x 8: rows g, g + 8; k = 2t, 2t + 1) of a matrix stored transposed, s[k][row], at element
// `o` = (k0 + 2t) ld + r0 + g: its TF32 parts from hi and (unless exact) lo.
template <bool kExact>
__device__ __forceinline__ Frag<4> frag_a_t(const float* hi, const float* lo, int ld, int o) {
  const int off[4] = {o, o + 8, o + ld, o + ld + 8};
  Frag<4> f;
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    f.hi[e] = __float_as_uint(hi[off[e]]);
    f.lo[e] = kExact ? 0u : __float_as_uint(lo[off[e]]);
  }
  return f;
}
// B fragment (k = 2t, 2t + 1 at offsets o and o + step) from pre-split hi / lo arrays.
template <bool kExact>
__device__ __forceinline__ Frag<2> frag_b(const float* hi, const float* lo, int o, int step) {
  Frag<2> f;
  f.hi[0] = __float_as_uint(hi[o]), f.hi[1] = __float_as_uint(hi[o + step]);
  f.lo[0] = kExact ? 0u : __float_as_uint(lo[o]);
  f.lo[1] = kExact ? 0u : __float_as_uint(lo[o + step]);
  return f;
}

// 3 blocks of 128 threads per SM (<= 168 registers), measured on the H100 (StereoMamba shape, both directions) against
// 2 and 4: forward f32 0.691 ms vs 0.714 (2) and 0.852 (4: the output walk spills), bf16 0.496 vs 0.517 / 0.526. Two
// warps per head (each half the state's n tiles, 256-thread blocks) for the state-only walks measured slower too
// (f32 0.725 ms, bf16 0.505).
template <typename T, int kMode>
__global__ void __launch_bounds__(128, 3)
    ssd_mma_walk_kernel(Params p, const T* __restrict__ x, const float* __restrict__ dt, const float* __restrict__ A,
                        const T* __restrict__ Bm, const T* __restrict__ Cm, const float* __restrict__ Dskip,
                        float* __restrict__ seg_states, float* __restrict__ lsum, T* __restrict__ y,
                        float* __restrict__ cstates) {
  constexpr bool kIn = sizeof(T) == 2;  // x (dy), B (C), C exact in TF32; otherwise B^T / C^T stored pre-split
  using L = MmaLayout<!kIn>;
  using Pf = TilePrefetch<T, kPm, kNm>;
  constexpr bool kOutput = kMode == 1, kAdj = kMode == 2, kFromSeg = kMode == 1 || kMode == 3;
  extern __shared__ float4 smem_f4[];
  float* sm = reinterpret_cast<float*>(smem_f4);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const int64_t k = blockIdx.x, b = blockIdx.z;
  const int h0 = blockIdx.y * kHm, h = h0 + warp, grp = h0 / p.hg, N = int(p.N), Q = p.Q;
  float* sBt = sm + L::kBt;
  float* sCt = sm + L::kCt;
  float* sCBf = sm + L::kCBt;
  float* sBl = sm + L::bt_lo(kOutput);  // f32 only
  float* sCl = sm + L::ct_lo(kOutput);
  float* hs = sm + L::shared(kOutput) + warp * L::per_head(kOutput);
  float* sX = hs;
  float* sV = hs + kT * kXSm;
  const float A2 = A[h] * kLog2e;
  const float Dh = Dskip ? Dskip[h] : 0.f;
  float* gstate = seg_states + ((b * p.H + h) * p.nseg + k) * p.N * kPm;  // (N, kPm) of this head and segment

  // S^T tile nn: st[nn][0..3] = S[n][p] at (n, p) = (8nn + 2t, g), (8nn + 2t + 1, g), (8nn + 2t, g + 8), (.., g + 8).
  auto st_n = [&](int nn, int e) { return 8 * nn + 2 * t + (e & 1); };
  auto st_p = [&](int e) { return g + 8 * (e >> 1); };
  float st[8][4];
#pragma unroll
  for (int nn = 0; nn < 8; ++nn)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      st[nn][e] = (kFromSeg && st_n(nn, e) < N) ? gstate[int64_t(st_n(nn, e)) * kPm + st_p(e)] : 0.f;
  float lsum_acc = 0.f;

  const int nc = int(std::min<int64_t>(p.seg_chunks, (p.L - k * p.seg_chunks * Q + Q - 1) / Q));
  auto chunk_t0 = [&](int cc) { return (k * p.seg_chunks + (kAdj ? nc - 1 - cc : cc)) * Q; };
  Pf pf;
  const bool y_vec = kOutput && ssd::aligned16(y);
  for (int idx = threadIdx.x; idx < (kNm - N) * kTS; idx += blockDim.x) {  // rows n >= N stay zero (never stored)
    const int r = idx / kTS, c = idx - r * kTS;
    sBt[(N + r) * kBS + c] = 0.f;
    if (kOutput) sCt[N * kTS + idx] = 0.f;
    if (!kIn) sBl[(N + r) * kBS + c] = 0.f;
    if (!kIn && kOutput) sCl[N * kTS + idx] = 0.f;
  }
  if (nc > 0) pf.fetch(p, chunk_t0(0), b, grp, h0, h, x, dt, Bm, Cm, kOutput);
  for (int cc = 0; cc < nc; ++cc) {
    const int c = kAdj ? nc - 1 - cc : cc;
    const int64_t t0 = chunk_t0(cc);
    if constexpr (kMode == 3) {  // (B,H,nseg*seg_chunks,N,P): the state entering chunk c of segment k
      float* cs_out = cstates + ((b * p.H + h) * p.nseg + k) * p.seg_chunks * p.N * kPm + int64_t(c) * p.N * kPm;
#pragma unroll
      for (int nn = 0; nn < 8; ++nn)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          if (st_n(nn, e) < N) cs_out[st_n(nn, e) * kPm + st_p(e)] = st[nn][e];
    }
    __syncthreads();  // the previous chunk's readers of the shared tiles are done
    pf.template store<kBS, !kIn>(p, sBt, sCt, sm + L::shared(kOutput), L::per_head(kOutput), kOutput, sBl, sCl);
    lsum_acc += chunk_vectors<kAdj>(sV, pf.dti, A2, lane, lane < Q && t0 + lane < p.L);
    __syncthreads();
    if (cc + 1 < nc) pf.fetch(p, chunk_t0(cc + 1), b, grp, h0, h, x, dt, Bm, Cm, kOutput);

    if constexpr (kOutput) {
      // CB[i][j] = C_i . B_j: the 6 m16n8 tiles with some j <= i (tile 0, 1: rows 0..15, columns 8 tile; tile 2 + c:
      // rows 16..31, columns 8 c), warp w takes tiles w and w + 4; two accumulators (even / odd k-steps) halve the MMA
      // chain. A = C (i, n) from C^T, B = B^T (n, j). Stored in fragment order: lane l's 4 values at [tile][l].
      for (int tile = warp; tile < 6; tile += kHm) {
        const int mi = tile < 2 ? 0 : 1, nj = tile < 2 ? tile : tile - 2;
        float d[2][4] = {};
#pragma unroll
        for (int ks = 0; ks < kNm / 8; ++ks) {
          const int oa = (8 * ks + 2 * t) * kTS + 16 * mi + g, ob = (8 * ks + 2 * t) * kBS + 8 * nj + g;
          mma3<kIn, kIn>(d[ks & 1], frag_a_t<kIn>(sCt, sCl, kTS, oa), frag_b<kIn>(sBt, sBl, ob, kBS));
        }
        *reinterpret_cast<float4*>(sCBf + (tile * 32 + lane) * 4) =
            make_float4(d[0][0] + d[1][0], d[0][1] + d[1][1], d[0][2] + d[1][2], d[0][3] + d[1][3]);
      }
      __syncthreads();
      // Decay-mask exponents per 8-token block kb: q[kb] at lane x = sum_{r = 8 kb + 1 .. x} la2_r (lanes x > 8 kb), so
      // seg2(i, j) = sum_{r = j+1 .. i} la2_r = q[kb](i) - q[kb](j) for j in block kb. The subtracted q[kb](j) sums at
      // most 7 terms, so the cancellation error is a few ulps of |seg2| + 2 |q[kb](j)|; la2 is clamped at -32 first (a
      // factor 2^-32 across one step already zeroes a weight for fp32 purposes), which keeps |q[kb](j)| <= 224 and
      // stops a reset's -1e30 from swamping the terms after it. The CUDA-core walk grows each exponent term by term
      // instead; tests compare both with the fp64 recurrence, resets included.
      float q[4];
      {
        const float la2c = fmaxf(sV[kT + lane], -32.f);
#pragma unroll
        for (int kb = 0; kb < 4; ++kb) q[kb] = ssd::warp_prefix_incl(lane > 8 * kb ? la2c : 0.f, lane);
      }
      // Y tiles (mi: rows 16 mi + g (+8); np: columns 8 np + 2t (+1)): first C S with S from the state registers.
      float acc[2][2][4] = {};
#pragma unroll
      for (int ks = 0; ks < kNm / 8; ++ks) {
        Frag<2> sb[2];
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          const float v[2] = {st[ks][2 * np], st[ks][2 * np + 1]};
          sb[np] = split<false>(v);
        }
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          const Frag<4> ca = frag_a_t<kIn>(sCt, sCl, kTS, (8 * ks + 2 * t) * kTS + 16 * mi + g);
#pragma unroll
          for (int np = 0; np < 2; ++np) mma3<kIn, false>(acc[mi][np], ca, sb[np]);
        }
      }
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const float e = exp2_approx(sV[2 * kT + 16 * mi + 8 * hr + g]);
#pragma unroll
          for (int np = 0; np < 2; ++np) acc[mi][np][2 * hr] *= e, acc[mi][np][2 * hr + 1] *= e;
        }
      // + M X, M[i][j] = CB[i][j] exp2(seg2(i, j)) dt_j for j <= i, else 0, built in registers: the CB tile's
      // accumulator layout (rows g, g + 8; columns 2t, 2t + 1) is M's A-fragment layout under the K order above.
      // B = X (j, p). Rows 0..15 need j < 16 only.
#pragma unroll
      for (int kj = 0; kj < kT / 8; ++kj) {
        const int j0 = 8 * kj + 2 * t;
        Frag<2> xb[2];
#pragma unroll
        for (int np = 0; np < 2; ++np) {
          const float* xp = sX + j0 * kXSm + 8 * np + g;
          const float v[2] = {xp[0], xp[kXSm]};
          xb[np] = split<kIn>(v);
        }
        const float qj[2] = {__shfl_sync(0xffffffffu, q[kj], j0), __shfl_sync(0xffffffffu, q[kj], j0 + 1)};
        const float2 dtj = *reinterpret_cast<const float2*>(sV + j0);
#pragma unroll
        for (int mi = 0; mi < 2; ++mi) {
          if (mi == 0 && kj >= 2) continue;
          const float4 cb = *reinterpret_cast<const float4*>(sCBf + ((mi == 0 ? kj : 2 + kj) * 32 + lane) * 4);
          float w[2][2];  // [row half][column]
#pragma unroll
          for (int hr = 0; hr < 2; ++hr) {
            const int i = 16 * mi + 8 * hr + g;
            const float qi = __shfl_sync(0xffffffffu, q[kj], i);
            w[hr][0] = j0 <= i ? exp2_approx(qi - qj[0]) * dtj.x : 0.f;
            w[hr][1] = j0 + 1 <= i ? exp2_approx(qi - qj[1]) * dtj.y : 0.f;
          }
          const float av[4] = {cb.x * w[0][0], cb.z * w[1][0], cb.y * w[0][1], cb.w * w[1][1]};
          const Frag<4> ma = split<false>(av);
#pragma unroll
          for (int np = 0; np < 2; ++np) mma3<false, kIn>(acc[mi][np], ma, xb[np]);
        }
      }
      // y = Y + D x, rows i < Q with t0 + i < L (row i at yc + i H kPm).
      T* yc = y + ((b * p.L + t0) * p.H + h) * kPm;
      const int yrow = int(p.H) * kPm;
#pragma unroll
      for (int mi = 0; mi < 2; ++mi)
#pragma unroll
        for (int hr = 0; hr < 2; ++hr) {
          const int i = 16 * mi + 8 * hr + g;
          const int64_t tt = t0 + i;
          if (i >= Q || tt >= p.L) continue;
#pragma unroll
          for (int np = 0; np < 2; ++np) {
            const int pc = 8 * np + 2 * t;
            const float2 xv = *reinterpret_cast<const float2*>(sX + i * kXSm + pc);
            const float y0 = fmaf(Dh, xv.x, acc[mi][np][2 * hr]), y1 = fmaf(Dh, xv.y, acc[mi][np][2 * hr + 1]);
            T* yo = yc + (i * yrow + pc);
            if (sizeof(T) == 4 && y_vec) {
              *reinterpret_cast<float2*>(yo) = make_float2(y0, y1);
            } else {
              yo[0] = from_op<T>(y0), yo[1] = from_op<T>(y1);
            }
          }
        }
    }
    // State: S^T <- exp2(cs2_last) S^T + (w X)^T B, A = (w X)^T (p, j) from X, B = B^T rows (j, n).
    {
      const float decay = exp2_approx(sV[2 * kT + kT - 1]);
#pragma unroll
      for (int nn = 0; nn < 8; ++nn)
#pragma unroll
        for (int e = 0; e < 4; ++e) st[nn][e] *= decay;
      // Per k-step: the 8 B fragments loaded first, then the products ordered term by term across the 8 independent
      // accumulators (a tile's 3 products are a dependent chain; Nsight Compute showed the MMAs waiting on their
      // operand loads and on each other when each tile's 3 products were issued together).
#pragma unroll
      for (int kj = 0; kj < kT / 8; ++kj) {
        const int j = 8 * kj + 2 * t;
        const float w0 = sV[3 * kT + j], w1 = sV[3 * kT + j + 1];
        const float* xp = sX + j * kXSm + g;
        const float av[4] = {w0 * xp[0], w0 * xp[8], w1 * xp[kXSm], w1 * xp[kXSm + 8]};
        const Frag<4> xa = split<false>(av);
        Frag<2> bf[8];
#pragma unroll
        for (int nn = 0; nn < 8; ++nn) {
          const int o = (8 * nn + g) * kBS + j;
          const float2 h2 = *reinterpret_cast<const float2*>(sBt + o);
          bf[nn].hi[0] = __float_as_uint(h2.x), bf[nn].hi[1] = __float_as_uint(h2.y);
          if constexpr (!kIn) {
            const float2 l2 = *reinterpret_cast<const float2*>(sBl + o);
            bf[nn].lo[0] = __float_as_uint(l2.x), bf[nn].lo[1] = __float_as_uint(l2.y);
          }
        }
#pragma unroll
        for (int nn = 0; nn < 8; ++nn) mma_tf32(st[nn], xa.lo, bf[nn].hi);
        if constexpr (!kIn) {
#pragma unroll
          for (int nn = 0; nn < 8; ++nn) mma_tf32(st[nn], xa.hi, bf[nn].lo);
        }
#pragma unroll
        for (int nn = 0; nn < 8; ++nn) mma_tf32(st[nn], xa.hi, bf[nn].hi);
      }
    }
  }
  if constexpr (kMode == 0 || kMode == 2) {
#pragma unroll
    for (int nn = 0; nn < 8; ++nn)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (st_n(nn, e) < N) gstate[int64_t(st_n(nn, e)) * kPm + st_p(e)] = st[nn][e];
    if (lane == 0) lsum[(b * p.H + h) * p.nseg + k] = lsum_acc * kLn2;
  }
}

}  // namespace

namespace ssd {

// The host side of the tile prefetch's conditions, for every block of the launch: P 16, 4 heads per block, N a
// multiple of two 16-byte vectors and <= 64, base pointers 16-byte aligned and every batch and step stride in whole
// vectors (x's heads are 16 elements, B/C's groups N: whole vectors too).
bool mma_walk_ok(const Params& p, int hb, int64_t P, size_t es, const void* v, const void* u, const void* Cm,
                 bool with_c) {
  if (std::getenv("STEREORT_SSD_CUDA_CORES") != nullptr) return false;
  const int64_t kv = 16 / int64_t(es);
  if (P != kPm || hb != kHm || p.N > kNm || p.N % (2 * kv) != 0 || p.Q > kT) return false;
  auto a16 = [](const void* q) { return (reinterpret_cast<uintptr_t>(q) & 15) == 0; };
  if (!a16(v) || !a16(u) || (with_c && !a16(Cm))) return false;
  if (p.sxb % kv || p.sxl % kv || p.sbb % kv || p.sbl % kv) return false;
  constexpr int64_t kMax = TilePrefetch<float, kPm, kNm>::kMaxRowStride;
  if (p.sxl >= kMax || p.sbl >= kMax || (with_c && p.scl >= kMax)) return false;
  return !with_c || (p.scb % kv == 0 && p.scl % kv == 0);
}

// kMode as in launch_walk (cuda/ssd_fwd.cu); operands v in x's slot, u in B's. Call only when mma_walk_ok.
template <int kMode>
void launch_mma_walk(const Params& p, DType xt, const void* v, const float* dt, const float* A, const void* u,
                     const void* Cm, const float* D, float* seg, float* lsum, void* y, float* cstates,
                     const Context& ctx) {
  const dim3 grid(unsigned(p.nseg), unsigned(p.H / kHm), unsigned(p.B)), block(32 * kHm);
  dispatch_cuda_float(xt, "ssd_chunk_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const size_t sz = size_t(MmaLayout<sizeof(T) == 4>::total(kMode == 1)) * 4;
    set_smem(ssd_mma_walk_kernel<T, kMode>, sz);
    ssd_mma_walk_kernel<T, kMode><<<grid, block, sz, stream_of(ctx)>>>(
        p, static_cast<const T*>(v), dt, A, static_cast<const T*>(u), static_cast<const T*>(Cm), D, seg, lsum,
        static_cast<T*>(y), cstates);
    STEREORT_LAUNCH_CHECK(kMode == 0   ? "ssd_mma_walk_kernel<state>"
                          : kMode == 1 ? "ssd_mma_walk_kernel<output>"
                          : kMode == 2 ? "ssd_mma_walk_kernel<adjoint>"
                                       : "ssd_mma_walk_kernel<chunk states>");
  });
}
template void launch_mma_walk<0>(const Params&, DType, const void*, const float*, const float*, const void*,
                                 const void*, const float*, float*, float*, void*, float*, const Context&);
template void launch_mma_walk<1>(const Params&, DType, const void*, const float*, const float*, const void*,
                                 const void*, const float*, float*, float*, void*, float*, const Context&);
template void launch_mma_walk<2>(const Params&, DType, const void*, const float*, const float*, const void*,
                                 const void*, const float*, float*, float*, void*, float*, const Context&);
template void launch_mma_walk<3>(const Params&, DType, const void*, const float*, const float*, const void*,
                                 const void*, const float*, float*, float*, void*, float*, const Context&);

}  // namespace ssd
}  // namespace cuda
}  // namespace stereort
