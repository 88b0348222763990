// tests/test_activation.cpp — activations: CPU forward vs float64 reference formulas written here from the PyTorch
// definitions; the derivative kinds of ops/unary_math.h vs central differences of those references; gradcheck of the
// ops; kink rules; 16-bit CPU paths; GPU forward + backward vs CPU; error messages.
//   Kink rule: relu / leaky_relu have a kink at 0 (and softplus with a custom threshold at beta*x == threshold);
//   random inputs are pushed at least 0.05 away from kinks, and the value at the kink is tested separately.
#include <cmath>
#include <functional>

#include "core/check.h"
#include "core/context.h"
#include "core/error.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

using Fn1 = std::function<double(double)>;
using Op = std::function<Tensor(const Tensor&)>;

double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_softplus(double x, double beta, double thr) {
  return beta * x > thr ? x : std::log1p(std::exp(beta * x)) / beta;
}

struct Case {
  const char* name;
  Op op;
  Fn1 ref;
  UnaryKind grad_kind;  // derivative kind checked directly (SigmoidGradFromY/TanhGradFromY take y)
  bool grad_from_y;
  double p;             // kind parameter
};

std::vector<Case> cases() {
  const double kPi = 3.14159265358979323846;
  return {
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, UnaryKind::ReluGrad,
       false, 0.0},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, [](double x) { return x > 0 ? x : 0.2 * x; },
       UnaryKind::LeakyReluGrad, false, 0.2},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }, UnaryKind::GeluErfGrad, false, 0.0},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); },
       [kPi](double x) { return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (x + 0.044715 * x * x * x))); },
       UnaryKind::GeluTanhGrad, false, 0.0},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); }, [](double x) { return x * ref_sigmoid(1.702 * x); },
       UnaryKind::QuickGeluGrad, false, 0.0},
      {"silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x * ref_sigmoid(x); },
       UnaryKind::SiluGrad, false, 0.0},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, ref_sigmoid, UnaryKind::SigmoidGradFromY, true, 0.0},
      {"tanh", [](const Tensor& x) { return stereort::tanh(x); }, [](double x) { return std::tanh(x); },
       UnaryKind::TanhGradFromY, true, 0.0},
      {"softplus", [](const Tensor& x) { return softplus(x); }, [](double x) { return ref_softplus(x, 1.0, 20.0); },
       UnaryKind::SoftplusGrad, false, 0.0},
  };
}

// Inputs in [lo, hi) moved at least 0.05 away from 0 (the relu kink).
Tensor away_from_zero(Tensor x) {
  std::vector<double> v = x.to_vector();
  for (double& e : v)
    if (std::fabs(e) < 0.05) e = e < 0 ? e - 0.05 : e + 0.05;
  return Tensor::from_vector(v, x.shape(), x.dtype());
}

Tensor apply_ref(const Fn1& f, const Tensor& x) {
  std::vector<double> v = x.to_vector();
  for (double& e : v) e = f(e);
  return Tensor::from_vector(v, x.shape(), DType::F64);
}

std::pair<Tensor, Tensor> fwd_bwd(const Op& f, const Tensor& x, const Tensor& gout) {
  Tensor xi = x.detach().clone();
  xi.set_requires_grad(true);
  Tensor y = f(xi);
  y.backward(gout);
  return {y.detach(), xi.grad()};
}

}  // namespace

TEST_CASE("activations: CPU forward vs float64 reference (f64, f32, f16, bf16)") {
  // Wide range: tails of sigmoid/tanh, the softplus threshold (x > 20) and both signs.
  Tensor x = away_from_zero(rand_t({3, 7, 11}, DType::F64, -8.0, 8.0));
  std::vector<double> v = x.to_vector();
  v[0] = 25.0;  // softplus linear branch
  v[1] = -30.0;
  v[2] = 19.5;
  x = Tensor::from_vector(v, x.shape(), DType::F64);
  for (const Case& c : cases()) {
    Tensor ref = apply_ref(c.ref, x);
    expect_close(c.op(x), ref, kTolF64, std::string(c.name) + " f64");
    Tensor x32 = x.to(DType::F32);
    expect_close(c.op(x32), apply_ref(c.ref, x32), kTolF32, std::string(c.name) + " f32");
    Tensor x16 = x.to(DType::F16);
    Tensor y16 = c.op(x16);
    CHECK(y16.dtype() == DType::F16);
    expect_close(y16, apply_ref(c.ref, x16), kTolF16, std::string(c.name) + " f16");
    Tensor xb = x.to(DType::BF16);
    expect_close(c.op(xb), apply_ref(c.ref, xb), kTolBF16, std::string(c.name) + " bf16");
  }
}

