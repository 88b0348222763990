// cuda/selective_scan_common.cuh — device code shared by the selective-scan forward and backward kernels (and the
// fused SS2D scan, which is the same kernels addressed through four directions).
//
// Design of the block-scan kernels (kernels.md §1.2-1.4, after mamba's selective_scan_fwd/bwd_kernel.cuh; for
// L > 1024 the forward and the backward are instead the warp-chain kernels of selective_scan_{fwd,bwd_warp}.cu, one warp
// per channel):
//   * Grid (dim / kRows, batch). A block owns kRows channels of ONE group (and one direction) of one batch element and
//     walks the whole sequence in chunks of kChunk = kThreads x kItems; thread t owns kItems consecutive sequence
//     positions of every chunk, for each of its kRows channels. The kRows channels share B/C, so every B/C value
//     loaded serves kRows channels from registers.
//   * Per chunk and state n the recurrence h_l = a_l h_{l-1} + b_l (a = exp2(dt*A*log2 e), b = dt*u*B) is a scan
//     under (a1,b1) then (a2,b2) = (a2*a1, a2*b1 + b2): each thread folds its items (pass 1), a warp scan by shuffles
//     and a fold over the preceding warps' aggregates in shared memory give the state entering the thread, seeded with
//     the carry of the previous chunk; pass 2 replays the items and accumulates out += C*h. Only per-chunk carries
//     (kRows x N floats in shared memory) cross chunks; nothing of size (B,D,N,L) is ever stored.
//   * B/C for the current state are staged in shared memory, double buffered with cp.async (16-byte copies when the
//     rows are 16-byte aligned and L is a multiple of the vector width, plain loads otherwise); one __syncthreads per
//     (chunk, n) both publishes the next stage and the warps' aggregates. The staging layout pads each thread's
//     kItems segment so the 16-byte reads of 8 consecutive threads hit distinct banks.
//   * Positions past L (ragged last chunk) get dt = 0 and u = 0, i.e. (a,b) = (1,0): carries and states stay exact.
//     In the backward dy = 0 there too.
//   * A direction may run reversed (SS2D directions 2/3): sequence position s reads memory L-1-s; the staging keeps
//     memory order and threads read their segment mirrored.
//   * Math in fp32 always (ex2.approx for the decays, so compare with tolerances); u/delta/B/C/z in f32/f16/bf16.
#pragma once
#include <cstdint>

#include "cuda/common.cuh"
#include "ops/selective_scan.h"

