// io/colormap.cpp — turbo / grey colourisation of disparity maps with fixed or robust ranges. See io/colormap.h.
#include "io/colormap.h"

#include <algorithm>
#include <vector>

#include "core/check.h"
#include "io/image.h"

namespace stereort {
namespace io {

Colormap colormap_from_name(const std::string& name) {
  if (name == "turbo") return Colormap::Turbo;
  if (name == "grey" || name == "gray") return Colormap::Grey;
  STEREORT_FAIL("unknown colour map '{}' (choices: turbo, grey)", name);
}

std::array<uint8_t, 3> turbo_rgb(double t) {
  // Coefficients of t^0..t^5 per channel (Google's published polynomial fit of Turbo).
  static const double kCoef[3][6] = {
      {0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943},
      {0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604},
      {0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973},
  };
  t = std::isnan(t) ? 0.0 : std::min(1.0, std::max(0.0, t));
  std::array<uint8_t, 3> rgb;
  for (int c = 0; c < 3; ++c) {
    double v = 0;
    for (int k = 5; k >= 0; --k) v = v * t + kCoef[c][k];  // Horner
    v = std::min(1.0, std::max(0.0, v));
    rgb[size_t(c)] = uint8_t(std::lround(v * 255.0));
  }
  return rgb;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return std::nan("");
  p = std::min(100.0, std::max(0.0, p));
  double pos = p / 100.0 * double(v.size() - 1);
  size_t lo = size_t(std::floor(pos));
  size_t hi = std::min(lo + 1, v.size() - 1);
  std::nth_element(v.begin(), v.begin() + long(lo), v.end());
  double a = v[lo];
  double b = a;
  if (hi != lo) b = *std::min_element(v.begin() + long(lo) + 1, v.end());  // the next order statistic
  return a + (pos - double(lo)) * (b - a);
}

Colorized colorize_disparity(const Tensor& disp, const Tensor& valid, const ColorizeOptions& opt) {
  STEREORT_CHECK(disp.defined() && disp.dim() == 2 && dtype_is_floating(disp.dtype()),
                 "colorize_disparity: disparity {} must be floating (H,W)", disp.defined() ? disp.desc() : "undefined");
  if (valid.defined())
    STEREORT_CHECK(valid.shape() == disp.shape(), "colorize_disparity: mask {} does not match disparity {}",
                   valid.desc(), disp.desc());
  STEREORT_CHECK(opt.p_lo >= 0 && opt.p_hi <= 100 && opt.p_lo <= opt.p_hi,
                 "colorize_disparity: percentiles must satisfy 0 <= p_lo <= p_hi <= 100, got {} {}", opt.p_lo, opt.p_hi);
  std::vector<double> d = disp.to_vector();
  std::vector<double> m = valid.defined() ? valid.to_vector() : std::vector<double>();
  auto ok = [&](size_t i) { return std::isfinite(d[i]) && (m.empty() || m[i] != 0); };

  Colorized out;
  if (std::isfinite(opt.vmin) && std::isfinite(opt.vmax)) {
    out.vmin = opt.vmin;
    out.vmax = opt.vmax;
  } else {
    std::vector<double> vals;
    for (size_t i = 0; i < d.size(); ++i)
      if (ok(i)) vals.push_back(d[i]);
    if (vals.empty()) {
      out.vmin = out.vmax = 0;
    } else {
      out.vmin = std::isfinite(opt.vmin) ? opt.vmin : percentile(vals, opt.p_lo);
      out.vmax = std::isfinite(opt.vmax) ? opt.vmax : percentile(vals, opt.p_hi);
    }
  }
  int64_t h = disp.size(0), w = disp.size(1), hw = h * w;
  out.rgb = Tensor::zeros({3, h, w}, DType::U8);
  uint8_t* px = out.rgb.data<uint8_t>();
  double span = out.vmax - out.vmin;
  for (int64_t i = 0; i < hw; ++i) {
    if (!ok(size_t(i))) continue;
    ++out.valid;
    double t = span > 0 ? (d[size_t(i)] - out.vmin) / span : 0.0;
    std::array<uint8_t, 3> c;
    if (opt.map == Colormap::Turbo) {
      c = turbo_rgb(t);
    } else {
      uint8_t g = uint8_t(std::lround(std::min(1.0, std::max(0.0, t)) * 255.0));
      c = {g, g, g};
    }
    for (int k = 0; k < 3; ++k) px[k * hw + i] = c[size_t(k)];
  }
  return out;
}

Colorized write_disparity_color_png(const std::string& path, const Tensor& disp, const Tensor& valid,
                                    const ColorizeOptions& opt) {
  Colorized c = colorize_disparity(disp, valid, opt);
  write_png(path, c.rgb, ImageLayout::CHW);
  return c;
}

}  // namespace io
}  // namespace stereort
