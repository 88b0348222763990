// models/gwcnet.cpp — GwcNet-g head: volume, dres0/1, hourglasses, classifiers, regression.
#include "models/gwcnet.h"

#include <cmath>

#include "core/check.h"
#include "ops/activation.h"
#include "ops/cost_volume.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/regression.h"
#include "train/amp.h"

namespace stereort {

ConvBnRelu::ConvBnRelu(int64_t in, int64_t out, int64_t stride) : cb(3, in, out, 3, stride, 1) {
  register_module("0", &cb);
}
Tensor ConvBnRelu::forward(const Tensor& x) const { return relu(cb.forward(x)); }

Hourglass::Hourglass(int64_t c)
    : conv1(c, 2 * c, 2),
      conv2(2 * c, 2 * c, 1),
      conv3(2 * c, 4 * c, 2),
      conv4(4 * c, 4 * c, 1),
      conv5(3, 4 * c, 2 * c, 3, 2, 1, true, 1),
      conv6(3, 2 * c, c, 3, 2, 1, true, 1),
      redir1(3, c, c, 1, 1, 0),
      redir2(3, 2 * c, 2 * c, 1, 1, 0) {
  register_module("conv1", &conv1);
  register_module("conv2", &conv2);
  register_module("conv3", &conv3);
  register_module("conv4", &conv4);
  register_module("conv5", &conv5);
  register_module("conv6", &conv6);
  register_module("redir1", &redir1);
  register_module("redir2", &redir2);
}

Tensor Hourglass::forward(const Tensor& x) const {
  Tensor c2 = conv2.forward(conv1.forward(x));
  Tensor c4 = conv4.forward(conv3.forward(c2));
  Tensor c5 = relu(add(conv5.forward(c4), redir2.forward(c2)));
  return relu(add(conv6.forward(c5), redir1.forward(x)));
}

Classifier::Classifier(int64_t c) : cb(3, c, c, 3, 1, 1), out(3, c, 1, 3, [] {
  ConvParams p;
  p.padding = {1};
  return p;
}(), false) {
  register_module("0", &cb);
  register_module("2", &out);
}
Tensor Classifier::forward(const Tensor& x) const { return out.forward(relu(cb.forward(x))); }

Dres::Dres(int64_t in, int64_t c, bool fr) : final_relu(fr), a(3, in, c, 3, 1, 1), b(3, c, c, 3, 1, 1) {
  register_module("0", &a);
  register_module("2", &b);
}
Tensor Dres::forward(const Tensor& x) const {
  Tensor y = b.forward(relu(a.forward(x)));
  return final_relu ? relu(y) : y;
}

GwcHead::GwcHead(int64_t g, int64_t md, int64_t cc)
    : groups(g), max_disp(md), c(cc), dres0(g, cc, true), dres1(cc, cc, false), dres2(cc), dres3(cc), dres4(cc),
      classif0(cc), classif1(cc), classif2(cc), classif3(cc) {
  register_module("dres0", &dres0);
  register_module("dres1", &dres1);
  register_module("dres2", &dres2);
  register_module("dres3", &dres3);
  register_module("dres4", &dres4);
  register_module("classif0", &classif0);
  register_module("classif1", &classif1);
  register_module("classif2", &classif2);
  register_module("classif3", &classif3);
}

void GwcHead::reset_parameters(uint64_t s) {
  // GwcNet: Conv2d/Conv3d weights N(0, sqrt(2 / (k_prod * out_channels))); BN 1/0 (set by BatchNorm).
  uint64_t k = 0;
  for (auto& kv : named_parameters()) {
    Tensor& w = *kv.second;
    if (w.dim() != 5 || kv.first.find("conv5") != std::string::npos || kv.first.find("conv6") != std::string::npos)
      continue;  // ConvTranspose3d keeps the PyTorch default
    double n = double(w.size(2) * w.size(3) * w.size(4) * w.size(0));
    normal_(w, 0.0, std::sqrt(2.0 / n), s, k++);
  }
}

std::vector<Tensor> GwcHead::costs(const Tensor& left, const Tensor& right) const {
  int64_t d4 = max_disp / 4;
  Tensor vol = cost_volume_gwc(left, right, d4, groups);  // (B,G,D4,h,w)
  Tensor c0 = dres0.forward(vol);
  c0 = add(dres1.forward(c0), c0);
  Tensor o1 = dres2.forward(c0);
  Tensor o2 = dres3.forward(o1);
  Tensor o3 = dres4.forward(o2);
  if (!training_) return {classif3.forward(o3)};
  return {classif0.forward(c0), classif1.forward(o1), classif2.forward(o2), classif3.forward(o3)};
}

std::vector<Tensor> GwcHead::forward(const Tensor& left, const Tensor& right) const {
  STEREORT_CHECK(left.shape() == right.shape() && left.dim() == 4, "GwcHead: features {} and {} must match (B,C,h,w)",
                 left.desc(), right.desc());
  int64_t H = left.size(2) * 4, W = left.size(3) * 4;
  std::vector<Tensor> out;
  // Regression (softmax over 192 bins) in fp32 whatever the autocast dtype of the 3D head.
  for (const Tensor& c : costs(left, right)) out.push_back(disparity_regression(upcast_half(c), max_disp, H, W));
  return out;
}

}  // namespace stereort
