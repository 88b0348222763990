// train/trainer_run.cpp — Trainer::run(): the loop around Trainer::step() with the progress line (TTY) or plain
// lines, the CSV logs, periodic validation and checkpoints, final weights and the throughput summary.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "core/allocator.h"
#include "core/check.h"
#include "train/trainer.h"

namespace fs = std::filesystem;

namespace stereort {

namespace {

// Keep the header and the rows whose first field (the step) is <= max_step: a resumed run continues the log where
// its checkpoint was taken instead of repeating steps an interrupted run logged after it.
void trim_csv(const std::string& path, int64_t max_step) {
  std::ifstream in(path);
  if (!in.good()) return;
  std::string line, kept;
  bool header = true;
  while (std::getline(in, line)) {
    if (header) {
      kept += line + "\n";
      header = false;
      continue;
    }
    long long s = 0;
    if (std::sscanf(line.c_str(), "%lld", &s) == 1 && s <= max_step) kept += line + "\n";
  }
  in.close();
  std::string tmp = path + ".tmp";
  std::ofstream out(tmp, std::ios::trunc);
  out << kept;
  out.close();
  fs::rename(tmp, path);
}

std::ofstream open_csv(const std::string& path, const char* header, bool resume, int64_t step) {
  if (resume) trim_csv(path, step);
  bool fresh = !resume || !fs::exists(path) || fs::file_size(path) == 0;
  std::ofstream f(path, fresh ? std::ios::trunc : std::ios::app);
  STEREORT_CHECK(f.good(), "train: cannot write '{}'", path);
  if (fresh) f << header << "\n";
  return f;
}

std::string hms(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int64_t t = int64_t(s + 0.5);
  return fmt::format("{}:{:02d}:{:02d}", t / 3600, t / 60 % 60, t % 60);
}

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

}  // namespace

int Trainer::run() {
  const TrainOptions& o = opt_;
  fs::create_directories(o.out);
  bool resumed = step_ > 0;
  const StereoMambaConfig& c = model_->cfg;
  say(fmt::format("model: {}, {} parameters", c.str(), model_->num_parameters()));
  say(fmt::format("data: {}", data_->describe()));
  if (val_) say(fmt::format("val: {}{}", val_->describe(), o.val_count > 0 ? fmt::format(" (first {})", o.val_count) : ""));
  say(fmt::format("train: {} steps, batch {}, crop {}x{} (HxW), AdamW lr {:g} wd {:g}, {} schedule, {} on {}, "
                  "{} workers, augment {}, seed {}, out {}", o.steps, o.batch, o.crop_h, o.crop_w, o.lr,
                  o.weight_decay, o.schedule, o.precision, o.device.str(), o.workers, o.augment, o.seed, o.out));
  std::ofstream csv = open_csv((fs::path(o.out) / "train_log.csv").string(),
                               "step,loss,loss0,loss1,loss2,loss3,lr,beta1,grad_norm,loss_scale,pairs_per_s,time_s,skipped",
                               resumed, step_);
  std::ofstream vcsv;
  if (val_) vcsv = open_csv((fs::path(o.out) / "val_log.csv").string(), "step,images,epe,bad1,bad2,bad3,d1", resumed, step_);
  bool tty = o.verbose && isatty(fileno(stderr));
  bool bar = false;  // a progress line is on screen (no newline yet)
  auto print = [&](const std::string& line) {
    if (!o.verbose) return;
    std::cerr << (bar ? "\r\033[K" : "") << line << "\n";
    bar = false;
  };
  std::vector<double> times;  // step ms in this process
  int64_t skipped = 0, last_ckpt = -1;
  while (step_ < o.steps) {
    StepStats st = step();
    times.push_back(st.step_ms);
    skipped += st.skipped;
    csv << fmt::format("{},{:.8g}", st.step, st.loss);
    for (size_t i = 0; i < 4; ++i) csv << "," << (i < st.terms.size() ? fmt::format("{:.8g}", st.terms[i]) : "");
    csv << fmt::format(",{:.8g},{:.6g},{:.6g},{:g},{:.4g},{:.3f},{}\n", st.lr, st.beta1, st.grad_norm, st.loss_scale,
                       st.pairs_per_s, st.time_s, int(st.skipped));
    if (!st.message.empty()) print(st.message);
    // recent speed: the last up to 20 steps
    size_t nrec = std::min<size_t>(times.size(), 20);
    double rec_ms = 0;
    for (size_t i = times.size() - nrec; i < times.size(); ++i) rec_ms += times[i];
    rec_ms /= double(nrec);
    double pps = 1000.0 * double(o.batch) / rec_ms, eta = double(o.steps - step_) * rec_ms / 1000.0;
    std::string line = fmt::format("step {}/{}  loss {:.4f}  lr {:.3e}  {:.2f} pairs/s  ETA {}", step_, o.steps,
                                   st.loss, st.lr, pps, hms(eta));
    if (tty) {
      std::cerr << "\r\033[K" << line << std::flush;
      bar = true;
    } else if (o.verbose && (step_ % std::max<int64_t>(1, o.log_every) == 0 || step_ == o.steps)) {
      print(line);
    }
    if (val_ && o.val_every > 0 && step_ % o.val_every == 0) {
      ValStats vs = validate();
      vcsv << fmt::format("{},{},{:.6g},{:.6g},{:.6g},{:.6g},{:.6g}\n", vs.step, vs.images, vs.epe, vs.bad1, vs.bad2,
                          vs.bad3, vs.d1);
      vcsv.flush();
      bool best = std::isfinite(vs.epe) && (!has_best_ || vs.epe < best_epe_);
      if (best) {
        has_best_ = true;
        best_epe_ = vs.epe;
        save_checkpoint((fs::path(o.out) / "checkpoints" / "best.safetensors").string());
      }
      print(fmt::format("val @ step {}: EPE {:.4f}  bad-2 {:.2f} %  bad-3 {:.2f} %  ({} images){}", step_, vs.epe,
                        100 * vs.bad2, 100 * vs.bad3, vs.images, best ? "  best so far, saved" : ""));
      csv.flush();
    }
    if (o.ckpt_every > 0 && (step_ % o.ckpt_every == 0 || step_ == o.steps)) {
      std::string p = save_checkpoint();
      last_ckpt = step_;
      print(fmt::format("checkpoint {}", p));
      csv.flush();
    }
  }
  if (bar) std::cerr << "\n";
  bar = false;
  csv.close();
  std::string weights = (fs::path(o.out) / "model.safetensors").string();
  save_weights(weights);
  say(fmt::format("done: {} steps ({} skipped){}; final weights {} (stereort infer --model {} --weights {})", step_,
                  skipped, last_ckpt == step_ ? fmt::format(", checkpoint at step {}", step_) : "", weights, o.model,
                  weights));
  // Throughput: median step time after warm-up (the first 5 steps of this process, fewer for short runs).
  size_t warm = std::min<size_t>(5, times.size() / 2);
  std::vector<double> steady(times.begin() + long(warm), times.end());
  if (!steady.empty()) {
    double med = median(steady);
    std::string mem = "n/a on the CPU";
    if (o.device.is_cuda()) {
      CudaAllocatorStats s = cuda_allocator_stats(o.device.index);
      mem = fmt::format("{:.2f} GiB (allocator peak; {:.2f} GiB reserved)", double(s.peak_bytes) / double(1 << 30),
                        double(s.reserved_bytes) / double(1 << 30));
    }
    say(fmt::format("throughput: {} {} batch {} crop {}x{} (HxW) {}: median step {:.1f} ms over {} steps after {} "
                    "warm-up, {:.2f} pairs/s; peak device memory {}", c.name, o.device.str(), o.batch, o.crop_h,
                    o.crop_w, o.precision, med, steady.size(), warm, 1000.0 * double(o.batch) / med, mem));
  }
  return 0;
}

}  // namespace stereort
