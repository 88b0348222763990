// io/png16.h — 16-bit greyscale PNG: our own writer and stb-based reader; disparity maps in the KITTI / SCARED
//   encodings (formats-and-metrics.md §3, §7).
//   Writer: PNG signature, IHDR (bit depth 16, colour type 0 grey, no interlace), one IDAT holding a zlib stream from
//     stb_image_write's deflate (stbi_zlib_compress) over rows filtered per row with the PNG filter (None, Sub, Up,
//     Average, Paeth) of least absolute byte sum, IEND; CRC-32 per chunk. Samples big-endian. Atomic (temp + rename).
//   Reader: our chunk walk first (lengths in range, CRC-32 of every chunk, IHDR first, IEND present — stb checks
//     none of this), then stb_image (stbi_load_16_from_memory); the file must have 16 bits per sample, one channel.
//   Disparity encoding: v = round(d * scale) (half to even, like np.round), scale 256 (KITTI) or 128 (SCARED,
//     StereoMamba); 0 = invalid. Pixels that are non-finite, <= 0, marked invalid, or round to 0 are written 0;
//     values above 65535 are clamped to 65535 and counted (the count is returned and a one-line warning goes to
//     stderr; scared_toolkit zeroes them instead). Decoding: d = v / scale, valid = v > 0, d = 0 where invalid.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stereort {
namespace io {

constexpr double kKittiDispScale = 256.0;
constexpr double kScaredDispScale = 128.0;

// Encode h*w samples (row-major) as a 16-bit greyscale PNG.
std::vector<uint8_t> encode_png16(const uint16_t* samples, int width, int height);
// (H,W) tensor of any dtype with integral values in [0, 65535] (checked).
void write_png16(const std::string& path, const Tensor& values);
// I32 (H,W) raw sample values.
Tensor read_png16(const std::string& path);
Tensor read_png16_from_memory(const uint8_t* bytes, size_t n, const std::string& name);

struct DisparityEncodeStats {
  int64_t clamped = 0;  // pixels above 65535/scale, written as 65535
  int64_t invalid = 0;  // pixels written as 0
};
// disp: (H,W) floating; valid: optional (H,W) bool/u8 mask (nonzero = valid).
DisparityEncodeStats write_disparity_png(const std::string& path, const Tensor& disp, double scale,
                                         const Tensor& valid = Tensor());
std::vector<uint16_t> encode_disparity_u16(const Tensor& disp, double scale, const Tensor& valid,
                                           DisparityEncodeStats* stats, int* height, int* width);

struct DisparityMap {
  Tensor disp;   // f32 (H,W), 0 where invalid
  Tensor valid;  // bool (H,W)
};
DisparityMap read_disparity_png(const std::string& path, double scale);

}  // namespace io
}  // namespace stereort
