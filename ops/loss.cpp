// ops/loss.cpp — masked losses (definitions in ops/loss.h): argument checks, mask normalisation, the CPU reference
// (double accumulation, int64 count), dispatch to cuda/loss.cu and the autograd node.
//   The mask is brought to pred's shape as a contiguous tensor of a dtype the kernels read: U8/Bool as is, F32/F64
//   as is, F16/BF16 -> F32, I32/I64 -> F64 (every conversion keeps "non-zero" non-zero).
#include "ops/loss.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"
#include "ops/iter.h"

namespace stereort {

namespace {

Tensor normalize_mask(const char* op, const Tensor& mask, const Tensor& pred) {
  if (!mask.defined()) return Tensor();
  STEREORT_CHECK(mask.device() == pred.device(), "{}: mask on {} but pred on {}; move it with .to()", op,
                 mask.device().str(), pred.device().str());
  Shape b = broadcast_shapes(mask.shape(), pred.shape(), op);
  STEREORT_CHECK(b == pred.shape(), "{}: mask {} does not broadcast to pred {}", op, shape_str(mask.shape()),
                 shape_str(pred.shape()));
  DType dt = mask.dtype();
  DType want = dt;  // U8/Bool, F32, F64 as they are
  if (dtype_is_half(dt)) want = DType::F32;
  if (dt == DType::I64 || dt == DType::I32) want = DType::F64;
  Tensor m = mask.detach().to(want);
  Tensor mv = make_view(m, pred.shape(), broadcast_strides(m.shape(), m.strides(), pred.shape()), m.offset());
  if (mv.is_contiguous()) return mv;
  Tensor c = Tensor::empty(pred.shape(), want, pred.device());
  c.copy_(mv);
  return c;
}

// mask element i != 0 (or true when there is no mask).
bool cpu_valid(const Tensor& mask, int64_t i) {
  if (!mask.defined()) return true;
  return load_as_double(mask.data_ptr(), mask.dtype(), i) != 0.0;
}

void cpu_forward(const Tensor& value, const Tensor& count, LossKind kind, const Tensor& pred, const Tensor& target,
                 const Tensor& mask, double beta) {
  double acc = 0;
  int64_t cnt = 0;
  dispatch_all(pred.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pp = pred.data<T>();
    const T* tp = target.defined() ? target.data<T>() : nullptr;
    for (int64_t i = 0, n = pred.numel(); i < n; ++i) {
      if (!cpu_valid(mask, i)) continue;
      double d = tp ? to_d(pp[i]) - to_d(tp[i]) : to_d(pp[i]);
      acc += loss_value<double>(kind, d, beta);
      ++cnt;
    }
  });
  store_from_double(value.data_ptr(), value.dtype(), 0, cnt > 0 ? acc / double(cnt) : 0.0);
  count.data<int64_t>()[0] = cnt;
}

void cpu_backward(const Tensor& dpred, LossKind kind, double g, const Tensor& pred, const Tensor& target,
                  const Tensor& mask, int64_t count, double beta) {
  double scale = g / double(count > 0 ? count : 1);
  dispatch_all(pred.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pp = pred.data<T>();
    const T* tp = target.defined() ? target.data<T>() : nullptr;
    T* dp = dpred.data<T>();
    for (int64_t i = 0, n = pred.numel(); i < n; ++i) {
      double d = tp ? to_d(pp[i]) - to_d(tp[i]) : to_d(pp[i]);
      dp[i] = from_d<T>(cpu_valid(mask, i) ? scale * loss_grad<double>(kind, d, beta) : 0.0);
    }
  });
}

Tensor backward_raw(LossKind kind, const Tensor& g_in, const Tensor& pred, const Tensor& target, const Tensor& mask,
                    const Tensor& count, double beta) {
  Tensor dpred = Tensor::empty(pred.shape(), pred.dtype(), pred.device());
  if (pred.numel() == 0) return dpred;
  Tensor g = g_in.to(pred.dtype()).contiguous();
  if (pred.is_cuda()) {
    STEREORT_CUDA_PATH(
        cuda::masked_loss_backward(dpred, kind, g, pred, target, mask, count, beta, Context::get(pred.device())));
  } else {
    cpu_backward(dpred, kind, g.item(), pred, target, mask, count.data<int64_t>()[0], beta);
  }
  return dpred;
}

}  // namespace

Tensor masked_loss(const char* op, LossKind kind, const Tensor& pred, const Tensor& target, const Tensor& mask,
                   double beta) {
  STEREORT_CHECK(pred.defined(), "{}: pred is undefined", op);
  STEREORT_CHECK(dtype_is_floating(pred.dtype()), "{}: pred {} must be floating (f64/f32/f16/bf16)", op, pred.desc());
  if (kind != LossKind::MaskedMean) {
    STEREORT_CHECK(target.defined(), "{}: target is undefined (pred {})", op, pred.desc());
    STEREORT_CHECK(target.shape() == pred.shape(), "{}: target {} must have pred's shape {}", op,
                   shape_str(target.shape()), shape_str(pred.shape()));
    STEREORT_CHECK(target.dtype() == pred.dtype() && target.device() == pred.device(),
                   "{}: target {} and pred {} need one dtype and device; cast with .to()", op, target.desc(),
                   pred.desc());
  }
  STEREORT_CHECK(beta >= 0.0, "{}: beta must be >= 0, got {} (pred {})", op, beta, pred.desc());
  Tensor pc = pred.detach().contiguous();
  Tensor tc = target.defined() ? target.detach().contiguous() : Tensor();
  Tensor mc = normalize_mask(op, mask, pred);
  Tensor value = Tensor::empty({}, pred.dtype(), pred.device());
  Tensor count = Tensor::empty({}, DType::I64, pred.device());
  if (pred.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::masked_loss_forward(value, count, kind, pc, tc, mc, beta, Context::get(pred.device())));
  } else {
    cpu_forward(value, count, kind, pc, tc, mc, beta);
  }
  if (needs_grad({pred, target})) {
    bool want_t = target.defined() && target.requires_grad();
    record(op, {pred, target}, {value},
           [kind, pc, tc, mc, count, beta, want_t](const std::vector<Tensor>& g) -> std::vector<Tensor> {
             Tensor dp = backward_raw(kind, g[0], pc, tc, mc, count, beta);
             return {dp, want_t ? neg(dp) : Tensor()};
           });
  }
  return value;
}

Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, const Tensor& mask, double beta) {
  return masked_loss("smooth_l1_loss", LossKind::SmoothL1, pred, target, mask, beta);
}
Tensor l1_loss(const Tensor& pred, const Tensor& target, const Tensor& mask) {
  return masked_loss("l1_loss", LossKind::L1, pred, target, mask, 0.0);
}
Tensor mse_loss(const Tensor& pred, const Tensor& target, const Tensor& mask) {
  return masked_loss("mse_loss", LossKind::Mse, pred, target, mask, 0.0);
}

}  // namespace stereort
