// io/image.cpp — stb_image decode into tensors, stb_image_write PNG encode. See io/image.h.
#include "io/image.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/check.h"
#include "io/fileio.h"
#include "stb_image.h"
#include "stb_image_write.h"

namespace stereort {
namespace io {

namespace {

constexpr int64_t kMaxPixels = int64_t(1) << 28;  // 268 M pixels: bounds what a tiny corrupt header can allocate

void check_options(const ImageReadOptions& o, const std::string& name) {
  STEREORT_CHECK(o.channels == 0 || o.channels == 1 || o.channels == 3 || o.channels == 4,
                 "read_image({}): channels must be 0 (as stored), 1, 3 or 4, got {}", name, o.channels);
  STEREORT_CHECK(o.dtype == DType::F32 || o.dtype == DType::U8, "read_image({}): dtype must be f32 or u8, got {}",
                 name, dtype_name(o.dtype));
}

// Interleaved (H,W,C) samples -> tensor in the requested dtype and layout.
template <typename S>
Tensor pack(const S* px, int h, int w, int c, const ImageReadOptions& o, double scale) {
  Shape shape = o.layout == ImageLayout::CHW ? Shape{c, h, w} : Shape{h, w, c};
  Tensor t = Tensor::empty(shape, o.dtype);
  int64_t hw = int64_t(h) * w;
  for (int64_t p = 0; p < hw; ++p) {
    for (int k = 0; k < c; ++k) {
      int64_t dst = o.layout == ImageLayout::CHW ? k * hw + p : p * c + k;
      S v = px[p * c + k];
      if (o.dtype == DType::F32) t.data<float>()[dst] = float(double(v) * scale);
      else t.data<uint8_t>()[dst] = uint8_t(v);
    }
  }
  return t;
}

}  // namespace

Tensor read_image_from_memory(const uint8_t* bytes, size_t n, const std::string& name, const ImageReadOptions& o) {
  check_options(o, name);
  STEREORT_CHECK(n > 0 && n <= size_t(INT32_MAX), "{}: cannot decode image: file is {} bytes", name, n);
  int w = 0, h = 0, stored = 0;
  const auto* buf = reinterpret_cast<const stbi_uc*>(bytes);
  STEREORT_CHECK(stbi_info_from_memory(buf, int(n), &w, &h, &stored), "{}: cannot decode image: {}", name,
                 stbi_failure_reason());
  STEREORT_CHECK(int64_t(w) * h <= kMaxPixels, "{}: image claims {}x{} pixels, more than the {} this reader allows "
                 "(corrupt header?)", name, w, h, kMaxPixels);
  bool sixteen = stbi_is_16_bit_from_memory(buf, int(n)) != 0;
  int want = o.channels;
  if (sixteen && o.dtype == DType::F32) {
    std::unique_ptr<stbi_us, void (*)(void*)> px(stbi_load_16_from_memory(buf, int(n), &w, &h, &stored, want),
                                                 stbi_image_free);
    STEREORT_CHECK(px, "{}: cannot decode 16-bit image: {}", name, stbi_failure_reason());
    return pack(px.get(), h, w, want ? want : stored, o, 1.0 / 65535.0);
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load_from_memory(buf, int(n), &w, &h, &stored, want),
                                               stbi_image_free);
  STEREORT_CHECK(px, "{}: cannot decode image: {}", name, stbi_failure_reason());
  return pack(px.get(), h, w, want ? want : stored, o, 1.0 / 255.0);
}

Tensor read_image(const std::string& path, const ImageReadOptions& o) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  return read_image_from_memory(bytes.data(), bytes.size(), path, o);
}

ImageInfo image_info(const std::string& path) {
  std::vector<uint8_t> bytes = read_file_bytes(path);
  STEREORT_CHECK(!bytes.empty() && bytes.size() <= size_t(INT32_MAX), "{}: not an image ({} bytes)", path,
                 bytes.size());
  ImageInfo info;
  STEREORT_CHECK(stbi_info_from_memory(bytes.data(), int(bytes.size()), &info.width, &info.height, &info.channels),
                 "{}: cannot read image header: {}", path, stbi_failure_reason());
  info.bits = stbi_is_16_bit_from_memory(bytes.data(), int(bytes.size())) ? 16 : 8;
  return info;
}

std::vector<uint8_t> image_to_hwc_u8(const Tensor& image, ImageLayout layout, int* h, int* w, int* c,
                                     const char* op) {
  STEREORT_CHECK(image.defined(), "{}: undefined image tensor", op);
  Tensor t = image.detach().to(Device::cpu());
  STEREORT_CHECK(t.dim() == 2 || t.dim() == 3, "{}: image {} must be (H,W), (C,H,W) or (H,W,C)", op, t.desc());
  STEREORT_CHECK(t.dtype() == DType::U8 || dtype_is_floating(t.dtype()),
                 "{}: image {} must be u8 or floating in [0,1]", op, t.desc());
  if (t.dim() == 2) t = t.unsqueeze(layout == ImageLayout::CHW ? 0 : 2);
  if (layout == ImageLayout::CHW) t = t.permute({1, 2, 0});
  *h = int(t.size(0));
  *w = int(t.size(1));
  *c = int(t.size(2));
  STEREORT_CHECK(*c == 1 || *c == 3 || *c == 4, "{}: image {} has {} channels; expected 1, 3 or 4 (layout {})", op,
                 image.desc(), *c, layout == ImageLayout::CHW ? "CHW" : "HWC");
  STEREORT_CHECK(*h > 0 && *w > 0, "{}: empty image {}", op, image.desc());
  std::vector<uint8_t> out(size_t(*h) * size_t(*w) * size_t(*c));
  if (t.dtype() == DType::U8) {
    Tensor cc = t.contiguous();
    std::memcpy(out.data(), cc.data_ptr(), out.size());
  } else {
    Tensor cc = t.to(DType::F32).contiguous();
    const float* p = cc.data<float>();
    for (size_t i = 0; i < out.size(); ++i) {
      float v = p[i];
      v = std::isnan(v) ? 0.f : v < 0.f ? 0.f : v > 1.f ? 1.f : v;
      out[i] = uint8_t(std::lround(v * 255.0f));
    }
  }
  return out;
}

std::vector<uint8_t> encode_png(const Tensor& image, ImageLayout layout) {
  int h, w, c;
  std::vector<uint8_t> px = image_to_hwc_u8(image, layout, &h, &w, &c, "write_png");
  std::vector<uint8_t> png;
  auto sink = [](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  };
  int ok = stbi_write_png_to_func(sink, &png, w, h, c, px.data(), w * c);
  STEREORT_CHECK(ok && !png.empty(), "write_png: stb_image_write failed to encode a {}x{}x{} image", w, h, c);
  return png;
}

void write_png(const std::string& path, const Tensor& image, ImageLayout layout) {
  std::vector<uint8_t> png = encode_png(image, layout);
  write_file_atomic(path, png);
}

}  // namespace io
}  // namespace stereort
