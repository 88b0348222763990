// tests/test_io_safetensors.cpp — safetensors: byte-exact writer output, round trips of every dtype (strided and empty
// tensors included), strict validation with messages naming the file and the problem, atomic writes, and the golden
// files from the official PyTorch code.
#include <cmath>
#include <cstring>

#include "core/error.h"

#include "io/json.h"
#include "io/safetensors.h"
#include "io/safetensors_convert.h"
#include "io_test_helpers.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int k = 0; k < 8; ++k) s[size_t(k)] = char((n >> (8 * k)) & 0xff);
  return s;
}
// A file image from a header JSON (padded or not, as given) and raw data bytes.
std::string image(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

}  // namespace

TEST_CASE("safetensors: writer output is byte-exact") {
  TempDir dir;
  std::string path = dir / "exact.safetensors";
  Tensor a = Tensor::from_vector({1.0, 2.0}, {2}, DType::F32);
  Tensor b = Tensor::scalar(7, DType::I64);
  save_safetensors(path, {{"a", a}, {"b", b}}, {{"k", "v"}});
  // 132 JSON bytes + 4 spaces of padding = 136 = 0x88.
  std::string expected =
      std::string("\x88\0\0\0\0\0\0\0", 8) +
      R"({"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})" +
      "    " + std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8) + std::string("\x07\0\0\0\0\0\0\0", 8);
  CHECK(io::read_file_text(path) == expected);

  // No metadata: no __metadata__ key; 53 bytes of JSON + 3 spaces = 56 = 0x38.
  save_safetensors(path, {{"x", Tensor::from_vector({3}, {1}, DType::U8)}});
  std::string json = R"({"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  REQUIRE(json.size() == 53);
  std::string expected2 = std::string("\x38\0\0\0\0\0\0\0", 8) + json + "   " + "\x03";
  CHECK(io::read_file_text(path) == expected2);
  check_no_temp_files(dir.path());
}

TEST_CASE("safetensors: round trip of every dtype, strided, scalar and empty tensors") {
  TempDir dir;
  std::string path = dir / "rt.safetensors";
  std::vector<std::pair<std::string, Tensor>> ts;
  const DType dtypes[] = {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::U8};
  for (DType d : dtypes) ts.emplace_back(std::string("t_") + dtype_name(d), rand_t({3, 5, 2}, DType::F64, -50, 50).to(d));
  Tensor bools = Tensor::from_vector({1, 0, 0, 1, 1}, {5}, DType::Bool);
  ts.emplace_back("bools", bools);
  Tensor base = rand_t({4, 7}, DType::F32);
  ts.emplace_back("transposed", base.transpose(0, 1));  // non-contiguous (7,4)
  ts.emplace_back("sliced", base.slice(1, 1, 7, 3));    // (4,2) with offset
  ts.emplace_back("scalar", Tensor::scalar(-3.25, DType::F32));
  ts.emplace_back("empty", Tensor::empty({0, 3}, DType::F32));
  ts.emplace_back("nested.dotted.name/with:odd chars \"é\"", Tensor::ones({1}, DType::F16));
  std::map<std::string, std::string> meta = {{"arch", "stereomamba"}, {"json", R"({"mean":[0.485,0.456]})"},
                                             {"utf8", "µm"}};
  save_safetensors(path, ts, meta);

  SafeTensors st = SafeTensors::open(path);
  CHECK(st.path() == path);
  CHECK(st.metadata() == meta);
  std::vector<std::string> names;
  for (const auto& kv : ts) names.push_back(kv.first);
  CHECK(st.keys() == names);  // file order = the order given
  CHECK(st.header_size() % 8 == 0);
  size_t off = 0;
  for (const auto& kv : ts) {
    CAPTURE(kv.first);
    REQUIRE(st.has(kv.first));
    const TensorInfo& i = st.info(kv.first);
    CHECK(i.dtype == kv.second.dtype());
    CHECK(i.shape == kv.second.shape());
    CHECK(i.offset == off);
    CHECK(i.nbytes == kv.second.nbytes());
    off += i.nbytes;
    Tensor got = st.get(kv.first);
    CHECK(got.is_contiguous());
    CHECK(reinterpret_cast<uintptr_t>(got.data_ptr()) % 64 == 0);
    CHECK(got.to_vector() == kv.second.to_vector());  // bit-exact for every dtype
  }
  CHECK(st.data_size() == off);
  CHECK_FALSE(st.has("nope"));
  expect_error([&] { st.get("nope"); }, {path, "no tensor named 'nope'"});

  auto all = load_safetensors(path);
  CHECK(all.size() == ts.size());
  CHECK(all.at("t_f32").to_vector() == ts[1].second.to_vector());

  // A tensor outlives the SafeTensors object that produced it (it owns its memory).
  Tensor kept;
  {
    SafeTensors tmp = SafeTensors::open(path);
    kept = tmp.get("t_i64");
  }
  CHECK(kept.to_vector() == ts[4].second.to_vector());
}

