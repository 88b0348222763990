// fuzz/fuzz_pfm.cpp — libFuzzer target: the PFM parser (both channel options) on arbitrary bytes.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/pfm.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (bool first : {false, true}) {
    try {
      stereort::io::PfmReadOptions o;
      o.first_channel = first;
      (void)stereort::io::read_pfm_from_memory(data, size, "fuzz.pfm", o);
    } catch (const stereort::Error&) {
    }
  }
  return 0;
}
