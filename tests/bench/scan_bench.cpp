// tests/bench/scan_bench.cpp — selective scan and fused SS2D scan at StereoMamba 1280x1024 shapes (both views, B = 2):
//   stage 0: K = 4, Di = 192, N = 16, L = 256 x 320;   stage 2: K = 4, Di = 768, N = 16, L = 64 x 80.
// For f32 and bf16 inputs (f32 output), forward and backward:
//   * "scan fwd/bwd vN": the selective-scan kernel alone on pre-routed (B, K*Di, L) inputs with G = K groups, for each
//     launch variant (SelectiveScanParams::tune, described in cuda/selective_scan_{fwd,bwd}.cu; the default is marked
//     *). Timer covers the one kernel.
//   * "ss2d_scan fwd/bwd": the fused op end to end (transposes for directions 1/3, scan, merge; allocations from the
//     caching allocator), the backward timed as y.backward() with the graph retained.
// Bytes counted (compulsory traffic): fwd reads u, delta (K*Di*L each), B, C (K*N*L each) and writes out (f32);
//   bwd reads u, delta, dout, B, C and writes du, ddelta (input dtype) and dB, dC (f32). The fused op's u is read from
//   one (Di, L) map per direction, so the same count applies.
// Floor = max(bytes / measured D2D copy bandwidth, exps / MUFU rate), one exp2 per state update (B*K*Di*L*N) in both
//   passes (the backward keeps the forward's decays in registers for the adjoint), MUFU rate = 16/clk/SM x SMs x clock
//   (kernels.md §10). Timings: CUDA events, 3 warm-up calls, median of 20.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "bench/bench_util.h"
#include "core/autograd.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/selective_scan.h"
#include "ops/ss2d.h"

using namespace stereort;
using namespace stereort::bench;

namespace {

double exp_rate_per_s() {
  int sms = 0, khz = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, 0);
  return 16.0 * sms * khz * 1e3;
}

struct Shape2d {
  const char* name;
  int64_t Di, H, W;
};

void fill_plain(ScanOperand& o, const Tensor& t, int64_t batch, int64_t row, int64_t group = 0) {
  o.ptr[0] = t.defined() ? t.data_ptr() : nullptr;
  o.batch[0] = batch;
  o.row[0] = row;
  o.group[0] = group;
}

