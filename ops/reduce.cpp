// ops/reduce.cpp — sum/mean: permute reduced dims last, contiguous, then a row reduction (CPU loop or CUDA).
#include "ops/reduce.h"

#include <numeric>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/elementwise.h"

namespace stereort {

Tensor reduce_rows_raw(const Tensor& x, double scale) {
  int64_t rows = x.size(0), cols = x.size(1);
  Tensor out = Tensor::empty({rows}, x.dtype(), x.device());
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::sum_rows(out, x, scale, Context::get(x.device())));
    return out;
  }
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = x.data<T>();
    T* o = out.data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      double acc = 0;
      for (int64_t c = 0; c < cols; ++c) acc += to_d(p[r * cols + c]);
      o[r] = from_d<T>(acc * scale);
    }
  });
  return out;
}

static Tensor reduce_impl(const char* name, const Tensor& x, const std::vector<int>& dims_in, bool keepdim,
                          bool is_mean) {
  int nd = x.dim();
  std::vector<bool> red(size_t(nd), dims_in.empty());
  for (int d : dims_in) red[size_t(normalize_dim(d, nd, name))] = true;
  std::vector<int> perm;
  Shape out_shape, keep_shape;
  int64_t rows = 1, cols = 1;
  for (int d = 0; d < nd; ++d)
    if (!red[size_t(d)]) {
      perm.push_back(d);
      rows *= x.shape()[size_t(d)];
      out_shape.push_back(x.shape()[size_t(d)]);
      keep_shape.push_back(x.shape()[size_t(d)]);
    } else {
      keep_shape.push_back(1);
    }
  for (int d = 0; d < nd; ++d)
    if (red[size_t(d)]) {
      perm.push_back(d);
      cols *= x.shape()[size_t(d)];
    }
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating", name, x.desc());
  double scale = is_mean ? 1.0 / double(std::max<int64_t>(cols, 1)) : 1.0;
  Tensor out;
  {
    Shape ps, pst;
    for (int d : perm) {
      ps.push_back(x.shape()[size_t(d)]);
      pst.push_back(x.strides()[size_t(d)]);
    }
    Tensor xt = make_view(x, ps, pst, x.offset());
    if (!xt.is_contiguous()) {
      xt = Tensor::empty(ps, x.dtype(), x.device());
      xt.copy_(make_view(x, ps, pst, x.offset()));
    }
    if (cols == 0) {
      out = Tensor::zeros({rows}, x.dtype(), x.device());
    } else {
      out = reduce_rows_raw(make_view(xt, {rows, cols}, {cols, 1}, xt.offset()), scale);
    }
  }
  out = make_view(out, keepdim ? keep_shape : out_shape, contiguous_strides(keepdim ? keep_shape : out_shape), 0);
  Shape in_shape = x.shape();
  record(name, {x}, {out}, [in_shape, keep_shape, scale](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor gk = g[0].reshape(keep_shape).expand(in_shape);
    return {scale == 1.0 ? gk : mul(gk, scale)};
  });
  return out;
}

Tensor sum(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return reduce_impl("sum", x, dims, keepdim, false);
}
Tensor mean(const Tensor& x, const std::vector<int>& dims, bool keepdim) {
  return reduce_impl("mean", x, dims, keepdim, true);
}

Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  int lead = g.dim() - int(shape.size());
  STEREORT_CHECK(lead >= 0, "sum_to_shape: gradient {} has fewer dims than target {}", shape_str(g.shape()),
                 shape_str(shape));
  std::vector<int> dims;
  for (int d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[size_t(d - lead)] == 1 && g.shape()[size_t(d)] != 1)) dims.push_back(d);
  Tensor s = dims.empty() ? g : sum(g, dims, true);
  return s.reshape(shape);
}

}  // namespace stereort
