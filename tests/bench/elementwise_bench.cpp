// tests/bench/elementwise_bench.cpp — element-wise kernels: achieved GB/s and the ratio to a D2D copy.
//   Bytes counted = inputs read once + output written once. Floor = bytes / measured copy bandwidth.
//   Shapes: 64 M elements (f32 256 MB per tensor, far beyond L2), contiguous and broadcast (B,C,H,W)+(1,C,1,1).
#include <fmt/format.h>

#include "bench/bench_util.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/init.h"

using namespace stereort;
using namespace stereort::bench;

int main() {
  if (!cuda_available()) {
    fmt::print("elementwise_bench: skipped: no CUDA device\n");
    return 0;
  }
  print_header("element-wise kernels");
  double bw = copy_bandwidth_gbs();
  Device g = Device::cuda(0);
  for (DType dt : {DType::F32, DType::BF16}) {
    const int64_t n = int64_t(1) << 26;
    Tensor a = randn({n}, dt, g, 1), b = randn({n}, dt, g, 2);
    double es = double(dtype_size(dt));
    auto row = [&](const char* name, double bytes, const std::function<void()>& f, const std::string& shape) {
      Timing t = time_cuda_ms(f, 5, 50);
      double gbs = bytes / (t.median_ms * 1e-3) / 1e9;
      print_row(fmt::format("{} {}", name, dtype_name(dt)), shape, t, fmt::format("{:.0f} GB/s ({:.0f}%)", gbs, 100 * gbs / bw),
                bytes / (bw * 1e9) * 1e3, "HBM at copy bandwidth");
    };
    std::string sh = fmt::format("({})", n);
    row("add", 3 * n * es, [&] { add(a, b); }, sh);
    row("mul", 3 * n * es, [&] { mul(a, b); }, sh);
    row("exp", 2 * n * es, [&] { exp(a); }, sh);
    row("mul_scalar", 2 * n * es, [&] { mul(a, 1.5); }, sh);
    Tensor x4 = randn({8, 64, 256, 512}, dt, g, 3), bias = randn({1, 64, 1, 1}, dt, g, 4);
    row("add broadcast", 2 * double(x4.numel()) * es, [&] { add(x4, bias); }, "(8,64,256,512)+(1,64,1,1)");
  }
  return 0;
}
