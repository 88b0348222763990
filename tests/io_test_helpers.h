// tests/io_test_helpers.h — helpers shared by the io tests: a self-deleting temp folder, raw file writes, and a check
// that a folder holds no leftover temp files (writers must be atomic).
#pragma once
#include <doctest/doctest.h>
#include <stdlib.h>

#include <cstdio>
#include <string>
#include <vector>

#include "io/fileio.h"

namespace stereort {
namespace test {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/stereort_io_XXXXXX";
    char* p = mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path_ = p;
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline void write_raw(const std::string& path, const std::string& bytes) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

// No "*.tmp-*" files left behind in `dir`.
inline void check_no_temp_files(const std::string& dir) {
  for (const auto& n : io::list_dir(dir)) {
    INFO("leftover file: " << n);
    CHECK(n.find(".tmp-") == std::string::npos);
  }
}

}  // namespace test
}  // namespace stereort
