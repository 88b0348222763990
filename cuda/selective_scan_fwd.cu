// cuda/selective_scan_fwd.cu — the chunked selective-scan forward kernels and their launcher.
//   out[b,d,l] = (sum_n C h + D u) * silu(z), h_l = exp(dt A) h_{l-1} + dt B u  (ops/selective_scan.h).
//   Three designs: the warp-chain kernel (a warp per channel, B/C shared through an mbarrier ring; the default for
//   L > 1024, described at its definition below), the state-lane kernel (selective_scan_fwd_lane.cu: a lane per channel
//   and state; the default for L > 1024 with N = 16 and >= 4 warps per scheduler) and the block-scan kernel
//   (short sequences, and the tune variants):
//   Block = kRows channels of one group x the whole sequence in chunks of kThreads*kItems (design:
//   cuda/selective_scan_common.cuh). Per (chunk, state): stage B/C rows (cp.async, double buffered), pass 1 folds each
//   thread's items into an (a, b) aggregate, a warp scan + a fold over the preceding warps' aggregates seeds pass 2,
//   which replays the items and accumulates C*h. One __syncthreads per (chunk, state).
//   Writes the state after every carry_stride positions (the backward's chunk starts) and, when z is present and
//   p.y is set, the pre-gate y in f32 for the backward's dz.
#include <string>

#include "cuda/selective_scan_common.cuh"

namespace stereort {
namespace cuda {
namespace {
using namespace scan;

template <typename T, int kThreads, int kItems, int kRows, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) selective_scan_fwd_kernel(const SelectiveScanParams p) {
  using Cfg = Config<kThreads, kItems, kRows>;
  using S = Staging<T, kItems>;
  constexpr int kChunk = Cfg::kChunk, kWarps = Cfg::kWarps, kBuf = kThreads * S::kStride;
  extern __shared__ __align__(16) unsigned char smem[];
  T* sB = reinterpret_cast<T*>(smem);                                 // [2][kBuf]      B staging
  T* sC = sB + 2 * kBuf;                                              // [2][kBuf]      C staging
  float2* sAgg = reinterpret_cast<float2*>(sC + 2 * kBuf);            // [2][kRows][kWarps]  warp aggregates
  float* sA2 = reinterpret_cast<float*>(sAgg + 2 * kRows * kWarps);   // [kRows][N]     A * log2 e
  float* sCarry = sA2 + kRows * p.dstate;                             // [2][kRows][N]  state entering the chunk

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int L = int(p.seqlen), N = int(p.dstate);
  const RowSet rs = row_set(p, blockIdx.y, int64_t(blockIdx.x) * kRows);
  // Row pointers are recomputed from the (constant-bank) params where used: registers go to the items.
  auto u_row = [&](int r) { return operand_row<T>(p.u, rs, rs.dl0 + r, 0); };
  auto dt_row = [&](int r) { return operand_row<T>(p.delta, rs, rs.dl0 + r, 0); };
  bool u_vec = true, dt_vec = true;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    u_vec = u_vec && vec_ok<T, kItems>(u_row(r), L);
    dt_vec = dt_vec && vec_ok<T, kItems>(dt_row(r), L);
  }
  const T* B_row0 = operand_row<T>(p.B, rs, 0, rs.gl);
  const T* C_row0 = operand_row<T>(p.C, rs, 0, rs.gl);
  const int64_t B_n = p.B.row[rs.k], C_n = p.C.row[rs.k];
  const bool B_vec = vec_ok<T, kItems>(B_row0, L) && (B_n * int64_t(sizeof(T))) % 16 == 0;
  const bool C_vec = vec_ok<T, kItems>(C_row0, L) && (C_n * int64_t(sizeof(T))) % 16 == 0;

  for (int i = tid; i < kRows * N; i += kThreads) {
    sA2[i] = p.A[rs.d0 * p.dstate + i] * kLog2e;
    sCarry[i] = 0.f;
  }

