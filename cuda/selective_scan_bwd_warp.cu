// cuda/selective_scan_bwd_warp.cu — the warp-chain selective-scan backward (tune 4-6; the default for L > 1024, chosen
// by dispatch_bwd in cuda/selective_scan_bwd.cu).
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
#include <string>

#include "cuda/selective_scan_common.cuh"

namespace stereort {
namespace cuda {
namespace scan {
namespace {

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
void launch_warp(const SelectiveScanParams& p, const Context& ctx) {
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

}  // namespace

template <typename T>
size_t bwd_warp_smem_bytes(int warps, int64_t dstate) {
  return warps == 12 ? bwd_warp_smem<T, 12, 8, 8>(dstate)
         : warps == 6 ? bwd_warp_smem<T, 6, 8, 8>(dstate)
                      : bwd_warp_smem<T, 4, 8, 8>(dstate);
}

template <typename T>
void launch_bwd_warp(int warps, const SelectiveScanParams& p, const Context& ctx) {
  if (warps == 12) return launch_warp<T, 12, 8, 8, 4, 1>(p, ctx);
  if (warps == 6) return launch_warp<T, 6, 8, 8, 4, 2>(p, ctx);
  if (warps == 4) return launch_warp<T, 4, 8, 8, 4, 3>(p, ctx);
  throw_error(__FILE__, __LINE__, "selective_scan_bwd",
              "selective_scan: the warp-chain backward runs 12, 6 or 4 channels per block, got " + std::to_string(warps));
}

#define STEREORT_SCAN_BWD_WARP(T)                                          \
  template size_t bwd_warp_smem_bytes<T>(int, int64_t);                    \
  template void launch_bwd_warp<T>(int, const SelectiveScanParams&, const Context&);
STEREORT_SCAN_BWD_WARP(float)
STEREORT_SCAN_BWD_WARP(__half)
STEREORT_SCAN_BWD_WARP(__nv_bfloat16)
#undef STEREORT_SCAN_BWD_WARP

}  // namespace scan
}  // namespace cuda
}  // namespace stereort
