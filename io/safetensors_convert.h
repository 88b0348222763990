// io/safetensors_convert.h — the rewrite behind `stereort convert`: rename keys by prefix rules, cast floating
//   tensors, add metadata, write atomically.
//   Key rules, in this order: every strip prefix P is removed from the start of a key, repeatedly (first matching P on
//   each pass, so "module.module.x" -> "x"; a key is never stripped to nothing); then the first rename (OLD, NEW)
//   whose OLD is a prefix of the key replaces that prefix. Two keys mapping to one name is an error naming both.
//   cast: floating tensors (F64/F32/F16/BF16) become `cast_to`; integer and bool tensors (e.g. BatchNorm's int64
//   num_batches_tracked) are kept. Input metadata is kept; `metadata` adds or replaces entries.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "io/safetensors.h"

namespace stereort {
namespace io {

struct ConvertOptions {
  std::vector<std::string> strip_prefixes;
  std::vector<std::pair<std::string, std::string>> renames;
  std::optional<DType> cast_to;                  // F32, F16 or BF16
  std::map<std::string, std::string> metadata;  // added / replaced
};

struct ConvertReport {
  size_t tensors = 0, renamed = 0, cast = 0;
  size_t metadata_entries = 0;
};

// The new name of `key` under the rules (no collision check).
std::string convert_key(const std::string& key, const ConvertOptions& opt);
ConvertReport convert_safetensors(const SafeTensors& in, const std::string& out_path, const ConvertOptions& opt);

}  // namespace io
}  // namespace stereort
