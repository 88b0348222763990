// cuda/attention.cuh — pieces shared by cuda/attention_fwd.cu and cuda/attention_bwd.cu: the launch parameters,
// PTX wrappers (mma.sync m16n8k16 with fp32 accumulate, ldmatrix, cp.async), fragment loaders and tile copies.
//
// mma.sync.m16n8k16 fragment layouts (PTX ISA, "Matrix Fragments for mma.m16n8k16"), lane = 4 * g + t:
//   A (16x16, row-major) 4 x b32:  a[0] = (g,   2t..2t+1)   a[1] = (g+8, 2t..2t+1)
//                                  a[2] = (g,   2t+8..+9)   a[3] = (g+8, 2t+8..+9)
//   B (16x8, k x n)      2 x b32:  b[0] = (k 2t..2t+1, n g)  b[1] = (k 2t+8..+9, n g)
//   C (16x8, f32)        4 x f32:  c[0..1] = (g, 2t..2t+1)   c[2..3] = (g+8, 2t..2t+1)
//   The lower 16 bits of a b32 register hold the element with the smaller k (or column) index.
//   Two C tiles covering columns 0..7 and 8..15 of a row block are, element for element, the A fragment of those 16
//   columns — how P (and dS) stay in registers between the two matmuls (FlashAttention-2).
// Fragments are loaded with ldmatrix.x4 (four 8x8 matrices per instruction); .trans serves operands stored k-major
// (v in P v, q in dSᵀ q, ...), so no tile is ever transposed in shared memory.
// Shared tiles are padded by 8 elements per row (rows stay 16-byte aligned): the eight row addresses of one 8x8
// matrix then fall in distinct 16-byte bank groups, so ldmatrix is conflict-free.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "core/tensor.h"
#include "cuda/common.cuh"

namespace stereort {
namespace cuda {

struct AttnParams {
  const void* q;
  const void* k;
  const void* v;
  int64_t q_sb, q_sh, q_sn;  // element strides of q along (b, h, n); unit stride along d
  int64_t k_sb, k_sh, k_sn;
  int64_t v_sb, v_sh, v_sn;
  int heads, nq, nk;
  float scale;       // softmax scale
  float scale_log2;  // scale * log2(e): scores are kept in base 2 (exp2f)
  void* o;           // (B,H,Nq,d) contiguous, input dtype
  float* lse;        // (B,H,Nq) natural-log logsumexp of the scaled scores
  // backward only
  const void* dout;  // (B,H,Nq,d) contiguous
  const float* drow; // (B,H,Nq): sum_c dout * o
  void* dq;          // contiguous, same shapes as q / k / v
  void* dk;
  void* dv;
};

// q/k/v pointers and strides (checked: unit stride along d, 16-byte aligned rows, batch x heads <= 65535) and the
// scales; outputs are filled in by the launchers. Defined in attention_fwd.cu.
AttnParams make_attn_params(const Tensor& q, const Tensor& k, const Tensor& v, double scale);

constexpr int kAttnPad = 8;  // shared-memory row padding (elements)

// Start of head (b, h) = blockIdx.y of a (B,H,N,d) operand.
template <typename T>
__device__ __forceinline__ const T* head_of(const void* base, int64_t sb, int64_t sh, int bh, int heads) {
  const int b = bh / heads, h = bh - b * heads;
  return static_cast<const T*>(base) + b * sb + h * sh;
}

// ---- PTX wrappers (sm_80+) ------------------------------------------------------------------------------------------
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// D += A B for one m16n8k16 tile, fp32 accumulate (T = __half or __nv_bfloat16).
template <typename T>
__device__ __forceinline__ void mma_16816(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);

template <>
__device__ __forceinline__ void mma_16816<__half>(float (&c)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma_16816<__nv_bfloat16>(float (&c)[4], const uint32_t (&a)[4],
                                                         const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// Four 8x8 b16 matrices from shared memory; lane l gives the address of row (l % 8) of matrix l / 8 (16-byte
// aligned). Without .trans lane l receives (row l/4, cols 2(l%4), +1) of each matrix; with .trans it receives
// (rows 2(l%4), +1; col l/4) — the transposed element pair.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row_addr))
               : "memory");
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row_addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(row_addr))
               : "memory");
}

