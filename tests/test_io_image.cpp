// tests/test_io_image.cpp — 8-bit images through stb (read options, layouts, grey replication) and our 16-bit PNG writer
// with the KITTI / SCARED disparity encodings; corrupt files.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/fileio.h"
#include "io/image.h"
#include "io/png16.h"
#include "io_test_helpers.h"
#include "stb_image.h"
#include "stb_image_write.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("image: 8-bit PNG round trip in every layout and channel option") {
  TempDir dir;
  // (3, 5, 7) u8 RGB with distinct values.
  Tensor rgb = Tensor::empty({3, 5, 7}, DType::U8);
  for (int64_t i = 0; i < rgb.numel(); ++i) rgb.data<uint8_t>()[i] = uint8_t((i * 37 + 11) % 256);
  io::write_png(dir / "rgb.png", rgb);
  io::ImageInfo info = io::image_info(dir / "rgb.png");
  CHECK(info.width == 7);
  CHECK(info.height == 5);
  CHECK(info.channels == 3);
  CHECK(info.bits == 8);

  io::ImageReadOptions u8;
  u8.dtype = DType::U8;
  Tensor back = io::read_image(dir / "rgb.png", u8);
  REQUIRE(back.shape() == Shape{3, 5, 7});
  CHECK(back.to_vector() == rgb.to_vector());

  // Default: f32 (3,H,W) in [0,1].
  Tensor f = io::read_image(dir / "rgb.png");
  REQUIRE(f.shape() == Shape{3, 5, 7});
  CHECK(f.dtype() == DType::F32);
  std::vector<double> fv = f.to_vector(), rv = rgb.to_vector();
  for (size_t i = 0; i < fv.size(); ++i) REQUIRE(fv[i] == doctest::Approx(rv[i] / 255.0).epsilon(1e-7));

  io::ImageReadOptions hwc = u8;
  hwc.layout = io::ImageLayout::HWC;
  Tensor h = io::read_image(dir / "rgb.png", hwc);
  REQUIRE(h.shape() == Shape{5, 7, 3});
  CHECK(h.to_vector() == rgb.permute({1, 2, 0}).contiguous().to_vector());

  // Writing HWC gives the same file content.
  io::write_png(dir / "rgb_hwc.png", h, io::ImageLayout::HWC);
  CHECK(io::read_image(dir / "rgb_hwc.png", u8).to_vector() == rgb.to_vector());

  // RGBA request adds an opaque alpha.
  io::ImageReadOptions rgba = u8;
  rgba.channels = 4;
  Tensor a = io::read_image(dir / "rgb.png", rgba);
  REQUIRE(a.shape() == Shape{4, 5, 7});
  for (double v : a.select(0, 3).contiguous().to_vector()) REQUIRE(v == 255);

  // Grey: stb's luma (77 R + 150 G + 29 B) >> 8.
  io::ImageReadOptions grey = u8;
  grey.channels = 1;
  Tensor g = io::read_image(dir / "rgb.png", grey);
  REQUIRE(g.shape() == Shape{1, 5, 7});
  const uint8_t* p = rgb.data<uint8_t>();
  for (int64_t i = 0; i < 35; ++i) {
    int luma = (p[i] * 77 + p[35 + i] * 150 + p[70 + i] * 29) >> 8;
    REQUIRE(g.data<uint8_t>()[i] == luma);
  }
}

TEST_CASE("image: grey files replicate to RGB; float images are rounded and clamped on write") {
  TempDir dir;
  Tensor grey = Tensor::from_vector({0, 0.25, 0.5, 1.0, -0.5, 2.0}, {2, 3}, DType::F32);  // (H,W)
  io::write_png(dir / "g.png", grey);
  CHECK(io::image_info(dir / "g.png").channels == 1);
  io::ImageReadOptions u8;
  u8.dtype = DType::U8;
  u8.channels = 0;  // as stored
  Tensor raw = io::read_image(dir / "g.png", u8);
  REQUIRE(raw.shape() == Shape{1, 2, 3});
  CHECK(raw.to_vector() == std::vector<double>{0, 64, 128, 255, 0, 255});  // round(0.25*255)=64, round(127.5)=128
  Tensor rgb = io::read_image(dir / "g.png");  // default: 3 channels
  REQUIRE(rgb.shape() == Shape{3, 2, 3});
  CHECK(rgb.select(0, 0).contiguous().to_vector() == rgb.select(0, 2).contiguous().to_vector());
  CHECK(rgb.select(0, 1).contiguous().to_vector()[1] == doctest::Approx(64 / 255.0));
}

