// train/trainer.cpp — construction (model, AdamW, OneCycle, scaler, loader, resume), one step, validation and the
// option <-> checkpoint metadata mapping. The run loop (progress, CSV, periodic work, summary) is in
// train/trainer_run.cpp.
#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <filesystem>
#include <iostream>

#include "core/autograd.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/colormap.h"
#include "models/infer.h"
#include "ops/elementwise.h"
#include "ops/matmul.h"
#include "ops/metrics.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"
#include "train/loss.h"

namespace fs = std::filesystem;

namespace stereort {

namespace {

// Sum of squared gradients as a (1,) f64 device tensor: no host read (the step reads it with the losses).
Tensor grad_sq_sum(const std::vector<Tensor>& params, Device dev) {
  NoGradGuard ng;
  Tensor acc;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor s = sum(square(g.dtype() == DType::F64 ? g : g.to(DType::F32))).to(DType::F64);
    acc = acc.defined() ? add(acc, s) : s;
  }
  return acc.defined() ? acc.reshape({1}) : Tensor::zeros({1}, DType::F64, dev);
}

AugmentOptions augment_for(const TrainOptions& o) {
  if (o.augment == "crop") return LoaderOptions::crop_only(o.crop_h, o.crop_w);
  STEREORT_CHECK(o.augment == "full", "unknown --augment '{}'; use crop (official: random crop only) or full (crop + "
                 "colour jitter + occlusion patches)", o.augment);
  AugmentOptions a;
  a.crop_h = o.crop_h;
  a.crop_w = o.crop_w;
  return a;
}

std::string safe_name(const std::string& s, size_t i) {
  std::string n = s.empty() ? fmt::format("{:04d}", i) : s;
  for (char& c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  return n;
}

}  // namespace

Trainer::Trainer(const TrainOptions& o, const StereoMambaConfig* config) : opt_(o), scaler_(o.precision == "fp16") {
  const std::string& p = o.precision;
  STEREORT_CHECK(p == "fp32" || p == "tf32" || p == "fp16" || p == "bf16",
                 "unknown precision '{}'; use fp32, tf32, fp16 or bf16", p);
  STEREORT_CHECK(p == "fp32" || o.device.is_cuda(), "precision {} needs --device cuda (the CPU path is fp32)", p);
  STEREORT_CHECK(o.steps >= 1 && o.batch >= 1, "train: --steps ({}) and --batch ({}) must be >= 1", o.steps, o.batch);
  STEREORT_CHECK(o.lr > 0 && std::isfinite(o.lr), "train: --lr must be a positive number, got {}", o.lr);
  STEREORT_CHECK(o.clip >= 0 && o.weight_decay >= 0, "train: --clip ({}) and --weight-decay ({}) must be >= 0",
                 o.clip, o.weight_decay);
  STEREORT_CHECK(!o.data.empty(), "train: give the training data with --data (e.g. synthetic:count=2000,size=320x640)");
  StereoMambaConfig cfg = config ? *config : load_model_config(o.model);
  if (o.max_disp > 0) cfg.max_disp = o.max_disp;
  int64_t m = cfg.size_multiple();
  STEREORT_CHECK(o.crop_h > 0 && o.crop_w > 0 && o.crop_h % m == 0 && o.crop_w % m == 0,
                 "train: crop {}x{} (HxW) must be positive multiples of {} for {}; e.g. --crop 256x512", o.crop_h,
                 o.crop_w, m, cfg.name);

  std::string resume_path;
  CheckpointInfo info;
  if (!o.resume.empty()) {
    resume_path = resolve_checkpoint(o.resume);
    info = read_checkpoint_info(resume_path);
    auto c = info.meta.find("config");
    STEREORT_CHECK(c == info.meta.end() || c->second == cfg.str(), "checkpoint '{}' was written for the model\n  {}\n"
                   "but this run builds\n  {}\npass the same --model (and --max-disp) as the run that wrote it",
                   resume_path, c == info.meta.end() ? "" : c->second, cfg.str());
  }

  model_.reset(new StereoMamba(cfg));
  model_->initialize(o.seed);
  model_->to(o.device);
  model_->train();
  params_ = model_->parameters();
  ParamGroup g;
  g.params = params_;
  g.lr = o.lr;
  g.weight_decay = o.weight_decay;
  g.beta1 = 0.9;
  g.beta2 = 0.999;
  optim_.reset(new Adam(std::vector<ParamGroup>{g}, 1e-8, /*decoupled_weight_decay=*/true));
  sched_ = Schedule::parse(o.schedule);
  sched_.max_lr = o.lr;
  sched_.total_steps = o.steps;
  if (p == "fp16") autocast_ = DType::F16;
  if (p == "bf16") autocast_ = DType::BF16;
  prev_tf32_ = allow_tf32();
  set_allow_tf32(p == "tf32");
  mean_ = Tensor::from_vector({cfg.mean[0], cfg.mean[1], cfg.mean[2]}, {1, 3, 1, 1}).to(o.device);
  std_ = Tensor::from_vector({cfg.std[0], cfg.std[1], cfg.std[2]}, {1, 3, 1, 1}).to(o.device);
  for (auto& kv : model_->named_buffers())
    if (dtype_is_floating(kv.second->dtype())) {
      bn_stats_.push_back(*kv.second);
      bn_backup_.push_back(kv.second->clone());
    }

  int64_t start_batch = 0;
  if (!resume_path.empty()) {
    load_checkpoint(resume_path, *model_, *optim_, scaler_);
    rng_set_state(info.rng);
    step_ = info.step;
    start_batch = info.loader_position;
    has_best_ = info.has_best;
    best_epe_ = info.best_epe;
    elapsed_before_ = info.elapsed_s;
    STEREORT_CHECK(step_ <= o.steps, "checkpoint '{}' is at step {} but --steps is {}; raise --steps to continue",
                   resume_path, step_, o.steps);
    say(fmt::format("resumed from {} at step {} (loader batch {}, rng offset {})", resume_path, step_, start_batch,
                    info.rng.offset));
  } else {
    rng_set_state(RngState{o.seed, 0});  // drop_path masks follow --seed
  }
  data_ = std::make_shared<DataMixture>(o.data, o.seed, o.epoch_size);
  LoaderOptions lo;
  lo.batch = o.batch;
  lo.augment = augment_for(o);
  lo.seed = o.seed;
  lo.workers = o.workers;
  lo.device = o.device;
  lo.start_batch = start_batch;
  loader_.reset(new DataLoader(data_, lo));
  if (!o.val.empty()) val_ = open_dataset(o.val);
  t_start_ = std::chrono::steady_clock::now();
}

Trainer::~Trainer() { set_allow_tf32(prev_tf32_); }

void Trainer::say(const std::string& line) const {
  if (opt_.verbose) std::cerr << line << "\n";
}

double Trainer::elapsed_s() const {
  return elapsed_before_ + std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start_).count();
}

