// models/layers.cpp — Linear, ConvNd, LayerNorm, BatchNorm, ConvBn.
#include "models/layers.h"

#include <cmath>

#include "core/check.h"
#include "ops/activation.h"
#include "ops/init.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "train/amp.h"

namespace stereort {

Linear::Linear(int64_t in, int64_t out, bool has_bias) : in_features(in), out_features(out) {
  weight = Tensor::zeros({out, in});
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::zeros({out});
    register_parameter("bias", &bias);
  }
}

void Linear::reset_parameters(uint64_t s) {
  double bound = 1.0 / std::sqrt(double(in_features));
  uniform_(weight, -bound, bound, s, 0);
  if (bias.defined()) uniform_(bias, -bound, bound, s, 1);
}

// Autocast (train/amp.h): matmul-like ops run in the autocast dtype; the casts are differentiable, so fp32 master
// weights receive fp32 gradients.
static Tensor ac(const Tensor& t) { return autocast(t); }

Tensor Linear::forward(const Tensor& x) const { return linear(ac(x), ac(weight), ac(bias)); }

ConvNd::ConvNd(int d, int64_t in, int64_t out, int64_t k, const ConvParams& p, bool has_bias, bool tr)
    : dims(d), transposed(tr), params(p) {
  STEREORT_CHECK(d >= 1 && d <= 3, "ConvNd: {} spatial dims", d);
  STEREORT_CHECK(in % p.groups == 0 && out % p.groups == 0, "ConvNd: channels {} -> {} not divisible by groups {}", in,
                 out, p.groups);
  Shape ws = tr ? Shape{in, out / p.groups} : Shape{out, in / p.groups};
  for (int i = 0; i < d; ++i) ws.push_back(k);
  weight = Tensor::zeros(ws);
  register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::zeros({out});
    register_parameter("bias", &bias);
  }
}

void ConvNd::reset_parameters(uint64_t s) {
  int64_t fan_in = weight.size(1);
  for (int i = 2; i < weight.dim(); ++i) fan_in *= weight.size(i);
  double bound = 1.0 / std::sqrt(double(fan_in));
  uniform_(weight, -bound, bound, s, 0);
  if (bias.defined()) uniform_(bias, -bound, bound, s, 1);
}

Tensor ConvNd::forward(const Tensor& x_in) const {
  Tensor x = ac(x_in), w = ac(weight), b = ac(bias);
  if (transposed) return dims == 2 ? conv_transpose2d(x, w, b, params) : conv_transpose3d(x, w, b, params);
  switch (dims) {
    case 1: return conv1d(x, w, b, params);
    case 2: return conv2d(x, w, b, params);
    default: return conv3d(x, w, b, params);
  }
}

LayerNorm::LayerNorm(int64_t dim, double e) : eps(e) {
  weight = Tensor::ones({dim});
  bias = Tensor::zeros({dim});
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
}
void LayerNorm::reset_parameters(uint64_t) {
  weight.fill_(1.0);
  bias.fill_(0.0);
}
Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

BatchNorm::BatchNorm(int64_t c, double e, double m) : eps(e), momentum(m) {
  weight = Tensor::ones({c});
  bias = Tensor::zeros({c});
  running_mean = Tensor::zeros({c});
  running_var = Tensor::ones({c});
  num_batches_tracked = Tensor::zeros({}, DType::I64);
  register_parameter("weight", &weight);
  register_parameter("bias", &bias);
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked);
}
void BatchNorm::reset_parameters(uint64_t) {
  weight.fill_(1.0);
  bias.fill_(0.0);
  running_mean.fill_(0.0);
  running_var.fill_(1.0);
  num_batches_tracked.fill_(0.0);
}
Tensor BatchNorm::forward(const Tensor& x) const {
  if (training_) {
    // num_batches_tracked is bookkeeping only (momentum is fixed); keep it counting like PyTorch without a device
    // round trip per call: read it once, then count on the host and fill asynchronously.
    if (batches_ < 0) batches_ = int64_t(num_batches_tracked.item());
    num_batches_tracked.fill_(double(++batches_));
  }
  return batch_norm(x, weight, bias, running_mean, running_var, training_, momentum, eps);
}

ConvRelu::ConvRelu(int d, int64_t in, int64_t out, int64_t k, const ConvParams& p, bool bias, bool tr, bool bnorm)
    : conv(d, in, out, k, p, bias, tr) {
  register_module("0", &conv);
  if (bnorm) {
    bn.reset(new BatchNorm(out));
    register_module("2", bn.get());
  }
}
Tensor ConvRelu::forward(const Tensor& x) const {
  Tensor y = relu(conv.forward(x));
  return bn ? bn->forward(y) : y;
}

ConvBn::ConvBn(int d, int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool tr, int64_t op)
    : conv(d, in, out, k, [&] {
        ConvParams p;
        p.stride = {stride};
        p.padding = {pad};
        p.output_padding = {op};
        return p;
      }(), false, tr),
      bn(out) {
  register_module("0", &conv);
  register_module("1", &bn);
}
Tensor ConvBn::forward(const Tensor& x) const { return bn.forward(conv.forward(x)); }

}  // namespace stereort
