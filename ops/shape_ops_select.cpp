// ops/shape_ops_select.cpp — index_select, gather, where, clamp, masked_mean and the raw helpers
// gather_backward_raw / where_raw (definitions in ops/shape_ops.h; cat/split/chunk/pad/flip are in shape_ops.cpp).
//   index_select and gather share one "gather along dim" pass: both view x and the index at the output shape S
//   (x with stride 0 at dim, the index with its own strides — for index_select a 1-D index broadcast over S), so
//   out[i] = x[x_off(i) + index[idx_off(i)] * x.stride(dim)]. Their backward is the matching scatter-add.
#include <array>
#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/iter.h"
#include "ops/loss.h"
#include "ops/reduce.h"
#include "ops/shape_ops.h"

namespace stereort {

namespace {

// Row-major walk over `sizes` with N stride sets; f(linear_index, offsets).
template <size_t N, typename F>
void cpu_strided_loop(const Shape& sizes, const std::array<Shape, N>& strides, F&& f) {
  int64_t n = shape_numel(sizes);
  if (n == 0) return;
  IterDims it = coalesce_dims(sizes, std::vector<Shape>(strides.begin(), strides.end()));
  int nd = int(it.sizes.size());
  std::vector<int64_t> idx(size_t(nd), 0);
  std::array<int64_t, N> off{};
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (int d = nd - 1; d >= 0; --d) {
      size_t u = size_t(d);
      if (++idx[u] < it.sizes[u]) {
        for (size_t t = 0; t < N; ++t) off[t] += it.strides[t][u];
        break;
      }
      for (size_t t = 0; t < N; ++t) off[t] -= it.strides[t][u] * (it.sizes[u] - 1);
      idx[u] = 0;
    }
  }
}

template <typename F>
void dispatch_index(DType t, const char* op, F&& f) {
  if (t == DType::I64) return f(TypeTag<int64_t>{});
  if (t == DType::I32) return f(TypeTag<int32_t>{});
  STEREORT_FAIL("{}: index must be I64 or I32, got {}", op, dtype_name(t));
}

Shape zero_stride_at(const Tensor& x, const Shape& s, int d) {
  Shape st(s.size(), 0);
  for (size_t k = 0; k < s.size(); ++k)
    if (int(k) != d) st[k] = x.strides()[k];
  return st;
}

// Throws when any index (a view at S) is outside [0, n).
void cpu_check_index(const char* op, const Tensor& index_s, int d, int64_t n, const Tensor& x, const Tensor& index) {
  dispatch_index(index_s.dtype(), op, [&](auto itag) {
    using I = typename decltype(itag)::type;
    const I* ip = index_s.data<I>();
    cpu_strided_loop<1>(index_s.shape(), {index_s.strides()}, [&](int64_t, const std::array<int64_t, 1>& o) {
      int64_t k = int64_t(ip[o[0]]);
      STEREORT_CHECK(k >= 0 && k < n, "{}: index {} out of range for dim {} of size {} (input {}, index {})", op, k, d,
                     n, shape_str(x.shape()), shape_str(index.shape()));
    });
  });
}

[[maybe_unused]] void throw_if_flagged(int flagged, const char* op, int d, int64_t n, const Shape& xs,
                                       const Tensor& index) {
  STEREORT_CHECK(!flagged, "{}: an index is out of range for dim {} of size {} (input {}, index {}) [CUDA check]", op,
                 d, n, shape_str(xs), shape_str(index.shape()));
}

// out (S) = x gathered along d by index_s (a view at S).
Tensor gather_along(const char* op, const Tensor& x, int d, const Tensor& index_s, const Tensor& index) {
  const Shape& S = index_s.shape();
  Tensor out = Tensor::empty(S, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  int64_t n = x.dim() == 0 ? 1 : x.size(d), xst = x.dim() == 0 ? 0 : x.stride(d);
  Tensor x_s = make_view(x, S, zero_stride_at(x, S, d), x.offset());
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH({
      const Context& ctx = Context::get(x.device());
      int* flag = sync_check_enabled() ? cuda::alloc_error_flag(ctx) : nullptr;
      cuda::index_gather(out, x_s, index_s, xst, n, flag, ctx);
      if (flag) throw_if_flagged(cuda::read_and_free_error_flag(flag, ctx), op, d, n, x.shape(), index);
    });
    return out;
  }
  cpu_check_index(op, index_s, d, n, x, index);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* op_ = out.data<T>();
    dispatch_index(index_s.dtype(), op, [&](auto itag) {
      using I = typename decltype(itag)::type;
      const I* ip = index_s.data<I>();
      cpu_strided_loop<2>(S, {x_s.strides(), index_s.strides()}, [&](int64_t i, const std::array<int64_t, 2>& o) {
        op_[i] = xp[o[0] + int64_t(ip[o[1]]) * xst];
      });
    });
  });
  return out;
}