Tensor Trainer::normalize(const Tensor& img) const { return div(sub(img, mean_), std_); }

StepStats Trainer::step() {
  auto t0 = std::chrono::steady_clock::now();
  Batch b = loader_->next();  // waiting for data counts in the step time
  StepStats st = step_on(b);
  st.step_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  st.pairs_per_s = st.step_ms > 0 ? 1000.0 * double(b.left.size(0)) / st.step_ms : 0;
  return st;
}

StepStats Trainer::step_on(const Batch& b) {
  auto t0 = std::chrono::steady_clock::now();
  STEREORT_CHECK(b.left.defined() && b.left.device() == opt_.device, "train step: the batch is on {} but training "
                 "runs on {}", b.left.defined() ? b.left.device().str() : "nothing", opt_.device.str());
  StepStats st;
  sched_.apply(*optim_, step_);
  st.lr = optim_->groups()[0].lr;
  st.beta1 = optim_->groups()[0].beta1;
  st.loss_scale = scaler_.scale();
  {
    NoGradGuard ng;
    for (size_t i = 0; i < bn_stats_.size(); ++i) bn_backup_[i].copy_(bn_stats_[i]);
  }
  optim_->zero_grad();
  std::vector<Tensor> preds;
  {
    AutocastGuard ac(autocast_);
    preds = model_->forward(normalize(b.left), normalize(b.right));
  }
  MultiLoss loss = stereomamba_loss(preds, b.disparity, b.valid, double(model_->cfg.max_disp));
  preds.clear();
  scaler_.scale_loss(loss.total).backward();

  // The step's only host synchronisation: loss, its terms and the squared gradient norm in one transfer.
  std::vector<double> v;
  {
    NoGradGuard ng;
    std::vector<Tensor> parts{loss.total.detach().to(DType::F64).reshape({1})};
    for (const Tensor& t : loss.terms) parts.push_back(t.detach().to(DType::F64).reshape({1}));
    parts.push_back(grad_sq_sum(params_, opt_.device));
    v = cat(parts, 0).to_vector();
  }
  double scale = scaler_.scale();
  st.loss = v[0];
  st.terms.assign(v.begin() + 1, v.end() - 1);
  st.grad_norm = std::sqrt(v.back()) / scale;
  if (!std::isfinite(st.loss) || !std::isfinite(st.grad_norm)) {
    NoGradGuard ng;
    for (size_t i = 0; i < bn_stats_.size(); ++i) bn_stats_[i].copy_(bn_backup_[i]);
    optim_->zero_grad();
    scaler_.update(true);
    st.skipped = true;
    st.message = fmt::format("step {}: non-finite loss/gradient, skipped (loss scale now {:g})", step_ + 1,
                             scaler_.scale());
  } else {
    // Unscale and clip in one pass over the gradients (clip coefficient as torch.nn.utils.clip_grad_norm_).
    double factor = 1.0 / scale;
    if (opt_.clip > 0) factor *= std::min(1.0, opt_.clip / (st.grad_norm + 1e-6));
    if (factor != 1.0) {
      NoGradGuard ng;
      for (Tensor& p : params_)
        if (p.grad().defined()) p.set_grad(mul(p.grad(), factor));
    }
    optim_->step();
    optim_->zero_grad();  // frees the gradients before the next forward
    scaler_.update(false);
  }
  step_++;
  st.step = step_;
  st.step_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  st.pairs_per_s = st.step_ms > 0 ? 1000.0 * double(b.left.size(0)) / st.step_ms : 0;
  st.time_s = elapsed_s();
  return st;
}

