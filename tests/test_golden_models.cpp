// tests/test_golden_models.cpp — StereoMamba modules against tensors from the official PyTorch code
// (../shared/golden): forward 1e-4, gradients 1e-3 with err = max|a-g|/max|g|. Each module runs twice: in float64 on
// the CPU (so the error measures the reference's own fp32 rounding) and in fp32 on the GPU (our kernels, strict fp32).
#include "golden_util.h"
#include "models/cross_attention.h"
#include "models/gwcnet.h"
#include "models/vmamba.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

using namespace stereort;
using namespace stereort::test;

namespace {
constexpr double kFwd = 1e-4, kGrad = 1e-3;

struct PatchEmbedDown : Module {
  VssPatchEmbed patch_embed{3, 96, 4};
  VssDownsample downsample{96, 192};
  PatchEmbedDown() {
    register_module("patch_embed", &patch_embed);
    register_module("downsample", &downsample);
  }
};

}  // namespace

static void golden_patch_embed_down(Device dev, DType dt) {
  std::string path = golden_file("patch_embed_down");
  if (path.empty()) return;
  Golden g(path, dt);
  PatchEmbedDown m;
  m.to(dt);
  m.to(dev);
  m.load_state_dict(g.params());
  Tensor img = g.get("in.img").to(dev).set_requires_grad(), feat = g.get("in.feat").to(dev).set_requires_grad();
  Tensor pe = m.patch_embed.forward(img), ds = m.downsample.forward(feat);
  check_golden(pe, g.get("out.patch_embed"), kFwd, "out.patch_embed");
  check_golden(ds, g.get("out.downsample"), kFwd, "out.downsample");
  dot_loss({{pe, g.get("gout.patch_embed").to(dev)}, {ds, g.get("gout.downsample").to(dev)}}).backward();
  check_golden(img.grad(), g.get("grad.in.img"), kGrad, "grad.in.img");
  check_golden(feat.grad(), g.get("grad.in.feat"), kGrad, "grad.in.feat");
  CHECK(check_param_grads(g, m, "grad.param.", "", kGrad) == 8);
}

static void golden_ss2d(Device dev, DType dt) {
  std::string path = golden_file("ss2d");
  if (path.empty()) return;
  Golden g(path, dt);
  SS2D m(96);
  m.to(dt);
  m.to(dev);
  m.load_state_dict(g.params());
  Tensor x = g.get("in.x").to(dev).set_requires_grad();
  Tensor y = m.forward(x);
  check_golden(y, g.get("out.y"), kFwd, "out.y");
  dot_loss({{y, g.get("gout.y").to(dev)}}).backward();
  check_golden(x.grad(), g.get("grad.in.x"), kGrad, "grad.in.x");
  CHECK(check_param_grads(g, m, "grad.param.", "", kGrad) == 11);
}

static void golden_vss_block(Device dev, DType dt) {
  std::string path = golden_file("vss_block");
  if (path.empty()) return;
  Golden g(path, dt);
  VSSBlock m(96, 0.0);
  m.to(dt);
  m.to(dev);
  m.load_state_dict(g.params());
  Tensor x = g.get("in.x").to(dev).set_requires_grad();
  Tensor ssm = m.op.forward(m.norm.forward(x));
  check_golden(ssm, g.get("mid.ssm_branch"), kFwd, "mid.ssm_branch");
  Tensor y = m.forward(x);
  check_golden(y, g.get("out.y"), kFwd, "out.y");
  dot_loss({{y, g.get("gout.y").to(dev)}}).backward();
  check_golden(x.grad(), g.get("grad.in.x"), kGrad, "grad.in.x");
  CHECK(check_param_grads(g, m, "grad.param.", "", kGrad) == 19);
}

