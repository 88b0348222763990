// io/safetensors.h — safetensors read (memory-mapped, lazy, strictly validated) and write (atomic).
//   Format (huggingface/safetensors; spec formats-and-metrics.md §10):
//     bytes 0..7   N, uint64 little-endian (N <= 100 MB)
//     bytes 8..8+N JSON object starting with '{' (writers pad it with spaces so N % 8 == 0):
//                  {"__metadata__": {string: string}, "<name>": {"dtype": "F32", "shape": [d0, ...],
//                   "data_offsets": [begin, end]}, ...}
//     then the data buffer: little-endian, C order; tensor bytes at [8+N+begin, 8+N+end).
//   Validation on open(): the offsets of all tensors, sorted, tile the data buffer exactly (no holes, no overlaps, no
//   bytes past the last tensor), end-begin == numel * dtype size, names unique and non-empty, __metadata__ values are
//   strings, dtype is one of F64 F32 F16 BF16 I64 I32 U8 BOOL (others — I16, I8, U16..U64, F8_* — are rejected with a
//   message naming the dtype). Every error names the file and the problem.
//   keys() lists tensors in header (file) order. get() copies the bytes into a fresh 64-byte aligned CPU tensor, so
//   unaligned third-party files are fine and the tensor does not pin the mapping.
//   Writer: "__metadata__" first (sorted keys, omitted when empty), then tensors in the given order, contiguous in the
//   data buffer in that order; compact JSON; header padded with spaces to a multiple of 8. The file appears
//   atomically (temp + rename); any device and strides (copied to CPU contiguous).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/fileio.h"

namespace stereort {

struct TensorInfo {
  DType dtype;
  Shape shape;
  size_t offset, nbytes;  // offset relative to the data buffer
};

class SafeTensors {  // read-only, memory-mapped, lazy
 public:
  static SafeTensors open(const std::string& path);
  // Parse and validate an in-memory image of a file (used by open(), the tests and the fuzzer). `name` goes into
  // error messages. The returned object points into `bytes`, which must outlive it.
  static SafeTensors parse(const uint8_t* bytes, size_t size, const std::string& name);

  std::vector<std::string> keys() const;  // in file order
  bool has(const std::string& key) const;
  const TensorInfo& info(const std::string& key) const;
  Tensor get(const std::string& key) const;  // a CPU tensor (copied out of the mapping: owns its memory, 64-byte aligned)
  const std::map<std::string, std::string>& metadata() const;
  const std::string& path() const;
  size_t header_size() const { return header_len_; }  // N
  size_t data_size() const { return data_len_; }      // bytes in the data buffer

 private:
  std::string path_;
  io::MappedFile file_;            // empty when parsed from memory
  const uint8_t* data_ = nullptr;  // start of the data buffer
  size_t header_len_ = 0, data_len_ = 0;
  std::vector<std::string> keys_;
  std::unordered_map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
std::map<std::string, Tensor> load_safetensors(const std::string& path);

// The header bytes (8-byte length + padded JSON) save_safetensors would write for these tensors (exposed for tests).
std::string safetensors_header(const std::vector<std::pair<std::string, TensorInfo>>& infos,
                               const std::map<std::string, std::string>& metadata);
// "F32" <-> DType::F32 etc. The parser throws naming the dtype for unsupported ones.
const char* safetensors_dtype_name(DType t);

}  // namespace stereort
