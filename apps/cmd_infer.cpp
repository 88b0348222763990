// apps/cmd_infer.cpp — `stereort infer`: disparity for one pair, two folders of pairs, or a list file.
//   Every input is checked before anything is written (files exist, decodable headers, equal sizes), the model and
//   weights are loaded, then each pair writes <out>/<name>_disp.pfm (float32), <name>_disp.png (16-bit, x scale),
//   <name>_disp_color.png (colour map; not data) and <name>.ply when --focal/--baseline are given. Time per pair is
//   synchronised wall time (upload, forward, download).
#include <unistd.h>

#include <algorithm>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/commands.h"
#include "apps/predictor_options.h"
#include "core/check.h"
#include "core/context.h"
#include "io/colormap.h"
#include "io/image.h"
#include "io/pfm.h"
#include "io/ply.h"
#include "io/png16.h"
#include "models/infer.h"

namespace fs = std::filesystem;

namespace stereort {
namespace app {

namespace {

struct Pair {
  std::string left, right, name;
};

bool is_image(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), ::tolower);
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".ppm" || e == ".tga";
}

std::vector<Pair> collect_pairs(const std::string& left, const std::string& right, const std::string& list) {
  std::vector<Pair> pairs;
  if (!list.empty()) {
    std::ifstream f(list);
    STEREORT_CHECK(f.good(), "cannot open the list file '{}'", list);
    std::string a, b;
    int line = 0;
    while (f >> a) {
      ++line;
      STEREORT_CHECK(bool(f >> b), "list file '{}': entry {} has a left image '{}' but no right image", list, line, a);
      pairs.push_back({a, b, fs::path(a).stem().string()});
    }
    STEREORT_CHECK(!pairs.empty(), "list file '{}' holds no pairs (expected lines 'left.png right.png')", list);
  } else {
    STEREORT_CHECK(!left.empty() && !right.empty(), "give --left and --right (files or folders), or --list FILE");
    STEREORT_CHECK(fs::exists(left), "left input '{}' does not exist", left);
    STEREORT_CHECK(fs::exists(right), "right input '{}' does not exist", right);
    if (fs::is_directory(left)) {
      STEREORT_CHECK(fs::is_directory(right), "--left '{}' is a folder but --right '{}' is not", left, right);
      std::vector<fs::path> ls, rs;
      for (auto& e : fs::directory_iterator(left)) if (is_image(e.path())) ls.push_back(e.path());
      for (auto& e : fs::directory_iterator(right)) if (is_image(e.path())) rs.push_back(e.path());
      std::sort(ls.begin(), ls.end());
      std::sort(rs.begin(), rs.end());
      STEREORT_CHECK(!ls.empty() && ls.size() == rs.size(), "folders '{}' ({} images) and '{}' ({} images) must hold "
                     "the same non-zero number of images, paired in sorted order", left, ls.size(), right, rs.size());
      for (size_t i = 0; i < ls.size(); ++i) pairs.push_back({ls[i].string(), rs[i].string(), ls[i].stem().string()});
    } else {
      pairs.push_back({left, right, fs::path(left).stem().string()});
    }
  }
  for (const Pair& p : pairs) {
    for (const std::string& f : {p.left, p.right}) STEREORT_CHECK(fs::is_regular_file(f), "input image '{}' does not exist", f);
    io::ImageInfo a = io::image_info(p.left), b = io::image_info(p.right);
    STEREORT_CHECK(a.width == b.width && a.height == b.height,
                   "the views differ in size: '{}' is {}x{} but '{}' is {}x{} (WxH); a stereo pair must be two "
                   "rectified images of one size", p.left, a.width, a.height, p.right, b.width, b.height);
  }
  return pairs;
}

}  // namespace

