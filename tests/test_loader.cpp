// tests/test_loader.cpp — train/loader.h: the --data syntax, weighted mixing proportions, seeded epoch order,
// determinism across worker counts and resume positions, error propagation from workers, GPU prefetch == CPU.
#include <fmt/format.h>
#include <map>
#include <set>

#include "test_util.h"
#include "train/loader.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// n tiny samples whose pixels encode (tag, index), so a batch says exactly which samples it holds.
class TagDataset : public StereoDataset {
 public:
  TagDataset(int tag, size_t n, int64_t h = 8, int64_t w = 12) : tag_(tag), n_(n), h_(h), w_(w) {}
  size_t size() const override { return n_; }
  Sample get(size_t i) const override {
    Sample s;
    double v = double(tag_ * 1000 + int(i));
    s.left = Tensor::full({3, h_, w_}, v / 1e4);
    s.right = Tensor::full({3, h_, w_}, v / 2e4);
    s.disparity = Tensor::full({h_, w_}, v);
    s.valid = Tensor::ones({h_, w_}, DType::Bool);
    s.name = std::to_string(tag_) + "/" + std::to_string(i);
    return s;
  }
  std::string describe() const override { return "tags " + std::to_string(tag_); }

 private:
  int tag_;
  size_t n_;
  int64_t h_, w_;
};

std::shared_ptr<const StereoDataset> tags(int tag, size_t n, int64_t h = 8, int64_t w = 12) {
  return std::make_shared<TagDataset>(tag, n, h, w);
}

void expect_same_batch(const Batch& a, const Batch& b, const std::string& what) {
  CHECK(a.index == b.index);
  CHECK(a.names == b.names);
  expect_close(a.left.cpu(), b.left.cpu(), 0, 0, what + " left");
  expect_close(a.right.cpu(), b.right.cpu(), 0, 0, what + " right");
  expect_close(a.disparity.cpu(), b.disparity.cpu(), 0, 0, what + " disparity");
  expect_close(a.valid.cpu().to(DType::F32), b.valid.cpu().to(DType::F32), 0, 0, what + " valid");
}

const char* kSynth = "synthetic:count=6,seed=4,size=48x64,max_disp=12";

}  // namespace

TEST_CASE("--data syntax: '+' joins components, '@W' weights them, option values may contain '+'") {
  auto m = parse_data_mixture("synthetic:count=2000,seed=1,size=320x640@0.7+kitti2015:/data/kitti@0.3");
  REQUIRE(m.size() == 2);
  CHECK(m[0].spec == "synthetic:count=2000,seed=1,size=320x640");
  CHECK(m[0].weight == 0.7);
  CHECK(m[1].spec == "kitti2015:/data/kitti");
  CHECK(m[1].weight == 0.3);
  auto one = parse_data_mixture("scared:/data/scared,datasets=8+9");
  REQUIRE(one.size() == 1);
  CHECK(one[0].spec == "scared:/data/scared,datasets=8+9");
  CHECK(one[0].weight == 0);
  auto cat = parse_data_mixture("sceneflow:/a/b+c+middlebury:/m");
  REQUIRE(cat.size() == 2);
  CHECK(cat[0].spec == "sceneflow:/a/b+c");
  expect_error([] { parse_data_mixture("synthetic:count=2@0.5+synthetic:count=3"); }, {"weight", "every component"});
  expect_error([] { parse_data_mixture("synthetic:count=2@-1"); }, {"@-1", "positive"});
  expect_error([] { parse_data_mixture(""); }, {"--data is empty"});
}

