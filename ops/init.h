// ops/init.h — random and constant initialisation from the Philox stream (core/rng.h).
//   For the same (seed, offset) a CPU tensor and a CUDA tensor receive identical bits (F32/F64; 16-bit types round
//   the same float). Element i of a contiguous fill draws counter i (see core/rng.h); the transform
//   lo + (hi - lo) * u (uniform) or mean + std * z (normal) is done in double with explicit rounding on both sides.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor rand_uniform(const Shape& shape, DType dtype, Device device, uint64_t seed, double lo = 0.0, double hi = 1.0,
                    uint64_t offset = 0);
Tensor randn(const Shape& shape, DType dtype, Device device, uint64_t seed, double mean = 0.0, double std = 1.0,
             uint64_t offset = 0);
void uniform_(const Tensor& t, double lo, double hi, uint64_t seed, uint64_t offset = 0);
void normal_(const Tensor& t, double mean, double std, uint64_t seed, uint64_t offset = 0);

namespace cuda {
// t contiguous; kind 0 = uniform (a = lo, b = hi), 1 = normal (a = mean, b = std).
void philox_fill(const Tensor& t, int kind, double a, double b, uint64_t seed, uint64_t offset, const Context& ctx);
}  // namespace cuda

}  // namespace stereort
