// io/datasets/middlebury.cpp — Middlebury 2014 / MiddEval3 reader (formats-and-metrics.md §4).
//   Accepted layouts (first match wins):
//     ROOT/<split><res>/<scene>/   MiddEval3: split = training | test, res = F | H | Q (default Q)
//     ROOT/<scene>/                2014 scenes (e.g. Motorcycle-perfect/)
//     ROOT/                        one scene folder
//   A scene folder holds im0.png, im1.png, calib.txt and optionally disp0GT.pfm (MiddEval3) or disp0.pfm (2014
//   scenes), and mask0nocc.png (255 = non-occluded, 128 = occluded, 0 = no GT). GT: PFM, inf = unknown (-> valid
//   false, disparity 0). Calibration from calib.txt (mm, doffs = cx1 - cx0).
#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

namespace {

bool is_scene(const std::string& dir) {
  return file_exists(path_join(dir, "im0.png")) && file_exists(path_join(dir, "im1.png"));
}

}  // namespace

std::vector<PairFiles> middlebury_style_pairs(const std::string& dir, const std::string& gt_dir, bool need_gt) {
  std::vector<std::string> scenes;
  if (is_scene(dir)) {
    scenes.push_back(dir);
  } else {
    for (const auto& n : list_dir(dir))
      if (is_scene(path_join(dir, n))) scenes.push_back(path_join(dir, n));
  }
  std::vector<PairFiles> pairs;
  for (const auto& s : scenes) {
    PairFiles f;
    f.name = path_basename(s);
    f.left = path_join(s, "im0.png");
    f.right = path_join(s, "im1.png");
    std::string g = gt_dir.empty() ? s : path_join(gt_dir, f.name);
    for (const char* name : {"disp0GT.pfm", "disp0.pfm"}) {
      if (f.gt == PairFiles::Gt::None && file_exists(path_join(g, name))) {
        f.gt = PairFiles::Gt::Pfm;
        f.disparity = path_join(g, name);
      }
    }
    STEREORT_CHECK(!need_gt || f.gt != PairFiles::Gt::None, "{}: no ground truth disp0GT.pfm or disp0.pfm in {}",
                   f.name, g);
    if (file_exists(path_join(g, "mask0nocc.png"))) {
      f.noc_kind = PairFiles::Noc::MaskPng255;
      f.noc = path_join(g, "mask0nocc.png");
    }
    if (file_exists(path_join(s, "calib.txt"))) f.calib = read_middlebury_calib(path_join(s, "calib.txt")).calibration();
    pairs.push_back(f);
  }
  return pairs;
}

std::unique_ptr<StereoDataset> make_middlebury(const DatasetSpec& spec) {
  spec.check_keys({"res", "split"});
  std::string res = spec.get("res", "Q"), split = spec.get("split", "training");
  STEREORT_CHECK(res == "F" || res == "H" || res == "Q", "dataset spec '{}': res must be F, H or Q", spec.text);
  STEREORT_CHECK(split == "training" || split == "test", "dataset spec '{}': split must be training or test",
                 spec.text);
  STEREORT_CHECK(is_directory(spec.path), "dataset spec '{}': {} is not a folder", spec.text, spec.path);
  std::string dir = spec.path;
  if (is_directory(path_join(dir, split + res))) dir = path_join(dir, split + res);
  std::vector<PairFiles> pairs = middlebury_style_pairs(dir, "", false);
  STEREORT_CHECK(!pairs.empty(), "dataset spec '{}': no scene folders (im0.png + im1.png) in {} or {}/{}{}", spec.text,
                 spec.path, spec.path, split, res);
  std::string desc = fmt::format("middlebury {} ({} scenes) at {}", dir, pairs.size(), spec.path);
  return std::make_unique<FileDataset>(std::move(pairs), desc);
}

}  // namespace io
}  // namespace stereort
