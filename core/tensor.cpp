// core/tensor.cpp — Tensor factories, metadata, copies, values and printing. View methods forward to ops/view.cpp.
#include "core/tensor.h"

#include <cmath>
#include <cstring>
#include <ostream>

#include "core/autograd.h"
#include "core/check.h"
#include "ops/copy.h"
#include "ops/view.h"

namespace stereort {

TensorImpl* Tensor::impl() const {
  STEREORT_CHECK(impl_, "use of an undefined Tensor (default-constructed, or a gradient that was never computed)");
  return impl_.get();
}

Tensor Tensor::from_storage(Storage s, DType dtype, const Shape& shape, const Shape& strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(s);
  impl->dtype = dtype;
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  return Tensor(impl);
}

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) STEREORT_CHECK(d >= 0, "Tensor::empty: negative size in shape {}", shape_str(shape));
  size_t nbytes = size_t(shape_numel(shape)) * dtype_size(dtype);
  return from_storage(allocate_storage(nbytes, device), dtype, shape, contiguous_strides(shape), 0);
}
Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  STEREORT_CHECK(int64_t(values.size()) == shape_numel(shape), "Tensor::from_vector: {} values for shape {} ({} elements)",
                 values.size(), shape_str(shape), shape_numel(shape));
  Tensor t = empty(shape, dtype);
  for (size_t i = 0; i < values.size(); ++i) store_from_double(t.data_ptr(), dtype, int64_t(i), values[i]);
  return t.to(device);
}

Tensor Tensor::from_blob(const void* data, const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memcpy(t.data_ptr(), data, t.nbytes());
  return t;
}

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = double(i);
  return from_vector(v, {n}, dtype, device);
}

int64_t Tensor::size(int64_t d) const { return shape()[size_t(normalize_dim(d, dim(), "size"))]; }
int64_t Tensor::stride(int64_t d) const { return strides()[size_t(normalize_dim(d, dim(), "stride"))]; }

bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  const Shape& s = shape();
  const Shape& st = strides();
  for (int i = int(s.size()) - 1; i >= 0; --i) {
    if (s[i] == 1) continue;
    if (st[i] != expect) return false;
    expect *= s[i];
  }
  return true;
}

std::string Tensor::desc() const {
  if (!defined()) return "undefined";
  return fmt::format("{} {} {}", dtype_name(dtype()), device().str(), shape_str(shape()));
}

void* Tensor::data_ptr() const {
  TensorImpl* i = impl();
  return static_cast<char*>(i->storage->data) + i->offset * int64_t(dtype_size(i->dtype));
}

Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset) {
  return Tensor::from_storage(base.storage(), base.dtype(), shape, strides, offset);
}

// ---- views: see ops/view.cpp ------------------------------------------------------------------------------------------
Tensor Tensor::view(const Shape& s) const { return stereort::view(*this, s); }
Tensor Tensor::reshape(const Shape& s) const { return stereort::reshape(*this, s); }
Tensor Tensor::permute(const std::vector<int>& d) const { return stereort::permute(*this, d); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return stereort::transpose(*this, a, b); }
Tensor Tensor::slice(int64_t d, int64_t s, int64_t e, int64_t st) const { return stereort::slice(*this, d, s, e, st); }
Tensor Tensor::select(int64_t d, int64_t i) const { return stereort::select(*this, d, i); }
Tensor Tensor::expand(const Shape& s) const { return stereort::expand(*this, s); }
Tensor Tensor::unsqueeze(int64_t d) const { return stereort::unsqueeze(*this, d); }
Tensor Tensor::squeeze(int64_t d) const { return stereort::squeeze(*this, d); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return stereort::flatten(*this, s, e); }

// ---- copies -----------------------------------------------------------------------------------------------------------
Tensor Tensor::contiguous() const { return is_contiguous() ? *this : copy_to(*this, dtype(), device()); }
Tensor Tensor::clone() const { return copy_to(*this, dtype(), device()); }
Tensor Tensor::to(Device d) const { return d == device() ? *this : copy_to(*this, dtype(), d); }
Tensor Tensor::to(DType t) const { return t == dtype() ? *this : copy_to(*this, t, device()); }

const Tensor& Tensor::fill_(double value) const {
  fill_into(*this, value);
  return *this;
}
const Tensor& Tensor::copy_(const Tensor& src) const {
  copy_into(*this, src);
  return *this;
}

// ---- values -----------------------------------------------------------------------------------------------------------
double Tensor::item() const {
  STEREORT_CHECK(numel() == 1, "item(): tensor {} has {} elements, not 1", desc(), numel());
  Tensor c = is_cuda() ? cpu() : *this;
  return load_as_double(c.data_ptr(), c.dtype(), 0);
}

std::vector<double> Tensor::to_vector() const {
  Tensor c = cpu().contiguous();
  std::vector<double> v(static_cast<size_t>(c.numel()));
  for (int64_t i = 0; i < c.numel(); ++i) v[size_t(i)] = load_as_double(c.data_ptr(), c.dtype(), i);
  return v;
}

static void print_rec(std::string& out, const Tensor& t, const std::vector<double>& v, int dim, int64_t base,
                      int64_t stride_elems, int max_per_dim, int indent) {
  const Shape& s = t.shape();
  int64_t n = s[size_t(dim)];
  int64_t inner = stride_elems / std::max<int64_t>(n, 1);
  out += "[";
  auto fmt_val = [&](double x) {
    if (!dtype_is_floating(t.dtype())) return fmt::format("{}", int64_t(x));
    return fmt::format("{:.4g}", x);
  };
  bool summarise = n > max_per_dim;
  int64_t head = summarise ? max_per_dim / 2 : n;
  for (int64_t i = 0; i < n; ++i) {
    if (summarise && i == head) {
      out += dim + 1 == int(s.size()) ? "..., " : "...,\n" + std::string(size_t(indent + 1), ' ');
      i = n - max_per_dim / 2;
    }
    if (dim + 1 == int(s.size())) out += fmt_val(v[size_t(base + i)]);
    else print_rec(out, t, v, dim + 1, base + i * inner, inner, max_per_dim, indent + 1);
    if (i + 1 < n) out += dim + 1 == int(s.size()) ? ", " : ",\n" + std::string(size_t(indent + 1), ' ');
  }
  out += "]";
}

std::string Tensor::str(int max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::string out = "Tensor(" + desc() + (requires_grad() ? " requires_grad" : "") + ")\n";
  std::vector<double> v = to_vector();
  if (dim() == 0) return out + fmt::format("{:.6g}", v[0]);
  if (numel() == 0) return out + "[]";
  print_rec(out, *this, v, 0, 0, numel(), max_per_dim, 0);
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

Tensor& Tensor::set_requires_grad(bool on) {
  STEREORT_CHECK(is_leaf(), "set_requires_grad: {} is not a leaf (it was computed by '{}'); detach() it first", desc(),
                 grad_fn()->name);
  STEREORT_CHECK(!on || dtype_is_floating(dtype()), "set_requires_grad: {} is not a floating tensor", desc());
  impl()->requires_grad = on;
  return *this;
}

Tensor Tensor::detach() const {
  Tensor t = make_view(*this, shape(), strides(), offset());
  t.impl()->name = impl()->name;
  return t;
}

}  // namespace stereort
