// core/timer.cpp — CUDA-event and steady-clock timing.
#include "core/timer.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <vector>

#include "core/context.h"
#include "core/error.h"

#if STEREORT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace stereort {

double time_ms(Device device, const std::function<void()>& f) {
#if STEREORT_WITH_CUDA
  if (device.is_cuda()) {
    auto st = static_cast<cudaStream_t>(Context::get(device).stream);
    cudaEvent_t a, b;
    STEREORT_CUDA_CHECK(cudaEventCreate(&a));
    STEREORT_CUDA_CHECK(cudaEventCreate(&b));
    STEREORT_CUDA_CHECK(cudaEventRecord(a, st));
    f();
    STEREORT_CUDA_CHECK(cudaEventRecord(b, st));
    STEREORT_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    STEREORT_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    cudaEventDestroy(a);
    cudaEventDestroy(b);
    return ms;
  }
#endif
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

TimingStats time_repeated(Device device, const std::function<void()>& f, int warmup, int iters) {
  for (int i = 0; i < warmup; ++i) f();
  Context::get(device).synchronize();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) t.push_back(time_ms(device, f));
  std::sort(t.begin(), t.end());
  TimingStats s;
  s.iters = iters;
  if (t.empty()) return s;
  s.median_ms = t[t.size() / 2];
  s.min_ms = t.front();
  s.p90_ms = t[std::min(t.size() - 1, size_t(0.9 * double(t.size())))];
  s.mean_ms = std::accumulate(t.begin(), t.end(), 0.0) / double(t.size());
  return s;
}

}  // namespace stereort
