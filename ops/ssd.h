// ops/ssd.h — Mamba-2 SSD (state-space duality): the scalar-decay selective SSM, chunked.
//   Per batch b and head h (group g = h / (H/G) supplies B and C), state S in R^{N x P}, S_{-1} = initial state:
//     log a_t = dt_t * A_h (<= 0),  S_t = a_t * S_{t-1} + dt_t * B_t x_t^T,  y_t = S_t^T C_t + D_h * x_t.
//   Equivalently Y = (L o C B^T) X + D X with L[t,s] = exp(A * sum_{r=s+1..t} dt_r) * dt_s for s <= t (kernels.md §4).
//   Shapes: x (B,L,H,P); dt (B,L,H) already softplus-ed; A (H); Bm, Cm (B,L,G,N); Dskip (H); initial_state and
//   final_state (B,H,P,N) (mamba's (batch, nheads, headdim, dstate) layout).
//   Dtypes: x, Bm, Cm share one of f32/f16/bf16 (f64 on the CPU); dt, A, Dskip, initial_state are f32 (f64 when x is
//   f64). y has x's dtype and is computed in fp32 (CUDA) or double (CPU); final_state is f32 (f64).
//   Chunked algorithm (kernels.md §3, mamba `modules/ssd_minimal.py::ssd_minimal_discrete`, `ops/triton/ssd_*.py`):
//   per Q-step chunk the intra-chunk quadratic form, chunk states, sequential state passing, off-diagonal output.
//   Segment sums exp(sum_{r=j+1..i} log a_r) are always formed as running sums of non-positive terms — never as the
//   difference of two cumulative sums — so log a = -1e30 (a reset) or long chunks cannot cancel into 0 or NaN.
//   Ragged L: the last chunk is padded with identity steps (log a = 0, no input) and cropped.
//   Backward (kernels.md §3, chunked like the forward): with the adjoint g_t = C_t dy_t^T + a_{t+1} g_{t+1},
//     dx = dt * g^T B + D dy;  ddt = <g^T B, x> + A dla;  dB_t = g_t (dt x_t);  dC_t = S_t dy_t;
//     dla_t = <g_t, a_t S_{t-1}>;  dA_h = sum_t dt_t dla_t;  dD_h = sum_t <dy_t, x_t>;  dS_{-1} = a_0 g_0.
//   The chunked adjoint forms dla as a reverse cumulative sum of row-minus-column sums of the pair shares
//   G[s,j] = exp(seg[s,j]) (C_s.B_j)(dy_s.dt_j x_j); dA is summed pair by pair instead, sum_{s>j} G[s,j] * (sum of dt
//   over (j,s]), because a telescoped dla keeps rounding residue that dt_t = 1e30 (a reset) would amplify to 1e14.
//   CPU: ssd_chunk_scan runs ref::ssd_chunked and ref::ssd_chunked_backward (double accumulation).
//   CUDA (cuda/ssd_fwd.cu, cuda/ssd_bwd.cu): fp32 math; the chunk length is min(chunk_size, 32) (a 32-token tile
//   in shared memory; every Q gives the same function up to rounding, and small Q costs fewer FLOPs on CUDA cores);
//   the forward computes each chunk as small register-tiled GEMMs (C S, M X, B^T W), the backward with one token per
//   lane; P in {8,16,32,64} with N * P <= 2048 (StereoMamba: P 16, N 64). The sequence is split
//   into segments of whole chunks that run in parallel; a light kernel passes states between segments. Gradients of
//   Bm/Cm are reduced over the heads of a group in shared memory (fp32 shared-memory atomics: results can differ run to
//   run in the last bits).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

class Context;

