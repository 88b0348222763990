// io/png16.cpp — 16-bit greyscale PNG writer (own chunks, stb deflate), stb-based reader, disparity encodings.
#include "io/png16.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/check.h"
#include "io/fileio.h"
#include "stb_image.h"

// Defined in stb_image_write.h's implementation (io/stb_impl.c) but not declared in its public part.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len, int quality);

namespace stereort {
namespace io {

namespace {

constexpr int64_t kMaxPngPixels = int64_t(1) << 28;  // 268 M pixels: bounds what a tiny corrupt header can allocate
const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  out.push_back(uint8_t(v >> 24));
  out.push_back(uint8_t(v >> 16));
  out.push_back(uint8_t(v >> 8));
  out.push_back(uint8_t(v));
}

void put_chunk(std::vector<uint8_t>& out, const char type[4], const uint8_t* data, size_t n) {
  put_be32(out, uint32_t(n));
  size_t start = out.size();
  out.insert(out.end(), type, type + 4);
  if (n) out.insert(out.end(), data, data + n);
  put_be32(out, crc32(out.data() + start, n + 4));
}

uint8_t paeth(int a, int b, int c) {
  int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return uint8_t(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }

// Walk the chunk list: every length within the file, every CRC right, IHDR first, IEND present. stb_image checks
// none of the CRCs and tolerates a missing IEND, so a truncated or bit-flipped file would otherwise decode silently.
void validate_png_chunks(const uint8_t* p, size_t n, const std::string& name) {
  size_t pos = 8;
  bool first = true;
  uint64_t idat = 0, raw = 0;  // compressed bytes seen; filtered bytes IHDR implies (non-interlaced count)
  for (;;) {
    STEREORT_CHECK(n - pos >= 12, "{}: truncated PNG (chunk header at byte {} runs past the {}-byte file; no IEND)",
                   name, pos, n);
    uint32_t len = be32(p + pos);
    const uint8_t* type = p + pos + 4;
    STEREORT_CHECK(len <= uint32_t(INT32_MAX) && len <= n - pos - 12,
                   "{}: truncated PNG (chunk at byte {} claims {} bytes; {} remain)", name, pos, len, n - pos - 12);
    for (int k = 0; k < 4; ++k)
      STEREORT_CHECK((type[k] >= 'A' && type[k] <= 'Z') || (type[k] >= 'a' && type[k] <= 'z'),
                     "{}: corrupt PNG (bad chunk type at byte {})", name, pos + 4);
    std::string t(reinterpret_cast<const char*>(type), 4);
    STEREORT_CHECK(!first || t == "IHDR", "{}: corrupt PNG (first chunk is {}, not IHDR)", name, t);
    STEREORT_CHECK(crc32(type, size_t(len) + 4) == be32(p + pos + 8 + len),
                   "{}: corrupt PNG (CRC mismatch in the {} chunk at byte {})", name, t, pos);
    if (first && len >= 13) {
      uint64_t w = be32(p + pos + 8), h = be32(p + pos + 12), depth = p[pos + 16], type = p[pos + 17];
      uint64_t ch = type == 2 ? 3 : type == 4 ? 2 : type == 6 ? 4 : 1;
      raw = h * ((w * ch * depth + 7) / 8 + 1);
    }
    if (t == "IDAT") idat += len;
    if (t == "IEND") {
      // Deflate cannot expand more than ~1032:1: refuse a header whose image cannot fit in the IDAT data before the
      // decoder allocates for it.
      STEREORT_CHECK(idat * 1032 + 1024 >= raw, "{}: corrupt PNG ({} bytes of IDAT cannot hold the image IHDR "
                     "describes, {} filtered bytes)", name, idat, raw);
      return;
    }
    first = false;
    pos += 12 + size_t(len);
  }
}

}  // namespace

std::vector<uint8_t> encode_png16(const uint16_t* samples, int width, int height) {
  STEREORT_CHECK(width > 0 && height > 0, "write_png16: empty image {}x{}", width, height);
  const size_t row = size_t(width) * 2;  // bytes per row, bpp = 2
  STEREORT_CHECK((row + 1) * size_t(height) < size_t(INT32_MAX), "write_png16: image {}x{} too large for one IDAT",
                 width, height);
  std::vector<uint8_t> raw(row), prev(row, 0), filtered((row + 1) * size_t(height)), cand(row);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      uint16_t v = samples[size_t(y) * size_t(width) + size_t(x)];
      raw[size_t(2 * x)] = uint8_t(v >> 8);
      raw[size_t(2 * x + 1)] = uint8_t(v & 0xff);
    }
    // Pick the filter with the least sum of |signed byte| (the libpng heuristic).
    uint8_t* dst = &filtered[size_t(y) * (row + 1)];
    long best_cost = -1;
    for (int f = 0; f < 5; ++f) {
      long cost = 0;
      for (size_t i = 0; i < row; ++i) {
        int a = i >= 2 ? raw[i - 2] : 0, b = prev[i], c = i >= 2 ? prev[i - 2] : 0;
        int pred = f == 0 ? 0 : f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : paeth(a, b, c);
        cand[i] = uint8_t(raw[i] - pred);
        cost += std::abs(int(int8_t(cand[i])));
      }
      if (best_cost < 0 || cost < best_cost) {
        best_cost = cost;
        dst[0] = uint8_t(f);
        std::memcpy(dst + 1, cand.data(), row);
      }
    }
    std::swap(raw, prev);
  }
  int zlen = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> z(
      stbi_zlib_compress(filtered.data(), int(filtered.size()), &zlen, 8), std::free);
  STEREORT_CHECK(z && zlen > 0, "write_png16: deflate failed for a {}x{} image", width, height);

