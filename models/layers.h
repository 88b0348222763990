// models/layers.h — the building blocks with PyTorch parameter names and default initialisation.
//   Linear (weight (Out,In), bias), Conv{1,2,3}d (weight (O, C/g, k...)), ConvTranspose{2,3}d (weight (C, O/g, k...)),
//   LayerNorm (weight, bias; over the last dim), BatchNorm (weight, bias, running_mean, running_var,
//   num_batches_tracked; 2D and 3D maps), and Sequential-style containers are plain members registered as "0", "1".
//   Default init as PyTorch: kaiming_uniform(a=sqrt 5) => U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases
//   (transposed convs take fan_in from weight dim 1, as PyTorch does); norms weight 1, bias 0.
#pragma once
#include <memory>
#include <vector>

#include "models/module.h"
#include "ops/conv.h"

namespace stereort {

struct Linear : Module {
  Linear(int64_t in, int64_t out, bool bias = true);
  Tensor forward(const Tensor& x) const;  // (..., In) -> (..., Out)
  void reset_parameters(uint64_t stream) override;
  int64_t in_features, out_features;
  Tensor weight, bias;
};

struct ConvNd : Module {
  // dims 1, 2 or 3; transposed flips the weight layout to (C_in, C_out/g, k...).
  ConvNd(int dims, int64_t in, int64_t out, int64_t kernel, const ConvParams& p, bool bias, bool transposed = false);
  Tensor forward(const Tensor& x) const;
  void reset_parameters(uint64_t stream) override;
  int dims;
  bool transposed;
  ConvParams params;
  Tensor weight, bias;
};

struct LayerNorm : Module {
  explicit LayerNorm(int64_t dim, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;  // over the last dim
  void reset_parameters(uint64_t stream) override;
  double eps;
  Tensor weight, bias;
};

struct BatchNorm : Module {
  explicit BatchNorm(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  Tensor forward(const Tensor& x) const;  // (B,C,...) batch statistics in training, running stats in eval
  void reset_parameters(uint64_t stream) override;
  double eps, momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  mutable int64_t batches_ = -1;
};

// nn.Sequential(Conv, ReLU[, BatchNorm]): keys "0" (conv) and "2" (BatchNorm). MFF and CrossAttn are built of these.
struct ConvRelu : Module {
  ConvRelu(int dims, int64_t in, int64_t out, int64_t kernel, const ConvParams& p, bool bias = true,
           bool transposed = false, bool batchnorm = false);
  Tensor forward(const Tensor& x) const;  // bn(relu(conv(x)))
  ConvNd conv;
  std::unique_ptr<BatchNorm> bn;
};

// Conv followed by BatchNorm, keys "<i>.0" (conv) and "<i>.1" (bn) — GwcNet's convbn / convbn_3d.
struct ConvBn : Module {
  ConvBn(int dims, int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t pad, bool transposed = false,
         int64_t output_padding = 0);
  Tensor forward(const Tensor& x) const;
  ConvNd conv;
  BatchNorm bn;
};

}  // namespace stereort
