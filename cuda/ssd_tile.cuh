// cuda/ssd_tile.cuh — pieces of the SSD walks shared by the CUDA-core walk (cuda/ssd_fwd.cu) and the tensor-core walk
//   (cuda/ssd_walk_mma.cu): the chunk tile (32 tokens), register loads from shared memory, the tile geometry, the
//   one-chunk-ahead register prefetch of the global tiles, and the per-chunk decay vectors.
#pragma once
#include <algorithm>

#include "cuda/mma_tf32.cuh"
#include "cuda/ssd_common.cuh"

namespace stereort {
namespace cuda {
namespace {

using ssd::Params;

constexpr int kT = 32;       // tokens per tile (the chunk, Q <= 32, zero-padded)
constexpr int kTS = kT + 4;  // row stride of the transposed [n][token] / [j][i] tiles (16-byte aligned rows)

// kR consecutive floats (16-byte aligned when kR >= 4, 8-byte when 2) into registers.
template <int kR>
__device__ __forceinline__ void lds(float (&r)[kR], const float* s) {
  if constexpr (kR == 1) {
    r[0] = s[0];
  } else if constexpr (kR == 2) {
    const float2 v = *reinterpret_cast<const float2*>(s);
    r[0] = v.x, r[1] = v.y;
  } else {
#pragma unroll
    for (int q = 0; q < kR; q += 4) {
      const float4 v = *reinterpret_cast<const float4*>(s + q);
      r[q] = v.x, r[q + 1] = v.y, r[q + 2] = v.z, r[q + 3] = v.w;
    }
  }
}

// acc[r][q] += sum_{k < K} a[k * lda + r] * b[k * ldb + q]: a kR x 4 register tile of A^T B, both operands read as
// rows of shared memory (a: kR consecutive floats, b: 4).
template <int kR>
__device__ __forceinline__ void tile_fma(float (&acc)[kR][4], const float* a, int lda, const float* b, int ldb, int K) {
#pragma unroll 4
  for (int k = 0; k < K; ++k) {
    float av[kR], bv[4];
    lds<kR>(av, a + k * lda);
    lds<4>(bv, b + k * ldb);
#pragma unroll
    for (int r = 0; r < kR; ++r)
#pragma unroll
      for (int q = 0; q < 4; ++q) acc[r][q] = fmaf(av[r], bv[q], acc[r][q]);
  }
}

// Geometry of the tiles for head dim kP and kSR state rows per lane (floats; the same on host and device).
template <int kP, int kSR>
struct Tile {
  static constexpr int kCG = kP / 4;             // column groups of 4 (lanes per row group)
  static constexpr int kRG = 32 / kCG;           // row groups
  static constexpr int kYR = kT / kRG;           // Y rows per lane (= kP / 4)
  static constexpr int kNr = ((kRG * kSR + 3) / 4) * 4;  // state rows held (>= N, zero past it)
  static constexpr int kXS = kP + 4;             // row stride of X and S
  // block-shared: Bt [kNr][kTS], Ct [kNr][kTS], CBt [kT][kTS]; per head: X [kT][kXS], Mt [kT][kTS], S [kNr][kXS],
  // vectors dt, la2 (log2 e * dt * A), cs2 (inclusive prefix of la2), w [kT] each.
  static constexpr int kBt = 0, kCt = kNr * kTS;
  static __host__ __device__ constexpr int shared(bool out) { return (out ? 2 * kNr + kT : kNr) * kTS; }
  static __host__ __device__ constexpr int per_head(bool out) {
    return kT * kXS + (out ? kT * kTS + kNr * kXS : 0) + 4 * kT;
  }
  static __host__ __device__ constexpr int total(bool out, int hb) { return shared(out) + hb * per_head(out); }
};

// The walk's global tiles of one chunk (B^T or the adjoint's C^T, C^T for the output walk, X, per-head dt) loaded as
// 16-byte vectors into registers ONE CHUNK AHEAD and stored to shared memory after the chunk's first barrier. Nsight
// Compute (H100, StereoMamba cross-attention, element-wise loads issued at the chunk start): the output walk waited
// on global loads 44 % of its cycles in bf16, which made bf16 1.47x slower than f32.
// Used when the block is 4 heads (128 threads), kP <= 16 (register budget), N is a multiple of 2 vectors and every
// row start is 16-byte aligned (ok()); otherwise the walk loads element by element at the chunk start.
// Units: B/C vector g (elements g*kV ..) of token i, two lanes per token (32 contiguous bytes), tokens along the
// warp: the transposed stores [n][i] are conflict-free in f32 and 2-way in 16-bit. X vector j of token i (the 4
// heads' rows are contiguous), stored untransposed.
template <typename T, int kP, int kNr>
struct TilePrefetch {
  static constexpr int kV = 16 / int(sizeof(T)), kThreads = 128, kHeads = 4;
  static constexpr bool kUsable = kP <= 16 && kP % kV == 0 && kNr <= 64;
  static constexpr int64_t kMaxRowStride = int64_t(1) << 25;  // elements: i * stride (i < 32) fits an int
  // The output walk always; the other walks in 16-bit only (f32 registers would cut their occupancy from 6 blocks).
  static constexpr bool enabled(int mode) { return kUsable && (mode == 1 || sizeof(T) == 2); }
  // Register budget (blocks of 128 threads per SM): the prefetching walks 3 (output) or 4, the f32 state walks 6 (as
  // many as their shared memory allows); other tiles keep the compiler's choice.
  static constexpr int min_blocks(int mode) { return !kUsable ? 0 : !enabled(mode) ? 6 : mode == 1 ? 3 : 4; }
  static constexpr int kUBC = (kT * kNr / kV + kThreads - 1) / kThreads;  // B (or C) vectors per thread, at most
  static constexpr int kXG = kHeads * kP / kV;                             // X vectors per token
  static constexpr int kUX = (kT * kXG + kThreads - 1) / kThreads;         // X vectors per thread
  uint4 rb[kUBC], rc[kUBC], rx[kUX];
  float dti;

