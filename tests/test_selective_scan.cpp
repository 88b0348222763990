// tests/test_selective_scan.cpp — Mamba-1 selective scan: the CPU reference against an independent float64 loop,
// gradients against central finite differences, the golden tensors of the official oflex kernel, and the CUDA
// forward/backward against the float64 reference (f32/f16/bf16 inputs, G in {1,2,4}, constant B/C, ragged L).
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "core/check.h"
#include "core/context.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/reduce.h"
#include "ops/selective_scan.h"
#include "ops/shape_ops.h"
#include "io/safetensors.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {


// err(a, g) = max|a - g| / max|g| (the golden README's metric).
double golden_err(const Tensor& a, const Tensor& g) {
  std::vector<double> av = a.to_vector(), gv = g.to_vector();
  REQUIRE(av.size() == gv.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    num = std::max(num, std::fabs(av[i] - gv[i]));
    den = std::max(den, std::fabs(gv[i]));
  }
  return den > 0 ? num / den : num;
}

// ---- test cases ------------------------------------------------------------------------------------------------------
struct Case {
  int64_t B = 2, D = 4, L = 7, N = 3, G = 1;
  bool var_B = true, var_C = true, z = false, bias = false, softplus = false, Dskip = true;
};

// Random float64 CPU inputs with realistic ranges: decays exp(dt*A) in (0,1), dt in (0, ~0.6).
SelectiveScanArgs make_args(const Case& c) {
  SelectiveScanArgs a;
  a.u = randn_t({c.B, c.D, c.L});
  if (c.softplus) {
    a.delta = mul(randn_t({c.B, c.D, c.L}), 0.5);
    if (c.bias) a.delta_bias = rand_t({c.D}, DType::F64, -3.0, -1.0);
  } else {
    a.delta = rand_t({c.B, c.D, c.L}, DType::F64, 0.02, 0.5);
    if (c.bias) a.delta_bias = rand_t({c.D}, DType::F64, 0.0, 0.1);
  }
  a.delta_softplus = c.softplus;
  a.A = rand_t({c.D, c.N}, DType::F64, -3.0, -0.2);
  a.Bm = c.var_B ? randn_t({c.B, c.G, c.N, c.L}) : randn_t({c.D, c.N});
  a.Cm = c.var_C ? randn_t({c.B, c.G, c.N, c.L}) : randn_t({c.D, c.N});
  if (c.Dskip) a.Dskip = rand_t({c.D}, DType::F64, 0.5, 1.5);
  if (c.z) a.z = randn_t({c.B, c.D, c.L});
  return a;
}

std::string case_name(const Case& c) {
  return fmt::format("B{} D{} L{} N{} G{}{}{}{}{}{}{}", c.B, c.D, c.L, c.N, c.G, c.var_B ? "" : " constB",
                     c.var_C ? "" : " constC", c.z ? " z" : "", c.bias ? " bias" : "", c.softplus ? " softplus" : "",
                     c.Dskip ? " D" : "");
}

// Independent float64 loop: follows kernels.md §1.1 line by line with its own indexing.
Tensor loop_f64(const SelectiveScanArgs& a) {
  const int64_t Bn = a.u.size(0), Dn = a.u.size(1), L = a.u.size(2), N = a.A.size(1);
  std::vector<double> u = a.u.to_vector(), dl = a.delta.to_vector(), A = a.A.to_vector(), Bv = a.Bm.to_vector(),
                      Cv = a.Cm.to_vector();
  std::vector<double> Dv = a.Dskip.defined() ? a.Dskip.to_vector() : std::vector<double>();
  std::vector<double> zv = a.z.defined() ? a.z.to_vector() : std::vector<double>();
  std::vector<double> bv = a.delta_bias.defined() ? a.delta_bias.to_vector() : std::vector<double>();
  const bool vB = a.Bm.dim() == 4, vC = a.Cm.dim() == 4;
  const int64_t G = vB ? a.Bm.size(1) : (vC ? a.Cm.size(1) : 1);
  std::vector<double> out(size_t(Bn * Dn * L));
  for (int64_t b = 0; b < Bn; ++b)
    for (int64_t d = 0; d < Dn; ++d) {
      const int64_t g = d / (Dn / G);
      std::vector<double> h(size_t(N), 0.0);
      for (int64_t l = 0; l < L; ++l) {
        const size_t i = size_t((b * Dn + d) * L + l);
        double x = dl[i] + (bv.empty() ? 0.0 : bv[size_t(d)]);
        double dt = a.delta_softplus ? (x > 20 ? x : std::log(1.0 + std::exp(x))) : x;
        double y = 0;
        for (int64_t n = 0; n < N; ++n) {
          double bb = vB ? Bv[size_t(((b * G + g) * N + n) * L + l)] : Bv[size_t(d * N + n)];
          double cc = vC ? Cv[size_t(((b * G + g) * N + n) * L + l)] : Cv[size_t(d * N + n)];
          h[size_t(n)] = std::exp(dt * A[size_t(d * N + n)]) * h[size_t(n)] + dt * bb * u[i];
          y += cc * h[size_t(n)];
        }
        if (!Dv.empty()) y += Dv[size_t(d)] * u[i];
        if (!zv.empty()) y *= zv[i] / (1.0 + std::exp(-zv[i]));
        out[i] = y;
      }
    }
  return Tensor::from_vector(out, {Bn, Dn, L}, DType::F64);
}

