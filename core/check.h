// core/check.h — STEREORT_CHECK(cond, fmt, args...): argument checks with an fmt-formatted message.
//   STEREORT_CHECK(x.dim() == 4, "conv2d: input {} must be 4-D (B,C,H,W)", shape_str(x.shape()));
//   The message should name the op, the shapes and the fix. Host C++ only (fmt is kept out of nvcc's way).
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"

#define STEREORT_CHECK(cond, ...)                                                                      \
  do {                                                                                                 \
    if (!(cond)) ::stereort::throw_error(__FILE__, __LINE__, __func__, fmt::format(__VA_ARGS__));       \
  } while (0)

#define STEREORT_FAIL(...) ::stereort::throw_error(__FILE__, __LINE__, __func__, fmt::format(__VA_ARGS__))