  const int n_chunks = (L + kChunk - 1) / kChunk, total = n_chunks * N;
  auto stage = [&](int it) {
    if (it < total) {
      const int c = it / N, n = it % N, mb = chunk_mem_base(c, kChunk, L, rs.rev);
      stage_row<T, kThreads, kItems>(sB + (it & 1) * kBuf, B_row0 + n * B_n, mb, L, B_vec);
      stage_row<T, kThreads, kItems>(sC + (it & 1) * kBuf, C_row0 + n * C_n, mb, L, C_vec);
    }
    cp_async_commit();  // possibly empty: keeps one group per iteration
  };
  stage(0);
  stage(1);
  cp_async_wait<1>();
  __syncthreads();

  float dt[kRows][kItems], dtu[kRows][kItems], out[kRows][kItems];
  for (int c = 0; c < n_chunks; ++c) {
    const int s0 = c * kChunk + tid * kItems;  // this thread's first sequence position
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      const float bias = p.delta_bias ? p.delta_bias[rs.d0 + r] : 0.f;
      const float Dv = p.Dskip ? p.Dskip[rs.d0 + r] : 0.f;
      float uv[kItems];
      load_items<T, kItems>(u_row(r), L, s0, rs.rev, u_vec, uv, 0.f);
      load_items<T, kItems>(dt_row(r), L, s0, rs.rev, dt_vec, dt[r], 0.f);
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const float x = dt[r][i] + bias;
        const float d = s0 + i < L ? (p.softplus ? softplus_f(x) : x) : 0.f;  // padding: (a, b) = (1, 0)
        dt[r][i] = d;
        dtu[r][i] = d * uv[i];
        out[r][i] = Dv * uv[i];
      }
    }
    // Does this thread's last item end a carry_stride segment? Then it saves the states there (backward restarts).
    float* carry_out = chunk_carry_out(p, rs.b, rs.d0, s0, kItems);
    for (int n = 0; n < N; ++n) {
      const int it = c * N + n;
      const int buf = int(it & 1);
      float Bv[kItems], Cv[kItems];
      read_staged<T, kThreads, kItems>(sB + buf * kBuf, tid, rs.rev, Bv);
      read_staged<T, kThreads, kItems>(sC + buf * kBuf, tid, rs.rev, Cv);
      // Pass 1: decays, this thread's aggregate, warp scan; lane 31 publishes the warp's aggregate.
      // Pass 1 keeps a and b = dt*u*B per item (B itself is dead after it).
      float a[kRows][kItems], bb[kRows][kItems], ex_a[kRows], ex_b[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float A2 = sA2[r * N + n];
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
          a[r][i] = exp2_approx(dt[r][i] * A2);
          bb[r][i] = dtu[r][i] * Bv[i];
        }
        float ra = a[r][0], rb = bb[r][0];
#pragma unroll
        for (int i = 1; i < kItems; ++i) {
          rb = fmaf(a[r][i], rb, bb[r][i]);
          ra *= a[r][i];
        }
        warp_scan_fwd(ra, rb, lane);
        if (lane == 31) sAgg[(buf * kRows + r) * kWarps + warp] = make_float2(ra, rb);
        const float pa = __shfl_up_sync(kFull, ra, 1), pb = __shfl_up_sync(kFull, rb, 1);
        ex_a[r] = lane == 0 ? 1.f : pa;
        ex_b[r] = lane == 0 ? 0.f : pb;
      }
      cp_async_wait<0>();  // this thread's copies for it+1 have landed
      __syncthreads();     // ... and everyone's; aggregates published; buffer `buf` fully read
      stage(it + 2);
      // Pass 2: the state entering this thread, then replay the items.
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float h = sCarry[((c & 1) * kRows + r) * N + n];
        for (int w = 0; w < warp; ++w) {
          const float2 g = sAgg[(buf * kRows + r) * kWarps + w];
          h = fmaf(g.x, h, g.y);
        }
        h = fmaf(ex_a[r], h, ex_b[r]);
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
          h = fmaf(a[r][i], h, bb[r][i]);
          out[r][i] = fmaf(Cv[i], h, out[r][i]);
        }
        if (tid == kThreads - 1) sCarry[(((c + 1) & 1) * kRows + r) * N + n] = h;
        if (carry_out) carry_out[r * p.n_carries * p.dstate + n] = h;
      }
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) store_chunk_out<T, kItems>(p, rs, rs.dl0 + r, L, s0, rs.rev, out[r]);
  }
}

