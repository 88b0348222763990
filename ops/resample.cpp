// ops/resample.cpp — argument checks, the coordinate scales, the CPU reference (ref::) and the autograd nodes of
// ops/resample.h. CPU forward: per-axis tap tables, then the separable sum (W innermost). CPU backward: scatter of
// every output's tap weights into a double accumulator (the literal adjoint of the forward loops), so the CUDA
// gather formulation is tested against an independent order of summation.
#include "ops/resample.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/autograd.h"
#include "core/check.h"
#include "core/context.h"
#include "ops/dispatch.h"
#include "ops/resample_taps.h"

namespace stereort {

bool resample_axis_identity(ResampleMode mode, const ResampleAxis& a) {
  if (a.in != a.out) return false;
  if (mode == ResampleMode::Nearest || a.align_corners) return true;
  return a.scale == 1.0 && a.scale_f == 1.0f;
}

namespace {

// ATen area_pixel_compute_scale, in double and in float (scale_factor <= 0 means "derive from the sizes").
ResampleAxis make_axis(int64_t in, int64_t out, bool align_corners, double scale_factor) {
  ResampleAxis a;
  a.in = in;
  a.out = out;
  a.align_corners = align_corners;
  if (align_corners) {
    a.scale = out > 1 ? double(in - 1) / double(out - 1) : 0.0;
    a.scale_f = out > 1 ? float(in - 1) / float(out - 1) : 0.0f;
  } else if (scale_factor > 0) {
    a.scale = 1.0 / scale_factor;
    a.scale_f = float(1.0 / scale_factor);
  } else {
    a.scale = double(in) / double(out);
    a.scale_f = float(in) / float(out);
  }
  return a;
}

template <ResampleMode M, typename O>
struct AxisTable {
  std::vector<int64_t> idx;  // (out, K)
  std::vector<O> w;
  AxisTable(const ResampleAxis& a) : idx(size_t(a.out * kResampleTaps<M>)), w(idx.size()) {
    for (int64_t o = 0; o < a.out; ++o)
      resample_taps<M, O>(a, o, &idx[size_t(o * kResampleTaps<M>)], &w[size_t(o * kResampleTaps<M>)]);
  }
};

template <ResampleMode M, typename O>
void cpu_forward(const ResampleParams& p, const O* x, O* out) {
  constexpr int K = kResampleTaps<M>;
  const bool has_d = !resample_axis_identity(M, p.d);
  const int KD = has_d ? K : 1;
  AxisTable<M, O> td(p.d), th(p.h), tw(p.w);
  const int64_t in_plane = p.d.in * p.h.in * p.w.in;
  for (int64_t n = 0; n < p.nc; ++n) {
    const O* xn = x + n * in_plane;
    for (int64_t z = 0; z < p.d.out; ++z)
      for (int64_t y = 0; y < p.h.out; ++y)
        for (int64_t xo = 0; xo < p.w.out; ++xo) {
          O acc_d = 0;
          for (int kd = 0; kd < KD; ++kd) {
            int64_t iz = has_d ? td.idx[size_t(z * K + kd)] : z;
            O wd = has_d ? td.w[size_t(z * K + kd)] : O(1);
            O acc_h = 0;
            for (int kh = 0; kh < K; ++kh) {
              const O* row = xn + (iz * p.h.in + th.idx[size_t(y * K + kh)]) * p.w.in;
              O acc_w = 0;
              for (int kw = 0; kw < K; ++kw) acc_w += tw.w[size_t(xo * K + kw)] * row[tw.idx[size_t(xo * K + kw)]];
              acc_h += th.w[size_t(y * K + kh)] * acc_w;
            }
            acc_d += wd * acc_h;
          }
          out[((n * p.d.out + z) * p.h.out + y) * p.w.out + xo] = acc_d;
        }
  }
}

template <ResampleMode M, typename O>
void cpu_backward(const ResampleParams& p, const O* g, O* gx) {
  constexpr int K = kResampleTaps<M>;
  const bool has_d = !resample_axis_identity(M, p.d);
  const int KD = has_d ? K : 1;
  AxisTable<M, O> td(p.d), th(p.h), tw(p.w);
  const int64_t in_plane = p.d.in * p.h.in * p.w.in;
  std::vector<double> acc(static_cast<size_t>(in_plane));
  for (int64_t n = 0; n < p.nc; ++n) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t z = 0; z < p.d.out; ++z)
      for (int64_t y = 0; y < p.h.out; ++y)
        for (int64_t xo = 0; xo < p.w.out; ++xo) {
          double go = double(g[((n * p.d.out + z) * p.h.out + y) * p.w.out + xo]);
          for (int kd = 0; kd < KD; ++kd) {
            int64_t iz = has_d ? td.idx[size_t(z * K + kd)] : z;
            double wd = has_d ? double(td.w[size_t(z * K + kd)]) : 1.0;
            for (int kh = 0; kh < K; ++kh) {
              double wdh = wd * double(th.w[size_t(y * K + kh)]);
              int64_t row = (iz * p.h.in + th.idx[size_t(y * K + kh)]) * p.w.in;
              for (int kw = 0; kw < K; ++kw)
                acc[size_t(row + tw.idx[size_t(xo * K + kw)])] += wdh * double(tw.w[size_t(xo * K + kw)]) * go;
            }
          }
        }
    for (int64_t i = 0; i < in_plane; ++i) gx[n * in_plane + i] = O(acc[size_t(i)]);
  }
}

