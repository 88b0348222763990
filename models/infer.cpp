// models/infer.cpp — StereoPredictor: config/weights loading, normalise + pad, eval forward, crop.
#include "models/infer.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "io/json.h"
#include "io/safetensors.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/shape_ops.h"
#include "train/amp.h"

namespace stereort {

StereoMambaConfig load_model_config(const std::string& s) {
  if (s.size() < 5 || s.substr(s.size() - 5) != ".json") return stereomamba_preset(s);
  std::ifstream f(s);
  STEREORT_CHECK(f.good(), "model config '{}' cannot be opened; pass a preset ({}) or an existing .json file", s,
                 fmt::join(stereomamba_presets(), ", "));
  std::stringstream ss;
  ss << f.rdbuf();
  io::Json j = io::Json::parse(ss.str(), s);
  STEREORT_CHECK(j.is_object(), "model config '{}': top level must be an object", s);
  static const std::vector<std::string> known = {"base", "name", "v2", "depths", "dims", "cross_attn",
                                                 "cross_conv_both_views", "cross_d_model", "cross_d_state",
                                                 "max_disp", "head_channels", "drop_path_rate"};
  for (auto& kv : j.as_object())
    STEREORT_CHECK(std::find(known.begin(), known.end(), kv.first) != known.end(),
                   "model config '{}': unknown key '{}' (known: {})", s, kv.first, fmt::join(known, ", "));
  StereoMambaConfig c = stereomamba_preset(j.contains("base") ? j.at("base").as_string("base") : "stereomamba-v1");
  auto ints = [&](const char* k, std::vector<int64_t>& v) {
    if (!j.contains(k)) return;
    v.clear();
    for (const io::Json& e : j.at(k).as_array(k)) v.push_back(e.as_int(k));
  };
  ints("depths", c.depths);
  ints("dims", c.dims);
  if (j.contains("name")) c.name = j.at("name").as_string("name");
  if (j.contains("v2")) c.v2 = j.at("v2").as_bool("v2");
  if (j.contains("cross_attn")) c.cross_attn = j.at("cross_attn").as_bool("cross_attn");
  if (j.contains("cross_conv_both_views")) c.cross_conv_both_views = j.at("cross_conv_both_views").as_bool("cross_conv_both_views");
  if (j.contains("cross_d_model")) c.cross_d_model = j.at("cross_d_model").as_int("cross_d_model");
  if (j.contains("cross_d_state")) c.cross_d_state = j.at("cross_d_state").as_int("cross_d_state");
  if (j.contains("max_disp")) c.max_disp = j.at("max_disp").as_int("max_disp");
  if (j.contains("head_channels")) c.head_channels = j.at("head_channels").as_int("head_channels");
  if (j.contains("drop_path_rate")) c.drop_path_rate = j.at("drop_path_rate").as_double("drop_path_rate");
  return c;
}

Tensor pad_top_right(const Tensor& img, int64_t m, int64_t* top_pad) {
  int64_t H = img.size(-2), W = img.size(-1);
  int64_t Hp = (H + m - 1) / m * m, Wp = (W + m - 1) / m * m;
  *top_pad = Hp - H;
  if (Hp == H && Wp == W) return img;
  return pad(img, {0, Wp - W, Hp - H, 0});  // F.pad order: (left, right, top, bottom)
}

static std::vector<float> parse_floats(const std::string& s) {
  std::vector<float> v;
  std::stringstream ss(s);
  std::string tok;
  while (std::getline(ss, tok, ',')) v.push_back(std::stof(tok));
  return v;
}

StereoPredictor::StereoPredictor(const PredictorOptions& opt) : opt_(opt) {
  StereoMambaConfig cfg = load_model_config(opt.model);
  if (opt.max_disp > 0) cfg.max_disp = opt.max_disp;
  const std::string& p = opt.precision;
  STEREORT_CHECK(p == "fp32" || p == "tf32" || p == "fp16" || p == "bf16",
                 "unknown precision '{}'; use fp32, tf32, fp16 or bf16", p);
  STEREORT_CHECK(p == "fp32" || opt.device.is_cuda(), "precision {} needs --device cuda (the CPU path is fp32)", p);
  std::map<std::string, Tensor> sd;
  if (!opt.weights.empty()) {
    SafeTensors st = SafeTensors::open(opt.weights);  // validates the file before the model is built
    auto md = st.metadata();
    if (md.count("arch") && md.at("arch").find("stereomamba") == std::string::npos)
      STEREORT_FAIL("weights '{}' are for '{}', not StereoMamba", opt.weights, md.at("arch"));
    if (md.count("mean")) {
      std::vector<float> m = parse_floats(md.at("mean")), s = parse_floats(md.at("std"));
      STEREORT_CHECK(m.size() == 3 && s.size() == 3, "weights '{}': metadata mean/std must have 3 values", opt.weights);
      for (int i = 0; i < 3; ++i) { cfg.mean[size_t(i)] = m[size_t(i)]; cfg.std[size_t(i)] = s[size_t(i)]; }
    }
    for (const std::string& k : st.keys()) sd[k] = st.get(k);
  }
  model_.reset(new StereoMamba(cfg));
  if (!opt.weights.empty()) {
    try {
      model_->load_state_dict(sd, true);
    } catch (const Error& e) {
      STEREORT_FAIL("weights '{}' do not fit model {}: {}", opt.weights, cfg.name, e.message());
    }
    note_ = "weights " + opt.weights;
  } else {
    model_->initialize(opt.seed);
    note_ = "no weights given: random initialisation (seed " + std::to_string(opt.seed) + "), the output is meaningless";
  }
  model_->eval();
  model_->to(opt.device);
  if (p == "fp16") autocast_ = DType::F16;
  if (p == "bf16") autocast_ = DType::BF16;
}

Tensor StereoPredictor::forward_padded(const Tensor& l, const Tensor& r) {
  NoGradGuard ng;
  bool prev = allow_tf32();
  set_allow_tf32(opt_.precision == "tf32");
  AutocastGuard ac(autocast_);
  Tensor d = model_->forward(l, r)[0];
  set_allow_tf32(prev);
  return d;
}

Tensor StereoPredictor::predict(const Tensor& left, const Tensor& right) {
  STEREORT_CHECK(left.dim() == 3 && left.size(0) == 3, "predict: left image must be (3,H,W), got {}", left.desc());
  STEREORT_CHECK(left.shape() == right.shape(), "the two views differ in size: left {}x{}, right {}x{} (WxH); stereo "
                 "pairs must be rectified images of one size", left.size(2), left.size(1), right.size(2), right.size(1));
  auto t0 = std::chrono::steady_clock::now();
  const StereoMambaConfig& c = model_->cfg;
  Tensor mean = Tensor::from_vector({c.mean[0], c.mean[1], c.mean[2]}, {3, 1, 1});
  Tensor std = Tensor::from_vector({c.std[0], c.std[1], c.std[2]}, {3, 1, 1});
  Device dev = opt_.device;
  auto prep = [&](const Tensor& img) {
    Tensor x = img.to(DType::F32).to(dev);
    x = div(sub(x, mean.to(dev)), std.to(dev));
    int64_t tp;
    return pad_top_right(x, c.size_multiple(), &tp).unsqueeze(0);
  };
  int64_t H = left.size(1), W = left.size(2), top = 0;
  pad_top_right(left, c.size_multiple(), &top);
  Tensor d = forward_padded(prep(left), prep(right));  // (1,Hp,Wp)
  Tensor out = d.select(0, 0).slice(0, top, top + H).slice(1, 0, W).contiguous().to(DType::F32).cpu();
  Context::get(dev).synchronize();
  last_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace stereort
