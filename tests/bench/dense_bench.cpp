// tests/bench/dense_bench.cpp — linear, convolutions and norms at StereoMamba 1280×1024 shapes on one GPU.
//   conv3d 32->32 k3 p1 on (1,32,48,256,320)        (GwcNet 3D head at 1/4 resolution, 48 disparity levels)
//   conv_transpose2d 768->384 k4 s4 from (1,768,32,40)
//   linear 96->384 over 81,920 tokens (256×320 at 1/4 resolution, stage-0 MLP fc1)
//   Modes: f32 (strict fp32), tf32 (set_allow_tf32), bf16 (fp32 accumulation).
//   Each convolution pass is timed twice: with the algorithm cudnnFind picked ("find"; floor column = a square cuBLAS
//   GEMM of the same FLOPs, time scaled to equal FLOPs) and with cudnnGet*_v7's first choice ("v7"; floor column =
//   the find time, so "x floor" is the speed-up Find buys). Linear: the op (cuBLASLt + bias epilogue) vs the plain
//   cuBLAS GEMM of the same shape, and that GEMM vs the equal-FLOP square GEMM. Norm rows: floor = bytes read +
//   written once at the measured copy bandwidth.
//   Timer: CUDA events around each call after warm-up (which includes cudnnFind), median of the runs; outputs are
//   preallocated for the convolution passes (the raw primitives), the ops allocate from the caching allocator.
#include <fmt/format.h>

#include <cmath>

#include "bench/bench_util.h"
#include "core/autograd.h"
#include "core/context.h"
#include "ops/conv.h"
#include "ops/init.h"
#include "ops/linear.h"
#include "ops/matmul.h"
#include "ops/norm.h"

using namespace stereort;
using namespace stereort::bench;

namespace {

const Device kGpu = Device::cuda(0);

std::string tflops(double macs, const Timing& t) { return fmt::format("{:.1f} TFLOP/s", 2 * macs / (t.median_ms * 1e9)); }

// Time of a square n×n×n GEMM in dtype dt, scaled to `macs` multiply-adds (n chosen near cbrt(macs), multiple of 64).
double equal_flop_gemm_ms(double macs, DType dt, int64_t* n_out) {
  int64_t n = std::max<int64_t>(64, int64_t(std::llround(std::cbrt(macs) / 64.0)) * 64);
  Tensor a = randn({1, n, n}, dt, kGpu, 11), b = randn({1, n, n}, dt, kGpu, 12), c = Tensor::empty({1, n, n}, dt, kGpu);
  Timing t = time_cuda_ms([&] { gemm_raw(c, a, b); }, 3, 20);
  *n_out = n;
  return t.median_ms * macs / (double(n) * double(n) * double(n));
}

void bench_conv(const char* op, const ConvGeometry& g, bool transposed, DType dt, const char* mode,
                const std::string& shape) {
  Tensor x = randn(g.x_shape(), dt, kGpu, 1), w = randn(g.w_shape(), dt, kGpu, 2, 0.0, 0.05);
  Tensor y = randn(g.y_shape(), dt, kGpu, 3), dx = Tensor::empty(g.x_shape(), dt, kGpu);
  Tensor dy = Tensor::empty(g.y_shape(), dt, kGpu), dw = Tensor::empty(g.w_shape(), dt, kGpu);
  double macs = g.macs();
  int64_t n = 0;
  double gemm_ms = equal_flop_gemm_ms(macs, dt, &n);
  std::string gemm_basis = fmt::format("cuBLAS {}^3 GEMM, equal FLOPs", n);
  // Passes of the conv primitives; for the transposed conv its forward is the adjoint conv's backward-data.
  struct Pass {
    const char* name;
    std::function<void()> f;
  };
  std::vector<Pass> passes;
  if (!transposed) {
    passes = {{"fwd", [&] { conv_forward_raw(y, x, w, g); }},
              {"bwd-data", [&] { conv_backward_data_raw(dx, y, w, g); }},
              {"bwd-weight", [&] { conv_backward_weight_raw(dw, y, x, g); }}};
  } else {  // transposed conv: input lives in y's shape, output in x's shape
    passes = {{"fwd", [&] { conv_backward_data_raw(dx, y, w, g); }},
              {"bwd-data", [&] { conv_forward_raw(dy, x, w, g); }},
              {"bwd-weight", [&] { conv_backward_weight_raw(dw, y, x, g); }}};
  }
  for (auto& p : passes) {
    cuda::set_conv_algo_policy(cuda::ConvAlgoPolicy::Find);
    Timing tf = time_cuda_ms(p.f, 3, 20);
    print_row(fmt::format("{} {} {} find", op, p.name, mode), shape, tf, tflops(macs, tf), gemm_ms, gemm_basis);
    cuda::set_conv_algo_policy(cuda::ConvAlgoPolicy::Heuristic);
    Timing th = time_cuda_ms(p.f, 3, 20);
    print_row(fmt::format("{} {} {} v7", op, p.name, mode), shape, th, tflops(macs, th), tf.median_ms,
              "best cuDNN algorithm (Find)");
  }
  cuda::set_conv_algo_policy(cuda::ConvAlgoPolicy::Find);
}

void bench_linear(DType dt, const char* mode) {
  const int64_t T = 81920, In = 96, Out = 384;
  double macs = double(T) * In * Out;
  Tensor x = randn({T, In}, dt, kGpu, 4), w = randn({Out, In}, dt, kGpu, 5, 0.0, 0.1), b = randn({Out}, dt, kGpu, 6);
  std::string shape = fmt::format("({},{})->({})", T, In, Out);
  Tensor c = Tensor::empty({1, T, Out}, dt, kGpu);
  Tensor x3 = x.view({1, T, In}), wt = make_view(w, {1, In, Out}, {0, 1, In}, 0);
  Timing tg = time_cuda_ms([&] { gemm_raw(c, x3, wt); }, 5, 50);
  Timing tl = time_cuda_ms([&] { linear(x, w, b); }, 5, 50);
  print_row(fmt::format("linear fwd {} (Lt bias epilogue)", mode), shape, tl, tflops(macs, tl), tg.median_ms,
            "cuBLAS GEMM same shape, no bias");
  int64_t n = 0;
  double sq = equal_flop_gemm_ms(macs, dt, &n);
  print_row(fmt::format("gemm x·Wᵀ {}", mode), shape, tg, tflops(macs, tg), sq,
            fmt::format("cuBLAS {}^3 GEMM, equal FLOPs", n));
  // Forward + backward (dx, dW, db) through autograd: 3 GEMMs of the same size.
  Tensor xg = x.detach().set_requires_grad(true), wg = w.detach().set_requires_grad(true),
         bg = b.detach().set_requires_grad(true);
  Tensor gout = randn({T, Out}, dt, kGpu, 7);
  Timing tb = time_cuda_ms([&] {
    xg.zero_grad();
    wg.zero_grad();
    bg.zero_grad();
    linear(xg, wg, bg).backward(gout);
  }, 3, 20);
  print_row(fmt::format("linear fwd+bwd {}", mode), shape, tb, tflops(3 * macs, tb), 3 * tg.median_ms,
            "3 cuBLAS GEMMs same shape");
}

void bench_norms(DType dt, const char* mode) {
  NoGradGuard ng;
  double bw = copy_bandwidth_gbs() * 1e9, es = double(dtype_size(dt));
  auto floor_ms = [&](double bytes) { return bytes / bw * 1e3; };
  Tensor x = randn({1, 256, 320, 96}, dt, kGpu, 8), w = randn({96}, DType::F32, kGpu, 9), b = randn({96}, DType::F32, kGpu, 10);
  Timing t = time_cuda_ms([&] { layer_norm(x, w, b); }, 5, 50);
  print_row(fmt::format("layer_norm fwd {}", mode), "(1,256,320,96)", t, "-", floor_ms(2 * x.numel() * es),
            "read x + write y at copy bandwidth");
  Tensor y = randn({81920, 256}, dt, kGpu, 13), z = randn({81920, 256}, dt, kGpu, 14), wr = randn({256}, DType::F32, kGpu, 15);
  t = time_cuda_ms([&] { rms_norm_gated(y, z, wr); }, 5, 50);
  print_row(fmt::format("rms_norm_gated fwd {}", mode), "(81920,256)", t, "-", floor_ms(3 * y.numel() * es),
            "read y, z + write out");
  Tensor v = randn({1, 32, 48, 256, 320}, dt, kGpu, 16), rm = Tensor::zeros({32}, DType::F32, kGpu),
         rv = Tensor::ones({32}, DType::F32, kGpu), bw32 = Tensor::ones({32}, DType::F32, kGpu);
  t = time_cuda_ms([&] { batch_norm(v, bw32, Tensor(), rm, rv, true); }, 3, 20);
  print_row(fmt::format("batch_norm train fwd {}", mode), "(1,32,48,256,320)", t, "-", floor_ms(3 * v.numel() * es),
            "read x twice (stats, normalise) + write y");
}

}  // namespace

