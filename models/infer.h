// models/infer.h — StereoMamba inference on image pairs of any size.
//   predict(left, right): (3,H,W) f32 RGB in [0,1] -> disparity (H,W) f32 on the CPU. Steps (the reference's order,
//   stereomamba.md §9.1): normalise with the model's mean/std, zero-pad TOP and RIGHT to the size multiple (32 V1,
//   16 V2), run the eval graph (last output only) under NoGradGuard, crop back [top_pad:, :W].
//   Precision: fp32 (strict), tf32 (matmul/conv tensor cores with fp32 I/O), fp16 / bf16 (autocast: convs and
//   linears in half, scans, norms' statistics, softmax and regression in fp32).
//   Model: a preset name or a JSON config file (fields of StereoMambaConfig). Weights: safetensors, loaded strictly;
//   metadata "mean"/"std" (comma-separated) override the normalisation, "arch" must name the same model.
#pragma once
#include <memory>
#include <string>

#include "models/stereomamba.h"

namespace stereort {

struct PredictorOptions {
  std::string model = "stereomamba-v1";  // preset or .json config
  std::string weights;                   // empty: random initialisation (seeded), with a warning
  Device device = Device::cpu();
  std::string precision = "fp32";        // fp32 | tf32 | fp16 | bf16
  int64_t max_disp = 0;                  // 0: the model's
  uint64_t seed = 1;
};

StereoMambaConfig load_model_config(const std::string& preset_or_json);

class StereoPredictor {
 public:
  explicit StereoPredictor(const PredictorOptions& opt);
  Tensor predict(const Tensor& left, const Tensor& right);  // (H,W) f32 CPU
  // Forward only on an already normalised, padded (1,3,H,W) pair on the device (benchmarks).
  Tensor forward_padded(const Tensor& left, const Tensor& right);
  double last_ms() const { return last_ms_; }  // synchronised wall time of the last predict, upload to download
  const StereoMambaConfig& config() const { return model_->cfg; }
  StereoMamba& model() { return *model_; }
  const std::string& weights_note() const { return note_; }

 private:
  PredictorOptions opt_;
  std::unique_ptr<StereoMamba> model_;
  DType autocast_ = DType::F32;
  double last_ms_ = 0;
  std::string note_;
};

// Zero-pad (C,H,W) at the top and on the right to multiples of m; returns the padded tensor and the top pad.
Tensor pad_top_right(const Tensor& img, int64_t m, int64_t* top_pad);

}  // namespace stereort
