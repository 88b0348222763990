// train/amp.h — mixed precision: the autocast policy and dynamic loss scaling.
//   Policy (PyTorch AMP's, per op): matmul/linear/conv run in the autocast dtype (f16 or bf16) — models/layers.h
//   casts inputs and weights on the fly, so parameters stay fp32 master weights and their gradients arrive in fp32
//   through the differentiable cast; reductions, norms, scans, softmax, losses compute in fp32.
//   LossScaler (fp16 only; bf16 needs none): loss * scale before backward; unscale_and_check() divides every gradient
//   by the scale and reports whether all are finite; update() halves the scale on inf/NaN (the step is skipped) and
//   doubles it after `growth_interval` clean steps (torch.cuda.amp.GradScaler defaults: 65536, 2, 0.5, 2000).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stereort {

// Thread-local autocast dtype for matmul-like ops; F32 = off.
DType autocast_dtype();
// t cast to the autocast dtype when autocast is on and t is floating; t itself otherwise (differentiable cast).
Tensor autocast(const Tensor& t);
// f16/bf16 -> f32; any other dtype unchanged (for the ops the policy keeps in fp32: decays, softmax, regression).
Tensor upcast_half(const Tensor& t);
class AutocastGuard {
 public:
  explicit AutocastGuard(DType dt);
  ~AutocastGuard();

 private:
  DType prev_;
};

class LossScaler {
 public:
  explicit LossScaler(bool enabled, double init_scale = 65536.0, double growth = 2.0, double backoff = 0.5,
                      int64_t growth_interval = 2000);
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  Tensor scale_loss(const Tensor& loss) const;
  bool unscale_and_check(const std::vector<Tensor>& params);  // true when every gradient is finite
  void update(bool found_inf);
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor>& sd);

 private:
  bool enabled_;
  double scale_, growth_, backoff_;
  int64_t interval_, good_steps_ = 0;
};

}  // namespace stereort
