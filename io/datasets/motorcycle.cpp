// io/datasets/motorcycle.cpp — loader for the scikit-image Motorcycle pair. See io/datasets/motorcycle.h.
#include "io/datasets/motorcycle.h"

#include <cmath>
#include <cstdlib>

#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/fileio.h"
#include "io/npy.h"
#include "io/pfm.h"

namespace stereort {
namespace io {

Tensor read_motorcycle_disparity(const std::string& dir) {
  std::string npz = path_join(dir, "disp0.npz"), pfm = path_join(dir, "disp0.pfm");
  if (file_exists(npz)) {
    NamedArrays a = read_npz(npz);
    STEREORT_CHECK(!a.empty(), "{}: no arrays in the archive", npz);
    Tensor d = a.front().second;
    STEREORT_CHECK(d.dim() == 2 && dtype_is_floating(d.dtype()), "{}: {} is {}, expected a floating (H,W) disparity",
                   npz, a.front().first, d.desc());
    return d.to(DType::F32).contiguous();
  }
  STEREORT_CHECK(file_exists(pfm), "{}: no disp0.npz or disp0.pfm (run scripts/get_sample_pair.sh)", dir);
  PfmReadOptions o;
  o.first_channel = true;
  return read_pfm(pfm, o);
}

Sample read_motorcycle(const std::string& dir) {
  Sample s;
  s.name = "motorcycle";
  s.left = read_rgb(path_join(dir, "im0.png"));
  s.right = read_rgb(path_join(dir, "im1.png"));
  Tensor d = read_motorcycle_disparity(dir);
  STEREORT_CHECK(d.size(0) == s.left.size(1) && d.size(1) == s.left.size(2),
                 "{}: ground truth {} does not match the images {}", dir, shape_str(d.shape()),
                 shape_str(s.left.shape()));
  s.valid = Tensor::empty(d.shape(), DType::Bool);
  float* pd = d.data<float>();
  bool* pv = s.valid.data<bool>();
  for (int64_t i = 0; i < d.numel(); ++i) {
    pv[i] = std::isfinite(pd[i]) && pd[i] > 0;
    if (!pv[i]) pd[i] = 0;
  }
  s.disparity = d;
  if (file_exists(path_join(dir, "calib.txt"))) s.calib = read_middlebury_calib(path_join(dir, "calib.txt")).calibration();
  return s;
}

std::string motorcycle_default_dir(const std::string& source_dir) {
  if (const char* env = std::getenv("STEREORT_SAMPLE_DIR")) return env;
  return path_join(source_dir, "data/motorcycle");
}

namespace {
class MotorcycleDataset : public StereoDataset {
 public:
  explicit MotorcycleDataset(std::string dir) : dir_(std::move(dir)) {}
  size_t size() const override { return 1; }
  Sample get(size_t i) const override {
    STEREORT_CHECK(i == 0, "motorcycle: index {} out of range (1 pair)", i);
    return read_motorcycle(dir_);
  }
  std::string describe() const override { return "motorcycle (1 pair, Middlebury 2014 via scikit-image) at " + dir_; }

 private:
  std::string dir_;
};
}  // namespace

std::unique_ptr<StereoDataset> make_motorcycle(const DatasetSpec& spec) {
  spec.check_keys({});
  STEREORT_CHECK(file_exists(path_join(spec.path, "im0.png")) && file_exists(path_join(spec.path, "im1.png")),
                 "dataset spec '{}': {} lacks im0.png / im1.png (run scripts/get_sample_pair.sh)", spec.text,
                 spec.path);
  return std::make_unique<MotorcycleDataset>(spec.path);
}

}  // namespace io
}  // namespace stereort