TEST_CASE("weighted mixing: exact per-epoch proportions, every sample drawn evenly, shuffled per epoch") {
  DataMixture mix({tags(1, 20), tags(2, 5)}, {0.7, 0.3}, 11, 100);
  CHECK(mix.per_epoch(0) == 70);
  CHECK(mix.per_epoch(1) == 30);
  std::map<std::pair<size_t, size_t>, int> seen;
  std::vector<size_t> first_epoch, second_epoch;
  for (int64_t e = 0; e < 3; ++e) {
    int count[2] = {0, 0};
    for (int64_t k = 0; k < 100; ++k) {
      DataMixture::Ref r = mix.locate(e * 100 + k);
      count[r.source]++;
      seen[{r.source, r.index}]++;
      if (e == 0) first_epoch.push_back(r.source * 100 + r.index);
      if (e == 1) second_epoch.push_back(r.source * 100 + r.index);
    }
    CHECK(count[0] == 70);
    CHECK(count[1] == 30);
  }
  // 3 x 30 draws over 5 samples: 18 each; 3 x 70 = 210 draws over 20 samples: whole passes, so 10 or 11 each.
  for (size_t i = 0; i < 5; ++i) CHECK(seen[{1, i}] == 18);
  for (size_t i = 0; i < 20; ++i) CHECK((seen[{0, i}] == 10 || seen[{0, i}] == 11));
  CHECK(first_epoch != second_epoch);
  // Proportions hold in the small as well: the first 20 samples hold between 8 and 20 of the big dataset.
  int big = 0;
  for (size_t k = 0; k < 20; ++k) big += first_epoch[k] < 100;
  CHECK((big >= 8 && big <= 20));
  // Rounding: largest remainder, counts always sum to the epoch size.
  DataMixture odd({tags(1, 3), tags(2, 3), tags(3, 3)}, {1, 1, 1}, 1, 10);
  CHECK(odd.per_epoch(0) + odd.per_epoch(1) + odd.per_epoch(2) == 10);
  CHECK(odd.per_epoch(0) == 4);
  // Without weights: concatenation, every sample once per epoch; a different seed gives another order.
  DataMixture plain({tags(1, 7), tags(2, 4)}, {}, 5), other({tags(1, 7), tags(2, 4)}, {}, 6);
  CHECK(plain.epoch_size() == 11);
  std::set<std::pair<size_t, size_t>> once;
  bool differs = false;
  for (int64_t k = 0; k < 11; ++k) {
    DataMixture::Ref r = plain.locate(11 + k), q = other.locate(11 + k);
    once.insert({r.source, r.index});
    differs |= r.source != q.source || r.index != q.index;
  }
  CHECK(once.size() == 11);
  CHECK(differs);
}

TEST_CASE("loader: batch k is the same whatever the worker count, and resuming at batch k gives batch k") {
  auto data = std::make_shared<DataMixture>(kSynth, 3);
  LoaderOptions lo;
  lo.batch = 3;
  lo.augment = AugmentOptions();  // full augmentation: crop, jitter, eraser all draw from the per-sample HostRng
  lo.augment.crop_h = 32;
  lo.augment.crop_w = 48;
  lo.augment.eraser_min = 4;
  lo.augment.eraser_max = 10;
  lo.seed = 21;
  lo.workers = 0;
  DataLoader a(data, lo);
  lo.workers = 3;
  lo.slots = 2;
  DataLoader b(data, lo);
  std::vector<Batch> ref;
  for (int k = 0; k < 5; ++k) {  // 15 samples: crosses the 6-sample epoch boundary twice
    Batch x = a.next(), y = b.next();
    REQUIRE(x.left.shape() == Shape{3, 3, 32, 48});
    CHECK(x.disparity.shape() == Shape{3, 32, 48});
    CHECK(x.valid.dtype() == DType::U8);
    CHECK(x.epoch == k * 3 / 6);
    expect_same_batch(x, y, fmt::format("batch {}", k));
    ref.push_back(x);
  }
  CHECK(a.position() == 5);
  // The same samples within an epoch are distinct (a permutation), and augmentation differs between two batches.
  std::set<std::string> names(ref[0].names.begin(), ref[0].names.end());
  names.insert(ref[1].names.begin(), ref[1].names.end());
  CHECK(names.size() == 6);
  CHECK(rel_error(ref[0].left, ref[2].left) > 0);
  lo.start_batch = 3;
  lo.workers = 2;
  DataLoader c(data, lo);
  expect_same_batch(c.next(), ref[3], "resumed batch 3");
  expect_same_batch(c.next(), ref[4], "resumed batch 4");
  lo.start_batch = 0;
  lo.seed = 22;
  DataLoader d(data, lo);
  CHECK(rel_error(d.next().left, ref[0].left) > 0);
}

