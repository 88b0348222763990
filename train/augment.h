// train/augment.h — stereo augmentations for training, CPU, seeded and reproducible.
//   Views are float32 (3,H,W) in [0,1]; disparity (H,W) float32 (left view, positive); valid (H,W) u8.
//   - random_crop: the same window on both views and the disparity (must fit; throws otherwise).
//   - colour jitter (RAFT-Stereo style): brightness, contrast, saturation, hue (in YIQ space), gamma; with
//     probability `asymmetric_prob` each view draws its own parameters (photometric differences between cameras).
//   - grayscale with probability p (both views).
//   - vertical flip with probability p (both views and the disparity; horizontal flips would swap the views'
//     roles and are not offered).
//   - occlusion patches on the right view (eraser: rectangles filled with the view's mean colour), as RAFT-Stereo.
//   HostRng draws from Philox(seed, stream) on the CPU: the same (seed, stream) always gives the same draws.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

class HostRng {
 public:
  HostRng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  float uniform();                       // [0, 1)
  float uniform(float lo, float hi);
  int64_t randint(int64_t lo, int64_t hi);  // [lo, hi)
  float normal();
  bool bernoulli(float p) { return uniform() < p; }

 private:
  uint64_t seed_, stream_, counter_ = 0;
};

struct AugmentOptions {
  int64_t crop_h = 256, crop_w = 512;   // 0 = no crop
  float brightness = 0.4f, contrast = 0.4f, saturation = 0.4f, hue = 0.5f / 3.14f;
  float gamma_lo = 0.8f, gamma_hi = 1.2f;
  float jitter_prob = 1.0f, asymmetric_prob = 0.2f;
  float grayscale_prob = 0.0f;
  float vflip_prob = 0.0f;
  float eraser_prob = 0.5f;             // occlusion patches on the right view
  int64_t eraser_max_patches = 2;
  int64_t eraser_min = 50, eraser_max = 100;  // patch side range (pixels)
};

struct StereoItem {
  Tensor left, right, disparity, valid;
};

// Applies the options in this order: crop, jitter, grayscale, vertical flip, eraser. Returns new tensors.
StereoItem augment(const StereoItem& in, const AugmentOptions& opt, HostRng& rng);

// Individual steps (exposed for tests).
StereoItem random_crop(const StereoItem& in, int64_t h, int64_t w, HostRng& rng);
void color_jitter_(Tensor& img, float brightness, float contrast, float saturation, float hue, float gamma);
void grayscale_(Tensor& img);
void erase_patches_(Tensor& img, const AugmentOptions& opt, HostRng& rng);

}  // namespace stereort