int cmd_infer(int argc, char** argv) {
  cxxopts::Options o(argv[0], "Stereo disparity for image pairs (StereoMamba)");
  o.add_options()
    ("l,left", "left image, or a folder of left images", cxxopts::value<std::string>()->default_value(""))
    ("r,right", "right image, or a folder of right images", cxxopts::value<std::string>()->default_value(""))
    ("list", "text file of 'left right' image paths, one pair per line", cxxopts::value<std::string>()->default_value(""))
    ("m,model", "preset (stereomamba-v1, -v2, -tiny) or a JSON config", cxxopts::value<std::string>()->default_value("stereomamba-v1"))
    ("w,weights", "weights (.safetensors); without them the network is randomly initialised", cxxopts::value<std::string>()->default_value(""))
    ("o,out", "output folder", cxxopts::value<std::string>()->default_value("out"))
    ("p,precision", "fp32 | tf32 | fp16 | bf16", cxxopts::value<std::string>()->default_value("fp32"))
    ("d,device", "cuda | cpu (default: cuda when a GPU is present)", cxxopts::value<std::string>()->default_value(""))
    ("max-disp", "disparity search range in pixels, a multiple of 16 (0 = the model's: 192 for the presets, max_disp of a JSON config)", cxxopts::value<int64_t>()->default_value("0"))
    ("png-scale", "16-bit PNG scale (256 KITTI, 128 SCARED)", cxxopts::value<double>()->default_value("256"))
    ("colormap", "turbo | grey", cxxopts::value<std::string>()->default_value("turbo"))
    ("vmin", "colour range minimum (default: 1st percentile)", cxxopts::value<double>())
    ("vmax", "colour range maximum (default: 99th percentile)", cxxopts::value<double>())
    ("focal", "focal length in pixels (enables the PLY point cloud)", cxxopts::value<double>())
    ("baseline", "baseline, in the units the point cloud should have", cxxopts::value<double>())
    ("cx", "principal point x (default: image centre)", cxxopts::value<double>())
    ("cy", "principal point y (default: image centre)", cxxopts::value<double>())
    ("doffs", "x difference of the principal points (Middlebury doffs)", cxxopts::value<double>()->default_value("0"))
    ("units", "units of the baseline (written into the PLY)", cxxopts::value<std::string>()->default_value("mm"))
    ("h,help", "show this help");
  auto a = o.parse(argc, argv);
  if (a.count("help")) {
    std::cout << o.help() << "\n";
    return 0;
  }
  std::vector<Pair> pairs = collect_pairs(a["left"].as<std::string>(), a["right"].as<std::string>(), a["list"].as<std::string>());
  STEREORT_CHECK(a.count("focal") == a.count("baseline"), "give both --focal and --baseline for a point cloud");
  PredictorOptions po = predictor_options(a);
  StereoPredictor pred(po);
  std::cerr << "stereort infer: " << pred.config().str() << " on " << po.device.str() << ", " << po.precision << "; "
            << pred.weights_note() << "\n";
  io::ColorizeOptions co;
  co.map = io::colormap_from_name(a["colormap"].as<std::string>());
  if (a.count("vmin")) co.vmin = a["vmin"].as<double>();
  if (a.count("vmax")) co.vmax = a["vmax"].as<double>();
  std::string out = a["out"].as<std::string>();
  fs::create_directories(out);
  bool tty = isatty(fileno(stderr));
  double total = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    const Pair& p = pairs[i];
    Tensor l = io::read_image(p.left), r = io::read_image(p.right);
    Tensor d = pred.predict(l, r);
    total += pred.last_ms();
    std::string base = (fs::path(out) / p.name).string();
    io::write_pfm(base + "_disp.pfm", d);
    io::write_disparity_png(base + "_disp.png", d, a["png-scale"].as<double>());
    io::Colorized c = io::write_disparity_color_png(base + "_disp_color.png", d, Tensor(), co);
    std::string extra;
    if (a.count("focal")) {
      Calibration cal;
      cal.fx = cal.fy = a["focal"].as<double>();
      cal.baseline = a["baseline"].as<double>();
      cal.cx = a.count("cx") ? a["cx"].as<double>() : 0.5 * double(l.size(2) - 1);
      cal.cy = a.count("cy") ? a["cy"].as<double>() : 0.5 * double(l.size(1) - 1);
      cal.doffs = a["doffs"].as<double>();
      cal.units = a["units"].as<std::string>();
      int64_t n = io::write_ply(base + ".ply", d, cal, l);
      extra = fmt::format(", {} points", n);
    }
    std::string line = fmt::format("[{}/{}] {} {}x{}: {:.1f} ms, disparity range [{:.2f}, {:.2f}] px{}", i + 1,
                                   pairs.size(), p.name, l.size(2), l.size(1), pred.last_ms(), c.vmin, c.vmax, extra);
    std::cerr << (tty && pairs.size() > 1 ? "\r" : "") << line << (tty && pairs.size() > 1 && i + 1 < pairs.size() ? "" : "\n");
  }
  if (pairs.size() > 1)
    std::cerr << fmt::format("{} pairs, {:.1f} ms per pair on average; outputs in {}\n", pairs.size(), total / double(pairs.size()), out);
  else
    std::cerr << "outputs in " << out << " (_disp.pfm float32, _disp.png 16-bit x" << a["png-scale"].as<double>()
              << ", _disp_color.png picture" << (a.count("focal") ? ", .ply" : "") << ")\n";
  return 0;
}

}  // namespace app
}  // namespace stereort
