// tests/test_conv.cpp — conv1d/2d/3d and conv_transpose2d/3d: CPU forward vs independent float64 loops (gather form
// for conv, scatter form for the transposed conv), finite-difference gradients (groups, stride 2, dilation 2,
// output_padding 1, odd channels, batch > 1), half dtypes on the CPU, GPU (cuDNN) vs CPU, and error messages.
#include "core/check.h"
#include "dense_test_util.h"
#include "ops/conv.h"
#include "ops/matmul.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

Shape spatial(const Tensor& t) { return Shape(t.shape().begin() + 2, t.shape().end()); }
int64_t at(const std::vector<int64_t>& v, size_t i) { return v.size() == 1 ? v[0] : v[i]; }

// Odometer over a multi-index with the given extents.
bool next_index(std::vector<int64_t>& idx, const Shape& ext) {
  for (int d = int(ext.size()) - 1; d >= 0; --d) {
    if (++idx[size_t(d)] < ext[size_t(d)]) return true;
    idx[size_t(d)] = 0;
  }
  return false;
}
int64_t flat(const std::vector<int64_t>& idx, const Shape& ext) {
  int64_t f = 0;
  for (size_t d = 0; d < ext.size(); ++d) f = f * ext[d] + idx[d];
  return f;
}

// y[b,o,i] = bias[o] + Σ_{c in group, k} x[b,c,i·s-p+k·d] w[o,c',k]: one output element at a time.
Tensor ref_conv(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  size_t n = size_t(x.dim() - 2);
  int64_t B = x.size(0), C = x.size(1), O = w.size(0), G = p.groups, Cg = C / G, Og = O / G;
  Shape in = spatial(x), k = spatial(w), out;
  for (size_t i = 0; i < n; ++i)
    out.push_back((in[i] + 2 * at(p.padding, i) - at(p.dilation, i) * (k[i] - 1) - 1) / at(p.stride, i) + 1);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector(), bv = bias.defined() ? bias.to_vector() : std::vector<double>();
  Shape ys = {B, O};
  ys.insert(ys.end(), out.begin(), out.end());
  std::vector<double> yv(size_t(shape_numel(ys)), 0.0);
  int64_t ip = shape_numel(in), op = shape_numel(out), kp = shape_numel(k);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t o = 0; o < O; ++o) {
      std::vector<int64_t> oi(n, 0);
      do {
        double acc = bv.empty() ? 0.0 : bv[size_t(o)];
        for (int64_t c = 0; c < Cg; ++c) {
          std::vector<int64_t> ki(n, 0);
          do {
            std::vector<int64_t> ii(n);
            bool inside = true;
            for (size_t d = 0; d < n; ++d) {
              ii[d] = oi[d] * at(p.stride, d) - at(p.padding, d) + ki[d] * at(p.dilation, d);
              inside = inside && ii[d] >= 0 && ii[d] < in[d];
            }
            if (!inside) continue;
            int64_t cx = (o / Og) * Cg + c;
            acc += xv[size_t((b * C + cx) * ip + flat(ii, in))] * wv[size_t((o * Cg + c) * kp + flat(ki, k))];
          } while (next_index(ki, k));
        }
        yv[size_t((b * O + o) * op + flat(oi, out))] = acc;
      } while (next_index(oi, out));
    }
  return Tensor::from_vector(yv, ys, DType::F64);
}

