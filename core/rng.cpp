// core/rng.cpp — host entry points of the Philox streams (see core/rng.h).
#include "core/rng.h"

#include <cmath>

namespace stereort {
namespace philox {
float sqrt_rn_host(float a) { return std::sqrt(a); }
}  // namespace philox

void philox_fill_uniform(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) out[i] = philox::uniform(seed, offset, uint64_t(i));
}
void philox_fill_normal(float* out, int64_t n, uint64_t seed, uint64_t offset) {
  for (int64_t i = 0; i < n; ++i) out[i] = philox::normal(seed, offset, uint64_t(i));
}

}  // namespace stereort