TEST_CASE("loader: crop-only batches copy the sample's window; worker errors reach next()") {
  auto data = std::make_shared<DataMixture>(std::vector<std::shared_ptr<const StereoDataset>>{tags(4, 5)},
                                            std::vector<double>{}, 9);
  LoaderOptions lo;
  lo.batch = 2;
  lo.augment = LoaderOptions::crop_only(4, 8);
  lo.workers = 2;
  DataLoader l(data, lo);
  Batch b = l.next();
  for (int j = 0; j < 2; ++j) {
    int idx = std::stoi(b.names[size_t(j)].substr(2));
    double v = 4000 + idx;
    for (double x : b.disparity.select(0, j).to_vector()) CHECK(x == v);
    for (double x : b.left.select(0, j).to_vector()) CHECK(float(x) == float(v / 1e4));
    for (double x : b.valid.select(0, j).to_vector()) CHECK(x == 1);
  }
  // Samples smaller than the crop: the worker's error surfaces in next() with the crop named.
  auto small = std::make_shared<DataMixture>(std::vector<std::shared_ptr<const StereoDataset>>{tags(5, 4, 4, 4)},
                                             std::vector<double>{}, 1);
  lo.augment = LoaderOptions::crop_only(8, 8);
  DataLoader bad(small, lo);
  expect_error([&] { bad.next(); }, {"random_crop", "8x8", "larger than the image"});
  // Without a crop, a sample of another size is refused with the fix named.
  auto mixed = std::make_shared<DataMixture>(
      std::vector<std::shared_ptr<const StereoDataset>>{tags(6, 1, 8, 8), tags(7, 1, 8, 12)}, std::vector<double>{}, 1);
  lo.augment = LoaderOptions::crop_only(0, 0);
  lo.batch = 2;
  DataLoader nocrop(mixed, lo);
  expect_error([&] { nocrop.next(); }, {"loader", "--crop"});
}

TEST_CASE("loader: GPU prefetch (pinned slots, copy stream, events) gives the CPU batches [gpu]") {
  STEREORT_REQUIRE_GPU();
  auto data = std::make_shared<DataMixture>("synthetic:count=5,seed=7,size=64x96,max_disp=20", 2);
  LoaderOptions lo;
  lo.batch = 2;
  lo.augment = AugmentOptions();
  lo.augment.crop_h = 32;
  lo.augment.crop_w = 64;
  lo.augment.eraser_min = 4;
  lo.augment.eraser_max = 12;
  lo.workers = 3;
  DataLoader cpu(data, lo);
  lo.device = gpu();
  DataLoader dev(data, lo);
  // Keep every device batch alive while later ones are copied: a batch must never be overwritten by a later copy
  // (device buffers from the caching allocator, pinned slots reused only after their copy finished).
  std::vector<Batch> held, ref;
  for (int k = 0; k < 7; ++k) {
    Batch c = cpu.next(), g = dev.next();
    CHECK(g.left.is_cuda());
    CHECK(g.valid.dtype() == DType::U8);
    held.push_back(g);
    ref.push_back(c);
    expect_same_batch(g, c, fmt::format("gpu batch {}", k));
  }
  for (int k = 0; k < 7; ++k) expect_same_batch(held[size_t(k)], ref[size_t(k)], fmt::format("gpu batch {} later", k));
  // Resume position on the GPU path, and workers = 0 (synchronous production, lazy staging).
  lo.start_batch = 4;
  lo.workers = 0;
  DataLoader again(data, lo);
  expect_same_batch(again.next(), held[4], "gpu resumed batch 4");
  expect_same_batch(again.next(), held[5], "gpu resumed batch 5");
}
