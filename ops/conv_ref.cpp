// ops/conv_ref.cpp — CPU reference convolutions: forward, backward-data, backward-weight as direct loops.
//   Every problem is handled as 3-D (D,H,W); conv1d/conv2d pad the geometry with leading unit dims. For a kernel tap
//   (kd,kh,kw) the input index is i = o·s + (k·d - p), an affine map of the output index, so the range of outputs
//   whose input lies inside the image is computed once per tap (no per-element bounds checks) and the innermost loop
//   walks one W row, contiguous in the output (and in the input when the stride is 1). No im2col buffer.
//   Loops run output-row-outer, taps-inner, so the rows being accumulated stay in L1 across all channels and taps:
//     forward:         for (b, o, output row):  row += Σ_{c, tap} w · input row         (double accumulators)
//     backward-data:   for (b, c, output row):  input rows += Σ_{o, tap} w · dy row     (scatter, double plane)
//     backward-weight: for (o, c): for (b, output row, tap): dw[tap] += dy row · input row
//   Reductions along a row use four independent double partial sums (instruction-level parallelism; the order is
//   fixed, so results are deterministic).
#include <algorithm>
#include <vector>

#include "ops/conv.h"

namespace stereort {
namespace ref {

namespace {

// The geometry padded to three spatial dims, as plain integers.
struct G3 {
  int64_t B, C, O, Cg, Og;
  int64_t in[3], out[3], k[3], s[3], p[3], d[3];
  int64_t in_plane() const { return in[0] * in[1] * in[2]; }
  int64_t out_plane() const { return out[0] * out[1] * out[2]; }
  int64_t taps() const { return k[0] * k[1] * k[2]; }
};

G3 to_g3(const ConvGeometry& g) {
  G3 r{};
  r.B = g.batch;
  r.C = g.in_channels;
  r.O = g.out_channels;
  r.Cg = g.in_channels / g.groups;
  r.Og = g.out_channels / g.groups;
  int lead = 3 - g.nsp;
  for (int i = 0; i < 3; ++i) {
    bool pad = i < lead;
    size_t j = size_t(i - lead);
    r.in[i] = pad ? 1 : g.in[j];
    r.out[i] = pad ? 1 : g.out[j];
    r.k[i] = pad ? 1 : g.kernel[j];
    r.s[i] = pad ? 1 : g.stride[j];
    r.p[i] = pad ? 0 : g.padding[j];
    r.d[i] = pad ? 1 : g.dilation[j];
  }
  return r;
}

// Outputs o in [lo, hi) whose input o·s + off lies in [0, n_in).
struct Range {
  int64_t lo, hi;
};
Range valid_range(int64_t n_out, int64_t n_in, int64_t s, int64_t off) {
  int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  int64_t hi = n_in - 1 - off < 0 ? 0 : (n_in - 1 - off) / s + 1;
  hi = std::min(hi, n_out);
  return {lo, std::max(lo, hi)};
}

// Per W tap e: the input offset e·d - p and the valid output range along W.
struct WTaps {
  std::vector<int64_t> off;
  std::vector<Range> range;
  explicit WTaps(const G3& g) {
    for (int64_t e = 0; e < g.k[2]; ++e) {
      off.push_back(e * g.d[2] - g.p[2]);
      range.push_back(valid_range(g.out[2], g.in[2], g.s[2], off.back()));
    }
  }
};

// For output row (z, y): f(input row offset, index of the tap (a, b, 0)) for every (a, b) whose input row is inside.
template <typename F>
void for_each_input_row(const G3& g, int64_t z, int64_t y, F&& f) {
  for (int64_t a = 0; a < g.k[0]; ++a) {
    int64_t iz = z * g.s[0] + a * g.d[0] - g.p[0];
    if (iz < 0 || iz >= g.in[0]) continue;
    for (int64_t b = 0; b < g.k[1]; ++b) {
      int64_t iy = y * g.s[1] + b * g.d[1] - g.p[1];
      if (iy < 0 || iy >= g.in[1]) continue;
      f((iz * g.in[1] + iy) * g.in[2], (a * g.k[1] + b) * g.k[2]);
    }
  }
}

// Σ_{i in r} a[i] · b[i·s + off], four partial sums.
template <typename T>
double row_dot(const T* a, const T* b, Range r, int64_t s, int64_t off) {
  double p0 = 0, p1 = 0, p2 = 0, p3 = 0;
  int64_t i = r.lo;
  for (; i + 4 <= r.hi; i += 4) {
    p0 += double(a[i]) * double(b[i * s + off]);
    p1 += double(a[i + 1]) * double(b[(i + 1) * s + off]);
    p2 += double(a[i + 2]) * double(b[(i + 2) * s + off]);
    p3 += double(a[i + 3]) * double(b[(i + 3) * s + off]);
  }
  for (; i < r.hi; ++i) p0 += double(a[i]) * double(b[i * s + off]);
  return (p0 + p1) + (p2 + p3);
}

}  // namespace

template <typename T>
void conv_forward(T* y, const T* x, const T* w, const ConvGeometry& geom) {
  G3 g = to_g3(geom);
  WTaps wt(g);
  int64_t sw = g.s[2], ip = g.in_plane(), op = g.out_plane(), taps = g.taps();
  std::vector<double> acc(static_cast<size_t>(g.out[2]));
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t o = 0; o < g.O; ++o) {
      int64_t grp = o / g.Og;
      const T* xg = x + (b * g.C + grp * g.Cg) * ip;
      const T* wo = w + o * g.Cg * taps;
      T* yp = y + (b * g.O + o) * op;
      for (int64_t z = 0; z < g.out[0]; ++z)
        for (int64_t yy = 0; yy < g.out[1]; ++yy) {
          std::fill(acc.begin(), acc.end(), 0.0);
          double* ar = acc.data();
          for (int64_t ci = 0; ci < g.Cg; ++ci) {
            const T* xc = xg + ci * ip;
            const T* wk = wo + ci * taps;
            for_each_input_row(g, z, yy, [&](int64_t irow, int64_t tap0) {
              const T* xrow = xc + irow;
              for (int64_t e = 0; e < g.k[2]; ++e) {
                Range r = wt.range[size_t(e)];
                int64_t off = wt.off[size_t(e)];
                double wv = double(wk[tap0 + e]);
                if (sw == 1) {
                  for (int64_t i = r.lo; i < r.hi; ++i) ar[i] += wv * double(xrow[i + off]);
                } else {
                  for (int64_t i = r.lo; i < r.hi; ++i) ar[i] += wv * double(xrow[i * sw + off]);
                }
              }
            });
          }
          T* yrow = yp + (z * g.out[1] + yy) * g.out[2];
          for (int64_t i = 0; i < g.out[2]; ++i) yrow[i] = T(ar[i]);
        }
    }
}

template <typename T>
void conv_backward_data(T* dx, const T* dy, const T* w, const ConvGeometry& geom) {
  G3 g = to_g3(geom);
  WTaps wt(g);
  int64_t sw = g.s[2], ip = g.in_plane(), op = g.out_plane(), taps = g.taps();
  std::vector<double> acc(static_cast<size_t>(ip));
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t c = 0; c < g.C; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      int64_t grp = c / g.Cg, ci = c % g.Cg;
      for (int64_t z = 0; z < g.out[0]; ++z)
        for (int64_t yy = 0; yy < g.out[1]; ++yy)
          for (int64_t og = 0; og < g.Og; ++og) {
            int64_t o = grp * g.Og + og;
            const T* grow = dy + (b * g.O + o) * op + (z * g.out[1] + yy) * g.out[2];
            const T* wk = w + (o * g.Cg + ci) * taps;
            for_each_input_row(g, z, yy, [&](int64_t irow, int64_t tap0) {
              double* arow = acc.data() + irow;
              for (int64_t e = 0; e < g.k[2]; ++e) {
                Range r = wt.range[size_t(e)];
                int64_t off = wt.off[size_t(e)];
                double wv = double(wk[tap0 + e]);
                if (sw == 1) {
                  for (int64_t i = r.lo; i < r.hi; ++i) arow[i + off] += wv * double(grow[i]);
                } else {
                  for (int64_t i = r.lo; i < r.hi; ++i) arow[i * sw + off] += wv * double(grow[i]);
                }
              }
            });
          }
      T* xp = dx + (b * g.C + c) * ip;
      for (int64_t i = 0; i < ip; ++i) xp[i] = T(acc[size_t(i)]);
    }
}

