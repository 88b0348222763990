// ops/conv.cpp — conv1d/2d/3d and conv_transpose2d/3d: argument checks, output sizes, device dispatch of the three
// primitives (CPU reference in ops/conv_ref.cpp, CUDA in cuda/conv.cpp), bias, and autograd.
//   A transposed conv is described by the geometry of the conv it is the adjoint of (ConvGeometry with x = the
//   transposed conv's output, y = its input), so both ops share one set of primitives and one geometry check.
#include <atomic>
#include <cstdlib>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/conv.h"
#include "ops/dispatch.h"
#include "ops/norm.h"

namespace stereort {

// ---- geometry ----------------------------------------------------------------------------------------------------
Shape ConvGeometry::x_shape() const {
  Shape s = {batch, in_channels};
  s.insert(s.end(), in.begin(), in.end());
  return s;
}
Shape ConvGeometry::w_shape() const {
  Shape s = {out_channels, in_channels / groups};
  s.insert(s.end(), kernel.begin(), kernel.end());
  return s;
}
Shape ConvGeometry::y_shape() const {
  Shape s = {batch, out_channels};
  s.insert(s.end(), out.begin(), out.end());
  return s;
}
double ConvGeometry::macs() const {
  double m = double(batch) * double(out_channels) * double(in_channels / groups);
  for (int i = 0; i < nsp; ++i) m *= double(out[size_t(i)]) * double(kernel[size_t(i)]);
  return m;
}

namespace {

Shape expand_param(const std::vector<int64_t>& v, int nsp, const char* op, const char* name, int64_t min_value) {
  STEREORT_CHECK(v.size() == 1 || v.size() == size_t(nsp), "{}: {} has {} values; give 1 (used for every dim) or {}",
                 op, name, v.size(), nsp);
  Shape r(size_t(nsp), v[0]);
  if (v.size() == size_t(nsp)) r = v;
  for (int64_t e : r)
    STEREORT_CHECK(e >= min_value, "{}: {} {} must be >= {}", op, name, shape_str(r), min_value);
  return r;
}

// Checks every argument and returns the geometry of the (forward) conv; for transposed convs, of the conv whose
// backward-data it is.
ConvGeometry make_geometry(const char* op, int nsp, bool transposed, const Tensor& x, const Tensor& w,
                           const Tensor& bias, const ConvParams& p) {
  const char* layout = nsp == 1 ? "(B,C,L)" : nsp == 2 ? "(B,C,H,W)" : "(B,C,D,H,W)";
  STEREORT_CHECK(x.defined() && w.defined(), "{}: input and weight must be defined", op);
  STEREORT_CHECK(x.dim() == nsp + 2, "{}: input {} must be {}-D {} (add a batch dim with unsqueeze(0))", op,
                 shape_str(x.shape()), nsp + 2, layout);
  STEREORT_CHECK(w.dim() == nsp + 2, "{}: weight {} must be {}-D {}", op, shape_str(w.shape()), nsp + 2,
                 transposed ? "(C_in, C_out/groups, k...)" : "(C_out, C_in/groups, k...)");
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating", op, x.desc());
  STEREORT_CHECK(w.dtype() == x.dtype() && w.device() == x.device(),
                 "{}: input {} and weight {} differ in dtype or device; cast with .to()", op, x.desc(), w.desc());
  int64_t g = p.groups, C = x.size(1);
  STEREORT_CHECK(g >= 1, "{}: groups must be >= 1, got {}", op, g);
  ConvGeometry geo;
  geo.nsp = nsp;
  geo.groups = g;
  geo.batch = x.size(0);
  geo.stride = expand_param(p.stride, nsp, op, "stride", 1);
  geo.padding = expand_param(p.padding, nsp, op, "padding", 0);
  geo.dilation = expand_param(p.dilation, nsp, op, "dilation", 1);
  Shape opad = expand_param(p.output_padding, nsp, op, "output_padding", 0);
  geo.kernel = Shape(w.shape().begin() + 2, w.shape().end());
  for (int64_t k : geo.kernel) STEREORT_CHECK(k >= 1, "{}: weight {} has an empty kernel", op, shape_str(w.shape()));
  Shape sp(x.shape().begin() + 2, x.shape().end());
  int64_t out_channels;
  if (!transposed) {
    STEREORT_CHECK(C % g == 0 && w.size(0) % g == 0,
                   "{}: groups={} must divide the input channels ({}) and the output channels ({}); input {}, weight {}",
                   op, g, C, w.size(0), shape_str(x.shape()), shape_str(w.shape()));
    STEREORT_CHECK(w.size(1) * g == C,
                   "{}: input {} has {} channels but weight {} expects {} (groups={}); check the model preset or "
                   "the weights file",
                   op, shape_str(x.shape()), C, shape_str(w.shape()), w.size(1) * g, g);
    for (int64_t e : opad)
      STEREORT_CHECK(e == 0, "{}: output_padding {} applies to conv_transpose only; leave it 0", op, shape_str(opad));
    out_channels = w.size(0);
    geo.in_channels = C;
    geo.out_channels = out_channels;
    geo.in = sp;
    for (int i = 0; i < nsp; ++i) {
      size_t j = size_t(i);
      int64_t span = geo.dilation[j] * (geo.kernel[j] - 1) + 1, padded = sp[j] + 2 * geo.padding[j];
      STEREORT_CHECK(padded >= span,
                     "{}: input {} is smaller than the kernel: spatial dim {} is {} (+2·padding {}) but the dilated "
                     "kernel spans {}; pad the input or use a smaller kernel/dilation",
                     op, shape_str(x.shape()), i, sp[j], geo.padding[j], span);
      geo.out.push_back((padded - span) / geo.stride[j] + 1);
    }
  } else {
    STEREORT_CHECK(w.size(0) == C,
                   "{}: input {} has {} channels but weight {} expects {} (weight is (C_in, C_out/groups, k...))", op,
                   shape_str(x.shape()), C, shape_str(w.shape()), w.size(0));
    STEREORT_CHECK(C % g == 0, "{}: groups={} must divide the input channels ({}); input {}, weight {}", op, g, C,
                   shape_str(x.shape()), shape_str(w.shape()));
    out_channels = w.size(1) * g;
    geo.in_channels = out_channels;  // the adjoint conv reads the transposed conv's output
    geo.out_channels = C;
    geo.out = sp;
    for (int i = 0; i < nsp; ++i) {
      size_t j = size_t(i);
      STEREORT_CHECK(opad[j] < geo.stride[j] || opad[j] < geo.dilation[j],
                     "{}: output_padding {} must be smaller than stride {} or dilation {}", op, shape_str(opad),
                     shape_str(geo.stride), shape_str(geo.dilation));
      int64_t n = (sp[j] - 1) * geo.stride[j] - 2 * geo.padding[j] + geo.dilation[j] * (geo.kernel[j] - 1) +
                  opad[j] + 1;
      STEREORT_CHECK(n >= 1, "{}: input {} with kernel {}, stride {}, padding {} gives an empty output (size {})", op,
                     shape_str(x.shape()), shape_str(geo.kernel), shape_str(geo.stride), shape_str(geo.padding), n);
      geo.in.push_back(n);
    }
  }
  if (bias.defined()) {
    STEREORT_CHECK(bias.dim() == 1 && bias.size(0) == out_channels, "{}: bias {} must be ({}) for weight {}", op,
                   shape_str(bias.shape()), out_channels, shape_str(w.shape()));
    STEREORT_CHECK(bias.dtype() == x.dtype() && bias.device() == x.device(),
                   "{}: bias {} and input {} differ in dtype or device", op, bias.desc(), x.desc());
  }
  return geo;
}

// Runs f(o, a, b) on typed pointers on the CPU; f16/bf16 are widened to f32 and the output rounded once.
template <typename F>
void cpu_call(const char* op, const Tensor& o, const Tensor& a, const Tensor& b, F&& f) {
  DType ct = cpu_float_dtype(o.dtype());
  if (ct != o.dtype()) {
    Tensor o32 = Tensor::empty(o.shape(), ct);
    cpu_call(op, o32, a.to(ct), b.to(ct), f);
    o.copy_(o32);
    return;
  }
  dispatch_float(ct, op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    f(o.data<T>(), static_cast<const T*>(a.data_ptr()), static_cast<const T*>(b.data_ptr()));
  });
}

// y (B,C,...) += bias[c].
void add_bias(const Tensor& y, const Tensor& bias) {
  int64_t C = y.size(1), rows = y.size(0) * C, S = y.numel() / rows;
  if (y.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::channel_affine(y, y, Tensor(), Tensor(), Tensor(), bias.to(DType::F32).contiguous(), C,
                                            S, Context::get(y.device())));
    return;
  }
  std::vector<double> bv = bias.to_vector();
  dispatch_all(y.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = y.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t s = 0; s < S; ++s) p[r * S + s] = from_d<T>(to_d(p[r * S + s]) + bv[size_t(r % C)]);
  });
}

