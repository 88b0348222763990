// ops/corr1d.cpp — RAFT-Stereo correlation: the level-0 volume as per-row GEMMs (gemm_raw, so CPU and cuBLAS share
// the code), pooling and lookup CPU loops (double), device dispatch and the three autograd nodes
// (corr1d_volume, corr1d_pool, corr1d_lookup).
#include "ops/corr1d.h"

#include <cmath>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/matmul.h"

namespace stereort {
namespace ref {

void corr1d_pool_forward(const Tensor& out, const Tensor& in) {
  const int64_t W = in.size(-1), Wo = out.size(-1), rows = in.numel() / std::max<int64_t>(W, 1);
  dispatch_float(in.dtype(), "corr1d_pyramid", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = in.data<T>();
    T* o = out.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < Wo; ++j) o[r * Wo + j] = T(0.5 * (double(x[r * W + 2 * j]) + double(x[r * W + 2 * j + 1])));
  });
}

void corr1d_pool_backward(const Tensor& din, const Tensor& dout) {
  const int64_t W = din.size(-1), Wo = dout.size(-1), rows = din.numel() / std::max<int64_t>(W, 1);
  dispatch_float(din.dtype(), "corr1d_pyramid backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* g = dout.data<T>();
    T* d = din.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < W; ++x) d[r * W + x] = x / 2 < Wo ? T(0.5 * double(g[r * Wo + x / 2])) : T(0);
  });
}

void corr1d_lookup_forward(const Tensor& out, const std::vector<Tensor>& pyramid, const Tensor& coords,
                           int64_t radius) {
  const int64_t B = coords.size(0), H = coords.size(1), W1 = coords.size(2), K = 2 * radius + 1;
  const int64_t L = int64_t(pyramid.size());
  dispatch_float(coords.dtype(), "corr1d_lookup", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* X = coords.data<T>();
    T* o = out.data<T>();  // (B,L*K,H,W1)
    for (int64_t i = 0; i < L; ++i) {
      const T* c = pyramid[size_t(i)].data<T>();  // (B,H,W1,Wi)
      const int64_t Wi = pyramid[size_t(i)].size(3);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W1; ++x) {
            const int64_t q = (b * H + y) * W1 + x;
            const double p = std::ldexp(double(X[q]), -int(i));
            const double f = std::floor(p), a = p - f;
            const bool ok = std::isfinite(p) && std::fabs(p) < 1e9;
            const T* row = c + q * Wi;
            for (int64_t k = 0; k < K; ++k) {
              double v = 0;
              if (ok) {
                const int64_t x0 = int64_t(f) + k - radius;
                if (x0 >= 0 && x0 < Wi) v += (1 - a) * double(row[x0]);
                if (x0 + 1 >= 0 && x0 + 1 < Wi) v += a * double(row[x0 + 1]);
              }
              o[((b * L * K + i * K + k) * H + y) * W1 + x] = T(v);
            }
          }
    }
  });
}

void corr1d_lookup_backward(const std::vector<Tensor>& dpyramid, const Tensor& dout, const Tensor& coords,
                            int64_t radius) {
  const int64_t B = coords.size(0), H = coords.size(1), W1 = coords.size(2), K = 2 * radius + 1;
  const int64_t L = int64_t(dpyramid.size());
  dispatch_float(coords.dtype(), "corr1d_lookup backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* X = coords.data<T>();
    const T* g = dout.data<T>();
    for (int64_t i = 0; i < L; ++i) {
      T* dc = dpyramid[size_t(i)].data<T>();
      const int64_t Wi = dpyramid[size_t(i)].size(3);
      for (int64_t q = 0; q < B * H * W1 * Wi; ++q) dc[q] = T(0);
      for (int64_t b = 0; b < B; ++b)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t x = 0; x < W1; ++x) {
            const int64_t q = (b * H + y) * W1 + x;
            const double p = std::ldexp(double(X[q]), -int(i));
            if (!(std::isfinite(p) && std::fabs(p) < 1e9)) continue;
            const double f = std::floor(p), a = p - f;
            T* row = dc + q * Wi;
            for (int64_t k = 0; k < K; ++k) {
              const double gk = double(g[((b * L * K + i * K + k) * H + y) * W1 + x]);
              const int64_t x0 = int64_t(f) + k - radius;
              if (x0 >= 0 && x0 < Wi) row[x0] = T(double(row[x0]) + (1 - a) * gk);
              if (x0 + 1 >= 0 && x0 + 1 < Wi) row[x0 + 1] = T(double(row[x0 + 1]) + a * gk);
            }
          }
    }
  });
}

}  // namespace ref