std::vector<Tensor> arg_list(const SelectiveScanArgs& a) {
  return {a.u, a.delta, a.A, a.Bm, a.Cm, a.Dskip, a.z, a.delta_bias};
}
SelectiveScanArgs from_list(const SelectiveScanArgs& proto, const std::vector<Tensor>& x) {
  SelectiveScanArgs a = proto;
  a.u = x[0]; a.delta = x[1]; a.A = x[2]; a.Bm = x[3]; a.Cm = x[4]; a.Dskip = x[5]; a.z = x[6]; a.delta_bias = x[7];
  return a;
}

std::vector<Case> small_cases() {
  std::vector<Case> cs;
  for (int64_t G : {1, 2}) {
    Case c;
    c.G = G;
    cs.push_back(c);                                          // plain
    c.z = true; cs.push_back(c);                              // gate
    c.z = false; c.bias = true; cs.push_back(c);              // bias, no softplus
    c.softplus = true; cs.push_back(c);                       // bias + softplus
    c.Dskip = false; c.z = true; cs.push_back(c);             // everything but D
    c.bias = false; c.Dskip = true; cs.push_back(c);          // softplus without bias, z, D
  }
  Case c;
  c.var_B = false; cs.push_back(c);                           // constant B
  c.var_C = false; c.z = true; cs.push_back(c);               // constant B and C
  c.var_B = true; c.G = 2; c.softplus = true; c.bias = true; cs.push_back(c);  // constant C, grouped B
  return cs;
}

}  // namespace

TEST_CASE("selective_scan CPU reference matches an independent float64 loop") {
  std::vector<Case> cs = small_cases();
  for (int64_t G : {1, 2, 4}) {
    for (int64_t L : {1, 2, 37}) {
      Case c;
      c.D = 8; c.N = 5; c.G = G; c.L = L; c.z = true; c.bias = true; c.softplus = true;
      cs.push_back(c);
    }
  }
  for (const Case& c : cs) {
    SelectiveScanArgs a = make_args(c);
    Tensor want = loop_f64(a);
    Tensor got = ref::selective_scan(a);
    CHECK(got.dtype() == DType::F64);
    expect_close(got, want, kTolF64, "ref vs loop " + case_name(c));
    // The autograd entry point runs the same reference on the CPU.
    expect_close(selective_scan(a), want, kTolF64, "selective_scan vs loop " + case_name(c));
  }
}

TEST_CASE("selective_scan f32 and half inputs on the CPU compute in f32") {
  Case c;
  c.D = 6; c.G = 2; c.L = 29; c.z = true; c.bias = true; c.softplus = true;
  SelectiveScanArgs a = make_args(c);
  Tensor want = loop_f64(a);
  SelectiveScanArgs a32 = a;
  for (Tensor* t : {&a32.u, &a32.delta, &a32.Bm, &a32.Cm, &a32.z}) *t = t->to(DType::F32);
  Tensor got = ref::selective_scan(a32);
  CHECK(got.dtype() == DType::F32);
  expect_close(got, want, kTolF32, "f32 reference");
  SelectiveScanArgs a16 = a;
  for (Tensor* t : {&a16.u, &a16.delta, &a16.Bm, &a16.Cm, &a16.z}) *t = t->to(DType::BF16);
  CHECK(ref::selective_scan(a16).dtype() == DType::F32);
  a16.out_fp32 = false;
  CHECK(ref::selective_scan(a16).dtype() == DType::BF16);
}

