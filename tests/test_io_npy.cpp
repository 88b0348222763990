// tests/test_io_npy.cpp — NPY v1/v2/v3 headers, dtypes, byte orders, Fortran order; NPZ stored/deflated/ZIP64 members;
// byte-exact NPY header; corrupt archives.
#include <cstring>

#include "core/error.h"
#include "io/fileio.h"
#include "io/npy.h"
#include "io_test_helpers.h"
#include "test_util.h"

using namespace stereort;
using namespace stereort::test;

namespace {

// An NPY file image with a given version, header dict and raw data (header padded to 64 like numpy).
std::string npy(int major, const std::string& dict, const std::string& data) {
  size_t pre = major == 1 ? 10 : 12;
  std::string h = dict;
  size_t total = pre + h.size() + 1;
  h.append((64 - total % 64) % 64, ' ');
  h += '\n';
  std::string out = std::string("\x93NUMPY", 6) + char(major) + '\0';
  out += char(h.size() & 0xff);
  out += char((h.size() >> 8) & 0xff);
  if (major > 1) out += std::string(2, '\0');
  return out + h + data;
}
template <typename T>
std::string raw(std::initializer_list<T> v, bool big_endian = false) {
  std::string s;
  for (T x : v) {
    std::string b(reinterpret_cast<const char*>(&x), sizeof(T));
    if (big_endian) b = std::string(b.rbegin(), b.rend());
    s += b;
  }
  return s;
}
Tensor parse(const std::string& bytes) {
  return io::parse_npy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), "mem.npy");
}

}  // namespace

TEST_CASE("npy: writer header is byte-exact and round-trips every dtype") {
  TempDir dir;
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}, DType::F32);
  io::write_npy(dir / "a.npy", a);
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string expected = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + dict + std::string(117 - dict.size(), ' ') +
                         "\n" + raw<float>({1, 2, 3, 4, 5, 6});
  CHECK(io::read_file_text(dir / "a.npy") == expected);  // 10 + 118 = 128 bytes of header
  for (DType d : {DType::F64, DType::F32, DType::F16, DType::I64, DType::I32, DType::U8, DType::Bool}) {
    CAPTURE(dtype_name(d));
    Tensor t = rand_t({4, 3, 5}, DType::F64, -100, 100).to(d);
    io::write_npy(dir / "t.npy", t);
    Tensor b = io::read_npy(dir / "t.npy");
    CHECK(b.dtype() == d);
    CHECK(b.shape() == t.shape());
    CHECK(b.to_vector() == t.to_vector());
  }
  Tensor s = Tensor::scalar(2.5, DType::F64);
  io::write_npy(dir / "s.npy", s);
  CHECK(io::read_npy(dir / "s.npy").shape() == Shape{});
  Tensor one = Tensor::from_vector({7}, {1}, DType::I64);
  io::write_npy(dir / "one.npy", one);
  CHECK(io::read_file_text(dir / "one.npy").find("'shape': (1,), }") != std::string::npos);
  CHECK(io::read_npy(dir / "one.npy").shape() == Shape{1});
  io::write_npy(dir / "empty.npy", Tensor::empty({0, 4}));
  CHECK(io::read_npy(dir / "empty.npy").shape() == Shape{0, 4});
  expect_error([&] { io::write_npy(dir / "bf.npy", Tensor::ones({2}, DType::BF16)); }, {"bfloat16"});
}

