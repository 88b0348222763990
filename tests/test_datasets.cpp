// tests/test_datasets.cpp — every dataset reader on a tiny fake tree of its real layout (written with our own writers
// in a temp folder): pair discovery and order, images, ground truth values and validity, occlusion masks, calibration,
// options and error messages. Plus the Motorcycle pair from scikit-image (fetched by scripts/get_sample_pair.sh).
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>

#include "core/error.h"
#include "io/calib.h"
#include "io/datasets/motorcycle.h"
#include "io/datasets/sample.h"
#include "io/fileio.h"
#include "io/image.h"
#include "io/pfm.h"
#include "io/png16.h"
#include "io_test_helpers.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

constexpr int kH = 6, kW = 9;

// A u8 RGB image whose pixels encode `tag` (to check which file a sample came from).
Tensor tagged_image(int tag, int channels = 3) {
  Tensor t = Tensor::empty({channels, kH, kW}, DType::U8);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<uint8_t>()[i] = uint8_t((tag * 31 + i) % 251);
  return t;
}
void write_pair(const std::string& left, const std::string& right, int tag, int channels = 3) {
  io::make_dirs(left.substr(0, left.find_last_of('/')));
  io::make_dirs(right.substr(0, right.find_last_of('/')));
  io::write_png(left, tagged_image(tag, channels));
  io::write_png(right, tagged_image(tag + 100, channels));
}
// Disparity ramp d = tag + 0.25 x, with pixel (0,0) unknown (`bad`).
Tensor ramp(int tag, float bad) {
  Tensor d = Tensor::empty({kH, kW}, DType::F32);
  for (int y = 0; y < kH; ++y)
    for (int x = 0; x < kW; ++x) d.data<float>()[y * kW + x] = float(tag) + 0.25f * x;
  d.data<float>()[0] = bad;
  return d;
}
void check_image(const Tensor& got, int tag, int channels = 3) {
  REQUIRE(got.shape() == Shape{3, kH, kW});
  Tensor want = tagged_image(tag, channels).to(DType::F32);
  if (channels == 1) want = want.expand({3, kH, kW}).contiguous();
  std::vector<double> g = got.to_vector(), w = want.to_vector();
  double worst = 0;
  for (size_t i = 0; i < g.size(); ++i) worst = std::max(worst, std::fabs(g[i] * 255 - w[i]));
  CHECK(worst < 1e-3);
}
void check_ramp(const Sample& s, int tag) {
  REQUIRE(s.disparity.shape() == Shape{kH, kW});
  REQUIRE(s.valid.shape() == Shape{kH, kW});
  std::vector<double> d = s.disparity.to_vector(), v = s.valid.to_vector();
  CHECK(d[0] == 0);  // unknown -> 0
  CHECK(v[0] == 0);
  int64_t wrong = 0;
  for (size_t i = 1; i < d.size(); ++i) wrong += v[i] != 1 || std::fabs(d[i] - (tag + 0.25 * double(i % kW))) > 1e-3;
  CHECK(wrong == 0);
}
io::MiddleburyCalib calib(double f, double baseline) {
  io::MiddleburyCalib c;
  c.cam0 = {f, 0, 4, 0, f, 3, 0, 0, 1};
  c.cam1 = {f, 0, 5.5, 0, f, 3, 0, 0, 1};
  c.doffs = 1.5;
  c.baseline = baseline;
  c.width = kW;
  c.height = kH;
  c.ndisp = 16;
  return c;
}

}  // namespace

