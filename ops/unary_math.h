// ops/unary_math.h — the scalar formulas behind UnaryKind/BinaryKind, shared by the CPU loops and the CUDA kernels
// (host+device inline). T is float or double (the opmath type).
//   softplus(x) = x for x > 20 (PyTorch threshold), else log1p(exp(x)).
//   gelu_erf(x) = x * 0.5 * (1 + erf(x / sqrt 2));  gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
//   quick_gelu(x) = x * sigmoid(1.702 x);  silu(x) = x * sigmoid(x);  leaky_relu slope = p.
#pragma once
#include <cmath>

#include "ops/elementwise.h"

#if defined(__CUDACC__)
#define STEREORT_HDI __host__ __device__ __forceinline__
#else
#define STEREORT_HDI inline
#endif

namespace stereort {

template <typename T>
STEREORT_HDI T sigmoid_of(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T>
STEREORT_HDI T apply_unary(UnaryKind k, T x, T p) {
  using std::exp; using std::log; using std::sqrt; using std::tanh; using std::erf; using std::log1p; using std::pow;
  using std::fabs;
  constexpr T kSqrt1_2 = T(0.70710678118654752440);
  constexpr T kSqrt2OverPi = T(0.79788456080286535588);
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);
  switch (k) {
    case UnaryKind::Neg: return -x;
    case UnaryKind::Exp: return exp(x);
    case UnaryKind::Log: return log(x);
    case UnaryKind::Sqrt: return sqrt(x);
    case UnaryKind::Rsqrt: return T(1) / sqrt(x);
    case UnaryKind::Pow: return pow(x, p);
    case UnaryKind::Abs: return fabs(x);
    case UnaryKind::Square: return x * x;
    case UnaryKind::AddScalar: return x + p;
    case UnaryKind::MulScalar: return x * p;
    case UnaryKind::RsubScalar: return p - x;
    case UnaryKind::Sign: return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0));
    case UnaryKind::Relu: return (x > T(0) || x != x) ? x : T(0);  // NaN propagates, as in PyTorch
    case UnaryKind::LeakyRelu: return x > T(0) ? x : x * p;
    case UnaryKind::GeluErf: return x * T(0.5) * (T(1) + erf(x * kSqrt1_2));
    case UnaryKind::GeluTanh: return T(0.5) * x * (T(1) + tanh(kSqrt2OverPi * (x + T(0.044715) * x * x * x)));
    case UnaryKind::QuickGelu: return x * sigmoid_of(T(1.702) * x);
    case UnaryKind::Silu: return x * sigmoid_of(x);
    case UnaryKind::Sigmoid: return sigmoid_of(x);
    case UnaryKind::Tanh: return tanh(x);
    case UnaryKind::Softplus: return x > T(20) ? x : log1p(exp(x));
    case UnaryKind::ReluGrad: return x > T(0) ? T(1) : T(0);
    case UnaryKind::LeakyReluGrad: return x > T(0) ? T(1) : p;
    case UnaryKind::GeluErfGrad:
      return T(0.5) * (T(1) + erf(x * kSqrt1_2)) + x * kInvSqrt2Pi * exp(T(-0.5) * x * x);
    case UnaryKind::GeluTanhGrad: {
      T inner = kSqrt2OverPi * (x + T(0.044715) * x * x * x);
      T t = tanh(inner);
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * kSqrt2OverPi * (T(1) + T(3 * 0.044715) * x * x);
    }
    case UnaryKind::QuickGeluGrad: {
      T s = sigmoid_of(T(1.702) * x);
      return s + T(1.702) * x * s * (T(1) - s);
    }
    case UnaryKind::SiluGrad: {
      T s = sigmoid_of(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case UnaryKind::SigmoidGradFromY: return x * (T(1) - x);
    case UnaryKind::TanhGradFromY: return T(1) - x * x;
    case UnaryKind::SoftplusGrad: return x > T(20) ? T(1) : sigmoid_of(x);
  }
  return x;
}

template <typename T>
STEREORT_HDI T apply_binary(BinaryKind k, T a, T b) {
  switch (k) {
    case BinaryKind::Add: return a + b;
    case BinaryKind::Sub: return a - b;
    case BinaryKind::Mul: return a * b;
    case BinaryKind::Div: return a / b;
    case BinaryKind::Max: return a >= b ? a : b;
    case BinaryKind::Min: return a <= b ? a : b;
    case BinaryKind::MaskGreater: return b > T(0) ? a : T(0);
    case BinaryKind::Ge: return a >= b ? T(1) : T(0);
  }
  return a;
}

}  // namespace stereort
