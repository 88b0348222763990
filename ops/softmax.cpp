// ops/softmax.cpp — softmax / log_softmax / max / argmax / topk: argument checks, CPU references (double
// accumulation), dispatch to cuda/softmax.cu and the autograd nodes (definitions in ops/softmax.h).
//   CPU references follow the formulas literally: per (outer, inner) column, m = max, s = sum exp(x - m) in double.
//   max/topk backward scatter the gradient to the selected indices with gather_backward_raw (ops/shape_ops.h).
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/shape_ops.h"

namespace stereort {

namespace {

using cuda::SoftmaxDims;

// A 0-d tensor is one row of one element (dim 0 / -1 accepted, as PyTorch).
SoftmaxDims dims_around(const Shape& s, int d) {
  if (s.empty()) return {1, 1, 1};
  SoftmaxDims r{1, s[size_t(d)], 1};
  for (int i = 0; i < d; ++i) r.outer *= s[size_t(i)];
  for (size_t i = size_t(d) + 1; i < s.size(); ++i) r.inner *= s[i];
  return r;
}

void check_input(const char* op, const Tensor& x) {
  STEREORT_CHECK(x.defined(), "{}: input is undefined", op);
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating (f64/f32/f16/bf16); cast with .to()", op,
                 x.desc());
}

// ---- CPU references ------------------------------------------------------------------------------------------------
template <typename T>
void cpu_softmax_forward_typed(T* y, const T* x, SoftmaxDims d, bool log) {
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t i = 0; i < d.inner; ++i) {
      const T* xr = x + o * d.n * d.inner + i;
      T* yr = y + o * d.n * d.inner + i;
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < d.n; ++k) m = std::max(m, double(xr[k * d.inner]));  // NaN reaches s below
      double s = 0;
      for (int64_t k = 0; k < d.n; ++k) s += std::exp(double(xr[k * d.inner]) - m);
      double log_s = std::log(s);
      for (int64_t k = 0; k < d.n; ++k) {
        double v = double(xr[k * d.inner]) - m;
        yr[k * d.inner] = T(log ? v - log_s : std::exp(v) / s);
      }
    }
}

template <typename T>
void cpu_softmax_backward_typed(T* dx, const T* y, const T* g, SoftmaxDims d, bool log) {
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t i = 0; i < d.inner; ++i) {
      int64_t base = o * d.n * d.inner + i;
      double acc = 0;  // softmax: sum g*y; log_softmax: sum g
      for (int64_t k = 0; k < d.n; ++k) {
        int64_t j = base + k * d.inner;
        acc += log ? double(g[j]) : double(g[j]) * double(y[j]);
      }
      for (int64_t k = 0; k < d.n; ++k) {
        int64_t j = base + k * d.inner;
        double yj = y[j], gj = g[j];
        dx[j] = T(log ? gj - std::exp(yj) * acc : yj * (gj - acc));
      }
    }
}

// Run `f(TypeTag<float|double>, tensors...)` on f32/f64 CPU tensors; 16-bit inputs are widened to f32 and the
// results narrowed back into `outs`.
template <typename F>
void cpu_float_call(const char* op, const std::vector<Tensor>& outs, const std::vector<Tensor>& ins, F&& f) {
  DType dt = ins[0].dtype(), wide = cpu_float_dtype(dt);
  std::vector<Tensor> wi, wo;
  for (const Tensor& t : ins) wi.push_back(t.dtype() == wide ? t : t.to(wide));
  for (const Tensor& t : outs) wo.push_back(t.dtype() == wide ? t : Tensor::empty(t.shape(), wide));
  dispatch_float(wide, op, [&](auto tag) { f(tag, wo, wi); });
  for (size_t i = 0; i < outs.size(); ++i)
    if (!wo[i].same(outs[i])) outs[i].copy_(wo[i]);
}

// NaN counts as the largest value; among equals the lower index wins. `largest == false` orders ascending, NaN last.
bool ranks_before(double a, int64_t ia, double b, int64_t ib, bool largest) {
  bool an = std::isnan(a), bn = std::isnan(b);
  if (an || bn) {
    if (an && bn) return ia < ib;
    return largest ? an : bn;
  }
  if (a != b) return largest ? a > b : a < b;
  return ia < ib;
}

void cpu_topk(const Tensor& values, const Tensor& indices, const Tensor& x, SoftmaxDims d, int64_t k, bool largest) {
  int64_t* ip = indices.data<int64_t>();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* vp = values.data<T>();
    std::vector<int64_t> order(size_t(d.n));
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t i = 0; i < d.inner; ++i) {
        const T* xr = xp + o * d.n * d.inner + i;
        std::iota(order.begin(), order.end(), int64_t(0));
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
          return ranks_before(to_d(xr[a * d.inner]), a, to_d(xr[b * d.inner]), b, largest);
        });
        for (int64_t j = 0; j < k; ++j) {
          int64_t out = o * k * d.inner + j * d.inner + i;
          vp[out] = xr[order[size_t(j)] * d.inner];
          ip[out] = order[size_t(j)];
        }
      }
  });
}

