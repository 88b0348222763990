// io/calib.h — stereo calibration: the small struct every dataset fills, and the Middlebury / ETH3D calib.txt and
//   SCARED stereo_calib.json readers (formats-and-metrics.md §4, §5, §7, §12).
//   Calibration describes the rectified left camera: fx, fy, cx, cy in pixels, doffs = cx1 - cx0 (Middlebury; 0 for
//   KITTI/SCARED), baseline in `units` (mm for Middlebury/SCARED). Depth Z = fx * baseline / (d + doffs).
//   Middlebury calib.txt: `key=value` lines; cam0/cam1 = "[f 0 cx; 0 f cy; 0 0 1]"; doffs, baseline, width, height,
//     ndisp, isint, vmin, vmax, dyavg, dymax. Unknown keys are kept in `entries`; cam0 and baseline are required,
//     doffs defaults to cam1's cx - cam0's cx when absent. Blank lines and '#' comments are skipped.
//   SCARED stereo_calib.json (OpenCV FileStorage JSON; scared_toolkit): baseline = |T[0]| (mm), fx = P1[0][0],
//     fy = P1[1][1], cx = P1[0][2], cy = P1[1][2]. Matrices may be OpenCV objects {"rows","cols","data"} or nested
//     arrays.
#pragma once
#include <array>
#include <cmath>
#include <map>
#include <string>

namespace stereort {

struct Calibration {
  double fx = 0, fy = 0, cx = 0, cy = 0;  // rectified left camera (px); 0 = unknown
  double doffs = 0;                       // cx1 - cx0 (px)
  double baseline = 0;                    // in `units`; 0 = unknown
  std::string units = "mm";
  bool known() const { return fx > 0 && baseline > 0; }
  // Depth (in `units`) of a disparity d (px); NaN when d + doffs <= 0 or the calibration is unknown.
  double depth(double d) const {
    double den = d + doffs;
    return known() && den > 0 ? fx * baseline / den : std::nan("");
  }
};

namespace io {

struct MiddleburyCalib {
  std::array<double, 9> cam0{}, cam1{};  // row-major 3x3
  double doffs = 0, baseline = 0;
  int width = 0, height = 0, ndisp = 0, isint = 0;
  double vmin = std::nan(""), vmax = std::nan(""), dyavg = 0, dymax = 0;
  std::map<std::string, std::string> entries;  // every key=value as written
  Calibration calibration() const;               // units mm
};

MiddleburyCalib parse_middlebury_calib(const std::string& text, const std::string& name);
MiddleburyCalib read_middlebury_calib(const std::string& path);
// calib.txt text in the Middlebury layout (for fake trees in tests and for our own exports); atomic write.
std::string format_middlebury_calib(const MiddleburyCalib& c);
void write_middlebury_calib(const std::string& path, const MiddleburyCalib& c);

Calibration parse_scared_calib(const std::string& json_text, const std::string& name);
Calibration read_scared_calib(const std::string& path);

}  // namespace io
}  // namespace stereort