// kMinBlocks caps the registers (65536 / (kMinBlocks * kThreads)) at what each shape needs without spilling.
template <typename T, int kThreads, int kItems, int kRows, int kMinBlocks>
void launch_fwd(const SelectiveScanParams& p, const Context& ctx) {
  using S = Staging<T, kItems>;
  constexpr int kWarps = kThreads / 32;
  const size_t smem = size_t(4 * kThreads * S::kStride) * sizeof(T) + size_t(2 * kRows * kWarps) * sizeof(float2) +
                      size_t(3 * kRows * p.dstate) * sizeof(float);
  auto kernel = selective_scan_fwd_kernel<T, kThreads, kItems, kRows, kMinBlocks>;
  if (smem > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  dim3 grid(unsigned(p.dim / kRows), unsigned(p.batch));
  kernel<<<grid, kThreads, smem, stream_of(ctx)>>>(p);
  STEREORT_LAUNCH_CHECK("selective_scan_fwd_kernel");
}

// ---- the warp-chain forward (the default for L > 1024) ---------------------------------------------------------------
// Block = kWarps warps = kWarps channels of ONE group; warp w owns channel d0 + w and walks the whole sequence in
// chunks of 32 x kItems positions by itself: per (chunk, state) its lanes fold their items (pass 1), one warp scan
// seeded with the warp's carry (shared memory, written by lane 31) gives each lane its entering state, and the replay
// accumulates C*h (pass 2). No block-wide barrier and no cross-warp aggregates: warps only meet in the B/C ring.
// B/C ring: kStages slots of (B chunk, C chunk) for one (chunk, state) in the Staging layout, filled kDepth iterations
// ahead by all threads with cp.async (each thread fixed granules); full[s] (kThreads arrivals,
// cp.async.mbarrier.arrive) says a slot landed, empty[s] (kWarps arrivals, lane 0 after __syncwarp) says every warp
// has read it. Warps drift up to kStages - kDepth iterations apart. All kWarps channels read every staged B/C value,
// so L2 traffic is 1/kWarps of a per-channel kernel.
// u and delta of the NEXT chunk are staged per warp with cp.async (one commit group per chunk) while this chunk runs,
// so the chunk start does not wait on HBM (it was 10 % of the stall samples in Nsight Compute).
// The direction is a template parameter of the body (a reversed direction reads its staged segment mirrored).
// Per update: ex2(dt*A2), dt*u*B, the fold FFMA, the replay FFMA and out += C*h; the lane aggregate's decay is one
// ex2 of the items' summed dt; the warp scan costs ~35 instructions per lane and state.
// Measured (H100, StereoMamba stage 0, 1536 channels x L 81,920): 2.15 ms f32, 4x the HBM floor. Nsight Compute: latency
// bound at 3 warps per scheduler (1536 channels fill 11.6 warps per SM; 168 registers allow 12), 52 % issue, the largest
// stall the fixed-latency FFMA chains (fold, replay) and the shuffle scan; MUFU and FP32 pipes < 25 % busy.
template <typename T, int kWarps, int kItems, int kStages, int kDepth, bool kRev>
__device__ __forceinline__ void fwd_warp_body(const SelectiveScanParams& p, const RowSet& rs) {
  constexpr int kThreads = kWarps * 32, kChunk = 32 * kItems;
  using S = Staging<T, kItems>;
  constexpr int kBuf = 32 * S::kStride, kGran = kChunk / S::kGran;  // one row's staged chunk; its 16-byte granules
  constexpr int kPer = (2 * kGran + kThreads - 1) / kThreads;       // ring granules per thread per slot
  constexpr unsigned kSlotBytes = 2 * kBuf * sizeof(T);
  static_assert(kStages >= 2 * kDepth && (kStages & (kStages - 1)) == 0, "a slot is refilled after all warps read it");
  static_assert(2 * kGran % 32 == 0, "whole u/delta granules per lane");
  extern __shared__ __align__(16) unsigned char smem[];
  T* sBC = reinterpret_cast<T*>(smem);                                     // [kStages][2][kBuf]  B, C
  T* sUD = sBC + kStages * 2 * kBuf;                                       // [kWarps][2][kBuf]   u, delta
  uint64_t* bars = reinterpret_cast<uint64_t*>(sUD + kWarps * 2 * kBuf);   // full[kStages], empty[kStages]
  float2* sAH = reinterpret_cast<float2*>(bars + 2 * kStages);             // [kWarps][N] (A*log2 e, carry)
  const unsigned sBC_u = smem_u32(sBC), full_u = smem_u32(bars), empty_u = full_u + 8 * kStages;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int L = int(p.seqlen), N = int(p.dstate);
  const int64_t d = rs.d0 + warp;  // this warp's channel
  const T* u_row = operand_row<T>(p.u, rs, rs.dl0 + warp, 0);
  const T* dt_row = operand_row<T>(p.delta, rs, rs.dl0 + warp, 0);
  const bool u_vec = vec_ok<T, kItems>(u_row, L), dt_vec = vec_ok<T, kItems>(dt_row, L);
  const bool ud_stage = S::kVec && u_vec && dt_vec;
  const T* B_row0 = operand_row<T>(p.B, rs, 0, rs.gl);
  const T* C_row0 = operand_row<T>(p.C, rs, 0, rs.gl);
  const int64_t B_n = p.B.row[rs.k], C_n = p.C.row[rs.k];
  const bool bc_vec = S::kVec && vec_ok<T, kItems>(B_row0, L) && (B_n * int64_t(sizeof(T))) % 16 == 0 &&
                      vec_ok<T, kItems>(C_row0, L) && (C_n * int64_t(sizeof(T))) % 16 == 0;

  for (int i = tid; i < kWarps * N; i += kThreads) sAH[i] = make_float2(p.A[rs.d0 * p.dstate + i] * kLog2e, 0.f);
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full_u + 8 * s, kThreads);
      mbar_init(empty_u + 8 * s, kWarps);
    }
  }
  __syncthreads();

  // Chunks: through L, or through the last carry slot when carries are saved (positions past L keep the state).
  const int64_t cover = p.carries && p.n_carries * p.carry_stride > L ? p.n_carries * p.carry_stride : int64_t(L);
  const int n_chunks = int((cover + kChunk - 1) / kChunk), total = n_chunks * N;

  // (The backward's producer repeats this fill on purpose: one shared helper measured 6-8 % slower warp-chain kernels,
  // H100 scan_bench run 7 vs run 5 of 2026-11-23, unchanged kernels within 1 %.)
  // Producer: iteration pj = (chunk pc, state pn) into slot pj % kStages. Granule q of a slot: B (q < kGran) or C,
  // element e of the chunk, at a fixed offset inside the slot.
  int pj = 0, pc = 0, pn = 0;
  auto produce = [&]() {
    if (pj >= total) return;
    const int s = pj & (kStages - 1);
    if (pj >= kStages) mbar_wait(empty_u + 8 * s, unsigned((pj / kStages - 1) & 1));
    const int mb = kRev ? L - (pc + 1) * kChunk : pc * kChunk;
    if (bc_vec) {
      const T* Bn = B_row0 + pn * B_n + mb;
      const T* Cn = C_row0 + pn * C_n + mb;
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int q = tid + k * kThreads;
        if (kPer * kThreads == 2 * kGran || q < 2 * kGran) {
          const int which = q >= kGran, e = (q - which * kGran) * S::kGran, m = mb + e;
          const bool valid = m >= 0 && m < L;
          const T* src = (which ? Cn : Bn) + e;
          cp_async16_u32(sBC_u + s * kSlotBytes + (which * kBuf + (e / kItems) * S::kStride + e % kItems) * sizeof(T),
                         valid ? src : B_row0, valid);
        }
      }
      mbar_arrive_cp_async(full_u + 8 * s);
    } else {
      T* slot = sBC + s * 2 * kBuf;
      for (int q = tid; q < 2 * kChunk; q += kThreads) {
        const int which = q >= kChunk, e = which ? q - kChunk : q, m = mb + e;
        const T* row = which ? C_row0 + pn * C_n : B_row0 + pn * B_n;
        slot[which * kBuf + (e / kItems) * S::kStride + e % kItems] = (m >= 0 && m < L) ? row[m] : from_op<T>(0.f);
      }
      mbar_arrive(full_u + 8 * s);
    }
    ++pj;
    if (++pn == N) {
      pn = 0;
      ++pc;
    }
  };
  // u/delta of chunk c into this warp's staging (one commit group; empty when c is past the end).
  T* ud = sUD + warp * 2 * kBuf;
  auto stage_ud = [&](int c) {
    if (ud_stage && c < n_chunks) {
      const int mb = kRev ? L - (c + 1) * kChunk : c * kChunk;
#pragma unroll
      for (int k = 0; k < 2 * kGran / 32; ++k) {
        const int q = lane + 32 * k, which = q >= kGran, e = (q - which * kGran) * S::kGran, m = mb + e;
        const bool valid = m >= 0 && m < L;
        cp_async16(ud + which * kBuf + (e / kItems) * S::kStride + e % kItems, valid ? (which ? dt_row : u_row) + m : u_row,
                   valid);
      }
    }
    cp_async_commit();
  };
  stage_ud(0);
  for (int j = 0; j < kDepth; ++j) produce();

  const float bias = p.delta_bias ? p.delta_bias[d] : 0.f, Dv = p.Dskip ? p.Dskip[d] : 0.f;
  float2* ah = sAH + warp * N;
  float dt[kItems], dtu[kItems], out[kItems];
  float sdt;  // sum of this lane's dt' in the chunk: its aggregate decay for state n is exp2(sdt * A2_n)

  // Pass 1 of iteration it (state n): decays and inputs, the lane's aggregate (ra, rb).
  auto pass1 = [&](int it, float A2, float (&a)[kItems], float (&bb)[kItems], float& ra, float& rb) {
    float Bv[kItems];
    read_staged<T, 32, kItems>(sBC + (it & (kStages - 1)) * 2 * kBuf, lane, kRev, Bv);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      a[i] = exp2_approx(dt[i] * A2);
      bb[i] = dtu[i] * Bv[i];
    }
    rb = bb[0];
