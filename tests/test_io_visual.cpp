// tests/test_io_visual.cpp — colour maps (turbo polynomial, grey, fixed and robust ranges, invalid -> black) and PLY
// point clouds (geometry against hand-computed points, units line, skipped pixels, byte layout).
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/colormap.h"
#include "io/fileio.h"
#include "io/image.h"
#include "io/ply.h"
#include "io_test_helpers.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("colormap: turbo matches the published polynomial; grey is linear") {
  // Independent evaluation of the published coefficients (power form, not Horner).
  const double R[6] = {0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943};
  const double G[6] = {0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604};
  const double B[6] = {0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973};
  for (double t : {0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0}) {
    CAPTURE(t);
    auto ch = [&](const double* k) {
      double v = 0;
      for (int i = 0; i < 6; ++i) v += k[i] * std::pow(t, i);
      return int(std::lround(std::min(1.0, std::max(0.0, v)) * 255));
    };
    std::array<uint8_t, 3> c = io::turbo_rgb(t);
    CHECK(int(c[0]) == ch(R));
    CHECK(int(c[1]) == ch(G));
    CHECK(int(c[2]) == ch(B));
  }
  // Turbo runs blue -> green -> dark red (the polynomial's t = 0 end is a dark grey-violet).
  std::array<uint8_t, 3> lo = io::turbo_rgb(0.1), mid = io::turbo_rgb(0.5), hi = io::turbo_rgb(1);
  CHECK(lo[2] > lo[0]);
  CHECK(mid[1] > 200);
  CHECK(hi[0] > hi[2]);
  CHECK(io::turbo_rgb(-5) == io::turbo_rgb(0));  // clamped
  CHECK(io::turbo_rgb(7) == hi);
  CHECK(io::colormap_from_name("gray") == io::Colormap::Grey);
  expect_error([] { io::colormap_from_name("jet"); }, {"unknown colour map 'jet'"});
}

TEST_CASE("colormap: percentile matches numpy's linear interpolation") {
  std::vector<double> v = {5, 1, 4, 2, 3};
  CHECK(io::percentile(v, 0) == 1);
  v = {5, 1, 4, 2, 3};
  CHECK(io::percentile(v, 100) == 5);
  v = {5, 1, 4, 2, 3};
  CHECK(io::percentile(v, 50) == 3);
  v = {5, 1, 4, 2, 3};
  CHECK(io::percentile(v, 10) == doctest::Approx(1.4));  // np.percentile([1..5], 10) = 1.4
  v = {10, 20};
  CHECK(io::percentile(v, 99) == doctest::Approx(19.9));
  std::vector<double> empty;
  CHECK(std::isnan(io::percentile(empty, 50)));
}

TEST_CASE("colormap: fixed and robust ranges, invalid pixels black") {
  // 1 x 101 ramp 0..100 with two invalid pixels (NaN and masked).
  std::vector<double> ramp(101);
  for (int i = 0; i <= 100; ++i) ramp[size_t(i)] = i;
  ramp[50] = NAN;
  Tensor d = Tensor::from_vector(ramp, {1, 101}, DType::F32);
  Tensor valid = Tensor::ones({1, 101}, DType::Bool);
  valid.data<bool>()[7] = false;

  io::ColorizeOptions fixed;
  fixed.map = io::Colormap::Grey;
  fixed.vmin = 20;
  fixed.vmax = 70;
  io::Colorized g = io::colorize_disparity(d, valid, fixed);
  CHECK(g.vmin == 20);
  CHECK(g.vmax == 70);
  CHECK(g.valid == 99);
  REQUIRE(g.rgb.shape() == Shape{3, 1, 101});
  const uint8_t* p = g.rgb.data<uint8_t>();
  CHECK(p[10] == 0);                                        // below vmin clamps to 0
  CHECK(p[45] == std::lround((45 - 20) / 50.0 * 255));      // linear
  CHECK(p[90] == 255);                                      // above vmax clamps
  CHECK((p[50] == 0 && p[101 + 50] == 0 && p[202 + 50] == 0));  // NaN -> black
  CHECK((p[7] == 0 && p[101 + 7] == 0 && p[202 + 7] == 0));     // masked -> black

  // Robust range: p1/p99 of the 99 valid values.
  io::Colorized t = io::colorize_disparity(d, valid);
  std::vector<double> vals;
  for (int i = 0; i <= 100; ++i)
    if (i != 50 && i != 7) vals.push_back(i);
  std::vector<double> a = vals, b = vals;
  CHECK(t.vmin == doctest::Approx(io::percentile(a, 1)));
  CHECK(t.vmax == doctest::Approx(io::percentile(b, 99)));
  CHECK(t.vmin > 0);
  CHECK(t.vmax < 100);
  // Pixel colours follow turbo at the normalised value.
  double tn = (60 - t.vmin) / (t.vmax - t.vmin);
  std::array<uint8_t, 3> want = io::turbo_rgb(tn);
  const uint8_t* q = t.rgb.data<uint8_t>();
  CHECK((q[60] == want[0] && q[101 + 60] == want[1] && q[202 + 60] == want[2]));

  // One fixed bound only: the other is robust.
  io::ColorizeOptions half;
  half.vmin = 0;
  io::Colorized h = io::colorize_disparity(d, Tensor(), half);
  CHECK(h.vmin == 0);
  CHECK(h.vmax == doctest::Approx(99.01));  // p99 of the 100 values 0..100 without 50

  // All invalid: black image, degenerate range, no crash.
  io::Colorized none = io::colorize_disparity(Tensor::full({2, 2}, NAN));
  CHECK(none.valid == 0);
  for (double v : none.rgb.to_vector()) CHECK(v == 0);

  TempDir dir;
  io::Colorized w = io::write_disparity_color_png(dir / "c.png", d, valid, fixed);
  io::ImageReadOptions u8;
  u8.dtype = DType::U8;
  CHECK(io::read_image(dir / "c.png", u8).to_vector() == w.rgb.to_vector());
  expect_error([&] { io::colorize_disparity(Tensor::ones({2, 2, 2})); }, {"colorize_disparity", "(H,W)"});
  expect_error([&] { io::colorize_disparity(Tensor::ones({2, 2}), Tensor::ones({3, 2}, DType::Bool)); },
               {"mask", "does not match"});
}