// y[b,o, i·s-p+k·d] += x[b,c,i] w[c,o',k]: one input element scattered at a time, then + bias.
Tensor ref_conv_transpose(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  size_t n = size_t(x.dim() - 2);
  int64_t B = x.size(0), C = x.size(1), G = p.groups, Og = w.size(1), O = Og * G, Cg = C / G;
  Shape in = spatial(x), k = spatial(w), out;
  for (size_t i = 0; i < n; ++i)
    out.push_back((in[i] - 1) * at(p.stride, i) - 2 * at(p.padding, i) + at(p.dilation, i) * (k[i] - 1) +
                  at(p.output_padding, i) + 1);
  std::vector<double> xv = x.to_vector(), wv = w.to_vector();
  Shape ys = {B, O};
  ys.insert(ys.end(), out.begin(), out.end());
  std::vector<double> yv(size_t(shape_numel(ys)), 0.0);
  int64_t ip = shape_numel(in), op = shape_numel(out), kp = shape_numel(k);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t c = 0; c < C; ++c) {
      std::vector<int64_t> ii(n, 0);
      do {
        double xval = xv[size_t((b * C + c) * ip + flat(ii, in))];
        for (int64_t og = 0; og < Og; ++og) {
          int64_t o = (c / Cg) * Og + og;
          std::vector<int64_t> ki(n, 0);
          do {
            std::vector<int64_t> oi(n);
            bool inside = true;
            for (size_t d = 0; d < n; ++d) {
              oi[d] = ii[d] * at(p.stride, d) - at(p.padding, d) + ki[d] * at(p.dilation, d);
              inside = inside && oi[d] >= 0 && oi[d] < out[d];
            }
            if (inside) yv[size_t((b * O + o) * op + flat(oi, out))] += xval * wv[size_t((c * Og + og) * kp + flat(ki, k))];
          } while (next_index(ki, k));
        }
      } while (next_index(ii, in));
    }
  if (bias.defined()) {
    std::vector<double> bv = bias.to_vector();
    for (size_t i = 0; i < yv.size(); ++i) yv[i] += bv[size_t(int64_t(i) / op % O)];
  }
  return Tensor::from_vector(yv, ys, DType::F64);
}

ConvParams params(std::vector<int64_t> s, std::vector<int64_t> pad, std::vector<int64_t> d, int64_t g,
                  std::vector<int64_t> opad = {0}) {
  ConvParams p;
  p.stride = s;
  p.padding = pad;
  p.dilation = d;
  p.groups = g;
  p.output_padding = opad;
  return p;
}

using ConvFn = Tensor (*)(const Tensor&, const Tensor&, const Tensor&, const ConvParams&);

}  // namespace

TEST_CASE("conv: CPU forward matches the float64 definition") {
  struct Case {
    ConvFn f;
    Shape x, w;
    ConvParams p;
    const char* name;
  };
  std::vector<Case> cases = {
      {conv2d, {2, 3, 7, 9}, {5, 3, 3, 3}, params({1}, {1}, {1}, 1), "conv2d k3 p1"},
      {conv2d, {2, 4, 9, 8}, {6, 2, 3, 2}, params({2, 1}, {1, 0}, {2, 1}, 2), "conv2d groups 2, s(2,1), d(2,1)"},
      {conv2d, {1, 5, 8, 11}, {5, 1, 3, 3}, params({2}, {2}, {2}, 5), "conv2d depthwise s2 d2 p2"},
      {conv2d, {1, 3, 12, 16}, {7, 3, 4, 4}, params({4}, {0}, {1}, 1), "conv2d patch embed k4 s4"},
      {conv1d, {3, 4, 13}, {6, 2, 4}, params({2}, {3}, {2}, 2), "conv1d groups 2 s2 d2"},
      {conv3d, {2, 3, 5, 6, 7}, {4, 3, 3, 3, 3}, params({1}, {1}, {1}, 1), "conv3d k3 p1"},
      {conv3d, {1, 4, 7, 6, 9}, {2, 2, 3, 1, 3}, params({2, 1, 2}, {1, 0, 2}, {1, 1, 2}, 2), "conv3d mixed"},
  };
  for (auto& c : cases) {
    Tensor x = rand_t(c.x), w = rand_t(c.w), b = rand_t({c.w[0]});
    expect_close(c.f(x, w, b, c.p), ref_conv(x, w, b, c.p), kTolF64, std::string(c.name) + " f64");
    expect_close(c.f(x, w, Tensor(), c.p), ref_conv(x, w, Tensor(), c.p), kTolF64, std::string(c.name) + " no bias");
    Tensor xf = x.to(DType::F32), wf = w.to(DType::F32), bf = b.to(DType::F32);
    expect_close_rms(c.f(xf, wf, bf, c.p), ref_conv(xf, wf, bf, c.p), kTolF32.rtol, std::string(c.name) + " f32");
  }
}

