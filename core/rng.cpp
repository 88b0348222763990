// core/rng.cpp — host entry points of the Philox streams (see core/rng.h).
#include "core/rng.h"

#include <cmath>
#include <mutex>

namespace stereort {
namespace philox {
float sqrt_rn_host(float a) { return std::sqrt(a); }
}  // namespace philox

static std::mutex g_rng_mu;
static RngState g_rng;
RngState rng_state() {
  std::lock_guard<std::mutex> l(g_rng_mu);
  return g_rng;
}
void rng_set_state(RngState s) {
  std::lock_guard<std::mutex> l(g_rng_mu);
  g_rng = s;
}
uint64_t rng_advance(uint64_t n) {
  std::lock_guard<std::mutex> l(g_rng_mu);
  uint64_t o = g_rng.offset;
  g_rng.offset += n;
  return o;
}

void philox_fill_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) out[i] = philox::uniform(seed, offset, uint64_t(i));
}
void philox_fill_normal(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) out[i] = philox::normal(seed, offset, uint64_t(i));
}

}  // namespace stereort
