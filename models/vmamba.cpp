// models/vmamba.cpp — SS2D, VSSBlock, VSSM (see models/vmamba.h).
#include "models/vmamba.h"

#include <cmath>

#include "core/check.h"
#include "core/rng.h"
#include "ops/activation.h"
#include "ops/dropout.h"
#include "ops/elementwise.h"
#include "ops/init.h"
#include "ops/matmul.h"
#include "ops/shape_ops.h"
#include "ops/ss2d.h"
#include "train/amp.h"

namespace stereort {

static ConvParams conv_p(int64_t stride, int64_t pad, int64_t groups = 1) {
  ConvParams p;
  p.stride = {stride};
  p.padding = {pad};
  p.groups = groups;
  return p;
}

SS2D::SS2D(int64_t d_model, int64_t d_state, double ssm_ratio, int64_t d_conv)
    : C(d_model),
      Di(int64_t(ssm_ratio * double(d_model))),
      N(d_state),
      R((d_model + 15) / 16),
      in_proj(d_model, 2 * Di, false),
      conv2d(2, Di, Di, d_conv, conv_p(1, (d_conv - 1) / 2, Di), true),
      out_norm(Di),
      out_proj(Di, d_model, false) {
  x_proj_weight = Tensor::zeros({K * (R + 2 * N), Di});
  dt_projs_weight = Tensor::zeros({K * Di, R});
  A_logs = Tensor::zeros({K * Di, N});
  Ds = Tensor::ones({K * Di});
  dt_projs_bias = Tensor::zeros({K, Di});
  register_module("in_proj", &in_proj);
  register_module("conv2d", &conv2d);
  register_parameter("x_proj.weight", &x_proj_weight);
  register_parameter("dt_projs.weight", &dt_projs_weight);
  register_parameter("A_logs", &A_logs);
  register_parameter("Ds", &Ds);
  register_parameter("dt_projs_bias", &dt_projs_bias);
  register_module("out_norm", &out_norm);
  register_module("out_proj", &out_proj);
}

void SS2D::reset_parameters(uint64_t s) {
  // S4D-real A, unit D, Mamba dt init (the projections are re-initialised by VSSM::reset_parameters).
  std::vector<double> a(size_t(K * Di * N));
  for (int64_t i = 0; i < K * Di; ++i)
    for (int64_t n = 0; n < N; ++n) a[size_t(i * N + n)] = std::log(double(n + 1));
  A_logs.copy_(Tensor::from_vector(a, {K * Di, N}));
  Ds.fill_(1.0);
  Tensor u = rand_uniform({K, Di}, DType::F64, Device::cpu(), s, std::log(1e-3), std::log(1e-1), 2);
  std::vector<double> dt = u.to_vector();
  for (double& v : dt) {
    v = std::max(std::exp(v), 1e-4);
    v = v + std::log(-std::expm1(-v));  // softplus^-1
  }
  dt_projs_bias.copy_(Tensor::from_vector(dt, {K, Di}));
  normal_(x_proj_weight, 0.0, 0.02, s, 3);
  normal_(dt_projs_weight, 0.0, 0.02, s, 4);
}

Tensor SS2D::forward(const Tensor& x) const {
  STEREORT_CHECK(x.dim() == 4 && x.size(3) == C, "SS2D: input {} must be (B,H,W,{})", x.desc(), C);
  int64_t B = x.size(0), H = x.size(1), W = x.size(2), L = H * W;
  Tensor xz = in_proj.forward(x);                                  // (B,H,W,2Di)
  std::vector<Tensor> parts = split(xz, {Di, Di}, -1);
  Tensor z = silu(parts[1]);                                       // (B,H,W,Di)
  Tensor u = silu(conv2d.forward(parts[0].permute({0, 3, 1, 2}).contiguous()));  // (B,Di,H,W)
  Tensor xdbl = matmul(autocast(x_proj_weight), u.reshape({B, Di, L}));  // (B, K(R+2N), L), pixel order
  Tensor x4 = xdbl.view({B, K, R + 2 * N, L});
  Tensor dts = x4.slice(2, 0, R);                                  // (B,K,R,L)
  Tensor Bs = x4.slice(2, R, R + N).contiguous();                  // (B,K,N,L)
  Tensor Cs = x4.slice(2, R + N, R + 2 * N).contiguous();
  Tensor delta = matmul(autocast(dt_projs_weight).view({K, Di, R}), dts);  // (B,K,Di,L)
  Tensor A = neg(exp(A_logs));                                     // (K Di, N)
  Tensor y = ss2d_scan(u, delta, A, Bs, Cs, Ds, dt_projs_bias.reshape({K * Di}), true);  // (B,Di,L) f32
  Tensor yt = y.transpose(1, 2).reshape({B, H, W, Di});
  yt = out_norm.forward(yt);
  if (yt.dtype() != z.dtype()) yt = yt.to(z.dtype());
  return out_proj.forward(mul(yt, z));
}

VssMlp::VssMlp(int64_t c, int64_t hidden) : fc1(c, hidden), fc2(hidden, c) {
  register_module("fc1", &fc1);
  register_module("fc2", &fc2);
}
Tensor VssMlp::forward(const Tensor& x) const { return gelu(fc2.forward(gelu(fc1.forward(x)))); }

VSSBlock::VSSBlock(int64_t c, double dp) : drop_path(dp), norm(c), op(c), norm2(c), mlp(c, 4 * c) {
  register_module("norm", &norm);
  register_module("op", &op);
  register_module("norm2", &norm2);
  register_module("mlp", &mlp);
}

Tensor VSSBlock::forward(const Tensor& x) const {
  Tensor s = op.forward(norm.forward(x));
  if (training_ && drop_path > 0) s = stereort::drop_path(s, drop_path, true, rng_state().seed, rng_advance(uint64_t(s.size(0))));
  Tensor h = add(x, s);
  Tensor m = mlp.forward(norm2.forward(h));
  if (training_ && drop_path > 0) m = stereort::drop_path(m, drop_path, true, rng_state().seed, rng_advance(uint64_t(m.size(0))));
  return add(h, m);
}

VssPatchEmbed::VssPatchEmbed(int64_t in, int64_t dim, int64_t patch)
    : conv(2, in, dim, patch, conv_p(patch, 0), true), norm(dim) {
  register_module("0", &conv);
  register_module("2", &norm);
}
Tensor VssPatchEmbed::forward(const Tensor& img) const {
  return norm.forward(conv.forward(img).permute({0, 2, 3, 1}).contiguous());
}

VssDownsample::VssDownsample(int64_t in, int64_t out) : conv(2, in, out, 2, conv_p(2, 0), true), norm(out) {
  register_module("1", &conv);
  register_module("3", &norm);
}
Tensor VssDownsample::forward(const Tensor& x) const {
  Tensor y = conv.forward(x.permute({0, 3, 1, 2}).contiguous());
  return norm.forward(y.permute({0, 2, 3, 1}).contiguous());
}

VssLayer::VssLayer(int64_t dim, int64_t depth, int64_t out_dim, const std::vector<double>& dpr, bool downsample) {
  for (int64_t j = 0; j < depth; ++j) {
    blocks.emplace_back(new VSSBlock(dim, dpr[size_t(j)]));
    register_module("blocks." + std::to_string(j), blocks.back().get());
  }
  if (downsample) {
    down.reset(new VssDownsample(dim, out_dim));
    register_module("downsample", down.get());
  }
}
Tensor VssLayer::forward(const Tensor& x) const {
  Tensor h = x;
  for (auto& b : blocks) h = b->forward(h);
  return down ? down->forward(h) : h;
}

VSSM::VSSM(const std::vector<int64_t>& depths, const std::vector<int64_t>& dims, double dpr_max)
    : patch_embed(3, dims.at(0), 4) {
  STEREORT_CHECK(depths.size() == dims.size() && !dims.empty(), "VSSM: {} depths but {} dims", depths.size(), dims.size());
  int64_t total = 0;
  for (int64_t d : depths) total += d;
  std::vector<double> dpr(size_t(std::max<int64_t>(total, 1)));
  for (int64_t i = 0; i < total; ++i) dpr[size_t(i)] = total > 1 ? dpr_max * double(i) / double(total - 1) : 0.0;
  register_module("patch_embed", &patch_embed);
  size_t at = 0;
  for (size_t i = 0; i < depths.size(); ++i) {
    bool last = i + 1 == depths.size();
    std::vector<double> rates(dpr.begin() + long(at), dpr.begin() + long(at + size_t(depths[i])));
    at += size_t(depths[i]);
    layers.emplace_back(new VssLayer(dims[i], depths[i], last ? dims[i] : dims[i + 1], rates, !last));
    register_module("layers." + std::to_string(i), layers.back().get());
  }
}

std::vector<Tensor> VSSM::forward(const Tensor& img) const {
  std::vector<Tensor> outs;
  Tensor x = patch_embed.forward(img);
  for (auto& l : layers) {
    x = l->forward(x);
    outs.push_back(x);
  }
  return outs;
}

void VSSM::reset_parameters(uint64_t s) {
  // VMamba's _init_weights: every nn.Linear weight N(0, 0.02) (truncation at +-2 is ~100 sigma: plain normal),
  // bias 0; LayerNorms 1/0 (already so). The SS2D projections x_proj / dt_projs are Linear too.
  uint64_t k = 100;
  for (auto& kv : named_parameters()) {
    const std::string& name = kv.first;
    bool linear_w = name.find("proj.weight") != std::string::npos || name.find("projs.weight") != std::string::npos ||
                    name.find(".fc1.weight") != std::string::npos || name.find(".fc2.weight") != std::string::npos;
    bool linear_b = name.find(".fc1.bias") != std::string::npos || name.find(".fc2.bias") != std::string::npos;
    if (linear_w) normal_(*kv.second, 0.0, 0.02, s, k++);
    if (linear_b) kv.second->fill_(0.0);
  }
}

}  // namespace stereort
