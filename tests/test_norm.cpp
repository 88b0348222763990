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

// ---- batch_norm ----------------------------------------------------------------------------------------------------
namespace {

// Per-channel statistics over (B, spatial) from the definition; normalise with `mean`/`var` (biased).
void ref_channel_stats(const Tensor& x, std::vector<double>& mean, std::vector<double>& var) {
  std::vector<double> xv = x.to_vector();
  int64_t B = x.size(0), C = x.size(1), S = x.numel() / (B * C);
  mean.assign(size_t(C), 0.0);
  var.assign(size_t(C), 0.0);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) mean[size_t(c)] += xv[size_t((b * C + c) * S + s)] / double(B * S);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t s = 0; s < S; ++s) var[size_t(c)] += std::pow(xv[size_t((b * C + c) * S + s)] - mean[size_t(c)], 2) / double(B * S);
  }
}
Tensor ref_normalise(const Tensor& x, const std::vector<double>& mean, const std::vector<double>& var, const Tensor& w,
                     const Tensor& b, double eps) {
  std::vector<double> xv = x.to_vector(), out(xv.size());
  int64_t B = x.size(0), C = x.size(1), S = x.numel() / (B * C);
  std::vector<double> wv = w.defined() ? w.to_vector() : std::vector<double>(size_t(C), 1.0);
  std::vector<double> bv = b.defined() ? b.to_vector() : std::vector<double>(size_t(C), 0.0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    size_t c = size_t(i / S % C);
    out[size_t(i)] = (xv[size_t(i)] - mean[c]) / std::sqrt(var[c] + eps) * wv[c] + bv[c];
  }
  return Tensor::from_vector(out, x.shape(), DType::F64);
}

}  // namespace

TEST_CASE("batch_norm: training normalises with batch stats and updates running stats (hand-computed)") {
  // Channel 0 holds 1,2,3,6: mean 3, biased var 3.5, unbiased 14/3. Channel 1 holds 0,4,0,4: mean 2, var 4, 16/3.
  Tensor x = Tensor::from_vector({1, 2, 0, 4, 3, 6, 0, 4}, {2, 2, 2}, DType::F64);
  Tensor w = Tensor::from_vector({2.0, -1.0}, {2}, DType::F64), b = Tensor::from_vector({0.5, 1.0}, {2}, DType::F64);
  Tensor rm = Tensor::from_vector({0.5, -1.0}, {2}, DType::F64), rv = Tensor::from_vector({2.0, 1.0}, {2}, DType::F64);
  Tensor y = batch_norm(x, w, b, rm, rv, true);
  std::vector<double> rmv = rm.to_vector(), rvv = rv.to_vector();
  CHECK(rmv[0] == doctest::Approx(0.9 * 0.5 + 0.1 * 3.0).epsilon(1e-14));
  CHECK(rmv[1] == doctest::Approx(0.9 * -1.0 + 0.1 * 2.0).epsilon(1e-14));
  CHECK(rvv[0] == doctest::Approx(0.9 * 2.0 + 0.1 * 14.0 / 3.0).epsilon(1e-14));
  CHECK(rvv[1] == doctest::Approx(0.9 * 1.0 + 0.1 * 16.0 / 3.0).epsilon(1e-14));
  std::vector<double> yv = y.to_vector();
  double s0 = 1 / std::sqrt(3.5 + 1e-5), s1 = 1 / std::sqrt(4.0 + 1e-5);
  // Element order (b, c, s): b0c0 = 1,2  b0c1 = 0,4  b1c0 = 3,6  b1c1 = 0,4.
  std::vector<double> want = {2 * (1 - 3) * s0 + 0.5, 2 * (2 - 3) * s0 + 0.5, -(0 - 2) * s1 + 1, -(4 - 2) * s1 + 1,
                              2 * (3 - 3) * s0 + 0.5, 2 * (6 - 3) * s0 + 0.5, -(0 - 2) * s1 + 1, -(4 - 2) * s1 + 1};
  for (size_t i = 0; i < 8; ++i) CHECK(yv[i] == doctest::Approx(want[i]).epsilon(1e-12));
  // momentum 0.3, f32 buffers.
  Tensor rm32 = Tensor::zeros({2}, DType::F32), rv32 = Tensor::ones({2}, DType::F32);
  batch_norm(x, Tensor(), Tensor(), rm32, rv32, true, 0.3);
  CHECK(rm32.to_vector()[0] == doctest::Approx(0.3 * 3.0).epsilon(1e-6));
  CHECK(rv32.to_vector()[1] == doctest::Approx(0.7 + 0.3 * 16.0 / 3.0).epsilon(1e-6));
}