TEST_CASE("ply: points follow Z = f b / (d + doffs), X = (u - cx) Z / fx, Y = (v - cy) Z / fy") {
  TempDir dir;
  // (H=2, W=3) disparities; skipped: 0, negative, inf, masked, and d + doffs <= 0.
  Tensor d = Tensor::from_vector({10, 0, -1, 20, INFINITY, 5}, {2, 3}, DType::F32);
  Tensor valid = Tensor::from_vector({1, 1, 1, 1, 1, 0}, {2, 3}, DType::Bool);
  Tensor color = Tensor::empty({3, 2, 3}, DType::U8);
  for (int64_t i = 0; i < color.numel(); ++i) color.data<uint8_t>()[i] = uint8_t(10 * i);
  Calibration c;
  c.fx = 500;
  c.fy = 510;
  c.cx = 1.5;
  c.cy = 0.5;
  c.baseline = 100;
  c.doffs = 2;
  c.units = "mm";
  int64_t n = io::write_ply(dir / "p.ply", d, c, color, valid);
  CHECK(n == 2);
  std::string units;
  std::vector<io::PlyVertex> pts = io::read_ply(dir / "p.ply", &units);
  CHECK(units == "mm");
  REQUIRE(pts.size() == 2);
  // Pixel (v=0, u=0), d=10: Z = 500*100/12.
  double z0 = 500.0 * 100 / 12;
  CHECK(pts[0].z == doctest::Approx(z0));
  CHECK(pts[0].x == doctest::Approx((0 - 1.5) * z0 / 500));
  CHECK(pts[0].y == doctest::Approx((0 - 0.5) * z0 / 510));
  CHECK((pts[0].r == 0 && pts[0].g == 60 && pts[0].b == 120));
  // Pixel (v=1, u=0), d=20.
  double z1 = 500.0 * 100 / 22;
  CHECK(pts[1].z == doctest::Approx(z1));
  CHECK(pts[1].y == doctest::Approx((1 - 0.5) * z1 / 510));
  CHECK((pts[1].r == 30 && pts[1].g == 90 && pts[1].b == 150));

  // Header text and record size are exact.
  std::string text = io::read_file_text(dir / "p.ply");
  std::string header =
      "ply\nformat binary_little_endian 1.0\ncomment units mm\ncomment generated by stereort\nelement vertex 2\n"
      "property float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\n"
      "property uchar blue\nend_header\n";
  CHECK(text.compare(0, header.size(), header) == 0);
  CHECK(text.size() == header.size() + 2 * 15);
  float zf;
  std::memcpy(&zf, text.data() + header.size() + 8, 4);
  CHECK(zf == float(z0));

  // z_far cut, grey colour and no colour.
  io::PlyOptions far;
  far.z_far = 3000;
  CHECK(io::disparity_to_points(d, c, Tensor(), valid, far).size() == 1);  // only the d=20 point (Z ~ 2273)
  std::vector<io::PlyVertex> white = io::disparity_to_points(d, c);
  CHECK(white.size() == 3);  // the masked d=5 point is back
  CHECK((white[0].r == 255 && white[0].g == 255 && white[0].b == 255));
  Tensor grey = Tensor::full({2, 3}, 0.5);
  CHECK(io::disparity_to_points(d, c, grey)[0].r == 128);

  Calibration unknown;
  expect_error([&] { io::write_ply(dir / "x.ply", d, unknown); }, {"write_ply", "focal length", "baseline"});
  expect_error([&] { io::write_ply(dir / "x.ply", d, c, Tensor::zeros({3, 4, 4}, DType::U8)); },
               {"colour image", "not the disparity's size"});
  CHECK_FALSE(io::file_exists(dir / "x.ply"));
  write_raw(dir / "bad.ply", "ply\nformat ascii 1.0\nend_header\n");
  expect_error([&] { io::read_ply(dir / "bad.ply"); }, {dir / "bad.ply", "not a binary little-endian PLY"});
  check_no_temp_files(dir.path());
}
