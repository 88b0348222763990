// fuzz/fuzz_safetensors.cpp — libFuzzer target: SafeTensors::parse on arbitrary bytes, then get() every tensor.
// A stereort::Error is the expected outcome for bad input; anything else (crash, ASan report, other exception) is a bug.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    stereort::SafeTensors st = stereort::SafeTensors::parse(data, size, "fuzz.safetensors");
    for (const auto& k : st.keys()) (void)st.get(k);
    (void)st.metadata();
  } catch (const stereort::Error&) {
  }
  return 0;
}