namespace stereort {
namespace cuda {
namespace scan {

constexpr unsigned kFull = 0xffffffffu;

template <int kThreads_, int kItems_, int kRows_>
struct Config {
  static constexpr int kThreads = kThreads_, kItems = kItems_, kRows = kRows_;
  static constexpr int kChunk = kThreads * kItems, kWarps = kThreads / 32;
  static_assert(kThreads % 32 == 0, "whole warps");
};

__device__ __forceinline__ float lg2_approx(float x) {
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}
// softplus(x) = log1p(e^x) for x <= 20, x above. e = 2^(x log2 e) on MUFU; log1p(e) by its series to e^10 for e < 1/4
// (truncation < 4^-9/10 = 4e-7 relative), lg2(1 + e) ln 2 on MUFU above (the result is >= log 1.25, so MUFU's ~2^-22
// absolute error is < 1e-6 relative). A third of the instructions of log1pf(expf(x)); forward and backward share it.
__device__ __forceinline__ float softplus_f(float x) {
  if (x > 20.f) return x;
  const float e = exp2_approx(x * kLog2e);
  if (e >= 0.25f) return lg2_approx(1.f + e) * 0.6931471805599453f;
  float q = -0.1f;
  q = fmaf(q, e, 1.f / 9.f);
  q = fmaf(q, e, -0.125f);
  q = fmaf(q, e, 1.f / 7.f);
  q = fmaf(q, e, -1.f / 6.f);
  q = fmaf(q, e, 0.2f);
  q = fmaf(q, e, -0.25f);
  q = fmaf(q, e, 1.f / 3.f);
  q = fmaf(q, e, -0.5f);
  q = fmaf(q, e, 1.f);
  return e * q;
}
__device__ __forceinline__ float sigmoid_f(float x) { return 1.f / (1.f + expf(-x)); }

// ---- addressing ------------------------------------------------------------------------------------------------------
// Which direction / group a block's first channel d0 falls in (see SelectiveScanParams).
struct RowSet {
  int64_t b, d0;    // batch element, first global channel
  int k;            // direction
  int64_t dl0;      // first channel inside the direction
  int64_t gl;       // group inside the direction
  bool rev;
};
__device__ __forceinline__ RowSet row_set(const SelectiveScanParams& p, int64_t b, int64_t d0) {
  RowSet r;
  r.b = b;
  r.d0 = d0;
  const int64_t per_dir = p.dim / p.dirs, per_group = p.dim / p.groups;
  r.k = int(d0 / per_dir);
  r.dl0 = d0 - r.k * per_dir;
  r.gl = d0 / per_group - r.k * (p.groups / p.dirs);
  r.rev = p.reverse[r.k];
  return r;
}
template <typename T>
__device__ __forceinline__ T* operand_row(const ScanOperand& o, const RowSet& rs, int64_t row, int64_t grp) {
  return static_cast<T*>(o.ptr[rs.k]) + rs.b * o.batch[rs.k] + row * o.row[rs.k] + grp * o.group[rs.k];
}

// ---- register <-> global for one thread's kItems consecutive sequence positions --------------------------------------
// 16 bytes <-> floats. (Unpacking into constant-indexed float arrays keeps everything in registers; indexing a
// reinterpreted uint4 array with a runtime-reversed index would put it in local memory.)
template <typename T> struct Pack16;
template <> struct Pack16<float> {
  static constexpr int kN = 4;
  static __device__ __forceinline__ void unpack(const uint4& q, float* e) {
    e[0] = __uint_as_float(q.x); e[1] = __uint_as_float(q.y); e[2] = __uint_as_float(q.z); e[3] = __uint_as_float(q.w);
  }
  static __device__ __forceinline__ uint4 pack(const float* e) {
    return make_uint4(__float_as_uint(e[0]), __float_as_uint(e[1]), __float_as_uint(e[2]), __float_as_uint(e[3]));
  }
};
template <typename H, typename H2>
struct Pack16Half {
  static constexpr int kN = 8;
  static __device__ __forceinline__ float2 to2(unsigned w) {
    H2 h = *reinterpret_cast<const H2*>(&w);
    return make_float2(to_op(h.x), to_op(h.y));
  }
  static __device__ __forceinline__ unsigned from2(float a, float b) {
    H2 h;
    h.x = from_op<H>(a);
    h.y = from_op<H>(b);
    return *reinterpret_cast<const unsigned*>(&h);
  }
  static __device__ __forceinline__ void unpack(const uint4& q, float* e) {
    float2 f;
    f = to2(q.x); e[0] = f.x; e[1] = f.y;
    f = to2(q.y); e[2] = f.x; e[3] = f.y;
    f = to2(q.z); e[4] = f.x; e[5] = f.y;
    f = to2(q.w); e[6] = f.x; e[7] = f.y;
  }
  static __device__ __forceinline__ uint4 pack(const float* e) {
    return make_uint4(from2(e[0], e[1]), from2(e[2], e[3]), from2(e[4], e[5]), from2(e[6], e[7]));
  }
};
template <> struct Pack16<__half> : Pack16Half<__half, __half2> {};
template <> struct Pack16<__nv_bfloat16> : Pack16Half<__nv_bfloat16, __nv_bfloat162> {};

template <typename T, int kItems>
struct ItemVec {
  static constexpr int kBytes = kItems * int(sizeof(T));
  static constexpr bool kVec = kBytes % 16 == 0;      // the segment is whole 16-byte vectors
  static constexpr int kVecElems = 16 / int(sizeof(T));
  static constexpr int kLoads = kBytes / 16;
};

// Can rows of this operand use 16-byte accesses? (aligned row start; L a multiple of the vector width so reversed
// segments stay aligned too.)
template <typename T, int kItems>
__device__ __forceinline__ bool vec_ok(const void* row, int L) {
  return ItemVec<T, kItems>::kVec && (reinterpret_cast<uintptr_t>(row) % 16 == 0) &&
         (L % ItemVec<T, kItems>::kVecElems == 0);
}

// kItems values from 16-byte aligned src (memory order) into v (sequence order: reversed when rev).
template <typename T, int kItems>
__device__ __forceinline__ void load_vec16(const T* src, bool rev, float (&v)[kItems]) {
  float f[kItems];
#pragma unroll
  for (int j = 0; j < ItemVec<T, kItems>::kLoads; ++j)
    Pack16<T>::unpack(reinterpret_cast<const uint4*>(src)[j], f + j * Pack16<T>::kN);
#pragma unroll
  for (int i = 0; i < kItems; ++i) v[i] = rev ? f[kItems - 1 - i] : f[i];
}

// v[i] = row[m(s0 + i)] (m = s or L-1-s), `fill` past L.
// Segments of 8 bytes (4 halves, 2 floats) that 16-byte vectors cannot take: one 8-byte access when the row is 8-byte
// aligned and L a multiple of the segment (then every segment is aligned, mirrored or not).
template <typename T, int kItems>
__device__ __forceinline__ bool vec8_ok(const void* row, int L) {
  return ItemVec<T, kItems>::kBytes == 8 && reinterpret_cast<uintptr_t>(row) % 8 == 0 && L % kItems == 0;
}
template <typename T, int kItems>
__device__ __forceinline__ void load_items(const T* row, int L, int s0, bool rev, bool vec, float (&v)[kItems],
                                           float fill) {
  if constexpr (ItemVec<T, kItems>::kVec) {
    if (vec && s0 + kItems <= L) {
      load_vec16<T, kItems>(rev ? row + (L - s0 - kItems) : row + s0, rev, v);
      return;
    }
  } else if constexpr (ItemVec<T, kItems>::kBytes == 8) {
    if (vec8_ok<T, kItems>(row, L) && s0 + kItems <= L) {
      const uint2 q = *reinterpret_cast<const uint2*>(rev ? row + (L - s0 - kItems) : row + s0);
      float f[kItems];
      if constexpr (sizeof(T) == 4) {
        f[0] = __uint_as_float(q.x);
        f[1] = __uint_as_float(q.y);
      } else {
        const float2 a = Pack16<T>::to2(q.x), b = Pack16<T>::to2(q.y);
        f[0] = a.x; f[1] = a.y; f[2] = b.x; f[3] = b.y;
      }
#pragma unroll
      for (int i = 0; i < kItems; ++i) v[i] = rev ? f[kItems - 1 - i] : f[i];
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int s = s0 + i;
    v[i] = s < L ? to_op(row[rev ? L - 1 - s : s]) : fill;
  }
}

// row[m(s0 + i)] = v[i] for positions < L.
template <typename T, int kItems>
__device__ __forceinline__ void store_items(T* row, int L, int s0, bool rev, bool vec, const float (&v)[kItems]) {
  if constexpr (ItemVec<T, kItems>::kVec) {
    if (vec && s0 + kItems <= L) {
      T* dst = rev ? row + (L - s0 - kItems) : row + s0;
      float f[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) f[i] = rev ? v[kItems - 1 - i] : v[i];
#pragma unroll
      for (int j = 0; j < ItemVec<T, kItems>::kLoads; ++j)
        reinterpret_cast<uint4*>(dst)[j] = Pack16<T>::pack(f + j * Pack16<T>::kN);
      return;
    }
  } else if constexpr (ItemVec<T, kItems>::kBytes == 8) {
    if (vec8_ok<T, kItems>(row, L) && s0 + kItems <= L) {
      float f[kItems];
#pragma unroll
      for (int i = 0; i < kItems; ++i) f[i] = rev ? v[kItems - 1 - i] : v[i];
      uint2 q;
      if constexpr (sizeof(T) == 4) {
        q = make_uint2(__float_as_uint(f[0]), __float_as_uint(f[1]));
      } else {
        q = make_uint2(Pack16<T>::from2(f[0], f[1]), Pack16<T>::from2(f[2], f[3]));
      }
      *reinterpret_cast<uint2*>(rev ? row + (L - s0 - kItems) : row + s0) = q;
      return;
    }
  }
#pragma unroll
  for (int i = 0; i < kItems; ++i) {
    const int s = s0 + i;
    if (s < L) row[rev ? L - 1 - s : s] = from_op<T>(v[i]);
  }
}

// ---- B/C staging in shared memory ------------------------------------------------------------------------------------
// One buffer holds a chunk of one state's row in MEMORY order relative to the chunk's memory base
// mb = c*kChunk (forward) or L - (c+1)*kChunk (reversed; may be negative for the ragged last chunk). Element j lives
// at (j / kItems) * kStride + j % kItems; kStride pads a segment by 16 bytes when that makes 8 consecutive segments
// start in distinct bank groups.
template <typename T, int kItems>
struct Staging {
  static constexpr int kSegBytes = kItems * int(sizeof(T));
  static constexpr int kPad = (kSegBytes % 32 == 0) ? 16 / int(sizeof(T)) : 0;
  static constexpr int kStride = kItems + kPad;
  static constexpr int kGran = 16 / int(sizeof(T));       // elements per 16-byte copy
  static constexpr bool kVec = kSegBytes % 16 == 0;
};

__device__ __forceinline__ void cp_async16_u32(unsigned smem, const void* gmem, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(valid ? 16 : 0));
}

// mbarriers (sm_80+ arrive/test, sm_90 try_wait) by shared-memory address: the warp-chain forward's B/C ring
// (selective_scan_fwd.cu).
__device__ __forceinline__ unsigned smem_u32(const void* p) { return unsigned(__cvta_generic_to_shared(p)); }
__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count) {
  asm volatile("mbarrier.init.shared.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned bar) {
  asm volatile("{\n .reg .b64 st;\n mbarrier.arrive.shared.b64 st, [%0];\n}\n" ::"r"(bar) : "memory");
}
// Arrives once all of this thread's earlier cp.async copies have landed (the count includes this arrival).
__device__ __forceinline__ void mbar_arrive_cp_async(unsigned bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity) {
  unsigned ok = 0;
  do {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("{\n .reg .pred q;\n mbarrier.try_wait.parity.shared.b64 q, [%1], %2;\n selp.u32 %0, 1, 0, q;\n}\n"
                 : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
#else
    asm volatile("{\n .reg .pred q;\n mbarrier.test_wait.parity.shared.b64 q, [%1], %2;\n selp.u32 %0, 1, 0, q;\n}\n"
                 : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
#endif
  } while (!ok);
}

// Stage memory [mb, mb + kChunk) of `row` (zeros outside [0, L)) into buf, kChunk = kThreads * kItems, copied by the
// block's kCopiers threads. vec: 16-byte cp.async (row 16-byte aligned and L % kGran == 0, so a granule is entirely
// inside or outside); else plain element copies.
template <typename T, int kThreads, int kItems, int kCopiers = kThreads>
__device__ __forceinline__ void stage_row(T* buf, const T* row, int mb, int L, bool vec) {
  using S = Staging<T, kItems>;
  constexpr int kChunk = kThreads * kItems;
  if constexpr (S::kVec) {
    if (vec) {
      for (int q = threadIdx.x; q < kChunk / S::kGran; q += kCopiers) {
        const int j = q * S::kGran, m = mb + j;
        bool valid = m >= 0 && m < L;
        cp_async16(buf + (j / kItems) * S::kStride + j % kItems, valid ? row + m : row, valid);
      }
      return;
    }
  }
  for (int j = threadIdx.x; j < kChunk; j += kCopiers) {
    const int m = mb + j;
    buf[(j / kItems) * S::kStride + j % kItems] = (m >= 0 && m < L) ? row[m] : from_op<T>(0.f);
  }
}

// Thread t's kItems values in SEQUENCE order: its own segment, or the mirrored one when the direction is reversed.
template <typename T, int kThreads, int kItems>
__device__ __forceinline__ void read_staged(const T* buf, int t, bool rev, float (&v)[kItems]) {
  using S = Staging<T, kItems>;
  const int seg = rev ? kThreads - 1 - t : t;
  const T* src = buf + seg * S::kStride;
  if constexpr (S::kVec) {
    load_vec16<T, kItems>(src, rev, v);
  } else {
#pragma unroll
    for (int i = 0; i < kItems; ++i) v[i] = to_op(src[rev ? kItems - 1 - i : i]);
  }
}

// Memory base of chunk c (see Staging).
__device__ __forceinline__ int chunk_mem_base(int c, int chunk, int L, bool rev) {
  return rev ? L - (c + 1) * chunk : c * chunk;
}

// ---- scans -----------------------------------------------------------------------------------------------------------
// Inclusive warp scan, left to right: lane j ends with (a_0..j, b_0..j) composed in order.
__device__ __forceinline__ void warp_scan_fwd(float& a, float& b, int lane) {
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    float pa = __shfl_up_sync(kFull, a, off), pb = __shfl_up_sync(kFull, b, off);
    if (lane >= off) {
      b = fmaf(a, pb, b);
      a *= pa;
    }
  }
}
// Inclusive warp scan, right to left: lane j ends with the composition of lanes 31..j (j applied last).
__device__ __forceinline__ void warp_scan_rev(float& a, float& b, int lane) {
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    float pa = __shfl_down_sync(kFull, a, off), pb = __shfl_down_sync(kFull, b, off);
    if (lane + off < 32) {
      b = fmaf(a, pb, b);
      a *= pa;
    }
  }
}

// ---- launch configuration --------------------------------------------------------------------------------------------
// (threads, items) by sequence length. The backward's chunk is the carry stride: the forward saves the state at every
// multiple of it, so any forward chunk works as long as its items per thread divide it. The backward holds ~7 values
// per item and channel (the forward 5), hence its 8 items per thread.
struct LaunchShape {
  int threads, items;
};
inline LaunchShape fwd_shape(int64_t L) {
  if (L <= 128) return {32, 4};
  if (L <= 256) return {32, 8};
  if (L <= 512) return {32, 16};
  if (L <= 1024) return {64, 16};
  return {128, 16};  // variants in selective_scan_fwd.cu
}
inline LaunchShape bwd_shape(int64_t L) {
  if (L <= 128) return {32, 4};
  if (L <= 256) return {32, 8};
  if (L <= 512) return {64, 8};
  return {128, 8};
}

// ---- per-chunk pieces of the forward kernels (block-scan, warp-chain, state-lane) ---------------------------------------
// Where this lane/thread saves its states: the carry slot ending at its last item, or null (L <= 2^30: 32-bit division).
__device__ __forceinline__ float* chunk_carry_out(const SelectiveScanParams& p, int64_t b, int64_t d, int s0, int items) {
  if (!p.carries) return nullptr;
  const int end = s0 + items, stride = int(p.carry_stride);
  if (end % stride != 0 || end / stride > p.n_carries) return nullptr;
  return p.carries + ((b * p.dim + d) * p.n_carries + end / stride - 1) * p.dstate;
}
// The chunk's outputs of channel row dl (inside direction rs.k): y (pre-gate, for the backward), the gate, out.
template <typename T, int kItems>
__device__ __forceinline__ void store_chunk_out(const SelectiveScanParams& p, const RowSet& rs, int64_t dl, int L, int s0,
                                                bool rev, float (&out)[kItems]) {
  if (p.z.ptr[rs.k] != nullptr) {
    if (p.y.ptr[rs.k] != nullptr) {
      float* yr = operand_row<float>(p.y, rs, dl, 0);
      store_items<float, kItems>(yr, L, s0, rev, vec_ok<float, kItems>(yr, L), out);
    }
    const T* zr = operand_row<T>(p.z, rs, dl, 0);
    float zv[kItems];
    load_items<T, kItems>(zr, L, s0, rev, vec_ok<T, kItems>(zr, L), zv, 0.f);
#pragma unroll
    for (int i = 0; i < kItems; ++i) out[i] *= zv[i] * sigmoid_f(zv[i]);
  }
  const bool out_f32 = p.out_dtype == DType::F32;
  char* orow = static_cast<char*>(p.out.ptr[rs.k]) +
               (rs.b * p.out.batch[rs.k] + dl * p.out.row[rs.k]) * (out_f32 ? 4 : int64_t(sizeof(T)));
  if (out_f32) {
    float* o = reinterpret_cast<float*>(orow);
    store_items<float, kItems>(o, L, s0, rev, vec_ok<float, kItems>(o, L), out);
  } else {
    T* o = reinterpret_cast<T*>(orow);
    store_items<T, kItems>(o, L, s0, rev, vec_ok<T, kItems>(o, L), out);
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

// The warp-chain backward (cuda/selective_scan_bwd_warp.cu): shared memory of the 12/6/4-warp block for N = dstate, and
// its launch (throws if that shared memory exceeds the limit). T: float, __half, __nv_bfloat16.
template <typename T>
size_t bwd_warp_smem_bytes(int warps, int64_t dstate);
template <typename T>
void launch_bwd_warp(int warps, const SelectiveScanParams& p, const Context& ctx);

// The state-lane forward (cuda/selective_scan_fwd_lane.cu), variant v in 0-2 (tune 8-10): whether it takes these
// parameters (N = 16, channels per group a multiple of its block's channels), and its launch (throws when it does not).
bool fwd_lane_fits(int v, const SelectiveScanParams& p);
template <typename T>
void launch_fwd_lane(int v, const SelectiveScanParams& p, const Context& ctx);

}  // namespace scan
}  // namespace cuda
}  // namespace stereort
