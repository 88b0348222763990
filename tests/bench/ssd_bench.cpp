// tests/bench/ssd_bench.cpp — Mamba-2 SSD (StereoMamba cross-attention) and causal conv1d on the GPU.
//   SSD: L 81,920 (1280x1024 / 4 squared), 16 heads x P 16, N 64, G 1, B 1; "x2" = both directed scans (two calls on
//   different inputs), as one StereoMamba V1 forward runs them. Timed: the raw launchers cuda::ssd_forward /
//   cuda::ssd_backward (no autograd), CUDA events after warm-up, median of 20.
//   Bytes = compulsory HBM traffic: forward reads x, dt, B, C and writes y; backward reads x, dt, B, C, dy and writes
//   dx, ddt, dB, dC (fp32). Scratch traffic of the kernels (segment and chunk states) is not counted: it is part of
//   the cost being measured against the floor.
//   Two rows per direction: "tc" = the default, whose walks run on tensor cores (3xTF32, cuda/ssd_walk_mma.cu), and
//   "cc" = every walk on CUDA cores (STEREORT_SSD_CUDA_CORES=1; the backward kernel's own products, cuda/ssd_bwd.cu,
//   use tensor cores in both rows where N allows). FLOPs floor of the cc rows: the state work no chunking
//   avoids, 2 MAC per (token, head, n, p) forward (state update + output) and 6 backward (state recompute, adjoint
//   update, dX̄, dB, dC, d log a), at the fp32 rate measured here as a strict-fp32 cuBLAS SGEMM. Floor of a cc row =
//   max(bytes / copy bandwidth, FLOPs / fp32 rate); of a tc row the HBM term alone (3xTF32 on tensor cores is not the
//   bound: the same FLOPs x 3 at ~400 TFLOP/s take ~0.1 ms). kernels.md §10's 0.07 ms counts bf16-sized I/O only.
//   Causal conv1d: (1, 81920, 384), K 4, SiLU — the V1 xBC convolution; floor = bytes / copy bandwidth.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "bench/bench_util.h"
#include "core/context.h"
#include "ops/conv1d_causal.h"
#include "ops/init.h"
#include "ops/matmul.h"
#include "ops/ssd.h"

using namespace stereort;
using namespace stereort::bench;

