// cuda/ssd_fwd.cu — Mamba-2 SSD forward (kernels.md §3), fp32 math, x/B/C in f32/f16/bf16.
//   Three launches:
//   1. ssd_fwd_walk_kernel<kOutput = false>: per (segment, head group, batch) the segment's local state from zero,
//      S_loc = sum_j exp(sum_{r>j} log a_r) B_j (dt_j x_j)^T walked chunk by chunk, and its total log-decay.
//   2. ssd_pass_states_kernel: sequential over segments, S~_{k+1} = exp(lsum_k) S~_k + S_loc_k from the initial state;
//      seg_states[k] <- S~_k (kept for the backward), final state = S~_nseg.
//   3. ssd_fwd_walk_kernel<kOutput = true>: per segment from S~_k, per chunk (lane = token i of the chunk):
//        y_i = sum_{j<=i} exp(seg[i,j]) (C_i.B_j) dt_j x_j      intra-chunk quadratic form (CB shared by the block's
//            + exp(cs_i) S^T C_i + D x_i                       heads), off-diagonal term from the running state,
//      then S <- exp(cs_last) S + sum_j exp(suf_j) dt_j B_j x_j^T (chunk state, sequential state passing).
//   seg[i,j] is grown one log a at a time along the row, suffix/prefix sums are warp scans of non-positive terms:
//   nothing subtracts two cumulative sums (a reset log a = -1e30 leaves every other exponent exact).
//   Padded steps past L load as x = 0, dt = 0, B = C = 0: identity steps.
#include <algorithm>

#include "cuda/ssd_common.cuh"

namespace stereort {
namespace cuda {

using ssd::Layout;
using ssd::Params;
using ssd::StateRows;

namespace {

enum FwdVec { kVdt = 0, kVla = 1, kVw = 2 };

template <typename T, int kP, bool kOutput>
__global__ void __launch_bounds__(256) ssd_fwd_walk_kernel(Params p, const T* __restrict__ x,
                                                           const float* __restrict__ dt, const float* __restrict__ A,
                                                           const T* __restrict__ Bm, const T* __restrict__ Cm,
                                                           const float* __restrict__ Dskip,
                                                           float* __restrict__ seg_states, float* __restrict__ lsum,
                                                           T* __restrict__ y) {
  extern __shared__ float4 smem_f4[];
  float* sm = reinterpret_cast<float*>(smem_f4);
  constexpr int PS = kP + 4, R = StateRows<kP>::kRows;
  const Layout lay = ssd::make_layout(p, kP, kOutput ? 1 : 0);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t k = blockIdx.x, b = blockIdx.z;
  const int h0 = blockIdx.y * p.hb, h = h0 + warp, grp = h0 / p.hg;
  float* sB = sm + lay.B;
  float* sC = sm + lay.C;
  float* sCB = sm + lay.CB;
  float* heads = sm + lay.head;
  float* hs = heads + warp * lay.per_head;
  float* sX = hs + lay.X;
  float* sS = hs + lay.S;
  float* sV = hs + lay.V;
  const float Ah = A[h];
  const float Dh = Dskip ? Dskip[h] : 0.f;
  float* gstate = seg_states + ((b * p.H + h) * p.nseg + k) * p.N * kP;  // (N, kP) of this head and segment

  // The state: registers in the state walk, the head's shared rows in the output walk (Y reads all of it).
  float st[kOutput ? 1 : R][kP];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    int n = lane + 32 * r;
    if (kOutput) {
      for (int q = 0; q < kP; ++q)
        if (n < p.N) sS[n * PS + q] = gstate[int64_t(n) * kP + q];
    } else {
#pragma unroll
      for (int q = 0; q < kP; ++q) st[r][q] = 0.f;
    }
  }
  float lsum_acc = 0.f;

