// tests/golden_util.cpp — see golden_util.h.
#include "golden_util.h"

#include <cmath>

#include "core/check.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

namespace stereort {
namespace test {

std::map<std::string, Tensor> Golden::params(const std::string& prefix) const {
  std::map<std::string, Tensor> out;
  for (const std::string& k : st.keys()) {
    if (k.rfind("param.", 0) != 0) continue;
    std::string key = k.substr(6);
    if (key.rfind(prefix, 0) != 0) continue;
    Tensor t = st.get(k);
    out[key.substr(prefix.size())] = dtype_is_floating(t.dtype()) ? t.to(dtype) : t;
  }
  return out;
}

GoldenErr golden_compare(const Tensor& a, const Tensor& g) {
  std::vector<double> av = a.to_vector(), gv = g.to_vector();
  double md = 0, mg = 0, ma = 0, e2 = 0, g2 = 0;
  for (size_t i = 0; i < av.size(); ++i) {
    double d = std::fabs(av[i] - gv[i]);
    md = std::isnan(d) ? INFINITY : std::max(md, d);
    mg = std::max(mg, std::fabs(gv[i]));
    ma = std::max(ma, std::fabs(av[i]));
    e2 += d * d;
    g2 += gv[i] * gv[i];
  }
  return {mg > 0 ? md / mg : ma, g2 > 0 ? std::sqrt(e2 / g2) : std::sqrt(e2)};
}

void check_golden(const Tensor& a, const Tensor& g, double tol, const std::string& name, bool allow_kinks) {
  INFO(name << ": shapes " << shape_str(a.shape()) << " vs golden " << shape_str(g.shape()));
  REQUIRE(a.shape() == g.shape());
  GoldenErr e = golden_compare(a, g);
  INFO(name << ": max-rel err " << e.max_rel << ", norm-rel err " << e.norm_rel << " (tol " << tol << ")");
  MESSAGE(name << ": err " << e.max_rel << " (norm " << e.norm_rel << ")");
  if (allow_kinks) CHECK((e.max_rel <= tol || e.norm_rel <= tol));
  else CHECK(e.max_rel <= tol);
}

Tensor dot_loss(const std::vector<std::pair<Tensor, Tensor>>& outs) {
  Tensor l;
  for (auto& og : outs) {
    Tensor t = sum(mul(og.first, og.second));
    l = l.defined() ? add(l, t) : t;
  }
  return l;
}

int check_param_grads(const Golden& g, const Module& m, const std::string& grad_prefix, const std::string& file_prefix,
                      double tol, bool allow_kinks) {
  int n = 0;
  for (auto& kv : m.named_parameters()) {
    std::string key = grad_prefix + file_prefix + kv.first;
    if (!g.has(key)) continue;
    Tensor ours = kv.second->grad();
    INFO("parameter " << kv.first);
    REQUIRE(ours.defined());
    ours = ours.cpu();
    std::string idx = "gidx." + key.substr(key.find('.') + 1);
    if (g.has(idx)) ours = index_select(ours, 0, g.st.get(idx));
    check_golden(ours.to(DType::F64), g.get(key), tol, key, allow_kinks);
    n++;
  }
  return n;
}

}  // namespace test
}  // namespace stereort