struct SsdArgs {
  Tensor x;              // (B,L,H,P)  f32/f16/bf16 (f64 CPU)
  Tensor dt;             // (B,L,H) >= 0, f32 (f64 with f64 x)
  Tensor A;              // (H) <= 0 (A = -exp(A_log))
  Tensor Bm, Cm;         // (B,L,G,N), same dtype as x; G divides H
  Tensor Dskip;          // (H) or undefined
  Tensor initial_state;  // (B,H,P,N) or undefined (zeros)
  int64_t chunk_size = 256;
  bool return_final_state = false;
};
struct SsdResult {
  Tensor y;            // (B,L,H,P) x's dtype
  Tensor final_state;  // (B,H,P,N) f32 (f64), when asked
};
// Differentiable in x, dt, A, Bm, Cm, Dskip and initial_state (those given).
SsdResult ssd_chunk_scan(const SsdArgs& a);

// Gradients of sum(y * dy) + sum(final_state * dfinal_state); each in its input's dtype; undefined where the input is.
struct SsdGrads {
  Tensor dx, ddt, dA, dBm, dCm, dDskip, dinitial_state;
};

namespace ref {
// The plain recurrence S_t = a_t S_{t-1} + dt_t B_t x_t^T in double (float64-capable; output in x's dtype).
SsdResult ssd_recurrent(const SsdArgs& a);
// The chunked algorithm of kernels.md §3 on the CPU in double: any chunk size >= 1, ragged L.
SsdResult ssd_chunked(const SsdArgs& a);
// Materialised Y = (L o C B^T) X + D X (+ the initial state's contribution exp(cs_t) C_t^T S_{-1}), O(L^2) per head.
Tensor ssd_attention(const SsdArgs& a);
// Recurrent adjoint (kernels.md §3 formulas, step by step). dy (B,L,H,P); dfinal_state (B,H,P,N) or undefined.
SsdGrads ssd_recurrent_backward(const SsdArgs& a, const Tensor& dy, const Tensor& dfinal_state);
// Chunked adjoint: per chunk the state entering from the left and the adjoint entering from the right, the intra-chunk
// quadratic terms, and d(log a) as a reverse cumulative sum of row-minus-column sums (the algorithm of the CUDA kernel).
SsdGrads ssd_chunked_backward(const SsdArgs& a, const Tensor& dy, const Tensor& dfinal_state);
}  // namespace ref

// Validates shapes/dtypes/devices (errors name "ssd_chunk_scan", the shapes and the fix). Returns (B,L,H,P,G,N).
struct SsdDims {
  int64_t B, L, H, P, G, N;
};
SsdDims ssd_check_args(const SsdArgs& a, const char* op);

namespace cuda {
// How the CUDA kernels split the work (chosen by ssd_cuda_plan, saved for the backward).
struct SsdPlan {
  int64_t chunk = 32;         // Q: tile length of the quadratic form, 1..32
  int64_t seg_chunks = 1;     // chunks per segment (segments of L run in parallel)
  int64_t nseg = 1;           // ceil(L / (chunk * seg_chunks))
  int heads_per_block = 1;    // heads of one group handled by one block (a power of two, <= 8)
};
SsdPlan ssd_cuda_plan(const SsdDims& d, int64_t chunk_size);
bool ssd_cuda_supported(const SsdDims& d);  // P in {8,16,32,64} and N * P <= 2048
// y (B,L,H,P) x dtype; seg_states (B,H,nseg,N,P) f32 receives the state entering each segment; final_state (B,H,P,N)
// f32 or undefined. x/Bm/Cm/dt: unit stride over their last dims, any batch and L strides.
void ssd_forward(const SsdArgs& a, const SsdPlan& plan, const Tensor& y, const Tensor& seg_states,
                 const Tensor& final_state, const Context& ctx);
// Gradients into preallocated f32/x-dtype tensors of SsdGrads (dx x dtype, ddt (B,L,H) f32, dA (H) f32,
// dBm/dCm (B,L,G,N) f32, dDskip (H) f32 or undefined, dinitial_state (B,H,P,N) f32 or undefined).
// dy contiguous (B,L,H,P) x dtype; dfinal_state (B,H,P,N) f32 or undefined.
void ssd_backward(const SsdArgs& a, const SsdPlan& plan, const Tensor& dy, const Tensor& dfinal_state,
                  const Tensor& seg_states, const SsdGrads& g, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
