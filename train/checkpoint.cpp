// train/checkpoint.cpp — checkpoint and weight files (layout in train/checkpoint.h).
#include "train/checkpoint.h"

#include <algorithm>
#include <cinttypes>
#include <cstring>
#include <filesystem>

#include "core/check.h"
#include "io/safetensors.h"
#include "models/stereomamba.h"

namespace fs = std::filesystem;

namespace stereort {

static const char* kFormat = "stereort-checkpoint";

static std::string num(double v) { return fmt::format("{:.17g}", v); }
static std::string num(int64_t v) { return std::to_string(v); }
static std::string num(uint64_t v) { return std::to_string(v); }

static const std::string& need(const std::map<std::string, std::string>& md, const std::string& key,
                               const std::string& path) {
  auto it = md.find(key);
  STEREORT_CHECK(it != md.end(), "checkpoint '{}': metadata '{}' is missing (the file is damaged or not a stereort "
                 "checkpoint)", path, key);
  return it->second;
}

template <typename T>
static T parse_num(const std::string& s, const std::string& key, const std::string& path) {
  size_t used = 0;
  T v{};
  try {
    if constexpr (std::is_same<T, double>::value) v = std::stod(s, &used);
    else if constexpr (std::is_same<T, uint64_t>::value) v = std::stoull(s, &used);
    else v = T(std::stoll(s, &used));
  } catch (const std::exception&) {
    used = 0;
  }
  STEREORT_CHECK(used == s.size() && !s.empty(), "checkpoint '{}': metadata {}='{}' is not a number", path, key, s);
  return v;
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& opt, const LossScaler& scaler,
                     const CheckpointInfo& info) {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& kv : model.state_dict()) tensors.push_back({"model." + kv.first, kv.second});
  for (auto& kv : opt.state_dict()) tensors.push_back({"optimizer." + kv.first, kv.second});
  for (auto& kv : scaler.state_dict()) tensors.push_back({"scaler." + kv.first, kv.second});
  std::map<std::string, std::string> md = info.meta;
  md["format"] = kFormat;
  md["format_version"] = std::to_string(kCheckpointFormatVersion);
  md["step"] = num(info.step);
  md["loader_position"] = num(info.loader_position);
  md["rng_seed"] = num(info.rng.seed);
  md["rng_offset"] = num(info.rng.offset);
  md["elapsed_s"] = num(info.elapsed_s);
  if (info.has_best) md["best_epe"] = num(info.best_epe);
  else md.erase("best_epe");
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  save_safetensors(path, tensors, md);
}

static CheckpointInfo info_from(const std::map<std::string, std::string>& md, const std::string& path) {
  auto f = md.find("format");
  STEREORT_CHECK(f != md.end() && f->second == kFormat, "'{}' is not a stereort training checkpoint (metadata format "
                 "= '{}'); model-only weights cannot resume training — use them with --weights / infer", path,
                 f == md.end() ? std::string("none") : f->second);
  int64_t version = parse_num<int64_t>(need(md, "format_version", path), "format_version", path);
  STEREORT_CHECK(version == kCheckpointFormatVersion, "checkpoint '{}' has format version {}, this build reads {}",
                 path, version, kCheckpointFormatVersion);
  CheckpointInfo info;
  info.step = parse_num<int64_t>(need(md, "step", path), "step", path);
  info.loader_position = parse_num<int64_t>(need(md, "loader_position", path), "loader_position", path);
  info.rng.seed = parse_num<uint64_t>(need(md, "rng_seed", path), "rng_seed", path);
  info.rng.offset = parse_num<uint64_t>(need(md, "rng_offset", path), "rng_offset", path);
  info.elapsed_s = parse_num<double>(need(md, "elapsed_s", path), "elapsed_s", path);
  auto b = md.find("best_epe");
  if (b != md.end()) {
    info.has_best = true;
    info.best_epe = parse_num<double>(b->second, "best_epe", path);
  }
  info.meta = md;
  for (const char* k : {"format", "format_version", "step", "loader_position", "rng_seed", "rng_offset", "elapsed_s",
                        "best_epe"})
    info.meta.erase(k);
  return info;
}

