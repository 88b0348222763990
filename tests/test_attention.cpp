// tests/test_attention.cpp — scaled_dot_product_attention: the CPU path (online, from the saved logsumexp) against
// attention_reference (materialised, composed of matmul/exp/sum/div) in float64, finite differences, the CUDA fused
// kernels (tensor-core and SIMT) against the CPU float64 path for odd lengths, B > 1, several heads and head dims,
// strided inputs, and the error messages.
#include <algorithm>
#include <cmath>
#include <functional>

#include "core/check.h"
#include "core/context.h"
#include "ops/attention.h"
#include "ops/elementwise.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

struct Grads {
  Tensor out, dq, dk, dv;
};

// Forward and input gradients of f for cotangent g (inputs cloned as leaves).
using Attn3 = std::function<Tensor(const Tensor&, const Tensor&, const Tensor&)>;
Grads run_with_grads(const Attn3& f, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g) {
  Tensor qg = q.detach().clone().set_requires_grad(true), kg = k.detach().clone().set_requires_grad(true),
         vg = v.detach().clone().set_requires_grad(true);
  Tensor out = f(qg, kg, vg);
  out.backward(g);
  return {out.detach(), qg.grad(), kg.grad(), vg.grad()};
}

double norm_of(const Tensor& t) {
  double s = 0;
  for (double x : t.to_vector()) s += x * x;
  return std::sqrt(s);
}
double max_abs_of(const Tensor& t) {
  double m = 0;
  for (double x : t.to_vector()) m = std::max(m, std::fabs(x));
  return m;
}

// ||got - ref|| / max(||ref||, floor_norm) <= tol, and no element off by more than 10 tol max(max|ref|, floor_max)
// (catches a few wild elements that a norm would average away). Elementwise relative bounds are meaningless here:
// attention gradients have many entries near zero from cancellation, and with one key dq and dk are exactly zero
// (the floors, taken from the largest of the three gradients, then set the scale).
void expect_attn_close(const Tensor& got, const Tensor& ref, double tol, const std::string& name,
                       double floor_norm = 0, double floor_max = 0) {
  std::vector<double> g = got.to_vector(), f = ref.to_vector();
  REQUIRE(g.size() == f.size());
  double e2 = 0, emax = 0;
  int64_t worst = -1;
  bool finite = true;
  for (size_t i = 0; i < g.size(); ++i) {
    const double d = std::fabs(g[i] - f[i]);
    if (!std::isfinite(g[i])) finite = false;
    e2 += d * d;
    if (d > emax) {
      emax = d;
      worst = int64_t(i);
    }
  }
  const double den = std::max(norm_of(ref), floor_norm), mx = std::max(max_abs_of(ref), floor_max);
  const double rel = den > 0 ? std::sqrt(e2) / den : std::sqrt(e2);
  INFO(name << ": norm rel err " << rel << " (bound " << tol << "), max abs err " << emax << " at [" << worst
            << "] (bound " << 10 * tol * mx << ")");
  CHECK(finite);
  CHECK(rel <= tol);
  CHECK(emax <= 10 * tol * mx);
}

Attn3 sdpa(double s) {
  return [s](const Tensor& q, const Tensor& k, const Tensor& v) { return scaled_dot_product_attention(q, k, v, s); };
}
Attn3 aref(double s) {
  return [s](const Tensor& q, const Tensor& k, const Tensor& v) { return attention_reference(q, k, v, s); };
}

}  // namespace

TEST_CASE("attention: hand-computed values") {
  // One query, two keys with scores 0 and log 3 (scale 1): weights 1/4, 3/4.
  Tensor q = Tensor::from_vector({1, 0}, {1, 1, 1, 2}, DType::F64);
  Tensor k = Tensor::from_vector({0, 5, std::log(3.0), 7}, {1, 1, 2, 2}, DType::F64);
  Tensor v = Tensor::from_vector({4, 8, 0, -4}, {1, 1, 2, 2}, DType::F64);
  expect_close(scaled_dot_product_attention(q, k, v, 1.0), Tensor::from_vector({1, -1}, {1, 1, 1, 2}, DType::F64),
               kTolF64, "2-key softmax");
  // Huge scores do not overflow (online max subtraction).
  Tensor big = scaled_dot_product_attention(q, mul(k, 1e3), v, 1.0);
  expect_close(big, Tensor::from_vector({0, -4}, {1, 1, 1, 2}, DType::F64), kTolF64, "no overflow");
}

