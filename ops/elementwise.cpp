// ops/elementwise.cpp — element-wise ops: CPU loops, dispatch to cuda/elementwise.cu, and autograd formulas.
//   d(a+b) = (g, g); d(a-b) = (g, -g); d(a*b) = (g*b, g*a); d(a/b) = (g/b, -g*out/b); each reduced to the operand's
//   shape. exp' = out; log' = 1/a; sqrt' = 0.5/out; pow' = p*a^(p-1); abs' = sign(a).
#include "ops/elementwise.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/iter.h"
#include "ops/reduce.h"
#include "ops/unary_math.h"

namespace stereort {

namespace {

template <typename T> struct CpuOp { using type = float; };
template <> struct CpuOp<double> { using type = double; };

void cpu_unary(UnaryKind k, const Tensor& out, const Tensor& x, double p) {
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same<T, double>::value || std::is_same<T, float>::value || std::is_same<T, Half>::value ||
                  std::is_same<T, BFloat16>::value) {
      using O = typename CpuOp<T>::type;
      const T* xp = x.data<T>();
      T* op = out.data<T>();
      int64_t n = x.numel();
      for (int64_t i = 0; i < n; ++i) op[i] = from_d<T>(apply_unary<O>(k, O(to_d(xp[i])), O(p)));
    } else {
      STEREORT_FAIL("element-wise math needs a floating tensor, got {}", x.desc());
    }
  });
}

void cpu_binary(BinaryKind k, const Tensor& out, const Tensor& a, const Tensor& b) {
  IterDims it = coalesce_dims(out.shape(), {out.strides(), a.strides(), b.strides()});
  dispatch_all(out.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same<T, double>::value || std::is_same<T, float>::value || std::is_same<T, Half>::value ||
                  std::is_same<T, BFloat16>::value) {
      using O = typename CpuOp<T>::type;
      T* op = out.data<T>();
      const T* ap = a.data<T>();
      const T* bp = b.data<T>();
      int nd = int(it.sizes.size());
      std::vector<int64_t> idx(size_t(nd), 0);
      int64_t oo = 0, oa = 0, ob = 0, n = shape_numel(it.sizes);
      for (int64_t i = 0; i < n; ++i) {
        op[oo] = from_d<T>(apply_binary<O>(k, O(to_d(ap[oa])), O(to_d(bp[ob]))));
        for (int d = nd - 1; d >= 0; --d) {
          if (++idx[size_t(d)] < it.sizes[size_t(d)]) {
            oo += it.strides[0][size_t(d)]; oa += it.strides[1][size_t(d)]; ob += it.strides[2][size_t(d)];
            break;
          }
          oo -= it.strides[0][size_t(d)] * (it.sizes[size_t(d)] - 1);
          oa -= it.strides[1][size_t(d)] * (it.sizes[size_t(d)] - 1);
          ob -= it.strides[2][size_t(d)] * (it.sizes[size_t(d)] - 1);
          idx[size_t(d)] = 0;
        }
      }
    } else {
      STEREORT_FAIL("element-wise math needs floating tensors, got {}", out.desc());
    }
  });
}

const char* binary_name(BinaryKind k) {
  switch (k) {
    case BinaryKind::Add: return "add";
    case BinaryKind::Sub: return "sub";
    case BinaryKind::Mul: return "mul";
    case BinaryKind::Div: return "div";
    case BinaryKind::Max: return "maximum";
    case BinaryKind::Min: return "minimum";
    case BinaryKind::MaskGreater: return "mask_greater";
    case BinaryKind::Ge: return "greater_equal";
  }
  return "binary";
}

}  // namespace

Tensor unary_raw(UnaryKind k, const Tensor& x_in, double p) {
  STEREORT_CHECK(dtype_is_floating(x_in.dtype()), "element-wise op: input {} is not floating", x_in.desc());
  Tensor x = x_in.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (x.numel() == 0) return out;
  if (x.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::unary(k, out, x, p, Context::get(x.device())));
  } else {
    cpu_unary(k, out, x, p);
  }
  return out;
}

Tensor binary_raw(BinaryKind k, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(k);
  STEREORT_CHECK(a.dtype() == b.dtype(), "{}: dtypes differ ({} vs {}); cast one operand with .to()", name, a.desc(),
                 b.desc());
  STEREORT_CHECK(a.device() == b.device(), "{}: operands on different devices ({} vs {}); move one with .to()", name,
                 a.desc(), b.desc());
  STEREORT_CHECK(dtype_is_floating(a.dtype()), "{}: operands must be floating, got {}", name, a.desc());
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  Tensor av = make_view(a, shape, broadcast_strides(a.shape(), a.strides(), shape), a.offset());
  Tensor bv = make_view(b, shape, broadcast_strides(b.shape(), b.strides(), shape), b.offset());
  if (a.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::binary(k, out, av, bv, Context::get(a.device())));
  } else {
    cpu_binary(k, out, av, bv);
  }
  return out;
}

