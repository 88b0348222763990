// ops/init.cpp — Philox fills on the CPU (and dispatch to cuda/init.cu).
#include "ops/init.h"

#include "core/check.h"
#include "core/context.h"
#include "core/rng.h"
#include "ops/dispatch.h"

namespace stereort {

static double affine(double u, double scale, double shift) {
  volatile double p = u * scale;  // separate roundings, as on the device (__dmul_rn, __dadd_rn)
  return p + shift;
}

static void fill_impl(const Tensor& t, int kind, double a, double b, uint64_t seed, uint64_t offset) {
  STEREORT_CHECK(dtype_is_floating(t.dtype()), "random fill: {} is not floating", t.desc());
  if (t.numel() == 0) return;
  Tensor c = t.is_contiguous() ? t : Tensor::empty(t.shape(), t.dtype(), t.device());
  if (c.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::philox_fill(c, kind, a, b, seed, offset, Context::get(c.device())));
  } else {
    double scale = kind == 0 ? b - a : b, shift = a;
    dispatch_all(c.dtype(), [&](auto tag) {
      using T = typename decltype(tag)::type;
      T* p = c.data<T>();
      for (int64_t i = 0; i < c.numel(); ++i) {
        float u = kind == 0 ? philox::uniform(seed, offset, uint64_t(i)) : philox::normal(seed, offset, uint64_t(i));
        p[i] = from_d<T>(affine(double(u), scale, shift));
      }
    });
  }
  if (!c.same(t)) t.copy_(c);
}

void uniform_(const Tensor& t, double lo, double hi, uint64_t seed, uint64_t offset) {
  fill_impl(t, 0, lo, hi, seed, offset);
}
void normal_(const Tensor& t, double mean, double std, uint64_t seed, uint64_t offset) {
  fill_impl(t, 1, mean, std, seed, offset);
}

Tensor rand_uniform(const Shape& shape, DType dtype, Device device, uint64_t seed, double lo, double hi,
                    uint64_t offset) {
  Tensor t = Tensor::empty(shape, dtype, device);
  uniform_(t, lo, hi, seed, offset);
  return t;
}

Tensor randn(const Shape& shape, DType dtype, Device device, uint64_t seed, double mean, double std, uint64_t offset) {
  Tensor t = Tensor::empty(shape, dtype, device);
  normal_(t, mean, std, seed, offset);
  return t;
}

}  // namespace stereort
