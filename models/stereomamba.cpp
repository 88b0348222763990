// models/stereomamba.cpp — presets and the StereoMamba forward.
#include "models/stereomamba.h"

#include "core/check.h"
#include "ops/shape_ops.h"

namespace stereort {

std::vector<std::string> stereomamba_presets() { return {"stereomamba-v1", "stereomamba-v2", "stereomamba-tiny"}; }

StereoMambaConfig stereomamba_preset(const std::string& name) {
  StereoMambaConfig c;
  c.name = name;
  if (name == "stereomamba-v1" || name == "v1") {
    c.name = "stereomamba-v1";
  } else if (name == "stereomamba-v2" || name == "v2") {
    c.name = "stereomamba-v2";
    c.v2 = true;
    c.depths = {2, 2, 9};
    c.dims = {96, 192, 384};
    c.cross_d_model = 256;
  } else if (name == "stereomamba-tiny" || name == "tiny") {
    c.name = "stereomamba-tiny";
    c.depths = {1, 1, 2, 1};
    c.dims = {16, 32, 64, 128};
    c.cross_d_model = 32;
    c.cross_d_state = 16;
    c.head_channels = 8;
    c.max_disp = 192;
    c.drop_path_rate = 0.0;
  } else {
    STEREORT_FAIL("unknown model preset '{}'; choose one of {} or pass a config JSON file", name,
                  fmt::join(stereomamba_presets(), ", "));
  }
  return c;
}

std::string StereoMambaConfig::str() const {
  return fmt::format("{} ({}, depths [{}], dims [{}], cross-attn {} d_model {}, groups {}, max_disp {}, head {})", name,
                     v2 ? "V2" : "V1", fmt::join(depths, ","), fmt::join(dims, ","), cross_attn ? "on" : "off",
                     cross_d_model, groups(), max_disp, head_channels);
}

StereoMamba::StereoMamba(const StereoMambaConfig& c)
    : cfg(c),
      feature_extractor(c.depths, c.dims, c.drop_path_rate),
      feature_fusion(c.v2, c.dims, c.v2_mff_mid, c.v2_mff_out),
      cross(c.v2 ? c.v2_mff_out : c.cross_d_model, c.feature_channels(), c.feature_channels(), c.v2,
            c.cross_conv_both_views),
      disparity_head(c.groups(), c.max_disp, c.head_channels) {
  STEREORT_CHECK(c.max_disp % 16 == 0, "StereoMamba: max_disp {} must be a multiple of 16 (the 3D hourglass halves "
                 "max_disp/4 twice)", c.max_disp);
  register_module("feature_extractor", &feature_extractor);
  register_module("feature_fusion", &feature_fusion);
  if (c.cross_attn) register_module("CrossAttn", &cross);
  register_module("disparity_head", &disparity_head);
}

std::vector<Tensor> StereoMamba::forward(const Tensor& left, const Tensor& right) const {
  STEREORT_CHECK(left.shape() == right.shape(), "StereoMamba: left {} and right {} differ in size", left.desc(),
                 right.desc());
  STEREORT_CHECK(left.dim() == 4 && left.size(1) == 3, "StereoMamba: images must be (B,3,H,W), got {}", left.desc());
  int64_t m = cfg.size_multiple(), B = left.size(0);
  STEREORT_CHECK(left.size(2) % m == 0 && left.size(3) % m == 0,
                 "StereoMamba ({}): image size {}x{} must be a multiple of {}; pad it (stereort infer pads and crops "
                 "automatically)", cfg.name, left.size(3), left.size(2), m);
  // Both views through the backbone and the fusion in one batch of 2B.
  std::vector<Tensor> feats = feature_extractor.forward(cat({left, right}, 0));
  Tensor fused = feature_fusion.forward(feats);  // V1 reads f[0], f[1], f[3] (f[2] unused); V2 f[0..2]
  std::vector<Tensor> fv = split(fused, {B, B}, 0);
  Tensor fl, fr;
  if (cfg.cross_attn) {
    auto f = cross.forward(left, right, fv[0], fv[1]);
    fl = f.first;
    fr = f.second;
  } else {
    fl = fv[0].permute({0, 3, 1, 2}).contiguous();
    fr = fv[1].permute({0, 3, 1, 2}).contiguous();
  }
  return disparity_head.forward(fl, fr);
}

}  // namespace stereort
