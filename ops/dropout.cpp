// ops/dropout.cpp — dropout / drop_path (definitions in ops/dropout.h): checks, the CPU mask loop, dispatch to
// cuda/dropout.cu, autograd. One Philox block gives the uniforms of 4 consecutive elements (words x, y, z, w), exactly
// the stream philox::uniform(seed, offset, i) defines, so CPU and GPU read identical bits.
#include "ops/dropout.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "core/rng.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"

namespace stereort {

namespace {

void check_args(const char* op, const Tensor& x, double p) {
  STEREORT_CHECK(x.defined(), "{}: input is undefined", op);
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating (f64/f32/f16/bf16)", op, x.desc());
  STEREORT_CHECK(p >= 0.0 && p <= 1.0, "{}: p must be in [0, 1], got {} (input {})", op, p, x.desc());
}

// Kept elements: x * scale in float (double for f64), one rounding, as on the GPU.
template <typename T>
T scaled(T v, double scale) {
  if constexpr (std::is_same<T, double>::value) {
    return v * scale;
  } else {
    volatile float r = float(to_d(v)) * float(scale);  // no contraction: bit-identical with the device
    return from_d<T>(double(r));
  }
}

void cpu_dropout_apply(const Tensor& out, const Tensor& x, uint64_t seed, uint64_t offset, float keep_prob,
                       double scale) {
  int64_t n = x.numel();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same<T, double>::value || std::is_same<T, float>::value || std::is_same<T, Half>::value ||
                  std::is_same<T, BFloat16>::value) {
      const T* xp = x.data<T>();
      T* op = out.data<T>();
      for (int64_t g = 0; g * 4 < n; ++g) {
        philox::U4 r = philox::draw(seed, offset, uint64_t(g));
        uint32_t w[4] = {r.x, r.y, r.z, r.w};
        for (int j = 0; j < 4 && g * 4 + j < n; ++j) {
          int64_t i = g * 4 + j;
          op[i] = philox::u32_to_uniform(w[j]) < keep_prob ? scaled(xp[i], scale) : from_d<T>(0.0);
        }
      }
    }
  });
}

Tensor dropout_raw(const Tensor& x_in, double p, uint64_t seed, uint64_t offset) {
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  float keep_prob = float(1.0 - p);
  double scale = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::dropout_apply(out, x, seed, offset, keep_prob, scale, Context::get(x.device())));
  } else {
    cpu_dropout_apply(out, x, seed, offset, keep_prob, scale);
  }
  return out;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  check_args("dropout", x, p);
  if (!training || p == 0.0) return x;
  Tensor out = dropout_raw(x.detach(), p, seed, offset);
  if (needs_grad({x})) {
    record("dropout", {x}, {out}, [p, seed, offset](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {dropout_raw(g[0], p, seed, offset)};
    });
  }
  return out;
}

Tensor drop_path(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset) {
  check_args("drop_path", x, p);
  if (!training || p == 0.0) return x;
  STEREORT_CHECK(x.dim() >= 1, "drop_path: input {} needs a batch dim (dim 0)", x.desc());
  int64_t batch = x.size(0);
  float keep_prob = float(1.0 - p);
  double value = p < 1.0 ? 1.0 / (1.0 - p) : 0.0;
  if (x.dtype() != DType::F64) value = double(float(value));
  Tensor scale = Tensor::empty({batch}, x.dtype(), x.device());
  if (batch > 0) {
    if (x.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::drop_path_scale(scale, seed, offset, keep_prob, value, Context::get(x.device())));
    } else {
      for (int64_t b = 0; b < batch; ++b)
        store_from_double(scale.data_ptr(), scale.dtype(), b,
                          philox::uniform(seed, offset, uint64_t(b)) < keep_prob ? value : 0.0);
    }
  }
  Shape bs(size_t(x.dim()), 1);
  bs[0] = batch;
  return mul(x, scale.reshape(bs));  // autograd: dx = g * s_b
}

}  // namespace stereort
