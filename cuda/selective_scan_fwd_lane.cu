// cuda/selective_scan_fwd_lane.cu — the state-lane selective-scan forward (N = 16; tune 8-10, see dispatch_fwd).
//   One lane owns kS states of one channel and walks the whole sequence itself: per position only
//     a = ex2(dt A log2 e), h = a h + (dt u) B, v = C h                      (one MUFU and ~4 FP32 ops per update)
//   with no scan: the recurrence is a register FFMA chain, 16 positions of independent ex2 in flight per step.
//   The 16 / kS lanes of a channel then sum v over their states by a reduce-scatter of 16 positions (lane r ends with
//   positions r*16/kLpc ...), the warp holds 32 / kLpc channels, the block kWarps warps of ONE group.
//   Per chunk of kT = 64 positions the block stages (f32, shared memory, double buffered) B and C of the group
//   (16 x 64 each), dt' = softplus(dt + bias), dt'*u and u of its channels; the next chunk's global loads are issued
//   before this chunk's compute and land in registers meanwhile. Two __syncthreads per chunk: after the compute
//   (y complete) and after the next chunk's staging.
//   Positions >= L have dt' = 0, u = 0, so (a, b) = (1, 0): the state is kept through the carry slots past L.
//   Why: the warp-chain forward spends ~35 shuffle-scan instructions per (lane, state, 16 positions) and is latency
//   bound (selective_scan_fwd.cu); here an update costs ~5 instructions plus the reduce-scatter (60 per 16 positions
//   and channel at kS = 1).
//   Measured (H100, scan_bench): StereoMamba stage 2 (6144 channels, L 5120) with 2 states per lane (tune 10) f32
//   0.429 ms, bf16 0.413, vs 0.551 / 0.586 for the warp chain: the default with >= 4 warps per scheduler at one state
//   per lane. At stage 0 (1536 channels = 768 warps, 1.5 per scheduler) it loses (f32 tune 8 2.98 ms vs 2.18).
//   Nsight Compute, tune 8 f32: stage 0 14.3 issued instructions per update, 29 % issue utilisation, 0.39 eligible warps
//   per scheduler; stage 2 42 % issue at 2.84 warps per scheduler; the stalls are short scoreboard (MUFU, shared
//   memory) and fixed-latency dependencies. Converting 16-bit loads right after they were issued made bf16 1.5x
//   slower: RawSeg. A shared-memory transpose in place of the reduce-scatter measured no gain.
#include <string>

#include "cuda/selective_scan_common.cuh"

