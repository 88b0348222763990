// tests/test_io_pfm.cpp — PFM: byte-exact writer, round trips, big-endian and comment-laden headers, PF channel 0,
// corrupt/truncated files; Middlebury calib.txt and SCARED stereo_calib.json parsing.
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "io/calib.h"
#include "io/pfm.h"
#include "io_test_helpers.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {
std::string f32le(float v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string f32be(float v) {
  std::string s = f32le(v);
  return std::string(s.rbegin(), s.rend());
}
}  // namespace

TEST_CASE("pfm: writer output is byte-exact (header, bottom-to-top rows, little-endian)") {
  TempDir dir;
  // (H=2, W=3): row 0 = 0 1 2, row 1 = 3 4 5.
  Tensor img = Tensor::arange(6, DType::F32).reshape({2, 3});
  io::write_pfm(dir / "a.pfm", img);
  std::string expected = "Pf\n3 2\n-1\n" + f32le(3) + f32le(4) + f32le(5) + f32le(0) + f32le(1) + f32le(2);
  CHECK(io::read_file_text(dir / "a.pfm") == expected);

  Tensor rgb = Tensor::arange(6, DType::F64).reshape({1, 2, 3});  // (H=1, W=2, 3)
  io::write_pfm(dir / "c.pfm", rgb);
  std::string expected_c = "PF\n2 1\n-1\n" + f32le(0) + f32le(1) + f32le(2) + f32le(3) + f32le(4) + f32le(5);
  CHECK(io::read_file_text(dir / "c.pfm") == expected_c);
  check_no_temp_files(dir.path());
}

TEST_CASE("pfm: round trip keeps every float bit, inf and NaN included") {
  TempDir dir;
  Tensor d = rand_t({37, 53}, DType::F32, -100, 300);
  d.data<float>()[5] = INFINITY;
  d.data<float>()[77] = -INFINITY;
  d.data<float>()[100] = NAN;
  io::write_pfm(dir / "d.pfm", d);
  Tensor back = io::read_pfm(dir / "d.pfm");
  REQUIRE(back.shape() == Shape{37, 53});
  CHECK(std::memcmp(back.data_ptr(), d.data_ptr(), d.nbytes()) == 0);

  Tensor c = rand_t({7, 5, 3}, DType::F32);
  io::write_pfm(dir / "c.pfm", c);
  Tensor cb = io::read_pfm(dir / "c.pfm");
  REQUIRE(cb.shape() == Shape{7, 5, 3});
  CHECK(cb.to_vector() == c.to_vector());
  io::PfmReadOptions first;
  first.first_channel = true;
  Tensor c0 = io::read_pfm(dir / "c.pfm", first);
  REQUIRE(c0.shape() == Shape{7, 5});
  CHECK(c0.to_vector() == c.select(2, 0).contiguous().to_vector());
  // first_channel on a Pf file changes nothing.
  CHECK(io::read_pfm(dir / "d.pfm", first).shape() == Shape{37, 53});
}

TEST_CASE("pfm: big-endian data, comments, CRLF and odd whitespace are read") {
  TempDir dir;
  // Big-endian (positive scale), bottom-to-top: file rows (1.5 2.5) then (-1 7) -> top row is (-1 7).
  std::string be = "Pf\n2 2\n1.0\n" + f32be(1.5f) + f32be(2.5f) + f32be(-1) + f32be(7);
  write_raw(dir / "be.pfm", be);
  CHECK(io::read_pfm(dir / "be.pfm").to_vector() == std::vector<double>{-1, 7, 1.5, 2.5});
  std::string odd = "Pf \t# a comment line\n# another\n  2   1 \n# scale next\n-0.00390625\r\n" + f32le(4) + f32le(8);
  write_raw(dir / "odd.pfm", odd);
  CHECK(io::read_pfm(dir / "odd.pfm").to_vector() == std::vector<double>{4, 8});
  // Trailing bytes after the data are ignored.
  write_raw(dir / "trail.pfm", "Pf\n1 1\n-1\n" + f32le(3) + "\n\n");
  CHECK(io::read_pfm(dir / "trail.pfm").item() == 3);
}

