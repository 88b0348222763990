// models/gwcnet.h — the GwcNet-g 3D aggregation head of StereoMamba (stereomamba.md §7, xy-guo/GwcNet).
//   convbn_3d = Conv3d(bias False) + BatchNorm3d. dres0 = convbn(G,C) ReLU convbn(C,C) ReLU; dres1 = convbn ReLU convbn;
//   cost0 = dres1(dres0(V)) + dres0(V); out1..3 = three hourglasses in sequence; classif_i = convbn ReLU Conv3d(C,1).
//   hourglass(C): c1 = ReLU(convbn(C,2C,s2)); c2 = ReLU(convbn(2C,2C)); c3 = ReLU(convbn(2C,4C,s2));
//     c4 = ReLU(convbn(4C,4C)); c5 = ReLU(BN(ConvT3d(4C,2C,3,s2,p1,op1)(c4)) + redir2(c2));
//     c6 = ReLU(BN(ConvT3d(2C,C,3,s2,p1,op1)(c5)) + redir1(x)).
//   Regression: trilinear (align_corners false) x4 on every axis to (max_disp, H, W), softmax over disparity,
//   sum d p (ops/regression.h). Training returns 4 maps (classif0..3), eval only classif3's.
//   Init (GwcNet's loop): conv weights N(0, sqrt(2 / (k_prod * out))), BN 1/0; ConvTranspose3d PyTorch default.
#pragma once
#include <memory>
#include <vector>

#include "models/layers.h"

namespace stereort {

struct ConvBnRelu : Module {  // nn.Sequential(convbn_3d, ReLU): keys "0.0", "0.1"
  ConvBnRelu(int64_t in, int64_t out, int64_t stride);
  Tensor forward(const Tensor& x) const;
  ConvBn cb;
};

struct Hourglass : Module {
  explicit Hourglass(int64_t c);
  Tensor forward(const Tensor& x) const;
  ConvBnRelu conv1, conv2, conv3, conv4;
  ConvBn conv5, conv6, redir1, redir2;
};

struct Classifier : Module {  // keys "0.0", "0.1" (convbn), "2" (Conv3d C->1)
  explicit Classifier(int64_t c);
  Tensor forward(const Tensor& x) const;
  ConvBn cb;
  ConvNd out;
};

struct Dres : Module {  // convbn ReLU convbn [ReLU]: keys "0.*", "2.*"
  Dres(int64_t in, int64_t c, bool final_relu);
  Tensor forward(const Tensor& x) const;
  bool final_relu;
  ConvBn a, b;
};

struct GwcHead : Module {
  GwcHead(int64_t groups, int64_t max_disp, int64_t c = 32);
  // Features (B,Cf,h,w) NCHW; image size (H,W) = 4 (h,w). Returns [disp0..3] in training, [disp3] in eval, (B,H,W).
  std::vector<Tensor> forward(const Tensor& left, const Tensor& right) const;
  void reset_parameters(uint64_t stream) override;
  // The raw classifier costs (B,1,D4,h,w) of the last forward's eval path, for debugging and golden checks.
  std::vector<Tensor> costs(const Tensor& left, const Tensor& right) const;
  int64_t groups, max_disp, c;
  Dres dres0, dres1;
  Hourglass dres2, dres3, dres4;
  Classifier classif0, classif1, classif2, classif3;
};

}  // namespace stereort