TEST_CASE("datasets: spec parsing and errors") {
  io::DatasetSpec s = io::parse_dataset_spec("kitti2015:/data/kitti,split=testing,gt=noc");
  CHECK(s.kind == "kitti2015");
  CHECK(s.path == "/data/kitti");
  CHECK(s.get("split", "") == "testing");
  CHECK(s.get("gt", "") == "noc");
  CHECK(s.get("x", "dflt") == "dflt");
  io::DatasetSpec syn = io::parse_dataset_spec("synthetic:count=3,seed=7,size=32x48");
  CHECK(syn.path.empty());
  CHECK(syn.options.size() == 3);
  expect_error([] { open_dataset("nonsense"); }, {"'nonsense'", "kind:path"});
  expect_error([] { open_dataset("foo:/x"); }, {"unknown kind 'foo'"});
  expect_error([] { open_dataset("kitti2015:/x,split"); }, {"'split' is not key=value"});
  expect_error([] { open_dataset("kitti2015:/x,a=1,a=2"); }, {"'a' given twice"});
  expect_error([] { open_dataset("synthetic:count=2,colour=red"); }, {"unknown option 'colour'", "count"});
  expect_error([] { open_dataset("synthetic:size=12"); }, {"size '12'", "HxW"});
  expect_error([] { open_dataset("kitti2015:/nonexistent/kitti"); }, {"/nonexistent/kitti", "image_2"});
  expect_error([] { open_dataset("sceneflow:/nonexistent/sf"); }, {"/nonexistent/sf", "not a folder"});
}

TEST_CASE("datasets: SceneFlow FlyingThings3D / Monkaa / Driving layouts") {
  TempDir root;
  std::string ft = root / "FlyingThings3D", mk = root / "Monkaa", dr = root / "Driving";
  // FlyingThings3D TRAIN and TEST, final and clean pass.
  for (const char* pass : {"frames_cleanpass", "frames_finalpass"}) {
    write_pair(ft + "/" + pass + "/TRAIN/A/0000/left/0006.png", ft + "/" + pass + "/TRAIN/A/0000/right/0006.png", 1);
    write_pair(ft + "/" + pass + "/TEST/B/0003/left/0007.png", ft + "/" + pass + "/TEST/B/0003/right/0007.png", 2);
  }
  io::make_dirs(ft + "/disparity/TRAIN/A/0000/left");
  io::make_dirs(ft + "/disparity/TEST/B/0003/left");
  io::write_pfm(ft + "/disparity/TRAIN/A/0000/left/0006.pfm", ramp(1, 0));
  // A PF (3-channel) disparity file: channel 0 is kept.
  Tensor pf = Tensor::zeros({kH, kW, 3});
  pf.select(2, 0).copy_(ramp(2, -1));
  io::write_pfm(ft + "/disparity/TEST/B/0003/left/0007.pfm", pf);
  write_pair(mk + "/frames_cleanpass/a_rain_of_stones_x2/left/0000.png",
             mk + "/frames_cleanpass/a_rain_of_stones_x2/right/0000.png", 3);
  io::make_dirs(mk + "/disparity/a_rain_of_stones_x2/left");
  io::write_pfm(mk + "/disparity/a_rain_of_stones_x2/left/0000.pfm", ramp(3, NAN));
  write_pair(dr + "/frames_cleanpass/15mm_focallength/scene_forwards/fast/left/0001.png",
             dr + "/frames_cleanpass/15mm_focallength/scene_forwards/fast/right/0001.png", 4);
  io::make_dirs(dr + "/disparity/15mm_focallength/scene_forwards/fast/left");
  io::write_pfm(dr + "/disparity/15mm_focallength/scene_forwards/fast/left/0001.pfm", ramp(4, INFINITY));

  auto all = open_dataset("sceneflow:" + root.path());
  REQUIRE(all->size() == 4);  // driving, flyingthings3d (TEST, TRAIN), monkaa — sorted by folder then path
  CHECK(all->describe().find("4 pairs") != std::string::npos);
  std::vector<std::string> names;
  for (size_t i = 0; i < all->size(); ++i) names.push_back(all->get(i).name);
  CHECK(names == std::vector<std::string>{"driving/15mm_focallength/scene_forwards/fast/left/0001",
                                          "flyingthings3d/TEST/B/0003/left/0007",
                                          "flyingthings3d/TRAIN/A/0000/left/0006",
                                          "monkaa/a_rain_of_stones_x2/left/0000"});
  Sample d = all->get(0);
  check_image(d.left, 4);
  check_image(d.right, 104);
  check_ramp(d, 4);
  CHECK(d.calib.fx == 450);  // Driving 15 mm
  Sample t = all->get(1);
  check_ramp(t, 2);  // from the PF file's channel 0
  CHECK(t.calib.fx == 1050);
  CHECK_FALSE(t.noc.defined());
  check_ramp(all->get(2), 1);
  check_ramp(all->get(3), 3);

  auto test = open_dataset("sceneflow:" + root.path() + ",split=TEST,pass=final");
  REQUIRE(test->size() == 1);
  CHECK(test->get(0).name == "flyingthings3d/TEST/B/0003/left/0007");
  CHECK(test->describe().find("finalpass") != std::string::npos);
  auto mon = open_dataset("sceneflow:" + mk);  // a subset folder as the root
  REQUIRE(mon->size() == 1);
  check_image(mon->get(0).left, 3);
  auto drv = open_dataset("sceneflow:" + root.path() + ",subset=driving");
  CHECK(drv->size() == 1);
  expect_error([&] { open_dataset("sceneflow:" + root.path() + ",pass=dirty"); }, {"pass must be clean or final"});
  expect_error([&] { open_dataset("sceneflow:" + root.path() + "/FlyingThings3D/disparity"); },
               {"neither frames_cleanpass"});
}

