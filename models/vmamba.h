// models/vmamba.h — the VSSM backbone of StereoMamba (a modified VMamba, forward_type "v2"), channel-last.
//   SS2D(C): Di = 2C, N = 16, R = ceil(C/16), K = 4 directions, depthwise 3x3 conv (+bias), SiLU.
//     [x | z] = in_proj(u); z = SiLU(z); x = SiLU(dwconv3x3(x)) (NCHW);
//     [dt_k | B_k | C_k] = W_x[k] x (all four directions in ONE GEMM on the un-permuted map: a per-position linear
//     map commutes with the scan routing); delta_k = W_dt[k] dt_k; selective scan along the four routes
//     (row-major, column-major, both reversed) with softplus(delta + bias), A = -exp(A_logs), D skip; cross-merge;
//     LayerNorm(Di) (before the gate); * z; out_proj. Keys: in_proj.weight, conv2d.{weight,bias}, x_proj.weight
//     (K(R+2N), Di), dt_projs.weight (K Di, R), A_logs (K Di, N), Ds (K Di), dt_projs_bias (K, Di), out_norm.*,
//     out_proj.weight. (stereomamba.md §4.3)
//   VSSBlock(C): x += DropPath(SS2D(LN(x))); x += DropPath(MLP(LN2(x))), MLP = fc2(GELU(fc1)) then a second GELU
//     (StereoMamba's addition, §4.4).
//   VSSM: patch_embed (Conv2d 4x4 s4 -> BHWC -> LN), layers[i] = blocks + downsample (NCHW Conv2d 2x2 s2 -> BHWC ->
//     LN; identity on the last layer). forward returns each layer's output AFTER its downsample.
//   Init (§4.5): Linear weights N(0, 0.02) (VMamba re-init), biases 0; LN 1/0; A_logs = log(1..N); Ds = 1;
//     dt_projs_bias = softplus^-1(dt), dt = exp(U(log 1e-3, log 1e-1)) clamped >= 1e-4; convs PyTorch default.
#pragma once
#include <memory>
#include <vector>

#include "models/layers.h"

namespace stereort {

struct SS2D : Module {
  SS2D(int64_t d_model, int64_t d_state = 16, double ssm_ratio = 2.0, int64_t d_conv = 3);
  Tensor forward(const Tensor& x) const;  // (B,H,W,C) -> (B,H,W,C)
  void reset_parameters(uint64_t stream) override;
  int64_t C, Di, N, R, K = 4;
  Linear in_proj;
  ConvNd conv2d;
  Tensor x_proj_weight, dt_projs_weight, A_logs, Ds, dt_projs_bias;
  LayerNorm out_norm;
  Linear out_proj;
};

struct VssMlp : Module {
  VssMlp(int64_t c, int64_t hidden);
  Tensor forward(const Tensor& x) const;  // GELU(fc2(GELU(fc1(x))))
  Linear fc1, fc2;
};

struct VSSBlock : Module {
  VSSBlock(int64_t c, double drop_path);
  Tensor forward(const Tensor& x) const;  // (B,H,W,C)
  double drop_path;
  LayerNorm norm;
  SS2D op;
  LayerNorm norm2;
  VssMlp mlp;
};

struct VssPatchEmbed : Module {  // keys 0 (conv) and 2 (LayerNorm); 1 is the permute
  VssPatchEmbed(int64_t in, int64_t dim, int64_t patch);
  Tensor forward(const Tensor& img) const;  // (B,3,H,W) -> (B,H/4,W/4,C)
  ConvNd conv;
  LayerNorm norm;
};

struct VssDownsample : Module {  // keys 1 (conv) and 3 (LayerNorm); 0 and 2 are permutes
  VssDownsample(int64_t in, int64_t out);
  Tensor forward(const Tensor& x) const;  // (B,H,W,C) -> (B,H/2,W/2,Co)
  ConvNd conv;
  LayerNorm norm;
};

struct VssLayer : Module {
  VssLayer(int64_t dim, int64_t depth, int64_t out_dim, const std::vector<double>& dpr, bool downsample);
  Tensor forward(const Tensor& x) const;
  std::vector<std::unique_ptr<VSSBlock>> blocks;
  std::unique_ptr<VssDownsample> down;
};

struct VSSM : Module {
  VSSM(const std::vector<int64_t>& depths, const std::vector<int64_t>& dims, double drop_path_rate = 0.1);
  std::vector<Tensor> forward(const Tensor& img) const;  // (B,3,H,W) -> per layer (B,h,w,C) after downsample
  void reset_parameters(uint64_t stream) override;       // VMamba's _init_weights over every Linear / LayerNorm
  VssPatchEmbed patch_embed;
  std::vector<std::unique_ptr<VssLayer>> layers;
};

}  // namespace stereort
