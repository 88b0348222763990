// ops/dropout.h — inverted dropout and stochastic depth (drop path) with counter-based (Philox) masks.
//   dropout(x, p, training, seed, offset)    element i of x (row-major index of its logical shape) is kept when
//       u_i < 1 - p, u_i = philox::uniform(seed, offset, i) (core/rng.h: Philox4x32-10 counter (i / 4, offset), key
//       seed, word i % 4, 24-bit uniform in [0, 1)); kept elements are scaled by 1 / (1 - p), dropped ones are 0.
//       Identity (x itself) when !training or p == 0; all zeros when p == 1. Backward: the same mask and scale applied
//       to g (regenerated from (seed, offset), nothing is stored).
//   drop_path(x, p, training, seed, offset)  per-sample stochastic depth (timm DropPath, scale_by_keep): sample b of
//       dim 0 is kept when philox::uniform(seed, offset, b) < 1 - p; out = x * s_b with s_b = 1/(1-p) (kept) or 0,
//       s_b held in x's dtype (as timm's random_tensor). Identity when !training or p == 0. Backward: g * s_b.
//   The mask of a call is a pure function of (seed, offset, index): CPU and CUDA give bit-identical masks and outputs
//   (kept values are one IEEE multiply x * scale in opmath, scale = float(1/(1-p)), or double for f64).
//   Callers advance `offset` (or the seed) between calls so that layers and steps draw independent masks.
//   p must be in [0, 1]. Dtypes f64/f32/f16/bf16 (16-bit compute in float).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace stereort {

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset = 0);
Tensor drop_path(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset = 0);

namespace cuda {
// out, x contiguous, same dtype. keep_prob = float(1 - p); scale = 1/(1-p) (used as float, or double for f64).
void dropout_apply(const Tensor& out, const Tensor& x, uint64_t seed, uint64_t offset, float keep_prob, double scale,
                   const Context& ctx);
// scale (B) contiguous: scale[b] = u_b < keep_prob ? scale : 0, in scale's dtype.
void drop_path_scale(const Tensor& scale, uint64_t seed, uint64_t offset, float keep_prob, double value,
                     const Context& ctx);
}  // namespace cuda

}  // namespace stereort
