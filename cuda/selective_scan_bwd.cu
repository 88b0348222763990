// cuda/selective_scan_bwd.cu — the chunked selective-scan backward kernel and its launcher (kernels.md §1.3).
//   Recompute, don't store: the block walks the chunks in REVERSE. Per (chunk, state n):
//     forward:  rerun the chunk's scan seeded with the state the forward saved at the chunk start (p.carries),
//               keeping h_{l-1} per item;
//     adjoint:  g_l = C_l dy_l + a_{l+1} g_{l+1}, a right-to-left scan of the pairs (a_{l+1}, C_l dy_l) seeded with
//               a_{first of next chunk} * g_{first of next chunk} carried in shared memory;
//     gradients (dy = dout * silu(z); a_l h_{l-1} taken from the replay):
//       du  += g B dt                      ddt' += g (B u + A a_l h_{l-1})      dA_n += g dt a_l h_{l-1}
//       dB  += g dt u   summed over the block's channels before any global atomic: over a thread's kRows channels
//       dC  += dy h     in registers, over the block's kGroups row groups in shared memory; then ONE (float4)
//                       atomic per element per block (kRows*kGroups channels per atomic).
//   Row groups: the block is kGroups groups of kThreads threads; each group scans its own kRows channels over the same
//   positions, so the B/C staging is shared and dB/dC meet in shared memory. The group issuing the atomics alternates
//   with n.
//   Per (b, d): dD = sum dy u and dbias = sum ddelta are reduced over the block and written once; dA per block via
//   shared atomics (one per warp and state) and written once: the op sums the (B, D, ...) partials over b.
//   Padded positions (ragged last chunk): dt = u = dy = 0, so (a, b) = (1, 0) and nothing flows from them.
//   Syncs per (chunk, state): two (after the forward pass 1: stage + forward aggregates; after the reverse pass 1),
//   plus one for the row-group reduction when kGroups > 1.
#include <string>

#include "cuda/selective_scan_common.cuh"

