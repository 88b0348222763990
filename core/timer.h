// core/timer.h — timing device work honestly: CUDA events on the device's stream (after the work is queued),
// a steady clock on the CPU. time_ms(device, f) runs f once and returns its duration in milliseconds.
#pragma once
#include <functional>

#include "core/shape.h"

namespace stereort {

double time_ms(Device device, const std::function<void()>& f);

struct TimingStats {
  double median_ms = 0, mean_ms = 0, min_ms = 0, p90_ms = 0;
  int iters = 0;
};
// `warmup` untimed runs, then `iters` timed runs; median/mean/min/p90.
TimingStats time_repeated(Device device, const std::function<void()>& f, int warmup, int iters);

}  // namespace stereort
