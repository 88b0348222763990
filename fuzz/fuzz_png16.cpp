// fuzz/fuzz_png16.cpp — libFuzzer target: our 16-bit PNG reader path (signature, chunk walk with CRC checks, size
// limits, then stb_image). Each input is tried as is, and again with every chunk CRC recomputed, so that mutations
// inside IHDR/IDAT also reach stb's decoder instead of stopping at our CRC check.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "io/fileio.h"
#include "io/png16.h"

namespace {
void try_read(const uint8_t* data, size_t size) {
  try {
    (void)stereort::io::read_png16_from_memory(data, size, "fuzz.png");
  } catch (const stereort::Error&) {
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try_read(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  for (size_t pos = 8; pos + 12 <= fixed.size();) {
    size_t len = size_t(fixed[pos]) << 24 | size_t(fixed[pos + 1]) << 16 | size_t(fixed[pos + 2]) << 8 | fixed[pos + 3];
    if (len > fixed.size() - pos - 12) break;
    uint32_t crc = stereort::io::crc32(fixed.data() + pos + 4, len + 4);
    for (int k = 0; k < 4; ++k) fixed[pos + 8 + len + size_t(k)] = uint8_t(crc >> (24 - 8 * k));
    pos += 12 + len;
  }
  try_read(fixed.data(), fixed.size());
  return 0;
}
