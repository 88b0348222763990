// tests/bench/attention_bench.cpp — fused attention and the StereoMamba x4 trilinear upsampling vs their floors.
//   Attention: B=1 x 6,144 tokens x 12 heads and B=2 x 5,121 tokens x 12 heads (SMoEStereo ViT-B at 1280x1024),
//   d = 64, f16 / bf16 (tensor cores) and f32 (SIMT), forward and backward, timed on the launchers (the op layer adds
//   only an output allocation). FLOPs: forward 4 N^2 d H B (two matmuls); backward 10 N^2 d H B (FlashAttention-2's
//   convention, 5 matmuls incl. the recomputed S; ours runs 7 to stay deterministic). Floor = FLOPs at 800 TFLOP/s
//   dense f16/bf16 tensor-core rate, or 67 TFLOP/s fp32 non-tensor (H100 SXM spec; kernels.md §10), since the I/O
//   (q, k, v, o: 4 N d H B elements) is far below the HBM time. Extra rows: cuBLAS doing the two matmuls of the
//   materialised form (S = q kᵀ, then P v; softmax not included), the SIMT kernel on bf16.
//   Trilinear x4: (1,1,48,256,320) -> (1,1,192,1024,1280), f32 and bf16, forward and backward; floor = bytes read +
//   written once at the measured device-to-device copy bandwidth.
//   Timer: CUDA events around each call, 3 warm-up calls, median of 20 (50 for the upsampling).
#include <fmt/format.h>

#include <cmath>

#include "bench/bench_util.h"
#include "core/context.h"
#include "ops/attention.h"
#include "ops/init.h"
#include "ops/matmul.h"
#include "ops/resample.h"

using namespace stereort;
using namespace stereort::bench;

