// tests/test_norm.cpp — layer_norm, rms_norm_gated, batch_norm, group_norm, instance_norm: CPU forward vs independent
// float64 loops, finite-difference gradients, running-stat updates by hand, GPU vs CPU, error messages.
#include <cmath>

#include "core/check.h"
#include "dense_test_util.h"
#include "ops/norm.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// Row-wise layer norm over the last dim, from the definition.
Tensor ref_layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  std::vector<double> xv = x.to_vector(), out(xv.size());
  std::vector<double> wv = w.defined() ? w.to_vector() : std::vector<double>();
  std::vector<double> bv = b.defined() ? b.to_vector() : std::vector<double>();
  int64_t C = x.size(-1), R = x.numel() / C;
  for (int64_t r = 0; r < R; ++r) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += xv[size_t(r * C + c)] / double(C);
    for (int64_t c = 0; c < C; ++c) v += std::pow(xv[size_t(r * C + c)] - m, 2) / double(C);
    for (int64_t c = 0; c < C; ++c) {
      double y = (xv[size_t(r * C + c)] - m) / std::sqrt(v + eps);
      out[size_t(r * C + c)] = y * (wv.empty() ? 1.0 : wv[size_t(c)]) + (bv.empty() ? 0.0 : bv[size_t(c)]);
    }
  }
  return Tensor::from_vector(out, x.shape(), DType::F64);
}

// Mamba rms_norm_ref with z, norm_before_gate=False: g = y·silu(z); g / sqrt(mean(g²) + eps) · w.
Tensor ref_rms_norm_gated(const Tensor& y, const Tensor& z, const Tensor& w, double eps) {
  std::vector<double> yv = y.to_vector(), zv = z.to_vector(), wv = w.to_vector(), out(yv.size());
  int64_t C = y.size(-1), R = y.numel() / C;
  for (int64_t r = 0; r < R; ++r) {
    std::vector<double> g(static_cast<size_t>(C));
    double ms = 0;
    for (int64_t c = 0; c < C; ++c) {
      double zz = zv[size_t(r * C + c)];
      g[size_t(c)] = yv[size_t(r * C + c)] * zz / (1 + std::exp(-zz));
      ms += g[size_t(c)] * g[size_t(c)] / double(C);
    }
    for (int64_t c = 0; c < C; ++c) out[size_t(r * C + c)] = g[size_t(c)] / std::sqrt(ms + eps) * wv[size_t(c)];
  }
  return Tensor::from_vector(out, y.shape(), DType::F64);
}

}  // namespace

// ---- layer_norm ----------------------------------------------------------------------------------------------------
TEST_CASE("layer_norm: CPU forward matches the float64 definition") {
  Tensor x = rand_t({2, 3, 5, 9}, DType::F64, -2, 3), w = rand_t({9}), b = rand_t({9});
  expect_close(layer_norm(x, w, b), ref_layer_norm(x, w, b, 1e-5), kTolF64, "layer_norm affine");
  expect_close(layer_norm(x, Tensor(), Tensor(), 1e-6), ref_layer_norm(x, Tensor(), Tensor(), 1e-6), kTolF64,
               "layer_norm no affine eps 1e-6");
  Tensor xf = x.to(DType::F32), wf = w.to(DType::F32), bf = b.to(DType::F32);
  expect_close(layer_norm(xf, wf, bf), ref_layer_norm(xf, wf, bf, 1e-5), kTolF32, "layer_norm f32");
  // eps matters for a constant row: (x - mean) = 0 exactly, output = bias.
  Tensor c = Tensor::full({1, 4}, 3.0, DType::F64);
  expect_close(layer_norm(c, w.slice(0, 0, 4), b.slice(0, 0, 4)), b.slice(0, 0, 4).reshape({1, 4}), kTolF64,
               "layer_norm constant row");
  for (DType dt : {DType::F16, DType::BF16}) {
    Tensor xq = x.to(dt);
    Tensor y = layer_norm(xq, w.to(DType::F32), b.to(DType::F32));  // AMP layout: half input, f32 parameters
    CHECK(y.dtype() == dt);
    expect_close_rms(y, ref_layer_norm(xq, w, b, 1e-5), 1e-2, "layer_norm half CPU");
  }
}

TEST_CASE("layer_norm: gradients match finite differences") {
  check_grad([](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); },
             {rand_t({3, 2, 7}, DType::F64, -2, 2), rand_t({7}), rand_t({7})}, "layer_norm (3,2,7)");
  check_grad([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-3); },
             {rand_t({5, 3})}, "layer_norm no affine");
  check_grad([](const std::vector<Tensor>& in) { return layer_norm(in[0].transpose(0, 1), in[1], Tensor()); },
             {rand_t({4, 3}), rand_t({4})}, "layer_norm strided, weight only");
}