TEST_CASE("npy: versions, byte orders, narrow integer widening and Fortran order") {
  CHECK(parse(npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", raw<double>({1.5, -2})))
            .to_vector() == std::vector<double>{1.5, -2});
  CHECK(parse(npy(2, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,)}", raw<int64_t>({-7, 1LL << 40})))
            .to_vector() == std::vector<double>{-7, double(1LL << 40)});
  CHECK(parse(npy(3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (1,)}", raw<float>({3})))
            .item() == 3);
  Tensor be = parse(npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", raw<float>({1, -2, 0.5}, true)));
  CHECK(be.to_vector() == std::vector<double>{1, -2, 0.5});
  Tensor be8 = parse(npy(1, "{'descr': '>i8', 'fortran_order': False, 'shape': (1,), }", raw<int64_t>({-300}, true)));
  CHECK(be8.item() == -300);
  Tensor u2 = parse(npy(1, "{'descr': '<u2', 'fortran_order': False, 'shape': (2,), }", raw<uint16_t>({65535, 3})));
  CHECK(u2.dtype() == DType::I32);
  CHECK(u2.to_vector() == std::vector<double>{65535, 3});
  Tensor i2 = parse(npy(1, "{'descr': '>i2', 'fortran_order': False, 'shape': (2,), }", raw<int16_t>({-2, 300}, true)));
  CHECK(i2.to_vector() == std::vector<double>{-2, 300});
  Tensor i1 = parse(npy(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (2,), }", raw<int8_t>({-128, 127})));
  CHECK(i1.to_vector() == std::vector<double>{-128, 127});
  Tensor u4 = parse(npy(1, "{'descr': '<u4', 'fortran_order': False, 'shape': (1,), }", raw<uint32_t>({4000000000u})));
  CHECK(u4.dtype() == DType::I64);
  CHECK(u4.item() == 4000000000.0);
  Tensor b1 = parse(npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", std::string("\x01\x00\x05", 3)));
  CHECK(b1.to_vector() == std::vector<double>{1, 0, 1});
  // Fortran order (2,3): memory holds columns: a[0,0] a[1,0] a[0,1] a[1,1] a[0,2] a[1,2].
  Tensor fo = parse(npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", raw<float>({0, 3, 1, 4, 2, 5})));
  REQUIRE(fo.shape() == Shape{2, 3});
  CHECK(fo.is_contiguous());
  CHECK(fo.to_vector() == std::vector<double>{0, 1, 2, 3, 4, 5});
  // Keys in any order, extra spaces; Python-2 long suffix.
  Tensor any = parse(npy(1, "{ 'shape' : (2L, 1L) , 'fortran_order':False,'descr':'<i4' }", raw<int32_t>({9, 8})));
  CHECK(any.shape() == Shape{2, 1});
  // Trailing data after the array is ignored (as numpy does).
  CHECK(parse(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", raw<float>({1, 2}))).item() == 1);
}

TEST_CASE("npy: malformed files are rejected with a message naming the file and the problem") {
  std::string ok_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }";
  struct Case {
    const char* what;
    std::string bytes;
    const char* needle;
  };
  std::vector<Case> cases = {
      {"magic", "NUMPY\x01\x00", "bad magic"},
      {"version", std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '), "version 4.0"},
      {"hlen", std::string("\x93NUMPY\x01\x00\xff\x00", 10) + "{}", "runs past the end"},
      {"truncated data", npy(1, ok_dict, raw<float>({1, 2, 3})), "needs 16 bytes"},
      {"structured", npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "abcd"),
       "structured dtypes"},
      {"object", npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "abcdefgh"), "'|O'"},
      {"complex", npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "abcdefgh"), "'<c8'"},
      {"u8", npy(1, "{'descr': '<u8', 'fortran_order': False, 'shape': (1,), }", "abcdefgh"), "'<u8'"},
      {"string", npy(1, "{'descr': '<U10', 'fortran_order': False, 'shape': (1,), }", "abcdefgh"), "'<U10'"},
      {"missing key", npy(1, "{'descr': '<f4', 'shape': (1,), }", "abcd"), "lacks one of"},
      {"unknown key", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "abcd"),
       "unexpected key 'x'"},
      {"bad bool", npy(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", "abcd"), "True or False"},
      {"bad shape", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "abcd"), "non-negative"},
      {"huge shape",
       npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", ""),
       "too large"},
      {"unterminated", npy(1, "{'descr': '<f4", ""), "unterminated"},
  };
  for (const auto& c : cases) {
    std::string what = c.what;
    CAPTURE(what);
    expect_error([&] { parse(c.bytes); }, {"mem.npy", c.needle});
  }
  expect_error([] { io::read_npy("/nonexistent/x.npy"); }, {"/nonexistent/x.npy", "cannot open"});
}

TEST_CASE("npz: stored and deflated archives round-trip in archive order") {
  TempDir dir;
  Tensor a = rand_t({50, 31}, DType::F32);
  Tensor b = Tensor::arange(10, DType::I64);
  Tensor c = Tensor::zeros({300, 200}, DType::F64);  // compresses well
  io::NamedArrays arrays = {{"left", a}, {"b", b}, {"zeros", c}};
  for (bool compress : {false, true}) {
    CAPTURE(compress);
    io::write_npz(dir / "x.npz", arrays, compress);
    io::NamedArrays back = io::read_npz(dir / "x.npz");
    REQUIRE(back.size() == 3);
    for (size_t k = 0; k < 3; ++k) {
      CHECK(back[k].first == arrays[k].first);
      CHECK(back[k].second.shape() == arrays[k].second.shape());
      CHECK(back[k].second.to_vector() == arrays[k].second.to_vector());
    }
  }
  CHECK(io::read_file_bytes(dir / "x.npz").size() < c.nbytes() / 10);  // really deflated
  check_no_temp_files(dir.path());
}

TEST_CASE("npz: ZIP64 extra fields (as numpy writes them) are honoured") {
  // Hand-built archive: one stored member whose sizes in both headers are 0xFFFFFFFF with the real values in a ZIP64
  // extra field — numpy's savez uses force_zip64=True.
  std::string member = npy(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", raw<int32_t>({5, -6}));
  uint32_t crc = io::crc32(reinterpret_cast<const uint8_t*>(member.data()), member.size());
  auto le16 = [](uint32_t v) { return std::string{char(v & 0xff), char((v >> 8) & 0xff)}; };
  auto le32 = [&](uint32_t v) { return le16(v & 0xffff) + le16(v >> 16); };
  auto le64 = [&](uint64_t v) { return le32(uint32_t(v)) + le32(uint32_t(v >> 32)); };
  std::string name = "arr_0.npy";
  std::string extra_local = le16(1) + le16(16) + le64(member.size()) + le64(member.size());
  std::string local = le32(0x04034b50) + le16(45) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc) +
                      le32(0xFFFFFFFF) + le32(0xFFFFFFFF) + le16(uint32_t(name.size())) +
                      le16(uint32_t(extra_local.size())) + name + extra_local;
  std::string extra_central = le16(1) + le16(16) + le64(member.size()) + le64(member.size());
  std::string central = le32(0x02014b50) + le16(45) + le16(45) + le16(0) + le16(0) + le16(0) + le16(0x21) + le32(crc) +
                        le32(0xFFFFFFFF) + le32(0xFFFFFFFF) + le16(uint32_t(name.size())) +
                        le16(uint32_t(extra_central.size())) + le16(0) + le16(0) + le16(0) + le32(0) + le32(0) + name +
                        extra_central;
  std::string body = local + member;
  std::string eocd = le32(0x06054b50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(uint32_t(central.size())) +
                     le32(uint32_t(body.size())) + le16(0);
  std::string zip = body + central + eocd;
  io::NamedArrays got = io::parse_npz(reinterpret_cast<const uint8_t*>(zip.data()), zip.size(), "z64.npz");
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == "arr_0");
  CHECK(got[0].second.to_vector() == std::vector<double>{5, -6});
}

TEST_CASE("npz: corrupt archives give clear errors") {
  TempDir dir;
  io::write_npz(dir / "ok.npz", {{"a", Tensor::arange(100, DType::F32)}}, true);
  std::string ok = io::read_file_text(dir / "ok.npz");
  auto parse_z = [](const std::string& z) {
    return io::parse_npz(reinterpret_cast<const uint8_t*>(z.data()), z.size(), "bad.npz");
  };
  expect_error([&] { parse_z("short"); }, {"bad.npz", "too short"});
  expect_error([&] { parse_z(std::string(100, 'x')); }, {"bad.npz", "no end-of-central-directory"});
  // Flip a byte of the deflated payload (after the 30-byte local header and the 5-byte name): CRC or inflate fails.
  std::string flip = ok;
  flip[40] = char(flip[40] ^ 0xff);
  expect_error([&] { parse_z(flip); }, {"bad.npz:a.npy"});
  // Every truncation fails cleanly.
  for (size_t n = 0; n < ok.size(); n += 7) {
    CAPTURE(n);
    bool threw = false;
    try {
      parse_z(ok.substr(0, n));
    } catch (const Error& e) {
      threw = true;
      CHECK(e.message().find("bad.npz") != std::string::npos);
    }
    CHECK(threw);
  }
  // Unsupported method (bzip2 = 12) in both headers.
  std::string m12 = ok;
  m12[8] = 12;
  size_t cd = m12.find(std::string("PK\x01\x02", 4));
  REQUIRE(cd != std::string::npos);
  m12[cd + 10] = 12;
  expect_error([&] { parse_z(m12); }, {"compression method 12"});
}