TEST_CASE("datasets: KITTI 2015 and 2012 (occ/noc ground truth, testing split)") {
  TempDir root;
  std::string tr = root / "training", te = root / "testing";
  for (int k = 0; k < 2; ++k) {
    std::string id = "00000" + std::to_string(k) + "_10.png";
    write_pair(tr + "/image_2/" + id, tr + "/image_3/" + id, 10 + k);
    io::make_dirs(tr + "/disp_occ_0");
    io::make_dirs(tr + "/disp_noc_0");
    io::write_disparity_png(tr + "/disp_occ_0/" + id, ramp(10 + k, 0), io::kKittiDispScale);
    Tensor noc = ramp(10 + k, 0);
    noc.data<float>()[1] = 0;  // one more pixel occluded
    io::write_disparity_png(tr + "/disp_noc_0/" + id, noc, io::kKittiDispScale);
    write_pair(tr + "/image_2/00000" + std::to_string(k) + "_11.png", tr + "/image_3/00000" + std::to_string(k) + "_11.png", 0);
  }
  write_pair(te + "/image_2/000000_10.png", te + "/image_3/000000_10.png", 20);

  auto k15 = open_dataset("kitti2015:" + root.path());
  REQUIRE(k15->size() == 2);  // frame 11 skipped
  Sample s = k15->get(1);
  CHECK(s.name == "000001_10");
  check_image(s.left, 11);
  check_image(s.right, 111);
  check_ramp(s, 11);
  REQUIRE(s.noc.defined());
  CHECK(s.noc.to_vector()[0] == 0);
  CHECK(s.noc.to_vector()[1] == 0);
  CHECK(s.noc.to_vector()[2] == 1);
  CHECK_FALSE(s.calib.known());
  Sample n = open_dataset("kitti2015:" + root.path() + ",gt=noc")->get(0);
  CHECK(n.valid.to_vector()[1] == 0);
  CHECK_FALSE(n.noc.defined());
  auto test = open_dataset("kitti2015:" + root.path() + ",split=testing");
  REQUIRE(test->size() == 1);
  Sample ts = test->get(0);
  check_image(ts.left, 20);
  CHECK_FALSE(ts.disparity.defined());
  CHECK_FALSE(ts.valid.defined());
  // The split folder itself as the root.
  CHECK(open_dataset("kitti2015:" + tr)->size() == 2);
  // Missing ground truth in training is an error naming the file.
  std::remove((tr + "/disp_occ_0/000000_10.png").c_str());
  expect_error([&] { open_dataset("kitti2015:" + root.path()); }, {"000000_10.png", "no ground truth"});

  TempDir r12;
  std::string t12 = r12 / "training";
  write_pair(t12 + "/colored_0/000007_10.png", t12 + "/colored_1/000007_10.png", 30);
  io::make_dirs(t12 + "/disp_occ");
  io::write_disparity_png(t12 + "/disp_occ/000007_10.png", ramp(30, 0), io::kKittiDispScale);
  auto k12 = open_dataset("kitti2012:" + r12.path());
  REQUIRE(k12->size() == 1);
  check_ramp(k12->get(0), 30);
  CHECK_FALSE(k12->get(0).noc.defined());
  expect_error([&] { open_dataset("kitti2015:" + r12.path()); }, {"no image_2/ folder"});
}