TEST_CASE("layer_norm: errors name the op and the shapes") {
  Tensor x = rand_t({2, 5, 9});
  expect_error([&] { layer_norm(x, rand_t({8}), Tensor()); }, {"layer_norm", "weight", "(8)", "(2,5,9)", "channel-last"});
  expect_error([&] { layer_norm(x, Tensor(), rand_t({9}, DType::F16)); }, {"layer_norm", "bias", "f16", "dtype"});
}

TEST_CASE("layer_norm: GPU forward and backward match the CPU") {
  STEREORT_REQUIRE_GPU();
  auto f = [](const std::vector<Tensor>& in) { return layer_norm(in[0], in[1], in[2]); };
  // C = 96 (patch embed), 384 (stage 2), 1000 (odd, > 32 per lane), and 7 (fewer channels than lanes).
  for (int64_t C : {96, 384, 1000, 7}) {
    Shape s = {2, 37, 21, C};
    check_gpu_vs_cpu(f, {rand_t(s, DType::F64, -2, 3), rand_t({C}), rand_t({C})}, DType::F32, kTolF32.rtol,
                     "layer_norm f32 C=" + std::to_string(C));
  }
  check_gpu_vs_cpu([](const std::vector<Tensor>& in) { return layer_norm(in[0], Tensor(), Tensor(), 1e-6); },
                   {rand_t({300, 768})}, DType::F32, kTolF32.rtol, "layer_norm f32 no affine");
  for (DType dt : {DType::F16, DType::BF16}) {
    check_gpu_vs_cpu(f, {rand_t({3, 41, 192}), rand_t({192}), rand_t({192})}, dt, 1e-2,
                     std::string("layer_norm ") + dtype_name(dt));
    // Half input with f32 parameters.
    check_gpu_vs_cpu(f, {rand_t({3, 41, 192}), rand_t({192}), rand_t({192})}, dt, 1e-2,
                     std::string("layer_norm f32 params ") + dtype_name(dt), {dt, DType::F32, DType::F32});
  }
}

// ---- rms_norm_gated ----------------------------------------------------------------------------------------------
TEST_CASE("rms_norm_gated: CPU forward matches mamba's rms_norm_ref") {
  Tensor y = rand_t({2, 3, 11}, DType::F64, -2, 2), z = rand_t({2, 3, 11}, DType::F64, -3, 3), w = rand_t({11});
  expect_close(rms_norm_gated(y, z, w), ref_rms_norm_gated(y, z, w, 1e-5), kTolF64, "rms_norm_gated");
  expect_close(rms_norm_gated(y, z, w, 1e-2), ref_rms_norm_gated(y, z, w, 1e-2), kTolF64, "rms_norm_gated eps");
  Tensor yf = y.to(DType::F32), zf = z.to(DType::F32), wf = w.to(DType::F32);
  expect_close(rms_norm_gated(yf, zf, wf), ref_rms_norm_gated(yf, zf, wf, 1e-5), kTolF32, "rms_norm_gated f32");
}

TEST_CASE("rms_norm_gated: gradients match finite differences") {
  check_grad([](const std::vector<Tensor>& in) { return rms_norm_gated(in[0], in[1], in[2]); },
             {rand_t({3, 2, 5}, DType::F64, -2, 2), rand_t({3, 2, 5}, DType::F64, -3, 3), rand_t({5})},
             "rms_norm_gated (3,2,5)");
}

TEST_CASE("rms_norm_gated: errors") {
  Tensor y = rand_t({4, 6});
  expect_error([&] { rms_norm_gated(y, rand_t({4, 5}), rand_t({6})); }, {"rms_norm_gated", "(4,5)", "(4,6)"});
  expect_error([&] { rms_norm_gated(y, rand_t({4, 6}), rand_t({5})); }, {"rms_norm_gated", "weight", "(5)", "(4,6)"});
}

TEST_CASE("rms_norm_gated: GPU forward and backward match the CPU") {
  STEREORT_REQUIRE_GPU();
  auto f = [](const std::vector<Tensor>& in) { return rms_norm_gated(in[0], in[1], in[2]); };
  for (int64_t C : {256, 512, 45}) {
    check_gpu_vs_cpu(f, {rand_t({2, 77, C}, DType::F64, -2, 2), rand_t({2, 77, C}, DType::F64, -3, 3), rand_t({C})},
                     DType::F32, kTolF32.rtol, "rms_norm_gated f32 C=" + std::to_string(C));
  }
  for (DType dt : {DType::F16, DType::BF16})
    check_gpu_vs_cpu(f, {rand_t({300, 256}), rand_t({300, 256}, DType::F64, -3, 3), rand_t({256})}, dt, 1e-2,
                     std::string("rms_norm_gated ") + dtype_name(dt));
}
