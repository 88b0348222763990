// io/npy.h — NumPy .npy read/write and .npz (ZIP) read/write (formats-and-metrics.md §9).
//   NPY: "\x93NUMPY", major, minor; header length uint16 LE (v1) or uint32 LE (v2, v3); a Python dict literal
//     {'descr': '<f4', 'fortran_order': False, 'shape': (H, W), } padded with spaces and '\n'; raw data follows.
//     The header is parsed as a literal (never evaluated); data alignment is not assumed.
//   dtypes read: f8 -> F64, f4 -> F32, f2 -> F16, i8 -> I64, i4 -> I32, u1 -> U8, b1 -> Bool; i2, u2, i1 widen
//     losslessly to I32 and u4 to I64. Byte orders '<', '>', '=', '|' (big-endian data is swapped). Fortran-order
//     arrays are transposed into C order. Structured dtypes, objects, strings, complex and u8 are rejected by name.
//   NPZ: a ZIP archive of <name>.npy members, stored (np.savez) or deflated (np.savez_compressed); ZIP64 extra fields
//     (numpy writes them) are honoured; each member's CRC-32 is checked; members not ending in ".npy" are skipped.
//     Deflate is stb_image's decoder (stbi_zlib_decode_noheader_buffer).
//   Writers: write_npy (v1.0, little-endian, C order) and write_npz (stored, or deflated with stb_image_write's
//     compressor) exist for tests and numeric outputs; both atomic.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace stereort {
namespace io {

Tensor read_npy(const std::string& path);
Tensor parse_npy(const uint8_t* bytes, size_t n, const std::string& name);
std::vector<uint8_t> encode_npy(const Tensor& t);
void write_npy(const std::string& path, const Tensor& t);

using NamedArrays = std::vector<std::pair<std::string, Tensor>>;  // archive order, names without ".npy"
NamedArrays read_npz(const std::string& path);
NamedArrays parse_npz(const uint8_t* bytes, size_t n, const std::string& name);
std::vector<uint8_t> encode_npz(const NamedArrays& arrays, bool compress);
void write_npz(const std::string& path, const NamedArrays& arrays, bool compress = false);

}  // namespace io
}  // namespace stereort