TEST_CASE("safetensors: an empty file of tensors and unaligned third-party layouts") {
  TempDir dir;
  std::string path = dir / "none.safetensors";
  save_safetensors(path, {});
  CHECK(io::read_file_text(path) == le64(8) + "{}      ");
  CHECK(SafeTensors::open(path).keys().empty());

  // A header of odd length (no padding) puts the f32 data at an odd address: get() must still copy it out.
  std::string hdr = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";  // 54 bytes
  float v[2] = {1.5f, -2.5f};
  write_raw(dir / "odd.safetensors", image(hdr, std::string(reinterpret_cast<const char*>(v), 8)));
  SafeTensors st = SafeTensors::open(dir / "odd.safetensors");
  CHECK(st.get("w").to_vector() == std::vector<double>{1.5, -2.5});
}

TEST_CASE("safetensors: corrupt and truncated files are rejected with the file and the problem named") {
  TempDir dir;
  std::string f8 = std::string(8, '\0');
  std::string ok_hdr = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  struct Case {
    const char* what;
    std::string bytes;
    std::vector<std::string> needles;
  };
  std::vector<Case> cases = {
      {"empty", "", {"0 bytes, too short"}},
      {"short", std::string("\x05\0\0", 3), {"3 bytes, too short"}},
      {"huge length", le64(200000000) + "{}", {"header length 200000000", "100 MB"}},
      {"length past end", le64(100) + "{}", {"header length 100", "runs past the end", "truncated"}},
      {"not json start", image("[1,2]   ", ""), {"does not start with '{'"}},
      {"not json", image("{hello}", ""), {"header JSON", "expected a string key"}},
      {"bad utf8", image("{\"\xff\":1}", ""), {"header JSON", "invalid UTF-8"}},
      {"top not object entry", image(R"({"a":[1]})", ""), {"entry 'a'", "expected an object"}},
      {"unknown dtype", image(R"({"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}})", "x"),
       {"tensor 'a'", "unknown dtype 'Q7'"}},
      {"f8 dtype", image(R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x"),
       {"tensor 'a'", "dtype F8_E4M3", "does not support"}},
      {"i16 dtype", image(R"({"a":{"dtype":"I16","shape":[1],"data_offsets":[0,2]}})", "xx"), {"dtype I16"}},
      {"missing field", image(R"({"a":{"dtype":"F32","shape":[1]}})", ""), {"tensor 'a' lacks \"data_offsets\""}},
      {"extra field", image(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}})", "abcd"),
       {"unexpected field 'x'"}},
      {"negative dim", image(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"),
       {"shape [-1]", "non-negative"}},
      {"float dim", image(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "abcd"), {"shape [1.5]"}},
      {"overflow", image(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", "abcd"),
       {"too large"}},
      {"size mismatch", image(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f8),
       {"tensor 'a'", "needs 12 bytes", "span 8 bytes"}},
      {"offsets reversed", image(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f8),
       {"end before begin"}},
      {"offsets shape", image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", f8), {"data_offsets [0]"}},
      {"out of range", image(ok_hdr, "abcd"), {"tensor 'a'", "run past the 4-byte data buffer", "truncated"}},
      {"trailing bytes", image(ok_hdr, f8 + "xyz"), {"3 trailing bytes"}},
      {"overlap",
       image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
             f8),
       {"'a' and 'b' overlap"}},
      {"hole",
       image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
             f8 + "abcd"),
       {"hole in the data buffer", "bytes [4, 8)"}},
      {"duplicate",
       image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
             f8),
       {"duplicate key 'a'"}},
      {"metadata not strings", image(R"({"__metadata__":{"epoch":3}})", ""), {"__metadata__ value 'epoch'", "strings"}},
      {"metadata not object", image(R"({"__metadata__":"x"})", ""), {"__metadata__ is a string"}},
      {"empty name", image(R"({"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"), {"empty name"}},
  };
  for (const auto& c : cases) {
    std::string what = c.what;
    CAPTURE(what);
    std::string path = dir / (std::string(c.what) + ".safetensors");
    write_raw(path, c.bytes);
    std::vector<std::string> needles = c.needles;
    needles.push_back(path);
    expect_error([&] { SafeTensors::open(path); }, needles);
  }
  // Every prefix of a valid file fails cleanly (a truncated download).
  std::string good = image(ok_hdr + "  ", f8);
  for (size_t n = 0; n < good.size(); ++n) {
    CAPTURE(n);
    bool threw = false;
    try {
      SafeTensors::parse(reinterpret_cast<const uint8_t*>(good.data()), n, "prefix");
    } catch (const Error& e) {
      threw = true;
      CHECK(std::string(e.message()).find("prefix") != std::string::npos);
    }
    CHECK(threw);
  }
  expect_error([&] { SafeTensors::open(dir / "does_not_exist.safetensors"); },
               {"does_not_exist.safetensors", "cannot open"});
}

