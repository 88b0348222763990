// io/datasets/motorcycle.h — the real sample pair: Middlebury 2014 "Motorcycle" as shipped by scikit-image
//   (skimage.data.stereo_motorcycle; scripts/get_sample_pair.sh extracts it from Debian's python3-skimage into
//   data/motorcycle/). Images 741x500 (W x H), down-sampled 4x from the benchmark's full resolution; ground truth
//   float32 (500, 741) with inf where unknown, stored as arr_0 in disp0.npz (a deflated NPZ, as shipped) or as
//   disp0.pfm; calib.txt holds the calibration from skimage's docstring (f 994.978 px, cx 311.193, cy 254.877,
//   doffs 31.086, baseline 193.001 mm).
//   Folder: im0.png, im1.png, disp0.npz | disp0.pfm, [calib.txt].
#pragma once
#include <string>

#include "io/datasets/sample.h"

namespace stereort {
namespace io {

// The ground truth exactly as stored (inf/NaN where unknown), f32 (H,W).
Tensor read_motorcycle_disparity(const std::string& dir);
// The pair as a Sample (disparity 0 and valid false where unknown).
Sample read_motorcycle(const std::string& dir);
// Where the sample pair lives in a checkout (STEREORT_SAMPLE_DIR or <source>/data/motorcycle).
std::string motorcycle_default_dir(const std::string& source_dir);

}  // namespace io
}  // namespace stereort
