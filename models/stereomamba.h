// models/stereomamba.h — StereoMamba (arXiv 2504.17401): VSSM backbone -> MFF -> two-view Mamba-2 cross-attention
// -> group-wise correlation volume -> GwcNet-g 3D head -> soft-argmin (stereomamba.md).
//   Presets: stereomamba-v1 (paper, default: depths [2,2,9,2], dims [96,192,384,768], 48 groups, 62,506,448 params),
//   stereomamba-v2 (the repository's current head: depths [2,2,9], MFF V2 256 ch, cross-attention on the MFF map,
//   32 groups, ~30.62 M), stereomamba-tiny (ours: the V1 structure at small widths, for tests and demos).
//   forward(left, right): normalised images (B,3,H,W) with H, W multiples of size_multiple() (pad outside: see
//   infer.h); returns 4 disparity maps (B,H,W) in training (loss weights 0.5, 0.5, 0.7, 1.0) and 1 in eval.
//   Both views run through the backbone and MFF as one batch of 2B (no batch statistics there, so it is exact).
#pragma once
#include <array>
#include <string>
#include <vector>

#include "models/cross_attention.h"
#include "models/feature_fusion.h"
#include "models/gwcnet.h"
#include "models/vmamba.h"

namespace stereort {

struct StereoMambaConfig {
  std::string name = "stereomamba-v1";
  bool v2 = false;
  std::vector<int64_t> depths{2, 2, 9, 2}, dims{96, 192, 384, 768};
  double drop_path_rate = 0.1;
  bool cross_attn = true;              // ablation switch: off feeds the MFF map straight to the volume
  bool cross_conv_both_views = false;  // the paper figure's variant (conv+SiLU on both projections)
  int64_t cross_d_model = 128;         // V1 token width (V2: = MFF output)
  int64_t cross_d_state = 64;
  int64_t max_disp = 192;
  int64_t head_channels = 32;
  int64_t v2_mff_mid = 128, v2_mff_out = 256;
  std::array<float, 3> mean{0.485f, 0.456f, 0.406f}, std{0.229f, 0.224f, 0.225f};  // ImageNet (training)

  int64_t size_multiple() const { return v2 ? 16 : 32; }
  int64_t feature_channels() const { return v2 ? v2_mff_out : dims.at(2); }
  int64_t groups() const { return feature_channels() / 8; }
  std::string str() const;
};

StereoMambaConfig stereomamba_preset(const std::string& name);  // throws listing the presets on an unknown name
std::vector<std::string> stereomamba_presets();

struct StereoMamba : Module {
  explicit StereoMamba(const StereoMambaConfig& cfg);
  std::vector<Tensor> forward(const Tensor& left, const Tensor& right) const;
  StereoMambaConfig cfg;
  VSSM feature_extractor;
  FeatureFusion feature_fusion;
  CrossAttn cross;  // state-dict key "CrossAttn"
  GwcHead disparity_head;
};

}  // namespace stereort