template <typename T>
void conv_backward_weight(T* dw, const T* dy, const T* x, const ConvGeometry& geom) {
  G3 g = to_g3(geom);
  WTaps wt(g);
  int64_t sw = g.s[2], ip = g.in_plane(), op = g.out_plane(), taps = g.taps();
  std::vector<double> acc(static_cast<size_t>(taps));
  for (int64_t o = 0; o < g.O; ++o) {
    int64_t grp = o / g.Og;
    for (int64_t ci = 0; ci < g.Cg; ++ci) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < g.B; ++b) {
        const T* xc = x + (b * g.C + grp * g.Cg + ci) * ip;
        const T* dyc = dy + (b * g.O + o) * op;
        for (int64_t z = 0; z < g.out[0]; ++z)
          for (int64_t yy = 0; yy < g.out[1]; ++yy) {
            const T* grow = dyc + (z * g.out[1] + yy) * g.out[2];
            for_each_input_row(g, z, yy, [&](int64_t irow, int64_t tap0) {
              for (int64_t e = 0; e < g.k[2]; ++e)
                acc[size_t(tap0 + e)] += row_dot(grow, xc + irow, wt.range[size_t(e)], sw, wt.off[size_t(e)]);
            });
          }
      }
      T* wp = dw + (o * g.Cg + ci) * taps;
      for (int64_t t = 0; t < taps; ++t) wp[t] = T(acc[size_t(t)]);
    }
  }
}

template void conv_forward<float>(float*, const float*, const float*, const ConvGeometry&);
template void conv_forward<double>(double*, const double*, const double*, const ConvGeometry&);
template void conv_backward_data<float>(float*, const float*, const float*, const ConvGeometry&);
template void conv_backward_data<double>(double*, const double*, const double*, const ConvGeometry&);
template void conv_backward_weight<float>(float*, const float*, const float*, const ConvGeometry&);
template void conv_backward_weight<double>(double*, const double*, const double*, const ConvGeometry&);

}  // namespace ref
}  // namespace stereort
