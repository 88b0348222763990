// io/calib.cpp — Middlebury/ETH3D calib.txt and SCARED stereo_calib.json parsers. See io/calib.h.
#include "io/calib.h"

#include <cerrno>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "core/check.h"
#include "io/fileio.h"
#include "io/json.h"

namespace stereort {
namespace io {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

double parse_number(const std::string& v, const std::string& key, const std::string& name) {
  std::string t = trim(v);
  char* end = nullptr;
  errno = 0;
  double d = std::strtod(t.c_str(), &end);
  STEREORT_CHECK(!t.empty() && end && *end == '\0' && errno == 0, "{}: calib key '{}' = '{}' is not a number", name,
                 key, v);
  return d;
}

int parse_int(const std::string& v, const std::string& key, const std::string& name) {
  double d = parse_number(v, key, name);
  STEREORT_CHECK(d == std::floor(d) && std::fabs(d) < 1e9, "{}: calib key '{}' = '{}' is not an integer", name, key, v);
  return int(d);
}

// "[f 0 cx; 0 f cy; 0 0 1]" -> 9 numbers, row-major.
std::array<double, 9> parse_matrix(const std::string& v, const std::string& key, const std::string& name) {
  std::string t = trim(v);
  STEREORT_CHECK(t.size() >= 2 && t.front() == '[' && t.back() == ']',
                 "{}: calib key '{}' must be a matrix '[a b c; d e f; g h i]', got '{}'", name, key, v);
  std::string body = t.substr(1, t.size() - 2);
  std::array<double, 9> m{};
  int rows = 0, count = 0;
  std::stringstream rs(body);
  std::string row;
  while (std::getline(rs, row, ';')) {
    std::stringstream es(row);
    std::string tok;
    int cols = 0;
    while (es >> tok) {
      STEREORT_CHECK(count < 9, "{}: calib matrix '{}' has more than 9 entries: '{}'", name, key, v);
      m[size_t(count++)] = parse_number(tok, key, name);
      ++cols;
    }
    STEREORT_CHECK(cols == 3, "{}: calib matrix '{}' row {} has {} entries, expected 3: '{}'", name, key, rows, cols, v);
    ++rows;
  }
  STEREORT_CHECK(rows == 3, "{}: calib matrix '{}' has {} rows, expected 3: '{}'", name, key, rows, v);
  return m;
}

std::string fmt_num(double v) { return fmt::format("{:.10g}", v); }

std::string fmt_matrix(const std::array<double, 9>& m) {
  return fmt::format("[{} {} {}; {} {} {}; {} {} {}]", fmt_num(m[0]), fmt_num(m[1]), fmt_num(m[2]), fmt_num(m[3]),
                     fmt_num(m[4]), fmt_num(m[5]), fmt_num(m[6]), fmt_num(m[7]), fmt_num(m[8]));
}

}  // namespace

Calibration MiddleburyCalib::calibration() const {
  Calibration c;
  c.fx = cam0[0];
  c.fy = cam0[4];
  c.cx = cam0[2];
  c.cy = cam0[5];
  c.doffs = doffs;
  c.baseline = baseline;
  c.units = "mm";
  return c;
}

MiddleburyCalib parse_middlebury_calib(const std::string& text, const std::string& name) {
  MiddleburyCalib c;
  std::stringstream ss(text);
  std::string line;
  int lineno = 0;
  while (std::getline(ss, line)) {
    ++lineno;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    size_t eq = t.find('=');
    STEREORT_CHECK(eq != std::string::npos && eq > 0, "{}: line {} '{}' is not key=value", name, lineno, t);
    std::string key = trim(t.substr(0, eq)), val = trim(t.substr(eq + 1));
    STEREORT_CHECK(!c.entries.count(key), "{}: key '{}' appears twice (line {})", name, key, lineno);
    c.entries[key] = val;
  }
  auto has = [&](const char* k) { return c.entries.count(k) != 0; };
  STEREORT_CHECK(has("cam0"), "{}: calib.txt has no cam0=[...] line (not a Middlebury/ETH3D calibration?)", name);
  STEREORT_CHECK(has("baseline"), "{}: calib.txt has no baseline= line", name);
  c.cam0 = parse_matrix(c.entries["cam0"], "cam0", name);
  c.cam1 = has("cam1") ? parse_matrix(c.entries["cam1"], "cam1", name) : c.cam0;
  c.baseline = parse_number(c.entries["baseline"], "baseline", name);
  c.doffs = has("doffs") ? parse_number(c.entries["doffs"], "doffs", name) : c.cam1[2] - c.cam0[2];
  if (has("width")) c.width = parse_int(c.entries["width"], "width", name);
  if (has("height")) c.height = parse_int(c.entries["height"], "height", name);
  if (has("ndisp")) c.ndisp = parse_int(c.entries["ndisp"], "ndisp", name);
  if (has("isint")) c.isint = parse_int(c.entries["isint"], "isint", name);
  if (has("vmin")) c.vmin = parse_number(c.entries["vmin"], "vmin", name);
  if (has("vmax")) c.vmax = parse_number(c.entries["vmax"], "vmax", name);
  if (has("dyavg")) c.dyavg = parse_number(c.entries["dyavg"], "dyavg", name);
  if (has("dymax")) c.dymax = parse_number(c.entries["dymax"], "dymax", name);
  STEREORT_CHECK(c.cam0[0] > 0 && c.baseline > 0, "{}: focal length {} and baseline {} must be positive", name,
                 c.cam0[0], c.baseline);
  return c;
}

MiddleburyCalib read_middlebury_calib(const std::string& path) {
  return parse_middlebury_calib(read_file_text(path), path);
}

std::string format_middlebury_calib(const MiddleburyCalib& c) {
  std::string s = "cam0=" + fmt_matrix(c.cam0) + "\ncam1=" + fmt_matrix(c.cam1) + "\n";
  s += "doffs=" + fmt_num(c.doffs) + "\nbaseline=" + fmt_num(c.baseline) + "\n";
  s += fmt::format("width={}\nheight={}\nndisp={}\nisint={}\n", c.width, c.height, c.ndisp, c.isint);
  if (std::isfinite(c.vmin)) s += "vmin=" + fmt_num(c.vmin) + "\n";
  if (std::isfinite(c.vmax)) s += "vmax=" + fmt_num(c.vmax) + "\n";
  s += "dyavg=" + fmt_num(c.dyavg) + "\ndymax=" + fmt_num(c.dymax) + "\n";
  return s;
}

void write_middlebury_calib(const std::string& path, const MiddleburyCalib& c) {
  write_file_atomic(path, format_middlebury_calib(c));
}

namespace {

// Element (r, c) of an OpenCV FileStorage matrix {"rows","cols","data"} or a nested array.
double matrix_at(const Json& m, int r, int c, const std::string& key, const std::string& name) {
  if (m.is_object()) {
    int64_t rows = m.at("rows").as_int(name + ": " + key + ".rows");
    int64_t cols = m.at("cols").as_int(name + ": " + key + ".cols");
    const auto& data = m.at("data").as_array(name + ": " + key + ".data");
    STEREORT_CHECK(r < rows && c < cols && int64_t(data.size()) == rows * cols,
                   "{}: {} is a {}x{} matrix with {} values; need element ({}, {})", name, key, rows, cols,
                   data.size(), r, c);
    return data[size_t(r * cols + c)].as_double(name + ": " + key + " element");
  }
  const auto& rows = m.as_array(name + ": " + key);
  STEREORT_CHECK(size_t(r) < rows.size(), "{}: {} has {} rows; need row {}", name, key, rows.size(), r);
  const Json& row = rows[size_t(r)];
  if (row.is_number() && c == 0) return row.as_double();  // a column vector written flat: [tx, ty, tz]
  const auto& cols = row.as_array(name + ": " + key + " row");
  STEREORT_CHECK(size_t(c) < cols.size(), "{}: {} row {} has {} entries; need column {}", name, key, r, cols.size(), c);
  return cols[size_t(c)].as_double(name + ": " + key + " element");
}

}  // namespace

Calibration parse_scared_calib(const std::string& json_text, const std::string& name) {
  Json j = Json::parse(json_text, name);
  STEREORT_CHECK(j.is_object() && j.contains("T") && j.contains("P1"),
                 "{}: SCARED stereo_calib.json needs the matrices T and P1", name);
  Calibration c;
  c.baseline = std::fabs(matrix_at(j.at("T"), 0, 0, "T", name));
  c.fx = matrix_at(j.at("P1"), 0, 0, "P1", name);
  c.fy = matrix_at(j.at("P1"), 1, 1, "P1", name);
  c.cx = matrix_at(j.at("P1"), 0, 2, "P1", name);
  c.cy = matrix_at(j.at("P1"), 1, 2, "P1", name);
  c.doffs = 0;
  c.units = "mm";
  STEREORT_CHECK(c.known(), "{}: focal length {} and baseline {} must be positive", name, c.fx, c.baseline);
  return c;
}

Calibration read_scared_calib(const std::string& path) { return parse_scared_calib(read_file_text(path), path); }

}  // namespace io
}  // namespace stereort