#pragma unroll
    for (int i = 1; i < kItems; ++i) rb = fmaf(a[i], rb, bb[i]);
    ra = exp2_approx(sdt * A2);
  };
  // The state entering this lane: warp scan of the aggregates seeded with the warp's carry hc.
  auto enter = [&](float ra, float rb, float hc) {
    warp_scan_fwd(ra, rb, lane);
    const float pa = __shfl_up_sync(kFull, ra, 1), pb = __shfl_up_sync(kFull, rb, 1);
    return lane == 0 ? hc : fmaf(pa, hc, pb);
  };
  // Pass 2 of iteration it (state n): release the slot once C is read, replay, accumulate, publish the carry.
  auto pass2 = [&](int it, int n, const float (&a)[kItems], const float (&bb)[kItems], float h, float* carry_out) {
    float Cv[kItems];
    const int s = it & (kStages - 1);
    read_staged<T, 32, kItems>(sBC + s * 2 * kBuf + kBuf, lane, kRev, Cv);
    __syncwarp();
    if (lane == 0) mbar_arrive(empty_u + 8 * s);
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      h = fmaf(a[i], h, bb[i]);
      out[i] = fmaf(Cv[i], h, out[i]);
    }
    if (lane == 31) ah[n].y = h;
    if (carry_out) carry_out[n] = h;
  };
  auto wait_full = [&](int it) { mbar_wait(full_u + 8 * (it & (kStages - 1)), unsigned((it / kStages) & 1)); };

  for (int c = 0; c < n_chunks; ++c) {
    const int s0 = c * kChunk + lane * kItems;  // this lane's first sequence position
    {
      float uv[kItems], sum = 0.f;
      if (ud_stage) {
        cp_async_wait<0>();  // this chunk's u/delta (committed a chunk ago; older ring copies were swept in with it)
        __syncwarp();
        read_staged<T, 32, kItems>(ud, lane, kRev, uv);
        read_staged<T, 32, kItems>(ud + kBuf, lane, kRev, dt);
        __syncwarp();
        stage_ud(c + 1);
      } else {
        load_items<T, kItems>(u_row, L, s0, kRev, u_vec, uv, 0.f);
        load_items<T, kItems>(dt_row, L, s0, kRev, dt_vec, dt, 0.f);
      }
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const float x = dt[i] + bias;
        const float v = s0 + i < L ? (p.softplus ? softplus_f(x) : x) : 0.f;  // padding: (a, b) = (1, 0)
        dt[i] = v;
        sum += v;
        dtu[i] = v * uv[i];
        out[i] = Dv * uv[i];
      }
      asm volatile("mov.b32 %0, %1;" : "=f"(sdt) : "f"(sum));  // keep the sum in a register (not re-added per state)
    }
    float* carry_out = chunk_carry_out(p, rs.b, d, s0, kItems);
    const int it0 = c * N;
    for (int n = 0; n < N; ++n) {
      const int it = it0 + n;
      produce();
      const float2 a2h = ah[n];  // (A_n log2 e, state entering the chunk)
      wait_full(it);
      float a[kItems], bb[kItems], ra, rb;
      pass1(it, a2h.x, a, bb, ra, rb);
      const float h = enter(ra, rb, a2h.y);
      pass2(it, n, a, bb, h, carry_out);
    }
    store_chunk_out<T, kItems>(p, rs, rs.dl0 + warp, L, s0, kRev, out);
  }
  cp_async_wait<0>();  // nothing in flight at exit
}