// ---- differentiable binary ops ---------------------------------------------------------------------------------------
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryKind::Add, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record("add", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {sum_to_shape(g[0], sa), sum_to_shape(g[0], sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryKind::Sub, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record("sub", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {sum_to_shape(g[0], sa), sum_to_shape(neg(g[0]), sb)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryKind::Mul, a, b);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  Tensor ad = gb ? a.detach() : Tensor(), bd = ga ? b.detach() : Tensor();
  Shape sa = a.shape(), sb = b.shape();
  record("mul", {a, b}, {out}, [ad, bd, sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {bd.defined() ? sum_to_shape(mul(g[0], bd), sa) : Tensor(),
            ad.defined() ? sum_to_shape(mul(g[0], ad), sb) : Tensor()};
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryKind::Div, a, b);
  Tensor bd = b.detach(), od = b.requires_grad() ? out.detach() : Tensor();
  Shape sa = a.shape(), sb = b.shape();
  record("div", {a, b}, {out}, [bd, od, sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    Tensor ga = div(g[0], bd);
    return {sum_to_shape(ga, sa), od.defined() ? sum_to_shape(neg(mul(ga, od)), sb) : Tensor()};
  });
  return out;
}

static Tensor minmax(BinaryKind k, const char* name, const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(k, a, b);
  Tensor ad = a.detach(), bd = b.detach();
  Shape sa = a.shape(), sb = b.shape();
  record(name, {a, b}, {out}, [k, ad, bd, sa, sb](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    // a receives the gradient where it won (ties go to a), b elsewhere.
    Tensor mask_a = k == BinaryKind::Max ? binary_raw(BinaryKind::Ge, ad, bd) : binary_raw(BinaryKind::Ge, bd, ad);
    Tensor ga = mul(g[0], mask_a);
    return {sum_to_shape(ga, sa), sum_to_shape(sub(g[0], ga), sb)};
  });
  return out;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return minmax(BinaryKind::Max, "maximum", a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return minmax(BinaryKind::Min, "minimum", a, b); }

// ---- scalar and unary ops ----------------------------------------------------------------------------------------------
static Tensor scaled_grad_op(const char* name, UnaryKind k, const Tensor& a, double p, double grad_scale) {
  Tensor out = unary_raw(k, a, p);
  record(name, {a}, {out}, [grad_scale](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {grad_scale == 1.0 ? g[0] : unary_raw(UnaryKind::MulScalar, g[0], grad_scale)};
  });
  return out;
}
Tensor add(const Tensor& a, double s) { return scaled_grad_op("add_scalar", UnaryKind::AddScalar, a, s, 1.0); }
Tensor sub(const Tensor& a, double s) { return scaled_grad_op("sub_scalar", UnaryKind::AddScalar, a, -s, 1.0); }
Tensor mul(const Tensor& a, double s) { return scaled_grad_op("mul_scalar", UnaryKind::MulScalar, a, s, s); }
Tensor div(const Tensor& a, double s) { return scaled_grad_op("div_scalar", UnaryKind::MulScalar, a, 1.0 / s, 1.0 / s); }
Tensor rsub(double s, const Tensor& a) { return scaled_grad_op("rsub_scalar", UnaryKind::RsubScalar, a, s, -1.0); }
Tensor neg(const Tensor& a) { return scaled_grad_op("neg", UnaryKind::Neg, a, 0.0, -1.0); }

Tensor exp(const Tensor& a) {
  Tensor out = unary_raw(UnaryKind::Exp, a);
  Tensor od = out.detach();
  record("exp", {a}, {out}, [od](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {mul(g[0], od)}; });
  return out;
}

Tensor log(const Tensor& a) {
  Tensor out = unary_raw(UnaryKind::Log, a);
  Tensor ad = a.detach();
  record("log", {a}, {out}, [ad](const std::vector<Tensor>& g) -> std::vector<Tensor> { return {div(g[0], ad)}; });
  return out;
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary_raw(UnaryKind::Sqrt, a);
  Tensor od = out.detach();
  record("sqrt", {a}, {out}, [od](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {div(mul(g[0], 0.5), od)};
  });
  return out;
}

Tensor rsqrt(const Tensor& a) {
  Tensor out = unary_raw(UnaryKind::Rsqrt, a);
  Tensor ad = a.detach(), od = out.detach();
  record("rsqrt", {a}, {out}, [ad, od](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {mul(g[0], mul(div(od, ad), -0.5))};  // d a^-1/2 = -1/2 a^-3/2
  });
  return out;
}

Tensor pow(const Tensor& a, double p) {
  Tensor out = unary_raw(UnaryKind::Pow, a, p);
  Tensor ad = a.detach();
  record("pow", {a}, {out}, [ad, p](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {mul(g[0], mul(unary_raw(UnaryKind::Pow, ad, p - 1.0), p))};
  });
  return out;
}

Tensor abs(const Tensor& a) {
  Tensor out = unary_raw(UnaryKind::Abs, a);
  Tensor ad = a.detach();
  record("abs", {a}, {out}, [ad](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {mul(g[0], unary_raw(UnaryKind::Sign, ad))};
  });
  return out;
}

Tensor square(const Tensor& a) {
  Tensor out = unary_raw(UnaryKind::Square, a);
  Tensor ad = a.detach();
  record("square", {a}, {out}, [ad](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    return {mul(g[0], mul(ad, 2.0))};
  });
  return out;
}

}  // namespace stereort
