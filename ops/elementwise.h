// ops/elementwise.h — broadcasting arithmetic and basic unary math, forward + backward, CPU and CUDA.
//   Binary ops broadcast NumPy-style; both operands must share dtype and device (cast with .to()).
//   add/sub/mul/div, scalar forms, neg, exp, log, sqrt, pow(x, p) (scalar exponent), abs, square, rsqrt.
//   Half types compute in float ("opmath") and round once on store. Gradients of broadcast operands are summed
//   back to their shapes (sum_to_shape).
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to the larger (a on ties)
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient to the smaller (a on ties)

Tensor add(const Tensor& a, double s);
Tensor sub(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rsub(double s, const Tensor& a);  // s - a

Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor pow(const Tensor& a, double p);
Tensor abs(const Tensor& a);     // gradient sign(a), 0 at 0
Tensor square(const Tensor& a);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return sub(a, s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return div(a, s); }
inline Tensor operator-(const Tensor& a) { return neg(a); }

// ---- the shared element-wise machinery (used by activation ops too) --------------------------------------------------
// Unary and binary kernels are identified by a small code; each op file may add its own kinds.
enum class UnaryKind : int {
  Neg, Exp, Log, Sqrt, Rsqrt, Pow, Abs, Square, AddScalar, MulScalar, RsubScalar, Sign,
  Relu, LeakyRelu, GeluErf, GeluTanh, QuickGelu, Silu, Sigmoid, Tanh, Softplus,
  // derivatives (out = f'(x) * g is a binary; these compute f'(x))
  ReluGrad, LeakyReluGrad, GeluErfGrad, GeluTanhGrad, QuickGeluGrad, SiluGrad, SigmoidGradFromY, TanhGradFromY,
  SoftplusGrad,
};
enum class BinaryKind : int { Add, Sub, Mul, Div, Max, Min, MaskGreater /* a*(b>0) */, Ge /* a>=b ? 1 : 0 */ };

// Raw (no autograd) launches over whole tensors; out is allocated here (contiguous, broadcast shape).
Tensor unary_raw(UnaryKind k, const Tensor& x, double p = 0.0);
Tensor binary_raw(BinaryKind k, const Tensor& a, const Tensor& b);

namespace cuda {
void unary(UnaryKind k, const Tensor& out, const Tensor& x, double p, const Context& ctx);  // x contiguous
void binary(BinaryKind k, const Tensor& out, const Tensor& a, const Tensor& b, const Context& ctx);  // a,b at out shape
}  // namespace cuda

}  // namespace stereort