TEST_CASE("selective_scan gradients match finite differences (float64)") {
  for (const Case& c : small_cases()) {
    SelectiveScanArgs proto = make_args(c);
    check_grad([&](const std::vector<Tensor>& x) { return selective_scan(from_list(proto, x)); }, arg_list(proto),
               "selective_scan " + case_name(c));
  }
}

TEST_CASE("selective_scan argument errors name the op, the argument and the shapes") {
  Case c;
  SelectiveScanArgs a = make_args(c);
  SelectiveScanArgs b = a;
  b.delta = randn_t({2, 4, 6});
  expect_error([&] { selective_scan(b); }, {"selective_scan", "delta", "(2,4,6)", "(2,4,7)"});
  b = a;
  b.A = randn_t({5, 3});
  expect_error([&] { selective_scan(b); }, {"selective_scan", "A", "(5,3)"});
  b = a;
  b.Bm = randn_t({2, 3, 3, 7});
  expect_error([&] { selective_scan(b); }, {"selective_scan", "Bm", "(2,3,3,7)", "G dividing D = 4"});
  b = a;
  b.Cm = randn_t({2, 2, 3, 7});
  b.Bm = randn_t({2, 1, 3, 7});
  expect_error([&] { selective_scan(b); }, {"selective_scan", "group counts"});
  b = a;
  b.Dskip = randn_t({3});
  expect_error([&] { selective_scan(b); }, {"selective_scan", "Dskip", "(3)"});
  b = a;
  b.z = randn_t({2, 4, 8});
  expect_error([&] { selective_scan(b); }, {"selective_scan", "z", "(2,4,8)"});
}

TEST_CASE("selective_scan reproduces the golden oflex forward and gradients") {
  std::string path = golden_file("selective_scan");
  if (path.empty()) return;
  SafeTensors gf = SafeTensors::open(path);
  std::vector<Device> devices{Device::cpu()};
  if (cuda_available()) devices.push_back(gpu());
  for (Device dev : devices) {
    DType dt = dev.is_cpu() ? DType::F64 : DType::F32;
    auto in = [&](const char* n) {
      Tensor t = gf.get(std::string("in.") + n).to(dt).to(dev);
      t.set_requires_grad(true);
      return t;
    };
    SelectiveScanArgs a;
    a.u = in("u"); a.delta = in("delta"); a.A = in("A"); a.Bm = in("B"); a.Cm = in("C"); a.Dskip = in("D");
    a.delta_bias = in("delta_bias");
    a.delta_softplus = true;
    Tensor out = selective_scan(a);
    INFO("device " << dev.str());
    double e = golden_err(out.cpu(), gf.get("out.y"));
    INFO("forward err " << e);
    CHECK(e <= 1e-4);
    out.backward(gf.get("gout.y").to(out.dtype()).to(dev));
    const std::pair<const char*, Tensor> grads[] = {{"u", a.u}, {"delta", a.delta}, {"A", a.A}, {"B", a.Bm},
                                                    {"C", a.Cm}, {"D", a.Dskip}, {"delta_bias", a.delta_bias}};
    for (const auto& [name, t] : grads) {
      REQUIRE(t.grad().defined());
      double eg = golden_err(t.grad().cpu(), gf.get(std::string("grad.in.") + name));
      INFO("grad " << std::string(name) << " err " << eg);
      CHECK(eg <= 1e-3);
    }
  }
}

