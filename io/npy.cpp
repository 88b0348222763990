// io/npy.cpp — NPY header literal parser and data reader; NPY writer. ZIP/NPZ lives in io/npz.cpp. See io/npy.h.
#include "io/npy.h"

#include <cstring>

#include "core/check.h"
#include "io/fileio.h"

namespace stereort {
namespace io {

namespace {

// The header dict: {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
struct NpyHeader {
  std::string descr;
  bool fortran = false;
  Shape shape;
};

class DictParser {
 public:
  DictParser(const std::string& s, const std::string& name) : s_(s), name_(name) {}

  NpyHeader parse() {
    NpyHeader h;
    bool got_descr = false, got_order = false, got_shape = false;
    ws();
    expect('{');
    for (;;) {
      ws();
      if (peek() == '}') break;
      std::string key = str();
      ws();
      expect(':');
      ws();
      if (key == "descr") {
        if (peek() == '[') fail("structured dtypes (descr is a list) are not supported");
        h.descr = str();
        got_descr = true;
      } else if (key == "fortran_order") {
        h.fortran = boolean();
        got_order = true;
      } else if (key == "shape") {
        h.shape = tuple();
        got_shape = true;
      } else {
        fail("unexpected key '" + key + "'");
      }
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      if (peek() != '}') fail("expected ',' or '}'");
    }
    expect('}');
    if (!got_descr || !got_order || !got_shape) fail("header lacks one of 'descr', 'fortran_order', 'shape'");
    return h;
  }

