// io/npz.cpp — the ZIP container of .npz files: central-directory reader (ZIP64 aware, stored/deflated members,
// CRC-checked) and a small writer. Every offset and length read from the file is bounds-checked before use.
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/check.h"
#include "io/fileio.h"
#include "io/npy.h"
#include "stb_image.h"

// Defined in stb_image_write.h's implementation (io/stb_impl.c) but not declared in its public part.
extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len, int quality);

namespace stereort {
namespace io {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEndSig = 0x06054b50;
constexpr uint32_t kEnd64Sig = 0x06064b50, kLocator64Sig = 0x07064b50;

struct Reader {
  const uint8_t* p;
  size_t n;
  const std::string& name;

  void need(uint64_t off, uint64_t len, const char* what) const {
    STEREORT_CHECK(off <= n && len <= n - off, "{}: ZIP {} at byte {} (+{}) lies outside the {}-byte file (truncated or "
                   "corrupt archive)", name, what, off, len, n);
  }
  uint16_t u16(uint64_t off) const { return uint16_t(p[off] | p[off + 1] << 8); }
  uint32_t u32(uint64_t off) const { return uint32_t(u16(off)) | uint32_t(u16(off + 2)) << 16; }
  uint64_t u64(uint64_t off) const { return uint64_t(u32(off)) | uint64_t(u32(off + 4)) << 32; }
};

struct Member {
  std::string filename;
  uint16_t method = 0, flags = 0;
  uint32_t crc = 0;
  uint64_t csize = 0, usize = 0, local = 0;
};

}  // namespace

NamedArrays parse_npz(const uint8_t* bytes, size_t n, const std::string& name) {
  Reader r{bytes, n, name};
  STEREORT_CHECK(n >= 22, "{}: {} bytes is too short for a ZIP/NPZ archive", name, n);
  // End of central directory: the last signature within the final 64 KiB + 22 bytes.
  uint64_t eocd = UINT64_MAX;
  for (uint64_t off = n - 22;; --off) {
    if (r.u32(off) == kEndSig) {
      eocd = off;
      break;
    }
    if (off == 0 || n - off > 65535 + 22) break;
  }
  STEREORT_CHECK(eocd != UINT64_MAX, "{}: not a ZIP/NPZ archive (no end-of-central-directory record)", name);
  uint64_t count = r.u16(eocd + 10), cd_size = r.u32(eocd + 12), cd_off = r.u32(eocd + 16);
  if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
    STEREORT_CHECK(eocd >= 20 && r.u32(eocd - 20) == kLocator64Sig, "{}: ZIP64 archive without a ZIP64 locator", name);
    uint64_t e64 = r.u64(eocd - 20 + 8);
    r.need(e64, 56, "ZIP64 end record");
    STEREORT_CHECK(r.u32(e64) == kEnd64Sig, "{}: bad ZIP64 end-of-central-directory signature", name);
    count = r.u64(e64 + 32);
    cd_size = r.u64(e64 + 40);
    cd_off = r.u64(e64 + 48);
  }
  r.need(cd_off, cd_size, "central directory");
  STEREORT_CHECK(count <= cd_size / 46, "{}: ZIP central directory claims {} entries in {} bytes", name, count, cd_size);

  std::vector<Member> members;
  uint64_t pos = cd_off;
  for (uint64_t k = 0; k < count; ++k) {
    r.need(pos, 46, "central directory entry");
    STEREORT_CHECK(r.u32(pos) == kCentralSig, "{}: bad ZIP central directory entry {} signature", name, k);
    Member m;
    m.flags = r.u16(pos + 8);
    m.method = r.u16(pos + 10);
    m.crc = r.u32(pos + 16);
    m.csize = r.u32(pos + 20);
    m.usize = r.u32(pos + 24);
    uint64_t nlen = r.u16(pos + 28), xlen = r.u16(pos + 30), clen = r.u16(pos + 32);
    m.local = r.u32(pos + 42);
    r.need(pos + 46, nlen + xlen + clen, "central directory names");
    m.filename.assign(reinterpret_cast<const char*>(bytes + pos + 46), nlen);
    // ZIP64 extra field: the 64-bit values replace, in order, those of the 32-bit fields that are 0xFFFFFFFF.
    uint64_t x = pos + 46 + nlen, xend = x + xlen;
    while (x + 4 <= xend) {
      uint16_t id = r.u16(x), len = r.u16(x + 2);
      STEREORT_CHECK(x + 4 + len <= xend, "{}: ZIP extra field of '{}' overruns its entry", name, m.filename);
      if (id == 0x0001) {
        uint64_t q = x + 4, qend = q + len;
        auto take = [&](uint64_t& field) {
          if (field != 0xFFFFFFFF) return;
          STEREORT_CHECK(q + 8 <= qend, "{}: ZIP64 extra field of '{}' is too short", name, m.filename);
          field = r.u64(q);
          q += 8;
        };
        take(m.usize);
        take(m.csize);
        take(m.local);
      }
      x += 4 + len;
    }
    members.push_back(m);
    pos += 46 + nlen + xlen + clen;
  }

