// ops/copy.cpp — copy_into / fill_into (CPU loops; CUDA via cuda/copy.cu) and the differentiable copy_to.
#include "ops/copy.h"

#include <cstring>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/iter.h"

namespace stereort {

static void cpu_copy(const Tensor& dst, const Tensor& src) {
  // src has dst's shape (possibly stride-0 dims).
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    std::memcpy(dst.data_ptr(), src.data_ptr(), dst.nbytes());
    return;
  }
  IterDims it = coalesce_dims(dst.shape(), {dst.strides(), src.strides()});
  dispatch_all(dst.dtype(), [&](auto dtag) {
    using D = typename decltype(dtag)::type;
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = typename decltype(stag)::type;
      D* d = dst.data<D>();
      const S* s = src.data<S>();
      // Walk dst's index space once, keeping both offsets incrementally.
      int nd = int(it.sizes.size());
      std::vector<int64_t> idx(nd, 0);
      int64_t od = 0, os = 0, n = shape_numel(it.sizes);
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (std::is_same<D, S>::value) d[od] = s[os];
        else d[od] = from_d<D>(to_d(s[os]));
        for (int k = nd - 1; k >= 0; --k) {
          if (++idx[k] < it.sizes[k]) { od += it.strides[0][k]; os += it.strides[1][k]; break; }
          od -= it.strides[0][k] * (it.sizes[k] - 1);
          os -= it.strides[1][k] * (it.sizes[k] - 1);
          idx[k] = 0;
        }
      }
    });
  });
}

void copy_into(const Tensor& dst, const Tensor& src) {
  STEREORT_CHECK(dst.defined() && src.defined(), "copy_: undefined tensor");
  Shape bshape = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  STEREORT_CHECK(bshape == dst.shape(), "copy_: source {} does not broadcast to destination {}", shape_str(src.shape()),
                 shape_str(dst.shape()));
  if (dst.numel() == 0) return;
  Tensor s = make_view(src, dst.shape(), broadcast_strides(src.shape(), src.strides(), dst.shape()), src.offset());
  Device dd = dst.device(), sd = src.device();
  if (dd.is_cpu() && sd.is_cpu()) return cpu_copy(dst, s);
  if (dd == sd) {
    STEREORT_CUDA_PATH(cuda::copy_strided(dst, s, Context::get(dd)));
    return;
  }
  if (sd.is_cuda() && dd.is_cpu()) {
    // Cast/expand on the GPU into a contiguous staging tensor of dst's dtype, then one D2H transfer.
    Tensor stage = Tensor::empty(dst.shape(), dst.dtype(), sd);
    copy_into(stage, s);
    if (dst.is_contiguous()) {
      STEREORT_CUDA_PATH(cuda::memcpy_d2h(dst.data_ptr(), stage.data_ptr(), dst.nbytes(), Context::get(sd)));
    } else {
      Tensor host = Tensor::empty(dst.shape(), dst.dtype());
      STEREORT_CUDA_PATH(cuda::memcpy_d2h(host.data_ptr(), stage.data_ptr(), dst.nbytes(), Context::get(sd)));
      cpu_copy(dst, host);
    }
    return;
  }
  if (sd.is_cpu() && dd.is_cuda()) {
    Tensor host = s;
    if (!(s.is_contiguous() && s.dtype() == dst.dtype())) {
      host = Tensor::empty(dst.shape(), dst.dtype());
      cpu_copy(host, s);
    }
    if (dst.is_contiguous()) {
      STEREORT_CUDA_PATH(cuda::memcpy_h2d(dst.data_ptr(), host.data_ptr(), dst.nbytes(), Context::get(dd)));
    } else {
      Tensor stage = Tensor::empty(dst.shape(), dst.dtype(), dd);
      STEREORT_CUDA_PATH(cuda::memcpy_h2d(stage.data_ptr(), host.data_ptr(), dst.nbytes(), Context::get(dd)));
      copy_into(dst, stage);
    }
    return;
  }
  // CUDA -> another CUDA device: through the host (rare; multi-GPU is not a target).
  copy_into(dst, src.cpu());
}

void fill_into(const Tensor& dst, double value) {
  if (dst.numel() == 0) return;
  if (dst.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::fill(dst, value, Context::get(dst.device())));
    return;
  }
  IterDims it = coalesce_dims(dst.shape(), {dst.strides()});
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T v = from_d<T>(value);
    T* d = dst.data<T>();
    for_each_offset(it.sizes, it.strides[0], [&](int64_t, int64_t off) { d[off] = v; });
  });
}

Tensor copy_to(const Tensor& src, DType dtype, Device device) {
  Tensor out = Tensor::empty(src.shape(), dtype, device);
  copy_into(out, src);
  if (dtype_is_floating(dtype) && dtype_is_floating(src.dtype())) {
    DType sdt = src.dtype();
    Device sdev = src.device();
    record("copy", {src}, {out}, [sdt, sdev](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor gi = Tensor::empty(g[0].shape(), sdt, sdev);
      copy_into(gi, g[0]);
      return {gi};
    });
  }
  return out;
}

}  // namespace stereort
