// ops/ss2d.cpp — cross_scan / cross_merge / cross_route / cross_unroute (gathers with the index maps of ops/ss2d.h),
// their autograd (each pair are mutual adjoints), the composed SS2D scan, and the fused CUDA ss2d_scan.
#include "ops/ss2d.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/selective_scan.h"

namespace stereort {

namespace {

const char* cross_name(CrossMode m) {
  switch (m) {
    case CrossMode::Scan: return "cross_scan";
    case CrossMode::Merge: return "cross_merge";
    case CrossMode::Route: return "cross_route";
    case CrossMode::Unroute: return "cross_unroute";
  }
  return "cross";
}

void cpu_cross(CrossMode mode, const Tensor& dst, const Tensor& src, int64_t H, int64_t W) {
  const int64_t B = dst.size(0), K = dst.size(1), C = dst.size(2), L = H * W, Ks = src.size(1);
  dispatch_all(src.dtype(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same<T, double>::value || std::is_same<T, float>::value || std::is_same<T, Half>::value ||
                  std::is_same<T, BFloat16>::value) {
      const T* s = src.data<T>();
      T* d = dst.data<T>();
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < K; ++k)
          for (int64_t c = 0; c < C; ++c) {
            T* drow = d + ((b * K + k) * C + c) * L;
            if (mode == CrossMode::Merge) {
              for (int64_t p = 0; p < L; ++p) {
                double acc = 0;
                for (int kk = 0; kk < 4; ++kk) acc += to_d(s[((b * 4 + kk) * C + c) * L + ss2d_seq(kk, p, H, W)]);
                drow[p] = from_d<T>(acc);
              }
            } else {
              const T* srow = s + ((b * Ks + (Ks == 1 ? 0 : k)) * C + c) * L;
              for (int64_t i = 0; i < L; ++i)
                drow[i] = mode == CrossMode::Unroute ? srow[ss2d_seq(int(k), i, H, W)] : srow[ss2d_pix(int(k), i, H, W)];
            }
          }
    } else {
      STEREORT_FAIL("cross_scan: floating tensors only, got {}", src.desc());
    }
  });
}

}  // namespace

Tensor cross_raw(CrossMode mode, const Tensor& src_in, int64_t H, int64_t W) {
  const char* op = cross_name(mode);
  STEREORT_CHECK(src_in.dim() == 4 && H >= 1 && W >= 1 && src_in.size(3) == H * W,
                 "{}: input {} must be (B,K,C,H*W) with H*W = {}*{}", op, src_in.desc(), H, W);
  STEREORT_CHECK(src_in.size(1) == (mode == CrossMode::Scan ? 1 : 4), "{}: input {} must have {} direction slot(s)", op,
                 src_in.desc(), mode == CrossMode::Scan ? 1 : 4);
  Tensor src = src_in.contiguous();
  Tensor dst = Tensor::empty({src.size(0), mode == CrossMode::Merge ? 1 : 4, src.size(2), H * W}, src.dtype(),
                             src.device());
  if (src.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::cross_gather(mode, dst, src, H, W, Context::get(src.device())));
  } else {
    cpu_cross(mode, dst, src, H, W);
  }
  return dst;
}

namespace {
// The adjoint of each gather: Scan <-> Merge, Route <-> Unroute.
CrossMode adjoint(CrossMode m) {
  switch (m) {
    case CrossMode::Scan: return CrossMode::Merge;
    case CrossMode::Merge: return CrossMode::Scan;
    case CrossMode::Route: return CrossMode::Unroute;
    case CrossMode::Unroute: return CrossMode::Route;
  }
  return m;
}

Tensor cross_op(CrossMode mode, const Tensor& x4, int64_t H, int64_t W, const Shape& in_shape, const Shape& out_shape) {
  Tensor out;
  {
    NoGradGuard ng;
    out = cross_raw(mode, x4.detach(), H, W).reshape(out_shape);
  }
  const int64_t B = x4.size(0), C = x4.size(2);
  record(cross_name(mode), {x4}, {out}, [mode, H, W, B, C, in_shape](const std::vector<Tensor>& g) {
    CrossMode adj = adjoint(mode);
    Tensor g4 = g[0].reshape({B, adj == CrossMode::Scan ? 1 : 4, C, H * W});
    return std::vector<Tensor>{cross_raw(adj, g4, H, W).reshape(in_shape)};
  });
  return out;
}
}  // namespace

Tensor cross_scan(const Tensor& x) {
  STEREORT_CHECK(x.dim() == 4, "cross_scan: input {} must be (B,C,H,W)", x.desc());
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  return cross_op(CrossMode::Scan, x.reshape({B, 1, C, H * W}), H, W, {B, 1, C, H * W}, {B, 4, C, H * W});
}