TEST_CASE("pfm: corrupt and truncated files name the file and the problem") {
  TempDir dir;
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> needles;
  };
  std::vector<Case> cases = {
      {"empty", "", {"not a PFM file"}},
      {"png", "\x89PNG\r\n", {"not a PFM file"}},
      {"magic", "Pfx\n1 1\n-1\n" + f32le(1), {"magic 'Pfx'"}},
      {"no dims", "Pf\n", {"ends before the width"}},
      {"bad width", "Pf\nabc 2\n-1\n", {"width 'abc'"}},
      {"zero height", "Pf\n2 0\n-1\n", {"height '0'"}},
      {"negative width", "Pf\n-2 2\n-1\n", {"width '-2'"}},
      {"huge", "Pf\n99999999 2\n-1\n", {"width '99999999'"}},
      {"scale 0", "Pf\n1 1\n0\n" + f32le(1), {"scale '0'", "non-zero"}},
      {"scale text", "Pf\n1 1\nabc\n" + f32le(1), {"scale 'abc'"}},
      {"no scale end", "Pf\n1 1\n-1", {"ends after the scale"}},
      {"truncated", "Pf\n3 2\n-1\n" + f32le(1) + f32le(2), {"needs 24 bytes", "only 8", "truncated"}},
      {"truncated PF", "PF\n2 2\n-1\n" + std::string(47, 'x'), {"needs 48 bytes", "only 47"}},
      {"long token", "Pf\n" + std::string(100, '1') + " 2\n-1\n", {"longer than 64"}},
  };
  for (const auto& c : cases) {
    std::string what = c.what;
    CAPTURE(what);
    std::string path = dir / (what + ".pfm");
    write_raw(path, c.bytes);
    std::vector<std::string> needles = c.needles;
    needles.push_back(path);
    expect_error([&] { io::read_pfm(path); }, needles);
  }
  expect_error([&] { io::write_pfm(dir / "x.pfm", Tensor::ones({2, 3, 2})); }, {"write_pfm", "(H,W) or (H,W,3)"});
  expect_error([&] { io::write_pfm(dir / "x.pfm", Tensor::ones({2, 3}, DType::I32)); }, {"floating"});
  CHECK_FALSE(io::file_exists(dir / "x.pfm"));
  check_no_temp_files(dir.path());
}