template <typename T, int kWarps, int kItems, int kStages, int kDepth, int kMinBlocks>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) selective_scan_fwd_warp_kernel(const SelectiveScanParams p) {
  const RowSet rs = row_set(p, blockIdx.y, int64_t(blockIdx.x) * kWarps);
  if (rs.rev)
    fwd_warp_body<T, kWarps, kItems, kStages, kDepth, true>(p, rs);
  else
    fwd_warp_body<T, kWarps, kItems, kStages, kDepth, false>(p, rs);
}

// Shared memory of the warp-chain kernel: B/C ring, u/delta staging, barriers, (A, carry) per channel and state.
template <typename T, int kWarps, int kItems, int kStages>
size_t fwd_warp_smem(int64_t dstate) {
  using S = Staging<T, kItems>;
  return size_t(kStages + kWarps) * 2 * 32 * S::kStride * sizeof(T) + 2 * kStages * sizeof(uint64_t) +
         size_t(kWarps) * size_t(dstate) * sizeof(float2);
}
constexpr size_t kMaxBlockSmem = 227 * 1024;  // sm_90 opt-in limit per block

template <typename T, int kWarps, int kItems, int kStages, int kDepth, int kMinBlocks>
void launch_fwd_warp(const SelectiveScanParams& p, const Context& ctx) {
  const size_t smem = fwd_warp_smem<T, kWarps, kItems, kStages>(p.dstate);
  if (smem > kMaxBlockSmem)
    throw_error(__FILE__, __LINE__, "selective_scan_fwd",
                "selective_scan: the warp-chain variant needs " + std::to_string(smem) + " bytes of shared memory for N = " +
                    std::to_string(p.dstate) + " (limit 232448); use tune 1-4");
  auto kernel = selective_scan_fwd_warp_kernel<T, kWarps, kItems, kStages, kDepth, kMinBlocks>;
  if (smem > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  dim3 grid(unsigned(p.dim / kWarps), unsigned(p.batch));
  kernel<<<grid, kWarps * 32, smem, stream_of(ctx)>>>(p);
  STEREORT_LAUNCH_CHECK("selective_scan_fwd_warp_kernel");
}

// Long sequences (L > 1024): the warp-chain kernel when a group's channel count allows its block (the default), or
// the block-scan shapes, selectable with p.tune for the benchmark:
//   1: 128 threads x 16 items, 1 channel (164 registers, 3 blocks/SM)
//   2: 128 x 8, 2 channels sharing every B/C load (3 blocks/SM)
//   3: 64 x 16, 2 channels (4 blocks/SM)        4: 128 x 16, 2 channels (2 blocks/SM)
//   5: warp chain, 12 warps (1 block/SM)   6: 6 warps (2 blocks/SM)   7: 4 warps (3 blocks/SM); 16 items per lane
//   8-10: the state-lane kernel (N = 16): 1 state per lane and 4 warps / 1 state, 2 warps / 2 states, 2 warps
// All chunk lengths divide the backward chunk, where the carries are saved.
template <typename T>
void dispatch_fwd(const SelectiveScanParams& p, const Context& ctx) {
  const LaunchShape sh = fwd_shape(p.seqlen);
  const int64_t per_group = p.dim / p.groups;
  const bool pairs = per_group % 2 == 0;
  if (sh.threads == 128) {
    // The warp-chain block keeps (A, carry) of all N states per channel: for very large N it no longer fits.
    // The state-lane kernel (N = 16, 2 states per lane: tune 10) wins once one state per lane would give >= 4 warps
    // per scheduler; below that it is latency bound (H100, StereoMamba stage 2, 6144 channels: f32 0.429 ms vs 0.551
    // for the warp chain, bf16 0.413 vs 0.586; stage 0, 1536 channels: f32 3.8 vs 2.18).
    const bool warp_fits = fwd_warp_smem<T, 12, 16, 8>(p.dstate) <= kMaxBlockSmem;
    const bool lane_wins = fwd_lane_fits(2, p) && p.batch * p.dim * p.dstate / 32 >= 16 * int64_t(sm_count());
    const int v = p.tune                            ? p.tune
                  : lane_wins                        ? 10
                  : warp_fits && per_group % 12 == 0 ? 5
                  : warp_fits && per_group % 6 == 0  ? 6
                  : warp_fits && per_group % 4 == 0  ? 7
                  : pairs                            ? 2
                                                     : 1;
    if (v >= 8 && v <= 10) return launch_fwd_lane<T>(v - 8, p, ctx);  // cuda/selective_scan_fwd_lane.cu
    const int need = v == 5 ? 12 : v == 6 ? 6 : v == 7 ? 4 : (v >= 2 && v <= 4) ? 2 : 1;
    if (per_group % need != 0)
      throw_error(__FILE__, __LINE__, "selective_scan_fwd",
                  "selective_scan: tune variant " + std::to_string(v) + " needs channels per group (D/G = " +
                      std::to_string(per_group) + ") divisible by " + std::to_string(need));
    switch (v) {
      case 1: return launch_fwd<T, 128, 16, 1, 3>(p, ctx);
      case 2: return launch_fwd<T, 128, 8, 2, 3>(p, ctx);
      case 3: return launch_fwd<T, 64, 16, 2, 4>(p, ctx);
      case 4: return launch_fwd<T, 128, 16, 2, 2>(p, ctx);
      case 5: return launch_fwd_warp<T, 12, 16, 8, 4, 1>(p, ctx);
      case 6: return launch_fwd_warp<T, 6, 16, 8, 4, 2>(p, ctx);
      case 7: return launch_fwd_warp<T, 4, 16, 8, 4, 3>(p, ctx);
      default: throw_error(__FILE__, __LINE__, "selective_scan_fwd", "selective_scan: tune must be 0-10");
    }
  }
  if (sh.threads == 64) return launch_fwd<T, 64, 16, 1, 6>(p, ctx);
  if (sh.items == 16) return launch_fwd<T, 32, 16, 1, 12>(p, ctx);
  if (sh.items == 8) return launch_fwd<T, 32, 8, 1, 16>(p, ctx);
  return launch_fwd<T, 32, 4, 1, 16>(p, ctx);
}

}  // namespace