TEST_CASE("conv_transpose: CPU forward matches the float64 scatter definition") {
  struct Case {
    ConvFn f;
    Shape x, w;
    ConvParams p;
    const char* name;
  };
  std::vector<Case> cases = {
      {conv_transpose2d, {2, 3, 4, 5}, {3, 2, 4, 4}, params({4}, {0}, {1}, 1), "conv_transpose2d k4 s4"},
      {conv_transpose2d, {1, 4, 5, 3}, {4, 3, 3, 3}, params({2}, {1}, {1}, 2, {1}), "conv_transpose2d s2 p1 op1 g2"},
      {conv_transpose2d, {2, 3, 4, 6}, {3, 2, 3, 2}, params({1, 2}, {1, 0}, {2, 1}, 1, {1, 1}),
       "conv_transpose2d d2 s(1,2) op(1,1)"},
      {conv_transpose3d, {1, 4, 3, 4, 5}, {4, 3, 3, 3, 3}, params({2}, {1}, {1}, 1, {1}),
       "conv_transpose3d s2 p1 op1 (GwcNet hourglass)"},
      {conv_transpose3d, {2, 2, 3, 2, 4}, {2, 1, 2, 3, 2}, params({1, 2, 2}, {0, 1, 0}, {2, 1, 1}, 2),
       "conv_transpose3d groups 2 mixed"},
  };
  for (auto& c : cases) {
    Tensor x = rand_t(c.x), w = rand_t(c.w), b = rand_t({c.w[1] * c.p.groups});
    expect_close(c.f(x, w, b, c.p), ref_conv_transpose(x, w, b, c.p), kTolF64, std::string(c.name) + " f64");
    expect_close(c.f(x, w, Tensor(), c.p), ref_conv_transpose(x, w, Tensor(), c.p), kTolF64,
                 std::string(c.name) + " no bias");
    Tensor xf = x.to(DType::F32), wf = w.to(DType::F32), bf = b.to(DType::F32);
    expect_close_rms(c.f(xf, wf, bf, c.p), ref_conv_transpose(xf, wf, bf, c.p), kTolF32.rtol,
                     std::string(c.name) + " f32");
  }
  // StereoMamba shapes, channels cut down: k4 s4 from (32,40) -> (128,160); k3 s2 p1 op1 doubles 3-D maps.
  CHECK(conv_transpose2d(rand_t({1, 6, 32, 40}), rand_t({6, 3, 4, 4}), Tensor(), params({4}, {0}, {1}, 1)).shape() ==
        Shape{1, 3, 128, 160});
  CHECK(conv_transpose3d(rand_t({1, 2, 6, 8, 10}), rand_t({2, 2, 3, 3, 3}), Tensor(), params({2}, {1}, {1}, 1, {1}))
            .shape() == Shape{1, 2, 12, 16, 20});
}

TEST_CASE("conv: f16 and bf16 on the CPU") {
  Tensor x = rand_t({2, 4, 7, 6}), w = rand_t({6, 2, 3, 3}), b = rand_t({6});
  ConvParams p = params({1}, {1}, {1}, 2);
  for (DType dt : {DType::F16, DType::BF16}) {
    Tensor xq = x.to(dt), wq = w.to(dt), bq = b.to(dt);
    Tensor y = conv2d(xq, wq, bq, p);
    CHECK(y.dtype() == dt);
    expect_close_rms(y, ref_conv(xq, wq, bq, p), 1e-2, std::string("conv2d ") + dtype_name(dt));
    Tensor t = conv_transpose2d(xq.slice(1, 0, 2), wq.slice(0, 0, 2), Tensor(), params({2}, {1}, {1}, 1, {1}));
    expect_close_rms(t, ref_conv_transpose(xq.slice(1, 0, 2), wq.slice(0, 0, 2), Tensor(), params({2}, {1}, {1}, 1, {1})),
                     1e-2, std::string("conv_transpose2d ") + dtype_name(dt));
  }
}

