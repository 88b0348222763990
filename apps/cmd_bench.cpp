// apps/cmd_bench.cpp — `stereort bench`: StereoMamba inference latency per size and precision.
//   For each HxW and precision: random normalised inputs (1,3,H,W) on the GPU, `--warmup` untimed forwards, then
//   `--iters` forwards each timed with CUDA events on the model's stream (the eval graph: last output only, no
//   host transfers); median, mean, p90, FPS = 1000/median, and the allocator's peak device memory during the runs.
//   Prints a table and, with --json, writes the same numbers as JSON.
#include <cxxopts.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "apps/commands.h"
#include "core/allocator.h"
#include "core/check.h"
#include "core/context.h"
#include "core/timer.h"
#include "io/json.h"
#include "models/infer.h"
#include "ops/init.h"

namespace stereort {
namespace app {

static std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  std::string t;
  while (std::getline(ss, t, ',')) if (!t.empty()) v.push_back(t);
  return v;
}

int cmd_bench(int argc, char** argv) {
  cxxopts::Options o(argv[0], "Benchmark StereoMamba inference (CUDA events, median after warm-up)");
  o.add_options()
    ("m,model", "preset or JSON config", cxxopts::value<std::string>()->default_value("stereomamba-v1"))
    ("w,weights", "weights (.safetensors); random initialisation otherwise", cxxopts::value<std::string>()->default_value(""))
    ("s,sizes", "comma-separated HxW sizes", cxxopts::value<std::string>()->default_value("1024x1280,512x960,256x512"))
    ("p,precision", "comma-separated: fp32, tf32, fp16, bf16", cxxopts::value<std::string>()->default_value("fp32,tf32,fp16"))
    ("warmup", "untimed runs per setting", cxxopts::value<int>()->default_value("3"))
    ("iters", "timed runs per setting", cxxopts::value<int>()->default_value("10"))
    ("d,device", "cuda | cpu", cxxopts::value<std::string>()->default_value("cuda"))
    ("json", "also write the results to this JSON file", cxxopts::value<std::string>()->default_value(""))
    ("h,help", "show this help");
  auto a = o.parse(argc, argv);
  if (a.count("help")) {
    std::cout << o.help() << "\n";
    return 0;
  }
  Device dev = Device::parse(a["device"].as<std::string>());
  int warmup = a["warmup"].as<int>(), iters = a["iters"].as<int>();
  STEREORT_CHECK(iters > 0 && warmup >= 0, "bench: --iters must be > 0 and --warmup >= 0");
  io::Json rows = io::Json::array();
  std::cout << fmt::format("{:<18} {:>11} {:>6} {:>10} {:>10} {:>10} {:>8} {:>10}\n", "model", "size HxW", "prec",
                           "median ms", "mean ms", "p90 ms", "FPS", "peak GiB");
  for (const std::string& prec : split_list(a["precision"].as<std::string>())) {
    PredictorOptions po;
    po.model = a["model"].as<std::string>();
    po.weights = a["weights"].as<std::string>();
    po.device = dev;
    po.precision = prec;
    StereoPredictor pred(po);
    for (const std::string& sz : split_list(a["sizes"].as<std::string>())) {
      int64_t H = 0, W = 0;
      STEREORT_CHECK(std::sscanf(sz.c_str(), "%ldx%ld", &H, &W) == 2 && H > 0 && W > 0,
                     "bench: size '{}' must be HxW, e.g. 1024x1280", sz);
      int64_t m = pred.config().size_multiple();
      STEREORT_CHECK(H % m == 0 && W % m == 0, "bench: size {}x{} must be a multiple of {} for {}", H, W, m,
                     pred.config().name);
      Tensor l = randn({1, 3, H, W}, DType::F32, dev, 11), r = randn({1, 3, H, W}, DType::F32, dev, 12);
      if (dev.is_cuda()) {
        Context::get(dev).synchronize();
        cuda_allocator_reset_peak(dev.index);
      }
      TimingStats t = time_repeated(dev, [&] { pred.forward_padded(l, r); }, warmup, iters);
      double peak = dev.is_cuda() ? double(cuda_allocator_stats(dev.index).peak_bytes) / double(1 << 30) : 0.0;
      std::cout << fmt::format("{:<18} {:>11} {:>6} {:>10.2f} {:>10.2f} {:>10.2f} {:>8.2f} {:>10.2f}\n",
                               pred.config().name, sz, prec, t.median_ms, t.mean_ms, t.p90_ms, 1000.0 / t.median_ms, peak)
                << std::flush;
      io::Json row = io::Json::object();
      row.set("model", pred.config().name);
      row.set("height", H);
      row.set("width", W);
      row.set("precision", prec);
      row.set("median_ms", t.median_ms);
      row.set("mean_ms", t.mean_ms);
      row.set("p90_ms", t.p90_ms);
      row.set("min_ms", t.min_ms);
      row.set("fps", 1000.0 / t.median_ms);
      row.set("peak_gib", peak);
      row.set("iters", int64_t(iters));
      row.set("warmup", int64_t(warmup));
      row.set("device", dev.str());
      rows.push(row);
    }
  }
  std::string js = a["json"].as<std::string>();
  if (!js.empty()) {
    std::ofstream f(js);
    STEREORT_CHECK(f.good(), "bench: cannot write '{}'", js);
    f << rows.dump() << "\n";
  }
  return 0;
}

}  // namespace app
}  // namespace stereort