TEST_CASE("image: 16-bit PNG reads as [0,1] floats with full precision") {
  TempDir dir;
  Tensor v = Tensor::from_vector({0, 1, 257, 32768, 65534, 65535}, {2, 3}, DType::I32);
  io::write_png16(dir / "v16.png", v);
  io::ImageInfo info = io::image_info(dir / "v16.png");
  CHECK(info.bits == 16);
  CHECK(info.channels == 1);
  io::ImageReadOptions o;
  o.channels = 1;
  Tensor f = io::read_image(dir / "v16.png", o);
  REQUIRE(f.shape() == Shape{1, 2, 3});
  std::vector<double> fv = f.to_vector(), vv = v.to_vector();
  for (size_t i = 0; i < fv.size(); ++i) CHECK(fv[i] == doctest::Approx(vv[i] / 65535.0).epsilon(1e-7));
}

TEST_CASE("png16: our encoder round-trips through stb for every filter case") {
  TempDir dir;
  // Smooth ramps (Sub/Up/Paeth win), noise (None wins), constants; odd sizes.
  for (auto [h, w] : {std::pair<int, int>{1, 1}, {3, 5}, {17, 33}, {64, 129}}) {
    CAPTURE(h);
    CAPTURE(w);
    Tensor a = Tensor::empty({h, w}, DType::I32);
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        uint32_t noise = uint32_t(x * 2654435761u ^ y * 40503u) % 65536;
        a.data<int32_t>()[y * w + x] = (y % 3 == 0) ? int32_t(noise) : (y % 3 == 1) ? (x * 512 + y) % 65536 : 1234;
      }
    io::write_png16(dir / "a.png", a);
    Tensor b = io::read_png16(dir / "a.png");
    REQUIRE(b.shape() == Shape{h, w});
    CHECK(b.to_vector() == a.to_vector());
  }
  // The file structure: signature, IHDR with depth 16 / grey, IDAT, IEND; valid CRCs (stb checks them too).
  std::string png = io::read_file_text(dir / "a.png");
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(png.compare(12, 4, "IHDR") == 0);
  CHECK(uint8_t(png[24]) == 16);  // bit depth
  CHECK(uint8_t(png[25]) == 0);   // colour type grey
  CHECK(png.compare(png.size() - 8, 4, "IEND") == 0);
  uint32_t crc = io::crc32(reinterpret_cast<const uint8_t*>(png.data()) + 12, 17);
  uint32_t stored = uint32_t(uint8_t(png[29])) << 24 | uint32_t(uint8_t(png[30])) << 16 |
                    uint32_t(uint8_t(png[31])) << 8 | uint8_t(png[32]);
  CHECK(crc == stored);
  // Known CRC-32 check value.
  CHECK(io::crc32(reinterpret_cast<const uint8_t*>("123456789"), 9) == 0xCBF43926u);
  check_no_temp_files(dir.path());
}