TEST_CASE("datasets: Middlebury (MiddEval3 and 2014 scene layouts) and ETH3D") {
  TempDir root;
  for (int k = 0; k < 2; ++k) {
    std::string s = root / ("trainingQ/Scene" + std::to_string(k));
    write_pair(s + "/im0.png", s + "/im1.png", 40 + k);
    io::write_pfm(s + "/disp0GT.pfm", ramp(40 + k, INFINITY));
    io::write_middlebury_calib(s + "/calib.txt", calib(700 + k, 170));
    Tensor mask = Tensor::full({kH, kW}, 255, DType::U8);
    mask.data<uint8_t>()[0] = 0;
    mask.data<uint8_t>()[3] = 128;
    io::write_png(s + "/mask0nocc.png", mask);
  }
  auto mb = open_dataset("middlebury:" + root.path());
  REQUIRE(mb->size() == 2);
  Sample s = mb->get(1);
  CHECK(s.name == "Scene1");
  check_image(s.left, 41);
  check_ramp(s, 41);
  CHECK(s.calib.fx == 701);
  CHECK(s.calib.baseline == 170);
  CHECK(s.calib.doffs == 1.5);
  REQUIRE(s.noc.defined());
  std::vector<double> noc = s.noc.to_vector();
  CHECK(noc[0] == 0);
  CHECK(noc[3] == 0);  // 128 = occluded
  CHECK(noc[4] == 1);
  expect_error([&] { open_dataset("middlebury:" + root.path() + ",res=H"); }, {"no scene folders"});

  // 2014 full scene layout: <scene>-perfect/{im0, im1, disp0.pfm, calib.txt}; one scene folder as the root.
  std::string p = root / "Motorcycle-perfect";
  write_pair(p + "/im0.png", p + "/im1.png", 50);
  io::write_pfm(p + "/disp0.pfm", ramp(50, INFINITY));
  io::write_middlebury_calib(p + "/calib.txt", calib(3979.911, 193.001));
  auto one = open_dataset("middlebury:" + p);
  REQUIRE(one->size() == 1);
  check_ramp(one->get(0), 50);
  CHECK_FALSE(one->get(0).noc.defined());

  // ETH3D: grey images, GT in a sibling folder.
  TempDir eth;
  std::string sc = eth / "two_view_training/delivery_area_1l";
  write_pair(sc + "/im0.png", sc + "/im1.png", 60, 1);
  io::write_middlebury_calib(sc + "/calib.txt", calib(541.764, 59.8295));
  std::string gt = eth / "two_view_training_gt/delivery_area_1l";
  io::make_dirs(gt);
  io::write_pfm(gt + "/disp0GT.pfm", ramp(60, INFINITY));
  io::write_png(gt + "/mask0nocc.png", Tensor::full({kH, kW}, 255, DType::U8));
  std::string tsc = eth / "two_view_test/lakeside_1l";
  write_pair(tsc + "/im0.png", tsc + "/im1.png", 61, 1);
  auto e = open_dataset("eth3d:" + eth.path());
  REQUIRE(e->size() == 1);
  Sample es = e->get(0);
  check_image(es.left, 60, 1);  // grey replicated to RGB
  check_ramp(es, 60);
  CHECK(es.noc.defined());
  CHECK(es.calib.fx == doctest::Approx(541.764));
  auto et = open_dataset("eth3d:" + eth.path() + ",split=test");
  REQUIRE(et->size() == 1);
  CHECK_FALSE(et->get(0).disparity.defined());
  CHECK(open_dataset("eth3d:" + eth.path() + "/two_view_training")->get(0).disparity.defined());
  std::remove((gt + "/disp0GT.pfm").c_str());
  expect_error([&] { open_dataset("eth3d:" + eth.path()); }, {"delivery_area_1l", "no ground truth"});
}