int main() {
  if (!cuda_available()) {
    fmt::print("dense_bench: skipped: no CUDA device\n");
    return 0;
  }
  print_header("dense ops at StereoMamba 1280x1024 shapes");
  ConvGeometry c3;  // conv3d 32->32 k3 p1
  c3.nsp = 3;
  c3.batch = 1;
  c3.in_channels = c3.out_channels = 32;
  c3.in = c3.out = {48, 256, 320};
  c3.kernel = {3, 3, 3};
  c3.stride = {1, 1, 1};
  c3.padding = {1, 1, 1};
  c3.dilation = {1, 1, 1};
  ConvGeometry ct;  // conv_transpose2d 768->384 k4 s4: the adjoint conv maps (384,128,160) -> (768,32,40)
  ct.nsp = 2;
  ct.batch = 1;
  ct.in_channels = 384;
  ct.out_channels = 768;
  ct.in = {128, 160};
  ct.out = {32, 40};
  ct.kernel = {4, 4};
  ct.stride = {4, 4};
  ct.padding = {0, 0};
  ct.dilation = {1, 1};
  struct Mode {
    const char* name;
    DType dt;
    bool tf32;
  };
  for (Mode m : {Mode{"f32", DType::F32, false}, Mode{"tf32", DType::F32, true}, Mode{"bf16", DType::BF16, false}}) {
    set_allow_tf32(m.tf32);
    bench_linear(m.dt, m.name);
    {
      NoGradGuard ng;
      bench_conv("conv3d", c3, false, m.dt, m.name, "(1,32,48,256,320) k3 p1");
      bench_conv("conv_transpose2d", ct, true, m.dt, m.name, "(1,768,32,40) k4 s4 ->384");
    }
    if (!m.tf32) bench_norms(m.dt, m.name);
  }
  set_allow_tf32(false);
  return 0;
}
