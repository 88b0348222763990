// io/datasets/dataset.cpp — dataset spec parsing, the open_dataset() factory and helpers shared by the readers.
#include <cmath>

#include "core/check.h"
#include "io/datasets/readers.h"
#include "io/image.h"
#include "io/pfm.h"
#include "io/png16.h"

namespace stereort {

namespace io {

DatasetSpec parse_dataset_spec(const std::string& spec) {
  DatasetSpec s;
  s.text = spec;
  size_t colon = spec.find(':');
  STEREORT_CHECK(colon != std::string::npos && colon > 0,
                 "dataset spec '{}' must look like kind:path[,key=value...] (kinds: sceneflow, kitti2012, kitti2015, "
                 "middlebury, eth3d, scared, motorcycle, synthetic)", spec);
  s.kind = spec.substr(0, colon);
  std::string rest = spec.substr(colon + 1);
  size_t start = 0;
  bool first = true;
  while (start <= rest.size()) {
    size_t comma = rest.find(',', start);
    std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) {
      size_t eq = item.find('=');
      if (first && eq == std::string::npos) {
        s.path = item;
      } else {
        STEREORT_CHECK(eq != std::string::npos && eq > 0, "dataset spec '{}': '{}' is not key=value", spec, item);
        std::string key = item.substr(0, eq);
        STEREORT_CHECK(!s.options.count(key), "dataset spec '{}': option '{}' given twice", spec, key);
        s.options[key] = item.substr(eq + 1);
      }
    }
    first = false;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return s;
}

std::string DatasetSpec::get(const std::string& key, const std::string& fallback) const {
  auto it = options.find(key);
  return it == options.end() ? fallback : it->second;
}

void DatasetSpec::check_keys(const std::vector<std::string>& allowed) const {
  for (const auto& kv : options) {
    bool ok = false;
    for (const auto& a : allowed) ok |= kv.first == a;
    STEREORT_CHECK(ok, "dataset spec '{}': unknown option '{}' for {} (options: {})", text, kv.first, kind,
                   fmt::join(allowed, ", "));
  }
}

Tensor read_rgb(const std::string& path) { return read_image(path); }

void read_pfm_disparity(const std::string& path, Tensor* disparity, Tensor* valid) {
  PfmReadOptions o;
  o.first_channel = true;
  Tensor d = read_pfm(path, o);
  Tensor v = Tensor::empty(d.shape(), DType::Bool);
  float* pd = d.data<float>();
  bool* pv = v.data<bool>();
  for (int64_t i = 0; i < d.numel(); ++i) {
    pv[i] = std::isfinite(pd[i]) && pd[i] > 0;
    if (!pv[i]) pd[i] = 0;
  }
  *disparity = d;
  *valid = v;
}

Tensor read_mask_png(const std::string& path, int on) {
  ImageReadOptions o;
  o.channels = 1;
  o.dtype = DType::U8;
  Tensor m = read_image(path, o);
  Tensor out = Tensor::empty({m.size(1), m.size(2)}, DType::Bool);
  const uint8_t* p = m.data<uint8_t>();
  bool* q = out.data<bool>();
  for (int64_t i = 0; i < out.numel(); ++i) q[i] = p[i] == on;
  return out;
}

Sample FileDataset::get(size_t i) const {
  STEREORT_CHECK(i < pairs_.size(), "{}: index {} out of range ({} pairs)", desc_, i, pairs_.size());
  const PairFiles& f = pairs_[i];
  Sample s;
  s.name = f.name;
  s.calib = f.calib;
  s.left = read_rgb(f.left);
  s.right = read_rgb(f.right);
  STEREORT_CHECK(s.left.shape() == s.right.shape(), "{}: left {} is {} but right {} is {}", desc_, f.left,
                 shape_str(s.left.shape()), f.right, shape_str(s.right.shape()));
  Shape hw = {s.left.size(1), s.left.size(2)};
  switch (f.gt) {
    case PairFiles::Gt::None: break;
    case PairFiles::Gt::Pfm: read_pfm_disparity(f.disparity, &s.disparity, &s.valid); break;
    case PairFiles::Gt::Png256:
    case PairFiles::Gt::Png128: {
      DisparityMap m = read_disparity_png(f.disparity, f.gt == PairFiles::Gt::Png256 ? kKittiDispScale : kScaredDispScale);
      s.disparity = m.disp;
      s.valid = m.valid;
      break;
    }
  }
  if (s.disparity.defined())
    STEREORT_CHECK(s.disparity.shape() == hw, "{}: ground truth {} is {} but the images are {}", desc_, f.disparity,
                   shape_str(s.disparity.shape()), shape_str(hw));
  if (f.noc_kind == PairFiles::Noc::MaskPng255) {
    s.noc = read_mask_png(f.noc, 255);
  } else if (f.noc_kind == PairFiles::Noc::DispPng) {
    s.noc = read_disparity_png(f.noc, kKittiDispScale).valid;
  }
  if (s.noc.defined())
    STEREORT_CHECK(s.noc.shape() == hw, "{}: occlusion mask {} is {} but the images are {}", desc_, f.noc,
                   shape_str(s.noc.shape()), shape_str(hw));
  return s;
}

}  // namespace io

std::unique_ptr<StereoDataset> open_dataset(const std::string& spec_text) {
  io::DatasetSpec spec = io::parse_dataset_spec(spec_text);
  if (spec.kind == "sceneflow") return io::make_sceneflow(spec);
  if (spec.kind == "kitti2015" || spec.kind == "kitti2012") return io::make_kitti(spec);
  if (spec.kind == "middlebury") return io::make_middlebury(spec);
  if (spec.kind == "eth3d") return io::make_eth3d(spec);
  if (spec.kind == "scared") return io::make_scared(spec);
  if (spec.kind == "motorcycle") return io::make_motorcycle(spec);
  if (spec.kind == "synthetic") return io::make_synthetic(spec);
  STEREORT_FAIL("dataset spec '{}': unknown kind '{}' (kinds: sceneflow, kitti2012, kitti2015, middlebury, eth3d, "
                "scared, motorcycle, synthetic)", spec_text, spec.kind);
}

}  // namespace stereort
