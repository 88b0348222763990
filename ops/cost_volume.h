// ops/cost_volume.h — GwcNet cost volumes (left-referenced), forward + backward, CPU and CUDA.
//   cost_volume_gwc(left, right, max_disp, groups)   (B,C,H,W) x2 -> (B,G,D,H,W), D = max_disp, G = groups
//     V[b,g,d,y,x] = (1/Cg) * sum_{c in group g} L[b,c,y,x] * R[b,c,y,x-d]   for x >= d, else 0.
//     Cg = C/G channels per group, group g = channels [g*Cg, (g+1)*Cg) — a MEAN over the group, not a sum.
//     Planes d >= W are all zero (legal: the StereoMamba head test has W = 20 < D = 48).
//   cost_volume_concat(left, right, max_disp)        (B,C,H,W) x2 -> (B,2C,D,H,W)
//     V[b,c,d,y,x] = L[b,c,y,x] (c < C), R[b,c-C,y,x-d] (c >= C); both halves 0 where x < d.
//   Backward (gather form, no atomics): dL[c,y,x] = (1/Cg) sum_d dV[g(c),d,y,x] R[c,y,x-d]          (x >= d)
//                                       dR[c,y,x] = (1/Cg) sum_d dV[g(c),d,y,x+d] L[c,y,x+d]        (x+d < W)
//   Dtypes: f64/f32 on the CPU (f16/bf16 upcast to f32 and rounded back); f32/f16/bf16 on CUDA with fp32
//   accumulation. The volume has the input dtype unless out_dtype is given (F32 with half features).
// Reference: xy-guo/GwcNet models/submodule.py (groupwise_correlation, build_gwc_volume, build_concat_volume);
// StereoMamba uses the same functions (spec stereomamba.md §7, kernels.md §6).
// CPU: ref:: loops with double accumulation.  CUDA: cuda/cost_volume.cu.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor cost_volume_gwc(const Tensor& left, const Tensor& right, int64_t max_disp, int64_t groups);
Tensor cost_volume_gwc(const Tensor& left, const Tensor& right, int64_t max_disp, int64_t groups, DType out_dtype);
Tensor cost_volume_concat(const Tensor& left, const Tensor& right, int64_t max_disp);

namespace ref {
// Raw CPU kernels (no autograd); contiguous F32/F64 tensors, outputs allocated by the caller (every element written).
void cost_volume_gwc_forward(const Tensor& vol, const Tensor& left, const Tensor& right, int64_t groups);
void cost_volume_gwc_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol, const Tensor& left,
                              const Tensor& right, int64_t groups);
void cost_volume_concat_forward(const Tensor& vol, const Tensor& left, const Tensor& right);
void cost_volume_concat_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol);
}  // namespace ref

namespace cuda {
// Contiguous tensors on one device; vol (B,G,D,H,W) / (B,2C,D,H,W); every output element is written.
// gwc: left/right f32/f16/bf16, vol of the feature dtype or F32. Backward: dleft/dright of the feature dtype,
// dvol of the volume dtype.
void cost_volume_gwc_forward(const Tensor& vol, const Tensor& left, const Tensor& right, int64_t groups,
                             const Context& ctx);
void cost_volume_gwc_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol, const Tensor& left,
                              const Tensor& right, int64_t groups, const Context& ctx);
void cost_volume_concat_forward(const Tensor& vol, const Tensor& left, const Tensor& right, const Context& ctx);
void cost_volume_concat_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