TEST_CASE("safetensors: writes are atomic — failures leave no file and keep the old one") {
  TempDir dir;
  std::string path = dir / "w.safetensors";
  save_safetensors(path, {{"a", Tensor::ones({2})}});
  std::string before = io::read_file_text(path);
  expect_error([&] { save_safetensors(path, {{"a", Tensor::ones({2})}, {"a", Tensor::ones({3})}}); },
               {path, "duplicate tensor name 'a'"});
  expect_error([&] { save_safetensors(path, {{"__metadata__", Tensor::ones({2})}}); }, {"reserved"});
  expect_error([&] { save_safetensors(path, {{"u", Tensor()}}); }, {"'u' is undefined"});
  CHECK(io::read_file_text(path) == before);
  expect_error([&] { save_safetensors(dir / "no/such/dir/x.safetensors", {{"a", Tensor::ones({2})}}); },
               {"no/such/dir/x.safetensors", "cannot create"});
  {
    io::AtomicWriter w(dir / "partial.bin");
    w.write("half a file");
  }  // destroyed without commit()
  CHECK_FALSE(io::file_exists(dir / "partial.bin"));
  check_no_temp_files(dir.path());
}

TEST_CASE("safetensors: the golden files open with their keys, shapes, dtypes and metadata") {
  for (const char* name : {"selective_scan", "ss2d", "vss_block", "patch_embed_down", "cross_attn", "gwc_head",
                           "regression"}) {
    std::string path = golden_file(name);
    if (path.empty()) return;
    CAPTURE(name);
    SafeTensors st = SafeTensors::open(path);
    CHECK(st.keys().size() > 3);
    CHECK(st.metadata().count("module") == 1);
    CHECK(st.metadata().count("tolerance") == 1);
    // Metadata values written by Python are JSON strings themselves in several keys: they parse.
    CHECK(io::Json::parse(st.metadata().at("checks"), "checks").is_object());
    for (const auto& k : st.keys()) {
      if (k.rfind("param.", 0) == 0 && std::string(name) == "gwc_head") {
        CAPTURE(k);
        const TensorInfo& i = st.info(k);
        CHECK((i.dtype == DType::BF16 || i.dtype == DType::I64));
      }
    }
  }
  std::string ss = golden_file("selective_scan");
  if (ss.empty()) return;
  SafeTensors st = SafeTensors::open(ss);
  CHECK(st.info("in.u").shape == Shape{1, 8, 37});
  CHECK(st.info("in.u").dtype == DType::F32);
  CHECK(st.info("out.y").shape == Shape{1, 8, 37});
  CHECK(st.info("in.A").shape == Shape{8, 4});
  Tensor u = st.get("in.u");
  for (double v : u.to_vector()) CHECK(std::isfinite(v));

  std::string gh = golden_file("gwc_head");
  SafeTensors g = SafeTensors::open(gh);
  int bf16 = 0;
  for (const auto& k : g.keys()) {
    if (k.rfind("param.", 0) != 0 || g.info(k).dtype != DType::BF16) continue;
    ++bf16;
    Tensor p = g.get(k);
    Tensor f = p.to(DType::F32);
    // Widening bf16 -> f32 is exact: the f32 bits are the bf16 bits << 16.
    const uint16_t* pb = p.data<uint16_t>();
    const float* pf = f.data<float>();
    int64_t bad = 0;
    for (int64_t i = 0; i < p.numel(); ++i) bad += float_bits(pf[i]) != uint32_t(pb[i]) << 16;
    CHECK(bad == 0);
  }
  CHECK(bf16 > 10);
}