// ---- GPU -------------------------------------------------------------------------------------------------------------
namespace {

// Leave NaNs in the caching allocator's free blocks so that kernel outputs which are not written show up.
void poison_device_pool(int64_t max_elems) {
  std::vector<Tensor> keep;
  for (int64_t n = 256; n <= max_elems * 2; n *= 2) {
    Tensor t = Tensor::empty({n}, DType::F32, gpu());
    poison(t);
    keep.push_back(t);
  }
}

struct GpuTol {
  Tol out, du, ddelta, dA, dBC, dD, dz;
};
// mamba's per-output bounds for f32 (kernels.md §4), looser for 16-bit inputs whose outputs and gradients are rounded
// to 16 bits (bf16: 2^-9 relative per element).
GpuTol gpu_tol(DType dt) {
  if (dt == DType::F32)
    return {{6e-4, 2e-3}, {1.2e-3, 4e-3}, {3e-3, 2e-2}, {1e-3, 5e-3}, {6e-4, 2e-3}, {1e-3, 1e-3}, {1.2e-3, 4e-3}};
  if (dt == DType::F16)
    return {{3e-3, 5e-3}, {5e-3, 5e-3}, {5e-3, 2e-2}, {3e-3, 5e-3}, {5e-3, 5e-3}, {3e-3, 3e-3}, {5e-3, 5e-3}};
  return {{3e-2, 5e-2}, {3e-2, 5e-2}, {3e-2, 5e-2}, {1e-2, 1e-2}, {3e-2, 5e-2}, {1e-2, 1e-2}, {3e-2, 5e-2}};
}

// atol is taken relative to the tensor's scale (max |ref|, at least 1): gradients such as dA sum over B*L terms.
void close_scaled(const Tensor& got, const Tensor& ref, Tol t, const std::string& name) {
  double m = 1.0;
  for (double v : ref.to_vector()) m = std::max(m, std::fabs(v));
  expect_close(got.cpu().to(DType::F64), ref, t.rtol, t.atol * m, name);
}

void run_gpu_case(const Case& c, DType dt, bool out_fp32 = true) {
  SelectiveScanArgs a = make_args(c);
  a.out_fp32 = out_fp32;
  // Round the inputs to what the GPU sees: 16-bit for u/delta/B/C/z, f32 for the parameters.
  auto rounded = [&](Tensor& t, DType to) {
    if (t.defined()) t = t.to(to).to(DType::F64);
  };
  for (Tensor* t : {&a.u, &a.delta, &a.z}) rounded(*t, dt);
  rounded(a.Bm, a.Bm.dim() == 4 ? dt : DType::F32);
  rounded(a.Cm, a.Cm.dim() == 4 ? dt : DType::F32);
  for (Tensor* t : {&a.A, &a.Dskip, &a.delta_bias}) rounded(*t, DType::F32);
  std::string name = case_name(c) + " " + dtype_name(dt) + (out_fp32 ? "" : " out16");
  INFO(name);

  // float64 reference forward + gradients on the CPU.
  Tensor want = ref::selective_scan(a);
  Tensor gout = randn_t(want.shape());
  std::vector<Tensor> gref = ref::selective_scan_backward(a, gout);

  SelectiveScanArgs g = a;
  std::vector<Tensor*> ins{&g.u, &g.delta, &g.A, &g.Bm, &g.Cm, &g.Dskip, &g.z, &g.delta_bias};
  for (size_t i = 0; i < ins.size(); ++i) {
    Tensor& t = *ins[i];
    if (!t.defined()) continue;
    bool param = i == 2 || i == 5 || i == 7 || t.dim() == 2;
    t = t.to(param ? DType::F32 : dt).to(gpu());
    t.set_requires_grad(true);
  }
  poison_device_pool(c.B * c.D * c.L * 4);
  Tensor out = selective_scan(g);
  DType want_dt = dt == DType::F32 || out_fp32 ? DType::F32 : dt;
  CHECK(out.dtype() == want_dt);
  GpuTol tol = gpu_tol(dt);
  if (!out_fp32 && dt != DType::F32) tol.out = dt == DType::BF16 ? Tol{3e-2, 5e-2} : Tol{3e-3, 5e-3};
  close_scaled(out, want, tol.out, "out " + name);
  if (dt == DType::F32) {
    double e = rel_error(out.cpu().to(DType::F64), want);
    INFO("forward normwise rel err " << e);
    CHECK(e <= 1e-5);
  }
  poison_device_pool(c.B * c.D * c.L * 4);
  out.backward(gout.to(out.dtype()).to(gpu()));
  const char* names[] = {"du", "ddelta", "dA", "dB", "dC", "dD", "dz", "dbias"};
  Tol tols[] = {tol.du, tol.ddelta, tol.dA, tol.dBC, tol.dBC, tol.dD, tol.dz, tol.dD};
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i]->defined()) continue;
    REQUIRE(ins[i]->grad().defined());
    CHECK(ins[i]->grad().dtype() == ins[i]->dtype());
    close_scaled(ins[i]->grad(), gref[i], tols[i], std::string(names[i]) + " " + name);
  }
}

}  // namespace