// ---- fragments (T = __half or __nv_bfloat16) -----------------------------------------------------------------------
// Two floats -> one b32 of two 16-bit values, `lo` in the lower half (round to nearest even).
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <>
__device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
  __half2 h = __floats2half2_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <>
__device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
  __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<uint32_t*>(&h);
}

// A fragment of the 16x16 block at s (row-major, leading dim ld): matrices (rows 0-7 | 8-15) x (cols 0-7 | 8-15)
// in the order a[0..3] wants.
template <typename T>
__device__ __forceinline__ void load_frag_a(uint32_t (&a)[4], const T* s, int ld, int lane) {
  ldmatrix_x4(a, s + ((lane & 7) + 8 * ((lane >> 3) & 1)) * ld + 8 * (lane >> 4));
}

// B fragments of two adjacent n-tiles (n 0-7 -> b0, n 8-15 -> b1) of a 16(k) x 16(n) block stored n-major:
// element (k, n) at s[n * ld + k] (k rows of a row-major matrix used transposed, e.g. k in q kᵀ).
template <typename T>
__device__ __forceinline__ void load_frag_b_nmajor(uint32_t (&b0)[2], uint32_t (&b1)[2], const T* s, int ld,
                                                   int lane) {
  uint32_t r[4];
  ldmatrix_x4(r, s + ((lane & 7) + 8 * (lane >> 4)) * ld + 8 * ((lane >> 3) & 1));
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// Same, for a block stored k-major: element (k, n) at s[k * ld + n] (a row-major matrix used as is, e.g. v in P v).
template <typename T>
__device__ __forceinline__ void load_frag_b_kmajor(uint32_t (&b0)[2], uint32_t (&b1)[2], const T* s, int ld,
                                                   int lane) {
  uint32_t r[4];
  ldmatrix_x4_trans(r, s + ((lane & 7) + 8 * ((lane >> 3) & 1)) * ld + 8 * (lane >> 4));
  b0[0] = r[0];
  b0[1] = r[1];
  b1[0] = r[2];
  b1[1] = r[3];
}

// A fragment from two C tiles of fp32 values (columns 0..7 in c0, 8..15 in c1), rounded to T.
template <typename T>
__device__ __forceinline__ void frag_a_from_c(uint32_t (&a)[4], const float (&c0)[4], const float (&c1)[4]) {
  a[0] = pack2<T>(c0[0], c0[1]);
  a[1] = pack2<T>(c0[2], c0[3]);
  a[2] = pack2<T>(c1[0], c1[1]);
  a[3] = pack2<T>(c1[2], c1[3]);
}

// ---- global -> shared tiles ----------------------------------------------------------------------------------------
// Rows [row0, row0 + ROWS) of an (n, D) matrix with row stride sn (elements) into a row-major shared tile s
// (leading dim LD), 16-byte cp.async chunks; rows >= n are zero-filled. The caller commits and waits. Requires
// 16-byte aligned rows (checked by the launcher).
template <typename T, int ROWS, int D, int LD>
__device__ __forceinline__ void cp_async_tile(T* s, const T* g, int64_t sn, int row0, int n, int tid, int nthreads) {
  constexpr int kChunks = D / 8;
  for (int ch = tid; ch < ROWS * kChunks; ch += nthreads) {
    const int r = ch / kChunks, c = (ch - r * kChunks) * 8;
    const bool valid = row0 + r < n;
    cp_async16(s + r * LD + c, valid ? g + int64_t(row0 + r) * sn + c : g, valid);
  }
}

// Same rows converted to fp32 (SIMT kernels), row-major with leading dim LD; rows >= n are zero.
template <typename T, int ROWS, int D, int LD>
__device__ __forceinline__ void load_tile_f32(float* s, const T* g, int64_t sn, int row0, int n, int tid,
                                              int nthreads) {
  for (int e = tid; e < ROWS * D; e += nthreads) {
    const int r = e / D, c = e - r * D;
    s[r * LD + c] = row0 + r < n ? to_op(g[int64_t(row0 + r) * sn + c]) : 0.0f;
  }
}

}  // namespace cuda
}  // namespace stereort
