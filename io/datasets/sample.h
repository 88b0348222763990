// io/datasets/sample.h — one stereo training/evaluation example and the dataset interface every reader implements.
//   Sample tensors (CPU):
//     left, right  f32 (3,H,W) RGB in [0,1] (grey datasets such as ETH3D are replicated to 3 channels)
//     disparity    f32 (H,W) positive left-view disparity in pixels; 0 where there is no ground truth (never inf or
//                  NaN, so masked losses stay finite); undefined for splits without ground truth (KITTI testing)
//     valid        bool (H,W): ground truth present (finite, > 0 in the file); undefined with `disparity`
//     noc          bool (H,W), optional: ground truth on pixels visible in both views (Middlebury / ETH3D
//                  mask0nocc == 255, KITTI disp_noc_*, synthetic visibility); undefined where the dataset has none
//   Dataset specs for open_dataset(), "<kind>:<path>[,key=value]..." (the synthetic kind takes only key=value):
//     sceneflow:ROOT[,pass=clean|final][,split=TRAIN|TEST|all][,subset=all|flyingthings3d|monkaa|driving]
//     kitti2015:ROOT[,split=training|testing][,gt=occ|noc]      kitti2012:ROOT[,...same]
//     middlebury:ROOT[,res=F|H|Q]      eth3d:ROOT[,split=training|test]
//     scared:ROOT[,datasets=8+9]       motorcycle:DIR      synthetic:count=200,seed=1,size=256x512[,max_disp=64]
//   Errors name the spec, the folder and what was expected there.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "io/calib.h"

namespace stereort {

struct Sample {
  Tensor left, right, disparity, valid;
  Tensor noc;
  Calibration calib;
  std::string name;
};

class StereoDataset {
 public:
  virtual ~StereoDataset() = default;
  virtual size_t size() const = 0;
  virtual Sample get(size_t i) const = 0;
  virtual std::string describe() const = 0;  // e.g. "kitti2015 training (200 pairs) at /data/kitti"
};

std::unique_ptr<StereoDataset> open_dataset(const std::string& spec);

namespace io {

// "kind:path,key=value,..." split into its parts; keys() checked against `allowed` with a message naming the spec.
struct DatasetSpec {
  std::string kind, path;
  std::map<std::string, std::string> options;
  std::string text;
  std::string get(const std::string& key, const std::string& fallback) const;
  void check_keys(const std::vector<std::string>& allowed) const;
};
DatasetSpec parse_dataset_spec(const std::string& spec);

// Shared helpers for the readers.
Tensor read_rgb(const std::string& path);  // f32 (3,H,W) in [0,1]
// Disparity with invalid pixels (non-finite or <= 0) set to 0, and the mask; from a PFM file (first channel).
void read_pfm_disparity(const std::string& path, Tensor* disparity, Tensor* valid);
// mask PNG (8-bit grey): true where value == `on`.
Tensor read_mask_png(const std::string& path, int on);

}  // namespace io
}  // namespace stereort