  static __host__ __device__ __forceinline__ bool ok(const Params& p, int hb, const T* x, const T* Bm, const T* Cm,
                                                     int64_t b, int grp, int h0, bool with_c) {
    if (!kUsable || hb != kHeads || int(p.N) % (2 * kV) != 0 || p.N > kNr) return false;
    if (p.sbl >= kMaxRowStride || (with_c && p.scl >= kMaxRowStride) || p.sxl >= kMaxRowStride) return false;
    const bool bo = ssd::aligned16(Bm + b * p.sbb + int64_t(grp) * p.N) && p.sbl % kV == 0;
    const bool co = !with_c || (ssd::aligned16(Cm + b * p.scb + int64_t(grp) * p.N) && p.scl % kV == 0);
    return bo && co && ssd::aligned16(x + b * p.sxb + int64_t(h0) * kP) && p.sxl % kV == 0;
  }
  // Chunk starting at step t0 (tokens i < Q with t0 + i < L; zero elsewhere).
  // The chunk's base pointers are formed once (64-bit); a unit adds i * stride in 32 bits (ok() bounds the strides).
  __device__ __forceinline__ void fetch(const Params& p, int64_t t0, int64_t b, int grp, int h0, int h, const T* x,
                                        const float* dt, const T* Bm, const T* Cm, bool with_c) {
    const int tid = threadIdx.x, lane = tid & 31, nG = int(p.N) / kV, units = kT * nG;
    const int nvalid = int(std::min<int64_t>(p.Q, p.L - t0));  // tokens of this chunk
    const T* bb = Bm + b * p.sbb + t0 * p.sbl + int64_t(grp) * p.N;
    const T* cb = with_c ? Cm + b * p.scb + t0 * p.scl + int64_t(grp) * p.N : nullptr;
    const T* xb = x + b * p.sxb + t0 * p.sxl + int64_t(h0) * kP;
    const int sbl = int(p.sbl), scl = int(p.scl), sxl = int(p.sxl);
#pragma unroll
    for (int k = 0; k < kUBC; ++k) {
      const int u = tid + k * kThreads, i = (u >> 1) % kT, g = ((u >> 1) / kT) * 2 + (u & 1);
      const bool v = u < units && i < nvalid;
      rb[k] = v ? *reinterpret_cast<const uint4*>(bb + (i * sbl + g * kV)) : make_uint4(0u, 0u, 0u, 0u);
      if (with_c)
        rc[k] = v ? *reinterpret_cast<const uint4*>(cb + (i * scl + g * kV)) : make_uint4(0u, 0u, 0u, 0u);
    }
#pragma unroll
    for (int k = 0; k < kUX; ++k) {
      const int u = tid + k * kThreads, i = u / kXG, j = u % kXG;
      const bool v = i < kT && i < nvalid;
      rx[k] = v ? *reinterpret_cast<const uint4*>(xb + (i * sxl + j * kV)) : make_uint4(0u, 0u, 0u, 0u);
    }
    dti = lane < nvalid ? dt[b * p.stb + (t0 + lane) * p.stl + h] : 0.f;
  }
  static __device__ __forceinline__ void unpack(const uint4& r, float (&f)[kV]) {
    const uint32_t w[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int e = 0; e < kV; ++e) {
      if constexpr (sizeof(T) == 4) {
        f[e] = __uint_as_float(w[e]);
      } else if constexpr (std::is_same<T, __half>::value) {
        f[e] = __half2float(__ushort_as_half((unsigned short)(w[e / 2] >> (16 * (e % 2)))));
      } else {  // bf16: the high half of an f32
        f[e] = __uint_as_float(e % 2 ? w[e / 2] & 0xffff0000u : w[e / 2] << 16);
      }
    }
  }
  // Into B^T [n][kBS], C^T [n][kTS] and the heads' X [i][kXS] (head w at x_head + w * per_head). kLo (the tensor-core
  // walk's f32 tiles): B^T and C^T get the TF32 high part (tf32_hi) and sBl / sCl the rest, the split done once per
  // block instead of once per warp.
  template <int kBS = kTS, bool kLo = false>
  __device__ __forceinline__ void store(const Params& p, float* sBt, float* sCt, float* x_head, int per_head,
                                        bool with_c, float* sBl = nullptr, float* sCl = nullptr) const {
    auto put = [&](float* hi, float* lo, int o, float v) {
      if constexpr (kLo) {
        const float vh = tf32_hi(v);
        hi[o] = vh, lo[o] = v - vh;
      } else {
        hi[o] = v;
      }
    };
    const int tid = threadIdx.x, units = kT * (int(p.N) / kV);
#pragma unroll
    for (int k = 0; k < kUBC; ++k) {
      const int u = tid + k * kThreads, i = (u >> 1) % kT, g = ((u >> 1) / kT) * 2 + (u & 1);
      if (u < units) {
        float f[kV];
        unpack(rb[k], f);
#pragma unroll
        for (int e = 0; e < kV; ++e) put(sBt, sBl, (g * kV + e) * kBS + i, f[e]);
        if (with_c) {
          unpack(rc[k], f);
#pragma unroll
          for (int e = 0; e < kV; ++e) put(sCt, sCl, (g * kV + e) * kTS + i, f[e]);
        }
      }
    }
    constexpr int kXS = kP + 4;
#pragma unroll
    for (int k = 0; k < kUX; ++k) {
      const int u = tid + k * kThreads, i = u / kXG, j = u % kXG, w = j * kV / kP, q = j * kV % kP;
      if (i < kT) {
        float f[kV];
        unpack(rx[k], f);
        float* dst = x_head + w * per_head + i * kXS + q;
#pragma unroll
        for (int e = 0; e < kV; e += 4) *reinterpret_cast<float4*>(dst + e) = make_float4(f[e], f[e + 1], f[e + 2], f[e + 3]);
      }
    }
  }
};

// Per head, lane = token i of the chunk (dti = 0 past Q and L): sV[0..kT) dt, [kT..) la2 = log2 e dt A, [2kT..) cs2 =
// inclusive prefix of la2, [3kT..) the state-update weight: exp2(sum_{r>i} la2_r) dt_i, or for the adjoint walk (chunks
// right to left) exp2(cs2_i) on valid tokens. Returns the chunk's total la2 (cs2 of lane 31).
template <bool kAdj>
__device__ __forceinline__ float chunk_vectors(float* sV, float dti, float A2, int lane, bool valid) {
  const float la2 = dti * A2;
  const float cs2 = ssd::warp_prefix_incl(la2, lane);
  const float suf2 = ssd::warp_suffix_excl(la2, lane);
  sV[lane] = dti;
  sV[kT + lane] = la2;
  sV[2 * kT + lane] = cs2;
  sV[3 * kT + lane] = kAdj ? (valid ? exp2_approx(cs2) : 0.f) : exp2_approx(suf2) * dti;
  return __shfl_sync(0xffffffffu, cs2, 31);
}

}  // namespace
}  // namespace cuda
}  // namespace stereort