TEST_CASE("attention: CPU online path == materialised reference (float64), forward and backward") {
  struct S {
    Shape q, kv;
    double scale;
  };
  for (const S& c : std::vector<S>{{{2, 3, 17, 16}, {2, 3, 23, 16}, 0.25},
                                   {{1, 2, 1, 8}, {1, 2, 1, 8}, 1.0 / std::sqrt(8.0)},
                                   {{3, 1, 40, 5}, {3, 1, 9, 5}, 0.9}}) {
    std::string name = fmt::format("q {} kv {}", shape_str(c.q), shape_str(c.kv));
    Tensor q = randn_t(c.q), k = randn_t(c.kv), v = randn_t(c.kv), g = randn_t(c.q);
    Grads a = run_with_grads(sdpa(c.scale), q, k, v, g), b = run_with_grads(aref(c.scale), q, k, v, g);
    expect_close(a.out, b.out, kTolF64, name + " out");
    expect_close(a.dq, b.dq, kTolF64, name + " dq");
    expect_close(a.dk, b.dk, kTolF64, name + " dk");
    expect_close(a.dv, b.dv, kTolF64, name + " dv");
    // f32 CPU path vs the float64 reference.
    Grads f = run_with_grads(sdpa(c.scale), q.to(DType::F32), k.to(DType::F32), v.to(DType::F32), g.to(DType::F32));
    const double gfloor = 0.1 * std::max({norm_of(b.dq), norm_of(b.dk), norm_of(b.dv)});
    const double gmax = 0.1 * std::max({max_abs_of(b.dq), max_abs_of(b.dk), max_abs_of(b.dv)});
    expect_attn_close(f.out, b.out, 1e-6, name + " f32 out");
    expect_attn_close(f.dq, b.dq, 1e-6, name + " f32 dq", gfloor, gmax);
    expect_attn_close(f.dk, b.dk, 1e-6, name + " f32 dk", gfloor, gmax);
    expect_attn_close(f.dv, b.dv, 1e-6, name + " f32 dv", gfloor, gmax);
    // bf16 inputs: the CPU widens to f32; compare with the reference on the same rounded values.
    Tensor qb = q.to(DType::BF16), kb = k.to(DType::BF16), vb = v.to(DType::BF16);
    expect_attn_close(scaled_dot_product_attention(qb, kb, vb, c.scale),
                      attention_reference(qb.to(DType::F64), kb.to(DType::F64), vb.to(DType::F64), c.scale), 1e-2,
                      name + " bf16 out");
  }
}

TEST_CASE("attention: strided (permuted) inputs") {
  // (B,N,H,d) storage viewed as (B,H,N,d), as a ViT produces q/k/v.
  Tensor qb = randn_t({2, 9, 3, 8}), kb = randn_t({2, 11, 3, 8}), vb = randn_t({2, 11, 3, 8});
  Tensor q = qb.permute({0, 2, 1, 3}), k = kb.permute({0, 2, 1, 3}), v = vb.permute({0, 2, 1, 3});
  CHECK_FALSE(q.is_contiguous());
  expect_close(scaled_dot_product_attention(q, k, v, 0.3),
               attention_reference(q.contiguous(), k.contiguous(), v.contiguous(), 0.3), kTolF64, "permuted");
}

TEST_CASE("attention: finite differences (float64)") {
  check_grad([](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], 0.7); },
             {randn_t({2, 2, 5, 4}), randn_t({2, 2, 7, 4}), randn_t({2, 2, 7, 4})}, "sdpa B2 H2 Nq5 Nk7 d4");
  check_grad([](const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2], 0.5); },
             {randn_t({1, 3, 1, 3}), randn_t({1, 3, 1, 3}), randn_t({1, 3, 1, 3})}, "sdpa N1");
  check_grad([](const std::vector<Tensor>& in) { return attention_reference(in[0], in[1], in[2], 0.7); },
             {randn_t({1, 2, 4, 3}), randn_t({1, 2, 6, 3}), randn_t({1, 2, 6, 3})}, "attention_reference");
}

