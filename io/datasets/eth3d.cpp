// io/datasets/eth3d.cpp — ETH3D low-res two-view reader (formats-and-metrics.md §5).
//   ROOT/two_view_<split>/<scene>/{im0.png, im1.png, calib.txt} (split = training | test) with the ground truth of the
//   training split in ROOT/two_view_training_gt/<scene>/{disp0GT.pfm, mask0nocc.png}. ROOT may also be the
//   two_view_<split> folder itself (GT then looked for beside it). Images are greyscale: read_image replicates them
//   to 3 channels. GT inf = unknown; mask0nocc 255 = non-occluded.
#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

std::unique_ptr<StereoDataset> make_eth3d(const DatasetSpec& spec) {
  spec.check_keys({"split"});
  std::string split = spec.get("split", "training");
  STEREORT_CHECK(split == "training" || split == "test", "dataset spec '{}': split must be training or test",
                 spec.text);
  std::string sub = "two_view_" + split;
  std::string dir = spec.path, parent = spec.path;
  if (is_directory(path_join(spec.path, sub))) {
    dir = path_join(spec.path, sub);
  } else {
    size_t p = spec.path.find_last_of('/');
    parent = p == std::string::npos ? "." : spec.path.substr(0, p);
  }
  STEREORT_CHECK(is_directory(dir), "dataset spec '{}': {} is not a folder (expected ROOT/{})", spec.text, dir, sub);
  std::string gt = path_join(parent, "two_view_training_gt");
  bool has_gt = split == "training" && is_directory(gt);
  std::vector<PairFiles> pairs = middlebury_style_pairs(dir, has_gt ? gt : "", has_gt);
  STEREORT_CHECK(!pairs.empty(), "dataset spec '{}': no scene folders (im0.png + im1.png) in {}", spec.text, dir);
  std::string desc = fmt::format("eth3d {} ({} scenes{}) at {}", split, pairs.size(), has_gt ? "" : ", no GT",
                                 spec.path);
  return std::make_unique<FileDataset>(std::move(pairs), desc);
}

}  // namespace io
}  // namespace stereort