static void golden_cross_attn(Device dev, DType dt) {
  std::string path = golden_file("cross_attn");
  if (path.empty()) return;
  Golden g(path, dt);
  CrossAttn m(128, 384, 384, false);
  m.to(dt);
  m.to(dev);
  m.load_state_dict(g.params());
  Tensor il = g.get("in.img_left").to(dev).set_requires_grad(), ir = g.get("in.img_right").to(dev).set_requires_grad();
  Tensor fl = g.get("in.feat_left").to(dev).set_requires_grad(), fr = g.get("in.feat_right").to(dev).set_requires_grad();
  auto attn = m.cross_attn.forward(m.cross_attn.tokenize(il), m.cross_attn.tokenize(ir));
  check_golden(attn.first, g.get("mid.attn_left"), kFwd, "mid.attn_left");
  check_golden(attn.second, g.get("mid.attn_right"), kFwd, "mid.attn_right");
  auto out = m.forward(il, ir, fl, fr);
  check_golden(out.first, g.get("out.left"), kFwd, "out.left");
  check_golden(out.second, g.get("out.right"), kFwd, "out.right");
  dot_loss({{out.first, g.get("gout.left").to(dev)}, {out.second, g.get("gout.right").to(dev)}}).backward();
  for (const char* k : {"img_left", "img_right", "feat_left", "feat_right"})
    check_golden(Tensor((k[0] == 'i' ? (k[4] == 'l' ? il : ir) : (k[5] == 'l' ? fl : fr)).grad()),
                 g.get(std::string("grad.in.") + k), kGrad, std::string("grad.in.") + k, true);
  CHECK(check_param_grads(g, m, "grad.param.", "", kGrad, true) == 12);

  SUBCASE("long test: 320 tokens = 2 SSD chunks of 256") {
    m.zero_grad();
    Tensor ll = g.get("in.long_img_left").to(dev).set_requires_grad(), lr = g.get("in.long_img_right").to(dev).set_requires_grad();
    auto la = m.cross_attn.forward(m.cross_attn.tokenize(ll), m.cross_attn.tokenize(lr));
    check_golden(la.first, g.get("out.long_attn_left"), kFwd, "out.long_attn_left");
    check_golden(la.second, g.get("out.long_attn_right"), kFwd, "out.long_attn_right");
    dot_loss({{la.first, g.get("gout.long_attn_left").to(dev)}, {la.second, g.get("gout.long_attn_right").to(dev)}}).backward();
    check_golden(ll.grad(), g.get("grad.in.long_img_left"), kGrad, "grad.in.long_img_left");
    check_golden(lr.grad(), g.get("grad.in.long_img_right"), kGrad, "grad.in.long_img_right");
    CHECK(check_param_grads(g, m, "grad_long.param.", "", kGrad) == 10);
  }
}

