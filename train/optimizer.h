// train/optimizer.h — SGD (momentum), Adam, AdamW over parameter groups; global-norm gradient clipping.
//   Update rules follow torch.optim exactly (the tests replay PyTorch's formulas by hand):
//     SGD:   g += wd p; b = mu b + (1 - dampening) g (b = g on the first step); p -= lr (nesterov ? g + mu b : b)
//     Adam:  g += wd p (L2, coupled);  AdamW: p *= 1 - lr wd (decoupled) — then for both
//            m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//   State is fp32 (master) whatever the parameter dtype; CUDA parameters are updated by one fused multi-tensor
//   kernel per group and step (cuda/optimizer.cu), CPU parameters by plain loops in double.
//   beta1 may change between steps (OneCycle cycles it). Parameters without a gradient are skipped.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace stereort {

struct ParamGroup {
  std::vector<Tensor> params;
  double lr = 1e-3;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999;  // Adam/AdamW; SGD uses beta1 as momentum
};

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  std::vector<ParamGroup>& groups() { return groups_; }
  void set_lr(double lr);
  void set_beta1(double b1);
  int64_t steps() const { return steps_; }
  // Optimizer state as named tensors ("state.<group>.<index>.exp_avg", "step") for checkpoints.
  virtual std::vector<std::pair<std::string, Tensor>> state_dict() const = 0;
  virtual void load_state_dict(const std::map<std::string, Tensor>& sd) = 0;

 protected:
  std::vector<ParamGroup> groups_;
  int64_t steps_ = 0;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<ParamGroup> groups, double momentum = 0.0, double dampening = 0.0, bool nesterov = false);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& sd) override;

 private:
  double dampening_;
  bool nesterov_;
  std::vector<std::vector<Tensor>> buf_;  // momentum buffers (fp32), per group and parameter
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<ParamGroup> groups, double eps = 1e-8, bool decoupled_weight_decay = false);
  void step() override;
  std::vector<std::pair<std::string, Tensor>> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& sd) override;

 private:
  double eps_;
  bool decoupled_;
  std::vector<std::vector<Tensor>> m_, v_;
};

// AdamW = Adam with decoupled weight decay (torch.optim.AdamW; default weight_decay 1e-2 there, ours from groups).
inline Adam AdamW(std::vector<ParamGroup> groups, double eps = 1e-8) { return Adam(std::move(groups), eps, true); }

// Scale all gradients so their global L2 norm is <= max_norm; returns the norm before clipping (inf/NaN propagate).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);
// Global L2 norm of the gradients (fp32/fp64 accumulation); NaN or inf when any gradient is non-finite.
double grad_norm(const std::vector<Tensor>& params);

namespace cuda {
struct AdamStep {
  float lr, beta1, beta2, eps, wd, bias1, bias2;  // bias1 = 1 - b1^t, bias2 = 1 - b2^t
  bool decoupled;
};
// One fused launch over all tensors: params (f32/f16/bf16), grads (same dtype), m, v (f32).
void adam_multi_tensor(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& m, const std::vector<Tensor>& v, const AdamStep& s,
                       const Context& ctx);
void sgd_multi_tensor(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                      const std::vector<Tensor>& buf, float lr, float momentum, float dampening, float wd,
                      bool nesterov, bool first, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