namespace stereort {
namespace cuda {
namespace {
using namespace scan;

// dst[m(s0+i)] += v[i] for positions < L; 16-byte vector atomics (sm_90) when the row allows it.
template <int kItems>
__device__ __forceinline__ void atomic_add_items(float* row, int L, int s0, bool rev, bool vec,
                                                 const float (&v)[kItems]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  if constexpr (kItems % 4 == 0) {
    if (vec && s0 + kItems <= L) {
      float* dst = rev ? row + (L - s0 - kItems) : row + s0;
#pragma unroll
      for (int j = 0; j < kItems / 4; ++j) {
        float4 q;
        if (rev) {
          q = make_float4(v[kItems - 1 - 4 * j], v[kItems - 2 - 4 * j], v[kItems - 3 - 4 * j], v[kItems - 4 - 4 * j]);
        } else {
          q = make_float4(v[4 * j], v[4 * j + 1], v[4 * j + 2], v[4 * j + 3]);
        }
        atomicAdd(reinterpret_cast<float4*>(dst) + j, q);
      }
      return;
    }
  }
#endif
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int s = s0 + i;
    if (s < L) atomicAdd(row + (rev ? L - 1 - s : s), v[i]);
  }
}

// The gate's backward for channel row dl over one chunk segment: dz = dout y sigma(z) (1 + z (1 - sigma(z))) is written,
// dy = dout silu(z) replaces dout (shared by the block-scan and the warp-chain backward). z_vec: z, y and dz rows allow
// 16-byte accesses.
template <typename T, int kItems>
__device__ __forceinline__ void gate_backward(const SelectiveScanParams& p, const RowSet& rs, int64_t dl, int L, int s0,
                                              bool rev, bool z_vec, float (&dy)[kItems]) {
  float zv[kItems], yv[kItems], dz[kItems];
  load_items<T, kItems>(operand_row<T>(p.z, rs, dl, 0), L, s0, rev, z_vec, zv, 0.f);
  load_items<float, kItems>(operand_row<float>(p.y, rs, dl, 0), L, s0, rev, z_vec, yv, 0.f);
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const float sg = sigmoid_f(zv[i]);
    dz[i] = dy[i] * yv[i] * sg * (1.f + zv[i] * (1.f - sg));
    dy[i] *= zv[i] * sg;
  }
  store_items<T, kItems>(operand_row<T>(p.dz, rs, dl, 0), L, s0, rev, z_vec, dz);
}

template <typename T, int kThreads, int kItems, int kRows, int kGroups, int kMinBlocks>
__global__ void __launch_bounds__(kThreads * kGroups, kMinBlocks) selective_scan_bwd_kernel(const SelectiveScanParams p) {
  using Cfg = Config<kThreads, kItems, kRows>;
  using S = Staging<T, kItems>;
  constexpr int kChunk = Cfg::kChunk, kWarps = Cfg::kWarps, kBuf = kThreads * S::kStride;
  constexpr int kGR = kGroups * kRows;                               // channels of the block
  extern __shared__ __align__(16) unsigned char smem[];
  T* sB = reinterpret_cast<T*>(smem);                                // [2][kBuf]              B staging
  T* sC = sB + 2 * kBuf;                                             // [2][kBuf]              C staging
  float* sPart = reinterpret_cast<float*>(sC + 2 * kBuf);            // [2][kChunk] (kGroups>1) dB/dC of the other group
  float2* sAggF = reinterpret_cast<float2*>(sPart + (kGroups > 1 ? 2 * kChunk : 0));  // [kGR][kWarps] fwd aggregates
  float2* sAggR = sAggF + kGR * kWarps;                              // [kGR][kWarps]          reverse aggregates
  float* sFirstA = reinterpret_cast<float*>(sAggR + kGR * kWarps);   // [kGR][kWarps]          decay of warps' first item
  float* sRed = sFirstA + kGR * kWarps;                              // [kGroups*kWarps]       reductions
  float* sA = sRed + kGroups * kWarps;                               // [kGR][N]               A
  float* sAdj = sA + kGR * p.dstate;                                 // [2][kGR][N]            adjoint from the right
  float* sDA = sAdj + 2 * kGR * p.dstate;                            // [kGR][N]               dA of the block

  const int grp = threadIdx.x / kThreads, tid = threadIdx.x % kThreads, lane = tid & 31, warp = tid >> 5;
  const int L = int(p.seqlen), N = int(p.dstate);
  const int64_t block_d0 = int64_t(blockIdx.x) * kGR;
  const RowSet rs = row_set(p, blockIdx.y, block_d0 + grp * kRows);  // this group's first channel
  const bool dout_f32 = p.out_dtype == DType::F32, has_z = p.z.ptr[rs.k] != nullptr;
  const int gr0 = grp * kRows;                                       // this group's first row in the block arrays

  // Row pointers are recomputed from the (constant-bank) params where used: registers go to the items.
  auto row_of = [&](const ScanOperand& o, int r) { return operand_row<T>(o, rs, rs.dl0 + r, 0); };
  auto dout_row = [&](int r) { return static_cast<const char*>(p.dout.ptr[rs.k]) + (rs.b * p.dout.batch[rs.k] +
                                      (rs.dl0 + r) * p.dout.row[rs.k]) * (dout_f32 ? 4 : int64_t(sizeof(T))); };
  bool u_vec = true, dt_vec = true, dout_vec = true, du_vec = true, ddt_vec = true, z_vec = true;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    u_vec = u_vec && vec_ok<T, kItems>(row_of(p.u, r), L);
    dt_vec = dt_vec && vec_ok<T, kItems>(row_of(p.delta, r), L);
    du_vec = du_vec && vec_ok<T, kItems>(row_of(p.du, r), L);
    ddt_vec = ddt_vec && vec_ok<T, kItems>(row_of(p.ddelta, r), L);
    dout_vec = dout_vec && (dout_f32 ? vec_ok<float, kItems>(dout_row(r), L) : vec_ok<T, kItems>(dout_row(r), L));
    if (has_z)
      z_vec = z_vec && vec_ok<T, kItems>(row_of(p.z, r), L) && vec_ok<T, kItems>(row_of(p.dz, r), L) &&
              vec_ok<float, kItems>(operand_row<float>(p.y, rs, rs.dl0 + r, 0), L);
  }
  const T* B_row0 = operand_row<T>(p.B, rs, 0, rs.gl);
  const T* C_row0 = operand_row<T>(p.C, rs, 0, rs.gl);
  float* dB_row0 = operand_row<float>(p.dB, rs, 0, rs.gl);
  float* dC_row0 = operand_row<float>(p.dC, rs, 0, rs.gl);
  const int64_t B_n = p.B.row[rs.k], C_n = p.C.row[rs.k], dB_n = p.dB.row[rs.k], dC_n = p.dC.row[rs.k];
  const bool B_vec = vec_ok<T, kItems>(B_row0, L) && (B_n * int64_t(sizeof(T))) % 16 == 0;
  const bool C_vec = vec_ok<T, kItems>(C_row0, L) && (C_n * int64_t(sizeof(T))) % 16 == 0;
  const bool dB_vec = vec_ok<float, kItems>(dB_row0, L) && (dB_n * 4) % 16 == 0;
  const bool dC_vec = vec_ok<float, kItems>(dC_row0, L) && (dC_n * 4) % 16 == 0;

  for (int i = threadIdx.x; i < kGR * N; i += kThreads * kGroups) {
    sA[i] = p.A[block_d0 * p.dstate + i];
    sAdj[i] = 0.f;
    sAdj[kGR * N + i] = 0.f;
    sDA[i] = 0.f;
  }

  const int n_chunks = (L + kChunk - 1) / kChunk, total = n_chunks * N;
  auto stage = [&](int it) {
    if (it < total) {
      const int c = n_chunks - 1 - it / N, n = it % N, mb = chunk_mem_base(c, kChunk, L, rs.rev);
      stage_row<T, kThreads, kItems, kThreads * kGroups>(sB + (it & 1) * kBuf, B_row0 + n * B_n, mb, L, B_vec);
      stage_row<T, kThreads, kItems, kThreads * kGroups>(sC + (it & 1) * kBuf, C_row0 + n * C_n, mb, L, C_vec);
    }
    cp_async_commit();
  };
  stage(0);
  stage(1);
  cp_async_wait<1>();
  __syncthreads();

