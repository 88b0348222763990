// ops/view.cpp — view ops and their backward (see ops/view.h).
#include "ops/view.h"

#include <numeric>

#include "core/autograd.h"
#include "core/check.h"
#include "ops/reduce.h"

namespace stereort {

Shape infer_shape(const Shape& shape, int64_t numel, const char* op, const Shape& from) {
  Shape out = shape;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      STEREORT_CHECK(infer < 0, "{}: more than one -1 in target shape {}", op, shape_str(shape));
      infer = int(i);
    } else {
      STEREORT_CHECK(shape[i] >= 0, "{}: negative size in target shape {}", op, shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    STEREORT_CHECK(known > 0 && numel % known == 0, "{}: cannot infer -1 in {} from {} ({} elements)", op,
                   shape_str(shape), shape_str(from), numel);
    out[size_t(infer)] = numel / known;
  }
  STEREORT_CHECK(shape_numel(out) == numel, "{}: shape {} ({} elements) is incompatible with {} ({} elements)", op,
                 shape_str(out), shape_numel(out), shape_str(from), numel);
  return out;
}

bool view_strides(const Shape& os, const Shape& ost, const Shape& ns, Shape* out) {
  // PyTorch's computeStride: walk old dims in chunks of contiguous memory, match new dims to each chunk.
  out->assign(ns.size(), 0);
  if (shape_numel(os) <= 1) {  // empty or a single element: any shape of that size is a view
    *out = contiguous_strides(ns);
    return true;
  }
  int64_t view_d = int64_t(ns.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(os.size()) - 1; td >= 0; --td) {
    tensor_numel *= os[size_t(td)];
    if (td == 0 || (os[size_t(td - 1)] != 1 && ost[size_t(td - 1)] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || ns[size_t(view_d)] == 1)) {
        (*out)[size_t(view_d)] = view_numel * chunk_base_stride;
        view_numel *= ns[size_t(view_d)];
        view_d--;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = ost[size_t(td - 1)];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

static void record_reshape_back(const char* name, const Tensor& x, const Tensor& out) {
  Shape in_shape = x.shape();
  record(name, {x}, {out}, [in_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {g[0].reshape(in_shape)};
  });
}

Tensor view(const Tensor& x, const Shape& shape) {
  Shape ns = infer_shape(shape, x.numel(), "view", x.shape());
  Shape st;
  STEREORT_CHECK(view_strides(x.shape(), x.strides(), ns, &st),
                 "view: {} with strides {} cannot be viewed as {}; use reshape() (copies) or contiguous() first",
                 shape_str(x.shape()), shape_str(x.strides()), shape_str(ns));
  Tensor out = make_view(x, ns, st, x.offset());
  record_reshape_back("view", x, out);
  return out;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Shape ns = infer_shape(shape, x.numel(), "reshape", x.shape());
  Shape st;
  if (view_strides(x.shape(), x.strides(), ns, &st)) {
    Tensor out = make_view(x, ns, st, x.offset());
    record_reshape_back("reshape", x, out);
    return out;
  }
  return view(x.contiguous(), ns);
}

Tensor permute(const Tensor& x, const std::vector<int>& dims) {
  int nd = x.dim();
  STEREORT_CHECK(int(dims.size()) == nd, "permute: {} dims given for a {}-D tensor {}", dims.size(), nd,
                 shape_str(x.shape()));
  std::vector<int> p(static_cast<size_t>(nd)), inv(static_cast<size_t>(nd), -1);
  Shape s(static_cast<size_t>(nd)), st(static_cast<size_t>(nd));
  for (int i = 0; i < nd; ++i) {
    int d = normalize_dim(dims[size_t(i)], nd, "permute");
    STEREORT_CHECK(inv[size_t(d)] < 0, "permute: dim {} repeated in {}", d, fmt::join(dims, ","));
    inv[size_t(d)] = i;
    p[size_t(i)] = d;
    s[size_t(i)] = x.shape()[size_t(d)];
    st[size_t(i)] = x.strides()[size_t(d)];
  }
  Tensor out = make_view(x, s, st, x.offset());
  record("permute", {x}, {out}, [inv](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {g[0].permute(inv)};
  });
  return out;
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  std::vector<int> p(static_cast<size_t>(x.dim()));
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[size_t(normalize_dim(a, x.dim(), "transpose"))], p[size_t(normalize_dim(b, x.dim(), "transpose"))]);
  return permute(x, p);
}

Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step) {
  int d = normalize_dim(dim, x.dim(), "slice");
  STEREORT_CHECK(step >= 1, "slice: step must be >= 1, got {}", step);
  int64_t n = x.shape()[size_t(d)];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::min(std::max<int64_t>(start, 0), n);
  end = std::min(std::max<int64_t>(end, start), n);
  int64_t len = (end - start + step - 1) / step;
  Shape s = x.shape(), st = x.strides();
  s[size_t(d)] = len;
  st[size_t(d)] *= step;
  Tensor out = make_view(x, s, st, x.offset() + start * x.strides()[size_t(d)]);
  Shape in_shape = x.shape();
  DType dt = x.dtype();
  record("slice", {x}, {out}, [in_shape, dt, d, start, end, step](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor gi = Tensor::zeros(in_shape, dt, g[0].device());
    gi.slice(d, start, end, step).copy_(g[0]);
    return {gi};
  });
  return out;
}

Tensor select(const Tensor& x, int64_t dim, int64_t index) {
  int d = normalize_dim(dim, x.dim(), "select");
  int64_t n = x.shape()[size_t(d)];
  STEREORT_CHECK(index >= -n && index < n, "select: index {} out of range for dim {} of size {} in {}", index, d, n,
                 shape_str(x.shape()));
  if (index < 0) index += n;
  Shape s = x.shape(), st = x.strides();
  int64_t off = x.offset() + index * st[size_t(d)];
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  Tensor out = make_view(x, s, st, off);
  Shape in_shape = x.shape();
  DType dt = x.dtype();
  record("select", {x}, {out}, [in_shape, dt, d, index](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor gi = Tensor::zeros(in_shape, dt, g[0].device());
    gi.select(d, index).copy_(g[0]);
    return {gi};
  });
  return out;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  STEREORT_CHECK(shape.size() >= size_t(x.dim()), "expand: target {} has fewer dims than {}", shape_str(shape),
                 shape_str(x.shape()));
  size_t lead = shape.size() - size_t(x.dim());
  Shape s(shape.size()), st(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i < lead) {
      STEREORT_CHECK(shape[i] >= 0, "expand: new leading dim {} cannot be -1 in {}", i, shape_str(shape));
      s[i] = shape[i];
      st[i] = 0;
      continue;
    }
    int64_t cur = x.shape()[i - lead];
    int64_t want = shape[i] == -1 ? cur : shape[i];
    STEREORT_CHECK(cur == want || cur == 1, "expand: {} cannot expand to {} (dim {}: {} -> {}); only size-1 dims expand",
                   shape_str(x.shape()), shape_str(shape), i, cur, want);
    s[i] = want;
    st[i] = cur == want ? x.strides()[i - lead] : 0;
  }
  Tensor out = make_view(x, s, st, x.offset());
  Shape in_shape = x.shape();
  record("expand", {x}, {out}, [in_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {sum_to_shape(g[0], in_shape)};
  });
  return out;
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  int d = normalize_dim(dim, x.dim() + 1, "unsqueeze");
  Shape s = x.shape();
  s.insert(s.begin() + d, 1);
  return view(x, s);
}

Tensor squeeze(const Tensor& x, int64_t dim) {
  int d = normalize_dim(dim, x.dim(), "squeeze");
  if (x.shape()[size_t(d)] != 1) return x;
  Shape s = x.shape();
  s.erase(s.begin() + d);
  return view(x, s);
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() == 0) return reshape(x, {1});
  int a = normalize_dim(start, x.dim(), "flatten"), b = normalize_dim(end, x.dim(), "flatten");
  STEREORT_CHECK(a <= b, "flatten: start dim {} after end dim {}", a, b);
  Shape s(x.shape().begin(), x.shape().begin() + a);
  int64_t m = 1;
  for (int i = a; i <= b; ++i) m *= x.shape()[size_t(i)];
  s.push_back(m);
  s.insert(s.end(), x.shape().begin() + b + 1, x.shape().end());
  return reshape(x, s);
}

}  // namespace stereort