  std::vector<uint8_t> out(kPngSignature, kPngSignature + 8);
  uint8_t ihdr[13];
  for (int k = 0; k < 4; ++k) {
    ihdr[k] = uint8_t(uint32_t(width) >> (24 - 8 * k));
    ihdr[4 + k] = uint8_t(uint32_t(height) >> (24 - 8 * k));
  }
  ihdr[8] = 16;  // bit depth
  ihdr[9] = 0;   // colour type: greyscale
  ihdr[10] = ihdr[11] = ihdr[12] = 0;  // deflate, adaptive filtering, no interlace
  put_chunk(out, "IHDR", ihdr, 13);
  put_chunk(out, "IDAT", z.get(), size_t(zlen));
  put_chunk(out, "IEND", nullptr, 0);
  return out;
}

void write_png16(const std::string& path, const Tensor& values) {
  STEREORT_CHECK(values.defined() && values.dim() == 2, "write_png16({}): values {} must be (H,W)", path,
                 values.defined() ? values.desc() : "undefined");
  std::vector<double> v = values.to_vector();
  std::vector<uint16_t> s(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    STEREORT_CHECK(v[i] >= 0 && v[i] <= 65535 && v[i] == std::floor(v[i]),
                   "write_png16({}): value {} at index {} is not an integer in [0, 65535]", path, v[i], i);
    s[i] = uint16_t(v[i]);
  }
  write_file_atomic(path, encode_png16(s.data(), int(values.size(1)), int(values.size(0))));
}

Tensor read_png16_from_memory(const uint8_t* bytes, size_t n, const std::string& name) {
  STEREORT_CHECK(n >= 8 && std::memcmp(bytes, kPngSignature, 8) == 0, "{}: not a PNG file (bad signature)", name);
  STEREORT_CHECK(n <= size_t(INT32_MAX), "{}: file too large ({} bytes)", name, n);
  validate_png_chunks(bytes, n, name);
  const auto* buf = reinterpret_cast<const stbi_uc*>(bytes);
  int w = 0, h = 0, c = 0;
  STEREORT_CHECK(stbi_info_from_memory(buf, int(n), &w, &h, &c), "{}: cannot decode PNG: {}", name,
                 stbi_failure_reason());
  STEREORT_CHECK(int64_t(w) * h <= kMaxPngPixels, "{}: PNG claims {}x{} pixels, more than the {} this reader allows",
                 name, w, h, kMaxPngPixels);
  STEREORT_CHECK(stbi_is_16_bit_from_memory(buf, int(n)), "{}: {}x{} PNG has 8 bits per sample; a disparity/16-bit "
                 "PNG must have 16", name, w, h);
  STEREORT_CHECK(c == 1, "{}: 16-bit PNG has {} channels; expected a single grey channel", name, c);
  std::unique_ptr<stbi_us, void (*)(void*)> px(stbi_load_16_from_memory(buf, int(n), &w, &h, &c, 1), stbi_image_free);
  STEREORT_CHECK(px, "{}: cannot decode 16-bit PNG: {}", name, stbi_failure_reason());
  Tensor t = Tensor::empty({h, w}, DType::I32);
  int32_t* d = t.data<int32_t>();
  for (int64_t i = 0; i < int64_t(h) * w; ++i) d[i] = px.get()[i];
  return t;
}

