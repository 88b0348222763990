// models/feature_fusion.h — StereoMamba's multi-scale feature fusion (MFF, stereomamba.md §6), per view.
//   V1 (dims d1, d2, d3 = channels of f[0] 1/8, f[1] 1/16, f[3] 1/32):
//     l3 = ReLU(ConvT(d3->d2, k4 s4)(f3)); m = ReLU(Conv3x3(d2+d1 -> d2)(cat[l3, f0])); l0 = ReLU(ConvT(d2->d2, k4 s2 p1)(m));
//     l1 = ReLU(ConvT(d2->d2, k4 s4)(f1)); out = ReLU(Conv3x3(2 d2 -> d2)(cat[l1, l0]))   -> 1/4, d2 channels.
//     Keys upsample_level3.0, conv_concat.0, upsample_level0.0, upsample_level1.0, fusion_conv.0.
//   V2: u0 = ReLU(ConvT(d1->mid, k2 s2)(f0)); u1 = ReLU(ConvT(d2->mid, k4 s4)(f1)); u2 = the same upsample_384 on f2;
//     out = BN(ReLU(Conv3x3(3 mid -> out)(cat[u0,u1,u2]))). Keys upsample_192.0, upsample_384.0, fusion_conv.{0,2}.
//   Inputs and output are channel-last (B,h,w,C).
#pragma once
#include <memory>
#include <vector>

#include "models/layers.h"

namespace stereort {

struct FeatureFusion : Module {
  FeatureFusion(bool v2, const std::vector<int64_t>& dims, int64_t v2_mid = 128, int64_t v2_out = 256);
  Tensor forward(const std::vector<Tensor>& feats) const;  // backbone outputs (BHWC) -> (B,h4,w4,Cout)
  int64_t out_channels() const { return out_c; }
  bool v2;
  int64_t out_c;
  std::unique_ptr<ConvRelu> upsample_level3, conv_concat, upsample_level0, upsample_level1, fusion_conv;  // V1
  std::unique_ptr<ConvRelu> upsample_192, upsample_384;                                                  // V2
};

}  // namespace stereort