TEST_CASE("attention: errors name the op, the shapes and the fix") {
  Tensor q = Tensor::zeros({1, 2, 5, 8}), k = Tensor::zeros({1, 2, 7, 8});
  expect_error([&] { scaled_dot_product_attention(Tensor::zeros({2, 5, 8}), k, k, 1.0); },
               {"scaled_dot_product_attention", "(2,5,8)", "4-D"});
  expect_error([&] { scaled_dot_product_attention(q, Tensor::zeros({1, 2, 7, 4}), k, 1.0); },
               {"scaled_dot_product_attention", "(1,2,7,4)", "(B,Hd,Nk,d)"});
  expect_error([&] { scaled_dot_product_attention(q, k, k.to(DType::F64), 1.0); },
               {"scaled_dot_product_attention", "dtype"});
  expect_error([&] { scaled_dot_product_attention(q, Tensor::zeros({1, 2, 0, 8}), Tensor::zeros({1, 2, 0, 8}), 1.0); },
               {"scaled_dot_product_attention", "no keys"});
  expect_error([&] { scaled_dot_product_attention(q, k, k, NAN); }, {"scaled_dot_product_attention", "scale"});
  expect_error([&] { attention_reference(q, q.slice(3, 0, 4), k, 1.0); }, {"attention_reference", "(1,2,5,4)"});
}

TEST_CASE("attention: CUDA fused kernels vs the CPU float64 path, forward and backward [gpu]") {
  STEREORT_REQUIRE_GPU();
  struct G {
    int64_t B, H, nq, nk, d;
  };
  std::vector<G> cases;
  for (int64_t n : {1, 17, 64, 257, 1000}) cases.push_back({2, 3, n, n, 64});
  cases.push_back({2, 3, 17, 17, 32});
  cases.push_back({2, 3, 257, 257, 32});
  cases.push_back({2, 3, 17, 17, 128});
  cases.push_back({1, 4, 257, 257, 128});
  cases.push_back({2, 2, 100, 257, 64});  // Nq != Nk
  cases.push_back({1, 2, 300, 5, 64});    // fewer keys than one tile
  [[maybe_unused]] Context& ctx = Context::get(gpu());
  for (const G& c : cases)
    for (DType dt : {DType::F32, DType::F16, DType::BF16}) {
      const double scale = 1.0 / std::sqrt(double(c.d));
      Tensor q = randn_t({c.B, c.H, c.nq, c.d}, dt), k = randn_t({c.B, c.H, c.nk, c.d}, dt),
             v = randn_t({c.B, c.H, c.nk, c.d}, dt), g = randn_t({c.B, c.H, c.nq, c.d}, dt);
      // CPU float64 ground truth on the same (rounded) values; lse from the CPU launcher.
      Tensor q64 = q.to(DType::F64), k64 = k.to(DType::F64), v64 = v.to(DType::F64), g64 = g.to(DType::F64);
      Tensor out64 = Tensor::empty(q64.shape(), DType::F64), lse64 = Tensor::empty({c.B, c.H, c.nq}, DType::F64);
      ref::attention_forward(out64, lse64, q64, k64, v64, scale);
      Tensor dq64 = Tensor::empty(q64.shape(), DType::F64), dk64 = Tensor::empty(k64.shape(), DType::F64),
             dv64 = Tensor::empty(k64.shape(), DType::F64);
      ref::attention_backward(dq64, dk64, dv64, q64, k64, v64, out64, lse64, g64, scale);
      // Floors for gradients that vanish by construction (Nk = 1: softmax is constant, dq = dk = 0).
      const double gfloor = 0.1 * std::max({norm_of(dq64), norm_of(dk64), norm_of(dv64)});
      const double gmax = 0.1 * std::max({max_abs_of(dq64), max_abs_of(dk64), max_abs_of(dv64)});
      // fp32 SIMT: ~sqrt(N) * 6e-8 relative; halves: P and dS rounded to the input type (unit roundoff 2^-9 bf16).
      const double tol = dt == DType::F32 ? 1e-5 : 1e-2;
      std::vector<AttentionKernel> kinds = {AttentionKernel::Auto};
      if (dt != DType::F32) kinds.push_back(AttentionKernel::Simt);
      for (AttentionKernel kind : kinds) {
        std::string name = fmt::format("B{} H{} Nq{} Nk{} d{} {} {}", c.B, c.H, c.nq, c.nk, c.d, dtype_name(dt),
                                       kind == AttentionKernel::Simt ? "simt" : "auto");
        Tensor qg = q.cuda(), kg = k.cuda(), vg = v.cuda(), gg = g.cuda();
        Tensor out = Tensor::empty(q.shape(), dt, gpu()), lse = Tensor::empty({c.B, c.H, c.nq}, DType::F32, gpu());
        poison(out);
        poison(lse);
        STEREORT_CUDA_PATH(cuda::attention_forward(out, lse, qg, kg, vg, scale, kind, ctx));
        expect_attn_close(out.cpu(), out64, tol, name + " out");
        expect_close(lse.cpu(), lse64, dt == DType::F32 ? kTolF32 : Tol{1e-3, 1e-3}, name + " lse");
        Tensor dq = Tensor::empty(q.shape(), dt, gpu()), dk = Tensor::empty(k.shape(), dt, gpu()),
               dv = Tensor::empty(k.shape(), dt, gpu());
        poison(dq);
        poison(dk);
        poison(dv);
        STEREORT_CUDA_PATH(cuda::attention_backward(dq, dk, dv, qg, kg, vg, out, lse, gg, scale, kind, ctx));
        expect_attn_close(dq.cpu(), dq64, tol, name + " dq", gfloor, gmax);
        expect_attn_close(dk.cpu(), dk64, tol, name + " dk", gfloor, gmax);
        expect_attn_close(dv.cpu(), dv64, tol, name + " dv", gfloor, gmax);
      }
    }
}

