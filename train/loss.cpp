// train/loss.cpp — the multi-scale smooth-L1 and sequence L1 losses (definitions in train/loss.h).
#include "train/loss.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/loss.h"

namespace stereort {

Tensor disparity_loss_mask(const Tensor& gt, const Tensor& valid, double max_disp) {
  STEREORT_CHECK(gt.defined() && dtype_is_floating(gt.dtype()), "disparity_loss_mask: gt must be a floating tensor");
  STEREORT_CHECK(max_disp > 0, "disparity_loss_mask: max_disp must be > 0, got {}", max_disp);
  NoGradGuard ng;
  Tensor g = gt.detach().to(DType::F32);
  // (gt > 0) then * (max_disp - gt > 0); for floats max - gt > 0 exactly when gt < max, and NaN fails both tests.
  Tensor one = Tensor::ones({}, DType::F32, g.device());
  Tensor m = binary_raw(BinaryKind::MaskGreater, one, g);
  m = binary_raw(BinaryKind::MaskGreater, m, unary_raw(UnaryKind::RsubScalar, g, max_disp));
  if (valid.defined()) {
    STEREORT_CHECK(valid.shape() == gt.shape(), "disparity_loss_mask: valid {} and gt {} differ in shape",
                   valid.desc(), gt.desc());
    STEREORT_CHECK(valid.device() == gt.device(), "disparity_loss_mask: valid on {} but gt on {}",
                   valid.device().str(), gt.device().str());
    // Any non-zero valid value counts (bool, u8 or floating masks).
    Tensor v = valid.detach().to(DType::F32);
    m = binary_raw(BinaryKind::MaskGreater, m, binary_raw(BinaryKind::Mul, v, v));
  }
  return m;
}

std::vector<double> stereomamba_loss_weights() { return {0.5, 0.5, 0.7, 1.0}; }

static void check_preds(const char* op, const std::vector<Tensor>& preds, const Tensor& gt) {
  STEREORT_CHECK(!preds.empty(), "{}: no predictions", op);
  STEREORT_CHECK(gt.defined(), "{}: the batch has no ground-truth disparity (training needs it)", op);
  for (size_t i = 0; i < preds.size(); ++i)
    STEREORT_CHECK(preds[i].shape() == gt.shape(), "{}: prediction {} is {} but gt is {}; predictions must be (B,H,W) "
                   "at the ground truth's resolution", op, i, preds[i].desc(), gt.desc());
}

static MultiLoss weighted(const char* op, LossKind kind, const std::vector<Tensor>& preds, const Tensor& gt,
                          const Tensor& valid, double max_disp, const std::vector<double>& w) {
  check_preds(op, preds, gt);
  STEREORT_CHECK(w.size() == preds.size(), "{}: {} predictions but {} weights ({})", op, preds.size(), w.size(),
                 fmt::join(w, ", "));
  Tensor mask = disparity_loss_mask(gt, valid, max_disp);
  Tensor target = gt.detach().to(DType::F32);
  MultiLoss out;
  out.weights = w;
  for (size_t i = 0; i < preds.size(); ++i) {
    Tensor p = preds[i].to(DType::F32);  // differentiable cast; no-op for f32
    Tensor t = kind == LossKind::SmoothL1 ? smooth_l1_loss(p, target, mask, 1.0) : l1_loss(p, target, mask);
    out.terms.push_back(t);
    Tensor wt = mul(t, w[i]);
    out.total = out.total.defined() ? add(out.total, wt) : wt;
  }
  return out;
}

MultiLoss stereomamba_loss(const std::vector<Tensor>& preds, const Tensor& gt, const Tensor& valid, double max_disp,
                           const std::vector<double>& weights) {
  return weighted("stereomamba_loss", LossKind::SmoothL1, preds, gt, valid, max_disp, weights);
}

MultiLoss sequence_loss(const std::vector<Tensor>& preds, const Tensor& gt, const Tensor& valid, double max_disp,
                        double gamma) {
  STEREORT_CHECK(gamma > 0, "sequence_loss: gamma must be > 0, got {}", gamma);
  size_t n = preds.size();
  std::vector<double> w(n);
  for (size_t i = 0; i < n; ++i) w[i] = std::pow(gamma, double(n - 1 - i));
  return weighted("sequence_loss", LossKind::L1, preds, gt, valid, max_disp, w);
}

}  // namespace stereort