namespace stereort {
namespace cuda {
namespace scan {
namespace {

constexpr int kLaneN = 16, kLaneT = 64;
// The variants (tune 8-10): states per lane, warps per block.
struct LaneShape { int states_per_lane, warps; };
constexpr LaneShape kLaneShapes[3] = {{1, 4}, {1, 2}, {2, 2}};

// kItems consecutive positions of a row as raw bits in MEMORY order (element j = memory m0 + j, m0 = s0 or
// L - s0 - kItems when reversed), zeros outside [0, L). Loaded a chunk ahead and converted only when staged, so the
// warp never waits on the loads before its compute (a conversion right after the load would).
template <typename T, int kItems>
struct RawSeg {
  static constexpr int kBytes = kItems * int(sizeof(T)), kWords = kBytes / 4;
  static_assert(kBytes % 8 == 0, "whole 8-byte vectors");
  uint32_t w[kWords];
  // Whole 8/16-byte vectors are aligned for every segment of this row.
  static __device__ __forceinline__ bool vec_ok(const T* row, int L) {
    return kBytes % 16 == 0 ? scan::vec_ok<T, kItems>(row, L) : vec8_ok<T, kItems>(row, L);
  }
  __device__ __forceinline__ void load(const T* row, int L, int s0, bool rev, bool vec) {
    const int m0 = rev ? L - s0 - kItems : s0;
    if (vec && s0 + kItems <= L) {
      if constexpr (kWords % 4 == 0) {
#pragma unroll
        for (int j = 0; j < kWords / 4; ++j) {
          const uint4 q = reinterpret_cast<const uint4*>(row + m0)[j];
          w[4 * j] = q.x; w[4 * j + 1] = q.y; w[4 * j + 2] = q.z; w[4 * j + 3] = q.w;
        }
      } else {
        const uint2 q = *reinterpret_cast<const uint2*>(row + m0);
        w[0] = q.x; w[1] = q.y;
      }
      return;
    }
#pragma unroll
    for (int j = 0; j < kWords; ++j) w[j] = 0u;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      const int m = m0 + j;
      if (m < 0 || m >= L) continue;
      if constexpr (sizeof(T) == 4) {
        w[j] = __float_as_uint(to_op(row[m]));
      } else {
        w[j / 2] |= uint32_t(*reinterpret_cast<const unsigned short*>(row + m)) << (16 * (j % 2));
      }
    }
  }
  // The values in SEQUENCE order.
  __device__ __forceinline__ void to_float(bool rev, float (&v)[kItems]) const {
    float f[kItems];
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      if constexpr (sizeof(T) == 4) {
        f[j] = __uint_as_float(w[j]);
      } else {
        const unsigned short bits = (unsigned short)(w[j / 2] >> (16 * (j % 2)));
        f[j] = to_op(*reinterpret_cast<const T*>(&bits));
      }
    }
#pragma unroll
    for (int i = 0; i < kItems; ++i) v[i] = rev ? f[kItems - 1 - i] : f[i];
  }
};

template <int kS, int kWarps>
struct LaneCfg {
  static constexpr int kLpc = kLaneN / kS, kCpw = 32 / kLpc, kCh = kWarps * kCpw, kThreads = 32 * kWarps;
  static constexpr int kRows = kLaneN / kS, kStride = kS * kLaneT + 4;  // B/C row: kS states interleaved per position
  // Staging units: B/C rows in 8 positions; u/dt (and the outputs) of one channel in kI positions, one unit per thread.
  static constexpr int kUnitsBC = 2 * kLaneN * (kLaneT / 8), kPerBC = kUnitsBC / kThreads;
  static constexpr int kI = kCh * kLaneT / kThreads, kUpc = kLaneT / kI;  // u/dt unit length, units per channel
  static_assert(kUnitsBC % kThreads == 0 && kI >= 4 && kI <= 16 && kLaneT % kI == 0, "whole units per thread");
};

template <int kS, int kWarps>
struct LaneStage {
  using C = LaneCfg<kS, kWarps>;
  float B[C::kRows * C::kStride], Cm[C::kRows * C::kStride];
  float dt[C::kCh * kLaneT], dtu[C::kCh * kLaneT], u[C::kCh * kLaneT], y[C::kCh * kLaneT];
};

template <typename T, int kS, int kWarps, bool kRev>
__device__ __forceinline__ void fwd_lane_body(const SelectiveScanParams& p, const RowSet& rs, LaneStage<kS, kWarps>* st) {
  using Cfg = LaneCfg<kS, kWarps>;
  constexpr int kLpc = Cfg::kLpc, kThreads = Cfg::kThreads, kStride = Cfg::kStride;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int L = int(p.seqlen);
  const int ch = warp * Cfg::kCpw + lane / kLpc, r = lane % kLpc;  // this lane: channel ch of the block, states r*kS+s
  const int64_t d = rs.d0 + ch;
  const T* B_row0 = operand_row<T>(p.B, rs, 0, rs.gl);
  const T* C_row0 = operand_row<T>(p.C, rs, 0, rs.gl);
  const int64_t B_n = p.B.row[rs.k], C_n = p.C.row[rs.k];
  const bool bc_vec = RawSeg<T, 8>::vec_ok(B_row0, L) && RawSeg<T, 8>::vec_ok(C_row0, L) &&
                      (B_n * int64_t(sizeof(T))) % 16 == 0 &&
                      (C_n * int64_t(sizeof(T))) % 16 == 0;

  // Chunks: through L, or through the last carry slot when carries are saved (positions past L keep the state).
  const int64_t cover = p.carries && p.n_carries * p.carry_stride > L ? p.n_carries * p.carry_stride : int64_t(L);
  const int n_chunks = int((cover + kLaneT - 1) / kLaneT);

  // Global -> registers (chunk c) and registers -> stage (f32, transformed).
  constexpr int kI = Cfg::kI;
  const int ucq = tid / Cfg::kUpc, uj = tid % Cfg::kUpc;  // this thread's u/dt/output unit: channel, kI positions
  const T* u_row = operand_row<T>(p.u, rs, rs.dl0 + ucq, 0);
  const T* dt_row = operand_row<T>(p.delta, rs, rs.dl0 + ucq, 0);
  const bool u_vec = RawSeg<T, kI>::vec_ok(u_row, L), dt_vec = RawSeg<T, kI>::vec_ok(dt_row, L);
  const float ubias = p.delta_bias ? p.delta_bias[rs.d0 + ucq] : 0.f, uD = p.Dskip ? p.Dskip[rs.d0 + ucq] : 0.f;
  RawSeg<T, 8> rbc[Cfg::kPerBC];
  RawSeg<T, kI> ru, rdt;
  auto fetch = [&](int c) {
#pragma unroll
    for (int k = 0; k < Cfg::kPerBC; ++k) {
      const int q = tid + k * kThreads, which = q / (kLaneN * 8), n = (q / 8) % kLaneN, j = q % 8;
      const T* row = which ? C_row0 + n * C_n : B_row0 + n * B_n;
      rbc[k].load(row, L, c * kLaneT + 8 * j, kRev, bc_vec);
    }
    ru.load(u_row, L, c * kLaneT + kI * uj, kRev, u_vec);
    rdt.load(dt_row, L, c * kLaneT + kI * uj, kRev, dt_vec);
  };
  auto stage = [&](int c, LaneStage<kS, kWarps>& s) {
#pragma unroll
    for (int k = 0; k < Cfg::kPerBC; ++k) {
      const int q = tid + k * kThreads, which = q / (kLaneN * 8), n = (q / 8) % kLaneN, j = q % 8;
      float* dst = (which ? s.Cm : s.B) + (n / kS) * kStride + 8 * j * kS + n % kS, bv[8];
      rbc[k].to_float(kRev, bv);
      if constexpr (kS == 1) {
        reinterpret_cast<float4*>(dst)[0] = make_float4(bv[0], bv[1], bv[2], bv[3]);
        reinterpret_cast<float4*>(dst)[1] = make_float4(bv[4], bv[5], bv[6], bv[7]);
      } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) dst[i * kS] = bv[i];
      }
    }
    float vdt[kI], vdtu[kI], vu[kI];
    rdt.to_float(kRev, vdt);
    ru.to_float(kRev, vu);
#pragma unroll
    for (int i = 0; i < kI; ++i) {
      const float x = vdt[i] + ubias;
      vdt[i] = c * kLaneT + kI * uj + i < L ? (p.softplus ? softplus_f(x) : x) : 0.f;
      vdtu[i] = vdt[i] * vu[i];
    }
    const int o = ucq * kLaneT + kI * uj;
#pragma unroll
    for (int i = 0; i < kI; i += 4) {
      *reinterpret_cast<float4*>(s.dt + o + i) = make_float4(vdt[i], vdt[i + 1], vdt[i + 2], vdt[i + 3]);
      *reinterpret_cast<float4*>(s.dtu + o + i) = make_float4(vdtu[i], vdtu[i + 1], vdtu[i + 2], vdtu[i + 3]);
      *reinterpret_cast<float4*>(s.u + o + i) = make_float4(vu[i], vu[i + 1], vu[i + 2], vu[i + 3]);
    }
  };