TEST_CASE("attention: CUDA op, autograd and strided inputs [gpu]") {
  STEREORT_REQUIRE_GPU();
  for (DType dt : {DType::F32, DType::BF16}) {
    const double tol = dt == DType::F32 ? 1e-5 : 1e-2;
    // (B,N,H,d) storage viewed as (B,H,N,d): the kernels read the strides directly.
    Tensor qb = randn_t({2, 133, 4, 64}, dt), kb = randn_t({2, 133, 4, 64}, dt), vb = randn_t({2, 133, 4, 64}, dt);
    Tensor g = randn_t({2, 4, 133, 64}, dt);
    auto bhnd = [](const Tensor& t) { return t.permute({0, 2, 1, 3}); };
    // CPU float64 truth; gradients of the (B,N,H,d) leaves.
    Grads r = run_with_grads([&](const Tensor& q, const Tensor& k, const Tensor& v) {
      return scaled_dot_product_attention(bhnd(q), bhnd(k), bhnd(v), 0.125);
    }, qb.to(DType::F64), kb.to(DType::F64), vb.to(DType::F64), g.to(DType::F64));
    Tensor qg = qb.cuda().set_requires_grad(true), kg = kb.cuda().set_requires_grad(true),
           vg = vb.cuda().set_requires_grad(true);
    Tensor out = scaled_dot_product_attention(bhnd(qg), bhnd(kg), bhnd(vg), 0.125);
    CHECK(out.is_cuda());
    out.backward(g.cuda());
    std::string name = fmt::format("op {} strided", dtype_name(dt));
    expect_attn_close(out.cpu(), r.out, tol, name + " out");
    expect_attn_close(qg.grad().cpu(), r.dq, tol, name + " dq");
    expect_attn_close(kg.grad().cpu(), r.dk, tol, name + " dk");
    expect_attn_close(vg.grad().cpu(), r.dv, tol, name + " dv");
    // The materialised reference runs on the GPU too (cuBLAS matmuls).
    if (dt == DType::F32)
      expect_attn_close(attention_reference(bhnd(qb).cuda(), bhnd(kb).cuda(), bhnd(vb).cuda(), 0.125).cpu(), r.out,
                        1e-5, "attention_reference on GPU");
  }
  expect_error([] {
    Tensor q = Tensor::zeros({1, 1, 4, 80}, DType::F16, gpu());
    scaled_dot_product_attention(q, q, q, 1.0);
  }, {"scaled_dot_product_attention", "head dim", "80", "32, 64, 128"});
}
