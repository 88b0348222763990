// ops/shape_ops.cpp — cat, split, chunk, pad, flip (definitions in ops/shape_ops.h).
//   cat writes each input into a slice of the output with the strided copy (one pass per input, CPU or CUDA);
//   split/chunk are slice views (their autograd is slice's); flip copies a negative-stride view of x; pad runs one
//   gather pass per output element (CPU loop here, cuda/shape_ops.cu on the GPU).
//   index_select / gather / where / clamp / masked_mean live in ops/shape_ops_select.cpp.
#include "ops/shape_ops.h"

#include <algorithm>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/copy.h"
#include "ops/dispatch.h"

namespace stereort {

// ---- cat / split / chunk -------------------------------------------------------------------------------------------
Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  STEREORT_CHECK(!xs.empty(), "cat: needs at least one tensor");
  for (size_t i = 0; i < xs.size(); ++i) STEREORT_CHECK(xs[i].defined(), "cat: tensor {} is undefined", i);
  const Tensor& x0 = xs[0];
  STEREORT_CHECK(x0.dim() > 0, "cat: tensor 0 is a scalar {}; cat needs tensors with at least one dim", x0.desc());
  int d = normalize_dim(dim, x0.dim(), "cat");
  Shape out_shape = x0.shape();
  out_shape[size_t(d)] = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const Tensor& x = xs[i];
    STEREORT_CHECK(x.dtype() == x0.dtype() && x.device() == x0.device(),
                   "cat: tensor {} is {} but tensor 0 is {}; all inputs need one dtype and device (cast with .to())", i,
                   x.desc(), x0.desc());
    bool ok = x.dim() == x0.dim();
    for (int k = 0; ok && k < x0.dim(); ++k) ok = k == d || x.size(k) == x0.size(k);
    STEREORT_CHECK(ok, "cat: tensor {} has shape {} but tensor 0 has shape {}; all dims except dim {} must match", i,
                   shape_str(x.shape()), shape_str(x0.shape()), d);
    out_shape[size_t(d)] += x.size(d);
  }
  Tensor out = Tensor::empty(out_shape, x0.dtype(), x0.device());
  std::vector<int64_t> starts;
  int64_t off = 0;
  for (const Tensor& x : xs) {
    starts.push_back(off);
    if (x.numel() > 0) copy_into(make_view(out, x.shape(), out.strides(), off * out.stride(d)), x);
    off += x.size(d);
  }
  if (needs_grad(xs)) {
    std::vector<int64_t> sizes;
    for (const Tensor& x : xs) sizes.push_back(x.size(d));
    record("cat", xs, {out}, [starts, sizes, d](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      std::vector<Tensor> r;
      for (size_t i = 0; i < sizes.size(); ++i) r.push_back(g[0].slice(d, starts[i], starts[i] + sizes[i]));
      return r;
    });
  }
  return out;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  STEREORT_CHECK(x.defined() && x.dim() > 0, "split: needs a tensor with at least one dim");
  int d = normalize_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    STEREORT_CHECK(s >= 0, "split: negative size {} in sizes ({}) for {}", s, fmt::join(sizes, ","),
                   shape_str(x.shape()));
    total += s;
  }
  STEREORT_CHECK(total == x.size(d), "split: sizes ({}) sum to {} but dim {} of {} has size {}", fmt::join(sizes, ","),
                 total, d, shape_str(x.shape()), x.size(d));
  std::vector<Tensor> out;
  int64_t off = 0;
  for (int64_t s : sizes) {
    out.push_back(x.slice(d, off, off + s));
    off += s;
  }
  return out;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t n, int64_t dim) {
  STEREORT_CHECK(x.defined() && x.dim() > 0, "chunk: needs a tensor with at least one dim");
  STEREORT_CHECK(n > 0, "chunk: number of chunks must be positive, got {} (input {})", n, shape_str(x.shape()));
  int d = normalize_dim(dim, x.dim(), "chunk");
  int64_t size = x.size(d);
  if (size == 0) return split(x, std::vector<int64_t>(size_t(n), 0), d);
  int64_t cs = (size + n - 1) / n;
  std::vector<int64_t> sizes;
  for (int64_t off = 0; off < size; off += cs) sizes.push_back(std::min(cs, size - off));
  return split(x, sizes, d);
}

