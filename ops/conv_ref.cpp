// ops/conv_ref.cpp — CPU reference convolutions: forward, backward-data, backward-weight as direct loops.
//   Every problem is handled as 3-D (D,H,W); conv1d/conv2d pad the geometry with leading unit dims. For a fixed kernel
//   tap (kd,kh,kw) the input index is i = o·s + (k·d - p), an affine map of the output index, so for each tap we
//   compute once the range of outputs whose input is inside the image (no per-element bounds checks), and the
//   innermost loop walks W contiguously in the output (and in the input when the stride is 1). No im2col buffer:
//   the working set is one output plane of double accumulators.
//     forward:         for (b, o): acc[plane] = Σ_{c, tap} w · x-plane shifted      -> y[b,o]
//     backward-data:   for (b, c): acc[plane] = Σ_{o, tap} w · dy-plane scattered    -> dx[b,c]
//     backward-weight: for (o, c, tap): Σ_{b, plane} dy · x shifted                  -> dw[o,c,tap]
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

// Calls f(offset of the first output row, offset of the matching input row, x-range, input W offset, w index) for
// every tap and every output row (z, y) that reads inside the input, for one (output plane, input plane) pair.
template <typename F>
void for_each_tap_row(const G3& g, F&& f) {
  for (int64_t a = 0; a < g.k[0]; ++a) {
    Range rz = valid_range(g.out[0], g.in[0], g.s[0], a * g.d[0] - g.p[0]);
    for (int64_t b = 0; b < g.k[1]; ++b) {
      Range ry = valid_range(g.out[1], g.in[1], g.s[1], b * g.d[1] - g.p[1]);
      for (int64_t e = 0; e < g.k[2]; ++e) {
        int64_t offw = e * g.d[2] - g.p[2];
        Range rx = valid_range(g.out[2], g.in[2], g.s[2], offw);
        if (rx.lo >= rx.hi) continue;
        int64_t tap = (a * g.k[1] + b) * g.k[2] + e;
        for (int64_t z = rz.lo; z < rz.hi; ++z) {
          int64_t iz = z * g.s[0] + a * g.d[0] - g.p[0];
          for (int64_t y = ry.lo; y < ry.hi; ++y) {
            int64_t iy = y * g.s[1] + b * g.d[1] - g.p[1];
            f((z * g.out[1] + y) * g.out[2], (iz * g.in[1] + iy) * g.in[2], rx, offw, tap);
          }
        }
      }
    }
  }
}

}  // namespace

template <typename T>
void conv_forward(T* y, const T* x, const T* w, const ConvGeometry& geom) {
  G3 g = to_g3(geom);
  int64_t sw = g.s[2], ip = g.in_plane(), op = g.out_plane(), taps = g.taps();
  std::vector<double> acc(static_cast<size_t>(op));
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t o = 0; o < g.O; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0);
      int64_t grp = o / g.Og;
      for (int64_t ci = 0; ci < g.Cg; ++ci) {
        const T* xc = x + (b * g.C + grp * g.Cg + ci) * ip;
        const T* wk = w + (o * g.Cg + ci) * taps;
        for_each_tap_row(g, [&](int64_t orow, int64_t irow, Range rx, int64_t offw, int64_t tap) {
          double wv = double(wk[tap]);
          double* arow = acc.data() + orow;
          const T* xrow = xc + irow;
          if (sw == 1) {
            for (int64_t i = rx.lo; i < rx.hi; ++i) arow[i] += wv * double(xrow[i + offw]);
          } else {
            for (int64_t i = rx.lo; i < rx.hi; ++i) arow[i] += wv * double(xrow[i * sw + offw]);
          }
        });
      }
      T* yp = y + (b * g.O + o) * op;
      for (int64_t i = 0; i < op; ++i) yp[i] = T(acc[size_t(i)]);
    }
}

template <typename T>
void conv_backward_data(T* dx, const T* dy, const T* w, const ConvGeometry& geom) {
  G3 g = to_g3(geom);
  int64_t sw = g.s[2], ip = g.in_plane(), op = g.out_plane(), taps = g.taps();
  std::vector<double> acc(static_cast<size_t>(ip));
  for (int64_t b = 0; b < g.B; ++b)
    for (int64_t c = 0; c < g.C; ++c) {
      std::fill(acc.begin(), acc.end(), 0.0);
      int64_t grp = c / g.Cg, ci = c % g.Cg;
      for (int64_t og = 0; og < g.Og; ++og) {
        int64_t o = grp * g.Og + og;
        const T* dyc = dy + (b * g.O + o) * op;
        const T* wk = w + (o * g.Cg + ci) * taps;
        for_each_tap_row(g, [&](int64_t orow, int64_t irow, Range rx, int64_t offw, int64_t tap) {
          double wv = double(wk[tap]);
          double* arow = acc.data() + irow;
          const T* grow = dyc + orow;
          if (sw == 1) {
            for (int64_t i = rx.lo; i < rx.hi; ++i) arow[i + offw] += wv * double(grow[i]);
          } else {
            for (int64_t i = rx.lo; i < rx.hi; ++i) arow[i * sw + offw] += wv * double(grow[i]);
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
  int64_t sw = g.s[2], ip = g.in_plane(), op = g.out_plane(), taps = g.taps();
  std::vector<double> acc(static_cast<size_t>(taps));
  for (int64_t o = 0; o < g.O; ++o) {
    int64_t grp = o / g.Og;
    for (int64_t ci = 0; ci < g.Cg; ++ci) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t b = 0; b < g.B; ++b) {
        const T* xc = x + (b * g.C + grp * g.Cg + ci) * ip;
        const T* dyc = dy + (b * g.O + o) * op;
        for_each_tap_row(g, [&](int64_t orow, int64_t irow, Range rx, int64_t offw, int64_t tap) {
          const T* grow = dyc + orow;
          const T* xrow = xc + irow;
          double s = 0;
          if (sw == 1) {
            for (int64_t i = rx.lo; i < rx.hi; ++i) s += double(grow[i]) * double(xrow[i + offw]);
          } else {
            for (int64_t i = rx.lo; i < rx.hi; ++i) s += double(grow[i]) * double(xrow[i * sw + offw]);
          }
          acc[size_t(tap)] += s;
        });
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
