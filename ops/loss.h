// ops/loss.h — masked regression losses: smooth L1, L1, MSE (and the masked mean behind shape_ops' masked_mean).
//   Each returns a scalar of pred's dtype: the mean of l(pred - target) over the valid elements, valid = mask != 0
//   (an undefined mask = all valid; the mask broadcasts to pred's shape; any dtype), and 0 — not NaN — when no
//   element is valid. target must have pred's shape, dtype and device.
//     smooth_l1(d; beta) = 0.5 d^2 / beta  if |d| < beta,  |d| - 0.5 beta otherwise     (torch SmoothL1Loss, beta 1)
//                          beta == 0 is L1 (as PyTorch); beta must be >= 0. d/dd = d / beta inside, sign(d) outside.
//     l1(d)  = |d|          d/dd = sign(d), 0 at d == 0 (as PyTorch)
//     mse(d) = d^2          d/dd = 2 d
//   With a mask this equals PyTorch's F.<loss>(pred[mask], target[mask]) (reduction 'mean'), the form the stereo
//   training code uses (GwcNet/StereoMamba: mask = (gt < maxdisp) & (gt > 0)), except for the empty-mask case.
//   Backward: dpred = g * l'(d) * valid / max(count, 1); dtarget = -dpred.
// Precision: sums accumulate in fp32 (f64 for f64 inputs; double on the CPU), the count in int64; the CUDA reduction is
// a fixed two-pass tree (deterministic run to run). cuda/loss.cu.
#pragma once
#include <cmath>

#include "core/tensor.h"
#include "ops/unary_math.h"  // STEREORT_HDI

namespace stereort {

Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, const Tensor& mask = Tensor(), double beta = 1.0);
Tensor l1_loss(const Tensor& pred, const Tensor& target, const Tensor& mask = Tensor());
Tensor mse_loss(const Tensor& pred, const Tensor& target, const Tensor& mask = Tensor());

// ---- shared machinery (also used by masked_mean in ops/shape_ops.h) ------------------------------------------------
enum class LossKind : int {
  MaskedMean,  // l(x) = x, no target
  L1,
  Mse,
  SmoothL1,
};
// The per-element formulas, shared by the CPU loop and cuda/loss.cu (A = double or float). For MaskedMean d is x.
template <typename A>
STEREORT_HDI A loss_value(LossKind k, A d, A beta) {
  using std::fabs;
  switch (k) {
    case LossKind::MaskedMean:
      return d;
    case LossKind::L1:
      return fabs(d);
    case LossKind::Mse:
      return d * d;
    case LossKind::SmoothL1:
      return fabs(d) < beta ? A(0.5) * d * d / beta : fabs(d) - A(0.5) * beta;
  }
  return d;
}
template <typename A>
STEREORT_HDI A loss_grad(LossKind k, A d, A beta) {
  using std::fabs;
  A sign = d > A(0) ? A(1) : (d < A(0) ? A(-1) : A(0));
  switch (k) {
    case LossKind::MaskedMean:
      return A(1);
    case LossKind::L1:
      return sign;
    case LossKind::Mse:
      return A(2) * d;
    case LossKind::SmoothL1:
      return fabs(d) < beta ? d / beta : sign;
  }
  return A(1);
}

// Differentiable masked mean of l(pred - target); `op` names the caller in error messages. target undefined for
// MaskedMean.
Tensor masked_loss(const char* op, LossKind kind, const Tensor& pred, const Tensor& target, const Tensor& mask,
                   double beta);

namespace cuda {
// pred (and target) contiguous, same dtype (f64/f32/f16/bf16); mask undefined or contiguous at pred's shape with dtype
// U8/Bool, F32 or F64. value: scalar of pred's dtype; count: I64 scalar (number of valid elements).
void masked_loss_forward(const Tensor& value, const Tensor& count, LossKind kind, const Tensor& pred,
                         const Tensor& target, const Tensor& mask, double beta, const Context& ctx);
// dpred contiguous (pred's shape and dtype); g: scalar of pred's dtype (the output gradient).
void masked_loss_backward(const Tensor& dpred, LossKind kind, const Tensor& g, const Tensor& pred, const Tensor& target,
                          const Tensor& mask, const Tensor& count, double beta, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
