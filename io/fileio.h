// io/fileio.h — the file plumbing every reader and writer in io/ shares.
//   MappedFile: a read-only memory mapping of a whole file (an empty file maps to nothing), shared by handle, so a
//     lazy reader (SafeTensors) can outlive the call that opened it. Errors name the file and the OS reason.
//   read_file_bytes: the whole file into a vector (small files: PFM, PNG, NPY, calib.txt).
//   AtomicWriter: writes go to "<path>.tmp-<pid>-<n>" in the same folder; commit() flushes, closes and renames over
//     `path`, so a reader never sees a partial file and a failed writer leaves nothing behind (the destructor removes
//     an uncommitted temp file). write_file_atomic() is the one-call form.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace stereort {
namespace io {

class MappedFile {
 public:
  static MappedFile open(const std::string& path);  // throws stereort::Error naming the file
  const uint8_t* data() const { return impl_ ? impl_->data : nullptr; }
  size_t size() const { return impl_ ? impl_->size : 0; }
  const std::string& path() const;

 private:
  struct Impl {
    const uint8_t* data = nullptr;
    size_t size = 0;
    std::string path;
    ~Impl();
  };
  std::shared_ptr<Impl> impl_;
};

std::vector<uint8_t> read_file_bytes(const std::string& path);
std::string read_file_text(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path);  // opens the temp file; throws naming `path` on failure
  ~AtomicWriter();                                  // removes the temp file unless commit() succeeded
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  void write(const void* data, size_t n);
  void write(const std::string& s) { write(s.data(), s.size()); }
  void commit();                                    // flush + close + rename; throws naming `path` on failure
  const std::string& path() const { return path_; }

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
  bool committed_ = false;
};

void write_file_atomic(const std::string& path, const void* data, size_t n);
inline void write_file_atomic(const std::string& path, const std::string& s) {
  write_file_atomic(path, s.data(), s.size());
}
inline void write_file_atomic(const std::string& path, const std::vector<uint8_t>& v) {
  write_file_atomic(path, v.data(), v.size());
}

// "a/b/c.png" -> "c.png"; "c" -> "c".  join("a", "b") -> "a/b".
std::string path_basename(const std::string& path);
std::string path_join(const std::string& a, const std::string& b);
// Sorted names (files and folders, no "." / "..") in a folder; throws naming the folder when it cannot be read.
std::vector<std::string> list_dir(const std::string& dir);
// mkdir -p; throws naming the folder on failure.
void make_dirs(const std::string& dir);

// CRC-32 (ISO 3309: PNG chunks, ZIP members) of a byte range, continuing from `crc` (0 to start).
uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);

}  // namespace io
}  // namespace stereort