// ---- pad ------------------------------------------------------------------------------------------------------------
namespace {

// Per-dim (left, right) from F.pad order; dims beyond the pads get 0.
void pad_amounts(const Tensor& x, const std::vector<int64_t>& pads, std::vector<int64_t>* left,
                 std::vector<int64_t>* right) {
  int nd = x.dim();
  left->assign(size_t(nd), 0);
  right->assign(size_t(nd), 0);
  for (size_t p = 0; p < pads.size() / 2; ++p) {
    size_t d = size_t(nd) - 1 - p;
    (*left)[d] = pads[2 * p];
    (*right)[d] = pads[2 * p + 1];
  }
}

// out contiguous (output shape); x any strides. Same rule as cuda::pad_forward.
void cpu_pad_forward(const Tensor& out, const Tensor& x, const std::vector<int64_t>& left, PadMode mode, double value) {
  int nd = x.dim();
  const Shape& os = out.shape();
  const Shape& is = x.shape();
  const Shape& st = x.strides();
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* xp = x.data<T>();
    T* op = out.data<T>();
    T fill = from_d<T>(value);
    std::vector<int64_t> idx(size_t(nd), 0);
    for (int64_t i = 0, n = out.numel(); i < n; ++i) {
      int64_t off = 0;
      bool inside = true;
      for (int k = 0; k < nd; ++k) {
        int64_t c = idx[size_t(k)] - left[size_t(k)];
        if (mode == PadMode::Replicate)
          c = std::min(std::max<int64_t>(c, 0), is[size_t(k)] - 1);
        else if (c < 0 || c >= is[size_t(k)])
          inside = false;
        off += c * st[size_t(k)];
      }
      op[i] = inside ? xp[off] : fill;
      for (int k = nd - 1; k >= 0 && ++idx[size_t(k)] == os[size_t(k)]; --k) idx[size_t(k)] = 0;
    }
  });
}

// dx (input shape) = for each input element, the sum of g over the outputs that replicated it.
void cpu_pad_replicate_backward(const Tensor& dx, const Tensor& g, const std::vector<int64_t>& left) {
  int nd = dx.dim();
  const Shape& is = dx.shape();
  const Shape& os = g.shape();
  Shape gst = contiguous_strides(os);
  dispatch_float(dx.dtype(), "pad_backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* gp = g.data<T>();
    T* dp = dx.data<T>();
    std::vector<int64_t> idx(size_t(nd), 0), lo(size_t(nd), 0), hi(size_t(nd), 0), o(size_t(nd), 0);
    for (int64_t i = 0, n = dx.numel(); i < n; ++i) {
      bool empty = false;
      for (int k = 0; k < nd; ++k) {
        size_t u = size_t(k);
        int64_t c = idx[u], m = os[u];
        lo[u] = std::max<int64_t>(c == 0 ? 0 : c + left[u], 0);
        hi[u] = std::min<int64_t>(c == is[u] - 1 ? m - 1 : c + left[u], m - 1);
        empty = empty || lo[u] > hi[u];
      }
      double acc = 0;
      if (!empty) {
        o = lo;
        for (;;) {
          int64_t off = 0;
          for (int k = 0; k < nd; ++k) off += o[size_t(k)] * gst[size_t(k)];
          acc += double(gp[off]);
          int k = nd - 1;
          for (; k >= 0; --k) {
            if (++o[size_t(k)] <= hi[size_t(k)]) break;
            o[size_t(k)] = lo[size_t(k)];
          }
          if (k < 0) break;
        }
      }
      dp[i] = T(acc);
      for (int k = nd - 1; k >= 0 && ++idx[size_t(k)] == is[size_t(k)]; --k) idx[size_t(k)] = 0;
    }
  });
}

