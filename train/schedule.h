// train/schedule.h — learning-rate (and momentum) schedules, stepped once per iteration.
//   OneCycle: torch.optim.lr_scheduler.OneCycleLR, two phases (three_phase False): warm-up for
//     pct_start * total - 1 steps from max_lr / div_factor to max_lr, then anneal to initial / final_div_factor at
//     step total - 1; cosine (default) or linear annealing; with cycle_momentum beta1 goes max_m -> base_m -> max_m
//     (0.95 -> 0.85 -> 0.95), starting at max_m (overriding the optimizer's 0.9, as PyTorch does).
//   Cosine with warm-up: linear 0 -> max over `warmup` steps, then cosine to min_lr at `total`.
//   Constant.
//   lr(step) is a pure function of the step, so resuming from a checkpoint needs only the step count.
#pragma once
#include <string>

namespace stereort {

class Optimizer;

struct Schedule {
  enum Kind { OneCycle, CosineWarmup, Constant } kind = OneCycle;
  double max_lr = 1e-3;
  int64_t total_steps = 1000;
  // OneCycle
  double pct_start = 0.3, div_factor = 25.0, final_div_factor = 1e4;
  bool cosine = true;  // false: linear annealing
  bool cycle_momentum = true;
  double base_momentum = 0.85, max_momentum = 0.95;
  // CosineWarmup
  int64_t warmup_steps = 0;
  double min_lr = 0.0;

  double lr(int64_t step) const;
  double momentum(int64_t step) const;  // beta1 at this step; < 0 when the schedule does not drive momentum
  void apply(Optimizer& opt, int64_t step) const;  // sets lr (and beta1) of every group
  static Schedule parse(const std::string& name);  // "onecycle", "onecycle-linear", "cosine", "constant"
};

}  // namespace stereort