TEST_CASE("conv: gradients match finite differences") {
  auto grad_case = [](ConvFn f, Shape xs, Shape ws, int64_t bias_n, ConvParams p, const std::string& name) {
    check_grad([f, p](const std::vector<Tensor>& in) { return f(in[0], in[1], in[2], p); },
               {rand_t(xs), rand_t(ws), bias_n ? rand_t({bias_n}) : Tensor()}, name);
  };
  grad_case(conv2d, {2, 3, 6, 5}, {5, 3, 3, 3}, 5, params({1}, {1}, {1}, 1), "conv2d k3 p1, B=2, C=3");
  grad_case(conv2d, {2, 4, 9, 7}, {6, 2, 3, 3}, 6, params({2}, {1}, {2}, 2), "conv2d groups 2, s2, d2");
  grad_case(conv2d, {1, 3, 7, 6}, {3, 1, 3, 3}, 0, params({2, 1}, {1}, {1}, 3), "conv2d depthwise, no bias");
  grad_case(conv1d, {2, 3, 11}, {4, 3, 3}, 4, params({2}, {2}, {2}, 1), "conv1d s2 d2");
  grad_case(conv3d, {2, 2, 4, 5, 3}, {3, 2, 3, 3, 2}, 3, params({1, 2, 1}, {1}, {1}, 1), "conv3d");
  grad_case(conv_transpose2d, {2, 4, 3, 4}, {4, 3, 3, 3}, 6, params({2}, {1}, {1}, 2, {1}),
            "conv_transpose2d s2 p1 op1 groups 2");
  grad_case(conv_transpose2d, {1, 3, 3, 2}, {3, 2, 2, 3}, 2, params({1}, {0}, {2}, 1, {1}),
            "conv_transpose2d d2 op1 (op < dilation)");
  grad_case(conv_transpose3d, {1, 3, 2, 3, 2}, {3, 2, 3, 3, 3}, 2, params({2}, {1}, {1}, 1, {1}),
            "conv_transpose3d s2 p1 op1");
}

TEST_CASE("conv: errors name the op, the shapes and the fix") {
  Tensor x = rand_t({1, 6, 8, 10});
  expect_error([&] { conv2d(x, rand_t({4, 5, 3, 3}), Tensor()); },
               {"conv2d", "(1,6,8,10)", "6 channels", "(4,5,3,3)", "expects 5", "groups=1"});
  expect_error([&] { conv2d(x, rand_t({4, 3, 3, 3}), Tensor(), params({1}, {0}, {1}, 4)); }, {"conv2d", "groups=4"});
  expect_error([&] { conv2d(x, rand_t({4, 6, 3, 3}), rand_t({5})); }, {"conv2d", "bias", "(5)"});
  expect_error([&] { conv2d(x.select(0, 0), rand_t({4, 6, 3, 3}), Tensor()); }, {"conv2d", "(6,8,10)", "4-D"});
  expect_error([&] { conv2d(x, rand_t({4, 6, 9, 3}), Tensor()); }, {"conv2d", "smaller than the kernel"});
  expect_error([&] { conv2d(x, rand_t({4, 6, 3, 3}), Tensor(), params({1, 1, 1}, {0}, {1}, 1)); },
               {"conv2d", "stride", "3 values"});
  expect_error([&] { conv2d(x, rand_t({4, 6, 3, 3}), Tensor(), params({1}, {0}, {1}, 1, {1})); },
               {"conv2d", "output_padding", "conv_transpose"});
  expect_error([&] { conv_transpose2d(x, rand_t({6, 2, 3, 3}), Tensor(), params({2}, {0}, {1}, 1, {2})); },
               {"conv_transpose2d", "output_padding", "smaller than stride"});
  expect_error([&] { conv_transpose2d(x, rand_t({5, 2, 3, 3}), Tensor()); },
               {"conv_transpose2d", "(1,6,8,10)", "(5,2,3,3)", "C_in"});
  expect_error([&] { conv3d(x, rand_t({4, 6, 3, 3}), Tensor()); }, {"conv3d", "5-D"});
}