  float dD_acc[kRows], dbias_acc[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) dD_acc[r] = dbias_acc[r] = 0.f;
  float dtp[kRows][kItems], uv[kRows][kItems], dy[kRows][kItems], du[kRows][kItems], ddt[kRows][kItems];
  for (int cc = 0; cc < n_chunks; ++cc) {
    const int c = n_chunks - 1 - cc;
    const int s0 = c * kChunk + tid * kItems;
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      load_items<T, kItems>(row_of(p.u, r), L, s0, rs.rev, u_vec, uv[r], 0.f);
      load_items<T, kItems>(row_of(p.delta, r), L, s0, rs.rev, dt_vec, dtp[r], 0.f);
      if (dout_f32)
        load_items<float, kItems>(reinterpret_cast<const float*>(dout_row(r)), L, s0, rs.rev, dout_vec, dy[r], 0.f);
      else
        load_items<T, kItems>(reinterpret_cast<const T*>(dout_row(r)), L, s0, rs.rev, dout_vec, dy[r], 0.f);
      if (has_z) gate_backward<T, kItems>(p, rs, rs.dl0 + r, L, s0, rs.rev, z_vec, dy[r]);
      const float bias = p.delta_bias ? p.delta_bias[rs.d0 + r] : 0.f;
      const float Dv = p.Dskip ? p.Dskip[rs.d0 + r] : 0.f;
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const float x = dtp[r][i] + bias;
        dtp[r][i] = s0 + i < L ? (p.softplus ? softplus_f(x) : x) : 0.f;
        du[r][i] = Dv * dy[r][i];
        ddt[r][i] = 0.f;
        dD_acc[r] = fmaf(dy[r][i], uv[r][i], dD_acc[r]);
      }
    }
    // The state entering chunk c: carry slot (c * kChunk / stride - 1); the stride may be shorter than this chunk.
    const float* carry_row =
        c > 0 ? p.carries + ((rs.b * p.dim + rs.d0) * p.n_carries + (int64_t(c) * kChunk / p.carry_stride - 1)) * p.dstate
              : nullptr;
    for (int n = 0; n < N; ++n) {
      const int it = cc * N + n;
      const int buf = int(it & 1);
      float Bv[kItems], Cv[kItems];
      read_staged<T, kThreads, kItems>(sB + buf * kBuf, tid, rs.rev, Bv);
      read_staged<T, kThreads, kItems>(sC + buf * kBuf, tid, rs.rev, Cv);
      // Forward pass 1.
      float a[kRows][kItems], hp[kRows][kItems], f_a[kRows], f_b[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const float A2 = sA[(gr0 + r) * N + n] * kLog2e;
#pragma unroll
        for (int i = 0; i < kItems; ++i) a[r][i] = exp2_approx(dtp[r][i] * A2);
        float ra = a[r][0], rb = dtp[r][0] * uv[r][0] * Bv[0];
#pragma unroll
        for (int i = 1; i < kItems; ++i) {
          rb = fmaf(a[r][i], rb, dtp[r][i] * uv[r][i] * Bv[i]);
          ra *= a[r][i];
        }
        warp_scan_fwd(ra, rb, lane);
        if (lane == 31) sAggF[(gr0 + r) * kWarps + warp] = make_float2(ra, rb);
        if (lane == 0) sFirstA[(gr0 + r) * kWarps + warp] = a[r][0];
        const float pa = __shfl_up_sync(kFull, ra, 1), pb = __shfl_up_sync(kFull, rb, 1);
        f_a[r] = lane == 0 ? 1.f : pa;
        f_b[r] = lane == 0 ? 0.f : pb;
      }
      cp_async_wait<0>();
      __syncthreads();  // S1: forward aggregates + first decays published, stage it+1 visible, buffer `buf` read
      stage(it + 2);
      // Forward pass 2 (keep h_{l-1}), then the reverse pass 1.
      float a_last[kRows], r_a[kRows], r_b[kRows];
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float h = carry_row ? carry_row[r * p.n_carries * p.dstate + n] : 0.f;
        for (int w = 0; w < warp; ++w) {
          const float2 g = sAggF[(gr0 + r) * kWarps + w];
          h = fmaf(g.x, h, g.y);
        }
        h = fmaf(f_a[r], h, f_b[r]);
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
          hp[r][i] = h;
          h = fmaf(a[r][i], h, dtp[r][i] * uv[r][i] * Bv[i]);
        }
        // The decay of the item right of this thread's last one (1 at the chunk's end: the carry covers it).
        const float nxt = __shfl_down_sync(kFull, a[r][0], 1);
        a_last[r] = lane < 31 ? nxt : (warp < kWarps - 1 ? sFirstA[(gr0 + r) * kWarps + warp + 1] : 1.f);
        float ra = a_last[r], rb = Cv[kItems - 1] * dy[r][kItems - 1];
#pragma unroll
        for (int i = kItems - 2; i >= 0; --i) {
          rb = fmaf(a[r][i + 1], rb, Cv[i] * dy[r][i]);
          ra *= a[r][i + 1];
        }
        warp_scan_rev(ra, rb, lane);
        if (lane == 0) sAggR[(gr0 + r) * kWarps + warp] = make_float2(ra, rb);
        const float pa = __shfl_down_sync(kFull, ra, 1), pb = __shfl_down_sync(kFull, rb, 1);
        r_a[r] = lane == 31 ? 1.f : pa;
        r_b[r] = lane == 31 ? 0.f : pb;
      }
      __syncthreads();  // S2: reverse aggregates published
      // Reverse pass 2: the adjoint per item and the gradient contributions.
      float dBv[kItems], dCv[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) dBv[i] = dCv[i] = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        float g = sAdj[((c & 1) * kGR + gr0 + r) * N + n];
        for (int w = kWarps - 1; w > warp; --w) {
          const float2 q = sAggR[(gr0 + r) * kWarps + w];
          g = fmaf(q.x, g, q.y);
        }
        g = fmaf(r_a[r], g, r_b[r]);
        const float An = sA[(gr0 + r) * N + n];
        float dA_t = 0.f;
