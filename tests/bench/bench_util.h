// tests/bench/bench_util.h — timing helpers for GPU benchmark programs (not unit tests).
//   time_cuda_ms(f, warmup, iters): CUDA events around each call on the default context stream after `warmup`
//   calls; returns the median (and min/mean) in milliseconds.
//   copy_bandwidth_gbs(): a large device-to-device copy, counting bytes read + written — the HBM ceiling we quote.
//   print_row(): one aligned line per measurement: name, shape, time, achieved rate, floor, ratio, GPU.
#pragma once
#include <functional>
#include <string>

namespace stereort {
namespace bench {

struct Timing {
  double median_ms = 0, min_ms = 0, mean_ms = 0;
  int iters = 0;
};
Timing time_cuda_ms(const std::function<void()>& f, int warmup = 5, int iters = 50);
double copy_bandwidth_gbs();   // measured once per process, cached
std::string gpu_name();
void print_header(const std::string& title);
// floor_ms <= 0: no floor column.
void print_row(const std::string& name, const std::string& shape, const Timing& t, const std::string& rate,
               double floor_ms, const std::string& floor_what);

}  // namespace bench
}  // namespace stereort
