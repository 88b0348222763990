// apps/cmd_eval.cpp — `stereort eval`: disparity metrics of a model over a dataset with ground truth.
//   Each image: full resolution, normalised and zero-padded top/right like `stereort infer` (StereoPredictor), batch
//   1. Metrics (ops/metrics.h, formats-and-metrics.md §13) over valid = (sample mask) AND 0 < gt < max_disp:
//   EPE, bad-1/2/3 (fractions of valid pixels with error > N px), KITTI D1 (error > 3 px and > 5 % of gt); depth MAE
//   (StereoMamba SCARED definition, over gt > 0, in the calibration's units) when the sample has a calibration;
//   time = synchronised wall time of the prediction (upload, forward, download). Images without a valid pixel are
//   listed but left out of the means. Writes <out>/per_image.csv and <out>/summary.txt (also printed).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "apps/commands.h"
#include "apps/predictor_options.h"
#include "core/check.h"
#include "core/context.h"
#include "io/colormap.h"
#include "io/datasets/sample.h"
#include "models/infer.h"
#include "ops/metrics.h"

namespace fs = std::filesystem;

namespace stereort {
namespace app {

int cmd_eval(int argc, char** argv) {
  cxxopts::Options o(argv[0], "Evaluate StereoMamba on a dataset with ground truth (per-image CSV + summary)");
  o.add_options()
    ("m,model", "preset (stereomamba-v1, -v2, -tiny) or a JSON config", cxxopts::value<std::string>()->default_value("stereomamba-v1"))
    ("w,weights", "weights (.safetensors)", cxxopts::value<std::string>()->default_value(""))
    ("data", "dataset spec (e.g. sceneflow:/data/sceneflow,split=TEST, kitti2015:/data/kitti)", cxxopts::value<std::string>()->default_value(""))
    ("o,out", "output folder", cxxopts::value<std::string>()->default_value("eval"))
    ("max-disp", "model disparity range and metric mask 0 < gt < D (0 = the model's, 192)", cxxopts::value<int64_t>()->default_value("0"))
    ("p,precision", "fp32 | tf32 | fp16 | bf16", cxxopts::value<std::string>()->default_value("fp32"))
    ("d,device", "cuda | cpu (default: cuda when a GPU is present)", cxxopts::value<std::string>()->default_value(""))
    ("limit", "evaluate only the first N images (0 = all)", cxxopts::value<int64_t>()->default_value("0"))
    ("pngs", "colour disparity PNGs (prediction and ground truth) for the first N images", cxxopts::value<int64_t>()->default_value("0"))
    ("h,help", "show this help");
  auto a = o.parse(argc, argv);
  if (a.count("help")) {
    std::cout << o.help() << "\n";
    return 0;
  }
  std::string spec = a["data"].as<std::string>();
  STEREORT_CHECK(!spec.empty(), "give the dataset with --data SPEC (stereort eval --help)");
  PredictorOptions po = predictor_options(a);
  std::unique_ptr<StereoDataset> data = open_dataset(spec);
  StereoPredictor pred(po);
  double max_disp = double(pred.config().max_disp);
  std::cerr << "stereort eval: " << pred.config().str() << " on " << po.device.str() << ", " << po.precision << "; "
            << pred.weights_note() << "\n  data: " << data->describe() << "\n";
  std::string out = a["out"].as<std::string>();
  fs::create_directories(out);
  std::ofstream csv((fs::path(out) / "per_image.csv").string());
  STEREORT_CHECK(csv.good(), "eval: cannot write into '{}'", out);
  csv << "name,epe,bad1,bad2,bad3,d1,depth_mae,valid_pixels,time_ms\n";
  size_t n = data->size();
  int64_t limit = a["limit"].as<int64_t>(), pngs = a["pngs"].as<int64_t>();
  if (limit > 0) n = std::min(n, size_t(limit));
  bool tty = isatty(fileno(stderr));
  double s_epe = 0, s_b1 = 0, s_b2 = 0, s_b3 = 0, s_d1 = 0, s_depth = 0;
  int64_t images = 0, depth_images = 0, no_gt = 0;
  std::vector<double> times;
  std::string units;
  for (size_t i = 0; i < n; ++i) {
    Sample s = data->get(i);
    STEREORT_CHECK(s.disparity.defined(), "eval: sample '{}' of {} has no ground truth; evaluate a split with ground "
                   "truth (or use stereort infer)", s.name, data->describe());
    Tensor d = pred.predict(s.left, s.right);
    times.push_back(pred.last_ms());
    DisparityMetrics m = disparity_metrics(d, s.disparity, s.valid, max_disp);
    double depth = std::nan("");
    if (s.calib.known()) {
      depth = depth_mae_mm(d, s.disparity, s.calib.fx, s.calib.baseline);
      units = s.calib.units;
    }
    if (m.valid > 0) {
      images++;
      s_epe += m.epe;
      s_b1 += m.bad1;
      s_b2 += m.bad2;
      s_b3 += m.bad3;
      s_d1 += m.d1;
    } else {
      no_gt++;
    }
    if (std::isfinite(depth)) {
      depth_images++;
      s_depth += depth;
    }
    std::string name = s.name.empty() ? fmt::format("{:06d}", i) : s.name;
    auto f = [](double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : std::string(); };
    csv << fmt::format("\"{}\",{},{},{},{},{},{},{},{:.2f}\n", name, f(m.epe), f(m.bad1), f(m.bad2), f(m.bad3), f(m.d1),
                       f(depth), m.valid, pred.last_ms());
    if (int64_t(i) < pngs) {
      std::string base = name;
      for (char& c : base)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
      base = (fs::path(out) / base).string();
      io::Colorized gc = io::write_disparity_color_png(base + "_gt.png", s.disparity, s.valid);
      io::ColorizeOptions co;
      co.vmin = gc.vmin;
      co.vmax = gc.vmax;
      io::write_disparity_color_png(base + "_pred.png", d, Tensor(), co);
    }
    std::string line = fmt::format("[{}/{}] {}: EPE {:.3f} bad-3 {:.2f} % ({:.1f} ms)", i + 1, n, name, m.epe,
                                   100 * m.bad3, pred.last_ms());
    std::cerr << (tty ? "\r\033[K" : "") << line << (tty && i + 1 < n ? "" : "\n") << std::flush;
  }
  csv.close();
  std::sort(times.begin(), times.end());
  double k = double(std::max<int64_t>(images, 1)), mean_t = 0;
  for (double t : times) mean_t += t / double(std::max<size_t>(times.size(), 1));
  std::string table;
  table += fmt::format("model      {}\nweights    {}\ndata       {}\nprecision  {} on {}\n", pred.config().str(),
                       po.weights.empty() ? "(none: random initialisation)" : po.weights, data->describe(),
                       po.precision, po.device.str());
  table += fmt::format("images     {} evaluated{}, mask 0 < gt < {:g}\n", images,
                       no_gt ? fmt::format(" ({} without valid ground truth left out)", no_gt) : "", max_disp);
  table += "metric           mean over images\n";
  table += fmt::format("EPE (px)         {:.4f}\n", s_epe / k);
  table += fmt::format("bad-1 (%)        {:.3f}\n", 100 * s_b1 / k);
  table += fmt::format("bad-2 (%)        {:.3f}\n", 100 * s_b2 / k);
  table += fmt::format("bad-3 (%)        {:.3f}\n", 100 * s_b3 / k);
  table += fmt::format("D1 (%)           {:.3f}\n", 100 * s_d1 / k);
  if (depth_images > 0)
    table += fmt::format("depth MAE ({})   {:.4f}   ({} images with calibration)\n", units, s_depth / double(depth_images),
                         depth_images);
  if (!times.empty())
    table += fmt::format("time (ms)        mean {:.2f}, median {:.2f}\n", mean_t, times[times.size() / 2]);
  std::ofstream sf((fs::path(out) / "summary.txt").string());
  sf << table;
  std::cout << table;
  std::cerr << "per-image metrics: " << (fs::path(out) / "per_image.csv").string() << "\n";
  return 0;
}

}  // namespace app
}  // namespace stereort
