// ops/ss2d.cpp — cross_scan / cross_merge / cross_route / cross_unroute (gathers with the index maps of ops/ss2d.h),
// their autograd (each pair are mutual adjoints), the composed SS2D scan, and the fused CUDA ss2d_scan.
#include "ops/ss2d.h"

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/reduce.h"
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
                 "ss2d_scan: delta {} must be (B,4,Di,H*W) = ({},4,{},{}) for x {}",
                 delta.defined() ? delta.desc() : "undefined", d.B, d.Di, d.L, x.desc());
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

namespace {

// ---- fused CUDA path ---------------------------------------------------------------------------------------------------
// Directions 0/2 read the pixel-order maps forwards/backwards; directions 1/3 read one column-major copy of x (shared)
// and of their own delta/B/C maps (transposed once, 32x32 tiles), forwards/backwards. Each direction writes its output
// in the memory order it read; one tiled pass merges the four into row-major y. The backward mirrors this: dout is
// transposed once for 1/3, du per direction merges into dx, ddelta/dB/dC of 1/3 are transposed back.
struct FusedInputs {
  Tensor x, delta, A, Bs, Cs, D, bias;  // contiguous; A/D/bias f32
  Ss2dDims d;
};

Tensor transposed_slots(const Tensor& t, int64_t H, int64_t W, const Context& ctx) {
  // t (B,4,C,L) pixel order -> (B,2,C,L): slots 1 and 3 as (W,H) column-major sequences.
  const int64_t B = t.size(0), C = t.size(2), L = H * W;
  Tensor out = Tensor::empty({B, 2, C, L}, t.dtype(), t.device());
  STEREORT_CUDA_PATH({
    const size_t es = dtype_size(t.dtype());
    for (int j = 0; j < 2; ++j)
      cuda::transpose_rc(static_cast<char*>(out.data_ptr()) + size_t(j * C * L) * es,
                         static_cast<const char*>(t.data_ptr()) + size_t((2 * j + 1) * C * L) * es, t.dtype(), B, C, H,
                         W, 4 * C * L, L, 2 * C * L, L, false, ctx);
  });
  return out;
}

// Scatter (B,2,C,L) column-major slots back into slots 1 and 3 of dst (B,4,C,L) pixel order.
void untranspose_slots(const Tensor& dst, const Tensor& t, int64_t H, int64_t W, const Context& ctx) {
  STEREORT_CUDA_PATH({
    const int64_t B = t.size(0), C = t.size(2), L = H * W;
    const size_t es = dtype_size(t.dtype());
    for (int j = 0; j < 2; ++j)
      cuda::transpose_rc(static_cast<char*>(dst.data_ptr()) + size_t((2 * j + 1) * C * L) * es,
                         static_cast<const char*>(t.data_ptr()) + size_t(j * C * L) * es, t.dtype(), B, C, W, H,
                         2 * C * L, L, 4 * C * L, L, false, ctx);
  });
}

// Per-direction operand: even directions from `pix` (B,4,R,L) slot k, odd ones from `tr` (B,2,R,L) slot k/2.
void fill_dirs(ScanOperand& o, const Tensor& pix, const Tensor& tr, int64_t R, int64_t L) {
  const size_t es = dtype_size(pix.dtype());
  for (int k = 0; k < 4; ++k) {
    const bool odd = k & 1;
    const Tensor& t = odd ? tr : pix;
    o.ptr[k] = static_cast<char*>(t.data_ptr()) + size_t((odd ? k / 2 : k) * R * L) * es;
    o.batch[k] = (odd ? 2 : 4) * R * L;
    o.row[k] = L;
    o.group[k] = 0;
  }
}
// The same (B,R,L) map for every direction: x for 0/2, its transpose for 1/3.
void fill_shared(ScanOperand& o, const Tensor& pix, const Tensor& tr, int64_t R, int64_t L) {
  for (int k = 0; k < 4; ++k) {
    o.ptr[k] = (k & 1 ? tr : pix).data_ptr();
    o.batch[k] = R * L;
    o.row[k] = L;
  }
}

SelectiveScanParams fused_params(const FusedInputs& f, const Tensor& xT, const Tensor& dT, const Tensor& BT,
                                 const Tensor& CT) {
  const Ss2dDims& d = f.d;
  SelectiveScanParams p;
  p.batch = d.B; p.dim = 4 * d.Di; p.dstate = d.N; p.seqlen = d.L; p.groups = 4; p.dirs = 4;
  p.reverse[2] = p.reverse[3] = true;
  p.in_dtype = f.x.dtype();
  p.softplus = true;
  fill_shared(p.u, f.x, xT, d.Di, d.L);
  fill_dirs(p.delta, f.delta, dT, d.Di, d.L);
  fill_dirs(p.B, f.Bs, BT, d.N, d.L);
  fill_dirs(p.C, f.Cs, CT, d.N, d.L);
  p.A = f.A.data<float>();
  p.Dskip = f.D.data<float>();
  p.delta_bias = f.bias.data<float>();
  return p;
}

Tensor ss2d_scan_fused(const Tensor& x_in, const Tensor& delta_in, const Tensor& A_in, const Tensor& Bs_in,
                       const Tensor& Cs_in, const Tensor& D_in, const Tensor& bias_in, bool out_fp32) {
  FusedInputs f;
  f.d = ss2d_check(x_in, delta_in, A_in, Bs_in, Cs_in, D_in, bias_in);
  const Ss2dDims& d = f.d;
  const DType dt = x_in.dtype();
  STEREORT_CHECK(dt == DType::F32 || dtype_is_half(dt),
                 "ss2d_scan (CUDA): x {} must be f32, f16 or bf16 (use the CPU for f64)", x_in.desc());
  for (const Tensor* t : {&delta_in, &Bs_in, &Cs_in})
    STEREORT_CHECK(t->dtype() == dt, "ss2d_scan: delta/Bs/Cs {} must have x's dtype ({})", t->desc(), dtype_name(dt));
  for (const Tensor* t : {&delta_in, &A_in, &Bs_in, &Cs_in, &D_in, &bias_in})
    STEREORT_CHECK(t->device() == x_in.device(), "ss2d_scan: all inputs must be on x's device ({}); got {}",
                   x_in.desc(), t->desc());
  auto f32 = [](const Tensor& t) { return t.detach().to(DType::F32).contiguous(); };
  f.x = x_in.detach().contiguous();
  f.delta = delta_in.detach().contiguous();
  f.Bs = Bs_in.detach().contiguous();
  f.Cs = Cs_in.detach().contiguous();
  f.A = f32(A_in);
  f.D = f32(D_in);
  f.bias = f32(bias_in);
  const Device dev = x_in.device();
  const Context& ctx = Context::get(dev);
  const DType odt = dtype_is_half(dt) && !out_fp32 ? dt : DType::F32;

  Tensor xT = Tensor::empty({d.B, d.Di, d.L}, dt, dev);
  STEREORT_CUDA_PATH(cuda::transpose_rc(xT.data_ptr(), f.x.data_ptr(), dt, d.B * d.Di, 1, d.H, d.W, d.L, 0, d.L, 0,
                                        false, ctx));
  Tensor dT = transposed_slots(f.delta, d.H, d.W, ctx);
  Tensor BT = transposed_slots(f.Bs, d.H, d.W, ctx), CT = transposed_slots(f.Cs, d.H, d.W, ctx);
  SelectiveScanParams p = fused_params(f, xT, dT, BT, CT);
  p.out_dtype = odt;
  Tensor o = Tensor::empty({d.B, 4, d.Di, d.L}, odt, dev);
  for (int k = 0; k < 4; ++k) {
    p.out.ptr[k] = static_cast<char*>(o.data_ptr()) + size_t(k * d.Di * d.L) * dtype_size(odt);
    p.out.batch[k] = 4 * d.Di * d.L;
    p.out.row[k] = d.L;
  }
  std::vector<Tensor> inputs{x_in, delta_in, A_in, Bs_in, Cs_in, D_in, bias_in};
  const bool grad = needs_grad(inputs);
  Tensor carries;  // states at the backward's chunk starts (only when a backward will run)
  STEREORT_CUDA_PATH({
    p.carry_stride = cuda::selective_scan_carry_stride(d.L);
    p.n_carries = (d.L + p.carry_stride - 1) / p.carry_stride;
    if (grad) {
      carries = Tensor::empty({d.B, 4 * d.Di, p.n_carries, d.N}, DType::F32, dev);
      p.carries = carries.data<float>();
    }
    cuda::selective_scan_fwd(p, ctx);
  });
  Tensor y = Tensor::empty({d.B, d.Di, d.L}, odt, dev);
  STEREORT_CUDA_PATH(cuda::ss2d_merge(y, o, d.H, d.W, ctx));
  o = Tensor();

  if (!grad) return y;
  std::vector<DType> in_dtypes;
  for (const Tensor& t : inputs) in_dtypes.push_back(t.dtype());
  p.out = ScanOperand{};
  record("ss2d_scan", inputs, {y},
         [f, xT, dT, BT, CT, carries, p, in_dtypes](const std::vector<Tensor>& g) -> std::vector<Tensor> {
           const Ss2dDims& d = f.d;
           const Device dev = f.x.device();
           const Context& ctx = Context::get(dev);
           const DType dt = f.x.dtype();
           SelectiveScanParams q = p;
           q.carries = carries.data<float>();
           Tensor dout = g[0].to(p.out_dtype).contiguous();
           Tensor doutT = Tensor::empty({d.B, d.Di, d.L}, p.out_dtype, dev);
           STEREORT_CUDA_PATH(cuda::transpose_rc(doutT.data_ptr(), dout.data_ptr(), p.out_dtype, d.B * d.Di, 1, d.H,
                                                 d.W, d.L, 0, d.L, 0, false, ctx));
           fill_shared(q.dout, dout, doutT, d.Di, d.L);
           // du per direction in its memory order (merged into dx below).
           Tensor du = Tensor::empty({d.B, 4, d.Di, d.L}, dt, dev);
           for (int k = 0; k < 4; ++k) {
             q.du.ptr[k] = static_cast<char*>(du.data_ptr()) + size_t(k * d.Di * d.L) * dtype_size(dt);
             q.du.batch[k] = 4 * d.Di * d.L;
             q.du.row[k] = d.L;
           }
           Tensor ddelta = Tensor::empty({d.B, 4, d.Di, d.L}, dt, dev);
           Tensor ddT = Tensor::empty({d.B, 2, d.Di, d.L}, dt, dev);
           fill_dirs(q.ddelta, ddelta, ddT, d.Di, d.L);
           // f32 accumulators: directions 0/2 add into slots 0/2, 1/3 into the column-major pair (slots 1/3 of dB/dC
           // are then overwritten by the transpose back, so zeroing them is the only waste).
           Tensor dB = Tensor::zeros({d.B, 4, d.N, d.L}, DType::F32, dev);
           Tensor dC = Tensor::zeros({d.B, 4, d.N, d.L}, DType::F32, dev);
           Tensor dBT = Tensor::zeros({d.B, 2, d.N, d.L}, DType::F32, dev);
           Tensor dCT = Tensor::zeros({d.B, 2, d.N, d.L}, DType::F32, dev);
           fill_dirs(q.dB, dB, dBT, d.N, d.L);
           fill_dirs(q.dC, dC, dCT, d.N, d.L);
           Tensor dA = Tensor::empty({d.B, 4 * d.Di, d.N}, DType::F32, dev);
           Tensor dD = Tensor::empty({d.B, 4 * d.Di}, DType::F32, dev);
           Tensor dbias = Tensor::empty({d.B, 4 * d.Di}, DType::F32, dev);
           q.dA_part = dA.data<float>();
           q.dD_part = dD.data<float>();
           q.dbias_part = dbias.data<float>();
           STEREORT_CUDA_PATH(cuda::selective_scan_bwd(q, ctx));
           Tensor dx = Tensor::empty({d.B, d.Di, d.L}, dt, dev);
           STEREORT_CUDA_PATH(cuda::ss2d_merge(dx, du, d.H, d.W, ctx));
           untranspose_slots(ddelta, ddT, d.H, d.W, ctx);
           untranspose_slots(dB, dBT, d.H, d.W, ctx);
           untranspose_slots(dC, dCT, d.H, d.W, ctx);
           return {dx.reshape({d.B, d.Di, d.H, d.W}).to(in_dtypes[0]), ddelta.to(in_dtypes[1]),
                   sum(dA, {0}).to(in_dtypes[2]), dB.to(in_dtypes[3]), dC.to(in_dtypes[4]),
                   sum(dD, {0}).to(in_dtypes[5]), sum(dbias, {0}).to(in_dtypes[6])};
         });
  return y;
}

}  // namespace

Tensor ss2d_scan(const Tensor& x, const Tensor& delta, const Tensor& A, const Tensor& Bs, const Tensor& Cs,
                 const Tensor& Dskip, const Tensor& delta_bias, bool out_fp32) {
  if (x.defined() && x.is_cuda()) return ss2d_scan_fused(x, delta, A, Bs, Cs, Dskip, delta_bias, out_fp32);
  return ss2d_scan_composed(x, delta, A, Bs, Cs, Dskip, delta_bias, out_fp32);
}

}  // namespace stereort
