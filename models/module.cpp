// models/module.cpp — registration, traversal, state dicts, train/eval, device/dtype moves.
#include "models/module.h"

#include <set>

#include "core/autograd.h"
#include "core/check.h"

namespace stereort {

void Module::register_parameter(const std::string& name, Tensor* t) {
  STEREORT_CHECK(t && t->defined(), "Module: parameter '{}' registered undefined", name);
  t->set_requires_grad(true);
  params_.push_back({name, t});
}
void Module::register_buffer(const std::string& name, Tensor* t) {
  STEREORT_CHECK(t && t->defined(), "Module: buffer '{}' registered undefined", name);
  buffers_.push_back({name, t});
}
void Module::register_module(const std::string& name, Module* m) { children_.push_back({name, m}); }

void Module::collect(const std::string& prefix, bool params, bool buffers,
                     std::vector<std::pair<std::string, Tensor*>>* out) const {
  if (params)
    for (auto& p : params_) out->push_back({prefix + p.first, p.second});
  if (buffers)
    for (auto& b : buffers_) out->push_back({prefix + b.first, b.second});
  for (auto& c : children_) c.second->collect(prefix + c.first + ".", params, buffers, out);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", true, false, &out);
  return out;
}
std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", false, true, &out);
  return out;
}
std::vector<std::pair<std::string, Tensor*>> Module::named_state() const {
  std::vector<std::pair<std::string, Tensor*>> out;
  collect("", true, true, &out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& kv : named_state()) out.push_back({kv.first, kv.second->detach()});
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& kv : named_parameters()) out.push_back(*kv.second);
  return out;
}

std::string Module::LoadReport::str(size_t max_items) const {
  std::string s;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += fmt::format("{} {} key(s): ", v.size(), what);
    for (size_t i = 0; i < v.size() && i < max_items; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > max_items) s += ", ...";
    s += "; ";
  };
  list("missing", missing);
  list("unexpected", unexpected);
  list("shape-mismatched", mismatched);
  return s.empty() ? "all keys matched" : s.substr(0, s.size() - 2);
}

Module::LoadReport Module::load_state_dict(const std::map<std::string, Tensor>& sd_in, bool strict) {
  // Tolerate a DataParallel "module." prefix on every key.
  std::map<std::string, Tensor> sd;
  for (auto& kv : sd_in) sd[kv.first.rfind("module.", 0) == 0 ? kv.first.substr(7) : kv.first] = kv.second;
  LoadReport r;
  std::set<std::string> used;
  auto state = named_state();
  for (auto& kv : state) {
    auto it = sd.find(kv.first);
    if (it == sd.end()) {
      r.missing.push_back(kv.first);
      continue;
    }
    used.insert(kv.first);
    const Tensor& src = it->second;
    Tensor& dst = *kv.second;
    if (src.shape() != dst.shape())
      r.mismatched.push_back(fmt::format("{}: file {} vs model {}", kv.first, shape_str(src.shape()), shape_str(dst.shape())));
  }
  for (auto& kv : sd)
    if (!used.count(kv.first)) r.unexpected.push_back(kv.first);
  STEREORT_CHECK(!strict || r.ok(),
                 "load_state_dict (strict): {}; the weights belong to another model or preset — check --model, or "
                 "load non-strictly", r.str());
  NoGradGuard ng;
  std::set<std::string> bad(r.mismatched.begin(), r.mismatched.end());
  for (auto& kv : state) {
    auto it = sd.find(kv.first);
    if (it == sd.end() || it->second.shape() != kv.second->shape()) continue;
    kv.second->copy_(it->second);
  }
  return r;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

// Replace *t by a copy on `d` (and in `dt`), keeping it a leaf with its requires_grad flag.
static void move_tensor(Tensor* t, Device d, DType dt) {
  bool rg = t->requires_grad();
  std::string name = t->name();
  Tensor n = t->detach().to(dt).to(d);
  *t = n.detach();
  t->set_name(name);
  if (rg) t->set_requires_grad(true);
}

void Module::to(Device d) {
  NoGradGuard ng;
  for (auto& kv : named_state())
    if (kv.second->device() != d) move_tensor(kv.second, d, kv.second->dtype());
}

void Module::to(DType dt) {
  NoGradGuard ng;
  for (auto& kv : named_state())
    if (dtype_is_floating(kv.second->dtype()) && kv.second->dtype() != dt) move_tensor(kv.second, kv.second->device(), dt);
}

void Module::set_requires_grad(bool on) {
  for (auto& kv : named_parameters()) kv.second->set_requires_grad(on);
}

void Module::zero_grad() {
  for (auto& kv : named_parameters()) kv.second->zero_grad();
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& kv : named_parameters()) n += kv.second->numel();
  return n;
}

Device Module::device() const {
  auto p = named_parameters();
  return p.empty() ? Device::cpu() : p.front().second->device();
}

void Module::initialize(uint64_t seed) {
  NoGradGuard ng;
  initialize_rec(seed, "");
}

void Module::initialize_rec(uint64_t seed, const std::string& prefix) {
  for (auto& c : children_) c.second->initialize_rec(seed, prefix + c.first + ".");
  reset_parameters(init_stream(seed, prefix));
}

uint64_t init_stream(uint64_t seed, const std::string& key) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ULL;
  return seed ^ (h * 0x9E3779B97F4A7C15ULL);
}

}  // namespace stereort
