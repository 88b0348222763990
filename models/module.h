// models/module.h — Module: named parameters, buffers and children with PyTorch state-dict keys.
//   A module registers pointers to its own member tensors and sub-modules in its constructor, in the order the
//   PyTorch module defines them, so state_dict() lists keys exactly as `model.state_dict()` does (per module:
//   parameters, then buffers, then children recursively; dotted names; nn.Sequential children are "0", "1", ...).
//   load_state_dict copies values into the existing tensors (keeping their device and dtype; BF16/F16 files widen
//   exactly). strict: every key present, no extra keys, every shape equal — else one error listing the problems.
//   Non-strict returns a LoadReport (missing, unexpected, shape mismatches) and loads what matches.
//   A leading "module." (DataParallel) in file keys is tolerated.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace stereort {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  struct LoadReport {
    std::vector<std::string> missing, unexpected, mismatched;  // mismatched: "key: file (a,b) vs model (c,d)"
    bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
    std::string str(size_t max_items = 8) const;
  };

  std::vector<std::pair<std::string, Tensor*>> named_parameters() const;
  std::vector<std::pair<std::string, Tensor*>> named_buffers() const;
  std::vector<std::pair<std::string, Tensor*>> named_state() const;  // parameters and buffers, PyTorch order
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  std::vector<Tensor> parameters() const;
  LoadReport load_state_dict(const std::map<std::string, Tensor>& sd, bool strict = true);

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }
  void to(Device device);
  void to(DType dtype);  // floating parameters and buffers only
  void set_requires_grad(bool on);  // freeze (false) / unfreeze (true) every parameter
  void zero_grad();
  int64_t num_parameters() const;
  // Initialise every parameter: each module's reset_parameters() gets a stream derived from (seed, its dotted name),
  // children first in registration order; a parent may then override its children's init (VMamba, GwcNet do).
  void initialize(uint64_t seed);
  virtual void reset_parameters(uint64_t stream) {}
  Device device() const;  // of the first parameter (CPU when there is none)

 protected:
  void register_parameter(const std::string& name, Tensor* t);
  void register_buffer(const std::string& name, Tensor* t);
  void register_module(const std::string& name, Module* m);
  bool training_ = true;

 private:
  void initialize_rec(uint64_t seed, const std::string& prefix);
  void collect(const std::string& prefix, bool params, bool buffers,
               std::vector<std::pair<std::string, Tensor*>>* out) const;
  std::vector<std::pair<std::string, Tensor*>> params_, buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
};

// Seeded, order-independent initialisation: each parameter draws from its own Philox stream keyed by
// (seed, hash of its full state-dict key), so adding a module never changes the others' initial values.
uint64_t init_stream(uint64_t seed, const std::string& key);

}  // namespace stereort