TEST_CASE("datasets: SCARED keyframe and sequence layouts with stereo_calib.json") {
  TempDir root;
  std::string calib_json = R"({"T": {"type_id": "opencv-matrix", "rows": 3, "cols": 1, "dt": "d",
      "data": [-4.2, 0.0, 0.0]}, "P1": {"type_id": "opencv-matrix", "rows": 3, "cols": 4, "dt": "d",
      "data": [1035.5, 0, 4, 0, 0, 1035.5, 3, 0, 0, 0, 1, 0]}})";
  for (int ds : {1, 8}) {
    std::string kf = root / ("dataset_" + std::to_string(ds) + "/keyframe_1");
    write_pair(kf + "/left_rectified.png", kf + "/right_rectified.png", 70 + ds);
    io::write_disparity_png(kf + "/disparity.png", ramp(70 + ds, 0), io::kScaredDispScale);
    io::write_file_atomic(kf + "/stereo_calib.json", calib_json);
  }
  std::string seq = root / "dataset_9/keyframe_0/data";
  for (int f = 0; f < 3; ++f) {
    std::string n = "00000" + std::to_string(f) + ".png";
    write_pair(seq + "/left_rectified/" + n, seq + "/right_rectified/" + n, 80 + f);
    io::make_dirs(seq + "/disparity");
    io::write_disparity_png(seq + "/disparity/" + n, ramp(80 + f, 0), io::kScaredDispScale);
  }
  io::write_file_atomic(seq + "/stereo_calib.json", calib_json);
  auto all = open_dataset("scared:" + root.path());
  REQUIRE(all->size() == 5);
  Sample s = all->get(0);
  CHECK(s.name == "dataset_1/keyframe_1");
  check_image(s.left, 71);
  check_ramp(s, 71);
  CHECK(s.calib.baseline == 4.2);
  CHECK(s.calib.fx == 1035.5);
  auto test = open_dataset("scared:" + root.path() + ",datasets=8+9");
  REQUIRE(test->size() == 4);
  Sample q = test->get(3);
  CHECK(q.name == "dataset_9/keyframe_0/000002");
  check_ramp(q, 82);
  CHECK(q.calib.fx == 1035.5);
  expect_error([&] { open_dataset("scared:" + root.path() + ",datasets=5"); }, {"no keyframe"});
}

TEST_CASE("datasets: read errors name the file (shape mismatch, corrupt ground truth)") {
  TempDir root;
  std::string s = root / "trainingQ/Bad";
  write_pair(s + "/im0.png", s + "/im1.png", 1);
  io::write_pfm(s + "/disp0GT.pfm", Tensor::ones({kH + 1, kW}));
  auto mb = open_dataset("middlebury:" + root.path());
  expect_error([&] { mb->get(0); }, {"disp0GT.pfm", "(7,9)", "(6,9)"});
  write_raw(s + "/disp0GT.pfm", "Pf\n9 6\n-1\nshort");
  expect_error([&] { mb->get(0); }, {"disp0GT.pfm", "truncated"});
  expect_error([&] { mb->get(5); }, {"index 5 out of range"});
}

