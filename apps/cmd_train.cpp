// apps/cmd_train.cpp — `stereort train`: StereoMamba training (train/trainer.h) from the command line.
//   Defaults are the official recipe (AdamW wd 1e-4, OneCycle pct 0.3 / div 25 / final 1e4 with beta1 cycling,
//   multi-scale smooth-L1, random crop only). --resume FILE|DIR continues a run: options that decide what is computed
//   (data, steps, batch, crop, lr, schedule, precision, weight decay, clip, augment, seed, max-disp, epoch size) are
//   taken from the checkpoint unless given again; a differing explicit value is reported (the run then no longer
//   continues bit-exactly).
#include <cxxopts.hpp>
#include <iostream>
#include <set>

#include "apps/commands.h"
#include "apps/predictor_options.h"
#include "core/check.h"
#include "core/context.h"
#include "train/trainer.h"

namespace stereort {
namespace app {

int cmd_train(int argc, char** argv) {
  cxxopts::Options o(argv[0], "Train StereoMamba (AdamW + OneCycle, multi-scale smooth-L1; checkpoints resume bit-exactly)");
  o.add_options()
    ("m,model", "preset (stereomamba-v1, -v2, -tiny) or a JSON config", cxxopts::value<std::string>()->default_value("stereomamba-v1"))
    ("data", "training data: SPEC or SPEC@W+SPEC@W (e.g. synthetic:count=2000,seed=1,size=320x640@0.7+kitti2015:/data/kitti@0.3)", cxxopts::value<std::string>()->default_value(""))
    ("steps", "optimisation steps (the schedule's length)", cxxopts::value<int64_t>()->default_value("1000"))
    ("batch", "image pairs per step", cxxopts::value<int64_t>()->default_value("4"))
    ("crop", "random crop HxW, same window on both views (V1: multiples of 32; official V1 SceneFlow 256x512)", cxxopts::value<std::string>()->default_value("256x512"))
    ("lr", "maximum learning rate (OneCycle max_lr)", cxxopts::value<double>()->default_value("2e-4"))
    ("schedule", "onecycle | onecycle-linear | cosine | constant", cxxopts::value<std::string>()->default_value("onecycle"))
    ("p,precision", "fp32 | tf32 | fp16 (loss scaling) | bf16; empty = bf16 on CUDA, fp32 on the CPU", cxxopts::value<std::string>()->default_value(""))
    ("o,out", "output folder (logs, checkpoints, val PNGs, model.safetensors)", cxxopts::value<std::string>()->default_value("runs/train"))
    ("val", "validation dataset spec (e.g. sceneflow:/data/sceneflow,split=TEST)", cxxopts::value<std::string>()->default_value(""))
    ("val-every", "validate every K steps (0 = never)", cxxopts::value<int64_t>()->default_value("0"))
    ("val-count", "validation images (0 = the whole set)", cxxopts::value<int64_t>()->default_value("0"))
    ("val-pngs", "colour disparity PNGs written per validation", cxxopts::value<int64_t>()->default_value("4"))
    ("ckpt-every", "checkpoint every K steps and at the end (0 = none)", cxxopts::value<int64_t>()->default_value("1000"))
    ("keep", "periodic checkpoints kept (the best by val EPE is kept apart)", cxxopts::value<int>()->default_value("3"))
    ("resume", "checkpoint file, or a run folder (its newest checkpoint)", cxxopts::value<std::string>()->default_value(""))
    ("seed", "seed of the initialisation, data order, augmentation and drop_path", cxxopts::value<uint64_t>()->default_value("666"))
    ("d,device", "cuda | cpu (default: cuda when a GPU is present)", cxxopts::value<std::string>()->default_value(""))
    ("workers", "data loader threads (0 = load in the training thread)", cxxopts::value<int>()->default_value("4"))
    ("max-disp", "disparity range of the model and the loss mask 0 < gt < D (0 = the model's, 192)", cxxopts::value<int64_t>()->default_value("0"))
    ("weight-decay", "AdamW decoupled weight decay", cxxopts::value<double>()->default_value("1e-4"))
    ("clip", "clip the global gradient norm to this (0 = off, as the official code)", cxxopts::value<double>()->default_value("0"))
    ("augment", "crop (official) | full (crop + colour jitter + occlusion patches)", cxxopts::value<std::string>()->default_value("crop"))
    ("epoch-size", "samples per epoch of a weighted mixture (0 = sum of the dataset sizes)", cxxopts::value<int64_t>()->default_value("0"))
    ("log-every", "plain progress line every K steps when stderr is not a terminal", cxxopts::value<int64_t>()->default_value("50"))
    ("q,quiet", "no progress output")
    ("h,help", "show this help");
  auto a = o.parse(argc, argv);
  if (a.count("help")) {
    std::cout << o.help() << "\n";
    return 0;
  }
  TrainOptions t;
  t.model = a["model"].as<std::string>();
  t.data = a["data"].as<std::string>();
  t.steps = a["steps"].as<int64_t>();
  t.batch = a["batch"].as<int64_t>();
  std::string crop = a["crop"].as<std::string>();
  long long ch = 0, cw = 0;
  char tail = 0;
  STEREORT_CHECK(std::sscanf(crop.c_str(), "%lldx%lld%c", &ch, &cw, &tail) == 2 && ch > 0 && cw > 0,
                 "--crop '{}' must be HxW, e.g. 256x512 (height 256, width 512)", crop);
  t.crop_h = ch;
  t.crop_w = cw;
  t.lr = a["lr"].as<double>();
  t.schedule = a["schedule"].as<std::string>();
  t.out = a["out"].as<std::string>();
  t.val = a["val"].as<std::string>();
  t.val_every = a["val-every"].as<int64_t>();
  t.val_count = a["val-count"].as<int64_t>();
  t.val_pngs = a["val-pngs"].as<int64_t>();
  t.ckpt_every = a["ckpt-every"].as<int64_t>();
  t.keep = a["keep"].as<int>();
  t.resume = a["resume"].as<std::string>();
  t.seed = a["seed"].as<uint64_t>();
  t.device = device_or_default(a["device"].as<std::string>());
  t.precision = a["precision"].as<std::string>();
  if (t.precision.empty()) t.precision = t.device.is_cuda() ? "bf16" : "fp32";
  t.workers = a["workers"].as<int>();
  t.max_disp = a["max-disp"].as<int64_t>();
  t.weight_decay = a["weight-decay"].as<double>();
  t.clip = a["clip"].as<double>();
  t.augment = a["augment"].as<std::string>();
  t.epoch_size = a["epoch-size"].as<int64_t>();
  t.log_every = a["log-every"].as<int64_t>();
  t.verbose = !a.count("quiet");
  STEREORT_CHECK(t.val_every == 0 || !t.val.empty(), "--val-every {} needs a validation set (--val SPEC)", t.val_every);

  if (!t.resume.empty()) {
    CheckpointInfo info = read_checkpoint_info(resolve_checkpoint(t.resume));
    std::set<std::string> given;
    for (const char* f : {"data", "steps", "batch", "crop", "lr", "schedule", "precision", "weight-decay", "clip",
                          "augment", "seed", "max-disp", "epoch-size"})
      if (a.count(f)) given.insert(f);
    if (!a.count("model") && info.meta.count("model")) t.model = info.meta.at("model");
    for (const std::string& d : adopt_checkpoint_options(t, info.meta, given))
      std::cerr << "stereort train: warning: " << d << "; the resumed run will not match an uninterrupted one\n";
  }
  STEREORT_CHECK(!t.data.empty(), "give the training data with --data SPEC (stereort train --help shows the syntax)");
  Trainer trainer(t);
  return trainer.run();
}

}  // namespace app
}  // namespace stereort