#pragma unroll
        for (int i = kItems - 1; i >= 0; --i) {
          g = fmaf(i == kItems - 1 ? a_last[r] : a[r][i + 1], g, Cv[i] * dy[r][i]);
          const float ah = a[r][i] * hp[r][i];       // a_l h_{l-1}
          const float dtu = dtp[r][i] * uv[r][i];
          const float gdt = g * dtp[r][i];
          du[r][i] = fmaf(gdt, Bv[i], du[r][i]);
          ddt[r][i] = fmaf(g, fmaf(Bv[i], uv[r][i], An * ah), ddt[r][i]);
          dA_t = fmaf(gdt, ah, dA_t);
          dBv[i] = fmaf(g, dtu, dBv[i]);
          dCv[i] = fmaf(dy[r][i], fmaf(dtu, Bv[i], ah), dCv[i]);
        }
        if (tid == 0) sAdj[(((c + 1) & 1) * kGR + gr0 + r) * N + n] = a[r][0] * g;  // for chunk c-1
        dA_t = warp_sum(dA_t);
        if (lane == 0) atomicAdd(&sDA[(gr0 + r) * N + n], dA_t);
      }
      // dB/dC: one group (alternating with n) adds the other's partials and issues the block's atomics.
      bool leader = true;
      if constexpr (kGroups > 1) {
        static_assert(kGroups == 2, "row groups: 1 or 2");
        leader = grp == (n & 1);
        float* part = sPart + tid * kItems;
        if (!leader) {
#pragma unroll
          for (int i = 0; i < kItems; ++i) {
            part[i] = dBv[i];
            part[kChunk + i] = dCv[i];
          }
        }
        __syncthreads();  // S3: partials published (read before the next S1; rewritten after the next S2)
        if (leader) {
#pragma unroll
          for (int i = 0; i < kItems; ++i) {
            dBv[i] += part[i];
            dCv[i] += part[kChunk + i];
          }
        }
      }
      if (leader) {
        atomic_add_items<kItems>(dB_row0 + n * dB_n, L, s0, rs.rev, dB_vec, dBv);
        atomic_add_items<kItems>(dC_row0 + n * dC_n, L, s0, rs.rev, dC_vec, dCv);
      }
    }
    // Chunk outputs: du, ddelta (through softplus: sigma(x) = 1 - exp(-softplus(x))), dbias partial.
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        if (p.softplus) ddt[r][i] *= -expm1f(-dtp[r][i]);
        if (s0 + i < L) dbias_acc[r] += ddt[r][i];
      }
      store_items<T, kItems>(row_of(p.du, r), L, s0, rs.rev, du_vec, du[r]);
      store_items<T, kItems>(row_of(p.ddelta, r), L, s0, rs.rev, ddt_vec, ddt[r]);
    }
  }
  // Per-(b, d) partials, written once: sums over each group's threads.
  auto group_sum = [&](float v) {
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) sRed[grp * kWarps + warp] = v;
    __syncthreads();
    float t = 0.f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) t += sRed[grp * kWarps + w];
    return t;
  };
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const float dD_sum = group_sum(dD_acc[r]);
    const float db_sum = group_sum(dbias_acc[r]);
    if (tid == 0) {
      if (p.dD_part) p.dD_part[rs.b * p.dim + rs.d0 + r] = dD_sum;
      if (p.dbias_part) p.dbias_part[rs.b * p.dim + rs.d0 + r] = db_sum;
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kGR * N; i += kThreads * kGroups)
    p.dA_part[(rs.b * p.dim + block_d0) * p.dstate + i] = sDA[i];
}