TEST_CASE("batch_norm: CPU forward matches the float64 definition (train and eval, 2-D and 3-D maps)") {
  for (Shape s : {Shape{3, 5, 4, 6}, Shape{2, 3, 2, 3, 4}, Shape{7, 4}}) {
    int64_t C = s[1];
    Tensor x = rand_t(s, DType::F64, -1, 3), w = rand_t({C}), b = rand_t({C});
    Tensor rm = rand_t({C}), rv = rand_t({C}, DType::F64, 0.5, 1.5);
    std::vector<double> mean, var;
    ref_channel_stats(x, mean, var);
    expect_close(batch_norm(x, w, b, Tensor(), Tensor(), true), ref_normalise(x, mean, var, w, b, 1e-5), kTolF64,
                 "batch_norm train " + shape_str(s));
    Tensor rm0 = rm.clone(), rv0 = rv.clone();
    expect_close(batch_norm(x, Tensor(), b, rm, rv, false, 0.1, 1e-3),
                 ref_normalise(x, rm0.to_vector(), rv0.to_vector(), Tensor(), b, 1e-3), kTolF64,
                 "batch_norm eval " + shape_str(s));
    CHECK(rm.to_vector() == rm0.to_vector());  // eval leaves the running stats alone
    Tensor xf = x.to(DType::F32);
    ref_channel_stats(xf, mean, var);
    expect_close_rms(batch_norm(xf, w.to(DType::F32), b.to(DType::F32), Tensor(), Tensor(), true),
                     ref_normalise(xf, mean, var, w.to(DType::F32), b.to(DType::F32), 1e-5), kTolF32.rtol,
                     "batch_norm f32 " + shape_str(s));
    Tensor xh = x.to(DType::BF16);
    ref_channel_stats(xh, mean, var);
    expect_close_rms(batch_norm(xh, w.to(DType::F32), b.to(DType::F32), Tensor(), Tensor(), true),
                     ref_normalise(xh, mean, var, w, b, 1e-5), 1e-2, "batch_norm bf16 CPU " + shape_str(s));
  }
}

TEST_CASE("batch_norm: gradients match finite differences") {
  auto train = [](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true); };
  check_grad(train, {rand_t({3, 5, 2, 3}, DType::F64, -1, 2), rand_t({5}), rand_t({5})}, "batch_norm train 2-D");
  check_grad(train, {rand_t({2, 3, 2, 1, 3}), rand_t({3}), rand_t({3})}, "batch_norm train 3-D");
  Tensor rm = rand_t({3}), rv = rand_t({3}, DType::F64, 0.5, 1.5);
  check_grad([rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false); },
             {rand_t({2, 3, 4}), rand_t({3}), rand_t({3})}, "batch_norm eval");
  check_grad([](const std::vector<Tensor>& in) { return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true); },
             {rand_t({4, 3, 5})}, "batch_norm train, no affine");
}