CheckpointInfo read_checkpoint_info(const std::string& path) {
  SafeTensors st = SafeTensors::open(path);
  return info_from(st.metadata(), path);
}

CheckpointInfo load_checkpoint(const std::string& path, Module& model, Optimizer& opt, LossScaler& scaler) {
  SafeTensors st = SafeTensors::open(path);
  CheckpointInfo info = info_from(st.metadata(), path);
  std::map<std::string, Tensor> m, o, s;
  for (const std::string& k : st.keys()) {
    auto strip = [&](const char* prefix, std::map<std::string, Tensor>& dst) {
      size_t n = std::strlen(prefix);
      if (k.compare(0, n, prefix) != 0) return false;
      dst[k.substr(n)] = st.get(k);
      return true;
    };
    if (!strip("model.", m) && !strip("optimizer.", o) && !strip("scaler.", s))
      STEREORT_FAIL("checkpoint '{}': unexpected tensor '{}' (expected model.*, optimizer.*, scaler.*)", path, k);
  }
  try {
    model.load_state_dict(m, true);
  } catch (const Error& e) {
    STEREORT_FAIL("checkpoint '{}' does not fit the model (was it written for another --model?): {}", path,
                  e.message());
  }
  try {
    opt.load_state_dict(o);
  } catch (const Error& e) {
    STEREORT_FAIL("checkpoint '{}': optimizer state does not fit: {}", path, e.message());
  }
  STEREORT_CHECK(s.count("scale") && s.count("good_steps"), "checkpoint '{}': scaler.scale / scaler.good_steps missing",
                 path);
  scaler.load_state_dict(s);
  return info;
}

void save_model_weights(const std::string& path, const Module& model, const StereoMambaConfig& cfg) {
  std::map<std::string, std::string> md;
  md["arch"] = "stereomamba";
  md["preset"] = cfg.name;
  md["config"] = cfg.str();
  md["mean"] = fmt::format("{},{},{}", cfg.mean[0], cfg.mean[1], cfg.mean[2]);
  md["std"] = fmt::format("{},{},{}", cfg.std[0], cfg.std[1], cfg.std[2]);
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path());
  save_safetensors(path, model.state_dict(), md);
}

std::string checkpoint_path(const std::string& dir, int64_t step) {
  return (fs::path(dir) / fmt::format("step_{:08d}.safetensors", step)).string();
}

std::vector<std::string> list_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  if (!fs::is_directory(dir)) return {};
  for (auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    int64_t step = 0;
    char tail[32] = {0};
    // step_<digits>.safetensors exactly (temp files of an interrupted write do not match)
    if (std::sscanf(name.c_str(), "step_%" SCNd64 ".safetensor%31s", &step, tail) == 2 && std::string(tail) == "s" &&
        name == fs::path(checkpoint_path(dir, step)).filename().string())
      found.push_back({step, e.path().string()});
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(f.second);
  return out;
}

std::vector<std::string> prune_checkpoints(const std::string& dir, int keep) {
  std::vector<std::string> all = list_checkpoints(dir), removed;
  if (keep <= 0 || int(all.size()) <= keep) return removed;
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) {
    std::error_code ec;
    fs::remove(all[i], ec);
    if (!ec) removed.push_back(all[i]);
  }
  return removed;
}

std::string resolve_checkpoint(const std::string& p) {
  STEREORT_CHECK(fs::exists(p), "--resume '{}' does not exist (give a checkpoint file or a run folder)", p);
  if (!fs::is_directory(p)) return p;
  for (const fs::path& d : {fs::path(p) / "checkpoints", fs::path(p)}) {
    std::vector<std::string> all = list_checkpoints(d.string());
    if (!all.empty()) return all.back();
  }
  STEREORT_FAIL("--resume '{}': no step_*.safetensors checkpoint in the folder or in its checkpoints/ subfolder", p);
}

}  // namespace stereort
