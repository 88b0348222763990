// train/checkpoint.h — training checkpoints and model-only weights, each ONE safetensors file written atomically
// (io/safetensors.h: temp file + rename).
//
// Checkpoint layout (format "stereort-checkpoint", format_version 1):
//   tensors   model.<state-dict key>       every parameter and buffer (BatchNorm running stats, num_batches_tracked)
//             optimizer.<key>              Optimizer::state_dict(): "step" (i64) and the per-parameter fp32 state
//                                          (AdamW exp_avg / exp_avg_sq, SGD momentum_buffer)
//             scaler.scale, scaler.good_steps   LossScaler state (f64 / i64)
//   metadata  format, format_version, step (completed steps), loader_position (next batch of the data loader),
//             rng_seed, rng_offset (core/rng.h process RNG: dropout / drop_path), best_epe, elapsed_s, plus whatever
//             the caller adds (the trainer: arch, preset, model, config, mean, std and train.* options).
//   The schedule needs no state: lr(step) is a pure function of the step (train/schedule.h).
//   Integers are written in decimal and doubles with 17 significant digits, so every value round-trips exactly.
// Model-only weights (what `stereort infer --weights` loads): the bare state dict (PyTorch keys) with metadata
//   arch=stereomamba, preset, config, mean, std ("0.485,0.456,0.406").
// Rotation: checkpoints are <dir>/step_<8 digits>.safetensors; prune_checkpoints keeps the newest `keep`; the best by
//   validation EPE is <dir>/best.safetensors (never pruned).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/module.h"
#include "train/amp.h"
#include "train/optimizer.h"

namespace stereort {

struct StereoMambaConfig;

constexpr int kCheckpointFormatVersion = 1;

struct CheckpointInfo {
  int64_t step = 0;             // completed optimisation steps
  int64_t loader_position = 0;  // the batch the data loader hands out next
  RngState rng;
  double best_epe = 0;          // lowest validation EPE so far (meaningful when has_best)
  bool has_best = false;
  double elapsed_s = 0;         // training wall time so far
  std::map<std::string, std::string> meta;  // caller metadata (kept verbatim)
};

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& opt, const LossScaler& scaler,
                     const CheckpointInfo& info);
// Metadata only (no tensors are read). Throws when the file is not a stereort checkpoint of a known version.
CheckpointInfo read_checkpoint_info(const std::string& path);
// Restores model (strict: every key, every shape), optimizer and scaler; returns the info. The caller restores the
// process RNG (rng_set_state(info.rng)) and the loader position.
CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer& opt, LossScaler& scaler);

// Model-only weights with the metadata `stereort infer` reads.
void save_model_weights(const std::string& path, const Module& model, const StereoMambaConfig& cfg);

std::string checkpoint_path(const std::string& dir, int64_t step);  // <dir>/step_00000123.safetensors
std::vector<std::string> list_checkpoints(const std::string& dir);  // step_*.safetensors, oldest first
// Deletes the oldest step_* files beyond `keep` (keep <= 0: keep all); returns the removed paths.
std::vector<std::string> prune_checkpoints(const std::string& dir, int keep);
// A checkpoint file as is, or the newest step_* in a folder (or its checkpoints/ subfolder).
std::string resolve_checkpoint(const std::string& file_or_dir);

}  // namespace stereort