TEST_CASE("batch_norm: errors") {
  Tensor x = rand_t({2, 4, 3, 3});
  expect_error([&] { batch_norm(x, rand_t({3}), Tensor(), Tensor(), Tensor(), true); },
               {"batch_norm", "weight", "(3)", "(2,4,3,3)", "channel dim"});
  expect_error([&] { batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), false); },
               {"batch_norm", "eval", "running_mean"});
  expect_error([&] { batch_norm(rand_t({1, 4, 1, 1}), Tensor(), Tensor(), Tensor(), Tensor(), true); },
               {"batch_norm", "more than 1 value", "(1,4,1,1)"});
}

TEST_CASE("batch_norm: GPU forward, backward and running stats match the CPU") {
  STEREORT_REQUIRE_GPU();
  for (Shape s : {Shape{2, 32, 9, 17, 19}, Shape{3, 7, 33, 41}, Shape{1, 5, 3, 9000}}) {
    int64_t C = s[1];
    Tensor rm = rand_t({C}), rv = rand_t({C}, DType::F64, 0.5, 1.5);
    for (bool training : {true, false}) {
      auto f = [rm, rv, training](const std::vector<Tensor>& in) {
        Tensor m = rm.to(DType::F32).to(in[0].device()), v = rv.to(DType::F32).to(in[0].device());
        return batch_norm(in[0], in[1], in[2], m, v, training);
      };
      std::vector<Tensor> in = {rand_t(s, DType::F64, -1, 3), rand_t({C}), rand_t({C})};
      std::string name = std::string("batch_norm ") + (training ? "train " : "eval ") + shape_str(s);
      check_gpu_vs_cpu(f, in, DType::F32, kTolF32.rtol, name + " f32");
      for (DType dt : {DType::F16, DType::BF16})
        check_gpu_vs_cpu(f, in, dt, 1e-2, name + " " + dtype_name(dt), {dt, DType::F32, DType::F32});
    }
    // Running stats after one training step, GPU vs CPU (f32 buffers).
    Tensor x = rand_t(s, DType::F32, -1, 3);
    Tensor rmg = rm.to(DType::F32).to(gpu()), rvg = rv.to(DType::F32).to(gpu());
    Tensor rmc = rm.to(DType::F32), rvc = rv.to(DType::F32);
    batch_norm(x.to(gpu()), Tensor(), Tensor(), rmg, rvg, true);
    batch_norm(x, Tensor(), Tensor(), rmc, rvc, true);
    expect_close(rmg, rmc, kTolF32, "batch_norm running_mean GPU " + shape_str(s));
    expect_close(rvg, rvc, kTolF32, "batch_norm running_var GPU " + shape_str(s));
  }
}

// ---- group_norm / instance_norm ----------------------------------------------------------------------------------
namespace {

Tensor ref_group_norm(const Tensor& x, int64_t G, const Tensor& w, const Tensor& b, double eps) {
  std::vector<double> xv = x.to_vector(), out(xv.size());
  int64_t B = x.size(0), C = x.size(1), S = x.numel() / (B * C), L = C / G * S;
  std::vector<double> wv = w.defined() ? w.to_vector() : std::vector<double>(size_t(C), 1.0);
  std::vector<double> bv = b.defined() ? b.to_vector() : std::vector<double>(size_t(C), 0.0);
  for (int64_t k = 0; k < B * G; ++k) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < L; ++i) m += xv[size_t(k * L + i)] / double(L);
    for (int64_t i = 0; i < L; ++i) v += std::pow(xv[size_t(k * L + i)] - m, 2) / double(L);
    for (int64_t i = 0; i < L; ++i) {
      size_t c = size_t((k % G) * (C / G) + i / S);
      out[size_t(k * L + i)] = (xv[size_t(k * L + i)] - m) / std::sqrt(v + eps) * wv[c] + bv[c];
    }
  }
  return Tensor::from_vector(out, x.shape(), DType::F64);
}

}  // namespace

