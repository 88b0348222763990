// apps/cmd_convert.cpp — `stereort convert`: inspect a safetensors file, or rewrite it with renamed keys, a different
//   floating dtype and extra metadata.
//     stereort convert IN.safetensors                       list tensors (name, dtype, shape, bytes), totals, metadata
//     stereort convert IN -o OUT [--strip-prefix module.] [--rename old=new]... [--dtype bf16] [--metadata k=v]...
//   Key rules and casting: io/safetensors_convert.h (strip prefixes repeatedly, then the first matching --rename;
//   --dtype casts floating tensors only; input metadata kept, --metadata adds). The output is written atomically;
//   writing over the input is allowed (the input stays mapped until the new file replaces it).
#include <cxxopts.hpp>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/check.h"
#include "io/safetensors.h"
#include "io/safetensors_convert.h"

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
  io::ConvertOptions co;
  if (dt != "keep") {
    STEREORT_CHECK(dt == "f32" || dt == "f16" || dt == "bf16", "convert: --dtype must be keep, f32, f16 or bf16, got '{}'",
                   dt);
    co.cast_to = dtype_from_name(dt);
  }
  if (r.count("strip-prefix")) co.strip_prefixes = r["strip-prefix"].as<std::vector<std::string>>();
  if (r.count("rename"))
    for (const auto& s : r["rename"].as<std::vector<std::string>>()) co.renames.push_back(split_eq(s, "--rename"));
  if (r.count("metadata"))
    for (const auto& s : r["metadata"].as<std::vector<std::string>>()) co.metadata.insert(split_eq(s, "--metadata"));
  std::string path = r["output"].as<std::string>();
  io::ConvertReport rep = io::convert_safetensors(st, path, co);
  std::cout << fmt::format("wrote {}: {} tensors ({} renamed, {} cast to {}), {} metadata entries\n", path, rep.tensors,
                           rep.renamed, rep.cast, co.cast_to ? dt : "-", rep.metadata_entries);
  return 0;
}

}  // namespace app
}  // namespace stereort
