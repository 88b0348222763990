// core/shape.h — shapes, strides, broadcasting, and devices.
//   Shape = sizes, outermost first, e.g. (B,C,H,W). Strides are in elements (not bytes), as in PyTorch.
//   Broadcasting follows NumPy/PyTorch: align trailing dims; each pair must be equal or one of them 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stereort {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "(2,3,4)"; "()" for a scalar
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);
// Wrap a possibly negative dim into [0, ndim); throws with `op` in the message when out of range.
int normalize_dim(int64_t dim, int64_t ndim, const char* op);
// The broadcast of a and b; throws naming `op` and both shapes when they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

struct Device {
  enum Kind : uint8_t { CPU, CUDA };
  Kind kind = CPU;
  int index = 0;
  static Device cpu() { return {CPU, 0}; }
  static Device cuda(int i = 0) { return {CUDA, i}; }
  bool is_cuda() const { return kind == CUDA; }
  bool is_cpu() const { return kind == CPU; }
  bool operator==(const Device& o) const { return kind == o.kind && (kind == CPU || index == o.index); }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;                      // "cpu", "cuda:0"
  static Device parse(const std::string& s);    // "cpu", "cuda", "cuda:1"
};

}  // namespace stereort