void bench_shape(const Shape2d& s, DType dt) {
  const int64_t B = 2, K = 4, N = 16, Di = s.Di, L = s.H * s.W, D = K * Di;
  const Device g = Device::cuda(0);
  const Context& ctx = Context::get(g);
  const double es = double(dtype_size(dt)), bw = copy_bandwidth_gbs() * 1e9, er = exp_rate_per_s();
  const double updates = double(B) * D * L * N;
  const std::string shape = fmt::format("B{} K{} Di{} L{}x{} N{}", B, K, Di, s.H, s.W, N);
  const std::string tag = fmt::format("{} {}", s.name, dtype_name(dt));

  // Plain scan inputs, (B, K*Di, L) with G = K.
  Tensor u = randn({B, D, L}, dt, g, 1), delta = randn({B, D, L}, dt, g, 2, 0.0, 0.5);
  Tensor A = neg(rand_uniform({D, N}, DType::F32, g, 3, 0.5, 16.0));
  Tensor Bm = randn({B, K, N, L}, dt, g, 4), Cm = randn({B, K, N, L}, dt, g, 5);
  Tensor Dk = rand_uniform({D}, DType::F32, g, 6, 0.5, 1.5), bias = rand_uniform({D}, DType::F32, g, 7, -6.0, -1.0);
  SelectiveScanParams p;
  p.batch = B; p.dim = D; p.dstate = N; p.seqlen = L; p.groups = K; p.dirs = 1;
  p.in_dtype = dt; p.out_dtype = DType::F32; p.softplus = true;
  fill_plain(p.u, u, D * L, L);
  fill_plain(p.delta, delta, D * L, L);
  fill_plain(p.B, Bm, K * N * L, L, N * L);
  fill_plain(p.C, Cm, K * N * L, L, N * L);
  p.A = A.data<float>(); p.Dskip = Dk.data<float>(); p.delta_bias = bias.data<float>();
  Tensor out = Tensor::empty({B, D, L}, DType::F32, g);
  fill_plain(p.out, out, D * L, L);
  p.carry_stride = cuda::selective_scan_carry_stride(L);
  p.n_carries = (L + p.carry_stride - 1) / p.carry_stride;
  Tensor carries = Tensor::empty({B, D, p.n_carries, N}, DType::F32, g);
  p.carries = carries.data<float>();

  const double fwd_bytes = double(B) * D * L * (2 * es + 4) + 2.0 * B * K * N * L * es;
  const double fwd_floor = std::max(fwd_bytes / bw, updates / er) * 1e3;
  const std::string fwd_basis = fwd_bytes / bw > updates / er ? "HBM" : "exp";
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  const bool lane_wins = N == 16 && Di % 8 == 0 && B * D * N / 32 >= 16 * int64_t(sms);  // as dispatch_fwd
  const int fwd_default = lane_wins ? 10 : Di % 12 == 0 ? 5 : Di % 6 == 0 ? 6 : Di % 4 == 0 ? 7 : Di % 2 == 0 ? 2 : 1;
  for (int v = 1; v <= 10; ++v) {
    if (v >= 8 && (N != 16 || Di % 8 != 0)) continue;  // the state-lane kernel
    SelectiveScanParams q = p;
    q.tune = v;
    Timing t = time_cuda_ms([&] { cuda::selective_scan_fwd(q, ctx); }, 3, 20);
    print_row(fmt::format("scan fwd v{}{} {}", v, v == fwd_default ? "*" : "", tag), shape, t,
              fmt::format("{:.0f} GB/s", fwd_bytes / (t.median_ms * 1e-3) / 1e9), fwd_floor, fwd_basis);
  }
  // Backward (the forward above left valid carries).
  Tensor dout = randn({B, D, L}, DType::F32, g, 8);
  Tensor du = Tensor::empty({B, D, L}, dt, g), ddelta = Tensor::empty({B, D, L}, dt, g);
  Tensor dB = Tensor::zeros({B, K, N, L}, DType::F32, g), dC = Tensor::zeros({B, K, N, L}, DType::F32, g);
  Tensor dA = Tensor::empty({B, D, N}, DType::F32, g), dD = Tensor::empty({B, D}, DType::F32, g),
         dbias = Tensor::empty({B, D}, DType::F32, g);
  fill_plain(p.dout, dout, D * L, L);
  fill_plain(p.du, du, D * L, L);
  fill_plain(p.ddelta, ddelta, D * L, L);
  fill_plain(p.dB, dB, K * N * L, L, N * L);
  fill_plain(p.dC, dC, K * N * L, L, N * L);
  p.dA_part = dA.data<float>(); p.dD_part = dD.data<float>(); p.dbias_part = dbias.data<float>();
  const double bwd_bytes = double(B) * D * L * (4 * es + 4) + 2.0 * B * K * N * L * (es + 4);
  const double bwd_floor = std::max(bwd_bytes / bw, updates / er) * 1e3;
  const std::string bwd_basis = bwd_bytes / bw > updates / er ? "HBM" : "exp";
  const int bwd_default = L > 1024 && Di % 12 == 0 ? 4 : L > 1024 && Di % 6 == 0 ? 5 : L > 1024 && Di % 4 == 0 ? 6
                          : Di % 2 == 0 ? 2 : 1;  // as cuda/selective_scan_bwd.cu's dispatch (N 16 fits every variant)
  for (int v = 1; v <= 6; ++v) {
    if (v >= 4 && Di % (v == 4 ? 12 : v == 5 ? 6 : 4) != 0) continue;
    SelectiveScanParams q = p;
    q.tune = v;
    Timing t = time_cuda_ms([&] { cuda::selective_scan_bwd(q, ctx); }, 3, 20);  // dB/dC keep accumulating: timing only
    print_row(fmt::format("scan bwd v{}{} {}", v, v == bwd_default ? "*" : "", tag), shape, t,
              fmt::format("{:.0f} GB/s", bwd_bytes / (t.median_ms * 1e-3) / 1e9), bwd_floor, bwd_basis);
  }

  // Fused SS2D op end to end.
  Tensor x = randn({B, Di, s.H, s.W}, dt, g, 11), dl = randn({B, K, Di, L}, dt, g, 12, 0.0, 0.5);
  Tensor Bs = randn({B, K, N, L}, dt, g, 13), Cs = randn({B, K, N, L}, dt, g, 14);
  {
    NoGradGuard ng;
    Timing t = time_cuda_ms([&] { ss2d_scan(x, dl, A, Bs, Cs, Dk, bias); }, 3, 20);
    print_row(fmt::format("ss2d_scan fwd {}", tag), shape, t,
              fmt::format("{:.0f} GB/s", fwd_bytes / (t.median_ms * 1e-3) / 1e9), fwd_floor, fwd_basis);
  }
  std::vector<Tensor> leaves{x, dl, A, Bs, Cs, Dk, bias};
  for (Tensor& t : leaves) t.set_requires_grad(true);
  Tensor y = ss2d_scan(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], leaves[5], leaves[6]);
  Tensor gy = randn(y.shape(), y.dtype(), g, 15);
  Timing t = time_cuda_ms(
      [&] {
        for (Tensor& l : leaves) l.zero_grad();
        y.backward(gy, /*retain_graph=*/true);
      },
      3, 20);
  print_row(fmt::format("ss2d_scan bwd {}", tag), shape, t,
            fmt::format("{:.0f} GB/s", bwd_bytes / (t.median_ms * 1e-3) / 1e9), bwd_floor, bwd_basis);
}

}  // namespace

int main() {
  if (!cuda_available()) {
    fmt::print("scan_bench: skipped: no CUDA device\n");
    return 0;
  }
  print_header("selective scan / SS2D scan, StereoMamba 1280x1024");
  fmt::print("MUFU exp2 rate {:.2f} T/s (16/clk/SM)\n", exp_rate_per_s() / 1e12);
  const Shape2d shapes[] = {{"stage0", 192, 256, 320}, {"stage2", 768, 64, 80}};
  for (const Shape2d& s : shapes)
    for (DType dt : {DType::F32, DType::BF16}) bench_shape(s, dt);
  return 0;
}
