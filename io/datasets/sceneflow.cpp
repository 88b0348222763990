// io/datasets/sceneflow.cpp — SceneFlow (FlyingThings3D, Monkaa, Driving) reader (formats-and-metrics.md §6).
//   ROOT holds the subsets {FlyingThings3D, Monkaa, Driving} (any capitalisation), or is one subset itself. Each
//   subset: frames_{cleanpass,finalpass}/<...>/left/<frame>.png, the right view at the same path with /right/, and
//   the ground truth at disparity/<...>/left/<frame>.pfm. <...> is TRAIN|TEST/A|B|C/<seq> (FlyingThings3D),
//   <scene> (Monkaa), <focal>/<direction>/<speed> (Driving). Pairs are listed in sorted path order.
//   split=TRAIN|TEST filters FlyingThings3D by its TRAIN/TEST folder (Monkaa and Driving have none and are kept only
//   with split=all). Disparities are positive left-view values; PF files keep channel 0.
//   Calibration (from the dataset page): f = 1050 px (Driving 15mm: 450 px), cx = 479.5, cy = 269.5, baseline 1
//   Blender unit.
#include <algorithm>
#include <cctype>

#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(uint8_t(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}

// Every "<rel>/left/<frame>.png" below dir, as "<rel>/left/<frame>" (no extension), sorted.
void collect_left(const std::string& dir, const std::string& rel, std::vector<std::string>& out, int depth) {
  STEREORT_CHECK(depth < 16, "sceneflow: folders nested too deeply under {}", dir);
  for (const auto& n : list_dir(dir)) {
    std::string p = path_join(dir, n), r = rel.empty() ? n : rel + "/" + n;
    if (is_directory(p)) {
      collect_left(p, r, out, depth + 1);
    } else if ((rel == "left" || ends_with(rel, "/left")) && ends_with(lower(n), ".png")) {
      out.push_back(r.substr(0, r.size() - 4));
    }
  }
}

}  // namespace

std::unique_ptr<StereoDataset> make_sceneflow(const DatasetSpec& spec) {
  spec.check_keys({"pass", "split", "subset"});
  std::string pass = spec.get("pass", "clean"), split = spec.get("split", "all"), subset = lower(spec.get("subset", "all"));
  STEREORT_CHECK(pass == "clean" || pass == "final", "dataset spec '{}': pass must be clean or final", spec.text);
  STEREORT_CHECK(split == "TRAIN" || split == "TEST" || split == "all", "dataset spec '{}': split must be TRAIN, TEST "
                 "or all", spec.text);
  STEREORT_CHECK(subset == "all" || subset == "flyingthings3d" || subset == "monkaa" || subset == "driving",
                 "dataset spec '{}': subset must be all, flyingthings3d, monkaa or driving", spec.text);
  STEREORT_CHECK(is_directory(spec.path), "dataset spec '{}': {} is not a folder", spec.text, spec.path);
  std::string frames = std::string("frames_") + pass + "pass";

  // Subset folders: ROOT/<subset> or ROOT itself when it holds frames_*.
  std::vector<std::pair<std::string, std::string>> subsets;  // (name lower-case, folder)
  if (is_directory(path_join(spec.path, frames))) {
    std::string base = lower(path_basename(spec.path));
    subsets.emplace_back(base, spec.path);
  } else {
    for (const auto& n : list_dir(spec.path)) {
      std::string l = lower(n);
      if ((l == "flyingthings3d" || l == "monkaa" || l == "driving") && is_directory(path_join(spec.path, n)))
        subsets.emplace_back(l, path_join(spec.path, n));
    }
  }
  STEREORT_CHECK(!subsets.empty(), "dataset spec '{}': {} holds neither {} nor FlyingThings3D/Monkaa/Driving folders",
                 spec.text, spec.path, frames);

  std::vector<PairFiles> pairs;
  for (const auto& [name, folder] : subsets) {
    if (subset != "all" && name != subset) continue;
    std::string fdir = path_join(folder, frames);
    if (!is_directory(fdir)) continue;
    std::vector<std::string> lefts;
    collect_left(fdir, "", lefts, 0);
    for (const auto& rel : lefts) {
      // rel = <...>/left/<frame>
      bool is_test = rel.rfind("TEST/", 0) == 0, is_train = rel.rfind("TRAIN/", 0) == 0;
      if (split == "TEST" && !is_test) continue;
      if (split == "TRAIN" && !is_train) continue;
      size_t lp = rel.rfind("left/");
      std::string right_rel = rel.substr(0, lp) + "right/" + rel.substr(lp + 5);
      PairFiles f;
      f.name = name + "/" + rel;
      f.left = path_join(fdir, rel + ".png");
      f.right = path_join(fdir, right_rel + ".png");
      STEREORT_CHECK(file_exists(f.right), "sceneflow: {} has no right view {}", f.left, f.right);
      std::string disp = path_join(path_join(folder, "disparity"), rel + ".pfm");
      if (file_exists(disp)) {
        f.gt = PairFiles::Gt::Pfm;
        f.disparity = disp;
      }
      f.calib.fx = f.calib.fy = (name == "driving" && rel.rfind("15mm", 0) == 0) ? 450.0 : 1050.0;
      f.calib.cx = 479.5;
      f.calib.cy = 269.5;
      f.calib.baseline = 1.0;
      f.calib.units = "Blender units";
      pairs.push_back(f);
    }
  }
  STEREORT_CHECK(!pairs.empty(), "dataset spec '{}': no {}/…/left/*.png pairs found under {} (subset {}, split {})",
                 spec.text, frames, spec.path, subset, split);
  std::string desc = fmt::format("sceneflow {}pass {} ({} pairs) at {}", pass, split, pairs.size(), spec.path);
  return std::make_unique<FileDataset>(std::move(pairs), desc);
}

}  // namespace io
}  // namespace stereort
