// cuda/attention_fwd.cu — fused attention forward (FlashAttention-2 schedule): out = softmax(q kᵀ scale) v and the
// row logsumexp, without materialising the Nq x Nk score matrix (ops/attention.h).
//   Tensor-core kernel (f16/bf16): a CTA of 4 warps owns 64 query rows (16 per warp, q fragments in registers) and
//   walks the keys in tiles of 64: S = q kᵀ (mma, fp32), running max m and partial sums l per row in base 2, P = 2^(S-m)
//   rounded to the input type and multiplied by v straight from registers. k/v tiles are double-buffered with
//   cp.async (tile j+1 loads while tile j computes); fragments come from ldmatrix (v through .trans).
//   SIMT kernel (f32; f16/bf16 on request): 8 warps x 4 query rows; lane j scores key j of a 32-key tile, then each
//   lane accumulates d/32 output columns with P broadcast by shuffles. fp32 throughout (no TF32).
//   Rows past Nq are computed on zeros and not stored; keys past Nk score -inf.
#include <string>
#include <type_traits>

#include "cuda/attention.cuh"
#include "ops/attention.h"

namespace stereort {
namespace cuda {
namespace {

// ---- tensor cores ------------------------------------------------------------------------------------------------
constexpr int kFwdRows = 64;  // query rows per CTA
constexpr int kFwdKeys = 64;  // keys per tile
constexpr int kFwdThreads = 128;

template <int D>
constexpr size_t fwd_mma_smem_bytes() {
  return size_t(kFwdRows + 4 * kFwdKeys) * (D + kAttnPad) * 2;  // q tile + 2 buffers x (k tile, v tile)
}

template <typename T, int D>
__global__ void __launch_bounds__(kFwdThreads) attention_fwd_mma_kernel(AttnParams p) {
  constexpr int LD = D + kAttnPad;
  constexpr int KS = D / 16;        // k-steps over the head dim
  constexpr int NT = kFwdKeys / 8;  // n-tiles of S per key tile
  constexpr int DT = D / 8;         // n-tiles of O
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);  // (64, D)  query rows
  T* sKV = sQ + kFwdRows * LD;             // 2 x [(64, D) keys, (64, D) values], double-buffered

  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, t = lane & 3;
  const int bh = blockIdx.y, q0 = blockIdx.x * kFwdRows;
  const T* gq = head_of<T>(p.q, p.q_sb, p.q_sh, bh, p.heads);
  const T* gk = head_of<T>(p.k, p.k_sb, p.k_sh, bh, p.heads);
  const T* gv = head_of<T>(p.v, p.v_sb, p.v_sh, bh, p.heads);
  const int ntiles = (p.nk + kFwdKeys - 1) / kFwdKeys;

  // Group 0: q and the first k/v tile.
  cp_async_tile<T, kFwdRows, D, LD>(sQ, gq, p.q_sn, q0, p.nq, tid, kFwdThreads);
  cp_async_tile<T, kFwdKeys, D, LD>(sKV, gk, p.k_sn, 0, p.nk, tid, kFwdThreads);
  cp_async_tile<T, kFwdKeys, D, LD>(sKV + kFwdKeys * LD, gv, p.v_sn, 0, p.nk, tid, kFwdThreads);
  cp_async_commit();

  uint32_t qf[KS][4];  // this warp's 16 query rows as A fragments
  float o[DT][4];
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  float m0 = -INFINITY, m1 = -INFINITY;  // running max (base 2) of rows g and g + 8
  float l0 = 0.0f, l1 = 0.0f;            // this thread's share of the running sums

