// tests/test_main.cpp — doctest's main. Prints the build/device line once so every log says what it ran on.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "core/context.h"

int main(int argc, char** argv) {
  std::printf("stereort tests: %s\n", stereort::cuda_available() ? "CUDA device present, GPU tests run"
                                                                  : "no CUDA device, GPU tests skip");
  doctest::Context ctx;
  ctx.applyCommandLine(argc, argv);
  return ctx.run();
}