TEST_CASE("group_norm and instance_norm: CPU forward matches the float64 definition") {
  Tensor x = rand_t({2, 6, 3, 5}, DType::F64, -1, 3), w = rand_t({6}), b = rand_t({6});
  for (int64_t G : {1, 2, 3, 6})
    expect_close(group_norm(x, G, w, b), ref_group_norm(x, G, w, b, 1e-5), kTolF64, "group_norm G=" + std::to_string(G));
  expect_close(group_norm(x, 3, Tensor(), Tensor(), 1e-3), ref_group_norm(x, 3, Tensor(), Tensor(), 1e-3), kTolF64,
               "group_norm no affine");
  expect_close(instance_norm(x, Tensor(), Tensor()), ref_group_norm(x, 6, Tensor(), Tensor(), 1e-5), kTolF64,
               "instance_norm (no affine, the SMoEStereo default)");
  expect_close(instance_norm(x, w, b), ref_group_norm(x, 6, w, b, 1e-5), kTolF64, "instance_norm affine");
  Tensor x3 = rand_t({1, 4, 2, 3, 4});
  expect_close(instance_norm(x3, Tensor(), Tensor()), ref_group_norm(x3, 4, Tensor(), Tensor(), 1e-5), kTolF64,
               "instance_norm 3-D");
  Tensor xf = x.to(DType::F32);
  expect_close_rms(group_norm(xf, 2, w.to(DType::F32), b.to(DType::F32)), ref_group_norm(xf, 2, w, b, 1e-5),
                   kTolF32.rtol, "group_norm f32");
}

TEST_CASE("group_norm and instance_norm: gradients match finite differences") {
  check_grad([](const std::vector<Tensor>& in) { return group_norm(in[0], 3, in[1], in[2]); },
             {rand_t({2, 6, 3, 2}, DType::F64, -1, 2), rand_t({6}), rand_t({6})}, "group_norm G=3");
  check_grad([](const std::vector<Tensor>& in) { return instance_norm(in[0], Tensor(), Tensor()); },
             {rand_t({2, 3, 4, 3})}, "instance_norm no affine");
  check_grad([](const std::vector<Tensor>& in) { return instance_norm(in[0], in[1], in[2]); },
             {rand_t({3, 2, 5}), rand_t({2}), rand_t({2})}, "instance_norm affine, 1-D maps");
}

TEST_CASE("group_norm: errors") {
  Tensor x = rand_t({2, 6, 3, 3});
  expect_error([&] { group_norm(x, 4, Tensor(), Tensor()); }, {"group_norm", "4 groups", "6 channels", "(2,6,3,3)"});
  expect_error([&] { instance_norm(x, rand_t({5}), Tensor()); }, {"instance_norm", "weight", "(5)"});
}

TEST_CASE("group_norm and instance_norm: GPU forward and backward match the CPU") {
  STEREORT_REQUIRE_GPU();
  auto gn = [](const std::vector<Tensor>& in) { return group_norm(in[0], 4, in[1], in[2]); };
  auto in_ = [](const std::vector<Tensor>& in) { return instance_norm(in[0], Tensor(), Tensor()); };
  check_gpu_vs_cpu(gn, {rand_t({2, 12, 37, 29}, DType::F64, -1, 3), rand_t({12}), rand_t({12})}, DType::F32,
                   kTolF32.rtol, "group_norm f32");
  check_gpu_vs_cpu(in_, {rand_t({3, 5, 67, 45}, DType::F64, -1, 3)}, DType::F32, kTolF32.rtol, "instance_norm f32");
  check_gpu_vs_cpu(in_, {rand_t({1, 3, 5, 11, 13})}, DType::F32, kTolF32.rtol, "instance_norm 3-D f32");
  for (DType dt : {DType::F16, DType::BF16}) {
    check_gpu_vs_cpu(gn, {rand_t({2, 12, 37, 29}), rand_t({12}), rand_t({12})}, dt, 1e-2,
                     std::string("group_norm ") + dtype_name(dt), {dt, DType::F32, DType::F32});
    check_gpu_vs_cpu(in_, {rand_t({3, 5, 67, 45})}, dt, 1e-2, std::string("instance_norm ") + dtype_name(dt));
  }
}