 private:
  const std::string& s_;
  const std::string& name_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    STEREORT_FAIL("{}: NPY header: {} at character {} of \"{}\"", name_, what, i_, s_.substr(0, 200));
  }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  std::string str() {
    char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++i_;
    size_t start = i_;
    while (i_ < s_.size() && s_[i_] != q) {
      if (s_[i_] == '\\') fail("escapes are not supported in NPY header strings");
      ++i_;
    }
    if (i_ >= s_.size()) fail("unterminated string");
    return s_.substr(start, i_++ - start);
  }
  bool boolean() {
    if (s_.compare(i_, 4, "True") == 0) {
      i_ += 4;
      return true;
    }
    if (s_.compare(i_, 5, "False") == 0) {
      i_ += 5;
      return false;
    }
    fail("expected True or False");
  }
  Shape tuple() {
    expect('(');
    Shape shape;
    for (;;) {
      ws();
      if (peek() == ')') break;
      if (!(peek() >= '0' && peek() <= '9')) fail("expected a non-negative integer in the shape");
      int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (v > (INT64_MAX - 9) / 10) fail("shape entry too large");
        v = v * 10 + (peek() - '0');
        ++i_;
      }
      if (peek() == 'L') ++i_;  // Python 2 longs
      shape.push_back(v);
      if (shape.size() > 32) fail("more than 32 dimensions");
      ws();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      ws();
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    expect(')');
    return shape;
  }
};

struct Descr {
  DType dtype;     // tensor dtype
  int itemsize;    // bytes per element in the file
  char kind;       // 'f', 'i', 'u', 'b'
  bool swap;       // big-endian data
};

Descr parse_descr(const std::string& d, const std::string& name) {
  STEREORT_CHECK(d.size() >= 3, "{}: NPY descr '{}' is not a simple dtype like '<f4'", name, d);
  char order = d[0], kind = d[1];
  std::string sz = d.substr(2);
  STEREORT_CHECK(order == '<' || order == '>' || order == '=' || order == '|',
                 "{}: NPY descr '{}' has an unknown byte order '{}'", name, d, order);
  STEREORT_CHECK(sz.size() == 1 && sz[0] >= '1' && sz[0] <= '8', "{}: NPY descr '{}' is not supported (stereort reads "
                 "f8 f4 f2 i8 i4 i2 i1 u4 u2 u1 b1)", name, d);
  int size = sz[0] - '0';
  Descr r{DType::F32, size, kind, order == '>' && size > 1};
  if (kind == 'f' && size == 8) r.dtype = DType::F64;
  else if (kind == 'f' && size == 4) r.dtype = DType::F32;
  else if (kind == 'f' && size == 2) r.dtype = DType::F16;
  else if (kind == 'i' && size == 8) r.dtype = DType::I64;
  else if (kind == 'i' && (size == 4 || size == 2 || size == 1)) r.dtype = DType::I32;
  else if (kind == 'u' && size == 4) r.dtype = DType::I64;
  else if (kind == 'u' && (size == 2)) r.dtype = DType::I32;
  else if (kind == 'u' && size == 1) r.dtype = DType::U8;
  else if (kind == 'b' && size == 1) r.dtype = DType::Bool;
  else
    STEREORT_FAIL("{}: NPY dtype '{}' is not supported (stereort reads f8 f4 f2 i8 i4 i2 i1 u4 u2 u1 b1)", name, d);
  return r;
}

// Copy n elements of the file's type into the tensor's type (same or a lossless widening).
void convert(const uint8_t* src, void* dst, int64_t n, const Descr& d) {
  for (int64_t i = 0; i < n; ++i) {
    uint8_t b[8];
    std::memcpy(b, src + i * d.itemsize, size_t(d.itemsize));
    if (d.swap)
      for (int k = 0; k < d.itemsize / 2; ++k) std::swap(b[k], b[d.itemsize - 1 - k]);
    if (d.dtype == DType::Bool) {
      static_cast<uint8_t*>(dst)[i] = b[0] != 0;
    } else if (int(dtype_size(d.dtype)) == d.itemsize) {
      std::memcpy(static_cast<uint8_t*>(dst) + i * d.itemsize, b, size_t(d.itemsize));
    } else if (d.dtype == DType::I32) {  // i2, i1, u2
      int32_t v = d.kind == 'u' ? int32_t(uint16_t(b[0] | (b[1] << 8)))
                  : d.itemsize == 2 ? int32_t(int16_t(uint16_t(b[0] | (b[1] << 8))))
                                    : int32_t(int8_t(b[0]));
      static_cast<int32_t*>(dst)[i] = v;
    } else {  // u4 -> I64
      uint32_t v;
      std::memcpy(&v, b, 4);
      static_cast<int64_t*>(dst)[i] = int64_t(v);
    }
  }
}

}  // namespace

Tensor parse_npy(const uint8_t* bytes, size_t n, const std::string& name) {
  static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
  STEREORT_CHECK(n >= 10 && std::memcmp(bytes, magic, 6) == 0, "{}: not an NPY file (bad magic; {} bytes)", name, n);
  int major = bytes[6];
  STEREORT_CHECK(major >= 1 && major <= 3, "{}: NPY format version {}.{} is not supported (1.0, 2.0, 3.0 are)", name,
                 major, bytes[7]);
  size_t hlen, start;
  if (major == 1) {
    hlen = size_t(bytes[8]) | size_t(bytes[9]) << 8;
    start = 10;
  } else {
    STEREORT_CHECK(n >= 12, "{}: truncated NPY header", name);
    hlen = size_t(bytes[8]) | size_t(bytes[9]) << 8 | size_t(bytes[10]) << 16 | size_t(bytes[11]) << 24;
    start = 12;
  }
  STEREORT_CHECK(hlen <= n - start, "{}: NPY header length {} runs past the end of the {}-byte file (truncated?)", name,
                 hlen, n);
  std::string header(reinterpret_cast<const char*>(bytes + start), hlen);
  NpyHeader h = DictParser(header, name).parse();
  Descr d = parse_descr(h.descr, name);
  uint64_t numel = 1;
  for (int64_t s : h.shape)
    STEREORT_CHECK(!__builtin_mul_overflow(numel, uint64_t(s), &numel), "{}: NPY shape too large", name);
  uint64_t need = 0;
  STEREORT_CHECK(!__builtin_mul_overflow(numel, uint64_t(d.itemsize), &need), "{}: NPY shape too large", name);
  size_t avail = n - start - hlen;
  STEREORT_CHECK(need <= avail, "{}: NPY {} array {} needs {} bytes of data but {} follow the header (truncated file?)",
                 name, h.descr, shape_str(h.shape), need, avail);
  // Fortran order: the data is the C-order array of the reversed shape; transpose it back.
  Shape file_shape = h.shape;
  if (h.fortran) file_shape.assign(h.shape.rbegin(), h.shape.rend());
  Tensor t = Tensor::empty(file_shape, d.dtype);
  convert(bytes + start + hlen, t.data_ptr(), int64_t(numel), d);
  if (h.fortran && h.shape.size() > 1) {
    std::vector<int> perm;
    for (int k = int(h.shape.size()) - 1; k >= 0; --k) perm.push_back(k);
    t = t.permute(perm).contiguous();
  }
  return t;
}

Tensor read_npy(const std::string& path) {
  MappedFile f = MappedFile::open(path);
  return parse_npy(f.data(), f.size(), path);
}

std::vector<uint8_t> encode_npy(const Tensor& t) {
  STEREORT_CHECK(t.defined(), "write_npy: undefined tensor");
  const char* descr = nullptr;
  switch (t.dtype()) {
    case DType::F64: descr = "<f8"; break;
    case DType::F32: descr = "<f4"; break;
    case DType::F16: descr = "<f2"; break;
    case DType::I64: descr = "<i8"; break;
    case DType::I32: descr = "<i4"; break;
    case DType::U8: descr = "|u1"; break;
    case DType::Bool: descr = "|b1"; break;
    case DType::BF16: STEREORT_FAIL("write_npy: NumPy has no bfloat16; convert {} to f32 first", t.desc());
  }
  std::string shape = "(";
  for (size_t k = 0; k < t.shape().size(); ++k) shape += (k ? ", " : "") + std::to_string(t.shape()[k]);
  shape += t.dim() == 1 ? ",)" : ")";  // Python's one-tuple
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, shape);
  // Pad so that magic(6) + version(2) + length(2) + dict + '\n' is a multiple of 64, as numpy does.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  STEREORT_CHECK(dict.size() <= 65535, "write_npy: header too long for NPY v1.0 ({} dims)", t.dim());
  std::string head = std::string("\x93NUMPY\x01\x00", 8) + char(dict.size() & 0xff) + char(dict.size() >> 8) + dict;
  Tensor c = t.detach().to(Device::cpu()).contiguous();
  std::vector<uint8_t> out(head.size() + c.nbytes());
  std::memcpy(out.data(), head.data(), head.size());
  if (c.nbytes()) std::memcpy(out.data() + head.size(), c.data_ptr(), c.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_file_atomic(path, encode_npy(t)); }

}  // namespace io
}  // namespace stereort
