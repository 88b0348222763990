// tests/test_util.h — shared test helpers: random tensors, expect_close, gradcheck wrapper, GPU skip, poisoning.
//   expect_close(got, ref, rtol, atol, name): |got-ref| <= atol + rtol*|ref| elementwise, non-finite got where ref is
//   finite fails; prints the normwise relative error ||got-ref||/||ref||, max abs/rel error, the worst index and the
//   first mismatches. Tolerances are named constants (kTolF32...), never inline magic numbers.
#pragma once
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace stereort {
namespace test {

struct Tol {
  double rtol, atol;
};
constexpr Tol kTolF64{1e-12, 1e-12};
constexpr Tol kTolF32{1e-5, 1e-6};
constexpr Tol kTolTF32{2e-3, 1e-4};
constexpr Tol kTolF16{1e-2, 1e-3};
constexpr Tol kTolBF16{1e-2, 1e-2};
constexpr Tol kTolGrad{1e-6, 1e-8};  // float64 finite differences

struct CloseReport {
  bool ok = true;
  double norm_rel = 0, max_abs = 0, max_rel = 0;
  int64_t worst = -1, mismatches = 0;
  std::string text;
};
// Compare without asserting (for custom checks).
CloseReport compare(const Tensor& got, const Tensor& ref, double rtol, double atol);
// Assert: CHECKs ok and prints the report on failure. Returns the report.
CloseReport expect_close(const Tensor& got, const Tensor& ref, double rtol, double atol, const std::string& name);
inline CloseReport expect_close(const Tensor& got, const Tensor& ref, Tol tol, const std::string& name) {
  return expect_close(got, ref, tol.rtol, tol.atol, name);
}
// Assert the normwise relative error ||got - ref|| / ||ref|| <= bound (the brief's measure for GPU vs CPU), and that
// got is finite wherever ref is. Use it where an fp32 kernel sums in another order than the float64 reference, so a
// few elements near zero carry most of the elementwise relative error.
CloseReport expect_rel(const Tensor& got, const Tensor& ref, double bound, const std::string& name);
// Normwise relative error ||got - ref|| / ||ref|| (||got|| when ref is all zeros).
double rel_error(const Tensor& got, const Tensor& ref);

// Fresh random tensors: uniform in [lo, hi) or N(0,1); the seed defaults to a per-call counter so tests never reuse
// inputs by accident.
Tensor rand_t(const Shape& shape, DType dtype = DType::F64, double lo = -1.0, double hi = 1.0, uint64_t seed = 0);
Tensor randn_t(const Shape& shape, DType dtype = DType::F64, uint64_t seed = 0);
// Fill with NaN (floating) or 0x5a bytes (others) — what "poison outputs before a kernel runs" means here.
void poison(const Tensor& t);

// gradcheck + CHECK with the report printed on failure.
void check_grad(const std::function<Tensor(const std::vector<Tensor>&)>& f, const std::vector<Tensor>& inputs,
                const std::string& name, double rtol = 1e-6, double atol = 1e-8);

// True when a CUDA device is present; otherwise prints "skipped: no CUDA device (<name>)" and returns false.
bool gpu_or_skip(const char* name);
Device gpu();

// Path of a golden safetensors file (e.g. "selective_scan"), or "" after printing "skipped: ..." when the golden
// folder is not present on this machine.
std::string golden_file(const std::string& name);

// Run `f` and check it throws stereort::Error whose message contains every string in `needles`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& needles);

}  // namespace test
}  // namespace stereort

#define STEREORT_REQUIRE_GPU()                                                                         \
  do {                                                                                                 \
    if (!::stereort::test::gpu_or_skip(__FILE__ ":" DOCTEST_TOSTR(__LINE__))) return;                  \
  } while (0)