// Σ over batch and spatial dims of dy (B,C,...) -> (C) in dy's dtype (f32 on CUDA; autograd casts).
Tensor bias_grad(const Tensor& dy) {
  int64_t B = dy.size(0), C = dy.size(1), S = dy.numel() / std::max<int64_t>(1, B * C);
  if (dy.is_cuda()) {
    Tensor db = Tensor::empty({C}, DType::F32, dy.device());
    STEREORT_CUDA_PATH(
        cuda::channel_grad_sums(db, Tensor(), dy, Tensor(), Tensor(), B, C, S, Context::get(dy.device())));
    return db;
  }
  std::vector<double> acc(static_cast<size_t>(C), 0.0);
  dispatch_all(dy.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = dy.data<T>();
    for (int64_t r = 0; r < B * C; ++r)
      for (int64_t s = 0; s < S; ++s) acc[size_t(r % C)] += to_d(p[r * S + s]);
  });
  return Tensor::from_vector(acc, {C}, dy.dtype());
}

// Default from STEREORT_CONV_ALGO (find | heuristic); find when unset.
int initial_policy() {
  const char* e = std::getenv("STEREORT_CONV_ALGO");
  return int(e && std::string(e) == "heuristic" ? cuda::ConvAlgoPolicy::Heuristic : cuda::ConvAlgoPolicy::Find);
}
std::atomic<int> g_policy{initial_policy()};

}  // namespace