Tensor read_png16(const std::string& path) {
  std::vector<uint8_t> b = read_file_bytes(path);
  return read_png16_from_memory(b.data(), b.size(), path);
}

std::vector<uint16_t> encode_disparity_u16(const Tensor& disp, double scale, const Tensor& valid,
                                           DisparityEncodeStats* stats, int* height, int* width) {
  STEREORT_CHECK(disp.defined() && disp.dim() == 2 && dtype_is_floating(disp.dtype()),
                 "write_disparity_png: disparity {} must be floating (H,W)", disp.defined() ? disp.desc() : "undefined");
  STEREORT_CHECK(scale > 0, "write_disparity_png: scale must be > 0 (256 KITTI, 128 SCARED), got {}", scale);
  if (valid.defined())
    STEREORT_CHECK(valid.shape() == disp.shape(), "write_disparity_png: mask {} does not match disparity {}",
                   valid.desc(), disp.desc());
  Tensor d = disp.detach().to(Device::cpu()).to(DType::F64).contiguous();
  std::vector<double> m = valid.defined() ? valid.to_vector() : std::vector<double>();
  *height = int(disp.size(0));
  *width = int(disp.size(1));
  std::vector<uint16_t> out(size_t(d.numel()));
  const double* p = d.data<double>();
  DisparityEncodeStats st;
  for (size_t i = 0; i < out.size(); ++i) {
    double v = p[i];
    bool ok = std::isfinite(v) && v > 0 && (m.empty() || m[i] != 0);
    double r = ok ? std::nearbyint(v * scale) : 0.0;  // round half to even
    if (r > 65535) {
      r = 65535;
      ++st.clamped;
    }
    if (r <= 0) {
      r = 0;
      ++st.invalid;
    }
    out[i] = uint16_t(r);
  }
  if (stats) *stats = st;
  return out;
}

DisparityEncodeStats write_disparity_png(const std::string& path, const Tensor& disp, double scale,
                                         const Tensor& valid) {
  DisparityEncodeStats st;
  int h = 0, w = 0;
  std::vector<uint16_t> v = encode_disparity_u16(disp, scale, valid, &st, &h, &w);
  write_file_atomic(path, encode_png16(v.data(), w, h));
  if (st.clamped)
    std::fprintf(stderr, "stereort: warning: %s: %lld disparities above %.3f px clamped to 65535/%g\n", path.c_str(),
                 static_cast<long long>(st.clamped), 65535.0 / scale, scale);
  return st;
}

DisparityMap read_disparity_png(const std::string& path, double scale) {
  STEREORT_CHECK(scale > 0, "read_disparity_png({}): scale must be > 0, got {}", path, scale);
  Tensor raw = read_png16(path);
  DisparityMap m{Tensor::empty(raw.shape(), DType::F32), Tensor::empty(raw.shape(), DType::Bool)};
  const int32_t* r = raw.data<int32_t>();
  float* d = m.disp.data<float>();
  bool* v = m.valid.data<bool>();
  for (int64_t i = 0; i < raw.numel(); ++i) {
    v[i] = r[i] > 0;
    d[i] = float(double(r[i]) / scale);
  }
  return m;
}

}  // namespace io
}  // namespace stereort
