// tests/test_augment.cpp — augmentations: same window on both views and the disparity, reproducible by seed,
// values stay in [0,1], eraser touches only the right view, crop errors are clear.
#include "test_util.h"
#include "train/augment.h"

using namespace stereort;
using namespace stereort::test;

static StereoItem make_item(int64_t H, int64_t W) {
  StereoItem s;
  s.left = rand_t({3, H, W}, DType::F32, 0, 1);
  s.right = rand_t({3, H, W}, DType::F32, 0, 1);
  s.disparity = rand_t({H, W}, DType::F32, 0, 40);
  s.valid = Tensor::ones({H, W}, DType::U8);
  return s;
}

TEST_CASE("crop takes the same window everywhere and is reproducible") {
  StereoItem s = make_item(37, 61);
  HostRng a(7, 1), b(7, 1), c(8, 1);
  StereoItem x = random_crop(s, 16, 24, a), y = random_crop(s, 16, 24, b);
  CHECK(x.left.shape() == Shape{3, 16, 24});
  CHECK(x.disparity.shape() == Shape{16, 24});
  CHECK(x.left.to_vector() == y.left.to_vector());
  // find the window: the cropped disparity must equal a slice of the original at one offset shared by the views
  bool found = false;
  for (int64_t y0 = 0; y0 <= 37 - 16 && !found; ++y0)
    for (int64_t x0 = 0; x0 <= 61 - 24 && !found; ++x0)
      if (s.disparity.slice(0, y0, y0 + 16).slice(1, x0, x0 + 24).contiguous().to_vector() == x.disparity.to_vector()) {
        found = true;
        CHECK(s.right.slice(1, y0, y0 + 16).slice(2, x0, x0 + 24).contiguous().to_vector() == x.right.to_vector());
      }
  CHECK(found);
  expect_error([&] { random_crop(s, 64, 24, c); }, {"random_crop", "larger than the image"});
}

TEST_CASE("full augmentation: deterministic, bounded, eraser on the right view only") {
  StereoItem s = make_item(40, 64);
  AugmentOptions o;
  o.crop_h = 32;
  o.crop_w = 48;
  o.eraser_prob = 1.0f;
  o.eraser_min = 4;
  o.eraser_max = 8;
  o.vflip_prob = 0.5f;
  o.grayscale_prob = 0.2f;
  HostRng a(3, 9), b(3, 9);
  StereoItem x = augment(s, o, a), y = augment(s, o, b);
  CHECK(x.left.to_vector() == y.left.to_vector());
  CHECK(x.right.to_vector() == y.right.to_vector());
  for (double v : x.left.to_vector()) REQUIRE((v >= 0 && v <= 1));
  // Without jitter, the left view is an exact crop and the right differs only inside the patches.
  o.jitter_prob = 0;
  o.vflip_prob = 0;
  o.grayscale_prob = 0;
  HostRng r(5, 5), r2(5, 5);
  StereoItem z = augment(s, o, r);
  StereoItem crop = random_crop(s, 32, 48, r2);
  CHECK(z.left.to_vector() == crop.left.to_vector());
  std::vector<double> zr = z.right.to_vector(), cr = crop.right.to_vector();
  int64_t changed = 0;
  for (size_t i = 0; i < zr.size(); ++i) changed += zr[i] != cr[i];
  CHECK(changed > 0);
  CHECK(changed < int64_t(zr.size()) / 2);
}
