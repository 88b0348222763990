// io/datasets/readers.h — constructors behind open_dataset(), one per file in io/datasets/. Each takes the parsed
// spec, scans its folder eagerly (so a wrong path fails at open time, naming what was expected), and loads files
// lazily in get(). Layouts are documented at the top of each .cpp.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "io/datasets/sample.h"

namespace stereort {
namespace io {

// One pair of files on disk and how to read its ground truth.
struct PairFiles {
  enum class Gt { None, Pfm, Png256, Png128 };
  enum class Noc { None, MaskPng255, DispPng };  // mask0nocc.png == 255, or a KITTI disp_noc PNG (> 0)
  std::string name, left, right;
  Gt gt = Gt::None;
  std::string disparity;
  Noc noc_kind = Noc::None;
  std::string noc;
  Calibration calib;
};

// A dataset that is a list of PairFiles (every reader except the synthetic one and the Motorcycle npz).
class FileDataset : public StereoDataset {
 public:
  FileDataset(std::vector<PairFiles> pairs, std::string describe) : pairs_(std::move(pairs)), desc_(std::move(describe)) {}
  size_t size() const override { return pairs_.size(); }
  Sample get(size_t i) const override;
  std::string describe() const override { return desc_; }
  const PairFiles& files(size_t i) const { return pairs_.at(i); }

 private:
  std::vector<PairFiles> pairs_;
  std::string desc_;
};

// The scene folders (im0.png + im1.png [+ calib.txt]) of a Middlebury-style tree, or `dir` itself when it is one;
// ground truth (disp0GT.pfm or disp0.pfm, mask0nocc.png) looked up in gt_dir/<scene> (the scene folder when gt_dir
// is empty). Shared by the Middlebury and ETH3D readers.
std::vector<PairFiles> middlebury_style_pairs(const std::string& dir, const std::string& gt_dir, bool need_gt);

std::unique_ptr<StereoDataset> make_sceneflow(const DatasetSpec& spec);
std::unique_ptr<StereoDataset> make_kitti(const DatasetSpec& spec);  // kind "kitti2012" or "kitti2015"
std::unique_ptr<StereoDataset> make_middlebury(const DatasetSpec& spec);
std::unique_ptr<StereoDataset> make_eth3d(const DatasetSpec& spec);
std::unique_ptr<StereoDataset> make_scared(const DatasetSpec& spec);
std::unique_ptr<StereoDataset> make_motorcycle(const DatasetSpec& spec);
std::unique_ptr<StereoDataset> make_synthetic(const DatasetSpec& spec);

}  // namespace io
}  // namespace stereort