template <typename F>
void dispatch_mode(ResampleMode m, F&& f) {
  switch (m) {
    case ResampleMode::Nearest: f(std::integral_constant<ResampleMode, ResampleMode::Nearest>{}); return;
    case ResampleMode::Linear: f(std::integral_constant<ResampleMode, ResampleMode::Linear>{}); return;
    case ResampleMode::Cubic: f(std::integral_constant<ResampleMode, ResampleMode::Cubic>{}); return;
  }
}

const char* mode_op_name(ResampleMode m, bool three_d) {
  if (three_d) return "interpolate_trilinear";
  switch (m) {
    case ResampleMode::Nearest: return "interpolate_nearest";
    case ResampleMode::Linear: return "interpolate_bilinear";
    case ResampleMode::Cubic: return "interpolate_bicubic";
  }
  return "interpolate";
}

// Runs one pass (forward: src = x; backward: src = gout) on the input's device; 16-bit CPU tensors go through f32.
Tensor run_pass(bool backward, const Tensor& src, const ResampleParams& p, const Shape& out_shape) {
  Tensor s = src.contiguous();
  Tensor out = Tensor::empty(out_shape, s.dtype(), s.device());
  if (out.numel() == 0) return out;
  if (s.is_cuda()) {
    STEREORT_CUDA_PATH(backward ? cuda::resample_backward(out, s, p, Context::get(s.device()))
                                : cuda::resample_forward(out, s, p, Context::get(s.device())));
    return out;
  }
  DType ct = cpu_float_dtype(s.dtype());
  if (ct != s.dtype()) {
    Tensor o32 = Tensor::empty(out_shape, ct);
    backward ? ref::resample_backward(o32, s.to(ct), p) : ref::resample_forward(o32, s.to(ct), p);
    return o32.to(s.dtype());
  }
  backward ? ref::resample_backward(out, s, p) : ref::resample_forward(out, s, p);
  return out;
}

// sizes: the requested output sizes of the spatial dims (2 or 3); scales: the scale factors (<= 0: from sizes).
Tensor resample(ResampleMode mode, const Tensor& x, const std::vector<int64_t>& sizes, const std::vector<double>& scales,
                bool align_corners) {
  const bool three_d = sizes.size() == 3;
  const char* name = mode_op_name(mode, three_d);
  const int nd = three_d ? 5 : 4;
  STEREORT_CHECK(x.defined(), "{}: input is undefined", name);
  STEREORT_CHECK(x.dim() == nd, "{}: input {} must be {}-D {}; reshape it (unsqueeze a batch or channel dim)", name,
                 x.desc(), nd, three_d ? "(B,C,D,H,W)" : "(B,C,H,W)");
  STEREORT_CHECK(dtype_is_floating(x.dtype()), "{}: input {} must be floating (f32, f64, f16, bf16)", name, x.desc());
  for (size_t i = 0; i < sizes.size(); ++i) {
    STEREORT_CHECK(sizes[i] >= 1, "{}: output size {} must be positive (input {})", name, fmt::join(sizes, "x"),
                   x.desc());
    STEREORT_CHECK(x.size(int64_t(2 + i)) >= 1, "{}: input {} has an empty spatial dim; nothing to interpolate from",
                   name, x.desc());
  }
  ResampleParams p = make_resample_params(mode, x.shape(), sizes, align_corners, scales);
  Shape in_shape = x.shape(), out_shape = {x.size(0), x.size(1)};
  for (int64_t s : sizes) out_shape.push_back(s);
  Tensor out = run_pass(false, x, p, out_shape);
  record(name, {x}, {out}, [p, in_shape](const std::vector<Tensor>& g) -> std::vector<Tensor> {
    bool identity = resample_axis_identity(p.mode, p.d) && resample_axis_identity(p.mode, p.h) &&
                    resample_axis_identity(p.mode, p.w);
    return {identity ? g[0] : run_pass(true, g[0], p, in_shape)};
  });
  return out;
}

