// io/safetensors.cpp — strict safetensors parser over a memory mapping, and the atomic writer. See io/safetensors.h.
#include "io/safetensors.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"
#include "io/json.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "io/safetensors assumes a little-endian host");

namespace stereort {

namespace {

constexpr uint64_t kMaxHeader = 100000000;  // the reference readers' limit (100 MB)

struct DTypeName {
  const char* name;
  DType dtype;
};
constexpr DTypeName kDTypes[] = {{"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16},
                                 {"I64", DType::I64}, {"I32", DType::I32}, {"U8", DType::U8},   {"BOOL", DType::Bool}};
// Valid safetensors dtypes that stereort has no tensor type for: named in the error instead of "unknown".
constexpr const char* kForeign[] = {"I16", "I8", "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3",
                                    "F6_E3M2", "F4", "C64"};

DType parse_dtype(const std::string& s, const std::string& file, const std::string& key) {
  for (const auto& d : kDTypes)
    if (s == d.name) return d.dtype;
  for (const char* f : kForeign)
    if (s == f)
      STEREORT_FAIL("{}: tensor '{}' has dtype {}, which stereort does not support (supported: F64, F32, F16, BF16, "
                    "I64, I32, U8, BOOL); convert it, e.g. `stereort convert --dtype f32`, or re-export in a supported "
                    "dtype", file, key, s);
  STEREORT_FAIL("{}: tensor '{}' has unknown dtype '{}' (supported: F64, F32, F16, BF16, I64, I32, U8, BOOL)", file,
                key, s);
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

}  // namespace

const char* safetensors_dtype_name(DType t) {
  for (const auto& d : kDTypes)
    if (d.dtype == t) return d.name;
  STEREORT_FAIL("safetensors: no name for dtype {}", dtype_name(t));
}

SafeTensors SafeTensors::parse(const uint8_t* bytes, size_t size, const std::string& name) {
  SafeTensors st;
  st.path_ = name;
  STEREORT_CHECK(size >= 8, "{}: file is {} bytes, too short for the 8-byte safetensors header length (truncated or "
                 "not a safetensors file)", name, size);
  uint64_t n = read_le64(bytes);
  STEREORT_CHECK(n <= kMaxHeader, "{}: header length {} bytes exceeds the 100 MB limit (corrupt length, or not a "
                 "safetensors file)", name, n);
  STEREORT_CHECK(n <= size - 8, "{}: header length {} bytes runs past the end of the {}-byte file (truncated file?)",
                 name, n, size);
  STEREORT_CHECK(n >= 2 && bytes[8] == '{', "{}: header does not start with '{{' (header length {}; not a safetensors "
                 "file?)", name, n);
  std::string_view header(reinterpret_cast<const char*>(bytes + 8), size_t(n));
  io::Json root = io::Json::parse(header, name + ": header JSON");
  STEREORT_CHECK(root.is_object(), "{}: header JSON is {}, expected an object", name, root.type_name());
  st.header_len_ = size_t(n);
  st.data_len_ = size - 8 - size_t(n);
  st.data_ = bytes + 8 + n;

  struct Span {
    uint64_t begin, end;
    const std::string* key;
  };
  std::vector<Span> spans;
  for (const auto& kv : root.as_object()) {
    const std::string& key = kv.first;
    const io::Json& v = kv.second;
    if (key == "__metadata__") {
      STEREORT_CHECK(v.is_object(), "{}: __metadata__ is {}, expected an object of strings", name, v.type_name());
      for (const auto& m : v.as_object()) {
        STEREORT_CHECK(m.second.is_string(), "{}: __metadata__ value '{}' is {}; safetensors metadata holds strings "
                       "only", name, m.first, m.second.type_name());
        st.metadata_[m.first] = m.second.as_string();
      }
      continue;
    }
    STEREORT_CHECK(!key.empty(), "{}: a tensor has an empty name", name);
    STEREORT_CHECK(v.is_object(), "{}: entry '{}' is {}, expected an object with dtype, shape and data_offsets", name,
                   key, v.type_name());
    for (const auto& f : v.as_object())
      STEREORT_CHECK(f.first == "dtype" || f.first == "shape" || f.first == "data_offsets",
                     "{}: tensor '{}' has unexpected field '{}' (allowed: dtype, shape, data_offsets)", name, key,
                     f.first);
    const io::Json* jd = v.find("dtype");
    const io::Json* js = v.find("shape");
    const io::Json* jo = v.find("data_offsets");
    STEREORT_CHECK(jd && js && jo, "{}: tensor '{}' lacks {}", name, key,
                   !jd ? "\"dtype\"" : !js ? "\"shape\"" : "\"data_offsets\"");
    STEREORT_CHECK(jd->is_string(), "{}: tensor '{}' dtype is {}, expected a string", name, key, jd->type_name());
    TensorInfo info;
    info.dtype = parse_dtype(jd->as_string(), name, key);
    STEREORT_CHECK(js->is_array(), "{}: tensor '{}' shape is {}, expected an array of sizes", name, key,
                   js->type_name());
    uint64_t numel = 1;
    bool overflow = false;
    for (const auto& d : js->as_array()) {
      STEREORT_CHECK(d.is_uint() && d.as_uint() <= uint64_t(INT64_MAX), "{}: tensor '{}' shape {} has a size that is "
                     "not a non-negative integer", name, key, js->dump());
      info.shape.push_back(int64_t(d.as_uint()));
      overflow |= __builtin_mul_overflow(numel, d.as_uint(), &numel);
    }
    uint64_t want = 0;
    overflow |= __builtin_mul_overflow(numel, uint64_t(dtype_size(info.dtype)), &want);
    STEREORT_CHECK(!overflow, "{}: tensor '{}' shape {} is too large (element count overflows)", name, key, js->dump());
    STEREORT_CHECK(jo->is_array() && jo->size() == 2 && jo->as_array()[0].is_uint() && jo->as_array()[1].is_uint(),
                   "{}: tensor '{}' data_offsets {} must be [begin, end] with non-negative integers", name, key,
                   jo->dump());
    uint64_t b = jo->as_array()[0].as_uint(), e = jo->as_array()[1].as_uint();
    STEREORT_CHECK(b <= e, "{}: tensor '{}' data_offsets [{}, {}] end before begin", name, key, b, e);
    STEREORT_CHECK(e - b == want, "{}: tensor '{}' {} {} needs {} bytes but data_offsets [{}, {}] span {} bytes", name,
                   key, jd->as_string(), js->dump(), want, b, e, e - b);
    STEREORT_CHECK(e <= st.data_len_, "{}: tensor '{}' data_offsets [{}, {}] run past the {}-byte data buffer "
                   "(truncated file?)", name, key, b, e, st.data_len_);
    info.offset = size_t(b);
    info.nbytes = size_t(e - b);
    st.keys_.push_back(key);
    auto ins = st.infos_.emplace(key, info);
    spans.push_back({b, e, &ins.first->first});
  }

  // The spans must tile [0, data_len) exactly.
  std::stable_sort(spans.begin(), spans.end(),
                   [](const Span& a, const Span& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t pos = 0;
  const std::string* prev = nullptr;
  for (const Span& s : spans) {
    STEREORT_CHECK(s.begin >= pos, "{}: tensors '{}' and '{}' overlap in the data buffer (bytes [{}, {}) start before "
                   "byte {})", name, prev ? *prev : std::string(), *s.key, s.begin, s.end, pos);
    STEREORT_CHECK(s.begin == pos, "{}: hole in the data buffer: bytes [{}, {}) belong to no tensor (before '{}')",
                   name, pos, s.begin, *s.key);
    pos = s.end;
    prev = s.key;
  }
  STEREORT_CHECK(pos == st.data_len_, "{}: {} trailing bytes after the last tensor (data buffer {} bytes, tensors "
                 "cover {})", name, st.data_len_ - pos, st.data_len_, pos);
  return st;
}

SafeTensors SafeTensors::open(const std::string& path) {
  io::MappedFile f = io::MappedFile::open(path);
  SafeTensors st = parse(f.data(), f.size(), path);
  st.file_ = std::move(f);
  return st;
}

std::vector<std::string> SafeTensors::keys() const { return keys_; }
bool SafeTensors::has(const std::string& key) const { return infos_.count(key) != 0; }
const TensorInfo& SafeTensors::info(const std::string& key) const {
  auto it = infos_.find(key);
  STEREORT_CHECK(it != infos_.end(), "{}: no tensor named '{}' ({} tensors in the file; `stereort convert {}` lists "
                 "them)", path_, key, keys_.size(), path_);
  return it->second;
}
Tensor SafeTensors::get(const std::string& key) const {
  const TensorInfo& i = info(key);
  Tensor t = Tensor::empty(i.shape, i.dtype);
  if (i.nbytes) std::memcpy(t.data_ptr(), data_ + i.offset, i.nbytes);
  return t;
}
const std::map<std::string, std::string>& SafeTensors::metadata() const { return metadata_; }
const std::string& SafeTensors::path() const { return path_; }

std::string safetensors_header(const std::vector<std::pair<std::string, TensorInfo>>& infos,
                               const std::map<std::string, std::string>& metadata) {
  io::Json root = io::Json::object();
  if (!metadata.empty()) {
    io::Json m = io::Json::object();
    for (const auto& kv : metadata) m.set(kv.first, kv.second);
    root.set("__metadata__", std::move(m));
  }
  for (const auto& kv : infos) {
    io::Json e = io::Json::object();
    e.set("dtype", safetensors_dtype_name(kv.second.dtype));
    io::Json shape = io::Json::array();
    for (int64_t d : kv.second.shape) shape.push(d);
    e.set("shape", std::move(shape));
    io::Json off = io::Json::array();
    off.push(uint64_t(kv.second.offset));
    off.push(uint64_t(kv.second.offset + kv.second.nbytes));
    e.set("data_offsets", std::move(off));
    root.set(kv.first, std::move(e));
  }
  std::string json = root.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int k = 0; k < 8; ++k) out[size_t(k)] = char((n >> (8 * k)) & 0xff);
  return out + json;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, TensorInfo>> infos;
  std::unordered_map<std::string, int> seen;
  size_t offset = 0;
  for (const auto& kv : tensors) {
    STEREORT_CHECK(!kv.first.empty(), "save_safetensors({}): empty tensor name", path);
    STEREORT_CHECK(kv.first != "__metadata__", "save_safetensors({}): '__metadata__' is reserved, not a tensor name",
                   path);
    STEREORT_CHECK(seen.emplace(kv.first, 1).second, "save_safetensors({}): duplicate tensor name '{}'", path,
                   kv.first);
    STEREORT_CHECK(kv.second.defined(), "save_safetensors({}): tensor '{}' is undefined", path, kv.first);
    TensorInfo info{kv.second.dtype(), kv.second.shape(), offset, kv.second.nbytes()};
    offset += info.nbytes;
    infos.emplace_back(kv.first, info);
  }
  std::string header = safetensors_header(infos, metadata);
  io::AtomicWriter w(path);
  w.write(header);
  for (const auto& kv : tensors) {
    Tensor c = kv.second.detach().to(Device::cpu()).contiguous();
    w.write(c.data_ptr(), c.nbytes());
  }
  w.commit();
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) {
  SafeTensors st = SafeTensors::open(path);
  std::map<std::string, Tensor> out;
  for (const auto& k : st.keys()) out.emplace(k, st.get(k));
  return out;
}

}  // namespace stereort