namespace {

// The fp32 CUDA-core rate, measured as a strict-fp32 (no TF32) cuBLAS SGEMM, 4096^3: what FMA-bound fp32 code
// can reach on this GPU. TFLOP/s.
double fp32_tflops() {
  static double v = [] {
    set_allow_tf32(false);
    const int64_t n = 4096;
    Tensor a = randn({n, n}, DType::F32, Device::cuda(0), 11), b = randn({n, n}, DType::F32, Device::cuda(0), 12);
    Tensor c = Tensor::empty({1, n, n}, DType::F32, Device::cuda(0));
    Timing t = time_cuda_ms([&] { gemm_raw(c, a.view({1, n, n}), b.view({1, n, n})); }, 3, 10);
    return 2.0 * double(n) * n * n / (t.median_ms * 1e-3) / 1e12;
  }();
  return v;
}

struct SsdCase {
  SsdArgs a;
  Tensor dy, dfinal;
};

SsdCase make_case(int64_t B, int64_t L, int64_t H, int64_t P, int64_t N, DType xt, uint64_t seed) {
  const Device g = Device::cuda(0);
  SsdCase c;
  c.a.x = randn({B, L, H, P}, xt, g, seed + 1);
  c.a.Bm = randn({B, L, 1, N}, xt, g, seed + 2, 0.0, 0.125);
  c.a.Cm = randn({B, L, 1, N}, xt, g, seed + 3, 0.0, 0.125);
  c.a.dt = rand_uniform({B, L, H}, DType::F32, g, seed + 4, 0.001, 0.1);
  c.a.A = rand_uniform({H}, DType::F32, g, seed + 5, -16.0, -1.0);
  c.a.Dskip = randn({H}, DType::F32, g, seed + 6);
  c.dy = randn({B, L, H, P}, xt, g, seed + 7);
  return c;
}

void bench_ssd(DType xt, int64_t chunk, bool cuda_cores) {
  if (cuda_cores) setenv("STEREORT_SSD_CUDA_CORES", "1", 1);
  else unsetenv("STEREORT_SSD_CUDA_CORES");
  const int64_t B = 1, L = 81920, H = 16, P = 16, N = 64;
  const Device g = Device::cuda(0);
  Context& ctx = Context::get(g);
  SsdCase cs[2] = {make_case(B, L, H, P, N, xt, 100), make_case(B, L, H, P, N, xt, 200)};
  SsdDims d{B, L, H, P, 1, N};
  cuda::SsdPlan plan = cuda::ssd_cuda_plan(d, chunk);
  Tensor y[2], seg[2];
  SsdGrads gr[2];
  for (int i = 0; i < 2; ++i) {
    y[i] = Tensor::empty({B, L, H, P}, xt, g);
    seg[i] = Tensor::empty({B, H, plan.nseg, N, P}, DType::F32, g);
    gr[i].dx = Tensor::empty({B, L, H, P}, xt, g);
    gr[i].ddt = Tensor::empty({B, L, H}, DType::F32, g);
    gr[i].dA = Tensor::empty({H}, DType::F32, g);
    gr[i].dBm = Tensor::empty({B, L, 1, N}, DType::F32, g);
    gr[i].dCm = Tensor::empty({B, L, 1, N}, DType::F32, g);
    gr[i].dDskip = Tensor::empty({H}, DType::F32, g);
  }
  auto fwd = [&] {
    for (int i = 0; i < 2; ++i) cuda::ssd_forward(cs[i].a, plan, y[i], seg[i], Tensor(), ctx);
  };
  auto bwd = [&] {
    for (int i = 0; i < 2; ++i) cuda::ssd_backward(cs[i].a, plan, cs[i].dy, Tensor(), seg[i], gr[i], ctx);
  };
  fwd();
  const double es = double(dtype_size(xt)), bw = copy_bandwidth_gbs() * 1e9, fl = fp32_tflops() * 1e12;
  const double tok_heads = 2.0 * B * L * H, nP = double(N) * P;
  const double fwd_bytes = 2.0 * B * L * (2 * H * P * es + 2 * N * es + H * 4);
  const double bwd_bytes = 2.0 * B * L * (3 * H * P * es + 2 * N * es + 2 * N * 4 + 2 * H * 4);
  const double fwd_flops = tok_heads * nP * 2 * 2, bwd_flops = tok_heads * nP * 6 * 2;
  std::string shape = fmt::format("x2 L {} H {} P {} N {} Q {}", L, H, P, N, plan.chunk);
  auto row = [&](const char* what, double bytes, double flops, const std::function<void()>& f) {
    Timing t = time_cuda_ms(f, 3, 20);
    double hbm = bytes / bw * 1e3, alu = flops / fl * 1e3, floor = cuda_cores ? std::max(hbm, alu) : hbm;
    print_row(fmt::format("ssd {} {} {}", what, dtype_name(xt), cuda_cores ? "cc" : "tc"), shape, t,
              fmt::format("{:.0f} GB/s {:.1f} TF", bytes / (t.median_ms * 1e-3) / 1e9, flops / (t.median_ms * 1e-3) / 1e12),
              floor, fmt::format("max(HBM {:.3f} ms = {:.0f} MB, fp32 {:.3f} ms = {:.1f} GFLOP)", hbm, bytes / 1e6,
                                 alu, flops / 1e9));
  };
  row("forward", fwd_bytes, fwd_flops, fwd);
  row("backward", bwd_bytes, bwd_flops, bwd);
}

void bench_conv(DType xt) {
  const int64_t B = 1, L = 81920, C = 384, K = 4;
  const Device g = Device::cuda(0);
  Context& ctx = Context::get(g);
  Tensor x = randn({B, L, C}, xt, g, 1), w = randn({C, K}, DType::F32, g, 2), b = randn({C}, DType::F32, g, 3);
  Tensor out = Tensor::empty({B, L, C}, xt, g), dout = randn({B, L, C}, xt, g, 4), dx = Tensor::empty({B, L, C}, xt, g);
  int64_t nblk = cuda::causal_conv1d_partials(B, L);
  Tensor dwp = Tensor::empty({nblk, C, K}, DType::F32, g), dbp = Tensor::empty({nblk, C}, DType::F32, g);
  const double es = double(dtype_size(xt)), n = double(B * L * C), bw = copy_bandwidth_gbs() * 1e9;
  std::string shape = fmt::format("({},{},{}) K {} silu", B, L, C, K);
  auto row = [&](const char* what, double bytes, const std::function<void()>& f) {
    Timing t = time_cuda_ms(f, 5, 50);
    print_row(fmt::format("causal_conv1d {} {}", what, dtype_name(xt)), shape, t,
              fmt::format("{:.0f} GB/s", bytes / (t.median_ms * 1e-3) / 1e9), bytes / bw * 1e3, "HBM at copy bandwidth");
  };
  row("forward", 2 * n * es, [&] { cuda::causal_conv1d_forward(out, x, w, b, true, ctx); });
  row("backward", 3 * n * es, [&] { cuda::causal_conv1d_backward(dx, dwp, dbp, dout, x, w, b, true, ctx); });
}

}  // namespace

int main() {
  if (!cuda_available()) {
    fmt::print("ssd_bench: skipped: no CUDA device\n");
    return 0;
  }
  print_header("Mamba-2 SSD (StereoMamba cross-attention) and causal conv1d");
  fmt::print("measured strict-fp32 SGEMM rate: {:.1f} TFLOP/s\n", fp32_tflops());
  for (bool cc : {false, true}) {
    bench_ssd(DType::F32, 32, cc);
    bench_ssd(DType::BF16, 32, cc);
  }
  bench_ssd(DType::F32, 16, false);
  unsetenv("STEREORT_SSD_CUDA_CORES");
  bench_conv(DType::F32);
  bench_conv(DType::BF16);
  return 0;
}
