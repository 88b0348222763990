// train/loss.h — training losses over a list of disparity predictions.
//   Mask (both losses): valid pixel = (valid != 0, when the batch carries a mask) AND 0 < gt < max_disp, as GwcNet /
//   StereoMamba `model_loss` (mask = (gt < maxdisp) & (gt > 0)) and SMoEStereo (gt > 0) & (gt < 256). A NaN gt is
//   never valid. The mask is computed on gt's device without autograd (no host round trip).
//
//   stereomamba_loss(preds, gt, valid, max_disp)        preds: 4 x (B,H,W), gt (B,H,W), valid (B,H,W) any dtype
//     total = sum_i w_i * SmoothL1_{beta=1}(pred_i[mask], gt[mask]),  w = [0.5, 0.5, 0.7, 1.0]  (stereomamba.md §8)
//     each term a mean over the masked pixels (0, not NaN, when no pixel is valid: ops/loss.h).
//   sequence_loss(preds, gt, valid, max_disp, gamma)      preds: n x (B,H,W) (RAFT-style iterative refinements)
//     total = sum_{i=0}^{n-1} gamma^(n-1-i) * L1(pred_i[mask], gt[mask])   (SMoEStereo, smoestereo.md §5: gamma 0.9,
//     max_disp 256). RAFT-Stereo itself rescales gamma to gamma^(15/(n-1)); that variant is not used here.
//   Both return the total and the unweighted per-prediction terms as device scalars (f32), so the trainer can read
//   everything it logs in one transfer. Half predictions (autocast) are upcast: losses compute in fp32.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace stereort {

struct MultiLoss {
  Tensor total;                // scalar f32, differentiable
  std::vector<Tensor> terms;   // unweighted per-prediction losses, scalars f32 (share total's graph)
  std::vector<double> weights; // w_i
};

// f32 mask of gt's shape on gt's device: 1 where (valid != 0) && 0 < gt < max_disp, else 0. valid may be undefined.
Tensor disparity_loss_mask(const Tensor& gt, const Tensor& valid, double max_disp);

std::vector<double> stereomamba_loss_weights();  // {0.5, 0.5, 0.7, 1.0}
MultiLoss stereomamba_loss(const std::vector<Tensor>& preds, const Tensor& gt, const Tensor& valid, double max_disp,
                           const std::vector<double>& weights = stereomamba_loss_weights());
MultiLoss sequence_loss(const std::vector<Tensor>& preds, const Tensor& gt, const Tensor& valid, double max_disp,
                        double gamma = 0.9);

}  // namespace stereort
