// io/datasets/synthetic.h — deterministic synthetic stereo pairs with exact ground truth, for tests, smoke training and
//   benchmarks without downloads.
//   Scene (in left-image coordinates): one background layer covering everything plus 2..6 foreground layers (rotated
//   ellipses, rotated rectangles, blobs = unions of 2-3 ellipses). Every layer is a slanted plane of disparity
//   d(x,y) = a + b x + c y (|b| <= 0.25, so a surface maps monotonically into the right view) with its own texture
//   attached to the surface: value noise (2 octaves + grain), stripes or checkerboard (repetitive), or flat
//   (textureless). Disparities lie in [min_disp, max_disp]; foreground layers sit nearer (larger d) on average but
//   may intersect the background — occlusion is a z-buffer on disparity (nearer = larger d wins), in both views.
//   Rendering is analytic backward sampling per row span: a left pixel x shows the nearest layer covering (x, y); a
//   right pixel xr shows the nearest layer whose surface point x_L = (xr + a + c y) / (1 - b) lies in its support,
//   with the texture sampled at x_L (linear between texels). Hence left(x, y) and right(x - d, y) are the same
//   surface point wherever the pixel is visible in both views.
//   Ground truth: disparity is exact for every left pixel (occluded ones included: the surface's own plane).
//     noc = visible in the right view (the right view's nearest surface at x - d is this one, and x - d >= 0).
//     valid = all pixels (default, SceneFlow-like: the exact disparity is known even where occluded), or noc with
//     occluded_valid = false.
//   Photometric differences (photometric = true): the right view gets per-channel gain in [0.9, 1.1] and bias in
//     [-0.04, 0.04]; both views get independent noise of std noise_sigma; values clamped to [0, 1].
//   Determinism: scene parameters come from Philox (core/rng.h) at (seed, offset = index); per-texel and per-pixel
//     noise from SplitMix64 streams seeded by Philox draws. Same (options, index) => identical bytes.
//   Speed: see tests/test_synthetic.cpp (prints pairs/s at 256x512 on one core).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "io/datasets/sample.h"

namespace stereort {
namespace io {

struct SyntheticOptions {
  int height = 256, width = 512;
  float min_disp = 1.0f, max_disp = 64.0f;
  int min_layers = 2, max_layers = 6;  // foreground layers
  bool photometric = true;
  float noise_sigma = 0.01f;
  bool occluded_valid = true;
  uint64_t seed = 1;
};

enum class SyntheticTexture { Noise, Stripes, Checker, Flat };
enum class SyntheticShape { Background, Ellipse, Rectangle, Blob };

struct SyntheticLayer {
  SyntheticShape shape;
  SyntheticTexture texture;
  double a, b, c;  // d(x, y) = a + b x + c y
  // Support in left coordinates, clipped to columns [0, W + ceil(max_disp) + 1]: everything (Background); the union of
  // ellipses {cx, cy, rx, ry, angle} (Ellipse: one, Blob: 2-3), ((x',y') = rotation of (x-cx, y-cy) by -angle,
  // x'^2/rx^2 + y'^2/ry^2 <= 1); or one rectangle {cx, cy, half_w, half_h, angle} (|x'| <= half_w, |y'| <= half_h).
  std::vector<std::array<double, 5>> parts;
};

// The layers of scene `index` (what synthetic_sample renders), for tests and debugging.
std::vector<SyntheticLayer> synthetic_scene(const SyntheticOptions& opt, uint64_t index);
Sample synthetic_sample(const SyntheticOptions& opt, uint64_t index);

class SyntheticDataset : public StereoDataset {
 public:
  SyntheticDataset(SyntheticOptions opt, size_t count) : opt_(opt), count_(count) {}
  size_t size() const override { return count_; }
  Sample get(size_t i) const override;
  std::string describe() const override;
  const SyntheticOptions& options() const { return opt_; }

 private:
  SyntheticOptions opt_;
  size_t count_;
};

}  // namespace io
}  // namespace stereort
