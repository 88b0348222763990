// io/datasets/scared.cpp — SCARED keyframes as produced by dimitrisPs/scared_toolkit (StereoMamba's data;
//   formats-and-metrics.md §7). Every folder named keyframe* under ROOT (recursively, sorted) is one of:
//     keyframe layout: <kf>/{left_rectified.png, right_rectified.png, disparity.png, stereo_calib.json}
//     sequence layout: <kf>/data/{left_rectified,right_rectified,disparity}/<frame>.png + <kf>/data/stereo_calib.json
//   (both may be present; both are read). Disparity: uint16 PNG / 128, 0 = unknown. Calibration from
//   stereo_calib.json: baseline = |T[0]| mm, fx = P1[0][0] (and fy, cx, cy from P1), doffs 0.
//   datasets=8+9 keeps keyframes whose path has a dataset_8 or dataset_9 component (StereoMamba's test set).
#include <set>
#include <sstream>

#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

namespace {

void find_keyframes(const std::string& dir, std::vector<std::string>& out, int depth) {
  if (depth > 8) return;
  for (const auto& n : list_dir(dir)) {
    std::string p = path_join(dir, n);
    if (!is_directory(p)) continue;
    if (n.rfind("keyframe", 0) == 0) out.push_back(p);
    else find_keyframes(p, out, depth + 1);
  }
}

}  // namespace

std::unique_ptr<StereoDataset> make_scared(const DatasetSpec& spec) {
  spec.check_keys({"datasets"});
  STEREORT_CHECK(is_directory(spec.path), "dataset spec '{}': {} is not a folder", spec.text, spec.path);
  std::set<std::string> keep;
  {
    std::stringstream ss(spec.get("datasets", ""));
    std::string t;
    while (std::getline(ss, t, '+'))
      if (!t.empty()) keep.insert("dataset_" + t);
  }
  std::vector<std::string> kfs;
  if (path_basename(spec.path).rfind("keyframe", 0) == 0) kfs.push_back(spec.path);
  else find_keyframes(spec.path, kfs, 0);

  std::vector<PairFiles> pairs;
  for (const auto& kf : kfs) {
    if (!keep.empty()) {
      bool ok = false;
      for (const auto& k : keep) ok |= kf.find("/" + k + "/") != std::string::npos;
      if (!ok) continue;
    }
    std::string kfname = kf.substr(spec.path.size() > kf.size() ? 0 : spec.path.size());
    if (!kfname.empty() && kfname[0] == '/') kfname = kfname.substr(1);
    if (kfname.empty()) kfname = path_basename(kf);
    if (file_exists(path_join(kf, "left_rectified.png"))) {
      PairFiles f;
      f.name = kfname;
      f.left = path_join(kf, "left_rectified.png");
      f.right = path_join(kf, "right_rectified.png");
      STEREORT_CHECK(file_exists(f.right), "scared: {} has no right_rectified.png", kf);
      if (file_exists(path_join(kf, "disparity.png"))) {
        f.gt = PairFiles::Gt::Png128;
        f.disparity = path_join(kf, "disparity.png");
      }
      std::string calib = path_join(kf, "stereo_calib.json");
      if (file_exists(calib)) f.calib = read_scared_calib(calib);
      pairs.push_back(f);
    }
    std::string data = path_join(kf, "data");
    if (is_directory(path_join(data, "left_rectified"))) {
      Calibration c;
      if (file_exists(path_join(data, "stereo_calib.json"))) c = read_scared_calib(path_join(data, "stereo_calib.json"));
      for (const auto& n : list_dir(path_join(data, "left_rectified"))) {
        if (n.size() < 5 || n.compare(n.size() - 4, 4, ".png") != 0) continue;
        PairFiles f;
        f.name = kfname + "/" + n.substr(0, n.size() - 4);
        f.left = path_join(path_join(data, "left_rectified"), n);
        f.right = path_join(path_join(data, "right_rectified"), n);
        STEREORT_CHECK(file_exists(f.right), "scared: {} has no right view {}", f.left, f.right);
        std::string d = path_join(path_join(data, "disparity"), n);
        if (file_exists(d)) {
          f.gt = PairFiles::Gt::Png128;
          f.disparity = d;
        }
        f.calib = c;
        pairs.push_back(f);
      }
    }
  }
  STEREORT_CHECK(!pairs.empty(), "dataset spec '{}': no keyframe*/left_rectified.png or keyframe*/data/left_rectified/ "
                 "found under {}", spec.text, spec.path);
  std::string desc = fmt::format("scared ({} pairs from {} keyframes) at {}", pairs.size(), kfs.size(), spec.path);
  return std::make_unique<FileDataset>(std::move(pairs), desc);
}

}  // namespace io
}  // namespace stereort
