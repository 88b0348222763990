// train/trainer.h — StereoMamba training: the step loop, validation, logging (progress, CSV) and checkpoints.
//
// Defaults follow the official training (stereomamba.md §8): AdamW (lr = max_lr, weight decay 1e-4 on every
// parameter, betas 0.9/0.999, eps 1e-8) + OneCycle stepped every iteration (pct 0.3, div 25, final 1e4, cosine,
// beta1 cycling 0.95 -> 0.85 -> 0.95), multi-scale smooth-L1 (train/loss.h) with mask 0 < gt < max_disp, random crop
// as the only augmentation, ImageNet normalisation (the model config's mean/std), no gradient clipping.
//
// One step (step index t = completed steps, 0-based):
//   lr, beta1 <- schedule(t); batch <- loader (already on the device); x <- (img - mean) / std;
//   4 disparity maps under autocast (fp16/bf16) -> loss; backward of loss * scale (fp16: LossScaler, else 1);
//   ONE device-to-host read of {loss, 4 terms, sum of squared gradients} (the only host synchronisation of the step);
//   non-finite loss or gradient norm: the step is skipped with a message, the gradients dropped, BatchNorm running
//     statistics restored to their values before the step (a NaN batch must not poison them), the loss scale backs
//     off (fp16); the schedule and the loader still advance (as PyTorch's GradScaler + OneCycleLR);
//   otherwise gradients are multiplied once by (1/scale) * clip factor (clip = max global norm; 0 = off), AdamW
//     steps, the scaler grows after 2000 clean steps.
// Resume: a checkpoint (train/checkpoint.h) holds the model (with BatchNorm statistics), the optimizer's moments and
//   step count, the scaler, the process RNG (drop_path) and the loader position; the schedule is a function of the
//   step and the data order a function of (seed, position), so `--resume` continues with bit-identical losses (on the
//   CPU; on a GPU as far as the kernels are deterministic).
// Files in out/: train_log.csv (step,loss,loss0..loss3,lr,beta1,grad_norm,loss_scale,pairs_per_s,time_s,skipped),
//   val_log.csv (step,images,epe,bad1,bad2,bad3,d1), val_<step>/ (colour disparity PNGs of the first val samples:
//   <name>_pred.png and <name>_gt.png on the same colour range), checkpoints/step_*.safetensors (+ best.safetensors),
//   model.safetensors (final model-only weights for `stereort infer --weights`). On resume the CSVs are cut back to the
//   checkpoint's step and appended to.
#pragma once
#include <chrono>
#include <map>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "models/stereomamba.h"
#include "train/amp.h"
#include "train/checkpoint.h"
#include "train/loader.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace stereort {

struct TrainOptions {
  std::string model = "stereomamba-v1";  // preset or JSON config
  std::string data;                      // training data spec (train/loader.h)
  std::string val;                       // validation dataset spec; empty = no validation
  int64_t steps = 1000, batch = 4;
  int64_t crop_h = 256, crop_w = 512;    // H x W (V1: multiples of 32)
  double lr = 2e-4;                      // max_lr of OneCycle
  std::string schedule = "onecycle";     // onecycle | onecycle-linear | cosine | constant
  std::string precision = "fp32";        // fp32 | tf32 | fp16 | bf16
  double weight_decay = 1e-4;
  double clip = 0;                       // max global gradient norm; 0 = off
  std::string augment = "crop";          // crop (official) | full (crop + RAFT-Stereo jitter + eraser)
  std::string out = "runs/train";
  int64_t val_every = 0, ckpt_every = 0; // 0 = off; with ckpt_every > 0 the last step is checkpointed too
  int64_t val_count = 0;                 // validation images (0 = all)
  int64_t val_pngs = 4;                  // colour PNGs per validation
  int keep = 3;                          // periodic checkpoints kept
  int64_t log_every = 50;                // plain-line interval when stderr is not a terminal
  std::string resume;                    // checkpoint file or run folder
  uint64_t seed = 666;
  Device device = Device::cpu();
  int workers = 4;
  int64_t max_disp = 0;                  // 0 = the model's (192); also the loss mask's upper bound
  int64_t epoch_size = 0;                // 0 = sum of the dataset sizes
  bool verbose = true;                   // progress and messages on stderr
};

