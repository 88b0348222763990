// io/pfm.cpp — PFM parser (lenient header, strict sizes) and writer. See io/pfm.h.
#include "io/pfm.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/check.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

namespace {

bool is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Header tokenizer: skips whitespace and '#' comments (to end of line) between tokens.
struct HeaderReader {
  const uint8_t* p;
  size_t n, i = 0;
  const std::string& name;

  void skip() {
    for (;;) {
      while (i < n && is_ws(p[i])) ++i;
      if (i < n && p[i] == '#') {
        while (i < n && p[i] != '\n') ++i;
        continue;
      }
      return;
    }
  }
  std::string token(const char* what) {
    skip();
    size_t s = i;
    while (i < n && !is_ws(p[i]) && p[i] != '#' && i - s <= 64) ++i;
    STEREORT_CHECK(i > s, "{}: PFM header ends before the {} (truncated file?)", name, what);
    STEREORT_CHECK(i - s <= 64, "{}: PFM header {} is longer than 64 characters (not a PFM file?)", name, what);
    STEREORT_CHECK(i < n, "{}: PFM header ends after the {} (truncated file?)", name, what);
    return std::string(reinterpret_cast<const char*>(p + s), i - s);
  }
};

int64_t parse_dim(const std::string& tok, const char* what, const std::string& name) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(tok.c_str(), &end, 10);
  STEREORT_CHECK(end && *end == '\0' && errno == 0 && v > 0 && v <= (1 << 24),
                 "{}: PFM {} '{}' is not a positive integer (<= 16777216)", name, what, tok);
  return int64_t(v);
}

}  // namespace

Tensor read_pfm_from_memory(const uint8_t* bytes, size_t n, const std::string& name, const PfmReadOptions& opt) {
  HeaderReader hr{bytes, n, 0, name};
  STEREORT_CHECK(n >= 2 && bytes[0] == 'P' && (bytes[1] == 'f' || bytes[1] == 'F'),
                 "{}: not a PFM file (expected 'Pf' or 'PF' at the start)", name);
  std::string magic = hr.token("magic");
  STEREORT_CHECK(magic == "Pf" || magic == "PF", "{}: not a PFM file (magic '{}', expected 'Pf' or 'PF')", name,
                 magic);
  int64_t c = magic == "PF" ? 3 : 1;
  int64_t w = parse_dim(hr.token("width"), "width", name);
  int64_t h = parse_dim(hr.token("height"), "height", name);
  std::string stok = hr.token("scale");
  char* end = nullptr;
  double scale = std::strtod(stok.c_str(), &end);
  STEREORT_CHECK(end && *end == '\0' && std::isfinite(scale) && scale != 0,
                 "{}: PFM scale '{}' must be a non-zero number (negative = little-endian)", name, stok);
  // Exactly one whitespace character ends the header; accept "\r\n" as one line ending.
  size_t i = hr.i;
  if (i + 1 < n && bytes[i] == '\r' && bytes[i + 1] == '\n') i += 2;
  else i += 1;
  uint64_t need = uint64_t(w) * uint64_t(h) * uint64_t(c) * 4;
  STEREORT_CHECK(i <= n && n - i >= need, "{}: PFM {} {}x{} needs {} bytes of pixel data but only {} follow the header "
                 "(truncated file?)", name, magic, w, h, need, i <= n ? n - i : 0);
  bool swap = scale > 0;  // big-endian data
  int64_t keep = opt.first_channel ? 1 : c;
  Tensor t = Tensor::empty(keep == 1 ? Shape{h, w} : Shape{h, w, c}, DType::F32);
  float* out = t.data<float>();
  const uint8_t* src = bytes + i;
  for (int64_t y = 0; y < h; ++y) {
    const uint8_t* row = src + size_t((h - 1 - y) * w * c * 4);  // file rows are bottom-to-top
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t k = 0; k < keep; ++k) {
        uint8_t b[4];
        std::memcpy(b, row + (x * c + k) * 4, 4);
        if (swap) {
          std::swap(b[0], b[3]);
          std::swap(b[1], b[2]);
        }
        std::memcpy(&out[(y * w + x) * keep + k], b, 4);
      }
    }
  }
  return t;
}

Tensor read_pfm(const std::string& path, const PfmReadOptions& opt) {
  MappedFile f = MappedFile::open(path);
  return read_pfm_from_memory(f.data(), f.size(), path, opt);
}

std::vector<uint8_t> encode_pfm(const Tensor& image) {
  STEREORT_CHECK(image.defined(), "write_pfm: undefined tensor");
  STEREORT_CHECK(dtype_is_floating(image.dtype()) &&
                     (image.dim() == 2 || (image.dim() == 3 && image.size(2) == 3)),
                 "write_pfm: image {} must be floating (H,W) or (H,W,3)", image.desc());
  Tensor t = image.detach().to(Device::cpu()).to(DType::F32).contiguous();
  int64_t h = t.size(0), w = t.size(1), c = t.dim() == 3 ? 3 : 1;
  STEREORT_CHECK(h > 0 && w > 0, "write_pfm: empty image {}", image.desc());
  std::string header = fmt::format("{}\n{} {}\n-1\n", c == 3 ? "PF" : "Pf", w, h);
  std::vector<uint8_t> out(header.begin(), header.end());
  size_t row = size_t(w * c * 4);
  out.resize(header.size() + row * size_t(h));
  const uint8_t* src = static_cast<const uint8_t*>(t.data_ptr());
  for (int64_t y = 0; y < h; ++y)  // little-endian host: the float bytes are already little-endian
    std::memcpy(out.data() + header.size() + size_t(h - 1 - y) * row, src + size_t(y) * row, row);
  return out;
}

void write_pfm(const std::string& path, const Tensor& image) { write_file_atomic(path, encode_pfm(image)); }

}  // namespace io
}  // namespace stereort