  float A2[kS], h[kS];
#pragma unroll
  for (int s = 0; s < kS; ++s) {
    A2[s] = p.A[d * p.dstate + r * kS + s] * kLog2e;
    h[s] = 0.f;
  }
  fetch(0);
  stage(0, st[0]);
  __syncthreads();

  for (int c = 0; c < n_chunks; ++c) {
    LaneStage<kS, kWarps>& cur = st[c & 1];
    if (c + 1 < n_chunks) fetch(c + 1);
    asm volatile("" ::: "memory");  // issue the next chunk's loads here, not where they are consumed (after the compute)
    // Compute: 4 groups of 16 positions (unrolled: a group's reduce-scatter overlaps the next group's updates).
#pragma unroll
    for (int g = 0; g < kLaneT / 16; ++g) {
      float dtv[16], dtuv[16], Bv[16 * kS], Cv[16 * kS], v[16];
#pragma unroll
      for (int i = 0; i < 16; i += 4) {
        const float4 a = *reinterpret_cast<const float4*>(cur.dt + ch * kLaneT + 16 * g + i);
        const float4 b = *reinterpret_cast<const float4*>(cur.dtu + ch * kLaneT + 16 * g + i);
        dtv[i] = a.x; dtv[i + 1] = a.y; dtv[i + 2] = a.z; dtv[i + 3] = a.w;
        dtuv[i] = b.x; dtuv[i + 1] = b.y; dtuv[i + 2] = b.z; dtuv[i + 3] = b.w;
      }
#pragma unroll
      for (int i = 0; i < 16 * kS; i += 4) {
        const float4 a = *reinterpret_cast<const float4*>(cur.B + r * kStride + 16 * g * kS + i);
        const float4 b = *reinterpret_cast<const float4*>(cur.Cm + r * kStride + 16 * g * kS + i);
        Bv[i] = a.x; Bv[i + 1] = a.y; Bv[i + 2] = a.z; Bv[i + 3] = a.w;
        Cv[i] = b.x; Cv[i + 1] = b.y; Cv[i + 2] = b.z; Cv[i + 3] = b.w;
      }
#pragma unroll
      for (int i = 0; i < 16; ++i) {
#pragma unroll
        for (int s = 0; s < kS; ++s) {
          const float a = exp2_approx(dtv[i] * A2[s]);
          h[s] = fmaf(a, h[s], dtuv[i] * Bv[i * kS + s]);
          v[i] = s == 0 ? Cv[i * kS] * h[0] : fmaf(Cv[i * kS + s], h[s], v[i]);
        }
      }
      reduce_scatter<kLpc, 16>(v, lane);
      constexpr int kOwn = 16 / kLpc;
      float* yd = cur.y + ch * kLaneT + 16 * g + r * kOwn;
#pragma unroll
      for (int j = 0; j < kOwn; ++j) yd[j] = v[j];
    }
    if (p.carries) {  // the state after this chunk, when a carry slot ends here
      const int e = (c + 1) * kLaneT, stride = int(p.carry_stride);  // L <= 2^30: 32-bit division
      if (e % stride == 0 && e / stride <= p.n_carries) {
        float* dst = p.carries + ((rs.b * p.dim + d) * p.n_carries + e / stride - 1) * p.dstate + r * kS;
#pragma unroll
        for (int s = 0; s < kS; ++s) dst[s] = h[s];
      }
    }
    __syncthreads();  // y of the chunk complete
    // Outputs of chunk c (this thread's unit): y + D u, gate, store.
    {
      float out[kI];
      const int o = ucq * kLaneT + kI * uj;
#pragma unroll
      for (int i = 0; i < kI; ++i) out[i] = fmaf(uD, cur.u[o + i], cur.y[o + i]);
      store_chunk_out<T, kI>(p, rs, rs.dl0 + ucq, L, c * kLaneT + kI * uj, kRev, out);
    }
    if (c + 1 < n_chunks) stage(c + 1, st[(c + 1) & 1]);
    __syncthreads();  // the next chunk staged
  }
}