// Index viewed at the output shape of index_select: its values run along d, broadcast elsewhere.
Tensor index_at(const Tensor& index1d, const Shape& S, int d) {
  Shape st(S.size(), 0);
  st[size_t(d)] = index1d.dim() == 0 ? 0 : index1d.stride(0);
  return make_view(index1d, S, st, index1d.offset());
}

}  // namespace

Tensor gather_backward_raw(const Tensor& g_in, int64_t dim, const Tensor& index, const Shape& shape) {
  int d = normalize_dim(dim, int64_t(shape.size()), "gather_backward");
  STEREORT_CHECK(index.shape() == g_in.shape(), "gather_backward: index {} must have the gradient's shape {}",
                 shape_str(index.shape()), shape_str(g_in.shape()));
  const Shape& S = g_in.shape();
  bool scalar = shape.empty();  // a 0-d target: one element, index must be 0
  int64_t n = scalar ? 1 : shape[size_t(d)];
  Shape acc_strides = contiguous_strides(shape);
  int64_t ast = scalar ? 0 : acc_strides[size_t(d)];
  Shape acc_s_strides(S.size(), 0);
  for (size_t k = 0; k < S.size(); ++k)
    if (int(k) != d) acc_s_strides[k] = acc_strides[k];
  if (g_in.is_cuda()) {
    DType acc_dt = g_in.dtype() == DType::F64 ? DType::F64 : DType::F32;
    Tensor acc = Tensor::zeros(shape, acc_dt, g_in.device());
    if (g_in.numel() == 0) return acc.to(g_in.dtype());
    Tensor g = g_in.contiguous();
    Tensor acc_s = make_view(acc, S, acc_s_strides, 0);
    STEREORT_CUDA_PATH({
      const Context& ctx = Context::get(g.device());
      int* flag = sync_check_enabled() ? cuda::alloc_error_flag(ctx) : nullptr;
      cuda::index_scatter_add(acc, g, acc_s, index, ast, n, flag, ctx);
      if (flag) throw_if_flagged(cuda::read_and_free_error_flag(flag, ctx), "gather_backward", d, n, shape, index);
    });
    return acc.to(g_in.dtype());
  }
  // CPU: accumulate in double, then round once to g's dtype.
  Tensor acc = Tensor::zeros(shape, DType::F64);
  cpu_check_index("gather_backward", index, d, n, acc, index);
  double* ap = acc.data<double>();
  dispatch_all(g_in.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = g_in.data<T>();
    dispatch_index(index.dtype(), "gather_backward", [&](auto itag) {
      using I = typename decltype(itag)::type;
      const I* ip = index.data<I>();
      cpu_strided_loop<3>(
          S, {acc_s_strides, g_in.strides(), index.strides()},
          [&](int64_t, const std::array<int64_t, 3>& o) { ap[o[0] + int64_t(ip[o[2]]) * ast] += to_d(gp[o[1]]); });
    });
  });
  return acc.to(g_in.dtype());
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  STEREORT_CHECK(x.defined() && index.defined(), "index_select: undefined input or index");
  STEREORT_CHECK(x.dim() > 0, "index_select: input {} is a scalar; it needs at least one dim", x.desc());
  int d = normalize_dim(dim, x.dim(), "index_select");
  STEREORT_CHECK(index.dim() <= 1, "index_select: index {} must be 1-D (input {})", shape_str(index.shape()),
                 shape_str(x.shape()));
  STEREORT_CHECK(index.device() == x.device(), "index_select: index on {} but input on {}; move it with .to()",
                 index.device().str(), x.device().str());
  STEREORT_CHECK(index.dtype() == DType::I64 || index.dtype() == DType::I32,
                 "index_select: index must be I64 or I32, got {}", index.desc());
  Shape S = x.shape();
  S[size_t(d)] = index.numel();
  Tensor idx_s = index_at(index, S, d);
  Tensor out = gather_along("index_select", x.detach(), d, idx_s, index);
  if (needs_grad({x})) {
    Tensor id = index.detach();
    Shape xs = x.shape();
    record("index_select", {x}, {out}, [id, xs, S, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {gather_backward_raw(g[0], d, index_at(id, S, d), xs)};
    });
  }
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  STEREORT_CHECK(x.defined() && index.defined(), "gather: undefined input or index");
  int nd = std::max(x.dim(), 1);
  int d = normalize_dim(dim, nd, "gather");
  STEREORT_CHECK(index.dim() == x.dim(), "gather: index {} must have the same number of dims as the input {}",
                 shape_str(index.shape()), shape_str(x.shape()));
  for (int k = 0; k < x.dim(); ++k)
    STEREORT_CHECK(k == d || index.size(k) <= x.size(k),
                   "gather: index {} is larger than input {} at dim {} (only dim {} may differ in size)",
                   shape_str(index.shape()), shape_str(x.shape()), k, d);
  STEREORT_CHECK(index.device() == x.device(), "gather: index on {} but input on {}; move it with .to()",
                 index.device().str(), x.device().str());
  STEREORT_CHECK(index.dtype() == DType::I64 || index.dtype() == DType::I32, "gather: index must be I64 or I32, got {}",
                 index.desc());
  Tensor out = gather_along("gather", x.detach(), d, index, index);
  if (needs_grad({x})) {
    Tensor id = index.detach();
    Shape xs = x.shape();
    record("gather", {x}, {out}, [id, xs, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      return {gather_backward_raw(g[0], d, id, xs)};
    });
  }
  return out;
}