Tensor pad_raw(const Tensor& x, const std::vector<int64_t>& left, const std::vector<int64_t>& right, PadMode mode,
               double value) {
  Shape os = x.shape();
  for (size_t d = 0; d < os.size(); ++d) os[d] += left[d] + right[d];
  Tensor out = Tensor::empty(os, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::pad_forward(out, x, left, mode == PadMode::Zero ? 0 : 1, value, Context::get(x.device())));
  } else {
    cpu_pad_forward(out, x, left, mode, value);
  }
  return out;
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, double value) {
  STEREORT_CHECK(x.defined(), "pad: input is undefined");
  const char* mname = mode == PadMode::Zero ? "zero" : "replicate";
  STEREORT_CHECK(pads.size() % 2 == 0, "pad: {} pads given for {}; pads come in (left, right) pairs, last dim first",
                 pads.size(), shape_str(x.shape()));
  STEREORT_CHECK(pads.size() <= size_t(2 * x.dim()),
                 "pad: too many pads ({}) for {} ({} dims take at most {}); F.pad order is (left, right) of the last "
                 "dim, then the dim before",
                 pads.size(), shape_str(x.shape()), x.dim(), 2 * x.dim());
  STEREORT_CHECK(x.dim() <= 8, "pad: {} has {} dims; at most 8 are supported", shape_str(x.shape()), x.dim());
  std::vector<int64_t> left, right;
  pad_amounts(x, pads, &left, &right);
  for (int d = 0; d < x.dim(); ++d) {
    int64_t n = x.size(d), m = n + left[size_t(d)] + right[size_t(d)];
    STEREORT_CHECK(m >= 0, "pad: pads ({}) crop dim {} of {} to a negative size {}", fmt::join(pads, ","), d,
                   shape_str(x.shape()), m);
    STEREORT_CHECK(mode == PadMode::Zero || n > 0 || m == 0 || (left[size_t(d)] == 0 && right[size_t(d)] == 0),
                   "pad: {} mode cannot pad dim {} of {}: it is empty", mname, d, shape_str(x.shape()));
  }
  Tensor out = pad_raw(x.detach(), left, right, mode, value);
  if (needs_grad({x})) {
    Shape in_shape = x.shape();
    record("pad", {x}, {out}, [left, right, mode, in_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
      if (mode == PadMode::Zero) {
        std::vector<int64_t> nl, nr;
        for (size_t d = 0; d < left.size(); ++d) {
          nl.push_back(-left[d]);
          nr.push_back(-right[d]);
        }
        return {pad_raw(g[0], nl, nr, PadMode::Zero, 0.0)};
      }
      Tensor gc = g[0].contiguous();
      Tensor dx = Tensor::empty(in_shape, gc.dtype(), gc.device());
      if (dx.numel() == 0) return {dx};
      if (gc.is_cuda()) {
        STEREORT_CUDA_PATH(cuda::pad_replicate_backward(dx, gc, left, Context::get(gc.device())));
        return {dx};
      }
      Tensor gw = gc.to(cpu_float_dtype(gc.dtype()));
      Tensor dw = Tensor::empty(in_shape, gw.dtype());
      cpu_pad_replicate_backward(dw, gw, left);
      return {dw.to(gc.dtype())};
    });
  }
  return out;
}

// ---- flip -----------------------------------------------------------------------------------------------------------
namespace {

Tensor flip_raw(const Tensor& x, const std::vector<int>& dims) {
  Shape st = x.strides();
  int64_t off = x.offset();
  for (int d : dims) {
    if (x.size(d) > 0) off += (x.size(d) - 1) * st[size_t(d)];
    st[size_t(d)] = -st[size_t(d)];
  }
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() > 0) copy_into(out, make_view(x, x.shape(), st, off));  // a negative-stride view, read once
  return out;
}

}  // namespace

Tensor flip(const Tensor& x, const std::vector<int64_t>& dims) {
  STEREORT_CHECK(x.defined(), "flip: input is undefined");
  std::vector<int> ds;
  std::vector<bool> seen(size_t(std::max(x.dim(), 1)), false);
  for (int64_t d : dims) {
    int nd = normalize_dim(d, x.dim(), "flip");
    STEREORT_CHECK(!seen[size_t(nd)], "flip: dim {} appears twice in ({}) for {}", nd, fmt::join(dims, ","),
                   shape_str(x.shape()));
    seen[size_t(nd)] = true;
    ds.push_back(nd);
  }
  Tensor out = flip_raw(x.detach(), ds);
  if (needs_grad({x})) {
    record("flip", {x}, {out},
           [ds](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {flip_raw(g[0], ds)}; });
  }
  return out;
}

}  // namespace stereort
