// ops/linear.cpp — linear: argument checks, the CPU reference, dispatch to cuda/linear.cpp, and autograd.
//   Everything works on x folded to rows (T,In): a view when the leading dims merge with a unit inner stride,
//   otherwise a contiguous copy. The backward GEMMs use gemm_raw (CPU: double accumulation; CUDA: cuBLAS) on
//   transposed views, so no operand is copied to be transposed; db is ones(1,T) @ dout, a GEMV of the same kind.
#include "ops/linear.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/matmul.h"
#include "ops/view.h"

namespace stereort {

namespace {

// t (...,C) as a (R,C) matrix with unit column stride and non-overlapping rows; copies when no such view exists.
Tensor as_rows(const Tensor& t, int64_t R, int64_t C) {
  Shape st;
  if (view_strides(t.shape(), t.strides(), {R, C}, &st) && (st[1] == 1 || C <= 1) && (R <= 1 || st[0] >= C))
    return make_view(t, {R, C}, {R <= 1 ? C : st[0], 1}, t.offset());
  Tensor c = t.contiguous();
  return make_view(c, {R, C}, {C, 1}, c.offset());
}

// (R,C) matrix -> (1,R,C) operand for gemm_raw, keeping its strides.
Tensor as_gemm3(const Tensor& m) { return make_view(m, {1, m.size(0), m.size(1)}, {0, m.stride(0), m.stride(1)}, m.offset()); }

// out (T,Out) contiguous = x (T,In; row stride ldx) @ w (Out,In contiguous)ᵀ + b. Double accumulation; the inner
// loop runs over In, contiguous in both x and w, for eight outputs at once (eight independent sums per x load).
template <typename T>
void cpu_linear_forward(T* out, const T* x, int64_t ldx, const T* w, const T* b, int64_t rows, int64_t in,
                        int64_t outf) {
  constexpr int64_t kBlock = 8;
  for (int64_t t = 0; t < rows; ++t) {
    const T* xr = x + t * ldx;
    T* orow = out + t * outf;
    int64_t o = 0;
    for (; o + kBlock <= outf; o += kBlock) {
      const T* wr = w + o * in;
      double acc[kBlock] = {};
      for (int64_t i = 0; i < in; ++i) {
        double xv = double(xr[i]);
        for (int64_t j = 0; j < kBlock; ++j) acc[j] += xv * double(wr[j * in + i]);
      }
      for (int64_t j = 0; j < kBlock; ++j) orow[o + j] = T(acc[j] + (b ? double(b[o + j]) : 0.0));
    }
    for (; o < outf; ++o) {
      const T* wr = w + o * in;
      double acc = 0.0;
      for (int64_t i = 0; i < in; ++i) acc += double(xr[i]) * double(wr[i]);
      orow[o] = T(acc + (b ? double(b[o]) : 0.0));
    }
  }
}

void linear_forward_raw(const Tensor& out2, const Tensor& x2, const Tensor& w, const Tensor& b) {
  if (out2.numel() == 0) return;
  if (x2.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::linear_forward(out2, x2, w, b, Context::get(x2.device())));
    return;
  }
  DType ct = cpu_float_dtype(x2.dtype());
  if (ct != x2.dtype()) {  // f16/bf16: widen, compute in f32, round once
    Tensor o32 = Tensor::empty(out2.shape(), ct);
    linear_forward_raw(o32, x2.to(ct), w.to(ct), b.defined() ? b.to(ct) : Tensor());
    out2.copy_(o32);
    return;
  }
  dispatch_float(x2.dtype(), "linear", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu_linear_forward<T>(out2.data<T>(), x2.data<T>(), x2.stride(0), w.data<T>(), b.defined() ? b.data<T>() : nullptr,
                          x2.size(0), x2.size(1), out2.size(1));
  });
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  STEREORT_CHECK(x.defined() && weight.defined(), "linear: input and weight must be defined");
  STEREORT_CHECK(x.dim() >= 1, "linear: input {} must have at least 1 dim (...,In)", x.desc());
  STEREORT_CHECK(weight.dim() == 2, "linear: weight {} must be 2-D (Out,In)", weight.desc());
  int64_t in = x.size(-1), outf = weight.size(0);
  STEREORT_CHECK(weight.size(1) == in,
                 "linear: input {} has {} features in its last dim but weight {} expects {} (weight is (Out,In)); "
                 "check the layer's in_features or transpose the input to channel-last",
                 shape_str(x.shape()), in, shape_str(weight.shape()), weight.size(1));
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "linear: input {} must be floating", x.desc());
  STEREORT_CHECK(weight.dtype() == x.dtype() && weight.device() == x.device(),
                 "linear: input {} and weight {} differ in dtype or device; cast with .to()", x.desc(), weight.desc());
  if (bias.defined()) {
    STEREORT_CHECK(bias.dim() == 1 && bias.size(0) == outf, "linear: bias {} must be ({}) to match weight {}",
                   shape_str(bias.shape()), outf, shape_str(weight.shape()));
    STEREORT_CHECK(bias.dtype() == x.dtype() && bias.device() == x.device(),
                   "linear: bias {} and input {} differ in dtype or device", bias.desc(), x.desc());
  }
  int64_t rows = in > 0 ? x.numel() / in : shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(outf);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor out2 = make_view(out, {rows, outf}, {outf, 1}, 0);

  Tensor x2 = as_rows(x.detach(), rows, in);
  Tensor wd = weight.detach().contiguous();
  Tensor bd = bias.defined() ? bias.detach().contiguous() : Tensor();
  if (in == 0) {
    if (bd.defined()) out2.copy_(bd.reshape({1, outf}));
    else out2.zero_();
  } else {
    linear_forward_raw(out2, x2, wd, bd);
  }

  bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.defined() && bias.requires_grad();
  Shape x_shape = x.shape();
  Tensor x_saved = gw ? x2 : Tensor(), w_saved = gx ? wd : Tensor();
  record("linear", {x, weight, bias}, {out},
         [x_saved, w_saved, x_shape, rows, in, outf, gx, gw, gb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           Tensor g2 = as_rows(g[0], rows, outf);
           DType dt = g2.dtype();
           Device dev = g2.device();
           Tensor dx, dw, db;
           if (gx) {  // (T,Out) @ (Out,In)
             dx = Tensor::empty(x_shape, dt, dev);
             gemm_raw(make_view(dx, {1, rows, in}, {rows * in, in, 1}, 0), as_gemm3(g2), as_gemm3(w_saved));
           }
           Tensor g2t = make_view(g2, {1, outf, rows}, {0, g2.stride(1), g2.stride(0)}, g2.offset());
           if (gw) {  // (Out,T) @ (T,In)
             dw = Tensor::empty({outf, in}, dt, dev);
             gemm_raw(make_view(dw, {1, outf, in}, {outf * in, in, 1}, 0), g2t, as_gemm3(x_saved));
           }
           if (gb) {  // (1,T) @ (T,Out)
             db = Tensor::empty({outf}, dt, dev);
             Tensor ones = Tensor::ones({1, 1, rows}, dt, dev);
             gemm_raw(make_view(db, {1, 1, outf}, {outf, outf, 1}, 0), ones, as_gemm3(g2));
           }
           return {dx, dw, db};
         });
  return out;
}

}  // namespace stereort