// kS = 2 is held to 128 registers (8 blocks of 2 warps per SM): f32 stage 2 0.628 -> 0.429 ms; the same cap made the
// kS = 1, 4-warp kernel slower (0.461 -> 0.553), so that one keeps its 150.
template <typename T, int kS, int kWarps>
__global__ void __launch_bounds__(32 * kWarps, kS == 2 ? 16 / kWarps : 1) selective_scan_fwd_lane_kernel(
    const SelectiveScanParams p) {
  __shared__ __align__(16) LaneStage<kS, kWarps> st[2];  // one copy for both directions' bodies
  const RowSet rs = row_set(p, blockIdx.y, int64_t(blockIdx.x) * LaneCfg<kS, kWarps>::kCh);
  if (rs.rev)
    fwd_lane_body<T, kS, kWarps, true>(p, rs, st);
  else
    fwd_lane_body<T, kS, kWarps, false>(p, rs, st);
}

template <typename T, int kS, int kWarps>
void launch(const SelectiveScanParams& p, const Context& ctx) {
  dim3 grid(unsigned(p.dim / LaneCfg<kS, kWarps>::kCh), unsigned(p.batch));
  selective_scan_fwd_lane_kernel<T, kS, kWarps><<<grid, 32 * kWarps, 0, stream_of(ctx)>>>(p);
  STEREORT_LAUNCH_CHECK("selective_scan_fwd_lane_kernel");
}

int lane_channels(int v) { return kLaneShapes[v].warps * 32 / (kLaneN / kLaneShapes[v].states_per_lane); }
template <typename T, int v>
void launch_shape(const SelectiveScanParams& p, const Context& ctx) {
  launch<T, kLaneShapes[v].states_per_lane, kLaneShapes[v].warps>(p, ctx);
}

}  // namespace

bool fwd_lane_fits(int v, const SelectiveScanParams& p) {
  return v >= 0 && v < 3 && p.dstate == kLaneN && (p.dim / p.groups) % lane_channels(v) == 0 &&
         (!p.carries || p.carry_stride % kLaneT == 0);
}

template <typename T>
void launch_fwd_lane(int v, const SelectiveScanParams& p, const Context& ctx) {
  if (!fwd_lane_fits(v, p))
    throw_error(__FILE__, __LINE__, "selective_scan_fwd",
                "selective_scan: the state-lane forward (tune 8-10) needs N = 16 (got " + std::to_string(p.dstate) +
                    ") and channels per group (" + std::to_string(p.dim / p.groups) + ") divisible by " +
                    std::to_string(v >= 0 && v < 3 ? lane_channels(v) : 0) +
                    ", carries every multiple of 64 positions; use tune 0 (automatic)");
  if (v == 0) return launch_shape<T, 0>(p, ctx);
  if (v == 1) return launch_shape<T, 1>(p, ctx);
  return launch_shape<T, 2>(p, ctx);
}

#define STEREORT_SCAN_FWD_LANE(T) template void launch_fwd_lane<T>(int, const SelectiveScanParams&, const Context&);
STEREORT_SCAN_FWD_LANE(float)
STEREORT_SCAN_FWD_LANE(__half)
STEREORT_SCAN_FWD_LANE(__nv_bfloat16)
#undef STEREORT_SCAN_FWD_LANE

}  // namespace scan
}  // namespace cuda
}  // namespace stereort