TEST_CASE("activations: derivative kinds of unary_math.h vs central differences of the references") {
  // Dense sweep over [-7, 7] away from the relu kink; f'(x) by central differences in double (h = 1e-5, error ~1e-10).
  std::vector<double> pts;
  for (int i = 0; i < 281; ++i) {
    double t = -7.0 + 0.05 * i + 0.0123;
    pts.push_back(t);
  }
  Tensor x = Tensor::from_vector(pts, {int64_t(pts.size())}, DType::F64);
  const double h = 1e-5;
  for (const Case& c : cases()) {
    std::vector<double> num;
    for (double t : pts) num.push_back((c.ref(t + h) - c.ref(t - h)) / (2 * h));
    Tensor arg = c.grad_from_y ? apply_ref(c.ref, x) : x;
    Tensor got = unary_raw(c.grad_kind, arg, c.p);
    expect_close(got, Tensor::from_vector(num, x.shape(), DType::F64), 1e-7, 1e-9, std::string(c.name) + "'");
  }
}

TEST_CASE("activations: gradcheck in float64 (batch > 1, odd shapes)") {
  Tensor x = away_from_zero(rand_t({2, 3, 5}, DType::F64, -4.0, 4.0));
  for (const Case& c : cases()) {
    Op op = c.op;
    check_grad([op](const std::vector<Tensor>& in) { return op(in[0]); }, {x}, c.name);
  }
}

TEST_CASE("softplus: beta and threshold follow F.softplus") {
  // beta = 2, threshold = 5: linear where 2x > 5. Keep inputs away from the switch at x = 2.5.
  Tensor x = rand_t({3, 4, 5}, DType::F64, -6.0, 6.0);
  std::vector<double> v = x.to_vector();
  for (double& e : v)
    if (std::fabs(e - 2.5) < 0.05) e += 0.1;
  x = Tensor::from_vector(v, x.shape(), DType::F64);
  expect_close(softplus(x, 2.0, 5.0), apply_ref([](double t) { return ref_softplus(t, 2.0, 5.0); }, x), kTolF64,
               "softplus beta 2 threshold 5");
  expect_close(softplus(x.to(DType::F32), 0.5, 1.0),
               apply_ref([](double t) { return ref_softplus(t, 0.5, 1.0); }, x.to(DType::F32)), kTolF32,
               "softplus beta 0.5 threshold 1 f32");
  check_grad([](const std::vector<Tensor>& in) { return softplus(in[0], 2.0, 5.0); }, {x}, "softplus beta 2");
  // Threshold above 20: log1p(exp(z)) is evaluated as z for 20 < z <= threshold; error < exp(-20) (stated in
  // ops/activation.cpp).
  Tensor big = Tensor::from_vector({21.0, 25.0, 29.0, -3.0}, {4}, DType::F64);
  expect_close(softplus(big, 1.0, 30.0), apply_ref([](double t) { return ref_softplus(t, 1.0, 30.0); }, big), 0, 3e-9,
               "softplus threshold 30");
}