template <typename T, int kThreads, int kItems, int kRows, int kGroups, int kMinBlocks>
void launch_bwd(const SelectiveScanParams& p, const Context& ctx) {
  using S = Staging<T, kItems>;
  constexpr int kWarps = kThreads / 32, kGR = kGroups * kRows;
  const size_t smem = size_t(4 * kThreads * S::kStride) * sizeof(T) +
                      size_t(kGroups > 1 ? 2 * kThreads * kItems : 0) * sizeof(float) +
                      size_t(2 * kGR * kWarps) * sizeof(float2) + size_t(kGR * kWarps + kGroups * kWarps) * sizeof(float) +
                      size_t(4 * kGR * p.dstate) * sizeof(float);
  auto kernel = selective_scan_bwd_kernel<T, kThreads, kItems, kRows, kGroups, kMinBlocks>;
  if (smem > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  dim3 grid(unsigned(p.dim / kGR), unsigned(p.batch));
  kernel<<<grid, kThreads * kGroups, smem, stream_of(ctx)>>>(p);
  STEREORT_LAUNCH_CHECK("selective_scan_bwd_kernel");
}

// ---- the warp-chain backward (tune 4-6; the default for L > 1024) --------------------------------------------------
// The forward's warp-chain structure (selective_scan_fwd.cu) applied to kernels.md §1.3: a warp owns one channel and
// walks the chunks (32 lanes x kItems) in REVERSE; the block's kWarps channels of one group share B/C through the
// same mbarrier ring. Each warp stores its dB/dC terms for a slot in its own shared partial (plain float4 stores, no
// shared atomics: those made the first version 4x slower); the producer sums the kWarps partials and adds them to
// global memory (float4 atomics) when it recycles the slot, so dB/dC take one global atomic per element per block
// and state. Per (chunk, state):
//   forward:  a_i = exp2(dt_i A log2 e), b_i = dt_i u_i B_i; lane fold + warp scan seeded with the saved carry (the
//             state at the end of the previous chunk; the carry stride is this chunk, 256) -> ah_i = a_i h_{i-1};
//   adjoint:  g_i = C_i dy_i + a_{i+1} g_{i+1}. A lane maps X (= a g of the first item right of it) to
//             X' = P X + Q with P = prod a_i (the forward aggregate's decay, exp2 of the summed dt) and Q = a_0 q,
//             q = the right-to-left fold of C dy; a reverse warp scan seeded with the chunk's X (shared memory, written
//             by lane 0 for the chunk on the left) gives each lane its X;
//   gradients: du += g dt B, ddt' += g (B u + A ah), dA += g dt ah (warp sum), dB += g dt u, dC += dy (ah + b).
template <typename T, int kWarps, int kItems, int kStages, int kDepth, bool kRev>
__device__ __forceinline__ void bwd_warp_body(const SelectiveScanParams& p, const RowSet& rs) {
  constexpr int kThreads = kWarps * 32, kChunk = 32 * kItems;
  using S = Staging<T, kItems>;
  constexpr int kBuf = 32 * S::kStride, kGran = kChunk / S::kGran;
  constexpr int kPer = (2 * kGran + kThreads - 1) / kThreads;
  constexpr unsigned kSlotBytes = 2 * kBuf * sizeof(T);
  static_assert(kStages >= 2 * kDepth && (kStages & (kStages - 1)) == 0, "a slot is refilled after all warps used it");
  extern __shared__ __align__(16) unsigned char smem[];
  T* sBC = reinterpret_cast<T*>(smem);                                         // [kStages][2][kBuf]   B, C
  // Per slot and warp, the warp's dB/dC terms: [kStages][kWarps][2 (dB, dC)][kItems / 4][32 lanes] float4, written
  // with plain conflict-free stores and summed over the warps when the slot is recycled (no shared atomics).
  constexpr int kPart = 2 * (kItems / 4) * 32;  // float4 per slot and warp
  static_assert(kItems % 4 == 0, "the dB/dC partials are float4 granules");
  float4* sPart = reinterpret_cast<float4*>(sBC + kStages * 2 * kBuf);
  uint64_t* bars = reinterpret_cast<uint64_t*>(sPart + kStages * kWarps * kPart);  // full[kStages], empty[kStages]
  float4* sW = reinterpret_cast<float4*>(bars + 2 * kStages);                  // [kWarps][N] (A, A log2 e, X, dA)
  const unsigned sBC_u = smem_u32(sBC), full_u = smem_u32(bars), empty_u = full_u + 8 * kStages;

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int L = int(p.seqlen), N = int(p.dstate);
  const int64_t d = rs.d0 + warp;
  const bool dout_f32 = p.out_dtype == DType::F32, has_z = p.z.ptr[rs.k] != nullptr;
  auto row_of = [&](const ScanOperand& o) { return operand_row<T>(o, rs, rs.dl0 + warp, 0); };
  const char* dout_row = static_cast<const char*>(p.dout.ptr[rs.k]) +
                         (rs.b * p.dout.batch[rs.k] + (rs.dl0 + warp) * p.dout.row[rs.k]) * (dout_f32 ? 4 : int64_t(sizeof(T)));
  const T* B_row0 = operand_row<T>(p.B, rs, 0, rs.gl);
  const T* C_row0 = operand_row<T>(p.C, rs, 0, rs.gl);
  float* dB_row0 = operand_row<float>(p.dB, rs, 0, rs.gl);
  float* dC_row0 = operand_row<float>(p.dC, rs, 0, rs.gl);
  const int64_t B_n = p.B.row[rs.k], C_n = p.C.row[rs.k], dB_n = p.dB.row[rs.k], dC_n = p.dC.row[rs.k];
  const bool bc_vec = S::kVec && vec_ok<T, kItems>(B_row0, L) && (B_n * int64_t(sizeof(T))) % 16 == 0 &&
                      vec_ok<T, kItems>(C_row0, L) && (C_n * int64_t(sizeof(T))) % 16 == 0;
  const bool acc_vec = L % 4 == 0 && reinterpret_cast<uintptr_t>(dB_row0) % 16 == 0 && (dB_n * 4) % 16 == 0 &&
                       reinterpret_cast<uintptr_t>(dC_row0) % 16 == 0 && (dC_n * 4) % 16 == 0;

  for (int i = tid; i < kWarps * N; i += kThreads) {
    const float A = p.A[rs.d0 * p.dstate + i];
    sW[i] = make_float4(A, A * kLog2e, 0.f, 0.f);
  }
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbar_init(full_u + 8 * s, 2 * kThreads);  // per thread: a plain arrive (partials read) + the copies' arrive
      mbar_init(empty_u + 8 * s, kWarps);
    }
  }
  __syncthreads();

  const int n_chunks = (L + kChunk - 1) / kChunk, total = n_chunks * N;
  auto mem_base = [&](int c) { return kRev ? L - (c + 1) * kChunk : c * kChunk; };
  // Add slot s's partials (iteration = chunk c, state n), summed over the warps, into dB/dC: granule q = (which, j,
  // lane) holds chunk positions lane * kItems + 4j .. +3 (descending in memory for a reversed scan).
  auto flush = [&](int s, int c, int n) {
    const int mb = mem_base(c);
    const float4* part = sPart + s * kWarps * kPart;
    for (int q = tid; q < kPart; q += kThreads) {
      float4 v = part[q];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) {
        const float4 x = part[w * kPart + q];
        v.x += x.x;
        v.y += x.y;
        v.z += x.z;
        v.w += x.w;
      }
      const int which = q / (kPart / 2), r = q % (kPart / 2), o = (r % 32) * kItems + (r / 32) * 4;
      if (kRev) v = make_float4(v.w, v.z, v.y, v.x);
      const int m = mb + (kRev ? kChunk - 4 - o : o);
      float* dst = which ? dC_row0 + n * dC_n : dB_row0 + n * dB_n;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      if (acc_vec && m >= 0 && m + 4 <= L) {
        atomicAdd(reinterpret_cast<float4*>(dst + m), v);
        continue;
      }
#endif
      const float vv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
      for (int k = 0; k < 4; ++k)
        if (m + k >= 0 && m + k < L) atomicAdd(dst + m + k, vv[k]);
    }
  };
  // Producer: iteration pj = (reverse chunk index pcc, state pn); recycling a slot first flushes its previous sums.
  // The slot fill repeats the forward's (selective_scan_fwd.cu) on purpose: a shared helper cost 6-8 % here.
  int pj = 0, pcc = 0, pn = 0, fcc = 0, fn = 0;
  auto produce = [&]() {
    if (pj >= total) return;
    const int s = pj & (kStages - 1);
    if (pj >= kStages) {
      mbar_wait(empty_u + 8 * s, unsigned((pj / kStages - 1) & 1));
      flush(s, n_chunks - 1 - fcc, fn);
      if (++fn == N) {
        fn = 0;
        ++fcc;
      }
    }
    const int mb = mem_base(n_chunks - 1 - pcc);
    mbar_arrive(full_u + 8 * s);  // release: this thread's reads of the old partials
    if (bc_vec) {
      const T* Bn = B_row0 + pn * B_n + mb;
      const T* Cn = C_row0 + pn * C_n + mb;
#pragma unroll
      for (int k = 0; k < kPer; ++k) {
        const int q = tid + k * kThreads;
        if (kPer * kThreads == 2 * kGran || q < 2 * kGran) {
          const int which = q >= kGran, e = (q - which * kGran) * S::kGran, m = mb + e;
          const bool valid = m >= 0 && m < L;
          cp_async16_u32(sBC_u + s * kSlotBytes + (which * kBuf + (e / kItems) * S::kStride + e % kItems) * sizeof(T),
                         valid ? (which ? Cn : Bn) + e : B_row0, valid);
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
      ++pcc;
    }
  };
  for (int j = 0; j < kDepth; ++j) produce();

  const float bias = p.delta_bias ? p.delta_bias[d] : 0.f, Dv = p.Dskip ? p.Dskip[d] : 0.f;
  float4* w4 = sW + warp * N;
  float dD_acc = 0.f, dbias_acc = 0.f;
  float dt[kItems], uv[kItems], dtu[kItems], dy[kItems], du[kItems], ddt[kItems];
  for (int cc = 0; cc < n_chunks; ++cc) {
    const int c = n_chunks - 1 - cc, s0 = c * kChunk + lane * kItems;
    float sdt = 0.f;
    {
      const T* ur = row_of(p.u);
      const T* dr = row_of(p.delta);
      load_items<T, kItems>(ur, L, s0, kRev, vec_ok<T, kItems>(ur, L), uv, 0.f);
      load_items<T, kItems>(dr, L, s0, kRev, vec_ok<T, kItems>(dr, L), dt, 0.f);
      if (dout_f32) {
        const float* o = reinterpret_cast<const float*>(dout_row);
        load_items<float, kItems>(o, L, s0, kRev, vec_ok<float, kItems>(o, L), dy, 0.f);
      } else {
        const T* o = reinterpret_cast<const T*>(dout_row);
        load_items<T, kItems>(o, L, s0, kRev, vec_ok<T, kItems>(o, L), dy, 0.f);
      }
      if (has_z) {
        const int64_t dl = rs.dl0 + warp;
        const bool z_vec = vec_ok<T, kItems>(operand_row<T>(p.z, rs, dl, 0), L) &&
                           vec_ok<T, kItems>(operand_row<T>(p.dz, rs, dl, 0), L) &&
                           vec_ok<float, kItems>(operand_row<float>(p.y, rs, dl, 0), L);
        gate_backward<T, kItems>(p, rs, dl, L, s0, kRev, z_vec, dy);
      }
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        const float x = dt[i] + bias;
        dt[i] = s0 + i < L ? (p.softplus ? softplus_f(x) : x) : 0.f;
        sdt += dt[i];
        dtu[i] = dt[i] * uv[i];
        du[i] = Dv * dy[i];
        ddt[i] = 0.f;
        dD_acc = fmaf(dy[i], uv[i], dD_acc);
      }
    }
    const float* carry_row = c > 0 ? p.carries + ((rs.b * p.dim + d) * p.n_carries + (c - 1)) * p.dstate : nullptr;
    for (int n = 0; n < N; ++n) {
      const int it = cc * N + n, s = it & (kStages - 1);
      produce();
      const float4 w = w4[n];  // (A_n, A_n log2 e, X entering from the right, dA so far)
      const float h0 = carry_row ? carry_row[n] : 0.f;
      mbar_wait(full_u + 8 * s, unsigned((it / kStages) & 1));
      const T* buf = sBC + s * 2 * kBuf;
      float Bv[kItems], Cv[kItems], a[kItems], bb[kItems], ah[kItems];
      read_staged<T, 32, kItems>(buf, lane, kRev, Bv);
      read_staged<T, 32, kItems>(buf + kBuf, lane, kRev, Cv);
      // Forward: decays, the lane aggregate, the warp scan from the saved state, the replay keeping a_i h_{i-1}.
#pragma unroll
      for (int i = 0; i < kItems; ++i) {
        a[i] = exp2_approx(dt[i] * w.y);
        bb[i] = dtu[i] * Bv[i];
      }
      const float P = exp2_approx(sdt * w.y);  // prod a_i over the lane's items
      float fa = P, fb = bb[0];
#pragma unroll
      for (int i = 1; i < kItems; ++i) fb = fmaf(a[i], fb, bb[i]);
      warp_scan_fwd(fa, fb, lane);
      {
        const float pa = __shfl_up_sync(kFull, fa, 1), pb = __shfl_up_sync(kFull, fb, 1);
        float h = lane == 0 ? h0 : fmaf(pa, h0, pb);
#pragma unroll
        for (int i = 0; i < kItems; ++i) {
          ah[i] = a[i] * h;
          h = ah[i] + bb[i];
        }
      }
      // Adjoint: the lane's (P, Q), the reverse warp scan from the chunk's X, the X entering this lane.
      float q = Cv[kItems - 1] * dy[kItems - 1];
#pragma unroll
      for (int i = kItems - 2; i >= 0; --i) q = fmaf(a[i + 1], q, Cv[i] * dy[i]);
      float ra = P, rb = a[0] * q;
      warp_scan_rev(ra, rb, lane);
      const float px = __shfl_down_sync(kFull, ra, 1), qx = __shfl_down_sync(kFull, rb, 1);
      const float X = lane == 31 ? w.z : fmaf(px, w.z, qx);
      // Gradients, right to left.
      float g = 0.f, dA_t = 0.f, pB[kItems], pC[kItems];
#pragma unroll
      for (int i = kItems - 1; i >= 0; --i) {
        g = i == kItems - 1 ? fmaf(1.f, X, Cv[i] * dy[i]) : fmaf(a[i + 1], g, Cv[i] * dy[i]);
        const float gdt = g * dt[i];
        du[i] = fmaf(gdt, Bv[i], du[i]);
        ddt[i] = fmaf(g, fmaf(Bv[i], uv[i], w.x * ah[i]), ddt[i]);
        dA_t = fmaf(gdt, ah[i], dA_t);
        pB[i] = g * dtu[i];
        pC[i] = dy[i] * (ah[i] + bb[i]);
      }
      {
        float4* part = sPart + (s * kWarps + warp) * kPart + lane;
#pragma unroll
        for (int j = 0; j < kItems / 4; ++j) {
          part[j * 32] = make_float4(pB[4 * j], pB[4 * j + 1], pB[4 * j + 2], pB[4 * j + 3]);
          part[(kItems / 4 + j) * 32] = make_float4(pC[4 * j], pC[4 * j + 1], pC[4 * j + 2], pC[4 * j + 3]);
        }
      }
      dA_t = warp_sum(dA_t);
      __syncwarp();  // every lane has read w and stored its partials
      if (lane == 0) {
        w4[n].z = a[0] * g;  // X for the chunk on the left
        w4[n].w = w.w + dA_t;
        mbar_arrive(empty_u + 8 * s);
      }
    }
    // Chunk outputs: du, ddelta (through softplus: sigma(x) = 1 - exp(-softplus(x))), the dbias partial.
#pragma unroll
    for (int i = 0; i < kItems; ++i) {
      if (p.softplus) ddt[i] *= -expm1f(-dt[i]);
      if (s0 + i < L) dbias_acc += ddt[i];
    }
    T* dur = operand_row<T>(p.du, rs, rs.dl0 + warp, 0);
    T* ddr = operand_row<T>(p.ddelta, rs, rs.dl0 + warp, 0);
    store_items<T, kItems>(dur, L, s0, kRev, vec_ok<T, kItems>(dur, L), du);
    store_items<T, kItems>(ddr, L, s0, kRev, vec_ok<T, kItems>(ddr, L), ddt);
  }
  __syncthreads();  // every warp's sums are in; flush the slots the producer did not recycle
  for (int jo = total > kStages ? total - kStages : 0; jo < total; ++jo)
    flush(jo & (kStages - 1), n_chunks - 1 - jo / N, jo % N);
  dD_acc = warp_sum(dD_acc);
  dbias_acc = warp_sum(dbias_acc);
  if (lane == 0) {
    if (p.dD_part) p.dD_part[rs.b * p.dim + d] = dD_acc;
    if (p.dbias_part) p.dbias_part[rs.b * p.dim + d] = dbias_acc;
  }
  for (int n = lane; n < N; n += 32) p.dA_part[(rs.b * p.dim + d) * p.dstate + n] = w4[n].w;
}

