// io/colormap.h — disparity pictures for people (formats-and-metrics.md §11). Always write a numeric file (PFM or
//   16-bit PNG) next to these: a colour PNG is not data.
//   Range: fixed [vmin, vmax] when both are given (use this for video: no flicker), else the robust [p_lo, p_hi]
//     percentiles (default 1, 99) of the valid pixels, percentiles interpolated linearly as numpy.percentile does.
//     The range used is returned so the caller can print it.
//   t = clamp((d - vmin) / (vmax - vmin), 0, 1) (t = 0 when vmax <= vmin); invalid pixels (mask false, or non-finite)
//     are black.
//   Turbo: the published degree-5 polynomial approximation of Google's Turbo map (A. Mikhailov colormap, R. Du GLSL
//     approximation, Apache-2.0), channel = clamp(sum_k c_k t^k, 0, 1), rounded to 8 bits. Grey: round(255 t).
#pragma once
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stereort {
namespace io {

enum class Colormap { Turbo, Grey };
Colormap colormap_from_name(const std::string& name);  // "turbo" | "grey" | "gray"

struct ColorizeOptions {
  Colormap map = Colormap::Turbo;
  double vmin = std::nan(""), vmax = std::nan("");  // both finite: fixed range
  double p_lo = 1.0, p_hi = 99.0;                    // otherwise: robust percentiles of the valid pixels
};

struct Colorized {
  Tensor rgb;               // u8 (3,H,W)
  double vmin = 0, vmax = 0;  // the range used
  int64_t valid = 0;         // pixels coloured (the rest are black)
};

// disp: floating (H,W); valid: optional (H,W) mask (nonzero = valid).
Colorized colorize_disparity(const Tensor& disp, const Tensor& valid = Tensor(), const ColorizeOptions& opt = {});
// Writes the colour PNG atomically and returns what colorize_disparity returned.
Colorized write_disparity_color_png(const std::string& path, const Tensor& disp, const Tensor& valid = Tensor(),
                                    const ColorizeOptions& opt = {});

// Turbo colour of t in [0,1] (clamped), as 8-bit RGB.
std::array<uint8_t, 3> turbo_rgb(double t);
// numpy.percentile(values, p) with linear interpolation; values is modified (partially sorted). NaN when empty.
double percentile(std::vector<double>& values, double p);

}  // namespace io
}  // namespace stereort
