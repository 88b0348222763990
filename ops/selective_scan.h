// ops/selective_scan.h — the Mamba-1 selective scan (S6), forward + backward, CPU reference and CUDA.
//   selective_scan(args) -> out (B,D,L). Inputs (kernels.md §1.1; letters: B batch, D channels, L length, N state,
//   G groups of B/C):
//     u, delta        (B,D,L)        f32/f16/bf16 on CUDA (same dtype); f64/f32 (16-bit upcast) on the CPU
//     A               (D,N)          real, A = -exp(A_log) < 0 in our models
//     Bm, Cm          (B,G,N,L)      variable ("selective"); channel d uses group d / (D/G)
//                     (D,N)          or constant per channel
//     Dskip (D), z (B,D,L), delta_bias (D): optional (undefined Tensor = absent)
//   For every b, d, n, l with h_{-1} = 0:
//     dt_l  = delta_l + delta_bias;  dt_l = softplus(dt_l) if delta_softplus  (softplus(x) = x for x > 20)
//     h_l   = exp(dt_l * A[d,n]) * h_{l-1} + dt_l * B[g,n,l] * u_l
//     y_l   = sum_n C[g,n,l] * h_l + Dskip[d] * u_l;   out_l = y_l * silu(z_l) when z is given, else y_l.
//   Output dtype: f32 when out_fp32 (VMamba "oflex") or the inputs are f32, else the input dtype; f64 for f64 inputs.
//   Backward (§1.3, recompute, don't store): the adjoint g_l = C_l*dy_l + a_{l+1}*g_{l+1} run right to left;
//   gradients for u, delta, A, Bm, Cm, Dskip, z, delta_bias, each in its input's dtype.
// Upstream: state-spaces/mamba mamba_ssm/ops/selective_scan_interface.py (selective_scan_ref, selective_scan_fn),
//   csrc/selective_scan/selective_scan_{fwd,bwd}_kernel.cuh; VMamba kernels/selective_scan (oflex).
// CPU: ref::selective_scan (plain loops in the input dtype) and its adjoint. CUDA: cuda/selective_scan_fwd.cu,
//   cuda/selective_scan_bwd.cu (+ the warp-chain backward in selective_scan_bwd_warp.cu), shared device code in
//   cuda/selective_scan_common.cuh (design notes there).
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace stereort {

struct SelectiveScanArgs {          // Mamba-1 semantics (kernels.md §1.1)
  Tensor u, delta;                  // (B, D, L)  f32/f16/bf16 (same dtype)
  Tensor A;                         // (D, N) f32, real
  Tensor Bm, Cm;                    // (B, G, N, L) grouped/variable (channel d uses group d / (D/G)), or (D, N) constant
  Tensor Dskip;                     // (D) f32 or undefined
  Tensor z;                         // (B, D, L) or undefined: out = y * silu(z)
  Tensor delta_bias;                // (D) f32 or undefined (added before softplus)
  bool delta_softplus = false;
  bool out_fp32 = true;             // fp32 output for half inputs (VMamba "oflex"); else the input dtype
};

// -> (B, D, L); autograd for u, delta, A, Bm, Cm, Dskip, z, delta_bias.
Tensor selective_scan(const SelectiveScanArgs& a);

// Checks shapes/dtypes/devices; throws naming the argument, its shape and the fix. B and C may each be variable or
// constant; when both are variable they must have the same number of groups.
struct SelectiveScanDims {
  int64_t batch, dim, seqlen, dstate, groups;  // groups of the variable B/C (1 when both are constant)
  bool var_B, var_C;
};
SelectiveScanDims selective_scan_check(const SelectiveScanArgs& a, const char* op = "selective_scan");

namespace ref {
// The plain recurrence in the inputs' dtype (f64 or f32; f16/bf16 upcast to f32), no autograd.
Tensor selective_scan(const SelectiveScanArgs& a);
// Gradients of sum(out * dout) for the 8 inputs, in this order: u, delta, A, Bm, Cm, Dskip, z, delta_bias
// (undefined where the input is undefined). Same compute dtype as the forward.
std::vector<Tensor> selective_scan_backward(const SelectiveScanArgs& a, const Tensor& dout);
}  // namespace ref

// ---- CUDA launch description (plain C++: shared with cuda/selective_scan_*.cu and cuda/ss2d.cu) ---------------------
// One operand addressed per scan direction k (K = 1 for the plain scan, 4 for the fused SS2D scan):
//   element (b, row, pos) of direction k = ptr[k] + b*batch[k] + row*row[k] + grp*group[k] + m,
//   where m = pos (forward) or L-1-pos (reverse[k]); unit stride along L. `row` is the channel inside the direction
//   (u, delta, z, out and their gradients) or the state n (B, C, dB, dC); `grp` the group inside the direction.
struct ScanOperand {
  void* ptr[4] = {nullptr, nullptr, nullptr, nullptr};
  int64_t batch[4] = {0, 0, 0, 0};
  int64_t row[4] = {0, 0, 0, 0};
  int64_t group[4] = {0, 0, 0, 0};
};

struct SelectiveScanParams {
  int64_t batch = 0, dim = 0, dstate = 0, seqlen = 0;  // dim = all channels (K*Di for SS2D)
  int64_t groups = 1;                                  // G over all channels; channel d uses group d / (dim/G)
  int dirs = 1;                                        // K; channel d belongs to direction d / (dim/K); G % K == 0
  bool reverse[4] = {false, false, false, false};      // direction k scans its memory back to front
  DType in_dtype = DType::F32, out_dtype = DType::F32; // u/delta/B/C/z dtype; out (and dout) dtype
  bool softplus = false;
  // inputs
  ScanOperand u, delta, B, C, z;                       // z.ptr[0] == nullptr: no gate
  const float* A = nullptr;                            // (dim, N) contiguous
  const float* Dskip = nullptr;                        // (dim) or null
  const float* delta_bias = nullptr;                   // (dim) or null
  // forward outputs
  ScanOperand out;                                     // out_dtype
  ScanOperand y;                                       // f32 pre-gate y (written when z is present and y.ptr[0])
  float* carries = nullptr;                            // (batch, dim, n_carries, N): state after each carry_stride
  int64_t carry_stride = 0, n_carries = 0;             //   positions (slot j = h at position (j+1)*stride-1, clamped)
  // backward
  ScanOperand dout;                                    // out_dtype
  ScanOperand du, ddelta, dz;                          // in_dtype
  ScanOperand dB, dC;                                  // f32 accumulators (atomically added; zero them first)
  float* dA_part = nullptr;                            // (batch, dim, N) per-batch partials (written, not added)
  float* dD_part = nullptr;                            // (batch, dim)
  float* dbias_part = nullptr;                         // (batch, dim)
  int tune = 0;                                        // benchmark override of the launch configuration (0 = auto)
};

namespace cuda {
// The carry stride (= the backward chunk length) the forward must save for sequence length L.
int64_t selective_scan_carry_stride(int64_t seqlen);
// Forward: writes out (and y, carries). Backward: needs carries (and y when z); writes du, ddelta, dz, dA/dD/dbias
// partials and adds into dB/dC. Both run on ctx.stream.
void selective_scan_fwd(const SelectiveScanParams& p, const Context& ctx);
void selective_scan_bwd(const SelectiveScanParams& p, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
