// ops/activation.cpp — activations as UnaryKind launches (ops/unary_math.h) plus their autograd nodes.
//   Forward: one unary_raw pass (CPU loop or cuda/elementwise.cu). Backward: relu is one masked pass g*(y>0);
//   the others compute f'(x) (or f'(y)) with a unary pass and multiply by g (two memory-bound passes, no new kernels).
//   softplus with beta == 1 and threshold == 20 is a single kind; other (beta, threshold) compose
//   z = beta*x -> Softplus(z)/beta -> where(z > threshold, x, .). The Softplus kind itself returns z for z > 20, so
//   with threshold > 20 the band 20 < z <= threshold evaluates log1p(exp(z)) as z: an absolute error below
//   exp(-20)/beta = 2.1e-9/beta (under one fp32 ulp of z there), and derivative 1 instead of sigmoid(z).
#include "ops/activation.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/shape_ops.h"

namespace stereort {

namespace {

void check_floating(const char* op, const Tensor& x) {
  STEREORT_CHECK(x.defined(), "{}: input is undefined", op);
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating (f64/f32/f16/bf16); cast with .to()", op,
                 x.desc());
}

// y = f(x); dx = g * f'(x) with f' given by `grad_kind` evaluated at the saved input.
Tensor activation_from_input(const char* name, UnaryKind kind, UnaryKind grad_kind, const Tensor& x, double p = 0.0) {
  check_floating(name, x);
  Tensor out = unary_raw(kind, x, p);
  if (needs_grad({x})) {
    Tensor xd = x.detach();
    record(name, {x}, {out}, [xd, grad_kind, p](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {binary_raw(BinaryKind::Mul, g[0], unary_raw(grad_kind, xd, p))};
    });
  }
  return out;
}

// y = f(x); dx = g * f'(y) (sigmoid, tanh: the derivative is a function of the output).
Tensor activation_from_output(const char* name, UnaryKind kind, UnaryKind grad_kind, const Tensor& x) {
  check_floating(name, x);
  Tensor out = unary_raw(kind, x);
  if (needs_grad({x})) {
    Tensor yd = out.detach();
    record(name, {x}, {out}, [yd, grad_kind](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {binary_raw(BinaryKind::Mul, g[0], unary_raw(grad_kind, yd))};
    });
  }
  return out;
}

}  // namespace

Tensor relu(const Tensor& x) {
  check_floating("relu", x);
  Tensor out = unary_raw(UnaryKind::Relu, x);
  if (needs_grad({x})) {
    Tensor yd = out.detach();  // y > 0 exactly where x > 0; saving y lets x be freed
    record("relu", {x}, {out}, [yd](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {binary_raw(BinaryKind::MaskGreater, g[0], yd)};
    });
  }
  return out;
}

Tensor leaky_relu(const Tensor& x, double slope) {
  return activation_from_input("leaky_relu", UnaryKind::LeakyRelu, UnaryKind::LeakyReluGrad, x, slope);
}

Tensor gelu(const Tensor& x, bool tanh_approx) {
  if (tanh_approx) return activation_from_input("gelu_tanh", UnaryKind::GeluTanh, UnaryKind::GeluTanhGrad, x);
  return activation_from_input("gelu", UnaryKind::GeluErf, UnaryKind::GeluErfGrad, x);
}

Tensor quick_gelu(const Tensor& x) {
  return activation_from_input("quick_gelu", UnaryKind::QuickGelu, UnaryKind::QuickGeluGrad, x);
}

Tensor silu(const Tensor& x) { return activation_from_input("silu", UnaryKind::Silu, UnaryKind::SiluGrad, x); }

Tensor sigmoid(const Tensor& x) {
  return activation_from_output("sigmoid", UnaryKind::Sigmoid, UnaryKind::SigmoidGradFromY, x);
}

Tensor tanh(const Tensor& x) { return activation_from_output("tanh", UnaryKind::Tanh, UnaryKind::TanhGradFromY, x); }

Tensor softplus(const Tensor& x, double beta, double threshold) {
  STEREORT_CHECK(std::isfinite(beta) && beta != 0.0, "softplus: beta must be finite and non-zero, got {} (input {})",
                 beta, x.defined() ? x.desc() : std::string("undefined"));
  if (beta == 1.0 && threshold == 20.0)
    return activation_from_input("softplus", UnaryKind::Softplus, UnaryKind::SoftplusGrad, x);
  check_floating("softplus", x);
  Tensor z = beta == 1.0 ? x.detach() : unary_raw(UnaryKind::MulScalar, x, beta);
  Tensor soft = unary_raw(UnaryKind::Softplus, z);
  if (beta != 1.0) soft = unary_raw(UnaryKind::MulScalar, soft, 1.0 / beta);
  // below = (z <= threshold): threshold >= z.
  Tensor thr = Tensor::full({}, threshold, x.dtype(), x.device());
  Tensor below = binary_raw(BinaryKind::Ge, thr, z);
  Tensor out = where_raw(below, soft, x);
  if (needs_grad({x})) {
    Tensor zd = z, bd = below;
    record("softplus", {x}, {out}, [zd, bd](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor d = unary_raw(UnaryKind::SoftplusGrad, zd);  // sigmoid(z) (1 for z > 20)
      Tensor one = Tensor::full({}, 1.0, d.dtype(), d.device());
      return {binary_raw(BinaryKind::Mul, g[0], where_raw(bd, d, one))};  // 1 where z > threshold
    });
  }
  return out;
}

}  // namespace stereort