TEST_CASE("png16: KITTI x256 and SCARED x128 disparity encodings") {
  TempDir dir;
  Tensor d = Tensor::from_vector({0.0, 1.0, 1.00195, 1.5 / 256, 0.5 / 256, -3.0, NAN, INFINITY, 255.99, 300.0, 0.001,
                                  100.25},
                                 {3, 4}, DType::F32);
  io::DisparityEncodeStats st = io::write_disparity_png(dir / "k.png", d, io::kKittiDispScale);
  Tensor raw = io::read_png16(dir / "k.png");
  // round(d*256) half-to-even: 1.00195*256 = 256.4992 -> 256; 1.5 -> 2; 0.5 -> 0 (invalid); 255.99*256 = 65533.44;
  // 300*256 clamps to 65535.
  std::vector<double> want = {0, 256, 256, 2, 0, 0, 0, 0, 65533, 65535, 0, 25664};
  CHECK(raw.to_vector() == want);
  CHECK(st.clamped == 1);
  CHECK(st.invalid == 6);  // 0, 0.5/256, -3, NaN, inf, 0.001
  io::DisparityMap m = io::read_disparity_png(dir / "k.png", io::kKittiDispScale);
  REQUIRE(m.disp.shape() == Shape{3, 4});
  std::vector<double> dv = m.disp.to_vector(), vv = m.valid.to_vector();
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(dv[i] == doctest::Approx(want[i] / 256.0));
    CHECK(vv[i] == (want[i] > 0 ? 1 : 0));
  }
  // SCARED: x128 with an explicit validity mask.
  Tensor d2 = Tensor::from_vector({10.0, 20.5, 30.25, 511.99}, {2, 2}, DType::F64);
  Tensor valid = Tensor::from_vector({1, 0, 1, 1}, {2, 2}, DType::Bool);
  io::write_disparity_png(dir / "s.png", d2, io::kScaredDispScale, valid);
  CHECK(io::read_png16(dir / "s.png").to_vector() == std::vector<double>{1280, 0, 3872, 65535});
  io::DisparityMap s = io::read_disparity_png(dir / "s.png", io::kScaredDispScale);
  CHECK(s.disp.to_vector()[2] == 30.25);
  CHECK(s.valid.to_vector() == std::vector<double>{1, 0, 1, 1});
}