namespace cuda {
void set_conv_algo_policy(ConvAlgoPolicy p) { g_policy = int(p); }
ConvAlgoPolicy conv_algo_policy() { return ConvAlgoPolicy(g_policy.load()); }
}  // namespace cuda

// ---- primitives --------------------------------------------------------------------------------------------------
void conv_forward_raw(const Tensor& y, const Tensor& x, const Tensor& w, const ConvGeometry& g) {
  if (y.numel() == 0) return;
  if (x.numel() == 0 || w.numel() == 0) {
    y.zero_();
    return;
  }
  if (y.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::conv_forward(y, x, w, g, Context::get(y.device())));
    return;
  }
  cpu_call("conv", y, x, w, [&](auto* yp, auto* xp, auto* wp) { ref::conv_forward(yp, xp, wp, g); });
}

void conv_backward_data_raw(const Tensor& dx, const Tensor& dy, const Tensor& w, const ConvGeometry& g) {
  if (dx.numel() == 0) return;
  if (dy.numel() == 0 || w.numel() == 0) {
    dx.zero_();
    return;
  }
  if (dx.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::conv_backward_data(dx, dy, w, g, Context::get(dx.device())));
    return;
  }
  cpu_call("conv backward-data", dx, dy, w, [&](auto* o, auto* a, auto* b) { ref::conv_backward_data(o, a, b, g); });
}

