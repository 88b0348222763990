// train/schedule.cpp — OneCycle (PyTorch's phase arithmetic), cosine with warm-up, constant.
#include "train/schedule.h"

#include <cmath>

#include "core/check.h"
#include "train/optimizer.h"

namespace stereort {

static double anneal(bool cosine, double start, double end, double pct) {
  if (cosine) return end + (start - end) / 2.0 * (std::cos(M_PI * pct) + 1.0);
  return (end - start) * pct + start;
}

// OneCycle phases as in OneCycleLR._schedule_phases: (end_step, start value, end value).
template <typename F>
static double one_cycle(const Schedule& s, int64_t step, F&& pick) {
  double initial = s.max_lr / s.div_factor, min_lr = initial / s.final_div_factor;
  double end1 = s.pct_start * double(s.total_steps) - 1.0, end2 = double(s.total_steps) - 1.0;
  double st = double(step);
  if (st <= end1) return pick(0, st / end1, initial, s.max_lr);
  return pick(1, (st - end1) / (end2 - end1), s.max_lr, min_lr);
}

double Schedule::lr(int64_t step) const {
  switch (kind) {
    case Constant: return max_lr;
    case CosineWarmup:
      if (step < warmup_steps) return max_lr * double(step + 1) / double(warmup_steps);
      {
        double pct = double(step - warmup_steps) / double(std::max<int64_t>(1, total_steps - warmup_steps));
        return anneal(true, max_lr, min_lr, std::min(pct, 1.0));
      }
    case OneCycle:
      return one_cycle(*this, step, [&](int, double pct, double a, double b) { return anneal(cosine, a, b, pct); });
  }
  return max_lr;
}

double Schedule::momentum(int64_t step) const {
  if (kind != OneCycle || !cycle_momentum) return -1;
  return one_cycle(*this, step, [&](int phase, double pct, double, double) {
    return phase == 0 ? anneal(cosine, max_momentum, base_momentum, pct) : anneal(cosine, base_momentum, max_momentum, pct);
  });
}

void Schedule::apply(Optimizer& opt, int64_t step) const {
  opt.set_lr(lr(step));
  double m = momentum(step);
  if (m >= 0) opt.set_beta1(m);
}

Schedule Schedule::parse(const std::string& name) {
  Schedule s;
  if (name == "onecycle") return s;
  if (name == "onecycle-linear") { s.cosine = false; return s; }
  if (name == "cosine") { s.kind = CosineWarmup; return s; }
  if (name == "constant") { s.kind = Constant; return s; }
  STEREORT_FAIL("unknown schedule '{}'; use onecycle, onecycle-linear, cosine or constant", name);
}

}  // namespace stereort