ValStats Trainer::validate() {
  STEREORT_CHECK(val_, "validate: no validation set; pass --val SPEC");
  struct TrainModeRestore {
    StereoMamba& m;
    ~TrainModeRestore() { m.train(); }
  } restore{*model_};
  model_->eval();
  NoGradGuard ng;
  AutocastGuard ac(autocast_);
  const StereoMambaConfig& c = model_->cfg;
  size_t n = val_->size();
  if (opt_.val_count > 0) n = std::min(n, size_t(opt_.val_count));
  std::string png_dir = (fs::path(opt_.out) / fmt::format("val_{}", step_)).string();
  if (opt_.val_pngs > 0) fs::create_directories(png_dir);
  ValStats vs;
  vs.step = step_;
  for (size_t i = 0; i < n; ++i) {
    Sample s = val_->get(i);
    STEREORT_CHECK(s.disparity.defined(), "validation sample '{}' of {} has no ground truth; --val needs a split with "
                   "ground truth", s.name, val_->describe());
    int64_t H = s.left.size(1), W = s.left.size(2), top = 0;
    auto prep = [&](const Tensor& img) {
      return pad_top_right(normalize(img.to(opt_.device).unsqueeze(0)), c.size_multiple(), &top);
    };
    Tensor d = model_->forward(prep(s.left), prep(s.right))[0];  // (1,Hp,Wp)
    Tensor pred = d.select(0, 0).slice(0, top, top + H).slice(1, 0, W).to(DType::F32).contiguous().cpu();
    DisparityMetrics mt = disparity_metrics(pred, s.disparity, s.valid, double(c.max_disp));
    if (mt.valid > 0) {
      vs.images++;
      vs.epe += mt.epe;
      vs.bad1 += mt.bad1;
      vs.bad2 += mt.bad2;
      vs.bad3 += mt.bad3;
      vs.d1 += mt.d1;
    }
    if (int64_t(i) < opt_.val_pngs) {
      std::string base = (fs::path(png_dir) / safe_name(s.name, i)).string();
      io::Colorized gc = io::write_disparity_color_png(base + "_gt.png", s.disparity, s.valid);
      io::ColorizeOptions co;
      co.vmin = gc.vmin;
      co.vmax = gc.vmax;
      io::write_disparity_color_png(base + "_pred.png", pred, Tensor(), co);
    }
  }
  if (vs.images > 0) {
    double k = double(vs.images);
    vs.epe /= k;
    vs.bad1 /= k;
    vs.bad2 /= k;
    vs.bad3 /= k;
    vs.d1 /= k;
  } else {
    vs.epe = vs.bad1 = vs.bad2 = vs.bad3 = vs.d1 = std::nan("");
  }
  return vs;
}

CheckpointInfo Trainer::checkpoint_info() const {
  CheckpointInfo info;
  info.step = step_;
  info.loader_position = loader_->position();
  info.rng = rng_state();
  info.has_best = has_best_;
  info.best_epe = best_epe_;
  info.elapsed_s = elapsed_s();
  const StereoMambaConfig& c = model_->cfg;
  info.meta = train_options_meta(opt_);
  info.meta["arch"] = "stereomamba";
  info.meta["preset"] = c.name;
  info.meta["model"] = opt_.model;
  info.meta["config"] = c.str();
  info.meta["mean"] = fmt::format("{},{},{}", c.mean[0], c.mean[1], c.mean[2]);
  info.meta["std"] = fmt::format("{},{},{}", c.std[0], c.std[1], c.std[2]);
  return info;
}