TEST_CASE("safetensors convert: prefix rules, casting floating tensors only, metadata, collisions") {
  TempDir dir;
  std::string in = dir / "in.safetensors";
  Tensor w = rand_t({3, 4}, DType::F32), bn = rand_t({4}, DType::F64);
  save_safetensors(in,
                   {{"module.module.encoder.conv.weight", w},
                    {"module.bn.running_var", bn},
                    {"module.bn.num_batches_tracked", Tensor::scalar(17, DType::I64)},
                    {"head.mask", Tensor::ones({2}, DType::Bool)},
                    {"module.", Tensor::ones({1})}},
                   {{"arch", "x"}});
  io::ConvertOptions o;
  o.strip_prefixes = {"module."};
  o.renames = {{"encoder.", "backbone."}, {"enc", "never"}, {"head.", ""}};
  o.cast_to = DType::BF16;
  o.metadata = {{"note", "converted"}, {"arch", "y"}};
  CHECK(io::convert_key("module.module.encoder.conv.weight", o) == "backbone.conv.weight");
  CHECK(io::convert_key("module.", o) == "module.");  // never stripped to nothing
  std::string out = dir / "out.safetensors";
  io::ConvertReport rep = io::convert_safetensors(SafeTensors::open(in), out, o);
  CHECK(rep.tensors == 5);
  CHECK(rep.renamed == 4);
  CHECK(rep.cast == 3);  // w, bn and the F32 "module." tensor; not the int64 counter nor the bool mask
  SafeTensors st = SafeTensors::open(out);
  CHECK(st.keys() == std::vector<std::string>{"backbone.conv.weight", "bn.running_var", "bn.num_batches_tracked",
                                              "mask", "module."});
  CHECK(st.info("backbone.conv.weight").dtype == DType::BF16);
  CHECK(st.get("backbone.conv.weight").to_vector() == w.to(DType::BF16).to_vector());
  CHECK(st.info("bn.running_var").dtype == DType::BF16);
  CHECK(st.info("bn.num_batches_tracked").dtype == DType::I64);
  CHECK(st.get("bn.num_batches_tracked").item() == 17);
  CHECK(st.info("mask").dtype == DType::Bool);
  CHECK(st.metadata().at("arch") == "y");
  CHECK(st.metadata().at("note") == "converted");

  // Overwriting the input in place works (the old file stays mapped until replaced).
  io::ConvertOptions keep;
  keep.renames = {{"mask", "valid_mask"}};
  SafeTensors self = SafeTensors::open(out);
  io::convert_safetensors(self, out, keep);
  CHECK(SafeTensors::open(out).has("valid_mask"));

  io::ConvertOptions clash;
  clash.renames = {{"backbone.", "x"}, {"bn.running_var", "xconv.weight"}};
  expect_error([&] { io::convert_safetensors(SafeTensors::open(out), dir / "c.safetensors", clash); },
               {"'backbone.conv.weight' and 'bn.running_var' both become 'xconv.weight'"});
  io::ConvertOptions bad;
  bad.cast_to = DType::I32;
  expect_error([&] { io::convert_safetensors(SafeTensors::open(out), dir / "c.safetensors", bad); },
               {"not a floating dtype"});
  CHECK_FALSE(io::file_exists(dir / "c.safetensors"));
  check_no_temp_files(dir.path());
}
