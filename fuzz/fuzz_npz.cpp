// fuzz/fuzz_npz.cpp — libFuzzer target: the NPZ (ZIP) reader and, through it, the NPY parser; the same bytes are also
// fed to parse_npy directly.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)stereort::io::parse_npz(data, size, "fuzz.npz");
  } catch (const stereort::Error&) {
  }
  try {
    (void)stereort::io::parse_npy(data, size, "fuzz.npy");
  } catch (const stereort::Error&) {
  }
  return 0;
}