  NamedArrays out;
  for (const Member& m : members) {
    const std::string suffix = ".npy";
    if (m.filename.size() < suffix.size() ||
        m.filename.compare(m.filename.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string where = name + ":" + m.filename;
    STEREORT_CHECK(!(m.flags & 1), "{}: member is encrypted", where);
    STEREORT_CHECK(m.method == 0 || m.method == 8, "{}: ZIP compression method {} is not supported (stored or deflate)",
                   where, m.method);
    r.need(m.local, 30, "local header");
    STEREORT_CHECK(r.u32(m.local) == kLocalSig, "{}: bad ZIP local header signature", where);
    uint64_t data = m.local + 30 + r.u16(m.local + 26) + r.u16(m.local + 28);
    r.need(data, m.csize, "member data");
    const uint8_t* src = bytes + data;
    std::vector<uint8_t> buf;
    if (m.method == 0) {
      STEREORT_CHECK(m.csize == m.usize, "{}: stored member sizes differ ({} vs {})", where, m.csize, m.usize);
      buf.assign(src, src + m.csize);
    } else {
      // Deflate expands at most ~1032:1; refuse absurd claimed sizes before allocating.
      STEREORT_CHECK(m.usize <= m.csize * 1032 + 1024 && m.usize < uint64_t(INT32_MAX) && m.csize < uint64_t(INT32_MAX),
                     "{}: implausible sizes (compressed {}, uncompressed {})", where, m.csize, m.usize);
      // stb_image 2.27 refuses to decode the last codes when fewer than 16 bits remain before the end of its input
      // (raw deflate has no trailer), so decode from a copy with 8 zero bytes of padding; bytes after the final
      // block are never interpreted.
      std::vector<uint8_t> padded(size_t(m.csize) + 8, 0);
      std::memcpy(padded.data(), src, size_t(m.csize));
      buf.resize(size_t(m.usize) + 1);  // one spare byte: a stream that inflates to more than usize is detected
      int got = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(buf.data()), int(buf.size()),
                                                 reinterpret_cast<const char*>(padded.data()), int(padded.size()));
      STEREORT_CHECK(got >= 0 && uint64_t(got) == m.usize, "{}: deflate stream is corrupt (decoded {} bytes, expected {})",
                     where, got, m.usize);
      buf.resize(size_t(m.usize));
    }
    STEREORT_CHECK(crc32(buf.data(), buf.size()) == m.crc, "{}: CRC-32 mismatch (corrupt archive)", where);
    out.emplace_back(m.filename.substr(0, m.filename.size() - suffix.size()), parse_npy(buf.data(), buf.size(), where));
  }
  return out;
}

NamedArrays read_npz(const std::string& path) {
  MappedFile f = MappedFile::open(path);
  return parse_npz(f.data(), f.size(), path);
}

namespace {
void put16(std::vector<uint8_t>& o, uint32_t v) {
  o.push_back(uint8_t(v));
  o.push_back(uint8_t(v >> 8));
}
void put32(std::vector<uint8_t>& o, uint32_t v) {
  put16(o, v & 0xffff);
  put16(o, v >> 16);
}
}  // namespace

std::vector<uint8_t> encode_npz(const NamedArrays& arrays, bool compress) {
  std::vector<uint8_t> out, central;
  for (const auto& kv : arrays) {
    std::string fname = kv.first + ".npy";
    std::vector<uint8_t> npy = encode_npy(kv.second);
    STEREORT_CHECK(npy.size() < 0xFFFFFFFFull && out.size() < 0xFFFFFFFFull,
                   "write_npz: member '{}' too large for a non-ZIP64 archive", fname);
    uint32_t crc = crc32(npy.data(), npy.size());
    std::vector<uint8_t> payload;
    uint16_t method = 0;
    if (compress) {
      int zlen = 0;
      std::unique_ptr<unsigned char, void (*)(void*)> z(stbi_zlib_compress(npy.data(), int(npy.size()), &zlen, 8),
                                                        std::free);
      STEREORT_CHECK(z && zlen >= 6, "write_npz: deflate failed for '{}'", fname);
      payload.assign(z.get() + 2, z.get() + zlen - 4);  // raw deflate: drop the zlib header and Adler-32
      method = 8;
    } else {
      payload = npy;
    }
    uint32_t local = uint32_t(out.size());
    auto header = [&](std::vector<uint8_t>& o, bool is_central) {
      put32(o, is_central ? kCentralSig : kLocalSig);
      if (is_central) put16(o, 20);  // version made by
      put16(o, 20);                  // version needed
      put16(o, 0);                   // flags
      put16(o, method);
      put16(o, 0);                   // time
      put16(o, 0x21);                // date: 1980-01-01
      put32(o, crc);
      put32(o, uint32_t(payload.size()));
      put32(o, uint32_t(npy.size()));
      put16(o, uint32_t(fname.size()));
      put16(o, 0);  // extra
      if (is_central) {
        put16(o, 0);  // comment
        put16(o, 0);  // disk
        put16(o, 0);  // internal attributes
        put32(o, 0);  // external attributes
        put32(o, local);
      }
      o.insert(o.end(), fname.begin(), fname.end());
    };
    header(out, false);
    out.insert(out.end(), payload.begin(), payload.end());
    header(central, true);
  }
  uint32_t cd_off = uint32_t(out.size());
  out.insert(out.end(), central.begin(), central.end());
  put32(out, kEndSig);
  put16(out, 0);
  put16(out, 0);
  put16(out, uint32_t(arrays.size()));
  put16(out, uint32_t(arrays.size()));
  put32(out, uint32_t(central.size()));
  put32(out, cd_off);
  put16(out, 0);
  return out;
}

void write_npz(const std::string& path, const NamedArrays& arrays, bool compress) {
  write_file_atomic(path, encode_npz(arrays, compress));
}

}  // namespace io
}  // namespace stereort
