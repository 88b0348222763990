// ops/cost_volume.cpp — GwcNet group-wise and concatenation volumes: argument checks, CPU reference kernels
// (double accumulation, loops that follow the formulas in ops/cost_volume.h), device dispatch and autograd.
#include "ops/cost_volume.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"

namespace stereort {
namespace ref {

void cost_volume_gwc_forward(const Tensor& vol, const Tensor& left, const Tensor& right, int64_t groups) {
  const int64_t B = left.size(0), C = left.size(1), H = left.size(2), W = left.size(3), D = vol.size(2);
  const int64_t cg = C / groups;
  const double inv = 1.0 / double(cg);
  dispatch_float(left.dtype(), "cost_volume_gwc", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* L = left.data<T>();   // (B,C,H,W)
    const T* R = right.data<T>();  // (B,C,H,W)
    T* V = vol.data<T>();          // (B,G,D,H,W)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t d = 0; d < D; ++d)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
              double acc = 0;
              if (x >= d)
                for (int64_t c = g * cg; c < (g + 1) * cg; ++c) {
                  int64_t row = ((b * C + c) * H + y) * W;
                  acc += double(L[row + x]) * double(R[row + x - d]);
                }
              V[(((b * groups + g) * D + d) * H + y) * W + x] = T(acc * inv);
            }
  });
}

void cost_volume_gwc_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol, const Tensor& left,
                              const Tensor& right, int64_t groups) {
  const int64_t B = left.size(0), C = left.size(1), H = left.size(2), W = left.size(3), D = dvol.size(2);
  const int64_t cg = C / groups;
  const double inv = 1.0 / double(cg);
  dispatch_float(left.dtype(), "cost_volume_gwc backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* L = left.data<T>();
    const T* R = right.data<T>();
    const T* dV = dvol.data<T>();  // (B,G,D,H,W)
    T* dL = dleft.data<T>();
    T* dR = dright.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            const int64_t g = c / cg, row = ((b * C + c) * H + y) * W;
            double al = 0, ar = 0;
            for (int64_t d = 0; d < D; ++d) {
              const T* dv = dV + (((b * groups + g) * D + d) * H + y) * W;
              if (x - d >= 0) al += double(dv[x]) * double(R[row + x - d]);
              if (x + d < W) ar += double(dv[x + d]) * double(L[row + x + d]);
            }
            dL[row + x] = T(al * inv);
            dR[row + x] = T(ar * inv);
          }
  });
}

void cost_volume_concat_forward(const Tensor& vol, const Tensor& left, const Tensor& right) {
  const int64_t B = left.size(0), C = left.size(1), H = left.size(2), W = left.size(3), D = vol.size(2);
  dispatch_float(left.dtype(), "cost_volume_concat", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* L = left.data<T>();
    const T* R = right.data<T>();
    T* V = vol.data<T>();  // (B,2C,D,H,W)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < 2 * C; ++c)
        for (int64_t d = 0; d < D; ++d)
          for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
              T v = T(0);
              if (x >= d) v = c < C ? L[((b * C + c) * H + y) * W + x] : R[((b * C + c - C) * H + y) * W + x - d];
              V[(((b * 2 * C + c) * D + d) * H + y) * W + x] = v;
            }
  });
}

void cost_volume_concat_backward(const Tensor& dleft, const Tensor& dright, const Tensor& dvol) {
  const int64_t B = dleft.size(0), C = dleft.size(1), H = dleft.size(2), W = dleft.size(3), D = dvol.size(2);
  dispatch_float(dleft.dtype(), "cost_volume_concat backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* dV = dvol.data<T>();
    T* dL = dleft.data<T>();
    T* dR = dright.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W; ++x) {
            double al = 0, ar = 0;
            for (int64_t d = 0; d < D; ++d) {
              if (x - d >= 0) al += double(dV[(((b * 2 * C + c) * D + d) * H + y) * W + x]);
              if (x + d < W) ar += double(dV[(((b * 2 * C + C + c) * D + d) * H + y) * W + x + d]);
            }
            dL[((b * C + c) * H + y) * W + x] = T(al);
            dR[((b * C + c) * H + y) * W + x] = T(ar);
          }
  });
}

}  // namespace ref

namespace {

void check_pair(const char* op, const Tensor& left, const Tensor& right, int64_t max_disp) {
  STEREORT_CHECK(left.defined() && right.defined(), "{}: left and right features must be defined", op);
  STEREORT_CHECK(left.dim() == 4, "{}: features must be 4-D (B,C,H,W), got left {}", op, left.desc());
  STEREORT_CHECK(left.shape() == right.shape(),
                 "{}: left {} and right {} must have the same (B,C,H,W) shape; extract both views with the same "
                 "network", op, shape_str(left.shape()), shape_str(right.shape()));
  STEREORT_CHECK(left.dtype() == right.dtype() && left.device() == right.device(),
                 "{}: left {} and right {} differ in dtype or device; cast with .to()", op, left.desc(), right.desc());
  STEREORT_CHECK(dtype_is_floating(left.dtype()), "{}: features must be floating, got {}", op, left.desc());
  STEREORT_CHECK(max_disp >= 1, "{}: max_disp must be >= 1, got {} (features {})", op, max_disp,
                 shape_str(left.shape()));
}

// Run a raw kernel in the CPU compute dtype: half inputs go through F32 and the results are rounded back.
Tensor cpu_compute(const Tensor& t) { return t.contiguous().to(cpu_float_dtype(t.dtype())); }

}  // namespace

