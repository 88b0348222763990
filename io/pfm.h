// io/pfm.h — Portable Float Map read/write (SceneFlow, Middlebury, ETH3D disparities; formats-and-metrics.md §2).
//   File: "Pf" (1 channel) or "PF" (3 channels), whitespace, "W H", whitespace, scale, one whitespace character
//   (a "\r\n" pair is accepted), then W*H*C float32 with rows bottom-to-top, channels interleaved.
//   Negative scale => little-endian, positive => big-endian (byte-swapped on read); scale 0 is rejected.
//   Reader leniency: any whitespace between header tokens and '#' comment lines between them (ETH3D's evaluator skips
//   them); bytes after the pixel data are ignored. Truncated data, bad magic, non-numeric or non-positive sizes and
//   sizes that exceed the file are errors naming the file.
//   read_pfm returns f32 (H,W) for Pf and (H,W,3) for PF, rows flipped to top-to-bottom; with first_channel (for
//   SceneFlow "PF" disparity/flow files) a PF file gives (H,W) of channel 0.
//   write_pfm writes exactly "Pf\n{W} {H}\n-1\n" (or "PF" for (H,W,3)) + little-endian rows bottom-to-top; atomic.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace stereort {
namespace io {

struct PfmReadOptions {
  bool first_channel = false;  // PF files: keep channel 0 only, giving (H,W)
};

Tensor read_pfm(const std::string& path, const PfmReadOptions& opt = {});
Tensor read_pfm_from_memory(const uint8_t* bytes, size_t n, const std::string& name, const PfmReadOptions& opt = {});

// image: floating (H,W) -> "Pf", (H,W,3) -> "PF". Values are written as float32 (NaN/inf kept).
void write_pfm(const std::string& path, const Tensor& image);
std::vector<uint8_t> encode_pfm(const Tensor& image);

}  // namespace io
}  // namespace stereort