static void golden_gwc_head(Device dev, DType dt) {
  std::string path = golden_file("gwc_head");
  if (path.empty()) return;
  Golden g(path, dt);
  GwcHead m(48, 192);
  m.to(dt);
  m.to(dev);
  // Params are stored as bf16 (widened exactly); the file keeps floating state only, so the integer
  // num_batches_tracked buffers are the one thing missing.
  Module::LoadReport rep = m.load_state_dict(g.params(), false);
  CHECK(rep.unexpected.empty());
  CHECK(rep.mismatched.empty());
  for (const std::string& k : rep.missing) CHECK(k.find("num_batches_tracked") != std::string::npos);
  SUBCASE("eval: running statistics") {
    m.eval();
    Tensor l = g.get("in.left").to(dev).set_requires_grad(), r = g.get("in.right").to(dev).set_requires_grad();
    std::vector<Tensor> c = m.costs(l, r);
    check_golden(c[0], g.get("mid.eval_cost3"), kFwd, "mid.eval_cost3");
    Tensor d = m.forward(l, r)[0];
    check_golden(d, g.get("out.eval_disp3"), kFwd, "out.eval_disp3");
    dot_loss({{d, g.get("gout.eval_disp3").to(dev)}}).backward();
    check_golden(l.grad(), g.get("grad_eval.in.left"), kGrad, "grad_eval.in.left", true);
    check_golden(r.grad(), g.get("grad_eval.in.right"), kGrad, "grad_eval.in.right", true);
  }
  SUBCASE("train: batch statistics, four outputs, running-stat update") {
    m.train();
    Tensor l = g.get("in.left").to(dev).set_requires_grad(), r = g.get("in.right").to(dev).set_requires_grad();
    std::vector<Tensor> d = m.forward(l, r);
    REQUIRE(d.size() == 4);
    std::vector<std::pair<Tensor, Tensor>> og;
    for (int i = 0; i < 4; ++i) {
      check_golden(d[size_t(i)], g.get("out.train_disp" + std::to_string(i)), kFwd, "out.train_disp" + std::to_string(i));
      og.push_back({d[size_t(i)], g.get("gout.train_disp" + std::to_string(i)).to(dev)});
    }
    int nstate = 0;
    for (auto& kv : m.named_buffers())
      if (g.has("state." + kv.first)) {
        check_golden(kv.second->cpu().to(DType::F64), g.get("state." + kv.first), kFwd, "state." + kv.first);
        nstate++;
      }
    CHECK(nstate > 0);
    dot_loss(og).backward();
    check_golden(l.grad(), g.get("grad.in.left"), kGrad, "grad.in.left", true);
    check_golden(r.grad(), g.get("grad.in.right"), kGrad, "grad.in.right", true);
    // Train-mode parameter gradients: the README's 1e-3 holds for all but ~23 (BatchNorm biases/weights of dres0..dres4,
    // up to 9.9e-3). tests/test_golden_bn_noise.cpp shows why: the golden's fp32 forward put ONE ReLU pre-activation
    // (after dres4.conv2's train-mode BN, 1.3e-7 from zero) on the other side of the kink, the README's own caveat.
    // Our gradient equals the one-sided finite difference on our side, the golden equals the other side's, and a
    // float64 run nudged across the kink matches the golden to <= 1.1e-4 everywhere. Bound here: 1e-2.
    int n = check_param_grads(g, m, "grad.param.", "", 1e-2, true);
    CHECK(n > 50);
  }
}

TEST_CASE("golden: patch embed + downsample — float64 CPU") { golden_patch_embed_down(Device::cpu(), DType::F64); }
TEST_CASE("golden: patch embed + downsample — fp32 GPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  golden_patch_embed_down(gpu(), DType::F32);
}
TEST_CASE("golden: SS2D (forward, intermediates via the composed path, gradients) — float64 CPU") { golden_ss2d(Device::cpu(), DType::F64); }
TEST_CASE("golden: SS2D (forward, intermediates via the composed path, gradients) — fp32 GPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  golden_ss2d(gpu(), DType::F32);
}
TEST_CASE("golden: VSSBlock (stage 0 block 0, second GELU after fc2) — float64 CPU") { golden_vss_block(Device::cpu(), DType::F64); }
TEST_CASE("golden: VSSBlock (stage 0 block 0, second GELU after fc2) — fp32 GPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  golden_vss_block(gpu(), DType::F32);
}
TEST_CASE("golden: cross-attention (two-view Mamba-2, left-only conv, gated RMSNorm, conv_concat) — float64 CPU") { golden_cross_attn(Device::cpu(), DType::F64); }
TEST_CASE("golden: cross-attention (two-view Mamba-2, left-only conv, gated RMSNorm, conv_concat) — fp32 GPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  golden_cross_attn(gpu(), DType::F32);
}
TEST_CASE("golden: GwcNet head (volume, eval path, train path with BN batch statistics) — float64 CPU") { golden_gwc_head(Device::cpu(), DType::F64); }
TEST_CASE("golden: GwcNet head (volume, eval path, train path with BN batch statistics) — fp32 GPU [gpu]") {
  STEREORT_REQUIRE_GPU();
  golden_gwc_head(gpu(), DType::F32);
}