void conv_backward_weight_raw(const Tensor& dw, const Tensor& dy, const Tensor& x, const ConvGeometry& g) {
  if (dw.numel() == 0) return;
  if (dy.numel() == 0 || x.numel() == 0) {
    dw.zero_();
    return;
  }
  if (dw.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::conv_backward_weight(dw, dy, x, g, Context::get(dw.device())));
    return;
  }
  cpu_call("conv backward-weight", dw, dy, x,
           [&](auto* o, auto* a, auto* b) { ref::conv_backward_weight(o, a, b, g); });
}

// ---- ops -----------------------------------------------------------------------------------------------------------
namespace {

Tensor conv_nd(const char* op, int nsp, const Tensor& x, const Tensor& w, const Tensor& bias, const ConvParams& p) {
  ConvGeometry g = make_geometry(op, nsp, false, x, w, bias, p);
  Tensor xd = x.detach().contiguous(), wd = w.detach().contiguous();
  Tensor y = Tensor::empty(g.y_shape(), x.dtype(), x.device());
  conv_forward_raw(y, xd, wd, g);
  if (bias.defined() && y.numel() > 0) add_bias(y, bias.detach());
  bool gx = x.requires_grad(), gw = w.requires_grad(), gb = bias.defined() && bias.requires_grad();
  Tensor x_saved = gw ? xd : Tensor(), w_saved = gx ? wd : Tensor();
  record(op, {x, w, bias}, {y}, [g, x_saved, w_saved, gx, gw, gb](const std::vector<Tensor>& grads) {
    Tensor dy = grads[0].contiguous();
    Tensor dx, dw, db;
    if (gx) {
      dx = Tensor::empty(g.x_shape(), dy.dtype(), dy.device());
      conv_backward_data_raw(dx, dy, w_saved, g);
    }
    if (gw) {
      dw = Tensor::empty(g.w_shape(), dy.dtype(), dy.device());
      conv_backward_weight_raw(dw, dy, x_saved, g);
    }
    if (gb) db = bias_grad(dy);
    return std::vector<Tensor>{dx, dw, db};
  });
  return y;
}

Tensor conv_transpose_nd(const char* op, int nsp, const Tensor& x, const Tensor& w, const Tensor& bias,
                         const ConvParams& p) {
  ConvGeometry g = make_geometry(op, nsp, true, x, w, bias, p);
  Tensor xd = x.detach().contiguous(), wd = w.detach().contiguous();
  Tensor y = Tensor::empty(g.x_shape(), x.dtype(), x.device());
  conv_backward_data_raw(y, xd, wd, g);
  if (bias.defined() && y.numel() > 0) add_bias(y, bias.detach());
  bool gx = x.requires_grad(), gw = w.requires_grad(), gb = bias.defined() && bias.requires_grad();
  Tensor x_saved = gw ? xd : Tensor(), w_saved = gx ? wd : Tensor();
  record(op, {x, w, bias}, {y}, [g, x_saved, w_saved, gx, gw, gb](const std::vector<Tensor>& grads) {
    Tensor dy = grads[0].contiguous();  // gradient of the transposed conv's output = the adjoint conv's "x"
    Tensor dx, dw, db;
    if (gx) {
      dx = Tensor::empty(g.y_shape(), dy.dtype(), dy.device());
      conv_forward_raw(dx, dy, w_saved, g);
    }
    if (gw) {
      dw = Tensor::empty(g.w_shape(), dy.dtype(), dy.device());
      conv_backward_weight_raw(dw, x_saved, dy, g);
    }
    if (gb) db = bias_grad(dy);
    return std::vector<Tensor>{dx, dw, db};
  });
  return y;
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  return conv_nd("conv1d", 1, x, w, b, p);
}
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  return conv_nd("conv2d", 2, x, w, b, p);
}
Tensor conv3d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  return conv_nd("conv3d", 3, x, w, b, p);
}
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  return conv_transpose_nd("conv_transpose2d", 2, x, w, b, p);
}
Tensor conv_transpose3d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvParams& p) {
  return conv_transpose_nd("conv_transpose3d", 3, x, w, b, p);
}

}  // namespace stereort
