// ops/activation.h — point-wise activations, forward + backward, CPU and CUDA (PyTorch definitions).
//   relu(x)               max(x, 0);                       relu'(0) = 0 (PyTorch threshold_backward)
//   leaky_relu(x, s)      x > 0 ? x : s*x;                 derivative at 0 = s (PyTorch: x > 0 ? 1 : s)
//   gelu(x)               x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))                     nn.GELU() (approximate='none')
//   gelu(x, true)         0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))              nn.GELU(approximate='tanh')
//   quick_gelu(x)         x * sigmoid(1.702 x)                                         CLIP QuickGELU
//   silu(x)               x * sigmoid(x);  sigmoid(x) = 1 / (1 + exp(-x));  tanh(x)
//   softplus(x, b, t)     x when b*x > t, else log1p(exp(b*x)) / b                     F.softplus(beta=1, threshold=20)
//                         derivative: 1 when b*x > t, else sigmoid(b*x)
// Any shape; f64/f32/f16/bf16 (16-bit types compute in float and round once). The formulas live in ops/unary_math.h
// (shared by the CPU loop and cuda/elementwise.cu); the ops here add autograd: dx = g * f'(x), where sigmoid and
// tanh use their outputs (f' = y(1-y), 1-y^2). Outputs are new contiguous tensors.
#pragma once
#include "core/tensor.h"

namespace stereort {

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double slope = 0.01);
Tensor gelu(const Tensor& x, bool tanh_approx = false);  // erf form by default (PyTorch nn.GELU())
Tensor quick_gelu(const Tensor& x);
Tensor silu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);  // PyTorch: x when beta*x > threshold

}  // namespace stereort