  for (int j = 0; j < ntiles; ++j) {
    const int k0 = j * kFwdKeys;
    const T* sK = sKV + (j & 1) * 2 * kFwdKeys * LD;
    const T* sV = sK + kFwdKeys * LD;
    if (j + 1 < ntiles) {  // prefetch tile j+1 into the other buffer (freed by the barrier ending iteration j-1)
      T* nK = sKV + ((j + 1) & 1) * 2 * kFwdKeys * LD;
      cp_async_tile<T, kFwdKeys, D, LD>(nK, gk, p.k_sn, k0 + kFwdKeys, p.nk, tid, kFwdThreads);
      cp_async_tile<T, kFwdKeys, D, LD>(nK + kFwdKeys * LD, gv, p.v_sn, k0 + kFwdKeys, p.nk, tid, kFwdThreads);
      cp_async_commit();
      cp_async_wait<1>();  // everything but the prefetch has landed
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) {
#pragma unroll
      for (int ks = 0; ks < KS; ++ks) load_frag_a(qf[ks], sQ + warp * 16 * LD + ks * 16, LD, lane);
    }

    float s[NT][4];  // S = q kᵀ for 16 rows x 64 keys
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
#pragma unroll
    for (int ks = 0; ks < KS; ++ks)
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        uint32_t b0[2], b1[2];
        load_frag_b_nmajor(b0, b1, sK + np * 16 * LD + ks * 16, LD, lane);
        mma_16816<T>(s[2 * np], qf[ks], b0);
        mma_16816<T>(s[2 * np + 1], qf[ks], b1);
      }
    // Scale into base 2, mask keys past the end, new row maxima (the 4 lanes of a row share them).
    float mx0 = m0, mx1 = m1;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = k0 + nt * 8 + 2 * t + (e & 1);
        s[nt][e] = key < p.nk ? s[nt][e] * p.scale_log2 : -INFINITY;
        if (e < 2) mx0 = fmaxf(mx0, s[nt][e]);
        else mx1 = fmaxf(mx1, s[nt][e]);
      }
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
    mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
    mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
    // Key k0 < nk is in every tile, so mx is finite; on the first tile m = -inf gives alpha = 0.
    const float alpha0 = exp2f(m0 - mx0), alpha1 = exp2f(m1 - mx1);
    m0 = mx0;
    m1 = mx1;
    float rs0 = 0.0f, rs1 = 0.0f;
#pragma unroll
    for (int nt = 0; nt < NT; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - m0);
      s[nt][1] = exp2f(s[nt][1] - m0);
      s[nt][2] = exp2f(s[nt][2] - m1);
      s[nt][3] = exp2f(s[nt][3] - m1);
      rs0 += s[nt][0] + s[nt][1];
      rs1 += s[nt][2] + s[nt][3];
    }
    l0 = l0 * alpha0 + rs0;
    l1 = l1 * alpha1 + rs1;
#pragma unroll
    for (int dt = 0; dt < DT; ++dt) {
      o[dt][0] *= alpha0;
      o[dt][1] *= alpha0;
      o[dt][2] *= alpha1;
      o[dt][3] *= alpha1;
    }
    // O += P v: P from registers (k = key), v row-major (k-major B operand, ldmatrix.trans).
#pragma unroll
    for (int kk = 0; kk < kFwdKeys / 16; ++kk) {
      uint32_t a[4];
      frag_a_from_c<T>(a, s[2 * kk], s[2 * kk + 1]);
#pragma unroll
      for (int dp = 0; dp < DT / 2; ++dp) {
        uint32_t b0[2], b1[2];
        load_frag_b_kmajor(b0, b1, sV + kk * 16 * LD + dp * 16, LD, lane);
        mma_16816<T>(o[2 * dp], a, b0);
        mma_16816<T>(o[2 * dp + 1], a, b1);
      }
    }
    __syncthreads();  // all warps are done with this buffer before iteration j+1 refills it
  }

  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  const float inv0 = 1.0f / l0, inv1 = 1.0f / l1;
  const int r0 = q0 + warp * 16 + (lane >> 2), r1 = r0 + 8;
  T* go = static_cast<T*>(p.o) + int64_t(bh) * p.nq * D;
#pragma unroll
  for (int dt = 0; dt < DT; ++dt) {
    const int c = dt * 8 + 2 * t;
    if (r0 < p.nq) *reinterpret_cast<uint32_t*>(go + int64_t(r0) * D + c) = pack2<T>(o[dt][0] * inv0, o[dt][1] * inv0);
    if (r1 < p.nq) *reinterpret_cast<uint32_t*>(go + int64_t(r1) * D + c) = pack2<T>(o[dt][2] * inv1, o[dt][3] * inv1);
  }
  if (t == 0) {
    if (r0 < p.nq) p.lse[int64_t(bh) * p.nq + r0] = (m0 + log2f(l0)) * kLn2;
    if (r1 < p.nq) p.lse[int64_t(bh) * p.nq + r1] = (m1 + log2f(l1)) * kLn2;
  }
}