TEST_CASE("selective_scan CUDA forward and backward match the float64 reference") {
  STEREORT_REQUIRE_GPU();
  // Groups, odd channels per group (one channel per block), gates, bias + softplus, ragged lengths.
  for (int64_t L : {1, 2, 37, 2047, 2048, 2049, 5000}) {
    for (int64_t G : {1, 2, 4}) {
      Case c;
      c.D = 8; c.N = 16; c.G = G; c.L = L; c.bias = true; c.softplus = true; c.z = (L % 2 == 1);
      run_gpu_case(c, DType::F32);
    }
  }
  Case odd;
  odd.D = 12; odd.G = 4; odd.N = 7; odd.L = 3001; odd.z = true; odd.bias = true;
  run_gpu_case(odd, DType::F32);  // 3 channels per group, no softplus, N not a power of two
  Case constant;
  constant.D = 6; constant.N = 4; constant.L = 1500; constant.var_B = false; constant.var_C = false;
  run_gpu_case(constant, DType::F32);
  constant.var_B = true; constant.G = 3; constant.softplus = true;
  run_gpu_case(constant, DType::F32);
  Case big;  // several blocks per group, long sequence
  big.B = 2; big.D = 64; big.G = 4; big.N = 16; big.L = 9000; big.bias = true; big.softplus = true;
  run_gpu_case(big, DType::F32);
}

TEST_CASE("selective_scan CUDA f16 and bf16 inputs") {
  STEREORT_REQUIRE_GPU();
  for (DType dt : {DType::F16, DType::BF16}) {
    for (int64_t L : {37, 2048, 4099}) {
      Case c;
      c.D = 8; c.N = 16; c.G = 2; c.L = L; c.bias = true; c.softplus = true; c.z = L != 2048;
      run_gpu_case(c, dt);
      if (L == 4099) run_gpu_case(c, dt, /*out_fp32=*/false);
    }
  }
}

