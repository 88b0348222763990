// models/feature_fusion.cpp — MFF V1 and V2.
#include "models/feature_fusion.h"

#include "core/check.h"
#include "ops/shape_ops.h"

namespace stereort {

static ConvParams cp(int64_t stride, int64_t pad) {
  ConvParams p;
  p.stride = {stride};
  p.padding = {pad};
  return p;
}
static Tensor nchw(const Tensor& x) { return x.permute({0, 3, 1, 2}).contiguous(); }

FeatureFusion::FeatureFusion(bool is_v2, const std::vector<int64_t>& d, int64_t mid, int64_t out) : v2(is_v2) {
  STEREORT_CHECK(d.size() >= 3, "FeatureFusion: need at least 3 backbone dims, got {}", d.size());
  if (!v2) {
    STEREORT_CHECK(d.size() == 4, "FeatureFusion V1: needs 4 backbone stages (depths/dims of length 4), got {}", d.size());
    int64_t d1 = d[1], d2 = d[2], d3 = d[3];
    out_c = d2;
    upsample_level3.reset(new ConvRelu(2, d3, d2, 4, cp(4, 0), true, true));
    conv_concat.reset(new ConvRelu(2, d2 + d1, d2, 3, cp(1, 1)));
    upsample_level0.reset(new ConvRelu(2, d2, d2, 4, cp(2, 1), true, true));
    upsample_level1.reset(new ConvRelu(2, d2, d2, 4, cp(4, 0), true, true));
    fusion_conv.reset(new ConvRelu(2, 2 * d2, d2, 3, cp(1, 1)));
    register_module("upsample_level3", upsample_level3.get());
    register_module("conv_concat", conv_concat.get());
    register_module("upsample_level0", upsample_level0.get());
    register_module("upsample_level1", upsample_level1.get());
    register_module("fusion_conv", fusion_conv.get());
  } else {
    out_c = out;
    upsample_192.reset(new ConvRelu(2, d[1], mid, 2, cp(2, 0), true, true));
    upsample_384.reset(new ConvRelu(2, d[2], mid, 4, cp(4, 0), true, true));
    fusion_conv.reset(new ConvRelu(2, 3 * mid, out, 3, cp(1, 1), true, false, true));
    register_module("upsample_192", upsample_192.get());
    register_module("upsample_384", upsample_384.get());
    register_module("fusion_conv", fusion_conv.get());
  }
}

Tensor FeatureFusion::forward(const std::vector<Tensor>& f) const {
  Tensor out;
  if (!v2) {
    STEREORT_CHECK(f.size() == 4, "FeatureFusion V1: expected 4 backbone outputs, got {}", f.size());
    Tensor l3 = upsample_level3->forward(nchw(f[3]));
    Tensor m = conv_concat->forward(cat({l3, nchw(f[0])}, 1));
    Tensor l0 = upsample_level0->forward(m);
    Tensor l1 = upsample_level1->forward(nchw(f[1]));
    out = fusion_conv->forward(cat({l1, l0}, 1));
  } else {
    STEREORT_CHECK(f.size() == 3, "FeatureFusion V2: expected 3 backbone outputs, got {}", f.size());
    Tensor u0 = upsample_192->forward(nchw(f[0]));
    Tensor u1 = upsample_384->forward(nchw(f[1]));
    Tensor u2 = upsample_384->forward(nchw(f[2]));
    out = fusion_conv->forward(cat({u0, u1, u2}, 1));
  }
  return out.permute({0, 2, 3, 1}).contiguous();
}

}  // namespace stereort
