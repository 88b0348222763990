// models/cross_attention.h — StereoMamba's two-view Mamba-2 cross-attention (stereomamba.md §5).
//   Mamba2Simple(d_model, d_state 64, d_conv 4, expand 2, headdim 16, ngroups 1): in_proj (no bias) splits into
//   [z (Di) | xBC (Di + 2N) | dt (H)]; dt = softplus(dt + dt_bias); A = -exp(A_log). Only the LEFT xBC goes through
//   the causal depthwise conv1d (k4) + SiLU (the reference code's asymmetry; cross_conv_both_views = the figure's
//   version). y_l = SSD(x = x_r, dt = dt_l, A, B = B_r, C = C_l, D);  y_r = SSD(x = x_l, dt = dt_r, B = B_l, C = C_r).
//   out_v = out_proj(gated_rmsnorm(y_v, z_v)) — RMSNorm over all Di channels of y*SiLU(z), eps 1e-5.
//   V1 tokenises each normalised image with `downsample` = Conv2d(3 -> d_model, k4, s4); V2 feeds the MFF map and
//   keeps `downsample` (64 -> 256) only as dead weights in the state dict.
//   CrossAttn: feat_v = ReLU(Conv3x3(cat[attn_v, fused_v])) (V2 adds BatchNorm2d after the ReLU).
#pragma once
#include <utility>

#include "models/layers.h"

namespace stereort {

struct Mamba2Simple : Module {
  Mamba2Simple(int64_t d_model, int64_t d_state, int64_t d_conv, int64_t expand, int64_t headdim,
               int64_t down_in_channels, bool conv_both_views = false);
  // Token maps (B,h,w,d_model) for both views -> outputs (B,h,w,d_model).
  std::pair<Tensor, Tensor> forward(const Tensor& tok_l, const Tensor& tok_r) const;
  // V1: tokenise an image with `downsample` -> (B,h,w,d_model) channel-last.
  Tensor tokenize(const Tensor& img) const;
  void reset_parameters(uint64_t stream) override;
  int64_t d_model, Di, N, H, P, d_conv;
  bool conv_both;
  Linear in_proj;
  Tensor conv1d_weight, conv1d_bias, dt_bias, A_log, D, norm_weight;
  Linear out_proj;
  ConvNd downsample;
};

struct CrossAttn : Module {
  CrossAttn(int64_t d_model, int64_t feat_channels, int64_t out_channels, bool v2, bool conv_both_views = false);
  // V1: images (B,3,H,W) tokenised inside; V2: pass undefined images (tokens are the fused maps).
  // fused maps (B,h,w,Cf) channel-last -> features (B,Cout,h,w) NCHW.
  std::pair<Tensor, Tensor> forward(const Tensor& img_l, const Tensor& img_r, const Tensor& fused_l,
                                    const Tensor& fused_r) const;
  bool v2;
  Mamba2Simple cross_attn;
  ConvRelu conv_concat;  // 0 conv 3x3, 1 ReLU, (2 BatchNorm2d in V2)
};

}  // namespace stereort
