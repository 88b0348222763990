// io/safetensors_convert.cpp — key renaming and dtype casting of safetensors files. See the header.
#include "io/safetensors_convert.h"

#include "core/check.h"

namespace stereort {
namespace io {

std::string convert_key(const std::string& key, const ConvertOptions& opt) {
  std::string name = key;
  for (bool again = true; again;) {
    again = false;
    for (const auto& p : opt.strip_prefixes)
      if (!p.empty() && name.size() > p.size() && name.compare(0, p.size(), p) == 0) {
        name = name.substr(p.size());
        again = true;
        break;
      }
  }
  for (const auto& rn : opt.renames)
    if (name.compare(0, rn.first.size(), rn.first) == 0) return rn.second + name.substr(rn.first.size());
  return name;
}

ConvertReport convert_safetensors(const SafeTensors& in, const std::string& out_path, const ConvertOptions& opt) {
  if (opt.cast_to)
    STEREORT_CHECK(dtype_is_floating(*opt.cast_to), "convert: cast target {} is not a floating dtype (f32, f16, bf16)",
                   dtype_name(*opt.cast_to));
  ConvertReport rep;
  std::map<std::string, std::string> meta = in.metadata();
  for (const auto& kv : opt.metadata) meta[kv.first] = kv.second;
  std::vector<std::pair<std::string, Tensor>> out;
  std::map<std::string, std::string> source;  // new name -> old name
  for (const auto& k : in.keys()) {
    std::string name = convert_key(k, opt);
    STEREORT_CHECK(!name.empty(), "convert: key '{}' becomes empty after renaming", k);
    auto ins = source.emplace(name, k);
    STEREORT_CHECK(ins.second, "convert: keys '{}' and '{}' both become '{}'; adjust --rename/--strip-prefix",
                   ins.first->second, k, name);
    rep.renamed += name != k;
    Tensor t = in.get(k);
    if (opt.cast_to && dtype_is_floating(t.dtype()) && t.dtype() != *opt.cast_to) {
      t = t.to(*opt.cast_to);
      ++rep.cast;
    }
    out.emplace_back(name, t);
  }
  save_safetensors(out_path, out, meta);
  rep.tensors = out.size();
  rep.metadata_entries = meta.size();
  return rep;
}

}  // namespace io
}  // namespace stereort
