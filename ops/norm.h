// ops/norm.h — normalisation layers, PyTorch definitions.
//   layer_norm(x, w, b, eps)           x (...,C), normalised over the last dim (channel-last tensors):
//     out = (x - mean) / sqrt(var + eps) * w + b,  var biased (divide by C).  w, b (C) optional.  eps default 1e-5
//     (torch.nn.LayerNorm; the ViT of SMoEStereo passes 1e-6).
//   rms_norm_gated(y, z, w, eps)       Mamba-2 gated RMSNorm, norm_before_gate=False, one group over the whole last dim:
//     g = y * silu(z);  out = g * rsqrt(mean(g²) + eps) * w          y, z (...,C), w (C).  eps default 1e-5.
//     Reference: state-spaces/mamba v2.2.4 mamba_ssm/ops/triton/layernorm_gated.py (rms_norm_ref, RMSNorm).
//   batch_norm(x, w, b, rm, rv, training, momentum, eps)   x (B,C,...) (any number of trailing dims, e.g. 2-D/3-D maps):
//     training: mean/var over (B,...) per channel, biased var to normalise; when rm/rv are defined they are updated in
//       place: rm = (1-momentum)·rm + momentum·mean,  rv = (1-momentum)·rv + momentum·var·n/(n-1)  (unbiased, n = B·S).
//       n == 1 is an error, as in PyTorch. eval: normalise with rm/rv (required). momentum 0.1, eps 1e-5 defaults.
//     w, b (C) optional. Reference: torch.nn.functional.batch_norm, torch.nn.BatchNorm2d/3d.
//   group_norm(x, G, w, b, eps)        x (B,C,...), C % G == 0: mean/var (biased) over (C/G channels × spatial) per
//     (batch, group); affine per channel. eps 1e-5. Reference: torch.nn.GroupNorm.
//   instance_norm(x, w, b, eps)        = group_norm with G = C: per (batch, channel) statistics over the spatial dims,
//     no running stats (torch.nn.InstanceNorm2d defaults: affine False, track_running_stats False). eps 1e-5.
// Statistics are always fp32 or better (double on the CPU); f16/bf16 inputs give outputs of their dtype.
// Parameters (w, b, running stats) have the input's dtype or f32 (an f32 parameter with a half input is the AMP
// layout). Backward: gradients for x and the affine parameters (running stats get none).
// CPU: plain loops with double accumulation. CUDA: cuda/norm.cu (row norms, a warp per row) and
// cuda/norm_channel.cu (per-channel / per-group Welford reductions split across blocks).
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor rms_norm_gated(const Tensor& y, const Tensor& z, const Tensor& weight, double eps = 1e-5);
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum = 0.1, double eps = 1e-5);
Tensor group_norm(const Tensor& x, int64_t groups, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);

namespace cuda {
// Row norms over contiguous (R,C) tensors. weight/bias: f32 (C) or undefined. mean/rstd: f32 (R), written when
// defined. Gradients: dx in x's dtype; dweight/dbias f32 (C); each undefined when not wanted.
void layer_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, double eps, const Context& ctx);
void layer_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                         const Context& ctx);
void rms_norm_gated_forward(const Tensor& out, const Tensor& rstd, const Tensor& y, const Tensor& z,
                            const Tensor& weight, double eps, const Context& ctx);
void rms_norm_gated_backward(const Tensor& dy, const Tensor& dz, const Tensor& dweight, const Tensor& dout,
                             const Tensor& y, const Tensor& z, const Tensor& rstd, const Tensor& weight,
                             const Context& ctx);

// ---- per-channel norms (cuda/norm_channel.cu); x is viewed as (B, C, S) contiguous, statistics f32 ---------------
// batch_norm: training: mean/var (biased, (C)) computed from x and written; eval: mean/var are inputs (running stats,
// f32). rstd = rsqrt(var + eps) is written (C); out = (x - mean)·rstd·w + b. w/b: f32 (C) or undefined.
void batch_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& var, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, bool training, double eps, int64_t B, int64_t C,
                        int64_t S, const Context& ctx);
// dx (x's dtype), dweight/dbias (f32 (C)), each undefined when not wanted. training: the statistics depend on x.
void batch_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight, bool training,
                         int64_t B, int64_t C, int64_t S, const Context& ctx);
// group_norm over G groups of C/G channels: mean/rstd (B·G) written (f32).
void group_norm_forward(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                        const Tensor& weight, const Tensor& bias, int64_t B, int64_t C, int64_t G, int64_t S,
                        double eps, const Context& ctx);
void group_norm_backward(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dout,
                         const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight, int64_t B,
                         int64_t C, int64_t G, int64_t S, const Context& ctx);
// Building blocks, also used by the conv bias (ops/conv.cpp):
// sum_dy[c] = Σ_{b,s} dy;  sum_dyx[c] = Σ_{b,s} dy·(x - mean[c]) (mean undefined: Σ dy·x). With sum_dyx undefined
// only Σ dy is computed (x and mean unused). f32 (C) outputs, accumulated in f32 per tile and in double across tiles.
void channel_grad_sums(const Tensor& sum_dy, const Tensor& sum_dyx, const Tensor& dy, const Tensor& x,
                       const Tensor& mean, int64_t B, int64_t C, int64_t S, const Context& ctx);
// out[r,s] = a[p]·u[r,s] + b[p]·v[r,s] + c[p] over rows r of length S, p = r mod P; a undefined = 1, v or b undefined
// = no v term, c undefined = 0. Coefficients f32; out/u/v share a dtype; out may alias u.
void channel_affine(const Tensor& out, const Tensor& u, const Tensor& a, const Tensor& v, const Tensor& b,
                    const Tensor& c, int64_t P, int64_t S, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
