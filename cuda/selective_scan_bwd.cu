// cuda/selective_scan_bwd.cu — the chunked selective-scan backward: the block-scan kernel, and the dispatch between it
// and the warp-chain kernel of cuda/selective_scan_bwd_warp.cu (kernels.md §1.3).
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
      return p.seqlen > 1024 && per_group % w == 0 && bwd_warp_smem_bytes<T>(w, p.dstate) <= 227 * 1024;
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
      return launch_bwd_warp<T>(need, p, ctx);  // cuda/selective_scan_bwd_warp.cu
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
