// train/amp.cpp — autocast state and the dynamic loss scaler.
#include "train/amp.h"

#include <cmath>

#include "core/autograd.h"
#include "ops/elementwise.h"
#include "train/optimizer.h"

namespace stereort {

static thread_local DType t_autocast = DType::F32;
DType autocast_dtype() { return t_autocast; }
Tensor autocast(const Tensor& t) {
  DType d = t_autocast;
  return (!t.defined() || d == DType::F32 || t.dtype() == d || !dtype_is_floating(t.dtype())) ? t : t.to(d);
}
Tensor upcast_half(const Tensor& t) { return t.defined() && dtype_is_half(t.dtype()) ? t.to(DType::F32) : t; }
AutocastGuard::AutocastGuard(DType dt) : prev_(t_autocast) { t_autocast = dt; }
AutocastGuard::~AutocastGuard() { t_autocast = prev_; }

LossScaler::LossScaler(bool enabled, double init, double growth, double backoff, int64_t interval)
    : enabled_(enabled), scale_(init), growth_(growth), backoff_(backoff), interval_(interval) {}

Tensor LossScaler::scale_loss(const Tensor& loss) const { return enabled_ ? mul(loss, scale_) : loss; }

bool LossScaler::unscale_and_check(const std::vector<Tensor>& params) {
  double n = grad_norm(params);  // one host read; NaN/inf if any gradient is non-finite
  if (!std::isfinite(n)) return false;
  if (enabled_) {
    NoGradGuard ng;
    for (const Tensor& p : params)
      if (p.grad().defined()) p.grad().copy_(mul(p.grad(), 1.0 / scale_));
  }
  return true;
}

void LossScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= backoff_;
    good_steps_ = 0;
  } else if (++good_steps_ >= interval_) {
    scale_ *= growth_;
    good_steps_ = 0;
  }
}

std::vector<std::pair<std::string, Tensor>> LossScaler::state_dict() const {
  return {{"scale", Tensor::scalar(scale_, DType::F64)}, {"good_steps", Tensor::scalar(double(good_steps_), DType::I64)}};
}

void LossScaler::load_state_dict(const std::map<std::string, Tensor>& sd) {
  auto a = sd.find("scale"), b = sd.find("good_steps");
  if (a != sd.end()) scale_ = a->second.item();
  if (b != sd.end()) good_steps_ = int64_t(b->second.item());
}

}  // namespace stereort