TEST_CASE("conv: GPU forward and backward match the CPU") {
  STEREORT_REQUIRE_GPU();
  // cuDNN's Find may pick Winograd or FFT algorithms, whose transforms add rounding beyond a direct fp32 sum; 3e-5
  // (normwise and per element against |ref| + rms) bounds them at these sizes while any indexing bug is O(1).
  const double kConvTolF32 = 3e-5;
  struct Case {
    ConvFn f;
    Shape x, w;
    int64_t bias_n;
    ConvParams p;
    const char* name;
  };
  std::vector<Case> cases = {
      {conv2d, {2, 5, 17, 23}, {7, 5, 3, 3}, 7, params({1}, {1}, {1}, 1), "conv2d k3 p1"},
      {conv2d, {2, 6, 19, 21}, {9, 2, 3, 3}, 9, params({2}, {2}, {2}, 3), "conv2d groups 3 s2 d2"},
      {conv2d, {1, 32, 33, 41}, {32, 1, 3, 3}, 32, params({1}, {1}, {1}, 32), "conv2d depthwise"},
      {conv2d, {2, 3, 48, 64}, {24, 3, 4, 4}, 24, params({4}, {0}, {1}, 1), "conv2d patch embed k4 s4"},
      {conv1d, {3, 16, 67}, {16, 1, 4}, 16, params({1}, {3}, {1}, 16), "conv1d depthwise k4"},
      {conv3d, {1, 8, 9, 17, 19}, {8, 8, 3, 3, 3}, 0, params({1}, {1}, {1}, 1), "conv3d k3 p1 no bias"},
      {conv3d, {2, 6, 7, 10, 12}, {10, 6, 3, 3, 3}, 10, params({2}, {1}, {1}, 1), "conv3d s2"},
      {conv_transpose2d, {1, 24, 5, 7}, {24, 12, 4, 4}, 12, params({4}, {0}, {1}, 1), "conv_transpose2d k4 s4"},
      {conv_transpose2d, {2, 6, 9, 11}, {6, 4, 3, 3}, 8, params({2}, {1}, {1}, 2, {1}), "conv_transpose2d s2 op1 g2"},
      {conv_transpose3d, {1, 8, 5, 9, 10}, {8, 4, 3, 3, 3}, 4, params({2}, {1}, {1}, 1, {1}),
       "conv_transpose3d s2 p1 op1"},
  };
  for (auto& c : cases) {
    ConvFn f = c.f;
    ConvParams p = c.p;
    auto fn = [f, p](const std::vector<Tensor>& in) { return f(in[0], in[1], in[2], p); };
    std::vector<Tensor> in = {rand_t(c.x), rand_t(c.w), c.bias_n ? rand_t({c.bias_n}) : Tensor()};
    check_gpu_vs_cpu(fn, in, DType::F32, kConvTolF32, std::string(c.name) + " f32");
    for (DType dt : {DType::F16, DType::BF16})
      check_gpu_vs_cpu(fn, in, dt, 1e-2, std::string(c.name) + " " + dtype_name(dt));
  }
  // TF32 and the heuristic (no benchmarking) algorithm choice.
  auto fn = [](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], in[2], params({1}, {1}, {1}, 1)); };
  std::vector<Tensor> in = {rand_t({2, 16, 20, 24}), rand_t({32, 16, 3, 3}), rand_t({32})};
  set_allow_tf32(true);
  check_gpu_vs_cpu(fn, in, DType::F32, kTolTF32.rtol, "conv2d tf32");
  set_allow_tf32(false);
  cuda::set_conv_algo_policy(cuda::ConvAlgoPolicy::Heuristic);
  check_gpu_vs_cpu(fn, in, DType::F32, kConvTolF32, "conv2d heuristic algorithm");
  cuda::set_conv_algo_policy(cuda::ConvAlgoPolicy::Find);
  // output_padding >= stride (allowed by PyTorch when < dilation) has no cuDNN description: a clear error.
  Tensor xg = rand_t({1, 3, 4, 5}, DType::F32).to(gpu()), wg = rand_t({3, 2, 3, 3}, DType::F32).to(gpu());
  expect_error([&] { conv_transpose2d(xg, wg, Tensor(), params({1}, {0}, {2}, 1, {1})); },
               {"cuDNN", "output_padding < stride", "CPU"});
}
