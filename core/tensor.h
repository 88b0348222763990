// core/tensor.h — Tensor: a view (dtype, shape, strides, offset) onto refcounted Storage, plus autograd state.
//   Copying a Tensor copies a handle (shared_ptr), never data. Views — reshape/view/permute/transpose/slice/select/
//   expand/squeeze/unsqueeze — share storage and are recorded by autograd like any op (their backward lives in
//   ops/view.cpp). contiguous(), to(device), to(dtype), clone() copy.
//   Strides are in elements. An expanded dim has stride 0. Offsets are in elements from the storage start.
//   Printing: Tensor(f32 cpu (2,3)) followed by values, summarised beyond 6 per dim.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/dtype.h"
#include "core/shape.h"

namespace stereort {

struct Node;
class Context;
class Tensor;

struct TensorImpl {
  Storage storage;
  DType dtype = DType::F32;
  Shape shape, strides;
  int64_t offset = 0;
  // autograd
  bool requires_grad = false;             // leaves: set by the user; non-leaves: set when recorded
  std::shared_ptr<TensorImpl> grad;       // accumulated gradient (leaves)
  std::shared_ptr<Node> grad_fn;          // the node that produced this tensor (non-leaves)
  int output_nr = 0;                      // which output of grad_fn
  std::string name;                       // optional, for messages (parameters carry their state-dict key)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -------------------------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::F32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::F32, Device device = Device::cpu());
  // Values in row-major order; converted to `dtype`.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::F32,
                            Device device = Device::cpu());
  static Tensor from_blob(const void* data, const Shape& shape, DType dtype);  // copies host memory into a CPU tensor
  static Tensor arange(int64_t n, DType dtype = DType::F32, Device device = Device::cpu());
  // Non-owning-by-copy view of existing storage.
  static Tensor from_storage(Storage s, DType dtype, const Shape& shape, const Shape& strides, int64_t offset);

  // ---- metadata --------------------------------------------------------------------------------------------------
  bool defined() const { return bool(impl_); }
  const Shape& shape() const { return impl()->shape; }
  const Shape& strides() const { return impl()->strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int dim() const { return int(impl()->shape.size()); }
  int64_t numel() const { return shape_numel(impl()->shape); }
  int64_t offset() const { return impl()->offset; }
  DType dtype() const { return impl()->dtype; }
  Device device() const { return impl()->storage->device; }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  const Storage& storage() const { return impl()->storage; }
  std::string desc() const;  // "f32 cuda:0 (2,3,4)" for messages

  void* data_ptr() const;
  template <typename T>
  T* data() const { return static_cast<T*>(data_ptr()); }

  // ---- views (autograd-aware; see ops/shape_ops.h) ------------------------------------------------------------------
  Tensor view(const Shape& shape) const;          // requires compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;       // view when possible, else a contiguous copy
  Tensor permute(const std::vector<int>& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // python-style clamp of bounds
  Tensor select(int64_t dim, int64_t index) const;  // drops `dim`
  Tensor expand(const Shape& shape) const;           // -1 keeps a size; new leading dims allowed
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;

  // ---- copies ------------------------------------------------------------------------------------------------------
  Tensor contiguous() const;                 // self if already contiguous
  Tensor clone() const;                      // always a new contiguous tensor
  Tensor to(Device device) const;            // self if already there
  Tensor to(DType dtype) const;              // self if already that dtype
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }

  // ---- in-place (no autograd; parameters' updates, initialisation, test poisoning) -----------------------------------
  // const: they change the data, not the handle (like writing through a pointer-to-non-const).
  const Tensor& fill_(double value) const;
  const Tensor& copy_(const Tensor& src) const;  // broadcasts src to self; casts; copies across devices
  const Tensor& zero_() const { return fill_(0.0); }

  // ---- values ------------------------------------------------------------------------------------------------------
  double item() const;                       // one element, widened to double (syncs a CUDA tensor)
  std::vector<double> to_vector() const;     // all elements, row-major, widened to double
  std::string str(int max_per_dim = 6) const;

  // ---- autograd ----------------------------------------------------------------------------------------------------
  bool requires_grad() const { return impl()->requires_grad; }
  Tensor& set_requires_grad(bool on = true);  // leaves only
  bool is_leaf() const { return !impl()->grad_fn; }
  Tensor grad() const { return Tensor(impl()->grad); }
  void zero_grad() { impl()->grad.reset(); }
  void set_grad(const Tensor& g) { impl()->grad = g.impl_; }
  Tensor detach() const;                      // same storage, no history, requires_grad false
  const std::shared_ptr<Node>& grad_fn() const { return impl()->grad_fn; }
  // Reverse-mode from this tensor. A scalar needs no gradient; otherwise pass one of the same shape.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  const std::string& name() const { return impl()->name; }
  Tensor& set_name(const std::string& n) { impl()->name = n; return *this; }

  TensorImpl* impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// Raw view construction without autograd (used by the view ops themselves).
Tensor make_view(const Tensor& base, const Shape& shape, const Shape& strides, int64_t offset);
// Element offsets (relative to t's offset) of every element in row-major order of t's shape; CPU iteration helper.
// Calls f(linear_index, element_offset) for each element.
template <typename F>
void for_each_offset(const Shape& shape, const Shape& strides, F&& f) {
  int nd = int(shape.size());
  int64_t n = shape_numel(shape);
  if (n == 0) return;
  std::vector<int64_t> idx(nd, 0);
  int64_t off = 0;
  for (int64_t i = 0; i < n; ++i) {
    f(i, off);
    for (int d = nd - 1; d >= 0; --d) {
      if (++idx[d] < shape[d]) {
        off += strides[d];
        break;
      }
      off -= strides[d] * (shape[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace stereort