template <typename T, int kWarps, int kItems, int kStages, int kDepth, int kMinBlocks>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) selective_scan_bwd_warp_kernel(const SelectiveScanParams p) {
  const RowSet rs = row_set(p, blockIdx.y, int64_t(blockIdx.x) * kWarps);
  if (rs.rev)
    bwd_warp_body<T, kWarps, kItems, kStages, kDepth, true>(p, rs);
  else
    bwd_warp_body<T, kWarps, kItems, kStages, kDepth, false>(p, rs);
}

template <typename T, int kWarps, int kItems, int kStages>
size_t bwd_warp_smem(int64_t dstate) {
  using S = Staging<T, kItems>;
  return size_t(kStages) * 2 * 32 * S::kStride * sizeof(T) + size_t(kStages) * kWarps * 2 * 32 * kItems * sizeof(float) +
         2 * kStages * sizeof(uint64_t) + size_t(kWarps) * size_t(dstate) * sizeof(float4);
}

template <typename T, int kWarps, int kItems, int kStages, int kDepth, int kMinBlocks>
void launch_bwd_warp(const SelectiveScanParams& p, const Context& ctx) {
  const size_t smem = bwd_warp_smem<T, kWarps, kItems, kStages>(p.dstate);
  if (smem > 227 * 1024)
    throw_error(__FILE__, __LINE__, "selective_scan_bwd",
                "selective_scan: the warp-chain backward needs " + std::to_string(smem) +
                    " bytes of shared memory for N = " + std::to_string(p.dstate) + " (limit 232448); use tune 1-3");
  auto kernel = selective_scan_bwd_warp_kernel<T, kWarps, kItems, kStages, kDepth, kMinBlocks>;
  if (smem > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  dim3 grid(unsigned(p.dim / kWarps), unsigned(p.batch));
  kernel<<<grid, kWarps * 32, smem, stream_of(ctx)>>>(p);
  STEREORT_LAUNCH_CHECK("selective_scan_bwd_warp_kernel");
}

// Long sequences (L > 1024). p.tune (benchmark) picks:
//   1: block scan, 128 threads x 8 items, 1 channel per block (~165 registers, 3 blocks/SM)
//   2: block scan, 2 channels per thread sharing B/C, halving the dB/dC atomics (~240 registers, 2 blocks/SM)
//   3: block scan, 2 row groups x 2 channels: 4 channels per dB/dC atomic (256 threads, 1 block/SM)
//   4/5/6: warp chain, 12/6/4 channels per block (1/2/3 blocks/SM where shared memory allows). The default is the
//      widest one D/G admits. H100 scan_bench, stage 0 (1536 channels x L 81,920) f32: v4 6.51 ms vs v2 10.71 ms;
//      stage 2: 1.65 vs 2.78 ms; bf16 v4/v5 6.48/6.39 vs v2 10.43 ms. f32 v5/v6 get 1/2 blocks per SM (shared memory).
template <typename T>
void dispatch_bwd(const SelectiveScanParams& p, const Context& ctx) {
  const LaunchShape sh = bwd_shape(p.seqlen);
  const int64_t per_group = p.dim / p.groups;
  if (sh.threads == 128) {
    // Default: the warp chain with the most warps D/G allows (and whose shared memory fits N), else variant 2 or 1.
    auto warp_fits = [&](int w) {
      const size_t sm = w == 12 ? bwd_warp_smem<T, 12, 8, 8>(p.dstate)
                                : w == 6 ? bwd_warp_smem<T, 6, 8, 8>(p.dstate) : bwd_warp_smem<T, 4, 8, 8>(p.dstate);
      return p.seqlen > 1024 && per_group % w == 0 && sm <= 227 * 1024;
    };
    const int v = p.tune ? p.tune
                         : warp_fits(12) ? 4
                         : warp_fits(6)  ? 5
                         : warp_fits(4)  ? 6
                         : per_group % 2 == 0 ? 2 : 1;
    if (v >= 4 && v <= 6) {  // the warp-chain backward (carries every 256 positions: L > 1024 only)
      const int need = v == 4 ? 12 : v == 5 ? 6 : 4;
      if (p.seqlen <= 1024 || per_group % need != 0)
        throw_error(__FILE__, __LINE__, "selective_scan_bwd",
                    "selective_scan: backward tune " + std::to_string(v) + " needs L > 1024 and D/G (" +
                        std::to_string(per_group) + ") divisible by " + std::to_string(need));
      if (v == 4) return launch_bwd_warp<T, 12, 8, 8, 4, 1>(p, ctx);
      if (v == 5) return launch_bwd_warp<T, 6, 8, 8, 4, 2>(p, ctx);
      return launch_bwd_warp<T, 4, 8, 8, 4, 3>(p, ctx);
    }
    if ((v == 2 && per_group % 2 != 0) || (v == 3 && per_group % 4 != 0) || v < 1 || v > 3)
      throw_error(__FILE__, __LINE__, "selective_scan_bwd",
                  "selective_scan: backward tune must be 1, 2 (even D/G), 3 (D/G a multiple of 4) or 4-6 (warp chain)");
    if (v == 3) return launch_bwd<T, 128, 8, 2, 2, 1>(p, ctx);
    if (v == 2) return launch_bwd<T, 128, 8, 2, 1, 2>(p, ctx);
    return launch_bwd<T, 128, 8, 1, 1, 3>(p, ctx);
  }
  if (sh.threads == 64) return launch_bwd<T, 64, 8, 1, 1, 6>(p, ctx);
  if (sh.items == 8) return launch_bwd<T, 32, 8, 1, 1, 12>(p, ctx);
  return launch_bwd<T, 32, 4, 1, 1, 12>(p, ctx);
}

}  // namespace

void selective_scan_bwd(const SelectiveScanParams& p, const Context& ctx) {
  if (p.batch == 0 || p.dim == 0 || p.seqlen == 0) return;
  if (p.dim % p.groups != 0 || p.groups % p.dirs != 0 || p.dim % p.dirs != 0)
    throw_error(__FILE__, __LINE__, "selective_scan_bwd", "selective_scan: groups must divide channels, dirs groups");
  if (p.batch > 65535 || p.seqlen > (int64_t(1) << 30) || p.dstate > 4096)
    throw_error(__FILE__, __LINE__, "selective_scan_bwd",
                "selective_scan (CUDA): needs batch <= 65535, L <= 2^30 and N <= 4096 (split the batch or the sequence)");
  if (!p.carries || p.carry_stride != selective_scan_carry_stride(p.seqlen) || !p.dA_part)
    throw_error(__FILE__, __LINE__, "selective_scan_bwd",
                "selective_scan: the backward needs the forward's carries (stride = backward chunk) and dA partials");
  dispatch_cuda_float(p.in_dtype, "selective_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    dispatch_bwd<T>(p, ctx);
  });
}

}  // namespace cuda
}  // namespace stereort