int64_t selective_scan_carry_stride(int64_t seqlen) {
  if (seqlen > 1024) return 32 * 8;  // the warp-chain backward's chunk (the block-scan backward steps over carries)
  const scan::LaunchShape b = scan::bwd_shape(seqlen);
  return int64_t(b.threads) * b.items;
}

void selective_scan_fwd(const SelectiveScanParams& p, const Context& ctx) {
  if (p.batch == 0 || p.dim == 0 || p.seqlen == 0) return;
  if (p.dim % p.groups != 0 || p.groups % p.dirs != 0 || p.dim % p.dirs != 0)
    throw_error(__FILE__, __LINE__, "selective_scan_fwd", "selective_scan: groups must divide channels, dirs groups");
  if (p.batch > 65535 || p.seqlen > (int64_t(1) << 30) || p.dstate > 4096)
    throw_error(__FILE__, __LINE__, "selective_scan_fwd",
                "selective_scan (CUDA): needs batch <= 65535, L <= 2^30 and N <= 4096 (split the batch or the sequence)");
  if (p.carries && p.carry_stride != selective_scan_carry_stride(p.seqlen))
    throw_error(__FILE__, __LINE__, "selective_scan_fwd", "selective_scan: carry_stride must be the backward chunk");
  dispatch_cuda_float(p.in_dtype, "selective_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_fwd<T>(p, ctx);
  });
}

}  // namespace cuda
}  // namespace stereort