struct StepStats {
  int64_t step = 0;                // steps completed after this one (1-based index of this step)
  double loss = 0;                 // weighted total
  std::vector<double> terms;       // per-output smooth-L1 (unweighted)
  double lr = 0, beta1 = 0;
  double grad_norm = 0;            // of the unscaled gradients, before clipping
  double loss_scale = 1;           // used for this step
  double step_ms = 0;              // host wall time of this step
  double pairs_per_s = 0;          // batch / step time
  double time_s = 0;               // training wall time so far
  bool skipped = false;
  std::string message;             // e.g. "step 12: non-finite loss/gradient, skipped (loss scale now 32768)"
};

struct ValStats {
  int64_t step = 0, images = 0;    // images with at least one valid pixel (the means are over these)
  double epe = 0, bad1 = 0, bad2 = 0, bad3 = 0, d1 = 0;  // means over images; bad-N as fractions
};

class Trainer {
 public:
  // `config` (tests) overrides opt.model.
  explicit Trainer(const TrainOptions& opt, const StereoMambaConfig* config = nullptr);
  ~Trainer();

  StepStats step();                    // on the loader's next batch
  StepStats step_on(const Batch& b);   // on a given batch (tests)
  ValStats validate();                 // over the --val set; writes PNGs into out/val_<step>/ when val_pngs > 0
  int run();                           // the whole run: loop, logs, validation, checkpoints, final weights, summary

  std::string save_checkpoint();                       // out/checkpoints/step_<n>, then pruning
  void save_checkpoint(const std::string& path) const;
  void save_weights(const std::string& path) const;    // model-only
  CheckpointInfo checkpoint_info() const;

  int64_t steps_done() const { return step_; }
  StereoMamba& model() { return *model_; }
  Optimizer& optimizer() { return *optim_; }
  const Schedule& schedule() const { return sched_; }
  LossScaler& scaler() { return scaler_; }
  DataLoader& loader() { return *loader_; }
  const TrainOptions& options() const { return opt_; }
  const StereoMambaConfig& config() const { return model_->cfg; }

 private:
  Tensor normalize(const Tensor& img) const;
  void say(const std::string& line) const;
  double elapsed_s() const;

  TrainOptions opt_;
  std::unique_ptr<StereoMamba> model_;
  std::vector<Tensor> params_;
  std::unique_ptr<Optimizer> optim_;
  Schedule sched_;
  LossScaler scaler_;
  std::shared_ptr<const DataMixture> data_;
  std::unique_ptr<DataLoader> loader_;
  std::unique_ptr<StereoDataset> val_;
  DType autocast_ = DType::F32;
  bool prev_tf32_ = false;
  Tensor mean_, std_;                    // (1,3,1,1) on the device
  std::vector<Tensor> bn_stats_, bn_backup_;  // BatchNorm running statistics and their pre-step copies
  int64_t step_ = 0;
  bool has_best_ = false;
  double best_epe_ = 0, elapsed_before_ = 0;
  std::chrono::steady_clock::time_point t_start_;
};

// Training options stored in a checkpoint's metadata as train.<flag> (the CLI flag names), and back.
std::map<std::string, std::string> train_options_meta(const TrainOptions& o);
// Takes every train.<flag> of `meta` whose flag is not in `given` (flags the user passed explicitly); returns one line
// per explicit flag whose value differs from the checkpoint's (the run will then not continue bit-exactly).
std::vector<std::string> adopt_checkpoint_options(TrainOptions& o, const std::map<std::string, std::string>& meta,
                                                  const std::set<std::string>& given);

}  // namespace stereort