// ---- SIMT (fp32) ---------------------------------------------------------------------------------------------------
constexpr int kSimtWarps = 8;
constexpr int kSimtRowsPerWarp = 4;
constexpr int kSimtRows = kSimtWarps * kSimtRowsPerWarp;  // 32 query rows per CTA
constexpr int kSimtKeys = 32;                             // one key per lane

template <int D>
constexpr size_t fwd_simt_smem_bytes() {
  return size_t(kSimtRows * D + kSimtKeys * (D + 1) + kSimtKeys * D) * 4;
}

template <typename T, int D>
__global__ void __launch_bounds__(kSimtWarps * 32) attention_fwd_simt_kernel(AttnParams p) {
  constexpr int R = kSimtRowsPerWarp, C = D / 32;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  float* sQ = reinterpret_cast<float*>(smem_raw);  // (32, D)
  float* sK = sQ + kSimtRows * D;                   // (32, D+1): lane j reads row j, conflict-free
  float* sV = sK + kSimtKeys * (D + 1);             // (32, D)
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int bh = blockIdx.y, q0 = blockIdx.x * kSimtRows;
  const T* gq = head_of<T>(p.q, p.q_sb, p.q_sh, bh, p.heads);
  const T* gk = head_of<T>(p.k, p.k_sb, p.k_sh, bh, p.heads);
  const T* gv = head_of<T>(p.v, p.v_sb, p.v_sh, bh, p.heads);
  load_tile_f32<T, kSimtRows, D, D>(sQ, gq, p.q_sn, q0, p.nq, tid, blockDim.x);
  const float* myq = sQ + warp * R * D;

  float o[R][C], m[R], l[R];
#pragma unroll
  for (int r = 0; r < R; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int c = 0; c < C; ++c) o[r][c] = 0.0f;
  }
  for (int k0 = 0; k0 < p.nk; k0 += kSimtKeys) {
    __syncthreads();
    load_tile_f32<T, kSimtKeys, D, D + 1>(sK, gk, p.k_sn, k0, p.nk, tid, blockDim.x);
    load_tile_f32<T, kSimtKeys, D, D>(sV, gv, p.v_sn, k0, p.nk, tid, blockDim.x);
    __syncthreads();
    float s[R];
#pragma unroll
    for (int r = 0; r < R; ++r) s[r] = 0.0f;
    const float* kr = sK + lane * (D + 1);
    for (int c = 0; c < D; c += 4) {
      const float k0v = kr[c], k1v = kr[c + 1], k2v = kr[c + 2], k3v = kr[c + 3];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float4 qv = *reinterpret_cast<const float4*>(myq + r * D + c);
        s[r] += qv.x * k0v + qv.y * k1v + qv.z * k2v + qv.w * k3v;
      }
    }
    const bool valid = k0 + lane < p.nk;
#pragma unroll
    for (int r = 0; r < R; ++r) {
      s[r] = valid ? s[r] * p.scale_log2 : -INFINITY;
      const float mx = fmaxf(m[r], warp_max(s[r]));  // finite: key k0 is valid
      const float alpha = exp2f(m[r] - mx);
      m[r] = mx;
      s[r] = exp2f(s[r] - mx);
      l[r] = l[r] * alpha + s[r];
#pragma unroll
      for (int c = 0; c < C; ++c) o[r][c] *= alpha;
    }
    const int nkeys = min(kSimtKeys, p.nk - k0);
    for (int j = 0; j < nkeys; ++j) {
      float vj[C];
#pragma unroll
      for (int c = 0; c < C; ++c) vj[c] = sV[j * D + lane + 32 * c];
#pragma unroll
      for (int r = 0; r < R; ++r) {
        const float pj = __shfl_sync(0xffffffffu, s[r], j);
#pragma unroll
        for (int c = 0; c < C; ++c) o[r][c] += pj * vj[c];
      }
    }
  }
  T* go = static_cast<T*>(p.o) + int64_t(bh) * p.nq * D;
#pragma unroll
  for (int r = 0; r < R; ++r) {
    const float lsum = warp_sum(l[r]);
    const int row = q0 + warp * R + r;
    if (row >= p.nq) continue;
#pragma unroll
    for (int c = 0; c < C; ++c) go[int64_t(row) * D + lane + 32 * c] = from_op<T>(o[r][c] / lsum);
    if (lane == 0) p.lse[int64_t(bh) * p.nq + row] = (m[r] + log2f(lsum)) * kLn2;
  }
}