namespace {

// C0 (B,H,W1,W2) = alpha * f1^T f2 per (b, y): one strided-batched GEMM (batch = H rows) per image.
void corr_volume_raw(const Tensor& out, const Tensor& f1, const Tensor& f2, double alpha) {
  const int64_t B = f1.size(0), C = f1.size(1), H = f1.size(2), W1 = f1.size(3), W2 = f2.size(3);
  for (int64_t b = 0; b < B; ++b) {
    Tensor a = make_view(f1, {H, W1, C}, {W1, 1, H * W1}, f1.offset() + b * C * H * W1);  // column-major (W1,C)
    Tensor m = make_view(f2, {H, C, W2}, {W2, H * W2, 1}, f2.offset() + b * C * H * W2);  // row-major (C,W2)
    gemm_raw(make_view(out, {H, W1, W2}, {W1 * W2, W2, 1}, out.offset() + b * H * W1 * W2), a, m, alpha);
  }
}

// Gradients of corr_volume_raw: dF1 = alpha dC F2, dF2 = alpha dC^T F1, computed as (B,H,C,W) GEMM outputs and
// permuted back to (B,C,H,W).
std::vector<Tensor> corr_volume_backward(const Tensor& dc, const Tensor& f1, const Tensor& f2, double alpha) {
  const int64_t B = f1.size(0), C = f1.size(1), H = f1.size(2), W1 = f1.size(3), W2 = f2.size(3);
  Tensor d1 = Tensor::empty({B, H, C, W1}, f1.dtype(), f1.device());
  Tensor d2 = Tensor::empty({B, H, C, W2}, f1.dtype(), f1.device());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t o1 = f1.offset() + b * C * H * W1, o2 = f2.offset() + b * C * H * W2;
    const int64_t oc = dc.offset() + b * H * W1 * W2;
    // d1[b,y] (C,W1) = F2[b,:,y,:] (C,W2) @ dC[b,y]^T (W2,W1)
    gemm_raw(make_view(d1, {H, C, W1}, {C * W1, W1, 1}, b * H * C * W1), make_view(f2, {H, C, W2}, {W2, H * W2, 1}, o2),
             make_view(dc, {H, W2, W1}, {W1 * W2, 1, W2}, oc), alpha);
    // d2[b,y] (C,W2) = F1[b,:,y,:] (C,W1) @ dC[b,y] (W1,W2)
    gemm_raw(make_view(d2, {H, C, W2}, {C * W2, W2, 1}, b * H * C * W2), make_view(f1, {H, C, W1}, {W1, H * W1, 1}, o1),
             make_view(dc, {H, W1, W2}, {W1 * W2, W2, 1}, oc), alpha);
  }
  return {d1.permute({0, 2, 1, 3}).contiguous(), d2.permute({0, 2, 1, 3}).contiguous()};
}

Tensor pool_raw(const Tensor& in) {
  Shape s = in.shape();
  s.back() /= 2;
  Tensor out = Tensor::empty(s, in.dtype(), in.device());
  if (out.numel() == 0) return out;
  if (in.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::corr1d_pool_forward(out, in, Context::get(in.device())));
  } else {
    ref::corr1d_pool_forward(out, in);
  }
  return out;
}

Tensor pool(const Tensor& in) {
  Tensor x = in.detach().contiguous();
  Tensor out = pool_raw(x);
  Shape is = in.shape();
  record("corr1d_pool", {in}, {out}, [is](const std::vector<Tensor>& g) {
    Tensor go = g[0].contiguous();
    Tensor din = Tensor::empty(is, go.dtype(), go.device());
    if (go.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::corr1d_pool_backward(din, go, Context::get(go.device())));
    } else {
      ref::corr1d_pool_backward(din, go);
    }
    return std::vector<Tensor>{din};
  });
  return out;
}

}  // namespace