Tensor cross_merge(const Tensor& ys, int64_t H, int64_t W) {
  STEREORT_CHECK(ys.dim() == 4 && ys.size(1) == 4 && ys.size(3) == H * W,
                 "cross_merge: input {} must be (B,4,C,H*W) with H*W = {}*{}", ys.desc(), H, W);
  const int64_t B = ys.size(0), C = ys.size(2);
  return cross_op(CrossMode::Merge, ys, H, W, ys.shape(), {B, C, H * W});
}

Tensor cross_route(const Tensor& t, int64_t H, int64_t W) {
  STEREORT_CHECK(t.dim() == 4 && t.size(1) == 4 && t.size(3) == H * W,
                 "cross_route: input {} must be (B,4,C,H*W) with H*W = {}*{}", t.desc(), H, W);
  return cross_op(CrossMode::Route, t, H, W, t.shape(), t.shape());
}

Tensor cross_unroute(const Tensor& t, int64_t H, int64_t W) {
  STEREORT_CHECK(t.dim() == 4 && t.size(1) == 4 && t.size(3) == H * W,
                 "cross_unroute: input {} must be (B,4,C,H*W) with H*W = {}*{}", t.desc(), H, W);
  return cross_op(CrossMode::Unroute, t, H, W, t.shape(), t.shape());
}

namespace {
struct Ss2dDims {
  int64_t B, Di, H, W, L, N;
};
Ss2dDims ss2d_check(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& Bs, const Tensor& Cs,
                    const Tensor& Dskip, const Tensor& delta_bias) {
  STEREORT_CHECK(x.defined() && x.dim() == 4, "ss2d_scan: x must be (B,Di,H,W); got {}",
                 x.defined() ? x.desc() : "undefined");
  Ss2dDims d{x.size(0), x.size(1), x.size(2), x.size(3), x.size(2) * x.size(3), 0};
  STEREORT_CHECK(delta.defined() && delta.shape() == Shape({d.B, 4, d.Di, d.L}),
                 "ss2d_scan: delta {} must be (B,4,Di,H*W) = ({},4,{},{}) for x {}", delta.defined() ? delta.desc() : "undefined",
                 d.B, d.Di, d.L, x.desc());
  STEREORT_CHECK(A.defined() && A.dim() == 2 && A.size(0) == 4 * d.Di,
                 "ss2d_scan: A {} must be (4*Di,N) = ({},N), k-major", A.defined() ? A.desc() : "undefined", 4 * d.Di);
  d.N = A.size(1);
  for (const Tensor* t : {&Bs, &Cs})
    STEREORT_CHECK(t->defined() && t->shape() == Shape({d.B, 4, d.N, d.L}),
                   "ss2d_scan: Bs/Cs {} must be (B,4,N,H*W) = ({},4,{},{})", t->defined() ? t->desc() : "undefined",
                   d.B, d.N, d.L);
  for (const Tensor* t : {&Dskip, &delta_bias})
    STEREORT_CHECK(t->defined() && t->dim() == 1 && t->size(0) == 4 * d.Di,
                   "ss2d_scan: Dskip/delta_bias {} must be (4*Di) = ({})", t->defined() ? t->desc() : "undefined",
                   4 * d.Di);
  return d;
}
}  // namespace

Tensor ss2d_scan_composed(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& Bs, const Tensor& Cs,
                          const Tensor& Dskip, const Tensor& delta_bias, bool out_fp32) {
  Ss2dDims d = ss2d_check(x, delta, A, Bs, Cs, Dskip, delta_bias);
  SelectiveScanArgs a;
  a.u = cross_scan(x).reshape({d.B, 4 * d.Di, d.L});
  a.delta = cross_route(delta, d.H, d.W).reshape({d.B, 4 * d.Di, d.L});
  a.A = A;
  a.Bm = cross_route(Bs, d.H, d.W);  // (B, G=4, N, L): channel k*Di+d uses group k
  a.Cm = cross_route(Cs, d.H, d.W);
  a.Dskip = Dskip;
  a.delta_bias = delta_bias;
  a.delta_softplus = true;
  a.out_fp32 = out_fp32;
  Tensor ys = selective_scan(a).reshape({d.B, 4, d.Di, d.L});
  return cross_merge(ys, d.H, d.W);
}

Tensor ss2d_scan(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& Bs, const Tensor& Cs,
                 const Tensor& Dskip, const Tensor& delta_bias, bool out_fp32) {
  return ss2d_scan_composed(x, delta, A, Bs, Cs, Dskip, delta_bias, out_fp32);
}

}  // namespace stereort
