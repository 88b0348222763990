// io/fileio.cpp — mmap, whole-file reads, atomic writes (temp + rename), small path helpers. POSIX.
#include "io/fileio.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/check.h"

namespace stereort {
namespace io {

MappedFile::Impl::~Impl() {
  if (data) munmap(const_cast<uint8_t*>(data), size);
}

const std::string& MappedFile::path() const {
  static const std::string empty;
  return impl_ ? impl_->path : empty;
}

MappedFile MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  STEREORT_CHECK(fd >= 0, "{}: cannot open: {}", path, std::strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    STEREORT_FAIL("{}: cannot stat: {}", path, std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    STEREORT_FAIL("{}: not a regular file", path);
  }
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->size = size_t(st.st_size);
  if (impl->size > 0) {
    void* p = mmap(nullptr, impl->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      impl->size = 0;
      STEREORT_FAIL("{}: cannot memory-map {} bytes: {}", path, st.st_size, std::strerror(e));
    }
    impl->data = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping stays valid
  MappedFile m;
  m.impl_ = std::move(impl);
  return m;
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  STEREORT_CHECK(f, "{}: cannot open: {}", path, std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  bool err = std::ferror(f);
  std::fclose(f);
  STEREORT_CHECK(!err, "{}: read error", path);
  return out;
}

std::string read_file_text(const std::string& path) {
  std::vector<uint8_t> b = read_file_bytes(path);
  return std::string(b.begin(), b.end());
}

bool file_exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
bool is_directory(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

static std::atomic<unsigned> g_tmp_counter{0};

AtomicWriter::AtomicWriter(const std::string& path) : path_(path) {
  tmp_ = path + ".tmp-" + std::to_string(getpid()) + "-" + std::to_string(g_tmp_counter++);
  f_ = std::fopen(tmp_.c_str(), "wb");
  STEREORT_CHECK(f_, "{}: cannot create {} for writing: {}", path, tmp_, std::strerror(errno));
}

AtomicWriter::~AtomicWriter() {
  if (f_) std::fclose(f_);
  if (!committed_) std::remove(tmp_.c_str());
}

void AtomicWriter::write(const void* data, size_t n) {
  STEREORT_CHECK(f_, "{}: write after commit", path_);
  if (n == 0) return;
  STEREORT_CHECK(std::fwrite(data, 1, n, f_) == n, "{}: write failed ({} bytes): {}", path_, n, std::strerror(errno));
}

void AtomicWriter::commit() {
  STEREORT_CHECK(f_, "{}: commit called twice", path_);
  bool ok = std::fflush(f_) == 0;
  int e = errno;
  ok = (std::fclose(f_) == 0) && ok;
  f_ = nullptr;
  STEREORT_CHECK(ok, "{}: cannot finish writing (disk full?): {}", path_, std::strerror(e));
  STEREORT_CHECK(std::rename(tmp_.c_str(), path_.c_str()) == 0, "{}: cannot rename {} into place: {}", path_, tmp_,
                 std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const std::string& path, const void* data, size_t n) {
  AtomicWriter w(path);
  w.write(data, n);
  w.commit();
}

std::string path_basename(const std::string& path) {
  size_t p = path.find_last_of('/');
  return p == std::string::npos ? path : path.substr(p + 1);
}

std::string path_join(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

std::vector<std::string> list_dir(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  STEREORT_CHECK(d, "{}: cannot list folder: {}", dir, std::strerror(errno));
  std::vector<std::string> names;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

void make_dirs(const std::string& dir) {
  if (dir.empty() || is_directory(dir)) return;
  size_t p = dir.find_last_of('/');
  if (p != std::string::npos && p > 0) make_dirs(dir.substr(0, p));
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) STEREORT_FAIL("{}: cannot create folder: {}", dir, std::strerror(errno));
}

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  static const struct Table {
    uint32_t t[256];
    Table() {
      for (uint32_t k = 0; k < 256; ++k) {
        uint32_t c = k;
        for (int b = 0; b < 8; ++b) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[k] = c;
      }
    }
  } table;
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table.t[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

}  // namespace io
}  // namespace stereort