TEST_CASE("png16/image: corrupt files and bad arguments give clear errors and leave no files") {
  TempDir dir;
  write_raw(dir / "junk.png", "this is not a png at all");
  expect_error([&] { io::read_png16(dir / "junk.png"); }, {dir / "junk.png", "not a PNG"});
  expect_error([&] { io::read_image(dir / "junk.png"); }, {dir / "junk.png", "cannot decode"});
  write_raw(dir / "empty.png", "");
  expect_error([&] { io::read_image(dir / "empty.png"); }, {dir / "empty.png", "0 bytes"});
  // An 8-bit PNG is not a disparity PNG.
  io::write_png(dir / "g8.png", Tensor::zeros({2, 2}, DType::U8));
  expect_error([&] { io::read_png16(dir / "g8.png"); }, {dir / "g8.png", "8 bits per sample"});
  // An RGB 8-bit image too.
  io::write_png(dir / "rgb8.png", Tensor::zeros({3, 2, 2}, DType::U8));
  expect_error([&] { io::read_png16(dir / "rgb8.png"); }, {"8 bits"});
  // Truncated 16-bit PNG: every prefix fails cleanly.
  io::write_png16(dir / "t.png", Tensor::arange(64, DType::I32).reshape({8, 8}));
  std::string full = io::read_file_text(dir / "t.png");
  for (size_t n = 0; n < full.size(); n += 3) {
    CAPTURE(n);
    bool threw = false;
    try {
      io::read_png16_from_memory(reinterpret_cast<const uint8_t*>(full.data()), n, "t.png");
    } catch (const Error& e) {
      threw = true;
      CHECK(e.message().find("t.png") != std::string::npos);
    }
    CHECK(threw);
  }
  // A flipped bit in the pixel data fails our CRC check (stb alone would decode garbage).
  std::string bad = full;
  bad[45] = char(bad[45] ^ 0x10);
  write_raw(dir / "crc.png", bad);
  expect_error([&] { io::read_png16(dir / "crc.png"); }, {dir / "crc.png", "CRC mismatch in the IDAT chunk"});
  // A header claiming far more pixels than the IDAT data can hold is refused before anything is allocated.
  bad = full;
  bad[16] = 0x00;
  bad[17] = 0x01;  // width 65536 + 8
  bad[20] = 0x00;
  bad[21] = 0x01;  // height 65536 + 8
  uint32_t hcrc = io::crc32(reinterpret_cast<const uint8_t*>(bad.data()) + 12, 17);
  for (int k = 0; k < 4; ++k) bad[size_t(29 + k)] = char(hcrc >> (24 - 8 * k));
  write_raw(dir / "huge.png", bad);
  expect_error([&] { io::read_png16(dir / "huge.png"); }, {dir / "huge.png", "cannot hold the image"});
  // An impossible bit depth in IHDR (CRC fixed up) is stb's to reject.
  bad = full;
  bad[24] = 7;
  uint32_t crc = io::crc32(reinterpret_cast<const uint8_t*>(bad.data()) + 12, 17);
  for (int k = 0; k < 4; ++k) bad[size_t(29 + k)] = char(crc >> (24 - 8 * k));
  write_raw(dir / "depth.png", bad);
  expect_error([&] { io::read_png16(dir / "depth.png"); }, {dir / "depth.png", "cannot decode"});

  expect_error([&] { io::write_png16(dir / "o.png", Tensor::from_vector({70000}, {1, 1})); }, {"not an integer in [0, 65535]"});
  expect_error([&] { io::write_png16(dir / "o.png", Tensor::from_vector({1.5}, {1, 1})); }, {"1.5"});
  expect_error([&] { io::write_disparity_png(dir / "o.png", Tensor::ones({2, 2}), 0); }, {"scale must be > 0"});
  expect_error([&] { io::write_disparity_png(dir / "o.png", Tensor::ones({2, 2, 1}), 256); }, {"(H,W)"});
  expect_error([&] { io::write_png(dir / "o.png", Tensor::ones({2, 3, 3})); }, {"write_png", "2 channels"});
  expect_error([&] { io::write_png(dir / "o.png", Tensor::ones({3, 3}, DType::I32)); }, {"u8 or floating"});
  io::ImageReadOptions bad_opt;
  bad_opt.channels = 2;
  expect_error([&] { io::read_image(dir / "g8.png", bad_opt); }, {"channels must be"});
  CHECK_FALSE(io::file_exists(dir / "o.png"));
  check_no_temp_files(dir.path());
}

TEST_CASE("image: BMP and JPEG files read through the same path") {
  TempDir dir;
  // (H=4, W=6) RGB, interleaved for stb_image_write.
  std::vector<uint8_t> px(4 * 6 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(40 + (i * 7) % 170);
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::string*>(ctx);
    v->append(static_cast<const char*>(data), size_t(size));
  };
  std::string bmp, jpg;
  REQUIRE(stbi_write_bmp_to_func(sink, &bmp, 6, 4, 3, px.data()));
  REQUIRE(stbi_write_jpg_to_func(sink, &jpg, 6, 4, 3, px.data(), 100));
  write_raw(dir / "a.bmp", bmp);
  write_raw(dir / "a.jpg", jpg);
  io::ImageReadOptions hwc;
  hwc.dtype = DType::U8;
  hwc.layout = io::ImageLayout::HWC;
  Tensor b = io::read_image(dir / "a.bmp", hwc);
  REQUIRE(b.shape() == Shape{4, 6, 3});
  CHECK(std::memcmp(b.data_ptr(), px.data(), px.size()) == 0);  // BMP is lossless
  Tensor j = io::read_image(dir / "a.jpg");                     // f32 (3,H,W)
  REQUIRE(j.shape() == Shape{3, 4, 6});
  double err = 0;
  std::vector<double> jv = j.permute({1, 2, 0}).contiguous().to_vector();
  for (size_t i = 0; i < px.size(); ++i) err += std::fabs(jv[i] * 255 - px[i]);
  CHECK(err / double(px.size()) < 12);  // JPEG at quality 100 on a tiny noisy image: close, not exact
}
