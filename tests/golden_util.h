// tests/golden_util.h — loading the official-code golden tensors and comparing with their metric.
//   err(a, g) = max|a - g| / max|g| (max|a| when g is all zeros), as ../shared/golden/README.md defines it; the
//   normwise ||a - g|| / ||g|| is reported beside it (the README's fallback for gradients through ReLU kinks).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"
#include "models/module.h"
#include "test_util.h"

namespace stereort {
namespace test {

struct Golden {
  SafeTensors st;
  DType dtype;  // what tensors are widened to (F64 for the CPU tests)
  explicit Golden(const std::string& path, DType dt = DType::F64) : st(SafeTensors::open(path)), dtype(dt) {}
  bool has(const std::string& k) const { return st.has(k); }
  Tensor get(const std::string& k) const { return st.get(k).to(dtype); }
  // All "param.<k>" entries as {k: tensor}, optionally only keys starting with `prefix` (prefix removed).
  std::map<std::string, Tensor> params(const std::string& prefix = "") const;
};

struct GoldenErr {
  double max_rel, norm_rel;
};
GoldenErr golden_compare(const Tensor& a, const Tensor& g);
inline double golden_err(const Tensor& a, const Tensor& g) { return golden_compare(a, g).max_rel; }
// One golden tensor widened to F32 (gwc_head parameters are stored as bf16; widening is exact).
inline Tensor stereo_golden_tensor(const std::string& path, const std::string& name) {
  return SafeTensors::open(path).get(name).to(DType::F32);
}
// CHECK err <= tol (or, with allow_kinks, the normwise error <= tol when the max error misses — ReLU kinks).
void check_golden(const Tensor& a, const Tensor& g, double tol, const std::string& name, bool allow_kinks = false);
// Compare every grad.param.<k> (sliced by gidx.param.<k> when present) with the module's parameter gradients.
// `file_prefix` is prepended to module keys to form the file keys. Returns the number compared.
// loss = sum_k sum(out_k * gout_k), as the golden gradients were made (so d loss / d out_k = gout_k).
Tensor dot_loss(const std::vector<std::pair<Tensor, Tensor>>& outs);

int check_param_grads(const Golden& g, const Module& m, const std::string& grad_prefix, const std::string& file_prefix,
                      double tol, bool allow_kinks = false);

}  // namespace test
}  // namespace stereort
