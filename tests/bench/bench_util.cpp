// tests/bench/bench_util.cpp — CUDA-event timing, copy-bandwidth ceiling, table printing.
#include "bench/bench_util.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/context.h"
#include "core/error.h"
#include "core/tensor.h"

namespace stereort {
namespace bench {

Timing time_cuda_ms(const std::function<void()>& f, int warmup, int iters) {
  Context& ctx = Context::get(Device::cuda(0));
  auto st = static_cast<cudaStream_t>(ctx.stream);
  for (int i = 0; i < warmup; ++i) f();
  STEREORT_CUDA_CHECK(cudaStreamSynchronize(st));
  cudaEvent_t a, b;
  STEREORT_CUDA_CHECK(cudaEventCreate(&a));
  STEREORT_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> ms;
  for (int i = 0; i < iters; ++i) {
    STEREORT_CUDA_CHECK(cudaEventRecord(a, st));
    f();
    STEREORT_CUDA_CHECK(cudaEventRecord(b, st));
    STEREORT_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    STEREORT_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  Timing r;
  r.iters = iters;
  std::vector<double> s = ms;
  std::sort(s.begin(), s.end());
  r.median_ms = s[s.size() / 2];
  r.min_ms = s.front();
  r.mean_ms = std::accumulate(s.begin(), s.end(), 0.0) / double(s.size());
  return r;
}

double copy_bandwidth_gbs() {
  static double gbs = [] {
    const int64_t n = int64_t(1) << 28;  // 1 GiB of bytes, read + write = 2 GiB
    Tensor a = Tensor::empty({n}, DType::U8, Device::cuda(0)), b = Tensor::empty({n}, DType::U8, Device::cuda(0));
    a.fill_(1);
    auto st = static_cast<cudaStream_t>(Context::get(Device::cuda(0)).stream);
    Timing t = time_cuda_ms([&] {
      STEREORT_CUDA_CHECK(cudaMemcpyAsync(b.data_ptr(), a.data_ptr(), size_t(n), cudaMemcpyDeviceToDevice, st));
    }, 3, 20);
    return 2.0 * double(n) / (t.median_ms * 1e-3) / 1e9;
  }();
  return gbs;
}

std::string gpu_name() {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return "no GPU";
  return p.name;
}

void print_header(const std::string& title) {
  fmt::print("\n== {} — {} (D2D copy {:.0f} GB/s) ==\n", title, gpu_name(), copy_bandwidth_gbs());
  fmt::print("{:<34} {:<30} {:>10} {:>16} {:>10} {:>8}  {}\n", "op", "shape", "median ms", "achieved", "floor ms",
             "x floor", "floor basis");
}

void print_row(const std::string& name, const std::string& shape, const Timing& t, const std::string& rate,
               double floor_ms, const std::string& floor_what) {
  if (floor_ms > 0)
    fmt::print("{:<34} {:<30} {:>10.4f} {:>16} {:>10.4f} {:>8.2f}  {}\n", name, shape, t.median_ms, rate, floor_ms,
               t.median_ms / floor_ms, floor_what);
  else
    fmt::print("{:<34} {:<30} {:>10.4f} {:>16} {:>10} {:>8}  {}\n", name, shape, t.median_ms, rate, "-", "-", floor_what);
  std::fflush(stdout);
}

}  // namespace bench
}  // namespace stereort