Tensor softmax_backward_raw(const Tensor& y, const Tensor& g_in, SoftmaxDims d, bool log) {
  Tensor g = g_in.dtype() == y.dtype() ? g_in.contiguous() : g_in.to(y.dtype()).contiguous();
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
  if (y.numel() == 0) return dx;
  if (y.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::softmax_backward(dx, y, g, d, log, Context::get(y.device())));
  } else {
    cpu_float_call("softmax_backward", {dx}, {y, g}, [&](auto tag, std::vector<Tensor>& o, std::vector<Tensor>& in) {
      using T = typename decltype(tag)::type;
      cpu_softmax_backward_typed<T>(o[0].data<T>(), in[0].data<T>(), in[1].data<T>(), d, log);
    });
  }
  return dx;
}

Tensor softmax_impl(const char* name, const Tensor& x, int64_t dim, bool log) {
  check_input(name, x);
  int d = normalize_dim(dim, std::max(x.dim(), 1), name);
  SoftmaxDims sd = dims_around(x.shape(), d);
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (y.numel() > 0) {
    if (x.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::softmax_forward(y, xc, sd, log, Context::get(x.device())));
    } else {
      cpu_float_call(name, {y}, {xc}, [&](auto tag, std::vector<Tensor>& o, std::vector<Tensor>& in) {
        using T = typename decltype(tag)::type;
        cpu_softmax_forward_typed<T>(o[0].data<T>(), in[0].data<T>(), sd, log);
      });
    }
  }
  if (needs_grad({x})) {
    Tensor yd = y.detach();
    record(name, {x}, {y}, [yd, sd, log](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {softmax_backward_raw(yd, g[0], sd, log)};
    });
  }
  return y;
}

// Values and indices of the max over `d`, shaped (outer, inner) contiguous.
void max_raw(const Tensor& values, const Tensor& indices, const Tensor& xc, SoftmaxDims sd) {
  if (values.numel() == 0) return;
  if (xc.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::max_forward(values, indices, xc, sd, Context::get(xc.device())));
  } else {
    cpu_topk(values, indices, xc, sd, 1, true);  // k = 1: the same ranking rule as topk
  }
}

Shape keepdim_shape(const Shape& s, int d) {
  Shape k = s;
  k[size_t(d)] = 1;
  return k;
}

Shape drop_dim(const Shape& s, int d) {
  Shape k = s;
  k.erase(k.begin() + d);
  return k;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl("softmax", x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl("log_softmax", x, dim, true); }

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  check_input("max", x);
  int d = normalize_dim(dim, std::max(x.dim(), 1), "max");
  STEREORT_CHECK(x.dim() == 0 || x.size(d) > 0, "max: dim {} of {} has size 0; a maximum needs at least one element", d,
                 shape_str(x.shape()));
  SoftmaxDims sd = dims_around(x.shape(), d);
  Shape ks = x.dim() == 0 ? Shape{} : keepdim_shape(x.shape(), d);
  Shape os = x.dim() == 0 || keepdim ? ks : drop_dim(x.shape(), d);
  Tensor values = Tensor::empty(ks, x.dtype(), x.device());
  Tensor indices = Tensor::empty(ks, DType::I64, x.device());
  max_raw(values, indices, x.detach().contiguous(), sd);
  MaxResult r{make_view(values, os, contiguous_strides(os), 0), make_view(indices, os, contiguous_strides(os), 0)};
  if (needs_grad({x})) {
    Tensor id = indices;
    Shape x_shape = x.shape();
    record("max", {x}, {r.values}, [id, ks, d, x_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {gather_backward_raw(g[0].reshape(ks), d, id, x_shape)};
    });
  }
  return r;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return max(x, dim, keepdim).indices;
}

MaxResult topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  check_input("topk", x);
  int d = normalize_dim(dim, std::max(x.dim(), 1), "topk");
  int64_t n = x.dim() == 0 ? 1 : x.size(d);
  STEREORT_CHECK(k >= 0 && k <= n, "topk: k = {} out of range for dim {} of size {} in {}; need 0 <= k <= {}", k, d, n,
                 shape_str(x.shape()), n);
  STEREORT_CHECK(x.dim() > 0 || k == 1, "topk: a 0-d input takes k = 1, got k = {}", k);
  if (x.dim() == 0) return max(x, d);
  SoftmaxDims sd = dims_around(x.shape(), d);
  Shape os = x.shape();
  os[size_t(d)] = k;
  Tensor values = Tensor::empty(os, x.dtype(), x.device());
  Tensor indices = Tensor::empty(os, DType::I64, x.device());
  if (values.numel() > 0) {
    Tensor xc = x.detach().contiguous();
    if (x.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::topk_forward(values, indices, xc, sd, k, largest, Context::get(x.device())));
    } else {
      cpu_topk(values, indices, xc, sd, k, largest);
    }
  }
  if (needs_grad({x})) {
    Tensor id = indices;
    Shape x_shape = x.shape();
    record("topk", {x}, {values}, [id, d, x_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {gather_backward_raw(g[0], d, id, x_shape)};
    });
  }
  return {values, indices};
}

}  // namespace stereort