template <typename Kernel>
void set_smem(Kernel kernel, size_t bytes) {
  if (bytes > 48 * 1024)
    STEREORT_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
}

template <typename T, int D>
void launch_forward(const AttnParams& p, int bh, AttentionKernel kind, const Context& ctx) {
  if (kind == AttentionKernel::TensorCore) {
    if constexpr (std::is_same<T, float>::value) {
      STEREORT_THROW("attention_forward: the tensor-core kernel takes f16/bf16; use AttentionKernel::Simt for f32");
    } else {
      const size_t smem = fwd_mma_smem_bytes<D>();
      set_smem(attention_fwd_mma_kernel<T, D>, smem);
      dim3 grid(unsigned(ceil_div(p.nq, kFwdRows)), unsigned(bh));
      attention_fwd_mma_kernel<T, D><<<grid, kFwdThreads, smem, stream_of(ctx)>>>(p);
      STEREORT_LAUNCH_CHECK("attention_fwd_mma_kernel");
    }
  } else {
    const size_t smem = fwd_simt_smem_bytes<D>();
    set_smem(attention_fwd_simt_kernel<T, D>, smem);
    dim3 grid(unsigned(ceil_div(p.nq, kSimtRows)), unsigned(bh));
    attention_fwd_simt_kernel<T, D><<<grid, kSimtWarps * 32, smem, stream_of(ctx)>>>(p);
    STEREORT_LAUNCH_CHECK("attention_fwd_simt_kernel");
  }
}

}  // namespace

void attention_forward(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
                       double scale, AttentionKernel kind, const Context& ctx) {
  if (out.numel() == 0) return;
  AttnParams p = make_attn_params(q, k, v, scale);
  p.o = out.data_ptr();
  p.lse = static_cast<float*>(lse.data_ptr());
  const int bh = int(q.size(0) * q.size(1));
  const int d = int(q.size(3));
  if (kind == AttentionKernel::Auto)
    kind = q.dtype() == DType::F32 ? AttentionKernel::Simt : AttentionKernel::TensorCore;
  dispatch_cuda_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    switch (d) {
      case 32: launch_forward<T, 32>(p, bh, kind, ctx); break;
      case 64: launch_forward<T, 64>(p, bh, kind, ctx); break;
      case 128: launch_forward<T, 128>(p, bh, kind, ctx); break;
      default: STEREORT_THROW("attention_forward: head dim " + std::to_string(d) + " not supported (32, 64, 128)");
    }
  });
}

AttnParams make_attn_params(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  auto aligned = [](const Tensor& t) {
    const int64_t es = int64_t(dtype_size(t.dtype()));
    bool ok = t.stride(3) == 1 && (reinterpret_cast<uintptr_t>(t.data_ptr()) & 15) == 0;
    for (int dim = 0; dim < 3; ++dim) ok = ok && (t.size(dim) == 1 || (t.stride(dim) * es) % 16 == 0);
    return ok;
  };
  if (!aligned(q) || !aligned(k) || !aligned(v))
    STEREORT_THROW("attention: q/k/v need unit stride along d and 16-byte aligned rows: " + q.desc() + ", " +
                   k.desc() + ", " + v.desc() + " (the op copies such inputs; launchers do not)");
  if (q.size(0) * q.size(1) > 65535)
    STEREORT_THROW("attention: batch x heads = " + std::to_string(q.size(0) * q.size(1)) + " exceeds 65535");
  AttnParams p{};
  p.q = q.data_ptr();
  p.k = k.data_ptr();
  p.v = v.data_ptr();
  p.q_sb = q.stride(0); p.q_sh = q.stride(1); p.q_sn = q.stride(2);
  p.k_sb = k.stride(0); p.k_sh = k.stride(1); p.k_sn = k.stride(2);
  p.v_sb = v.stride(0); p.v_sh = v.stride(1); p.v_sn = v.stride(2);
  p.heads = int(q.size(1));
  p.nq = int(q.size(2));
  p.nk = int(k.size(2));
  p.scale = float(scale);
  p.scale_log2 = float(scale * 1.4426950408889634);
  return p;
}

}  // namespace cuda
}  // namespace stereort
