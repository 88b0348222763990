// cuda/selective_scan_fwd.cu — the chunked selective-scan forward kernel and its launcher.
//   out[b,d,l] = (sum_n C h + D u) * silu(z), h_l = exp(dt A) h_{l-1} + dt B u  (ops/selective_scan.h).
//   Block = kRows channels of one group x the whole sequence in chunks of kThreads*kItems (design:
//   cuda/selective_scan_common.cuh). Per (chunk, state): stage B/C rows (cp.async, double buffered), pass 1 folds each
//   thread's items into an (a, b) aggregate, a warp scan + a fold over the preceding warps' aggregates seeds pass 2,
//   which replays the items and accumulates C*h. One __syncthreads per (chunk, state).
//   Writes the state after every carry_stride positions (the backward's chunk starts) and, when z is present and
//   p.y is set, the pre-gate y in f32 for the backward's dz.
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
  const bool out_f32 = p.out_dtype == DType::F32, has_z = p.z.ptr[rs.k] != nullptr;

  // Row pointers are recomputed from the (constant-bank) params where used: registers go to the items.
  auto u_row = [&](int r) { return operand_row<T>(p.u, rs, rs.dl0 + r, 0); };
  auto dt_row = [&](int r) { return operand_row<T>(p.delta, rs, rs.dl0 + r, 0); };
  auto z_row = [&](int r) { return operand_row<T>(p.z, rs, rs.dl0 + r, 0); };
  auto y_row = [&](int r) { return operand_row<float>(p.y, rs, rs.dl0 + r, 0); };
  auto out_row = [&](int r) { return static_cast<char*>(p.out.ptr[rs.k]) + (rs.b * p.out.batch[rs.k] +
                                     (rs.dl0 + r) * p.out.row[rs.k]) * (out_f32 ? 4 : int64_t(sizeof(T))); };
  const bool save_y = p.y.ptr[rs.k] != nullptr;
  bool u_vec = true, dt_vec = true, z_vec = true, out_vec = true, y_vec = true;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    u_vec = u_vec && vec_ok<T, kItems>(u_row(r), L);
    dt_vec = dt_vec && vec_ok<T, kItems>(dt_row(r), L);
    z_vec = z_vec && (!has_z || vec_ok<T, kItems>(z_row(r), L));
    y_vec = y_vec && (!save_y || vec_ok<float, kItems>(y_row(r), L));
    out_vec = out_vec && (out_f32 ? vec_ok<float, kItems>(out_row(r), L) : vec_ok<T, kItems>(out_row(r), L));
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
    float* carry_out = nullptr;
    if (p.carries) {
      const int64_t end = s0 + kItems;
      if (end % p.carry_stride == 0 && end / p.carry_stride <= p.n_carries)
        carry_out = p.carries + ((rs.b * p.dim + rs.d0) * p.n_carries + end / p.carry_stride - 1) * p.dstate;
    }
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
    // Outputs of this chunk: y (pre-gate, for the backward), then the gate.
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (has_z) {
        if (save_y) store_items<float, kItems>(y_row(r), L, s0, rs.rev, y_vec, out[r]);
        float zv[kItems];
        load_items<T, kItems>(z_row(r), L, s0, rs.rev, z_vec, zv, 0.f);
#pragma unroll
        for (int i = 0; i < kItems; ++i) out[r][i] *= zv[i] * sigmoid_f(zv[i]);
      }
      if (out_f32)
        store_items<float, kItems>(reinterpret_cast<float*>(out_row(r)), L, s0, rs.rev, out_vec, out[r]);
      else
        store_items<T, kItems>(reinterpret_cast<T*>(out_row(r)), L, s0, rs.rev, out_vec, out[r]);
    }
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

// Long sequences (L > 1024) have four block shapes, selectable with p.tune for the benchmark:
//   1: 128 threads x 16 items, 1 channel (164 registers, 3 blocks/SM)
//   2: 128 x 8, 2 channels sharing every B/C load (3 blocks/SM; the default when D/G is even)
//   3: 64 x 16, 2 channels (4 blocks/SM)        4: 128 x 16, 2 channels (2 blocks/SM)
// The stage-0 SS2D grid (2 x 768 channels) fills 132 SMs x 3 blocks in almost exactly 2 (variant 2) or 4 (variant 1)
// waves.
// All chunk lengths divide the backward chunk (2048), where the carries are saved.
template <typename T>
void dispatch_fwd(const SelectiveScanParams& p, const Context& ctx) {
  const LaunchShape sh = fwd_shape(p.seqlen);
  const bool pairs = (p.dim / p.groups) % 2 == 0;
  if (sh.threads == 128) {
    const int v = p.tune ? p.tune : (pairs ? 2 : 1);
    if (v != 1 && !pairs)
      throw_error(__FILE__, __LINE__, "selective_scan_fwd", "selective_scan: tune variants 2-4 need an even D/G");
    switch (v) {
      case 1: return launch_fwd<T, 128, 16, 1, 3>(p, ctx);
      case 2: return launch_fwd<T, 128, 8, 2, 3>(p, ctx);
      case 3: return launch_fwd<T, 64, 16, 2, 4>(p, ctx);
      case 4: return launch_fwd<T, 128, 16, 2, 2>(p, ctx);
      default: throw_error(__FILE__, __LINE__, "selective_scan_fwd", "selective_scan: tune must be 0-4");
    }
  }
  if (sh.threads == 64) return launch_fwd<T, 64, 16, 1, 6>(p, ctx);
  if (sh.items == 16) return launch_fwd<T, 32, 16, 1, 12>(p, ctx);
  if (sh.items == 8) return launch_fwd<T, 32, 8, 1, 16>(p, ctx);
  return launch_fwd<T, 32, 4, 1, 16>(p, ctx);
}

}  // namespace

int64_t selective_scan_carry_stride(int64_t seqlen) {
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