void Trainer::save_checkpoint(const std::string& path) const {
  stereort::save_checkpoint(path, *model_, *optim_, scaler_, checkpoint_info());
}

std::string Trainer::save_checkpoint() {
  std::string dir = (fs::path(opt_.out) / "checkpoints").string();
  std::string path = checkpoint_path(dir, step_);
  save_checkpoint(path);
  prune_checkpoints(dir, opt_.keep);
  return path;
}

void Trainer::save_weights(const std::string& path) const { save_model_weights(path, *model_, model_->cfg); }

// ---- options <-> metadata ----------------------------------------------------------------------------------------

namespace {

struct OptionField {
  const char* flag;
  std::function<std::string(const TrainOptions&)> get;
  std::function<void(TrainOptions&, const std::string&)> set;
};

std::string g17(double v) { return fmt::format("{:.17g}", v); }

const std::vector<OptionField>& option_fields() {
  // The options that decide what the training computes (not where it writes or how it logs).
  static const std::vector<OptionField> f = {
      {"data", [](const TrainOptions& o) { return o.data; }, [](TrainOptions& o, const std::string& s) { o.data = s; }},
      {"steps", [](const TrainOptions& o) { return std::to_string(o.steps); },
       [](TrainOptions& o, const std::string& s) { o.steps = std::stoll(s); }},
      {"batch", [](const TrainOptions& o) { return std::to_string(o.batch); },
       [](TrainOptions& o, const std::string& s) { o.batch = std::stoll(s); }},
      {"crop", [](const TrainOptions& o) { return fmt::format("{}x{}", o.crop_h, o.crop_w); },
       [](TrainOptions& o, const std::string& s) {
         long long h = 0, w = 0;
         STEREORT_CHECK(std::sscanf(s.c_str(), "%lldx%lld", &h, &w) == 2, "bad crop '{}' (HxW)", s);
         o.crop_h = h;
         o.crop_w = w;
       }},
      {"lr", [](const TrainOptions& o) { return g17(o.lr); }, [](TrainOptions& o, const std::string& s) { o.lr = std::stod(s); }},
      {"schedule", [](const TrainOptions& o) { return o.schedule; },
       [](TrainOptions& o, const std::string& s) { o.schedule = s; }},
      {"precision", [](const TrainOptions& o) { return o.precision; },
       [](TrainOptions& o, const std::string& s) { o.precision = s; }},
      {"weight-decay", [](const TrainOptions& o) { return g17(o.weight_decay); },
       [](TrainOptions& o, const std::string& s) { o.weight_decay = std::stod(s); }},
      {"clip", [](const TrainOptions& o) { return g17(o.clip); }, [](TrainOptions& o, const std::string& s) { o.clip = std::stod(s); }},
      {"augment", [](const TrainOptions& o) { return o.augment; },
       [](TrainOptions& o, const std::string& s) { o.augment = s; }},
      {"seed", [](const TrainOptions& o) { return std::to_string(o.seed); },
       [](TrainOptions& o, const std::string& s) { o.seed = std::stoull(s); }},
      {"max-disp", [](const TrainOptions& o) { return std::to_string(o.max_disp); },
       [](TrainOptions& o, const std::string& s) { o.max_disp = std::stoll(s); }},
      {"epoch-size", [](const TrainOptions& o) { return std::to_string(o.epoch_size); },
       [](TrainOptions& o, const std::string& s) { o.epoch_size = std::stoll(s); }},
  };
  return f;
}

}  // namespace

std::map<std::string, std::string> train_options_meta(const TrainOptions& o) {
  std::map<std::string, std::string> m;
  for (const OptionField& f : option_fields()) m[std::string("train.") + f.flag] = f.get(o);
  return m;
}

std::vector<std::string> adopt_checkpoint_options(TrainOptions& o, const std::map<std::string, std::string>& meta,
                                                  const std::set<std::string>& given) {
  std::vector<std::string> diffs;
  for (const OptionField& f : option_fields()) {
    auto it = meta.find(std::string("train.") + f.flag);
    if (it == meta.end()) continue;
    if (!given.count(f.flag)) {
      f.set(o, it->second);
    } else if (f.get(o) != it->second) {
      diffs.push_back(fmt::format("--{} {} differs from the checkpoint's {}", f.flag, f.get(o), it->second));
    }
  }
  return diffs;
}

}  // namespace stereort
