// apps/cmd_convert.cpp — `stereort convert`: inspect a safetensors file, or rewrite it with renamed keys, a different
//   floating dtype and extra metadata.
//     stereort convert IN.safetensors                       list tensors (name, dtype, shape, bytes), totals, metadata
//     stereort convert IN -o OUT [--strip-prefix module.] [--rename old=new]... [--dtype bf16] [--metadata k=v]...
//   Key rules, in this order: every --strip-prefix P removes P from the start of a key (repeatedly, first match each
//   pass, so "module.module.x" loses both); then the first --rename OLD=NEW whose OLD is a prefix of the key replaces
//   that prefix. Two keys mapping to one name is an error naming both. --dtype casts floating tensors only (integer
//   and bool tensors, e.g. BN num_batches_tracked, are kept). Input metadata is kept; --metadata adds or replaces.
//   The output is written atomically; writing over the input is allowed.
#include <cxxopts.hpp>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/check.h"
#include "io/safetensors.h"

namespace stereort {
namespace app {

namespace {

std::string human_bytes(double b) {
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} {}", b, unit[u]) : fmt::format("{:.2f} {}", b, unit[u]);
}

std::pair<std::string, std::string> split_eq(const std::string& s, const char* flag) {
  size_t eq = s.find('=');
  STEREORT_CHECK(eq != std::string::npos, "convert: {} '{}' must be OLD=NEW (key=value)", flag, s);
  return {s.substr(0, eq), s.substr(eq + 1)};
}

void inspect(const SafeTensors& st) {
  std::vector<std::string> keys = st.keys();
  size_t w = 4;
  for (const auto& k : keys) w = std::max(w, k.size());
  w = std::min<size_t>(w, 80);
  std::cout << fmt::format("{:<{}}  {:<5} {:<22} {:>12}\n", "name", w, "dtype", "shape", "bytes");
  int64_t elements = 0;
  std::map<std::string, std::pair<int, size_t>> by_dtype;
  for (const auto& k : keys) {
    const TensorInfo& i = st.info(k);
    elements += shape_numel(i.shape);
    auto& agg = by_dtype[safetensors_dtype_name(i.dtype)];
    agg.first += 1;
    agg.second += i.nbytes;
    std::cout << fmt::format("{:<{}}  {:<5} {:<22} {:>12}\n", k, w, safetensors_dtype_name(i.dtype), shape_str(i.shape),
                             i.nbytes);
  }
  std::cout << fmt::format("\n{}: {} tensors, {} elements, {} of data ({} bytes), header {} bytes\n", st.path(),
                           keys.size(), elements, human_bytes(double(st.data_size())), st.data_size(),
                           st.header_size());
  for (const auto& kv : by_dtype)
    std::cout << fmt::format("  {:<5} {} tensors, {}\n", kv.first, kv.second.first, human_bytes(double(kv.second.second)));
  if (!st.metadata().empty()) {
    std::cout << "metadata:\n";
    for (const auto& kv : st.metadata()) {
      std::string v = kv.second;
      if (v.size() > 160) v = v.substr(0, 160) + fmt::format("… ({} chars)", kv.second.size());
      std::cout << fmt::format("  {}: {}\n", kv.first, v);
    }
  }
}

}  // namespace

int cmd_convert(int argc, char** argv) {
  cxxopts::Options opts(argv[0], "Inspect a safetensors file, or rewrite it with renamed keys / another dtype");
  opts.positional_help("IN.safetensors");
  opts.add_options()
      ("input", "safetensors file to read", cxxopts::value<std::string>())
      ("o,output", "write the converted file here (without it: only list the tensors)", cxxopts::value<std::string>())
      ("strip-prefix", "remove this prefix from keys, e.g. module. (repeatable)",
       cxxopts::value<std::vector<std::string>>())
      ("rename", "OLD=NEW: replace key prefix OLD by NEW (repeatable; first match wins)",
       cxxopts::value<std::vector<std::string>>())
      ("dtype", "cast floating tensors to f32, f16 or bf16 (keep: no cast)",
       cxxopts::value<std::string>()->default_value("keep"))
      ("metadata", "KEY=VALUE to add to __metadata__ (repeatable)", cxxopts::value<std::vector<std::string>>())
      ("q,quiet", "do not list the tensors")
      ("h,help", "show this help");
  opts.parse_positional({"input"});
  auto r = opts.parse(argc, argv);
  if (r.count("help") || !r.count("input")) {
    std::cout << opts.help() << "\n";
    return r.count("help") ? 0 : 1;
  }
  std::string in = r["input"].as<std::string>();
  SafeTensors st = SafeTensors::open(in);
  if (!r.count("quiet")) inspect(st);
  if (!r.count("output")) return 0;

  std::string dt = r["dtype"].as<std::string>();
  bool cast = dt != "keep";
  DType target = DType::F32;
  if (cast) {
    STEREORT_CHECK(dt == "f32" || dt == "f16" || dt == "bf16", "convert: --dtype must be keep, f32, f16 or bf16, got '{}'",
                   dt);
    target = dtype_from_name(dt);
  }
  std::vector<std::string> strip = r.count("strip-prefix") ? r["strip-prefix"].as<std::vector<std::string>>()
                                                           : std::vector<std::string>();
  std::vector<std::pair<std::string, std::string>> renames;
  if (r.count("rename"))
    for (const auto& s : r["rename"].as<std::vector<std::string>>()) renames.push_back(split_eq(s, "--rename"));
  std::map<std::string, std::string> meta = st.metadata();
  if (r.count("metadata"))
    for (const auto& s : r["metadata"].as<std::vector<std::string>>()) {
      auto kv = split_eq(s, "--metadata");
      meta[kv.first] = kv.second;
    }

  std::vector<std::pair<std::string, Tensor>> out;
  std::map<std::string, std::string> source;  // new name -> old name
  int renamed = 0, casted = 0;
  for (const auto& k : st.keys()) {
    std::string name = k;
    for (bool again = true; again;) {
      again = false;
      for (const auto& p : strip)
        if (!p.empty() && name.size() > p.size() && name.compare(0, p.size(), p) == 0) {
          name = name.substr(p.size());
          again = true;
          break;
        }
    }
    for (const auto& rn : renames)
      if (name.compare(0, rn.first.size(), rn.first) == 0) {
        name = rn.second + name.substr(rn.first.size());
        break;
      }
    STEREORT_CHECK(!name.empty(), "convert: key '{}' becomes empty after renaming", k);
    auto ins = source.emplace(name, k);
    STEREORT_CHECK(ins.second, "convert: keys '{}' and '{}' both become '{}'; adjust --rename/--strip-prefix",
                   ins.first->second, k, name);
    renamed += name != k;
    Tensor t = st.get(k);
    if (cast && dtype_is_floating(t.dtype()) && t.dtype() != target) {
      t = t.to(target);
      ++casted;
    }
    out.emplace_back(name, t);
  }
  std::string path = r["output"].as<std::string>();
  save_safetensors(path, out, meta);
  std::cout << fmt::format("wrote {}: {} tensors ({} renamed, {} cast to {}), {} metadata entries\n", path, out.size(),
                           renamed, casted, cast ? dt : "-", meta.size());
  return 0;
}

}  // namespace app
}  // namespace stereort