namespace {

constexpr double kTensorCoreTflops = 800.0;  // measured dense bf16 GEMM on H100 (kernels.md §10)
constexpr double kFp32Tflops = 67.0;         // fp32 non-tensor peak (spec)

void bench_attention(int64_t B, int64_t H, int64_t N, int64_t d, DType dt, AttentionKernel kind) {
  Device g = Device::cuda(0);
  Context& ctx = Context::get(g);
  const double scale = 1.0 / std::sqrt(double(d));
  Tensor q = randn({B, H, N, d}, dt, g, 11), k = randn({B, H, N, d}, dt, g, 12), v = randn({B, H, N, d}, dt, g, 13);
  Tensor out = Tensor::empty({B, H, N, d}, dt, g), lse = Tensor::empty({B, H, N}, DType::F32, g);
  Tensor dout = randn({B, H, N, d}, dt, g, 14);
  Tensor dq = Tensor::empty(q.shape(), dt, g), dk = Tensor::empty(q.shape(), dt, g), dv = Tensor::empty(q.shape(), dt, g);
  const bool tc = dt != DType::F32 && kind != AttentionKernel::Simt;
  const double peak = tc ? kTensorCoreTflops : kFp32Tflops;
  const std::string kname = tc ? "tc" : "simt";
  const std::string shape = fmt::format("B{} H{} N{} d{}", B, H, N, d);
  const double fwd_flops = 4.0 * double(N) * double(N) * double(d) * double(H) * double(B);
  const double bwd_flops = 2.5 * fwd_flops;
  const int iters = dt == DType::F32 || !tc ? 5 : 20;

  Timing tf = time_cuda_ms([&] { cuda::attention_forward(out, lse, q, k, v, scale, kind, ctx); }, 2, iters);
  print_row(fmt::format("attention fwd {} {}", dtype_name(dt), kname), shape, tf,
            fmt::format("{:.1f} TFLOP/s", fwd_flops / (tf.median_ms * 1e-3) / 1e12), fwd_flops / (peak * 1e12) * 1e3,
            fmt::format("{:.0f} TFLOP/s", peak));
  Timing tb = time_cuda_ms([&] {
    cuda::attention_backward(dq, dk, dv, q, k, v, out, lse, dout, scale, kind, ctx);
  }, 2, iters);
  print_row(fmt::format("attention bwd {} {}", dtype_name(dt), kname), shape, tb,
            fmt::format("{:.1f} TFLOP/s", bwd_flops / (tb.median_ms * 1e-3) / 1e12), bwd_flops / (peak * 1e12) * 1e3,
            fmt::format("{:.0f} TFLOP/s, 2.5x fwd FLOPs", peak));

  // cuBLAS: the two matmuls of the materialised form (S written and read back; softmax not timed).
  if (kind == AttentionKernel::Simt && dt != DType::F32) return;
  Tensor q3 = q.view({B * H, N, d}), k3t = k.view({B * H, N, d}).transpose(1, 2), v3 = v.view({B * H, N, d});
  Tensor s = Tensor::empty({B * H, N, N}, dt, g), o3 = Tensor::empty({B * H, N, d}, dt, g);
  Timing tg = time_cuda_ms([&] {
    gemm_raw(s, q3, k3t, scale, 0.0);
    gemm_raw(o3, s, v3, 1.0, 0.0);
  }, 2, iters);
  print_row(fmt::format("cuBLAS qk^T + pv {}", dtype_name(dt)), shape, tg,
            fmt::format("{:.1f} TFLOP/s", fwd_flops / (tg.median_ms * 1e-3) / 1e12), fwd_flops / (peak * 1e12) * 1e3,
            fmt::format("{:.0f} TFLOP/s; S = {:.2f} GB", peak, double(s.nbytes()) / 1e9));
}

void bench_trilinear(DType dt) {
  Device g = Device::cuda(0);
  Context& ctx = Context::get(g);
  const double bw = copy_bandwidth_gbs() * 1e9;
  Tensor x = randn({1, 1, 48, 256, 320}, dt, g, 21);
  Tensor y = Tensor::empty({1, 1, 192, 1024, 1280}, dt, g);
  Tensor gy = randn(y.shape(), dt, g, 22), gx = Tensor::empty(x.shape(), dt, g);
  ResampleParams p = make_resample_params(ResampleMode::Linear, x.shape(), {192, 1024, 1280}, false);
  const double es = double(dtype_size(dt)), bytes = (double(x.numel()) + double(y.numel())) * es;
  const std::string shape = "(1,1,48,256,320)->(192,1024,1280)";
  Timing tf = time_cuda_ms([&] { cuda::resample_forward(y, x, p, ctx); }, 3, 50);
  print_row(fmt::format("trilinear x4 fwd {}", dtype_name(dt)), shape, tf,
            fmt::format("{:.0f} GB/s", bytes / (tf.median_ms * 1e-3) / 1e9), bytes / bw * 1e3, "HBM at copy bandwidth");
  Timing tb = time_cuda_ms([&] { cuda::resample_backward(gx, gy, p, ctx); }, 3, 50);
  print_row(fmt::format("trilinear x4 bwd {}", dtype_name(dt)), shape, tb,
            fmt::format("{:.0f} GB/s", bytes / (tb.median_ms * 1e-3) / 1e9), bytes / bw * 1e3,
            "HBM at copy bandwidth (3 gather passes)");
}

}  // namespace

int main() {
  if (!cuda_available()) {
    fmt::print("attention_bench: skipped: no CUDA device\n");
    return 0;
  }
  print_header("fused attention (FlashAttention-2 schedule) and trilinear x4");
  for (DType dt : {DType::BF16, DType::F16, DType::F32}) {
    bench_attention(1, 12, 6144, 64, dt, AttentionKernel::Auto);
    bench_attention(2, 12, 5121, 64, dt, AttentionKernel::Auto);
  }
  bench_attention(1, 12, 6144, 64, DType::BF16, AttentionKernel::Simt);
  bench_trilinear(DType::F32);
  bench_trilinear(DType::BF16);
  return 0;
}