TEST_CASE("activations: kink values") {
  // PyTorch: relu'(0) = 0 (threshold_backward), leaky_relu'(0) = slope (x > 0 ? 1 : slope).
  Tensor x = Tensor::from_vector({0.0, -0.0, 2.0, -3.0}, {4}, DType::F64);
  Tensor g = Tensor::ones({4}, DType::F64);
  auto [y, dx] = fwd_bwd([](const Tensor& t) { return relu(t); }, x, g);
  CHECK(y.to_vector() == std::vector<double>{0, 0, 2, 0});
  CHECK(dx.to_vector() == std::vector<double>{0, 0, 1, 0});
  auto [yl, dl] = fwd_bwd([](const Tensor& t) { return leaky_relu(t, 0.1); }, x, g);
  CHECK(dl.to_vector() == std::vector<double>{0.1, 0.1, 1, 0.1});
  CHECK(yl.to_vector()[3] == doctest::Approx(-0.3));
  // softplus at the default threshold: x = 20 is the log branch, x = 20.5 the linear one with derivative 1.
  auto [ys, ds] = fwd_bwd([](const Tensor& t) { return softplus(t); },
                          Tensor::from_vector({20.0, 20.5}, {2}, DType::F64), Tensor::ones({2}, DType::F64));
  CHECK(ys.to_vector()[0] == std::log1p(std::exp(20.0)));
  CHECK(ys.to_vector()[1] == 20.5);
  CHECK(ds.to_vector()[1] == 1.0);
}

TEST_CASE("activations: errors name the op and the input") {
  Tensor xi = Tensor::zeros({2, 3}, DType::I64);
  expect_error([&] { relu(xi); }, {"relu", "i64", "(2,3)"});
  expect_error([&] { gelu(xi); }, {"gelu", "floating"});
  expect_error([&] { softplus(Tensor::zeros({2}), 0.0); }, {"softplus", "beta"});
}

TEST_CASE("activations: GPU forward and backward vs CPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  Tensor x = away_from_zero(rand_t({3, 37, 129}, DType::F32, -6.0, 6.0));
  Tensor gout = rand_t({3, 37, 129}, DType::F32, -1.0, 1.0);
  std::vector<Case> cs = cases();
  cs.push_back({"softplus_b2_t5", [](const Tensor& t) { return softplus(t, 2.0, 5.0); }, nullptr, UnaryKind::Relu,
                false, 0.0});
  for (const Case& c : cs) {
    auto [y, dx] = fwd_bwd(c.op, x, gout);
    auto [yg, dxg] = fwd_bwd(c.op, x.cuda(), gout.cuda());
    CHECK(yg.is_cuda());
    // The GPU evaluates exp/erf/tanh with CUDA's libdevice (a few ulp from glibc): 1e-5 relative.
    expect_close(yg.cpu(), y, kTolF32, std::string(c.name) + " GPU fwd f32");
    expect_close(dxg.cpu(), dx, kTolF32, std::string(c.name) + " GPU bwd f32");
    for (DType dt : {DType::F16, DType::BF16}) {
      Tol tol = dt == DType::F16 ? kTolF16 : kTolBF16;
      Tensor xh = x.to(dt), gh = gout.to(dt);
      auto [yh, dxh] = fwd_bwd(c.op, xh, gh);
      auto [yhg, dxhg] = fwd_bwd(c.op, xh.cuda(), gh.cuda());
      expect_close(yhg.cpu().to(DType::F32), yh.to(DType::F32), tol, std::string(c.name) + " GPU fwd 16-bit");
      expect_close(dxhg.cpu().to(DType::F32), dxh.to(DType::F32), tol, std::string(c.name) + " GPU bwd 16-bit");
    }
  }
}

TEST_CASE("activations: CUDA unary launches write every output element (poisoned outputs) [gpu]") {
  STEREORT_REQUIRE_GPU();
  Tensor x = away_from_zero(rand_t({5, 1001}, DType::F32, -5.0, 5.0));
  Tensor xg = x.cuda();
  for (UnaryKind k : {UnaryKind::Relu, UnaryKind::GeluErf, UnaryKind::GeluErfGrad, UnaryKind::Silu,
                      UnaryKind::SoftplusGrad, UnaryKind::QuickGeluGrad}) {
    Tensor out = Tensor::empty(x.shape(), DType::F32, gpu());
    poison(out);
    STEREORT_CUDA_PATH(cuda::unary(k, out, xg, 0.0, Context::get(gpu())));
    expect_close(out.cpu(), unary_raw(k, x), kTolF32, "unary kind " + std::to_string(int(k)));
  }
}
