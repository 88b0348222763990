// tests/test_rng.cpp — Philox: known-answer vector, distribution sanity, and CPU == GPU bit for bit.
#include <cmath>
#include <cstring>

#include "core/rng.h"
#include "ops/init.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

TEST_CASE("Philox4x32-10 matches the Random123 known-answer vectors") {
  // Random123 kat_vectors: philox4x32_10 with ctr = key = 0 and with ctr = key = all ones.
  philox::U4 r = philox::philox4x32_10({0, 0, 0, 0}, 0, 0);
  CHECK(r.x == 0x6627e8d5u);
  CHECK(r.y == 0xe169c58du);
  CHECK(r.z == 0xbc57ac4cu);
  CHECK(r.w == 0x9b00dbd8u);
  philox::U4 s = philox::philox4x32_10({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffu, 0xffffffffu);
  CHECK(s.x == 0x408f276du);
  CHECK(s.y == 0x41c83b0eu);
  CHECK(s.z == 0xa20bc7c6u);
  CHECK(s.w == 0x6d5451fdu);
}

TEST_CASE("uniform and normal streams have the right moments and are reproducible") {
  Tensor u = rand_uniform({200000}, DType::F64, Device::cpu(), 42);
  Tensor n = randn({200000}, DType::F64, Device::cpu(), 42);
  std::vector<double> uv = u.to_vector(), nv = n.to_vector();
  double mu = 0, m2 = 0, nm = 0, n2 = 0, n4 = 0, umin = 1, umax = 0;
  for (double x : uv) { mu += x; m2 += x * x; umin = std::min(umin, x); umax = std::max(umax, x); }
  for (double x : nv) { nm += x; n2 += x * x; n4 += x * x * x * x; }
  double N = double(uv.size());
  CHECK(mu / N == doctest::Approx(0.5).epsilon(0.01));
  CHECK(m2 / N - (mu / N) * (mu / N) == doctest::Approx(1.0 / 12).epsilon(0.01));
  CHECK(umin >= 0.0);
  CHECK(umax < 1.0);
  CHECK(std::fabs(nm / N) < 0.01);
  CHECK(n2 / N == doctest::Approx(1.0).epsilon(0.01));
  CHECK(n4 / N == doctest::Approx(3.0).epsilon(0.03));  // Gaussian kurtosis
  // the polynomial log/sincos are accurate
  CHECK(std::fabs(philox::log_det(0.3f) - std::log(0.3f)) < 1e-6);
  float s, c;
  philox::sincos_2pi_det(0.37f, &s, &c);
  CHECK(std::fabs(s - std::sin(2 * M_PI * 0.37)) < 1e-6);
  CHECK(std::fabs(c - std::cos(2 * M_PI * 0.37)) < 1e-6);
  // reproducible, offset moves the stream
  CHECK(rand_uniform({5}, DType::F32, Device::cpu(), 7).to_vector() == rand_uniform({5}, DType::F32, Device::cpu(), 7).to_vector());
  CHECK(rand_uniform({5}, DType::F32, Device::cpu(), 7, 0, 1, 1).to_vector() != rand_uniform({5}, DType::F32, Device::cpu(), 7).to_vector());
}

TEST_CASE("Philox CPU == GPU bit for bit [gpu]") {
  STEREORT_REQUIRE_GPU();
  for (DType dt : {DType::F32, DType::F64, DType::BF16}) {
    for (uint64_t seed : {uint64_t(0), uint64_t(123456789), uint64_t(0xdeadbeefcafeULL)}) {
      Tensor cu = rand_uniform({1 << 20}, dt, gpu(), seed, -2.0, 3.0, 17).cpu();
      Tensor hu = rand_uniform({1 << 20}, dt, Device::cpu(), seed, -2.0, 3.0, 17);
      Tensor cn = randn({1 << 20}, dt, gpu(), seed, 0.5, 2.0, 5).cpu();
      Tensor hn = randn({1 << 20}, dt, Device::cpu(), seed, 0.5, 2.0, 5);
      CHECK(std::memcmp(cu.data_ptr(), hu.data_ptr(), cu.nbytes()) == 0);
      CHECK(std::memcmp(cn.data_ptr(), hn.data_ptr(), cn.nbytes()) == 0);
    }
  }
}