// ---- where ----------------------------------------------------------------------------------------------------------
Tensor where_raw(const Tensor& cond, const Tensor& a, const Tensor& b) {
  STEREORT_CHECK(cond.defined() && a.defined() && b.defined(), "where: undefined argument");
  STEREORT_CHECK(a.dtype() == b.dtype(), "where: a {} and b {} differ in dtype; cast one with .to()", a.desc(),
                 b.desc());
  STEREORT_CHECK(a.device() == b.device() && cond.device() == a.device(),
                 "where: cond {}, a {}, b {} must be on one device", cond.desc(), a.desc(), b.desc());
  Shape S = broadcast_shapes(cond.shape(), broadcast_shapes(a.shape(), b.shape(), "where"), "where");
  Tensor out = Tensor::empty(S, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  auto at_s = [&](const Tensor& t) {
    return make_view(t, S, broadcast_strides(t.shape(), t.strides(), S), t.offset());
  };
  if (a.is_cuda()) {
    // The kernel reads u8/bool, f32 or f64 conditions; other dtypes convert (non-zero stays non-zero).
    Tensor c = cond;
    if (dtype_is_half(c.dtype())) c = c.to(DType::F32);
    if (c.dtype() == DType::I64 || c.dtype() == DType::I32) c = c.to(DType::F64);
    STEREORT_CUDA_PATH(cuda::where(out, at_s(c), at_s(a), at_s(b), Context::get(a.device())));
    return out;
  }
  Tensor cs = at_s(cond), as = at_s(a), bs = at_s(b);
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* ap = as.data<T>();
    const T* bp = bs.data<T>();
    T* op = out.data<T>();
    dispatch_all(cond.dtype(), [&](auto ctag) {
      using C = typename decltype(ctag)::type;
      const C* cp = cs.data<C>();
      cpu_strided_loop<3>(
          S, {cs.strides(), as.strides(), bs.strides()},
          [&](int64_t i, const std::array<int64_t, 3>& o) { op[i] = to_d(cp[o[0]]) != 0.0 ? ap[o[1]] : bp[o[2]]; });
    });
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = where_raw(cond, a.detach(), b.detach());
  if (needs_grad({a, b})) {
    Tensor cd = cond.detach();
    Shape sa = a.shape(), sb = b.shape();
    record("where", {a, b}, {out}, [cd, sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      Tensor zero = Tensor::zeros({}, g[0].dtype(), g[0].device());
      return {sum_to_shape(where_raw(cd, g[0], zero), sa), sum_to_shape(where_raw(cd, zero, g[0]), sb)};
    });
  }
  return out;
}

// ---- clamp ----------------------------------------------------------------------------------------------------------
namespace {

Tensor clamp_raw(const Tensor& x, double lo, double hi, const Tensor& g) {
  // g undefined: forward, out = min(max(x, lo), hi). g defined: backward, out = g * (lo <= x <= hi).
  Tensor xc = x.contiguous();
  Tensor gc = g.defined() ? g.to(x.dtype()).contiguous() : Tensor();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH({
      if (g.defined())
        cuda::clamp_backward(out, gc, xc, lo, hi, Context::get(x.device()));
      else
        cuda::clamp_forward(out, xc, lo, hi, Context::get(x.device()));
    });
    return out;
  }
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = xc.data<T>();
    T* op = out.data<T>();
    const T* gp = gc.defined() ? gc.data<T>() : nullptr;
    for (int64_t i = 0, n = out.numel(); i < n; ++i) {
      double v = to_d(xp[i]);
      if (gp) {
        op[i] = (v >= lo && v <= hi) ? gp[i] : from_d<T>(0.0);
      } else {
        double r = v < lo ? lo : v;  // comparisons are false for NaN: NaN passes through
        r = r > hi ? hi : r;
        op[i] = r == v ? xp[i] : from_d<T>(r);
      }
    }
  });
  return out;
}

}  // namespace

Tensor clamp(const Tensor& x, double lo, double hi) {
  STEREORT_CHECK(x.defined() && dtype_is_floating(x.dtype()), "clamp: input {} must be floating",
                 x.defined() ? x.desc() : std::string("undefined"));
  STEREORT_CHECK(!std::isnan(lo) && !std::isnan(hi), "clamp: bounds must not be NaN (lo {}, hi {}) for {}", lo, hi,
                 x.desc());
  Tensor out = clamp_raw(x.detach(), lo, hi, Tensor());
  if (needs_grad({x})) {
    Tensor xd = x.detach();
    record("clamp", {x}, {out},
           [xd, lo, hi](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {clamp_raw(xd, lo, hi, g[0])}; });
  }
  return out;
}

// ---- masked_mean ---------------------------------------------------------------------------------------------------
Tensor masked_mean(const Tensor& x, const Tensor& mask) {
  STEREORT_CHECK(mask.defined(), "masked_mean: mask is undefined (input {}); use mean() for an unmasked mean",
                 x.defined() ? x.desc() : std::string("undefined"));
  return masked_loss("masked_mean", LossKind::MaskedMean, x, Tensor(), mask, 0.0);
}

}  // namespace stereort
