// fuzz/fuzz_png16.cpp — libFuzzer target: our 16-bit PNG reader path (signature and size checks, then stb_image).
// Seeds: any PNG; `encode_png16` output is a good start (see fuzz/README.md).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/png16.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    (void)stereort::io::read_png16_from_memory(data, size, "fuzz.png");
  } catch (const stereort::Error&) {
  }
  return 0;
}