int64_t scaled_size(const char* name, const Tensor& x, int dim, double s) {
  STEREORT_CHECK(std::isfinite(s) && s > 0, "{}: scale factor {} must be positive and finite (input {})", name, s,
                 x.desc());
  // ATen _interp_output_size: floor(float(in) * scale) in double.
  int64_t o = int64_t(std::floor(double(x.size(dim)) * s));
  STEREORT_CHECK(o >= 1, "{}: scale factor {} gives an empty output for input {}; use a larger factor", name, s,
                 x.desc());
  return o;
}

}  // namespace

ResampleParams make_resample_params(ResampleMode mode, const Shape& in_shape, const std::vector<int64_t>& out_sizes,
                                    bool align_corners, const std::vector<double>& scales) {
  const size_t nsp = out_sizes.size();
  ResampleParams p;
  p.mode = mode;
  p.nc = in_shape[0] * in_shape[1];
  ResampleAxis axes[3];
  for (size_t i = 0; i < nsp; ++i)
    axes[3 - nsp + i] = make_axis(in_shape[2 + i], out_sizes[i], align_corners, scales.empty() ? 0.0 : scales[i]);
  p.d = axes[0];  // default-constructed (1 -> 1, scale 1) for the 2-D ops
  p.h = axes[1];
  p.w = axes[2];
  return p;
}

namespace ref {

void resample_forward(const Tensor& out, const Tensor& x, const ResampleParams& p) {
  dispatch_float(x.dtype(), "resample_forward", [&](auto tag) {
    using O = typename decltype(tag)::type;
    dispatch_mode(p.mode, [&](auto mode) { cpu_forward<decltype(mode)::value, O>(p, x.data<O>(), out.data<O>()); });
  });
}

void resample_backward(const Tensor& gx, const Tensor& gout, const ResampleParams& p) {
  dispatch_float(gout.dtype(), "resample_backward", [&](auto tag) {
    using O = typename decltype(tag)::type;
    dispatch_mode(p.mode,
                  [&](auto mode) { cpu_backward<decltype(mode)::value, O>(p, gout.data<O>(), gx.data<O>()); });
  });
}

}  // namespace ref

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return resample(ResampleMode::Linear, x, {out_h, out_w}, {}, align_corners);
}

Tensor interpolate_trilinear(const Tensor& x, int64_t out_d, int64_t out_h, int64_t out_w, bool align_corners) {
  return resample(ResampleMode::Linear, x, {out_d, out_h, out_w}, {}, align_corners);
}

Tensor interpolate_bicubic(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  return resample(ResampleMode::Cubic, x, {out_h, out_w}, {}, align_corners);
}

Tensor interpolate_nearest(const Tensor& x, int64_t out_h, int64_t out_w) {
  return resample(ResampleMode::Nearest, x, {out_h, out_w}, {}, false);
}

Tensor interpolate_bilinear_scale(const Tensor& x, double scale_h, double scale_w, bool align_corners) {
  const char* name = "interpolate_bilinear_scale";
  STEREORT_CHECK(x.defined() && x.dim() == 4, "{}: input {} must be 4-D (B,C,H,W)", name,
                 x.defined() ? x.desc() : "undefined");
  return resample(ResampleMode::Linear, x, {scaled_size(name, x, 2, scale_h), scaled_size(name, x, 3, scale_w)},
                  {scale_h, scale_w}, align_corners);
}

Tensor interpolate_bicubic_scale(const Tensor& x, double scale_h, double scale_w, bool align_corners) {
  const char* name = "interpolate_bicubic_scale";
  STEREORT_CHECK(x.defined() && x.dim() == 4, "{}: input {} must be 4-D (B,C,H,W)", name,
                 x.defined() ? x.desc() : "undefined");
  return resample(ResampleMode::Cubic, x, {scaled_size(name, x, 2, scale_h), scaled_size(name, x, 3, scale_w)},
                  {scale_h, scale_w}, align_corners);
}

}  // namespace stereort