std::vector<Tensor> corr1d_pyramid(const Tensor& f1, const Tensor& f2, int64_t levels) {
  STEREORT_CHECK(f1.defined() && f2.defined(), "corr1d_pyramid: both feature maps must be defined");
  STEREORT_CHECK(f1.dim() == 4 && f2.dim() == 4 && f1.size(0) == f2.size(0) && f1.size(1) == f2.size(1) &&
                     f1.size(2) == f2.size(2),
                 "corr1d_pyramid: features must be (B,C,H,W1) and (B,C,H,W2) with equal B, C, H; got {} and {}",
                 shape_str(f1.shape()), shape_str(f2.shape()));
  STEREORT_CHECK(f1.dtype() == f2.dtype() && f1.device() == f2.device(),
                 "corr1d_pyramid: features {} and {} differ in dtype or device; cast with .to()", f1.desc(), f2.desc());
  STEREORT_CHECK(dtype_is_floating(f1.dtype()), "corr1d_pyramid: features must be floating, got {}", f1.desc());
  const int64_t B = f1.size(0), C = f1.size(1), H = f1.size(2), W1 = f1.size(3), W2 = f2.size(3);
  STEREORT_CHECK(levels >= 1 && levels <= 8 && (W2 >> (levels - 1)) >= 1,
                 "corr1d_pyramid: {} levels need 1..8 levels and W2 = {} >= 2^(levels-1) (features {}); use fewer "
                 "levels or larger feature maps", levels, W2, shape_str(f2.shape()));
  // correlation stays fp32 (f64 for CPU gradient checks)
  const DType cdt = f1.dtype() == DType::F64 && !f1.is_cuda() ? DType::F64 : DType::F32;
  Tensor a = f1.detach().contiguous().to(cdt), b = f2.detach().contiguous().to(cdt);
  const double alpha = 1.0 / std::sqrt(double(C));
  Tensor c0 = Tensor::empty({B, H, W1, W2}, cdt, f1.device());
  if (c0.numel() > 0) corr_volume_raw(c0, a, b, alpha);
  const DType fdt = f1.dtype();
  record("corr1d_volume", {f1, f2}, {c0}, [a, b, alpha, fdt](const std::vector<Tensor>& g) {
    std::vector<Tensor> d = corr_volume_backward(g[0].contiguous(), a, b, alpha);
    return std::vector<Tensor>{d[0].to(fdt), d[1].to(fdt)};
  });
  std::vector<Tensor> pyr{c0};
  for (int64_t i = 1; i < levels; ++i) pyr.push_back(pool(pyr.back()));
  return pyr;
}

Tensor corr1d_lookup(const std::vector<Tensor>& pyramid, const Tensor& coords, int64_t radius) {
  STEREORT_CHECK(!pyramid.empty() && pyramid.size() <= 8, "corr1d_lookup: the pyramid needs 1..8 levels, got {}",
                 pyramid.size());
  STEREORT_CHECK(coords.defined() && coords.dim() == 3, "corr1d_lookup: coords must be (B,H,W1), got {}",
                 coords.defined() ? coords.desc() : std::string("undefined"));
  STEREORT_CHECK(radius >= 0, "corr1d_lookup: radius must be >= 0, got {}", radius);
  const int64_t B = coords.size(0), H = coords.size(1), W1 = coords.size(2), L = int64_t(pyramid.size());
  const DType cdt = pyramid[0].dtype();
  std::vector<Tensor> levels;
  for (size_t i = 0; i < pyramid.size(); ++i) {
    const Tensor& p = pyramid[i];
    STEREORT_CHECK(p.defined() && p.dim() == 4 && p.size(0) == B && p.size(1) == H && p.size(2) == W1,
                   "corr1d_lookup: level {} is {} but coords {} need (B,H,W1,Wi) = ({},{},{},Wi)", i,
                   p.defined() ? shape_str(p.shape()) : "undefined", shape_str(coords.shape()), B, H, W1);
    STEREORT_CHECK(p.dtype() == cdt && (cdt == DType::F32 || (cdt == DType::F64 && !p.is_cuda())) &&
                       p.device() == coords.device(),
                   "corr1d_lookup: level {} is {}; every level must be f32 (f64 on the CPU) on the device of coords {}",
                   i, p.desc(), coords.desc());
    levels.push_back(p.detach().contiguous());
  }
  Tensor X = coords.detach().contiguous().to(cdt);  // detached: RAFT-Stereo detaches the coordinates
  Tensor out = Tensor::empty({B, L * (2 * radius + 1), H, W1}, cdt, coords.device());
  if (coords.is_cuda()) {
    STEREORT_CUDA_PATH(cuda::corr1d_lookup_forward(out, levels, X, radius, Context::get(coords.device())));
  } else {
    ref::corr1d_lookup_forward(out, levels, X, radius);
  }
  std::vector<Tensor> inputs = pyramid;
  std::vector<Shape> shapes;
  for (const Tensor& p : levels) shapes.push_back(p.shape());
  record("corr1d_lookup", inputs, {out}, [X, shapes, radius, cdt](const std::vector<Tensor>& g) {
    std::vector<Tensor> d;
    for (const Shape& s : shapes) d.push_back(Tensor::empty(s, cdt, X.device()));
    Tensor go = g[0].contiguous();
    if (X.is_cuda()) {
      STEREORT_CUDA_PATH(cuda::corr1d_lookup_backward(d, go, X, radius, Context::get(X.device())));
    } else {
      ref::corr1d_lookup_backward(d, go, X, radius);
    }
    return d;
  });
  return out;
}

}  // namespace stereort