  for (int c = 0; c < p.seg_chunks; ++c) {
    const int64_t t0 = (k * p.seg_chunks + c) * p.Q;
    if (t0 >= p.L) break;  // uniform over the block
    __syncthreads();       // the previous chunk's readers of the shared tiles are done
    ssd::load_rows(sB, Bm, p.sbb, p.sbl, b, t0, grp, p);
    if (kOutput) ssd::load_rows(sC, Cm, p.scb, p.scl, b, t0, grp, p);
    ssd::load_heads<T, kP>(heads, lay.per_head, lay.X, x, p.sxb, p.sxl, b, t0, h0, p);
    ssd::load_dt(heads, lay.per_head, lay.V + kVdt * 32, dt, b, t0, h0, p);
    __syncthreads();

    // Per-head scalars, token i = lane: log a, inclusive prefix cs_i, exclusive suffix, state-update weight.
    const float dti = sV[kVdt * 32 + lane];
    const float la = dti * Ah;
    const float cs = ssd::warp_prefix_incl(la, lane);
    const float suf = ssd::warp_suffix_excl(la, lane);
    const float cs_last = __shfl_sync(0xffffffffu, cs, p.Q - 1);
    lsum_acc += cs_last;
    sV[kVla * 32 + lane] = la;
    sV[kVw * 32 + lane] = expf(suf) * dti;
    __syncwarp();

    if (kOutput) {
      ssd::compute_cb(sCB, sC, sB, p);
      __syncthreads();
      if (lane < p.Q) {
        const int i = lane;
        float acc[kP];
#pragma unroll
        for (int q = 0; q < kP; ++q) acc[q] = 0.f;
        // Diagonal block: row i of (L o C B^T) X̄, seg[i,j] grown one term at a time.
        float seg = 0.f;
        for (int j = i; j >= 0; --j) {
          if (j < i) seg += sV[kVla * 32 + j + 1];
          float coef = expf(seg) * sCB[i * (p.Q + 1) + j] * sV[kVdt * 32 + j];
          float xv[kP];
          ssd::load_row<kP>(xv, sX + j * PS);
#pragma unroll
          for (int q = 0; q < kP; ++q) acc[q] += coef * xv[q];
        }
        // Off-diagonal: exp(cs_i) S^T C_i with the state entering the chunk.
        const float eo = expf(cs);
        for (int n = 0; n < p.N; n += 4) {
          float4 c4 = *reinterpret_cast<const float4*>(sC + i * p.NS + n);
          const float cv[4] = {c4.x, c4.y, c4.z, c4.w};
#pragma unroll
          for (int u = 0; u < 4; ++u) {
            if (n + u >= p.N) break;
            float sv[kP];
            ssd::load_row<kP>(sv, sS + (n + u) * PS);
            const float cn = eo * cv[u];
#pragma unroll
            for (int q = 0; q < kP; ++q) acc[q] += cn * sv[q];
          }
        }
        const int64_t t = t0 + i;
        if (t < p.L) {
          float xv[kP];
          ssd::load_row<kP>(xv, sX + i * PS);
          T* yo = y + ((b * p.L + t) * p.H + h) * kP;
#pragma unroll
          for (int q = 0; q < kP; ++q) yo[q] = from_op<T>(acc[q] + Dh * xv[q]);
        }
      }
      __syncwarp();  // every lane has read sS before it is overwritten
    }
    // Chunk state and state passing: S <- exp(cs_last) S + sum_j w_j B_j x_j^T.
    if constexpr (kOutput) {
      ssd::state_update_smem<kP>(sS, expf(cs_last), sV + kVw * 32, sB, sX, lane, p);
      __syncwarp();
    } else {
      ssd::state_update<kP>(st, expf(cs_last), sV + kVw * 32, sB, sX, lane, p);
    }
  }
  if constexpr (!kOutput) {
#pragma unroll
    for (int r = 0; r < R; ++r) {
      int n = lane + 32 * r;
      if (n < p.N)
#pragma unroll
        for (int q = 0; q < kP; ++q) gstate[int64_t(n) * kP + q] = st[r][q];
    }
    if (lane == 0) lsum[(b * p.H + h) * p.nseg + k] = lsum_acc;
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
  constexpr int kBatch = 8;  // independent loads in flight per thread; the recurrence itself is in registers
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
}  // namespace ssd

// ---- plan and launch -------------------------------------------------------------------------------------------------
bool ssd_cuda_supported(const SsdDims& d) {
  return (d.P == 8 || d.P == 16 || d.P == 32 || d.P == 64) && d.N >= 1 && d.N * d.P <= 2048;
}

static int sm_count() {
  int dev = 0, n = 0;
  STEREORT_CUDA_CHECK(cudaGetDevice(&dev));
  STEREORT_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n > 0 ? n : 132;
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
    if (hb == 1 || int64_t(ssd::make_layout(p, int(d.P), 3).total) * 4 <= optin) break;
  }
  plan.heads_per_block = hb;
  // Segments: enough blocks for ~3 waves of the output kernel, never shorter than one chunk.
  const int64_t nchunks = (d.L + plan.chunk - 1) / plan.chunk;
  const int64_t per_seg_row = d.B * (d.H / hb);  // blocks per segment index
  const int64_t target = 3 * int64_t(sm_count());
  int64_t nseg_want = std::max<int64_t>(1, std::min<int64_t>(nchunks, (target + per_seg_row - 1) / per_seg_row));
  plan.seg_chunks = (nchunks + nseg_want - 1) / nseg_want;
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
  const dim3 grid(unsigned(p.nseg), unsigned(p.H / p.hb), unsigned(p.B)), block(unsigned(32 * p.hb));
  dispatch_cuda_float(a.x.dtype(), "ssd_chunk_scan", [&](auto tag) {
    using T = typename decltype(tag)::type;
    ssd::dispatch_p(P, [&](auto pc) {
      constexpr int kP = decltype(pc)::value;
      const T* x = a.x.data<T>();
      const T* Bm = a.Bm.data<T>();
      const T* Cm = a.Cm.data<T>();
      size_t s0 = size_t(ssd::make_layout(p, kP, 0).total) * 4, s1 = size_t(ssd::make_layout(p, kP, 1).total) * 4;
      ssd::set_smem(ssd_fwd_walk_kernel<T, kP, false>, s0);
      ssd_fwd_walk_kernel<T, kP, false><<<grid, block, s0, stream_of(ctx)>>>(
          p, x, a.dt.data<float>(), a.A.data<float>(), Bm, Cm, D, seg_states.data<float>(), lsum.data<float>(),
          nullptr);
      STEREORT_LAUNCH_CHECK("ssd_fwd_walk_kernel<state>");
      ssd::pass_states(seg_states, lsum, a.initial_state.defined() ? a.initial_state.data<float>() : nullptr,
                      final_state.defined() ? final_state.data<float>() : nullptr, p.B * p.H, p.nseg, int(p.N), kP,
                      false, ctx);
      ssd::set_smem(ssd_fwd_walk_kernel<T, kP, true>, s1);
      ssd_fwd_walk_kernel<T, kP, true><<<grid, block, s1, stream_of(ctx)>>>(
          p, x, a.dt.data<float>(), a.A.data<float>(), Bm, Cm, D, seg_states.data<float>(), lsum.data<float>(),
          y.data<T>());
      STEREORT_LAUNCH_CHECK("ssd_fwd_walk_kernel<output>");
    });
  });
}

}  // namespace cuda
}  // namespace stereort