// The real pair: Middlebury 2014 Motorcycle from scikit-image. Runs scripts/get_sample_pair.sh when data/ is missing
// (CI machines have apt and Debian mirrors); reports "skipped" only when that download fails.
TEST_CASE("datasets: the Motorcycle pair loads with its ground truth") {
  std::string dir = io::motorcycle_default_dir(STEREORT_SOURCE_DIR);
  if (!io::file_exists(io::path_join(dir, "disp0.npz"))) {
    std::string cmd = std::string("bash '") + STEREORT_SOURCE_DIR + "/scripts/get_sample_pair.sh' '" + dir + "'";
    std::printf("fetching the sample pair: %s\n", cmd.c_str());
    int rc = std::system(cmd.c_str());
    if (rc != 0 || !io::file_exists(io::path_join(dir, "disp0.npz"))) {
      std::printf("skipped: the Motorcycle pair could not be downloaded (get_sample_pair.sh exit status %d)\n",
                  WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
      return;
    }
  }
  Tensor raw = io::read_motorcycle_disparity(dir);
  REQUIRE(raw.shape() == Shape{500, 741});
  CHECK(raw.dtype() == DType::F32);
  int64_t inf = 0, nan = 0, finite = 0;
  double lo = 1e9, hi = -1e9;
  for (double v : raw.to_vector()) {
    if (std::isinf(v)) ++inf;
    else if (std::isnan(v)) ++nan;
    else {
      ++finite;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  CHECK(inf > 1000);     // unknown pixels are inf
  CHECK(finite > 300000);  // most of the 370,500 pixels have ground truth
  CHECK(lo > 0);
  CHECK(hi < 100);  // 4x down-sampled from ndisp 280
  INFO("inf " << inf << ", NaN " << nan << ", finite " << finite << ", range [" << lo << ", " << hi << "]");

  Sample s = io::read_motorcycle(dir);
  REQUIRE(s.left.shape() == Shape{3, 500, 741});
  REQUIRE(s.right.shape() == Shape{3, 500, 741});
  REQUIRE(s.disparity.shape() == Shape{500, 741});
  int64_t valid = 0, wrong = 0;
  std::vector<double> v = s.valid.to_vector(), d = s.disparity.to_vector(), r = raw.to_vector();
  for (size_t i = 0; i < v.size(); ++i) {
    valid += v[i] != 0;
    wrong += v[i] == 0 ? d[i] != 0 : d[i] != r[i];
  }
  CHECK(valid == finite);
  CHECK(wrong == 0);
  CHECK(s.calib.fx == doctest::Approx(994.978));
  CHECK(s.calib.baseline == doctest::Approx(193.001));
  CHECK(s.calib.doffs == doctest::Approx(31.086));
  // The ground truth is consistent with the images: left(x) ~ right(x - d) on valid pixels (mean abs error of the
  // grey value well below that of a wrong shift).
  auto photo_err = [&](double shift_scale) {
    double err = 0;
    int64_t n = 0;
    const float* L = s.left.data<float>();
    const float* R = s.right.data<float>();
    for (int y = 0; y < 500; y += 3)
      for (int x = 0; x < 741; x += 3) {
        size_t i = size_t(y) * 741 + size_t(x);
        if (v[i] == 0) continue;
        int xr = int(std::lround(x - d[i] * shift_scale));
        if (xr < 0) continue;
        err += std::fabs(L[i] - R[size_t(y) * 741 + size_t(xr)]);
        ++n;
      }
    return err / double(n);
  };
  double good = photo_err(1.0), bad = photo_err(0.5);
  INFO("photometric error with the GT shift " << good << ", with half the shift " << bad);
  CHECK(good < 0.6 * bad);
  auto ds = open_dataset("motorcycle:" + dir);
  CHECK(ds->size() == 1);
  CHECK(ds->get(0).disparity.shape() == Shape{500, 741});
}