TEST_CASE("calib: Middlebury calib.txt parses, formats and round-trips") {
  // The 2014 Motorcycle calib (full resolution), as published.
  std::string text =
      "cam0=[3979.911 0 1244.772; 0 3979.911 1019.507; 0 0 1]\n"
      "cam1=[3979.911 0 1369.115; 0 3979.911 1019.507; 0 0 1]\n"
      "doffs=124.343\nbaseline=193.001\nwidth=2964\nheight=1988\nndisp=270\nisint=0\nvmin=23\nvmax=245\n"
      "dyavg=0\ndymax=0\n";
  io::MiddleburyCalib c = io::parse_middlebury_calib(text, "calib.txt");
  CHECK(c.cam0[0] == 3979.911);
  CHECK(c.cam0[2] == 1244.772);
  CHECK(c.cam0[5] == 1019.507);
  CHECK(c.cam1[2] == 1369.115);
  CHECK(c.doffs == 124.343);
  CHECK(c.baseline == 193.001);
  CHECK(c.width == 2964);
  CHECK(c.height == 1988);
  CHECK(c.ndisp == 270);
  CHECK(c.vmin == 23);
  CHECK(c.vmax == 245);
  Calibration k = c.calibration();
  CHECK(k.fx == 3979.911);
  CHECK(k.cx == 1244.772);
  CHECK(k.units == "mm");
  // Z = f b / (d + doffs)
  CHECK(k.depth(100) == doctest::Approx(3979.911 * 193.001 / 224.343));
  CHECK(std::isnan(k.depth(-200)));

  io::MiddleburyCalib back = io::parse_middlebury_calib(io::format_middlebury_calib(c), "formatted");
  CHECK(back.cam0 == c.cam0);
  CHECK(back.cam1 == c.cam1);
  CHECK(back.doffs == c.doffs);
  CHECK(back.ndisp == c.ndisp);
  CHECK(back.vmax == c.vmax);

  // ETH3D style: CRLF, no doffs line (derived from cam1 - cam0), comments and blank lines.
  io::MiddleburyCalib e = io::parse_middlebury_calib(
      "# eth3d\r\ncam0=[541.764 0 553.869; 0 541.764 232.396; 0 0 1]\r\n\r\n"
      "cam1=[541.764 0 553.869; 0 541.764 232.396; 0 0 1]\r\nbaseline=59.8295\r\nwidth=941\r\nheight=490\r\n",
      "eth3d");
  CHECK(e.doffs == 0);
  CHECK(e.width == 941);
  CHECK(std::isnan(e.vmin));

  expect_error([] { io::parse_middlebury_calib("baseline=1\n", "c.txt"); }, {"c.txt", "no cam0"});
  expect_error([] { io::parse_middlebury_calib("cam0=[1 0 0; 0 1 0]\nbaseline=1\n", "c.txt"); },
               {"c.txt", "cam0", "2 rows"});
  expect_error([] { io::parse_middlebury_calib("cam0=[1 0 0; 0 1 0; 0 0 x]\nbaseline=1\n", "c.txt"); },
               {"'x' is not a number"});
  expect_error([] { io::parse_middlebury_calib("cam0=[1 0 0; 0 1 0; 0 0 1]\nbaseline=1\nndisp=2.5\n", "c.txt"); },
               {"ndisp", "not an integer"});
  expect_error([] { io::parse_middlebury_calib("cam0=[1 0 0; 0 1 0; 0 0 1]\nbaseline\n", "c.txt"); },
               {"line 2", "key=value"});
  expect_error([] { io::read_middlebury_calib("/nonexistent/calib.txt"); }, {"/nonexistent/calib.txt", "cannot open"});
}

TEST_CASE("calib: SCARED stereo_calib.json (OpenCV FileStorage layout and plain arrays)") {
  std::string cv = R"({
    "K1": {"type_id": "opencv-matrix", "rows": 3, "cols": 3, "dt": "d", "data": [1,0,0,0,1,0,0,0,1]},
    "T": {"type_id": "opencv-matrix", "rows": 3, "cols": 1, "dt": "d", "data": [-4.1377, 0.02, 0.1]},
    "P1": {"type_id": "opencv-matrix", "rows": 3, "cols": 4, "dt": "d",
           "data": [1035.5, 0, 597.2, 0, 0, 1035.5, 511.8, 0, 0, 0, 1, 0]}
  })";
  Calibration c = io::parse_scared_calib(cv, "stereo_calib.json");
  CHECK(c.baseline == 4.1377);  // |T[0]| mm
  CHECK(c.fx == 1035.5);        // P1[0][0]
  CHECK(c.fy == 1035.5);
  CHECK(c.cx == 597.2);
  CHECK(c.cy == 511.8);
  CHECK(c.doffs == 0);
  Calibration p = io::parse_scared_calib(R"({"T": [[4.2], [0], [0]], "P1": [[900, 0, 640, 0], [0, 901, 512, 0], [0, 0, 1, 0]]})",
                                         "plain.json");
  CHECK(p.baseline == 4.2);
  CHECK(p.fy == 901);
  expect_error([] { io::parse_scared_calib(R"({"T": [1]})", "s.json"); }, {"s.json", "T and P1"});
  expect_error([] { io::parse_scared_calib(R"({"T": [1], "P1": [[0]]})", "s.json"); }, {"s.json", "P1 has 1 rows"});
  expect_error([] { io::parse_scared_calib("{", "s.json"); }, {"s.json", "unexpected end"});
}
