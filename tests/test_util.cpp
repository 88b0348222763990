// tests/test_util.cpp — implementations of the shared test helpers.
#include "test_util.h"

#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "core/check.h"
#include "core/context.h"
#include "ops/init.h"

namespace stereort {
namespace test {

static std::atomic<uint64_t> g_seed{0x5eed0000};

CloseReport compare(const Tensor& got, const Tensor& ref, double rtol, double atol) {
  CloseReport r;
  if (got.shape() != ref.shape()) {
    r.ok = false;
    r.text = fmt::format("shape mismatch: got {} ref {}", shape_str(got.shape()), shape_str(ref.shape()));
    return r;
  }
  std::vector<double> g = got.to_vector(), f = ref.to_vector();
  double e2 = 0, r2 = 0, g2 = 0;
  std::string first;
  for (size_t i = 0; i < g.size(); ++i) {
    double d = std::fabs(g[i] - f[i]);
    bool bad;
    if (std::isfinite(f[i])) bad = !std::isfinite(g[i]) || !(d <= atol + rtol * std::fabs(f[i]));
    else bad = !(g[i] == f[i] || (std::isnan(f[i]) && std::isnan(g[i])));  // same inf, or NaN where NaN is expected
    if (std::isfinite(d)) {
      e2 += d * d;
      r2 += f[i] * f[i];
      g2 += g[i] * g[i];
    }
    if (bad) {
      r.mismatches++;
      if (r.mismatches <= 4) first += fmt::format("    [{}] got {:.9g} ref {:.9g}\n", i, g[i], f[i]);
    }
    double rel = d / std::max(std::fabs(f[i]), 1e-300);
    if (!std::isfinite(d)) { r.max_abs = INFINITY; r.worst = int64_t(i); }
    else if (d > r.max_abs) { r.max_abs = d; r.worst = int64_t(i); }
    if (std::isfinite(rel)) r.max_rel = std::max(r.max_rel, rel);
  }
  r.norm_rel = r2 > 0 ? std::sqrt(e2 / r2) : std::sqrt(g2);
  r.ok = r.mismatches == 0;
  r.text = fmt::format("{} elements, {} mismatches, norm rel err {:.3e}, max abs err {:.3e} at [{}], max rel err {:.3e}\n{}",
                       g.size(), r.mismatches, r.norm_rel, r.max_abs, r.worst, r.max_rel, first);
  return r;
}

CloseReport expect_close(const Tensor& got, const Tensor& ref, double rtol, double atol, const std::string& name) {
  CloseReport r = compare(got, ref, rtol, atol);
  INFO(name << " (rtol " << rtol << ", atol " << atol << "): " << r.text);
  CHECK(r.ok);
  return r;
}

CloseReport expect_rel(const Tensor& got, const Tensor& ref, double bound, const std::string& name) {
  CloseReport r = compare(got, ref, 0, INFINITY);  // atol inf: only non-finite mismatches count
  INFO(name << " (normwise bound " << bound << "): " << r.text);
  CHECK(r.ok);
  CHECK(r.norm_rel <= bound);
  return r;
}

double rel_error(const Tensor& got, const Tensor& ref) { return compare(got, ref, 0, INFINITY).norm_rel; }

Tensor rand_t(const Shape& shape, DType dtype, double lo, double hi, uint64_t seed) {
  return rand_uniform(shape, dtype, Device::cpu(), seed ? seed : g_seed++, lo, hi);
}
Tensor randn_t(const Shape& shape, DType dtype, uint64_t seed) {
  return randn(shape, dtype, Device::cpu(), seed ? seed : g_seed++);
}

void poison(const Tensor& t) { t.fill_(dtype_is_floating(t.dtype()) ? NAN : 90.0); }

void check_grad(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                const std::string& name, double rtol, double atol) {
  GradcheckOptions o;
  o.rtol = rtol;
  o.atol = atol;
  GradcheckResult r = gradcheck(f, inputs, o);
  INFO("gradcheck " << name << ": max abs " << r.max_abs_err << ", norm rel " << r.norm_rel_err << "\n" << r.report);
  CHECK(r.ok);
}

bool gpu_or_skip(const char* name) {
  if (cuda_available()) return true;
  std::printf("skipped: no CUDA device (%s)\n", name);
  return false;
}
Device gpu() { return Device::cuda(0); }

std::string golden_file(const std::string& name) {
  std::string dir = STEREORT_GOLDEN_DIR;
  if (const char* env = std::getenv("STEREORT_GOLDEN_DIR")) dir = env;
  std::string path = dir + "/" + name + ".safetensors";
  if (dir.empty() || !std::ifstream(path).good()) {
    std::printf("skipped: golden tensors not found (%s)\n", path.c_str());
    return "";
  }
  return path;
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles) {
  bool threw = false;
  try {
    f();
  } catch (const Error& e) {
    threw = true;
    std::string m = e.message();
    for (const auto& n : needles) {
      INFO("error message: " << m << " — expected to contain: " << n);
      CHECK(m.find(n) != std::string::npos);
    }
  }
  CHECK_MESSAGE(threw, "expected a stereort::Error");
}

}  // namespace test
}  // namespace stereort
