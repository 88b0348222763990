// tests/test_linear.cpp — linear: CPU forward vs an independent float64 loop, finite-difference gradients, half
// dtypes on the CPU, GPU (cuBLASLt bias epilogue, fallback, tf32, f16, bf16) vs the CPU, and error messages.
#include "core/check.h"
#include "dense_test_util.h"
#include "ops/linear.h"
#include "ops/matmul.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// out[t,o] = b[o] + Σ_i x[t,i] w[o,i], straight from the definition (row-major values, float64).
Tensor ref_linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), bv = b.defined() ? b.to_vector() : std::vector<double>();
  int64_t in = w.size(1), outf = w.size(0), rows = x.numel() / in;
  std::vector<double> ov(size_t(rows * outf));
  for (int64_t t = 0; t < rows; ++t)
    for (int64_t o = 0; o < outf; ++o) {
      double acc = bv.empty() ? 0.0 : bv[size_t(o)];
      for (int64_t i = 0; i < in; ++i) acc += xv[size_t(t * in + i)] * wv[size_t(o * in + i)];
      ov[size_t(t * outf + o)] = acc;
    }
  Shape s(x.shape().begin(), x.shape().end() - 1);
  s.push_back(outf);
  return Tensor::from_vector(ov, s, DType::F64);
}

}  // namespace

TEST_CASE("linear: CPU forward matches the float64 definition") {
  for (DType dt : {DType::F64, DType::F32})
  for (int64_t outf : {5, 19}) {  // below and above the 8-output block of the CPU kernel
    Tensor x = rand_t({2, 3, 7}, dt), w = rand_t({outf, 7}, dt), b = rand_t({outf}, dt);
    Tensor y = linear(x, w, b);
    CHECK(y.shape() == Shape{2, 3, outf});
    CHECK(y.dtype() == dt);
    Tol tol = dt == DType::F64 ? kTolF64 : kTolF32;
    expect_close(y, ref_linear(x, w, b), tol, "linear with bias");
    expect_close(linear(x, w), ref_linear(x, w, Tensor()), tol, "linear without bias");
  }
  // A non-contiguous input (channel-first map read channel-last) and a 1-D input.
  Tensor xc = rand_t({2, 7, 3, 4});
  Tensor xl = xc.permute({0, 2, 3, 1});  // (2,3,4,7), strided
  Tensor w = rand_t({6, 7}), b = rand_t({6});
  expect_close(linear(xl, w, b), ref_linear(xl.contiguous(), w, b), kTolF64, "linear strided input");
  Tensor x1 = rand_t({7});
  Tensor y1 = linear(x1, w, b);
  CHECK(y1.shape() == Shape{6});
  expect_close(y1, ref_linear(x1, w, b), kTolF64, "linear 1-D input");
  // In == 0: the bias alone.
  Tensor e = linear(Tensor::zeros({3, 0}, DType::F64), Tensor::zeros({4, 0}, DType::F64), b.slice(0, 0, 4));
  expect_close(e, b.slice(0, 0, 4).reshape({1, 4}).expand({3, 4}).contiguous(), kTolF64, "linear In == 0");
}

TEST_CASE("linear: f16 and bf16 on the CPU round once after an f32 computation") {
  Tensor x = rand_t({3, 5, 11}), w = rand_t({9, 11}), b = rand_t({9});
  for (DType dt : {DType::F16, DType::BF16}) {
    Tensor xq = x.to(dt), wq = w.to(dt), bq = b.to(dt);
    Tensor y = linear(xq, wq, bq);
    CHECK(y.dtype() == dt);
    expect_close_rms(y, ref_linear(xq, wq, bq), dt == DType::F16 ? kTolF16.rtol : kTolBF16.rtol, "linear half CPU");
  }
}

TEST_CASE("linear: gradients match finite differences") {
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); },
             {rand_t({2, 3, 7}), rand_t({5, 7}), rand_t({5})}, "linear (2,3,7)x(5,7)+b");
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {rand_t({4, 3}), rand_t({1, 3})},
             "linear no bias, Out=1");
  // Strided input: the permuted view takes the gradient back through the view.
  check_grad([](const std::vector<Tensor>& in) { return linear(in[0].transpose(0, 1), in[1], in[2]); },
             {rand_t({5, 3}), rand_t({2, 5}), rand_t({2})}, "linear transposed input");
}

TEST_CASE("linear: only the gradients that are needed are computed") {
  Tensor x = rand_t({3, 4}), w = rand_t({2, 4}).set_requires_grad(), b = rand_t({2});
  linear(x, w, b).backward(Tensor::ones({3, 2}, DType::F64));
  CHECK(w.grad().defined());
  CHECK_FALSE(x.grad().defined());
  CHECK_FALSE(b.grad().defined());
  // dW = doutᵀ x with dout = ones: column sums of x in every row.
  std::vector<double> xv = x.to_vector(), gv = w.grad().to_vector();
  for (int i = 0; i < 4; ++i) CHECK(gv[size_t(4 + i)] == doctest::Approx(xv[size_t(i)] + xv[size_t(4 + i)] + xv[size_t(8 + i)]));
}

TEST_CASE("linear: errors name the op, the shapes and the fix") {
  Tensor x = rand_t({2, 3, 7}), w = rand_t({5, 6});
  expect_error([&] { linear(x, w); }, {"linear", "(2,3,7)", "(5,6)", "(Out,In)"});
  expect_error([&] { linear(x, rand_t({5, 7}), rand_t({4})); }, {"linear", "bias", "(4)", "(5,7)"});
  expect_error([&] { linear(x, rand_t({5, 7}, DType::F32)); }, {"linear", "f64", "f32"});
  expect_error([&] { linear(x, rand_t({5, 7, 1})); }, {"linear", "2-D"});
}

TEST_CASE("linear: GPU forward and backward match the CPU") {
  STEREORT_REQUIRE_GPU();
  auto f = [](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); };
  auto f_nob = [](const std::vector<Tensor>& in) { return linear(in[0], in[1]); };
  // fp32 at realistic odd shapes: tokens 2×129, 96 -> 383 (odd Out) and a K that is not a multiple of 8.
  check_gpu_vs_cpu(f, {rand_t({2, 129, 96}), rand_t({383, 96}), rand_t({383})}, DType::F32, kTolF32.rtol, "linear f32");
  check_gpu_vs_cpu(f_nob, {rand_t({257, 37}), rand_t({19, 37})}, DType::F32, kTolF32.rtol, "linear f32 no bias");
  // A strided view whose rows are not 256-byte aligned (alignment preferences / fallback).
  check_gpu_vs_cpu([](const std::vector<Tensor>& in) { return linear(in[0].slice(1, 1, 34), in[1], in[2]); },
                   {rand_t({65, 35}), rand_t({24, 33}), rand_t({24})}, DType::F32, kTolF32.rtol, "linear f32 sliced");
  for (DType dt : {DType::F16, DType::BF16})
    check_gpu_vs_cpu(f, {rand_t({3, 50, 96}), rand_t({384, 96}), rand_t({384})}, dt, 1e-2,
                     std::string("linear ") + dtype_name(dt));
  // TF32: 10-bit mantissa products, fp32 accumulation.
  set_allow_tf32(true);
  check_gpu_vs_cpu(f, {rand_t({2, 129, 96}), rand_t({384, 96}), rand_t({384})}, DType::F32, kTolTF32.rtol,
                   "linear tf32");
  set_allow_tf32(false);
}