Tensor cost_volume_gwc(const Tensor& left, const Tensor& right, int64_t max_disp, int64_t groups, DType out_dtype) {
  check_pair("cost_volume_gwc", left, right, max_disp);
  const int64_t B = left.size(0), C = left.size(1), H = left.size(2), W = left.size(3);
  STEREORT_CHECK(groups >= 1 && C % groups == 0,
                 "cost_volume_gwc: {} channels of features {} do not split into {} groups; use a group count that "
                 "divides C (StereoMamba: C/8)", C, shape_str(left.shape()), groups);
  STEREORT_CHECK(out_dtype == left.dtype() || out_dtype == DType::F32,
                 "cost_volume_gwc: volume dtype {} must be the feature dtype ({}) or f32", dtype_name(out_dtype),
                 dtype_name(left.dtype()));
  const DType fdt = left.dtype();
  Tensor L = left.detach().contiguous(), R = right.detach().contiguous();
  Tensor vol = Tensor::empty({B, groups, max_disp, H, W}, out_dtype, left.device());
  if (left.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::cost_volume_gwc_forward(vol, L, R, groups, Context::get(left.device())));
  } else {
    Tensor Lc = cpu_compute(L), Rc = cpu_compute(R);
    Tensor v = vol.dtype() == Lc.dtype() ? vol : Tensor::empty(vol.shape(), Lc.dtype());
    ref::cost_volume_gwc_forward(v, Lc, Rc, groups);
    if (!v.same(vol)) vol.copy_(v);
  }
  record("cost_volume_gwc", {left, right}, {vol}, [L, R, groups, fdt](const std::vector<Tensor>& g) {
    Tensor dv = g[0].contiguous();
    Tensor dl = Tensor::empty(L.shape(), fdt, L.device()), dr = Tensor::empty(L.shape(), fdt, L.device());
    if (L.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::cost_volume_gwc_backward(dl, dr, dv, L, R, groups, Context::get(L.device())));
    } else {
      Tensor Lc = cpu_compute(L), Rc = cpu_compute(R), dvc = dv.to(Lc.dtype());
      Tensor dlc = Tensor::empty(L.shape(), Lc.dtype()), drc = Tensor::empty(L.shape(), Lc.dtype());
      ref::cost_volume_gwc_backward(dlc, drc, dvc, Lc, Rc, groups);
      dl.copy_(dlc);
      dr.copy_(drc);
    }
    return std::vector<Tensor>{dl, dr};
  });
  return vol;
}

Tensor cost_volume_gwc(const Tensor& left, const Tensor& right, int64_t max_disp, int64_t groups) {
  STEREORT_CHECK(left.defined(), "cost_volume_gwc: left features must be defined");
  return cost_volume_gwc(left, right, max_disp, groups, left.dtype());
}

Tensor cost_volume_concat(const Tensor& left, const Tensor& right, int64_t max_disp) {
  check_pair("cost_volume_concat", left, right, max_disp);
  const int64_t B = left.size(0), C = left.size(1), H = left.size(2), W = left.size(3);
  Tensor L = left.detach().contiguous(), R = right.detach().contiguous();
  Tensor vol = Tensor::empty({B, 2 * C, max_disp, H, W}, left.dtype(), left.device());
  if (left.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::cost_volume_concat_forward(vol, L, R, Context::get(left.device())));
  } else {
    Tensor Lc = cpu_compute(L), Rc = cpu_compute(R);
    Tensor v = vol.dtype() == Lc.dtype() ? vol : Tensor::empty(vol.shape(), Lc.dtype());
    ref::cost_volume_concat_forward(v, Lc, Rc);
    if (!v.same(vol)) vol.copy_(v);
  }
  Shape fshape = left.shape();
  DType fdt = left.dtype();
  Device dev = left.device();
  record("cost_volume_concat", {left, right}, {vol}, [fshape, fdt, dev](const std::vector<Tensor>& g) {
    Tensor dv = g[0].contiguous();
    Tensor dl = Tensor::empty(fshape, fdt, dev), dr = Tensor::empty(fshape, fdt, dev);
    if (dev.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::cost_volume_concat_backward(dl, dr, dv, Context::get(dev)));
    } else {
      Tensor dvc = cpu_compute(dv);
      Tensor dlc = Tensor::empty(fshape, dvc.dtype()), drc = Tensor::empty(fshape, dvc.dtype());
      ref::cost_volume_concat_backward(dlc, drc, dvc);
      dl.copy_(dlc);
      dr.copy_(drc);
    }
    return std::vector<Tensor>{dl, dr};
  });
  return vol;
}

}  // namespace stereort
