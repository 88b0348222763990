// io/datasets/kitti.cpp — KITTI 2012 / 2015 stereo readers (formats-and-metrics.md §3).
//   ROOT/<split>/ (split = training | testing; ROOT may also be the split folder itself):
//     2015: image_2/<id>_10.png (left), image_3/<id>_10.png (right), disp_occ_0/<id>_10.png, disp_noc_0/<id>_10.png
//     2012: colored_0/<id>_10.png (left), colored_1/<id>_10.png (right), disp_occ/<id>_10.png, disp_noc/<id>_10.png
//   Ground truth: uint16 PNG / 256, 0 = invalid. gt=occ (default) reads disp_occ* (all pixels with GT) into
//   disparity/valid and disp_noc* into noc when present; gt=noc reads disp_noc* into disparity/valid. The testing
//   split has no ground truth (disparity undefined). Only frame 10 of each pair (the annotated one) is listed.
//   Calibration is left unknown (per-sequence calib_cam_to_cam files are not read).
#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

std::unique_ptr<StereoDataset> make_kitti(const DatasetSpec& spec) {
  spec.check_keys({"split", "gt"});
  bool k15 = spec.kind == "kitti2015";
  std::string split = spec.get("split", "training"), gt = spec.get("gt", "occ");
  STEREORT_CHECK(split == "training" || split == "testing", "dataset spec '{}': split must be training or testing",
                 spec.text);
  STEREORT_CHECK(gt == "occ" || gt == "noc", "dataset spec '{}': gt must be occ or noc", spec.text);
  std::string dir = is_directory(path_join(spec.path, split)) ? path_join(spec.path, split) : spec.path;
  const std::string left_dir = k15 ? "image_2" : "colored_0", right_dir = k15 ? "image_3" : "colored_1";
  const std::string occ_dir = k15 ? "disp_occ_0" : "disp_occ", noc_dir = k15 ? "disp_noc_0" : "disp_noc";
  STEREORT_CHECK(is_directory(path_join(dir, left_dir)), "dataset spec '{}': no {}/ folder in {} (expected a {} "
                 "{} split)", spec.text, left_dir, dir, spec.kind, split);
  std::vector<PairFiles> pairs;
  for (const auto& n : list_dir(path_join(dir, left_dir))) {
    if (n.size() < 7 || n.compare(n.size() - 7, 7, "_10.png") != 0) continue;
    PairFiles f;
    f.name = n.substr(0, n.size() - 4);
    f.left = path_join(path_join(dir, left_dir), n);
    f.right = path_join(path_join(dir, right_dir), n);
    STEREORT_CHECK(file_exists(f.right), "{}: {} has no right view {}", spec.kind, f.left, f.right);
    std::string occ = path_join(path_join(dir, occ_dir), n), noc = path_join(path_join(dir, noc_dir), n);
    std::string main = gt == "occ" ? occ : noc;
    if (file_exists(main)) {
      f.gt = PairFiles::Gt::Png256;
      f.disparity = main;
      if (gt == "occ" && file_exists(noc)) {
        f.noc_kind = PairFiles::Noc::DispPng;
        f.noc = noc;
      }
    } else {
      STEREORT_CHECK(split == "testing", "{}: {} has no ground truth {} (training split)", spec.kind, f.left, main);
    }
    pairs.push_back(f);
  }
  STEREORT_CHECK(!pairs.empty(), "dataset spec '{}': no *_10.png images in {}", spec.text, path_join(dir, left_dir));
  std::string desc = fmt::format("{} {} ({} pairs) at {}", spec.kind, split, pairs.size(), spec.path);
  return std::make_unique<FileDataset>(std::move(pairs), desc);
}

}  // namespace io
}  // namespace stereort