TEST_CASE("selective_scan CUDA launch variants (tune) all match the float64 reference") {
  STEREORT_REQUIRE_GPU();
  // The benchmark compares these block shapes; whichever becomes the default must be correct. D/G = 24 admits every
  // variant (the warp-chain ones need 12, 6 or 4 channels per group); L 3001 is ragged, 4096 is not.
  // (L, reversed, input dtype): a reversed direction reads memory back to front, i.e. the reference runs on inputs
  // flipped along L. The bf16 cases (vector loads at L 4096, element loads at the ragged 3001) run the forward variants
  // that convert 16-bit inputs themselves (8-10).
  struct Run { int64_t L; bool rev; DType dt; };
  for (auto [L, rev, in_dt] : {Run{3001, false, DType::F32}, Run{4096, false, DType::F32}, Run{4096, true, DType::F32},
                                Run{4096, true, DType::BF16}, Run{3001, true, DType::BF16}}) {
    const bool bf16 = in_dt == DType::BF16;
    Case c;
    c.D = 48; c.N = 16; c.G = 2; c.L = L; c.bias = true; c.softplus = true; c.z = L == 3001;  // gated once
    SelectiveScanArgs a = make_args(c);
    for (Tensor* t : {&a.A, &a.Dskip, &a.delta_bias}) *t = t->to(DType::F32).to(DType::F64);
    for (Tensor* t : {&a.u, &a.delta, &a.Bm, &a.Cm, &a.z})
      if (t->defined()) *t = t->to(in_dt).to(DType::F64);
    auto seq = [&](const Tensor& t) { return rev && t.defined() ? flip(t, {t.dim() - 1}) : t; };  // memory <-> sequence
    SelectiveScanArgs as = a;
    for (Tensor* t : {&as.u, &as.delta, &as.Bm, &as.Cm, &as.z}) *t = seq(*t);
    Tensor want = seq(ref::selective_scan(as));
    Tensor gout = randn_t(want.shape());
    std::vector<Tensor> gref = ref::selective_scan_backward(as, seq(gout));
    for (int i : {0, 1, 3, 4, 6}) gref[size_t(i)] = seq(gref[size_t(i)]);  // du, ddelta, dB, dC, dz
    auto dev = [](const Tensor& t, DType d = DType::F32) { return t.to(d).to(gpu()).contiguous(); };
    Tensor u = dev(a.u, in_dt), dl = dev(a.delta, in_dt), A = dev(a.A), Bm = dev(a.Bm, in_dt), Cm = dev(a.Cm, in_dt),
           Dk = dev(a.Dskip),
           bias = dev(a.delta_bias), dout = dev(gout);
    Tensor z = c.z ? dev(a.z, in_dt) : Tensor(), dz = c.z ? Tensor::empty({c.B, c.D, L}, DType::F32, gpu()) : Tensor(),
           ypre = c.z ? Tensor::empty({c.B, c.D, L}, DType::F32, gpu()) : Tensor();
    const int64_t B = c.B, D = c.D, N = c.N, G = c.G;
    auto plain = [](ScanOperand& o, const Tensor& t, int64_t batch, int64_t row, int64_t group) {
      o.ptr[0] = t.data_ptr(); o.batch[0] = batch; o.row[0] = row; o.group[0] = group;
    };
    SelectiveScanParams p;
    p.batch = B; p.dim = D; p.dstate = N; p.seqlen = L; p.groups = G; p.softplus = true; p.reverse[0] = rev;
    p.in_dtype = in_dt;
    plain(p.u, u, D * L, L, 0);
    plain(p.delta, dl, D * L, L, 0);
    plain(p.B, Bm, G * N * L, L, N * L);
    plain(p.C, Cm, G * N * L, L, N * L);
    p.A = A.data<float>(); p.Dskip = Dk.data<float>(); p.delta_bias = bias.data<float>();
    if (c.z) {
      plain(p.z, z, D * L, L, 0);
      plain(p.y, ypre, D * L, L, 0);
      plain(p.dz, dz, D * L, L, 0);
    }
    p.carry_stride = L;
    STEREORT_CUDA_PATH(p.carry_stride = cuda::selective_scan_carry_stride(L));
    p.n_carries = (L + p.carry_stride - 1) / p.carry_stride;
    Tensor carries = Tensor::empty({B, D, p.n_carries, N}, DType::F32, gpu());
    p.carries = carries.data<float>();
    [[maybe_unused]] const Context& ctx = Context::get(gpu());
    GpuTol tol = gpu_tol(in_dt);
    for (int fv = bf16 ? 8 : 1; fv <= 10; ++fv) {
      INFO("L " << L << (rev ? " reversed" : "") << (bf16 ? " bf16" : "") << " forward variant " << fv);
      Tensor out = Tensor::empty({B, D, L}, DType::F32, gpu());
      poison(out);
      poison(carries);
      if (c.z) poison(ypre);
      SelectiveScanParams q = p;
      plain(q.out, out, D * L, L, 0);
      q.tune = fv;
      STEREORT_CUDA_PATH(cuda::selective_scan_fwd(q, ctx));
      close_scaled(out, want, tol.out, "out");
      for (int bv = 1; bv <= (bf16 ? 0 : 6); ++bv) {  // 4-6: the warp-chain backward
        INFO("backward variant " << bv);
        Tensor du = Tensor::empty({B, D, L}, DType::F32, gpu()), ddl = Tensor::empty({B, D, L}, DType::F32, gpu());
        Tensor dB = Tensor::zeros({B, G, N, L}, DType::F32, gpu()), dC = Tensor::zeros({B, G, N, L}, DType::F32, gpu());
        Tensor dA = Tensor::empty({B, D, N}, DType::F32, gpu()), dD = Tensor::empty({B, D}, DType::F32, gpu()),
               db = Tensor::empty({B, D}, DType::F32, gpu());
        for (const Tensor& t : {du, ddl, dA, dD, db}) poison(t);
        if (c.z) poison(dz);
        SelectiveScanParams r = q;
        plain(r.dout, dout, D * L, L, 0);
        plain(r.du, du, D * L, L, 0);
        plain(r.ddelta, ddl, D * L, L, 0);
        plain(r.dB, dB, G * N * L, L, N * L);
        plain(r.dC, dC, G * N * L, L, N * L);
        r.dA_part = dA.data<float>(); r.dD_part = dD.data<float>(); r.dbias_part = db.data<float>();
        r.tune = bv;
        STEREORT_CUDA_PATH(cuda::selective_scan_bwd(r, ctx));
        close_scaled(du, gref[0], tol.du, "du");
        close_scaled(ddl, gref[1], tol.ddelta, "ddelta");
        close_scaled(sum(dA, {0}), gref[2], tol.dA, "dA");
        close_scaled(dB, gref[3], tol.dBC, "dB");
        close_scaled(dC, gref[4], tol.dBC, "dC");
        close_scaled(sum(dD, {0}), gref[5], tol.dD, "dD");
        close_scaled(sum(db, {0}), gref[7], tol.dD, "dbias");
        if (c.z) close_scaled(dz, gref[6], tol.dz, "dz");
      }
    }
  }
}
