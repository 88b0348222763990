// io/image.h — image files <-> tensors through stb_image (read PNG/JPEG/BMP/TGA/PPM, 8 or 16 bits per channel) and
//   stb_image_write (8-bit PNG out).
//   read_image(path) with the default options gives what the networks want: float32 (3,H,W) RGB in [0,1]
//     (8-bit files / 255, 16-bit files / 65535; grey files replicated to 3 channels, alpha dropped).
//   Options: channels 3 (RGB) | 1 (grey; colour files converted by stb's luma (77 R + 150 G + 29 B) / 256) | 4 (RGBA) |
//     0 (as stored); dtype F32 ([0,1]) | U8 (raw 8-bit values; a 16-bit file is reduced to its high byte by stb);
//     layout CHW (default; planar, what convolutions take) | HWC (interleaved, as stored in the file).
//   Colour order is always RGB (stb), never OpenCV's BGR.
//   write_png: U8 values as they are, or floating values in [0,1] mapped by round(clamp(v,0,1)*255); (H,W) grey or
//     (C,H,W) / (H,W,C) with C in {1, 3, 4}. Written atomically (temp + rename). For 16-bit PNG see io/png16.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stereort {
namespace io {

enum class ImageLayout { CHW, HWC };

struct ImageReadOptions {
  int channels = 3;
  DType dtype = DType::F32;
  ImageLayout layout = ImageLayout::CHW;
};

struct ImageInfo {
  int width = 0, height = 0, channels = 0;  // channels as stored
  int bits = 8;                             // 8 or 16 per channel
};

Tensor read_image(const std::string& path, const ImageReadOptions& opt = {});
Tensor read_image_from_memory(const uint8_t* bytes, size_t n, const std::string& name,
                              const ImageReadOptions& opt = {});
ImageInfo image_info(const std::string& path);

void write_png(const std::string& path, const Tensor& image, ImageLayout layout = ImageLayout::CHW);
std::vector<uint8_t> encode_png(const Tensor& image, ImageLayout layout = ImageLayout::CHW);

// Interleaved 8-bit pixels (H,W,C) of a U8 or [0,1]-floating image tensor, in the layout given; C in {1,3,4}.
// Used by the writers and the colour maps. Returns the packed bytes and sets h, w, c.
std::vector<uint8_t> image_to_hwc_u8(const Tensor& image, ImageLayout layout, int* h, int* w, int* c,
                                     const char* op);

}  // namespace io
}  // namespace stereort
